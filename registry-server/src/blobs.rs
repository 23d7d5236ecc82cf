//! Content-addressed blob storage: every `.crate`, module and bundle is stored under its SHA-256
//! and checked against it when read back.
//!
//! Two stores: a directory on local disk (the default: write to a temporary file, fsync, rename)
//! and an S3-compatible object store (`object_store`), for registries that run on several
//! machines.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::future::BoxFuture;
use kiln_policy::Digest;

/// Why a blob could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The store failed.
    #[error("blob store I/O failed: {0}")]
    Io(String),
    /// A stored blob no longer has the digest it is stored under.
    #[error("blob {0} is corrupt: its content does not match its digest")]
    Corrupt(Digest),
    /// The store's configuration is not usable.
    #[error("blob store configuration: {0}")]
    Config(String),
}

/// A content-addressed store of immutable blobs.
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores `bytes` (idempotently) and returns their digest.
    fn put(&self, bytes: Bytes) -> BoxFuture<'_, Result<Digest, BlobError>>;
    /// The blob with `digest`, checked against it; `None` when absent.
    fn get<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<Option<Bytes>, BlobError>>;
    /// Whether a blob with `digest` is stored.
    fn contains<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<bool, BlobError>>;
    /// The size of the blob with `digest`, without reading it; `None` when absent.
    fn size<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<Option<u64>, BlobError>>;
    /// Every stored blob with when it was written.
    fn list(&self) -> BoxFuture<'_, Result<Vec<(Digest, SystemTime)>, BlobError>>;
    /// Removes the blob with `digest` (a no-op when absent).
    fn delete<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<(), BlobError>>;
    /// Where the blobs are, for logs.
    fn describe(&self) -> String;
}

/// Opens the store a `--blob-store` value names: `file://DIR` (or a plain path), or
/// `s3://BUCKET` (credentials and endpoint from the usual `AWS_*` environment variables, such as
/// `AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`).
pub fn open(spec: &str) -> Result<Arc<dyn BlobStore>, BlobError> {
    if let Some(bucket) = spec.strip_prefix("s3://") {
        Ok(Arc::new(ObjectBlobStore::s3_from_env(bucket)?))
    } else {
        let dir = spec.strip_prefix("file://").unwrap_or(spec);
        Ok(Arc::new(FsBlobStore::new(dir)?))
    }
}

/// Blobs in a directory: `DIR/sha256/ab/abcd…`.
#[derive(Debug)]
pub struct FsBlobStore {
    root: PathBuf,
}

fn io(err: std::io::Error) -> BlobError {
    BlobError::Io(err.to_string())
}

impl FsBlobStore {
    /// A store in `root`, created if missing.
    pub fn new(root: impl AsRef<Path>) -> Result<Self, BlobError> {
        let root = root.as_ref().to_owned();
        std::fs::create_dir_all(root.join("sha256")).map_err(io)?;
        std::fs::create_dir_all(root.join("tmp")).map_err(io)?;
        Ok(Self { root })
    }

    /// Where the blob with `digest` lives.
    pub fn path_of(&self, digest: &Digest) -> PathBuf {
        blob_path(&self.root, digest)
    }
}

fn blob_path(root: &Path, digest: &Digest) -> PathBuf {
    let hex = digest.hex();
    root.join("sha256").join(&hex[..2]).join(hex)
}

/// Writes a blob under `root`: to a temporary file, fsync, rename, fsync the directory.
fn write_blob(root: &Path, bytes: &[u8], digest: &Digest) -> Result<(), BlobError> {
    use std::io::Write as _;
    let target = blob_path(root, digest);
    if target.exists() {
        return Ok(());
    }
    let dir = target.parent().expect("blob paths have a parent");
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut temp = tempfile::NamedTempFile::new_in(root.join("tmp")).map_err(io)?;
    temp.write_all(bytes).map_err(io)?;
    temp.as_file().sync_all().map_err(io)?;
    temp.persist(&target).map_err(|err| io(err.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}

/// The blobs under `root` (`sha256/ab/abcd…`) and their modification times; other files are
/// not blobs and are left out.
fn list_dir(root: &Path) -> Result<Vec<(Digest, SystemTime)>, BlobError> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(root).map_err(io)? {
        let shard = shard.map_err(io)?;
        if !shard.file_type().map_err(io)?.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(shard.path()).map_err(io)? {
            let entry = entry.map_err(io)?;
            let Some(digest) = entry
                .file_name()
                .to_str()
                .and_then(|hex| Digest::from_hex(hex).ok())
            else {
                continue;
            };
            let modified = entry.metadata().map_err(io)?.modified().map_err(io)?;
            out.push((digest, modified));
        }
    }
    Ok(out)
}

impl BlobStore for FsBlobStore {
    fn put(&self, bytes: Bytes) -> BoxFuture<'_, Result<Digest, BlobError>> {
        Box::pin(async move {
            let digest = Digest::of(&bytes);
            let root = self.root.clone();
            tokio::task::spawn_blocking(move || write_blob(&root, &bytes, &digest))
                .await
                .map_err(|err| BlobError::Io(err.to_string()))??;
            Ok(digest)
        })
    }

    fn get<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<Option<Bytes>, BlobError>> {
        Box::pin(async move {
            match tokio::fs::read(self.path_of(digest)).await {
                Ok(bytes) if Digest::of(&bytes) == *digest => Ok(Some(Bytes::from(bytes))),
                Ok(_) => Err(BlobError::Corrupt(*digest)),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(err) => Err(io(err)),
            }
        })
    }

    fn contains<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<bool, BlobError>> {
        Box::pin(async move {
            tokio::fs::try_exists(self.path_of(digest))
                .await
                .map_err(io)
        })
    }

    fn size<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<Option<u64>, BlobError>> {
        Box::pin(async move {
            match tokio::fs::metadata(self.path_of(digest)).await {
                Ok(meta) => Ok(Some(meta.len())),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(err) => Err(io(err)),
            }
        })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<(Digest, SystemTime)>, BlobError>> {
        Box::pin(async move {
            let root = self.root.join("sha256");
            tokio::task::spawn_blocking(move || list_dir(&root))
                .await
                .map_err(|err| BlobError::Io(err.to_string()))?
        })
    }

    fn delete<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path_of(digest)).await {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(io(err)),
                _ => Ok(()),
            }
        })
    }

    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }
}

/// Blobs in an object store, as `sha256/<hex>` objects.
#[derive(Debug)]
pub struct ObjectBlobStore {
    store: Arc<dyn object_store::ObjectStore>,
    description: String,
}

fn object_path(digest: &Digest) -> object_store::path::Path {
    object_store::path::Path::from(format!("sha256/{}", digest.hex()))
}

fn object_error(err: object_store::Error) -> BlobError {
    BlobError::Io(err.to_string())
}

impl ObjectBlobStore {
    /// An S3-compatible bucket, configured from the `AWS_*` environment variables.
    pub fn s3_from_env(bucket: &str) -> Result<Self, BlobError> {
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|err| BlobError::Config(err.to_string()))?;
        Ok(Self::new(Arc::new(store), format!("s3://{bucket}")))
    }

    /// Blobs in `store`.
    pub fn new(store: Arc<dyn object_store::ObjectStore>, description: String) -> Self {
        Self { store, description }
    }
}

impl BlobStore for ObjectBlobStore {
    fn put(&self, bytes: Bytes) -> BoxFuture<'_, Result<Digest, BlobError>> {
        Box::pin(async move {
            let digest = Digest::of(&bytes);
            let path = object_path(&digest);
            if self.store.head(&path).await.is_ok() {
                return Ok(digest);
            }
            self.store
                .put(&path, bytes.into())
                .await
                .map_err(object_error)?;
            Ok(digest)
        })
    }

    fn get<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<Option<Bytes>, BlobError>> {
        Box::pin(async move {
            match self.store.get(&object_path(digest)).await {
                Ok(result) => {
                    let bytes = result.bytes().await.map_err(object_error)?;
                    if Digest::of(&bytes) != *digest {
                        return Err(BlobError::Corrupt(*digest));
                    }
                    Ok(Some(bytes))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(err) => Err(object_error(err)),
            }
        })
    }

    fn contains<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<bool, BlobError>> {
        Box::pin(async move {
            match self.store.head(&object_path(digest)).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(err) => Err(object_error(err)),
            }
        })
    }

    fn size<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<Option<u64>, BlobError>> {
        Box::pin(async move {
            match self.store.head(&object_path(digest)).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(err) => Err(object_error(err)),
            }
        })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<(Digest, SystemTime)>, BlobError>> {
        use futures::TryStreamExt as _;
        Box::pin(async move {
            let prefix = object_store::path::Path::from("sha256");
            let objects: Vec<object_store::ObjectMeta> = self
                .store
                .list(Some(&prefix))
                .try_collect()
                .await
                .map_err(object_error)?;
            Ok(objects
                .into_iter()
                .filter_map(|meta| {
                    let digest = Digest::from_hex(meta.location.filename()?).ok()?;
                    Some((digest, SystemTime::from(meta.last_modified)))
                })
                .collect())
        })
    }

    fn delete<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            match self.store.delete(&object_path(digest)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(err) => Err(object_error(err)),
            }
        })
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_directory_store_round_trips_and_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path()).unwrap();
        let digest = store.put(Bytes::from_static(b"crate bytes")).await.unwrap();
        assert_eq!(digest, Digest::of(b"crate bytes"));
        assert_eq!(
            store.put(Bytes::from_static(b"crate bytes")).await.unwrap(),
            digest
        );
        assert!(store.contains(&digest).await.unwrap());
        assert_eq!(
            store.get(&digest).await.unwrap().unwrap(),
            &b"crate bytes"[..]
        );
        let absent = Digest::of(b"absent");
        assert!(store.get(&absent).await.unwrap().is_none());
        assert!(!store.contains(&absent).await.unwrap());
        assert_eq!(store.size(&digest).await.unwrap(), Some(11));
        assert_eq!(store.size(&absent).await.unwrap(), None);
        let listed: Vec<Digest> = store
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(listed, [digest]);
        std::fs::write(store.path_of(&digest), b"tampered").unwrap();
        assert!(matches!(store.get(&digest).await, Err(BlobError::Corrupt(d)) if d == digest));
    }

    #[tokio::test]
    async fn an_in_memory_object_store_behaves_the_same() {
        let store = ObjectBlobStore::new(
            Arc::new(object_store::memory::InMemory::new()),
            "memory".into(),
        );
        let digest = store.put(Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(store.get(&digest).await.unwrap().unwrap(), &b"x"[..]);
        assert!(store.contains(&digest).await.unwrap());
        assert!(store.get(&Digest::of(b"y")).await.unwrap().is_none());
        assert_eq!(store.size(&digest).await.unwrap(), Some(1));
        assert_eq!(store.list().await.unwrap().len(), 1);
        store.delete(&digest).await.unwrap();
        assert!(!store.contains(&digest).await.unwrap());
        assert!(store.list().await.unwrap().is_empty());
    }
}
