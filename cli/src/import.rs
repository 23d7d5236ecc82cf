//! `kiln import NAME@VERSION`: has the server fetch a crate from an upstream registry, check it
//! against the upstream checksum, and put it in quarantine like any publish.

use anyhow::{Context as _, Result};
use clap::Args;

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
        let mut body = serde_json::json!({"crate": name, "version": version});
        if let Some(upstream) = &args.upstream {
            body["upstream"] = upstream.clone().into();
        }
        let answer: serde_json::Value = client.post_json("/api/kiln/v1/imports", &body).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&answer)?);
        } else {
            println!(
                "imported {} from {} ({}); it is queued for audit, build and review",
                answer["subject"].as_str().unwrap_or(&args.spec),
                answer["origin"].as_str().unwrap_or("upstream"),
                answer["checksum"].as_str().unwrap_or("?"),
            );
        }
        Ok(())
    })
}
