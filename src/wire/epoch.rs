//! PostgreSQL's clock: dates, timestamps and the replication protocol count from
//! 2000-01-01 00:00:00 UTC, not from the Unix epoch. Every offset between the two, and the units
//! of its microsecond clock, are defined here once, for the protocol's clock and the decoders.

pub(crate) const USECS_PER_SEC: i64 = 1_000_000;
pub(crate) const USECS_PER_MINUTE: i64 = 60 * USECS_PER_SEC;
pub(crate) const USECS_PER_HOUR: i64 = 60 * USECS_PER_MINUTE;
pub(crate) const SECS_PER_DAY: i64 = 86_400;
pub(crate) const USECS_PER_DAY: i64 = SECS_PER_DAY * USECS_PER_SEC;
/// Days from 1970-01-01 to 2000-01-01.
pub(crate) const PG_EPOCH_DAYS: i32 = 10_957;
/// Seconds from 1970-01-01 00:00:00 UTC to 2000-01-01 00:00:00 UTC.
pub(crate) const PG_EPOCH_SECS: i64 = PG_EPOCH_DAYS as i64 * SECS_PER_DAY;
/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC).
pub const PG_EPOCH_OFFSET_MICROS: i64 = PG_EPOCH_SECS * USECS_PER_SEC;
/// Julian day number of 2000-01-01 (PostgreSQL's `POSTGRES_EPOCH_JDATE`).
pub(crate) const PG_EPOCH_JDATE: i64 = 2_451_545;

/// Now, in the replication protocol's clock (microseconds since 2000-01-01 UTC). A system clock
/// set before 1970 reads as the Unix epoch.
pub fn pg_clock_now() -> i64 {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    micros.saturating_sub(PG_EPOCH_OFFSET_MICROS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_offsets_agree_with_postgresql() {
        // SELECT extract(epoch FROM timestamptz '2000-01-01 00:00:00+00') → 946684800.
        assert_eq!(PG_EPOCH_SECS, 946_684_800);
        assert_eq!(PG_EPOCH_OFFSET_MICROS, 946_684_800_000_000);
        // SELECT to_char(date '2000-01-01', 'J') → 2451545; date '2000-01-01' - date '1970-01-01' → 10957.
        assert_eq!(PG_EPOCH_JDATE, 2_451_545);
        assert_eq!(PG_EPOCH_DAYS, 10_957);
        assert!(pg_clock_now() > 0);
    }
}
