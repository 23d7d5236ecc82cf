//! The `[[exceptions]]` of a policy file.

use serde::Deserialize;
use toml::Spanned;

use crate::config::{At, PolicyError, valid_date};
use crate::findings::FindingCode;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawException {
    code: String,
    #[serde(rename = "crate")]
    krate: String,
    reason: Spanned<String>,
    until: Spanned<String>,
}

/// An accepted exception to a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    /// The finding code.
    pub code: FindingCode,
    /// The crate (`NAME` or `NAME@VERSION`).
    pub krate: String,
    /// Why it is accepted.
    pub reason: String,
    /// The last day it applies (YYYY-MM-DD).
    pub until: String,
}

impl RawException {
    /// Requires a reason and a real date.
    pub(crate) fn validate(self, at: &At<'_>) -> Result<Exception, PolicyError> {
        if self.reason.get_ref().trim().is_empty() {
            return Err(at(self.reason.span(), "an exception needs a reason".into()));
        }
        if !valid_date(self.until.get_ref()) {
            return Err(at(
                self.until.span(),
                format!("`{}` is not a date (YYYY-MM-DD)", self.until.get_ref()),
            ));
        }
        Ok(Exception {
            code: FindingCode::from(self.code.as_str()),
            krate: self.krate,
            reason: self.reason.into_inner(),
            until: self.until.into_inner(),
        })
    }
}
