//! Word frequencies of a text.
//!
//! - `top` takes JSON `{"text": "...", "limit": 10, "min_length": 1, "stopwords": ["the"]}`
//!   (only `text` is required) and answers the most frequent words as JSON.
//! - `counts` takes plain text and streams every word with its count as CSV (a `word,count`
//!   header, then one row per word, most frequent first): its output can be far larger than
//!   what a kernel would buffer, and it is what `kernel-csv-stats` describes.
//!
//! Words are runs of letters, digits and apostrophes, compared in lowercase.

use std::collections::HashMap;

use kiln_kernel::{Error, Input, Output};
use serde::{Deserialize, Serialize};

kiln_kernel::kernel! {
    entry top(input: "application/json", output: "application/json",
              schema: r#"{"type":"object","required":["text"],"properties":{"text":{"type":"string"},"limit":{"type":"integer","minimum":1},"min_length":{"type":"integer","minimum":1},"stopwords":{"type":"array","items":{"type":"string"}}}}"#) => top;
    entry counts(input: "text/plain", output: "text/csv") => counts;
}

/// What `top` is asked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    text: String,
    #[serde(default = "ten")]
    limit: usize,
    #[serde(default = "one")]
    min_length: usize,
    #[serde(default)]
    stopwords: Vec<String>,
}

fn ten() -> usize {
    10
}

fn one() -> usize {
    1
}

/// What `top` answers.
#[derive(Debug, Serialize)]
struct Answer {
    total_words: usize,
    top: Vec<Counted>,
}

#[derive(Debug, Serialize)]
struct Counted {
    word: String,
    count: usize,
}

/// The most frequent words, as JSON.
pub fn top(input: Input<'_>, out: &mut Output) -> Result<(), Error> {
    let request: Request = input.json()?;
    for (key, value) in [("limit", request.limit), ("min_length", request.min_length)] {
        if value < 1 {
            return Err(Error::new(format!(
                "`{key}` must be a whole number of at least 1"
            )));
        }
    }
    let stopwords: Vec<String> = request.stopwords.iter().map(|w| w.to_lowercase()).collect();
    let ranked = rank(&request.text);
    let total_words: usize = ranked.iter().map(|(_, n)| n).sum();
    let top = ranked
        .into_iter()
        .filter(|(word, _)| word.chars().count() >= request.min_length && !stopwords.contains(word))
        .take(request.limit)
        .map(|(word, count)| Counted { word, count })
        .collect();
    out.json(&Answer { total_words, top })
}

/// Every word and its count as CSV, most frequent first. Words are letters, digits and
/// apostrophes, so no field needs quoting.
pub fn counts(input: Input<'_>, out: &mut Output) -> Result<(), Error> {
    out.write_str("word,count\n")?;
    for (word, count) in rank(input.text()?) {
        out.write_fmt(format_args!("{word},{count}\n"))?;
    }
    Ok(())
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
    use kiln_kernel::testing;

    const TEXT: &str = "The cat sat. The cat ran! A dog's bone; the END.";

    #[test]
    fn top_ranks_words_and_honours_options() {
        let request = serde_json::json!({"text": TEXT, "limit": 2, "stopwords": ["the"]});
        let out = testing::run_text(top, &request.to_string()).unwrap();
        let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(answer["total_words"], 11);
        let words = answer["top"].as_array().unwrap();
        assert_eq!(words.len(), 2);
        assert_eq!(words[0]["word"], "cat");
        assert_eq!(words[0]["count"], 2);
        assert_eq!(words[1]["word"], "a");
    }

    #[test]
    fn counts_streams_every_word() {
        let out = testing::run_text(counts, TEXT).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "word,count");
        assert_eq!(lines[1], "the,3");
        assert_eq!(lines[2], "cat,2");
        assert!(lines.contains(&"dog's,1"));
        assert_eq!(lines.len(), 9);
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
        assert!(err.message().contains("missing field `text`"), "{err}");
        let err = testing::run_text(top, r#"{"text":"a","limit":0}"#).unwrap_err();
        assert_eq!(
            err.message(),
            "`limit` must be a whole number of at least 1"
        );
        let err = testing::run_text(top, r#"{"text":"a","limit":-1}"#).unwrap_err();
        assert!(err.message().contains("invalid value"), "{err}");
        let err = testing::run_text(top, "{").unwrap_err();
        assert!(err.message().starts_with("input does not match"), "{err}");
    }
}
