//! The value options of the spec and the rules they select for values a destination cannot hold.
//!
//! Every destination built on pyarrow (Python's `datetime`) or on the Go SDK holds the calendar
//! years 1–9999; PostgreSQL holds `date` from 4713 BC to 5874897 AD, timestamps to 294276 AD, and
//! `infinity` / `-infinity`. The readers apply these rules to every date and timestamp (scalars
//! and array elements, full sync and CDC alike):
//!
//! - `infinity` ([`InfinityRule`], default `clamp`): `infinity` → the last representable instant
//!   (date 9999-12-31, timestamp 9999-12-31 23:59:59.999999 cut to the column's unit),
//!   `-infinity` → the first (0001-01-01, 0001-01-01 00:00:00); `null` sends NULL; `error` fails
//!   the table (full sync) or the stream (CDC), naming the column.
//! - `out_of_range` ([`OutOfRangeRule`], default `clamp`): a finite value outside those years is
//!   clamped to the same edges, or sent as NULL, or fails. Every clamped or nulled value is
//!   counted, and the caller logs one warning per table and column with the count.
//!
//! Decimals (`numeric_type: decimal`) cannot hold NaN or ±Infinity: those always become NULL and
//! are counted the same way. Intervals (`interval_type: month_day_nano`) follow `infinity` for
//! PostgreSQL 17's infinite intervals and `out_of_range` for a time part beyond ±2^63-1 ns.

use super::error::DecodeError;
use super::types::PgType;
use crate::wire::epoch::{PG_EPOCH_DAYS, PG_EPOCH_OFFSET_MICROS, USECS_PER_DAY, USECS_PER_SEC};

/// `numeric_type`: how `numeric` columns travel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NumericType {
    /// numeric_out's exact text (Utf8).
    #[default]
    String,
    /// `numeric(p,s)` → Decimal128/Decimal256 where the precision allows; the rest stays text.
    Decimal,
}

/// `interval_type`: how `interval` columns travel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IntervalType {
    /// The ISO 8601 text the server prints (Utf8).
    #[default]
    String,
    /// Arrow `Interval(MonthDayNano)`: months, days and microseconds × 1000 as stored.
    MonthDayNano,
}

/// `infinity`: what `infinity` / `-infinity` dates, timestamps and intervals become.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InfinityRule {
    #[default]
    Clamp,
    Null,
    Error,
}

/// `out_of_range`: what finite values outside the years 1–9999 (or an interval's ns range) become.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutOfRangeRule {
    #[default]
    Clamp,
    Null,
    Error,
}

/// The four value options, as the spec gives them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ValueOptions {
    pub numeric_type: NumericType,
    pub interval_type: IntervalType,
    pub infinity: InfinityRule,
    pub out_of_range: OutOfRangeRule,
}

macro_rules! named {
    ($ty:ty, $($name:literal => $v:path),+) => {
        impl $ty {
            /// The spelling of every value in the spec, default first.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($name => Some($v),)+
                    _ => None,
                }
            }

            pub fn as_str(self) -> &'static str {
                match self {
                    $($v => $name,)+
                }
            }
        }
    };
}

named!(NumericType, "string" => NumericType::String, "decimal" => NumericType::Decimal);
named!(IntervalType, "string" => IntervalType::String, "month_day_nano" => IntervalType::MonthDayNano);
named!(InfinityRule, "clamp" => InfinityRule::Clamp, "null" => InfinityRule::Null, "error" => InfinityRule::Error);
named!(OutOfRangeRule, "clamp" => OutOfRangeRule::Clamp, "null" => OutOfRangeRule::Null, "error" => OutOfRangeRule::Error);

/// 0001-01-01 and 9999-12-31 in days since 2000-01-01.
pub(crate) const DATE_MIN_PG: i32 = -719_162 - PG_EPOCH_DAYS;
pub(crate) const DATE_MAX_PG: i32 = 2_932_896 - PG_EPOCH_DAYS;
/// 0001-01-01 00:00:00 and 9999-12-31 23:59:59.999999 in µs since 2000-01-01.
pub(crate) const TS_MIN_PG: i64 = -62_135_596_800 * USECS_PER_SEC - PG_EPOCH_OFFSET_MICROS;
pub(crate) const TS_MAX_PG: i64 = 253_402_300_800 * USECS_PER_SEC - 1 - PG_EPOCH_OFFSET_MICROS;

/// What a rule made of one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ruled<T> {
    /// Sent as is.
    Exact(T),
    /// Changed by a rule the user chose for it (±infinity): no warning.
    Chosen(Option<T>),
    /// Changed because the destination type cannot hold it: counted for the warning.
    Adjusted(Option<T>),
}

impl<T> Ruled<T> {
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Ruled<U> {
        match self {
            Ruled::Exact(v) => Ruled::Exact(f(v)),
            Ruled::Chosen(v) => Ruled::Chosen(v.map(f)),
            Ruled::Adjusted(v) => Ruled::Adjusted(v.map(f)),
        }
    }
}

impl InfinityRule {
    fn apply<T>(self, what: &'static str, sign: &str, edge: T) -> Result<Ruled<T>, DecodeError> {
        match self {
            InfinityRule::Clamp => Ok(Ruled::Chosen(Some(edge))),
            InfinityRule::Null => Ok(Ruled::Chosen(None)),
            InfinityRule::Error => Err(DecodeError::Unrepresentable {
                what,
                value: format!("{sign}infinity"),
                rule: "infinity: error",
            }),
        }
    }
}

impl OutOfRangeRule {
    fn apply<T>(
        self,
        what: &'static str,
        value: impl FnOnce() -> String,
        edge: T,
    ) -> Result<Ruled<T>, DecodeError> {
        match self {
            OutOfRangeRule::Clamp => Ok(Ruled::Adjusted(Some(edge))),
            OutOfRangeRule::Null => Ok(Ruled::Adjusted(None)),
            OutOfRangeRule::Error => Err(DecodeError::Unrepresentable {
                what,
                value: value(),
                rule: "out_of_range: error",
            }),
        }
    }
}

impl ValueOptions {
    /// True when a non-NULL value of `ty` may arrive as NULL under these rules (NaN in a decimal
    /// column, `null` rules on dates, timestamps and intervals): such a column's field must be
    /// nullable even when the column is NOT NULL.
    pub(crate) fn may_send_null(&self, ty: &PgType) -> bool {
        let by_rule =
            self.infinity == InfinityRule::Null || self.out_of_range == OutOfRangeRule::Null;
        match ty {
            PgType::Decimal { .. } => true,
            PgType::Date
            | PgType::Timestamp { .. }
            | PgType::TimestampTz { .. }
            | PgType::Interval => by_rule,
            _ => false,
        }
    }

    /// A `date` (days since 2000-01-01, `i32::MAX`/`MIN` = ±infinity) → days since 2000-01-01
    /// within 0001-01-01 ..= 9999-12-31.
    pub(crate) fn date(&self, days: i32) -> Result<Ruled<i32>, DecodeError> {
        match days {
            i32::MAX => self.infinity.apply("date", "", DATE_MAX_PG),
            i32::MIN => self.infinity.apply("date", "-", DATE_MIN_PG),
            d if d > DATE_MAX_PG => {
                self.out_of_range
                    .apply("date", || format_date(i64::from(d)), DATE_MAX_PG)
            }
            d if d < DATE_MIN_PG => {
                self.out_of_range
                    .apply("date", || format_date(i64::from(d)), DATE_MIN_PG)
            }
            d => Ok(Ruled::Exact(d)),
        }
    }

    /// A timestamp (µs since 2000-01-01, `i64::MAX`/`MIN` = ±infinity) → µs since 2000-01-01
    /// within 0001-01-01 00:00:00 ..= 9999-12-31 23:59:59.999999.
    pub(crate) fn timestamp(&self, us: i64) -> Result<Ruled<i64>, DecodeError> {
        match us {
            i64::MAX => self.infinity.apply("timestamp", "", TS_MAX_PG),
            i64::MIN => self.infinity.apply("timestamp", "-", TS_MIN_PG),
            t if t > TS_MAX_PG => {
                self.out_of_range
                    .apply("timestamp", || format_timestamp(t), TS_MAX_PG)
            }
            t if t < TS_MIN_PG => {
                self.out_of_range
                    .apply("timestamp", || format_timestamp(t), TS_MIN_PG)
            }
            t => Ok(Ruled::Exact(t)),
        }
    }

    /// An infinite interval (PostgreSQL 17+), under the `infinity` rule; `edge` is what clamp
    /// sends.
    pub(crate) fn infinite_interval<T>(
        &self,
        negative: bool,
        edge: T,
    ) -> Result<Ruled<T>, DecodeError> {
        self.infinity
            .apply("interval", if negative { "-" } else { "" }, edge)
    }

    /// A finite interval whose time part does not fit in i64 nanoseconds.
    pub(crate) fn interval_out_of_range<T>(
        &self,
        value: impl FnOnce() -> String,
        edge: T,
    ) -> Result<Ruled<T>, DecodeError> {
        self.out_of_range.apply("interval", value, edge)
    }
}

/// What happened to the values of a column of type `ty` that [`super::ColumnReader::take_adjusted`]
/// counted: the text of the warning the sync logs once per table and column.
pub(crate) fn adjusted_message(ty: &PgType, options: &ValueOptions) -> String {
    let fate = match options.out_of_range {
        OutOfRangeRule::Null => "were sent as NULL (out_of_range: null)",
        _ => "were clamped to the nearest of those edges (out_of_range: clamp)",
    };
    match ty {
        PgType::Array(elem) => adjusted_message(elem, options),
        PgType::Decimal { .. } => "numeric NaN, Infinity or -Infinity values were sent as NULL: \
            a decimal cannot hold them (numeric_type: string keeps them as text)"
            .to_string(),
        PgType::Interval => format!(
            "interval values whose time part exceeds +/-2^63-1 nanoseconds (about 292 years) {fate}"
        ),
        PgType::Date => format!("dates outside 0001-01-01 .. 9999-12-31 {fate}"),
        _ => format!("timestamps outside 0001-01-01 00:00:00 .. 9999-12-31 23:59:59.999999 {fate}"),
    }
}

/// Days since 2000-01-01 → (year, month, day) of the proleptic Gregorian calendar (year 0 = 1 BC).
pub(crate) fn civil_from_pg_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's days_from_civil inverse, shifted to 1970-01-01.
    let z = days + i64::from(PG_EPOCH_DAYS) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// As PostgreSQL prints a date under DateStyle ISO: `294276-12-31`, `4713-01-01 BC`.
pub(crate) fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_pg_days(days);
    if y <= 0 {
        format!("{:04}-{m:02}-{d:02} BC", 1 - y)
    } else {
        format!("{y:04}-{m:02}-{d:02}")
    }
}

/// As PostgreSQL prints a timestamp (UTC), for error messages.
pub(crate) fn format_timestamp(us: i64) -> String {
    let (days, of_day) = (us.div_euclid(USECS_PER_DAY), us.rem_euclid(USECS_PER_DAY));
    let (y, m, d) = civil_from_pg_days(days);
    let secs = of_day / USECS_PER_SEC;
    let frac = of_day % USECS_PER_SEC;
    let time = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    let frac = if frac == 0 {
        String::new()
    } else {
        format!(".{frac:06}").trim_end_matches('0').to_string()
    };
    if y <= 0 {
        format!("{:04}-{m:02}-{d:02} {time}{frac} BC", 1 - y)
    } else {
        format!("{y:04}-{m:02}-{d:02} {time}{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_are_the_calendar_edges() {
        assert_eq!(format_date(i64::from(DATE_MIN_PG)), "0001-01-01");
        assert_eq!(format_date(i64::from(DATE_MAX_PG)), "9999-12-31");
        assert_eq!(format_date(0), "2000-01-01");
        assert_eq!(format_date(i64::from(DATE_MIN_PG) - 1), "0001-12-31 BC");
        assert_eq!(format_timestamp(TS_MIN_PG), "0001-01-01 00:00:00");
        assert_eq!(format_timestamp(TS_MAX_PG), "9999-12-31 23:59:59.999999");
        assert_eq!(format_timestamp(-1), "1999-12-31 23:59:59.999999");
    }

    #[test]
    fn rules() {
        let clamp = ValueOptions::default();
        assert_eq!(clamp.date(i32::MAX), Ok(Ruled::Chosen(Some(DATE_MAX_PG))));
        assert_eq!(clamp.date(i32::MIN), Ok(Ruled::Chosen(Some(DATE_MIN_PG))));
        assert_eq!(
            clamp.date(DATE_MAX_PG + 1),
            Ok(Ruled::Adjusted(Some(DATE_MAX_PG)))
        );
        assert_eq!(clamp.date(DATE_MAX_PG), Ok(Ruled::Exact(DATE_MAX_PG)));
        assert_eq!(
            clamp.timestamp(TS_MIN_PG - 1),
            Ok(Ruled::Adjusted(Some(TS_MIN_PG)))
        );
        let null = ValueOptions {
            infinity: InfinityRule::Null,
            out_of_range: OutOfRangeRule::Null,
            ..ValueOptions::default()
        };
        assert_eq!(null.timestamp(i64::MAX), Ok(Ruled::Chosen(None)));
        assert_eq!(null.timestamp(i64::MAX - 1), Ok(Ruled::Adjusted(None)));
        let error = ValueOptions {
            infinity: InfinityRule::Error,
            out_of_range: OutOfRangeRule::Error,
            ..ValueOptions::default()
        };
        let e = error.date(i32::MIN).unwrap_err().to_string();
        assert_eq!(e, "date -infinity cannot be sent (infinity: error)");
        let e = error.date(DATE_MIN_PG - 1).unwrap_err().to_string();
        assert_eq!(e, "date 0001-12-31 BC cannot be sent (out_of_range: error)");
    }

    #[test]
    fn names_round_trip() {
        for n in OutOfRangeRule::NAMES {
            assert_eq!(OutOfRangeRule::parse(n).map(|r| r.as_str()), Some(*n));
        }
        for n in IntervalType::NAMES {
            assert_eq!(IntervalType::parse(n).map(|r| r.as_str()), Some(*n));
        }
        assert_eq!(NumericType::NAMES[0], "string");
        assert_eq!(InfinityRule::parse("Clamp"), None);
    }
}
