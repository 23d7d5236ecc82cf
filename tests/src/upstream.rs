//! An upstream registry on loopback, as crates.io serves one: a sparse index and downloads of
//! real crates.io `.crate` files (fetched by `scripts/upstream-crates` with Cargo's own download,
//! from the versions pinned in `tests/upstream/Cargo.lock`, into `target/kiln-upstream`), plus
//! hand-made crates a test adds, and faults a test injects per crate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kiln_policy::Digest;

use crate::workspace_root;

/// What the upstream does wrong for one crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Its index file answers 404.
    NotFound,
    /// Its index file answers 500.
    ServerError,
    /// Its downloads are not the bytes the index's checksum names.
    WrongChecksum,
    /// Every version is yanked.
    Yanked,
}

#[derive(Default)]
struct Contents {
    /// Index lines by lower-case crate name.
    lines: BTreeMap<String, Vec<serde_json::Value>>,
    /// `.crate` bytes by (name, version).
    crates: BTreeMap<(String, String), Vec<u8>>,
    faults: BTreeMap<String, Fault>,
}

/// A running upstream.
pub struct Upstream {
    /// Its index, as `--upstream` takes it (`sparse+http://127.0.0.1:PORT/`).
    pub index: String,
    contents: Arc<Mutex<Contents>>,
    _runtime: tokio::runtime::Runtime,
}

/// The directory `scripts/upstream-crates` fills, fetched on first use in a test process.
pub fn cache_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let status = Command::new(workspace_root().join("scripts/upstream-crates"))
            .status()
            .expect("run scripts/upstream-crates");
        assert!(
            status.success(),
            "fetching the upstream crates failed (scripts/upstream-crates)"
        );
        std::env::var_os("KILN_UPSTREAM_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target/kiln-upstream"))
    })
}

/// The bytes of the fetched `name-version.crate`.
pub fn real_crate(name: &str, version: &str) -> Vec<u8> {
    let path = cache_dir()
        .join("crates")
        .join(format!("{name}-{version}.crate"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

impl Upstream {
    /// Serves every fetched crates.io crate, with its real index lines.
    pub fn start() -> Self {
        let dir = cache_dir();
        let mut contents = Contents::default();
        for entry in std::fs::read_dir(dir.join("crates")).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let checksum = Digest::of(&bytes).hex();
            // Find the crate's index file and the line whose checksum is this file's.
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let (name, version) = split_file_stem(&stem);
            let index = dir
                .join("index")
                .join(kiln_registry::names::index_path(&name.to_ascii_lowercase()));
            let text = std::fs::read_to_string(&index)
                .unwrap_or_else(|err| panic!("{}: {err}", index.display()));
            let line: serde_json::Value = text
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .find(|l| l["vers"] == version && l["cksum"] == checksum)
                .unwrap_or_else(|| panic!("no index line for {name}@{version} with its checksum"));
            contents
                .lines
                .entry(name.to_ascii_lowercase())
                .or_default()
                .push(line);
            contents.crates.insert((name, version), bytes);
        }
        let contents = Arc::new(Mutex::new(contents));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/config.json", axum::routing::get(config))
            .route(
                "/dl/{name}/{version}/download",
                axum::routing::get(download),
            )
            .route("/{*path}", axum::routing::get(index_file))
            .with_state((contents.clone(), base.clone()));
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self {
            index: format!("sparse+{base}/"),
            contents,
            _runtime: runtime,
        }
    }

    /// Serves a hand-made `tarball` as `name@version` with the dependencies `deps` (index-line
    /// form) in its index line.
    pub fn add(&self, name: &str, version: &str, tarball: Vec<u8>, deps: serde_json::Value) {
        let line = serde_json::json!({
            "name": name, "vers": version, "deps": deps, "cksum": Digest::of(&tarball).hex(),
            "features": {}, "yanked": false, "links": null,
        });
        let mut contents = self.contents.lock().unwrap();
        contents
            .lines
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(line);
        contents
            .crates
            .insert((name.to_owned(), version.to_owned()), tarball);
    }

    /// Makes the upstream answer `fault` for crate `name` from now on.
    pub fn fault(&self, name: &str, fault: Fault) {
        self.contents
            .lock()
            .unwrap()
            .faults
            .insert(name.to_ascii_lowercase(), fault);
    }
}

impl Upstream {
    /// Makes the upstream answer correctly again.
    pub fn clear_faults(&self) {
        self.contents.lock().unwrap().faults.clear();
    }
}

/// `serde_json-1.0.154` → (`serde_json`, `1.0.154`): the version starts after the last `-`
/// followed by a digit.
fn split_file_stem(stem: &str) -> (String, String) {
    let at = stem
        .match_indices('-')
        .filter(|(i, _)| stem[i + 1..].starts_with(|c: char| c.is_ascii_digit()))
        .map(|(i, _)| i)
        .next_back()
        .expect("NAME-VERSION");
    (stem[..at].to_owned(), stem[at + 1..].to_owned())
}

type Shared = (Arc<Mutex<Contents>>, String);

async fn config(State((_, base)): State<Shared>) -> Response {
    axum::Json(serde_json::json!({"dl": format!("{base}/dl")})).into_response()
}

async fn index_file(
    State((contents, _)): State<Shared>,
    UrlPath(path): UrlPath<String>,
) -> Response {
    let name = path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let contents = contents.lock().unwrap();
    match contents.faults.get(&name) {
        Some(Fault::NotFound) => return StatusCode::NOT_FOUND.into_response(),
        Some(Fault::ServerError) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        _ => {}
    }
    let Some(lines) = contents.lines.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let yanked = contents.faults.get(&name) == Some(&Fault::Yanked);
    let mut body = String::new();
    for line in lines {
        let mut line = line.clone();
        if yanked {
            line["yanked"] = true.into();
        }
        body.push_str(&line.to_string());
        body.push('\n');
    }
    body.into_response()
}

async fn download(
    State((contents, _)): State<Shared>,
    UrlPath((name, version)): UrlPath<(String, String)>,
) -> Response {
    let contents = contents.lock().unwrap();
    let Some(bytes) = contents.crates.get(&(name.clone(), version)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut bytes = bytes.clone();
    if contents.faults.get(&name.to_ascii_lowercase()) == Some(&Fault::WrongChecksum) {
        bytes.extend_from_slice(b"tampered");
    }
    bytes.into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_stems_split_at_the_version() {
        assert_eq!(
            super::split_file_stem("serde_json-1.0.154"),
            ("serde_json".to_owned(), "1.0.154".to_owned())
        );
        assert_eq!(
            super::split_file_stem("csv-core-0.1.13"),
            ("csv-core".to_owned(), "0.1.13".to_owned())
        );
    }
}
