//! What kiln's sparse index says beyond Cargo's own format: a version published here and still
//! in review is listed, marked so that nothing can resolve it.
//!
//! `cargo publish` waits (60 s on stable Cargo) until the version it uploaded appears in the
//! index as a candidate; a yanked line does not count. So a version awaiting approval is listed
//! unyanked, with one more dependency: [`AWAITING_APPROVAL`], a crate no kiln serves (the name
//! is reserved). Cargo stops waiting as soon as the upload is stored, while a resolution that
//! reaches the version fails over to an approved one or, when there is none, stops with "no
//! matching package named `awaiting-kiln-approval` found … required by package NAME vVERSION".
//! The download answers 404 until a reviewer approves.

use serde_json::{Value, json};

/// The reserved crate a version awaiting approval depends on in the sparse index.
pub const AWAITING_APPROVAL: &str = "awaiting-kiln-approval";

/// The dependency, as an index line spells it, that marks a version awaiting approval.
pub fn awaiting_dependency() -> Value {
    json!({
        "name": AWAITING_APPROVAL,
        "req": "*",
        "features": [],
        "optional": false,
        "default_features": true,
        "target": null,
        "kind": "normal",
    })
}

/// Whether `entry`, one parsed line of an index file, is a version awaiting approval.
pub fn is_awaiting(entry: &Value) -> bool {
    entry["deps"]
        .as_array()
        .is_some_and(|deps| deps.iter().any(|d| d["name"] == AWAITING_APPROVAL))
}

/// Whether `entry` is a version Cargo may choose: approved and not yanked.
pub fn is_available(entry: &Value) -> bool {
    !entry["yanked"].as_bool().unwrap_or(false) && !is_awaiting(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_awaiting_line_is_told_apart_from_approved_and_yanked_ones() {
        let mut line = json!({"name": "a", "vers": "0.1.0", "deps": [], "yanked": false});
        assert!(is_available(&line));
        line["yanked"] = true.into();
        assert!(!is_available(&line) && !is_awaiting(&line));
        line["yanked"] = false.into();
        line["deps"]
            .as_array_mut()
            .unwrap()
            .push(awaiting_dependency());
        assert!(is_awaiting(&line) && !is_available(&line));
    }
}
