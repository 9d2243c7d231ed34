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

pub mod ack;
pub mod apply_loop;
pub mod backfill;
pub mod batch;
pub mod hash;
pub mod names;
pub mod packed;
pub mod prerequisites;
pub mod publication;
pub mod slot;
pub mod state;
pub mod stream;

use arrow_schema::ArrowError;

use crate::catalog::load::CatalogError;
use crate::catalog::Table;
use crate::decode::DecodeError;
use crate::output::{SendError, SyncMessage, SyncSender};
use crate::sync::engine::SyncError;
use crate::wire::{Config, Connection, Error as WireError};

pub use backfill::{Backfill, BackfillFuture};
pub use batch::Lsn;
pub use names::{CdcId, CdcNames};
pub use prerequisites::{check_prerequisites, check_publication_options, CdcTables};
pub use slot::{drop_objects, format_lsn, parse_lsn};
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
    #[error("PostgreSQL: {0}")]
    Wire(#[from] WireError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("pgoutput message at LSN {}: {source}", lsn_text(.lsn))]
    Message {
        lsn: Lsn,
        #[source]
        source: DecodeError,
    },
    #[error("table {table} at LSN {}: column {column}: {source}", lsn_text(.lsn))]
    Value {
        table: String,
        column: String,
        lsn: Lsn,
        #[source]
        source: DecodeError,
    },
    #[error("table {table} at LSN {}: building a record: {source}", lsn_text(.lsn))]
    Record {
        table: String,
        lsn: Lsn,
        #[source]
        source: ArrowError,
    },
    #[error("change at LSN {} for unknown relation id {relation_id}", lsn_text(.lsn))]
    UnknownRelation { relation_id: u32, lsn: Lsn },
    #[error(
        "table {table} at LSN {}: a tuple has more columns than its relation",
        lsn_text(.lsn)
    )]
    TupleShape { table: String, lsn: Lsn },
    #[error(
        "table {table} at LSN {}: an update left a TOASTed value unchanged, and the row cannot \
         be re-read by its key column {column} (type not supported for re-reading); set \
         REPLICA IDENTITY FULL on the table",
        lsn_text(.lsn)
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
    #[error("the server ended the replication stream (last position {})", lsn_text(.lsn))]
    StreamEnded { lsn: Lsn },
    #[error("initial sync: {0}")]
    Backfill(#[source] SyncError),
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
        publication::ensure_publication(&mut conn, names, &selected, &classified.streamed).await?;
    let slot = slot::acquire(&mut conn, cfg, names).await?;
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
    let start = match &slot {
        None => {
            let new = slot::create_slot(&mut repl, &names.slot).await?;
            crate::log_info!(
                format!(
                    "created replication slot {} at {}; initial sync of {} tables",
                    names.slot,
                    format_lsn(new.consistent_point),
                    tables.len()
                ),
                slot = names.slot
            );
            backfill::Start {
                lsn: new.consistent_point,
                snapshot: Some(new.snapshot_name),
                to_backfill: tables.clone(),
            }
        }
        Some(s) => backfill::Start {
            lsn: s.confirmed_flush,
            snapshot: None,
            to_backfill: tables
                .iter()
                .filter(|t| !state.is_backfilled(&table_key(&t.schema, &t.name)))
                .cloned()
                .collect(),
        },
    };
    let start_lsn = start.lsn;
    let migrated =
        backfill::initial_sync(cfg, &mut conn, names, &classified, start, backfill).await?;
    for s in &streamed_tables {
        if !migrated.contains(&table_key(&s.table.schema, &s.table.name)) {
            let schema = crate::catalog::schema::arrow_schema(&s.table, &s.dest_name);
            out.send(SyncMessage::MigrateTable(schema)).await?;
        }
    }
    apply_loop::stream_changes(repl, conn, names, streamed_tables, start_lsn, options, out).await
}

/// Drops one `cdc_id`'s slot and publication (the `cleanup-cdc` command); one line per object,
/// dropped or absent.
pub async fn cleanup(cfg: &Config, cdc_id: &CdcId) -> Result<Vec<String>, CdcError> {
    let mut conn = Connection::connect(cfg).await?;
    let dropped = drop_objects(&mut conn, cdc_id.names()).await;
    conn.close().await;
    dropped
}

/// An LSN in its `X/Y` text form, for error messages.
fn lsn_text(lsn: &Lsn) -> String {
    format_lsn(*lsn)
}
