//! `kiln status NAME@VERSION [--wait]`: where a submission is on its way through audit, build
//! and review, for the author who published it. With `--wait`, a progress display follows it
//! until a decision (approved, rejected or failed) or `--timeout`.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use kiln_wire::VersionState;
use kiln_wire::review::Decision;
use kiln_wire::submissions::SubmissionDetail;

use crate::client::{Client, Connection};
use crate::review::split_target;

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The version, as NAME@VERSION.
    #[arg(value_name = "NAME@VERSION")]
    target: String,
    /// Follow it until a reviewer decides (or it fails), with a progress display.
    #[arg(long)]
    wait: bool,
    /// How long --wait waits.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The submission as JSON (what the registry answers).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
}

/// The stages in order; a version is at one of them, or ended (failed, rejected).
const STAGES: [VersionState; 4] = [
    VersionState::Submitted,
    VersionState::Audited,
    VersionState::Built,
    VersionState::Approved,
];

/// What the author does not wait for any more.
fn decided(state: VersionState) -> bool {
    matches!(
        state,
        VersionState::Approved | VersionState::Rejected | VersionState::Failed
    )
}

/// What is happening now, in words.
fn doing(state: VersionState) -> &'static str {
    match state {
        VersionState::Submitted => "waiting for its audit",
        VersionState::Audited => "audited; being built",
        VersionState::Built => "built; waiting for a reviewer",
        VersionState::Approved => "approved: in the index",
        VersionState::Rejected => "rejected",
        VersionState::Failed => "failed",
    }
}

/// The submission in a few lines: its state and why, its audit, its build, its review.
fn describe(detail: &SubmissionDetail) -> Vec<String> {
    let s = &detail.submission;
    let mut lines = vec![format!(
        "{}@{}: {}{}",
        s.krate,
        s.version,
        doing(s.state),
        s.state_reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    )];
    if let Some(audit) = &detail.reports.audit {
        lines.push(format!(
            "  audit: {} ({} denying, {} for a reviewer, {} informational)",
            audit.verdict.as_str(),
            audit.summary.deny,
            audit.summary.review,
            audit.summary.info
        ));
        for finding in audit
            .findings
            .iter()
            .filter(|f| f.severity == kiln_policy::findings::Severity::Deny)
        {
            lines.push(format!("    ! {} ({})", finding.message, finding.code));
        }
    }
    if let Some(build) = &detail.reports.build {
        lines.push(match &build.kernel {
            Some(kernel) => format!("  build: kernel module {}", kernel.wasm),
            None => format!("  build: a library, compiled for {}", build.target),
        });
    }
    if let Some(review) = detail.reviews.last() {
        lines.push(match review.decision {
            Decision::Approve => format!(
                "  review: approved by {} ({})",
                review.reviewer,
                review.criteria.as_deref().unwrap_or("safe-to-run")
            ),
            Decision::Reject => format!(
                "  review: rejected by {}: {}",
                review.reviewer,
                review.reason.as_deref().unwrap_or("no reason given")
            ),
        });
    }
    lines
}

pub(crate) fn run(args: StatusArgs) -> Result<()> {
    let (name, version) = split_target(&args.target)?;
    let client = Client::new(&args.connection)?;
    let path = format!("/api/kiln/v1/submissions/{name}/{version}");
    let runtime = tokio::runtime::Runtime::new()?;
    let detail: SubmissionDetail = runtime.block_on(async {
        let mut detail: SubmissionDetail = client.get_json(&path).await?;
        if !args.wait || decided(detail.submission.state) {
            return Ok::<_, anyhow::Error>(detail);
        }
        let bar = indicatif::ProgressBar::new(STAGES.len() as u64 - 1);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {prefix} [{bar:12}] {wide_msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{name}@{version}"));
        bar.enable_steady_tick(Duration::from_millis(100));
        let started = Instant::now();
        loop {
            let state = detail.submission.state;
            if let Some(at) = STAGES.iter().position(|s| *s == state) {
                bar.set_position(at as u64);
            }
            bar.set_message(doing(state));
            if decided(state) || started.elapsed() > args.timeout {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            detail = client.get_json(&path).await?;
        }
        bar.finish_and_clear();
        Ok(detail)
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
    } else {
        for line in describe(&detail) {
            println!("{line}");
        }
    }
    match detail.submission.state {
        VersionState::Failed | VersionState::Rejected => {
            bail!("{name}@{version} was {}", detail.submission.state)
        }
        state if args.wait && !decided(state) => {
            bail!(
                "{name}@{version} is still {} after {}",
                state,
                humantime::format_duration(args.timeout)
            )
        }
        _ => Ok(()),
    }
}
