//! Tables for people: columns padded to their widest cell, the header in bold and each row
//! coloured by its state (on a terminal).

use crate::style::Style;

/// Prints a table with a header; the third column, when there is one, is the row's state.
pub(crate) fn print_table(style: Style, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    println!(
        "{}",
        style.bold(&line(header.iter().map(|h| h.to_string()).collect()))
    );
    for row in rows {
        let text = line(row.clone());
        println!(
            "{}",
            style.state(&text, row.get(2).map_or("", String::as_str))
        );
    }
}

/// "3h", "2d": how long ago `ms` was.
pub(crate) fn age(now_ms: i64, ms: i64) -> String {
    let secs = (now_ms - ms).max(0) / 1000;
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
