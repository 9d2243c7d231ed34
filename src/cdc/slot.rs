//! The replication slot: its state, its creation with an exported snapshot, dropping it, and
//! LSNs in their text form.

use crate::wire::{Connection, Param};

use super::batch::Lsn;
use super::names::CdcNames;
use super::publication::published_tables;
use super::state::quote_ident;
use super::CdcError;

/// How long to wait for the slot to be released by a previous run's walsender.
const SLOT_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// The existing slot of `names`, free for this run and ours (pgoutput, this database), or
/// `None` when there is none yet. A previous run that was killed leaves its walsender behind
/// until the server notices the closed socket: it gets a few seconds to let go of the slot.
pub async fn acquire(
    conn: &mut Connection,
    cfg: &crate::wire::Config,
    names: &CdcNames,
) -> Result<Option<SlotInfo>, CdcError> {
    let mut slot = slot_info(conn, &names.slot).await?;
    let wait_until = std::time::Instant::now() + SLOT_RELEASE_WAIT;
    while slot.as_ref().is_some_and(|s| s.active_pid.is_some())
        && std::time::Instant::now() < wait_until
    {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        slot = slot_info(conn, &names.slot).await?;
    }
    if let Some(s) = &slot {
        if let Some(pid) = s.active_pid {
            return Err(CdcError::SlotInUse {
                slot: names.slot.clone(),
                pid,
            });
        }
        if s.plugin != "pgoutput" || s.database != cfg.dbname() {
            return Err(CdcError::SlotElsewhere {
                slot: names.slot.clone(),
                plugin: s.plugin.clone(),
                database: s.database.clone(),
            });
        }
    }
    Ok(slot)
}

/// Our slot as `pg_replication_slots` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotInfo {
    pub confirmed_flush: Lsn,
    pub active_pid: Option<i32>,
    pub plugin: String,
    pub database: String,
    /// Why the server will no longer stream from it, when it will not: `wal_status = lost`
    /// (13+), `conflicting` (16+), `invalidation_reason` (17+).
    pub invalidated: Option<String>,
    /// Created (or altered) as a failover slot (17+), which a standby can synchronize.
    pub failover: bool,
}

/// First version whose slots can be synchronized to a standby (`FAILOVER`).
pub const PG17: u32 = 170_000;

/// The slot's state, or `None` when it does not exist.
pub async fn slot_info(conn: &mut Connection, slot: &str) -> Result<Option<SlotInfo>, CdcError> {
    let version = conn.server_version_num();
    // Columns that older versions lack are read as NULL.
    let wal_status = if version >= 130_000 {
        "wal_status"
    } else {
        "NULL"
    };
    let conflicting = if version >= 160_000 {
        "conflicting::text"
    } else {
        "NULL"
    };
    let (reason, failover) = if version >= PG17 {
        ("invalidation_reason", "failover::text")
    } else {
        ("NULL", "NULL")
    };
    let sql = format!(
        "SELECT confirmed_flush_lsn::text, active_pid::text, plugin, database, {wal_status}, \
         {conflicting}, {reason}, {failover} \
         FROM pg_catalog.pg_replication_slots WHERE slot_name = $1"
    );
    let result = conn.query(&sql, &[Param::Text(slot)]).await?;
    let Some(row) = result.rows.first() else {
        return Ok(None);
    };
    let cell = |i: usize| row.get(i).map(|v| String::from_utf8_lossy(v).into_owned());
    let confirmed = match cell(0) {
        Some(text) => text.trim().parse::<Lsn>().map_err(|_| {
            CdcError::Setup(format!("slot {slot}: bad confirmed_flush_lsn {text:?}"))
        })?,
        None => {
            return Err(CdcError::Setup(format!(
            "replication slot {slot} exists but is not a logical slot (no confirmed_flush_lsn); \
                 drop it or choose another cdc_id"
        )))
        }
    };
    let invalidated = match (cell(4).as_deref(), cell(5).as_deref(), cell(6)) {
        (_, _, Some(reason)) => Some(format!("invalidation_reason {reason}")),
        (Some("lost"), _, None) => Some("wal_status lost: the WAL it needs was removed".into()),
        (_, Some("true"), None) => Some("conflicting with recovery on this standby".into()),
        _ => None,
    };
    Ok(Some(SlotInfo {
        confirmed_flush: confirmed,
        active_pid: cell(1).and_then(|p| p.parse().ok()),
        plugin: cell(2).unwrap_or_default(),
        database: cell(3).unwrap_or_default(),
        invalidated,
        failover: cell(7).as_deref() == Some("true"),
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
/// On 17+ the slot is a failover slot, so a standby with `sync_replication_slots` keeps a copy
/// that can take over after a promotion.
/// A standby's own slot cannot be a failover slot.
pub async fn create_slot(
    repl: &mut Connection,
    slot: &str,
    standby: bool,
) -> Result<NewSlot, CdcError> {
    let command = if repl.server_version_num() >= PG17 && !standby {
        format!("CREATE_REPLICATION_SLOT {slot} LOGICAL pgoutput (SNAPSHOT 'export', FAILOVER)")
    } else {
        format!("CREATE_REPLICATION_SLOT {slot} LOGICAL pgoutput EXPORT_SNAPSHOT")
    };
    let results = repl.simple_query(&command).await?;
    let row = results
        .into_iter()
        .next()
        .and_then(|r| r.rows.into_iter().next())
        .unwrap_or_default();
    let point = row
        .get(1)
        .cloned()
        .flatten()
        .and_then(|t| t.trim().parse::<Lsn>().ok());
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

/// Makes an existing slot a failover slot (17+; slots created by earlier versions of this
/// plugin were not), on the replication connection.
pub async fn enable_failover(repl: &mut Connection, slot: &str) -> Result<(), CdcError> {
    repl.simple_query(&format!("ALTER_REPLICATION_SLOT {slot} (FAILOVER true)"))
        .await?;
    Ok(())
}

/// Drops the slot (it must not be in use).
pub async fn drop_slot(conn: &mut Connection, slot: &str) -> Result<(), CdcError> {
    conn.query(
        "SELECT pg_catalog.pg_drop_replication_slot($1)",
        &[Param::Text(slot)],
    )
    .await?;
    Ok(())
}

/// Drop the slot and the publication of a `cdc_id` (the `cdc-drop` subcommand): what exists is
/// dropped, what does not is reported. A slot in use is refused by the server.
pub async fn drop_objects(
    conn: &mut Connection,
    names: &CdcNames,
) -> Result<Vec<String>, CdcError> {
    let mut done = Vec::new();
    if slot_info(conn, &names.slot).await?.is_some() {
        drop_slot(conn, &names.slot).await?;
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
