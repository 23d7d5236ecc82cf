//! `kiln import` against an upstream registry served on loopback (a static sparse index, as
//! crates.io's is): the `.crate` is checked against the upstream checksum, submitted to
//! quarantine with its origin, and served byte for byte once approved.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use kiln_policy::Digest;
use kiln_tests::crate_file::CrateFile;
use kiln_tests::server::KilnServer;

/// A static sparse index served by Python's http.server from a directory.
struct StaticRegistry {
    url: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl StaticRegistry {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 serves the upstream index");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let port = line
            .split(" port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("port");
        let url = format!("http://127.0.0.1:{port}");
        std::fs::write(
            dir.path().join("config.json"),
            format!("{{\"dl\": \"{url}/crates/{{crate}}/{{crate}}-{{version}}.crate\"}}"),
        )
        .unwrap();
        Self { url, dir, child }
    }

    /// Adds `name@version` with `tarball`, listing `listed_checksum` in the index.
    fn add(&self, name: &str, version: &str, tarball: &[u8], listed_checksum: &str) {
        let crates = self.dir.path().join("crates").join(name);
        std::fs::create_dir_all(&crates).unwrap();
        std::fs::write(crates.join(format!("{name}-{version}.crate")), tarball).unwrap();
        let index = self.dir.path().join(kiln_registry::names::index_path(name));
        std::fs::create_dir_all(index.parent().unwrap()).unwrap();
        let line = serde_json::json!({
            "name": name, "vers": version, "deps": [], "cksum": listed_checksum,
            "features": {}, "yanked": false, "links": null,
        });
        let mut text = std::fs::read_to_string(&index).unwrap_or_default();
        text.push_str(&format!("{line}\n"));
        std::fs::write(index, text).unwrap();
    }
}

impl Drop for StaticRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn import(server: &KilnServer, upstream: &StaticRegistry, spec: &str) -> std::process::Output {
    Command::new(kiln_tests::kiln_binary())
        .args([
            "import",
            spec,
            "--upstream",
            &format!("sparse+{}/", upstream.url),
            "--registry",
            &server.url,
            "--token",
            &server.admin_token,
        ])
        .output()
        .unwrap()
}

#[test]
fn an_imported_crate_keeps_its_bytes_and_origin() {
    let upstream = StaticRegistry::start();
    let tarball = CrateFile::valid("upstream-lib", "1.2.3").gzip();
    let checksum = Digest::of(&tarball);
    upstream.add("upstream-lib", "1.2.3", &tarball, &checksum.hex());
    let server = KilnServer::start();

    let out = import(&server, &upstream, "upstream-lib@1.2.3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported upstream-lib@1.2.3"));
    let detail = server.get_json("/api/kiln/v1/submissions/upstream-lib/1.2.3", None);
    assert_eq!(detail["state"], "submitted");
    assert_eq!(detail["checksum"], checksum.hex());
    assert_eq!(detail["origin"], format!("sparse+{}/", upstream.url));

    // Once approved, kiln serves the same bytes under the same checksum.
    let worker = server.token("builder", &["worker"]);
    server.pass_audit_and_build(&worker, "upstream-lib", "1.2.3");
    let (status, body) = server.approve(&server.admin_token, "upstream-lib", "1.2.3");
    assert_eq!(status, 200, "{body}");
    let index = server
        .request(reqwest::Method::GET, "/index/up/st/upstream-lib", None)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let line: serde_json::Value = serde_json::from_str(index.trim()).unwrap();
    assert_eq!(line["cksum"], checksum.hex());
    let served = server
        .request(
            reqwest::Method::GET,
            "/api/v1/crates/upstream-lib/1.2.3/download",
            None,
        )
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(&served[..], &tarball[..]);
    let events = server.get_json("/api/kiln/v1/events?limit=1000", Some(&server.admin_token));
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "import" && e["subject"] == "upstream-lib@1.2.3")
    );
}

#[test]
fn a_checksum_mismatch_or_a_missing_version_imports_nothing() {
    let upstream = StaticRegistry::start();
    let tarball = CrateFile::valid("upstream-lib", "2.0.0").gzip();
    upstream.add(
        "upstream-lib",
        "2.0.0",
        &tarball,
        &Digest::of(b"something else").hex(),
    );
    let server = KilnServer::start();

    let out = import(&server, &upstream, "upstream-lib@2.0.0");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("but the upstream index says"), "{err}");
    let out = import(&server, &upstream, "upstream-lib@9.9.9");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no upstream-lib@9.9.9"));
    let out = import(&server, &upstream, "nothing-here@1.0.0");
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no crate `nothing-here`"));
    assert_eq!(
        server.get_json("/api/kiln/v1/submissions", None),
        serde_json::json!([])
    );
}
