//! Column statistics over CSV text: for each column, how many values are present and missing;
//! for numeric columns the minimum, maximum, mean, standard deviation and median; for the others
//! the number of distinct values and the most common ones.
//!
//! The first row is the header. Fields may be quoted (`"a, b"`, with `""` for a quote).

use std::collections::HashMap;

use kiln_kernel::json::Value;
use kiln_kernel::{Error, Input, Output};

kiln_kernel::kernel! {
    entry describe(input: "text/csv", output: "application/json") => describe;
}

/// How many of the most common values a text column reports.
const TOP_VALUES: usize = 3;

/// Describes every column of the CSV input as a JSON object.
pub fn describe(input: Input<'_>, out: &mut Output) -> Result<(), Error> {
    let text = input.text()?;
    let mut rows = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty());
    let (_, header) = rows.next().ok_or("the input has no header row")?;
    let names = split_record(header).map_err(|e| Error::new(format!("line 1: {e}")))?;
    let mut columns: Vec<Column> = names.iter().map(|_| Column::default()).collect();
    let mut row_count = 0usize;
    for (index, line) in rows {
        let fields =
            split_record(line).map_err(|e| Error::new(format!("line {}: {e}", index + 1)))?;
        if fields.len() != names.len() {
            return Err(Error::new(format!(
                "line {}: {} fields, but the header has {}",
                index + 1,
                fields.len(),
                names.len()
            )));
        }
        for (column, field) in columns.iter_mut().zip(fields) {
            column.add(field);
        }
        row_count += 1;
    }
    let described = names
        .into_iter()
        .zip(columns)
        .map(|(name, column)| column.describe(name))
        .collect::<Vec<_>>();
    let report = Value::object([
        ("rows", Value::from(row_count)),
        ("columns", Value::Array(described)),
    ]);
    out.write_str(&report.to_string())
}

/// Splits one CSV record into its fields.
fn split_record(line: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '"') if at_start => quoted = true,
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => {
                quoted = false;
                if !matches!(chars.peek(), None | Some(',')) {
                    return Err("text after a closing quote");
                }
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
                continue;
            }
            (_, c) => field.push(c),
        }
        at_start = false;
    }
    if quoted {
        return Err("unterminated quoted field");
    }
    fields.push(field);
    Ok(fields)
}

#[derive(Default)]
struct Column {
    numbers: Vec<f64>,
    texts: HashMap<String, usize>,
    text_count: usize,
    missing: usize,
}

impl Column {
    fn add(&mut self, field: String) {
        let trimmed = field.trim();
        if trimmed.is_empty()
            || trimmed.eq_ignore_ascii_case("na")
            || trimmed.eq_ignore_ascii_case("null")
        {
            self.missing += 1;
        } else if let Ok(n) = trimmed
            .parse::<f64>()
            .map_err(drop)
            .and_then(|n| if n.is_finite() { Ok(n) } else { Err(()) })
        {
            self.numbers.push(n);
        } else {
            self.text_count += 1;
            *self.texts.entry(trimmed.to_owned()).or_default() += 1;
        }
    }

    fn describe(mut self, name: String) -> Value {
        let present = self.numbers.len() + self.text_count;
        let mut pairs = vec![
            ("name".to_owned(), Value::from(name)),
            ("present".to_owned(), Value::from(present)),
            ("missing".to_owned(), Value::from(self.missing)),
        ];
        if self.text_count == 0 && !self.numbers.is_empty() {
            pairs.push(("type".into(), "number".into()));
            pairs.extend(numeric_summary(&mut self.numbers));
        } else if present > 0 {
            pairs.push(("type".into(), "text".into()));
            // Numbers in a text column count as text values.
            for n in &self.numbers {
                *self.texts.entry(kiln_kernel::json::number(*n)).or_default() += 1;
            }
            pairs.push(("distinct".into(), Value::from(self.texts.len())));
            let mut common: Vec<(String, usize)> = self.texts.into_iter().collect();
            common.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let top = common
                .into_iter()
                .take(TOP_VALUES)
                .map(|(value, count)| {
                    Value::object([("value", Value::from(value)), ("count", Value::from(count))])
                })
                .collect();
            pairs.push(("top".into(), Value::Array(top)));
        } else {
            pairs.push(("type".into(), "empty".into()));
        }
        Value::Object(pairs)
    }
}

fn numeric_summary(numbers: &mut [f64]) -> Vec<(String, Value)> {
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
    vec![
        ("min".into(), numbers[0].into()),
        ("max".into(), numbers[numbers.len() - 1].into()),
        ("mean".into(), mean.into()),
        ("stddev".into(), variance.sqrt().into()),
        ("median".into(), median.into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_kernel::json;

    #[test]
    fn describes_numeric_and_text_columns() {
        let csv = "city,temp,rain\nOslo,3.5,1\nBergen,7.5,\n\"Trondheim, NO\",-1,2\nOslo,NA,5\n";
        let out = kiln_kernel::testing::run_text(describe, csv).unwrap();
        let report = json::parse(&out).unwrap();
        assert_eq!(report.get("rows").unwrap().as_u64(), Some(4));
        let columns = report.get("columns").unwrap().as_array().unwrap();
        let city = &columns[0];
        assert_eq!(city.get("type").unwrap().as_str(), Some("text"));
        assert_eq!(city.get("distinct").unwrap().as_u64(), Some(3));
        let top = city.get("top").unwrap().as_array().unwrap();
        assert_eq!(top[0].get("value").unwrap().as_str(), Some("Oslo"));
        assert_eq!(top[0].get("count").unwrap().as_u64(), Some(2));
        let temp = &columns[1];
        assert_eq!(temp.get("missing").unwrap().as_u64(), Some(1));
        assert_eq!(temp.get("min").unwrap().as_f64(), Some(-1.0));
        assert_eq!(temp.get("max").unwrap().as_f64(), Some(7.5));
        assert_eq!(temp.get("median").unwrap().as_f64(), Some(3.5));
        assert!((temp.get("mean").unwrap().as_f64().unwrap() - 10.0 / 3.0).abs() < 1e-12);
        assert_eq!(columns[2].get("present").unwrap().as_u64(), Some(3));
    }

    #[test]
    fn ragged_and_malformed_rows_name_their_line() {
        let err = kiln_kernel::testing::run_text(describe, "a,b\n1,2\n3\n").unwrap_err();
        assert_eq!(err.message(), "line 3: 1 fields, but the header has 2");
        let err = kiln_kernel::testing::run_text(describe, "a\n\"open\n").unwrap_err();
        assert_eq!(err.message(), "line 2: unterminated quoted field");
        let err = kiln_kernel::testing::run_text(describe, "").unwrap_err();
        assert_eq!(err.message(), "the input has no header row");
        let err = kiln_kernel::testing::run(describe, b"a\n\xff\n").unwrap_err();
        assert!(err.message().starts_with("input is not UTF-8"), "{err}");
    }
}
