//! CDC metrics, which the Go SDK has no names for (its plugins have no change stream):
//!
//! - `sync.cdc.change_rate` (gauge, `{change}/s`): row changes (insert, update, delete) received
//!   per second over the last export period;
//! - `sync.cdc.wal_lag` (gauge, `By`): bytes between the server's WAL end (the latest position
//!   the walsender reported) and the position up to which every change was handed to the CLI;
//! - `sync.cdc.commit_to_emit` (histogram, `ms`): from a transaction's commit on the server (its
//!   commit timestamp) to the moment all its changes were handed to the CLI.
//!
//! None is a sum: the CLI's metrics receiver reads every sum as a per-table counter and needs
//! `sync.table.name` on it. The stream only stores numbers (atomics, a short queue of commits);
//! the gauges are computed when the meter collects.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use opentelemetry::metrics::{Histogram, Meter, ObservableGauge};

pub const METRIC_CHANGE_RATE: &str = "sync.cdc.change_rate";
pub const METRIC_WAL_LAG: &str = "sync.cdc.wal_lag";
pub const METRIC_COMMIT_TO_EMIT: &str = "sync.cdc.commit_to_emit";

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;
/// Commits waiting for their hand-off; past this (a stalled CLI) newer ones are not timed.
const MAX_PENDING_COMMITS: usize = 65_536;

struct Shared {
    changes: AtomicU64,
    server_wal_end: AtomicU64,
    handed_off: AtomicU64,
    /// (change count, when) at the previous collection, for the rate.
    last_rate: Mutex<Option<(u64, Instant)>>,
}

pub struct CdcMetrics {
    shared: Arc<Shared>,
    /// (commit end LSN, commit time in PostgreSQL microseconds), in stream order.
    commits: Mutex<VecDeque<(u64, i64)>>,
    latency: Histogram<f64>,
    _rate: ObservableGauge<f64>,
    _lag: ObservableGauge<u64>,
}

impl CdcMetrics {
    pub fn new(meter: &Meter) -> CdcMetrics {
        let shared = Arc::new(Shared::new(Instant::now()));
        let rate_src = shared.clone();
        let rate = meter
            .f64_observable_gauge(METRIC_CHANGE_RATE)
            .with_description("Row changes received from the replication stream per second")
            .with_unit("{change}/s")
            .with_callback(move |obs| {
                if let Some(rate) = rate_src.rate(Instant::now()) {
                    obs.observe(rate, &[]);
                }
            })
            .build();
        let lag_src = shared.clone();
        let lag = meter
            .u64_observable_gauge(METRIC_WAL_LAG)
            .with_description(
                "Bytes of WAL between the server's WAL end and the last change handed to the CLI",
            )
            .with_unit("By")
            .with_callback(move |obs| {
                let end = lag_src.server_wal_end.load(Ordering::Relaxed);
                let done = lag_src.handed_off.load(Ordering::Relaxed);
                if end > 0 && done > 0 {
                    obs.observe(end.saturating_sub(done), &[]);
                }
            })
            .build();
        let latency = meter
            .f64_histogram(METRIC_COMMIT_TO_EMIT)
            .with_description(
                "Time from a transaction's commit on the server to its changes' hand-off to the CLI",
            )
            .with_unit("ms")
            .with_boundaries(vec![
                1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
                10000.0, 30000.0, 60000.0,
            ])
            .build();
        CdcMetrics {
            shared,
            commits: Mutex::new(VecDeque::new()),
            latency,
            _rate: rate,
            _lag: lag,
        }
    }

    pub fn change(&self) {
        self.shared.changes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn commit(&self, end_lsn: u64, commit_time: i64) {
        if let Ok(mut commits) = self.commits.lock() {
            if commits.len() < MAX_PENDING_COMMITS {
                commits.push_back((end_lsn, commit_time));
            }
        }
    }

    /// Every change before `resume_lsn` is the CLI's; the server has sent up to `wal_end`.
    pub fn handed_off(&self, resume_lsn: u64, wal_end: u64) {
        self.shared.handed_off.store(resume_lsn, Ordering::Relaxed);
        self.shared.server_wal_end.store(wal_end, Ordering::Relaxed);
        let Ok(mut commits) = self.commits.lock() else {
            return;
        };
        if commits.front().is_none_or(|&(lsn, _)| lsn > resume_lsn) {
            return;
        }
        let now = pg_now_micros();
        while let Some(&(lsn, at)) = commits.front() {
            if lsn > resume_lsn {
                break;
            }
            commits.pop_front();
            // A server clock ahead of ours must not give a negative latency.
            let ms = (now.saturating_sub(at)).max(0) as f64 / 1000.0;
            self.latency.record(ms, &[]);
        }
    }
}

impl Shared {
    fn new(now: Instant) -> Shared {
        Shared {
            changes: AtomicU64::new(0),
            server_wal_end: AtomicU64::new(0),
            handed_off: AtomicU64::new(0),
            last_rate: Mutex::new(Some((0, now))),
        }
    }

    /// A change stream has run in this process (nothing is observed before: a plain sync
    /// has no CDC figures to report).
    fn active(&self) -> bool {
        self.server_wal_end.load(Ordering::Relaxed) > 0
    }

    /// Changes per second since the previous call (or the start).
    fn rate(&self, now: Instant) -> Option<f64> {
        if !self.active() {
            return None;
        }
        let changes = self.changes.load(Ordering::Relaxed);
        let mut last = self.last_rate.lock().ok()?;
        let previous = last.replace((changes, now));
        let (before, then) = previous?;
        let secs = now.duration_since(then).as_secs_f64();
        (secs > 0.0).then(|| changes.saturating_sub(before) as f64 / secs)
    }
}

fn pg_now_micros() -> i64 {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    unix - PG_EPOCH_OFFSET_MICROS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_over_the_collection_period() {
        let t0 = Instant::now();
        let s = Shared::new(t0);
        s.changes.fetch_add(10, Ordering::Relaxed);
        assert_eq!(s.rate(t0), None, "no stream yet");
        s.server_wal_end.store(1, Ordering::Relaxed);
        s.changes.fetch_add(490, Ordering::Relaxed);
        let rate = s.rate(t0 + std::time::Duration::from_secs(2));
        assert_eq!(rate, Some(250.0));
        let rate = s.rate(t0 + std::time::Duration::from_secs(4));
        assert_eq!(rate, Some(0.0));
    }
}
