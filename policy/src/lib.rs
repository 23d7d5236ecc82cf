//! kiln's trust core, used by everything else in kiln.
//!
//! It answers one question the same way everywhere: *are these bytes the ones a trusted key
//! vouched for?*
//!
//! - [`Digest`]: SHA-256 names for every blob (`sha256:<hex>`).
//! - [`intoto`] and [`slsa`]: the statements kiln signs (provenance, audit, review, revocation).
//! - [`dsse`] and [`bundle`]: the DSSE envelope and the Sigstore bundle v0.3 that carry them.
//! - [`keys`] and [`keyring`]: ECDSA P-256 keys, and the trusted keys with their roles.
//! - [`attest`]: signing a statement into a bundle, and verifying a bundle, failing closed.
//! - [`policy_file`]: policy files, parsed strictly and validated.
//! - [`checks`] and [`findings`]: the audit checks, one module each, and their findings and
//!   verdicts; [`rules`]: custom checks in Rego.
//! - [`manifest`], [`revocation`] and [`preflight`]: what the executor decides before a cell
//!   runs.
//! - [`audit`]: one audit of a crate and its dependency graph, its report and its statement.
//!
//! This crate does no I/O beyond reading files it is handed, and no HTTP.

#![forbid(unsafe_code)]

pub mod attest;
pub mod audit;
mod base64_bytes;
pub mod bundle;
pub mod checks;
pub mod codes;
pub mod config;
pub mod digest;
pub mod dsse;
pub mod findings;
pub mod intoto;
pub mod keyring;
pub mod keys;
pub mod manifest;
pub mod policy_file;
pub mod preflight;
pub mod revocation;
pub mod rules;
pub mod slsa;
mod toml_error;

pub use attest::{Expectation, SignError, Verified, Verifier, VerifyError, sign_statement};
pub use bundle::Bundle;
pub use digest::Digest;
pub use intoto::{Statement, StatementKind};
pub use keyring::{Keyring, Role, TrustedKey};
pub use keys::{KeyError, KeyId, PublicKey, SigningKey};
