//! `kiln review export-vet`: the approvals as a cargo-vet `audits.toml`, as the registry serves
//! them at `/vet/audits.toml` (what other projects list under `[imports]`).

use anyhow::Result;
use clap::Args;

use crate::client::{Client, Connection};

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    connection: Connection,
}

pub(crate) async fn export_vet(args: ExportArgs) -> Result<()> {
    let client = Client::new(&args.connection)?;
    let audits = client.get_bytes("/vet/audits.toml").await?;
    print!("{}", String::from_utf8_lossy(&audits));
    Ok(())
}
