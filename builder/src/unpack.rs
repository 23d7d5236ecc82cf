//! Unpacking a `.crate` (a gzipped tarball whose entries all sit under `NAME-VERSION/`) into a
//! directory. Only regular files with plain relative paths are written; anything else (links,
//! devices, `..`, absolute paths, entries outside the crate's folder) is refused, and sizes and
//! counts are capped.

use std::io::Read as _;
use std::path::{Component, Path, PathBuf};

/// The most bytes unpacked from one crate.
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;
/// The most entries in one crate.
pub const MAX_ENTRIES: usize = 20_000;

/// Why a `.crate` was refused.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// Not a gzipped tarball, or truncated.
    #[error("the .crate is not a readable tarball: {0}")]
    Corrupt(String),
    /// An entry that is not a plain file inside the crate's folder.
    #[error("the .crate holds a refused entry `{path}`: {why}")]
    Refused {
        /// The entry.
        path: String,
        /// Why.
        why: &'static str,
    },
    /// Too big or too many entries.
    #[error("the .crate is too large: {0}")]
    TooLarge(String),
    /// Writing failed.
    #[error("cannot write {path}: {message}")]
    Write {
        /// Where.
        path: String,
        /// Why.
        message: String,
    },
}

/// Unpacks `bytes` (the `.crate` of `name@version`) into `dest`; returns the crate's folder.
pub fn unpack(
    bytes: &[u8],
    name: &str,
    version: &str,
    dest: &Path,
) -> Result<PathBuf, UnpackError> {
    let prefix = format!("{name}-{version}");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let corrupt = |err: std::io::Error| UnpackError::Corrupt(err.to_string());
    let mut total = 0u64;
    let mut count = 0usize;
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let path = entry.path().map_err(corrupt)?.into_owned();
        let shown = path.display().to_string();
        count += 1;
        if count > MAX_ENTRIES {
            return Err(UnpackError::TooLarge(format!(
                "more than {MAX_ENTRIES} entries"
            )));
        }
        if !path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(UnpackError::Refused {
                path: shown,
                why: "not a plain relative path",
            });
        }
        if !path.starts_with(&prefix) {
            return Err(UnpackError::Refused {
                path: shown,
                why: "outside the crate's folder",
            });
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(UnpackError::Refused {
                path: shown,
                why: "not a regular file",
            });
        }
        total += entry.header().size().map_err(corrupt)?;
        if total > MAX_BYTES {
            return Err(UnpackError::TooLarge(format!(
                "more than {MAX_BYTES} bytes unpacked"
            )));
        }
        let target = dest.join(&path);
        let write = |err: std::io::Error| UnpackError::Write {
            path: target.display().to_string(),
            message: err.to_string(),
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(write)?;
        }
        let mut contents = Vec::new();
        entry
            .by_ref()
            .take(MAX_BYTES)
            .read_to_end(&mut contents)
            .map_err(corrupt)?;
        std::fs::write(&target, contents).map_err(write)?;
    }
    let root = dest.join(&prefix);
    if !root.join("Cargo.toml").is_file() {
        return Err(UnpackError::Refused {
            path: prefix,
            why: "no Cargo.toml in the crate's folder",
        });
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crate_file(entries: &[(&str, &[u8], tar::EntryType)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, data, kind) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            if *kind == tar::EntryType::Symlink {
                header.set_link_name("/etc/passwd").unwrap();
            }
            // Write the name bytes directly, so that hostile paths survive.
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn a_plain_crate_unpacks() {
        let bytes = crate_file(&[
            (
                "k-1.0.0/Cargo.toml",
                b"[package]\n",
                tar::EntryType::Regular,
            ),
            ("k-1.0.0/src/lib.rs", b"", tar::EntryType::Regular),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let root = unpack(&bytes, "k", "1.0.0", dir.path()).unwrap();
        assert!(root.join("src/lib.rs").is_file());
    }

    #[test]
    fn hostile_entries_are_refused_and_nothing_escapes() {
        let dir = tempfile::tempdir().unwrap();
        for (path, kind, want) in [
            (
                "k-1.0.0/../../escape",
                tar::EntryType::Regular,
                "plain relative path",
            ),
            (
                "/tmp/absolute",
                tar::EntryType::Regular,
                "plain relative path",
            ),
            ("other-1.0.0/Cargo.toml", tar::EntryType::Regular, "outside"),
            (
                "k-1.0.0/link",
                tar::EntryType::Symlink,
                "not a regular file",
            ),
            ("k-1.0.0/dev", tar::EntryType::Char, "not a regular file"),
        ] {
            let bytes = crate_file(&[(path, b"x", kind)]);
            let err = unpack(&bytes, "k", "1.0.0", dir.path()).unwrap_err();
            assert!(err.to_string().contains(want), "{path}: {err}");
        }
        assert!(!dir.path().parent().unwrap().join("escape").exists());
        let err = unpack(b"not gzip", "k", "1.0.0", dir.path()).unwrap_err();
        assert!(matches!(err, UnpackError::Corrupt(_)), "{err}");
    }
}
