//! The keyring: the public keys a verifier trusts, each for the roles it may sign in.
//!
//! A keyring is read from a trust file (TOML; `policies/trust.example.toml` documents it). The
//! file is parsed into raw types that reject unknown keys, then validated: every key parses, is
//! P-256, has at least one role, matches the id written beside it, and appears once.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::keys::{KeyError, KeyId, PublicKey};

/// What a trusted key may sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Signs provenance and audit statements for what kiln built.
    Builder,
    /// Signs review decisions.
    Reviewer,
    /// Signs the revocation list.
    Revocation,
}

impl Role {
    /// Every role, in a stable order.
    pub const ALL: [Role; 3] = [Role::Builder, Role::Reviewer, Role::Revocation];

    /// The role's name as written in trust files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Builder => "builder",
            Role::Reviewer => "reviewer",
            Role::Revocation => "revocation",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key the verifier trusts, with a name for people and the roles it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// A label for people (`kiln builder`, `alice`).
    pub name: String,
    /// What the key may sign.
    pub roles: BTreeSet<Role>,
    /// The key.
    pub key: PublicKey,
    /// When the key was retired (`YYYY-MM-DD`), if it was: kiln no longer signs with it, and
    /// it stays trusted for what it signed before (a bundle carries no trusted time, so a
    /// retired key cannot be told from a current one by date; remove it, and revoke what it
    /// signed, if it was compromised).
    pub retired: Option<String>,
}

impl TrustedKey {
    /// True when the key holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Why a trust file could not become a keyring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustFileError {
    /// The file, or a key file it names, could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown or missing keys.
    #[error("{path}: {message}")]
    Parse {
        /// The trust file.
        path: PathBuf,
        /// The parser's message, with the line and column.
        message: String,
    },
    /// A key entry is wrong.
    #[error("{path}: key `{name}`: {problem}")]
    Key {
        /// The trust file.
        path: PathBuf,
        /// The entry's name.
        name: String,
        /// What is wrong with it.
        problem: KeyEntryProblem,
    },
}

/// What is wrong with one key entry of a trust file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyEntryProblem {
    /// Neither `public_key` nor `pem` is given.
    #[error("give the key as `public_key = \"PATH\"` or `pem = \"...\"`")]
    NoKey,
    /// Both `public_key` and `pem` are given.
    #[error("give `public_key` or `pem`, not both")]
    TwoKeys,
    /// `roles` is empty.
    #[error("`roles` is empty; give at least one of builder, reviewer, revocation")]
    NoRoles,
    /// The key itself is unreadable or not P-256.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The `id` written in the file is not the key's id.
    #[error("`id` says {stated} but the key's id is {actual}")]
    IdMismatch {
        /// What the file says.
        stated: String,
        /// What the key hashes to.
        actual: KeyId,
    },
    /// The same key appears twice (give one entry several roles instead).
    #[error("the same key is already trusted as `{0}`")]
    Duplicate(String),
}

/// The trust file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrustFile {
    #[serde(default, rename = "key")]
    keys: Vec<RawKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    name: String,
    roles: BTreeSet<Role>,
    #[serde(default)]
    public_key: Option<PathBuf>,
    #[serde(default)]
    pem: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    retired: Option<String>,
}

/// The keys a verifier trusts, found by key id. Verification looks keys up here and nowhere else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyring {
    keys: HashMap<String, TrustedKey>,
}

impl Keyring {
    /// An empty keyring, which trusts nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `key` for `roles`. Returns the name it is already trusted under, if it is.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        key: PublicKey,
        roles: impl IntoIterator<Item = Role>,
    ) -> Result<(), KeyEntryProblem> {
        let roles: BTreeSet<Role> = roles.into_iter().collect();
        if roles.is_empty() {
            return Err(KeyEntryProblem::NoRoles);
        }
        let id = key.id().as_str().to_owned();
        if let Some(existing) = self.keys.get(&id) {
            return Err(KeyEntryProblem::Duplicate(existing.name.clone()));
        }
        self.keys.insert(
            id,
            TrustedKey {
                name: name.into(),
                roles,
                key,
                retired: None,
            },
        );
        Ok(())
    }

    /// The trusted key whose id is `hint`.
    pub fn get(&self, hint: &str) -> Option<&TrustedKey> {
        self.keys.get(hint)
    }

    /// Every trusted key, ordered by name then id.
    pub fn keys(&self) -> Vec<&TrustedKey> {
        let mut keys: Vec<&TrustedKey> = self.keys.values().collect();
        keys.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.key.id().cmp(b.key.id())));
        keys
    }

    /// How many keys are trusted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Reads a trust file. Key paths in it are relative to the file's directory.
    pub fn load(path: &Path) -> Result<Self, TrustFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TrustFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses trust-file text; `path` names the file in errors and anchors relative key paths.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, TrustFileError> {
        let raw: RawTrustFile = toml::from_str(text).map_err(|err| TrustFileError::Parse {
            path: path.to_owned(),
            message: crate::toml_error::one_line(text, &err),
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let mut keyring = Keyring::new();
        for entry in raw.keys {
            let key_error = |problem| TrustFileError::Key {
                path: path.to_owned(),
                name: entry.name.clone(),
                problem,
            };
            let pem = match (&entry.public_key, &entry.pem) {
                (None, None) => return Err(key_error(KeyEntryProblem::NoKey)),
                (Some(_), Some(_)) => return Err(key_error(KeyEntryProblem::TwoKeys)),
                (None, Some(pem)) => pem.clone(),
                (Some(key_path), None) => {
                    let key_path = base.join(key_path);
                    std::fs::read_to_string(&key_path).map_err(|source| TrustFileError::Read {
                        path: key_path,
                        source,
                    })?
                }
            };
            let key = PublicKey::from_pem(pem.as_bytes())
                .map_err(|err| key_error(KeyEntryProblem::Key(err)))?;
            if let Some(stated) = &entry.id
                && stated != key.id().as_str()
            {
                return Err(key_error(KeyEntryProblem::IdMismatch {
                    stated: stated.clone(),
                    actual: key.id().clone(),
                }));
            }
            let id = key.id().as_str().to_owned();
            keyring
                .add(entry.name.clone(), key, entry.roles.iter().copied())
                .map_err(key_error)?;
            if let Some(trusted) = keyring.keys.get_mut(&id) {
                trusted.retired = entry.retired.clone();
            }
        }
        Ok(keyring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;

    fn pem_of(key: &SigningKey) -> String {
        key.public_key().to_pem()
    }

    #[test]
    fn a_trust_file_with_inline_and_file_keys_loads() {
        let dir = tempfile::tempdir().unwrap();
        let builder = SigningKey::generate().unwrap();
        let reviewer = SigningKey::generate().unwrap();
        std::fs::write(dir.path().join("builder.pub"), pem_of(&builder)).unwrap();
        let text = format!(
            "[[key]]\nname = \"builder\"\nroles = [\"builder\"]\npublic_key = \"builder.pub\"\nid = \"{}\"\n\n\
             [[key]]\nname = \"alice\"\nroles = [\"reviewer\", \"revocation\"]\npem = \"\"\"\n{}\"\"\"\n",
            builder.id(),
            pem_of(&reviewer)
        );
        let path = dir.path().join("trust.toml");
        std::fs::write(&path, text).unwrap();
        let keyring = Keyring::load(&path).unwrap();
        assert_eq!(keyring.len(), 2);
        let b = keyring.get(builder.id().as_str()).unwrap();
        assert!(b.has_role(Role::Builder) && !b.has_role(Role::Reviewer));
        let r = keyring.get(reviewer.id().as_str()).unwrap();
        assert_eq!(r.name, "alice");
        assert!(r.has_role(Role::Reviewer) && r.has_role(Role::Revocation));
        assert!(keyring.get("00").is_none());
    }

    fn load_err(text: &str) -> TrustFileError {
        Keyring::from_toml(text, Path::new("/nowhere/trust.toml")).unwrap_err()
    }

    #[test]
    fn malformed_trust_files_say_what_is_wrong() {
        let key = SigningKey::generate().unwrap();
        let pem = pem_of(&key);

        let err = load_err("[[key]]\nname = \"a\"\nroles = [\"builder\"]\nkey_file = \"x\"\n");
        assert!(
            err.to_string().contains("unknown field `key_file`"),
            "{err}"
        );

        let err = load_err("[[key]]\nname = \"a\"\nroles = [\"admin\"]\npem = \"x\"\n");
        assert!(err.to_string().contains("unknown variant `admin`"), "{err}");

        let err = load_err("[[key]]\nname = \"a\"\nroles = [\"builder\"]\n");
        assert!(
            matches!(
                err,
                TrustFileError::Key {
                    problem: KeyEntryProblem::NoKey,
                    ..
                }
            ),
            "{err}"
        );

        let err = load_err(&format!(
            "[[key]]\nname = \"a\"\nroles = []\npem = \"\"\"{pem}\"\"\"\n"
        ));
        assert!(
            matches!(
                err,
                TrustFileError::Key {
                    problem: KeyEntryProblem::NoRoles,
                    ..
                }
            ),
            "{err}"
        );

        let err = load_err(&format!(
            "[[key]]\nname = \"a\"\nroles = [\"builder\"]\npem = \"\"\"{pem}\"\"\"\nid = \"abc\"\n"
        ));
        assert!(
            matches!(
                err,
                TrustFileError::Key {
                    problem: KeyEntryProblem::IdMismatch { .. },
                    ..
                }
            ),
            "{err}"
        );

        let err = load_err(&format!(
            "[[key]]\nname = \"a\"\nroles = [\"builder\"]\npem = \"\"\"{pem}\"\"\"\n\
             [[key]]\nname = \"b\"\nroles = [\"reviewer\"]\npem = \"\"\"{pem}\"\"\"\n"
        ));
        assert!(err.to_string().contains("already trusted as `a`"), "{err}");

        let err = load_err("[[key]]\nname = \"a\"\nroles = [\"builder\"]\npem = \"garbage\"\n");
        assert!(
            matches!(
                err,
                TrustFileError::Key {
                    problem: KeyEntryProblem::Key(KeyError::PublicKey(_)),
                    ..
                }
            ),
            "{err}"
        );

        let err = load_err(
            "[[key]]\nname = \"a\"\nroles = [\"builder\"]\npublic_key = \"missing.pub\"\n",
        );
        assert!(matches!(err, TrustFileError::Read { .. }), "{err}");
        assert!(err.to_string().contains("/nowhere/missing.pub"), "{err}");

        let err = load_err("this is = not toml [");
        assert!(matches!(err, TrustFileError::Parse { .. }), "{err}");
    }

    #[test]
    fn the_shipped_example_trust_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/trust.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        // The example names key files that a deployment creates; the structure is what is
        // checked here, with the key files swapped for a real key.
        let dir = tempfile::tempdir().unwrap();
        for name in ["builder.pub", "reviewer.pub", "revocation.pub"] {
            let fresh = SigningKey::generate().unwrap();
            std::fs::create_dir_all(dir.path().join("keys")).unwrap();
            std::fs::write(dir.path().join("keys").join(name), pem_of(&fresh)).unwrap();
        }
        let keyring = Keyring::from_toml(&text, &dir.path().join("trust.toml")).unwrap();
        assert_eq!(keyring.len(), 3);
        for role in Role::ALL {
            assert!(keyring.keys().iter().any(|k| k.has_role(role)), "{role}");
        }
    }
}
