//! TOML errors as one line that names the line and column, for files kiln reads.

/// `err`'s message with its 1-based line and column in `text`, on one line.
pub(crate) fn one_line(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().replace('\n', " ");
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_name_their_line_and_column() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[expect(dead_code, reason = "only parsed")]
        struct Doc {
            a: u32,
        }
        let text = "a = 1\nb = 2\n";
        let err = toml::from_str::<Doc>(text).unwrap_err();
        let line = super::one_line(text, &err);
        assert!(
            line.starts_with("line 2, column 1: unknown field `b`"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }
}
