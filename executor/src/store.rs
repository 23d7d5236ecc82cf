//! Where an executor keeps its runs: an append-only log of run records (`runs.jsonl`, one JSON
//! object per line) with an in-memory index from run id to the line's offset, and the notebooks
//! and outputs the runs refer to, each stored once under its SHA-256 (`blobs/sha256/HEX`).
//!
//! A record is one `write` to a file opened for appending, so a crash loses at most the line
//! being written; on open, the log is read once to rebuild the index and a torn last line is
//! skipped. Records are not fsynced: they are an account of what ran, not a ledger.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead as _, BufReader, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kiln_policy::Digest;
use serde::{Deserialize, Serialize};

use crate::run::{RunRecord, RunResult};

/// A stored run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRun {
    /// The run's id (`run-` and 24 hex digits).
    pub id: String,
    /// When it finished (Unix milliseconds).
    pub created_ms: u64,
    /// The record.
    pub record: RunRecord,
}

struct Log {
    file: File,
    end: u64,
    index: HashMap<String, (u64, usize)>,
}

/// The run log and its blobs.
pub struct RunStore {
    dir: PathBuf,
    log: Mutex<Log>,
    reader: File,
    known: Mutex<HashSet<Digest>>,
}

impl std::fmt::Debug for RunStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// A new run id: `run-` and 96 random bits in hex.
pub fn new_run_id() -> String {
    format!("run-{}", hex::encode(rand::random::<[u8; 12]>()))
}

impl RunStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir.join("blobs").join("sha256"))?;
        let path = dir.join("runs.jsonl");
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)?;
        let mut index = HashMap::new();
        let mut offset = 0u64;
        let mut torn = false;
        let mut reader = BufReader::new(File::open(&path)?);
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line)?;
            if read == 0 {
                break;
            }
            if line.last() != Some(&b'\n') {
                torn = true;
            } else if let Ok(run) = serde_json::from_slice::<IdOnly>(&line) {
                index.insert(run.id, (offset, read));
            }
            offset += read as u64;
        }
        if torn {
            // End the torn line so that the next record starts on its own line.
            file.write_all(b"\n")?;
            offset += 1;
        }
        Ok(Self {
            dir: dir.to_owned(),
            log: Mutex::new(Log {
                file,
                end: offset,
                index,
            }),
            reader: File::open(&path)?,
            known: Mutex::new(HashSet::new()),
        })
    }

    /// Stores `bytes` under its digest (once) and returns the digest.
    pub fn put_blob(&self, bytes: &[u8]) -> io::Result<Digest> {
        let digest = Digest::of(bytes);
        if self.known.lock().expect("blob set").contains(&digest) {
            return Ok(digest);
        }
        let path = self.blob_path(&digest);
        if !path.exists() {
            let staging = path.with_extension(format!("partial-{}", std::process::id()));
            std::fs::write(&staging, bytes)?;
            std::fs::rename(&staging, &path)?;
        }
        self.known.lock().expect("blob set").insert(digest);
        Ok(digest)
    }

    /// The blob `digest`, if stored and intact.
    pub fn blob(&self, digest: &Digest) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.blob_path(digest)) {
            Ok(bytes) if Digest::of(&bytes) == *digest => Ok(Some(bytes)),
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("stored blob {digest} does not match its digest"),
            )),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs").join("sha256").join(digest.hex())
    }

    /// Stores a finished run: its notebook, its outputs and its record under a new id.
    pub fn save(
        &self,
        notebook: &[u8],
        result: &RunResult,
        created_ms: u64,
    ) -> io::Result<StoredRun> {
        self.put_blob(notebook)?;
        for output in result.outputs.values() {
            self.put_blob(output)?;
        }
        let run = StoredRun {
            id: new_run_id(),
            created_ms,
            record: result.record.clone(),
        };
        let mut line = serde_json::to_vec(&run).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut log = self.log.lock().expect("run log");
        log.file.write_all(&line)?;
        let at = log.end;
        log.end += line.len() as u64;
        log.index.insert(run.id.clone(), (at, line.len()));
        Ok(run)
    }

    /// The run `id`, if stored.
    pub fn get(&self, id: &str) -> io::Result<Option<StoredRun>> {
        let Some((offset, len)) = self.log.lock().expect("run log").index.get(id).copied() else {
            return Ok(None);
        };
        let mut line = vec![0; len];
        self.reader.read_exact_at(&mut line, offset)?;
        serde_json::from_slice(&line)
            .map(Some)
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
    }

    /// How many runs are stored.
    pub fn len(&self) -> usize {
        self.log.lock().expect("run log").index.len()
    }

    /// Whether no run is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn result(output: &[u8]) -> RunResult {
        RunResult {
            record: RunRecord {
                notebook: Digest::of(b"notebook"),
                kernels: BTreeMap::new(),
                seed: Some(7),
                cells: Vec::new(),
            },
            outputs: BTreeMap::from([(Digest::of(output), output.to_vec())]),
        }
    }

    #[test]
    fn runs_survive_a_reopen_and_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::open(dir.path()).unwrap();
        let first = store.save(b"notebook", &result(b"one"), 1).unwrap();
        let second = store.save(b"notebook", &result(b"two"), 2).unwrap();
        assert_ne!(first.id, second.id);
        assert_eq!(store.get(&second.id).unwrap().unwrap(), second);
        assert_eq!(
            store.blob(&Digest::of(b"two")).unwrap().unwrap(),
            b"two".to_vec()
        );
        drop(store);

        // A crash in the middle of a record leaves a torn line.
        let mut log = OpenOptions::new()
            .append(true)
            .open(dir.path().join("runs.jsonl"))
            .unwrap();
        log.write_all(b"{\"id\":\"run-torn\",\"crea").unwrap();
        drop(log);

        let store = RunStore::open(dir.path()).unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(store.get(&first.id).unwrap().unwrap(), first);
        assert!(store.get("run-torn").unwrap().is_none());
        let third = store.save(b"notebook", &result(b"three"), 3).unwrap();
        drop(store);
        let store = RunStore::open(dir.path()).unwrap();
        assert_eq!(store.get(&third.id).unwrap().unwrap(), third);
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn a_changed_blob_is_reported_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::open(dir.path()).unwrap();
        let digest = store.put_blob(b"output").unwrap();
        std::fs::write(
            dir.path().join("blobs").join("sha256").join(digest.hex()),
            b"0utput",
        )
        .unwrap();
        let err = store.blob(&digest).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
