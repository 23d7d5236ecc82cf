use crate::Error;
use crate::json::{self, Value};

/// The input of one call: the bytes the notebook cell supplied.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    /// Input made of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The input as UTF-8 text, or an error that says where it stops being UTF-8.
    pub fn text(&self) -> Result<&'a str, Error> {
        std::str::from_utf8(self.bytes).map_err(|err| {
            Error::new(format!(
                "input is not UTF-8 text (invalid byte at offset {})",
                err.valid_up_to()
            ))
        })
    }

    /// The input parsed as JSON by the SDK's own small reader, for kernels without
    /// dependencies ([`json`](crate::json)).
    pub fn json_value(&self) -> Result<Value, Error> {
        Ok(json::parse(self.text()?)?)
    }

    /// The input deserialised from JSON into `T` with `serde_json` (feature `serde`); the error
    /// says where the input stops matching `T`.
    #[cfg(feature = "serde")]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(self.bytes)
            .map_err(|err| Error::new(format!("input does not match: {err}")))
    }
}
