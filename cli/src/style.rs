//! Colour for people: only when standard output is a terminal and `NO_COLOR` is unset
//! (<https://no-color.org>), so that pipes, files and scripts get plain text.

use std::io::IsTerminal as _;

/// Whether to colour, decided once per command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Style {
    colour: bool,
}

impl Style {
    /// Colour on a terminal without `NO_COLOR`.
    pub(crate) fn detect() -> Self {
        Self::new(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR"),
        )
    }

    fn new(terminal: bool, no_color: Option<std::ffi::OsString>) -> Self {
        Self {
            colour: terminal && no_color.is_none_or(|v| v.is_empty()),
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Headings.
    pub(crate) fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Something a reviewer should look at.
    pub(crate) fn warn(self, text: &str) -> String {
        self.paint("33", text)
    }

    /// `text` coloured by a submission state: green approved, red failed or rejected, yellow
    /// waiting for a reviewer.
    pub(crate) fn state(self, text: &str, state: &str) -> String {
        match state {
            "approved" => self.paint("32", text),
            "failed" | "rejected" => self.paint("31", text),
            "built" | "audited" => self.paint("33", text),
            _ => text.to_owned(),
        }
    }

    /// A line of a unified diff.
    pub(crate) fn diff_line(self, line: &str) -> String {
        if line.starts_with("+++") || line.starts_with("---") {
            self.bold(line)
        } else if line.starts_with('+') {
            self.paint("32", line)
        } else if line.starts_with('-') {
            self.paint("31", line)
        } else if line.starts_with("@@") {
            self.paint("36", line)
        } else {
            line.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(Style::new(true, None).colour);
        assert!(!Style::new(false, None).colour);
        assert!(!Style::new(true, Some("1".into())).colour);
        assert!(Style::new(true, Some("".into())).colour);
        assert_eq!(Style::new(false, None).bold("x"), "x");
        assert_eq!(Style::new(true, None).bold("x"), "\x1b[1mx\x1b[0m");
    }
}
