//! The Sigstore bundle v0.3 JSON that carries a DSSE envelope and names its key by hint.
//!
//! kiln has no transparency log or timestamp authority, so the verification material is a
//! public-key hint (the key id) and `tlogEntries` is always written empty. Fields other
//! implementations add (certificates, timestamps) are read and left alone; verification decides
//! what it accepts.

use serde::{Deserialize, Serialize};

use crate::dsse::Envelope;

/// The media type of a Sigstore bundle v0.3.
pub const MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// A Sigstore bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// Always [`MEDIA_TYPE`] for bundles kiln writes.
    pub media_type: String,
    /// What identifies the signing key.
    pub verification_material: VerificationMaterial,
    /// The signed envelope. Bundles without one (message signatures) are not kiln's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsse_envelope: Option<Envelope>,
    /// A bare message signature, which kiln reads only to refuse it clearly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_signature: Option<serde_json::Value>,
}

/// How a verifier finds the signing key, and any log or timestamp evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMaterial {
    /// The hint naming a key the verifier already trusts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PublicKeyHint>,
    /// A Fulcio certificate, which kiln does not use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<serde_json::Value>,
    /// A certificate chain (bundle v0.1/v0.2), which kiln does not use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509_certificate_chain: Option<serde_json::Value>,
    /// Transparency log entries; kiln writes none.
    #[serde(default)]
    pub tlog_entries: Vec<serde_json::Value>,
    /// Timestamps from other signers; kiln writes none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_verification_data: Option<serde_json::Value>,
}

/// A public-key hint: the key id of the signing key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyHint {
    /// The key id (hex SHA-256 of the key's SPKI DER).
    #[serde(default)]
    pub hint: String,
}

impl Bundle {
    /// A bundle for `envelope`, naming the key by `hint`.
    pub fn new(envelope: Envelope, hint: String) -> Self {
        Self {
            media_type: MEDIA_TYPE.to_owned(),
            verification_material: VerificationMaterial {
                public_key: Some(PublicKeyHint { hint }),
                certificate: None,
                x509_certificate_chain: None,
                tlog_entries: Vec::new(),
                timestamp_verification_data: None,
            },
            dsse_envelope: Some(envelope),
            message_signature: None,
        }
    }

    /// The bundle as pretty JSON, the form kiln stores and hands out.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a bundle always serialises")
    }
}
