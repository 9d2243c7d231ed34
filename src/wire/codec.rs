//! Backend message framing and parsing, frontend encoders. No I/O, no tokio.
//!
//! The connection reads bytes into one buffer and asks [`frame`] whether a whole message is there;
//! bodies are parsed lazily by the functions below, which borrow from the buffer. Nothing here
//! panics on any input: every read is bounds-checked and every length is capped, which is what the
//! `backend_messages` fuzz target checks.

use std::ops::Range;

use bytes::{BufMut, BytesMut};

use super::error::ServerError;

/// Largest backend message accepted. PostgreSQL caps a field at 1 GiB; a DataRow or CopyData of a
/// wide row can exceed that a little, so allow 1 GiB plus headroom. Anything larger is a corrupt
/// stream, not a message.
pub const MAX_MESSAGE_LEN: usize = (1 << 30) + (64 << 20);

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
pub struct Frame {
    pub tag: u8,
    /// Byte range of the body within the buffer given to [`frame`].
    pub body: Range<usize>,
}

impl Frame {
    /// Bytes the whole message occupies (tag + length + body).
    pub fn total_len(&self) -> usize {
        self.body.end
    }
}

/// Looks for one whole message at the start of `buf`.
///
/// `Ok(None)`: more bytes needed; the second value of [`needed`] says how many in total.
pub fn frame(buf: &[u8]) -> Result<Option<Frame>, CodecError> {
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
pub fn needed(buf: &[u8]) -> Result<Option<usize>, CodecError> {
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

    pub fn remaining(&self) -> &'a [u8] {
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
    pub fn i16(&mut self) -> Result<i16, CodecError> {
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
    pub fn cstr_bytes(&mut self) -> Result<&'a [u8], CodecError> {
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
    pub fn cstr(&mut self) -> Result<&'a str, CodecError> {
        let what = self.what;
        let b = self.cstr_bytes()?;
        std::str::from_utf8(b).or_else(|_| err(format!("{what}: string is not UTF-8")))
    }
}

/// Fields of an ErrorResponse or NoticeResponse. Unknown field codes are skipped (the protocol
/// says so); texts that are not UTF-8 (a server encoding before client_encoding applies) are
/// decoded lossily since they are for humans.
pub fn parse_error_fields(body: &[u8]) -> Result<ServerError, CodecError> {
    let mut c = Cursor::new(body, "ErrorResponse");
    let mut e = ServerError::default();
    loop {
        let code = c.u8()?;
        if code == 0 {
            break;
        }
        let value = String::from_utf8_lossy(c.cstr_bytes()?).into_owned();
        let num = |v: &str| v.parse::<u32>().ok();
        match code {
            b'S' => e.severity = value,
            b'V' => e.severity_nonlocalized = Some(value),
            b'C' => e.code = value,
            b'M' => e.message = value,
            b'D' => e.detail = Some(value),
            b'H' => e.hint = Some(value),
            b'P' => e.position = num(&value),
            b'p' => e.internal_position = num(&value),
            b'q' => e.internal_query = Some(value),
            b'W' => e.where_ = Some(value),
            b's' => e.schema = Some(value),
            b't' => e.table = Some(value),
            b'c' => e.column = Some(value),
            b'd' => e.datatype = Some(value),
            b'n' => e.constraint = Some(value),
            b'F' => e.file = Some(value),
            b'L' => e.line = num(&value),
            b'R' => e.routine = Some(value),
            _ => {}
        }
    }
    if e.severity.is_empty() {
        if let Some(v) = &e.severity_nonlocalized {
            e.severity = v.clone();
        }
    }
    Ok(e)
}

/// An authentication request ('R').
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRequest<'a> {
    Ok,
    Cleartext,
    Md5 {
        salt: [u8; 4],
    },
    /// SASL mechanisms the server offers, in its order.
    Sasl(Vec<&'a str>),
    SaslContinue(&'a [u8]),
    SaslFinal(&'a [u8]),
    /// Methods this client does not implement, by name (KerberosV5, SCM, GSS, SSPI, …).
    Unsupported(String),
}

pub fn parse_authentication(body: &[u8]) -> Result<AuthRequest<'_>, CodecError> {
    let mut c = Cursor::new(body, "Authentication");
    let kind = c.i32()?;
    Ok(match kind {
        0 => AuthRequest::Ok,
        3 => AuthRequest::Cleartext,
        5 => {
            let s = c.take(4)?;
            AuthRequest::Md5 {
                salt: [s[0], s[1], s[2], s[3]],
            }
        }
        10 => {
            let mut mechs = Vec::new();
            loop {
                let m = c.cstr()?;
                if m.is_empty() {
                    break;
                }
                mechs.push(m);
            }
            AuthRequest::Sasl(mechs)
        }
        11 => AuthRequest::SaslContinue(c.remaining()),
        12 => AuthRequest::SaslFinal(c.remaining()),
        2 => AuthRequest::Unsupported("KerberosV5".into()),
        6 => AuthRequest::Unsupported("SCM credentials".into()),
        7 | 8 => AuthRequest::Unsupported("GSSAPI".into()),
        9 => AuthRequest::Unsupported("SSPI".into()),
        other => AuthRequest::Unsupported(format!("authentication request code {other}")),
    })
}

pub fn parse_parameter_status(body: &[u8]) -> Result<(&str, &str), CodecError> {
    let mut c = Cursor::new(body, "ParameterStatus");
    Ok((c.cstr()?, c.cstr()?))
}

/// BackendKeyData: process id and the secret key (4 bytes in protocol 3.0, up to 256 in 3.2).
pub fn parse_backend_key_data(body: &[u8]) -> Result<(i32, &[u8]), CodecError> {
    let mut c = Cursor::new(body, "BackendKeyData");
    let pid = c.i32()?;
    let key = c.remaining();
    if key.len() < 4 || key.len() > 256 {
        return err(format!("BackendKeyData: secret key of {} bytes", key.len()));
    }
    Ok((pid, key))
}

/// ReadyForQuery: transaction status `I` (idle), `T` (in transaction) or `E` (failed transaction).
pub fn parse_ready_for_query(body: &[u8]) -> Result<u8, CodecError> {
    let s = Cursor::new(body, "ReadyForQuery").u8()?;
    match s {
        b'I' | b'T' | b'E' => Ok(s),
        other => err(format!(
            "ReadyForQuery: unknown transaction status '{}'",
            other.escape_ascii()
        )),
    }
}

pub fn parse_command_complete(body: &[u8]) -> Result<&str, CodecError> {
    Cursor::new(body, "CommandComplete").cstr()
}

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    pub name: String,
    pub table_oid: u32,
    pub column_id: i16,
    pub type_oid: u32,
    pub type_size: i16,
    pub type_modifier: i32,
    /// 0 text, 1 binary.
    pub format: i16,
}

pub fn parse_row_description(body: &[u8]) -> Result<Vec<FieldDescription>, CodecError> {
    let mut c = Cursor::new(body, "RowDescription");
    let n = c.i16()?;
    if n < 0 {
        return err(format!("RowDescription: negative field count {n}"));
    }
    // Each field takes at least 19 bytes: never trust the count for the allocation.
    let mut fields = Vec::with_capacity((n as usize).min(body.len() / 19));
    for _ in 0..n {
        fields.push(FieldDescription {
            name: c.cstr()?.to_string(),
            table_oid: c.u32()?,
            column_id: c.i16()?,
            type_oid: c.u32()?,
            type_size: c.i16()?,
            type_modifier: c.i32()?,
            format: c.i16()?,
        });
    }
    Ok(fields)
}

/// DataRow: each value's byte range within `body`, `None` for NULL.
pub fn parse_data_row(body: &[u8]) -> Result<Vec<Option<Range<usize>>>, CodecError> {
    let mut c = Cursor::new(body, "DataRow");
    let n = c.i16()?;
    if n < 0 {
        return err(format!("DataRow: negative column count {n}"));
    }
    let mut values = Vec::with_capacity((n as usize).min(body.len() / 4));
    for _ in 0..n {
        let len = c.i32()?;
        if len == -1 {
            values.push(None);
            continue;
        }
        if len < 0 {
            return err(format!("DataRow: invalid value length {len}"));
        }
        let start = body.len() - c.remaining().len();
        c.take(len as usize)?;
        values.push(Some(start..start + len as usize));
    }
    if !c.is_empty() {
        return err("DataRow: trailing bytes after the last value");
    }
    Ok(values)
}

/// CopyInResponse / CopyOutResponse / CopyBothResponse body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResponse {
    /// 0 text, 1 binary.
    pub format: u8,
    pub column_formats: Vec<i16>,
}

pub fn parse_copy_response(body: &[u8]) -> Result<CopyResponse, CodecError> {
    let mut c = Cursor::new(body, "CopyResponse");
    let format = c.u8()?;
    let n = c.i16()?;
    if n < 0 {
        return err(format!("CopyResponse: negative column count {n}"));
    }
    let mut column_formats = Vec::with_capacity((n as usize).min(body.len() / 2));
    for _ in 0..n {
        column_formats.push(c.i16()?);
    }
    Ok(CopyResponse {
        format,
        column_formats,
    })
}

/// A message of the streaming replication protocol, carried in CopyData.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationMessage<'a> {
    XLogData {
        wal_start: u64,
        wal_end: u64,
        /// Server clock, microseconds since 2000-01-01 UTC.
        server_clock: i64,
        data: &'a [u8],
    },
    PrimaryKeepalive {
        wal_end: u64,
        server_clock: i64,
        reply_requested: bool,
    },
}

pub fn parse_replication_message(payload: &[u8]) -> Result<ReplicationMessage<'_>, CodecError> {
    let mut c = Cursor::new(payload, "replication message");
    match c.u8()? {
        b'w' => Ok(ReplicationMessage::XLogData {
            wal_start: c.u64()?,
            wal_end: c.u64()?,
            server_clock: c.i64()?,
            data: c.remaining(),
        }),
        b'k' => {
            let wal_end = c.u64()?;
            let server_clock = c.i64()?;
            let reply = c.u8()?;
            Ok(ReplicationMessage::PrimaryKeepalive {
                wal_end,
                server_clock,
                reply_requested: reply != 0,
            })
        }
        other => err(format!(
            "replication message: unknown type '{}'",
            other.escape_ascii()
        )),
    }
}

// ---- frontend encoders the postgres-protocol crate does not provide in the shape needed ----

/// A Bind parameter already encoded: format code and value (`None` = NULL).
pub struct BindParam<'a> {
    pub format: i16,
    pub value: Option<&'a [u8]>,
}

fn with_length(
    buf: &mut BytesMut,
    tag: u8,
    body: impl FnOnce(&mut BytesMut),
) -> Result<(), CodecError> {
    buf.put_u8(tag);
    let at = buf.len();
    buf.put_i32(0);
    body(buf);
    let len = buf.len() - at;
    let Ok(len32) = i32::try_from(len) else {
        return err(format!("message of {len} bytes is too large to send"));
    };
    buf[at..at + 4].copy_from_slice(&len32.to_be_bytes());
    Ok(())
}

/// Bind of the unnamed portal to the unnamed statement; every result column in `result_format`.
pub fn encode_bind(
    buf: &mut BytesMut,
    params: &[BindParam<'_>],
    result_format: i16,
) -> Result<(), CodecError> {
    let n = i16::try_from(params.len()).or_else(|_| err("too many parameters"))?;
    for p in params {
        if let Some(v) = p.value {
            if i32::try_from(v.len()).is_err() {
                return err("parameter value too large");
            }
        }
    }
    with_length(buf, b'B', |b| {
        b.put_u8(0); // portal ""
        b.put_u8(0); // statement ""
        b.put_i16(n);
        for p in params {
            b.put_i16(p.format);
        }
        b.put_i16(n);
        for p in params {
            match p.value {
                None => b.put_i32(-1),
                Some(v) => {
                    b.put_i32(v.len() as i32);
                    b.put_slice(v);
                }
            }
        }
        b.put_i16(1);
        b.put_i16(result_format);
    })
}

/// Parse of the unnamed statement with explicit parameter type OIDs (0 = let the server infer).
pub fn encode_parse(buf: &mut BytesMut, sql: &str, param_types: &[u32]) -> Result<(), CodecError> {
    let n = i16::try_from(param_types.len()).or_else(|_| err("too many parameters"))?;
    if sql.as_bytes().contains(&0) {
        return err("query text contains a NUL byte");
    }
    with_length(buf, b'P', |b| {
        b.put_u8(0);
        b.put_slice(sql.as_bytes());
        b.put_u8(0);
        b.put_i16(n);
        for t in param_types {
            b.put_u32(*t);
        }
    })
}

/// CancelRequest with the key as the server gave it.
pub fn encode_cancel_request(buf: &mut BytesMut, process_id: i32, secret_key: &[u8]) {
    buf.put_i32(12 + secret_key.len() as i32);
    buf.put_i32(80877102);
    buf.put_i32(process_id);
    buf.put_slice(secret_key);
}

/// StandbyStatusUpdate ('r') wrapped in CopyData.
pub fn encode_standby_status_update(
    buf: &mut BytesMut,
    write: u64,
    flush: u64,
    apply: u64,
    clock: i64,
    reply_requested: bool,
) {
    buf.put_u8(b'd');
    buf.put_i32(4 + 1 + 8 * 4 + 1);
    buf.put_u8(b'r');
    buf.put_u64(write);
    buf.put_u64(flush);
    buf.put_u64(apply);
    buf.put_i64(clock);
    buf.put_u8(reply_requested as u8);
}

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC).
pub const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// Now, in the replication protocol's clock (microseconds since 2000-01-01 UTC).
pub fn pg_clock_now() -> i64 {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    micros - PG_EPOCH_OFFSET_MICROS
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
mod tests {
    use super::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn framing_waits_for_whole_message() {
        let m = msg(b'Z', b"I");
        for cut in 0..m.len() {
            assert_eq!(frame(&m[..cut]).unwrap(), None);
        }
        let f = frame(&m).unwrap().unwrap();
        assert_eq!(f.tag, b'Z');
        assert_eq!(&m[f.body.clone()], b"I");
        assert_eq!(parse_ready_for_query(&m[f.body]).unwrap(), b'I');
    }

    #[test]
    fn framing_rejects_bad_lengths() {
        assert!(frame(&[b'Z', 0, 0, 0, 3]).is_err());
        assert!(frame(&[b'd', 0x7f, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn copy_both_response_is_framed() {
        let m = msg(b'W', &[0, 0, 0]);
        let f = frame(&m).unwrap().unwrap();
        assert_eq!(f.tag, tag::COPY_BOTH_RESPONSE);
        let r = parse_copy_response(&m[f.body]).unwrap();
        assert_eq!(r.format, 0);
        assert!(r.column_formats.is_empty());
    }

    #[test]
    fn error_fields_all_kept() {
        let body = b"SERROR\0VERROR\0C23505\0Mdup\0Ddet\0Hhint\0P7\0Wwhere\0sschema\0ttab\0ccol\0ddt\0ncons\0Ffile.c\0L42\0Rfn\0Zunknown\0\0";
        let e = parse_error_fields(body).unwrap();
        assert_eq!(e.severity, "ERROR");
        assert_eq!(e.code, "23505");
        assert_eq!(e.message, "dup");
        assert_eq!(e.detail.as_deref(), Some("det"));
        assert_eq!(e.hint.as_deref(), Some("hint"));
        assert_eq!(e.position, Some(7));
        assert_eq!(e.where_.as_deref(), Some("where"));
        assert_eq!(e.schema.as_deref(), Some("schema"));
        assert_eq!(e.table.as_deref(), Some("tab"));
        assert_eq!(e.column.as_deref(), Some("col"));
        assert_eq!(e.datatype.as_deref(), Some("dt"));
        assert_eq!(e.constraint.as_deref(), Some("cons"));
        assert_eq!(e.file.as_deref(), Some("file.c"));
        assert_eq!(e.line, Some(42));
        assert_eq!(e.routine.as_deref(), Some("fn"));
        assert!(parse_error_fields(b"SERROR\0Mx").is_err());
    }

    #[test]
    fn data_row_ranges_and_nulls() {
        let mut body = vec![0, 3];
        body.extend_from_slice(&2i32.to_be_bytes());
        body.extend_from_slice(b"ab");
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&0i32.to_be_bytes());
        let r = parse_data_row(&body).unwrap();
        assert_eq!(&body[r[0].clone().unwrap()], b"ab");
        assert_eq!(r[1], None);
        assert_eq!(r[2], Some(body.len()..body.len()));
        body.truncate(body.len() - 1);
        assert!(parse_data_row(&body).is_err());
    }

    #[test]
    fn replication_messages() {
        let mut x = vec![b'w'];
        x.extend_from_slice(&1u64.to_be_bytes());
        x.extend_from_slice(&2u64.to_be_bytes());
        x.extend_from_slice(&3i64.to_be_bytes());
        x.extend_from_slice(b"payload");
        assert_eq!(
            parse_replication_message(&x).unwrap(),
            ReplicationMessage::XLogData {
                wal_start: 1,
                wal_end: 2,
                server_clock: 3,
                data: b"payload"
            }
        );
        let mut k = vec![b'k'];
        k.extend_from_slice(&9u64.to_be_bytes());
        k.extend_from_slice(&8i64.to_be_bytes());
        k.push(1);
        assert_eq!(
            parse_replication_message(&k).unwrap(),
            ReplicationMessage::PrimaryKeepalive {
                wal_end: 9,
                server_clock: 8,
                reply_requested: true
            }
        );
        assert!(parse_replication_message(&k[..10]).is_err());
        assert!(parse_replication_message(b"").is_err());
    }

    #[test]
    fn auth_requests() {
        let mut b = 10i32.to_be_bytes().to_vec();
        b.extend_from_slice(b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0");
        assert_eq!(
            parse_authentication(&b).unwrap(),
            AuthRequest::Sasl(vec!["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"])
        );
        let b = 7i32.to_be_bytes();
        assert_eq!(
            parse_authentication(&b).unwrap(),
            AuthRequest::Unsupported("GSSAPI".into())
        );
    }

    #[test]
    fn standby_status_update_layout() {
        let mut buf = BytesMut::new();
        encode_standby_status_update(&mut buf, 1, 2, 3, 4, true);
        let f = frame(&buf).unwrap().unwrap();
        assert_eq!(f.tag, b'd');
        assert_eq!(f.body.len(), 34);
        assert_eq!(buf[5], b'r');
        assert_eq!(buf[buf.len() - 1], 1);
    }

    #[test]
    fn fuzz_entry_survives_garbage() {
        fuzz_all(&[]);
        fuzz_all(&[b'D', 0, 0, 0, 6, 0xff, 0xff]);
        fuzz_all(&[b'T', 0, 0, 0, 6, 0x7f, 0xff]);
        fuzz_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 5]);
    }
}
