//! kiln's notebook executor.
//!
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
//!   process and by the HTTP API; [`store`]: where runs, notebooks and outputs are kept;
//!   [`caches`], [`revocations`], [`metrics`]: what it keeps in memory and counts.
//! - [`api`]: the HTTP API (`/v1/preflight`, `/v1/runs`, …); [`auth`]: its callers' tokens.

#![deny(unsafe_code)]

pub mod api;
pub mod auth;
pub mod caches;
pub mod datasets;
pub mod fetch;
pub mod metrics;
pub mod notebook;
pub mod notebooks;
pub mod revocations;
pub mod run;
pub mod runtime;
pub mod service;
pub mod store;
