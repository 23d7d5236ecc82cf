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
    /// Rotate one of a kiln server's keys: a new key for ROLE, trusted in DATA/trust.toml, and
    /// the old one moved to DATA/keys/retired/ and kept trusted with its retirement date (what
    /// it signed stays valid). Run it with the server stopped; the server signs with the new key
    /// from its next start. Give executors the new trust file.
    Rotate {
        /// The key to rotate: builder, reviewer or revocation.
        #[arg(long, value_parser = ["builder", "reviewer", "revocation"])]
        role: String,
        /// The server's data directory.
        #[arg(long, value_name = "DIR", default_value = "./kiln-data")]
        data: PathBuf,
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
        KeysCommand::Rotate { role, data } => {
            let role = kiln_policy::Role::ALL
                .into_iter()
                .find(|r| r.as_str() == role)
                .expect("clap allows only the three roles");
            rotate(role, &data)
        }
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
                    "retired": k.retired,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&keys)?);
        return Ok(());
    }
    let rows: Vec<[String; 4]> = keyring
        .keys()
        .into_iter()
        .map(|k| {
            let roles: Vec<&str> = k.roles.iter().map(|r| r.as_str()).collect();
            [
                k.name.clone(),
                roles.join(","),
                k.key.id().to_string(),
                k.retired.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(["NAME", "ROLES", "KEY ID", "RETIRED"], &rows);
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

/// Today as `YYYY-MM-DD` (UTC).
fn today() -> String {
    humantime::format_rfc3339(std::time::SystemTime::now()).to_string()[..10].to_owned()
}

fn rotate(role: kiln_policy::Role, data: &Path) -> Result<()> {
    let keys = data.join("keys");
    let trust_path = data.join("trust.toml");
    let current_pub = keys.join(format!("{role}.pub"));
    let old =
        kiln_policy::PublicKey::from_pem(&std::fs::read(&current_pub).with_context(|| {
            format!(
                "reading {} (is DATA a kiln server's?)",
                current_pub.display()
            )
        })?)?;
    let text = std::fs::read_to_string(&trust_path)
        .with_context(|| format!("reading {}", trust_path.display()))?;
    let mut trust: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}", trust_path.display()))?;
    let date = today();
    let stem = format!("{role}-{date}-{}", &old.id().as_str()[..12]);
    let retired_dir = keys.join("retired");
    std::fs::create_dir_all(&retired_dir)?;
    for extension in ["key", "pub"] {
        let from = keys.join(format!("{role}.{extension}"));
        let to = retired_dir.join(format!("{stem}.{extension}"));
        std::fs::rename(&from, &to)
            .with_context(|| format!("moving {} to {}", from.display(), to.display()))?;
    }
    let new = SigningKey::generate()?;
    let password = password::read(password::KILN_KEY_PASSWORD, "the new key", true)?;
    write_private(
        &keys.join(format!("{role}.key")),
        new.to_encrypted_pem(&password)?.as_bytes(),
    )?;
    std::fs::write(&current_pub, new.public_key().to_pem())
        .with_context(|| format!("writing {}", current_pub.display()))?;

    // The old entry now names the retired file and carries the date; the new key joins.
    let entries = trust
        .entry("key")
        .or_insert_with(|| toml::Value::Array(Vec::new()))
        .as_array_mut()
        .context("trust.toml: `key` is not an array of tables")?;
    let current = format!("keys/{role}.pub");
    for entry in entries.iter_mut().filter_map(toml::Value::as_table_mut) {
        if entry.get("public_key").and_then(toml::Value::as_str) == Some(current.as_str()) {
            entry.insert(
                "public_key".into(),
                toml::Value::String(format!("keys/retired/{stem}.pub")),
            );
            entry.insert("retired".into(), toml::Value::String(date.clone()));
            let name = entry
                .get("name")
                .and_then(toml::Value::as_str)
                .unwrap_or("kiln")
                .to_owned();
            entry.insert(
                "name".into(),
                toml::Value::String(format!("{name} (retired {date})")),
            );
        }
    }
    let mut fresh = toml::Table::new();
    fresh.insert("name".into(), toml::Value::String(format!("kiln {role}")));
    fresh.insert(
        "roles".into(),
        toml::Value::Array(vec![toml::Value::String(role.as_str().to_owned())]),
    );
    fresh.insert("public_key".into(), toml::Value::String(current));
    entries.push(toml::Value::Table(fresh));
    let written = format!(
        "# kiln's trust file: the server's keys by role; retired keys stay trusted for what they\n\
         # signed (see policies/trust.example.toml).\n\n{}",
        toml::to_string(&trust)?
    );
    // Check the result loads before it replaces the file.
    Keyring::from_toml(&written, &trust_path)?;
    std::fs::write(&trust_path, written)
        .with_context(|| format!("writing {}", trust_path.display()))?;
    println!("new {role} key:     {}", new.id());
    println!(
        "retired {role} key: {} (keys/retired/{stem}.key, still trusted)",
        old.id()
    );
    println!(
        "restart kiln serve to sign with the new key, and give executors the new {}",
        trust_path.display()
    );
    Ok(())
}
