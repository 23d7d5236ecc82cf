//! Crate names, by crates.io's rules: ASCII letters, digits, `-` and `_`, starting with a letter,
//! at most 64 characters, not a reserved name, and unique ignoring case and `-`/`_`.

/// The longest crate name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// Names that cannot be published: Rust's own crates, Windows device names, and names that
/// would confuse people or tools.
const RESERVED: &[&str] = &[
    "alloc",
    "core",
    "std",
    "proc_macro",
    "proc-macro",
    "test",
    "rustc",
    "cargo",
    "rustdoc",
    "clippy",
    "rustfmt",
    "build",
    "nul",
    "con",
    "prn",
    "aux",
    "com1",
    "com2",
    "com3",
    "com4",
    "lpt1",
    "lpt2",
    "lpt3",
    "kiln",
    // Versions awaiting approval depend on it in the sparse index; it must never exist.
    kiln_wire::index::AWAITING_APPROVAL,
];

/// Why a name cannot be a crate name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("the crate name is empty")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`].
    #[error("the crate name `{0}` is longer than {MAX_NAME_LEN} characters")]
    TooLong(String),
    /// The first character is not an ASCII letter.
    #[error("the crate name `{0}` must start with an ASCII letter")]
    FirstCharacter(String),
    /// A character is not an ASCII letter, digit, `-` or `_`.
    #[error(
        "the crate name `{name}` contains `{character}`; only ASCII letters, digits, `-` and `_` are allowed"
    )]
    Character {
        /// The name.
        name: String,
        /// The first character not allowed.
        character: char,
    },
    /// The name is reserved.
    #[error("the crate name `{0}` is reserved")]
    Reserved(String),
}

/// Checks that `name` may be a crate name.
pub fn validate(name: &str) -> Result<(), NameError> {
    let first = name.chars().next().ok_or(NameError::Empty)?;
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(name.to_owned()));
    }
    if !first.is_ascii_alphabetic() {
        return Err(NameError::FirstCharacter(name.to_owned()));
    }
    if let Some(character) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(NameError::Character {
            name: name.to_owned(),
            character,
        });
    }
    if RESERVED.contains(&canonical(name).as_str())
        || RESERVED.contains(&name.to_ascii_lowercase().as_str())
    {
        return Err(NameError::Reserved(name.to_owned()));
    }
    Ok(())
}

/// Checks that `name` may name a dependency (the crate depended on, or its name in
/// `Cargo.toml`): the shape of a crate name, reserved names included, as crates.io accepts
/// them (`rustc-std-workspace-core` renamed as `core`, `compiler_builtins`). Only the crates
/// published here must not take a reserved name.
pub fn validate_dependency(name: &str) -> Result<(), NameError> {
    match validate(name) {
        Err(NameError::Reserved(_)) => Ok(()),
        other => other,
    }
}

/// The form under which two names collide: lowercase, with `-` read as `_`.
pub fn canonical(name: &str) -> String {
    name.to_ascii_lowercase().replace('-', "_")
}

/// The directory of a crate in the sparse index, as Cargo computes it, keeping the name's case
/// (`1`, `2`, `3/a`, `ab/cd`). Cargo's `{prefix}` download marker is this.
pub fn index_prefix(name: &str) -> String {
    match name.len() {
        1 => "1".to_owned(),
        2 => "2".to_owned(),
        3 => format!("3/{}", &name[..1]),
        _ => format!("{}/{}", &name[..2], &name[2..4]),
    }
}

/// The path of a crate's file in the sparse index, as Cargo computes it (lowercased).
pub fn index_path(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    format!("{}/{lower}", index_prefix(&lower))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_pass() {
        for name in ["a", "serde", "kernel-csv-stats", "Foo_Bar9"] {
            validate(name).unwrap();
        }
    }

    #[test]
    fn bad_names_say_why() {
        assert_eq!(validate(""), Err(NameError::Empty));
        assert!(matches!(
            validate(&"a".repeat(65)),
            Err(NameError::TooLong(_))
        ));
        assert!(matches!(
            validate("9lives"),
            Err(NameError::FirstCharacter(_))
        ));
        assert!(matches!(validate("_x"), Err(NameError::FirstCharacter(_))));
        assert!(matches!(
            validate("a.b"),
            Err(NameError::Character { character: '.', .. })
        ));
        assert!(matches!(
            validate("naïve"),
            Err(NameError::Character { .. })
        ));
        assert!(matches!(validate("std"), Err(NameError::Reserved(_))));
        assert!(matches!(
            validate("Proc-Macro"),
            Err(NameError::Reserved(_))
        ));
    }

    #[test]
    fn dependencies_may_be_named_like_the_standard_library() {
        assert!(validate("core").is_err());
        assert!(validate_dependency("core").is_ok());
        assert!(validate_dependency("compiler_builtins").is_ok());
        assert!(validate_dependency("rustc-std-workspace-core").is_ok());
        assert!(validate_dependency("9lives").is_err());
        assert!(validate_dependency("a b").is_err());
    }

    #[test]
    fn case_and_separators_collide() {
        assert_eq!(canonical("Foo-Bar"), canonical("foo_bar"));
        assert_ne!(canonical("foobar"), canonical("foo_bar"));
    }

    #[test]
    fn index_paths_follow_cargo() {
        assert_eq!(index_path("a"), "1/a");
        assert_eq!(index_path("ab"), "2/ab");
        assert_eq!(index_path("abc"), "3/a/abc");
        assert_eq!(index_path("Serde"), "se/rd/serde");
    }
}
