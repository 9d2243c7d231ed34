//! HTTP/2 frame headers (RFC 9113 §4.1): reading one, stripping a HEADERS frame's padding and
//! priority, writing a header block back as HEADERS + CONTINUATION frames.

use super::{AuthorityError, MAX_OUT_FRAME};

pub(super) const FRAME_HEADER_LEN: usize = 9;
pub(super) const TYPE_HEADERS: u8 = 0x1;
pub(super) const TYPE_PUSH_PROMISE: u8 = 0x5;
pub(super) const TYPE_CONTINUATION: u8 = 0x9;
pub(super) const FLAG_END_STREAM: u8 = 0x1;
pub(super) const FLAG_END_HEADERS: u8 = 0x4;
pub(super) const FLAG_PADDED: u8 = 0x8;
pub(super) const FLAG_PRIORITY: u8 = 0x20;

pub(super) struct FrameHeader {
    pub(super) len: usize,
    pub(super) kind: u8,
    pub(super) flags: u8,
    pub(super) stream: u32,
}

impl FrameHeader {
    /// `bytes` holds at least the 9 header bytes.
    pub(super) fn parse(bytes: &[u8]) -> FrameHeader {
        let b = |i: usize| bytes.get(i).copied().unwrap_or(0);
        FrameHeader {
            len: (usize::from(b(0)) << 16) | (usize::from(b(1)) << 8) | usize::from(b(2)),
            kind: b(3),
            flags: b(4),
            stream: u32::from_be_bytes([b(5) & 0x7f, b(6), b(7), b(8)]),
        }
    }
}

/// The header block fragment of a HEADERS payload, without pad length, priority and padding.
pub(super) fn strip_padding_and_priority<'a>(
    frame: &FrameHeader,
    payload: &'a [u8],
) -> Result<&'a [u8], AuthorityError> {
    let stream = frame.stream;
    let mut body = payload;
    let mut pad = 0usize;
    if frame.flags & FLAG_PADDED != 0 {
        let Some((&len, rest)) = body.split_first() else {
            return Err(AuthorityError::BadPadding { stream, pad: 1 });
        };
        pad = usize::from(len);
        body = rest;
    }
    if frame.flags & FLAG_PRIORITY != 0 {
        body = body
            .get(5..)
            .ok_or(AuthorityError::ShortPriority { stream })?;
    }
    let keep = body
        .len()
        .checked_sub(pad)
        .ok_or(AuthorityError::BadPadding { stream, pad })?;
    Ok(body.get(..keep).unwrap_or_default())
}

pub(super) fn write_frame_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    // `len` <= MAX_OUT_FRAME, so it fits the 24-bit length field.
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
}

/// HEADERS (+ CONTINUATION) frames carrying `block`, each payload at most [`MAX_OUT_FRAME`].
pub(super) fn write_header_frames(stream: u32, end_stream: bool, block: &[u8], out: &mut Vec<u8>) {
    let mut chunks = block.chunks(MAX_OUT_FRAME).peekable();
    let first = chunks.next().unwrap_or_default();
    let mut flags = if end_stream { FLAG_END_STREAM } else { 0 };
    if chunks.peek().is_none() {
        flags |= FLAG_END_HEADERS;
    }
    write_frame_header(out, first.len(), TYPE_HEADERS, flags, stream);
    out.extend_from_slice(first);
    while let Some(chunk) = chunks.next() {
        let flags = if chunks.peek().is_none() {
            FLAG_END_HEADERS
        } else {
            0
        };
        write_frame_header(out, chunk.len(), TYPE_CONTINUATION, flags, stream);
        out.extend_from_slice(chunk);
    }
}
