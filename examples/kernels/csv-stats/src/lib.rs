//! Column statistics over CSV text: for each column, how many values are present and missing;
//! for numeric columns the minimum, maximum, mean, standard deviation and median; for the others
//! the number of distinct values and the most common ones.
//!
//! The first row is the header. CSV is read by the `csv` crate (quoted fields, `""` for a quote,
//! CRLF line ends); the report is written with `serde`.

use std::collections::HashMap;

use kiln_kernel::{Error, Input, Output};
use serde::Serialize;

kiln_kernel::kernel! {
    entry describe(input: "text/csv", output: "application/json") => describe;
}

/// How many of the most common values a text column reports.
const TOP_VALUES: usize = 3;

/// The report.
#[derive(Debug, Serialize)]
struct Report {
    rows: usize,
    columns: Vec<Described>,
}

/// One column of the report.
#[derive(Debug, Serialize)]
struct Described {
    name: String,
    present: usize,
    missing: usize,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    numbers: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    distinct: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top: Option<Vec<Common>>,
}

/// The statistics of a numeric column.
#[derive(Debug, Serialize)]
struct Summary {
    min: f64,
    max: f64,
    mean: f64,
    stddev: f64,
    median: f64,
}

/// A common value of a text column.
#[derive(Debug, Serialize)]
struct Common {
    value: String,
    count: usize,
}

/// Describes every column of the CSV input as a JSON object.
pub fn describe(input: Input<'_>, out: &mut Output) -> Result<(), Error> {
    let text = input.text()?;
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let names: Vec<String> = reader
        .headers()
        .map_err(csv_error)?
        .iter()
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return Err(Error::new("the input has no header row"));
    }
    let mut columns: Vec<Column> = names.iter().map(|_| Column::default()).collect();
    let mut rows = 0usize;
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        for (column, field) in columns.iter_mut().zip(record.iter()) {
            column.add(field);
        }
        rows += 1;
    }
    let columns = names
        .into_iter()
        .zip(columns)
        .map(|(name, column)| column.describe(name))
        .collect();
    out.json(&Report { rows, columns })
}

/// A CSV error for people, naming its line.
fn csv_error(err: csv::Error) -> Error {
    let line = err.position().map(csv::Position::line);
    let message = match err.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields, but the header has {expected_len}"),
        _ => err.to_string(),
    };
    match line {
        Some(line) => Error::new(format!("line {line}: {message}")),
        None => Error::new(message),
    }
}

#[derive(Default)]
struct Column {
    numbers: Vec<f64>,
    /// Every present value as written (trimmed), with its count.
    texts: HashMap<String, usize>,
    text_count: usize,
    missing: usize,
}

impl Column {
    fn add(&mut self, field: &str) {
        let trimmed = field.trim();
        if trimmed.is_empty()
            || trimmed.eq_ignore_ascii_case("na")
            || trimmed.eq_ignore_ascii_case("null")
        {
            self.missing += 1;
            return;
        }
        *self.texts.entry(trimmed.to_owned()).or_default() += 1;
        match trimmed.parse::<f64>() {
            Ok(n) if n.is_finite() => self.numbers.push(n),
            _ => self.text_count += 1,
        }
    }

    fn describe(mut self, name: String) -> Described {
        let present = self.numbers.len() + self.text_count;
        let mut described = Described {
            name,
            present,
            missing: self.missing,
            kind: "empty",
            numbers: None,
            distinct: None,
            top: None,
        };
        if self.text_count == 0 && !self.numbers.is_empty() {
            described.kind = "number";
            described.numbers = Some(summary(&mut self.numbers));
        } else if present > 0 {
            // Numbers in a text column count as text values.
            described.kind = "text";
            described.distinct = Some(self.texts.len());
            let mut common: Vec<(String, usize)> = self.texts.into_iter().collect();
            common.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            described.top = Some(
                common
                    .into_iter()
                    .take(TOP_VALUES)
                    .map(|(value, count)| Common { value, count })
                    .collect(),
            );
        }
        described
    }
}

fn summary(numbers: &mut [f64]) -> Summary {
    numbers.sort_by(f64::total_cmp);
    let n = numbers.len() as f64;
    let mean = numbers.iter().sum::<f64>() / n;
    let variance = if numbers.len() > 1 {
        numbers.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    let mid = numbers.len() / 2;
    let median = if numbers.len().is_multiple_of(2) {
        (numbers[mid - 1] + numbers[mid]) / 2.0
    } else {
        numbers[mid]
    };
    Summary {
        min: numbers[0],
        max: numbers[numbers.len() - 1],
        mean,
        stddev: variance.sqrt(),
        median,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn run(csv: &str) -> Value {
        let out = kiln_kernel::testing::run_text(describe, csv).unwrap();
        serde_json::from_str(&out).unwrap()
    }

    #[test]
    fn describes_numeric_and_text_columns() {
        let report =
            run("city,temp,rain\nOslo,3.5,1\nBergen,7.5,\n\"Trondheim, NO\",-1,2\nOslo,NA,5\n");
        assert_eq!(report["rows"], 4);
        let columns = report["columns"].as_array().unwrap();
        let city = &columns[0];
        assert_eq!(city["type"], "text");
        assert_eq!(city["distinct"], 3);
        assert_eq!(city["top"][0]["value"], "Oslo");
        assert_eq!(city["top"][0]["count"], 2);
        assert_eq!(city["top"][2]["value"], "Trondheim, NO");
        let temp = &columns[1];
        assert_eq!(temp["type"], "number");
        assert_eq!(temp["missing"], 1);
        assert_eq!(temp["min"], -1.0);
        assert_eq!(temp["max"], 7.5);
        assert_eq!(temp["median"], 3.5);
        assert!((temp["mean"].as_f64().unwrap() - 10.0 / 3.0).abs() < 1e-12);
        assert!(temp.get("top").is_none(), "{temp}");
        assert_eq!(columns[2]["present"], 3);
    }

    #[test]
    fn numbers_in_a_text_column_count_as_written() {
        let report = run("id\nx\n01\n1\n");
        assert_eq!(report["columns"][0]["type"], "text");
        assert_eq!(report["columns"][0]["distinct"], 3);
    }

    #[test]
    fn ragged_and_malformed_rows_name_their_line() {
        let err = kiln_kernel::testing::run_text(describe, "a,b\n1,2\n3\n").unwrap_err();
        assert_eq!(err.message(), "line 3: 1 fields, but the header has 2");
        let err = kiln_kernel::testing::run_text(describe, "").unwrap_err();
        assert_eq!(err.message(), "the input has no header row");
        let err = kiln_kernel::testing::run(describe, b"a\n\xff\n").unwrap_err();
        assert!(err.message().starts_with("input is not UTF-8"), "{err}");
    }
}
