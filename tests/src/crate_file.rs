//! `.crate` files and publish bodies made by hand, friendly or hostile, for tests that talk to
//! the registry's HTTP API directly.

use std::io::Write as _;

/// A tar archive under construction, with full control over each header.
pub struct CrateFile {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for CrateFile {
    fn default() -> Self {
        Self::new()
    }
}

impl CrateFile {
    /// An empty archive.
    pub fn new() -> Self {
        Self {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// A well-formed crate `name` at `version`.
    pub fn valid(name: &str, version: &str) -> Self {
        let mut file = Self::new();
        file.file(
            &format!("{name}-{version}/Cargo.toml"),
            format!("[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n")
                .as_bytes(),
        );
        file.file(&format!("{name}-{version}/src/lib.rs"), b"pub fn f() {}\n");
        file
    }

    /// Adds a regular file, writing the path into the header as is (even `..` or `/etc`).
    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.entry(path, tar::EntryType::Regular, "", data)
    }

    /// Adds an entry of any kind (symlink, hard link, device…) pointing at `link`.
    pub fn entry(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        link: &str,
        data: &[u8],
    ) -> &mut Self {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(kind);
        let name = &mut header.as_old_mut().name;
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
        if !link.is_empty() {
            header.set_link_name(link).unwrap();
        }
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
        self
    }

    /// The gzip-compressed archive.
    pub fn gzip(self) -> Vec<u8> {
        gzip(&self.builder.into_inner().unwrap())
    }
}

/// `bytes`, gzip-compressed.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Publish metadata for `name@version` with no dependencies.
pub fn metadata(name: &str, version: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name, "vers": version, "deps": [], "features": {}, "authors": [],
        "description": "a test crate", "license": "MIT", "keywords": [], "categories": [],
        "badges": {}, "links": null,
    })
}

/// A publish body: the framed metadata and tarball, as Cargo sends them.
pub fn publish_body(metadata: &[u8], tarball: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(8 + metadata.len() + tarball.len());
    body.extend_from_slice(&(metadata.len() as u32).to_le_bytes());
    body.extend_from_slice(metadata);
    body.extend_from_slice(&(tarball.len() as u32).to_le_bytes());
    body.extend_from_slice(tarball);
    body
}
