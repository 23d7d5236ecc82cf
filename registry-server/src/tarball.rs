//! Safe inspection of a `.crate` tarball (gzip-compressed tar), before anything is stored.
//!
//! Everything about the archive is bounded: its decompressed size (gzip bombs), its number of
//! entries, every path (no `..`, no absolute paths, everything under `NAME-VERSION/`), and the
//! kinds of entry (only files and directories: no symlinks, hard links or devices). The
//! `Cargo.toml` inside must name the same crate and version as the publish metadata.

use std::io::Read;
use std::path::{Component, Path};

/// Limits on what a `.crate` may contain.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most bytes the archive may decompress to.
    pub max_unpacked_bytes: u64,
    /// The most entries the archive may have.
    pub max_entries: usize,
    /// The largest `Cargo.toml` read.
    pub max_manifest_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_unpacked_bytes: 256 * 1024 * 1024,
            max_entries: 20_000,
            max_manifest_bytes: 1024 * 1024,
        }
    }
}

/// Why a tarball was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TarballError {
    /// The gzip or tar stream is corrupt.
    #[error("the .crate file is not a valid gzip-compressed tar archive: {0}")]
    Corrupt(String),
    /// The archive decompresses to more than the limit.
    #[error("the .crate file unpacks to more than {0} bytes")]
    TooLarge(u64),
    /// The archive has more entries than the limit.
    #[error("the .crate file has more than {0} entries")]
    TooManyEntries(usize),
    /// An entry's path escapes the crate directory or is not under `NAME-VERSION/`.
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
    /// The `Cargo.toml` is unreadable or disagrees with the publish metadata.
    #[error("the Cargo.toml in the .crate file {0}")]
    Manifest(String),
}

/// What the inspection found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    /// Every file's path (relative to `NAME-VERSION/`) and size.
    pub files: Vec<(String, u64)>,
    /// The normalised `Cargo.toml` text.
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

fn io_error(err: std::io::Error) -> TarballError {
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<BoundExceeded>())
    {
        Some(bound) => TarballError::TooLarge(bound.0),
        None => TarballError::Corrupt(err.to_string()),
    }
}

/// Inspects `tarball`, which must hold crate `name` at `version`.
pub fn inspect(
    tarball: &[u8],
    name: &str,
    version: &str,
    limits: Limits,
) -> Result<Contents, TarballError> {
    let prefix = format!("{name}-{version}");
    let gz = flate2::read::GzDecoder::new(tarball);
    let mut archive = tar::Archive::new(Bounded {
        inner: gz,
        left: limits.max_unpacked_bytes,
        limit: limits.max_unpacked_bytes,
    });
    let mut files = Vec::new();
    let mut manifest = None;
    let mut count = 0usize;
    for entry in archive.entries().map_err(io_error)? {
        let mut entry = entry.map_err(io_error)?;
        count += 1;
        if count > limits.max_entries {
            return Err(TarballError::TooManyEntries(limits.max_entries));
        }
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = entry
            .path()
            .map_err(|_| TarballError::Path(raw_path.clone()))?
            .into_owned();
        let relative =
            checked_relative(&path, &prefix).ok_or_else(|| TarballError::Path(raw_path.clone()))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(TarballError::EntryKind {
                path: raw_path,
                kind: format!("{kind:?}"),
            });
        }
        let size = entry.size();
        if relative == "Cargo.toml" {
            if size > limits.max_manifest_bytes {
                return Err(TarballError::Manifest(format!(
                    "is larger than {} bytes",
                    limits.max_manifest_bytes
                )));
            }
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|err| TarballError::Manifest(format!("is not UTF-8 text: {err}")))?;
            manifest = Some(text);
        } else {
            // Read through the data so that the bound counts it.
            std::io::copy(&mut entry, &mut std::io::sink()).map_err(io_error)?;
        }
        files.push((relative, size));
    }
    let manifest =
        manifest.ok_or_else(|| TarballError::NoManifest(format!("{prefix}/Cargo.toml")))?;
    check_manifest(&manifest, name, version)?;
    files.sort();
    Ok(Contents { files, manifest })
}

/// The path relative to `prefix/`, when it is a plain relative path under it.
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

fn check_manifest(text: &str, name: &str, version: &str) -> Result<(), TarballError> {
    let manifest: toml::Table = toml::from_str(text)
        .map_err(|err| TarballError::Manifest(format!("is not valid TOML: {}", err.message())))?;
    let package = manifest
        .get("package")
        .and_then(toml::Value::as_table)
        .ok_or_else(|| TarballError::Manifest("has no [package] table".into()))?;
    let field = |key: &str| package.get(key).and_then(toml::Value::as_str);
    if field("name") != Some(name) {
        return Err(TarballError::Manifest(format!(
            "names the crate `{}`, but the publish metadata says `{name}`",
            field("name").unwrap_or("?")
        )));
    }
    if field("version") != Some(version) {
        return Err(TarballError::Manifest(format!(
            "gives version `{}`, but the publish metadata says `{version}`",
            field("version").unwrap_or("?")
        )));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A builder of hostile and friendly `.crate` files for tests.
    pub(crate) struct CrateFile {
        builder: tar::Builder<Vec<u8>>,
    }

    impl CrateFile {
        pub(crate) fn new() -> Self {
            Self {
                builder: tar::Builder::new(Vec::new()),
            }
        }

        /// A well-formed crate with a manifest naming `name` and `version`.
        pub(crate) fn valid(name: &str, version: &str) -> Self {
            let mut file = Self::new();
            file.file(
                &format!("{name}-{version}/Cargo.toml"),
                format!(
                    "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n"
                )
                .as_bytes(),
            );
            file.file(&format!("{name}-{version}/src/lib.rs"), b"pub fn f() {}\n");
            file
        }

        pub(crate) fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            set_raw_path(&mut header, path);
            header.set_cksum();
            self.builder.append(&header, data).unwrap();
            self
        }

        pub(crate) fn special(
            &mut self,
            path: &str,
            kind: tar::EntryType,
            link: &str,
        ) -> &mut Self {
            let mut header = tar::Header::new_gnu();
            header.set_size(0);
            header.set_mode(0o644);
            header.set_entry_type(kind);
            set_raw_path(&mut header, path);
            header.set_link_name(link).unwrap();
            header.set_cksum();
            self.builder.append(&header, &[][..]).unwrap();
            self
        }

        pub(crate) fn gzip(self) -> Vec<u8> {
            let tar = self.builder.into_inner().unwrap();
            gzip(&tar)
        }
    }

    /// Writes a path into the header as is, even `..` or an absolute path (which `set_path`
    /// refuses), as an attacker's tool would.
    fn set_raw_path(header: &mut tar::Header, path: &str) {
        let name = &mut header.as_old_mut().name;
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
    }

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    fn check(file: Vec<u8>) -> Result<Contents, TarballError> {
        inspect(&file, "demo", "0.1.0", Limits::default())
    }

    #[test]
    fn a_valid_crate_is_listed() {
        let contents = check(CrateFile::valid("demo", "0.1.0").gzip()).unwrap();
        assert_eq!(contents.files.len(), 2);
        assert!(contents.manifest.contains("name = \"demo\""));
    }

    #[test]
    fn escaping_paths_are_refused() {
        for path in [
            "../evil",
            "/etc/passwd",
            "demo-0.1.0/../../evil",
            "other-0.1.0/x",
            "demo-0.1.0/a/../../b",
        ] {
            let mut file = CrateFile::valid("demo", "0.1.0");
            file.file(path, b"x");
            assert!(
                matches!(check(file.gzip()), Err(TarballError::Path(_))),
                "{path}"
            );
        }
    }

    #[test]
    fn links_and_devices_are_refused() {
        for kind in [
            tar::EntryType::Symlink,
            tar::EntryType::Link,
            tar::EntryType::Char,
            tar::EntryType::Block,
            tar::EntryType::Fifo,
        ] {
            let mut file = CrateFile::valid("demo", "0.1.0");
            file.special("demo-0.1.0/link", kind, "/etc/passwd");
            assert!(
                matches!(check(file.gzip()), Err(TarballError::EntryKind { .. })),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn a_gzip_bomb_is_stopped_at_the_limit() {
        let mut file = CrateFile::valid("demo", "0.1.0");
        file.file("demo-0.1.0/zeros", &vec![0u8; 8 * 1024 * 1024]);
        let bomb = file.gzip();
        assert!(bomb.len() < 64 * 1024, "compresses well: {}", bomb.len());
        let limits = Limits {
            max_unpacked_bytes: 1024 * 1024,
            ..Limits::default()
        };
        assert_eq!(
            inspect(&bomb, "demo", "0.1.0", limits),
            Err(TarballError::TooLarge(1024 * 1024))
        );
    }

    #[test]
    fn too_many_entries_are_refused() {
        let mut file = CrateFile::valid("demo", "0.1.0");
        for i in 0..100 {
            file.file(&format!("demo-0.1.0/f{i}"), b"");
        }
        let limits = Limits {
            max_entries: 50,
            ..Limits::default()
        };
        assert_eq!(
            inspect(&file.gzip(), "demo", "0.1.0", limits),
            Err(TarballError::TooManyEntries(50))
        );
    }

    #[test]
    fn the_manifest_must_agree_with_the_metadata() {
        assert!(matches!(
            check(CrateFile::valid("other", "0.1.0").gzip()),
            Err(TarballError::Path(_))
        ));
        let mut file = CrateFile::new();
        file.file(
            "demo-0.1.0/Cargo.toml",
            b"[package]\nname = \"evil\"\nversion = \"0.1.0\"\n",
        );
        let err = check(file.gzip()).unwrap_err();
        assert!(err.to_string().contains("names the crate `evil`"), "{err}");
        let mut file = CrateFile::new();
        file.file(
            "demo-0.1.0/Cargo.toml",
            b"[package]\nname = \"demo\"\nversion = \"9.9.9\"\n",
        );
        assert!(
            check(file.gzip())
                .unwrap_err()
                .to_string()
                .contains("gives version `9.9.9`")
        );
        let mut file = CrateFile::new();
        file.file("demo-0.1.0/src/lib.rs", b"");
        assert_eq!(
            check(file.gzip()),
            Err(TarballError::NoManifest("demo-0.1.0/Cargo.toml".into()))
        );
    }

    #[test]
    fn garbage_is_corrupt() {
        assert!(matches!(
            check(b"not gzip".to_vec()),
            Err(TarballError::Corrupt(_))
        ));
        assert!(
            check(gzip(
                b"not a tar archive, but long enough to be read as one header or more........"
            ))
            .is_err()
        );
        let valid = CrateFile::valid("demo", "0.1.0").gzip();
        assert!(check(valid[..valid.len() / 2].to_vec()).is_err());
    }
}
