//! The streaming loop: replication messages in, Sync messages out, standby status updates back.
//!
//! Each wake-up handles what arrived (a burst of buffered messages at once), hands over what the
//! change buffer releases, and keeps status updates going even while a slow CLI makes each send
//! wait, so the server's `wal_sender_timeout` never ends the stream.

use std::time::Instant;

use crate::catalog::quote_literal;
use crate::wire::{pg_clock_now, Connection, ReplicationMessage};

use super::ack::{AckTracker, SAFETY_MARGIN};
use super::batch::{BatchConfig, ChangeBuffer, Lsn};
use super::names::CdcNames;
use super::stream::{StreamTable, Streamer};
use super::{CdcError, CdcOptions};
use crate::output::SyncSender;

/// Streams the changes of `tables` from `start_lsn` until the CLI goes away. `repl` is the
/// replication connection, `conn` a normal one (re-reads of rows and columns).
#[allow(clippy::too_many_arguments)]
pub async fn stream_changes(
    mut repl: Connection,
    conn: Connection,
    names: &CdcNames,
    tables: Vec<StreamTable>,
    start_lsn: Lsn,
    options: CdcOptions,
    out: &SyncSender,
    streaming: &mut bool,
) -> Result<(), CdcError> {
    let binary = repl.server_version_num() >= 140_000
        && tables.iter().all(|s| {
            s.table
                .columns
                .iter()
                .all(|c| !c.pg_type.needs_server_text_cast())
        });
    let command = format!(
        "START_REPLICATION SLOT {} LOGICAL {} (proto_version '1', publication_names {}{})",
        names.slot,
        start_lsn,
        quote_literal(&names.publication),
        if binary { ", binary 'true'" } else { "" }
    );
    crate::log_info!(
        format!(
            "streaming changes of {} tables from {} ({} values)",
            tables.len(),
            start_lsn,
            if binary { "binary" } else { "text" }
        ),
        slot = names.slot
    );
    let mut streamer = Streamer::new(
        tables,
        ChangeBuffer::new(BatchConfig::new(options.rows_per_record), start_lsn),
        AckTracker::new(start_lsn, SAFETY_MARGIN),
        conn,
    )
    .with_values(options.values);
    let mut stream = repl.copy_both(&command).await?;
    *streaming = true;
    let mut rate = ReadRate::new(Instant::now());
    let mut lag = LagLine::new(Instant::now());
    loop {
        let now = Instant::now();
        let wake = streamer
            .buffer()
            .next_deadline(now)
            .map_or(streamer.ack().next_status_at(now), |d| {
                d.min(streamer.ack().next_status_at(now))
            });
        let mut reply_now = false;
        tokio::select! {
            m = stream.next_message() => {
                let now = Instant::now();
                let mut bytes = 0;
                reply_now |= on_message(&mut streamer, m?, now, &mut bytes).await?;
                // Messages already in the read buffer (a backlog arrives many to a read) are
                // handled at once, with the same clock reading: the per-wakeup work below
                // (clock reads, polling the buffer, timers) then costs once per burst instead
                // of once per change. The cap keeps hand-overs and status updates going.
                let mut burst = 1;
                while burst < MAX_BURST && stream.has_buffered_message() {
                    let m = stream.next_message().await?;
                    reply_now |= on_message(&mut streamer, m, now, &mut bytes).await?;
                    burst += 1;
                }
                if let Some(bulk) = rate.add(now, bytes) {
                    stream.set_bulk_reads(bulk);
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                // A stream gone quiet leaves bulk reads too.
                if let Some(bulk) = rate.add(Instant::now(), 0) {
                    stream.set_bulk_reads(bulk);
                }
            }
            _ = out.closed() => return Ok(()),
        }
        // Hand over what is ready; between messages (a slow CLI makes each send wait) keep
        // the status updates going so the server does not time the stream out.
        let mut now = Instant::now();
        for o in streamer.ready(now) {
            streamer.send(o, out).await?;
            now = Instant::now();
            if streamer.ack().status_due(now, false) {
                let st = streamer.ack().status(now);
                stream
                    .send_status_update(st.write, st.flush, st.apply, pg_clock_now(), false)
                    .await?;
            }
        }
        streamer.handed_off(now);
        lag.maybe_log(&mut streamer, names, now);
        if streamer.ack().status_due(now, reply_now) {
            let st = streamer.ack().status(now);
            stream
                .send_status_update(st.write, st.flush, st.apply, pg_clock_now(), false)
                .await?;
        }
    }
}

/// How often the stream logs how far behind it is.
pub const LAG_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// The periodic "how far behind" line: bytes between the server's WAL end and the confirmed
/// position, the age of the last commit seen, changes per second since the last line.
struct LagLine {
    at: Instant,
    changes: u64,
}

impl LagLine {
    fn new(now: Instant) -> Self {
        LagLine {
            at: now,
            changes: 0,
        }
    }

    fn maybe_log(&mut self, streamer: &mut Streamer, names: &CdcNames, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at);
        if elapsed < LAG_LOG_INTERVAL {
            return;
        }
        let changes = streamer.changes();
        let per_sec = changes.saturating_sub(self.changes) as f64 / elapsed.as_secs_f64();
        let wal_end = streamer.ack().server_wal_end();
        let confirmed = streamer.ack().confirmed(now);
        let commit_age_ms = streamer
            .last_commit_time()
            .map(|t| (pg_clock_now().saturating_sub(t) / 1000).max(0));
        crate::log_info!(
            "CDC stream position",
            slot = names.slot.as_str(),
            bytes_behind = wal_end.as_u64().saturating_sub(confirmed.as_u64()),
            last_commit_age_ms = commit_age_ms,
            changes_per_sec = per_sec.round() as u64,
            confirmed_lsn = confirmed.to_string(),
            server_wal_end = wal_end.to_string()
        );
        self.at = now;
        self.changes = changes;
    }
}

/// Messages handled per wakeup of the stream loop at most (see its burst loop).
const MAX_BURST: usize = 1024;

/// One replication message: XLogData to the streamer, keepalives to the acknowledgement
/// tracker. Returns whether the server asked for a reply at once. `None` (the server ended
/// the stream) is an error.
async fn on_message(
    streamer: &mut Streamer,
    m: Option<ReplicationMessage<'_>>,
    now: Instant,
    bytes: &mut usize,
) -> Result<bool, CdcError> {
    match m {
        None => Err(CdcError::StreamEnded {
            lsn: streamer.position(),
        }),
        Some(ReplicationMessage::XLogData {
            wal_start,
            wal_end,
            data,
            ..
        }) => {
            streamer.ack().received(wal_end);
            *bytes += data.len();
            streamer.handle_xlog(wal_start, data, now).await?;
            Ok(false)
        }
        Some(ReplicationMessage::PrimaryKeepalive {
            wal_end,
            reply_requested,
            ..
        }) => {
            streamer.ack().received(wal_end);
            if streamer.buffer().is_idle() {
                streamer.ack().idle_at(wal_end, now);
            }
            Ok(reply_requested)
        }
    }
}

/// Decides when the replication stream is read in bulk ([`ReplicationStream::set_bulk_reads`]):
/// while changes arrive at [`ReadRate::ON`] bytes/s or more (a backlog being drained, a
/// bulk load), until the rate falls under [`ReadRate::OFF`]. Draining a backlog, the plugin
/// decodes faster than the walsender sends and was woken for every few messages; each wake-up
/// cost both processes CPU on a machine where they share two cores. At 1,000 single-row
/// transactions/s the stream carries well under 1 MB/s, so latency-bound streams never wait.
///
/// [`ReplicationStream::set_bulk_reads`]: crate::wire::replication::ReplicationStream::set_bulk_reads
struct ReadRate {
    since: Instant,
    bytes: usize,
    bulk: bool,
}

impl ReadRate {
    const ON: f64 = 8e6;
    const OFF: f64 = 2e6;
    const WINDOW: std::time::Duration = std::time::Duration::from_millis(50);

    fn new(now: Instant) -> Self {
        ReadRate {
            since: now,
            bytes: 0,
            bulk: false,
        }
    }

    /// `bytes` of XLogData arrived by `now`; `Some(bulk)` when reads should switch.
    fn add(&mut self, now: Instant, bytes: usize) -> Option<bool> {
        self.bytes += bytes;
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed < Self::WINDOW {
            return None;
        }
        let rate = self.bytes as f64 / elapsed.as_secs_f64();
        self.since = now;
        self.bytes = 0;
        let bulk = if self.bulk {
            rate >= Self::OFF
        } else {
            rate >= Self::ON
        };
        (bulk != self.bulk).then(|| {
            self.bulk = bulk;
            bulk
        })
    }
}

#[cfg(test)]
mod read_rate_tests {
    use super::ReadRate;
    use std::time::{Duration, Instant};

    #[test]
    fn bulk_while_fast_with_hysteresis() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut r = ReadRate::new(t0);
        // 1 MB/s (a busy latency-bound stream): never bulk.
        assert_eq!(r.add(t0 + 10 * ms, 10_000), None);
        assert_eq!(r.add(t0 + 50 * ms, 40_000), None);
        // 50 MB/s: bulk after one window.
        assert_eq!(r.add(t0 + 60 * ms, 500_000), None);
        assert_eq!(r.add(t0 + 100 * ms, 2_000_000), Some(true));
        // 4 MB/s: stays bulk (above OFF); quiet: leaves it.
        assert_eq!(r.add(t0 + 150 * ms, 200_000), None);
        assert_eq!(r.add(t0 + 200 * ms, 0), Some(false));
        assert_eq!(r.add(t0 + 250 * ms, 0), None);
    }
}
