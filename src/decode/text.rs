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

use std::net::{Ipv4Addr, Ipv6Addr};

use super::error::DecodeError;
use super::types::PgType;

/// Julian day number of 2000-01-01, PostgreSQL's epoch (`POSTGRES_EPOCH_JDATE`).
const POSTGRES_EPOCH_JDATE: i64 = 2_451_545;
const USECS_PER_SEC: i64 = 1_000_000;
const USECS_PER_DAY: i64 = 86_400 * USECS_PER_SEC;
/// PostgreSQL's MAXDIM.
const MAX_ARRAY_DIMS: usize = 6;

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;
/// numeric_recv accepts display scales up to this (NUMERIC_DSCALE_MASK).
const NUMERIC_MAX_DSCALE: usize = 0x3FFF;

const PGSQL_AF_INET: u8 = 2;
const PGSQL_AF_INET6: u8 = 3;

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

fn err(what: &'static str, expected: &'static str, offset: usize) -> DecodeError {
    DecodeError::Invalid {
        what,
        expected,
        found: i64::try_from(offset).unwrap_or(i64::MAX),
    }
}

fn utf8<'a>(text: &'a [u8], what: &'static str) -> Result<&'a str, DecodeError> {
    std::str::from_utf8(text).map_err(|e| DecodeError::InvalidUtf8 {
        what,
        valid_up_to: e.valid_up_to(),
    })
}

fn convert(ty: &PgType, text: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
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

fn parse_int<T: std::str::FromStr>(text: &[u8], what: &'static str) -> Result<T, DecodeError> {
    // FromStr accepts a leading '+', which int*in also accepts; everything else must be digits.
    let s = utf8(text, what)?;
    s.parse::<T>()
        .map_err(|_| err(what, "a decimal integer in the type's range", 0))
}

fn parse_float<T: std::str::FromStr + SpecialFloat>(
    text: &[u8],
    what: &'static str,
) -> Result<T, DecodeError> {
    match text {
        b"NaN" => return Ok(T::NAN),
        b"Infinity" => return Ok(T::INFINITY),
        b"-Infinity" => return Ok(T::NEG_INFINITY),
        _ => {}
    }
    // Rust's parser would also take "inf" or "nan" spelled other ways; PostgreSQL never prints
    // them, so anything but digits, sign, point and exponent is rejected first.
    if let Some(i) = text
        .iter()
        .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        return Err(err(what, "a decimal number, NaN, Infinity or -Infinity", i));
    }
    let s = utf8(text, what)?;
    // float4/float8 output with extra_float_digits > 0 is the shortest text that reads back to
    // the same value, so a correctly rounding parser (Rust's is) restores the exact bits.
    s.parse::<T>()
        .map_err(|_| err(what, "a decimal number, NaN, Infinity or -Infinity", 0))
}

trait SpecialFloat {
    const NAN: Self;
    const INFINITY: Self;
    const NEG_INFINITY: Self;
}

impl SpecialFloat for f32 {
    const NAN: f32 = f32::NAN;
    const INFINITY: f32 = f32::INFINITY;
    const NEG_INFINITY: f32 = f32::NEG_INFINITY;
}

impl SpecialFloat for f64 {
    const NAN: f64 = f64::NAN;
    const INFINITY: f64 = f64::INFINITY;
    const NEG_INFINITY: f64 = f64::NEG_INFINITY;
}

/// `"char"`: charout prints the byte itself, nothing for `\0`, and (PostgreSQL ≥ 15) `\ooo` for
/// a byte with the high bit set. charsend always sends exactly one byte.
fn parse_char(text: &[u8]) -> Result<u8, DecodeError> {
    match text {
        [] => Ok(0),
        [c] => Ok(*c),
        [b'\\', a, b, c] => octal3(*a, *b, *c).ok_or(err("\"char\" text", "\\ooo octal", 1)),
        _ => Err(err("\"char\" text", "one byte or \\ooo", 0)),
    }
}

fn octal3(a: u8, b: u8, c: u8) -> Option<u8> {
    let d = |x: u8| matches!(x, b'0'..=b'7').then(|| u32::from(x - b'0'));
    let v = d(a)? * 64 + d(b)? * 8 + d(c)?;
    u8::try_from(v).ok()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn parse_bytea(text: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    const WHAT: &str = "bytea text";
    if let Some(hex) = text.strip_prefix(b"\\x") {
        if hex.len() % 2 != 0 {
            return Err(err(
                WHAT,
                "an even number of hex digits after \\x",
                text.len(),
            ));
        }
        out.reserve(hex.len() / 2);
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            match (hex_val(pair[0]), hex_val(pair[1])) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err(err(WHAT, "hex digits after \\x", 2 + 2 * i)),
            }
        }
        return Ok(());
    }
    // Escape format (bytea_output = escape): `\\` is a backslash, `\ooo` an octal byte.
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        match text.get(i + 1..i + 4) {
            Some([b'\\', ..]) => {
                out.push(b'\\');
                i += 2;
            }
            Some(&[a, b, c]) => {
                let v = octal3(a, b, c).ok_or(err(WHAT, "\\\\ or \\ooo in escape format", i))?;
                out.push(v);
                i += 4;
            }
            _ => {
                if text.get(i + 1) == Some(&b'\\') {
                    out.push(b'\\');
                    i += 2;
                } else {
                    return Err(err(WHAT, "\\\\ or \\ooo in escape format", i));
                }
            }
        }
    }
    Ok(())
}

fn parse_uuid(text: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    const WHAT: &str = "uuid text";
    // uuid_out: 8-4-4-4-12 lower-case hex digits.
    if text.len() != 36 {
        return Err(err(WHAT, "36 characters (8-4-4-4-12 hex digits)", 0));
    }
    let mut nibbles = Vec::with_capacity(32);
    for (i, &b) in text.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b != b'-' {
                return Err(err(WHAT, "'-' between the groups", i));
            }
        } else {
            nibbles.push(hex_val(b).ok_or(err(WHAT, "hex digits", i))?);
        }
    }
    out.extend(nibbles.chunks_exact(2).map(|p| p[0] << 4 | p[1]));
    Ok(())
}

fn parse_inet(text: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    const WHAT: &str = "inet text";
    let s = utf8(text, WHAT)?;
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => {
            let bits: u8 = b
                .parse()
                .map_err(|_| err(WHAT, "a prefix length after '/'", a.len() + 1))?;
            (a, Some(bits))
        }
        None => (s, None),
    };
    if addr.contains(':') {
        let ip: Ipv6Addr = addr.parse().map_err(|_| err(WHAT, "an IPv6 address", 0))?;
        let bits = bits.unwrap_or(128);
        if bits > 128 {
            return Err(err(WHAT, "a prefix length of at most 128", addr.len() + 1));
        }
        out.extend_from_slice(&[PGSQL_AF_INET6, bits, 0, 16]);
        out.extend_from_slice(&ip.octets());
    } else {
        let ip: Ipv4Addr = addr.parse().map_err(|_| err(WHAT, "an IPv4 address", 0))?;
        let bits = bits.unwrap_or(32);
        if bits > 32 {
            return Err(err(WHAT, "a prefix length of at most 32", addr.len() + 1));
        }
        out.extend_from_slice(&[PGSQL_AF_INET, bits, 0, 4]);
        out.extend_from_slice(&ip.octets());
    }
    Ok(())
}

fn parse_mac<const N: usize>(
    text: &[u8],
    what: &'static str,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    // macaddr_out / macaddr8_out: two lower-case hex digits per byte, ':' between them.
    if text.len() != N * 3 - 1 {
        return Err(err(what, "hex byte pairs separated by ':'", 0));
    }
    for i in 0..N {
        let p = i * 3;
        if i > 0 && !matches!(text[p - 1], b':' | b'-') {
            return Err(err(what, "':' between the bytes", p - 1));
        }
        match (hex_val(text[p]), hex_val(text[p + 1])) {
            (Some(h), Some(l)) => out.push(h << 4 | l),
            _ => return Err(err(what, "hex digits", p)),
        }
    }
    Ok(())
}

/// PostgreSQL's date2j: the Julian day number of a proleptic Gregorian date whose year is
/// astronomical (1 BC = 0).
fn date2j(year: i64, month: i64, day: i64) -> i64 {
    let (m, y) = if month > 2 {
        (month + 1, year + 4800)
    } else {
        (month + 13, year + 4799)
    };
    let century = y.div_euclid(100);
    let mut julian = y * 365 - 32167;
    julian += y.div_euclid(4) - century + century.div_euclid(4);
    julian += 7834 * m / 256 + day;
    julian
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Parses `YYYY-MM-DD` (year of any length ≥ 1) at the start of `s`; returns the day count
/// since 2000-01-01 for the given era and the number of bytes consumed.
fn parse_ymd(s: &str, bc: bool, what: &'static str) -> Result<(i64, usize), DecodeError> {
    let b = s.as_bytes();
    let year_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if year_len == 0 || year_len > 9 {
        return Err(err(what, "a year of 1 to 9 digits", 0));
    }
    let year: i64 = s[..year_len].parse().map_err(|_| err(what, "a year", 0))?;
    let rest = &b[year_len..];
    let two = |at: usize| -> Option<i64> {
        let d = rest.get(at..at + 2)?;
        if d.iter().all(u8::is_ascii_digit) {
            Some(i64::from(d[0] - b'0') * 10 + i64::from(d[1] - b'0'))
        } else {
            None
        }
    };
    if rest.first() != Some(&b'-') || rest.get(3) != Some(&b'-') {
        return Err(err(what, "YYYY-MM-DD", year_len));
    }
    let month = two(1).ok_or(err(what, "a two-digit month", year_len + 1))?;
    let day = two(4).ok_or(err(what, "a two-digit day", year_len + 4))?;
    if year == 0 {
        return Err(err(what, "a year ≥ 1 (BC is a suffix)", 0));
    }
    // ISO output writes years before 1 AD as `YYYY … BC` with 1 BC = year 0.
    let astro = if bc { 1 - year } else { year };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(astro) => 29,
        2 => 28,
        _ => return Err(err(what, "a month 01-12", year_len + 1)),
    };
    if !(1..=days_in_month).contains(&day) {
        return Err(err(what, "a day that exists in that month", year_len + 4));
    }
    Ok((
        date2j(astro, month, day) - POSTGRES_EPOCH_JDATE,
        year_len + 6,
    ))
}

fn parse_date_value(text: &[u8]) -> Result<i32, DecodeError> {
    const WHAT: &str = "date text";
    let s = utf8(text, WHAT)?;
    match s {
        "infinity" => return Ok(i32::MAX),
        "-infinity" => return Ok(i32::MIN),
        _ => {}
    }
    let (body, bc) = match s.strip_suffix(" BC") {
        Some(b) => (b, true),
        None => (s, false),
    };
    let (days, used) = parse_ymd(body, bc, WHAT)?;
    if used != body.len() {
        return Err(err(WHAT, "nothing after the day but ' BC'", used));
    }
    i32::try_from(days).map_err(|_| err(WHAT, "a date in PostgreSQL's range", 0))
}

/// `HH:MM:SS[.ffffff]` → µs since midnight (`24:00:00` allowed, as time_out prints it).
/// `base` is the offset of `s` in the value, for error positions.
fn parse_time(s: &str, base: usize, what: &'static str) -> Result<i64, DecodeError> {
    let b = s.as_bytes();
    let two = |at: usize| -> Option<i64> {
        let d = b.get(at..at + 2)?;
        if d.iter().all(u8::is_ascii_digit) {
            Some(i64::from(d[0] - b'0') * 10 + i64::from(d[1] - b'0'))
        } else {
            None
        }
    };
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return Err(err(what, "HH:MM:SS", base));
    }
    let h = two(0).ok_or(err(what, "two-digit hours", base))?;
    let m = two(3).ok_or(err(what, "two-digit minutes", base + 3))?;
    let sec = two(6).ok_or(err(what, "two-digit seconds", base + 6))?;
    let mut frac = 0i64;
    if b.len() > 8 {
        let digits = &b[9..];
        if b[8] != b'.' || digits.is_empty() || digits.len() > 6 {
            return Err(err(what, "at most 6 fraction digits after '.'", base + 8));
        }
        for (i, &d) in digits.iter().enumerate() {
            if !d.is_ascii_digit() {
                return Err(err(what, "fraction digits", base + 9 + i));
            }
            frac = frac * 10 + i64::from(d - b'0');
        }
        for _ in digits.len()..6 {
            frac *= 10;
        }
    }
    if m > 59 || sec > 59 {
        return Err(err(what, "minutes and seconds below 60", base));
    }
    let us = ((h * 60 + m) * 60 + sec) * USECS_PER_SEC + frac;
    if us > USECS_PER_DAY {
        return Err(err(what, "a time of day up to 24:00:00", base));
    }
    Ok(us)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff][±HH[:MM[:SS]]][ BC]` → µs since 2000-01-01 00:00:00 (UTC for
/// timestamptz: the offset is subtracted).
fn parse_timestamp(text: &[u8], with_zone: bool) -> Result<i64, DecodeError> {
    let what = if with_zone {
        "timestamptz text"
    } else {
        "timestamp text"
    };
    let s = utf8(text, what)?;
    match s {
        "infinity" => return Ok(i64::MAX),
        "-infinity" => return Ok(i64::MIN),
        _ => {}
    }
    let (body, bc) = match s.strip_suffix(" BC") {
        Some(b) => (b, true),
        None => (s, false),
    };
    let (days, used) = parse_ymd(body, bc, what)?;
    if body.as_bytes().get(used) != Some(&b' ') {
        return Err(err(what, "a space between date and time", used));
    }
    let rest = &body[used + 1..];
    let time_start = used + 1;
    let (time, offset_secs) = if with_zone {
        let Some(z) = rest.find(['+', '-']) else {
            return Err(err(what, "a zone offset such as +00", body.len()));
        };
        let (t, zone) = rest.split_at(z);
        (t, parse_offset(zone, time_start + z, what)?)
    } else {
        (rest, 0)
    };
    let us = parse_time(time, time_start, what)?;
    days.checked_mul(USECS_PER_DAY)
        .and_then(|d| d.checked_add(us))
        .and_then(|t| t.checked_sub(offset_secs * USECS_PER_SEC))
        // ±infinity are the two extreme values; a finite timestamp never reaches them.
        .filter(|t| *t != i64::MAX && *t != i64::MIN)
        .ok_or(err(what, "a timestamp in PostgreSQL's range", 0))
}

/// `±HH[:MM[:SS]]` → seconds east of UTC.
fn parse_offset(zone: &str, base: usize, what: &'static str) -> Result<i64, DecodeError> {
    let b = zone.as_bytes();
    let sign = match b.first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(err(what, "a zone offset starting with + or -", base)),
    };
    let mut total = 0i64;
    let mut parts = 0;
    for (i, part) in zone[1..].split(':').enumerate() {
        let pb = part.as_bytes();
        if pb.len() != 2 || !pb.iter().all(u8::is_ascii_digit) || i > 2 {
            return Err(err(what, "a zone offset ±HH[:MM[:SS]]", base));
        }
        let v = i64::from(pb[0] - b'0') * 10 + i64::from(pb[1] - b'0');
        total = total * 60 + v;
        parts += 1;
    }
    for _ in parts..3 {
        total *= 60;
    }
    Ok(sign * total)
}

/// numeric_out text → numeric_send: i16 ndigits, i16 weight, u16 sign, u16 dscale, then the
/// base-10000 digits with leading and trailing zero digits stripped (as PostgreSQL stores them).
fn parse_numeric(text: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    const WHAT: &str = "numeric text";
    let special = |sign: u16, out: &mut Vec<u8>| {
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&sign.to_be_bytes());
        // numeric_send reads the display scale of a special value through the short-header
        // mask, which yields 32 for ±Infinity (header bits 0x1000) and 0 for NaN; copied so
        // the bytes equal the server's (readers ignore it).
        let dscale: u16 = if sign == NUMERIC_NAN { 0 } else { 32 };
        out.extend_from_slice(&dscale.to_be_bytes());
    };
    match text {
        b"NaN" => {
            special(NUMERIC_NAN, out);
            return Ok(());
        }
        b"Infinity" => {
            special(NUMERIC_PINF, out);
            return Ok(());
        }
        b"-Infinity" => {
            special(NUMERIC_NINF, out);
            return Ok(());
        }
        _ => {}
    }
    let (neg, body, body_at) = match text.split_first() {
        Some((b'-', rest)) => (true, rest, 1),
        Some((b'+', rest)) => (false, rest, 1),
        _ => (false, text, 0),
    };
    let (int_part, frac_part) = match body.iter().position(|&b| b == b'.') {
        Some(p) => (&body[..p], &body[p + 1..]),
        None => (body, &body[..0]),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(err(WHAT, "digits, NaN, Infinity or -Infinity", body_at));
    }
    if let Some(i) = int_part.iter().position(|b| !b.is_ascii_digit()) {
        return Err(err(WHAT, "decimal digits", body_at + i));
    }
    if let Some(i) = frac_part.iter().position(|b| !b.is_ascii_digit()) {
        return Err(err(
            WHAT,
            "decimal digits",
            body_at + int_part.len() + 1 + i,
        ));
    }
    let dscale = frac_part.len();
    if dscale > NUMERIC_MAX_DSCALE {
        return Err(err(WHAT, "at most 16383 digits after the point", body_at));
    }
    // Skip leading zeros of the integer part; group the rest in fours from the point outwards.
    let int_part = &int_part[int_part.iter().take_while(|&&b| b == b'0').count()..];
    let int_groups = int_part.len().div_ceil(4);
    let frac_groups = frac_part.len().div_ceil(4);
    let digit = |i: usize| -> i16 {
        // Decimal digit i of the concatenation "<int padded left to 4k><frac padded right to 4m>".
        let pad = int_groups * 4 - int_part.len();
        let d = if i < int_groups * 4 {
            i.checked_sub(pad).and_then(|j| int_part.get(j))
        } else {
            frac_part.get(i - int_groups * 4)
        };
        d.map_or(0, |c| i16::from(c - b'0'))
    };
    let mut groups: Vec<i16> = (0..int_groups + frac_groups)
        .map(|g| (0..4).fold(0i16, |acc, k| acc * 10 + digit(g * 4 + k)))
        .collect();
    let mut weight = i64::try_from(int_groups).unwrap_or(i64::MAX) - 1;
    let lead = groups.iter().take_while(|&&g| g == 0).count();
    groups.drain(..lead);
    weight -= i64::try_from(lead).unwrap_or(0);
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let sign = if groups.is_empty() {
        // Zero: make_result stores no digits, weight 0 and a positive sign (also for "-0").
        weight = 0;
        NUMERIC_POS
    } else if neg {
        NUMERIC_NEG
    } else {
        NUMERIC_POS
    };
    let ndigits = i16::try_from(groups.len()).map_err(|_| err(WHAT, "a representable value", 0))?;
    let weight = i16::try_from(weight).map_err(|_| err(WHAT, "a representable value", 0))?;
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(dscale as u16).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    Ok(())
}

/// The OID array_send writes for elements of `ty` (see the module docs for the canonical
/// choices where one PgType stands for several PostgreSQL types).
fn element_oid(ty: &PgType) -> u32 {
    match ty {
        PgType::Bool => 16,
        PgType::Bytea => 17,
        PgType::Char => 18,
        PgType::Int8 => 20,
        PgType::Int2 => 21,
        PgType::Int4 => 23,
        PgType::Text | PgType::ServerText => 25,
        PgType::Oid => 26,
        PgType::Xid => 28,
        PgType::Json => 114,
        PgType::Float4 => 700,
        PgType::Float8 => 701,
        PgType::MacAddr8 => 774,
        PgType::MacAddr => 829,
        PgType::Inet => 869,
        PgType::Date => 1082,
        PgType::Time { .. } => 1083,
        PgType::Timestamp { .. } => 1114,
        PgType::TimestampTz { .. } => 1184,
        PgType::Numeric | PgType::Decimal { .. } => 1700,
        PgType::Interval => 1186,
        PgType::Uuid => 2950,
        PgType::Jsonb => 3802,
        PgType::Xid8 => 5069,
        // Not a valid element type; parse_array rejects it before this matters.
        PgType::Array(_) => 0,
    }
}

/// Array literal (array_out) → array_send: i32 ndim, i32 has-null flag, u32 element OID, per
/// dimension i32 length + i32 lower bound, then every element (row-major) as i32 length (-1 for
/// NULL) + its own send format.
fn parse_array(elem: &PgType, text: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    const WHAT: &str = "array text";
    if matches!(elem, PgType::Array(_)) {
        return Err(err(WHAT, "an element type that is not itself an array", 0));
    }
    let mut p = ArrayParser {
        text,
        pos: 0,
        elem,
        scratch: Vec::new(),
        has_null: false,
    };
    // Optional dimension decoration `[lb:ub][lb:ub]=` (array_out writes it when a lower bound
    // is not 1).
    let mut decorated: Vec<(i32, i32)> = Vec::new();
    p.skip_ws();
    while p.peek() == Some(b'[') {
        p.pos += 1;
        let lb = p.int()?;
        p.expect(b':', "':' in a dimension decoration")?;
        let ub = p.int()?;
        p.expect(b']', "']' closing a dimension decoration")?;
        decorated.push((lb, ub));
        if decorated.len() > MAX_ARRAY_DIMS {
            return Err(err(WHAT, "at most 6 dimensions", p.pos));
        }
    }
    if !decorated.is_empty() {
        p.expect(b'=', "'=' after the dimension decoration")?;
        p.skip_ws();
    }
    // The number of leading braces is the number of dimensions (`{}` alone is the empty array).
    let ndim = text[p.pos..]
        .iter()
        .take_while(|&&b| b == b'{' || b.is_ascii_whitespace())
        .filter(|&&b| b == b'{')
        .count();
    if ndim == 0 {
        return Err(err(WHAT, "'{'", p.pos));
    }
    if ndim > MAX_ARRAY_DIMS {
        return Err(err(WHAT, "at most 6 dimensions", p.pos));
    }
    let start = out.len();
    let header_len = 12 + 8 * ndim;
    out.resize(start + header_len, 0);
    let mut dims: Vec<Option<i32>> = vec![None; ndim];
    let empty = p.level(0, ndim, &mut dims, out)?;
    p.skip_ws();
    if p.pos != text.len() {
        return Err(err(WHAT, "nothing after the closing '}'", p.pos));
    }
    if empty {
        // `{}`: array_send writes ndim 0 and no dimensions.
        if !decorated.is_empty() {
            return Err(err(WHAT, "no dimension decoration on an empty array", 0));
        }
        out.truncate(start);
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&element_oid(elem).to_be_bytes());
        return Ok(());
    }
    if !decorated.is_empty() && decorated.len() != ndim {
        return Err(err(
            WHAT,
            "as many decorated dimensions as nested braces",
            0,
        ));
    }
    let mut header = Vec::with_capacity(header_len);
    header.extend_from_slice(&i32::try_from(ndim).unwrap_or(0).to_be_bytes());
    header.extend_from_slice(&i32::from(p.has_null).to_be_bytes());
    header.extend_from_slice(&element_oid(elem).to_be_bytes());
    for (d, len) in dims.iter().enumerate() {
        let len = len.unwrap_or(0);
        let lb = match decorated.get(d) {
            Some(&(lb, ub)) => {
                if i64::from(ub) - i64::from(lb) + 1 != i64::from(len) {
                    return Err(err(WHAT, "decorated bounds matching the element count", 0));
                }
                lb
            }
            None => 1,
        };
        header.extend_from_slice(&len.to_be_bytes());
        header.extend_from_slice(&lb.to_be_bytes());
    }
    out[start..start + header_len].copy_from_slice(&header);
    Ok(())
}

struct ArrayParser<'a> {
    text: &'a [u8],
    pos: usize,
    elem: &'a PgType,
    /// One element's unescaped text, reused.
    scratch: Vec<u8>,
    has_null: bool,
}

impl ArrayParser<'_> {
    const WHAT: &'static str = "array text";

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8, expected: &'static str) -> Result<(), DecodeError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(err(Self::WHAT, expected, self.pos))
        }
    }

    fn int(&mut self) -> Result<i32, DecodeError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        std::str::from_utf8(&self.text[start..self.pos])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(err(Self::WHAT, "an integer bound", start))
    }

    /// One `{…}` at nesting `depth`; returns true for `{}` at depth 0 (the empty array).
    fn level(
        &mut self,
        depth: usize,
        ndim: usize,
        dims: &mut [Option<i32>],
        out: &mut Vec<u8>,
    ) -> Result<bool, DecodeError> {
        self.skip_ws();
        self.expect(b'{', "'{'")?;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            if depth == 0 && ndim == 1 {
                self.pos += 1;
                return Ok(true);
            }
            return Err(err(Self::WHAT, "no empty sub-array", self.pos));
        }
        let mut count: i32 = 0;
        loop {
            if depth + 1 < ndim {
                self.level(depth + 1, ndim, dims, out)?;
            } else {
                self.element(out)?;
            }
            count = count
                .checked_add(1)
                .ok_or(err(Self::WHAT, "fewer elements", self.pos))?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(err(Self::WHAT, "',' or '}'", self.pos)),
            }
        }
        let slot = dims
            .get_mut(depth)
            .ok_or(err(Self::WHAT, "consistent nesting", self.pos))?;
        match slot {
            None => *slot = Some(count),
            Some(n) if *n == count => {}
            Some(_) => {
                return Err(err(
                    Self::WHAT,
                    "sub-arrays of matching dimensions",
                    self.pos,
                ))
            }
        }
        Ok(false)
    }

    /// One element, quoted or not, converted and written with its length prefix.
    fn element(&mut self, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        self.skip_ws();
        self.scratch.clear();
        let start = self.pos;
        let mut quoted = false;
        let mut escaped = false;
        if self.peek() == Some(b'"') {
            quoted = true;
            self.pos += 1;
            loop {
                match self.peek() {
                    None => return Err(err(Self::WHAT, "a closing '\"'", start)),
                    Some(b'"') => {
                        self.pos += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let c = self.text.get(self.pos + 1).copied().ok_or(err(
                            Self::WHAT,
                            "a character after '\\'",
                            self.pos,
                        ))?;
                        self.scratch.push(c);
                        self.pos += 2;
                    }
                    Some(c) => {
                        self.scratch.push(c);
                        self.pos += 1;
                    }
                }
            }
        } else {
            // Unquoted: up to the next unescaped ',' or '}', trailing whitespace dropped.
            let mut keep = 0;
            loop {
                match self.peek() {
                    None => return Err(err(Self::WHAT, "',' or '}'", self.pos)),
                    Some(b',' | b'}') => break,
                    Some(b'{' | b'"') => {
                        return Err(err(Self::WHAT, "'{' or '\"' only where allowed", self.pos))
                    }
                    Some(b'\\') => {
                        let c = self.text.get(self.pos + 1).copied().ok_or(err(
                            Self::WHAT,
                            "a character after '\\'",
                            self.pos,
                        ))?;
                        self.scratch.push(c);
                        escaped = true;
                        self.pos += 2;
                        keep = self.scratch.len();
                    }
                    Some(c) => {
                        self.scratch.push(c);
                        self.pos += 1;
                        if !c.is_ascii_whitespace() {
                            keep = self.scratch.len();
                        }
                    }
                }
            }
            self.scratch.truncate(keep);
            if self.scratch.is_empty() {
                return Err(err(Self::WHAT, "an element", start));
            }
        }
        if !quoted && !escaped && self.scratch.eq_ignore_ascii_case(b"NULL") {
            self.has_null = true;
            out.extend_from_slice(&(-1i32).to_be_bytes());
            return Ok(());
        }
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        // Element errors are reported as they are (their offset is within the element).
        convert(self.elem, &self.scratch, out)?;
        let len = i32::try_from(out.len() - len_at - 4)
            .map_err(|_| err(Self::WHAT, "elements under 2 GiB", start))?;
        out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(ty: &PgType, text: &str) -> Result<Vec<u8>, DecodeError> {
        let mut out = vec![0xAA];
        let r = text_to_binary(ty, text.as_bytes(), &mut out);
        match r {
            Ok(()) => Ok(out[1..].to_vec()),
            Err(e) => {
                assert_eq!(out, vec![0xAA], "out restored on error for {text:?}");
                Err(e)
            }
        }
    }

    fn bad(ty: &PgType, text: &str) {
        assert!(bin(ty, text).is_err(), "{ty:?} {text:?} should fail");
    }

    #[test]
    fn scalars() {
        assert_eq!(bin(&PgType::Bool, "t").unwrap(), [1]);
        assert_eq!(
            bin(&PgType::Int2, "-32768").unwrap(),
            (-32768i16).to_be_bytes()
        );
        assert_eq!(
            bin(&PgType::Int8, "9223372036854775807").unwrap(),
            i64::MAX.to_be_bytes()
        );
        assert_eq!(
            bin(&PgType::Float8, "1e+300").unwrap(),
            1e300f64.to_be_bytes()
        );
        assert_eq!(
            bin(&PgType::Float4, "-Infinity").unwrap(),
            f32::NEG_INFINITY.to_be_bytes()
        );
        assert_eq!(bin(&PgType::Char, "\\351").unwrap(), [0xE9]);
        assert_eq!(bin(&PgType::Char, "").unwrap(), [0]);
        assert_eq!(bin(&PgType::Bytea, "\\x00fF").unwrap(), [0, 255]);
        assert_eq!(bin(&PgType::Bytea, "a\\\\b\\001").unwrap(), b"a\\b\x01");
        assert_eq!(
            bin(&PgType::Inet, "10.0.0.1").unwrap(),
            [2, 32, 0, 4, 10, 0, 0, 1]
        );
        assert_eq!(
            bin(&PgType::Date, "2000-01-02").unwrap(),
            1i32.to_be_bytes()
        );
        let d = |t: &str| i32::from_be_bytes(bin(&PgType::Date, t).unwrap().try_into().unwrap());
        assert_eq!(d("0001-12-31 BC"), d("0001-01-01") - 1);
        assert_eq!(d("infinity"), i32::MAX);
        assert_eq!(
            bin(
                &PgType::TimestampTz { precision: None },
                "2000-01-01 01:00:00+01"
            )
            .unwrap(),
            0i64.to_be_bytes()
        );
        assert_eq!(
            bin(&PgType::Time { precision: None }, "00:00:01.5").unwrap(),
            1_500_000i64.to_be_bytes()
        );
    }

    #[test]
    fn numeric_forms() {
        let n = |t: &str| bin(&PgType::Numeric, t).unwrap();
        // 1.50 → one digit 1 (weight 0) and 5000 (weight -1): ndigits 2, dscale 2.
        assert_eq!(n("1.50"), [0, 2, 0, 0, 0, 0, 0, 2, 0, 1, 0x13, 0x88]);
        assert_eq!(n("0.000"), [0, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(n("-10000"), [0, 1, 0, 1, 0x40, 0, 0, 0, 0, 1]);
        assert_eq!(n("0.0001"), [0, 1, 0xFF, 0xFF, 0, 0, 0, 4, 0, 1]);
        assert_eq!(n("NaN"), [0, 0, 0, 0, 0xC0, 0, 0, 0]);
    }

    #[test]
    fn arrays() {
        let a = bin(&PgType::Array(Box::new(PgType::Int4)), "[0:1]={1,NULL}").unwrap();
        let mut want = Vec::new();
        for v in [1i32, 1, 23, 2, 0] {
            want.extend_from_slice(&v.to_be_bytes());
        }
        want.extend_from_slice(&4i32.to_be_bytes());
        want.extend_from_slice(&1i32.to_be_bytes());
        want.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(a, want);
        let t = bin(
            &PgType::Array(Box::new(PgType::Text)),
            r#"{"a\"b","NULL",null}"#,
        )
        .unwrap();
        assert_eq!(&t[20..24], &3i32.to_be_bytes());
        assert_eq!(&t[24..27], b"a\"b");
        assert_eq!(&t[31..35], b"NULL");
        assert_eq!(&t[35..39], &(-1i32).to_be_bytes());
        assert_eq!(&t[4..8], &1i32.to_be_bytes());
    }

    #[test]
    fn malformed() {
        bad(&PgType::Bool, "yes");
        bad(&PgType::Int2, "32768");
        bad(&PgType::Int4, "1.5");
        bad(&PgType::Int4, "");
        bad(&PgType::Oid, "-1");
        bad(&PgType::Float8, "inf");
        bad(&PgType::Float8, "1..2");
        bad(&PgType::Char, "ab");
        bad(&PgType::Char, "\\999");
        bad(&PgType::Bytea, "\\x0");
        bad(&PgType::Bytea, "\\xzz");
        bad(&PgType::Bytea, "\\9");
        bad(&PgType::Uuid, "0000");
        bad(&PgType::Uuid, "a0eebc99_9c0b-4ef8-bb6d-6bb9bd380a11");
        bad(&PgType::Inet, "10.0.0.1/33");
        bad(&PgType::Inet, "::1/129");
        bad(&PgType::Inet, "10.0.0");
        bad(&PgType::MacAddr, "08:00:2b:01:02");
        bad(&PgType::MacAddr8, "08:00:2b:01:02:03:04:zz");
        bad(&PgType::Date, "2001-02-29");
        bad(&PgType::Date, "2001-13-01");
        bad(&PgType::Date, "0000-01-01");
        bad(&PgType::Date, "2001-01-01 AD");
        bad(&PgType::Time { precision: None }, "24:00:01");
        bad(&PgType::Time { precision: None }, "12:60:00");
        bad(&PgType::Time { precision: None }, "12:00:00.1234567");
        bad(&PgType::Timestamp { precision: None }, "2000-01-01");
        bad(
            &PgType::TimestampTz { precision: None },
            "2000-01-01 00:00:00",
        );
        bad(
            &PgType::TimestampTz { precision: None },
            "2000-01-01 00:00:00+1",
        );
        bad(&PgType::Numeric, "1e5");
        bad(&PgType::Numeric, "-");
        bad(&PgType::Numeric, ".");
        bad(&PgType::Numeric, "1.2.3");
        let arr = PgType::Array(Box::new(PgType::Int4));
        bad(&arr, "");
        bad(&arr, "{1,2");
        bad(&arr, "{1,,2}");
        bad(&arr, "{{1,2},{3}}");
        bad(&arr, "{{1,2},3}");
        bad(&arr, "{1}x");
        bad(&arr, "{\"1}");
        bad(&arr, "[1:3]={1,2}");
        bad(&arr, "{{{{{{{1}}}}}}}");
        bad(&arr, "{{}}");
        bad(&arr, "{a}");
        bad(&PgType::Array(Box::new(arr.clone())), "{1}");
    }
}
