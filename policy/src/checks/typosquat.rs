//! The typosquat check: a new crate whose name imitates an approved one — within a small edit
//! distance (`proc-macro1` against `proc-macro2`, `serd` against `serde`), or the same name with
//! `-` and `_` swapped or different case — is flagged for a person to look at.

pub mod cfg;

use crate::config::Action;
use crate::findings::{Finding, FindingCode};

/// The Damerau–Levenshtein (optimal string alignment) distance between `a` and `b`.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

fn canonical(name: &str) -> String {
    name.to_ascii_lowercase().replace('-', "_")
}

/// Findings for a new crate `name` against the names of approved crates.
pub fn check<'a>(
    name: &str,
    approved: impl IntoIterator<Item = &'a str>,
    max_distance: u8,
    action: Action,
) -> Vec<Finding> {
    let Some(severity) = action.severity() else {
        return Vec::new();
    };
    let mine = canonical(name);
    let mut findings = Vec::new();
    for other in approved {
        if other == name {
            continue;
        }
        let theirs = canonical(other);
        let d = distance(&mine, &theirs);
        if d == 0 {
            findings.push(Finding::new(
                FindingCode::Typosquat,
                severity,
                format!(
                    "`{name}` differs from the approved crate `{other}` only in case or `-`/`_`"
                ),
            ));
        } else if d <= usize::from(max_distance) {
            findings.push(Finding::new(
                FindingCode::Typosquat,
                severity,
                format!("`{name}` is {d} edit(s) from the approved crate `{other}`"),
            ));
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("serde", "serde"), 0);
        assert_eq!(distance("serde", "serd"), 1);
        assert_eq!(distance("proc_macro1", "proc_macro2"), 1);
        assert_eq!(distance("tokio", "toiko"), 1, "a transposition counts once");
        assert_eq!(distance("abc", "xyz"), 3);
        assert_eq!(distance("", "ab"), 2);
    }

    #[test]
    fn imitations_are_flagged_and_strangers_are_not() {
        let approved = ["proc-macro2", "serde", "kernel-csv-stats"];
        for imitation in ["proc-macro1", "serd", "Serde", "kernel_csv_stats", "sedre"] {
            let findings = check(imitation, approved, 1, Action::Review);
            assert_eq!(findings.len(), 1, "{imitation}: {findings:?}");
            assert_eq!(findings[0].code, "typosquat");
        }
        assert!(check("tokio", approved, 1, Action::Review).is_empty());
        assert!(
            check("serde", approved, 1, Action::Review).is_empty(),
            "a crate is not its own imitation"
        );
        assert!(check("serd", approved, 1, Action::Allow).is_empty());
    }
}
