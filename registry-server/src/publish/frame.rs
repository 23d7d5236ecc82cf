//! The framed body of `PUT /api/v1/crates/new`: a u32 (little-endian) length, that many bytes
//! of JSON metadata, a u32 length, and that many bytes of `.crate` tarball. Every length is
//! checked against what is actually there before anything is read.

use super::metadata::NewCrate;

/// The largest metadata JSON accepted (crates.io's limit is similar).
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;

/// Why a publish body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The body ends before a length or the bytes a length announces.
    #[error("the publish body is truncated: {0}")]
    Truncated(&'static str),
    /// The metadata is larger than [`MAX_METADATA_BYTES`].
    #[error("the publish metadata is {0} bytes, over the {MAX_METADATA_BYTES}-byte limit")]
    MetadataTooLarge(usize),
    /// There are bytes after the tarball.
    #[error("the publish body has {0} bytes after the tarball")]
    TrailingBytes(usize),
    /// The metadata is not valid JSON of the expected shape.
    #[error("the publish metadata is invalid: {0}")]
    Metadata(String),
}

/// The parts of a publish body.
#[derive(Debug)]
pub struct Frame<'a> {
    /// The metadata.
    pub metadata: NewCrate,
    /// The raw metadata JSON, kept as sent.
    pub metadata_json: &'a [u8],
    /// The `.crate` tarball.
    pub tarball: &'a [u8],
}

fn take_u32(body: &mut &[u8], what: &'static str) -> Result<usize, FrameError> {
    let (len, rest) = body
        .split_first_chunk::<4>()
        .ok_or(FrameError::Truncated(what))?;
    *body = rest;
    Ok(u32::from_le_bytes(*len) as usize)
}

fn take<'a>(body: &mut &'a [u8], len: usize, what: &'static str) -> Result<&'a [u8], FrameError> {
    if body.len() < len {
        return Err(FrameError::Truncated(what));
    }
    let (taken, rest) = body.split_at(len);
    *body = rest;
    Ok(taken)
}

/// Splits and parses a publish body.
pub fn parse_frame(mut body: &[u8]) -> Result<Frame<'_>, FrameError> {
    let json_len = take_u32(&mut body, "no metadata length")?;
    if json_len > MAX_METADATA_BYTES {
        return Err(FrameError::MetadataTooLarge(json_len));
    }
    let metadata_json = take(
        &mut body,
        json_len,
        "the metadata is shorter than its length",
    )?;
    let tarball_len = take_u32(&mut body, "no tarball length")?;
    let tarball = take(
        &mut body,
        tarball_len,
        "the tarball is shorter than its length",
    )?;
    if !body.is_empty() {
        return Err(FrameError::TrailingBytes(body.len()));
    }
    let metadata: NewCrate = serde_json::from_slice(metadata_json)
        .map_err(|err| FrameError::Metadata(err.to_string()))?;
    Ok(Frame {
        metadata,
        metadata_json,
        tarball,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &[u8] = br#"{"name":"demo","vers":"0.1.0","deps":[],"features":{}}"#;

    fn frame(json: &[u8], tarball: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(json.len() as u32).to_le_bytes());
        body.extend_from_slice(json);
        body.extend_from_slice(&(tarball.len() as u32).to_le_bytes());
        body.extend_from_slice(tarball);
        body
    }

    #[test]
    fn a_well_formed_frame_parses() {
        let body = frame(META, b"tarball");
        let parsed = parse_frame(&body).unwrap();
        assert_eq!(parsed.metadata.name, "demo");
        assert_eq!(parsed.tarball, b"tarball");
    }

    #[test]
    fn hostile_frames_are_refused() {
        assert_eq!(
            parse_frame(b"").unwrap_err(),
            FrameError::Truncated("no metadata length")
        );
        assert_eq!(
            parse_frame(&[1, 0]).unwrap_err(),
            FrameError::Truncated("no metadata length")
        );
        let mut lying = frame(META, b"x");
        lying[0] = 0xff;
        assert!(matches!(
            parse_frame(&lying).unwrap_err(),
            FrameError::Truncated(_)
        ));
        let mut long_tarball = frame(META, b"x");
        let at = 4 + META.len();
        long_tarball[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(
            parse_frame(&long_tarball).unwrap_err(),
            FrameError::Truncated("the tarball is shorter than its length")
        );
        let huge = (u32::MAX).to_le_bytes();
        assert!(matches!(
            parse_frame(&huge).unwrap_err(),
            FrameError::MetadataTooLarge(_)
        ));
        let mut trailing = frame(META, b"x");
        trailing.push(0);
        assert_eq!(
            parse_frame(&trailing).unwrap_err(),
            FrameError::TrailingBytes(1)
        );
        assert!(matches!(
            parse_frame(&frame(b"\xff\xfe", b"")).unwrap_err(),
            FrameError::Metadata(_)
        ));
        assert!(matches!(
            parse_frame(&frame(b"{\"name\":1}", b"")).unwrap_err(),
            FrameError::Metadata(_)
        ));
    }
}
