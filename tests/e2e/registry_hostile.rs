//! Hostile publishes and requests against the real server: each gets the right status and a
//! clear message, and neither the database nor the blob store changes.

use std::path::Path;

use kiln_tests::crate_file::{CrateFile, gzip, metadata, publish_body};
use kiln_tests::server::{KilnServer, ServerOptions};
use reqwest::Method;
use serde_json::{Value, json};

/// What the server holds: every submission, every event, every stored blob.
#[derive(Debug, PartialEq)]
struct Snapshot {
    submissions: Value,
    events: usize,
    blobs: Vec<String>,
}

fn files_under(dir: &Path, out: &mut Vec<String>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files_under(&path, out);
            } else {
                out.push(path.display().to_string());
            }
        }
    }
}

fn snapshot(server: &KilnServer) -> Snapshot {
    let mut blobs = Vec::new();
    files_under(&server.blob_dir().join("sha256"), &mut blobs);
    blobs.sort();
    let events = server.get_json("/api/kiln/v1/events?limit=1000", Some(&server.admin_token));
    Snapshot {
        submissions: server.get_json("/api/kiln/v1/submissions", None),
        events: events.as_array().unwrap().len(),
        blobs,
    }
}

fn publish_raw(server: &KilnServer, token: Option<&str>, body: Vec<u8>) -> (u16, String) {
    server.publish_raw(token, body)
}

fn publish(
    server: &KilnServer,
    token: &str,
    name: &str,
    version: &str,
    tarball: Vec<u8>,
) -> (u16, String) {
    let meta = metadata(name, version).to_string();
    publish_raw(server, Some(token), publish_body(meta.as_bytes(), &tarball))
}

/// Publishes a well-formed crate `name@version`.
fn publish_valid(server: &KilnServer, token: &str, name: &str, version: &str) -> (u16, String) {
    publish(
        server,
        token,
        name,
        version,
        CrateFile::valid(name, version).gzip(),
    )
}

/// Asserts that `attempt` is refused with `status` and a message containing `needle`, and that
/// nothing stored changed.
fn refused(
    server: &KilnServer,
    status: u16,
    needle: &str,
    attempt: impl FnOnce() -> (u16, String),
) {
    let before = snapshot(server);
    let (got, detail) = attempt();
    assert_eq!(
        got, status,
        "expected {status} for `{needle}`, got {got}: {detail}"
    );
    assert!(detail.contains(needle), "expected `{needle}` in: {detail}");
    assert_eq!(
        snapshot(server),
        before,
        "a refused request changed what is stored ({needle})"
    );
    // The server keeps serving.
    assert_eq!(server.get_json("/healthz", None)["status"], "ok");
}

#[test]
fn hostile_publish_frames_and_tarballs_change_nothing() {
    let server = KilnServer::start_with(ServerOptions {
        max_publish_bytes: Some(2 * 1024 * 1024),
        ..ServerOptions::default()
    });
    let alice = server.token("alice", &["publish"]);
    // One good version first, so that "unchanged" has something in it.
    let (status, detail) = publish_valid(&server, &alice, "demo", "0.1.0");
    assert_eq!(status, 200, "{detail}");

    let meta = metadata("demo", "0.2.0").to_string();
    let good_tar = CrateFile::valid("demo", "0.2.0").gzip();

    refused(&server, 400, "truncated", || {
        publish_raw(&server, Some(&alice), vec![1, 2])
    });
    refused(&server, 400, "truncated", || {
        let mut body = publish_body(meta.as_bytes(), &good_tar);
        body[0..4].copy_from_slice(&(meta.len() as u32 + 100_000).to_le_bytes());
        publish_raw(&server, Some(&alice), body)
    });
    refused(&server, 400, "tarball is shorter than its length", || {
        let mut body = publish_body(meta.as_bytes(), &good_tar);
        let at = 4 + meta.len();
        body[at..at + 4].copy_from_slice(&(good_tar.len() as u32 * 2).to_le_bytes());
        publish_raw(&server, Some(&alice), body)
    });
    // Feature names Cargo would refuse, and features the packaged Cargo.toml does not have.
    for (features, needle) in [
        (json!({"a b\n": []}), "is not a feature name"),
        (json!({"extra": []}), "are not the packaged Cargo.toml's"),
    ] {
        refused(&server, 422, needle, || {
            let mut meta = metadata("demo", "0.2.0");
            meta["features"] = features;
            publish_raw(
                &server,
                Some(&alice),
                publish_body(meta.to_string().as_bytes(), &good_tar),
            )
        });
    }
    refused(&server, 400, "metadata is invalid", || {
        publish_raw(
            &server,
            Some(&alice),
            publish_body(b"\xff\xfe\xfd", &good_tar),
        )
    });
    refused(&server, 400, "over the", || {
        let mut body = Vec::from((2_000_000u32).to_le_bytes());
        body.extend(std::iter::repeat_n(b' ', 1_500_000));
        publish_raw(&server, Some(&alice), body)
    });
    refused(&server, 413, "", || {
        // The server answers before reading the whole body and then closes the connection;
        // asking for that up front keeps the client from reusing the closed connection.
        let response = server
            .request(Method::PUT, "/api/v1/crates/new", Some(&alice))
            .header("Connection", "close")
            .body(vec![0u8; 3 * 1024 * 1024])
            .send()
            .unwrap();
        (response.status().as_u16(), String::new())
    });

    let evil = |f: &dyn Fn(&mut CrateFile)| {
        let mut file = CrateFile::valid("demo", "0.2.0");
        f(&mut file);
        file.gzip()
    };
    refused(&server, 422, "disallowed path", || {
        publish(
            &server,
            &alice,
            "demo",
            "0.2.0",
            evil(&|f| {
                f.file("demo-0.2.0/../../escape", b"x");
            }),
        )
    });
    refused(&server, 422, "disallowed path", || {
        publish(
            &server,
            &alice,
            "demo",
            "0.2.0",
            evil(&|f| {
                f.file("/etc/cron.d/evil", b"x");
            }),
        )
    });
    for kind in [
        tar::EntryType::Symlink,
        tar::EntryType::Link,
        tar::EntryType::Char,
        tar::EntryType::Block,
    ] {
        refused(&server, 422, "disallowed kind", || {
            publish(
                &server,
                &alice,
                "demo",
                "0.2.0",
                evil(&|f| {
                    f.entry("demo-0.2.0/link", kind, "/etc/passwd", b"");
                }),
            )
        });
    }
    refused(&server, 422, "more than", || {
        // 300 MiB of zeros compress to well under the 2 MiB publish limit.
        let mut tar = Vec::new();
        {
            let mut builder = tar::Builder::new(&mut tar);
            let mut header = tar::Header::new_gnu();
            header.set_path("demo-0.2.0/Cargo.toml").unwrap();
            let manifest = b"[package]\nname = \"demo\"\nversion = \"0.2.0\"\n";
            header.set_size(manifest.len() as u64);
            header.set_cksum();
            builder.append(&header, &manifest[..]).unwrap();
            let mut header = tar::Header::new_gnu();
            header.set_path("demo-0.2.0/zeros").unwrap();
            header.set_size(300 * 1024 * 1024);
            header.set_cksum();
            builder
                .append(&header, std::io::repeat(0).take_bytes(300 * 1024 * 1024))
                .unwrap();
            builder.finish().unwrap();
        }
        let bomb = gzip(&tar);
        assert!(
            bomb.len() < 2 * 1024 * 1024,
            "the bomb fits the limit: {}",
            bomb.len()
        );
        publish(&server, &alice, "demo", "0.2.0", bomb)
    });
    refused(&server, 422, "more than", || {
        let mut file = CrateFile::valid("demo", "0.2.0");
        for i in 0..100_000 {
            file.file(&format!("demo-0.2.0/f{i}"), b"");
        }
        publish(&server, &alice, "demo", "0.2.0", file.gzip())
    });
    refused(&server, 422, "names the crate `evil`", || {
        let mut file = CrateFile::new();
        file.file(
            "demo-0.2.0/Cargo.toml",
            b"[package]\nname = \"evil\"\nversion = \"0.2.0\"\n",
        );
        publish(&server, &alice, "demo", "0.2.0", file.gzip())
    });
    refused(&server, 422, "not a valid gzip", || {
        publish(&server, &alice, "demo", "0.2.0", b"plain bytes".to_vec())
    });
}

/// `Read::take` for `std::io::Repeat`, named for the test above.
trait TakeBytes {
    fn take_bytes(self, n: u64) -> std::io::Take<std::io::Repeat>;
}

impl TakeBytes for std::io::Repeat {
    fn take_bytes(self, n: u64) -> std::io::Take<std::io::Repeat> {
        std::io::Read::take(self, n)
    }
}

#[test]
fn names_versions_and_tokens_are_enforced() {
    let server = KilnServer::start();
    let alice = server.token("alice", &["publish"]);
    let mallory = server.token("mallory", &["publish"]);
    let (status, detail) = publish_valid(&server, &alice, "Kernel-Stats", "1.0.0");
    assert_eq!(status, 200, "{detail}");

    // Squatting by case and separators.
    for squat in ["kernel-stats", "kernel_stats", "KERNEL_STATS"] {
        refused(
            &server,
            409,
            "conflicts with the existing crate `Kernel-Stats`",
            || publish_valid(&server, &mallory, squat, "1.0.0"),
        );
    }
    // Bad names and reserved names.
    for (name, needle) in [
        ("std", "reserved"),
        ("9lives", "must start with"),
        ("a.b", "contains `.`"),
        (&*"x".repeat(65), "longer than 64"),
    ] {
        refused(&server, 422, needle, || {
            publish_valid(&server, &alice, name, "1.0.0")
        });
    }
    // Versions are unique, ignoring build metadata; not semver is refused.
    refused(&server, 409, "versions cannot be replaced", || {
        publish_valid(&server, &alice, "Kernel-Stats", "1.0.0")
    });
    refused(&server, 409, "already has version `1.0.0`", || {
        publish_valid(&server, &alice, "Kernel-Stats", "1.0.0+build.5")
    });
    refused(&server, 422, "not a valid semver", || {
        publish_valid(&server, &alice, "Kernel-Stats", "1.0")
    });
    // Someone else's crate.
    refused(&server, 403, "not an owner", || {
        publish_valid(&server, &mallory, "Kernel-Stats", "1.1.0")
    });

    // Tokens: missing, unknown, wrong scope, limited to other crates, expired, revoked.
    let body = || {
        publish_body(
            metadata("fresh", "0.1.0").to_string().as_bytes(),
            &CrateFile::valid("fresh", "0.1.0").gzip(),
        )
    };
    refused(&server, 401, "needs an API token", || {
        publish_raw(&server, None, body())
    });
    refused(&server, 401, "not valid", || {
        publish_raw(&server, Some("kiln_deadbeef"), body())
    });
    let yanker = server.token("yanker", &["yank"]);
    refused(&server, 403, "does not have the `publish` scope", || {
        publish_raw(&server, Some(&yanker), body())
    });
    let (status, limited) = server.post_json(
        "/api/kiln/v1/tokens",
        Some(&server.admin_token),
        &serde_json::json!({"login": "alice", "name": "kernels only", "scopes": ["publish"], "crate_pattern": "kernel-*"}),
    );
    assert_eq!(status, 200);
    refused(&server, 403, "may not publish `fresh`", || {
        publish_raw(&server, Some(limited["token"].as_str().unwrap()), body())
    });
    let (status, expired) = server.post_json(
        "/api/kiln/v1/tokens",
        Some(&server.admin_token),
        &serde_json::json!({"login": "alice", "name": "old", "scopes": ["publish"], "expires_at": 1}),
    );
    assert_eq!(status, 200);
    refused(&server, 401, "expired", || {
        publish_raw(&server, Some(expired["token"].as_str().unwrap()), body())
    });
    let (status, revoked) = server.post_json(
        "/api/kiln/v1/tokens",
        Some(&server.admin_token),
        &serde_json::json!({"login": "alice", "name": "to revoke", "scopes": ["publish"]}),
    );
    assert_eq!(status, 200);
    let id = revoked["id"].as_i64().unwrap();
    let response = server
        .request(
            Method::DELETE,
            &format!("/api/kiln/v1/tokens/{id}"),
            Some(&server.admin_token),
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    refused(&server, 401, "revoked", || {
        publish_raw(&server, Some(revoked["token"].as_str().unwrap()), body())
    });
    // A login is a plain word: no line breaks, spaces or control characters.
    for login in ["ada\nrita", "ada rita", "", "a\u{1b}[31m"] {
        refused(&server, 422, "is not valid", || {
            let (status, body) = server.post_json(
                "/api/kiln/v1/tokens",
                Some(&server.admin_token),
                &serde_json::json!({"login": login, "name": "x", "scopes": ["publish"]}),
            );
            (
                status,
                body["errors"][0]["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        });
    }
    // Only admins make tokens.
    refused(&server, 403, "`admin` scope", || {
        let (status, body) = server.post_json(
            "/api/kiln/v1/tokens",
            Some(&alice),
            &serde_json::json!({"login": "eve", "name": "x", "scopes": ["admin"]}),
        );
        (
            status,
            body["errors"][0]["detail"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    });
}

#[test]
fn a_private_registry_challenges_cargo_for_a_token() {
    let server = KilnServer::start_with(ServerOptions {
        auth_required: true,
        ..ServerOptions::default()
    });
    let response = server
        .request(Method::GET, "/index/config.json", None)
        .send()
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Cargo login_url="), "{challenge}");
    let reader = server.token("reader", &["publish"]);
    let config = server.get_json("/index/config.json", Some(&reader));
    assert_eq!(config["auth-required"], true);
    let response = server
        .request(Method::GET, "/api/v1/crates?q=x", None)
        .send()
        .unwrap();
    assert_eq!(response.status(), 401);
}
