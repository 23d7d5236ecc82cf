//! kiln's notebook executor.
//!
//! - [`engine`]: the one definition of the wasmtime engine settings that both the builder's
//!   ahead-of-time compilation and the runtime use, so that a `.cwasm` the builder signs is one
//!   the executor can load.
//! - [`runtime`]: calls of a kernel's entry points under a cell's limits (fuel, epoch deadline,
//!   memory, output), with WASI preview 1 and no ambient authority, and a deterministic mode for
//!   replay.
//!
//! - [`notebook`]: notebook documents (format version 1, `docs/notebook.md`), validated with
//!   errors that name the cell and the field.
//! - [`run`]: running a notebook's cells in order, chaining outputs, into a run record; replay.
//!
//! - [`fetch`]: a kernel's artifacts from the registry, in a content-addressed cache.
//!
//! `kiln run` puts them together (fetch, preflight, run); the executor API builds on them next.

#![deny(unsafe_code)]

pub mod engine;
pub mod fetch;
pub mod notebook;
pub mod run;
pub mod runtime;
