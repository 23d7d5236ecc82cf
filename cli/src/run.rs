//! `kiln run NOTEBOOK.json`: preflight every cell (trusted signatures, pinned digests, not
//! revoked, imports ⊆ grants ⊆ policy, limits), and run the notebook only when every cell
//! passes; then a table of cells with their status, fuel, wall time, memory and a preview of
//! each output (`--json`: the run's id, its record and every output, as text or base64). A blocked notebook runs nothing, lists
//! every reason per cell, and exits 1.
//!
//! With `--executor URL` the notebook runs on a kiln executor (the one inside `kiln serve`, or
//! `kiln executor`), streaming cell events while a progress bar shows where it is. Without it,
//! it runs in this process, fetching the kernels from `--registry` into `--cache` and trusting
//! the keys of `--trust`. `kiln replay RUN_ID --executor URL` runs a stored run again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use clap::Args;
use futures::StreamExt as _;
use kiln_executor::run::{CellRecord, RunRecord};
use kiln_executor::service::{Executor, ExecutorSettings, PreflightReport};
use kiln_policy::Keyring;
use kiln_policy::policy_file::Policy;
use kiln_wire::errors::ExecutorErrorBody;
use kiln_wire::runs::{BlockedBody, OutputBody, ReplayReport, RunEvent};

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The notebook (JSON, format version 1; see docs/notebook.md).
    #[arg(value_name = "NOTEBOOK")]
    notebook: PathBuf,
    /// Run on this kiln executor (a `kiln serve` or `kiln executor` URL; default: the config
    /// file's `executor`) instead of in this process.
    #[arg(long, value_name = "URL", env = "KILN_EXECUTOR")]
    executor: Option<String>,
    #[command(flatten)]
    connection: crate::client::Connection,
    /// The trust file, for a run in this process: the keys whose statements are accepted, by
    /// role.
    #[arg(long, value_name = "FILE")]
    trust: Option<PathBuf>,
    /// The execution policy, for a run in this process (default: kiln's built-in defaults).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Where a run in this process keeps fetched artifacts and runs (default: ~/.cache/kiln).
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Run deterministically (fixed clocks, randomness seeded with this), for replay.
    #[arg(long, value_name = "SEED")]
    seed: Option<u64>,
    /// Print the run's id, record and outputs (or the preflight that blocked it) as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The run to replay.
    #[arg(value_name = "RUN_ID")]
    run: String,
    /// The kiln executor that stored the run (default: the config file's `executor`).
    #[arg(long, value_name = "URL", env = "KILN_EXECUTOR")]
    executor: Option<String>,
    #[command(flatten)]
    connection: crate::client::Connection,
    /// Print the replay report as JSON.
    #[arg(long)]
    json: bool,
}

/// A finished run as the CLI shows it.
struct Finished {
    id: String,
    record: RunRecord,
    outputs: BTreeMap<String, Vec<u8>>,
}

enum Outcome {
    Ran(Finished),
    Blocked(PreflightReport),
}

pub(crate) fn run(args: RunArgs) -> Result<()> {
    let bytes = std::fs::read(&args.notebook)
        .with_context(|| format!("reading {}", args.notebook.display()))?;
    let tokio = tokio::runtime::Runtime::new()?;
    let executor = match &args.executor {
        Some(url) => Some(url.clone()),
        None if args.trust.is_none() => crate::client::Config::load()?.executor,
        None => None,
    };
    let outcome = match &executor {
        Some(url) => tokio.block_on(run_remote(&args, url, bytes))?,
        None => tokio.block_on(run_here(&args, bytes))?,
    };
    match outcome {
        Outcome::Blocked(report) => {
            if args.json {
                let value = serde_json::json!({"error": "blocked", "preflight": report});
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print_blocked(&args.notebook.display().to_string(), &report);
            }
            let blocked = report.cells.iter().filter(|c| !c.allow).count();
            bail!(
                "{blocked} of {} kernel cells failed preflight; nothing ran",
                report.cells.len()
            );
        }
        Outcome::Ran(finished) => {
            if args.json {
                let outputs: BTreeMap<&String, OutputBody> = finished
                    .outputs
                    .iter()
                    .map(|(cell, bytes)| (cell, OutputBody::of(bytes)))
                    .collect();
                let value = serde_json::json!({
                    "id": finished.id,
                    "record": finished.record,
                    "outputs": outputs,
                });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print_cells(&finished);
            }
            let failed = finished
                .record
                .cells
                .iter()
                .filter(|c| c.status != kiln_executor::run::CellStatus::Ok)
                .count();
            if failed > 0 {
                bail!("{failed} cells did not succeed (run {})", finished.id);
            }
            Ok(())
        }
    }
}

/// Runs in this process: the same executor the API uses, with its data in the cache directory.
async fn run_here(args: &RunArgs, bytes: Vec<u8>) -> Result<Outcome> {
    let policy = match &args.policy {
        Some(path) => Policy::load(path)?,
        None => Policy::parse("", "built-in defaults")?,
    };
    let Some(trust) = args.trust.as_ref() else {
        bail!(
            "a run needs --executor URL (a kiln server or executor), or --trust FILE to run in this process"
        );
    };
    let cache = args.cache.clone().unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".cache/kiln")
    });
    let token = crate::client::Client::new(&args.connection)?
        .token()
        .map(str::to_owned);
    let executor = Executor::new(ExecutorSettings {
        registry: args.connection.registry_url()?,
        registry_token: token,
        keyring: Keyring::load(trust)?,
        policy,
        data_dir: cache,
        slots: 4,
        revocation_refresh: Duration::from_secs(3600),
    })?;
    executor.refresh_revocations().await;
    let prepared = executor
        .prepare(bytes)
        .await
        .with_context(|| args.notebook.display().to_string())?;
    if !prepared.report.allow {
        return Ok(Outcome::Blocked(prepared.report));
    }
    let progress = Progress::new(prepared.report.cells.len());
    let seed = args.seed;
    let (stored, by_digest) = tokio::task::block_in_place(|| {
        executor.execute(
            &prepared,
            seed,
            &mut |event| progress.observe(event),
            &kiln_executor::runtime::Cancel::default(),
        )
    })?;
    progress.finish();
    let outputs = stored
        .record
        .cells
        .iter()
        .filter_map(|c| Some((c.id.clone(), by_digest.get(&c.output?)?.clone())))
        .collect();
    Ok(Outcome::Ran(Finished {
        id: stored.id,
        record: stored.record,
        outputs,
    }))
}

/// A progress bar over a notebook's kernel cells, drawn on standard error only when it is a
/// terminal.
struct Progress(indicatif::ProgressBar);

impl Progress {
    fn new(cells: usize) -> Self {
        let bar = indicatif::ProgressBar::new(cells as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} cell {pos}/{len} {wide_msg}")
                .expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        Self(bar)
    }

    fn started(&self, id: &str) {
        self.0.set_message(format!("running {id}"));
    }

    fn finished(&self, record: &CellRecord) {
        self.0.inc(1);
        self.0
            .set_message(format!("{} {}", record.id, record.status));
    }

    fn observe(&self, event: kiln_executor::run::CellEvent<'_>) {
        match event {
            kiln_executor::run::CellEvent::Started { id } => self.started(id),
            kiln_executor::run::CellEvent::Finished { record, .. } => self.finished(record),
        }
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Runs on an executor, reading its NDJSON event stream.
async fn run_remote(args: &RunArgs, url: &str, bytes: Vec<u8>) -> Result<Outcome> {
    let client = crate::client::Client::new(&args.connection)?;
    let mut endpoint = format!("{}/v1/runs", url.trim_end_matches('/'));
    if let Some(seed) = args.seed {
        endpoint.push_str(&format!("?seed={seed}"));
    }
    let mut request = reqwest::Client::new()
        .post(&endpoint)
        .header("Accept", "application/x-ndjson")
        .header("Content-Type", "application/json")
        .body(bytes);
    if let Some(token) = client.token() {
        request = request.header("Authorization", token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach the executor at {url}"))?;
    let status = response.status();
    if !status.is_success() {
        let message = response
            .json::<ExecutorErrorBody>()
            .await
            .map_or_else(|_| "no message".to_owned(), |body| body.message);
        bail!("the executor answered {status}: {message}");
    }
    let mut stream = response.bytes_stream();
    let mut buffer = Vec::new();
    let mut progress: Option<Progress> = None;
    let mut outputs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    while let Some(chunk) = stream.next().await {
        buffer.extend_from_slice(&chunk.context("reading the executor's events")?);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let event: RunEvent =
                serde_json::from_slice(&line).context("an event from the executor")?;
            match event {
                RunEvent::Build {
                    cell,
                    stage,
                    cached,
                } => {
                    let note = if cached && stage.is_final() {
                        " (built before: cache hit)"
                    } else {
                        ""
                    };
                    eprintln!("code cell {cell}: {}{note}", stage.as_str());
                }
                RunEvent::Preflight { preflight } => {
                    progress = Some(Progress::new(preflight.cells.len()));
                }
                RunEvent::CellStarted { cell } => {
                    if let Some(p) = &progress {
                        p.started(&cell);
                    }
                }
                RunEvent::Output {
                    cell, text, base64, ..
                } => {
                    let bytes = match (text, base64) {
                        (Some(text), _) => text.into_bytes(),
                        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                            .decode(b64)
                            .context("an output chunk")?,
                        (None, None) => Vec::new(),
                    };
                    outputs.entry(cell).or_default().extend(bytes);
                }
                RunEvent::CellFinished { cell } => {
                    if let Some(p) = &progress {
                        p.finished(&cell);
                    }
                }
                RunEvent::Blocked { preflight } => return Ok(Outcome::Blocked(preflight)),
                RunEvent::RunFinished { id, record } => {
                    if let Some(p) = &progress {
                        p.finish();
                    }
                    // A large output is not streamed: it is fetched by its digest.
                    for cell in &record.cells {
                        if let Some(digest) = cell.output
                            && !outputs.contains_key(&cell.id)
                        {
                            let mut request = reqwest::Client::new()
                                .get(format!("{}/v1/outputs/{digest}", url.trim_end_matches('/')));
                            if let Some(token) = client.token() {
                                request = request.header("Authorization", token);
                            }
                            let bytes = request
                                .send()
                                .await
                                .and_then(reqwest::Response::error_for_status)
                                .with_context(|| format!("fetching the output of {}", cell.id))?
                                .bytes()
                                .await?;
                            outputs.insert(cell.id.clone(), bytes.to_vec());
                        }
                    }
                    return Ok(Outcome::Ran(Finished {
                        id,
                        record,
                        outputs,
                    }));
                }
                RunEvent::Error { message, .. } => bail!("the executor: {message}"),
            }
        }
    }
    bail!("the executor closed the stream before the run finished")
}

pub(crate) fn replay(args: ReplayArgs) -> Result<()> {
    let client = crate::client::Client::new(&args.connection)?;
    let executor = match &args.executor {
        Some(url) => url.clone(),
        None => crate::client::Config::load()?.executor.ok_or_else(|| {
            anyhow::anyhow!(
                "which executor? give --executor URL (or `executor` in the config file)"
            )
        })?,
    };
    let url = format!(
        "{}/v1/runs/{}/replay",
        executor.trim_end_matches('/'),
        args.run
    );
    let tokio = tokio::runtime::Runtime::new()?;
    let (status, body) = tokio.block_on(async {
        let mut request = reqwest::Client::new().post(&url);
        if let Some(token) = client.token() {
            request = request.header("Authorization", token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the executor at {executor}"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .context("reading the executor's answer")?;
        anyhow::Ok((status, body))
    })?;
    if status.as_u16() == 422 {
        let blocked: BlockedBody =
            serde_json::from_slice(&body).context("the executor's refusal")?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&blocked)?);
        } else {
            print_blocked(&args.run, &blocked.preflight);
        }
        bail!("the replay did not pass preflight; nothing ran");
    }
    if !status.is_success() {
        let message = serde_json::from_slice::<ExecutorErrorBody>(&body)
            .map_or_else(|_| "no message".to_owned(), |body| body.message);
        bail!("the executor answered {status}: {message}");
    }
    let report: ReplayReport =
        serde_json::from_slice(&body).context("the executor's replay report")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{:<20} {:<9} output", "CELL", "REPLAY");
        for cell in &report.cells {
            println!(
                "{:<20} {:<9} {}",
                cell.id,
                if cell.matches { "matches" } else { "DIFFERS" },
                cell.replayed
                    .map_or_else(|| "-".to_owned(), |d| d.to_string()),
            );
        }
    }
    if !report.matches {
        bail!("the replay of {} differs from the recorded run", args.run);
    }
    Ok(())
}

fn print_blocked(what: &str, report: &PreflightReport) {
    println!("{what} is blocked; nothing ran:");
    for cell in report.cells.iter().filter(|c| !c.allow) {
        for reason in &cell.reasons {
            println!("  {:<20} [{}] {}", cell.id, reason.code, reason.message);
        }
        for diagnostic in &cell.diagnostics {
            println!();
            for line in diagnostic.rendered.lines() {
                println!("    {line}");
            }
        }
    }
}

fn print_cells(finished: &Finished) {
    println!(
        "{:<20} {:<7} {:>14} {:>10} {:>10}  output",
        "CELL", "STATUS", "FUEL", "WALL", "MEMORY"
    );
    for cell in &finished.record.cells {
        let preview = match (finished.outputs.get(&cell.id), &cell.error) {
            (Some(bytes), _) => preview(bytes),
            (None, Some(error)) => format!("[{}] {}", error.code, error.message),
            _ => String::new(),
        };
        println!(
            "{:<20} {:<7} {:>14} {:>8}µs {:>8}KiB  {preview}",
            cell.id,
            cell.status,
            cell.metrics.fuel,
            cell.metrics.wall_us,
            cell.metrics.peak_memory_bytes / 1024,
        );
    }
    println!("run {}", finished.id);
}

/// The first 60 characters of an output, on one line.
fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 60 {
        format!("{}…", flat.chars().take(60).collect::<String>())
    } else {
        flat
    }
}
