//! `numeric` binary (numeric_send) → the exact text numeric_out prints.
//!
//! Wire form: i16 ndigits, i16 weight, u16 sign, u16 dscale, then ndigits base-10000 digits
//! (i16 each, most significant first). The value is Σ digit[i] · 10000^(weight − i); dscale is
//! the number of decimal digits after the point that the text form shows, so `1.50` keeps its
//! trailing zero and `0.000` its three. Special values: sign 0xC000 NaN, 0xD000 Infinity,
//! 0xF000 -Infinity. The output follows get_str_from_var() digit for digit: no exponent ever.

use super::buf::Buf;
use super::error::DecodeError;

const SIGN_POS: u16 = 0x0000;
const SIGN_NEG: u16 = 0x4000;
const SIGN_NAN: u16 = 0xC000;
const SIGN_PINF: u16 = 0xD000;
const SIGN_NINF: u16 = 0xF000;
/// numeric_recv rejects display scales outside this mask.
const DSCALE_MASK: u16 = 0x3FFF;
const NBASE: i16 = 10000;

/// Append the text form of the numeric in `bytes` to `out` (which is not cleared). On error `out`
/// is left unchanged.
pub fn write_numeric(bytes: &[u8], out: &mut String) -> Result<(), DecodeError> {
    let mut r = Buf::new(bytes);
    let ndigits = r.i16("numeric ndigits")?;
    let weight = i32::from(r.i16("numeric weight")?);
    let sign = r.u16("numeric sign")?;
    let dscale = r.u16("numeric dscale")?;
    let ndigits = usize::try_from(ndigits).map_err(|_| DecodeError::Invalid {
        what: "numeric ndigits",
        expected: "a count ≥ 0",
        found: i64::from(ndigits),
    })?;
    let digits = r.take_rest();
    if digits.len() != 2 * ndigits {
        return Err(DecodeError::Length {
            what: "numeric digits",
            expected: 2 * ndigits,
            found: digits.len(),
        });
    }
    let negative = match sign {
        SIGN_POS => false,
        SIGN_NEG => true,
        SIGN_NAN => return special(out, "NaN"),
        SIGN_PINF => return special(out, "Infinity"),
        SIGN_NINF => return special(out, "-Infinity"),
        other => {
            return Err(DecodeError::Invalid {
                what: "numeric sign",
                expected: "0x0000, 0x4000, 0xC000, 0xD000 or 0xF000",
                found: i64::from(other),
            })
        }
    };
    if dscale & !DSCALE_MASK != 0 {
        return Err(DecodeError::Invalid {
            what: "numeric dscale",
            expected: "at most 0x3FFF",
            found: i64::from(dscale),
        });
    }
    // Validate every digit before writing anything, so a bad value leaves `out` untouched.
    let digit_values = digits
        .chunks_exact(2)
        .map(|c| i16::from_be_bytes([c[0], c[1]]));
    for d in digit_values {
        if !(0..NBASE).contains(&d) {
            return Err(DecodeError::Invalid {
                what: "numeric digit",
                expected: "a base-10000 digit 0..=9999",
                found: i64::from(d),
            });
        }
    }
    // Digit i of the base-10000 representation, zero outside the stored ones. Always in range
    // after the check above.
    let digit = |i: i32| -> u16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(2 * i..2 * i + 2))
            .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]))
    };

    out.reserve(2 + 4 * (weight.max(0) as usize + 1) + usize::from(dscale) + 4);
    if negative {
        out.push('-');
    }
    // Integer part: digit groups 0..=weight; the first without leading zeros, at least "0".
    let mut d: i32;
    if weight < 0 {
        d = weight + 1;
        out.push('0');
    } else {
        push_leading_group(out, digit(0));
        for i in 1..=weight {
            push_group(out, digit(i));
        }
        d = weight + 1;
    }
    // Fraction: whole groups, then cut to exactly dscale digits.
    if dscale > 0 {
        out.push('.');
        let end = out.len() + usize::from(dscale);
        let mut written = 0u16;
        while written < dscale {
            push_group(out, digit(d));
            d += 1;
            written = written.saturating_add(4);
        }
        out.truncate(end);
    }
    Ok(())
}

fn special(out: &mut String, text: &str) -> Result<(), DecodeError> {
    out.push_str(text);
    Ok(())
}

/// Four decimal digits, zero-padded.
fn push_group(out: &mut String, g: u16) {
    let bytes = [
        b'0' + (g / 1000 % 10) as u8,
        b'0' + (g / 100 % 10) as u8,
        b'0' + (g / 10 % 10) as u8,
        b'0' + (g % 10) as u8,
    ];
    for b in bytes {
        out.push(char::from(b));
    }
}

/// Up to four decimal digits without leading zeros (the last digit always written).
fn push_leading_group(out: &mut String, g: u16) {
    let mut started = false;
    for div in [1000u16, 100, 10] {
        let dig = (g / div % 10) as u8;
        started |= dig > 0;
        if started {
            out.push(char::from(b'0' + dig));
        }
    }
    out.push(char::from(b'0' + (g % 10) as u8));
}
