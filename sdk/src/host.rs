//! The `kiln` host imports. On other targets (native tests) they do not exist, and the SDK
//! routes output to memory and logs to standard error instead.

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "kiln")]
    unsafe extern "C" {
        /// Emits one output chunk. Returns `OUTPUT_OK` or `OUTPUT_LIMIT`.
        pub(crate) fn output(ptr: i32, len: i32) -> i32;
        /// Logs a UTF-8 message at a level.
        pub(crate) fn log(level: i32, ptr: i32, len: i32);
        /// Reports the UTF-8 message of the error an entry point is about to return.
        pub(crate) fn error(ptr: i32, len: i32);
    }
}

/// Hands one chunk to the host; false when the output limit is reached.
#[cfg(target_arch = "wasm32")]
pub(crate) fn output(chunk: &[u8]) -> bool {
    // SAFETY: the host reads `len` bytes at `ptr` from this module's memory during the call.
    unsafe { imports::output(chunk.as_ptr() as i32, chunk.len() as i32) == crate::abi::OUTPUT_OK }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn log(level: crate::abi::Level, message: &str) {
    // SAFETY: as for `output`.
    unsafe { imports::log(level as i32, message.as_ptr() as i32, message.len() as i32) }
}

#[cfg(not(target_arch = "wasm32"))]
#[allow(
    clippy::disallowed_macros,
    reason = "a kernel's native tests have no host: its log lines go to standard error"
)]
pub(crate) fn log(level: crate::abi::Level, message: &str) {
    eprintln!("[{level:?}] {message}");
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn error(message: &str) {
    // SAFETY: as for `output`.
    unsafe { imports::error(message.as_ptr() as i32, message.len() as i32) }
}
