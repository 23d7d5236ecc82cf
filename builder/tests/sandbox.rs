//! Hostile build scripts against the real sandbox (bubblewrap) and real `cargo`: each one is
//! contained, and the builder goes on.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use kiln_builder::build::{self, BuildError, Settings, Toolchain};
use kiln_builder::sandbox::{Isolation, Limits};
use kiln_policy::SigningKey;
use kiln_policy::policy_file::Policy;

/// A library crate whose build script is `build_rs`, in its own directory.
fn hostile_crate(root: &Path, name: &str, build_rs: &str) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\nlicense = \"MIT\"\n\n[dependencies]\n"),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), "pub fn f() {}\n").unwrap();
    std::fs::write(dir.join("build.rs"), build_rs).unwrap();
    dir
}

fn compile(dir: &Path, limits: Limits) -> Result<String, BuildError> {
    let isolation =
        Isolation::detect().expect("bubblewrap works on this machine (scripts/setup installs it)");
    let toolchain = Toolchain::detect().unwrap();
    let policy = Policy::parse("", "defaults").unwrap();
    let key = SigningKey::generate().unwrap();
    let prepared = build::prepare_local(dir, Some(dir)).unwrap();
    build::compile(
        &prepared,
        &Settings {
            toolchain: &toolchain,
            isolation,
            limits,
            wasm_policy: &policy.wasm,
            key: &key,
        },
    )
}

#[test]
fn a_build_script_reaches_no_network_no_host_file_and_writes_nowhere_outside() {
    let root = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let secret = root.path().join("secret.txt");
    std::fs::write(&secret, "host secret").unwrap();
    let outside = root.path().join("planted.txt");
    let build_rs = format!(
        r#"fn main() {{
    let net = std::net::TcpStream::connect_timeout(&"127.0.0.1:{port}".parse().unwrap(), std::time::Duration::from_secs(2)).is_ok();
    let read = std::fs::read({secret:?}).is_ok();
    let home = std::fs::read_dir("/root").is_ok();
    let wrote = std::fs::write({outside:?}, "planted").is_ok();
    let src = std::fs::write("planted-in-src.txt", "x").is_ok();
    println!("cargo:warning=net={{net}} read={{read}} home={{home}} wrote={{wrote}} src={{src}}");
}}
"#
    );
    let dir = hostile_crate(root.path(), "nosy", &build_rs);
    let log = compile(&dir, Limits::default()).expect("the build itself succeeds");
    assert!(
        log.contains("net=false read=false home=false wrote=false src=false"),
        "the build script reached something: {log}"
    );
    assert!(
        listener.accept().is_err(),
        "the listener on loopback saw a connection"
    );
    assert!(!outside.exists(), "a file was planted outside the sandbox");
    assert!(!dir.join("planted-in-src.txt").exists());
}

#[test]
fn a_build_script_that_loops_forever_is_stopped_by_the_wall_clock() {
    let root = tempfile::tempdir().unwrap();
    let dir = hostile_crate(
        root.path(),
        "spinner",
        "fn main() { loop { std::thread::sleep(std::time::Duration::from_millis(100)); } }\n",
    );
    let limits = Limits {
        wall: Duration::from_secs(20),
        ..Limits::default()
    };
    let err = compile(&dir, limits).unwrap_err();
    assert!(matches!(err, BuildError::Submission(_)), "{err}");
    assert!(err.to_string().contains("wall-clock limit"), "{err}");

    // The builder goes on: a plain crate builds next.
    let dir = hostile_crate(root.path(), "plain", "fn main() {}\n");
    compile(&dir, Limits::default()).unwrap();
}

#[test]
fn a_build_script_that_burns_cpu_is_killed_by_its_cpu_limit() {
    let root = tempfile::tempdir().unwrap();
    let dir = hostile_crate(
        root.path(),
        "burner",
        "fn main() { let mut x = 0u64; loop { x = x.wrapping_add(1); std::hint::black_box(x); } }\n",
    );
    let limits = Limits {
        cpu_secs: 3,
        wall: Duration::from_secs(120),
        ..Limits::default()
    };
    let err = compile(&dir, limits).unwrap_err();
    assert!(matches!(err, BuildError::Submission(_)), "{err}");
    assert!(err.to_string().contains("signal"), "{err}");
}

#[test]
fn a_build_script_that_forks_forever_is_stopped_at_its_process_limit() {
    let root = tempfile::tempdir().unwrap();
    // Bounded far below the host's pid_max, so that even a broken cap could not take the
    // machine down; each child sleeps with a marker argument this test looks for afterwards.
    let marker = format!("61.{}", std::process::id());
    let build_rs = format!(
        r#"fn main() {{
    let mut children = Vec::new();
    for _ in 0..5000 {{
        match std::process::Command::new("sleep").arg("{marker}").spawn() {{
            Ok(child) => children.push(child),
            Err(err) => {{
                println!("cargo:warning=spawned {{}} before: {{err}}", children.len());
                std::process::exit(1);
            }}
        }}
    }}
    loop {{ std::thread::sleep(std::time::Duration::from_secs(1)); }}
}}
"#
    );
    let dir = hostile_crate(root.path(), "forker", &build_rs);
    let limits = Limits {
        processes: 128,
        wall: Duration::from_secs(120),
        ..Limits::default()
    };
    let started = std::time::Instant::now();
    let err = compile(&dir, limits).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, BuildError::Submission(_)), "{message}");
    if kiln_builder::pids::PidsCgroup::available() {
        assert!(
            message.contains("more than 128 processes at once"),
            "{message}"
        );
    } else {
        // Without a writable pids hierarchy, RLIMIT_NPROC in the sandbox's user namespace
        // refuses the fork instead (this branch is for unprivileged builders).
        assert!(message.contains("spawned"), "{message}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(100),
        "stopped by the cap, not by the wall clock: {message}"
    );
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&marker))
        .collect();
    assert!(survivors.is_empty(), "left running: {survivors:?}");

    // The builder goes on: a plain crate builds next.
    let dir = hostile_crate(root.path(), "after-forker", "fn main() {}\n");
    compile(&dir, Limits::default()).unwrap();
}
