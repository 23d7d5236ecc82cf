//! `kiln-abi`: the numbers and names of kiln's kernel ABI v1 (`docs/kernel-abi.md` in the kiln
//! repository), in one place that both sides of the contract use: the kernel SDK
//! (`kiln-kernel`), which exports them, and kiln's policy, which checks modules against them.
//!
//! It has no dependencies, so that the SDK stays free of them, and it is published to a kiln
//! registry before the SDK.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The ABI version these constants describe.
pub const VERSION: u32 = 1;

/// The host module every `kiln` import comes from.
pub const HOST_MODULE: &str = "kiln";
/// The custom section holding the kernel's metadata (UTF-8 JSON).
pub const METADATA_SECTION: &str = "kiln.kernel";
/// The export the host calls to place input in guest memory: `(len: i32) -> ptr: i32`.
pub const ALLOC_EXPORT: &str = "kiln_alloc";
/// The prefix of every entry point export: `kiln_entry_NAME(ptr: i32, len: i32) -> status: i32`.
pub const ENTRY_PREFIX: &str = "kiln_entry_";

/// An entry point returned normally.
pub const STATUS_OK: i32 = 0;
/// An entry point failed; the message was reported through `kiln.error` first.
pub const STATUS_ERROR: i32 = 1;

/// `kiln.output` accepted the chunk.
pub const OUTPUT_OK: i32 = 0;
/// `kiln.output` refused the chunk: the cell's output limit is reached.
pub const OUTPUT_LIMIT: i32 = 1;

/// The size of the chunks the SDK's output hands to the host.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Log levels for `kiln.log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(i32)]
pub enum Level {
    /// Something failed.
    Error = 1,
    /// Something looks wrong.
    Warn = 2,
    /// Progress worth showing a notebook user.
    Info = 3,
    /// Detail for the kernel's author.
    Debug = 4,
}
