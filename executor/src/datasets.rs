//! Datasets: files people upload for cells to read (`{"blob": "sha256:…"}` as a cell's input),
//! kept by content address in the executor's data directory and never copied into a notebook.
//! An upload is streamed to a staging file while it is hashed, and is refused as soon as it
//! passes the policy's `max_dataset_bytes`; only a complete upload gets its name.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use kiln_policy::Digest;
use sha2::Digest as _;

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// It is larger than the policy allows.
    #[error("the dataset is larger than the {limit} bytes the policy allows (max_dataset_bytes)")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The disk failed.
    #[error("the dataset store: {0}")]
    Io(#[from] io::Error),
}

/// The executor's datasets.
#[derive(Debug)]
pub struct Datasets {
    dir: PathBuf,
}

/// A dataset being uploaded; dropped unfinished, it leaves nothing behind.
#[derive(Debug)]
pub struct Upload<'a> {
    store: &'a Datasets,
    staging: tempfile::NamedTempFile,
    hasher: sha2::Sha256,
    size: u64,
    limit: u64,
}

impl Datasets {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir.join("sha256"))?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir.join("sha256").join(&hex[..2]).join(hex)
    }

    /// Starts an upload of at most `limit` bytes.
    pub fn upload(&self, limit: u64) -> io::Result<Upload<'_>> {
        let staging = tempfile::Builder::new()
            .prefix(".staging.")
            .tempfile_in(&self.dir)?;
        Ok(Upload {
            store: self,
            staging,
            hasher: sha2::Sha256::new(),
            size: 0,
            limit,
        })
    }

    /// Whether dataset `digest` is here.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// The dataset `digest`, if here and intact.
    pub fn get(&self, digest: &Digest) -> io::Result<Option<Vec<u8>>> {
        crate::store::read_verified(&self.path(digest), digest)
    }
}

impl Upload<'_> {
    /// Appends a chunk; past the limit, the upload is refused.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), DatasetError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(DatasetError::TooLarge { limit: self.limit });
        }
        self.hasher.update(chunk);
        self.staging.write_all(chunk)?;
        Ok(())
    }

    /// Names the complete upload by its digest; answers the digest and the size.
    pub fn finish(self) -> Result<(Digest, u64), DatasetError> {
        let digest = Digest::from_bytes(self.hasher.finalize().into());
        let path = self.store.path(&digest);
        if !path.exists() {
            std::fs::create_dir_all(path.parent().expect("a shard"))?;
            self.staging.as_file().sync_all()?;
            self.staging.persist(&path).map_err(|err| err.error)?;
        }
        Ok((digest, self.size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_is_named_by_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Datasets::open(dir.path()).unwrap();
        let mut upload = store.upload(10).unwrap();
        upload.write(b"a,b\n").unwrap();
        upload.write(b"1,2\n").unwrap();
        let (digest, size) = upload.finish().unwrap();
        assert_eq!((digest, size), (Digest::of(b"a,b\n1,2\n"), 8));
        assert_eq!(store.get(&digest).unwrap().unwrap(), b"a,b\n1,2\n");
        assert!(store.contains(&digest));
    }

    #[test]
    fn an_upload_past_the_limit_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Datasets::open(dir.path()).unwrap();
        let mut upload = store.upload(4).unwrap();
        upload.write(b"abc").unwrap();
        assert!(matches!(
            upload.write(b"de"),
            Err(DatasetError::TooLarge { limit: 4 })
        ));
        drop(upload);
        let left: Vec<_> = walk(dir.path());
        assert!(left.is_empty(), "{left:?}");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
        files
    }
}
