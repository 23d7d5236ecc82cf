//! Running entry points natively, for a kernel's own unit tests.

use crate::{EntryFn, Error};

/// The output limit [`run`] applies: 16 MiB.
pub const DEFAULT_LIMIT: usize = 16 * 1024 * 1024;

/// Runs `entry` on `input` and returns everything it wrote, or its error.
pub fn run(entry: EntryFn, input: &[u8]) -> Result<Vec<u8>, Error> {
    crate::meta::call_native(entry, input, DEFAULT_LIMIT)
}

/// Runs `entry` and returns its output as text.
pub fn run_text(entry: EntryFn, input: &str) -> Result<String, Error> {
    let bytes = run(entry, input.as_bytes())?;
    String::from_utf8(bytes).map_err(|_| Error::new("output is not UTF-8"))
}

/// Runs `entry` with an output limit of `limit` bytes.
pub fn run_with_limit(entry: EntryFn, input: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    crate::meta::call_native(entry, input, limit)
}
