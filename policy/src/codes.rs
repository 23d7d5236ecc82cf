//! Stable codes: what a finding of the audit is ([`FindingCode`]) and why a preflight refuses a
//! cell ([`ReasonCode`]). Each is an enum that serialises as its kebab-case name, so that reports,
//! refusals and the exceptions in a policy file name the same things, and a misspelt code in
//! kiln's own code does not compile.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! stable_codes {
    (
        $(#[$meta:meta])*
        $name:ident $(fallback $fallback:ident)? {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            $(
                /// A code kiln's own checks do not make (a Rego rule's own code).
                $fallback(String),
            )?
        }

        impl $name {
            /// Every code kiln's own checks make.
            pub const KNOWN: &'static [&'static str] = &[$($text),+];

            /// The code's name.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $($name::$fallback(code) => code,)?
                }
            }

            /// The code named `text`, if kiln's own checks make it.
            pub fn known(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Codes order by name, so that reports list findings in a stable, readable order.
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                $name::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

stable_codes! {
    /// What an audit finding is about.
    FindingCode fallback Custom {
        /// The advisory database is older than the policy allows.
        AdvisoryDbStale => "advisory-db-stale",
        /// A locked crate has a vulnerability advisory.
        AdvisoryVulnerability => "advisory-vulnerability",
        /// A locked crate is unmaintained.
        AdvisoryUnmaintained => "advisory-unmaintained",
        /// A locked crate is unsound.
        AdvisoryUnsound => "advisory-unsound",
        /// A locked crate has a notice.
        AdvisoryNotice => "advisory-notice",
        /// A locked crate has another informational advisory.
        AdvisoryInformational => "advisory-informational",
        /// A crate the policy bans.
        Banned => "banned",
        /// A build script.
        BuildScript => "build-script",
        /// A procedural macro.
        BuildProcMacro => "build-proc-macro",
        /// A native library linked (`links`).
        BuildNativeLinks => "build-native-links",
        /// An exception past its date.
        ExceptionExpired => "exception-expired",
        /// An exception that matches no finding.
        ExceptionStale => "exception-stale",
        /// No licence.
        LicenseMissing => "license-missing",
        /// A licence expression that does not parse.
        LicenseInvalid => "license-invalid",
        /// A licence the policy does not allow.
        LicenseDenied => "license-denied",
        /// A dependency from git.
        SourceGit => "source-git",
        /// A dependency from a path.
        SourcePath => "source-path",
        /// A dependency from another registry.
        SourceRegistry => "source-registry",
        /// `[patch]` or `[replace]`.
        SourcePatch => "source-patch",
        /// A name that imitates an approved crate's.
        Typosquat => "typosquat",
        /// A feature of a dependency that no approved feature set covers.
        FeatureUncurated => "feature-uncurated",
        /// The module does not validate.
        WasmInvalid => "wasm-invalid",
        /// A component, not a core module.
        WasmComponent => "wasm-component",
        /// An import the policy does not allow.
        WasmImportDenied => "wasm-import-denied",
        /// A memory maximum over the policy's.
        WasmMemoryMax => "wasm-memory-max",
        /// A memory without a maximum.
        WasmMemoryUnbounded => "wasm-memory-unbounded",
        /// More than one memory.
        WasmMultipleMemories => "wasm-multiple-memories",
        /// A start function.
        WasmStartFunction => "wasm-start-function",
        /// A module larger than the policy allows.
        WasmTooLarge => "wasm-too-large",
        /// A declared entry point without its export.
        AbiEntryMissing => "abi-entry-missing",
        /// An entry export the metadata does not declare.
        AbiEntryUndeclared => "abi-entry-undeclared",
        /// Two metadata sections.
        AbiMetadataDuplicate => "abi-metadata-duplicate",
        /// Metadata that does not parse.
        AbiMetadataInvalid => "abi-metadata-invalid",
        /// No `kiln_alloc` export.
        AbiMissingAlloc => "abi-missing-alloc",
        /// No exported memory.
        AbiMissingMemory => "abi-missing-memory",
        /// No metadata section.
        AbiMissingMetadata => "abi-missing-metadata",
        /// No entry point.
        AbiNoEntry => "abi-no-entry",
        /// An export with the wrong signature.
        AbiSignature => "abi-signature",
        /// Another ABI version.
        AbiVersion => "abi-version",
        /// A Rego rule's finding without a code of its own.
        Rule => "rule",
    }
}

impl FindingCode {
    /// The code named `text`: one of kiln's, or a Rego rule's own.
    pub fn parse(text: &str) -> Result<Self, std::convert::Infallible> {
        Ok(Self::known(text).unwrap_or_else(|| FindingCode::Custom(text.to_owned())))
    }
}

impl From<&str> for FindingCode {
    fn from(text: &str) -> Self {
        Self::known(text).unwrap_or_else(|| FindingCode::Custom(text.to_owned()))
    }
}

stable_codes! {
    /// Why a preflight refuses a cell.
    ReasonCode {
        /// A module is not the one the notebook pins.
        DigestMismatch => "digest-mismatch",
        /// The revocation list is older than the policy allows.
        RevocationListStale => "revocation-list-stale",
        /// No verified revocation list could be had.
        RevocationListUnavailable => "revocation-list-unavailable",
        /// An artifact is revoked.
        Revoked => "revoked",
        /// A required statement is missing or refused.
        MissingStatement => "missing-statement",
        /// The provenance does not name the manifest.
        ManifestUnsigned => "manifest-unsigned",
        /// The cell's entry point is not in the module.
        EntryMissing => "entry-missing",
        /// The module imports something the cell does not grant.
        ImportNotGranted => "import-not-granted",
        /// The cell grants something the policy does not allow.
        GrantNotAllowed => "grant-not-allowed",
        /// A limit over the policy's maximum.
        LimitExceeded => "limit-exceeded",
        /// The version is not approved by the registry now.
        NotApproved => "not-approved",
        /// The kernel's artifacts could not be fetched.
        Unavailable => "unavailable",
        /// The policy does not let code cells run.
        CodeCellsDenied => "code-cells-denied",
        /// A code cell's source does not compile, or its build failed.
        BuildFailed => "build-failed",
        /// A code cell's provenance does not name the cell's source.
        SourceMismatch => "source-mismatch",
        /// A code cell's closure has no passing audit.
        AuditFailed => "audit-failed",
    }
}

impl ReasonCode {
    /// The code named `text`.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::known(text).ok_or_else(|| format!("unknown reason code `{text}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_rule_codes_are_kept() {
        for text in FindingCode::KNOWN {
            let code = FindingCode::from(*text);
            assert_eq!(code.as_str(), *text);
            assert!(!matches!(code, FindingCode::Custom(_)));
        }
        let custom: FindingCode = serde_json::from_str("\"rule-sys\"").unwrap();
        assert_eq!(custom, FindingCode::Custom("rule-sys".into()));
        assert_eq!(serde_json::to_string(&custom).unwrap(), "\"rule-sys\"");
        assert!(serde_json::from_str::<ReasonCode>("\"bogus\"").is_err());
        assert_eq!(ReasonCode::Revoked, "revoked");
    }
}
