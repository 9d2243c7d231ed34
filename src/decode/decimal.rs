//! `numeric` binary (numeric_send) → the unscaled integer of an Arrow Decimal128 / Decimal256
//! of a fixed precision and scale (`numeric_type: decimal`).
//!
//! Wire form (see [`super::numeric`]): i16 ndigits, i16 weight, u16 sign, u16 dscale, then
//! ndigits base-10000 digits. The value is Σ `digit[i] · 10000^(weight − i)`; the unscaled
//! integer is that value × 10^scale, computed exactly with checked arithmetic. The column's type
//! modifier guarantees every finite value fits; one that does not (more digits than the
//! precision, non-zero digits past the scale) is a decode error, never rounded. NaN and
//! ±Infinity have no decimal: `Ok(None)`, which the reader sends as NULL and counts.

use arrow_buffer::i256;

use super::error::DecodeError;
use super::numeric::{numeric_wire, NumericKind, NBASE};

/// The integer types behind Decimal128 (i128) and Decimal256 (i256).
pub(crate) trait Unscaled: Copy + PartialOrd {
    const ZERO: Self;
    fn from_digit(d: u16) -> Self;
    fn checked_mul(self, rhs: Self) -> Option<Self>;
    fn checked_add(self, rhs: Self) -> Option<Self>;
    fn checked_div(self, rhs: Self) -> Option<Self>;
    fn checked_rem(self, rhs: Self) -> Option<Self>;
    fn checked_neg(self) -> Option<Self>;
    fn pow10(exp: u32) -> Option<Self>;
}

impl Unscaled for i128 {
    const ZERO: Self = 0;
    fn from_digit(d: u16) -> Self {
        i128::from(d)
    }
    fn checked_mul(self, rhs: Self) -> Option<Self> {
        i128::checked_mul(self, rhs)
    }
    fn checked_add(self, rhs: Self) -> Option<Self> {
        i128::checked_add(self, rhs)
    }
    fn checked_div(self, rhs: Self) -> Option<Self> {
        i128::checked_div(self, rhs)
    }
    fn checked_rem(self, rhs: Self) -> Option<Self> {
        i128::checked_rem(self, rhs)
    }
    fn checked_neg(self) -> Option<Self> {
        i128::checked_neg(self)
    }
    fn pow10(exp: u32) -> Option<Self> {
        10i128.checked_pow(exp)
    }
}

impl Unscaled for i256 {
    const ZERO: Self = i256::ZERO;
    fn from_digit(d: u16) -> Self {
        i256::from_i128(i128::from(d))
    }
    fn checked_mul(self, rhs: Self) -> Option<Self> {
        i256::checked_mul(self, rhs)
    }
    fn checked_add(self, rhs: Self) -> Option<Self> {
        i256::checked_add(self, rhs)
    }
    fn checked_div(self, rhs: Self) -> Option<Self> {
        i256::checked_div(self, rhs)
    }
    fn checked_rem(self, rhs: Self) -> Option<Self> {
        i256::checked_rem(self, rhs)
    }
    fn checked_neg(self) -> Option<Self> {
        i256::checked_neg(self)
    }
    fn pow10(exp: u32) -> Option<Self> {
        i256::from_i128(10).checked_pow(exp)
    }
}

fn misfit(weight: i16) -> DecodeError {
    DecodeError::Invalid {
        what: "numeric for a decimal column",
        expected: "a value within the column's precision and scale (found weight)",
        found: i64::from(weight),
    }
}

/// The unscaled integer of the numeric in `bytes` at `scale`, checked against `precision`
/// digits; `Ok(None)` for NaN, Infinity and -Infinity.
pub(crate) fn numeric_unscaled<T: Unscaled>(
    bytes: &[u8],
    precision: u8,
    scale: i8,
) -> Result<Option<T>, DecodeError> {
    let wire = numeric_wire(bytes)?;
    let negative = match wire.kind {
        NumericKind::Finite { negative } => negative,
        NumericKind::NaN | NumericKind::PosInfinity | NumericKind::NegInfinity => return Ok(None),
    };
    let (weight, ndigits) = (wire.weight, wire.ndigits());
    let nbase = T::from_digit(NBASE);
    let mut acc = T::ZERO;
    for i in 0..ndigits {
        // numeric_wire checked every digit is 0..=9999.
        acc = acc
            .checked_mul(nbase)
            .and_then(|a| a.checked_add(T::from_digit(wire.digit(i))))
            .ok_or_else(|| misfit(weight))?;
    }
    if acc == T::ZERO {
        return Ok(Some(T::ZERO));
    }
    // `acc` counts units of 10^(4·(weight − ndigits + 1)); bring it to units of 10^-scale.
    let shift = 4 * (i64::from(weight) - ndigits as i64 + 1) + i64::from(scale);
    let magnitude = u32::try_from(shift.unsigned_abs()).unwrap_or(u32::MAX);
    let factor = T::pow10(magnitude).ok_or_else(|| misfit(weight))?;
    acc = if shift >= 0 {
        acc.checked_mul(factor).ok_or_else(|| misfit(weight))?
    } else {
        if acc.checked_rem(factor) != Some(T::ZERO) {
            return Err(misfit(weight));
        }
        acc.checked_div(factor).ok_or_else(|| misfit(weight))?
    };
    match T::pow10(u32::from(precision)) {
        Some(limit) if acc < limit => {}
        _ => return Err(misfit(weight)),
    }
    if negative {
        acc = acc.checked_neg().ok_or_else(|| misfit(weight))?;
    }
    Ok(Some(acc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(digits.len() as i16).to_be_bytes());
        v.extend_from_slice(&weight.to_be_bytes());
        v.extend_from_slice(&sign.to_be_bytes());
        v.extend_from_slice(&dscale.to_be_bytes());
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn values_scale_exactly() {
        let n128 = |b: &[u8], p, s| numeric_unscaled::<i128>(b, p, s);
        // 1.50 in numeric(5,2): digits [1, 5000], weight 0.
        assert_eq!(n128(&numeric(0, 0, 2, &[1, 5000]), 5, 2), Ok(Some(150)));
        // -12345678.9 in numeric(18,4)
        assert_eq!(
            n128(&numeric(1, 0x4000, 4, &[1234, 5678, 9000]), 18, 4),
            Ok(Some(-123_456_789_000))
        );
        // 100000000 (weight 2, one digit) in numeric(9,0)
        assert_eq!(n128(&numeric(2, 0, 0, &[1]), 9, 0), Ok(Some(100_000_000)));
        // 0.0001 in numeric(4,4)
        assert_eq!(n128(&numeric(-1, 0, 4, &[1]), 4, 4), Ok(Some(1)));
        assert_eq!(n128(&numeric(0, 0, 0, &[]), 1, 0), Ok(Some(0)));
        assert_eq!(n128(&numeric(0, 0xC000, 0, &[]), 1, 0), Ok(None));
        assert_eq!(n128(&numeric(0, 0xF000, 0, &[]), 1, 0), Ok(None));
        // Too many digits for the precision, digits past the scale: errors, not rounding.
        assert!(n128(&numeric(0, 0, 0, &[10]), 1, 0).is_err());
        assert!(n128(&numeric(0, 0, 3, &[1, 5]), 5, 2).is_err());
        // 38 nines fit Decimal128(38, 0); 39 digits do not.
        let nines = numeric(
            9,
            0,
            0,
            &[99, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999],
        );
        assert_eq!(n128(&nines, 38, 0), Ok(Some(10i128.pow(38) - 1)));
        assert!(n128(&nines, 37, 0).is_err());
        let big = numeric(18, 0, 0, &[9; 19]);
        let v = numeric_unscaled::<i256>(&big, 76, 0).unwrap().unwrap();
        assert!(v > i256::from_i128(i128::MAX));
        assert!(n128(&big, 38, 0).is_err());
        assert!(numeric_unscaled::<i256>(&numeric(i16::MAX, 0, 0, &[1]), 76, 0).is_err());
        assert!(n128(&numeric(i16::MIN, 0, 0, &[1]), 38, 10).is_err());
    }
}
