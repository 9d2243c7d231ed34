//! PostgreSQL text output → the binary send format of the same type.
//!
//! pgoutput in text mode (PostgreSQL 12–13 have no `binary` option; newer servers too when a
//! published column's type has no native decoder) delivers every value as its type's output
//! function prints it. Rather than a second set of text decoders, [`text_to_binary`] rewrites
//! that text into exactly the bytes the type's `*_send` function would have produced, so the
//! COPY column readers ([`super::ColumnReader`]) decode both paths: one set of readers, one set
//! of value rules.
//!
//! The text is the one printed under the session settings every connection of this plugin sends
//! (`DateStyle=ISO`, `TimeZone=UTC`, `IntervalStyle=iso_8601`, `extra_float_digits=3`,
//! `bytea_output=hex` by default). Parsing is strict where the output functions are
//! deterministic and lenient only where it costs nothing (`bytea` escape format, `true`/`false`,
//! `-` in MAC addresses, any `±HH[:MM[:SS]]` zone offset).
//!
//! Known differences from the server's bytes, none of which the readers look at:
//! - `inet` and `cidr` share [`PgType::Inet`], so the `is_cidr` byte is always 0.
//! - Array element OIDs are the canonical OID of the element's [`PgType`] (`text` for
//!   varchar/bpchar/name and for server-text types, `inet` for cidr).
//! - A float NaN is the canonical quiet NaN (the text has no sign or payload for it).
//!
//! Limitation: array literals are split on `,`. The only built-in type with another delimiter is
//! `box` (`;`); an array of boxes travels as [`PgType::ServerText`] and its elements would be
//! split wrongly. Binary pgoutput does not have this problem.
//!
//! Errors: malformed text is a [`DecodeError::Invalid`] whose `what` names the type, whose
//! `expected` says what the text should look like, and whose `found` is the **byte offset** in
//! the value where parsing failed. On error `out` is restored to its length on entry.

//!
//! One file per type family: [`number`] (integers, floats, numeric), [`bytes`] (`"char"`,
//! bytea, uuid), [`network`] (inet, MAC addresses), [`datetime`] (date, time, timestamps) and
//! [`array`] (array literals, whose elements come back here). Interval text is converted by
//! [`super::interval`], next to its binary decoder.

mod array;
mod bytes;
mod datetime;
mod network;
mod number;

use super::error::DecodeError;
use super::types::PgType;
use array::parse_array;
use bytes::{parse_bytea, parse_char, parse_uuid};
use datetime::{parse_date_value, parse_time, parse_timestamp};
use network::{parse_inet, parse_mac};
use number::{parse_float, parse_int, parse_numeric};

/// Convert `text` (the output-function text of a value of type `ty`, never NULL) into its binary
/// send format, appended to `out`. On error `out` is left as it was.
pub fn text_to_binary(ty: &PgType, text: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let start = out.len();
    let result = convert(ty, text, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

pub(super) fn err(what: &'static str, expected: &'static str, offset: usize) -> DecodeError {
    DecodeError::Invalid {
        what,
        expected,
        found: i64::try_from(offset).unwrap_or(i64::MAX),
    }
}

pub(super) fn utf8<'a>(text: &'a [u8], what: &'static str) -> Result<&'a str, DecodeError> {
    std::str::from_utf8(text).map_err(|e| DecodeError::InvalidUtf8 {
        what,
        valid_up_to: e.valid_up_to(),
    })
}

pub(super) fn convert(ty: &PgType, text: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    match ty {
        PgType::Bool => {
            let v = match text {
                b"t" | b"true" => 1,
                b"f" | b"false" => 0,
                _ => return Err(err("bool text", "t or f", 0)),
            };
            out.push(v);
        }
        PgType::Int2 => out.extend_from_slice(&parse_int::<i16>(text, "int2 text")?.to_be_bytes()),
        PgType::Int4 => out.extend_from_slice(&parse_int::<i32>(text, "int4 text")?.to_be_bytes()),
        PgType::Int8 => out.extend_from_slice(&parse_int::<i64>(text, "int8 text")?.to_be_bytes()),
        PgType::Oid => out.extend_from_slice(&parse_int::<u32>(text, "oid text")?.to_be_bytes()),
        PgType::Xid => out.extend_from_slice(&parse_int::<u32>(text, "xid text")?.to_be_bytes()),
        PgType::Xid8 => out.extend_from_slice(&parse_int::<u64>(text, "xid8 text")?.to_be_bytes()),
        PgType::Float4 => {
            let v: f32 = parse_float(text, "float4 text")?;
            out.extend_from_slice(&v.to_be_bytes());
        }
        PgType::Float8 => {
            let v: f64 = parse_float(text, "float8 text")?;
            out.extend_from_slice(&v.to_be_bytes());
        }
        // The send format of text-like types and json is the text itself.
        PgType::Text | PgType::ServerText | PgType::Json => out.extend_from_slice(text),
        PgType::Jsonb => {
            out.push(1);
            out.extend_from_slice(text);
        }
        PgType::Char => out.push(parse_char(text)?),
        PgType::Bytea => parse_bytea(text, out)?,
        PgType::Uuid => parse_uuid(text, out)?,
        PgType::Inet => parse_inet(text, out)?,
        PgType::MacAddr => parse_mac::<6>(text, "macaddr text", out)?,
        PgType::MacAddr8 => parse_mac::<8>(text, "macaddr8 text", out)?,
        PgType::Date => out.extend_from_slice(&parse_date_value(text)?.to_be_bytes()),
        PgType::Time { .. } => {
            let s = utf8(text, "time text")?;
            let us = parse_time(s, 0, "time text")?;
            out.extend_from_slice(&us.to_be_bytes());
        }
        PgType::Timestamp { .. } => {
            out.extend_from_slice(&parse_timestamp(text, false)?.to_be_bytes());
        }
        PgType::TimestampTz { .. } => {
            out.extend_from_slice(&parse_timestamp(text, true)?.to_be_bytes());
        }
        PgType::Numeric | PgType::Decimal { .. } => parse_numeric(text, out)?,
        PgType::Interval => super::interval::interval_text_to_binary(text, out)?,
        PgType::Array(elem) => parse_array(elem, text, out)?,
    }
    Ok(())
}

pub(super) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
