//! Mandelbrot tiles: escape-time iteration counts over a rectangle of the complex plane.
//!
//! Every entry takes JSON `{"width": 64, "height": 32, "center": [-0.5, 0.0], "span": 3.0,
//! "max_iter": 100}` (every field optional). `tile` answers the iteration counts as JSON rows,
//! ready to plot; `ascii` renders the same tile as text; `png` paints it as a PNG picture.

mod png;

use kiln_kernel::json::Value;
use kiln_kernel::{Error, Input, Output};

kiln_kernel::kernel! {
    entry tile(input: "application/json", output: "application/json") => tile;
    entry ascii(input: "application/json", output: "text/plain") => ascii;
    entry png(input: "application/json", output: "image/png") => picture;
}

/// The largest tile side accepted, so that one request cannot ask for unbounded work.
const MAX_SIDE: u64 = 4096;
/// The largest iteration budget accepted per point.
const MAX_ITER: u64 = 100_000;

/// The rectangle and budget of one tile.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    width: usize,
    height: usize,
    center: (f64, f64),
    span: f64,
    max_iter: u32,
}

impl Tile {
    fn from_request(request: &Value) -> Result<Self, Error> {
        let side = |key: &str, default: u64| -> Result<usize, Error> {
            match request.get(key) {
                None => Ok(default as usize),
                Some(v) => v
                    .as_u64()
                    .filter(|n| (1..=MAX_SIDE).contains(n))
                    .map(|n| n as usize)
                    .ok_or_else(|| {
                        Error::new(format!(
                            "`{key}` must be a whole number from 1 to {MAX_SIDE}"
                        ))
                    }),
            }
        };
        let center = match request.get("center") {
            None => (-0.5, 0.0),
            Some(v) => match v.as_array() {
                Some([re, im]) => (
                    re.as_f64().ok_or("`center` must be [re, im]")?,
                    im.as_f64().ok_or("`center` must be [re, im]")?,
                ),
                _ => return Err("`center` must be [re, im]".into()),
            },
        };
        let span = match request.get("span") {
            None => 3.0,
            Some(v) => v
                .as_f64()
                .filter(|s| *s > 0.0 && s.is_finite())
                .ok_or("`span` must be a positive number")?,
        };
        let max_iter = match request.get("max_iter") {
            None => 100,
            Some(v) => v
                .as_u64()
                .filter(|n| (1..=MAX_ITER).contains(n))
                .ok_or_else(|| {
                    Error::new(format!(
                        "`max_iter` must be a whole number from 1 to {MAX_ITER}"
                    ))
                })? as u32,
        };
        Ok(Self {
            width: side("width", 64)?,
            height: side("height", 32)?,
            center,
            span,
            max_iter,
        })
    }

    /// The iteration count at column `x`, row `y` (`max_iter` when the point does not escape).
    /// Rows are `row_scale` times as tall as columns are wide: 1 for square pixels, 2 for
    /// characters in a terminal.
    fn iterations(&self, x: usize, y: usize, row_scale: f64) -> u32 {
        let step = self.span / self.width as f64;
        let re = self.center.0 + (x as f64 - self.width as f64 / 2.0) * step;
        let im = self.center.1 - (y as f64 - self.height as f64 / 2.0) * step * row_scale;
        let (mut zr, mut zi) = (0.0f64, 0.0f64);
        for i in 0..self.max_iter {
            if zr * zr + zi * zi > 4.0 {
                return i;
            }
            let next = zr * zr - zi * zi + re;
            zi = 2.0 * zr * zi + im;
            zr = next;
        }
        self.max_iter
    }
}

/// Iteration counts as JSON: `{"width", "height", "max_iter", "rows": [[...], ...]}`, streamed
/// row by row.
pub fn tile(input: Input<'_>, out: &mut Output) -> Result<(), Error> {
    let tile = Tile::from_request(&input.json_value()?)?;
    out.write_fmt(format_args!(
        "{{\"width\":{},\"height\":{},\"max_iter\":{},\"rows\":[",
        tile.width, tile.height, tile.max_iter
    ))?;
    let mut row = String::new();
    for y in 0..tile.height {
        row.clear();
        row.push_str(if y == 0 { "[" } else { ",[" });
        for x in 0..tile.width {
            if x > 0 {
                row.push(',');
            }
            row.push_str(&tile.iterations(x, y, 1.0).to_string());
        }
        row.push(']');
        out.write_str(&row)?;
    }
    out.write_str("]}")
}

/// The tile as text, darker characters for points that take longer to escape.
pub fn ascii(input: Input<'_>, out: &mut Output) -> Result<(), Error> {
    const SHADES: &[u8] = b" .:-=+*#%@";
    let tile = Tile::from_request(&input.json_value()?)?;
    let mut line = String::with_capacity(tile.width + 1);
    for y in 0..tile.height {
        line.clear();
        for x in 0..tile.width {
            let n = tile.iterations(x, y, 2.0);
            let shade = if n >= tile.max_iter {
                SHADES.len() - 1
            } else {
                (n as usize * (SHADES.len() - 1)) / tile.max_iter as usize
            };
            line.push(SHADES[shade] as char);
        }
        line.push('\n');
        out.write_str(&line)?;
    }
    Ok(())
}

/// The tile as a PNG picture: the set in black, escaping points from deep blue to white by how
/// long they take to escape.
pub fn picture(input: Input<'_>, out: &mut Output) -> Result<(), Error> {
    let tile = Tile::from_request(&input.json_value()?)?;
    let mut rgb = Vec::with_capacity(tile.width * tile.height * 3);
    for y in 0..tile.height {
        for x in 0..tile.width {
            let n = tile.iterations(x, y, 1.0);
            if n >= tile.max_iter {
                rgb.extend_from_slice(&[0, 0, 0]);
            } else {
                // A square root spreads the few long escapes near the set over the colours.
                let t = (f64::from(n) / f64::from(tile.max_iter)).sqrt();
                let channel = |from: f64, to: f64| (from + (to - from) * t).round() as u8;
                rgb.extend_from_slice(&[
                    channel(10.0, 255.0),
                    channel(20.0, 240.0),
                    channel(90.0, 200.0),
                ]);
            }
        }
    }
    out.write_bytes(&png::encode_rgb(
        tile.width as u32,
        tile.height as u32,
        &rgb,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_kernel::{json, testing};

    #[test]
    fn known_points_escape_as_expected() {
        let tile = Tile::from_request(
            &json::parse(r#"{"width":4,"height":4,"center":[0,0],"span":4,"max_iter":50}"#)
                .unwrap(),
        )
        .unwrap();
        // Column 2, row 2 is the origin, which never escapes.
        assert_eq!(tile.iterations(2, 2, 1.0), 50);
        // Column 0, row 2 is -2 + 0i, on the boundary: it stays bounded.
        assert_eq!(tile.iterations(0, 2, 1.0), 50);
        // Column 0, row 0 is -2 + 2i, outside at once.
        assert_eq!(tile.iterations(0, 0, 1.0), 1);
    }

    #[test]
    fn tile_answers_json_rows() {
        let out = testing::run_text(tile, r#"{"width":8,"height":3,"max_iter":20}"#).unwrap();
        let answer = json::parse(&out).unwrap();
        let rows = answer.get("rows").unwrap().as_array().unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.as_array().unwrap().len() == 8));
        assert!(
            rows.iter()
                .flat_map(|r| r.as_array().unwrap())
                .all(|n| n.as_u64().unwrap() <= 20)
        );
    }

    #[test]
    fn ascii_draws_the_set() {
        let out = testing::run_text(ascii, r#"{"width":40,"height":12}"#).unwrap();
        assert_eq!(out.lines().count(), 12);
        assert!(out.lines().all(|l| l.len() == 40));
        assert!(out.contains('@'), "the set itself is drawn:\n{out}");
        assert!(out.contains(' '), "escaping points are drawn:\n{out}");
    }

    #[test]
    fn png_paints_the_tile() {
        let out = testing::run(picture, br#"{"width":16,"height":8}"#).unwrap();
        assert_eq!(&out[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR: the width and height asked for.
        assert_eq!(&out[16..24], &[0, 0, 0, 16, 0, 0, 0, 8]);
    }

    #[test]
    fn out_of_range_requests_are_refused() {
        for (request, message) in [
            (
                r#"{"width":0}"#,
                "`width` must be a whole number from 1 to 4096",
            ),
            (
                r#"{"height":100000}"#,
                "`height` must be a whole number from 1 to 4096",
            ),
            (r#"{"span":-1}"#, "`span` must be a positive number"),
            (r#"{"center":[1]}"#, "`center` must be [re, im]"),
            (
                r#"{"max_iter":1e9}"#,
                "`max_iter` must be a whole number from 1 to 100000",
            ),
        ] {
            assert_eq!(
                testing::run_text(tile, request).unwrap_err().message(),
                message
            );
        }
    }
}
