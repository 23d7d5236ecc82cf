//! kiln's cargo-vet feed with real cargo-vet: `GET /vet/audits.toml` is what `cargo vet fmt`
//! writes, and a project that takes its crates from kiln (crates.io replaced by the kiln
//! registry, as curated projects do) passes `cargo vet` with the `[imports.kiln]` line
//! docs/registry.md gives, for the criteria the reviewer vouched for and no others.

use std::path::Path;

use kiln_tests::cargo::{CargoWorld, stderr};
use kiln_tests::cli::{kiln, stdout};
use kiln_tests::server::KilnServer;
use kiln_tests::vet::cargo_vet;

fn vet(world: &CargoWorld, dir: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["vet"];
    all.extend(args);
    world.tool(cargo_vet(), dir, &all)
}

/// The consumer's cargo-vet config: kiln's feed imported, and the consumer's dependencies held
/// to `criteria`.
fn config(feed: &str, criteria: &str) -> String {
    format!(
        "\n# cargo-vet config file\n\n[cargo-vet]\nversion = \"0.10\"\n\n[imports.kiln]\nurl = \"{feed}\"\n\n\
         [policy.vet-consumer]\ncriteria = \"{criteria}\"\n"
    )
}

#[test]
fn cargo_vet_imports_the_approvals_from_the_registry_feed() {
    let server = KilnServer::start();
    let author = server.token("ada", &["publish"]);
    let worker = server.token("builders", &["worker"]);
    let admin = server.admin_token.clone();
    let world = CargoWorld::new(&server);
    let lib = world.library(
        "kiln-vetted-gauge",
        "1.0.0",
        "",
        "pub fn level() -> u8 { 1 }\n",
    );
    let out = world.publish(&lib, Some(&author));
    assert!(out.status.success(), "{}", stderr(&out));
    server.pass_audit_and_build(&worker, "kiln-vetted-gauge", "1.0.0");
    let out = kiln(
        &server.url,
        &admin,
        &["review", "approve", "kiln-vetted-gauge@1.0.0"],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let feed_url = format!("{}/vet/audits.toml", server.url);
    let feed = reqwest::blocking::get(&feed_url).unwrap().text().unwrap();
    assert!(feed.contains("[[audits.kiln-vetted-gauge]]"), "{feed}");
    // `kiln review export-vet` prints the same feed.
    let out = kiln(&server.url, &admin, &["review", "export-vet"]);
    assert_eq!(stdout(&out), feed);

    // A project depending on it the crates.io way, with crates.io replaced by kiln.
    world.curated_only();
    let consumer = world.library(
        "vet-consumer",
        "0.1.0",
        "kiln-vetted-gauge = \"1.0.0\"",
        "pub use kiln_vetted_gauge::level;\n",
    );
    let out = world.cargo(&consumer, &["generate-lockfile"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = vet(&world, &consumer, &["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let store = consumer.join("supply-chain");

    // Canonical: `cargo vet fmt` leaves the feed as it is.
    let own = std::fs::read_to_string(store.join("audits.toml")).unwrap();
    std::fs::write(store.join("audits.toml"), &feed).unwrap();
    let out = vet(&world, &consumer, &["fmt"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(store.join("audits.toml")).unwrap(),
        feed,
        "cargo vet fmt rewrote the feed"
    );
    std::fs::write(store.join("audits.toml"), own).unwrap();

    // Imported, kiln's approval meets `safe-to-run`…
    std::fs::write(store.join("config.toml"), config(&feed_url, "safe-to-run")).unwrap();
    let out = vet(&world, &consumer, &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // …but not cargo-vet's default `safe-to-deploy`, which the reviewer did not vouch for.
    std::fs::write(
        store.join("config.toml"),
        config(&feed_url, "safe-to-deploy"),
    )
    .unwrap();
    let out = vet(&world, &consumer, &[]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        format!("{}{}", stdout(&out), stderr(&out)).contains("kiln-vetted-gauge"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // A reviewer who vouches for `safe-to-deploy` (a later version) makes it pass.
    let next = world.library(
        "kiln-vetted-gauge",
        "1.0.1",
        "",
        "pub fn level() -> u8 { 2 }\n",
    );
    let out = world.publish(&next, Some(&author));
    assert!(out.status.success(), "{}", stderr(&out));
    server.pass_audit_and_build(&worker, "kiln-vetted-gauge", "1.0.1");
    let out = kiln(
        &server.url,
        &admin,
        &[
            "review",
            "approve",
            "kiln-vetted-gauge@1.0.1",
            "--criteria",
            "safe-to-deploy",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = world.cargo(&consumer, &["update"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = vet(&world, &consumer, &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}
