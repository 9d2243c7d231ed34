//! Dates and times as DateStyle ISO prints them, in UTC: date, time, timestamp, timestamptz.

use super::{err, utf8};
use crate::decode::error::DecodeError;
use crate::wire::epoch::{PG_EPOCH_JDATE, USECS_PER_DAY, USECS_PER_SEC};

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
    Ok((date2j(astro, month, day) - PG_EPOCH_JDATE, year_len + 6))
}

pub(super) fn parse_date_value(text: &[u8]) -> Result<i32, DecodeError> {
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
pub(super) fn parse_time(s: &str, base: usize, what: &'static str) -> Result<i64, DecodeError> {
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
pub(super) fn parse_timestamp(text: &[u8], with_zone: bool) -> Result<i64, DecodeError> {
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
