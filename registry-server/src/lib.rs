//! kiln's registry service (crate `kiln-registry`).
//!
//! This is where Cargo's sparse index and web API, the quarantine and review state machine,
//! tokens, the database, the blob store, the job queue and the event log live (see
//! `DESIGN.md` in the project's shared design notes and README.md). Nothing is implemented here
//! yet: the crate exists so that the workspace has its final shape and dependencies can point
//! inward from the start.
