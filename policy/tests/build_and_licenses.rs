//! The licence and build-time-code checks on what real `cargo metadata` reports for a small
//! workspace this test writes: a proc-macro, a crate with a build script that links a native
//! library under a licence the policy does not allow, and the kernel that uses both.

use std::collections::BTreeMap;
use std::path::Path;

use kiln_policy::checks::{build, crates, licenses};
use kiln_policy::findings::{Severity, Verdict};
use kiln_policy::policy_file::Policy;

fn write(dir: &Path, path: &str, text: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn cargo_metadata_feeds_the_licence_and_build_checks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "app/Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\nlicense = \"MIT\"\n\n[dependencies]\nhelper = { path = \"../helper\" }\nsys = { path = \"../sys\" }\n\n[workspace]\nmembers = [\"../helper\", \"../sys\"]\n",
    );
    write(root, "app/src/lib.rs", "");
    write(
        root,
        "helper/Cargo.toml",
        "[package]\nname = \"helper\"\nversion = \"0.2.0\"\nedition = \"2021\"\nlicense = \"Apache-2.0 OR MIT\"\nworkspace = \"../app\"\n\n[lib]\nproc-macro = true\n",
    );
    write(root, "helper/src/lib.rs", "");
    write(
        root,
        "sys/Cargo.toml",
        "[package]\nname = \"sys\"\nversion = \"0.3.0\"\nedition = \"2021\"\nlicense = \"GPL-3.0-only\"\nlinks = \"foo\"\nbuild = \"build.rs\"\nworkspace = \"../app\"\n",
    );
    write(root, "sys/src/lib.rs", "");
    write(root, "sys/build.rs", "fn main() {}\n");
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(root.join("app/Cargo.toml"))
        .other_options(vec!["--offline".to_owned()])
        .exec()
        .expect("cargo metadata");
    let infos = crates::from_metadata(&metadata, &BTreeMap::new());
    assert_eq!(
        infos.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["app", "helper", "sys"]
    );
    let helper = &infos[1];
    assert!(helper.proc_macro && !helper.build_script);
    let sys = &infos[2];
    assert!(sys.build_script && !sys.proc_macro);
    assert_eq!(sys.links.as_deref(), Some("foo"));

    let policy = Policy::parse(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/default.toml"),
        )
        .unwrap(),
        "default.toml",
    )
    .unwrap();
    let build_findings = build::check(&infos, &policy.build);
    let codes: Vec<(&str, Severity)> = build_findings
        .iter()
        .map(|f| (f.code.as_str(), f.severity))
        .collect();
    assert_eq!(
        codes,
        [
            ("build-proc-macro", Severity::Review),
            ("build-script", Severity::Review),
            ("build-native-links", Severity::Deny),
        ]
    );
    let license_findings = licenses::check(&infos, &policy.licenses);
    assert_eq!(license_findings.len(), 1, "{license_findings:?}");
    assert!(
        license_findings[0]
            .message
            .starts_with("sys@0.3.0 is licensed `GPL-3.0-only`")
    );
    assert_eq!(
        Verdict::of(build_findings.iter().chain(&license_findings)),
        Verdict::Deny
    );
}

#[test]
fn a_bypass_pinned_by_checksum_silences_only_that_exact_crate() {
    let checksum = kiln_policy::Digest::of(b"libm-0.2.8.crate");
    let policy = Policy::parse(
        &format!("[build]\nbypass = [{{ crate = \"libm\", version = \"0.2.8\", checksum = \"{checksum}\" }}]\n"),
        "p.toml",
    )
    .unwrap();
    let libm = |version: &str, digest| crates::CrateInfo {
        name: "libm".into(),
        version: version.into(),
        license: Some("MIT".into()),
        license_file: None,
        build_script: true,
        proc_macro: false,
        links: None,
        checksum: Some(digest),
    };
    assert!(build::check(&[libm("0.2.8", checksum)], &policy.build).is_empty());
    assert_eq!(
        build::check(&[libm("0.2.9", checksum)], &policy.build).len(),
        1,
        "another version"
    );
    assert_eq!(
        build::check(
            &[libm("0.2.8", kiln_policy::Digest::of(b"evil"))],
            &policy.build
        )
        .len(),
        1,
        "other bytes"
    );
}
