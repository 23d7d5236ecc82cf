//! `kiln review source NAME@VERSION [PATH]`: the files of any submission (a first version, a
//! failed or rejected one), read from its `.crate` as the registry stores it: without PATH,
//! every file with its size and what to read first called out (a build script, a procedural
//! macro, native `links`, lines with `unsafe`); with PATH, that file.

use anyhow::{Result, bail};
use clap::Args;
use kiln_crate_archive::{CrateArchive, Limits};

use super::split_target;
use crate::client::{Client, Connection};
use crate::style::Style;

#[derive(Debug, Args)]
pub(crate) struct SourceArgs {
    /// The version, as NAME@VERSION.
    #[arg(value_name = "NAME@VERSION")]
    target: String,
    /// A file to print (a path inside the crate, such as `src/lib.rs`).
    #[arg(value_name = "PATH")]
    path: Option<String>,
    #[command(flatten)]
    connection: Connection,
}

/// What a reviewer should read first in `path` with `contents`, if anything.
fn callouts(path: &str, contents: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(contents);
    let mut notes = Vec::new();
    if path == "build.rs" {
        notes.push("build script: runs at build time".to_owned());
    }
    if path == "Cargo.toml" {
        let manifest = toml::from_str::<toml::Table>(&text).unwrap_or_default();
        if manifest
            .get("lib")
            .and_then(|lib| lib.get("proc-macro"))
            .and_then(toml::Value::as_bool)
            == Some(true)
        {
            notes.push("procedural macro: runs in the compiler".to_owned());
        }
        if let Some(links) = manifest
            .get("package")
            .and_then(|p| p.get("links"))
            .and_then(toml::Value::as_str)
        {
            notes.push(format!("links the native library `{links}`"));
        }
    }
    let unsafe_lines = text
        .lines()
        .filter(|line| {
            let code = line.split("//").next().unwrap_or_default();
            code.split(|c: char| !c.is_alphanumeric() && c != '_')
                .any(|word| word == "unsafe")
        })
        .count();
    if path.ends_with(".rs") && unsafe_lines > 0 {
        notes.push(format!("{unsafe_lines} line(s) with `unsafe`"));
    }
    notes
}

pub(crate) async fn source(args: SourceArgs) -> Result<()> {
    let (name, version) = split_target(&args.target)?;
    let client = Client::new(&args.connection)?;
    let bytes = client
        .get_bytes(&format!("/api/kiln/v1/submissions/{name}/{version}/crate"))
        .await?;
    let files = CrateArchive::new(&bytes, name, version, Limits::default()).files()?;
    let style = Style::detect();
    match &args.path {
        Some(path) => {
            let Some(contents) = files.get(path.trim_start_matches("./")) else {
                bail!(
                    "{name}@{version} has no file `{path}` (it has: {})",
                    files.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            };
            for note in callouts(path, contents) {
                eprintln!("{}", style.warn(&format!("! {note}")));
            }
            match std::str::from_utf8(contents) {
                Ok(text) => print!("{text}"),
                Err(_) => println!("({} bytes of binary data)", contents.len()),
            }
        }
        None => {
            println!(
                "{}",
                style.bold(&format!("{name}@{version}: {} files", files.len()))
            );
            for (path, contents) in &files {
                let notes = callouts(path, contents);
                let notes = if notes.is_empty() {
                    String::new()
                } else {
                    style.warn(&format!("  ! {}", notes.join("; ")))
                };
                println!("{:>9}  {path}{notes}", contents.len());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_to_read_first_is_called_out() {
        assert_eq!(
            callouts("build.rs", b"fn main() {}"),
            ["build script: runs at build time"]
        );
        assert_eq!(
            callouts(
                "Cargo.toml",
                b"[package]\nname = \"x\"\nlinks = \"z\"\n[lib]\nproc-macro = true\n"
            ),
            [
                "procedural macro: runs in the compiler",
                "links the native library `z`"
            ]
        );
        assert_eq!(
            callouts(
                "src/lib.rs",
                b"// unsafe in a comment\nunsafe fn f() {}\nlet unsafety = 1;\n"
            ),
            ["1 line(s) with `unsafe`"]
        );
        assert!(callouts("README.md", b"unsafe").is_empty());
    }
}
