//! The `[execution]` section of a policy file: what a cell may use, and what its artifact must
//! carry.

use std::collections::BTreeSet;

use serde::Deserialize;
use toml::Spanned;

use crate::config::{At, PolicyError};
use crate::intoto::StatementKind;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawExecution {
    max_fuel: u64,
    max_memory_bytes: u64,
    max_wall_ms: u64,
    max_output_bytes: u64,
    require: Vec<Spanned<String>>,
    revocation_max_age_secs: u64,
}

impl Default for RawExecution {
    fn default() -> Self {
        Self {
            max_fuel: 10_000_000_000,
            max_memory_bytes: 256 * 1024 * 1024,
            max_wall_ms: 30_000,
            max_output_bytes: 16 * 1024 * 1024,
            require: vec![
                Spanned::new(0..0, "provenance".into()),
                Spanned::new(0..0, "review".into()),
            ],
            revocation_max_age_secs: 3600,
        }
    }
}

/// What a cell may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionPolicy {
    /// Fuel per cell.
    pub max_fuel: u64,
    /// Linear memory per cell.
    pub max_memory_bytes: u64,
    /// Wall-clock time per cell.
    pub max_wall_ms: u64,
    /// Output per cell.
    pub max_output_bytes: u64,
    /// Statements an artifact must carry, each by a trusted key of its role.
    pub require: BTreeSet<StatementKind>,
    /// The oldest revocation list the executor accepts.
    pub revocation_max_age_secs: u64,
}

impl RawExecution {
    /// Checks the statement kinds required.
    pub(crate) fn validate(self, at: &At<'_>) -> Result<ExecutionPolicy, PolicyError> {
        let mut require = BTreeSet::new();
        for kind in &self.require {
            let parsed = StatementKind::ALL
                .into_iter()
                .find(|k| k.as_str() == kind.get_ref())
                .ok_or_else(|| {
                    at(
                        kind.span(),
                        format!(
                            "`{}` is not a statement kind (provenance, audit, review, revocation)",
                            kind.get_ref()
                        ),
                    )
                })?;
            require.insert(parsed);
        }
        Ok(ExecutionPolicy {
            max_fuel: self.max_fuel,
            max_memory_bytes: self.max_memory_bytes,
            max_wall_ms: self.max_wall_ms,
            max_output_bytes: self.max_output_bytes,
            require,
            revocation_max_age_secs: self.revocation_max_age_secs,
        })
    }
}
