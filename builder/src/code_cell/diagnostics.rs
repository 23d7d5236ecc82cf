//! rustc's messages in a code cell's build log, placed in the cell's own source: a message that
//! points into the generated crate's copy of the source (`src/cell.rs` for a body,
//! `src/lib.rs` for a whole module) gets the cell's line and column, and its rendered text names
//! the cell instead of the file.

use kiln_wire::code_builds::Diagnostic;

/// Where the cell's source sits in the generated crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The file, relative to the crate (`src/cell.rs`).
    pub file: &'static str,
    /// Columns added before the source's first line (a body is wrapped in `{` on that line).
    pub first_line_shift: u32,
}

impl Placement {
    fn map(&self, line: u32, column: u32) -> (u32, u32) {
        if line == 1 {
            (line, column.saturating_sub(self.first_line_shift).max(1))
        } else {
            (line, column)
        }
    }
}

/// The most messages kept from one build.
const MAX_MESSAGES: usize = 50;

/// The error messages in `log`, placed by `placement`.
pub fn parse(log: &str, placement: Placement) -> Vec<Diagnostic> {
    let lines: Vec<&str> = log.lines().collect();
    let mut found = Vec::new();
    let mut at = 0;
    while at < lines.len() && found.len() < MAX_MESSAGES {
        let Some(message) = error_heading(lines[at]) else {
            at += 1;
            continue;
        };
        let end = (at + 1..lines.len())
            .find(|&n| is_heading(lines[n]) || is_cargo_line(lines[n]))
            .unwrap_or(lines.len());
        let block = &lines[at..end];
        let mut line = None;
        let mut column = None;
        let mut rendered = Vec::with_capacity(block.len());
        for text in block {
            if let Some((file, l, c)) = location(text)
                && file.ends_with(placement.file)
            {
                let (l, c) = placement.map(l, c);
                if line.is_none() {
                    line = Some(l);
                    column = Some(c);
                }
                let indent = &text[..text.find("-->").unwrap_or(0)];
                rendered.push(format!("{indent}--> cell:{l}:{c}"));
            } else {
                rendered.push((*text).to_owned());
            }
        }
        while rendered.last().is_some_and(|l| l.trim().is_empty()) {
            rendered.pop();
        }
        found.push(Diagnostic {
            level: "error".to_owned(),
            message: message.to_owned(),
            line,
            column,
            rendered: rendered.join("\n"),
        });
        at = end;
    }
    found
}

/// The message of an error heading (`error[E0425]: cannot find …`), not cargo's summary
/// (`error: could not compile …`, `error: aborting due to …`).
fn error_heading(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("error")?;
    let rest = match rest.strip_prefix('[') {
        Some(code) => &code[code.find(']')? + 1..],
        None => rest,
    };
    let message = rest.strip_prefix(": ")?;
    let summary = message.starts_with("could not compile")
        || message.starts_with("aborting due to")
        || message.starts_with("failed to run custom build command");
    (!summary).then_some(message)
}

fn is_heading(line: &str) -> bool {
    line.starts_with("error") || line.starts_with("warning")
}

/// Cargo's own progress lines, which end a message.
fn is_cargo_line(line: &str) -> bool {
    let trimmed = line.trim_start();
    line.len() != trimmed.len()
        && ["Compiling ", "Finished ", "Checking ", "Building "]
            .iter()
            .any(|p| trimmed.starts_with(p))
}

/// `FILE:LINE:COLUMN` of a `--> FILE:LINE:COLUMN` line.
fn location(line: &str) -> Option<(&str, u32, u32)> {
    let rest = line.trim_start().strip_prefix("--> ")?;
    let mut parts = rest.rsplitn(3, ':');
    let column = parts.next()?.trim().parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    Some((parts.next()?, line, column))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: Placement = Placement {
        file: "src/cell.rs",
        first_line_shift: 1,
    };

    #[test]
    fn an_error_in_the_cell_is_placed_at_the_cells_line_and_column() {
        let log = "   Compiling kiln-cell v0.0.0 (/kiln/src/kiln-cell)\n\
error[E0425]: cannot find value `z` in this scope\n\
 --> src/cell.rs:1:10\n\
  |\n\
1 | {let y = z + 1;\n\
  |          ^ not found in this scope\n\
\n\
error[E0308]: mismatched types\n\
 --> src/cell.rs:3:5\n\
  |\n\
3 |     y\n\
  |     ^ expected `Result<(), Error>`, found `i32`\n\
\n\
error: aborting due to 2 previous errors\n\
error: could not compile `kiln-cell` (lib) due to 2 previous errors\n";
        let found = parse(log, BODY);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert_eq!(found[0].message, "cannot find value `z` in this scope");
        assert_eq!((found[0].line, found[0].column), (Some(1), Some(9)));
        assert!(found[0].rendered.contains("--> cell:1:9"));
        assert!(!found[0].rendered.contains("src/cell.rs"));
        assert_eq!((found[1].line, found[1].column), (Some(3), Some(5)));
        assert_eq!(found[1].message, "mismatched types");
    }

    #[test]
    fn an_error_outside_the_cell_has_no_line() {
        let log = "error: failed to select a version for `serde_json`\n\
error[E0463]: can't find crate for `missing`\n --> src/lib.rs:2:1\n";
        let found = parse(log, BODY);
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].line, None);
        assert!(found[1].rendered.contains("src/lib.rs:2:1"));
    }
}
