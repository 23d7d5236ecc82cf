//! SHA-256 content digests, the names of everything kiln stores and signs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// The prefix of a digest's text form.
const PREFIX: &str = "sha256:";

/// A SHA-256 digest. Its text form is `sha256:` followed by 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The text does not start with `sha256:`.
    #[error("digest must start with `sha256:`")]
    MissingPrefix,
    /// The hex part is not exactly 64 characters.
    #[error("digest must have 64 hex digits after `sha256:`, found {0}")]
    WrongLength(usize),
    /// The hex part has a character outside `0-9a-f`.
    #[error("digest must be lowercase hex (0-9, a-f)")]
    NotLowercaseHex,
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// A digest from its 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex digits, without the `sha256:` prefix (the form in-toto subjects use).
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the bare 64-digit lowercase hex form.
    pub fn from_hex(hex_digits: &str) -> Result<Self, DigestError> {
        if hex_digits.len() != 64 {
            return Err(DigestError::WrongLength(hex_digits.len()));
        }
        if !hex_digits
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::NotLowercaseHex);
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_digits, &mut bytes).map_err(|_| DigestError::NotLowercaseHex)?;
        Ok(Self(bytes))
    }

    /// Writes the text form into a buffer on the stack and hands it to `f`: formatting and
    /// serialising a digest (every record and answer holds several) allocates nothing.
    fn with_text<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let mut text = [0u8; PREFIX.len() + 64];
        text[..PREFIX.len()].copy_from_slice(PREFIX.as_bytes());
        hex::encode_to_slice(self.0, &mut text[PREFIX.len()..])
            .expect("64 hex digits fit the buffer");
        f(std::str::from_utf8(&text).expect("a prefix and hex digits are ASCII"))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_text(|text| f.write_str(text))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex_digits = s.strip_prefix(PREFIX).ok_or(DigestError::MissingPrefix)?;
        Self::from_hex(hex_digits)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.with_text(|text| serializer.serialize_str(text))
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Parses the text where the deserializer holds it: no allocation per digest.
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a digest (`sha256:` and 64 lowercase hex digits)")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Digest, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_of_empty_input_matches_the_known_value() {
        assert_eq!(Digest::of(b"").to_string(), EMPTY);
    }

    #[test]
    fn text_form_round_trips() {
        let digest: Digest = EMPTY.parse().unwrap();
        assert_eq!(digest, Digest::of(b""));
        let json = serde_json::to_string(&digest).unwrap();
        assert_eq!(json, format!("\"{EMPTY}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), digest);
    }

    #[test]
    fn parsing_is_strict() {
        let hex = &EMPTY[7..];
        assert_eq!(hex.parse::<Digest>(), Err(DigestError::MissingPrefix));
        assert_eq!(
            format!("sha512:{hex}").parse::<Digest>(),
            Err(DigestError::MissingPrefix)
        );
        assert_eq!(
            format!("sha256:{}", &hex[1..]).parse::<Digest>(),
            Err(DigestError::WrongLength(63))
        );
        assert_eq!(
            format!("sha256:{hex}0").parse::<Digest>(),
            Err(DigestError::WrongLength(65))
        );
        assert_eq!(
            format!("sha256:{}", hex.to_uppercase()).parse::<Digest>(),
            Err(DigestError::NotLowercaseHex)
        );
        assert_eq!(
            format!("sha256:{}g", &hex[1..]).parse::<Digest>(),
            Err(DigestError::NotLowercaseHex)
        );
        assert_eq!(
            format!("sha256: {}", &hex[1..]).parse::<Digest>(),
            Err(DigestError::NotLowercaseHex)
        );
        // A multi-byte character must not be sliced or accepted.
        let with_unicode = format!("sha256:{}é", &hex[2..]);
        assert!(with_unicode.parse::<Digest>().is_err());
    }
}
