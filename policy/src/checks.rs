//! The audit checks, one module each (in the manner of cargo-deny): each has its policy, its
//! findings with stable codes, and its tests.

pub mod advisories;
pub mod bans;
pub mod build;
pub mod crates;
pub mod exceptions;
pub mod licenses;
pub mod sources;
pub mod typosquat;
pub mod wasm;
