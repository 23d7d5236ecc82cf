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
//! - [`service`]: the executor itself (fetch, preflight, run, store), used by `kiln run` in one
//!   process and by the HTTP API; [`store`]: where runs, notebooks and outputs are kept.
//! - [`api`]: the HTTP API (`/v1/preflight`, `/v1/runs`, …); [`auth`]: its callers' tokens.

#![deny(unsafe_code)]

pub mod api;
pub mod auth;
pub mod engine;
pub mod fetch;
pub mod notebook;
pub mod run;
pub mod runtime;
pub mod service;
pub mod store;
