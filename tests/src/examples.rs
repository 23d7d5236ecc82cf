//! The example kernels in a registry, as the quick start puts them there: their crates.io
//! closures imported and approved, the SDK curated, the kernels published with `cargo publish`
//! and approved.

use serde_json::Value;

use crate::cargo::{CargoWorld, stderr};
use crate::cli::{kiln, stdout};
use crate::server::KilnServer;
use crate::upstream::Upstream;
use crate::workspace_root;

/// Imports the crates.io closures the example kernels use (serde_json, serde with derive, csv) from a
/// loopback upstream serving the real crates, approves them, publishes the SDK (curated with its
/// `serde` feature) and the example kernels and approves them, as the quick start does;
/// `kernel-hostile` is approved too when `approve_hostile`, and otherwise left built and waiting
/// for a reviewer.
pub fn publish_examples(server: &KilnServer, author: &str, reviewer: &str, approve_hostile: bool) {
    let upstream = Upstream::start();
    for (spec, args) in [
        ("serde_json@1", &[][..]),
        ("serde@1", &["--features", "derive"][..]),
        ("csv@1", &[][..]),
    ] {
        let mut all = vec!["import", spec, "--upstream", &upstream.index, "--json"];
        all.extend(args);
        let out = kiln(&server.url, &server.admin_token, &all);
        assert!(out.status.success(), "{}{}", stderr(&out), stdout(&out));
        let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
        for member in plan["members"].as_array().unwrap() {
            let (name, version) = (
                member["crate"].as_str().unwrap(),
                member["version"].as_str().unwrap(),
            );
            let detail = server.settled(name, version);
            assert!(
                matches!(detail["state"].as_str(), Some("built" | "approved")),
                "{detail}"
            );
        }
        let root = plan["root"].as_str().unwrap();
        let out = kiln(
            &server.url,
            reviewer,
            &["review", "approve", root, "--closure"],
        );
        assert!(out.status.success(), "{}{}", stderr(&out), stdout(&out));
    }
    let world = CargoWorld::new(server);
    world.publish_sdk(server, author, reviewer);
    let out = kiln(
        &server.url,
        reviewer,
        &[
            "review",
            "curate",
            "kiln-kernel@0.1.0",
            "--features",
            "serde",
        ],
    );
    assert!(out.status.success(), "{}{}", stderr(&out), stdout(&out));
    assert_eq!(server.settled("kiln-kernel", "0.1.0")["state"], "built");
    let (status, body) = server.approve(reviewer, "kiln-kernel", "0.1.0");
    assert_eq!(status, 200, "{body}");
    for (dir, name, approve) in [
        ("examples/kernels/csv-stats", "kernel-csv-stats", true),
        ("examples/kernels/word-freq", "kernel-word-freq", true),
        ("examples/kernels/mandelbrot", "kernel-mandelbrot", true),
        ("tests/kernels/hostile", "kernel-hostile", approve_hostile),
    ] {
        let out = world.publish(&workspace_root().join(dir), Some(author));
        assert!(out.status.success(), "{}", stderr(&out));
        let detail = server.settled(name, "0.1.0");
        assert_eq!(detail["state"], "built", "{detail}");
        if approve {
            let (status, body) = server.approve(reviewer, name, "0.1.0");
            assert_eq!(status, 200, "{body}");
        }
    }
}
