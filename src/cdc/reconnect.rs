//! Surviving operations: which failures of a CDC stream a new connection can fix, and how long
//! to keep trying.
//!
//! A transient failure (the server restarting or crashing, the walsender terminated, a reset or
//! silent connection, a host in recovery during a failover, the slot still held by the previous
//! walsender) ends the current stream; the whole CDC start is then run again after a backoff:
//! prerequisites, publication, the slot (whose confirmed position was never moved past what the
//! CLI has), the backfill of tables not yet marked (normally none), and the stream from the
//! slot's confirmed position. Changes between that position and what was already handed over
//! are sent again (at-least-once; the change buffer keeps their order safe for the CLI).
//!
//! Everything else ends the sync at once: authentication refused, the slot or publication
//! dropped, a permission revoked, a decoding failure: retrying cannot fix them.

use std::time::Duration;

use crate::catalog::load::CatalogError;
use crate::wire::Error as WireError;

use super::CdcError;

/// The first wait after a failure; each later attempt waits twice as long, up to [`BACKOFF_CAP`].
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// `cdc_reconnect_timeout` when the spec does not set it: long enough for a failover or a
/// minor-version restart of a managed database.
pub const DEFAULT_RECONNECT_TIMEOUT: Duration = Duration::from_secs(600);

/// The wait before attempt `attempt` (1-based): 1 s, 2 s, 4 s, 8 s, 16 s, then 30 s.
pub fn backoff(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    BACKOFF_START
        .saturating_mul(1 << doublings)
        .min(BACKOFF_CAP)
}

/// SQLSTATEs a new connection can get past: the server shutting down or crashing
/// (`57P01`–`57P03`), connection exceptions (class `08`), too many connections (`53300`), an
/// object in use (`55006`: the slot, until the old walsender exits), a read-only transaction or
/// a server in recovery (`25006`, during a failover).
fn transient_sqlstate(code: &str) -> bool {
    matches!(
        code,
        "57P01" | "57P02" | "57P03" | "53300" | "55006" | "25006"
    ) || code.starts_with("08")
}

fn transient_wire(e: &WireError) -> bool {
    match e {
        WireError::Io { .. } | WireError::Timeout { .. } | WireError::Closed(_) => true,
        WireError::Server { error, .. } => transient_sqlstate(&error.code),
        WireError::Protocol(_)
        | WireError::Config(_)
        | WireError::Tls { .. }
        | WireError::Auth { .. }
        | WireError::Usage(_)
        | WireError::ResultValue { .. } => false,
    }
}

/// Whether a new connection may fix `e`.
pub fn is_transient(e: &CdcError) -> bool {
    match e {
        CdcError::Wire(w) => transient_wire(w),
        CdcError::StreamEnded { .. } | CdcError::SlotInUse { .. } => true,
        CdcError::Catalog {
            source: CatalogError::Query(w),
            ..
        } => transient_wire(w),
        CdcError::Backfill(crate::sync::engine::SyncError::ConnectionLost { .. }) => true,
        CdcError::Backfill(crate::sync::engine::SyncError::Setup(w)) => transient_wire(w),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ServerError;

    fn server(code: &str) -> CdcError {
        CdcError::Wire(WireError::Server {
            context: "test".into(),
            error: Box::new(ServerError {
                code: code.into(),
                ..ServerError::default()
            }),
        })
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let waits: Vec<u64> = (1..=8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(u32::MAX), BACKOFF_CAP);
    }

    #[test]
    fn which_failures_are_retried() {
        for code in [
            "57P01", "57P02", "57P03", "08006", "08001", "53300", "55006", "25006",
        ] {
            assert!(is_transient(&server(code)), "{code}");
        }
        // authentication, missing slot or publication, permission, bad data
        for code in [
            "28P01", "28000", "42704", "42501", "3D000", "22P02", "55000",
        ] {
            assert!(!is_transient(&server(code)), "{code}");
        }
        assert!(is_transient(&CdcError::StreamEnded {
            lsn: crate::wire::Lsn::ZERO
        }));
        assert!(is_transient(&CdcError::Wire(WireError::Io {
            context: "reading".into(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        })));
        assert!(!is_transient(&CdcError::Wire(WireError::Auth {
            context: "x".into(),
            message: "password authentication failed".into(),
        })));
        assert!(!is_transient(&CdcError::Setup("wal_level".into())));
    }
}
