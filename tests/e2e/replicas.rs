//! Replicas of one deployment on one PostgreSQL database share one key set: a second replica
//! with no keys is refused at start (and makes none), one with other keys is refused, and one
//! given the first replica's keys starts, and what it signs (an approval, the revocation list)
//! verifies with the first replica's trust file.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kiln_policy::revocation::RevocationList;
use kiln_policy::{Expectation, Keyring, StatementKind, Verifier};
use kiln_tests::kiln_binary;
use kiln_tests::postgres::TestDatabase;
use kiln_tests::server::{KilnServer, ServerOptions};

/// Starts `kiln serve` on `data` and `database` expecting it to refuse; answers its stderr.
fn refused_start(data: &Path, database: &str) -> String {
    let mut child = Command::new(kiln_binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-builder",
            "--no-executor",
        ])
        .arg("--data")
        .arg(data)
        .args(["--database-url", database])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "the replica started");
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return err;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the replica started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn replicas_share_one_key_set_and_other_keys_are_refused_at_start() {
    let database = TestDatabase::create();
    let first = KilnServer::start_with(ServerOptions {
        database_url: Some(database.url.clone()),
        ..ServerOptions::default()
    });

    // A second replica with a fresh data directory: refused, and no keys are made.
    let bare = tempfile::tempdir().unwrap();
    let said = refused_start(bare.path(), &database.url);
    assert!(
        said.contains("no signing key") && said.contains("copy that replica's keys/"),
        "{said}"
    );
    assert!(!bare.path().join("keys/builder.key").exists());

    // One with keys of its own: refused, naming the role and both key ids.
    let stranger = tempfile::tempdir().unwrap();
    let theirs = kiln_registry::keys::load_or_create(stranger.path(), true).unwrap();
    let said = refused_start(stranger.path(), &database.url);
    assert!(
        said.contains("is not the deployment's") && said.contains(&theirs.builder.id().to_string()),
        "{said}"
    );

    // One given the first replica's keys starts; what it signs verifies with the first's trust.
    let second = KilnServer::start_with(ServerOptions {
        database_url: Some(database.url.clone()),
        keys_from: Some(first.data_dir().to_owned()),
        ..ServerOptions::default()
    });
    assert!(second.banner.contains("none here"), "{}", second.banner);
    let keyring = Keyring::load(&first.data_dir().join("trust.toml")).unwrap();
    let list = second
        .request(reqwest::Method::GET, "/api/kiln/v1/revocations", None)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    RevocationList::verify(&Verifier::new(&keyring), &list).unwrap();

    // Published on the first, approved on the second.
    let author = first.token("ada", &["publish"]);
    let worker = first.token("builders", &["worker"]);
    let reviewer = first.token("rita", &["review"]);
    let (status, body) = first.publish_file(&author, "replicated", "1.0.0");
    assert_eq!(status, 200, "{body}");
    first.pass_audit_and_build(&worker, "replicated", "1.0.0");
    let (status, body) = second.approve(&reviewer, "replicated", "1.0.0");
    assert_eq!(status, 200, "{body}");
    // (Each replica here keeps blobs in its own directory; a deployment shares one bucket.)
    let detail = second.get_json("/api/kiln/v1/submissions/replicated/1.0.0", None);
    let (_, bundle) = second.artifact(&detail, "review");
    let verified = Verifier::new(&keyring)
        .verify_json(
            &bundle,
            Expectation {
                kind: Some(StatementKind::Review),
                subject: None,
            },
        )
        .unwrap();
    assert_eq!(verified.key_name, "kiln reviewer");
}
