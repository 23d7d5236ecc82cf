//! A real `kiln serve` on a free loopback port with a temporary data directory, stopped when
//! dropped.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::kiln_binary;

/// A running kiln server.
pub struct KilnServer {
    /// Its base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The first paragraph it printed: where it listens, its data directory, its admin token,
    /// and any warning about its setup.
    pub banner: String,
    /// The admin token it created on first start.
    pub admin_token: String,
    data: tempfile::TempDir,
    child: Child,
    http: reqwest::blocking::Client,
}

/// How to start a server.
#[derive(Debug, Default, Clone)]
pub struct ServerOptions {
    /// PostgreSQL instead of SQLite.
    pub database_url: Option<String>,
    /// A blob store spec.
    pub blob_store: Option<String>,
    /// Require tokens for reads.
    pub auth_required: bool,
    /// A publish size limit.
    pub max_publish_bytes: Option<usize>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Extra `kiln serve` arguments.
    pub args: Vec<String>,
    /// Serve on a free loopback port but tell users (and `config.json`) this host instead of
    /// 127.0.0.1, as behind a proxy: workers in the process reach the server at 127.0.0.1.
    pub public_host: Option<String>,
    /// Run the in-process workers (the audit worker). Off by default: most tests play the
    /// worker themselves through the worker API.
    pub workers: bool,
    /// A data directory whose signing keys (`keys/`, `trust.toml`) this server starts with, as
    /// another replica of the same deployment.
    pub keys_from: Option<std::path::PathBuf>,
}

impl ServerOptions {
    /// A server that audits and builds: the in-process workers, an advisory database with one
    /// fixture advisory (about another crate) written under `fixtures`, and a policy there that
    /// accepts the fixture database's age; `args` are more `kiln serve` arguments.
    pub fn building(fixtures: &Path, args: &[&str]) -> Self {
        let db = fixtures.join("db");
        crate::advisories::write(&db, "RUSTSEC-2099-0001", "someone-else", ">= 1.0.0");
        let policy = fixtures.join("policy.toml");
        std::fs::write(&policy, "[advisories]\nmax_db_age_days = 100000\n").unwrap();
        let mut all = vec![
            "--advisory-source".to_owned(),
            db.display().to_string(),
            "--policy".to_owned(),
            policy.display().to_string(),
        ];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        Self {
            workers: true,
            args: all,
            ..Self::default()
        }
    }
}

impl KilnServer {
    /// Starts `kiln serve` with SQLite in a new data directory.
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    /// Starts `kiln serve` with `options`.
    pub fn start_with(options: ServerOptions) -> Self {
        let data = tempfile::tempdir().expect("temporary data directory");
        if let Some(from) = &options.keys_from {
            std::fs::create_dir_all(data.path().join("keys")).unwrap();
            for entry in std::fs::read_dir(from.join("keys")).unwrap() {
                let entry = entry.unwrap();
                std::fs::copy(
                    entry.path(),
                    data.path().join("keys").join(entry.file_name()),
                )
                .unwrap();
            }
            std::fs::copy(from.join("trust.toml"), data.path().join("trust.toml")).unwrap();
        }
        let mut cmd = Command::new(kiln_binary());
        let (listen, public_url) = match &options.public_host {
            Some(host) => {
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .expect("a free port")
                    .port();
                (
                    format!("127.0.0.1:{port}"),
                    Some(format!("http://{host}:{port}")),
                )
            }
            None => ("127.0.0.1:0".to_owned(), None),
        };
        // Warnings only, unless `KILN_TEST_LOG` asks for more (`kiln_builder=info` shows, for
        // example, how long each step of a build took).
        let log = std::env::var("KILN_TEST_LOG").unwrap_or_else(|_| "warn".to_owned());
        cmd.args(["serve", "--listen", &listen, "--data"])
            .arg(data.path())
            .env("RUST_LOG", log)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(url) = &public_url {
            cmd.args(["--public-url", url]);
        }
        if let Some(url) = &options.database_url {
            cmd.args(["--database-url", url]);
        }
        if let Some(spec) = &options.blob_store {
            cmd.args(["--blob-store", spec]);
        }
        if options.auth_required {
            cmd.arg("--auth-required");
        }
        if let Some(limit) = options.max_publish_bytes {
            cmd.args(["--max-publish-bytes", &limit.to_string()]);
        }
        if !options.workers {
            cmd.arg("--no-builder");
        }
        cmd.args(&options.args);
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start kiln serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut reader = BufReader::new(stdout);
        let mut first = String::new();
        reader
            .read_line(&mut first)
            .expect("read kiln serve's first line");
        // The rest of the banner's first paragraph: the data directory, the admin token, and
        // any warning.
        let mut banner = first.clone();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                break;
            }
            banner.push_str(&line);
        }
        // Keep reading, so the server never writes to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let url = first
            .trim()
            .strip_prefix("kiln listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from kiln serve: {first:?}"))
            .to_owned();
        // A replica on a database another replica started first has no admin token of its own.
        let admin_token = std::fs::read_to_string(data.path().join("admin.token"))
            .map(|token| token.trim().to_owned())
            .unwrap_or_default();
        Self {
            url,
            banner,
            admin_token,
            data,
            child,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    /// The peak resident memory of the server process so far (`VmHWM`), in bytes.
    pub fn peak_memory(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmHWM")
            * 1024
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// The sparse index URL for Cargo.
    pub fn index_url(&self) -> String {
        format!("sparse+{}/index/", self.url)
    }

    /// An HTTP request to `path` with an optional token.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::blocking::RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.header("Authorization", token);
        }
        request
    }

    /// GETs JSON, asserting success.
    pub fn get_json(&self, path: &str, token: Option<&str>) -> Value {
        let response = self
            .request(reqwest::Method::GET, path, token)
            .send()
            .unwrap();
        let status = response.status();
        let body = response.text().unwrap();
        assert!(status.is_success(), "GET {path}: {status}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// POSTs JSON and returns the status and the JSON answer.
    pub fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let response = self
            .request(reqwest::Method::POST, path, token)
            .json(body)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Creates a token for `login` with `scopes` (through the admin API) and returns it.
    pub fn token(&self, login: &str, scopes: &[&str]) -> String {
        let (status, body) = self.post_json(
            "/api/kiln/v1/tokens",
            Some(&self.admin_token),
            &serde_json::json!({"login": login, "name": format!("{login} test token"), "scopes": scopes}),
        );
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Plays the audit and build workers for `name@version`: claims its jobs and reports a
    /// passing audit and a library build, moving the version to `built`.
    pub fn pass_audit_and_build(&self, worker_token: &str, name: &str, version: &str) {
        for kind in ["audit", "build"] {
            let job = self.claim(worker_token, kind, "test-worker");
            assert_eq!(job["payload"]["crate"], name, "{job}");
            assert_eq!(job["payload"]["version"], version, "{job}");
            let id = job["id"].as_i64().unwrap();
            let (status, body) = self.post_json(
                &format!("/api/kiln/v1/jobs/{id}/complete"),
                Some(worker_token),
                &self.completion(worker_token, kind, "test-worker"),
            );
            assert_eq!(status, 200, "complete {kind}: {body}");
        }
    }

    /// Claims the next `kind` job as `worker`, which must be there.
    pub fn claim(&self, worker_token: &str, kind: &str, worker: &str) -> Value {
        let (status, job) = self.post_json(
            "/api/kiln/v1/jobs/claim",
            Some(worker_token),
            &serde_json::json!({"kind": kind, "worker": worker, "lease_secs": 60}),
        );
        assert_eq!(status, 200, "claim {kind}: {job}");
        job
    }

    /// What a test worker reports for a `kind` job: a passing audit (its statement uploaded as
    /// a blob) or a library build (its log uploaded).
    pub fn completion(&self, worker_token: &str, kind: &str, worker: &str) -> Value {
        let nonce: u64 = rand::random();
        let blob = self.upload(
            worker_token,
            format!("{kind} by {worker}, {nonce}").into_bytes(),
        );
        match kind {
            "audit" => serde_json::json!({
                "worker": worker, "kind": "audit",
                "report": {
                    "schema": "https://kiln.dev/schemas/audit-report/v1", "subject": null,
                    "verdict": "pass", "summary": {"deny": 0, "review": 0, "info": 0},
                    "findings": [], "advisories": [], "packages": [],
                    "advisory_db": {"revision": "test", "advisories": 0, "newest": "2026-01-01"},
                    "policy_digest": kiln_policy::Digest::of(b"").to_string(),
                    "rules": [], "checks": [], "tools": [], "date": "2026-01-01",
                },
                "statement": {"digest": blob, "kind": "audit"},
            }),
            _ => serde_json::json!({
                "worker": worker, "kind": "build",
                "report": {"target": "wasm32-wasip1", "isolation": "none"},
                "artifacts": [{"digest": blob, "kind": "log"}],
            }),
        }
    }

    /// Uploads `bytes` as a blob with a worker token; returns its digest.
    pub fn upload(&self, worker_token: &str, bytes: Vec<u8>) -> String {
        let response = self
            .request(
                reqwest::Method::POST,
                "/api/kiln/v1/blobs",
                Some(worker_token),
            )
            .header("Content-Type", "application/octet-stream")
            .body(bytes)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().unwrap();
        body["digest"].as_str().unwrap().to_owned()
    }

    /// Waits (up to 5 minutes) until `name@version` has left the audit and build stages, and
    /// returns its detail.
    pub fn settled(&self, name: &str, version: &str) -> Value {
        let start = std::time::Instant::now();
        loop {
            let detail = self.get_json(&format!("/api/kiln/v1/submissions/{name}/{version}"), None);
            if !matches!(detail["state"].as_str(), Some("submitted" | "audited")) {
                return detail;
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "{name}@{version} did not build: {detail}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The artifact of `kind` in a submission's `detail`: its digest and bytes, checked to be
    /// stored by that digest.
    pub fn artifact(&self, detail: &Value, kind: &str) -> (kiln_policy::Digest, Vec<u8>) {
        let digest = detail["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} artifact: {detail}"))["digest"]
            .as_str()
            .unwrap()
            .to_owned();
        let bytes = self
            .request(
                reqwest::Method::GET,
                &format!("/api/kiln/v1/artifacts/{digest}"),
                None,
            )
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .to_vec();
        let digest: kiln_policy::Digest = digest.parse().unwrap();
        assert_eq!(
            kiln_policy::Digest::of(&bytes),
            digest,
            "{kind} is stored by its digest"
        );
        (digest, bytes)
    }

    /// Approves `name@version` with a review token.
    pub fn approve(&self, review_token: &str, name: &str, version: &str) -> (u16, Value) {
        self.post_json(
            &format!("/api/kiln/v1/submissions/{name}/{version}/approve"),
            Some(review_token),
            &serde_json::json!({"criteria": "safe-to-run"}),
        )
    }

    /// Sends `body` to Cargo's publish API and returns the status and the error detail (empty
    /// on success).
    pub fn publish_raw(&self, token: Option<&str>, body: Vec<u8>) -> (u16, String) {
        let response = self
            .request(reqwest::Method::PUT, "/api/v1/crates/new", token)
            .body(body)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        let detail = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["errors"][0]["detail"].as_str().map(str::to_owned))
            .unwrap_or(if status == 200 { String::new() } else { text });
        (status, detail)
    }

    /// Publishes a well-formed hand-made crate `name@version` through Cargo's publish API.
    pub fn publish_file(&self, token: &str, name: &str, version: &str) -> (u16, String) {
        let meta = crate::crate_file::metadata(name, version).to_string();
        let tarball = crate::crate_file::CrateFile::valid(name, version).gzip();
        self.publish_raw(
            Some(token),
            crate::crate_file::publish_body(meta.as_bytes(), &tarball),
        )
    }

    /// How many blobs the server stores (in its local blob directory).
    pub fn blob_count(&self) -> usize {
        let mut count = 0;
        for shard in std::fs::read_dir(self.blob_dir().join("sha256")).unwrap() {
            count += std::fs::read_dir(shard.unwrap().path()).unwrap().count();
        }
        count
    }

    /// Every event in the log (review scope), oldest first.
    pub fn events(&self, token: &str) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let after = all.last().map_or(0, |e: &Value| e["seq"].as_i64().unwrap());
            let page = self.get_json(
                &format!("/api/kiln/v1/events?after={after}&limit=1000"),
                Some(token),
            );
            let page = page.as_array().unwrap().clone();
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }

    /// Where the server's blobs are.
    pub fn blob_dir(&self) -> PathBuf {
        self.data.path().join("blobs")
    }

    /// Stops the server gracefully (SIGTERM) and waits for it.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.terminate()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            for _ in 0..100 {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return status;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        self.child.wait().expect("wait for kiln serve")
    }
}

impl Drop for KilnServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}
