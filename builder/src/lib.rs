//! kiln's hermetic builder (crate `kiln-builder`).
//!
//! This is where safe unpacking, resolution against the curated index, the sandboxed offline
//! `cargo build` to `wasm32-wasip1`, ahead-of-time precompilation (with the engine settings of
//! `kiln_executor::engine`) and signed provenance live (see README.md). Nothing is implemented
//! here yet: the crate exists so that the workspace has its final shape.
