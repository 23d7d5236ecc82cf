//! kiln's workers (crate `kiln-builder`): they claim jobs from the registry's queue over its
//! worker API, so they run the same in `kiln serve` or as separate processes.
//!
//! - [`client`]: the worker API (claim, heartbeat, blobs, complete, fail).
//! - [`audit`]: the audit job: `cargo metadata` against the registry's own index, every check of
//!   the policy, a signed audit statement; a library as a [`dependent`] sees it, resolved
//!   through the [`curated`] index.
//! - [`build`]: hermetic builds: vendored sources, `cargo build --offline --locked` to
//!   `wasm32-wasip1` in the [`sandbox`], the wasm checks, AOT precompilation and signed SLSA
//!   provenance; [`build_job`] runs it for the queue, [`cache`] serves a build seen before and
//!   [`target_cache`] reuses compiled dependencies.
//! - [`code_cell`]: code cells' builds: a kernel crate generated around a notebook cell's
//!   source, built and signed like any kernel, with rustc's messages placed in the cell.
//! - [`sandbox`]: bubblewrap with fixed paths, a cleared environment and resource limits;
//!   [`pids`] caps a build's processes.
//! - [`worker`]: the claim, heartbeat and report loop both jobs share; [`workdir`]: their
//!   temporary work directories, and those of killed builders removed.

pub mod audit;
pub mod build;
pub mod build_job;
pub mod cache;
pub mod client;
pub mod code_cell;
pub mod curated;
pub mod dependent;
pub mod pids;
pub mod sandbox;
pub mod target_cache;
pub mod workdir;
pub mod worker;
