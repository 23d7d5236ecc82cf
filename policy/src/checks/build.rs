//! The build-time code check: build scripts, procedural macros and native links run code (or
//! link code) at build time, which is how supply-chain attacks land. Each gets the policy's
//! action, unless the exact crate version is in the policy's bypass list, pinned by checksum.

pub mod cfg;

pub use self::cfg::BuildPolicy;
use crate::checks::crates::CrateInfo;
use crate::findings::{Finding, FindingCode};

/// Build-time code findings for `crates`.
pub fn check(crates: &[CrateInfo], policy: &BuildPolicy) -> Vec<Finding> {
    let mut findings = Vec::new();
    for krate in crates {
        let subject = format!("{}@{}", krate.name, krate.version);
        let bypassed = policy.bypass.iter().any(|(name, version, checksum)| {
            *name == krate.name
                && version.to_string() == krate.version
                && krate.checksum == Some(*checksum)
        });
        if bypassed {
            continue;
        }
        let mut flag =
            |present: bool, action: crate::config::Action, code: FindingCode, what: String| {
                if let (true, Some(severity)) = (present, action.severity()) {
                    findings.push(Finding::new(code, severity, what).with_subject(&subject));
                }
            };
        flag(
            krate.build_script,
            policy.build_scripts,
            FindingCode::BuildScript,
            format!("{subject} has a build script, which runs at build time"),
        );
        flag(
            krate.proc_macro,
            policy.proc_macros,
            FindingCode::BuildProcMacro,
            format!("{subject} is a procedural macro, which runs at build time"),
        );
        if let Some(links) = &krate.links {
            flag(
                true,
                policy.native_links,
                FindingCode::BuildNativeLinks,
                format!("{subject} links the native library `{links}`"),
            );
        }
    }
    findings
}
