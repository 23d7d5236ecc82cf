//! A kernel that misbehaves on purpose, one way per entry, for kiln's executor tests: each
//! must end in its named error while the executor goes on serving.
//!
//! - `echo`: answers its input (the well-behaved control);
//! - `spin`: loops forever (out of fuel, or past the deadline when fuel is generous);
//! - `grow`: allocates until memory runs out (memory limit);
//! - `recurse`: recurses without end (stack overflow);
//! - `flood`: writes output without end (output limit);
//! - `amplify`: writes as many bytes as its input (decimal text) says, within its limits: a
//!   small notebook that asks for a large answer;
//! - `fail`: returns an error (kernel error, with its message);
//! - `crash`: aborts (a trap);
//! - `clock`: reads the wall clock, so the module imports `clock_time_get`, which a cell must
//!   grant.

use std::hint::black_box;

use kiln_kernel::{Error, Input, Output};

kiln_kernel::kernel! {
    entry echo(input: "application/octet-stream", output: "application/octet-stream") => echo;
    entry spin(input: "application/octet-stream", output: "text/plain") => spin;
    entry grow(input: "application/octet-stream", output: "text/plain") => grow;
    entry recurse(input: "application/octet-stream", output: "text/plain") => recurse;
    entry flood(input: "application/octet-stream", output: "text/plain") => flood;
    entry amplify(input: "text/plain", output: "text/plain") => amplify;
    entry fail(input: "application/octet-stream", output: "text/plain") => fail;
    entry crash(input: "application/octet-stream", output: "text/plain") => crash;
    entry clock(input: "application/octet-stream", output: "text/plain") => clock;
}

/// Answers its input.
pub fn echo(input: Input<'_>, out: &mut Output) -> Result<(), Error> {
    out.write_bytes(input.bytes())
}

/// Never returns.
pub fn spin(_input: Input<'_>, _out: &mut Output) -> Result<(), Error> {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

/// Allocates a megabyte at a time, keeping every one.
pub fn grow(_input: Input<'_>, _out: &mut Output) -> Result<(), Error> {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        kept.push(black_box(vec![1u8; 1 << 20]));
    }
}

/// Recurses without a base case the compiler can see through (the input is never that long),
/// keeping no locals in linear memory, so that the wasm stack is what runs out.
fn deeper(n: u64, input: &[u8]) -> u64 {
    if input.len() as u64 == n.wrapping_sub(1) {
        return n;
    }
    deeper(n + 1, input).wrapping_mul(3).wrapping_add(n)
}

/// Recurses until the stack runs out.
pub fn recurse(input: Input<'_>, out: &mut Output) -> Result<(), Error> {
    out.write_str(&deeper(u64::MAX / 2, input.bytes()).to_string())
}

/// Writes output forever.
pub fn flood(_input: Input<'_>, out: &mut Output) -> Result<(), Error> {
    let chunk = [b'x'; 4096];
    loop {
        out.write_bytes(&chunk)?;
    }
}

/// Writes as many `x` as the input's decimal number.
pub fn amplify(input: Input<'_>, out: &mut Output) -> Result<(), Error> {
    let wanted: usize = input
        .text()?
        .trim()
        .parse()
        .map_err(|_| Error::new("the input is a byte count"))?;
    let chunk = [b'x'; 4096];
    let mut left = wanted;
    while left > 0 {
        let now = left.min(chunk.len());
        out.write_bytes(&chunk[..now])?;
        left -= now;
    }
    Ok(())
}

/// Fails with a message.
pub fn fail(_input: Input<'_>, _out: &mut Output) -> Result<(), Error> {
    Err("this kernel always fails".into())
}

/// Aborts.
pub fn crash(_input: Input<'_>, _out: &mut Output) -> Result<(), Error> {
    std::process::abort()
}

/// The seconds since the Unix epoch.
pub fn clock(_input: Input<'_>, out: &mut Output) -> Result<(), Error> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    out.write_str(&now.to_string())
}
