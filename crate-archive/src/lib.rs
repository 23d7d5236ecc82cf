//! `kiln-crate-archive`: the one reader of `.crate` files (gzip-compressed tar archives whose
//! entries all sit under `NAME-VERSION/`), used by the registry when it accepts a publish, by the
//! builder when it unpacks one to audit and build it, and by the CLI when a reviewer reads one.
//! One set of [`Limits`] decides for all three, so a crate the registry accepts is never refused
//! later for its size or shape.
//!
//! Everything about an archive is bounded before it is trusted: its compressed size, the bytes
//! it decompresses to (gzip bombs), its number of entries, every path (no `..`, no absolute
//! paths, nothing outside `NAME-VERSION/`, UTF-8 only), and the kinds of entry (files and
//! directories only: no symlinks, hard links or devices).

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Limits on what a `.crate` may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest `.crate` file, compressed.
    pub max_compressed_bytes: u64,
    /// The most bytes the archive may decompress to.
    pub max_unpacked_bytes: u64,
    /// The most entries the archive may have.
    pub max_entries: usize,
    /// The largest `Cargo.toml`.
    pub max_manifest_bytes: u64,
}

impl Limits {
    /// The largest `.crate` file kiln accepts: a registry may set a smaller publish limit,
    /// never a larger one.
    pub const DEFAULT_MAX_COMPRESSED_BYTES: u64 = 10 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_compressed_bytes: Self::DEFAULT_MAX_COMPRESSED_BYTES,
            max_unpacked_bytes: 256 * 1024 * 1024,
            max_entries: 20_000,
            max_manifest_bytes: 1024 * 1024,
        }
    }
}

/// Why a `.crate` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    /// The file is larger than the compressed limit.
    #[error("the .crate file is {size} bytes, over the {limit}-byte limit")]
    TooLargeCompressed {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The gzip or tar stream is corrupt.
    #[error("the .crate file is not a valid gzip-compressed tar archive: {0}")]
    Corrupt(String),
    /// The archive decompresses to more than the limit.
    #[error("the .crate file unpacks to more than {0} bytes")]
    TooLarge(u64),
    /// The archive has more entries than the limit.
    #[error("the .crate file has more than {0} entries")]
    TooManyEntries(usize),
    /// An entry's path escapes the crate directory, is not under `NAME-VERSION/`, or is not
    /// UTF-8.
    #[error("the .crate file has an entry with a disallowed path: {0}")]
    Path(String),
    /// An entry is a symlink, hard link, device or other special file.
    #[error("the .crate file has an entry `{path}` of a disallowed kind ({kind})")]
    EntryKind {
        /// The entry's path.
        path: String,
        /// Its kind.
        kind: String,
    },
    /// There is no `NAME-VERSION/Cargo.toml`.
    #[error("the .crate file has no {0}")]
    NoManifest(String),
    /// The `Cargo.toml` is unreadable or names another crate or version.
    #[error("the Cargo.toml in the .crate file {0}")]
    Manifest(String),
    /// Writing an unpacked file failed.
    #[error("cannot write {path}: {message}")]
    Write {
        /// Where.
        path: String,
        /// Why.
        message: String,
    },
}

/// A `.crate` file of crate `name` at `version`, to be read under `limits`.
#[derive(Debug, Clone, Copy)]
pub struct CrateArchive<'a> {
    bytes: &'a [u8],
    name: &'a str,
    version: &'a str,
    limits: Limits,
}

/// What an inspection found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    /// Every file's path (relative to `NAME-VERSION/`) and size, sorted by path.
    pub files: Vec<(String, u64)>,
    /// The `Cargo.toml` text.
    pub manifest: String,
}

/// Reads at most `limit` bytes, then fails.
struct Bounded<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One more byte decides whether the stream really goes on.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(BoundExceeded(self.limit))),
            };
        }
        let max = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[derive(Debug)]
struct BoundExceeded(u64);

impl std::fmt::Display for BoundExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} bytes", self.0)
    }
}

impl std::error::Error for BoundExceeded {}

fn io_error(err: std::io::Error) -> ArchiveError {
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<BoundExceeded>())
    {
        Some(bound) => ArchiveError::TooLarge(bound.0),
        None => ArchiveError::Corrupt(err.to_string()),
    }
}

impl<'a> CrateArchive<'a> {
    /// The `.crate` in `bytes`, of crate `name` at `version`.
    pub fn new(bytes: &'a [u8], name: &'a str, version: &'a str, limits: Limits) -> Self {
        Self {
            bytes,
            name,
            version,
            limits,
        }
    }

    /// The folder every entry sits under: `NAME-VERSION`.
    pub fn prefix(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }

    /// Walks every entry, checking it, and hands each file's relative path, size and contents
    /// to `visit`, which must read the contents through (they count against the limit).
    fn walk(
        &self,
        mut visit: impl FnMut(&str, u64, &mut dyn Read) -> Result<(), ArchiveError>,
    ) -> Result<(), ArchiveError> {
        let size = self.bytes.len() as u64;
        if size > self.limits.max_compressed_bytes {
            return Err(ArchiveError::TooLargeCompressed {
                size,
                limit: self.limits.max_compressed_bytes,
            });
        }
        let prefix = self.prefix();
        let gz = flate2::read::GzDecoder::new(self.bytes);
        let mut archive = tar::Archive::new(Bounded {
            inner: gz,
            left: self.limits.max_unpacked_bytes,
            limit: self.limits.max_unpacked_bytes,
        });
        let mut count = 0usize;
        let mut manifest_seen = false;
        for entry in archive.entries().map_err(io_error)? {
            let mut entry = entry.map_err(io_error)?;
            count += 1;
            if count > self.limits.max_entries {
                return Err(ArchiveError::TooManyEntries(self.limits.max_entries));
            }
            let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let path = entry
                .path()
                .map_err(|_| ArchiveError::Path(raw_path.clone()))?
                .into_owned();
            let relative = checked_relative(&path, &prefix)
                .ok_or_else(|| ArchiveError::Path(raw_path.clone()))?;
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                continue;
            }
            if !kind.is_file() || relative.is_empty() {
                return Err(ArchiveError::EntryKind {
                    path: raw_path,
                    kind: format!("{kind:?}"),
                });
            }
            let size = entry.size();
            if relative == "Cargo.toml" {
                if size > self.limits.max_manifest_bytes {
                    return Err(ArchiveError::Manifest(format!(
                        "is larger than {} bytes",
                        self.limits.max_manifest_bytes
                    )));
                }
                manifest_seen = true;
            }
            visit(&relative, size, &mut entry)?;
        }
        if !manifest_seen {
            return Err(ArchiveError::NoManifest(format!("{prefix}/Cargo.toml")));
        }
        Ok(())
    }

    /// Checks the whole archive and its `Cargo.toml` (which must name this crate and version)
    /// and lists its files.
    pub fn inspect(&self) -> Result<Contents, ArchiveError> {
        let mut files = Vec::new();
        let mut manifest = None;
        self.walk(|relative, size, contents| {
            if relative == "Cargo.toml" {
                let mut text = String::new();
                contents
                    .read_to_string(&mut text)
                    .map_err(|err| ArchiveError::Manifest(format!("is not UTF-8 text: {err}")))?;
                manifest = Some(text);
            } else {
                std::io::copy(contents, &mut std::io::sink()).map_err(io_error)?;
            }
            files.push((relative.to_owned(), size));
            Ok(())
        })?;
        let manifest = manifest.unwrap_or_default();
        check_manifest(&manifest, self.name, self.version)?;
        files.sort();
        Ok(Contents { files, manifest })
    }

    /// Every file's contents by relative path, for a reader of the source.
    pub fn files(&self) -> Result<BTreeMap<String, Vec<u8>>, ArchiveError> {
        let mut files = BTreeMap::new();
        self.walk(|relative, _, contents| {
            let mut bytes = Vec::new();
            contents.read_to_end(&mut bytes).map_err(io_error)?;
            files.insert(relative.to_owned(), bytes);
            Ok(())
        })?;
        Ok(files)
    }

    /// Unpacks the archive into `dest`; returns the crate's folder (`dest/NAME-VERSION`).
    /// Only regular files are written, each at its checked path.
    pub fn unpack(&self, dest: &Path) -> Result<PathBuf, ArchiveError> {
        let root = dest.join(self.prefix());
        self.walk(|relative, _, contents| {
            let target = root.join(relative);
            let write = |err: std::io::Error| ArchiveError::Write {
                path: target.display().to_string(),
                message: err.to_string(),
            };
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(write)?;
            }
            let mut file = std::fs::File::create(&target).map_err(write)?;
            std::io::copy(contents, &mut file).map_err(|err| match io_error(err) {
                ArchiveError::Corrupt(message) => ArchiveError::Write {
                    path: target.display().to_string(),
                    message,
                },
                other => other,
            })?;
            Ok(())
        })?;
        Ok(root)
    }
}

/// The path relative to `prefix/`, when it is a plain relative UTF-8 path under it.
fn checked_relative(path: &Path, prefix: &str) -> Option<String> {
    let mut components = path.components();
    match components.next() {
        Some(Component::Normal(first)) if first == prefix => {}
        _ => return None,
    }
    let mut parts = Vec::new();
    for component in components {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?.to_owned()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

/// Checks that a packaged `Cargo.toml` names crate `name` at `version`.
fn check_manifest(text: &str, name: &str, version: &str) -> Result<(), ArchiveError> {
    let manifest: toml::Table = toml::from_str(text)
        .map_err(|err| ArchiveError::Manifest(format!("is not valid TOML: {}", err.message())))?;
    let package = manifest
        .get("package")
        .and_then(toml::Value::as_table)
        .ok_or_else(|| ArchiveError::Manifest("has no [package] table".into()))?;
    let field = |key: &str| package.get(key).and_then(toml::Value::as_str);
    if field("name") != Some(name) {
        return Err(ArchiveError::Manifest(format!(
            "names the crate `{}`, but the publish metadata says `{name}`",
            field("name").unwrap_or("?")
        )));
    }
    if field("version") != Some(version) {
        return Err(ArchiveError::Manifest(format!(
            "gives version `{}`, but the publish metadata says `{version}`",
            field("version").unwrap_or("?")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
