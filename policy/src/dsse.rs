//! DSSE, the signing envelope: what is signed is the pre-authentication encoding (PAE) of the
//! payload type and the payload, never the JSON around them.

use serde::{Deserialize, Serialize};

use crate::base64_bytes;

/// The DSSE pre-authentication encoding of `payload_type` and `payload`:
/// `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let type_len = payload_type.len().to_string();
    let payload_len = payload.len().to_string();
    let mut out = Vec::with_capacity(
        10 + type_len.len() + payload_type.len() + payload_len.len() + payload.len(),
    );
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(type_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope as it appears in a Sigstore bundle (byte fields in standard base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The signed payload: for kiln, an in-toto statement in JSON.
    #[serde(with = "base64_bytes")]
    pub payload: Vec<u8>,
    /// What the payload is: for kiln, `application/vnd.in-toto+json`.
    pub payload_type: String,
    /// The signatures over the PAE; kiln writes and accepts exactly one.
    #[serde(default)]
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature in a DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// The ASN.1 DER ECDSA signature over the PAE.
    #[serde(with = "base64_bytes")]
    pub sig: Vec<u8>,
    /// The signing key's id (hex SHA-256 of its SPKI DER); must equal the bundle's key hint.
    #[serde(default)]
    pub keyid: String,
}

impl Envelope {
    /// The bytes a signature over this envelope covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_specification_example() {
        // The worked example of the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn a_missing_keyid_reads_as_empty() {
        let env: Envelope = serde_json::from_str(
            r#"{"payload":"aGk=","payloadType":"t","signatures":[{"sig":"AA=="}]}"#,
        )
        .unwrap();
        assert_eq!(env.payload, b"hi");
        assert_eq!(env.signatures[0].keyid, "");
    }
}
