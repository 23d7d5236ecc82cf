//! Word frequencies of a text.
//!
//! - `top` takes JSON `{"text": "...", "limit": 10, "min_length": 1, "stopwords": ["the"]}`
//!   (only `text` is required) and answers the most frequent words as JSON.
//! - `counts` takes plain text and streams every word with its count as tab-separated lines,
//!   most frequent first: its output can be far larger than what a kernel would buffer.
//!
//! Words are runs of letters, digits and apostrophes, compared in lowercase.

use std::collections::HashMap;

use kiln_kernel::json::Value;
use kiln_kernel::{Error, Input, Output};

kiln_kernel::kernel! {
    entry top(input: "application/json", output: "application/json",
              schema: r#"{"type":"object","required":["text"],"properties":{"text":{"type":"string"},"limit":{"type":"integer","minimum":1},"min_length":{"type":"integer","minimum":1},"stopwords":{"type":"array","items":{"type":"string"}}}}"#) => top;
    entry counts(input: "text/plain", output: "text/tab-separated-values") => counts;
}

/// The most frequent words, as JSON.
pub fn top(input: Input<'_>, out: &mut Output) -> Result<(), Error> {
    let request = input.json()?;
    let text = request
        .get("text")
        .and_then(Value::as_str)
        .ok_or("`text` (a string) is required")?;
    let limit = optional_count(&request, "limit", 10)?;
    let min_length = optional_count(&request, "min_length", 1)?;
    let stopwords: Vec<String> = match request.get("stopwords") {
        None => Vec::new(),
        Some(list) => list
            .as_array()
            .ok_or("`stopwords` must be an array of strings")?
            .iter()
            .map(|w| {
                w.as_str()
                    .map(str::to_lowercase)
                    .ok_or("`stopwords` must be an array of strings")
            })
            .collect::<Result<_, _>>()?,
    };
    let ranked = rank(text);
    let total: usize = ranked.iter().map(|(_, n)| n).sum();
    let words = ranked
        .into_iter()
        .filter(|(word, _)| word.chars().count() >= min_length && !stopwords.contains(word))
        .take(limit)
        .map(|(word, count)| {
            Value::object([("word", Value::from(word)), ("count", Value::from(count))])
        })
        .collect();
    let answer = Value::object([
        ("total_words", Value::from(total)),
        ("top", Value::Array(words)),
    ]);
    out.write_str(&answer.to_string())
}

/// Every word and its count, one `word<TAB>count` line each, most frequent first.
pub fn counts(input: Input<'_>, out: &mut Output) -> Result<(), Error> {
    for (word, count) in rank(input.text()?) {
        out.write_fmt(format_args!("{word}\t{count}\n"))?;
    }
    Ok(())
}

fn optional_count(request: &Value, key: &str, default: usize) -> Result<usize, Error> {
    match request.get(key) {
        None => Ok(default),
        Some(value) => value
            .as_u64()
            .filter(|n| *n >= 1)
            .map(|n| n as usize)
            .ok_or_else(|| Error::new(format!("`{key}` must be a whole number of at least 1"))),
    }
}

/// Words with their counts, most frequent first, ties in alphabetical order.
fn rank(text: &str) -> Vec<(String, usize)> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for word in text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
    {
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_kernel::{json, testing};

    const TEXT: &str = "The cat sat. The cat ran! A dog's bone; the END.";

    #[test]
    fn top_ranks_words_and_honours_options() {
        let request = Value::object([
            ("text", Value::from(TEXT)),
            ("limit", Value::from(2u64)),
            ("stopwords", Value::from(vec!["the"])),
        ]);
        let out = testing::run_text(top, &request.to_string()).unwrap();
        let answer = json::parse(&out).unwrap();
        assert_eq!(answer.get("total_words").unwrap().as_u64(), Some(11));
        let words = answer.get("top").unwrap().as_array().unwrap();
        assert_eq!(words.len(), 2);
        assert_eq!(words[0].get("word").unwrap().as_str(), Some("cat"));
        assert_eq!(words[0].get("count").unwrap().as_u64(), Some(2));
        assert_eq!(words[1].get("word").unwrap().as_str(), Some("a"));
    }

    #[test]
    fn counts_streams_every_word() {
        let out = testing::run_text(counts, TEXT).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "the\t3");
        assert_eq!(lines[1], "cat\t2");
        assert!(lines.contains(&"dog's\t1"));
        assert_eq!(lines.len(), 8);
    }

    #[test]
    fn counts_stops_at_the_output_limit() {
        let text = (0..10_000).map(|i| format!("w{i} ")).collect::<String>();
        let err = testing::run_with_limit(counts, text.as_bytes(), 1000).unwrap_err();
        assert_eq!(err.message(), "output limit reached");
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let err = testing::run_text(top, "{}").unwrap_err();
        assert_eq!(err.message(), "`text` (a string) is required");
        let err = testing::run_text(top, r#"{"text":"a","limit":0}"#).unwrap_err();
        assert_eq!(
            err.message(),
            "`limit` must be a whole number of at least 1"
        );
        let err = testing::run_text(top, "{").unwrap_err();
        assert!(
            err.message().starts_with("input is not valid JSON"),
            "{err}"
        );
    }
}
