//! Custom audit rules in Rego, evaluated with the `regorus` interpreter.
//!
//! A rule file is a Rego v1 module in package `kiln.rules` that adds to the sets `deny` and
//! `review`. Each element is a string (the message) or an object with `message` and optionally
//! `code` (default `rule`) and `subject` (`NAME@VERSION`, so that exceptions can match it). The
//! input document is `{"report": <the audit report so far>, "crates": [<cargo metadata facts>]}`;
//! `docs/audit-report.md` describes both. `policies/rules/` holds a shipped example.

pub mod cfg;

use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::findings::{Finding, FindingCode, Severity};

/// The package every rule file declares.
pub const PACKAGE: &str = "kiln.rules";

/// Why rules could not be loaded or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// A rule file could not be read.
    #[error("cannot read the rule file {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A rule file is not valid Rego, or not in package `kiln.rules`.
    #[error("{message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message (it names the line and column).
        message: String,
    },
    /// Evaluation failed, or a rule produced something that is not a finding.
    #[error("evaluating the Rego rules: {0}")]
    Eval(String),
}

/// A loaded, parsed set of rule files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    files: Vec<RuleFile>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RuleFile {
    name: String,
    digest: Digest,
    text: String,
}

impl Rules {
    /// Reads and parses `paths`.
    pub fn load(paths: &[PathBuf]) -> Result<Self, RulesError> {
        let mut sources = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(path).map_err(|err| RulesError::Read {
                path: path.display().to_string(),
                message: err.to_string(),
            })?;
            sources.push((path.display().to_string(), text));
        }
        Self::from_sources(sources)
    }

    /// Parses rule files given as `(name, text)`.
    pub fn from_sources(sources: Vec<(String, String)>) -> Result<Self, RulesError> {
        let mut files = Vec::new();
        for (name, text) in sources {
            let mut engine = regorus::Engine::new();
            let package = engine
                .add_policy(name.clone(), text.clone())
                .map_err(|err| RulesError::Syntax {
                    path: name.clone(),
                    message: diagnostic(&err.to_string()),
                })?;
            if package != format!("data.{PACKAGE}") {
                return Err(RulesError::Syntax {
                    path: name,
                    message: format!(
                        "a rule file must declare `package {PACKAGE}`, not `{}`",
                        package.trim_start_matches("data.")
                    ),
                });
            }
            files.push(RuleFile {
                digest: Digest::of(text.as_bytes()),
                name: Path::new(&name)
                    .file_name()
                    .map_or(name.clone(), |f| f.to_string_lossy().into_owned()),
                text,
            });
        }
        Ok(Self { files })
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Each rule file as `NAME sha256:…`.
    pub fn names(&self) -> Vec<String> {
        self.files
            .iter()
            .map(|f| format!("{} {}", f.name, f.digest))
            .collect()
    }

    /// Evaluates every rule over `input`, giving its findings.
    pub fn evaluate(&self, input: &serde_json::Value) -> Result<Vec<Finding>, RulesError> {
        if self.files.is_empty() {
            return Ok(Vec::new());
        }
        let mut engine = regorus::Engine::new();
        for file in &self.files {
            engine
                .add_policy(file.name.clone(), file.text.clone())
                .map_err(eval_error)?;
        }
        engine
            .set_input_json(&input.to_string())
            .map_err(eval_error)?;
        let mut findings = Vec::new();
        for (set, severity) in [("deny", Severity::Deny), ("review", Severity::Review)] {
            let value = engine
                .eval_rule(format!("data.{PACKAGE}.{set}"))
                .map_err(eval_error)?;
            if value == regorus::Value::Undefined {
                continue;
            }
            let json: serde_json::Value =
                serde_json::from_str(&value.to_json_str().map_err(eval_error)?)
                    .map_err(|err| RulesError::Eval(err.to_string()))?;
            let items = json
                .as_array()
                .cloned()
                .ok_or_else(|| RulesError::Eval(format!("`{set}` must be a set, not {json}")))?;
            for item in items {
                findings.push(finding(&item, severity).ok_or_else(|| {
                    RulesError::Eval(format!(
                        "`{set}` holds {item}, which is neither a message nor an object with a `message`"
                    ))
                })?);
            }
        }
        Ok(findings)
    }
}

fn finding(item: &serde_json::Value, severity: Severity) -> Option<Finding> {
    if let Some(message) = item.as_str() {
        return Some(Finding::new(FindingCode::Rule, severity, message));
    }
    let message = item.get("message")?.as_str()?;
    let code = item
        .get("code")
        .and_then(|c| c.as_str())
        .map_or(FindingCode::Rule, FindingCode::from);
    let mut finding = Finding::new(code, severity, message);
    if let Some(subject) = item.get("subject").and_then(|s| s.as_str()) {
        finding = finding.with_subject(subject);
    }
    Some(finding)
}

fn eval_error(err: impl std::fmt::Display) -> RulesError {
    RulesError::Eval(one_line(&err.to_string()))
}

/// A parser diagnostic (`--> FILE:LINE:COL`, the source excerpt, `error: WHAT`) as one line,
/// `FILE:LINE:COL: WHAT`; other text joined by ` | `.
fn diagnostic(text: &str) -> String {
    let at = text.lines().find_map(|l| l.trim().strip_prefix("--> "));
    let what = text.lines().find_map(|l| l.trim().strip_prefix("error: "));
    match (at, what) {
        (Some(at), Some(what)) => format!("{}: {}", at.trim(), what.trim()),
        _ => one_line(text),
    }
}

fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = r#"
package kiln.rules

deny contains {"code": "rule-sys", "message": sprintf("%s is a -sys crate", [p.name]), "subject": sprintf("%s@%s", [p.name, p.version])} if {
    some p in input.report.packages
    endswith(p.name, "-sys")
}

review contains "too many packages" if count(input.report.packages) > 2
"#;

    fn input(names: &[&str]) -> serde_json::Value {
        let packages: Vec<_> = names
            .iter()
            .map(|n| serde_json::json!({"name": n, "version": "1.0.0"}))
            .collect();
        serde_json::json!({"report": {"packages": packages}})
    }

    #[test]
    fn rules_add_deny_and_review_findings() {
        let rules = Rules::from_sources(vec![("t.rego".into(), RULE.into())]).unwrap();
        let findings = rules.evaluate(&input(&["a", "openssl-sys", "c"])).unwrap();
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert_eq!(findings[0].code, "rule-sys");
        assert_eq!(findings[0].severity, Severity::Deny);
        assert_eq!(findings[0].subject.as_deref(), Some("openssl-sys@1.0.0"));
        assert_eq!(findings[1].code, "rule");
        assert_eq!(findings[1].severity, Severity::Review);
        assert!(rules.evaluate(&input(&["a"])).unwrap().is_empty());
        assert!(
            Rules::default()
                .evaluate(&input(&["x-sys"]))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn syntax_errors_and_wrong_packages_are_named() {
        let err = Rules::from_sources(vec![(
            "bad.rego".into(),
            "package kiln.rules\n\ndeny contains x if {\n".into(),
        )])
        .unwrap_err();
        assert!(matches!(err, RulesError::Syntax { .. }), "{err:?}");
        assert!(err.to_string().contains("bad.rego"), "{err}");
        let err =
            Rules::from_sources(vec![("other.rego".into(), "package other\n".into())]).unwrap_err();
        assert!(err.to_string().contains("package kiln.rules"), "{err}");
    }

    #[test]
    fn malformed_findings_are_errors() {
        let rules = Rules::from_sources(vec![(
            "n.rego".into(),
            "package kiln.rules\n\ndeny contains 42 if true\n".into(),
        )])
        .unwrap();
        let err = rules.evaluate(&input(&[])).unwrap_err();
        assert!(err.to_string().contains("42"), "{err}");
    }
}
