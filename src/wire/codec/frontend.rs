//! Frontend messages the postgres-protocol crate does not provide in the shape needed.

use bytes::{BufMut, BytesMut};

use super::{err, CodecError};
use crate::wire::lsn::Lsn;

/// A Bind parameter already encoded: format code and value (`None` = NULL).
pub(crate) struct BindParam<'a> {
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
pub(crate) fn encode_bind(
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
pub(crate) fn encode_parse(
    buf: &mut BytesMut,
    sql: &str,
    param_types: &[u32],
) -> Result<(), CodecError> {
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
pub(crate) fn encode_cancel_request(buf: &mut BytesMut, process_id: i32, secret_key: &[u8]) {
    buf.put_i32(12 + secret_key.len() as i32);
    buf.put_i32(80877102);
    buf.put_i32(process_id);
    buf.put_slice(secret_key);
}

/// StandbyStatusUpdate ('r') wrapped in CopyData.
pub(crate) fn encode_standby_status_update(
    buf: &mut BytesMut,
    write: Lsn,
    flush: Lsn,
    apply: Lsn,
    clock: i64,
    reply_requested: bool,
) {
    buf.put_u8(b'd');
    buf.put_i32(4 + 1 + 8 * 4 + 1);
    buf.put_u8(b'r');
    buf.put_u64(write.as_u64());
    buf.put_u64(flush.as_u64());
    buf.put_u64(apply.as_u64());
    buf.put_i64(clock);
    buf.put_u8(reply_requested as u8);
}
