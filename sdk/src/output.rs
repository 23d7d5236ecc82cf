use crate::Error;
use crate::abi::CHUNK_BYTES;

/// Where an entry point writes its result. Output is streamed: it is handed to the host in
/// chunks as it is written, so a kernel can produce more than it could hold at once, and the
/// host stops it when the cell's output limit is reached.
#[derive(Debug)]
pub struct Output {
    buffer: Vec<u8>,
    sink: Sink,
    written: usize,
}

#[derive(Debug)]
enum Sink {
    /// Chunks go to the `kiln.output` host import.
    #[cfg(target_arch = "wasm32")]
    Host,
    /// Chunks collect in memory, up to a limit (native tests).
    Memory { collected: Vec<u8>, limit: usize },
}

impl Output {
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn host() -> Self {
        Self {
            buffer: Vec::with_capacity(CHUNK_BYTES),
            sink: Sink::Host,
            written: 0,
        }
    }

    /// Output collected in memory, refusing to grow past `limit` bytes, as the host would.
    pub fn memory(limit: usize) -> Self {
        Self {
            buffer: Vec::with_capacity(CHUNK_BYTES.min(limit)),
            sink: Sink::Memory {
                collected: Vec::new(),
                limit,
            },
            written: 0,
        }
    }

    /// Writes bytes.
    pub fn write_bytes(&mut self, mut bytes: &[u8]) -> Result<(), Error> {
        while !bytes.is_empty() {
            let room = CHUNK_BYTES - self.buffer.len();
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.buffer.extend_from_slice(now);
            bytes = later;
            if self.buffer.len() == CHUNK_BYTES {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Writes UTF-8 text.
    pub fn write_str(&mut self, text: &str) -> Result<(), Error> {
        self.write_bytes(text.as_bytes())
    }

    /// Writes formatted text: `out.write_fmt(format_args!("{x}\n"))`, or `write!(out, ...)`
    /// with `use std::fmt::Write as _` not needed.
    pub fn write_fmt(&mut self, args: std::fmt::Arguments<'_>) -> Result<(), Error> {
        match args.as_str() {
            Some(text) => self.write_str(text),
            None => self.write_str(&args.to_string()),
        }
    }

    /// Writes `value` as JSON with `serde_json` (feature `serde`), streamed in chunks.
    #[cfg(feature = "serde")]
    pub fn json<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        serde_json::to_writer(&mut *self, value).map_err(|err| {
            Error::new(if err.is_io() {
                "output limit reached".to_owned()
            } else {
                format!("the output cannot be written as JSON: {err}")
            })
        })
    }

    /// Hands what is buffered to the host now.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let accepted = match &mut self.sink {
            #[cfg(target_arch = "wasm32")]
            Sink::Host => crate::host::output(&self.buffer),
            Sink::Memory { collected, limit } => {
                if collected.len() + self.buffer.len() > *limit {
                    false
                } else {
                    collected.extend_from_slice(&self.buffer);
                    true
                }
            }
        };
        let len = self.buffer.len();
        self.buffer.clear();
        if !accepted {
            return Err(Error::new("output limit reached"));
        }
        self.written += len;
        Ok(())
    }

    /// How many bytes the host has accepted so far.
    pub fn bytes_written(&self) -> usize {
        self.written
    }

    /// The bytes collected by a [`memory`](Output::memory) output, after a final flush.
    pub fn into_collected(mut self) -> Result<Vec<u8>, Error> {
        self.flush()?;
        match self.sink {
            #[cfg(target_arch = "wasm32")]
            Sink::Host => Ok(Vec::new()),
            Sink::Memory { collected, .. } => Ok(collected),
        }
    }
}

/// Output is a byte sink for writers (`serde_json::to_writer`, `std::io::copy`); a write
/// past the output limit fails.
impl std::io::Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_bytes(buf)
            .map_err(|err| std::io::Error::other(err.message().to_owned()))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Output::flush(self).map_err(|err| std::io::Error::other(err.message().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_chunked_and_collected_in_order() {
        let mut out = Output::memory(usize::MAX);
        let big = vec![7u8; CHUNK_BYTES * 2 + 5];
        out.write_str("head ").unwrap();
        out.write_bytes(&big).unwrap();
        assert_eq!(
            out.bytes_written(),
            CHUNK_BYTES * 2,
            "full chunks were handed over"
        );
        write_formatted(&mut out);
        let collected = out.into_collected().unwrap();
        assert_eq!(collected.len(), 5 + big.len() + 6);
        assert!(collected.starts_with(b"head \x07"));
        assert!(collected.ends_with(b" n=42\n"));
    }

    fn write_formatted(out: &mut Output) {
        let n = 42;
        out.write_fmt(format_args!(" n={n}\n")).unwrap();
    }

    #[test]
    fn the_limit_is_enforced() {
        let mut out = Output::memory(10);
        out.write_str("0123456789").unwrap();
        out.flush().unwrap();
        out.write_str("x").unwrap();
        assert_eq!(out.flush().unwrap_err().message(), "output limit reached");
    }
}
