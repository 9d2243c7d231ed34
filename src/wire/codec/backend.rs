//! Backend messages: each `parse_*` reads one message body, borrowing from it.

use std::ops::Range;

use super::{err, CodecError, Cursor};
use crate::wire::error::ServerError;
use crate::wire::lsn::Lsn;

/// Fields of an ErrorResponse or NoticeResponse. Unknown field codes are skipped (the protocol
/// says so); texts that are not UTF-8 (a server encoding before client_encoding applies) are
/// decoded lossily since they are for humans.
pub(crate) fn parse_error_fields(body: &[u8]) -> Result<ServerError, CodecError> {
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
pub(crate) enum AuthRequest<'a> {
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

pub(crate) fn parse_authentication(body: &[u8]) -> Result<AuthRequest<'_>, CodecError> {
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

pub(crate) fn parse_parameter_status(body: &[u8]) -> Result<(&str, &str), CodecError> {
    let mut c = Cursor::new(body, "ParameterStatus");
    Ok((c.cstr()?, c.cstr()?))
}

/// BackendKeyData: process id and the secret key (4 bytes in protocol 3.0, up to 256 in 3.2).
pub(crate) fn parse_backend_key_data(body: &[u8]) -> Result<(i32, &[u8]), CodecError> {
    let mut c = Cursor::new(body, "BackendKeyData");
    let pid = c.i32()?;
    let key = c.remaining();
    if key.len() < 4 || key.len() > 256 {
        return err(format!("BackendKeyData: secret key of {} bytes", key.len()));
    }
    Ok((pid, key))
}

/// ReadyForQuery: transaction status `I` (idle), `T` (in transaction) or `E` (failed transaction).
pub(crate) fn parse_ready_for_query(body: &[u8]) -> Result<u8, CodecError> {
    let s = Cursor::new(body, "ReadyForQuery").u8()?;
    match s {
        b'I' | b'T' | b'E' => Ok(s),
        other => err(format!(
            "ReadyForQuery: unknown transaction status '{}'",
            other.escape_ascii()
        )),
    }
}

pub(crate) fn parse_command_complete(body: &[u8]) -> Result<&str, CodecError> {
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

pub(crate) fn parse_row_description(body: &[u8]) -> Result<Vec<FieldDescription>, CodecError> {
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
pub(crate) fn parse_data_row(body: &[u8]) -> Result<Vec<Option<Range<usize>>>, CodecError> {
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
pub(crate) struct CopyResponse {
    /// 0 text, 1 binary.
    pub format: u8,
    pub column_formats: Vec<i16>,
}

pub(crate) fn parse_copy_response(body: &[u8]) -> Result<CopyResponse, CodecError> {
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
        wal_start: Lsn,
        wal_end: Lsn,
        /// Server clock, microseconds since 2000-01-01 UTC.
        server_clock: i64,
        data: &'a [u8],
    },
    PrimaryKeepalive {
        wal_end: Lsn,
        server_clock: i64,
        reply_requested: bool,
    },
}

pub fn parse_replication_message(payload: &[u8]) -> Result<ReplicationMessage<'_>, CodecError> {
    let mut c = Cursor::new(payload, "replication message");
    match c.u8()? {
        b'w' => Ok(ReplicationMessage::XLogData {
            wal_start: Lsn::new(c.u64()?),
            wal_end: Lsn::new(c.u64()?),
            server_clock: c.i64()?,
            data: c.remaining(),
        }),
        b'k' => {
            let wal_end = Lsn::new(c.u64()?);
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
