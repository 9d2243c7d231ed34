//! `sync_bench cdc`: change data capture throughput and latency, with the plugin launched as the
//! CLI launches it and every expected count taken from what PostgreSQL reported to the writer.
//!
//! The database must be a fresh copy of the `cdc` dataset (`benches/datasets/cdc/cdc.sql`):
//! `cdc_accounts` with keys 1..=N, `cdc_history` and `cdc_latency` empty, no slot for the
//! spec's `cdc_id`. One run, in this order:
//!
//! 1. **Initial snapshot.** Launch the plugin, Init, Sync with the spec (which sets `cdc_id`).
//!    The snapshot is over when (a) the insert records carried as many rows as
//!    `count(*)` of the tables said before the launch, and (b) the server shows the slot's
//!    walsender in `pg_stat_replication.state = 'streaming'`. (b) is what makes it robust: the
//!    plugin marks the tables backfilled before it sends `START_REPLICATION`, so from then on a
//!    restart resumes instead of re-syncing, and the walsender has caught up with the WAL end.
//!    Then the plugin is stopped (the stream dropped, Close, SIGTERM) as the CLI stops it.
//! 2. **Backlog.** With the plugin stopped, a second slot (`<slot>_ceiling`) is created, and
//!    the harness commits `--changes` row changes in transactions of `--txn-changes` (each
//!    transaction, pgbench-like: update accounts, append history, insert accounts, delete
//!    accounts, in proportions 1/2, 1/4, 1/8, 1/8). Every key is touched once, so the plugin's
//!    per-key coalescing cannot merge any two changes: each change must arrive as exactly one
//!    row of an insert record (insert, update) or one `delete_record` (delete). The command
//!    tags (`UPDATE n`, `INSERT 0 n`, `DELETE n`) are the expected counts.
//! 3. **Drain (throughput).** Relaunch the plugin: it resumes from its slot and decodes the
//!    whole backlog as fast as the server hands it over, which is the catch-up path a real
//!    stream takes after any pause. Changes/s = changes ÷ (last expected change received −
//!    first change received). CPU of the plugin, the walsender and the harness over that window
//!    comes from `/proc/<pid>/stat`; every key is checked (lost, duplicated, unexpected).
//! 4. **Latency.** On the same stream, now idle, a writer thread commits one single-row
//!    `INSERT` into `cdc_latency` per transaction at `--rate` per second for
//!    `--latency-seconds`, open loop (transaction i is due at t0 + i/rate), with
//!    `synchronous_commit = on` for its session (the benchmark server runs with `off`, which
//!    would delay the WAL flush the walsender waits for by up to `wal_writer_delay`). It keeps
//!    the instant each COMMIT returned; the harness keeps the instant the insert record holding
//!    `seq` = i arrived. Both are `Instant`s of this one process (the monotonic clock), so the
//!    latency is commit acknowledged → record received by the CLI's side of the gRPC stream.
//! 5. The plugin is stopped; then the server's own ceiling: `pg_logical_slot_peek_binary_changes`
//!    on the second slot, over exactly the backlog's WAL, with the plugin's pgoutput options,
//!    rows counted and discarded in the backend (no network, no client).
//! 6. Both slots are dropped (also after a failure).

use std::io::Cursor;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use arrow_array::{Array, Int64Array};
use cq_source_postgresql::pb::plugin::v3 as pb;
use cq_source_postgresql::wire::{Config, Connection};
use pb::sync::response::Message;
use serde_json::{json, Value};
use tonic::Streaming;

use super::client::{self, RunReport, Session};
use super::ipc;
use super::process::{self_cpu_s, Exit};

/// The tables of the `cdc` dataset.
const ACCOUNTS: &str = "cdc_accounts";
const HISTORY: &str = "cdc_history";
const LATENCY: &str = "cdc_latency";

#[derive(Debug, Clone)]
pub struct CdcOptions {
    pub plugin: PathBuf,
    /// The plugin's spec as JSON; must set `cdc_id`. Its `connection_string` is also what the
    /// harness connects with (it must be allowed to create slots and write the tables).
    pub spec: String,
    /// Row changes in the backlog.
    pub changes: u64,
    /// Row changes per backlog transaction.
    pub txn_changes: u64,
    pub latency_seconds: f64,
    /// Transactions per second of the latency writer.
    pub rate: f64,
    /// Give up waiting for missing changes after this long without progress.
    pub idle_timeout: Duration,
    pub timeout: Duration,
    pub keep_logs: Option<PathBuf>,
}

/// The backlog: key ranges of each kind of change (inclusive), split over `txns` transactions.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// `cdc_accounts` rows before the backlog (keys 1..=accounts).
    accounts: u64,
    updates: u64,
    deletes: u64,
    inserts: u64,
    history: u64,
    txns: u64,
}

impl Plan {
    fn new(accounts: u64, changes: u64, txn_changes: u64) -> Result<Plan, String> {
        let updates = changes / 2;
        let history = changes / 4;
        let inserts = changes / 8;
        let deletes = changes - updates - history - inserts;
        if updates + deletes > accounts {
            return Err(format!(
                "{ACCOUNTS} has {accounts} rows; {changes} changes need at least {}",
                updates + deletes
            ));
        }
        Ok(Plan {
            accounts,
            updates,
            deletes,
            inserts,
            history,
            txns: changes.div_ceil(txn_changes.max(1)).max(1),
        })
    }

    fn changes(&self) -> u64 {
        self.updates + self.deletes + self.inserts + self.history
    }

    fn update_keys(&self) -> (u64, u64) {
        (1, self.updates)
    }
    fn delete_keys(&self) -> (u64, u64) {
        (self.updates + 1, self.updates + self.deletes)
    }
    fn insert_keys(&self) -> (u64, u64) {
        (self.accounts + 1, self.accounts + self.inserts)
    }
    fn history_keys(&self) -> (u64, u64) {
        (1, self.history)
    }

    /// Transaction `k`'s share of the key range (lo, hi), lo ≥ 1; empty (a > b) when it has none.
    fn slice(&self, (lo, hi): (u64, u64), k: u64) -> (u64, u64) {
        let n = (hi + 1).saturating_sub(lo);
        let a = n * k / self.txns;
        let b = n * (k + 1) / self.txns;
        (lo + a, lo + b - 1)
    }

    /// The SQL of backlog transaction `k` and the kind of each statement between BEGIN and COMMIT.
    fn transaction(&self, k: u64) -> (String, Vec<Kind>) {
        let mut sql = String::from("BEGIN;\n");
        let mut kinds = Vec::new();
        let (a, b) = self.slice(self.update_keys(), k);
        if a <= b {
            sql += &format!(
                "UPDATE {ACCOUNTS} SET abalance = abalance + (aid % 1000)::int4 - 500, mtime = now() \
                 WHERE aid BETWEEN {a} AND {b};\n"
            );
            kinds.push(Kind::Update);
        }
        let (a, b) = self.slice(self.history_keys(), k);
        if a <= b {
            sql += &format!(
                "INSERT INTO {HISTORY} (hid, tid, bid, aid, delta, mtime) SELECT g, (g % 10)::int4 + 1, \
                 (g % 100)::int4 + 1, g, (g % 1000)::int4 - 500, now() FROM generate_series({a}, {b}) AS g;\n"
            );
            kinds.push(Kind::History);
        }
        let (a, b) = self.slice(self.insert_keys(), k);
        if a <= b {
            sql += &format!(
                "INSERT INTO {ACCOUNTS} (aid, bid, abalance, filler, mtime) SELECT g, (g % 100)::int4 + 1, 0, \
                 md5(g::text) || md5((g + 1)::text), now() FROM generate_series({a}, {b}) AS g;\n"
            );
            kinds.push(Kind::Insert);
        }
        let (a, b) = self.slice(self.delete_keys(), k);
        if a <= b {
            sql += &format!("DELETE FROM {ACCOUNTS} WHERE aid BETWEEN {a} AND {b};\n");
            kinds.push(Kind::Delete);
        }
        (sql + "COMMIT", kinds)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Update,
    History,
    Insert,
    Delete,
}

/// Which keys of one range arrived, how many times.
struct Seen {
    lo: u64,
    hit: Vec<bool>,
    distinct: u64,
    duplicates: u64,
}

impl Seen {
    fn new((lo, hi): (u64, u64)) -> Seen {
        let n = usize::try_from((hi + 1).saturating_sub(lo)).unwrap_or(0);
        Seen {
            lo,
            hit: vec![false; n],
            distinct: 0,
            duplicates: 0,
        }
    }

    /// Marks `key`; false when it is outside the range.
    fn mark(&mut self, key: i64) -> bool {
        let Some(i) = u64::try_from(key)
            .ok()
            .and_then(|k| k.checked_sub(self.lo))
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < self.hit.len())
        else {
            return false;
        };
        if self.hit[i] {
            self.duplicates += 1;
        } else {
            self.hit[i] = true;
            self.distinct += 1;
        }
        true
    }

    fn missing(&self) -> u64 {
        self.hit.len() as u64 - self.distinct
    }
}

/// The backlog's expected keys, as received.
struct Drain {
    updates: Seen,
    deletes: Seen,
    inserts: Seen,
    history: Seen,
    unexpected: u64,
}

impl Drain {
    fn new(plan: &Plan) -> Drain {
        Drain {
            updates: Seen::new(plan.update_keys()),
            deletes: Seen::new(plan.delete_keys()),
            inserts: Seen::new(plan.insert_keys()),
            history: Seen::new(plan.history_keys()),
            unexpected: 0,
        }
    }

    fn distinct(&self) -> u64 {
        self.updates.distinct
            + self.deletes.distinct
            + self.inserts.distinct
            + self.history.distinct
    }
    fn duplicates(&self) -> u64 {
        self.updates.duplicates
            + self.deletes.duplicates
            + self.inserts.duplicates
            + self.history.duplicates
    }
    fn missing(&self) -> u64 {
        self.updates.missing()
            + self.deletes.missing()
            + self.inserts.missing()
            + self.history.missing()
    }
}

/// The table (`cq:table_name`), the first column's name and its int8 values of an insert
/// record or a delete predicate. Only the first column is decoded (IPC projection).
fn first_int64_column(record: &[u8]) -> Result<(String, String, Vec<i64>), String> {
    let reader = arrow_ipc::reader::StreamReader::try_new(Cursor::new(record), Some(vec![0]))
        .map_err(|e| format!("reading an IPC stream: {e}"))?;
    let schema = reader.schema();
    let table = schema
        .metadata()
        .get("cq:table_name")
        .cloned()
        .unwrap_or_default();
    let column = schema
        .fields()
        .first()
        .map(|f| f.name().clone())
        .unwrap_or_default();
    let mut keys = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("reading a record batch: {e}"))?;
        let col = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| {
                format!(
                    "{table}.{column} is {}, expected int64",
                    batch.column(0).data_type()
                )
            })?;
        if col.null_count() > 0 {
            return Err(format!("{table}.{column} has NULL keys"));
        }
        keys.extend(col.values().iter().copied());
    }
    Ok((table, column, keys))
}

/// user + system CPU seconds of any process (`/proc/<pid>/stat`, clock ticks).
fn proc_cpu_s(pid: i32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces), from field 3 (state) on.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (tck > 0).then(|| (utime + stime) / tck as f64)
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

async fn one_value(conn: &mut Connection, sql: &str) -> Result<Option<String>, String> {
    let r = conn
        .simple_query(sql)
        .await
        .map_err(|e| format!("{sql}: {e}"))?;
    Ok(r.into_iter()
        .flat_map(|r| r.rows)
        .next()
        .and_then(|row| row.into_iter().next().flatten()))
}

async fn count(conn: &mut Connection, sql: &str) -> Result<u64, String> {
    one_value(conn, sql)
        .await?
        .as_deref()
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| format!("{sql}: not a count"))
}

/// The number at the end of a command tag (`UPDATE 5`, `INSERT 0 5`, `DELETE 5`).
fn tag_rows(tag: &str) -> u64 {
    tag.rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// What the harness connects with: the spec's connection string.
fn harness_config(spec: &Value) -> Result<Config, String> {
    let url = spec
        .get("connection_string")
        .and_then(Value::as_str)
        .ok_or("the spec has no connection_string")?;
    Config::parse(url).map_err(|e| format!("connection_string: {e}"))
}

struct Phase {
    stream: Streaming<pb::sync::Response>,
    client: pb::plugin_client::PluginClient<tonic::transport::Channel>,
    sync_at: Instant,
    init_s: f64,
}

async fn start(session: &mut Session, spec: &str, report: &mut RunReport) -> Result<Phase, String> {
    let mut client = session.connect(false, report).await?;
    let init_s = client::init(&mut client, spec).await?;
    let sync_at = Instant::now();
    let tables: Vec<String> = [ACCOUNTS, HISTORY, LATENCY].map(String::from).to_vec();
    let stream = client
        .sync(client::sync_request(&tables, &[]))
        .await
        .map_err(|s| format!("Sync: {s}"))?
        .into_inner();
    Ok(Phase {
        stream,
        client,
        sync_at,
        init_s,
    })
}

/// Ends a phase as the CLI ends a CDC sync: the stream dropped, Close, then the process stopped.
async fn finish(phase: Phase, session: &mut Session) -> Result<Exit, String> {
    let Phase {
        stream, mut client, ..
    } = phase;
    drop(stream);
    // Close may fail if the plugin is already on its way out; the exit code says how it ended.
    let _ = tokio::time::timeout(Duration::from_secs(5), client.close(pb::close::Request {})).await;
    drop(client);
    session.stop().await
}

async fn next(phase: &mut Phase) -> Result<Option<Message>, String> {
    match phase.stream.message().await {
        Ok(Some(r)) => Ok(r.message),
        Ok(None) => Err("the plugin ended the Sync stream".into()),
        Err(s) => Err(format!("Sync stream: {s}")),
    }
}

/// The slot's walsender: pid and `pg_stat_replication.state`.
async fn walsender(conn: &mut Connection, slot: &str) -> Result<Option<(i32, String)>, String> {
    let sql = format!(
        "SELECT s.active_pid, coalesce(r.state, '') FROM pg_replication_slots s \
         LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid \
         WHERE s.slot_name = {} AND s.active_pid IS NOT NULL",
        quote_literal(slot)
    );
    let r = conn
        .simple_query(&sql)
        .await
        .map_err(|e| format!("{sql}: {e}"))?;
    Ok(r.into_iter().flat_map(|r| r.rows).next().and_then(|row| {
        let pid = row.first()?.as_deref()?.parse().ok()?;
        let state = row.get(1).cloned().flatten().unwrap_or_default();
        Some((pid, state))
    }))
}

pub async fn run(opts: &CdcOptions) -> Result<Value, String> {
    let spec: Value =
        serde_json::from_str(&opts.spec).map_err(|e| format!("--spec is not JSON: {e}"))?;
    let cdc_id = spec
        .get("cdc_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("the spec must set cdc_id")?;
    let names = cq_source_postgresql::cdc::CdcId::parse(cdc_id)
        .map_err(|e| e.to_string())?
        .names()
        .clone();
    let cfg = harness_config(&spec)?;
    let ceiling_slot = format!("{}_ceiling", names.slot);
    let result = tokio::time::timeout(opts.timeout, measure(opts, &cfg, &names, &ceiling_slot))
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {:?}", opts.timeout)));
    let cleanup = drop_slots(&cfg, &[&names.slot, &ceiling_slot]).await;
    let v = result?;
    cleanup?;
    Ok(v)
}

/// Drops the slots (waiting up to 15 s for a stopped plugin's walsender to let go).
async fn drop_slots(cfg: &Config, slots: &[&str]) -> Result<(), String> {
    let mut conn = Connection::connect(cfg)
        .await
        .map_err(|e| format!("connecting to drop the slots: {e}"))?;
    let until = Instant::now() + Duration::from_secs(15);
    for slot in slots {
        loop {
            let sql = format!(
                "SELECT count(*) FROM pg_replication_slots WHERE slot_name = {} AND active",
                quote_literal(slot)
            );
            if count(&mut conn, &sql).await? == 0 || Instant::now() > until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let sql = format!(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = {}",
            quote_literal(slot)
        );
        conn.simple_query(&sql)
            .await
            .map_err(|e| format!("{sql}: {e}"))?;
    }
    conn.close().await;
    Ok(())
}

async fn measure(
    opts: &CdcOptions,
    cfg: &Config,
    names: &cq_source_postgresql::cdc::CdcNames,
    ceiling_slot: &str,
) -> Result<Value, String> {
    let mut conn = Connection::connect(cfg)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    // The benchmark server runs with synchronous_commit = off, which leaves commit records in
    // the WAL buffers until the WAL writer's next round; the walsender and the ceiling only
    // decode flushed WAL. The backlog's commits are flushed at once, as by default.
    conn.batch_execute("SET synchronous_commit = on")
        .await
        .map_err(|e| format!("SET synchronous_commit: {e}"))?;
    let slots = count(
        &mut conn,
        &format!(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name IN ({}, {})",
            quote_literal(&names.slot),
            quote_literal(ceiling_slot)
        ),
    )
    .await?;
    if slots > 0 {
        return Err(format!(
            "slot {} or {ceiling_slot} exists already: the benchmark needs a fresh copy of the cdc dataset",
            names.slot
        ));
    }
    // Expected snapshot rows, from PostgreSQL.
    let accounts = count(&mut conn, &format!("SELECT count(*) FROM {ACCOUNTS}")).await?;
    let max_aid = count(
        &mut conn,
        &format!("SELECT coalesce(max(aid), 0) FROM {ACCOUNTS}"),
    )
    .await?;
    if max_aid != accounts {
        return Err(format!(
            "{ACCOUNTS} keys are not 1..={accounts} (max {max_aid}): not a fresh copy of the cdc dataset"
        ));
    }
    let others = count(
        &mut conn,
        &format!("SELECT (SELECT count(*) FROM {HISTORY}) + (SELECT count(*) FROM {LATENCY})"),
    )
    .await?;
    let snapshot_rows = accounts + others;
    let plan = Plan::new(accounts, opts.changes, opts.txn_changes)?;
    let mut out = serde_json::Map::new();

    // --- 1. initial snapshot ------------------------------------------------------------------
    let mut report = RunReport::default();
    let mut session = Session::spawn(&opts.plugin, opts.keep_logs.as_deref())?;
    let (snap_json, phase) = match snapshot(
        opts,
        &mut conn,
        &names.slot,
        &mut session,
        &mut report,
        snapshot_rows,
    )
    .await
    {
        Ok(v) => v,
        Err(e) => {
            let logs = session.logs();
            let _ = session.stop().await;
            return Err(format!("initial snapshot: {e}{logs}"));
        }
    };
    let exit1 = finish(phase, &mut session).await?;
    out.extend(snap_json);
    out.insert(
        "snapshot_plugin_cpu_s".into(),
        json!(exit1.user_s + exit1.sys_s),
    );
    out.insert(
        "snapshot_plugin_max_rss_kib".into(),
        json!(exit1.max_rss_kib),
    );
    out.insert("snapshot_plugin_exit_code".into(), json!(exit1.code));

    // --- 2. backlog, plugin stopped -----------------------------------------------------------
    let sql = format!(
        "SELECT lsn FROM pg_create_logical_replication_slot({}, 'pgoutput')",
        quote_literal(ceiling_slot)
    );
    one_value(&mut conn, &sql).await?;
    let wal0 = one_value(&mut conn, "SELECT pg_current_wal_insert_lsn()")
        .await?
        .ok_or("pg_current_wal_insert_lsn() returned nothing")?;
    let t = Instant::now();
    // Expected counts: the rows PostgreSQL says each statement changed (its command tag).
    let (mut upd, mut ins, mut del, mut hist) = (0u64, 0u64, 0u64, 0u64);
    for k in 0..plan.txns {
        let (sql, kinds) = plan.transaction(k);
        let results = conn
            .simple_query(&sql)
            .await
            .map_err(|e| format!("backlog transaction {k}: {e}"))?;
        // BEGIN, the statements, COMMIT.
        if results.len() != kinds.len() + 2 {
            return Err(format!(
                "backlog transaction {k}: {} results for {} statements",
                results.len(),
                kinds.len() + 2
            ));
        }
        for (kind, r) in kinds.iter().zip(&results[1..]) {
            let n = tag_rows(&r.tag);
            match kind {
                Kind::Update => upd += n,
                Kind::History => hist += n,
                Kind::Insert => ins += n,
                Kind::Delete => del += n,
            }
        }
    }
    let backlog_s = t.elapsed().as_secs_f64();
    let wal_end = one_value(&mut conn, "SELECT pg_current_wal_insert_lsn()")
        .await?
        .ok_or("pg_current_wal_insert_lsn() returned nothing")?;
    let wal_bytes = count(
        &mut conn,
        &format!(
            "SELECT pg_wal_lsn_diff({}, {})::int8",
            quote_literal(&wal_end),
            quote_literal(&wal0)
        ),
    )
    .await?;
    if (upd, del, ins, hist) != (plan.updates, plan.deletes, plan.inserts, plan.history) {
        return Err(format!(
            "the backlog changed {upd} updates, {del} deletes, {ins} inserts, {hist} history rows; planned {plan:?}"
        ));
    }
    let expected = upd + del + ins + hist;
    out.insert("changes".into(), json!(expected));
    out.insert("changes_updates".into(), json!(upd));
    out.insert("changes_deletes".into(), json!(del));
    out.insert("changes_inserts".into(), json!(ins + hist));
    out.insert("transactions".into(), json!(plan.txns));
    out.insert("wal_bytes".into(), json!(wal_bytes));
    out.insert("wal_start_lsn".into(), json!(wal0));
    out.insert("wal_end_lsn".into(), json!(wal_end));
    out.insert("backlog_write_s".into(), json!(backlog_s));

    // --- 3. drain + 4. latency, one plugin run -------------------------------------------------
    let mut report = RunReport::default();
    let mut session = Session::spawn(&opts.plugin, opts.keep_logs.as_deref())?;
    let cpu0 = self_cpu_s();
    let live = stream_phase(
        opts,
        cfg,
        &mut conn,
        &names.slot,
        &mut session,
        &mut report,
        &plan,
    )
    .await;
    let binary = std::fs::read_to_string(session.stdout_path())
        .map(|log| log.contains("(binary values)"))
        .unwrap_or(false);
    let (live_json, phase) = match live {
        Ok(v) => v,
        Err(e) => {
            let logs = session.logs();
            let _ = session.stop().await;
            return Err(format!("drain/latency: {e}{logs}"));
        }
    };
    let exit2 = finish(phase, &mut session).await?;
    out.extend(live_json);
    out.insert("plugin_cpu_s".into(), json!(exit2.user_s + exit2.sys_s));
    out.insert("plugin_max_rss_kib".into(), json!(exit2.max_rss_kib));
    out.insert("plugin_exit_code".into(), json!(exit2.code));
    out.insert("harness_cpu_s".into(), json!(self_cpu_s() - cpu0));
    out.insert("binary".into(), json!(binary));

    // --- 5. the server's own ceiling -------------------------------------------------------------
    let backend = conn.process_id();
    let cpu_before = proc_cpu_s(backend);
    let sql = format!(
        "SELECT count(*) FROM pg_logical_slot_peek_binary_changes({}, {}::pg_lsn, NULL, \
         'proto_version', '1', 'publication_names', {}, 'binary', {})",
        quote_literal(ceiling_slot),
        quote_literal(&wal_end),
        quote_literal(&names.publication),
        quote_literal(if binary { "true" } else { "false" })
    );
    let t = Instant::now();
    let messages = count(&mut conn, &sql).await?;
    let ceiling_s = t.elapsed().as_secs_f64();
    let ceiling_cpu = proc_cpu_s(backend).zip(cpu_before).map(|(b, a)| b - a);
    // Every change is one message (plus Begin, Commit, Relation): fewer means it decoded
    // something else than the backlog.
    if messages < expected {
        return Err(format!(
            "the ceiling slot {ceiling_slot} decoded {messages} messages up to {wal_end}, fewer than the {expected} changes"
        ));
    }
    out.insert("ceiling_s".into(), json!(ceiling_s));
    out.insert("ceiling_messages".into(), json!(messages));
    out.insert(
        "ceiling_changes_per_s".into(),
        json!(expected as f64 / ceiling_s),
    );
    out.insert("ceiling_backend_cpu_s".into(), json!(ceiling_cpu));
    conn.close().await;
    Ok(Value::Object(out))
}

/// Phase 1: launch, Init, Sync; wait for the snapshot rows and the streaming walsender.
async fn snapshot(
    opts: &CdcOptions,
    conn: &mut Connection,
    slot: &str,
    session: &mut Session,
    report: &mut RunReport,
    expected_rows: u64,
) -> Result<(serde_json::Map<String, Value>, Phase), String> {
    let mut phase = start(session, &opts.spec, report).await?;
    let mut rows = 0u64;
    let mut snapshot_s = None;
    let mut last_check = Instant::now();
    let mut errors = Vec::new();
    // Given up after this long without a record (the first one may wait for Init and the slot).
    let patience = opts.idle_timeout.max(Duration::from_secs(60));
    let mut deadline = Instant::now() + patience;
    loop {
        tokio::select! {
            m = next(&mut phase) => match m? {
                Some(Message::Insert(ins)) => {
                    rows += ipc::count_rows(&ins.record)?.rows;
                    deadline = Instant::now() + patience;
                }
                Some(Message::Error(e)) => errors.push(format!("{}: {}", e.table_name, e.error)),
                Some(Message::DeleteRecord(_)) => {
                    return Err("a delete_record during the initial snapshot".into())
                }
                Some(Message::MigrateTable(_)) | None => {}
            },
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        if snapshot_s.is_none() && rows >= expected_rows {
            snapshot_s = Some(phase.sync_at.elapsed().as_secs_f64());
        }
        if snapshot_s.is_some() && last_check.elapsed() >= Duration::from_millis(50) {
            last_check = Instant::now();
            if walsender(conn, slot)
                .await?
                .is_some_and(|(_, state)| state == "streaming")
            {
                break;
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the initial snapshot did not finish: {rows} of {expected_rows} rows received, \
                 slot {slot} streaming: {}",
                snapshot_s.is_some()
            ));
        }
    }
    if !errors.is_empty() {
        return Err(format!("error messages: {errors:?}"));
    }
    let mut j = serde_json::Map::new();
    j.insert("snapshot_rows_expected".into(), json!(expected_rows));
    j.insert("snapshot_rows".into(), json!(rows));
    j.insert("snapshot_init_s".into(), json!(phase.init_s));
    j.insert("snapshot_s".into(), json!(snapshot_s));
    j.insert(
        "streaming_after_s".into(),
        json!(phase.sync_at.elapsed().as_secs_f64()),
    );
    Ok((j, phase))
}

/// CPU readings at the first change of the drain.
struct FirstChange {
    at: Instant,
    plugin_cpu: Option<f64>,
    harness_cpu: f64,
    /// The slot's walsender: pid and CPU.
    walsender: Option<(i32, Option<f64>)>,
}

struct WriterReport {
    acks: Vec<Instant>,
    started: Instant,
    ended: Instant,
}

/// The latency writer: its own thread, runtime and connection.
fn spawn_writer(
    cfg: Config,
    n: u64,
    rate: f64,
    done: tokio::sync::oneshot::Sender<()>,
) -> std::thread::JoinHandle<Result<WriterReport, String>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("writer runtime: {e}"))?;
        let r = rt.block_on(async move {
            let mut conn = Connection::connect(&cfg)
                .await
                .map_err(|e| format!("writer: connecting: {e}"))?;
            conn.batch_execute("SET synchronous_commit = on")
                .await
                .map_err(|e| format!("writer: {e}"))?;
            let mut acks = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
            let started = Instant::now();
            for i in 0..n {
                let due = started + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let sql = format!("INSERT INTO {LATENCY} (seq, payload) VALUES ({i}, 'bench')");
                let r = conn
                    .simple_query(&sql)
                    .await
                    .map_err(|e| format!("writer: transaction {i}: {e}"))?;
                acks.push(Instant::now());
                if r.first().map(|r| tag_rows(&r.tag)) != Some(1) {
                    return Err(format!("writer: transaction {i} inserted no row"));
                }
            }
            let ended = Instant::now();
            conn.close().await;
            Ok(WriterReport {
                acks,
                started,
                ended,
            })
        });
        let _ = done.send(());
        r
    })
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Phases 3 and 4: relaunch, drain the backlog, then the latency writer on the live stream.
async fn stream_phase(
    opts: &CdcOptions,
    cfg: &Config,
    conn: &mut Connection,
    slot: &str,
    session: &mut Session,
    report: &mut RunReport,
    plan: &Plan,
) -> Result<(serde_json::Map<String, Value>, Phase), String> {
    let mut phase = start(session, &opts.spec, report).await?;
    let plugin_pid = session.pid();
    let mut drain = Drain::new(plan);
    let expected = plan.changes();
    let mut errors = Vec::new();
    let (mut insert_records, mut delete_messages, mut migrates) = (0u64, 0u64, 0u64);
    let mut first: Option<FirstChange> = None;
    let mut last_progress = Instant::now();
    let mut last_at = None;
    // Allow for Init and a previous walsender letting go of the slot before the first change.
    let mut patience = opts.idle_timeout + Duration::from_secs(30);
    while drain.distinct() < expected {
        let m = tokio::select! {
            m = next(&mut phase) => m?,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if last_progress.elapsed() > patience { break; }
                continue;
            }
        };
        let now = Instant::now();
        let before = drain.distinct();
        match m {
            Some(Message::Insert(ins)) => {
                insert_records += 1;
                let (table, column, keys) = first_int64_column(&ins.record)?;
                match (table.as_str(), column.as_str()) {
                    (ACCOUNTS, "aid") => {
                        for k in keys {
                            if !drain.updates.mark(k) && !drain.inserts.mark(k) {
                                drain.unexpected += 1;
                            }
                        }
                    }
                    (HISTORY, "hid") => {
                        for k in keys {
                            if !drain.history.mark(k) {
                                drain.unexpected += 1;
                            }
                        }
                    }
                    _ => drain.unexpected += keys.len() as u64,
                }
            }
            Some(Message::DeleteRecord(d)) => {
                delete_messages += 1;
                let pred = d
                    .where_clause
                    .first()
                    .and_then(|g| g.predicates.first())
                    .ok_or_else(|| {
                        format!("delete_record for {} without a predicate", d.table_name)
                    })?;
                let (_, column, keys) = first_int64_column(&pred.record)?;
                if d.table_name == ACCOUNTS && pred.column == "aid" && column == "aid" {
                    for k in keys {
                        if !drain.deletes.mark(k) {
                            drain.unexpected += 1;
                        }
                    }
                } else {
                    drain.unexpected += 1;
                }
            }
            Some(Message::MigrateTable(_)) => migrates += 1,
            Some(Message::Error(e)) => errors.push(format!("{}: {}", e.table_name, e.error)),
            None => {}
        }
        if drain.distinct() > before {
            last_progress = now;
            last_at = Some(now);
            patience = opts.idle_timeout;
            if first.is_none() {
                let plugin_cpu = proc_cpu_s(plugin_pid);
                let harness_cpu = self_cpu_s();
                let walsender = walsender(conn, slot)
                    .await?
                    .map(|(pid, _)| (pid, proc_cpu_s(pid)));
                first = Some(FirstChange {
                    at: now,
                    plugin_cpu,
                    harness_cpu,
                    walsender,
                });
            }
        }
    }
    let end = last_at.unwrap_or_else(Instant::now);
    let plugin_end = proc_cpu_s(plugin_pid);
    let harness_end = self_cpu_s();
    let mut j = serde_json::Map::new();
    j.insert("drain_init_s".into(), json!(phase.init_s));
    if let Some(FirstChange {
        at: t0,
        plugin_cpu: cpu0,
        harness_cpu: h0,
        walsender: ws,
    }) = first
    {
        let secs = end.duration_since(t0).as_secs_f64();
        j.insert(
            "first_change_after_s".into(),
            json!(t0.duration_since(phase.sync_at).as_secs_f64()),
        );
        j.insert("drain_s".into(), json!(secs));
        j.insert(
            "drain_from_sync_s".into(),
            json!(end.duration_since(phase.sync_at).as_secs_f64()),
        );
        j.insert(
            "changes_per_s".into(),
            json!((secs > 0.0).then(|| drain.distinct() as f64 / secs)),
        );
        j.insert(
            "plugin_cpu_drain_s".into(),
            json!(plugin_end.zip(cpu0).map(|(b, a)| b - a)),
        );
        j.insert("harness_cpu_drain_s".into(), json!(harness_end - h0));
        let ws_cpu = ws.and_then(|(pid, a)| proc_cpu_s(pid).zip(a).map(|(b, a)| b - a));
        j.insert("walsender_cpu_drain_s".into(), json!(ws_cpu));
    }
    j.insert("received_changes".into(), json!(drain.distinct()));
    j.insert("lost_changes".into(), json!(drain.missing()));
    j.insert("duplicate_changes".into(), json!(drain.duplicates()));
    j.insert("unexpected_changes".into(), json!(drain.unexpected));
    j.insert("insert_records".into(), json!(insert_records));
    j.insert("delete_messages".into(), json!(delete_messages));
    j.insert("migrate_tables".into(), json!(migrates));

    // --- latency ---------------------------------------------------------------------------------
    let n = (opts.latency_seconds * opts.rate).round().max(0.0) as u64;
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
    let writer = spawn_writer(cfg.clone(), n, opts.rate, done_tx);
    let mut recv: Vec<Option<Instant>> = vec![None; usize::try_from(n).unwrap_or(0)];
    let (mut got, mut dup, mut other) = (0u64, 0u64, 0u64);
    let mut writer_done: Option<Instant> = None;
    loop {
        tokio::select! {
            m = next(&mut phase) => {
                let now = Instant::now();
                match m? {
                    Some(Message::Insert(ins)) => {
                        let (table, column, keys) = first_int64_column(&ins.record)?;
                        if table == LATENCY && column == "seq" {
                            for k in keys {
                                match usize::try_from(k).ok().and_then(|i| recv.get_mut(i)) {
                                    Some(slot @ None) => { *slot = Some(now); got += 1; }
                                    Some(Some(_)) => dup += 1,
                                    None => other += 1,
                                }
                            }
                        } else {
                            other += keys.len() as u64;
                        }
                    }
                    Some(Message::DeleteRecord(_)) => other += 1,
                    Some(Message::Error(e)) => errors.push(format!("{}: {}", e.table_name, e.error)),
                    Some(Message::MigrateTable(_)) | None => {}
                }
            }
            _ = &mut done_rx, if writer_done.is_none() => writer_done = Some(Instant::now()),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if let Some(at) = writer_done {
            if got == n || at.elapsed() > opts.idle_timeout.min(Duration::from_secs(15)) {
                break;
            }
        }
    }
    let w = writer
        .join()
        .map_err(|_| "the latency writer panicked".to_string())??;
    let mut lat: Vec<f64> = w
        .acks
        .iter()
        .zip(&recv)
        .filter_map(|(ack, r)| {
            r.map(|r| match r.checked_duration_since(*ack) {
                Some(d) => d.as_secs_f64() * 1e3,
                None => -(ack.duration_since(r).as_secs_f64() * 1e3),
            })
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    let committed = w.acks.len() as u64;
    let span = w.ended.duration_since(w.started).as_secs_f64();
    j.insert("latency_target_tps".into(), json!(opts.rate));
    j.insert("latency_committed".into(), json!(committed));
    j.insert(
        "latency_achieved_tps".into(),
        json!((span > 0.0).then(|| committed as f64 / span)),
    );
    j.insert("latency_received".into(), json!(got));
    j.insert("latency_lost".into(), json!(committed - got.min(committed)));
    j.insert("latency_duplicates".into(), json!(dup));
    j.insert("latency_unexpected".into(), json!(other));
    j.insert("latency_p50_ms".into(), json!(percentile(&lat, 50.0)));
    j.insert("latency_p90_ms".into(), json!(percentile(&lat, 90.0)));
    j.insert("latency_p99_ms".into(), json!(percentile(&lat, 99.0)));
    j.insert("latency_max_ms".into(), json!(lat.last()));
    j.insert("latency_min_ms".into(), json!(lat.first()));
    j.insert(
        "latency_negative".into(),
        json!(lat.iter().filter(|v| **v < 0.0).count()),
    );
    j.insert("errors".into(), json!(errors));
    Ok((j, phase))
}
