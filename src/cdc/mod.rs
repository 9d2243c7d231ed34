//! Change data capture through logical replication: slot and publication named from `cdc_id`,
//! an initial sync inside the slot's exported snapshot, then the pgoutput stream turned into
//! CloudQuery messages, batched, ordered for the CLI, and acknowledged only once safe.
//!
//! The parts, in the order a CDC sync uses them:
//! - [`names`]: `cdc_id` → slot and publication names (the one statement of the rule).
//! - [`prerequisites`]: Init-time checks (`wal_level`, REPLICATION, streamable tables, the
//!   publication options a server version allows).
//! - [`publication`]: the publication and the backfill marks in its COMMENT ([`state`]).
//! - [`slot`]: the replication slot: its state, creation with an exported snapshot, dropping.
//! - [`backfill`]: the initial sync of the tables that need one, inside a snapshot.
//! - [`apply_loop`]: the streaming loop: replication messages in, Sync messages out, status
//!   updates back to the server.
//! - [`stream`]: one change at a time: relations, TOAST values, records and deletes.
//! - [`batch`]: the change buffer: coalescing per key, flushes per table, holding deletes and
//!   schema changes until earlier inserts passed the CLI, progress LSN.
//! - [`ack`]: which position may be confirmed to the server (hand-off + 10 s safety margin,
//!   idle slots follow the server's WAL end) and when to send status updates.
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

pub(crate) mod ack;
pub(crate) mod apply_loop;
pub(crate) mod backfill;
pub(crate) mod batch;
pub(crate) mod hash;
pub mod names;
pub(crate) mod packed;
pub(crate) mod prerequisites;
pub(crate) mod publication;
pub mod reconnect;
pub(crate) mod slot;
pub(crate) mod state;
pub(crate) mod stream;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use arrow_schema::{ArrowError, SchemaRef};

use crate::catalog::load::CatalogError;
use crate::catalog::Table;
use crate::decode::DecodeError;
use crate::output::{SendError, SyncMessage, SyncSender};
use crate::sync::engine::SyncError;
use crate::wire::{Config, Connection, Error as WireError};

pub use backfill::{Backfill, BackfillFuture};
pub use batch::Lsn;
pub use names::{CdcId, CdcNames};
pub use prerequisites::{
    check_prerequisites, check_publication_options, failover_readiness, CdcTables,
};
pub use slot::drop_objects;
pub use state::CdcState;
pub use stream::StreamTable;

use state::table_key;

/// Why a CDC sync stopped. Context (table, column, LSN) is kept in fields; the text is built
/// only when the error is shown.
#[derive(Debug, thiserror::Error)]
pub enum CdcError {
    /// A prerequisite or setup step failed; the message says what to run where.
    #[error("{0}")]
    Setup(String),
    #[error(
        "replication slot {slot} is in use by server process {pid} (another sync with the same \
         cdc_id?); stop it, or end it with SELECT pg_terminate_backend({pid})"
    )]
    SlotInUse { slot: String, pid: i32 },
    #[error(
        "replication slot {slot} exists but belongs to plugin {plugin:?} on database \
         {database:?}; drop it or choose another cdc_id"
    )]
    SlotElsewhere {
        slot: String,
        plugin: String,
        database: String,
    },
    #[error(
        "replication slot {slot} {reason}; the changes made meanwhile cannot be streamed. To copy \
         every table again, set cdc_on_lost_slot: resync (the sync then ends after the copy, so \
         that the CLI removes rows deleted meanwhile), or start over by hand: \
         SELECT pg_drop_replication_slot('{slot}') (if it still exists); \
         COMMENT ON PUBLICATION {publication} IS NULL"
    )]
    SlotLost {
        slot: String,
        publication: String,
        reason: String,
    },
    #[error("PostgreSQL: {0}")]
    Wire(#[from] WireError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("pgoutput message at LSN {lsn}: {source}")]
    Message {
        lsn: Lsn,
        #[source]
        source: DecodeError,
    },
    #[error("table {table} at LSN {lsn}: column {column}: {source}")]
    Value {
        table: String,
        column: String,
        lsn: Lsn,
        #[source]
        source: DecodeError,
    },
    #[error("table {table} at LSN {lsn}: building a record: {source}")]
    Record {
        table: String,
        lsn: Lsn,
        #[source]
        source: ArrowError,
    },
    #[error("change at LSN {lsn} for unknown relation id {relation_id}")]
    UnknownRelation { relation_id: u32, lsn: Lsn },
    #[error("table {table} at LSN {lsn}: a tuple has more columns than its relation")]
    TupleShape { table: String, lsn: Lsn },
    #[error(
        "table {table} at LSN {lsn}: an update left a TOASTed value unchanged, and the row cannot \
         be re-read by its key column {column} (type not supported for re-reading); set \
         REPLICA IDENTITY FULL on the table"
    )]
    ToastKey {
        table: String,
        column: String,
        lsn: Lsn,
    },
    #[error("table {table}: reading its columns again: {source}")]
    Catalog {
        table: String,
        #[source]
        source: CatalogError,
    },
    #[error("the server ended the replication stream (last position {lsn})")]
    StreamEnded { lsn: Lsn },
    #[error("initial sync: {0}")]
    Backfill(#[source] SyncError),
    #[error(
        "the CDC stream could not reconnect to {hosts} for {}s (cdc_reconnect_timeout); last error: {last}",
        .after.as_secs()
    )]
    ReconnectTimeout {
        hosts: String,
        after: Duration,
        #[source]
        last: Box<CdcError>,
    },
    #[error(transparent)]
    Send(#[from] SendError),
}

/// Options of a CDC sync.
#[derive(Clone, Copy, Debug)]
pub struct CdcOptions {
    pub rows_per_record: usize,
    /// The value options: how tables re-read while streaming map their columns, and the value
    /// rules of the readers.
    pub values: crate::decode::ValueOptions,
    /// How long the stream keeps trying to reconnect after a transient failure.
    pub reconnect_timeout: Duration,
    /// `false`: a new slot streams from its creation without copying the existing rows.
    pub initial_sync: bool,
    pub on_lost_slot: LostSlotAction,
}

impl Default for CdcOptions {
    fn default() -> Self {
        CdcOptions {
            rows_per_record: 500,
            values: crate::decode::ValueOptions::default(),
            reconnect_timeout: reconnect::DEFAULT_RECONNECT_TIMEOUT,
            initial_sync: true,
            on_lost_slot: LostSlotAction::Error,
        }
    }
}

/// What a CDC start does when the slot is gone after an earlier run, or invalidated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostSlotAction {
    /// Stop with what happened and the command that recovers.
    Error,
    /// Create a new slot and copy every streamed table again inside its snapshot.
    Resync,
}

impl LostSlotAction {
    pub fn parse(s: &str) -> Option<LostSlotAction> {
        match s {
            "error" => Some(LostSlotAction::Error),
            "resync" => Some(LostSlotAction::Resync),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LostSlotAction::Error => "error",
            LostSlotAction::Resync => "resync",
        }
    }
}

/// The schemas already sent as `migrate_table`, by destination table: a restarted stream sends
/// a table's schema again only when it changed.
#[derive(Default)]
struct SentSchemas(HashMap<String, SchemaRef>);

impl SentSchemas {
    /// True when `schema` is new for its table (and remembers it).
    fn is_new(&mut self, table: &str, schema: &SchemaRef) -> bool {
        if self.0.get(table) == Some(schema) {
            return false;
        }
        self.0.insert(table.to_string(), schema.clone());
        true
    }
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
    let mut sent = SentSchemas::default();
    // First failure of the current outage, and attempts since.
    let mut outage: Option<(Instant, u32)> = None;
    loop {
        let mut streaming = false;
        let error = match run_inner(
            cfg,
            names,
            selected.clone(),
            options,
            backfill,
            &out,
            &mut sent,
            &mut streaming,
        )
        .await
        {
            // The CLI went away: a normal end of a CDC sync.
            Ok(()) | Err(CdcError::Send(SendError::Closed)) => return Ok(()),
            Err(e) => e,
        };
        if streaming {
            outage = None;
        }
        if !reconnect::is_transient(&error) {
            return Err(error);
        }
        let (since, attempts) = outage.get_or_insert((Instant::now(), 0));
        *attempts += 1;
        let elapsed = since.elapsed();
        if elapsed >= options.reconnect_timeout {
            return Err(CdcError::ReconnectTimeout {
                hosts: cfg.redacted(),
                after: options.reconnect_timeout,
                last: Box::new(error),
            });
        }
        let wait = reconnect::backoff(*attempts).min(options.reconnect_timeout - elapsed);
        crate::log_warn!(
            if *attempts == 1 {
                "CDC stream interrupted; reconnecting"
            } else {
                "CDC reconnect attempt failed; trying again"
            },
            reason = crate::logging::error_chain(&error),
            attempt = *attempts,
            retry_in_ms = wait.as_millis() as u64,
            gives_up_in_s = (options.reconnect_timeout - elapsed).as_secs(),
            slot = names.slot.as_str()
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = out.closed() => return Ok(()),
        }
    }
}

/// One start of the CDC stream: setup, backfill of what needs it, then streaming. Sets
/// `streaming` once the stream runs.
#[allow(clippy::too_many_arguments)]
async fn run_inner(
    cfg: &Config,
    names: &CdcNames,
    selected: Vec<StreamTable>,
    options: CdcOptions,
    backfill: &dyn Backfill,
    out: &SyncSender,
    sent: &mut SentSchemas,
    streaming: &mut bool,
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
    // A standby cannot write: its publication was checked (created on the primary), and the
    // progress marks stay as the primary has them.
    let standby = prerequisites::is_standby(&mut conn).await?;
    let mut state = if standby {
        publication::read_state(&mut conn, &names.publication).await?
    } else {
        publication::ensure_publication(&mut conn, names, &selected, &classified.streamed).await?
    };
    let mut slot = slot::acquire(&mut conn, cfg, names).await?;
    let resync = match lost_slot(slot.as_ref(), &state) {
        None => false,
        Some(reason) => match options.on_lost_slot {
            LostSlotAction::Error => {
                return Err(CdcError::SlotLost {
                    slot: names.slot.clone(),
                    publication: names.publication.clone(),
                    reason,
                })
            }
            LostSlotAction::Resync => {
                crate::log_warn!(
                    format!(
                        "replication slot {} {reason}; cdc_on_lost_slot is resync: creating a new \
                         slot and copying every streamed table again",
                        names.slot
                    ),
                    slot = names.slot.as_str()
                );
                if slot.take().is_some() {
                    slot::drop_slot(&mut conn, &names.slot).await?;
                }
                if !standby {
                    publication::clear_marks(&mut conn, &names.publication).await?;
                }
                state = CdcState::default();
                true
            }
        },
    };
    let streamed_tables: Vec<StreamTable> = selected
        .iter()
        .filter(|s| {
            classified
                .streamed
                .contains(&table_key(&s.table.schema, &s.table.name))
        })
        .cloned()
        .collect();

    let mut repl = Connection::connect_replication(cfg).await?;
    let mut start = match &slot {
        None => {
            let new = slot::create_slot(&mut repl, &names.slot, standby).await?;
            crate::log_info!(
                format!(
                    "created replication slot {} at {}{}",
                    names.slot,
                    new.consistent_point,
                    if options.initial_sync {
                        format!("; initial sync of {} tables", tables.len())
                    } else {
                        "; cdc_initial_sync is false: existing rows are not copied".into()
                    }
                ),
                slot = names.slot
            );
            backfill::Start {
                lsn: new.consistent_point,
                snapshot: Some(new.snapshot_name),
                to_backfill: tables.clone(),
            }
        }
        Some(s) => {
            if repl.server_version_num() >= slot::PG17 && !s.failover && !standby {
                slot::enable_failover(&mut repl, &names.slot).await?;
            }
            backfill::Start {
                lsn: s.confirmed_flush,
                snapshot: None,
                // On a standby no progress can be recorded: an existing slot means its initial
                // sync ran.
                to_backfill: if standby {
                    Vec::new()
                } else {
                    tables
                        .iter()
                        .filter(|t| !state.is_backfilled(&table_key(&t.schema, &t.name)))
                        .cloned()
                        .collect()
                },
            }
        }
    };
    if !options.initial_sync && !start.to_backfill.is_empty() {
        // Nothing is copied, now or later: every streamed table counts as backfilled.
        if !standby {
            publication::mark_backfilled(&mut conn, &names.publication, &classified.streamed)
                .await?;
        }
        start.to_backfill.clear();
    }
    let start_lsn = start.lsn;
    let migrated = backfill::initial_sync(
        cfg,
        &mut conn,
        names,
        &classified,
        start,
        backfill,
        !standby,
    )
    .await?;
    if resync {
        // Ending the sync lets the CLI delete, at destinations in write_mode
        // overwrite-delete-stale, every row this sync did not send again: the rows deleted while
        // the stream had no slot. The next sync streams from the new slot.
        crate::log_warn!(
            format!(
                "resync of {} tables finished; this sync ends so the CLI removes the rows deleted \
                 while the slot was missing (write_mode overwrite-delete-stale); run the sync \
                 again to stream from the new slot",
                migrated.len()
            ),
            slot = names.slot.as_str()
        );
        return Ok(());
    }
    for s in &streamed_tables {
        let schema = crate::catalog::schema::arrow_schema(&s.table, &s.dest_name);
        if migrated.contains(&table_key(&s.table.schema, &s.table.name)) {
            sent.is_new(&s.dest_name, &schema);
        } else if sent.is_new(&s.dest_name, &schema) {
            out.send(SyncMessage::MigrateTable(schema)).await?;
        }
    }
    let streamed = apply_loop::stream_changes(
        repl,
        conn,
        names,
        streamed_tables,
        start_lsn,
        options,
        out,
        streaming,
    )
    .await;
    match streamed {
        // START_REPLICATION refused: the slot can no longer stream from its position (it was
        // invalidated after it was checked above).
        Err(CdcError::Wire(e)) if !*streaming && e.code() == Some("55000") => {
            let reason = format!("cannot stream from its position ({e})");
            match options.on_lost_slot {
                LostSlotAction::Error => Err(CdcError::SlotLost {
                    slot: names.slot.clone(),
                    publication: names.publication.clone(),
                    reason,
                }),
                LostSlotAction::Resync => {
                    // Without the slot the next start finds it lost and resyncs.
                    let mut conn = Connection::connect(cfg).await?;
                    slot::drop_slot(&mut conn, &names.slot).await?;
                    conn.close().await;
                    crate::log_warn!(
                        format!(
                            "replication slot {} {reason}; dropped it to resync",
                            names.slot
                        ),
                        slot = names.slot.as_str()
                    );
                    Err(CdcError::StreamEnded { lsn: start_lsn })
                }
            }
        }
        other => other,
    }
}

/// Why the slot can no longer stream, if it cannot: gone although the publication's marks say
/// an earlier run streamed from it (a failover to a server without it, or dropped by hand), or
/// invalidated by the server.
fn lost_slot(slot: Option<&slot::SlotInfo>, state: &CdcState) -> Option<String> {
    match slot {
        None if !state.backfilled.is_empty() => Some(
            "is missing although an earlier run streamed from it (a failover to a server without \
             the slot, or dropped by hand)"
                .into(),
        ),
        None => None,
        Some(s) => s
            .invalidated
            .as_ref()
            .map(|why| format!("was invalidated by the server ({why})")),
    }
}

/// Drops one `cdc_id`'s slot and publication (the `cleanup-cdc` command); one line per object,
/// dropped or absent.
pub async fn cleanup(cfg: &Config, cdc_id: &CdcId) -> Result<Vec<String>, CdcError> {
    let mut conn = Connection::connect(cfg).await?;
    let dropped = drop_objects(&mut conn, cdc_id.names()).await;
    conn.close().await;
    dropped
}
