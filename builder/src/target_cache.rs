//! Compiled dependencies, reused across builds: after a library's build (the dependent's view of
//! it, [`crate::dependent`]), Cargo's target directory is kept as a snapshot, labelled with the
//! registry packages of its lockfile (name, version, checksum). A later build, a kernel's or
//! another library's, starts from the snapshots its own lockfile covers, and Cargo's
//! fingerprints decide what is fresh: a dependency compiled for the same version, features,
//! profile, target and flags is not compiled again.
//!
//! Only a snapshot whose every package is in the later build's lockfile, with the same checksum,
//! is used: what it holds was made by the sources and build-time code that build would compile
//! and run itself, in the same sandbox. Snapshots are taken of library builds only, whose root is
//! the generated wrapper, never of a kernel's, whose own build script is in no lockfile. They
//! are kept per build context (builder version, toolchain, isolation), copied in and out (never
//! linked, so that a build cannot change a snapshot), and at most [`TargetCache::KEEP`] per
//! context, the least recently used going first.
//!
//! Reuse needs the sandbox's fixed paths: without bubblewrap each build's paths differ, Cargo's
//! flags with them, and nothing is fresh (correct, only not faster).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use kiln_policy::Digest;

/// A registry package of a lockfile: name, version, checksum.
type Package = (String, String, String);

/// The snapshots of one builder.
#[derive(Debug, Clone)]
pub struct TargetCache {
    dir: PathBuf,
}

/// The directory of a build's target that holds Cargo's home inside the sandbox: not kept.
const HOME: &str = "home";

impl TargetCache {
    /// How many snapshots are kept per build context.
    pub const KEEP: usize = 24;

    /// Snapshots under `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn context_dir(&self, context: &str) -> PathBuf {
        self.dir.join(&Digest::of(context.as_bytes()).hex()[..24])
    }

    /// Fills `target` (empty) from every snapshot under `context` whose packages are all in
    /// `lockfile`, the largest first (a file already copied is not copied again: Cargo names its
    /// outputs by a hash of what they were built from); returns how many of the lockfile's
    /// registry packages they cover together (0: none was used).
    pub fn seed(&self, lockfile: &str, context: &str, target: &Path) -> std::io::Result<usize> {
        let wanted = registry_packages(lockfile);
        if wanted.is_empty() {
            return Ok(0);
        }
        let Ok(entries) = std::fs::read_dir(self.context_dir(context)) else {
            return Ok(0);
        };
        let mut usable: Vec<(BTreeSet<Package>, PathBuf)> = entries
            .flatten()
            .filter_map(|entry| {
                let snapshot = entry.path();
                let text = std::fs::read_to_string(snapshot.join("packages")).ok()?;
                let packages = parse_packages(&text);
                (!packages.is_empty() && packages.is_subset(&wanted))
                    .then_some((packages, snapshot))
            })
            .collect();
        usable.sort_by_key(|(packages, _)| std::cmp::Reverse(packages.len()));
        let mut covered: BTreeSet<&Package> = BTreeSet::new();
        for (packages, snapshot) in &usable {
            if packages.iter().all(|p| covered.contains(p)) {
                continue;
            }
            copy_tree(&snapshot.join("target"), target)?;
            covered.extend(packages);
            // Used now: the last to go.
            let _ = std::fs::File::options()
                .append(true)
                .open(snapshot.join("packages"))
                .and_then(|f| f.set_modified(SystemTime::now()));
        }
        Ok(covered.len())
    }

    /// Keeps `target` (after a library's build) as a snapshot for `lockfile` under `context`.
    pub fn save(&self, lockfile: &str, context: &str, target: &Path) -> std::io::Result<()> {
        let packages = registry_packages(lockfile);
        if packages.is_empty() {
            return Ok(());
        }
        let dir = self.context_dir(context);
        let name = Digest::of(lockfile.as_bytes()).hex();
        let done = dir.join(&name);
        if done.join("packages").is_file() {
            return Ok(());
        }
        std::fs::create_dir_all(&dir)?;
        let staging = tempfile::Builder::new()
            .prefix(".staging.")
            .tempdir_in(&dir)?;
        copy_tree(target, &staging.path().join("target"))?;
        let text: String = packages
            .iter()
            .map(|(n, v, c)| format!("{n} {v} {c}\n"))
            .collect();
        std::fs::write(staging.path().join("packages"), text)?;
        let staged = staging.keep();
        if std::fs::rename(&staged, &done).is_err() {
            // Another build kept the same snapshot first.
            let _ = std::fs::remove_dir_all(&staged);
        }
        self.evict(&dir);
        Ok(())
    }

    /// Removes the least recently used snapshots of a context beyond [`Self::KEEP`].
    fn evict(&self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut snapshots: Vec<(SystemTime, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let used = e.path().join("packages").metadata().ok()?.modified().ok()?;
                Some((used, e.path()))
            })
            .collect();
        snapshots.sort();
        let extra = snapshots.len().saturating_sub(Self::KEEP);
        for (_, path) in snapshots.into_iter().take(extra) {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

/// The registry packages of a lockfile: those with a checksum.
fn registry_packages(lockfile: &str) -> BTreeSet<Package> {
    let Ok(table) = lockfile.parse::<toml::Table>() else {
        return BTreeSet::new();
    };
    table
        .get("package")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let field = |key: &str| p.get(key).and_then(toml::Value::as_str).map(str::to_owned);
            Some((field("name")?, field("version")?, field("checksum")?))
        })
        .collect()
}

fn parse_packages(text: &str) -> BTreeSet<Package> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            Some((
                parts.next()?.to_owned(),
                parts.next()?.to_owned(),
                parts.next()?.to_owned(),
            ))
        })
        .collect()
}

/// Copies the tree at `from` into `to`, keeping each file's modification time (Cargo's
/// fingerprints compare them); a file `to` has already is kept, and Cargo's home inside a
/// build's target is left out.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    let mut times: BTreeMap<PathBuf, SystemTime> = BTreeMap::new();
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let (source, dest) = (entry.path(), to.join(entry.file_name()));
        if kind.is_dir() {
            if from.join(HOME) == source {
                continue;
            }
            copy_tree(&source, &dest)?;
        } else if kind.is_file() && !dest.exists() {
            std::fs::copy(&source, &dest)?;
            times.insert(dest, entry.metadata()?.modified()?);
        }
    }
    for (path, time) in times {
        std::fs::File::options()
            .append(true)
            .open(&path)?
            .set_modified(time)?;
    }
    Ok(())
}

/// Sets the modification time of every file under `dir` to one fixed time long past, so that
/// sources vendored for a build are never newer than outputs compiled from the same bytes before.
pub fn settle_mtimes(dir: &Path) -> std::io::Result<()> {
    let past = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(86_400);
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            settle_mtimes(&entry.path())?;
        } else if kind.is_file() {
            std::fs::File::options()
                .append(true)
                .open(entry.path())?
                .set_modified(past)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lockfile(packages: &[(&str, &str, Option<&str>)]) -> String {
        let mut text = String::from("version = 4\n");
        for (name, version, checksum) in packages {
            text.push_str(&format!(
                "\n[[package]]\nname = \"{name}\"\nversion = \"{version}\"\n"
            ));
            if let Some(c) = checksum {
                text.push_str(&format!(
                    "source = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{c}\"\n"
                ));
            }
        }
        text
    }

    fn target_with(dir: &Path, file: &str, body: &str) -> PathBuf {
        let target = dir.join("target");
        let path = target.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
        std::fs::create_dir_all(target.join(HOME)).unwrap();
        std::fs::write(target.join(HOME).join("credentials"), "no").unwrap();
        target
    }

    #[test]
    fn a_build_starts_from_the_largest_snapshot_its_lockfile_covers() {
        let work = tempfile::tempdir().unwrap();
        let cache = TargetCache::new(work.path().join("cache"));
        let itoa = lockfile(&[
            ("kiln-dependent", "0.0.0", None),
            ("itoa", "1.0.19", Some("aa")),
        ]);
        let json = lockfile(&[
            ("kiln-dependent", "0.0.0", None),
            ("itoa", "1.0.19", Some("aa")),
            ("serde_json", "1.0.154", Some("bb")),
        ]);
        let small = target_with(&work.path().join("a"), "release/deps/libitoa.rlib", "itoa");
        cache.save(&itoa, "ctx", &small).unwrap();
        let big = target_with(
            &work.path().join("b"),
            "release/deps/libserde_json.rlib",
            "json",
        );
        cache.save(&json, "ctx", &big).unwrap();

        let kernel = lockfile(&[
            ("kernel", "0.1.0", None),
            ("itoa", "1.0.19", Some("aa")),
            ("serde_json", "1.0.154", Some("bb")),
            ("ryu", "1.0.23", Some("cc")),
        ]);
        let into = work.path().join("kernel-target");
        assert_eq!(cache.seed(&kernel, "ctx", &into).unwrap(), 2);
        assert!(into.join("release/deps/libserde_json.rlib").is_file());
        // The smaller snapshot adds nothing the larger does not cover: it is not copied.
        assert!(!into.join("release/deps/libitoa.rlib").exists());
        assert!(!into.join(HOME).exists(), "Cargo's home is never kept");

        // Another context, or another checksum of a package, uses nothing.
        let other = work.path().join("other");
        assert_eq!(cache.seed(&kernel, "another toolchain", &other).unwrap(), 0);
        let changed = lockfile(&[("itoa", "1.0.19", Some("ff"))]);
        assert_eq!(cache.seed(&changed, "ctx", &other).unwrap(), 0);
        // A lockfile that lacks a package of the larger snapshot gets the smaller one.
        let only_itoa = lockfile(&[
            ("itoa", "1.0.19", Some("aa")),
            ("ryu", "1.0.23", Some("cc")),
        ]);
        let third = work.path().join("third");
        assert_eq!(cache.seed(&only_itoa, "ctx", &third).unwrap(), 1);
        assert!(third.join("release/deps/libitoa.rlib").is_file());
        assert!(!third.join("release/deps/libserde_json.rlib").exists());
    }

    #[test]
    fn snapshots_that_cover_different_packages_are_combined() {
        let work = tempfile::tempdir().unwrap();
        let cache = TargetCache::new(work.path().join("cache"));
        let itoa = lockfile(&[("itoa", "1.0.19", Some("aa"))]);
        let ryu = lockfile(&[("ryu", "1.0.23", Some("cc"))]);
        let a = target_with(&work.path().join("a"), "release/deps/libitoa.rlib", "itoa");
        let b = target_with(&work.path().join("b"), "release/deps/libryu.rlib", "ryu");
        cache.save(&itoa, "ctx", &a).unwrap();
        cache.save(&ryu, "ctx", &b).unwrap();
        let both = lockfile(&[
            ("itoa", "1.0.19", Some("aa")),
            ("ryu", "1.0.23", Some("cc")),
        ]);
        let into = work.path().join("into");
        assert_eq!(cache.seed(&both, "ctx", &into).unwrap(), 2);
        assert!(into.join("release/deps/libitoa.rlib").is_file());
        assert!(into.join("release/deps/libryu.rlib").is_file());
    }

    #[test]
    fn copies_keep_modification_times_and_vendored_sources_are_settled_in_the_past() {
        let work = tempfile::tempdir().unwrap();
        let target = target_with(work.path(), "release/.fingerprint/x/dep-lib-x", "dep");
        let file = target.join("release/.fingerprint/x/dep-lib-x");
        let then = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        std::fs::File::options()
            .append(true)
            .open(&file)
            .unwrap()
            .set_modified(then)
            .unwrap();
        let copy = work.path().join("copy");
        copy_tree(&target, &copy).unwrap();
        let copied = copy.join("release/.fingerprint/x/dep-lib-x");
        assert_eq!(copied.metadata().unwrap().modified().unwrap(), then);

        settle_mtimes(&copy).unwrap();
        assert!(copied.metadata().unwrap().modified().unwrap() < then);
    }
}
