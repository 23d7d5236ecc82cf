//! `kiln policy check FILE`: parses and validates a policy file, naming the first error's line
//! and column.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use kiln_policy::policy_file::Policy;

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Check a policy file.
    Check {
        /// The policy file (TOML; see policies/default.toml).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

pub(crate) fn run(command: PolicyCommand) -> Result<()> {
    match command {
        PolicyCommand::Check { file } => {
            let policy = Policy::load(&file)?;
            println!(
                "{}: valid policy {} ({} allowed licences, {} bans, {} exceptions, {} rule files, requires {})",
                file.display(),
                policy.digest,
                policy.licenses.allow.len(),
                policy.bans.len(),
                policy.exceptions.len(),
                policy.rules.names().len(),
                policy
                    .execution
                    .require
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            Ok(())
        }
    }
}
