//! `POST /v1/runs` with `Accept: application/x-ndjson`: one JSON event per line —
//! `build` for each stage of a code cell's build, `preflight`, then per cell `cell-started`, `output` chunks and `cell-finished`, then
//! `run-finished` (or `blocked`, or `error`). A client that goes away, or does not take an event
//! within the write timeout, stops the run; its slot is free once the kernel has stopped.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use kiln_http::RequestId;
use kiln_wire::runs::{OutputBody, RunEvent};

use super::error::ApiError;
use super::{ApiState, admission};
use crate::run::CellEvent;
use crate::runtime::Cancel;

/// Outputs are streamed in chunks of at most this many bytes.
const OUTPUT_CHUNK: usize = 16 * 1024;

/// A larger output is not streamed: its `cell-finished` names its digest, and a client fetches
/// it from `GET /v1/outputs/{digest}` when it wants it.
pub(super) const MAX_STREAMED_OUTPUT: usize = 256 * 1024;

fn event_line(event: &RunEvent) -> Bytes {
    let mut line = serde_json::to_vec(event).expect("events serialise");
    line.push(b'\n');
    Bytes::from(line)
}

/// The `error` event of `err`; an internal failure is logged under `id` and named only by it.
fn error_event(err: &ApiError, id: &RequestId) -> RunEvent {
    match err.internal_detail() {
        Some(detail) => {
            tracing::error!(request_id = %id.0, error = %detail, "internal error in a streamed run");
            RunEvent::Error {
                error: "internal".into(),
                message: format!(
                    "internal error; the server log has the details under request id {}",
                    id.0
                ),
                request_id: Some(id.0.clone()),
            }
        }
        None => RunEvent::Error {
            error: err.code.into(),
            message: err.message.clone(),
            request_id: None,
        },
    }
}

fn cell_event_lines(event: CellEvent<'_>) -> Vec<Bytes> {
    match event {
        CellEvent::Started { id } => vec![event_line(&RunEvent::CellStarted {
            cell: id.to_owned(),
        })],
        CellEvent::Finished { record, output } => {
            let mut lines = Vec::new();
            if let Some(output) = output.filter(|o| o.len() <= MAX_STREAMED_OUTPUT) {
                for (n, chunk) in output.chunks(OUTPUT_CHUNK).enumerate() {
                    let body = OutputBody::of(chunk);
                    lines.push(event_line(&RunEvent::Output {
                        cell: record.id.clone(),
                        chunk: n,
                        text: body.text,
                        base64: body.base64,
                    }));
                }
            }
            lines.push(event_line(&RunEvent::CellFinished {
                cell: record.clone(),
            }));
            lines
        }
    }
}

/// Runs `notebook` and streams its events; `history` is a stored notebook's id and the caller,
/// when the run goes in that notebook's history.
pub(super) fn stream_run(
    state: Arc<ApiState>,
    notebook: Vec<u8>,
    seed: Option<u64>,
    history: Option<(String, String)>,
    ran_by: String,
    id: RequestId,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let send = |event: RunEvent| {
            let tx = tx.clone();
            async move { tx.send(event_line(&event)).await.is_ok() }
        };
        let admitted = match admission::admit(&state).await {
            Ok(admitted) => admitted,
            Err(err) => {
                send(error_event(&err, &id)).await;
                return;
            }
        };
        // A code cell's build stages go out as they happen, before preflight.
        let builds = tx.clone();
        let on_build = move |update: crate::service::BuildUpdate<'_>| {
            let line = event_line(&RunEvent::Build {
                cell: update.cell.to_owned(),
                stage: update.stage,
                cached: update.cached,
            });
            if builds.try_send(line).is_err() {
                tracing::debug!("a build event was not sent: the client is not reading");
            }
        };
        let prepared = match state.executor.prepare_with(notebook, &on_build).await {
            Ok(mut prepared) => {
                prepared.ran_by = Some(ran_by);
                prepared
            }
            Err(err) => {
                send(error_event(&ApiError::from(err), &id)).await;
                return;
            }
        };
        if !prepared.report.allow {
            send(RunEvent::Blocked {
                preflight: prepared.report,
            })
            .await;
            return;
        }
        if !send(RunEvent::Preflight {
            preflight: prepared.report.clone(),
        })
        .await
        {
            return;
        }
        let executor = state.executor.clone();
        let events = tx.clone();
        let write_timeout = state.limits.write_timeout;
        let handle = tokio::runtime::Handle::current();
        let finished = tokio::task::spawn_blocking(move || {
            // The slot goes with the run and is freed when its kernel has stopped.
            let _slot = admitted;
            let cancel = Cancel::default();
            let mut observe = |event: CellEvent<'_>| {
                for line in cell_event_lines(event) {
                    if cancel.is_cancelled() {
                        return;
                    }
                    // A client that went away, or reads too slowly, stops the run.
                    let sent =
                        handle.block_on(tokio::time::timeout(write_timeout, events.send(line)));
                    if !matches!(sent, Ok(Ok(()))) {
                        tracing::info!(
                            "a streaming client went away or stopped reading: the run is cancelled"
                        );
                        cancel.cancel();
                    }
                }
            };
            executor.execute(&prepared, seed, &mut observe, &cancel.clone())
        })
        .await;
        let line = match finished {
            Ok(Ok((stored, _))) => {
                if let Some((notebook, login)) = &history {
                    super::notebooks::note_run(&state, notebook, login, &stored);
                }
                RunEvent::RunFinished {
                    id: stored.id,
                    record: stored.record,
                }
            }
            Ok(Err(err)) => error_event(&ApiError::from(err), &id),
            Err(err) => error_event(&ApiError::internal(err), &id),
        };
        send(line).await;
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<_, std::convert::Infallible>(line), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(stream))
        .expect("a valid response")
}
