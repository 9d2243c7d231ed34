//! An incremental sync: positions from CloudQuery's state backend, one snapshot for every
//! table, and each incremental table's new position stored once all of its records are the
//! CLI's.
//!
//! 1. Load the state table from the backend.
//! 2. Open the leader's REPEATABLE READ transaction, export its snapshot and read it with 64-bit
//!    ids (`pg_current_snapshot()`, `txid_current_snapshot()` on 12); in cursor mode also the
//!    largest cursor value under that snapshot.
//! 3. Per incremental table, decide what to read from its stored position
//!    ([`crate::incremental::plan_read`]): the whole table, or the changed rows' scans.
//! 4. Read every table with the full-sync engine in that snapshot. When the engine reports a
//!    table done (every row handed to the output channel without error), wait until the gRPC
//!    stream has taken those records, then write the table's new position. A table that fails,
//!    or a sync that dies first, leaves the old position: the next sync reads from there again.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::api::BackendOptions;
use super::send_migrations;
use super::state_client::{StateClient, StateError};
use super::table_options::TableSettings;
use crate::catalog::{quote_ident, Table};
use crate::incremental::PositionError;
use crate::incremental::{
    plan_read, CursorColumn, Mode, PgSnapshot, Position, Read, Scope, StateTable,
};
use crate::output::{SendError, SyncSender};
use crate::sync::engine::{self, SyncOptions, TableDone};
use crate::sync::plan::{from_clause, TablePlan};
use crate::wire::{self, Connection};
use crate::{log_error, log_info, log_warn};

/// First server version with `pg_current_snapshot()`; 12 has the same 64-bit values from
/// `txid_current_snapshot()`.
const PG_CURRENT_SNAPSHOT_VERSION: u32 = 130000;

/// Why an incremental sync could not run.
#[derive(Debug, thiserror::Error)]
pub enum IncrementalError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("failed to start the sync: {0}")]
    Start(#[source] wire::Error),
    #[error(
        "table {table}: the stored position under key {key:?} in the state table {state_table:?} \
         {source}; to read the table whole again, delete that key from the state table at the \
         destination (e.g. DELETE FROM {state_table} WHERE key = '{}')",
        .key.replace('\'', "''")
    )]
    StoredPosition {
        table: String,
        key: String,
        state_table: String,
        #[source]
        source: PositionError,
    },
    #[error("table {table}: reading the cursor's largest value: {source}")]
    Cursor {
        table: String,
        #[source]
        source: wire::Error,
    },
    #[error(transparent)]
    Send(#[from] SendError),
    #[error(transparent)]
    Sync(#[from] engine::SyncError),
}

/// An incremental table of this sync.
pub struct IncrementalTable {
    /// Index into the sync's plans.
    pub plan: usize,
    pub mode: Mode,
    pub key: String,
    pub scope: Scope,
}

/// What a sync with incremental tables needs besides the plans.
pub struct IncrementalSync<'a> {
    pub config: &'a wire::Config,
    pub backend: &'a BackendOptions,
    pub tables: Vec<IncrementalTable>,
}

/// The spec lines a sync with incremental tables needs, for the error when they are missing.
pub fn missing_backend_message(tables: &[String]) -> String {
    let shown: Vec<&str> = tables.iter().take(5).map(String::as_str).collect();
    let more = if tables.len() > shown.len() {
        format!(" and {} more", tables.len() - shown.len())
    } else {
        String::new()
    };
    format!(
        "incremental tables ({}{more}) need CloudQuery's state backend to remember where each \
         sync stopped; add to the source spec (beside `tables`, not inside the nested `spec`):\n  \
         backend_options:\n    table_name: cq_state_postgresql\n    connection: \
         \"@@plugins.<destination name>.connection\"",
        shown.join(", ")
    )
}

impl IncrementalSync<'_> {
    /// The whole sync of `plans` (incremental and not) in one snapshot.
    pub async fn run(
        self,
        mut plans: Vec<TablePlan>,
        options: SyncOptions,
        out: SyncSender,
    ) -> Result<(), IncrementalError> {
        let backend = &self.backend;
        let client = StateClient::connect(&backend.connection, &backend.table_name).await?;
        let state = client.load().await?;
        log_info!(
            "state backend loaded",
            table = backend.table_name.as_str(),
            keys = state.len()
        );

        let mut leader = Connection::connect(self.config)
            .await
            .map_err(IncrementalError::Start)?;
        let begin = async {
            let name = engine::begin_exported_snapshot(&mut leader).await?;
            let current = current_snapshot(&mut leader).await?;
            let next_xid = next_xid(&mut leader, &current).await?;
            Ok::<_, wire::Error>((name, current, next_xid))
        };
        let (snapshot_name, current, next_xid) = begin.await.map_err(IncrementalError::Start)?;

        let mut pending = Vec::with_capacity(self.tables.len());
        for t in self.tables {
            let plan = &mut plans[t.plan];
            let previous = match state.get(&t.key) {
                None | Some("") => None,
                Some(text) => Some(Position::from_json(text).map_err(|source| {
                    IncrementalError::StoredPosition {
                        table: plan.table.display_name.clone(),
                        key: t.key.clone(),
                        state_table: backend.table_name.clone(),
                        source,
                    }
                })?),
            };
            // Cursor mode: the largest value now (the new position) and the column's SQL type.
            let (cursor, cursor_column) = match &t.mode {
                Mode::Cursor { column } => (
                    max_cursor(&mut leader, plan, column)
                        .await
                        .map_err(|source| IncrementalError::Cursor {
                            table: plan.table.display_name.clone(),
                            source,
                        })?,
                    plan.table
                        .columns
                        .iter()
                        .find(|c| &c.name == column)
                        .map(|c| CursorColumn {
                            name: &c.name,
                            type_name: &c.type_name,
                        }),
                ),
                Mode::Xmin => (None, None),
            };
            let read = plan_read(
                previous.as_ref(),
                &t.mode,
                &t.scope,
                &current,
                cursor_column,
            );
            let read_what = match (&read, &previous) {
                (Read::Changes(scans), Some(prev)) => {
                    plan.scans = Some(Arc::from(scans.clone()));
                    ReadWhat::ChangesSince(prev.describe())
                }
                (Read::Whole(reason), _) => ReadWhat::Whole(reason.to_string()),
                (Read::Changes(_), None) => ReadWhat::Whole("no stored position".into()),
            };
            if let ReadWhat::Whole(reason) = &read_what {
                log_info!(
                    format!("incremental: reading the whole table ({reason})"),
                    table = plan.table.display_name.as_str()
                );
            }
            pending.push(Pending {
                plan: t.plan,
                key: t.key,
                read_what,
                position: Position {
                    mode: t.mode,
                    snapshot: current.clone(),
                    next_xid,
                    cursor,
                    scope: t.scope,
                },
            });
        }

        send_migrations(&out, &plans).await?;
        let names: Vec<String> = plans.iter().map(|p| p.table.display_name.clone()).collect();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let options = SyncOptions {
            table_done: Some(done_tx),
            ..options
        };
        let read = engine::run_in_snapshot(
            self.config,
            leader,
            &snapshot_name,
            plans,
            options,
            out.clone(),
        );
        let store = store_positions(done_rx, pending, state, &client, &out, &names);
        let (read, stored) = tokio::join!(read, store);
        read?;
        if stored > 0 {
            log_info!("incremental positions stored", tables = stored);
        }
        Ok(())
    }
}

/// A table whose new position waits for the engine to finish it.
struct Pending {
    plan: usize,
    key: String,
    read_what: ReadWhat,
    position: Position,
}

/// What an incremental table's read covers, for the progress log.
enum ReadWhat {
    /// The whole table, and why.
    Whole(String),
    /// The rows changed since this (described) position.
    ChangesSince(String),
}

/// Stores each finished incremental table's position; returns how many were stored. A failed
/// write is logged as an error (the CLI counts it) and the sync goes on: that table's changes
/// are read again next time.
async fn store_positions(
    mut done: mpsc::UnboundedReceiver<TableDone>,
    mut pending: Vec<Pending>,
    mut state: StateTable,
    client: &StateClient,
    out: &SyncSender,
    names: &[String],
) -> usize {
    let mut stored = 0;
    while let Some(TableDone { table, rows }) = done.recv().await {
        let Some(at) = pending.iter().position(|p| p.plan == table) else {
            continue;
        };
        let p = pending.swap_remove(at);
        let name = names.get(table).map(String::as_str).unwrap_or_default();
        // Its records must be the CLI's before the position moves past them.
        if out.flushed().await.is_err() {
            return stored;
        }
        state.set(&p.key, p.position.to_json());
        let rows_to_write = state.take_dirty();
        match client.write(&rows_to_write).await {
            Ok(()) => {
                stored += 1;
                let message = match &p.read_what {
                    ReadWhat::Whole(reason) => {
                        format!("incremental: whole table read ({reason}), {rows} rows")
                    }
                    ReadWhat::ChangesSince(since) => {
                        format!("incremental: {rows} changed rows since {since}")
                    }
                };
                log_info!(
                    message,
                    table = name,
                    rows = rows,
                    position = p.position.describe()
                );
            }
            Err(e) => {
                state.restore_dirty(&rows_to_write);
                log_error!(
                    "incremental: could not store the table's position; its changes will be read again next sync",
                    table = name,
                    error = super::api::chain_text(&e)
                );
            }
        }
    }
    for p in pending {
        let name = names.get(p.plan).map(String::as_str).unwrap_or_default();
        log_warn!(
            "incremental: table not finished; its position stays where it was",
            table = name
        );
    }
    stored
}

/// The transaction's snapshot with 64-bit ids.
async fn current_snapshot(conn: &mut Connection) -> Result<PgSnapshot, wire::Error> {
    let sql = if conn.server_version_num() >= PG_CURRENT_SNAPSHOT_VERSION {
        "SELECT pg_current_snapshot()::text"
    } else {
        "SELECT txid_current_snapshot()::text"
    };
    let text = first_value(conn, sql).await?;
    PgSnapshot::parse(&text).map_err(|e| wire::Error::protocol(e.to_string()))
}

/// The next transaction id to be assigned, read after `snapshot` was taken (so at or past the
/// one at that instant): `age(xid)` counts from it, in 32 bits, without assigning an id to the
/// reading transaction.
async fn next_xid(conn: &mut Connection, snapshot: &PgSnapshot) -> Result<u64, wire::Error> {
    let sql = format!("SELECT age('{}'::xid)", snapshot.xmax & 0xFFFF_FFFF);
    let text = first_value(conn, &sql).await?;
    let ahead: i64 = text
        .trim()
        .parse()
        .map_err(|_| wire::Error::protocol(format!("{sql} returned {text:?}")))?;
    // Negative only if 2^31 ids passed in between, which the server's wraparound guard forbids.
    Ok(snapshot
        .xmax
        .saturating_add(u64::try_from(ahead).unwrap_or(0)))
}

/// The largest cursor value under the transaction's snapshot, in its text form (None: no value,
/// or a server error such as a table the user may not read: the read of the table then fails
/// with that error too, and its position is not stored).
async fn max_cursor(
    conn: &mut Connection,
    plan: &TablePlan,
    column: &str,
) -> Result<Option<String>, wire::Error> {
    conn.batch_execute("SAVEPOINT cq_cursor").await?;
    match max_cursor_value(conn, plan, column).await {
        Ok(value) => {
            conn.batch_execute("RELEASE SAVEPOINT cq_cursor").await?;
            Ok(value)
        }
        Err(e @ wire::Error::Server { .. }) => {
            conn.batch_execute("ROLLBACK TO SAVEPOINT cq_cursor")
                .await?;
            log_warn!(
                "incremental: could not read the largest cursor value",
                table = plan.table.display_name.as_str(),
                error = e.to_string()
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

async fn max_cursor_value(
    conn: &mut Connection,
    plan: &TablePlan,
    column: &str,
) -> Result<Option<String>, wire::Error> {
    let filter = plan
        .filter
        .as_deref()
        .map(|f| format!(" WHERE ({f})"))
        .unwrap_or_default();
    let sql = format!(
        "SELECT max({})::text FROM {}{filter}",
        quote_ident(column),
        from_clause(&plan.table)
    );
    let results = conn.simple_query(&sql).await?;
    Ok(results
        .first()
        .and_then(|r| r.rows.first())
        .and_then(|row| row.first().cloned().flatten()))
}

async fn first_value(conn: &mut Connection, sql: &str) -> Result<String, wire::Error> {
    let results = conn.simple_query(sql).await?;
    results
        .first()
        .and_then(|r| r.rows.first())
        .and_then(|row| row.first().cloned().flatten())
        .ok_or_else(|| wire::Error::protocol(format!("{sql} returned no value")))
}

/// The mode, key and scope of an incremental table.
pub fn incremental_table(
    plan_index: usize,
    plan: &TablePlan,
    database: &str,
    settings: Option<&TableSettings>,
    dest_name: String,
) -> IncrementalTable {
    let table: &Table = &plan.table;
    let mode = match settings.and_then(|s| s.cursor_column.clone()) {
        Some(column) => Mode::Cursor { column },
        None => Mode::Xmin,
    };
    IncrementalTable {
        plan: plan_index,
        mode,
        key: Position::key(database, &table.schema, &table.name),
        scope: Scope {
            destination: dest_name,
            columns: table.columns.iter().map(|c| c.name.clone()).collect(),
            filter: settings.and_then(|s| s.filter.clone()),
        },
    }
}
