//! `kiln import NAME@VERSION`: has the server fetch a crate from an upstream registry, check it
//! against the upstream checksum, and put it in quarantine like any publish.

use anyhow::{Context as _, Result};
use clap::Args;
use kiln_wire::admin::{ImportRequest, Imported};

use crate::client::{Client, Connection};

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// What to import, as NAME@VERSION.
    #[arg(value_name = "NAME@VERSION")]
    spec: String,
    /// The upstream sparse index (default: crates.io's).
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    #[command(flatten)]
    connection: Connection,
    /// Print the server's answer as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ImportArgs) -> Result<()> {
    let (name, version) = args
        .spec
        .split_once('@')
        .context("give the crate as NAME@VERSION")?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let client = Client::new(&args.connection)?;
        let request = ImportRequest {
            krate: name.to_owned(),
            version: version.to_owned(),
            upstream: args.upstream.clone(),
        };
        let answer: Imported = client.post_json("/api/kiln/v1/imports", &request).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&answer)?);
        } else {
            println!(
                "imported {} from {} ({}); it is queued for audit, build and review",
                answer.subject, answer.origin, answer.checksum,
            );
        }
        Ok(())
    })
}
