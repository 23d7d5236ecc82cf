//! kiln's end-to-end tests: one test binary, driving the real `kiln` binary, real `cargo`,
//! wasmtime and the reference Sigstore implementation.

#![allow(clippy::disallowed_macros, reason = "tests print what they measured")]

mod abi;
mod abuse;
mod audit;
mod browser;
mod browser_runs;
mod build;
mod cli_attest;
mod cli_audit;
mod cli_review;
mod closure;
mod code_build_queue;
mod code_cells;
mod executor;
mod import;
mod interop;
mod jobs;
mod races;
mod registry;
mod registry_hostile;
mod registry_incident;
mod replicas;
mod runtime;
mod s3;
mod vet;
