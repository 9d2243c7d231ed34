//! `numeric` binary (numeric_send) → the exact text numeric_out prints.
//!
//! Wire form: i16 ndigits, i16 weight, u16 sign, u16 dscale, then ndigits base-10000 digits
//! (i16 each, most significant first). The value is Σ `digit[i] · 10000^(weight − i)`; dscale is
//! the number of decimal digits after the point that the text form shows, so `1.50` keeps its
//! trailing zero and `0.000` its three. Special values: sign 0xC000 NaN, 0xD000 Infinity,
//! 0xF000 -Infinity. The output follows get_str_from_var() digit for digit: no exponent ever.

use super::buf::Buf;
use super::error::DecodeError;

/// The sign word of the wire form: the two finite signs and the three special values.
pub(crate) const NUMERIC_POS: u16 = 0x0000;
pub(crate) const NUMERIC_NEG: u16 = 0x4000;
pub(crate) const NUMERIC_NAN: u16 = 0xC000;
pub(crate) const NUMERIC_PINF: u16 = 0xD000;
pub(crate) const NUMERIC_NINF: u16 = 0xF000;
/// numeric_recv rejects display scales outside this mask (`NUMERIC_DSCALE_MASK`).
pub(crate) const DSCALE_MASK: u16 = 0x3FFF;
/// The base of numeric's digits.
pub(crate) const NBASE: u16 = 10_000;

/// Where numeric text goes: a `String`, or straight into an Arrow `StringBuilder` (whose
/// current value the caller then closes with `append_value("")`). Writes cannot fail.
pub(crate) trait TextSink {
    fn push_text(&mut self, s: &str);
}

impl TextSink for String {
    fn push_text(&mut self, s: &str) {
        self.push_str(s);
    }
}

impl TextSink for arrow_array::builder::StringBuilder {
    fn push_text(&mut self, s: &str) {
        // GenericStringBuilder's fmt::Write appends to the value in progress and never fails.
        let _ = std::fmt::Write::write_str(self, s);
    }
}

/// The four-digit text of every base-10000 digit, `0000` to `9999`, one after the other.
/// Only read at compile time, to build the one static copy in [`GROUPS`].
#[allow(clippy::large_const_arrays)]
const GROUP_TABLE: [u8; 40_000] = {
    let mut t = [0u8; 40_000];
    let mut g = 0;
    while g < 10_000 {
        t[4 * g] = b'0' + (g / 1000) as u8;
        t[4 * g + 1] = b'0' + (g / 100 % 10) as u8;
        t[4 * g + 2] = b'0' + (g / 10 % 10) as u8;
        t[4 * g + 3] = b'0' + (g % 10) as u8;
        g += 1;
    }
    t
};
/// The table as text. It is ASCII digits by construction, so the empty fallback is never taken
/// (evaluated at compile time; a unit test checks the length).
static GROUPS: &str = match std::str::from_utf8(&GROUP_TABLE) {
    Ok(s) => s,
    Err(_) => "",
};

/// The zero-padded text of base-10000 digit `g` (< 10000, checked by the caller).
fn group(g: u16) -> &'static str {
    let i = usize::from(g) * 4;
    GROUPS.get(i..i + 4).unwrap_or("0000")
}

/// What a numeric is besides its digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumericKind {
    Finite { negative: bool },
    NaN,
    PosInfinity,
    NegInfinity,
}

/// A numeric's wire form, checked: header, sign, display scale and every base-10000 digit.
pub(crate) struct NumericWire<'a> {
    pub weight: i16,
    pub kind: NumericKind,
    pub dscale: u16,
    /// `ndigits` big-endian i16 digits, each in 0..=9999.
    pub digits: &'a [u8],
}

impl NumericWire<'_> {
    pub(crate) fn ndigits(&self) -> usize {
        self.digits.len() / 2
    }

    /// Digit `i` (most significant first).
    pub fn digit(&self, i: usize) -> u16 {
        self.digits
            .get(2 * i..2 * i + 2)
            .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]))
    }
}

/// Parses and checks the binary `numeric` in `bytes` (the one place its wire rules live).
pub(crate) fn numeric_wire(bytes: &[u8]) -> Result<NumericWire<'_>, DecodeError> {
    let mut r = Buf::new(bytes);
    let ndigits = r.i16("numeric ndigits")?;
    let weight = r.i16("numeric weight")?;
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
    let kind = match sign {
        NUMERIC_POS => NumericKind::Finite { negative: false },
        NUMERIC_NEG => NumericKind::Finite { negative: true },
        NUMERIC_NAN => NumericKind::NaN,
        NUMERIC_PINF => NumericKind::PosInfinity,
        NUMERIC_NINF => NumericKind::NegInfinity,
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
    for c in digits.chunks_exact(2) {
        let d = i16::from_be_bytes([c[0], c[1]]);
        // A negative digit reads as ≥ 32768 unsigned, so one comparison rejects both.
        if u16::from_be_bytes([c[0], c[1]]) >= NBASE {
            return Err(DecodeError::Invalid {
                what: "numeric digit",
                expected: "a base-10000 digit 0..=9999",
                found: i64::from(d),
            });
        }
    }
    Ok(NumericWire {
        weight,
        kind,
        dscale,
        digits,
    })
}

/// Append the text form of the numeric in `bytes` to `out`. Everything is validated before the
/// first write, so on error nothing was written.
pub(crate) fn write_numeric<S: TextSink + ?Sized>(
    bytes: &[u8],
    out: &mut S,
) -> Result<(), DecodeError> {
    let wire = numeric_wire(bytes)?;
    let negative = match wire.kind {
        NumericKind::Finite { negative } => negative,
        NumericKind::NaN => return special(out, "NaN"),
        NumericKind::PosInfinity => return special(out, "Infinity"),
        NumericKind::NegInfinity => return special(out, "-Infinity"),
    };
    let (weight, dscale, digits) = (i32::from(wire.weight), wire.dscale, wire.digits);
    // Digit i of the base-10000 representation, zero outside the stored ones.
    let digit = |i: i32| -> u16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(2 * i..2 * i + 2))
            .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]))
    };

    if negative {
        out.push_text("-");
    }
    // Integer part: digit groups 0..=weight; the first without leading zeros, at least "0".
    let mut d: i32;
    if weight < 0 {
        d = weight + 1;
        out.push_text("0");
    } else {
        let first = digit(0);
        let skip = match first {
            1000.. => 0,
            100.. => 1,
            10.. => 2,
            _ => 3,
        };
        out.push_text(group(first).get(skip..).unwrap_or("0"));
        for i in 1..=weight {
            out.push_text(group(digit(i)));
        }
        d = weight + 1;
    }
    // Fraction: exactly dscale digits, four per base-10000 digit, the last group cut short.
    if dscale > 0 {
        out.push_text(".");
        let mut left = usize::from(dscale);
        while left > 0 {
            let g = group(digit(d));
            let n = left.min(4);
            out.push_text(g.get(..n).unwrap_or(g));
            left -= n;
            d += 1;
        }
    }
    Ok(())
}

fn special<S: TextSink + ?Sized>(out: &mut S, text: &str) -> Result<(), DecodeError> {
    out.push_text(text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_group_table_is_complete_text() {
        assert_eq!(GROUPS.len(), 40_000);
        assert_eq!(group(0), "0000");
        assert_eq!(group(7), "0007");
        assert_eq!(group(1234), "1234");
        assert_eq!(group(9999), "9999");
    }
}
