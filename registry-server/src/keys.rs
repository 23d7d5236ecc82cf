//! The server's signing keys, made on first start: a builder, a reviewer and a revocation key in
//! `DATA/keys/` (cosign-compatible encrypted PEM, password from `KILN_KEY_PASSWORD`, empty when
//! unset), and `DATA/trust.toml` trusting each for its role.

use std::path::{Path, PathBuf};

use kiln_policy::{Role, SigningKey};

/// The server's keys.
#[derive(Debug)]
pub struct ServerKeys {
    /// Signs what the in-process workers produce (audit statements, provenance).
    pub builder: std::sync::Arc<SigningKey>,
    /// Signs review statements when an approval does not bring its own.
    pub reviewer: std::sync::Arc<SigningKey>,
    /// Signs the revocation list.
    pub revocation: SigningKey,
    /// The trust file listing the public keys.
    pub trust_file: PathBuf,
}

/// Why the keys could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// File access.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key is missing, and this replica may not make one: its database's deployment already
    /// has keys.
    #[error(
        "no signing key at {path}, and this database's deployment already has its keys (recorded \
         by the replica that first started on it): copy that replica's keys/ directory and \
         trust.toml into this data directory (docs/registry.md, \"Replicas\")"
    )]
    Missing {
        /// The key file looked for.
        path: PathBuf,
    },
    /// This replica's key for a role is not the deployment's.
    #[error(
        "this replica's {role} key {ours} is not the deployment's {deployment}: every replica \
         must sign with the same keys; copy the keys/ directory and trust.toml of a replica that \
         has them into this data directory (docs/registry.md, \"Replicas\")"
    )]
    Differ {
        /// The role.
        role: Role,
        /// This replica's key id.
        ours: String,
        /// The deployment's recorded key id.
        deployment: String,
    },
    /// A key could not be made or read.
    #[error("{path}: {source}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        source: kiln_policy::KeyError,
    },
}

/// The password of the server's keys.
fn password() -> Vec<u8> {
    std::env::var_os("KILN_KEY_PASSWORD").map_or_else(Vec::new, |p| p.into_encoded_bytes())
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeysError + '_ {
    move |source| KeysError::Io {
        path: path.to_owned(),
        source,
    }
}

impl ServerKeys {
    /// The key of `role`.
    pub fn signing_key(&self, role: Role) -> &SigningKey {
        match role {
            Role::Builder => &self.builder,
            Role::Reviewer => &self.reviewer,
            Role::Revocation => &self.revocation,
        }
    }
}

/// Loads the keys in `DATA/keys/`, creating any that are missing (and the trust file with them)
/// when `create`; otherwise a missing key is an error ([`KeysError::Missing`]).
pub fn load_or_create(data_dir: &Path, create: bool) -> Result<ServerKeys, KeysError> {
    let dir = data_dir.join("keys");
    std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    let password = password();
    let mut revocation = None;
    let mut builder = None;
    let mut reviewer = None;
    let mut created = false;
    for role in Role::ALL {
        let path = dir.join(format!("{role}.key"));
        let key = if path.exists() {
            let pem = std::fs::read(&path).map_err(io_error(&path))?;
            SigningKey::from_pem(&pem, &password).map_err(|source| KeysError::Key {
                path: path.clone(),
                source,
            })?
        } else if !create {
            return Err(KeysError::Missing { path });
        } else {
            let key = SigningKey::generate().map_err(|source| KeysError::Key {
                path: path.clone(),
                source,
            })?;
            let pem = key
                .to_encrypted_pem(&password)
                .map_err(|source| KeysError::Key {
                    path: path.clone(),
                    source,
                })?;
            crate::write_secret(&path, &pem).map_err(io_error(&path))?;
            let public = dir.join(format!("{role}.pub"));
            std::fs::write(&public, key.public_key().to_pem()).map_err(io_error(&public))?;
            created = true;
            tracing::info!(path = %path.display(), %role, "created a signing key");
            key
        };
        match role {
            Role::Revocation => revocation = Some(key),
            Role::Builder => builder = Some(key),
            Role::Reviewer => reviewer = Some(key),
        }
    }
    let trust_file = data_dir.join("trust.toml");
    if created || !trust_file.exists() {
        let mut text = String::from(
            "# Written by kiln serve on first start: the server's own keys, each for its role.\n",
        );
        for role in Role::ALL {
            text.push_str(&format!("\n[[key]]\nname = \"kiln {role}\"\nroles = [\"{role}\"]\npublic_key = \"keys/{role}.pub\"\n"));
        }
        std::fs::write(&trust_file, text).map_err(io_error(&trust_file))?;
    }
    Ok(ServerKeys {
        builder: std::sync::Arc::new(builder.expect("Role::ALL has the builder role")),
        reviewer: std::sync::Arc::new(reviewer.expect("Role::ALL has the reviewer role")),
        revocation: revocation.expect("Role::ALL has the revocation role"),
        trust_file,
    })
}
