//! Real `cargo`, pointed at a kiln server, with its own `CARGO_HOME` so that tests share no
//! index cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::server::KilnServer;

/// A scratch area with crates to publish and build against one server.
pub struct CargoWorld {
    root: tempfile::TempDir,
    index_url: String,
}

impl CargoWorld {
    /// A new scratch area for `server`.
    pub fn new(server: &KilnServer) -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("cargo-home")).unwrap();
        Self {
            root,
            index_url: server.index_url(),
        }
    }

    /// Writes a library crate `name` at `version` whose Cargo.toml has `deps` (TOML lines under
    /// `[dependencies]`) and returns its directory.
    pub fn library(&self, name: &str, version: &str, deps: &str, code: &str) -> PathBuf {
        self.write_crate(name, version, "", deps, code)
    }

    /// Writes a kernel crate (a `cdylib`) like [`library`](Self::library).
    pub fn kernel(&self, name: &str, version: &str, deps: &str, code: &str) -> PathBuf {
        self.write_crate(
            name,
            version,
            "[lib]\ncrate-type = [\"cdylib\"]\n\n",
            deps,
            code,
        )
    }

    fn write_crate(&self, name: &str, version: &str, lib: &str, deps: &str, code: &str) -> PathBuf {
        let dir = self.root.path().join(format!("{name}-{version}"));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\nlicense = \"MIT\"\n\
                 description = \"{name}, a crate for kiln's tests\"\npublish = [\"kiln\"]\n\n{lib}[dependencies]\n{deps}\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.join("src/lib.rs"), code).unwrap();
        dir
    }

    /// Resolves dependencies declared the crates.io way (`serde = "1"`) against the kiln
    /// registry, as an author whose kernels must build from approved crates sets Cargo up: the
    /// lockfile that `cargo publish` packages then pins versions kiln has.
    pub fn curated_only(&self) {
        let dir = self.root.path().join(".cargo");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.toml"),
            "[source.crates-io]\nreplace-with = \"kiln\"\n",
        )
        .unwrap();
    }

    /// Runs `program` (a cargo subcommand's binary, such as `cargo-vet`) in `dir` with the
    /// kiln registry configured, as cargo would run it.
    pub fn tool(&self, program: &Path, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new(program);
        cmd.args(args).env("CARGO", env!("CARGO"));
        self.run(cmd, dir, None)
    }

    /// Runs cargo in `dir` with the kiln registry configured and `token` as its token.
    pub fn cargo(&self, dir: &Path, args: &[&str], token: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(args);
        self.run(cmd, dir, token)
    }
}

impl CargoWorld {
    /// `cargo publish --registry kiln` of the crate in `dir`, as an author runs it: Cargo's
    /// wait for the version to appear in the index ends as soon as the registry lists it as
    /// awaiting approval.
    pub fn publish(&self, dir: &Path, token: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "publish",
            "--registry",
            "kiln",
            "--no-verify",
            "--allow-dirty",
        ]);
        self.run(cmd, dir, token)
    }

    /// Publishes the kernel SDK through the server (`kiln-abi`, then `kiln-kernel`, each
    /// audited, built and approved in turn), as every kernel needs it approved first.
    pub fn publish_sdk(&self, server: &KilnServer, author: &str, reviewer: &str) {
        for (dir, name) in [("abi", "kiln-abi"), ("sdk", "kiln-kernel")] {
            let out = self.publish(&crate::workspace_root().join(dir), Some(author));
            assert!(out.status.success(), "{}", stderr(&out));
            let detail = server.settled(name, "0.1.0");
            assert_eq!(detail["state"], "built", "{detail}");
            let (status, body) = server.approve(reviewer, name, "0.1.0");
            assert_eq!(status, 200, "{body}");
        }
    }

    fn run(&self, mut cmd: Command, dir: &Path, token: Option<&str>) -> Output {
        cmd.current_dir(dir)
            .env("CARGO_HOME", self.root.path().join("cargo-home"))
            .env("CARGO_TARGET_DIR", self.root.path().join("target"))
            .env("CARGO_REGISTRIES_KILN_INDEX", &self.index_url)
            .env("CARGO_REGISTRIES_KILN_CREDENTIAL_PROVIDER", "cargo:token")
            .env("CARGO_NET_RETRY", "0")
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("CARGO_REGISTRIES_KILN_TOKEN")
            .env_remove("RUSTFLAGS");
        if let Some(token) = token {
            cmd.env("CARGO_REGISTRIES_KILN_TOKEN", token);
        }
        cmd.output().expect("run cargo")
    }
}

/// The text of a cargo run's stderr (where cargo reports).
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
