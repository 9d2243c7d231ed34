//! CDC prerequisites, checked at Init and again when the sync starts: `wal_level`, the
//! REPLICATION privilege, a free slot, streamable tables, and the publication options a server
//! version allows.

use crate::catalog::{RelKind, Table};
use crate::wire::{Connection, Error as WireError, Param};

use super::names::CdcNames;
use super::publication::{publication_entry, PG15};
use super::state::{quote_ident, table_key};
use super::stream::StreamTable;
use super::CdcError;

/// PostgreSQL 13 added `publish_via_partition_root` and partitioned tables in publications.
pub(super) const PG13: u32 = 130_000;

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

/// The first column of the first row of `sql` run with bound text parameters (`$1`, …).
pub(super) async fn one_value_with(
    conn: &mut Connection,
    sql: &str,
    params: &[&str],
) -> Result<Option<String>, WireError> {
    let params: Vec<Param<'_>> = params.iter().map(|p| Param::Text(p)).collect();
    let result = conn.query(sql, &params).await?;
    Ok(result
        .rows
        .first()
        .and_then(|row| row.get(0))
        .map(|v| String::from_utf8_lossy(v).into_owned()))
}

pub(super) async fn one_value(
    conn: &mut Connection,
    sql: &str,
) -> Result<Option<String>, WireError> {
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
        .query(
            "SELECT (SELECT count(*) FROM pg_catalog.pg_replication_slots)::text, \
             current_setting('max_replication_slots'), \
             (SELECT count(*) FROM pg_catalog.pg_replication_slots WHERE slot_name = $1)::text",
            &[Param::Text(&names.slot)],
        )
        .await?;
    let num = |i: usize| -> i64 {
        slot_row
            .rows
            .first()
            .and_then(|row| row.get(i))
            .and_then(|v| std::str::from_utf8(v).ok())
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
    if is_standby(conn).await? {
        check_standby(conn, names, &classified).await?;
    }
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

/// Whether the server is a standby (in recovery).
pub async fn is_standby(conn: &mut Connection) -> Result<bool, CdcError> {
    Ok(
        one_value(conn, "SELECT pg_catalog.pg_is_in_recovery()::text")
            .await?
            .as_deref()
            == Some("true"),
    )
}

/// First version that decodes logically on a standby.
const PG16: u32 = 160_000;

/// CDC from a hot standby: PostgreSQL 16+, `hot_standby_feedback` on (otherwise the primary may
/// remove catalog rows the slot still needs, and the server invalidates it), and the publication
/// created on the primary (a standby cannot create or change it), holding every streamed table.
async fn check_standby(
    conn: &mut Connection,
    names: &CdcNames,
    classified: &CdcTables,
) -> Result<(), CdcError> {
    if conn.server_version_num() < PG16 {
        return Err(CdcError::Setup(
            "this server is a standby, and logical decoding on a standby needs PostgreSQL 16 or \
             later; point connection_string at the primary"
                .into(),
        ));
    }
    let feedback = one_value(conn, "SHOW hot_standby_feedback")
        .await?
        .unwrap_or_default();
    if feedback != "on" {
        return Err(CdcError::Setup(
            "CDC from a standby needs hot_standby_feedback = on, or the primary may remove rows \
             the slot still needs and the slot gets invalidated. Run on the standby: \
             ALTER SYSTEM SET hot_standby_feedback = on; SELECT pg_reload_conf();"
                .into(),
        ));
    }
    let published = super::publication::published_tables(conn, &names.publication).await?;
    let missing: Vec<&String> = classified
        .streamed
        .iter()
        .filter(|t| !published.as_ref().is_some_and(|p| p.contains(t)))
        .collect();
    if !missing.is_empty() {
        let list: Vec<String> = missing
            .iter()
            .map(|t| {
                let (schema, name) = t.split_once('.').unwrap_or(("", t.as_str()));
                format!("{}.{}", quote_ident(schema), quote_ident(name))
            })
            .collect();
        let sql = match published {
            None => format!(
                "CREATE PUBLICATION {} FOR TABLE {} WITH (publish_via_partition_root = true);",
                names.publication,
                list.join(", ")
            ),
            Some(_) => format!(
                "ALTER PUBLICATION {} ADD TABLE {};",
                names.publication,
                list.join(", ")
            ),
        };
        return Err(CdcError::Setup(format!(
            "this server is a standby, where the plugin cannot create or change its publication. \
             Run on the primary: {sql}"
        )));
    }
    Ok(())
}

/// Whether the slot would survive a failover to one of this primary's standbys: `None` when
/// there is no standby, or the setting that keeps the slot on it is in place; otherwise what is
/// missing, for a warning at Init.
pub async fn failover_readiness(conn: &mut Connection) -> Result<Option<String>, CdcError> {
    // Physical walsenders only: a logical one holds an active logical slot.
    let standbys = one_value(
        conn,
        "SELECT count(*) FROM pg_catalog.pg_stat_replication r WHERE NOT EXISTS \
         (SELECT 1 FROM pg_catalog.pg_replication_slots s \
          WHERE s.active_pid = r.pid AND s.slot_type = 'logical')",
    )
    .await?;
    if standbys.as_deref().unwrap_or("0") == "0" {
        return Ok(None);
    }
    if conn.server_version_num() < super::slot::PG17 {
        return Ok(Some(
            "this server has a standby, but before PostgreSQL 17 a replication slot does not \
             survive a failover; after one, cdc_on_lost_slot decides what the next start does"
                .into(),
        ));
    }
    let synchronized = one_value(
        conn,
        "SELECT current_setting('synchronized_standby_slots', true)",
    )
    .await?;
    if synchronized.unwrap_or_default().trim().is_empty() {
        return Ok(Some(
            "this server has a standby but synchronized_standby_slots is empty, so the \
             replication slot cannot follow a failover safely; set it to the standby's physical \
             slot here, and sync_replication_slots = on, hot_standby_feedback = on and a dbname \
             in primary_conninfo on the standby"
                .into(),
        ));
    }
    Ok(None)
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
}
