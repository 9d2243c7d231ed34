//! The acknowledgement tracker: which WAL position may be confirmed to the server.
//!
//! Pure (the caller passes `now`). The confirmed (flush) position tells the server it may
//! discard the WAL before it, and a restarted stream resumes there, so it must be safe at every
//! instant: the CLI kills the plugin and the destination at once on Ctrl-C (reference §9).
//!
//! Rules:
//! - **Never past the CLI.** Progress comes from [`ChangeBuffer::resume_lsn`]: every change
//!   before it was handed to the CLI.
//! - **Safety margin.** Destinations buffer after receiving: the Go SDK's batch writers flush
//!   every 5 s or 10,000 rows, so a change handed to the CLI can still be lost when both
//!   processes die. A position is confirmed only [`SAFETY_MARGIN`] (10 s, twice the SDK's flush
//!   interval) after everything before it was handed over. At-least-once: after a crash up to
//!   ~10 s of changes are sent again (upserts and deletes are idempotent), none are lost.
//! - **Idle slots follow the server.** While nothing is buffered and no transaction is half
//!   received, a keepalive's `wal_end` (the position the walsender has sent up to) has nothing
//!   of ours before it that was not handed over, so it becomes confirmable as soon as the last
//!   real hand-off has aged past the margin. Without this an idle publication would hold WAL
//!   forever while other databases write.
//! - **Status updates** go at least every [`STATUS_INTERVAL`] and at once when the server sets
//!   `reply_requested`; write = highest position received, flush = apply = confirmed.
//!
//! [`ChangeBuffer::resume_lsn`]: super::batch::ChangeBuffer::resume_lsn

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::batch::Lsn;

/// How long after hand-off a position becomes confirmable (see the module docs).
pub const SAFETY_MARGIN: Duration = Duration::from_secs(10);

/// Longest time between two standby status updates (PostgreSQL's default
/// `wal_sender_timeout` is 60 s; the issue asks for progress at least every second).
pub const STATUS_INTERVAL: Duration = Duration::from_millis(500);

/// One standby status update's positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub write: Lsn,
    pub flush: Lsn,
    pub apply: Lsn,
}

#[derive(Debug)]
pub struct AckTracker {
    margin: Duration,
    /// Positions not yet confirmable, increasing, each with the time it becomes confirmable.
    checkpoints: VecDeque<(Lsn, Instant)>,
    confirmed: Lsn,
    /// Highest position handed in (checkpoints or confirmed).
    latest: Lsn,
    received: Lsn,
    last_status: Option<Instant>,
}

impl AckTracker {
    /// `start` is the slot's confirmed position when streaming starts.
    pub fn new(start: Lsn, margin: Duration) -> Self {
        AckTracker {
            margin,
            checkpoints: VecDeque::new(),
            confirmed: start,
            latest: start,
            received: start,
            last_status: None,
        }
    }

    /// A message from the server reached up to `wal_end` (XLogData or keepalive).
    pub fn received(&mut self, wal_end: Lsn) {
        self.received = self.received.max(wal_end);
    }

    /// The highest WAL end the server reported (telemetry's lag figure).
    pub fn server_wal_end(&self) -> Lsn {
        self.received
    }

    /// Everything before `resume` has been handed to the CLI (the buffer's `resume_lsn`
    /// after a hand-off).
    pub fn handed_off(&mut self, resume: Lsn, now: Instant) {
        if resume > self.latest {
            self.latest = resume;
            self.checkpoints.push_back((resume, now + self.margin));
        }
    }

    /// A keepalive arrived while the buffer was idle (nothing buffered, no open transaction):
    /// `wal_end` is confirmable as soon as everything handed over before it is.
    pub fn idle_at(&mut self, wal_end: Lsn, now: Instant) {
        if wal_end > self.latest {
            self.latest = wal_end;
            let at = self.checkpoints.back().map_or(now, |(_, at)| *at);
            self.checkpoints.push_back((wal_end, at));
        }
    }

    /// The confirmable position now.
    pub fn confirmed(&mut self, now: Instant) -> Lsn {
        while let Some(&(lsn, at)) = self.checkpoints.front() {
            if at > now {
                break;
            }
            self.confirmed = self.confirmed.max(lsn);
            self.checkpoints.pop_front();
        }
        self.confirmed
    }

    /// Whether a status update should be sent now.
    pub fn status_due(&self, now: Instant, reply_requested: bool) -> bool {
        reply_requested
            || self
                .last_status
                .is_none_or(|at| now.saturating_duration_since(at) >= STATUS_INTERVAL)
    }

    /// The next status update (and remember it was sent now).
    pub fn status(&mut self, now: Instant) -> Status {
        let flush = self.confirmed(now);
        self.last_status = Some(now);
        Status {
            write: self.received.max(flush),
            flush,
            apply: flush,
        }
    }

    /// When the next status update is due at the latest.
    pub fn next_status_at(&self, now: Instant) -> Instant {
        self.last_status.map_or(now, |at| at + STATUS_INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn confirms_only_after_the_margin() {
        let t0 = Instant::now();
        let mut a = AckTracker::new(100, 10 * S);
        a.handed_off(200, t0);
        a.handed_off(300, t0 + 2 * S);
        assert_eq!(a.confirmed(t0 + 9 * S), 100);
        assert_eq!(a.confirmed(t0 + 10 * S), 200);
        assert_eq!(a.confirmed(t0 + 11 * S), 200);
        assert_eq!(a.confirmed(t0 + 12 * S), 300);
    }

    #[test]
    fn never_goes_back() {
        let t0 = Instant::now();
        let mut a = AckTracker::new(100, 10 * S);
        a.handed_off(50, t0);
        a.idle_at(80, t0);
        assert_eq!(a.confirmed(t0 + 100 * S), 100);
    }

    #[test]
    fn idle_follows_wal_end_once_earlier_hand_offs_aged() {
        let t0 = Instant::now();
        let mut a = AckTracker::new(100, 10 * S);
        a.idle_at(150, t0);
        assert_eq!(a.confirmed(t0), 150, "nothing pending: follow at once");
        a.handed_off(200, t0 + S);
        a.idle_at(500, t0 + 2 * S);
        assert_eq!(a.confirmed(t0 + 5 * S), 150);
        assert_eq!(
            a.confirmed(t0 + 11 * S),
            500,
            "matures with the hand-off before it"
        );
    }

    #[test]
    fn status_cadence() {
        let t0 = Instant::now();
        let mut a = AckTracker::new(100, 10 * S);
        assert!(a.status_due(t0, false));
        a.received(400);
        assert_eq!(
            a.status(t0),
            Status {
                write: 400,
                flush: 100,
                apply: 100
            }
        );
        assert!(!a.status_due(t0 + S / 4, false));
        assert!(a.status_due(t0 + S / 4, true));
        assert!(a.status_due(t0 + STATUS_INTERVAL, false));
        assert_eq!(a.next_status_at(t0), t0 + STATUS_INTERVAL);
    }
}
