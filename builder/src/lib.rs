//! kiln's workers (crate `kiln-builder`): they claim jobs from the registry's queue over its
//! worker API, so they run the same in `kiln serve` or as separate processes.
//!
//! - [`client`]: the worker API (claim, heartbeat, blobs, complete, fail).
//! - [`unpack`]: unpacking a `.crate` into a directory, refusing anything but plain files.
//! - [`audit`]: the audit job: `cargo metadata` against the registry's own index, every check of
//!   the policy, a signed audit statement.
//!
//! Hermetic builds (sandboxed offline `cargo build` to `wasm32-wasip1`, AOT precompilation and
//! signed provenance) come next, in the same shape.

pub mod audit;
pub mod build;
pub mod build_job;
pub mod client;
pub mod sandbox;
pub mod unpack;
pub mod worker;
