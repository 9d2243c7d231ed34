//! One [`ColumnReader`] per column: chosen once from the column's [`PgType`], it appends each
//! binary-format value (the output of PostgreSQL's `*_send` function, network byte order)
//! straight into its Arrow builder. Arrays wrap the reader of their element type.
//!
//! Value rules:
//! - bool: one byte, non-zero is true (as boolrecv). int2/4/8, float4/8, oid/xid (u32), xid8
//!   (u64): big-endian, exact width; NaN and ±Infinity pass through untouched.
//! - text-like: the UTF-8 bytes, validated per batch in `finish`. `"char"`: one byte; `\0` is
//!   the empty string, ASCII is itself, a byte ≥ 0x80 becomes `\ooo` (three octal digits),
//!   exactly as PostgreSQL ≥ 15's charout prints it (a lone high byte is never valid UTF-8, and
//!   this keeps the value).
//! - bytea raw; uuid 16 bytes; macaddr exactly 6 bytes, macaddr8 exactly 8, raw.
//! - json: the text, validated as UTF-8, never re-encoded. jsonb: version byte 1, then the text.
//! - inet/cidr: `address/bits` (see [`super::inet`]). numeric: numeric_out's text (see
//!   [`super::numeric`]).
//! - date: days since 2000-01-01 → Date32 days since 1970-01-01 (+10957).
//! - time: µs since midnight (0..=24:00:00) → seconds, milliseconds (Time32) or µs (Time64) by
//!   the column's precision; the server already rounded the value to that precision.
//! - timestamp/timestamptz: µs since 2000-01-01 UTC → the column's unit since 1970-01-01 UTC
//!   (+946,684,800 s), rounded down to the unit.
//! - date and timestamp `±infinity` and finite values outside the years 1–9999 follow the
//!   `infinity` and `out_of_range` rules of [`super::rules`]; values those rules changed because
//!   a destination cannot hold them are counted ([`ColumnReader::take_adjusted`]).
//! - numeric under `numeric_type: decimal`: Decimal128/256 (see [`super::decimal`]); NaN and
//!   ±Infinity → NULL, counted. interval under `interval_type: month_day_nano`: see
//!   [`super::interval`].
//! - arrays (`array.rs`): a list per row whose elements, flattened row-major over all
//!   dimensions, go through the element type's reader; NULL elements kept, an empty array is an
//!   empty list, lower bounds are dropped.
//!
//! Errors: a value that fails to decode appends nothing, except inside an array whose earlier
//! elements were already appended: that reader is then poisoned and its `finish` fails, because
//! the batch would hold a partial row.

use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, FixedSizeBinaryBuilder, GenericByteBuilder,
    StringBuilder,
};
use arrow_array::types::{
    ByteArrayType, Date32Type, Decimal128Type, Decimal256Type, Float32Type, Float64Type, Int16Type,
    Int32Type, Int64Type, IntervalMonthDayNanoType, Time32MillisecondType, Time32SecondType,
    Time64MicrosecondType, TimestampMicrosecondType, TimestampMillisecondType, TimestampSecondType,
    UInt32Type, UInt64Type,
};
use arrow_array::{ArrayRef, ArrowPrimitiveType, BinaryArray, StringArray};
use arrow_buffer::i256;
use arrow_schema::{ArrowError, DataType, TimeUnit};

use super::array::ListReader;
use super::buf::{fixed, utf8};
use super::decimal::numeric_unscaled;
use super::error::DecodeError;
use super::fixed::Fixed;
use super::inet::write_inet;
use super::interval::interval_value;
use super::numeric::write_numeric;
use super::rules::{Ruled, ValueOptions};
use super::types::{arrow_type, time_unit, PgType};
use crate::wire::epoch::{PG_EPOCH_DAYS, PG_EPOCH_SECS, USECS_PER_DAY, USECS_PER_SEC};

/// Reads one column's binary values into Arrow.
#[derive(Debug)]
pub struct ColumnReader {
    inner: Inner,
    rules: ValueOptions,
    /// Values changed since the last `take_adjusted` because the Arrow type cannot hold them.
    adjusted: u64,
}

#[derive(Debug)]
enum Inner {
    Bool(BooleanBuilder),
    Int16(Fixed<Int16Type>),
    Int32(Fixed<Int32Type>),
    Int64(Fixed<Int64Type>),
    Float32(Fixed<Float32Type>),
    Float64(Fixed<Float64Type>),
    UInt32(Fixed<UInt32Type>),
    UInt64(Fixed<UInt64Type>),
    /// Raw bytes; UTF-8 is checked for the whole batch in `finish` (see [`finish_text`]).
    Text(BinaryBuilder),
    Char(StringBuilder),
    Numeric(StringBuilder),
    Bytea(BinaryBuilder),
    Json(BinaryBuilder),
    Jsonb(BinaryBuilder),
    /// The String is a scratch buffer reused for every value.
    Inet(BinaryBuilder, String),
    MacAddr(BinaryBuilder),
    MacAddr8(BinaryBuilder),
    Uuid(FixedSizeBinaryBuilder),
    Date(Fixed<Date32Type>),
    TimeSecond(Fixed<Time32SecondType>),
    TimeMillisecond(Fixed<Time32MillisecondType>),
    TimeMicrosecond(Fixed<Time64MicrosecondType>),
    TimestampSecond(Fixed<TimestampSecondType>),
    TimestampMillisecond(Fixed<TimestampMillisecondType>),
    TimestampMicrosecond(Fixed<TimestampMicrosecondType>),
    /// With the Arrow precision and scale.
    Decimal128(Fixed<Decimal128Type>, u8, i8),
    Decimal256(Fixed<Decimal256Type>, u8, i8),
    Interval(Fixed<IntervalMonthDayNanoType>),
    List(Box<ListReader>),
}

/// `$body` with `$b` bound to an Arrow builder, `$fixed` with `$f` bound to a fixed-width
/// column, `$list` for lists.
macro_rules! dispatch {
    ($inner:expr, $b:ident => $body:expr, $f:ident => $fixed:expr, $l:ident => $list:expr) => {
        match $inner {
            Inner::Bool($b) => $body,
            Inner::Char($b) | Inner::Numeric($b) => $body,
            Inner::Text($b) | Inner::Bytea($b) | Inner::Json($b) | Inner::Jsonb($b) => $body,
            Inner::Inet($b, _) => $body,
            Inner::MacAddr($b) | Inner::MacAddr8($b) => $body,
            Inner::Uuid($b) => $body,
            Inner::Int16($f) => $fixed,
            Inner::Int32($f) => $fixed,
            Inner::Int64($f) => $fixed,
            Inner::Float32($f) => $fixed,
            Inner::Float64($f) => $fixed,
            Inner::UInt32($f) => $fixed,
            Inner::UInt64($f) => $fixed,
            Inner::Date($f) => $fixed,
            Inner::TimeSecond($f) => $fixed,
            Inner::TimeMillisecond($f) => $fixed,
            Inner::TimeMicrosecond($f) => $fixed,
            Inner::TimestampSecond($f) => $fixed,
            Inner::TimestampMillisecond($f) => $fixed,
            Inner::TimestampMicrosecond($f) => $fixed,
            Inner::Decimal128($f, _, _) => $fixed,
            Inner::Decimal256($f, _, _) => $fixed,
            Inner::Interval($f) => $fixed,
            Inner::List($l) => $list,
        }
    };
}

impl ColumnReader {
    /// The reader for a column of type `ty` under the default value rules; its output type is
    /// `types::arrow_type(ty)`.
    pub fn new(ty: &PgType) -> ColumnReader {
        ColumnReader::with_options(ty, &ValueOptions::default())
    }

    /// The reader for a column of type `ty` under the spec's value rules.
    pub fn with_options(ty: &PgType, rules: &ValueOptions) -> ColumnReader {
        let inner = match ty {
            PgType::Bool => Inner::Bool(BooleanBuilder::new()),
            PgType::Int2 => Inner::Int16(Fixed::new(DataType::Int16)),
            PgType::Int4 => Inner::Int32(Fixed::new(DataType::Int32)),
            PgType::Int8 => Inner::Int64(Fixed::new(DataType::Int64)),
            PgType::Float4 => Inner::Float32(Fixed::new(DataType::Float32)),
            PgType::Float8 => Inner::Float64(Fixed::new(DataType::Float64)),
            PgType::Oid | PgType::Xid => Inner::UInt32(Fixed::new(DataType::UInt32)),
            PgType::Xid8 => Inner::UInt64(Fixed::new(DataType::UInt64)),
            PgType::Text | PgType::ServerText => Inner::Text(BinaryBuilder::new()),
            PgType::Char => Inner::Char(StringBuilder::new()),
            PgType::Numeric => Inner::Numeric(StringBuilder::new()),
            PgType::Bytea => Inner::Bytea(BinaryBuilder::new()),
            PgType::Json => Inner::Json(BinaryBuilder::new()),
            PgType::Jsonb => Inner::Jsonb(BinaryBuilder::new()),
            PgType::Inet => Inner::Inet(BinaryBuilder::new(), String::new()),
            PgType::MacAddr => Inner::MacAddr(BinaryBuilder::new()),
            PgType::MacAddr8 => Inner::MacAddr8(BinaryBuilder::new()),
            PgType::Uuid => Inner::Uuid(FixedSizeBinaryBuilder::new(16)),
            PgType::Date => Inner::Date(Fixed::new(DataType::Date32)),
            PgType::Time { precision } => match time_unit(*precision) {
                TimeUnit::Second => Inner::TimeSecond(Fixed::new(arrow_type(ty))),
                TimeUnit::Millisecond => Inner::TimeMillisecond(Fixed::new(arrow_type(ty))),
                _ => Inner::TimeMicrosecond(Fixed::new(arrow_type(ty))),
            },
            PgType::Timestamp { precision } | PgType::TimestampTz { precision } => {
                match time_unit(*precision) {
                    TimeUnit::Second => Inner::TimestampSecond(Fixed::new(arrow_type(ty))),
                    TimeUnit::Millisecond => {
                        Inner::TimestampMillisecond(Fixed::new(arrow_type(ty)))
                    }
                    _ => Inner::TimestampMicrosecond(Fixed::new(arrow_type(ty))),
                }
            }
            PgType::Decimal { precision, scale } => match arrow_type(ty) {
                t @ DataType::Decimal128(..) => {
                    Inner::Decimal128(Fixed::new(t), *precision, *scale)
                }
                t => Inner::Decimal256(Fixed::new(t), *precision, *scale),
            },
            PgType::Interval => Inner::Interval(Fixed::new(arrow_type(ty))),
            PgType::Array(elem) => Inner::List(Box::new(ListReader::new(elem, rules))),
        };
        ColumnReader {
            inner,
            rules: *rules,
            adjusted: 0,
        }
    }

    /// How many values since the last call were changed (clamped or sent as NULL) because the
    /// column's Arrow type cannot hold them (array elements included); resets the count.
    pub(crate) fn take_adjusted(&mut self) -> u64 {
        let own = std::mem::take(&mut self.adjusted);
        match &mut self.inner {
            Inner::List(l) => own + l.take_adjusted(),
            _ => own,
        }
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        dispatch!(&self.inner, b => b.len(), f => f.len(), l => l.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn append_null(&mut self) {
        dispatch!(&mut self.inner, b => b.append_null(), f => f.append_null(), l => l.append_null())
    }

    /// Append one value in its binary send format.
    pub fn append_value(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        match &mut self.inner {
            Inner::Bool(b) => b.append_value(fixed::<1>(bytes, "bool")?[0] != 0),
            Inner::Int16(b) => b.push(i16::from_be_bytes(fixed(bytes, "int2")?)),
            Inner::Int32(b) => b.push(i32::from_be_bytes(fixed(bytes, "int4")?)),
            Inner::Int64(b) => b.push(i64::from_be_bytes(fixed(bytes, "int8")?)),
            Inner::Float32(b) => b.push(f32::from_be_bytes(fixed(bytes, "float4")?)),
            Inner::Float64(b) => b.push(f64::from_be_bytes(fixed(bytes, "float8")?)),
            Inner::UInt32(b) => b.push(u32::from_be_bytes(fixed(bytes, "oid/xid")?)),
            Inner::UInt64(b) => b.push(u64::from_be_bytes(fixed(bytes, "xid8")?)),
            Inner::Text(b) => b.append_value(bytes),
            Inner::Char(b) => append_char(b, bytes)?,
            Inner::Numeric(b) => {
                // Digits go straight into the builder's value buffer (nothing is written when
                // the value is invalid); the empty append closes the value.
                write_numeric(bytes, b)?;
                b.append_value("");
            }
            Inner::Bytea(b) => b.append_value(bytes),
            Inner::Json(b) => b.append_value(bytes),
            Inner::Jsonb(b) => b.append_value(jsonb_body(bytes)?),
            Inner::Inet(b, scratch) => {
                scratch.clear();
                write_inet(bytes, scratch)?;
                b.append_value(scratch.as_bytes());
            }
            Inner::MacAddr(b) => b.append_value(fixed::<6>(bytes, "macaddr")?),
            Inner::MacAddr8(b) => b.append_value(fixed::<8>(bytes, "macaddr8")?),
            Inner::Uuid(b) => {
                let uuid = fixed::<16>(bytes, "uuid")?;
                // Cannot fail: the builder was made for width 16 and `uuid` has 16 bytes.
                b.append_value(uuid).map_err(|source| DecodeError::Arrow {
                    what: "uuid value",
                    source,
                })?;
            }
            Inner::Date(b) => {
                let days = i32::from_be_bytes(fixed(bytes, "date")?);
                let ruled = self.rules.date(days)?.map(|d| d + PG_EPOCH_DAYS);
                push_ruled(b, &mut self.adjusted, ruled);
            }
            Inner::TimeSecond(b) => b.push(time_usecs(bytes)?.div_euclid(USECS_PER_SEC) as i32),
            Inner::TimeMillisecond(b) => b.push(time_usecs(bytes)?.div_euclid(1000) as i32),
            Inner::TimeMicrosecond(b) => b.push(time_usecs(bytes)?),
            Inner::TimestampSecond(b) => {
                let ruled = self.rules.timestamp(ts(bytes)?)?;
                let ruled = ruled.map(|us| timestamp_to_unix(us, TimeUnit::Second));
                push_ruled(b, &mut self.adjusted, ruled);
            }
            Inner::TimestampMillisecond(b) => {
                let ruled = self.rules.timestamp(ts(bytes)?)?;
                let ruled = ruled.map(|us| timestamp_to_unix(us, TimeUnit::Millisecond));
                push_ruled(b, &mut self.adjusted, ruled);
            }
            Inner::TimestampMicrosecond(b) => {
                let ruled = self.rules.timestamp(ts(bytes)?)?;
                let ruled = ruled.map(|us| timestamp_to_unix(us, TimeUnit::Microsecond));
                push_ruled(b, &mut self.adjusted, ruled);
            }
            Inner::Decimal128(b, p, s) => {
                let ruled = match numeric_unscaled::<i128>(bytes, *p, *s)? {
                    Some(v) => Ruled::Exact(v),
                    None => Ruled::Adjusted(None),
                };
                push_ruled(b, &mut self.adjusted, ruled);
            }
            Inner::Decimal256(b, p, s) => {
                let ruled = match numeric_unscaled::<i256>(bytes, *p, *s)? {
                    Some(v) => Ruled::Exact(v),
                    None => Ruled::Adjusted(None),
                };
                push_ruled(b, &mut self.adjusted, ruled);
            }
            Inner::Interval(b) => {
                let ruled = interval_value(bytes, &self.rules)?;
                push_ruled(b, &mut self.adjusted, ruled);
            }
            Inner::List(l) => l.append_value(bytes)?,
        }
        Ok(())
    }

    /// The values appended since the last call, as one Arrow array; the reader starts afresh.
    ///
    /// The next batch's builder starts with this batch's capacity (rows and value bytes), so a
    /// steady stream of batches allocates once per column and batch instead of regrowing (and
    /// copying) from Arrow's small default every time.
    pub fn finish(&mut self) -> Result<ArrayRef, DecodeError> {
        Ok(match &mut self.inner {
            Inner::Bool(b) => {
                let rows = b.len();
                let array = b.finish();
                *b = BooleanBuilder::with_capacity(rows);
                Arc::new(array)
            }
            Inner::Text(b) => finish_text(b, "text")?,
            Inner::Json(b) => finish_json(b, "json")?,
            Inner::Jsonb(b) => finish_json(b, "jsonb")?,
            Inner::Char(b) | Inner::Numeric(b) => finish_bytes(b),
            Inner::Bytea(b) | Inner::Inet(b, _) => finish_bytes(b),
            Inner::MacAddr(b) | Inner::MacAddr8(b) => finish_bytes(b),
            Inner::Uuid(b) => {
                let rows = b.len();
                let array = b.finish();
                *b = FixedSizeBinaryBuilder::with_capacity(rows, 16);
                Arc::new(array)
            }
            other => dispatch!(
                other,
                b => Arc::new(b.finish()) as ArrayRef,
                f => f.finish()?,
                l => l.finish()?
            ),
        })
    }
}

/// Finishes a string or binary builder and replaces it with one of the same capacity.
fn finish_bytes<T: ByteArrayType>(b: &mut GenericByteBuilder<T>) -> ArrayRef {
    let (rows, bytes) = (b.len(), b.values_slice().len());
    let array = b.finish();
    *b = GenericByteBuilder::with_capacity(rows, bytes);
    Arc::new(array)
}

/// `"char"`: see the module docs.
fn append_char(b: &mut StringBuilder, bytes: &[u8]) -> Result<(), DecodeError> {
    let [c] = fixed::<1>(bytes, "\"char\"")?;
    let mut buf = [0u8; 4];
    let text: &[u8] = match c {
        0 => &[],
        0x01..=0x7f => {
            buf[0] = c;
            &buf[..1]
        }
        _ => {
            buf = [
                b'\\',
                b'0' + (c >> 6),
                b'0' + ((c >> 3) & 7),
                b'0' + (c & 7),
            ];
            &buf
        }
    };
    b.append_value(utf8(text, "\"char\"")?);
    Ok(())
}

/// jsonb_send: a version byte (1) followed by the JSON text (its UTF-8 is checked in `finish`).
fn jsonb_body(bytes: &[u8]) -> Result<&[u8], DecodeError> {
    match bytes.split_first() {
        Some((1, text)) => Ok(text),
        Some((&v, _)) => Err(DecodeError::Invalid {
            what: "jsonb version",
            expected: "1",
            found: i64::from(v),
        }),
        None => Err(DecodeError::Truncated {
            what: "jsonb version",
            needed: 1,
            available: 0,
        }),
    }
}

/// Text columns are collected as raw bytes and checked for UTF-8 once per batch: one pass over
/// the batch's value buffer plus a char-boundary test at every value offset, which holds exactly
/// when every value on its own is valid UTF-8. Checking each value as it arrived cost a tenth
/// of the plugin's instructions on `mixed9` (callgrind), most of it per-call overhead on short
/// strings. The whole batch fails if one value is invalid; the error names the first such
/// value's valid prefix, as a per-value check would. (PostgreSQL converts text to the UTF8
/// client encoding and refuses invalid bytes itself, even from a `SQL_ASCII` database, so this
/// guards against a misbehaving server, never against ordinary data.)
fn finish_text(b: &mut BinaryBuilder, what: &'static str) -> Result<ArrayRef, DecodeError> {
    let binary = finish_binary(b);
    match StringArray::try_from_binary(binary.clone()) {
        Ok(text) => Ok(Arc::new(text)),
        Err(e) => Err(first_invalid_utf8(&binary, what, e)),
    }
}

/// json/jsonb keep their binary storage type; the UTF-8 check is the same as [`finish_text`].
fn finish_json(b: &mut BinaryBuilder, what: &'static str) -> Result<ArrayRef, DecodeError> {
    let binary = finish_binary(b);
    if let Err(e) = StringArray::try_from_binary(binary.clone()) {
        return Err(first_invalid_utf8(&binary, what, e));
    }
    Ok(Arc::new(binary))
}

fn finish_binary(b: &mut BinaryBuilder) -> BinaryArray {
    let (rows, bytes) = (b.len(), b.values_slice().len());
    let array = b.finish();
    *b = BinaryBuilder::with_capacity(rows, bytes);
    array
}

/// The error path of the batch check: find the first invalid value to report it precisely.
fn first_invalid_utf8(a: &BinaryArray, what: &'static str, e: ArrowError) -> DecodeError {
    a.iter()
        .flatten()
        .find_map(|v| std::str::from_utf8(v).err())
        .map(|u| DecodeError::InvalidUtf8 {
            what,
            valid_up_to: u.valid_up_to(),
        })
        .unwrap_or(DecodeError::Arrow {
            what: "text column",
            source: e,
        })
}

/// Appends what a value rule made of a value; counts the values changed because the type
/// cannot hold them.
fn push_ruled<T: ArrowPrimitiveType>(b: &mut Fixed<T>, adjusted: &mut u64, v: Ruled<T::Native>) {
    match v {
        Ruled::Exact(v) | Ruled::Chosen(Some(v)) => b.push(v),
        Ruled::Chosen(None) => b.append_null(),
        Ruled::Adjusted(v) => {
            *adjusted += 1;
            match v {
                Some(v) => b.push(v),
                None => b.append_null(),
            }
        }
    }
}

fn time_usecs(bytes: &[u8]) -> Result<i64, DecodeError> {
    let us = i64::from_be_bytes(fixed(bytes, "time")?);
    if (0..=USECS_PER_DAY).contains(&us) {
        Ok(us)
    } else {
        Err(DecodeError::Invalid {
            what: "time",
            expected: "0..=86400000000 µs since midnight",
            found: us,
        })
    }
}

fn ts(bytes: &[u8]) -> Result<i64, DecodeError> {
    Ok(i64::from_be_bytes(fixed(bytes, "timestamp")?))
}

/// µs since 2000-01-01 → `unit` since 1970-01-01 (the value rules have bounded it to the years
/// 1–9999, so nothing overflows; saturating all the same).
pub(crate) fn timestamp_to_unix(pg_usecs: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => pg_usecs
            .div_euclid(USECS_PER_SEC)
            .saturating_add(PG_EPOCH_SECS),
        TimeUnit::Millisecond => pg_usecs
            .div_euclid(1000)
            .saturating_add(PG_EPOCH_SECS * 1000),
        _ => pg_usecs.saturating_add(PG_EPOCH_SECS * USECS_PER_SEC),
    }
}
