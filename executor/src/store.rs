//! Where an executor keeps its runs: an append-only log of run records (`runs.jsonl`, one JSON
//! object per line) with an in-memory index from run id to the line's place, and the notebooks
//! and outputs the runs refer to, each stored once under its SHA-256
//! (`blobs/sha256/HE/HEX`, 256 directories, so that no directory grows without end).
//!
//! A record is one `write` to a file opened for appending, so a crash loses at most the line
//! being written; on open, the log is read once to rebuild the index and a torn last line is
//! skipped. Records are not fsynced: they are an account of what ran, not a ledger. A blob is
//! written to a uniquely named staging file beside it and renamed into place.
//!
//! The store is bounded by its [`Retention`]: runs older than its age, and the oldest beyond its
//! size or count, are pruned (the log's kept tail is copied to a new log, and the blobs no kept
//! run refers to are removed), after a save that passes a bound and on [`RunStore::prune`]
//! (`kiln runs prune`). A prune for size or count goes down to 90% of the bound, so that the
//! next one is thousands of runs away; the age is looked at every 1000 saves, from the
//! index. The index holds one small entry per kept run (its place and time) and a count of the
//! runs that refer to each blob, so memory is bounded by the count. A prune reads only the
//! records it drops (for the blobs whose count falls to zero) and copies the kept tail as
//! bytes: its cost follows what it removes, not what the store keeps. It does both without the
//! log's lock (the log only grows at its end meanwhile), and takes the lock to copy what was
//! saved in the meantime, swap the logs and remove blobs: other runs are saved and read while a
//! prune works, and only the save that started it waits for it.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead as _, BufReader, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, TryLockError};

use kiln_policy::Digest;
pub use kiln_policy::preflight::Retention;
use serde::{Deserialize, Serialize};

use crate::run::RunRecord;

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

impl StoredRun {
    /// The blobs the run refers to: its notebook and its outputs.
    fn blobs(&self) -> impl Iterator<Item = Digest> + '_ {
        std::iter::once(self.record.notebook)
            .chain(self.record.cells.iter().filter_map(|c| c.output))
    }
}

/// Where a record is in the log, and when its run finished.
#[derive(Debug, Clone, Copy)]
struct Place {
    offset: u64,
    len: usize,
    created_ms: u64,
}

struct Log {
    file: File,
    reader: File,
    end: u64,
    index: HashMap<String, Place>,
    /// How many of the indexed runs refer to each blob: a prune reads only the records it
    /// drops, and removes the blobs whose count falls to zero.
    refs: HashMap<Digest, u32>,
    /// Bytes of every stored blob.
    blob_bytes: u64,
    /// Runs saved since the last prune (age is looked at every [`AGE_CHECK_RUNS`]).
    saved: u64,
}

/// How many saves pass between two prunes for age alone.
const AGE_CHECK_RUNS: u64 = 1000;

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Runs removed.
    pub runs: usize,
    /// Blobs removed.
    pub blobs: usize,
    /// Bytes freed.
    pub bytes: u64,
    /// Runs kept.
    pub kept: usize,
}

/// The run log and its blobs.
pub struct RunStore {
    dir: PathBuf,
    retention: Retention,
    log: Mutex<Log>,
    /// Held through a whole prune, so that one runs at a time. The log's lock is taken only at
    /// a prune's start and end: runs are saved and read while it reads and copies the log.
    pruning: Mutex<()>,
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

const LOG: &str = "runs.jsonl";

impl RunStore {
    /// Opens (or creates) the store in `dir`, kept within `retention`.
    pub fn open(dir: &Path, retention: Retention) -> io::Result<Self> {
        let blobs = dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs)?;
        shard_flat_blobs(&blobs)?;
        let log = open_log(&dir.join(LOG))?;
        Ok(Self {
            dir: dir.to_owned(),
            retention,
            log: Mutex::new(log),
            pruning: Mutex::new(()),
        })
    }

    /// Stores `bytes` under its digest (once) and returns the digest.
    pub fn put_blob(&self, bytes: &[u8]) -> io::Result<Digest> {
        let mut log = self.log.lock().expect("run log");
        let (digest, added) = self.write_blob(bytes)?;
        log.blob_bytes += added;
        Ok(digest)
    }

    /// Writes a blob unless it is there; returns its digest and the bytes added.
    fn write_blob(&self, bytes: &[u8]) -> io::Result<(Digest, u64)> {
        let digest = Digest::of(bytes);
        let path = self.blob_path(&digest);
        let mut added = 0;
        if !path.exists() {
            let dir = path.parent().expect("a shard");
            std::fs::create_dir_all(dir)?;
            let mut staging = tempfile::Builder::new()
                .prefix(".staging.")
                .tempfile_in(dir)?;
            staging.write_all(bytes)?;
            staging.persist(&path).map_err(|err| err.error)?;
            added = bytes.len() as u64;
        }
        Ok((digest, added))
    }

    /// The blob `digest`, if stored and intact.
    pub fn blob(&self, digest: &Digest) -> io::Result<Option<Vec<u8>>> {
        read_verified(&self.blob_path(digest), digest)
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir
            .join("blobs")
            .join("sha256")
            .join(&hex[..2])
            .join(hex)
    }

    /// Stores a finished run: its notebook, its outputs and its record under a new id; prunes
    /// when the store passes a bound of its retention.
    pub fn save(
        &self,
        notebook: &[u8],
        record: RunRecord,
        outputs: &BTreeMap<Digest, Vec<u8>>,
        created_ms: u64,
    ) -> io::Result<StoredRun> {
        let run = StoredRun {
            id: new_run_id(),
            created_ms,
            record,
        };
        let mut line = serde_json::to_vec(&run).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut log = self.log.lock().expect("run log");
        // Blobs are written under the log's lock, so that a prune never sees them unreferenced.
        // A blob a kept run refers to is there already.
        let notebook = (Digest::of(notebook), notebook);
        let outputs = outputs.iter().map(|(d, b)| (*d, b.as_slice()));
        for (digest, bytes) in std::iter::once(notebook).chain(outputs) {
            if !log.refs.contains_key(&digest) {
                log.blob_bytes += self.write_blob(bytes)?.1;
            }
        }
        log.file.write_all(&line)?;
        let at = log.end;
        log.end += line.len() as u64;
        log.index.insert(
            run.id.clone(),
            Place {
                offset: at,
                len: line.len(),
                created_ms,
            },
        );
        for blob in run.blobs() {
            *log.refs.entry(blob).or_default() += 1;
        }
        log.saved += 1;
        let aged = log.saved >= AGE_CHECK_RUNS && {
            log.saved = 0;
            let oldest = log.index.values().map(|p| p.created_ms).min();
            oldest.is_some_and(|oldest| oldest < self.retention.cutoff_ms(created_ms))
        };
        let over = log.index.len() as u64 > self.retention.max_runs
            || log.end + log.blob_bytes > self.retention.max_bytes
            || aged;
        drop(log);
        if over && let Some(_pruning) = self.try_pruning() {
            let pruned = self.prune_to_retention(created_ms)?;
            tracing::info!(
                runs = pruned.runs,
                blobs = pruned.blobs,
                bytes = pruned.bytes,
                "pruned the run store"
            );
        }
        Ok(run)
    }

    /// The right to prune, unless a prune is under way (a save that finds one leaves the bound
    /// to it).
    fn try_pruning(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        match self.pruning.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// The run `id`, if stored.
    pub fn get(&self, id: &str) -> io::Result<Option<StoredRun>> {
        let log = self.log.lock().expect("run log");
        let Some(place) = log.index.get(id).copied() else {
            return Ok(None);
        };
        let mut line = vec![0; place.len];
        log.reader.read_exact_at(&mut line, place.offset)?;
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

    /// Prunes the store to its retention as of `now_ms`, and removes the blobs no run refers to
    /// (left by a crash between a blob's write and its run's record).
    pub fn prune(&self, now_ms: u64) -> io::Result<Pruned> {
        let _pruning = self.pruning.lock().unwrap_or_else(PoisonError::into_inner);
        let mut pruned = self.prune_to_retention(now_ms)?;
        let mut log = self.log.lock().expect("run log");
        pruned.blobs += self.remove_unreferenced(&mut log, &mut pruned.bytes)?;
        Ok(pruned)
    }

    /// Keeps the newest runs within the retention's age, count and size (below 90% of a bound
    /// it went past), copies the log's kept tail to a new log and removes every blob none of
    /// the kept runs refers to. A size bound is met by estimate (the bytes per run so far), then
    /// checked again. The caller holds `pruning`.
    fn prune_to_retention(&self, now_ms: u64) -> io::Result<Pruned> {
        let mut pruned = Pruned::default();
        for _ in 0..4 {
            let step = self.prune_once(now_ms)?;
            pruned.runs += step.runs;
            pruned.blobs += step.blobs;
            pruned.bytes += step.bytes;
            let log = self.log.lock().expect("run log");
            pruned.kept = log.index.len();
            if log.end + log.blob_bytes <= self.retention.max_bytes || log.index.is_empty() {
                break;
            }
        }
        Ok(pruned)
    }

    /// One pass of [`RunStore::prune_to_retention`], in three steps, the log's lock held only
    /// for the first and the last: where every run is; then, unlocked, which runs go, the blobs
    /// their records name (read from the log's head) and a copy of the kept tail; then, locked
    /// again, the records saved meanwhile copied too, the new log swapped in and the blobs no
    /// kept run refers to removed.
    fn prune_once(&self, now_ms: u64) -> io::Result<Pruned> {
        let (mut places, end, total) = {
            let log = self.log.lock().expect("run log");
            let places: Vec<Place> = log.index.values().copied().collect();
            (places, log.end, log.end + log.blob_bytes)
        };
        places.sort_by_key(|p| p.offset);
        let n = places.len();
        let low_water = |max: u64| max - max / 10;
        // The oldest runs go: past the count, then past the age, then past the size.
        let mut drop = if n as u64 > self.retention.max_runs {
            n - low_water(self.retention.max_runs) as usize
        } else {
            0
        };
        let cutoff = self.retention.cutoff_ms(now_ms);
        while drop < n && places[drop].created_ms < cutoff {
            drop += 1;
        }
        if total > self.retention.max_bytes && n > 0 {
            let per_run = (total / n as u64).max(1);
            let excess = total - low_water(self.retention.max_bytes);
            drop = drop.max((excess.div_ceil(per_run) as usize).min(n));
        }
        let mut pruned = Pruned::default();
        if drop == 0 {
            let mut log = self.log.lock().expect("run log");
            pruned.blobs += self.remove_unreferenced(&mut log, &mut pruned.bytes)?;
            return Ok(pruned);
        }
        let cut = places.get(drop).map_or(end, |p| p.offset);
        let path = self.dir.join(LOG);
        // The dropped records are read for the blobs they refer to; the kept ones are not. The
        // log below `end` does not change until this prune swaps it.
        let mut dropped = BufReader::new(io::Read::take(File::open(&path)?, cut));
        let mut line = Vec::new();
        let mut dropped_refs = Vec::new();
        while dropped.read_until(b'\n', &mut line)? > 0 {
            dropped_refs.extend(blob_refs(&line));
            line.clear();
        }
        // The kept tail, copied to a new log (file to file, so that the kernel copies with
        // `copy_file_range`, not a buffer here).
        let mut staging = tempfile::Builder::new()
            .prefix(".runs.")
            .tempfile_in(&self.dir)?;
        let mut old = File::open(&path)?;
        std::io::Seek::seek(&mut old, std::io::SeekFrom::Start(cut))?;
        io::copy(
            &mut io::Read::take(&mut old, end - cut),
            staging.as_file_mut(),
        )?;

        // What was saved since `end`, and the swap.
        let mut log = self.log.lock().expect("run log");
        io::copy(
            &mut io::Read::take(&mut old, log.end - end),
            staging.as_file_mut(),
        )?;
        staging.persist(&path).map_err(|err| err.error)?;
        let mut released = Vec::new();
        for blob in dropped_refs {
            if let Some(count) = log.refs.get_mut(&blob) {
                *count -= 1;
                if *count == 0 {
                    log.refs.remove(&blob);
                    released.push(blob);
                }
            }
        }
        log.file = OpenOptions::new().append(true).read(true).open(&path)?;
        log.reader = File::open(&path)?;
        log.index.retain(|_, place| place.offset >= cut);
        for place in log.index.values_mut() {
            place.offset -= cut;
        }
        log.end -= cut;
        pruned.runs = drop;
        pruned.bytes += cut;
        for blob in released {
            let path = self.blob_path(&blob);
            if let Ok(meta) = std::fs::metadata(&path) {
                std::fs::remove_file(&path)?;
                pruned.bytes += meta.len();
                log.blob_bytes = log.blob_bytes.saturating_sub(meta.len());
                pruned.blobs += 1;
            }
        }
        Ok(pruned)
    }

    /// Removes the blobs no indexed run refers to (a walk of the blob directories); adds the
    /// bytes freed to `freed` and returns how many it removed.
    fn remove_unreferenced(&self, log: &mut Log, freed: &mut u64) -> io::Result<usize> {
        let mut removed = 0;
        for shard in std::fs::read_dir(self.dir.join("blobs").join("sha256"))? {
            let shard = shard?.path();
            if !shard.is_dir() {
                continue;
            }
            for blob in std::fs::read_dir(&shard)? {
                let blob = blob?;
                let name = blob.file_name().to_string_lossy().into_owned();
                let keep = Digest::from_hex(&name).is_ok_and(|d| log.refs.contains_key(&d));
                if !keep {
                    let size = blob.metadata().map_or(0, |m| m.len());
                    std::fs::remove_file(blob.path())?;
                    *freed += size;
                    log.blob_bytes = log.blob_bytes.saturating_sub(size);
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// Opens the log at `path` (creating it) and indexes it; a torn last line is ended.
fn open_log(path: &Path) -> io::Result<Log> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)?;
    let mut index = HashMap::new();
    let mut refs: HashMap<Digest, u32> = HashMap::new();
    let mut offset = 0u64;
    let mut torn = false;
    let mut reader = BufReader::new(File::open(path)?);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            torn = true;
        } else if let Ok(run) = serde_json::from_slice::<Indexed>(&line) {
            index.insert(
                run.id,
                Place {
                    offset,
                    len: read,
                    created_ms: run.created_ms,
                },
            );
            for blob in run.record.iter().flat_map(BlobRefs::blobs) {
                *refs.entry(blob).or_default() += 1;
            }
        }
        offset += read as u64;
    }
    if torn {
        // End the torn line so that the next record starts on its own line.
        file.write_all(b"\n")?;
        offset += 1;
    }
    Ok(Log {
        file,
        reader: File::open(path)?,
        end: offset,
        index,
        refs,
        blob_bytes: blob_bytes(&path.parent().unwrap_or(Path::new(".")).join("blobs"))?,
        saved: 0,
    })
}

/// The bytes of every file under `dir`.
fn blob_bytes(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    for entry in entries {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total += blob_bytes(&entry.path())?;
        } else if kind.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

/// Moves blobs of the earlier flat layout (`blobs/sha256/HEX`) into their shards.
fn shard_flat_blobs(blobs: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(blobs)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file() && name.len() == 64 {
            let shard = blobs.join(&name[..2]);
            std::fs::create_dir_all(&shard)?;
            std::fs::rename(entry.path(), shard.join(&name))?;
        }
    }
    Ok(())
}

/// What indexing reads of a record: its id, its time and the blobs it refers to.
#[derive(Deserialize)]
struct Indexed {
    id: String,
    #[serde(default)]
    created_ms: u64,
    #[serde(default)]
    record: Option<BlobRefs>,
}

/// The blobs a run record refers to (the fields of [`StoredRun::blobs`]).
#[derive(Deserialize)]
struct BlobRefs {
    notebook: Digest,
    #[serde(default)]
    cells: Vec<CellBlobRef>,
}

#[derive(Deserialize)]
struct CellBlobRef {
    #[serde(default)]
    output: Option<Digest>,
}

impl BlobRefs {
    fn blobs(&self) -> impl Iterator<Item = Digest> + '_ {
        std::iter::once(self.notebook).chain(self.cells.iter().filter_map(|c| c.output))
    }
}

/// The blobs the record on `line` refers to (none when it does not parse).
fn blob_refs(line: &[u8]) -> Vec<Digest> {
    serde_json::from_slice::<Indexed>(line)
        .ok()
        .and_then(|run| run.record)
        .map(|record| record.blobs().collect())
        .unwrap_or_default()
}

/// The file at `path` when it holds the bytes `digest` names; `None` when there is none, and an
/// error when its bytes changed.
pub(crate) fn read_verified(path: &Path, digest: &Digest) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) if Digest::of(&bytes) == *digest => Ok(Some(bytes)),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("stored {digest} does not match its digest"),
        )),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use kiln_wire::runs::{CellRecord, CellStatus};

    use super::*;
    use crate::run::RunResult;

    const KEEP_ALL: Retention = Retention {
        max_age_days: 36_500,
        max_bytes: u64::MAX,
        max_runs: u64::MAX,
    };

    fn save(
        store: &RunStore,
        notebook: &[u8],
        output: &[u8],
        created_ms: u64,
    ) -> io::Result<StoredRun> {
        let RunResult { record, outputs } = result(output);
        store.save(notebook, record, &outputs, created_ms)
    }

    fn result(output: &[u8]) -> RunResult {
        RunResult {
            record: RunRecord {
                notebook: Digest::of(b"notebook"),
                kernels: BTreeMap::new(),
                seed: Some(7),
                ran_by: None,
                cells: vec![CellRecord {
                    id: "c".into(),
                    kernel: "k".into(),
                    entry: "e".into(),
                    status: CellStatus::Ok,
                    input: None,
                    output: Some(Digest::of(output)),
                    error: None,
                    metrics: Default::default(),
                }],
            },
            outputs: BTreeMap::from([(Digest::of(output), output.to_vec())]),
        }
    }

    #[test]
    fn runs_survive_a_reopen_and_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::open(dir.path(), KEEP_ALL).unwrap();
        let first = save(&store, b"notebook", b"one", 1).unwrap();
        let second = save(&store, b"notebook", b"two", 2).unwrap();
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
            .open(dir.path().join(LOG))
            .unwrap();
        log.write_all(b"{\"id\":\"run-torn\",\"crea").unwrap();
        drop(log);

        let store = RunStore::open(dir.path(), KEEP_ALL).unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(store.get(&first.id).unwrap().unwrap(), first);
        assert!(store.get("run-torn").unwrap().is_none());
        let third = save(&store, b"notebook", b"three", 3).unwrap();
        drop(store);
        let store = RunStore::open(dir.path(), KEEP_ALL).unwrap();
        assert_eq!(store.get(&third.id).unwrap().unwrap(), third);
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn a_changed_blob_is_reported_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::open(dir.path(), KEEP_ALL).unwrap();
        let digest = store.put_blob(b"output").unwrap();
        std::fs::write(store.blob_path(&digest), b"0utput").unwrap();
        let err = store.blob(&digest).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn runs_saved_and_read_while_prunes_copy_the_log_are_all_kept_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention {
            max_runs: 50,
            ..KEEP_ALL
        };
        let store = std::sync::Arc::new(RunStore::open(dir.path(), retention).unwrap());
        // Four threads save (each save past the bound prunes, unless a prune is under way) and
        // read back what they saved; a fifth prunes all the while.
        let savers: Vec<_> = (0..4u64)
            .map(|thread| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for n in 0..500u64 {
                        let output = (thread * 1000 + n).to_le_bytes();
                        let run = save(&store, b"notebook", &output, n).unwrap();
                        // Read back whole, unless pruned already (other threads saved the
                        // newer runs a prune keeps).
                        if let Some(read) = store.get(&run.id).unwrap() {
                            assert_eq!(read, run);
                        }
                    }
                })
            })
            .collect();
        let pruner = {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    store.prune(0).unwrap();
                }
            })
        };
        for saver in savers {
            saver.join().unwrap();
        }
        pruner.join().unwrap();
        store.prune(0).unwrap();
        assert!(store.len() <= 50, "{}", store.len());
        // Every kept record reads back whole, the log holds exactly them, and a reopen agrees.
        let lines = std::fs::read_to_string(dir.path().join(LOG)).unwrap();
        assert_eq!(lines.lines().count(), store.len());
        let reopened = RunStore::open(dir.path(), retention).unwrap();
        assert_eq!(reopened.len(), store.len());
        for line in lines.lines() {
            let run: StoredRun = serde_json::from_str(line).unwrap();
            assert_eq!(store.get(&run.id).unwrap().unwrap(), run);
            assert_eq!(reopened.get(&run.id).unwrap().unwrap(), run);
            let output = run.record.cells[0].output.unwrap();
            assert!(
                store.blob(&output).unwrap().is_some(),
                "{output} of a kept run"
            );
        }
    }

    #[test]
    fn concurrent_saves_of_the_same_new_notebook_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(RunStore::open(dir.path(), KEEP_ALL).unwrap());
        let threads: Vec<_> = (0..64)
            .map(|n| {
                let store = store.clone();
                std::thread::spawn(move || save(&store, b"the same new notebook", b"same", n))
            })
            .collect();
        for thread in threads {
            thread.join().unwrap().unwrap();
        }
        assert_eq!(store.len(), 64);
        let shard = store.blob_path(&Digest::of(b"same"));
        let names: Vec<String> = std::fs::read_dir(shard.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with(".staging")),
            "{names:?}"
        );
    }

    #[test]
    fn retention_keeps_the_newest_runs_within_age_count_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let day = 86_400_000;
        let by_count = Retention {
            max_runs: 3,
            ..KEEP_ALL
        };
        let store = RunStore::open(dir.path(), by_count).unwrap();
        let runs: Vec<StoredRun> = (0..10)
            .map(|n| save(&store, b"notebook", format!("out {n}").as_bytes(), n * day).unwrap())
            .collect();
        // Pruned as it went: never more than the count plus the one that passed it.
        assert_eq!(store.len(), 3);
        assert!(store.get(&runs[9].id).unwrap().is_some());
        assert!(store.get(&runs[6].id).unwrap().is_none());
        assert!(store.blob(&Digest::of(b"out 6")).unwrap().is_none());
        assert!(store.blob(&Digest::of(b"out 9")).unwrap().is_some());
        assert!(store.blob(&Digest::of(b"notebook")).unwrap().is_some());
        drop(store);

        // By age, on a prune: what is older than a day at day 9 goes.
        let by_age = Retention {
            max_age_days: 1,
            ..KEEP_ALL
        };
        let store = RunStore::open(dir.path(), by_age).unwrap();
        let pruned = store.prune(9 * day).unwrap();
        assert_eq!((pruned.runs, pruned.kept), (1, 2));
        assert!(store.get(&runs[7].id).unwrap().is_none());
        drop(store);

        // By size: a bound that holds one run and its blobs.
        let by_size = Retention {
            max_bytes: 700,
            ..KEEP_ALL
        };
        let store = RunStore::open(dir.path(), by_size).unwrap();
        let pruned = store.prune(9 * day).unwrap();
        assert_eq!(pruned.kept, 1, "{pruned:?}");
        assert!(store.get(&runs[9].id).unwrap().is_some());
        let on_disk: u64 = walk_size(dir.path());
        assert!(on_disk <= 700, "{on_disk} bytes on disk");
    }

    fn walk_size(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    walk_size(&e.path())
                } else {
                    e.metadata().unwrap().len()
                }
            })
            .sum()
    }

    #[test]
    fn blobs_of_the_flat_layout_move_into_shards() {
        let dir = tempfile::tempdir().unwrap();
        let flat = dir.path().join("blobs").join("sha256");
        std::fs::create_dir_all(&flat).unwrap();
        let digest = Digest::of(b"old");
        std::fs::write(flat.join(digest.hex()), b"old").unwrap();
        let store = RunStore::open(dir.path(), KEEP_ALL).unwrap();
        assert_eq!(store.blob(&digest).unwrap().unwrap(), b"old");
        assert!(!flat.join(digest.hex()).exists());
    }

    #[test]
    fn an_explicit_prune_removes_blobs_no_run_refers_to() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::open(dir.path(), KEEP_ALL).unwrap();
        let orphan = store.put_blob(b"left by a crash").unwrap();
        let run = save(&store, b"notebook", b"kept", 1).unwrap();
        let pruned = store.prune(2).unwrap();
        assert_eq!((pruned.runs, pruned.blobs, pruned.kept), (0, 1, 1));
        assert!(store.blob(&orphan).unwrap().is_none());
        assert!(store.blob(&Digest::of(b"kept")).unwrap().is_some());
        assert!(store.blob(&Digest::of(b"notebook")).unwrap().is_some());
        assert_eq!(store.get(&run.id).unwrap().unwrap(), run);
    }

    #[test]
    fn a_count_bound_prunes_to_its_low_water_mark_and_the_log_matches_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention {
            max_runs: 100,
            ..KEEP_ALL
        };
        let store = RunStore::open(dir.path(), retention).unwrap();
        let mut last = None;
        for n in 0..1000u64 {
            last = Some(save(&store, b"notebook", &n.to_le_bytes(), n).unwrap());
            assert!(store.len() <= 100, "{} runs after {n} saves", store.len());
        }
        assert!(store.len() >= 90, "{}", store.len());
        let last = last.unwrap();
        assert_eq!(store.get(&last.id).unwrap().unwrap(), last);
        let lines = std::fs::read_to_string(dir.path().join(LOG)).unwrap();
        assert_eq!(lines.lines().count(), store.len());
        // The outputs of pruned runs are gone; the notebook, still referred to, stays.
        assert_eq!(store.blob(&Digest::of(&0u64.to_le_bytes())).unwrap(), None);
        assert!(store.blob(&Digest::of(b"notebook")).unwrap().is_some());
        let reopened = RunStore::open(dir.path(), retention).unwrap();
        assert_eq!(reopened.len(), store.len());
        assert_eq!(reopened.get(&last.id).unwrap().unwrap(), last);
    }
}
