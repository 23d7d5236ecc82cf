//! ECDSA P-256 keys, handled through the `sigstore` crate's crypto.
//!
//! Private keys are stored as cosign-compatible encrypted PEM (scrypt + secretbox, label
//! `ENCRYPTED SIGSTORE PRIVATE KEY`; cosign's older `ENCRYPTED COSIGN PRIVATE KEY` is read too),
//! public keys as SPKI PEM. A key's id is the hex SHA-256 of its SPKI DER.

use std::fmt;

use sigstore::crypto::signing_key::SigStoreKeyPair;
use sigstore::crypto::signing_key::ecdsa::ECDSAKeys;
use sigstore::crypto::{CosignVerificationKey, SigStoreSigner, Signature, SigningScheme};

use crate::digest::Digest;

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Generating a new key failed.
    #[error("could not generate a key: {0}")]
    Generate(String),
    /// The private key PEM could not be decrypted or parsed.
    #[error("could not read the private key (wrong password, or not an encrypted P-256 key): {0}")]
    PrivateKey(String),
    /// The public key PEM or DER could not be parsed.
    #[error("could not read the public key: {0}")]
    PublicKey(String),
    /// The key is valid but not ECDSA P-256.
    #[error("kiln keys are ECDSA P-256; this key is {0}")]
    UnsupportedAlgorithm(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
    /// Writing the key out failed.
    #[error("could not encode the key: {0}")]
    Encode(String),
}

/// A key's id: the lowercase hex SHA-256 of its SPKI DER. It is the Sigstore bundle's public-key
/// hint and the DSSE signature's `keyid`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// The id of the key whose SPKI DER is `spki_der`.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        Self(Digest::of(spki_der).hex())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ECDSA P-256 public key with its id.
#[derive(Debug)]
pub struct PublicKey {
    spki_der: Vec<u8>,
    id: KeyId,
    key: CosignVerificationKey,
}

impl Clone for PublicKey {
    fn clone(&self) -> Self {
        Self::from_der(&self.spki_der).expect("a parsed key parses again")
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki_der == other.spki_der
    }
}

impl Eq for PublicKey {}

impl PublicKey {
    /// Reads an SPKI DER public key; only ECDSA P-256 is accepted.
    pub fn from_der(spki_der: &[u8]) -> Result<Self, KeyError> {
        let key = CosignVerificationKey::try_from_der(spki_der)
            .map_err(|err| KeyError::PublicKey(err.to_string()))?;
        if !matches!(key, CosignVerificationKey::ECDSA_P256_SHA256_ASN1(_)) {
            return Err(KeyError::UnsupportedAlgorithm(algorithm_name(&key).into()));
        }
        Ok(Self {
            spki_der: spki_der.to_vec(),
            id: KeyId::of_spki(spki_der),
            key,
        })
    }

    /// Reads a `PUBLIC KEY` PEM; only ECDSA P-256 is accepted.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let der = pem_contents(pem, "PUBLIC KEY").map_err(KeyError::PublicKey)?;
        Self::from_der(&der)
    }

    /// The SPKI DER bytes.
    pub fn to_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The key as `PUBLIC KEY` PEM.
    pub fn to_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.spki_der)
    }

    /// The key's id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// True when `signature` (ASN.1 DER) is this key's ECDSA-SHA256 signature over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key
            .verify_signature(Signature::Raw(signature), message)
            .is_ok()
    }
}

/// An ECDSA P-256 private key, able to sign.
pub struct SigningKey {
    signer: SigStoreSigner,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", self.public.id())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> Result<Self, KeyError> {
        let signer = SigningScheme::ECDSA_P256_SHA256_ASN1
            .create_signer()
            .map_err(|err| KeyError::Generate(err.to_string()))?;
        Self::from_signer(signer)
    }

    /// Reads a private key PEM: an encrypted cosign/sigstore key, or (with an empty password) an
    /// unencrypted PKCS#8 `PRIVATE KEY`.
    pub fn from_pem(pem: &[u8], password: &[u8]) -> Result<Self, KeyError> {
        let pair = SigStoreKeyPair::from_encrypted_pem(pem, password)
            .map_err(|err| KeyError::PrivateKey(err.to_string()))?;
        match &pair {
            SigStoreKeyPair::ECDSA(ECDSAKeys::P256(_)) => {}
            other => return Err(KeyError::UnsupportedAlgorithm(other.to_string())),
        }
        let signer = pair
            .to_sigstore_signer(&SigningScheme::ECDSA_P256_SHA256_ASN1)
            .map_err(|err| KeyError::PrivateKey(err.to_string()))?;
        Self::from_signer(signer)
    }

    fn from_signer(signer: SigStoreSigner) -> Result<Self, KeyError> {
        let der = signer
            .to_sigstore_keypair()
            .and_then(|pair| pair.public_key_to_der())
            .map_err(|err| KeyError::Encode(err.to_string()))?;
        let public = PublicKey::from_der(&der)?;
        Ok(Self { signer, public })
    }

    /// The key as cosign-compatible encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`).
    pub fn to_encrypted_pem(&self, password: &[u8]) -> Result<String, KeyError> {
        let pem = self
            .signer
            .to_sigstore_keypair()
            .and_then(|pair| pair.private_key_to_encrypted_pem(password))
            .map_err(|err| KeyError::Encode(err.to_string()))?;
        Ok(pem.as_str().to_owned())
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key's id.
    pub fn id(&self) -> &KeyId {
        self.public.id()
    }

    /// An ASN.1 DER ECDSA-SHA256 signature over `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.signer
            .sign(message)
            .map_err(|err| KeyError::Sign(err.to_string()))
    }
}

fn algorithm_name(key: &CosignVerificationKey) -> &'static str {
    match key {
        CosignVerificationKey::RSA_PSS_SHA256(_) | CosignVerificationKey::RSA_PKCS1_SHA256(_) => {
            "RSA"
        }
        CosignVerificationKey::ECDSA_P256_SHA256_ASN1(_) => "ECDSA P-256",
        CosignVerificationKey::ECDSA_P384_SHA384_ASN1(_) => "ECDSA P-384",
        CosignVerificationKey::ECDSA_P521_SHA512_ASN1(_) => "ECDSA P-521",
        CosignVerificationKey::ED25519(_) => "Ed25519",
    }
}

/// The contents of the single PEM block labelled `label` in `pem`.
fn pem_contents(pem: &[u8], label: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let text = std::str::from_utf8(pem).map_err(|_| "PEM is not UTF-8 text".to_owned())?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text
        .find(&begin)
        .ok_or_else(|| format!("no `{begin}` line"))?;
    let body_start = start + begin.len();
    let body_len = text[body_start..]
        .find(&end)
        .ok_or_else(|| format!("no `{end}` line"))?;
    let body: String = text[body_start..body_start + body_len]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|err| format!("PEM body is not base64: {err}"))
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_and_its_public_half_verifies() {
        let key = SigningKey::generate().unwrap();
        let sig = key.sign(b"message").unwrap();
        assert!(key.public_key().verify(b"message", &sig));
        assert!(!key.public_key().verify(b"messagE", &sig));
        assert!(!key.public_key().verify(b"message", &sig[..sig.len() - 1]));
        assert!(!key.public_key().verify(b"message", b""));
    }

    #[test]
    fn encrypted_pem_round_trips_and_refuses_the_wrong_password() {
        let key = SigningKey::generate().unwrap();
        let pem = key.to_encrypted_pem(b"correct horse").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
        let back = SigningKey::from_pem(pem.as_bytes(), b"correct horse").unwrap();
        assert_eq!(back.id(), key.id());
        let err = SigningKey::from_pem(pem.as_bytes(), b"wrong").unwrap_err();
        assert!(matches!(err, KeyError::PrivateKey(_)), "{err}");
    }

    #[test]
    fn public_pem_round_trips_and_the_id_is_the_spki_digest() {
        let key = SigningKey::generate().unwrap();
        let pem = key.public_key().to_pem();
        let back = PublicKey::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(&back, key.public_key());
        assert_eq!(back.id().as_str(), Digest::of(back.to_der()).hex());
    }

    #[test]
    fn malformed_public_keys_are_refused() {
        for bad in [
            &b""[..],
            b"not pem",
            b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(PublicKey::from_pem(bad), Err(KeyError::PublicKey(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn keys_of_other_algorithms_are_refused() {
        // An Ed25519 SPKI public key (RFC 8410 example).
        let ed25519 = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        let err = PublicKey::from_pem(ed25519.as_bytes()).unwrap_err();
        assert!(matches!(err, KeyError::UnsupportedAlgorithm(_)), "{err}");
    }
}
