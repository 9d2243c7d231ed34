//! A position in the write-ahead log: a 64-bit byte offset, written by PostgreSQL as two hex
//! halves `XXX/XXX` (the `pg_lsn` type's text form, and what replication commands take).

use std::fmt;
use std::str::FromStr;

/// A log sequence number. Ordered as the log is; 0 (`0/0`) is "no position".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(u64);

impl Lsn {
    /// `0/0`, PostgreSQL's `InvalidXLogRecPtr`: "no position" (also "from the slot's start" in
    /// `START_REPLICATION`).
    pub const ZERO: Lsn = Lsn(0);

    pub const fn new(value: u64) -> Lsn {
        Lsn(value)
    }

    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl From<u64> for Lsn {
    fn from(value: u64) -> Lsn {
        Lsn(value)
    }
}

impl From<Lsn> for u64 {
    fn from(lsn: Lsn) -> u64 {
        lsn.0
    }
}

/// `XXX/XXX`: the high and the low 32 bits in upper-case hex without leading zeros, as
/// `pg_lsn_out` prints them.
/// Compares with a raw position, so tests and arithmetic-free checks read naturally.
impl PartialEq<u64> for Lsn {
    fn eq(&self, other: &u64) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// Text that is not an LSN. The text is kept: an LSN is never secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid LSN {text:?} (expected two hex numbers of 1 to 8 digits, like 16/B374D848)")]
pub struct LsnParseError {
    pub text: String,
}

/// As `pg_lsn_in` reads it: 1 to 8 hex digits, `/`, 1 to 8 hex digits, nothing else (no sign,
/// no spaces).
impl FromStr for Lsn {
    type Err = LsnParseError;

    fn from_str(text: &str) -> Result<Lsn, LsnParseError> {
        let half = |s: &str| -> Option<u64> {
            if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u64::from_str_radix(s, 16).ok()
        };
        text.split_once('/')
            .and_then(|(hi, lo)| Some(Lsn((half(hi)? << 32) | half(lo)?)))
            .ok_or_else(|| LsnParseError {
                text: text.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_text_form_as_postgresql_prints_and_reads_it() {
        // SELECT '16/B374D848'::pg_lsn - '0/0' → 97500059720.
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn.as_u64(), 97_500_059_720);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert_eq!(Lsn::ZERO.to_string(), "0/0");
        assert_eq!(Lsn::new(0x1_0000_00AB).to_string(), "1/AB");
        assert_eq!("1/0".parse::<Lsn>(), Ok(Lsn::new(1 << 32)));
        // pg_lsn_in takes lower case and leading zeros.
        assert_eq!(
            "0000000a/00000b0".parse::<Lsn>(),
            Ok(Lsn::new(0xA_0000_00B0))
        );
        let max = Lsn::new(u64::MAX);
        assert_eq!(max.to_string(), "FFFFFFFF/FFFFFFFF");
        assert_eq!(max.to_string().parse::<Lsn>(), Ok(max));
    }

    #[test]
    fn lsn_rejects_what_pg_lsn_in_rejects() {
        for bad in [
            "",
            "zz",
            "1/",
            "/1",
            "1",
            "+1/0",
            "1/-0",
            " 1/0",
            "1/0 ",
            "123456789/0",
            "1/2/3",
        ] {
            let err = bad.parse::<Lsn>().unwrap_err();
            assert_eq!(err.text, bad);
        }
    }

    #[test]
    fn lsn_orders_as_the_log() {
        let a: Lsn = "0/FFFFFFFF".parse().unwrap();
        let b: Lsn = "1/0".parse().unwrap();
        assert!(a < b);
        assert_eq!(u64::from(b) - u64::from(a), 1);
    }
}
