//! `kiln import NAME@VERSION|NAME@REQ`: has the server resolve the crate's closure against an
//! upstream registry (crates.io by default) as a dependent's build for the kernel target sees
//! it, and import every member not here yet (byte for byte, checked against the upstream
//! checksum, into quarantine, all or nothing). Prints the closure: what was added, what was here.

use anyhow::{Result, bail};
use clap::Args;
use kiln_wire::admin::{ClosureMember, ImportPlan, ImportRequest, MemberStatus};

use crate::client::{Client, Connection};
use crate::review::print_table;
use crate::style::Style;

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// What to import: NAME@VERSION, or NAME@REQ (`serde_json@1`) for the newest upstream version
    /// that matches.
    #[arg(value_name = "NAME@VERSION|NAME@REQ")]
    spec: String,
    /// Features a dependent turns on, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "FEATURES")]
    features: Vec<String>,
    /// The dependent turns the default features off.
    #[arg(long)]
    no_default_features: bool,
    /// Resolve and print the closure; import nothing.
    #[arg(long)]
    dry_run: bool,
    /// The upstream sparse index (default: crates.io's).
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    #[command(flatten)]
    connection: Connection,
    /// Print the server's answer as JSON.
    #[arg(long)]
    json: bool,
}

/// Splits `NAME@VERSION` or `NAME@REQ`; a bare name means its newest version.
fn split_spec(spec: &str) -> Result<(&str, &str)> {
    match spec.split_once('@') {
        Some((name, req)) if !name.is_empty() && !req.is_empty() => Ok((name, req)),
        Some(_) => bail!("`{spec}` is not NAME@VERSION or NAME@REQ"),
        None => Ok((spec, "*")),
    }
}

pub(crate) fn run(args: ImportArgs) -> Result<()> {
    let (name, req) = split_spec(&args.spec)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let client = Client::new(&args.connection)?;
        let request = ImportRequest {
            krate: name.to_owned(),
            req: req.to_owned(),
            features: args.features.clone(),
            default_features: !args.no_default_features,
            dry_run: args.dry_run,
            upstream: args.upstream.clone(),
        };
        let plan: ImportPlan = client.post_json("/api/kiln/v1/imports", &request).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
            return Ok(());
        }
        print_plan(&plan);
        Ok(())
    })
}

fn print_plan(plan: &ImportPlan) {
    let style = Style::detect();
    let rows: Vec<Vec<String>> = plan.members.iter().map(member_row).collect();
    print_table(
        style,
        &[
            "crate",
            "version",
            "status",
            "licence",
            "build-time code",
            "features",
        ],
        &rows,
    );
    let count = |status: MemberStatus| plan.members.iter().filter(|m| m.status == status).count();
    if plan.dry_run {
        println!(
            "\n{}: {} packages from {}; {} would be imported, nothing was (dry run)",
            plan.root,
            plan.members.len(),
            plan.upstream,
            count(MemberStatus::Added)
        );
    } else {
        println!(
            "\n{}: {} packages from {}: {} imported into quarantine, {} approved already, {} in review already, {} in a new review round for more features",
            plan.root,
            plan.members.len(),
            plan.upstream,
            count(MemberStatus::Added),
            count(MemberStatus::Present),
            count(MemberStatus::InReview),
            count(MemberStatus::Extended)
        );
        if count(MemberStatus::Added) + count(MemberStatus::Extended) > 0 {
            println!(
                "they are audited and built now; then: kiln review show {} --closure, and kiln review approve {} --closure",
                plan.root, plan.root
            );
        }
    }
}

fn member_row(member: &ClosureMember) -> Vec<String> {
    let build_time = match (member.build_script, member.proc_macro) {
        (true, true) => "build script, proc-macro",
        (true, false) => "build script",
        (false, true) => "proc-macro",
        (false, false) => "-",
    };
    vec![
        member.krate.clone(),
        member.version.clone(),
        member.status.as_str().to_owned(),
        member.license.clone().unwrap_or_else(|| "-".into()),
        build_time.to_owned(),
        member.features.describe(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_take_a_version_a_requirement_or_a_bare_name() {
        assert_eq!(split_spec("serde_json@1").unwrap(), ("serde_json", "1"));
        assert_eq!(split_spec("memchr@2.7.6").unwrap(), ("memchr", "2.7.6"));
        assert_eq!(split_spec("csv").unwrap(), ("csv", "*"));
        assert!(split_spec("csv@").is_err());
    }
}
