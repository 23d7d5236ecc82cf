//! in-toto Statement v1: the signed claim about one or more artifacts.
//!
//! Reading tolerates fields kiln does not know (newer writers may add them); writing emits
//! exactly the fields below, so a statement kiln signs is byte-for-byte what it serialised.

use std::collections::BTreeMap;

/// The predicate type of SLSA Provenance v1, which provenance statements carry.
pub const PROVENANCE_PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::digest::Digest;
use crate::keyring::Role;

/// The `_type` of every in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A resource descriptor: a subject of a statement, or a dependency in provenance.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    /// A name for the resource, such as a file name or `crate:NAME@VERSION`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Where the resource can be found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Digests of the resource by algorithm name (`sha256` → lowercase hex).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    /// Where the resource was downloaded from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_location: Option<String>,
    /// The media type of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Value>,
}

impl ResourceDescriptor {
    /// A descriptor naming `name` with its SHA-256 digest.
    pub fn new(name: impl Into<String>, digest: Digest) -> Self {
        Self {
            name: name.into(),
            digest: BTreeMap::from([("sha256".to_owned(), digest.hex())]),
            ..Self::default()
        }
    }

    /// The SHA-256 digest, when present and well formed.
    pub fn sha256(&self) -> Option<Digest> {
        self.digest
            .get("sha256")
            .and_then(|hex| Digest::from_hex(hex).ok())
    }
}

/// An in-toto Statement v1 with predicate type `P` (raw JSON unless a typed predicate is asked
/// for).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Statement<P = serde_json::Value> {
    /// Always [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub type_: String,
    /// The artifacts the statement is about.
    pub subject: Vec<ResourceDescriptor>,
    /// What kind of claim the predicate makes.
    pub predicate_type: String,
    /// The claim.
    pub predicate: P,
}

impl<P: Serialize> Statement<P> {
    /// A statement about `subject` with a typed predicate.
    pub fn new(
        subject: Vec<ResourceDescriptor>,
        predicate_type: impl Into<String>,
        predicate: P,
    ) -> Self {
        Self {
            type_: STATEMENT_TYPE.to_owned(),
            subject,
            predicate_type: predicate_type.into(),
            predicate,
        }
    }

    /// The statement with its predicate as raw JSON.
    pub fn into_untyped(self) -> Result<Statement, serde_json::Error> {
        Ok(Statement {
            type_: self.type_,
            subject: self.subject,
            predicate_type: self.predicate_type,
            predicate: serde_json::to_value(self.predicate)?,
        })
    }
}

impl Statement {
    /// Reads the predicate as `P`.
    pub fn predicate_as<P: DeserializeOwned>(&self) -> Result<P, serde_json::Error> {
        P::deserialize(&self.predicate)
    }

    /// True when some subject's SHA-256 digest is `digest`.
    pub fn has_subject(&self, digest: &Digest) -> bool {
        self.subject.iter().any(|s| s.sha256() == Some(*digest))
    }
}

/// The kinds of statement kiln signs and accepts. Each is signed by a key of one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatementKind {
    /// SLSA Provenance v1 for a built `.wasm` and `.cwasm`, signed by a builder key.
    Provenance,
    /// kiln's audit report of a crate and its dependencies, signed by a builder key.
    Audit,
    /// An admin's review decision, signed by a reviewer key.
    Review,
    /// The list of revoked artifacts, signed by a revocation key.
    Revocation,
}

impl StatementKind {
    /// Every kind, in a stable order.
    pub const ALL: [StatementKind; 4] = [
        StatementKind::Provenance,
        StatementKind::Audit,
        StatementKind::Review,
        StatementKind::Revocation,
    ];

    /// The kind's name in lowercase (`provenance`, `audit`, `review`, `revocation`).
    pub const fn as_str(self) -> &'static str {
        match self {
            StatementKind::Provenance => "provenance",
            StatementKind::Audit => "audit",
            StatementKind::Review => "review",
            StatementKind::Revocation => "revocation",
        }
    }

    /// The `predicateType` that identifies this kind.
    pub const fn predicate_type(self) -> &'static str {
        match self {
            StatementKind::Provenance => PROVENANCE_PREDICATE_TYPE,
            StatementKind::Audit => "https://kiln.dev/attestation/audit/v1",
            StatementKind::Review => "https://kiln.dev/attestation/review/v1",
            StatementKind::Revocation => "https://kiln.dev/attestation/revocation/v1",
        }
    }

    /// The kind a `predicateType` names, if kiln knows it.
    pub fn from_predicate_type(predicate_type: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.predicate_type() == predicate_type)
    }

    /// The role a key must hold to sign this kind of statement.
    pub const fn signer_role(self) -> Role {
        match self {
            StatementKind::Provenance | StatementKind::Audit => Role::Builder,
            StatementKind::Review => Role::Reviewer,
            StatementKind::Revocation => Role::Revocation,
        }
    }
}

impl std::fmt::Display for StatementKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_tolerates_unknown_fields_and_writing_is_exact() {
        let json = r#"{
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "k.wasm", "digest": {"sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}, "future": 1}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {"x": 1},
            "extra": "ignored"
        }"#;
        let statement: Statement = serde_json::from_str(json).unwrap();
        assert!(statement.has_subject(&Digest::of(b"")));
        assert_eq!(
            serde_json::to_string(&statement).unwrap(),
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"k.wasm","digest":{"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"x":1}}"#
        );
    }

    #[test]
    fn a_malformed_subject_digest_matches_nothing() {
        let mut subject = ResourceDescriptor::new("a", Digest::of(b""));
        subject.digest.insert(
            "sha256".into(),
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855".into(),
        );
        assert_eq!(subject.sha256(), None);
    }

    #[test]
    fn every_kind_round_trips_through_its_predicate_type() {
        for kind in StatementKind::ALL {
            assert_eq!(
                StatementKind::from_predicate_type(kind.predicate_type()),
                Some(kind)
            );
        }
        assert_eq!(
            StatementKind::from_predicate_type("https://example.com/x"),
            None
        );
    }
}
