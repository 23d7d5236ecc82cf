//! Signing in-toto statements into Sigstore bundles, and verifying such bundles against a
//! keyring.
//!
//! Verification fails closed and says which check failed. In order:
//! 1. the bundle is at most [`MAX_BUNDLE_BYTES`] and parses;
//! 2. it is a v0.3 bundle carrying a DSSE envelope and a public-key hint (no certificates);
//! 3. the envelope has exactly one signature, whose `keyid` equals the hint;
//! 4. the hint names a key in the keyring (a key carried inside a bundle is never trusted);
//! 5. the payload type is in-toto's;
//! 6. the signature over the DSSE PAE verifies with that key;
//! 7. the payload is an in-toto v1 statement of a kind kiln knows, with subjects;
//! 8. the key holds the role that signs that kind (and it is the kind the caller expects);
//! 9. a subject's SHA-256 equals the digest of the bytes in hand, when the caller has them.

use crate::bundle::{Bundle, MEDIA_TYPE};
use crate::digest::Digest;
use crate::dsse::{Envelope, EnvelopeSignature};
use crate::intoto::{PAYLOAD_TYPE, STATEMENT_TYPE, Statement, StatementKind};
use crate::keyring::{Keyring, Role};
use crate::keys::{KeyError, KeyId, SigningKey};

/// The largest bundle kiln reads. Provenance naming hundreds of crates is tens of kilobytes.
pub const MAX_BUNDLE_BYTES: usize = 4 * 1024 * 1024;

/// Why a statement could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The statement is not an in-toto Statement v1.
    #[error("the statement's `_type` must be {STATEMENT_TYPE}, found `{0}`")]
    NotAStatement(String),
    /// The statement names no subject, or a subject without a valid SHA-256.
    #[error("every statement needs at least one subject, each with a sha256 digest")]
    Subjects,
    /// The key could not sign.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Signs `statement` with `key` into a Sigstore bundle naming the key by its id.
pub fn sign_statement(key: &SigningKey, statement: &Statement) -> Result<Bundle, SignError> {
    if statement.type_ != STATEMENT_TYPE {
        return Err(SignError::NotAStatement(statement.type_.clone()));
    }
    if statement.subject.is_empty() || statement.subject.iter().any(|s| s.sha256().is_none()) {
        return Err(SignError::Subjects);
    }
    let payload = serde_json::to_vec(statement).expect("a statement always serialises");
    let mut envelope = Envelope {
        payload,
        payload_type: PAYLOAD_TYPE.to_owned(),
        signatures: Vec::new(),
    };
    let sig = key.sign(&envelope.signed_bytes())?;
    envelope.signatures.push(EnvelopeSignature {
        sig,
        keyid: key.id().to_string(),
    });
    Ok(Bundle::new(envelope, key.id().to_string()))
}

/// Which check a bundle failed. Each variant has a stable [`code`](VerifyError::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The bundle is larger than [`MAX_BUNDLE_BYTES`].
    #[error("bundle is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// The bundle's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The bundle is not valid bundle JSON (including bad base64).
    #[error("bundle is malformed: {0}")]
    Malformed(String),
    /// The bundle's media type is not v0.3.
    #[error("bundle media type is `{0}`, expected {MEDIA_TYPE}")]
    MediaType(String),
    /// The bundle carries a bare message signature, not a DSSE envelope.
    #[error("bundle has no DSSE envelope (kiln signs statements, not bare messages)")]
    NotDsse,
    /// The verification material is not a public-key hint (for example a certificate).
    #[error("bundle names no public-key hint; kiln verifies only keys in its keyring")]
    NoKeyHint,
    /// The envelope does not carry exactly one signature.
    #[error("envelope has {0} signatures, expected exactly one")]
    SignatureCount(usize),
    /// The signature's keyid is not the bundle's hint.
    #[error("signature keyid `{keyid}` differs from the bundle's key hint `{hint}`")]
    KeyIdMismatch {
        /// The bundle's hint.
        hint: String,
        /// The signature's keyid.
        keyid: String,
    },
    /// No trusted key has the hinted id.
    #[error("key `{0}` is not in the keyring")]
    UnknownKey(String),
    /// The envelope's payload type is not in-toto's.
    #[error("payload type is `{0}`, expected {PAYLOAD_TYPE}")]
    PayloadType(String),
    /// The signature does not verify with the hinted key.
    #[error("signature does not verify with key `{0}`")]
    BadSignature(KeyId),
    /// The signed payload is not an in-toto Statement v1 with subjects.
    #[error("signed payload is not an in-toto v1 statement: {0}")]
    Statement(String),
    /// The statement's predicate type is not one kiln knows.
    #[error("predicate type `{0}` is not one kiln accepts")]
    UnknownPredicateType(String),
    /// The statement is a different kind from what the caller needed.
    #[error("expected a {expected} statement, found {found}")]
    WrongKind {
        /// What the caller asked for.
        expected: StatementKind,
        /// What the bundle holds.
        found: StatementKind,
    },
    /// The key is trusted, but not for the role that signs this kind of statement.
    #[error("key `{name}` ({id}) is not trusted as {needed}, which {kind} statements need")]
    WrongRole {
        /// The key's name in the keyring.
        name: String,
        /// The key's id.
        id: KeyId,
        /// The role needed.
        needed: Role,
        /// The statement kind.
        kind: StatementKind,
    },
    /// No subject has the digest of the artifact in hand.
    #[error("no subject of the statement has digest {0}")]
    SubjectMismatch(Digest),
}

impl VerifyError {
    /// A stable, machine-readable code for the failed check.
    pub const fn code(&self) -> &'static str {
        match self {
            VerifyError::TooLarge { .. } => "bundle-too-large",
            VerifyError::Malformed(_) => "bundle-malformed",
            VerifyError::MediaType(_) => "bundle-media-type",
            VerifyError::NotDsse => "bundle-not-dsse",
            VerifyError::NoKeyHint => "bundle-no-key-hint",
            VerifyError::SignatureCount(_) => "signature-count",
            VerifyError::KeyIdMismatch { .. } => "keyid-mismatch",
            VerifyError::UnknownKey(_) => "unknown-key",
            VerifyError::PayloadType(_) => "payload-type",
            VerifyError::BadSignature(_) => "bad-signature",
            VerifyError::Statement(_) => "statement-malformed",
            VerifyError::UnknownPredicateType(_) => "unknown-predicate-type",
            VerifyError::WrongKind { .. } => "wrong-kind",
            VerifyError::WrongRole { .. } => "wrong-role",
            VerifyError::SubjectMismatch(_) => "subject-mismatch",
        }
    }
}

/// What the caller requires of a bundle beyond a valid, trusted signature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expectation {
    /// The statement must be of this kind.
    pub kind: Option<StatementKind>,
    /// Some subject must have this digest (the digest of the bytes in hand).
    pub subject: Option<Digest>,
}

/// A statement whose bundle passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The statement.
    pub statement: Statement,
    /// Its kind.
    pub kind: StatementKind,
    /// The id of the key that signed it.
    pub key_id: KeyId,
    /// That key's name in the keyring.
    pub key_name: String,
}

/// Verifies Sigstore bundles against the keys of one keyring.
#[derive(Debug, Clone, Copy)]
pub struct Verifier<'k> {
    keyring: &'k Keyring,
}

impl<'k> Verifier<'k> {
    /// A verifier that trusts exactly the keys of `keyring`.
    pub fn new(keyring: &'k Keyring) -> Self {
        Self { keyring }
    }

    /// Parses and verifies a bundle given as JSON bytes.
    pub fn verify_json(&self, json: &[u8], expect: Expectation) -> Result<Verified, VerifyError> {
        if json.len() > MAX_BUNDLE_BYTES {
            return Err(VerifyError::TooLarge {
                size: json.len(),
                limit: MAX_BUNDLE_BYTES,
            });
        }
        let bundle: Bundle =
            serde_json::from_slice(json).map_err(|err| VerifyError::Malformed(err.to_string()))?;
        self.verify(&bundle, expect)
    }

    /// Verifies a parsed bundle.
    pub fn verify(&self, bundle: &Bundle, expect: Expectation) -> Result<Verified, VerifyError> {
        if bundle.media_type != MEDIA_TYPE {
            return Err(VerifyError::MediaType(bundle.media_type.clone()));
        }
        let envelope = bundle.dsse_envelope.as_ref().ok_or(VerifyError::NotDsse)?;
        let material = &bundle.verification_material;
        let hint = match &material.public_key {
            Some(key)
                if material.certificate.is_none() && material.x509_certificate_chain.is_none() =>
            {
                &key.hint
            }
            _ => return Err(VerifyError::NoKeyHint),
        };
        let [signature] = envelope.signatures.as_slice() else {
            return Err(VerifyError::SignatureCount(envelope.signatures.len()));
        };
        if signature.keyid != *hint {
            return Err(VerifyError::KeyIdMismatch {
                hint: hint.clone(),
                keyid: signature.keyid.clone(),
            });
        }
        let trusted = self
            .keyring
            .get(hint)
            .ok_or_else(|| VerifyError::UnknownKey(hint.clone()))?;
        if envelope.payload_type != PAYLOAD_TYPE {
            return Err(VerifyError::PayloadType(envelope.payload_type.clone()));
        }
        if !trusted.key.verify(&envelope.signed_bytes(), &signature.sig) {
            return Err(VerifyError::BadSignature(trusted.key.id().clone()));
        }

        let statement: Statement = serde_json::from_slice(&envelope.payload)
            .map_err(|err| VerifyError::Statement(err.to_string()))?;
        if statement.type_ != STATEMENT_TYPE {
            return Err(VerifyError::Statement(format!(
                "`_type` is `{}`, expected {STATEMENT_TYPE}",
                statement.type_
            )));
        }
        if statement.subject.is_empty() {
            return Err(VerifyError::Statement("it names no subject".into()));
        }
        let kind = StatementKind::from_predicate_type(&statement.predicate_type)
            .ok_or_else(|| VerifyError::UnknownPredicateType(statement.predicate_type.clone()))?;
        if let Some(expected) = expect.kind
            && expected != kind
        {
            return Err(VerifyError::WrongKind {
                expected,
                found: kind,
            });
        }
        let needed = kind.signer_role();
        if !trusted.has_role(needed) {
            return Err(VerifyError::WrongRole {
                name: trusted.name.clone(),
                id: trusted.key.id().clone(),
                needed,
                kind,
            });
        }
        if let Some(digest) = expect.subject
            && !statement.has_subject(&digest)
        {
            return Err(VerifyError::SubjectMismatch(digest));
        }
        Ok(Verified {
            statement,
            kind,
            key_id: trusted.key.id().clone(),
            key_name: trusted.name.clone(),
        })
    }
}

#[cfg(test)]
mod tests;
