//! `kiln review diff NAME@VERSION [--against V]`: the source diff against the last approved
//! version (or, for a first version, every file), with new dependencies, new wasm imports, a new
//! or changed build script and added `unsafe` called out first. The registry computes it
//! (`GET …/diff`), so the CLI and the web app show the same.

use anyhow::Result;
use clap::Args;
use kiln_wire::diff::SourceDiff;

use super::split_target;
use crate::client::{Client, Connection};
use crate::style::Style;

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The version to review, as NAME@VERSION.
    #[arg(value_name = "NAME@VERSION")]
    target: String,
    /// The version to compare with (default: the newest approved version before it; a first
    /// version is shown whole).
    #[arg(long, value_name = "VERSION")]
    against: Option<String>,
    #[command(flatten)]
    connection: Connection,
}

pub(crate) async fn diff(args: DiffArgs) -> Result<()> {
    let (name, version) = split_target(&args.target)?;
    let client = Client::new(&args.connection)?;
    let mut path = format!("/api/kiln/v1/submissions/{name}/{version}/diff");
    if let Some(against) = &args.against {
        path.push_str(&format!("?against={against}"));
    }
    let diff: SourceDiff = client.get_json(&path).await?;
    let style = Style::detect();
    let from = diff.against.as_deref().unwrap_or("nothing");
    println!("{}", style.bold(&format!("{name}: {from} -> {version}")));
    if diff.notes.is_empty() {
        println!("no new dependencies, imports, build script changes or `unsafe`");
    }
    for note in &diff.notes {
        println!("{}", style.warn(&format!("! {note}")));
    }
    for file in &diff.files {
        println!();
        for line in file.unified.lines() {
            println!("{}", style.diff_line(line));
        }
    }
    Ok(())
}
