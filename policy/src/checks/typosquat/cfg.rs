//! The `[typosquat]` section of a policy file.

use serde::Deserialize;

use crate::config::Action;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawTyposquat {
    max_distance: u8,
    action: Action,
}

impl Default for RawTyposquat {
    fn default() -> Self {
        Self {
            max_distance: 1,
            action: Action::Review,
        }
    }
}

/// How new names are compared with approved ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TyposquatPolicy {
    /// The largest edit distance at which a new name is flagged as imitating an approved one.
    pub max_distance: u8,
    /// What to do with a flagged name.
    pub action: Action,
}

impl From<RawTyposquat> for TyposquatPolicy {
    fn from(raw: RawTyposquat) -> Self {
        Self {
            max_distance: raw.max_distance,
            action: raw.action,
        }
    }
}
