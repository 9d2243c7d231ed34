//! CDC prerequisites (checked at Init) and the server objects: publication, slot, state.
//!
//! Everything here runs SQL on a normal connection except the slot creation, which needs the
//! replication connection (`CREATE_REPLICATION_SLOT … EXPORT_SNAPSHOT`).

use crate::catalog::{RelKind, Table};
use crate::wire::{Connection, Error as WireError};

use super::batch::Lsn;
use super::names::CdcNames;
use super::state::{
    quote_ident, quote_literal, read_state_sql, table_key, write_state_sql, CdcState,
};
use super::stream::StreamTable;
use super::CdcError;

/// PostgreSQL 13 added `publish_via_partition_root` and partitioned tables in publications.
const PG13: u32 = 130_000;

/// Which selected tables are streamed and which are only synced once per run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CdcTables {
    /// `schema.name` of the tables that go into the publication.
    pub streamed: Vec<String>,
    /// `schema.name` and why it is not streamed (logged as a warning).
    pub not_streamed: Vec<(String, String)>,
}

/// Why a table cannot be streamed, or `None` if it can.
pub fn not_streamable_reason(table: &Table, server_version: u32) -> Option<String> {
    match table.kind {
        RelKind::Table => {}
        RelKind::Partitioned if server_version >= PG13 => {}
        RelKind::Partitioned => {
            return Some(
                "partitioned tables can be published only on PostgreSQL 13 and later".into(),
            )
        }
        RelKind::View | RelKind::MaterializedView | RelKind::Foreign => {
            return Some(
                "views, materialized views and foreign tables have no change stream".into(),
            )
        }
    }
    if table.replica_identity == 'n' {
        return Some(
            "it has REPLICA IDENTITY NOTHING (publishing it would make UPDATE and DELETE on it \
             fail); set REPLICA IDENTITY DEFAULT or FULL to stream it"
                .into(),
        );
    }
    if table.has_primary_key() || matches!(table.replica_identity, 'f' | 'i') {
        None
    } else {
        Some(
            "it has no primary key and no REPLICA IDENTITY FULL or USING INDEX (publishing it \
             would make UPDATE and DELETE on it fail)"
                .into(),
        )
    }
}

/// Split the selection into streamed and synced-once tables.
pub fn classify(tables: &[Table], server_version: u32) -> CdcTables {
    let mut out = CdcTables::default();
    for t in tables {
        let key = table_key(&t.schema, &t.name);
        match not_streamable_reason(t, server_version) {
            None => out.streamed.push(key),
            Some(why) => out.not_streamed.push((key, why)),
        }
    }
    out
}

async fn one_value(conn: &mut Connection, sql: &str) -> Result<Option<String>, WireError> {
    let results = conn.simple_query(sql).await?;
    Ok(results
        .into_iter()
        .next()
        .and_then(|r| r.rows.into_iter().next())
        .and_then(|row| row.into_iter().next())
        .flatten())
}

/// Init-time checks, each with an actionable error: `wal_level`, the REPLICATION privilege, a
/// free replication slot (unless ours exists), and at least one streamable table.
pub async fn check_prerequisites(
    conn: &mut Connection,
    names: &CdcNames,
    tables: &[Table],
) -> Result<CdcTables, CdcError> {
    let wal_level = one_value(conn, "SHOW wal_level").await?.unwrap_or_default();
    if wal_level != "logical" {
        return Err(CdcError::Setup(format!(
            "CDC (cdc_id is set) needs wal_level = logical, but the server has wal_level = \
             {wal_level}. Set it with `ALTER SYSTEM SET wal_level = logical;` as a superuser (or \
             in postgresql.conf; on Amazon RDS/Aurora set rds.logical_replication = 1 in the \
             parameter group, on Cloud SQL the flag cloudsql.logical_decoding = on) and restart \
             PostgreSQL: wal_level only changes at a server restart."
        )));
    }
    let privileged = one_value(
        conn,
        "SELECT (r.rolsuper OR r.rolreplication OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles g \
         WHERE g.rolname = 'rds_replication' AND pg_catalog.pg_has_role(r.oid, g.oid, 'member')))::text \
         FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
    )
    .await?;
    if privileged.as_deref() != Some("true") {
        let user = one_value(conn, "SELECT current_user")
            .await?
            .unwrap_or_default();
        return Err(CdcError::Setup(format!(
            "CDC needs the REPLICATION privilege, which the user {user} lacks. Grant it with \
             `ALTER ROLE {} REPLICATION;` (on Amazon RDS/Aurora: `GRANT rds_replication TO {};`).",
            quote_ident(&user),
            quote_ident(&user)
        )));
    }
    let slot_row = conn
        .simple_query(&format!(
            "SELECT (SELECT count(*) FROM pg_catalog.pg_replication_slots)::text, \
             current_setting('max_replication_slots'), \
             (SELECT count(*) FROM pg_catalog.pg_replication_slots WHERE slot_name = {})::text",
            quote_literal(&names.slot)
        ))
        .await?;
    let cells: Vec<Option<String>> = slot_row
        .into_iter()
        .next()
        .and_then(|r| r.rows.into_iter().next())
        .unwrap_or_default();
    let num = |i: usize| -> i64 {
        cells
            .get(i)
            .and_then(|c| c.as_deref())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    let (used, max, ours) = (num(0), num(1), num(2));
    if ours == 0 && used >= max {
        return Err(CdcError::Setup(format!(
            "CDC needs a free replication slot, but all max_replication_slots = {max} are in use \
             (see `SELECT slot_name, active FROM pg_replication_slots;`). Drop an unused slot with \
             `SELECT pg_drop_replication_slot('<name>');` or raise max_replication_slots (takes \
             effect at a server restart)."
        )));
    }
    let classified = classify(tables, conn.server_version_num());
    if classified.streamed.is_empty() {
        let why: Vec<String> = classified
            .not_streamed
            .iter()
            .map(|(t, w)| format!("{t}: {w}"))
            .collect();
        return Err(CdcError::Setup(format!(
            "CDC needs at least one selected table with a primary key or REPLICA IDENTITY FULL or \
             USING INDEX; none of the {} selected tables qualifies ({}). Add a primary key, or \
             `ALTER TABLE … REPLICA IDENTITY FULL;`.",
            tables.len(),
            why.join("; ")
        )));
    }
    Ok(classified)
}

/// The publication's current tables (`schema.name`), or `None` if it does not exist.
pub async fn published_tables(
    conn: &mut Connection,
    publication: &str,
) -> Result<Option<Vec<String>>, WireError> {
    let exists = one_value(
        conn,
        &format!(
            "SELECT count(*)::text FROM pg_catalog.pg_publication WHERE pubname = {}",
            quote_literal(publication)
        ),
    )
    .await?;
    if exists.as_deref() != Some("1") {
        return Ok(None);
    }
    // pg_publication_rel lists the tables as added (the root of a partitioned table, not its
    // partitions), unlike the pg_publication_tables view under publish_via_partition_root = false.
    let results = conn
        .simple_query(&format!(
            "SELECT n.nspname, c.relname FROM pg_catalog.pg_publication_rel pr \
             JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid \
             JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE p.pubname = {}",
            quote_literal(publication)
        ))
        .await?;
    let mut out = Vec::new();
    for r in results {
        for row in r.rows {
            if let [Some(s), Some(t)] = row.as_slice() {
                out.push(table_key(s, t));
            }
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
                let comment = one_value(conn, &read_state_sql(pubname)).await?;
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

/// Init-time check of `exclude_columns` and `filter` with CDC. Before 15 a filter cannot be
/// applied. From 15, a column list or row filter that does not cover the table's replica
/// identity makes the server refuse every UPDATE and DELETE of the table once the publication
/// exists: a trial publication and a zero-row UPDATE and DELETE in a transaction that is rolled
/// back find that out first.
pub async fn check_publication_options(
    conn: &mut Connection,
    tables: &[StreamTable],
) -> Result<(), CdcError> {
    let version = conn.server_version_num();
    let with_options: Vec<&StreamTable> = tables
        .iter()
        .filter(|t| t.filter.is_some() || !t.excluded_columns.is_empty())
        .collect();
    if version < PG15 {
        if let Some(t) = with_options.iter().find(|t| t.filter.is_some()) {
            return Err(CdcError::Setup(format!(
                "table {}: a filter with cdc_id needs PostgreSQL 15 or later (publication row \
                 filters); this server is {}. Remove the filter, or sync that table without cdc_id",
                t.table.display_name,
                version / 10_000
            )));
        }
        return Ok(());
    }
    for t in with_options {
        conn.batch_execute("BEGIN").await?;
        let trial = async {
            conn.batch_execute(&format!(
                "CREATE PUBLICATION cq_options_check FOR TABLE {}",
                publication_entry(t, version)
            ))
            .await?;
            let name = t.table.qualified_name();
            conn.batch_execute(&format!("DELETE FROM {name} WHERE false"))
                .await?;
            if let Some(col) = t.table.columns.first() {
                let c = quote_ident(&col.name);
                conn.batch_execute(&format!("UPDATE {name} SET {c} = {c} WHERE false"))
                    .await?;
            }
            Ok::<_, WireError>(())
        }
        .await;
        let _ = conn.batch_execute("ROLLBACK").await;
        if let Err(e) = trial {
            return Err(CdcError::Setup(format!(
                "table {}: with its exclude_columns/filter in the publication the server would \
                 refuse its UPDATEs or DELETEs ({e}). A row filter may only use the replica \
                 identity's columns, and excluded columns must not be among them: change the \
                 options, or (for a filter) set `ALTER TABLE {} REPLICA IDENTITY FULL`",
                t.table.display_name,
                t.table.qualified_name()
            )));
        }
    }
    Ok(())
}

/// Mark `tables` as backfilled (read-modify-write in one transaction).
pub async fn mark_backfilled(
    conn: &mut Connection,
    publication: &str,
    tables: &[String],
) -> Result<(), CdcError> {
    conn.batch_execute("BEGIN").await?;
    let result = async {
        // Same-cdc_id runs cannot overlap (the slot is active in one at a time), so a plain
        // read-modify-write is enough.
        let comment = one_value(conn, &read_state_sql(publication)).await?;
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

/// Our slot as `pg_replication_slots` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotInfo {
    pub confirmed_flush: Lsn,
    pub active_pid: Option<i32>,
    pub plugin: String,
    pub database: String,
}

/// The slot's state, or `None` when it does not exist.
pub async fn slot_info(conn: &mut Connection, slot: &str) -> Result<Option<SlotInfo>, CdcError> {
    let results = conn
        .simple_query(&format!(
            "SELECT confirmed_flush_lsn::text, active_pid::text, plugin, database \
             FROM pg_catalog.pg_replication_slots WHERE slot_name = {}",
            quote_literal(slot)
        ))
        .await?;
    let Some(row) = results
        .into_iter()
        .next()
        .and_then(|r| r.rows.into_iter().next())
    else {
        return Ok(None);
    };
    let cell = |i: usize| row.get(i).cloned().flatten();
    let confirmed = match cell(0) {
        Some(text) => parse_lsn(&text).ok_or_else(|| {
            CdcError::Setup(format!("slot {slot}: bad confirmed_flush_lsn {text:?}"))
        })?,
        None => {
            return Err(CdcError::Setup(format!(
            "replication slot {slot} exists but is not a logical slot (no confirmed_flush_lsn); \
                 drop it or choose another cdc_id"
        )))
        }
    };
    Ok(Some(SlotInfo {
        confirmed_flush: confirmed,
        active_pid: cell(1).and_then(|p| p.parse().ok()),
        plugin: cell(2).unwrap_or_default(),
        database: cell(3).unwrap_or_default(),
    }))
}

/// A new slot and the snapshot exported at its consistent point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSlot {
    pub consistent_point: Lsn,
    pub snapshot_name: String,
}

/// `CREATE_REPLICATION_SLOT <slot> LOGICAL pgoutput EXPORT_SNAPSHOT` on the replication
/// connection (the legacy syntax, accepted by 12 to 18). The snapshot stays valid until the next
/// command on `repl`, so keep it idle during the initial sync.
pub async fn create_slot(repl: &mut Connection, slot: &str) -> Result<NewSlot, CdcError> {
    let results = repl
        .simple_query(&format!(
            "CREATE_REPLICATION_SLOT {slot} LOGICAL pgoutput EXPORT_SNAPSHOT"
        ))
        .await?;
    let row = results
        .into_iter()
        .next()
        .and_then(|r| r.rows.into_iter().next())
        .unwrap_or_default();
    let point = row.get(1).cloned().flatten().and_then(|t| parse_lsn(&t));
    let snapshot = row.get(2).cloned().flatten();
    match (point, snapshot) {
        (Some(consistent_point), Some(snapshot_name)) => Ok(NewSlot {
            consistent_point,
            snapshot_name,
        }),
        _ => Err(CdcError::Setup(format!(
            "CREATE_REPLICATION_SLOT {slot}: unexpected answer (no consistent point or snapshot)"
        ))),
    }
}

/// Drop the slot and the publication of a `cdc_id` (the `cdc-drop` subcommand): what exists is
/// dropped, what does not is reported. A slot in use is refused by the server.
pub async fn drop_objects(
    conn: &mut Connection,
    names: &CdcNames,
) -> Result<Vec<String>, CdcError> {
    let mut done = Vec::new();
    if slot_info(conn, &names.slot).await?.is_some() {
        conn.simple_query(&format!(
            "SELECT pg_catalog.pg_drop_replication_slot({})",
            quote_literal(&names.slot)
        ))
        .await?;
        done.push(format!("dropped replication slot {}", names.slot));
    } else {
        done.push(format!("no replication slot {}", names.slot));
    }
    if published_tables(conn, &names.publication).await?.is_some() {
        conn.batch_execute(&format!(
            "DROP PUBLICATION {}",
            quote_ident(&names.publication)
        ))
        .await?;
        done.push(format!("dropped publication {}", names.publication));
    } else {
        done.push(format!("no publication {}", names.publication));
    }
    Ok(done)
}

/// A string literal for SQL and replication commands.
pub fn quote_literal_sql(s: &str) -> String {
    quote_literal(s)
}

/// `X/Y` (hex) → LSN.
pub fn parse_lsn(text: &str) -> Option<Lsn> {
    let (hi, lo) = text.trim().split_once('/')?;
    let hi = u32::from_str_radix(hi, 16).ok()?;
    let lo = u32::from_str_radix(lo, 16).ok()?;
    Some((u64::from(hi) << 32) | u64::from(lo))
}

/// LSN → `X/Y` (hex), as replication commands take it.
pub fn format_lsn(lsn: Lsn) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(kind: RelKind, pk: bool, identity: char) -> Table {
        Table {
            oid: 1,
            schema: "public".into(),
            name: "t".into(),
            display_name: "t".into(),
            kind,
            comment: String::new(),
            columns: vec![crate::catalog::Column {
                name: "id".into(),
                attnum: 1,
                type_oid: 23,
                pg_type: crate::decode::PgType::Int4,
                type_name: "integer".into(),
                not_null: pk,
                not_null_declared: pk,
                primary_key: pk,
                unique: pk,
            }],
            pk_constraint: String::new(),
            replica_identity: identity,
            relpages: 0,
        }
    }

    #[test]
    fn which_tables_stream() {
        let v17 = 170_000;
        assert_eq!(
            not_streamable_reason(&table(RelKind::Table, true, 'd'), v17),
            None
        );
        assert_eq!(
            not_streamable_reason(&table(RelKind::Table, false, 'f'), v17),
            None
        );
        assert_eq!(
            not_streamable_reason(&table(RelKind::Table, false, 'i'), v17),
            None
        );
        assert!(not_streamable_reason(&table(RelKind::Table, false, 'd'), v17).is_some());
        assert!(not_streamable_reason(&table(RelKind::Table, true, 'n'), v17).is_some());
        assert_eq!(
            not_streamable_reason(&table(RelKind::Partitioned, true, 'd'), v17),
            None
        );
        assert!(not_streamable_reason(&table(RelKind::Partitioned, true, 'd'), 120_000).is_some());
        assert!(not_streamable_reason(&table(RelKind::View, true, 'd'), v17).is_some());
        let c = classify(
            &[
                table(RelKind::Table, true, 'd'),
                table(RelKind::MaterializedView, false, 'd'),
            ],
            v17,
        );
        assert_eq!(c.streamed, vec!["public.t".to_string()]);
        assert_eq!(c.not_streamed.len(), 1);
    }

    #[test]
    fn lsn_text() {
        assert_eq!(parse_lsn("0/16B3748"), Some(0x16B_3748));
        assert_eq!(parse_lsn("1/0"), Some(1 << 32));
        assert_eq!(format_lsn(0x1_0000_00AB), "1/AB");
        assert_eq!(parse_lsn(&format_lsn(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_lsn("zz"), None);
        assert_eq!(parse_lsn("1/"), None);
    }
}
