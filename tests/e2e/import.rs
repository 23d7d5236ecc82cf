//! `kiln import` against an upstream index on loopback serving real crates.io `.crate` files
//! (and hand-made ones): what a closure holds and what it never demands, and bad upstreams and
//! bad requests, each answered with one line naming the crate, with nothing imported.

use kiln_tests::cli::{kiln, refused, stdout};
use kiln_tests::crate_file::CrateFile;
use kiln_tests::server::KilnServer;
use kiln_tests::upstream::{Fault, Upstream, real_crate};
use serde_json::Value;

fn import(server: &KilnServer, upstream: &Upstream, args: &[&str]) -> std::process::Output {
    let mut all = vec!["import", "--upstream", &upstream.index];
    all.extend(args);
    kiln(&server.url, &server.admin_token, &all)
}

/// The `NAME@VERSION` of each member of a `--json` plan.
fn closure_of(out: &std::process::Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "{}{}",
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: Value = serde_json::from_str(&stdout(out)).unwrap();
    plan["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}@{}",
                m["crate"].as_str().unwrap(),
                m["version"].as_str().unwrap()
            )
        })
        .collect()
}

/// A hand-made `.crate` whose manifest declares `dependencies` (TOML lines).
fn hand_made(name: &str, version: &str, dependencies: &str) -> Vec<u8> {
    let mut file = CrateFile::new();
    file.file(
        &format!("{name}-{version}/Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\nlicense = \"MIT\"\n\n[dependencies]\n{dependencies}\n"
        )
        .as_bytes(),
    );
    file.file(&format!("{name}-{version}/src/lib.rs"), b"pub fn f() {}\n");
    file.gzip()
}

/// No submission, and no more blobs than `blobs` (what the server stored before).
fn nothing_imported(server: &KilnServer, blobs: usize) {
    assert_eq!(
        server.get_json("/api/kiln/v1/submissions", None),
        Value::Array(vec![])
    );
    assert_eq!(server.blob_count(), blobs, "no blob was stored");
}

#[test]
fn memchr_comes_in_with_its_core_rename_and_nothing_it_does_not_need() {
    let upstream = Upstream::start();
    let server = KilnServer::start();
    let blobs = server.blob_count();

    // memchr declares `core = { package = "rustc-std-workspace-core", optional = true }`, an
    // optional `log` and a dev-dependency on `quickcheck`: a dependent needs none of them.
    let dry = import(&server, &upstream, &["memchr@2", "--dry-run", "--json"]);
    assert_eq!(closure_of(&dry), ["memchr@2.8.3"]);
    nothing_imported(&server, blobs);
    // The table for people says the same.
    let table = import(&server, &upstream, &["memchr@2", "--dry-run"]);
    let text = stdout(&table);
    assert!(
        text.contains("memchr") && text.contains("Unlicense OR MIT"),
        "{text}"
    );
    assert!(text.contains("nothing was (dry run)"), "{text}");
    nothing_imported(&server, blobs);

    let out = import(&server, &upstream, &["memchr@2.8.3", "--json"]);
    assert_eq!(closure_of(&out), ["memchr@2.8.3"]);
    let detail = server.get_json("/api/kiln/v1/submissions/memchr/2.8.3", None);
    assert_eq!(detail["state"], "submitted");
    assert_eq!(detail["origin"], upstream.index);
    assert_eq!(
        detail["features"],
        serde_json::json!(["alloc", "default", "std"])
    );
    let stored = server
        .request(
            reqwest::Method::GET,
            "/api/kiln/v1/submissions/memchr/2.8.3/crate",
            Some(&server.admin_token),
        )
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert!(stored[..] == real_crate("memchr", "2.8.3")[..]);

    // The optional `log` is demanded once a feature turns it on; this upstream has no `log`.
    let out = import(
        &server,
        &upstream,
        &["memchr@2.8.3", "--features", "logging"],
    );
    refused(&out, "`log`");
    // Importing again reports what is here, and adds nothing.
    let again = import(&server, &upstream, &["memchr@2.8.3", "--json"]);
    let plan: Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(plan["members"][0]["status"], "in-review", "{plan}");
    assert_eq!(
        server
            .get_json("/api/kiln/v1/submissions", None)
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn bad_upstreams_and_bad_requests_import_nothing_and_name_the_crate() {
    let upstream = Upstream::start();
    let server = KilnServer::start();
    let blobs = server.blob_count();
    let cases: [(&str, Option<Fault>, &[&str], &str); 7] = [
        ("csv-core", Some(Fault::NotFound), &["csv@1"], "`csv-core`"),
        ("itoa", Some(Fault::ServerError), &["serde_json@1"], "itoa"),
        ("ryu", Some(Fault::WrongChecksum), &["csv@1"], "ryu"),
        ("zmij", Some(Fault::Yanked), &["serde_json@1"], "zmij"),
        ("", None, &["serde_json@99"], "serde_json"),
        (
            "",
            None,
            &["serde_json@1", "--features", "no-such-feature"],
            "no-such-feature",
        ),
        ("", None, &["no-such-crate@1"], "no-such-crate"),
    ];
    for (krate, fault, args, named) in cases {
        upstream.clear_faults();
        if let Some(fault) = fault {
            upstream.fault(krate, fault);
        }
        let out = import(&server, &upstream, args);
        refused(&out, named);
        nothing_imported(&server, blobs);
    }
    upstream.clear_faults();

    // A crate whose manifest declares a git dependency (the index line cannot say so).
    upstream.add(
        "fetches-git",
        "0.1.0",
        hand_made(
            "fetches-git",
            "0.1.0",
            "helper = { git = \"https://example.invalid/helper.git\" }",
        ),
        serde_json::json!([]),
    );
    let out = import(&server, &upstream, &["fetches-git@0.1.0"]);
    refused(&out, "fetches-git@0.1.0");
    assert!(String::from_utf8_lossy(&out.stderr).contains("git"));
    nothing_imported(&server, blobs);

    // A good closure that the failures never touched imports fine afterwards.
    let out = import(&server, &upstream, &["itoa@1", "--json"]);
    assert_eq!(closure_of(&out), ["itoa@1.0.19"]);
}
