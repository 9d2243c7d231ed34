//! `interval` (`interval_type: month_day_nano`): the binary form into Arrow
//! `Interval(MonthDayNano)`, and interval_out's ISO 8601 text back into that binary form (CDC
//! text mode).
//!
//! Wire form (interval_send): i64 microseconds, i32 days, i32 months, exactly the three fields
//! PostgreSQL stores; they are kept as they are (months are not turned into days, days not into
//! hours), microseconds × 1000 become nanoseconds. PostgreSQL 17's `infinity` / `-infinity` are
//! all three fields at their maximum / minimum and follow the `infinity` rule (clamp: months and
//! days i32::MAX, nanoseconds i64::MAX, or the minimums); a time part beyond ±2^63-1 ns (more than
//! about 2,562,047 hours) follows `out_of_range` (clamp: nanoseconds at ±(2^63-1), months and
//! days kept).

use arrow_buffer::IntervalMonthDayNano;

use super::buf::fixed;
use super::error::DecodeError;
use super::rules::{Ruled, ValueOptions};
use crate::wire::epoch::{USECS_PER_HOUR, USECS_PER_MINUTE, USECS_PER_SEC};

/// One binary interval → Arrow, under the value rules.
pub(crate) fn interval_value(
    bytes: &[u8],
    rules: &ValueOptions,
) -> Result<Ruled<IntervalMonthDayNano>, DecodeError> {
    let b: [u8; 16] = fixed(bytes, "interval")?;
    let [t0, t1, t2, t3, t4, t5, t6, t7, d0, d1, d2, d3, m0, m1, m2, m3] = b;
    let us = i64::from_be_bytes([t0, t1, t2, t3, t4, t5, t6, t7]);
    let days = i32::from_be_bytes([d0, d1, d2, d3]);
    let months = i32::from_be_bytes([m0, m1, m2, m3]);
    if (us, days, months) == (i64::MAX, i32::MAX, i32::MAX) {
        return rules.infinite_interval(
            false,
            IntervalMonthDayNano::new(i32::MAX, i32::MAX, i64::MAX),
        );
    }
    if (us, days, months) == (i64::MIN, i32::MIN, i32::MIN) {
        return rules.infinite_interval(
            true,
            IntervalMonthDayNano::new(i32::MIN, i32::MIN, i64::MIN),
        );
    }
    match us.checked_mul(1000) {
        Some(ns) => Ok(Ruled::Exact(IntervalMonthDayNano::new(months, days, ns))),
        None => {
            let edge = if us > 0 { i64::MAX } else { i64::MIN };
            rules.interval_out_of_range(
                || format!("of {months} months {days} days {us} microseconds"),
                IntervalMonthDayNano::new(months, days, edge),
            )
        }
    }
}

fn bad(offset: usize) -> DecodeError {
    DecodeError::Invalid {
        what: "interval text",
        expected: "ISO 8601 as interval_out prints it (P1Y2M3DT4H5M6.5S, PT0S, infinity)",
        found: i64::try_from(offset).unwrap_or(i64::MAX),
    }
}

/// interval_out's text under `IntervalStyle = iso_8601` (each field signed on its own, e.g.
/// `P-1Y-2M3DT-4H-5M-6.5S`; `infinity` / `-infinity` on PostgreSQL 17+) → interval_send's bytes,
/// appended to `out` (nothing is appended on error).
pub(crate) fn interval_text_to_binary(text: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let (us, days, months) = match text {
        b"infinity" => (i64::MAX, i32::MAX, i32::MAX),
        b"-infinity" => (i64::MIN, i32::MIN, i32::MIN),
        _ => parse_iso(text)?,
    };
    out.extend_from_slice(&us.to_be_bytes());
    out.extend_from_slice(&days.to_be_bytes());
    out.extend_from_slice(&months.to_be_bytes());
    Ok(())
}

fn parse_iso(text: &[u8]) -> Result<(i64, i32, i32), DecodeError> {
    let Some((b'P', mut rest)) = text.split_first().map(|(c, r)| (*c, r)) else {
        return Err(bad(0));
    };
    let offset = |rest: &[u8]| text.len() - rest.len();
    let (mut months, mut days, mut us) = (0i64, 0i64, 0i64);
    let mut in_time = false;
    let mut any = false;
    while let Some((&c, tail)) = rest.split_first() {
        if c == b'T' && !in_time {
            in_time = true;
            rest = tail;
            continue;
        }
        let at = offset(rest);
        let (negative, body) = match c {
            b'-' => (true, tail),
            b'+' => (false, tail),
            _ => (false, rest),
        };
        let int_len = body.iter().take_while(|b| b.is_ascii_digit()).count();
        if int_len == 0 || int_len > 19 {
            return Err(bad(at));
        }
        let (int_digits, after) = body.split_at(int_len);
        let int: i64 = std::str::from_utf8(int_digits)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(at))?;
        let (frac_us, after) = match after.split_first() {
            Some((b'.', f)) => {
                let n = f.iter().take_while(|b| b.is_ascii_digit()).count();
                if n == 0 || n > 6 {
                    return Err(bad(offset(f)));
                }
                let (digits, after) = f.split_at(n);
                let mut v: i64 = 0;
                for (i, d) in digits.iter().enumerate() {
                    v += i64::from(d - b'0') * 10i64.pow(5 - i as u32);
                }
                (Some(v), after)
            }
            _ => (None, after),
        };
        let Some((&unit, after)) = after.split_first() else {
            return Err(bad(offset(after)));
        };
        let signed = |v: i64| if negative { -v } else { v };
        let overflow = || bad(at);
        match (in_time, unit, frac_us) {
            (false, b'Y', None) => {
                months = int
                    .checked_mul(12)
                    .map(signed)
                    .and_then(|v| months.checked_add(v))
                    .ok_or_else(overflow)?
            }
            (false, b'M', None) => months = months.checked_add(signed(int)).ok_or_else(overflow)?,
            (false, b'D', None) => days = days.checked_add(signed(int)).ok_or_else(overflow)?,
            (true, b'H', None) => {
                us = int
                    .checked_mul(USECS_PER_HOUR)
                    .map(signed)
                    .and_then(|v| us.checked_add(v))
                    .ok_or_else(overflow)?
            }
            (true, b'M', None) => {
                us = int
                    .checked_mul(USECS_PER_MINUTE)
                    .map(signed)
                    .and_then(|v| us.checked_add(v))
                    .ok_or_else(overflow)?
            }
            (true, b'S', frac) => {
                us = int
                    .checked_mul(USECS_PER_SEC)
                    .and_then(|v| v.checked_add(frac.unwrap_or(0)))
                    .map(signed)
                    .and_then(|v| us.checked_add(v))
                    .ok_or_else(overflow)?
            }
            _ => return Err(bad(offset(after) - 1)),
        }
        any = true;
        rest = after;
    }
    if !any {
        return Err(bad(text.len()));
    }
    let months = i32::try_from(months).map_err(|_| bad(0))?;
    let days = i32::try_from(days).map_err(|_| bad(0))?;
    Ok((us, days, months))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::rules::{InfinityRule, OutOfRangeRule};

    fn parse(t: &str) -> Result<(i64, i32, i32), DecodeError> {
        let mut out = Vec::new();
        interval_text_to_binary(t.as_bytes(), &mut out)?;
        let us = i64::from_be_bytes(out[..8].try_into().unwrap());
        let d = i32::from_be_bytes(out[8..12].try_into().unwrap());
        let m = i32::from_be_bytes(out[12..].try_into().unwrap());
        Ok((us, d, m))
    }

    #[test]
    fn iso_text() {
        assert_eq!(parse("PT0S"), Ok((0, 0, 0)));
        assert_eq!(
            parse("P1Y2M3DT4H5M6.5S"),
            Ok((((4 * 60 + 5) * 60 + 6) * 1_000_000 + 500_000, 3, 14))
        );
        assert_eq!(
            parse("P-1Y-2M3DT-4H-5M-6.000001S"),
            Ok((-(((4 * 60 + 5) * 60 + 6) * 1_000_000 + 1), 3, -14))
        );
        assert_eq!(parse("PT-0.5S"), Ok((-500_000, 0, 0)));
        assert_eq!(parse("P-5D"), Ok((0, -5, 0)));
        assert_eq!(
            parse("PT2562047788H"),
            Ok((2_562_047_788 * 3_600_000_000, 0, 0))
        );
        assert_eq!(parse("infinity"), Ok((i64::MAX, i32::MAX, i32::MAX)));
        assert_eq!(parse("-infinity"), Ok((i64::MIN, i32::MIN, i32::MIN)));
        for bad in [
            "",
            "P",
            "PT",
            "1Y",
            "P1",
            "P1H",
            "PT1Y",
            "P1.5Y",
            "PT1.1234567S",
            "P1Y2",
            "P--1D",
            "PT1H1",
            "P99999999999999999999Y",
            "P178956971Y",
            "PTS",
            "P1DT2H3M4ST",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn binary_rules() {
        let bin = |us: i64, d: i32, m: i32| {
            let mut v = us.to_be_bytes().to_vec();
            v.extend_from_slice(&d.to_be_bytes());
            v.extend_from_slice(&m.to_be_bytes());
            v
        };
        let clamp = ValueOptions::default();
        assert_eq!(
            interval_value(&bin(-1, 2, -3), &clamp),
            Ok(Ruled::Exact(IntervalMonthDayNano::new(-3, 2, -1000)))
        );
        assert_eq!(
            interval_value(&bin(i64::MAX, i32::MAX, i32::MAX), &clamp),
            Ok(Ruled::Chosen(Some(IntervalMonthDayNano::new(
                i32::MAX,
                i32::MAX,
                i64::MAX
            ))))
        );
        assert_eq!(
            interval_value(&bin(i64::MIN + 1, 1, 1), &clamp),
            Ok(Ruled::Adjusted(Some(IntervalMonthDayNano::new(
                1,
                1,
                i64::MIN
            ))))
        );
        let strict = ValueOptions {
            infinity: InfinityRule::Error,
            out_of_range: OutOfRangeRule::Error,
            ..ValueOptions::default()
        };
        assert!(interval_value(&bin(i64::MIN, i32::MIN, i32::MIN), &strict).is_err());
        assert!(interval_value(&bin(i64::MAX / 999, 0, 0), &strict).is_err());
        assert!(interval_value(&[0; 15], &clamp).is_err());
    }
}
