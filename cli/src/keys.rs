//! `kiln keys`: generate, import and list keys.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use kiln_policy::{Keyring, SigningKey};

use crate::password;

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate an ECDSA P-256 key pair: PREFIX.key (encrypted, cosign-compatible) and PREFIX.pub.
    Generate {
        /// Where to write the keys, without extension.
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Import a cosign (or unencrypted PKCS#8) P-256 private key as PREFIX.key and PREFIX.pub.
    Import {
        /// The private key to import (password from COSIGN_PASSWORD, or prompted).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Where to write the keys, without extension.
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// List the keys a trust file trusts, with their roles and ids.
    List {
        /// The trust file.
        #[arg(long, value_name = "FILE")]
        trust: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Generate { out, force } => {
            let key = SigningKey::generate()?;
            let password = password::read(password::KILN_KEY_PASSWORD, "the new key", true)?;
            write_pair(&key, &password, &out, force)
        }
        KeysCommand::Import { key, out, force } => {
            let pem = std::fs::read(&key).with_context(|| format!("reading {}", key.display()))?;
            let source_password =
                password::read(password::COSIGN_PASSWORD, &key.display().to_string(), false)?;
            let imported = SigningKey::from_pem(&pem, &source_password)
                .with_context(|| format!("importing {}", key.display()))?;
            let password = password::read(password::KILN_KEY_PASSWORD, "the imported key", true)?;
            write_pair(&imported, &password, &out, force)
        }
        KeysCommand::List { trust, json } => list(&trust, json),
    }
}

fn with_extension(prefix: &Path, extension: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(".");
    name.push(extension);
    PathBuf::from(name)
}

fn write_pair(key: &SigningKey, password: &[u8], prefix: &Path, force: bool) -> Result<()> {
    let private_path = with_extension(prefix, "key");
    let public_path = with_extension(prefix, "pub");
    if !force {
        for path in [&private_path, &public_path] {
            if path.exists() {
                bail!("{} exists; pass --force to replace it", path.display());
            }
        }
    }
    let private_pem = key.to_encrypted_pem(password)?;
    write_private(&private_path, private_pem.as_bytes())?;
    std::fs::write(&public_path, key.public_key().to_pem())
        .with_context(|| format!("writing {}", public_path.display()))?;
    println!("private key: {}", private_path.display());
    println!("public key:  {}", public_path.display());
    println!("key id:      {}", key.id());
    Ok(())
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))
}

fn list(trust: &Path, json: bool) -> Result<()> {
    let keyring = Keyring::load(trust)?;
    if json {
        let keys: Vec<serde_json::Value> = keyring
            .keys()
            .into_iter()
            .map(|k| {
                serde_json::json!({
                    "name": k.name,
                    "roles": k.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                    "id": k.key.id().as_str(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&keys)?);
        return Ok(());
    }
    let rows: Vec<[String; 3]> = keyring
        .keys()
        .into_iter()
        .map(|k| {
            let roles: Vec<&str> = k.roles.iter().map(|r| r.as_str()).collect();
            [k.name.clone(), roles.join(","), k.key.id().to_string()]
        })
        .collect();
    print_table(["NAME", "ROLES", "KEY ID"], &rows);
    Ok(())
}

/// Prints rows under a header, columns padded to their widest cell.
fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header);
    for row in rows {
        line(row.each_ref().map(String::as_str));
    }
}
