//! `kiln`: the command line for kiln's admins and authors.

#![allow(
    clippy::disallowed_macros,
    reason = "the command line prints what it is asked for"
)]
#![forbid(unsafe_code)]

mod admin;
mod advisories;
mod attest;
mod audit;
mod build;
mod builder;
mod client;
mod connections;
mod events;
mod executor;
mod import;
mod inspect;
mod keys;
mod notebook;
mod password;
mod policy;
mod process;
mod review;
mod run;
mod runs;
mod serve;
mod status;
mod style;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes, documented in `kiln --help`.
const EXIT_FAILURE: u8 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "kiln: a curated registry and policy-gated build service for WebAssembly notebook kernels",
    after_help = "Exit codes:\n  0  success (for `attest verify`: the bundle verified; for `inspect`: not denied)\n  1  the operation failed or was refused; the reason is printed on one line\n  2  the command line was wrong\n\nEnvironment:\n  KILN_KEY_PASSWORD  password of kiln private keys (empty allowed); prompted on a terminal when unset\n  COSIGN_PASSWORD    password of a cosign key being imported\n  KILN_REGISTRY      the kiln server for commands that talk to one\n  KILN_TOKEN         the API token for those commands\n  KILN_EXECUTOR      the executor for `kiln run` and `kiln replay`\n  KILN_CONFIG        the config file (default ~/.config/kiln/config.toml: registry, token, executor)\n  NO_COLOR           no colour, even on a terminal\n  KILN_DATABASE_URL  PostgreSQL for `kiln serve`\n  KILN_ADVISORY_DB   the RustSec advisory database directory for `kiln audit`"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, import and list signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Sign in-toto statements into Sigstore bundles, and verify bundles.
    #[command(subcommand)]
    Attest(attest::AttestCommand),
    /// Run the kiln server (the registry) on embedded defaults or the scale-out shape.
    Serve(serve::ServeArgs),
    /// List the registry's event log, or verify its hash chain.
    Events(events::EventsArgs),
    /// Import a crate from an upstream registry into quarantine (crates.io by default).
    Import(import::ImportArgs),
    /// Show a kernel module's imports, exports and contract, and the wasm check's verdict.
    Inspect(inspect::InspectArgs),
    /// Check policy files.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Audit a Cargo.lock against the RustSec advisory database.
    Audit(audit::AuditArgs),
    /// Run a worker process that builds (and audits) submissions from a kiln server's queue.
    Builder(builder::BuilderArgs),
    /// Build a kernel crate hermetically (sandboxed, offline, reproducible) into signed artifacts.
    Build(build::BuildArgs),
    /// Run a notebook: preflight every cell, then run it (here, or on an executor).
    Run(run::RunArgs),
    /// Work with notebook documents: pin their kernels to approved versions.
    #[command(subcommand)]
    Notebook(notebook::NotebookCommand),
    /// Replay a stored run on its executor and report whether every output matches.
    Replay(run::ReplayArgs),
    /// Manage an executor's stored runs.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// Run the executor API alone, in front of a registry elsewhere.
    Executor(executor::ExecutorArgs),
    /// Show or sync the RustSec advisory database (a local one, or the server's).
    #[command(subcommand)]
    Advisories(advisories::AdvisoriesCommand),
    /// Follow a submission through its audit, build and review (--wait: until a decision).
    Status(status::StatusArgs),
    /// Review submissions: list, show, diff, approve, reject, export-vet.
    #[command(subcommand)]
    Review(review::ReviewCommand),
    /// Revoke a version or a digest: out of the index, 451 on download, refused by executors.
    Revoke(admin::RevokeArgs),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Token(admin::TokenCommand),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions(admin::CompletionsArgs),
}

/// A reader that went away (`kiln … | head`) is not an error worth a stack trace: print
/// nothing more and exit as a program killed by SIGPIPE would (128 + 13).
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_broken_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keys(command) => keys::run(command),
        Command::Attest(command) => attest::run(command),
        Command::Serve(args) => serve::run(args),
        Command::Events(args) => events::run(args),
        Command::Import(args) => import::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Policy(command) => policy::run(command),
        Command::Audit(args) => audit::run(args),
        Command::Advisories(command) => advisories::run(command),
        Command::Build(args) => build::run(args),
        Command::Run(args) => run::run(args),
        Command::Notebook(command) => notebook::run(command),
        Command::Replay(args) => run::replay(args),
        Command::Runs(command) => runs::run(command),
        Command::Executor(args) => executor::run(args),
        Command::Builder(args) => builder::run(args),
        Command::Status(args) => status::run(args),
        Command::Review(command) => review::run(command),
        Command::Revoke(args) => admin::revoke(args),
        Command::Token(command) => admin::token(command),
        Command::Completions(args) => admin::completions(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kiln: {err:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
