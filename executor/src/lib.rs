//! kiln's notebook executor.
//!
//! Today this crate holds the one definition of the wasmtime engine settings that both the
//! builder's ahead-of-time compilation and the executor's runtime use, so that a `.cwasm` the
//! builder signs is one the executor can load. Preflight, the instance pool, limits and the
//! executor API build on it.

#![forbid(unsafe_code)]

pub mod engine;
