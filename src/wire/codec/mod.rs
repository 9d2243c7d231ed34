//! The protocol's messages without I/O or tokio: framing here, backend-message parsing in
//! [`backend`], frontend-message encoding in [`frontend`].
//!
//! The connection reads bytes into one buffer and asks [`frame`] whether a whole message is there;
//! bodies are parsed lazily by the `parse_*` functions, which borrow from the buffer. Nothing here
//! panics on any input: every read is bounds-checked and every length is capped, which is what the
//! `backend_messages` fuzz target checks.

mod backend;
mod frontend;

pub use backend::*;
pub(crate) use frontend::*;

use std::ops::Range;
/// Largest backend message accepted. PostgreSQL caps a field at 1 GiB; a DataRow or CopyData of a
/// wide row can exceed that a little, so allow 1 GiB plus headroom. Anything larger is a corrupt
/// stream, not a message.
pub(crate) const MAX_MESSAGE_LEN: usize = (1 << 30) + (64 << 20);

/// Backend message tags used by the client.
pub mod tag {
    pub const AUTHENTICATION: u8 = b'R';
    pub const BACKEND_KEY_DATA: u8 = b'K';
    pub const BIND_COMPLETE: u8 = b'2';
    pub const CLOSE_COMPLETE: u8 = b'3';
    pub const COMMAND_COMPLETE: u8 = b'C';
    pub const COPY_DATA: u8 = b'd';
    pub const COPY_DONE: u8 = b'c';
    pub const COPY_IN_RESPONSE: u8 = b'G';
    pub const COPY_OUT_RESPONSE: u8 = b'H';
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
    pub const DATA_ROW: u8 = b'D';
    pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
    pub const ERROR_RESPONSE: u8 = b'E';
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
    pub const NO_DATA: u8 = b'n';
    pub const NOTICE_RESPONSE: u8 = b'N';
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    pub const PARAMETER_STATUS: u8 = b'S';
    pub const PARSE_COMPLETE: u8 = b'1';
    pub const PORTAL_SUSPENDED: u8 = b's';
    pub const READY_FOR_QUERY: u8 = b'Z';
    pub const ROW_DESCRIPTION: u8 = b'T';
}

/// A parse failure: what was expected where. Converted into `Error::Protocol` by the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, CodecError> {
    Err(CodecError(msg.into()))
}

/// One complete message at the start of a buffer: its tag and where its body lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub tag: u8,
    /// Byte range of the body within the buffer given to [`frame`].
    pub body: Range<usize>,
}

impl Frame {
    /// Bytes the whole message occupies (tag + length + body).
    pub(crate) fn total_len(&self) -> usize {
        self.body.end
    }
}

/// Looks for one whole message at the start of `buf`.
///
/// `Ok(None)`: more bytes needed; the second value of [`needed`] says how many in total.
pub(crate) fn frame(buf: &[u8]) -> Result<Option<Frame>, CodecError> {
    let Some(total) = needed(buf)? else {
        return Ok(None);
    };
    if buf.len() < total {
        return Ok(None);
    }
    let tag = buf.first().copied().unwrap_or(0);
    Ok(Some(Frame {
        tag,
        body: 5..total,
    }))
}

/// Total size of the message starting at `buf` (tag included), once its header is there.
pub(crate) fn needed(buf: &[u8]) -> Result<Option<usize>, CodecError> {
    let Some(header) = buf.get(..5) else {
        return Ok(None);
    };
    let tag = header[0];
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len < 4 {
        return err(format!(
            "message '{}' has invalid length {len}",
            tag.escape_ascii()
        ));
    }
    if len > MAX_MESSAGE_LEN {
        return err(format!(
            "message '{}' of {len} bytes exceeds the {MAX_MESSAGE_LEN}-byte limit",
            tag.escape_ascii()
        ));
    }
    Ok(Some(len + 1))
}

/// Bounds-checked big-endian reader over a message body.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8], what: &'static str) -> Cursor<'a> {
        Cursor { buf, what }
    }

    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.buf.len() < n {
            return err(format!(
                "{}: needed {n} more bytes, {} left",
                self.what,
                self.buf.len()
            ));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let b = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn i16(&mut self) -> Result<i16, CodecError> {
        Ok(i16::from_be_bytes(self.array()?))
    }
    pub fn i32(&mut self) -> Result<i32, CodecError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, CodecError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A NUL-terminated string, as bytes without the NUL.
    pub(crate) fn cstr_bytes(&mut self) -> Result<&'a [u8], CodecError> {
        match self.buf.iter().position(|&b| b == 0) {
            Some(end) => {
                let s = self.take(end)?;
                self.take(1)?;
                Ok(s)
            }
            None => err(format!("{}: unterminated string", self.what)),
        }
    }

    /// A NUL-terminated UTF-8 string.
    pub(crate) fn cstr(&mut self) -> Result<&'a str, CodecError> {
        let what = self.what;
        let b = self.cstr_bytes()?;
        std::str::from_utf8(b).or_else(|_| err(format!("{what}: string is not UTF-8")))
    }
}
/// Runs every parser over arbitrary bytes; what the fuzz target calls. Never panics.
pub fn fuzz_all(data: &[u8]) {
    let mut buf: &[u8] = data;
    while let Ok(Some(f)) = frame(buf) {
        let body = buf.get(f.body.clone()).unwrap_or_default();
        let _ = match f.tag {
            tag::AUTHENTICATION => parse_authentication(body).map(|_| ()),
            tag::ERROR_RESPONSE | tag::NOTICE_RESPONSE => parse_error_fields(body).map(|_| ()),
            tag::PARAMETER_STATUS => parse_parameter_status(body).map(|_| ()),
            tag::BACKEND_KEY_DATA => parse_backend_key_data(body).map(|_| ()),
            tag::READY_FOR_QUERY => parse_ready_for_query(body).map(|_| ()),
            tag::COMMAND_COMPLETE => parse_command_complete(body).map(|_| ()),
            tag::ROW_DESCRIPTION => parse_row_description(body).map(|_| ()),
            tag::DATA_ROW => parse_data_row(body).map(|r| {
                for range in r.into_iter().flatten() {
                    let _ = body.get(range);
                }
            }),
            tag::COPY_IN_RESPONSE | tag::COPY_OUT_RESPONSE | tag::COPY_BOTH_RESPONSE => {
                parse_copy_response(body).map(|_| ())
            }
            tag::COPY_DATA => parse_replication_message(body).map(|_| ()),
            _ => Ok(()),
        };
        buf = buf.get(f.total_len()..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests;
