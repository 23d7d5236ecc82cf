//! The append-only event log. Each event carries the hash of the one before it, so that removing,
//! reordering or editing an event breaks the chain from that point on, and [`verify`] says where.

use serde::Serialize;
use sqlx::Row as _;

use crate::db::{Backend, Db, now_ms};

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Event {
    /// Its position in the log, from 1.
    pub seq: i64,
    /// What happened: `publish`, `audit`, `build`, `approve`, `reject`, `fail`, `yank`,
    /// `unyank`, `owner-add`, `owner-remove`, `revoke`, `token-create`, `token-revoke`, `import`.
    pub kind: String,
    /// What it happened to (`NAME@VERSION`, a digest, a token id).
    pub subject: String,
    /// Who did it (a user login, or `kiln` for the service itself).
    pub actor: String,
    /// Details.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// The hash of the previous event.
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
    /// When (Unix milliseconds).
    pub created_at: i64,
    /// `data` exactly as stored and hashed.
    #[serde(skip)]
    pub raw_data: String,
}

/// The hash of an event: SHA-256 over a canonical JSON array of its fields and the previous
/// hash.
pub fn event_hash(
    seq: i64,
    kind: &str,
    subject: &str,
    actor: &str,
    data: &str,
    created_at: i64,
    prev_hash: &str,
) -> String {
    let canonical = serde_json::json!([seq, kind, subject, actor, data, created_at, prev_hash]);
    kiln_policy::Digest::of(canonical.to_string().as_bytes()).hex()
}

/// Appends an event inside `tx`. On PostgreSQL an advisory lock makes appends from several
/// processes take turns; SQLite has a single writer anyway.
pub async fn append(
    tx: &mut super::Tx,
    kind: &str,
    subject: &str,
    actor: &str,
    data: serde_json::Value,
) -> Result<i64, sqlx::Error> {
    if Backend::of(tx) == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7878001)")
            .execute(&mut **tx)
            .await?;
    }
    let last = sqlx::query("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    let (seq, prev_hash) = match last {
        Some(row) => (row.get::<i64, _>("seq") + 1, row.get::<String, _>("hash")),
        None => (1, GENESIS.to_owned()),
    };
    let data = data.to_string();
    let created_at = now_ms();
    let hash = event_hash(seq, kind, subject, actor, &data, created_at, &prev_hash);
    sqlx::query(
        "INSERT INTO events (seq, kind, subject, actor, data, prev_hash, hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(seq)
    .bind(kind)
    .bind(subject)
    .bind(actor)
    .bind(data)
    .bind(prev_hash)
    .bind(hash)
    .bind(created_at)
    .execute(&mut **tx)
    .await?;
    Ok(seq)
}

fn row_to_event(row: &sqlx::any::AnyRow) -> Event {
    let data: String = row.get("data");
    Event {
        seq: row.get("seq"),
        kind: row.get("kind"),
        subject: row.get("subject"),
        actor: row.get("actor"),
        data: serde_json::from_str(&data)
            .unwrap_or_else(|_| serde_json::Value::String(data.clone())),
        prev_hash: row.get("prev_hash"),
        hash: row.get("hash"),
        created_at: row.get("created_at"),
        raw_data: data,
    }
}

/// Events after `after`, at most `limit` of them, oldest first.
pub async fn list(db: &Db, after: i64, limit: i64) -> Result<Vec<Event>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, kind, subject, actor, data, prev_hash, hash, created_at FROM events \
         WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.iter().map(row_to_event).collect())
}

/// Where the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
pub enum ChainError {
    /// An event's sequence number is not the one after its predecessor's.
    #[error("event {found} follows event {expected_after}: an event is missing")]
    Gap {
        /// The previous event's number.
        expected_after: i64,
        /// This event's number.
        found: i64,
    },
    /// An event's `prev_hash` is not its predecessor's hash.
    #[error("event {0} does not follow the event before it (prev_hash differs)")]
    Link(i64),
    /// An event's content does not hash to its `hash`.
    #[error("event {0} was changed after it was written (its hash does not match)")]
    Content(i64),
}

/// Checks a run of events that follows `prev` (`(seq, hash)` of the event before the first).
pub fn verify_events(prev: (i64, &str), events: &[Event]) -> Result<(), ChainError> {
    let (mut seq, mut hash) = (prev.0, prev.1.to_owned());
    for event in events {
        if event.seq != seq + 1 {
            return Err(ChainError::Gap {
                expected_after: seq,
                found: event.seq,
            });
        }
        if event.prev_hash != hash {
            return Err(ChainError::Link(event.seq));
        }
        let expected = event_hash(
            event.seq,
            &event.kind,
            &event.subject,
            &event.actor,
            &event.raw_data,
            event.created_at,
            &event.prev_hash,
        );
        if expected != event.hash {
            return Err(ChainError::Content(event.seq));
        }
        seq = event.seq;
        hash = event.hash.clone();
    }
    Ok(())
}

/// Verifies the whole log in pages; returns how many events were checked.
pub async fn verify(db: &Db) -> Result<Result<i64, ChainError>, sqlx::Error> {
    let mut prev = (0i64, GENESIS.to_owned());
    let mut checked = 0;
    loop {
        let page = list(db, prev.0, 1000).await?;
        if page.is_empty() {
            return Ok(Ok(checked));
        }
        // The page starts after `prev.0`; a gap before it is caught by the sequence check.
        if let Err(err) = verify_events((prev.0, &prev.1), &page) {
            return Ok(Err(err));
        }
        checked += page.len() as i64;
        let last = page.last().expect("non-empty page");
        prev = (last.seq, last.hash.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<Event> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let data = serde_json::json!({"n": seq});
                let hash = event_hash(
                    seq,
                    "publish",
                    "a@1.0.0",
                    "alice",
                    &data.to_string(),
                    1000 + seq,
                    &prev,
                );
                let event = Event {
                    seq,
                    kind: "publish".into(),
                    subject: "a@1.0.0".into(),
                    actor: "alice".into(),
                    raw_data: data.to_string(),
                    data,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                    created_at: 1000 + seq,
                };
                prev = hash;
                event
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        verify_events((0, GENESIS), &chain(5)).unwrap();
    }

    #[test]
    fn edits_removals_and_reorders_are_caught() {
        let mut edited = chain(5);
        edited[2].actor = "mallory".into();
        let mut data_edited = chain(5);
        data_edited[1].raw_data = "{\"n\":99}".into();
        assert_eq!(
            verify_events((0, GENESIS), &data_edited),
            Err(ChainError::Content(2))
        );
        assert_eq!(
            verify_events((0, GENESIS), &edited),
            Err(ChainError::Content(3))
        );

        let mut removed = chain(5);
        removed.remove(2);
        assert_eq!(
            verify_events((0, GENESIS), &removed),
            Err(ChainError::Gap {
                expected_after: 2,
                found: 4
            })
        );

        let mut renumbered = chain(5);
        renumbered.remove(2);
        for e in renumbered.iter_mut().skip(2) {
            e.seq -= 1;
        }
        assert_eq!(
            verify_events((0, GENESIS), &renumbered),
            Err(ChainError::Link(3))
        );
    }
}
