use super::*;

/// A builder of hostile and friendly `.crate` files.
struct CrateFile {
    builder: tar::Builder<Vec<u8>>,
}

impl CrateFile {
    fn new() -> Self {
        Self {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// A well-formed crate with a manifest naming `name` and `version`.
    fn valid(name: &str, version: &str) -> Self {
        let mut file = Self::new();
        file.file(
            &format!("{name}-{version}/Cargo.toml"),
            format!("[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n")
                .as_bytes(),
        );
        file.file(&format!("{name}-{version}/src/lib.rs"), b"pub fn f() {}\n");
        file
    }

    fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        set_raw_path(&mut header, path);
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
        self
    }

    fn special(&mut self, path: &str, kind: tar::EntryType, link: &str) -> &mut Self {
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

    fn gzip(self) -> Vec<u8> {
        gzip(&self.builder.into_inner().unwrap())
    }
}

/// Writes a path into the header as is, even `..` or an absolute path (which `set_path`
/// refuses), as an attacker's tool would.
fn set_raw_path(header: &mut tar::Header, path: &str) {
    let name = &mut header.as_old_mut().name;
    name.fill(0);
    name[..path.len()].copy_from_slice(path.as_bytes());
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn archive(bytes: &[u8]) -> CrateArchive<'_> {
    CrateArchive::new(bytes, "demo", "0.1.0", Limits::default())
}

/// What each reader says of `bytes`: inspect, files, unpack.
fn every_reader(bytes: &[u8], limits: Limits) -> [Result<(), ArchiveError>; 3] {
    let archive = CrateArchive::new(bytes, "demo", "0.1.0", limits);
    let dir = tempfile::tempdir().unwrap();
    [
        archive.inspect().map(drop),
        archive.files().map(drop),
        archive.unpack(dir.path()).map(drop),
    ]
}

#[test]
fn a_valid_crate_is_listed_read_and_unpacked() {
    let bytes = CrateFile::valid("demo", "0.1.0").gzip();
    let contents = archive(&bytes).inspect().unwrap();
    assert_eq!(contents.files.len(), 2);
    assert!(contents.manifest.contains("name = \"demo\""));
    let files = archive(&bytes).files().unwrap();
    assert_eq!(files["src/lib.rs"], b"pub fn f() {}\n");
    let dir = tempfile::tempdir().unwrap();
    let root = archive(&bytes).unpack(dir.path()).unwrap();
    assert_eq!(root, dir.path().join("demo-0.1.0"));
    assert!(root.join("src/lib.rs").is_file());
}

#[test]
fn the_three_readers_agree_at_the_limits() {
    // A large, well-compressed crate: what the registry accepts, the builder unpacks and the
    // CLI reads.
    let mut file = CrateFile::valid("demo", "0.1.0");
    file.file("demo-0.1.0/data.bin", &vec![0u8; 100 * 1024 * 1024]);
    let big = file.gzip();
    assert!(big.len() < 1024 * 1024, "{}", big.len());
    for result in every_reader(&big, Limits::default()) {
        assert_eq!(result, Ok(()));
    }
    // One byte over the unpacked limit: each refuses the same way.
    let limits = Limits {
        max_unpacked_bytes: 64 * 1024 * 1024,
        ..Limits::default()
    };
    for result in every_reader(&big, limits) {
        assert_eq!(result, Err(ArchiveError::TooLarge(64 * 1024 * 1024)));
    }
    let small = Limits {
        max_compressed_bytes: 1000,
        ..Limits::default()
    };
    for result in every_reader(&big, small) {
        assert!(
            matches!(result, Err(ArchiveError::TooLargeCompressed { .. })),
            "{result:?}"
        );
    }
}

#[test]
fn escaping_paths_are_refused_and_nothing_escapes() {
    let dir = tempfile::tempdir().unwrap();
    for path in [
        "../evil",
        "/tmp/absolute-evil",
        "demo-0.1.0/../../evil",
        "other-0.1.0/x",
        "demo-0.1.0/a/../../b",
    ] {
        let mut file = CrateFile::valid("demo", "0.1.0");
        file.file(path, b"x");
        let bytes = file.gzip();
        for result in every_reader(&bytes, Limits::default()) {
            assert!(matches!(result, Err(ArchiveError::Path(_))), "{path}");
        }
        let err = archive(&bytes).unpack(dir.path()).unwrap_err();
        assert!(matches!(err, ArchiveError::Path(_)), "{path}: {err}");
    }
    assert!(!dir.path().parent().unwrap().join("evil").exists());
    assert!(!Path::new("/tmp/absolute-evil").exists());
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
        let bytes = file.gzip();
        for result in every_reader(&bytes, Limits::default()) {
            assert!(
                matches!(result, Err(ArchiveError::EntryKind { .. })),
                "{kind:?}"
            );
        }
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
        CrateArchive::new(&bomb, "demo", "0.1.0", limits).inspect(),
        Err(ArchiveError::TooLarge(1024 * 1024))
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
    for result in every_reader(&file.gzip(), limits) {
        assert_eq!(result, Err(ArchiveError::TooManyEntries(50)));
    }
}

#[test]
fn the_manifest_must_agree_with_the_name_and_version() {
    let other = CrateFile::valid("other", "0.1.0").gzip();
    assert!(matches!(
        archive(&other).inspect(),
        Err(ArchiveError::Path(_))
    ));
    let mut file = CrateFile::new();
    file.file(
        "demo-0.1.0/Cargo.toml",
        b"[package]\nname = \"evil\"\nversion = \"0.1.0\"\n",
    );
    let err = archive(&file.gzip()).inspect().unwrap_err();
    assert!(err.to_string().contains("names the crate `evil`"), "{err}");
    let mut file = CrateFile::new();
    file.file(
        "demo-0.1.0/Cargo.toml",
        b"[package]\nname = \"demo\"\nversion = \"9.9.9\"\n",
    );
    let err = archive(&file.gzip()).inspect().unwrap_err();
    assert!(err.to_string().contains("gives version `9.9.9`"), "{err}");
    let mut file = CrateFile::new();
    file.file("demo-0.1.0/src/lib.rs", b"");
    let bytes = file.gzip();
    for result in every_reader(&bytes, Limits::default()) {
        assert_eq!(
            result,
            Err(ArchiveError::NoManifest("demo-0.1.0/Cargo.toml".into()))
        );
    }
}

#[test]
fn garbage_is_corrupt() {
    assert!(matches!(
        archive(b"not gzip").inspect(),
        Err(ArchiveError::Corrupt(_))
    ));
    let tarless =
        gzip(b"not a tar archive, but long enough to be read as one header or more........");
    assert!(archive(&tarless).inspect().is_err());
    let valid = CrateFile::valid("demo", "0.1.0").gzip();
    assert!(archive(&valid[..valid.len() / 2]).inspect().is_err());
}
