//! Numbers: int2/int4/int8/oid/xid/xid8, float4/float8, numeric.

use super::{err, utf8};
use crate::decode::error::DecodeError;
use crate::decode::numeric::{
    DSCALE_MASK, NUMERIC_NAN, NUMERIC_NEG, NUMERIC_NINF, NUMERIC_PINF, NUMERIC_POS,
};

pub(super) fn parse_int<T: std::str::FromStr>(
    text: &[u8],
    what: &'static str,
) -> Result<T, DecodeError> {
    // FromStr accepts a leading '+', which int*in also accepts; everything else must be digits.
    let s = utf8(text, what)?;
    s.parse::<T>()
        .map_err(|_| err(what, "a decimal integer in the type's range", 0))
}

pub(super) fn parse_float<T: std::str::FromStr + SpecialFloat>(
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

pub(super) trait SpecialFloat {
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

/// numeric_out text → numeric_send: i16 ndigits, i16 weight, u16 sign, u16 dscale, then the
/// base-10000 digits with leading and trailing zero digits stripped (as PostgreSQL stores them).
pub(super) fn parse_numeric(text: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
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
    if dscale > usize::from(DSCALE_MASK) {
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
