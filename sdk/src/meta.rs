//! What [`kernel!`](crate::kernel) expands to calls into. Not a public API.

use crate::{EntryFn, Input, Output, abi};

/// True when `text` can sit inside a JSON string without escaping.
pub const fn is_plain(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'"' || b == b'\\' || b < 0x20 {
            return false;
        }
        i += 1;
    }
    true
}

/// Copies a string into a byte array at compile time, for the metadata section.
pub const fn to_array<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// The `kiln_alloc` export: room for `len` bytes of input, which the host then fills. The
/// memory is never freed; an instance serves one call.
pub fn alloc(len: i32) -> i32 {
    let Ok(len) = usize::try_from(len) else {
        return 0;
    };
    let mut buffer = std::mem::ManuallyDrop::new(Vec::<u8>::with_capacity(len.max(1)));
    buffer.as_mut_ptr() as usize as i32
}

/// An entry point export: runs `entry` on the input at `ptr..ptr+len`, streams its output, and
/// reports its error.
#[cfg(target_arch = "wasm32")]
pub fn call(ptr: i32, len: i32, entry: EntryFn) -> i32 {
    install_panic_hook();
    let input: &[u8] = if len <= 0 {
        &[]
    } else {
        // SAFETY: the host placed `len` bytes at `ptr`, inside a buffer `kiln_alloc` returned.
        unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len as usize) }
    };
    let mut out = Output::host();
    finish(entry(Input::new(input), &mut out).and_then(|()| out.flush()))
}

#[cfg(target_arch = "wasm32")]
fn finish(result: Result<(), crate::Error>) -> i32 {
    match result {
        Ok(()) => abi::STATUS_OK,
        Err(err) => {
            crate::host::error(err.message());
            abi::STATUS_ERROR
        }
    }
}

/// Sends panic messages to the host as the call's error before the module traps.
#[cfg(target_arch = "wasm32")]
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            crate::host::error(&format!("kernel panicked: {info}"));
        }));
    });
}

/// Runs an entry point natively on `input`, with output collected in memory up to `limit`.
pub(crate) fn call_native(
    entry: EntryFn,
    input: &[u8],
    limit: usize,
) -> Result<Vec<u8>, crate::Error> {
    let mut out = Output::memory(limit);
    entry(Input::new(input), &mut out)?;
    out.into_collected()
}

#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub fn call(_ptr: i32, _len: i32, _entry: EntryFn) -> i32 {
    abi::STATUS_ERROR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_checks() {
        assert!(is_plain("application/json"));
        assert!(!is_plain("a\"b"));
        assert!(!is_plain("a\\b"));
        assert!(!is_plain("a\nb"));
    }

    #[test]
    fn to_array_copies() {
        const A: [u8; 3] = to_array("abc");
        assert_eq!(&A, b"abc");
    }
}
