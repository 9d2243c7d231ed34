//! The publication: exactly the streamed tables (with column lists and row filters on 15+), and
//! the backfill marks kept in its COMMENT.

use crate::wire::{Connection, Error as WireError, Param};

use super::names::CdcNames;
use super::prerequisites::{one_value_with, PG13};
use super::state::{quote_ident, table_key, write_state_sql, CdcState, READ_STATE_SQL};
use super::stream::StreamTable;
use super::CdcError;

/// The publication's current tables (`schema.name`), or `None` if it does not exist.
pub async fn published_tables(
    conn: &mut Connection,
    publication: &str,
) -> Result<Option<Vec<String>>, WireError> {
    let exists = one_value_with(
        conn,
        "SELECT count(*)::text FROM pg_catalog.pg_publication WHERE pubname = $1",
        &[publication],
    )
    .await?;
    if exists.as_deref() != Some("1") {
        return Ok(None);
    }
    // pg_publication_rel lists the tables as added (the root of a partitioned table, not its
    // partitions), unlike the pg_publication_tables view under publish_via_partition_root = false.
    let result = conn
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_publication_rel pr \
             JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid \
             JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE p.pubname = $1",
            &[Param::Text(publication)],
        )
        .await?;
    let mut out = Vec::new();
    for row in &result.rows {
        if let (Some(s), Some(t)) = (row.get(0), row.get(1)) {
            out.push(table_key(
                &String::from_utf8_lossy(s),
                &String::from_utf8_lossy(t),
            ));
        }
    }
    Ok(Some(out))
}

/// Create the publication for exactly `streamed`, or bring an existing one in line; return
/// the state with the marks of tables that were not continuously published dropped. Runs in one
/// transaction with the state write.
pub async fn ensure_publication(
    conn: &mut Connection,
    names: &CdcNames,
    tables: &[StreamTable],
    streamed: &[String],
) -> Result<CdcState, CdcError> {
    let pubname = &names.publication;
    let version = conn.server_version_num();
    let list: Vec<String> = tables
        .iter()
        .filter(|t| streamed.contains(&table_key(&t.table.schema, &t.table.name)))
        .map(|t| publication_entry(t, version))
        .collect();
    let via_root = conn.server_version_num() >= PG13;
    conn.batch_execute("BEGIN").await?;
    let result = async {
        let before = published_tables(conn, pubname).await?;
        let mut state = match &before {
            Some(_) => {
                let comment = one_value_with(conn, READ_STATE_SQL, &[pubname]).await?;
                CdcState::parse(pubname, comment.as_deref())?
            }
            None => CdcState::default(),
        };
        match &before {
            None => {
                let with = if via_root {
                    " WITH (publish_via_partition_root = true)"
                } else {
                    ""
                };
                conn.batch_execute(&format!(
                    "CREATE PUBLICATION {} FOR TABLE {}{with}",
                    quote_ident(pubname),
                    list.join(", ")
                ))
                .await?;
            }
            Some(_) => {
                conn.batch_execute(&format!(
                    "ALTER PUBLICATION {} SET TABLE {}",
                    quote_ident(pubname),
                    list.join(", ")
                ))
                .await?;
                if via_root {
                    conn.batch_execute(&format!(
                        "ALTER PUBLICATION {} SET (publish_via_partition_root = true)",
                        quote_ident(pubname)
                    ))
                    .await?;
                }
            }
        }
        // Marks survive only for tables that were in the publication before and still are.
        let before = before.unwrap_or_default();
        state.retain_published(before.iter().map(String::as_str));
        state.retain_published(streamed.iter().map(String::as_str));
        conn.batch_execute(&write_state_sql(pubname, &state))
            .await?;
        Ok::<_, CdcError>(state)
    }
    .await;
    match result {
        Ok(state) => {
            conn.batch_execute("COMMIT").await?;
            Ok(state)
        }
        Err(e) => {
            // Best effort: the connection may be broken, which the caller reports anyway.
            let _ = conn.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// First version with publication column lists and row filters.
pub const PG15: u32 = 150_000;

/// One table of `CREATE/ALTER PUBLICATION … TABLE`: with a column list when columns are
/// excluded and a row filter, on PostgreSQL 15+ (before that the plugin drops excluded columns
/// itself, and a filter is refused at Init).
pub fn publication_entry(t: &StreamTable, server_version: u32) -> String {
    let mut entry = t.table.qualified_name();
    if server_version < PG15 {
        return entry;
    }
    if !t.excluded_columns.is_empty() {
        let columns: Vec<String> = t
            .table
            .columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect();
        entry.push_str(&format!(" ({})", columns.join(", ")));
    }
    if let Some(filter) = &t.filter {
        entry.push_str(&format!(" WHERE ({filter})"));
    }
    entry
}

/// Mark `tables` as backfilled (read-modify-write in one transaction).
/// The stream's progress as the publication's comment holds it, without changing anything
/// (a standby). A missing publication is an empty progress.
pub async fn read_state(conn: &mut Connection, publication: &str) -> Result<CdcState, CdcError> {
    let comment = one_value_with(conn, READ_STATE_SQL, &[publication]).await?;
    Ok(CdcState::parse(publication, comment.as_deref())?)
}

/// Forgets every backfill mark: the next start copies every table again.
pub async fn clear_marks(conn: &mut Connection, publication: &str) -> Result<(), CdcError> {
    conn.batch_execute(&write_state_sql(publication, &CdcState::default()))
        .await?;
    Ok(())
}

pub async fn mark_backfilled(
    conn: &mut Connection,
    publication: &str,
    tables: &[String],
) -> Result<(), CdcError> {
    conn.batch_execute("BEGIN").await?;
    let result = async {
        // Same-cdc_id runs cannot overlap (the slot is active in one at a time), so a plain
        // read-modify-write is enough.
        let comment = one_value_with(conn, READ_STATE_SQL, &[publication]).await?;
        let mut state = CdcState::parse(publication, comment.as_deref())?;
        state.backfilled.extend(tables.iter().cloned());
        conn.batch_execute(&write_state_sql(publication, &state))
            .await?;
        Ok::<_, CdcError>(())
    }
    .await;
    match result {
        Ok(()) => Ok(conn.batch_execute("COMMIT").await?),
        Err(e) => {
            let _ = conn.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}
