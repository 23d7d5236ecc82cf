//! `kiln attest`: sign statements into bundles and verify bundles.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::{Subcommand, ValueEnum};
use kiln_policy::{
    Digest, Expectation, Keyring, PublicKey, Role, SigningKey, Statement, StatementKind, Verifier,
    sign_statement,
};

use crate::password;

#[derive(Debug, Subcommand)]
pub(crate) enum AttestCommand {
    /// Sign an in-toto statement (JSON) into a Sigstore bundle.
    Sign {
        /// The private key (PREFIX.key from `kiln keys generate`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The in-toto Statement v1 to sign.
        #[arg(long, value_name = "FILE")]
        statement: PathBuf,
        /// Where to write the bundle.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Verify a Sigstore bundle against a trusted key or a trust file.
    Verify {
        /// The bundle.
        #[arg(long, value_name = "FILE")]
        bundle: PathBuf,
        /// Trust exactly this public key (for any kind of statement).
        #[arg(
            long,
            value_name = "PUB.pem",
            conflicts_with = "trust",
            required_unless_present = "trust"
        )]
        key: Option<PathBuf>,
        /// Trust the keys of this trust file, each for its roles.
        #[arg(long, value_name = "FILE")]
        trust: Option<PathBuf>,
        /// Require a subject whose SHA-256 is this file's.
        #[arg(long, value_name = "FILE")]
        artifact: Option<PathBuf>,
        /// Require this kind of statement.
        #[arg(long, value_enum)]
        kind: Option<Kind>,
        /// Print the verified statement as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The statement kinds, as named on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Kind {
    Provenance,
    Audit,
    Review,
    Revocation,
}

impl From<Kind> for StatementKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Provenance => StatementKind::Provenance,
            Kind::Audit => StatementKind::Audit,
            Kind::Review => StatementKind::Review,
            Kind::Revocation => StatementKind::Revocation,
        }
    }
}

pub(crate) fn run(command: AttestCommand) -> Result<()> {
    match command {
        AttestCommand::Sign {
            key,
            statement,
            out,
        } => sign(key, statement, out),
        AttestCommand::Verify {
            bundle,
            key,
            trust,
            artifact,
            kind,
            json,
        } => verify(bundle, key, trust, artifact, kind, json),
    }
}

fn sign(key_path: PathBuf, statement_path: PathBuf, out: PathBuf) -> Result<()> {
    let text = std::fs::read(&statement_path)
        .with_context(|| format!("reading {}", statement_path.display()))?;
    let statement: Statement = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not an in-toto statement", statement_path.display()))?;
    let pem =
        std::fs::read(&key_path).with_context(|| format!("reading {}", key_path.display()))?;
    let password = password::read(
        password::KILN_KEY_PASSWORD,
        &key_path.display().to_string(),
        false,
    )?;
    let key = SigningKey::from_pem(&pem, &password)
        .with_context(|| format!("reading {}", key_path.display()))?;
    let bundle = sign_statement(&key, &statement)?;
    std::fs::write(&out, bundle.to_json()).with_context(|| format!("writing {}", out.display()))?;
    println!("signed {} with key {}", statement.predicate_type, key.id());
    Ok(())
}

fn verify(
    bundle_path: PathBuf,
    key: Option<PathBuf>,
    trust: Option<PathBuf>,
    artifact: Option<PathBuf>,
    kind: Option<Kind>,
    json: bool,
) -> Result<()> {
    let keyring = match (key, trust) {
        (Some(key_path), None) => {
            let pem = std::fs::read(&key_path)
                .with_context(|| format!("reading {}", key_path.display()))?;
            let public = PublicKey::from_pem(&pem)
                .with_context(|| format!("reading {}", key_path.display()))?;
            let mut keyring = Keyring::new();
            keyring
                .add(key_path.display().to_string(), public, Role::ALL)
                .expect("an empty keyring takes any key");
            keyring
        }
        (None, Some(trust)) => Keyring::load(&trust)?,
        _ => bail!("give --key or --trust"),
    };
    let subject = match &artifact {
        Some(path) => Some(Digest::of(
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )),
        None => None,
    };
    let bytes = std::fs::read(&bundle_path)
        .with_context(|| format!("reading {}", bundle_path.display()))?;
    let expect = Expectation {
        kind: kind.map(Into::into),
        subject,
    };
    let verified = Verifier::new(&keyring)
        .verify_json(&bytes, expect)
        .map_err(|err| {
            anyhow::anyhow!(
                "{} not verified [{}]: {err}",
                bundle_path.display(),
                err.code()
            )
        })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&verified.statement)?);
        return Ok(());
    }
    println!(
        "verified: {} statement signed by {} ({})",
        verified.kind, verified.key_name, verified.key_id
    );
    for subject in &verified.statement.subject {
        let digest = subject
            .sha256()
            .map_or_else(|| "(no sha256)".to_owned(), |d| d.to_string());
        println!("  subject {} {digest}", subject.name);
    }
    Ok(())
}
