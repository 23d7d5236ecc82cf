//! Notebooks kept by the executor as versioned documents. Every save is a new version named by
//! the digest of its bytes, with its parent: a save whose parent is not the notebook's newest
//! version is refused as stale, so two people editing one notebook never overwrite each other
//! unseen. Every version stays readable, and the runs made of a notebook are listed with it.
//!
//! On disk, under the store's directory, each notebook is a directory named by its id holding
//! `versions.jsonl` (one [`NotebookVersion`] per line, oldest first), `runs.jsonl` (one
//! [`NotebookRun`] per line) and each version's bytes as `HEX.json`. A version's file is
//! written before its line, so a crash leaves at most an unlisted file, never a listed version
//! without its bytes.

use std::io::{self, BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kiln_policy::Digest;
use serde::{Deserialize, Serialize};

use crate::notebook::valid_id;

/// One saved version of a notebook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotebookVersion {
    /// The digest of the document's bytes: the version's name.
    #[schema(value_type = String)]
    pub digest: Digest,
    /// The version it was saved on top of; `None` for the first.
    #[schema(value_type = Option<String>)]
    pub parent: Option<Digest>,
    /// When it was saved (Unix milliseconds).
    pub created_ms: u64,
    /// Who saved it.
    pub author: String,
    /// The document's size in bytes.
    pub size: u64,
}

/// A notebook as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotebookSummary {
    /// Its id.
    pub id: String,
    /// The title in its newest version's metadata, when it has one.
    pub title: Option<String>,
    /// Its newest version.
    pub head: NotebookVersion,
    /// How many versions it has.
    pub versions: usize,
}

/// A run made of a notebook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotebookRun {
    /// The run's id (`GET /v1/runs/{id}`).
    pub run: String,
    /// The digest of the document that ran.
    #[schema(value_type = String)]
    pub notebook: Digest,
    /// When it finished (Unix milliseconds).
    pub created_ms: u64,
    /// Who ran it.
    pub by: String,
    /// Whether every cell succeeded.
    pub ok: bool,
}

/// Why a save or a read failed.
#[derive(Debug, thiserror::Error)]
pub enum NotebookStoreError {
    /// The id is not 1–64 characters of `a-z`, `0-9`, `-`, `_`.
    #[error("`{0}` is not a notebook id (1 to 64 characters of a-z, 0-9, `-` and `_`)")]
    InvalidId(String),
    /// No such notebook, or no such version of it.
    #[error("{0}")]
    NotFound(String),
    /// The save's parent is not the newest version.
    #[error("the notebook changed since version {parent}: its newest version is {head}")]
    Stale {
        /// The parent the save named (`none` for a first save).
        parent: String,
        /// The newest version.
        head: Digest,
    },
    /// The disk failed.
    #[error("the notebook store: {0}")]
    Io(#[from] io::Error),
}

/// The executor's notebooks.
#[derive(Debug)]
pub struct NotebookStore {
    dir: PathBuf,
    /// Saves are compare-and-swap on a notebook's newest version: one at a time.
    writes: Mutex<()>,
}

impl NotebookStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            writes: Mutex::new(()),
        })
    }

    fn notebook_dir(&self, id: &str) -> Result<PathBuf, NotebookStoreError> {
        if !valid_id(id) {
            return Err(NotebookStoreError::InvalidId(id.to_owned()));
        }
        Ok(self.dir.join(id))
    }

    /// Every notebook, the most recently saved first.
    pub fn list(&self) -> Result<Vec<NotebookSummary>, NotebookStoreError> {
        let mut notebooks = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let Some(id) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !valid_id(&id) {
                continue;
            }
            let versions = self.history(&id)?;
            let Some(head) = versions.last().cloned() else {
                continue;
            };
            let title = self
                .version(&id, &head.digest)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                .and_then(|doc| doc["metadata"]["title"].as_str().map(str::to_owned));
            notebooks.push(NotebookSummary {
                id,
                title,
                head,
                versions: versions.len(),
            });
        }
        notebooks.sort_by(|a, b| (b.head.created_ms, &a.id).cmp(&(a.head.created_ms, &b.id)));
        Ok(notebooks)
    }

    /// A notebook's versions, oldest first; empty when it does not exist.
    pub fn history(&self, id: &str) -> Result<Vec<NotebookVersion>, NotebookStoreError> {
        read_lines(&self.notebook_dir(id)?.join("versions.jsonl"))
    }

    /// The newest version and its bytes.
    pub fn head(&self, id: &str) -> Result<(NotebookVersion, Vec<u8>), NotebookStoreError> {
        let head = self
            .history(id)?
            .pop()
            .ok_or_else(|| NotebookStoreError::NotFound(format!("no notebook `{id}`")))?;
        let bytes = self.version(id, &head.digest)?;
        Ok((head, bytes))
    }

    /// The bytes of one version.
    pub fn version(&self, id: &str, digest: &Digest) -> Result<Vec<u8>, NotebookStoreError> {
        let path = self
            .notebook_dir(id)?
            .join(format!("{}.json", digest.hex()));
        match std::fs::read(&path) {
            Ok(bytes) if Digest::of(&bytes) == *digest => Ok(bytes),
            Ok(_) => Err(NotebookStoreError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("version {digest} of `{id}` does not match its digest"),
            ))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Err(NotebookStoreError::NotFound(
                format!("notebook `{id}` has no version {digest}"),
            )),
            Err(err) => Err(err.into()),
        }
    }

    /// Saves `bytes` (already validated) as the newest version of `id`, on top of `parent`,
    /// which must be the newest version (`None` creates the notebook). Saving the bytes of the
    /// newest version again on top of it changes nothing and answers that version.
    pub fn save(
        &self,
        id: &str,
        parent: Option<Digest>,
        bytes: &[u8],
        author: &str,
        now_ms: u64,
    ) -> Result<NotebookVersion, NotebookStoreError> {
        let dir = self.notebook_dir(id)?;
        let _one_at_a_time = self.writes.lock().expect("notebook store lock");
        let history = self.history(id)?;
        let head = history.last();
        if head.map(|h| h.digest) != parent {
            return Err(match head {
                Some(head) => NotebookStoreError::Stale {
                    parent: parent.map_or_else(|| "none".to_owned(), |p| p.to_string()),
                    head: head.digest,
                },
                None => NotebookStoreError::NotFound(format!(
                    "no notebook `{id}`: a first save names no parent"
                )),
            });
        }
        let digest = Digest::of(bytes);
        if let Some(head) = head
            && head.digest == digest
        {
            return Ok(head.clone());
        }
        std::fs::create_dir_all(&dir)?;
        let mut staging = tempfile::Builder::new()
            .prefix(".staging.")
            .tempfile_in(&dir)?;
        staging.write_all(bytes)?;
        staging.as_file().sync_all()?;
        staging
            .persist(dir.join(format!("{}.json", digest.hex())))
            .map_err(|err| err.error)?;
        let version = NotebookVersion {
            digest,
            parent,
            created_ms: now_ms,
            author: author.to_owned(),
            size: bytes.len() as u64,
        };
        append_line(&dir.join("versions.jsonl"), &version)?;
        Ok(version)
    }

    /// Records a run made of notebook `id`.
    pub fn record_run(&self, id: &str, run: &NotebookRun) -> Result<(), NotebookStoreError> {
        let dir = self.notebook_dir(id)?;
        let _one_at_a_time = self.writes.lock().expect("notebook store lock");
        if !dir.join("versions.jsonl").exists() {
            return Err(NotebookStoreError::NotFound(format!("no notebook `{id}`")));
        }
        append_line(&dir.join("runs.jsonl"), run)?;
        Ok(())
    }

    /// The runs made of notebook `id`, newest first.
    pub fn runs(&self, id: &str) -> Result<Vec<NotebookRun>, NotebookStoreError> {
        let mut runs: Vec<NotebookRun> = read_lines(&self.notebook_dir(id)?.join("runs.jsonl"))?;
        runs.reverse();
        Ok(runs)
    }
}

fn append_line(path: &Path, value: &impl Serialize) -> io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(io::Error::other)?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(&line)?;
    file.sync_data()
}

/// The lines of a JSON-lines file; a missing file has none, and a torn last line (a crash while
/// appending) is skipped.
fn read_lines<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, NotebookStoreError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err.into()),
    };
    let mut values = Vec::new();
    for line in io::BufReader::new(file).lines() {
        if let Ok(value) = serde_json::from_str(&line?) {
            values.push(value);
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_save_is_a_version_on_top_of_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let store = NotebookStore::open(dir.path()).unwrap();
        let first = store.save("tour", None, b"{\"v\":1}", "ada", 1).unwrap();
        assert_eq!(first.digest, Digest::of(b"{\"v\":1}"));
        let second = store
            .save("tour", Some(first.digest), b"{\"v\":2}", "bob", 2)
            .unwrap();
        assert_eq!(second.parent, Some(first.digest));

        // A save on top of an older version is stale, and changes nothing.
        let err = store
            .save("tour", Some(first.digest), b"{\"v\":3}", "eve", 3)
            .unwrap_err();
        assert!(
            matches!(err, NotebookStoreError::Stale { head, .. } if head == second.digest),
            "{err}"
        );
        // So is a second "first" save.
        assert!(matches!(
            store.save("tour", None, b"{}", "eve", 3).unwrap_err(),
            NotebookStoreError::Stale { .. }
        ));
        assert_eq!(
            store.history("tour").unwrap(),
            vec![first.clone(), second.clone()]
        );
        assert_eq!(store.head("tour").unwrap().1, b"{\"v\":2}");
        assert_eq!(store.version("tour", &first.digest).unwrap(), b"{\"v\":1}");

        // Saving the same bytes again is no new version.
        let same = store
            .save("tour", Some(second.digest), b"{\"v\":2}", "bob", 4)
            .unwrap();
        assert_eq!(same, second);
        assert_eq!(store.list().unwrap()[0].versions, 2);
    }

    #[test]
    fn ids_cannot_leave_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = NotebookStore::open(dir.path()).unwrap();
        for id in ["../x", "", "A", "a/b", &"x".repeat(65)] {
            assert!(matches!(
                store.save(id, None, b"{}", "ada", 1),
                Err(NotebookStoreError::InvalidId(_))
            ));
        }
    }

    #[test]
    fn a_version_whose_bytes_changed_on_disk_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let store = NotebookStore::open(dir.path()).unwrap();
        let v = store.save("n", None, b"{}", "ada", 1).unwrap();
        std::fs::write(
            dir.path()
                .join("n")
                .join(format!("{}.json", v.digest.hex())),
            b"[]",
        )
        .unwrap();
        assert!(store.head("n").is_err());
    }
}
