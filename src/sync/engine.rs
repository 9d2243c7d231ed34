//! Runs a full sync: export one snapshot, read every work item under it on `concurrency`
//! connections, decode COPY frames straight into Arrow and hand records to the output channel.
//!
//! Consistency: the leader opens a REPEATABLE READ READ ONLY transaction and exports its snapshot;
//! every worker imports it with `SET TRANSACTION SNAPSHOT`, so all tables are read as of one instant.
//! The leader reads too (it must stay in its transaction anyway to keep the snapshot importable).
//!
//! Memory: a worker holds one record under construction; finished records wait in the bounded
//! output channel, whose capacity is the only buffer between PostgreSQL and the gRPC stream.
//!
//! Failures: each work item runs inside a savepoint, so a table that was dropped since discovery
//! (warning) or that the user may not read (error) is skipped and the transaction goes on. A lost
//! connection ends the whole sync with an error naming the table.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc;

use crate::catalog::quote_literal;
use crate::decode::rules::adjusted_message;
use crate::decode::{CopyBinaryDecoder, DecodeError, ValueOptions};
use crate::output::{SendError, SyncMessage, SyncSender, TableError, TableFailure};
use crate::sync::plan::{item_statement, work_items, TablePlan, WorkItem};
use crate::wire::{self, Connection};
use crate::{log_debug, log_info, log_warn};

/// Knobs of a full sync (from the spec).
#[derive(Clone, Debug)]
pub struct SyncOptions {
    pub rows_per_record: usize,
    pub concurrency: usize,
    /// A record is also closed once it holds this many bytes of decoded values, so even a huge
    /// `rows_per_record` with wide rows stays well below the gRPC message limits.
    pub max_record_bytes: usize,
    /// ctid range size for splitting big tables (PostgreSQL 14+), 0 = never split.
    pub chunk_pages: u32,
    /// Told of each table whose every row was handed to the output channel without error (the
    /// incremental sync stores its position then). A failed table is never reported.
    pub table_done: Option<mpsc::UnboundedSender<TableDone>>,
    /// The value rules (±infinity, out-of-range dates) the readers apply.
    pub values: ValueOptions,
}

/// A table read to the end without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDone {
    /// Index into the plans given to [`run`] / [`run_in_snapshot`].
    pub table: usize,
    pub rows: u64,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            rows_per_record: 500,
            concurrency: 4,
            max_record_bytes: 64 << 20,
            chunk_pages: 16_384,
            table_done: None,
            values: ValueOptions::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("failed to start the sync: {0}")]
    Setup(#[source] wire::Error),
    #[error("table {table}: the connection to PostgreSQL was lost: {source}")]
    ConnectionLost {
        table: String,
        #[source]
        source: wire::Error,
    },
    #[error("table {table}: {source}")]
    Table {
        table: String,
        #[source]
        source: wire::Error,
    },
    #[error("the sync was cancelled: the CloudQuery CLI stopped reading")]
    Cancelled,
    #[error("a sync worker failed: {0}")]
    Worker(#[source] tokio::task::JoinError),
}

/// Per-table counters, shared by the work items of one table (ctid ranges).
struct TableProgress {
    rows: AtomicU64,
    bytes: AtomicU64,
    items_left: AtomicUsize,
    started: Mutex<Option<Instant>>,
    failed: std::sync::atomic::AtomicBool,
    /// Per column: values changed because a destination cannot hold them (see `decode::rules`).
    adjusted: Mutex<Vec<u64>>,
}

struct Shared {
    plans: Vec<TablePlan>,
    queue: Mutex<VecDeque<WorkItem>>,
    progress: Vec<TableProgress>,
    options: SyncOptions,
    out: SyncSender,
}

impl Shared {
    fn next_item(&self) -> Option<WorkItem> {
        self.queue.lock().ok()?.pop_front()
    }
}

/// Reads every table of `plans` under one snapshot. `migrate_table` messages are the caller's job
/// (they go out before any data, for every table, even in CDC mode).
pub async fn run(
    config: &wire::Config,
    plans: Vec<TablePlan>,
    options: SyncOptions,
    out: SyncSender,
) -> Result<(), SyncError> {
    let mut leader = Connection::connect(config)
        .await
        .map_err(SyncError::Setup)?;
    let snapshot = begin_exported_snapshot(&mut leader)
        .await
        .map_err(SyncError::Setup)?;
    run_in_snapshot(config, leader, &snapshot, plans, options, out).await
}

/// Opens the leader's `REPEATABLE READ READ ONLY` transaction and exports its snapshot, which
/// the workers import; returns the snapshot's name.
pub async fn begin_exported_snapshot(conn: &mut Connection) -> Result<String, wire::Error> {
    conn.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let results = conn.simple_query("SELECT pg_export_snapshot()").await?;
    results
        .first()
        .and_then(|r| r.rows.first())
        .and_then(|row| row.first().cloned().flatten())
        .ok_or_else(|| wire::Error::protocol("pg_export_snapshot() returned no row"))
}

/// Reads the tables with `leader` (already inside the snapshot's transaction) plus workers that
/// import `snapshot`. The CDC initial sync calls this with the replication slot's snapshot.
pub async fn run_in_snapshot(
    config: &wire::Config,
    leader: Connection,
    snapshot: &str,
    plans: Vec<TablePlan>,
    options: SyncOptions,
    out: SyncSender,
) -> Result<(), SyncError> {
    let items = work_items(&plans, leader.server_version_num(), options.chunk_pages);
    let mut progress: Vec<TableProgress> = plans
        .iter()
        .map(|p| TableProgress {
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            items_left: AtomicUsize::new(0),
            started: Mutex::new(None),
            failed: std::sync::atomic::AtomicBool::new(false),
            adjusted: Mutex::new(vec![0; p.table.columns.len()]),
        })
        .collect();
    for item in &items {
        *progress[item.table].items_left.get_mut() += 1;
    }
    let workers = options.concurrency.clamp(1, items.len().max(1));
    let shared = Arc::new(Shared {
        plans,
        queue: Mutex::new(items.into()),
        progress,
        options,
        out,
    });
    log_debug!(
        "full sync starting",
        tables = shared.plans.len(),
        connections = workers
    );

    // The leader's transaction must outlive every import of its snapshot, so the leader keeps
    // its connection until all workers are done, and only then ends the transaction.
    let leader_task = tokio::spawn(worker(shared.clone(), leader));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 1..workers {
        let shared = shared.clone();
        let config = config.clone();
        let snapshot = snapshot.to_string();
        tasks.spawn(async move {
            let conn = match open_in_snapshot(&config, &snapshot).await {
                Ok(conn) => conn,
                Err(e) => {
                    // Fewer connections only means less parallelism: the others take the work.
                    log_warn!(
                        "could not open an extra sync connection; continuing with fewer",
                        error = e.to_string()
                    );
                    return Ok(());
                }
            };
            let conn = worker(shared, conn).await?;
            conn.close().await;
            Ok(())
        });
    }
    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.unwrap_or_else(|e| Err(SyncError::Worker(e)));
        if let Err(e) = outcome {
            if result.is_ok() {
                result = Err(e);
                // One fatal error ends the sync: stop the others instead of reading on.
                tasks.abort_all();
                leader_task.abort();
            }
        }
    }
    match leader_task.await {
        Ok(Ok(mut leader)) => {
            // Read-only transaction: nothing to commit, but end it cleanly.
            let _ = leader.batch_execute("COMMIT").await;
            leader.close().await;
        }
        Ok(Err(e)) => {
            if result.is_ok() {
                result = Err(e);
            }
        }
        Err(e) if e.is_cancelled() => {}
        Err(e) => {
            if result.is_ok() {
                result = Err(SyncError::Worker(e));
            }
        }
    }
    result
}

/// Opens a connection whose transaction reads in the exported `snapshot`.
pub async fn open_in_snapshot(
    config: &wire::Config,
    snapshot: &str,
) -> Result<Connection, wire::Error> {
    let mut conn = Connection::connect(config).await?;
    let begin = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
        quote_literal(snapshot)
    );
    conn.batch_execute(&begin).await?;
    Ok(conn)
}

/// Takes work items until none are left; returns the connection, still in its transaction.
async fn worker(shared: Arc<Shared>, mut conn: Connection) -> Result<Connection, SyncError> {
    while let Some(item) = shared.next_item() {
        read_item(&shared, &mut conn, &item).await?;
    }
    Ok(conn)
}

async fn read_item(
    shared: &Shared,
    conn: &mut Connection,
    item: &WorkItem,
) -> Result<(), SyncError> {
    let plan = &shared.plans[item.table];
    let progress = &shared.progress[item.table];
    let name = plan.table.display_name.as_str();
    if let Ok(mut started) = progress.started.lock() {
        if started.is_none() {
            *started = Some(Instant::now());
            log_info!("table sync started", table = name);
            crate::telemetry::table_started(&plan.schema);
        }
    }
    let sql = item_statement(plan, item);
    log_debug!(
        "table read statement",
        table = name,
        statement = sql.as_str()
    );
    let lost = |source: wire::Error| SyncError::ConnectionLost {
        table: name.to_string(),
        source,
    };
    conn.batch_execute("SAVEPOINT cq_item")
        .await
        .map_err(lost)?;
    match copy_item(shared, conn, plan, &sql).await {
        Ok((rows, bytes, adjusted)) => {
            conn.batch_execute("RELEASE SAVEPOINT cq_item")
                .await
                .map_err(lost)?;
            progress.rows.fetch_add(rows, Ordering::Relaxed);
            progress.bytes.fetch_add(bytes, Ordering::Relaxed);
            if let Ok(mut total) = progress.adjusted.lock() {
                for (t, a) in total.iter_mut().zip(adjusted) {
                    *t += a;
                }
            }
        }
        Err(ItemError::Fatal(e)) => return Err(e),
        Err(ItemError::Table { error, rows_sent }) => {
            conn.batch_execute("ROLLBACK TO SAVEPOINT cq_item")
                .await
                .map_err(lost)?;
            progress.failed.store(true, Ordering::Relaxed);
            report_table_error(shared, plan, error, rows_sent).await?;
        }
    }
    let last_item = progress.items_left.fetch_sub(1, Ordering::AcqRel) == 1;
    if last_item {
        crate::telemetry::table_finished(&plan.schema);
    }
    if last_item && !progress.failed.load(Ordering::Relaxed) {
        let secs = progress
            .started
            .lock()
            .ok()
            .and_then(|s| *s)
            .map(|s| s.elapsed().as_secs_f64())
            .unwrap_or_default();
        let rows = progress.rows.load(Ordering::Relaxed);
        if let Some(done) = &shared.options.table_done {
            // The receiver may be gone when the sync is being torn down; nothing to tell then.
            let _ = done.send(TableDone {
                table: item.table,
                rows,
            });
        }
        warn_adjusted(plan, progress, &shared.options.values);
        log_info!(
            "table sync finished",
            table = name,
            rows = rows,
            bytes = progress.bytes.load(Ordering::Relaxed),
            duration_ms = (secs * 1000.0) as u64,
            rows_per_sec = if secs > 0.0 {
                (rows as f64 / secs) as u64
            } else {
                rows
            },
        );
    }
    Ok(())
}

/// One warning per column whose values were clamped or sent as NULL because a destination
/// cannot hold them, with the count for the table.
fn warn_adjusted(plan: &TablePlan, progress: &TableProgress, values: &ValueOptions) {
    let Ok(adjusted) = progress.adjusted.lock() else {
        return;
    };
    for (col, &count) in plan.table.columns.iter().zip(adjusted.iter()) {
        if count > 0 {
            log_warn!(
                adjusted_message(&col.pg_type, values),
                table = plan.table.display_name.as_str(),
                column = col.name.as_str(),
                column_type = col.type_name.as_str(),
                count = count
            );
        }
    }
}

enum ItemError {
    /// Ends the sync (lost connection, cancelled output).
    Fatal(SyncError),
    /// Ends this table only.
    Table { error: TableError, rows_sent: u64 },
}

/// A table that was dropped since discovery is skipped with a warning; any other failure goes
/// to the output as the table's failure (the service logs it and, when asked, tells the CLI).
async fn report_table_error(
    shared: &Shared,
    plan: &TablePlan,
    error: TableError,
    rows_sent: u64,
) -> Result<(), SyncError> {
    let table = plan.table.display_name.as_str();
    // undefined_table: dropped between discovery and reading.
    if error.sqlstate() == Some("42P01") {
        log_warn!(
            "table no longer exists, skipped",
            table = table,
            error = error.to_string()
        );
        return Ok(());
    }
    crate::telemetry::table_error_of(&plan.schema);
    let failure = TableFailure {
        table: table.to_string(),
        rows_sent,
        error,
    };
    match shared.out.send(SyncMessage::TableFailed(failure)).await {
        Ok(()) => Ok(()),
        Err(_) => Err(SyncError::Cancelled),
    }
}

/// Streams one COPY into records. Returns (rows, bytes, per column the values the value rules
/// changed).
async fn copy_item(
    shared: &Shared,
    conn: &mut Connection,
    plan: &TablePlan,
    sql: &str,
) -> Result<(u64, u64, Vec<u64>), ItemError> {
    let name = &plan.table.display_name;
    let types: Vec<_> = plan
        .table
        .columns
        .iter()
        .map(|c| c.pg_type.clone())
        .collect();
    let mut decoder = CopyBinaryDecoder::with_options(&types, &shared.options.values);
    let fatal_or_table = |e: wire::Error, rows_sent: u64| {
        if e.is_connection_lost() {
            ItemError::Fatal(SyncError::ConnectionLost {
                table: name.clone(),
                source: e,
            })
        } else {
            ItemError::Table {
                error: TableError::Read(e),
                rows_sent,
            }
        }
    };
    let mut copy = conn.copy_out(sql).await.map_err(|e| fatal_or_table(e, 0))?;
    let (mut rows_sent, mut bytes_total, mut bytes_at_flush) = (0u64, 0u64, 0u64);
    let mut decode_error: Option<TableError> = None;
    loop {
        let frame = match copy.next_buffered() {
            Some(frame) => frame,
            None => match copy.next_frame().await {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => return Err(fatal_or_table(e, rows_sent)),
            },
        };
        if decode_error.is_some() {
            // Keep draining so the connection stays usable for the next table.
            continue;
        }
        if let Err(e) = decoder.decode_frame(frame) {
            decode_error = Some(decode_failure(plan, e));
            continue;
        }
        let bytes = decoder.bytes();
        if decoder.rows() >= shared.options.rows_per_record
            || bytes - bytes_at_flush >= shared.options.max_record_bytes as u64
        {
            rows_sent += emit(shared, plan, &mut decoder).await?;
            bytes_at_flush = bytes;
        }
        bytes_total = bytes;
    }
    if decode_error.is_none() && !decoder.is_done() {
        // PostgreSQL always ends COPY BINARY with a trailer; without it rows may be missing.
        decode_error = Some(TableError::Truncated);
    }
    if let Some(error) = decode_error {
        return Err(ItemError::Table { error, rows_sent });
    }
    if decoder.rows() > 0 {
        rows_sent += emit(shared, plan, &mut decoder).await?;
    }
    Ok((rows_sent, bytes_total, decoder.take_adjusted()))
}

/// A decode error with the column (and its PostgreSQL type) it happened in, when known.
fn decode_failure(plan: &TablePlan, error: DecodeError) -> TableError {
    match error {
        DecodeError::Column { column, source } => match plan.table.columns.get(column) {
            Some(col) => TableError::DecodeColumn {
                column: col.name.clone(),
                column_type: col.type_name.clone(),
                source: *source,
            },
            None => TableError::Decode(DecodeError::Column { column, source }),
        },
        other => TableError::Decode(other),
    }
}

async fn emit(
    shared: &Shared,
    plan: &TablePlan,
    decoder: &mut CopyBinaryDecoder,
) -> Result<u64, ItemError> {
    let batch = decoder
        .finish(plan.schema.clone())
        .map_err(|e| ItemError::Table {
            error: decode_failure(plan, e),
            rows_sent: 0,
        })?;
    let rows = batch.num_rows() as u64;
    match shared.out.send(SyncMessage::Insert(batch)).await {
        Ok(()) => Ok(rows),
        Err(SendError::Closed) => Err(ItemError::Fatal(SyncError::Cancelled)),
        Err(e) => Err(ItemError::Table {
            error: TableError::Delivery(e),
            rows_sent: 0,
        }),
    }
}
