//! Incident and access commands: `kiln revoke` (the signed revocation list executors refuse),
//! `kiln token` (create, list and revoke API tokens) and `kiln completions`.

use anyhow::Result;
use clap::{Args, CommandFactory as _, Subcommand};
use kiln_wire::Scope;
use kiln_wire::admin::{RevokeRequest, Revoked};
use kiln_wire::tokens::{NewToken, TokenCreated, TokenInfo, TokenRequest};

use crate::client::{Client, Connection};

#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    /// What to revoke: NAME@VERSION (its .crate and everything built from it) or a digest
    /// (sha256:…).
    #[arg(value_name = "NAME@VERSION|DIGEST")]
    target: String,
    /// Why: recorded in the event log and shown in every refusal.
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    connection: Connection,
}

pub(crate) fn revoke(args: RevokeArgs) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let client = Client::new(&args.connection)?;
        let request = RevokeRequest {
            target: args.target.clone(),
            reason: args.reason.clone(),
        };
        let answer: Revoked = client
            .post_json("/api/kiln/v1/revocations", &request)
            .await?;
        let digests = answer.revoked.len();
        println!(
            "revoked {} ({digests} digests): downloads answer 451, it is out of the index, and \
             executors refuse it once they fetch the new revocation list",
            args.target
        );
        Ok(())
    })
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token for a user (admin); the secret is printed once.
    Create(TokenCreateArgs),
    /// List tokens: your own, or every token for an admin; secrets are never shown.
    List(TokenListArgs),
    /// Revoke a token by id: one of your own, or any token for an admin.
    Revoke(TokenRevokeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TokenCreateArgs {
    /// The user it is for (created when new).
    #[arg(long)]
    login: String,
    /// What it may do: publish, yank, review, worker, run, admin (repeat or comma-separate).
    #[arg(
        long = "scope",
        value_name = "SCOPE",
        value_delimiter = ',',
        required = true
    )]
    scopes: Vec<Scope>,
    /// A name to recognise it by.
    #[arg(long, default_value = "created with kiln token")]
    name: String,
    /// Only crates matching this pattern (`*` wildcards).
    #[arg(long, value_name = "PATTERN")]
    crates: Option<String>,
    /// When it expires (Unix milliseconds); default never.
    #[arg(long, value_name = "MS")]
    expires_at: Option<i64>,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
pub(crate) struct TokenListArgs {
    #[command(flatten)]
    connection: Connection,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TokenRevokeArgs {
    /// The token's id (from `kiln token list`).
    id: i64,
    #[command(flatten)]
    connection: Connection,
}

pub(crate) fn token(command: TokenCommand) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match command {
            TokenCommand::Create(args) => {
                let client = Client::new(&args.connection)?;
                let request = TokenRequest {
                    login: args.login,
                    token: NewToken {
                        name: args.name,
                        scopes: args.scopes.into_iter().collect(),
                        crate_pattern: args.crates,
                        expires_at: args.expires_at,
                    },
                };
                let answer: TokenCreated =
                    client.post_json("/api/kiln/v1/tokens", &request).await?;
                println!("{}", answer.token);
                Ok(())
            }
            TokenCommand::List(args) => {
                let client = Client::new(&args.connection)?;
                let tokens: Vec<TokenInfo> = client.get_json("/api/kiln/v1/tokens").await?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&tokens)?);
                    return Ok(());
                }
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.to_string(),
                            t.login.clone(),
                            t.scopes
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(","),
                            if t.revoked_at.is_none() {
                                "active".to_owned()
                            } else {
                                "revoked".to_owned()
                            },
                            t.name.clone(),
                        ]
                    })
                    .collect();
                crate::review::print_table(
                    crate::style::Style::detect(),
                    &["ID", "LOGIN", "SCOPES", "STATE", "NAME"],
                    &rows,
                );
                Ok(())
            }
            TokenCommand::Revoke(args) => {
                let client = Client::new(&args.connection)?;
                let _: serde_json::Value = client
                    .delete_json(&format!("/api/kiln/v1/tokens/{}", args.id))
                    .await?;
                println!("revoked token {}", args.id);
                Ok(())
            }
        }
    })
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

pub(crate) fn completions(args: CompletionsArgs) -> Result<()> {
    let mut command = crate::Cli::command();
    clap_complete::generate(args.shell, &mut command, "kiln", &mut std::io::stdout());
    Ok(())
}
