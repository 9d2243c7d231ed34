//! The initial sync of a CDC stream: the tables that need one (all of them when the slot is new,
//! otherwise those not yet marked backfilled) are read inside one snapshot, then marked.

use std::future::Future;
use std::pin::Pin;

use crate::catalog::{quote_literal, Table};
use crate::wire::{Config, Connection};

use super::batch::{Lsn, DELETE_HOLD};
use super::names::CdcNames;
use super::prerequisites::CdcTables;
use super::state::table_key;
use super::{publication, CdcError};

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

/// Where the stream starts and what must be read before it.
pub struct Start {
    /// The slot's consistent point (new slot) or confirmed position.
    pub lsn: Lsn,
    /// The new slot's exported snapshot; `None` for an existing slot (a fresh one is taken).
    pub snapshot: Option<String>,
    pub to_backfill: Vec<Table>,
}

/// Reads `start.to_backfill` in the slot's snapshot (or a fresh one) and marks the streamed ones
/// backfilled (unless `record_progress` is false: a standby cannot write). Returns the tables whose `migrate_table` went out (`schema.name`).
pub async fn initial_sync(
    cfg: &Config,
    conn: &mut Connection,
    names: &CdcNames,
    classified: &CdcTables,
    start: Start,
    backfill: &dyn Backfill,
    record_progress: bool,
) -> Result<Vec<String>, CdcError> {
    if start.to_backfill.is_empty() {
        return Ok(Vec::new());
    }
    let mut leader = Connection::connect(cfg).await?;
    let snapshot_name = match start.snapshot {
        Some(name) => {
            leader
                .batch_execute(&format!(
                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
                    quote_literal(&name)
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
    let keys: Vec<String> = start
        .to_backfill
        .iter()
        .map(|t| table_key(&t.schema, &t.name))
        .collect();
    crate::log_info!(
        format!("backfilling {} tables", keys.len()),
        tables = keys.clone()
    );
    backfill
        .backfill(&mut leader, &snapshot_name, &start.to_backfill)
        .await?;
    leader.batch_execute("COMMIT").await?;
    leader.close().await;
    let done: Vec<String> = keys
        .iter()
        .filter(|k| classified.streamed.contains(k))
        .cloned()
        .collect();
    if record_progress {
        publication::mark_backfilled(conn, &names.publication, &done).await?;
    }
    // The backfill's inserts are in the CLI's pipeline: a replayed delete must not overtake
    // them (see the change buffer's delete hold).
    tokio::time::sleep(DELETE_HOLD).await;
    Ok(keys)
}
