//! Change data capture through logical replication: slot and publication named from `cdc_id`,
//! an initial sync inside the slot's exported snapshot, then the pgoutput stream turned into
//! CloudQuery messages, batched, ordered for the CLI, and acknowledged only once safe.
//!
//! - [`names`]: `cdc_id` → slot and publication names (the documented rule).
//! - [`state`]: progress (which tables are backfilled) in the publication's COMMENT.
//! - [`batch`]: the change buffer: coalescing per key, flushes per table, holding deletes and
//!   schema changes until earlier inserts passed the CLI, progress LSN.
//! - [`ack`]: which position may be confirmed to the server (hand-off + 10 s safety margin,
//!   idle slots follow the server's WAL end) and when to send status updates.
//! - [`setup`]: Init-time prerequisites, publication, slot, state reads and writes, drop.
//! - [`stream`]: pgoutput → buffer → Sync messages.
//! - [`run`]: the whole CDC sync.
//!
//! # Protocol choice
//! pgoutput `proto_version '1'`: it is the same on PostgreSQL 12 to 18 and delivers each
//! transaction whole at its commit (the server spills big ones to disk), which is what the
//! buffer's progress rule needs. Version 2 only adds streaming of in-progress transactions
//! (which would need our own spill and abort handling), 3 two-phase commit and 4 parallel apply;
//! none helps here. `binary 'true'` (PostgreSQL ≥ 14) is asked for when every streamed column
//! has a native decoder, so values arrive in the COPY send format; otherwise values come as
//! text and [`crate::decode::text`] converts them.
//!
//! # Sequence
//! 1. Prerequisites (also at Init): `wal_level`, REPLICATION, a free slot, a streamable table.
//! 2. Publication = exactly the streamable selected tables (created, or `ALTER … SET TABLE`),
//!    `publish_via_partition_root` on ≥ 13; backfill marks of tables that were not in it are
//!    dropped (their changes were not captured meanwhile).
//! 3. First start: `CREATE_REPLICATION_SLOT … EXPORT_SNAPSHOT` on the replication connection,
//!    every selected table synced inside that snapshot (the replication connection stays idle),
//!    tables marked backfilled, stream from the slot's consistent point: no gap, no duplicate.
//!    Later starts: tables not marked (new in the selection, or an interrupted first sync) and
//!    the non-streamable ones are synced in a fresh snapshot, then the stream resumes from the
//!    slot's confirmed position; changes replayed over a fresher snapshot converge (upserts and
//!    deletes in commit order).
//! 4. Stream until the CLI goes away.

pub mod ack;
pub mod batch;
pub mod hash;
pub mod names;
pub mod packed;
pub mod setup;
pub mod state;
pub mod stream;

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use crate::catalog::Table;
use crate::decode::DecodeError;
use crate::plugin::service::{SendError, SyncMessage, SyncSender};
use crate::wire::{pg_clock_now, Config, Connection, Error as WireError, ReplicationMessage};

pub use names::{cdc_names, CdcNames};
pub use setup::{check_prerequisites, check_publication_options, drop_objects, CdcTables};
pub use state::CdcState;
pub use stream::StreamTable;

use ack::{AckTracker, SAFETY_MARGIN};
use batch::{BatchConfig, ChangeBuffer, DELETE_HOLD};
use setup::{format_lsn, quote_literal_sql};
use state::table_key;
use stream::Streamer;

#[derive(Debug, thiserror::Error)]
pub enum CdcError {
    /// A prerequisite or setup step failed; the message says what to do.
    #[error("{0}")]
    Setup(String),
    #[error("PostgreSQL: {0}")]
    Wire(#[from] WireError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("decoding: {0}")]
    Decode(#[from] DecodeError),
    #[error("change stream: {0}")]
    Stream(String),
    #[error("initial sync: {0}")]
    Backfill(String),
    #[error(transparent)]
    Send(#[from] SendError),
}

/// How long to wait for the slot to be released by a previous run's walsender.
const SLOT_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Options of a CDC sync.
#[derive(Clone, Copy, Debug)]
pub struct CdcOptions {
    pub rows_per_record: usize,
    /// The value options: how tables re-read while streaming map their columns, and the value
    /// rules of the readers.
    pub values: crate::decode::ValueOptions,
}

/// A boxed future of the backfill.
pub type BackfillFuture<'a> = Pin<Box<dyn Future<Output = Result<(), CdcError>> + Send + 'a>>;

/// The full-sync engine as CDC uses it (implemented by the source over
/// `sync::engine::run_in_snapshot`): send `MigrateTable` and every row of `tables` to the CLI,
/// reading through `leader`, a connection inside `BEGIN ISOLATION LEVEL REPEATABLE READ READ
/// ONLY` whose snapshot is `snapshot_name` (workers import it with `SET TRANSACTION SNAPSHOT`).
/// The caller commits `leader` afterwards.
pub trait Backfill: Send + Sync {
    fn backfill<'a>(
        &'a self,
        leader: &'a mut Connection,
        snapshot_name: &'a str,
        tables: &'a [Table],
    ) -> BackfillFuture<'a>;
}

/// Sync with CDC: setup, backfill what needs it, then stream until the CLI goes away
/// (`Ok(())`). `selected` are the selected tables with their destination names.
pub async fn run(
    cfg: &Config,
    names: &CdcNames,
    selected: Vec<StreamTable>,
    options: CdcOptions,
    backfill: &dyn Backfill,
    out: SyncSender,
) -> Result<(), CdcError> {
    match run_inner(cfg, names, selected, options, backfill, &out).await {
        // The CLI went away: a normal end of a CDC sync.
        Err(CdcError::Send(SendError::Closed)) => Ok(()),
        other => other,
    }
}

async fn run_inner(
    cfg: &Config,
    names: &CdcNames,
    selected: Vec<StreamTable>,
    options: CdcOptions,
    backfill: &dyn Backfill,
    out: &SyncSender,
) -> Result<(), CdcError> {
    let mut conn = Connection::connect(cfg).await?;
    let tables: Vec<Table> = selected.iter().map(|s| s.table.clone()).collect();
    let classified = check_prerequisites(&mut conn, names, &tables).await?;
    for (t, why) in &classified.not_streamed {
        crate::log_warn!(
            format!("table {t} is synced once but not streamed: {why}"),
            table = t
        );
    }
    let state =
        setup::ensure_publication(&mut conn, names, &selected, &classified.streamed).await?;
    // A previous run that was killed leaves its walsender behind until the server notices the
    // closed socket: give it a few seconds to let go of the slot.
    let mut slot = setup::slot_info(&mut conn, &names.slot).await?;
    let wait_until = Instant::now() + SLOT_RELEASE_WAIT;
    while slot.as_ref().is_some_and(|s| s.active_pid.is_some()) && Instant::now() < wait_until {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        slot = setup::slot_info(&mut conn, &names.slot).await?;
    }
    if let Some(s) = &slot {
        if let Some(pid) = s.active_pid {
            return Err(CdcError::Setup(format!(
                "replication slot {} is in use by server process {pid} (another sync with the same \
                 cdc_id?); stop it, or end it with SELECT pg_terminate_backend({pid})",
                names.slot
            )));
        }
        if s.plugin != "pgoutput" || s.database != cfg.dbname() {
            return Err(CdcError::Setup(format!(
                "replication slot {} exists but belongs to plugin {:?} on database {:?}; drop it \
                 or choose another cdc_id",
                names.slot, s.plugin, s.database
            )));
        }
    }
    let streamed_tables: Vec<&StreamTable> = selected
        .iter()
        .filter(|s| {
            classified
                .streamed
                .contains(&table_key(&s.table.schema, &s.table.name))
        })
        .collect();

    let mut repl = Connection::connect_replication(cfg).await?;
    let (start_lsn, snapshot, to_backfill) = match &slot {
        None => {
            let new = setup::create_slot(&mut repl, &names.slot).await?;
            crate::log_info!(
                format!(
                    "created replication slot {} at {}; initial sync of {} tables",
                    names.slot,
                    format_lsn(new.consistent_point),
                    tables.len()
                ),
                slot = names.slot
            );
            (
                new.consistent_point,
                Some(new.snapshot_name),
                tables.clone(),
            )
        }
        Some(s) => {
            let todo: Vec<Table> = tables
                .iter()
                .filter(|t| !state.is_backfilled(&table_key(&t.schema, &t.name)))
                .cloned()
                .collect();
            (s.confirmed_flush, None, todo)
        }
    };

    let mut migrated: Vec<String> = Vec::new();
    if !to_backfill.is_empty() {
        let mut leader = Connection::connect(cfg).await?;
        let snapshot_name = match snapshot {
            Some(name) => {
                leader
                    .batch_execute(&format!(
                        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
                        quote_literal_sql(&name)
                    ))
                    .await?;
                name
            }
            None => {
                let r = leader
                    .simple_query(
                        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_export_snapshot()",
                    )
                    .await?;
                r.into_iter()
                    .flat_map(|r| r.rows)
                    .next()
                    .and_then(|row| row.into_iter().next().flatten())
                    .ok_or_else(|| CdcError::Setup("pg_export_snapshot returned nothing".into()))?
            }
        };
        crate::log_info!(
            format!("backfilling {} tables", to_backfill.len()),
            tables = to_backfill
                .iter()
                .map(|t| table_key(&t.schema, &t.name))
                .collect::<Vec<_>>()
        );
        backfill
            .backfill(&mut leader, &snapshot_name, &to_backfill)
            .await?;
        leader.batch_execute("COMMIT").await?;
        leader.close().await;
        let done: Vec<String> = to_backfill
            .iter()
            .map(|t| table_key(&t.schema, &t.name))
            .filter(|k| classified.streamed.contains(k))
            .collect();
        setup::mark_backfilled(&mut conn, &names.publication, &done).await?;
        migrated = to_backfill
            .iter()
            .map(|t| table_key(&t.schema, &t.name))
            .collect();
        // The backfill's inserts are in the CLI's pipeline: a replayed delete must not
        // overtake them (see batch.rs).
        tokio::time::sleep(DELETE_HOLD).await;
    }
    for s in &streamed_tables {
        if !migrated.contains(&table_key(&s.table.schema, &s.table.name)) {
            let schema = crate::catalog::schema::arrow_schema(&s.table, &s.dest_name);
            out.send(SyncMessage::MigrateTable(schema)).await?;
        }
    }

    let binary = repl.server_version_num() >= 140_000
        && streamed_tables.iter().all(|s| {
            s.table
                .columns
                .iter()
                .all(|c| !c.pg_type.needs_server_text_cast())
        });
    let command = format!(
        "START_REPLICATION SLOT {} LOGICAL {} (proto_version '1', publication_names {}{})",
        names.slot,
        format_lsn(start_lsn),
        quote_literal_sql(&names.publication),
        if binary { ", binary 'true'" } else { "" }
    );
    crate::log_info!(
        format!(
            "streaming changes of {} tables from {} ({} values)",
            streamed_tables.len(),
            format_lsn(start_lsn),
            if binary { "binary" } else { "text" }
        ),
        slot = names.slot
    );
    let mut streamer = Streamer::new(
        streamed_tables.into_iter().cloned().collect(),
        ChangeBuffer::new(BatchConfig::new(options.rows_per_record), start_lsn),
        AckTracker::new(start_lsn, SAFETY_MARGIN),
        conn,
    )
    .with_values(options.values);
    let mut stream = repl.copy_both(&command).await?;
    let mut rate = ReadRate::new(Instant::now());
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
                    .send_status_update(
                        st.write.into(),
                        st.flush.into(),
                        st.apply.into(),
                        pg_clock_now(),
                        false,
                    )
                    .await?;
            }
        }
        streamer.handed_off(now);
        if streamer.ack().status_due(now, reply_now) {
            let st = streamer.ack().status(now);
            stream
                .send_status_update(
                    st.write.into(),
                    st.flush.into(),
                    st.apply.into(),
                    pg_clock_now(),
                    false,
                )
                .await?;
        }
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
        None => Err(CdcError::Stream(
            "the server ended the replication stream".into(),
        )),
        Some(ReplicationMessage::XLogData {
            wal_start,
            wal_end,
            data,
            ..
        }) => {
            streamer.ack().received(wal_end.into());
            *bytes += data.len();
            streamer.handle_xlog(wal_start.into(), data, now).await?;
            Ok(false)
        }
        Some(ReplicationMessage::PrimaryKeepalive {
            wal_end,
            reply_requested,
            ..
        }) => {
            streamer.ack().received(wal_end.into());
            if streamer.buffer().is_idle() {
                streamer.ack().idle_at(wal_end.into(), now);
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
