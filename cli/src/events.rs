//! `kiln events`: the registry's event log, and a check of its hash chain done here, on the
//! client, from the events themselves.

use anyhow::{Result, bail};
use clap::Args;
use kiln_registry::model::events::{self, Event};

use crate::client::{Client, Connection};

#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    #[command(flatten)]
    connection: Connection,
    /// Check the whole chain instead of listing events.
    #[arg(long)]
    verify: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: EventsArgs) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let client = Client::new(&args.connection)?;
        let mut all: Vec<Event> = Vec::new();
        let mut prev = (0i64, events::GENESIS.to_owned());
        loop {
            let page: Vec<serde_json::Value> = client
                .get_json(&format!("/api/kiln/v1/events?after={}&limit=1000", prev.0))
                .await?;
            if page.is_empty() {
                break;
            }
            let page: Vec<Event> = page
                .into_iter()
                .map(event_from_json)
                .collect::<Result<_>>()?;
            if args.verify
                && let Err(err) = events::verify_events((prev.0, &prev.1), &page)
            {
                bail!("the event log does not verify: {err}");
            }
            let last = page.last().expect("non-empty page");
            prev = (last.seq, last.hash.clone());
            if !args.verify {
                all.extend(page);
            }
        }
        if args.verify {
            println!("event log verified: {} events, head {}", prev.0, prev.1);
        } else if args.json {
            println!("{}", serde_json::to_string_pretty(&all)?);
        } else {
            for e in &all {
                println!("{:>6}  {:<13} {:<32} {}", e.seq, e.kind, e.subject, e.actor);
            }
        }
        Ok(())
    })
}

/// An event as the API sends it; the hashed form of `data` is its compact JSON.
fn event_from_json(value: serde_json::Value) -> Result<Event> {
    let field = |name: &str| value.get(name).cloned().unwrap_or(serde_json::Value::Null);
    let text = |name: &str| {
        field(name)
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("event without `{name}`"))
    };
    let number = |name: &str| {
        field(name)
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("event without `{name}`"))
    };
    let data = field("data");
    Ok(Event {
        seq: number("seq")?,
        kind: text("kind")?,
        subject: text("subject")?,
        actor: text("actor")?,
        raw_data: data.to_string(),
        data,
        prev_hash: text("prev_hash")?,
        hash: text("hash")?,
        created_at: number("created_at")?,
    })
}
