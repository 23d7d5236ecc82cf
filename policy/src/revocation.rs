//! The revocation list: digests an admin revoked, signed by a revocation key. The registry
//! serves it as a Sigstore bundle; the executor verifies it once per fetch and consults it at
//! every preflight.

use std::collections::HashMap;

use serde::Deserialize;

use crate::attest::{Expectation, Verifier, VerifyError};
use crate::digest::Digest;
use crate::intoto::StatementKind;

/// A verified revocation list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationList {
    /// When the registry issued it (Unix milliseconds).
    pub issued_at_ms: u64,
    /// Each revoked digest and the reason given.
    pub revoked: HashMap<Digest, String>,
}

#[derive(Debug, Deserialize)]
struct Predicate {
    issued_at: u64,
    entries: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct Entry {
    digest: Digest,
    reason: String,
}

/// Why a revocation list was refused.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// The bundle did not verify against the revocation keys.
    #[error("the revocation list does not verify: {0}")]
    Verify(#[from] VerifyError),
    /// The statement is not a revocation list, or its subject does not cover its entries.
    #[error("the revocation list is malformed: {0}")]
    Malformed(String),
}

impl RevocationList {
    /// Verifies a revocation-list bundle (JSON) with `verifier` and reads it. The statement's
    /// subject must be the digest of its entries, so the entries cannot be swapped.
    pub fn verify(verifier: &Verifier<'_>, json: &[u8]) -> Result<Self, RevocationError> {
        let verified = verifier.verify_json(
            json,
            Expectation {
                kind: Some(StatementKind::Revocation),
                subject: None,
            },
        )?;
        let predicate: Predicate = verified
            .statement
            .predicate_as()
            .map_err(|err| RevocationError::Malformed(err.to_string()))?;
        let covered = Digest::of(predicate.entries.to_string().as_bytes());
        if !verified.statement.has_subject(&covered) {
            return Err(RevocationError::Malformed(
                "its subject is not the digest of its entries".into(),
            ));
        }
        let entries: Vec<Entry> = serde_json::from_value(predicate.entries)
            .map_err(|err| RevocationError::Malformed(err.to_string()))?;
        Ok(Self {
            issued_at_ms: predicate.issued_at,
            revoked: entries.into_iter().map(|e| (e.digest, e.reason)).collect(),
        })
    }

    /// Why `digest` is revoked, if it is.
    pub fn reason(&self, digest: &Digest) -> Option<&str> {
        self.revoked.get(digest).map(String::as_str)
    }
}
