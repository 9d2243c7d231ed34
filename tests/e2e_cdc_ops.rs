//! CDC under operations, end to end (the real CLI, the real plugin binary, real PostgreSQL
//! servers, the test destination applying upserts and deletes): server restarts and a
//! terminated walsender during a workload, the reconnect timeout, streaming without the initial
//! copy, and a slot the server invalidated. Expected state always comes from PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::cdc::*;
use support::pg::{roles, PgOptions, PgServer};
use support::wait_until;

const TABLES: [&str; 3] = ["o1", "o2", "o3"];

fn create_tables(pg: &PgServer) {
    for t in TABLES {
        pg.psql(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, v text, n int);
             INSERT INTO {t} SELECT g, 'seed', 0 FROM generate_series(1, 300, 2) g;"
        ));
    }
}

/// How many times the plugin has started streaming so far.
fn streams_started(run: &support::cli::RunningCli) -> usize {
    run.log().matches("streaming changes of").count()
}

fn wait_streams(run: &mut support::cli::RunningCli, n: usize, timeout: Duration) {
    let ok = run.wait_for(timeout, |log| {
        log.matches("streaming changes of").count() >= n
    });
    assert!(ok, "stream {n} did not start; CLI log:\n{}", run.log());
}

/// The server restarted twice and the walsender terminated once during a random
/// workload; the CLI never exits, and once the workload stops the destination equals the
/// source row for row.
#[test]
fn cdc_survives_server_restarts_and_a_terminated_walsender() {
    let mut pg = PgServer::start();
    create_tables(&pg);
    let tmp = tempfile::tempdir().unwrap();
    let cdc = CdcRun::new(&pg, tmp.path(), "e2e-ops", &TABLES);
    let mut run = cdc.start_streaming();
    let stop = Arc::new(AtomicBool::new(false));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    let load = random_workload(
        pg.url(roles::SUPERUSER, roles::PASSWORD, "postgres"),
        &TABLES,
        300,
        stop.clone(),
        seed,
        true,
    );
    for (i, operation) in ["restart", "terminate walsender", "restart"]
        .iter()
        .enumerate()
    {
        std::thread::sleep(Duration::from_secs(2));
        match *operation {
            "restart" => pg.restart(),
            _ => {
                let terminated = one(
                    &pg,
                    "SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots \
                     WHERE slot_name = 'cq_e2e_ops' AND active_pid IS NOT NULL",
                );
                assert_eq!(terminated, "1", "the walsender was not found");
            }
        }
        println!("{operation}");
        wait_streams(&mut run, i + 2, Duration::from_secs(90));
        assert!(run.is_running(), "the CLI exited:\n{}", run.log());
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    let committed = load.join().unwrap();
    println!("{committed} transactions committed");
    assert!(committed > 50, "the workload hardly ran: {committed}");
    wait_equal(&pg, &cdc.dest, &TABLES, Duration::from_secs(120));
    assert!(run.is_running(), "the CLI exited:\n{}", run.log());
    let log = run.log();
    assert!(
        log.contains("CDC stream interrupted; reconnecting"),
        "{log}"
    );
    // The lag line, every 10 s.
    assert!(
        log.contains("CDC stream position") && log.contains("bytes_behind"),
        "{log}"
    );
    assert_eq!(streams_started(&run), 4);
    // No initial sync was repeated: one slot creation, one backfill.
    assert_eq!(log.matches("created replication slot").count(), 1, "{log}");
    assert_eq!(log.matches("backfilling").count(), 1, "{log}");
    interrupt(run);
}

/// A server stopped for good ends the sync after `cdc_reconnect_timeout`, exit
/// code 1, with a message naming the host and the last error.
#[test]
fn cdc_reconnect_timeout_ends_the_sync_naming_the_host() {
    let mut pg = PgServer::start();
    create_tables(&pg);
    let tmp = tempfile::tempdir().unwrap();
    let cdc = CdcRun::with(&pg, tmp.path(), "e2e-gone", &TABLES, |c| {
        c.spec_extra(json!({ "cdc_reconnect_timeout": "5s" }))
    });
    let run = cdc.start_streaming();
    let stopped = Instant::now();
    pg.stop();
    let done = run.wait();
    let took = stopped.elapsed();
    let out = done.output();
    assert_eq!(done.code, Some(1), "{out}");
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(60),
        "ended after {took:?}\n{out}"
    );
    assert!(out.contains("cdc_reconnect_timeout"), "{out}");
    assert!(out.contains(&format!("127.0.0.1:{}", pg.port())), "{out}");
    assert!(out.contains("last error"), "{out}");
    assert!(
        !out.contains(roles::PASSWORD),
        "the password leaked:\n{out}"
    );
}

/// `cdc_initial_sync: false` sends no existing row, and streams later changes.
#[test]
fn cdc_initial_sync_false_streams_only_new_changes() {
    let pg = PgServer::start();
    create_tables(&pg);
    let tmp = tempfile::tempdir().unwrap();
    let cdc = CdcRun::with(&pg, tmp.path(), "e2e-nocopy", &TABLES, |c| {
        c.spec_extra(json!({ "cdc_initial_sync": false }))
    });
    let run = cdc.start_streaming();
    pg.psql(
        "INSERT INTO o1 VALUES (1000, 'new', 1);
         UPDATE o2 SET v = 'changed' WHERE id = 1;
         DELETE FROM o3 WHERE id = 3;",
    );
    let want_o1 = json!([{ "id": 1000, "v": "new", "n": 1 }]);
    let want_o2 = json!([{ "id": 1, "v": "changed", "n": 0 }]);
    let end = Instant::now() + Duration::from_secs(60);
    while (serde_json::Value::from(dest_rows(&cdc.dest, "o1")) != want_o1
        || serde_json::Value::from(dest_rows(&cdc.dest, "o2")) != want_o2)
        && Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(serde_json::Value::from(dest_rows(&cdc.dest, "o1")), want_o1);
    assert_eq!(serde_json::Value::from(dest_rows(&cdc.dest, "o2")), want_o2);
    assert_eq!(dest_rows(&cdc.dest, "o3"), Vec::<serde_json::Value>::new());
    let done = interrupt(run);
    assert!(!done.log.contains("backfilling"), "{}", done.output());
    // A later start copies nothing either.
    let run = cdc.start_streaming();
    std::thread::sleep(Duration::from_secs(2));
    let done = interrupt(run);
    assert!(!done.log.contains("backfilling"), "{}", done.output());
    assert_eq!(dest_rows(&cdc.dest, "o1").len(), 1);
}

/// Fills and recycles WAL until the slot's `wal_status` is `lost` (max_slot_wal_keep_size 1MB).
fn invalidate_slot(pg: &PgServer, slot: &str) {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        pg.psql(
            "CREATE TABLE IF NOT EXISTS filler (v text);
             INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 20000);
             TRUNCATE filler;
             SELECT pg_switch_wal();
             CHECKPOINT;",
        );
        let status = one(
            pg,
            &format!("SELECT wal_status FROM pg_replication_slots WHERE slot_name = '{slot}'"),
        );
        if status == "lost" {
            return;
        }
        assert!(Instant::now() < end, "the slot is still {status:?}");
    }
}

/// A slot invalidated by `max_slot_wal_keep_size`. With the default
/// `cdc_on_lost_slot: error` the sync stops with the message; with `resync` it copies every
/// table again in a new slot's snapshot and ends, so the CLI's delete-stale removes the rows
/// deleted while the slot was lost; the next sync streams again.
#[test]
fn cdc_invalidated_slot_error_then_resync() {
    let pg = PgServer::start_with(PgOptions {
        extra_conf: vec![
            "max_slot_wal_keep_size = 1".into(),
            "wal_keep_size = 0".into(),
        ],
        ..PgOptions::default()
    });
    create_tables(&pg);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    // write_mode overwrite-delete-stale (the CLI's default) so that a resync's end removes rows.
    let with = |action: &'static str| {
        move |c: support::cli::Config| {
            c.write_mode("overwrite-delete-stale")
                .spec_extra(json!({ "cdc_on_lost_slot": action }))
        }
    };
    let cdc = CdcRun::with(&pg, &dir, "e2e-lost", &TABLES, with("error"));
    let run = cdc.start_streaming();
    pg.psql("DELETE FROM o1 WHERE id <= 11; UPDATE o2 SET v = 'streamed' WHERE id = 1;");
    wait_equal(&pg, &cdc.dest, &TABLES, Duration::from_secs(60));
    interrupt(run);
    // While no sync runs: changes, then the slot is invalidated.
    pg.psql("DELETE FROM o1 WHERE id BETWEEN 13 AND 41; INSERT INTO o3 VALUES (1001, 'gap', 0);");
    invalidate_slot(&pg, "cq_e2e_lost");

    let done = cdc.spawn().wait();
    let out = done.output();
    assert_eq!(done.code, Some(1), "{out}");
    assert!(
        out.contains("replication slot cq_e2e_lost was invalidated"),
        "{out}"
    );
    assert!(out.contains("cdc_on_lost_slot: resync"), "{out}");

    let cdc = CdcRun::with(&pg, &dir, "e2e-lost", &TABLES, with("resync"));
    let done = cdc.spawn().wait();
    let out = done.output();
    assert_eq!(done.code, Some(0), "{out}");
    assert!(out.contains("resync of 3 tables finished"), "{out}");
    // Deleted rows included: the destination equals the source.
    wait_equal(&pg, &cdc.dest, &TABLES, Duration::from_secs(30));
    let (slot, _) = objects_exist(&pg, "cq_e2e_lost");
    assert!(slot, "a new slot exists");
    assert_ne!(
        one(
            &pg,
            "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'cq_e2e_lost'"
        ),
        "lost"
    );
    // The next sync streams from the new slot without copying again.
    let run = cdc.start_streaming();
    pg.psql("UPDATE o3 SET v = 'after' WHERE id = 1001;");
    wait_equal(&pg, &cdc.dest, &TABLES, Duration::from_secs(60));
    let done = interrupt(run);
    assert!(!done.log.contains("backfilling"), "{}", done.output());
}

/// The connection string of a primary and its standby, read-write host wanted.
fn both_hosts(primary: &PgServer, standby: &PgServer) -> String {
    let one = primary.url(roles::SUPERUSER, roles::PASSWORD, "postgres");
    one.replacen(
        &format!("127.0.0.1:{}", primary.port()),
        &format!("127.0.0.1:{},127.0.0.1:{}", primary.port(), standby.port()),
        1,
    ) + "&target_session_attrs=read-write"
}

/// Waits until the standby holds a synchronized copy of `slot` (PostgreSQL 17+).
fn wait_slot_synced(standby: &PgServer, slot: &str) {
    let sql = format!(
        "SELECT count(*) FROM pg_replication_slots \
         WHERE slot_name = '{slot}' AND synced AND NOT temporary"
    );
    assert!(
        wait_until(Duration::from_secs(90), || one(standby, &sql) == "1"),
        "the standby never synchronized {slot}"
    );
}

/// A primary and a physical standby that synchronizes the failover slot; during a
/// workload the primary stops and the standby is promoted; the plugin, given both hosts,
/// continues on the new primary from the synchronized slot: the destination equals the source
/// and no initial sync is repeated.
fn failover_continues(version: u32) {
    let mut primary = PgServer::start_with(PgOptions {
        version: Some(version),
        ..PgOptions::default()
    });
    create_tables(&primary);
    let standby = PgServer::start_standby(&mut primary, "standby1", true);
    primary.psql("ALTER SYSTEM SET synchronized_standby_slots = 'standby1'");
    primary.psql("SELECT pg_reload_conf()");
    let url = both_hosts(&primary, &standby);
    let tmp = tempfile::tempdir().unwrap();
    let cdc = CdcRun::with(&primary, tmp.path(), "e2e-failover", &TABLES, |c| {
        c.spec_extra(json!({ "connection_string": url.clone() }))
    });
    let mut run = cdc.start_streaming();
    let stop = Arc::new(AtomicBool::new(false));
    let load = random_workload(url.clone(), &TABLES, 300, stop.clone(), 7, true);
    std::thread::sleep(Duration::from_secs(3));
    wait_slot_synced(&standby, "cq_e2e_failover");
    std::thread::sleep(Duration::from_secs(2));
    primary.stop();
    standby.promote();
    wait_streams(&mut run, 2, Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::SeqCst);
    let committed = load.join().unwrap();
    println!("{committed} transactions committed");
    wait_equal(&standby, &cdc.dest, &TABLES, Duration::from_secs(120));
    assert!(run.is_running(), "the CLI exited:\n{}", run.log());
    let log = run.log();
    assert_eq!(log.matches("created replication slot").count(), 1, "{log}");
    assert_eq!(log.matches("backfilling").count(), 1, "{log}");
    interrupt(run);
}

#[test]
fn cdc_failover_continues_on_the_promoted_standby_pg17() {
    failover_continues(17);
}

#[test]
fn cdc_failover_continues_on_the_promoted_standby_pg18() {
    failover_continues(18);
}

/// On PostgreSQL 16 slots do not follow a failover. The running sync reconnects
/// to the promoted standby, finds the slot missing although the stream ran before, and stops
/// with the message (`cdc_on_lost_slot: error`); with `resync` the next sync copies every table
/// again and ends, so the CLI's delete-stale removes the rows deleted meanwhile.
#[test]
fn cdc_failover_on_16_loses_the_slot_error_then_resync() {
    let mut primary = PgServer::start_with(PgOptions {
        version: Some(16),
        ..PgOptions::default()
    });
    create_tables(&primary);
    let standby = PgServer::start_standby(&mut primary, "standby1", false);
    let url = both_hosts(&primary, &standby);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let with = |action: &'static str| {
        let url = url.clone();
        move |c: support::cli::Config| {
            c.write_mode("overwrite-delete-stale").spec_extra(
                json!({ "connection_string": url, "cdc_on_lost_slot": action, "cdc_reconnect_timeout": "60s" }),
            )
        }
    };
    let cdc = CdcRun::with(&primary, &dir, "e2e-lost16", &TABLES, with("error"));
    let run = cdc.start_streaming();
    primary.psql("UPDATE o1 SET v = 'before failover' WHERE id = 1; DELETE FROM o2 WHERE id = 3;");
    wait_equal(&primary, &cdc.dest, &TABLES, Duration::from_secs(60));
    primary.stop();
    standby.promote();
    let done = run.wait();
    let out = done.output();
    assert_eq!(done.code, Some(1), "{out}");
    assert!(
        out.contains(
            "replication slot cq_e2e_lost16 is missing although an earlier run streamed from it"
        ),
        "{out}"
    );
    // Changes on the new primary while no slot exists, deletes included.
    standby
        .psql("DELETE FROM o1 WHERE id BETWEEN 1 AND 21; INSERT INTO o3 VALUES (2000, 'new', 0);");
    let cdc = CdcRun::with(&primary, &dir, "e2e-lost16", &TABLES, with("resync"));
    let done = cdc.spawn().wait();
    let out = done.output();
    assert_eq!(done.code, Some(0), "{out}");
    assert!(out.contains("resync of 3 tables finished"), "{out}");
    wait_equal(&standby, &cdc.dest, &TABLES, Duration::from_secs(30));
}

/// While the published tables are idle and another database writes WAL, the WAL
/// the slot holds back (`pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)`) stays
/// bounded: the plugin confirms the server's WAL end from keepalives once nothing of its own is
/// pending. `CQPG_QUIET_WAL_MB` sets how much WAL the other database writes (default 256 MB;
/// the figure in the notes used 1024).
#[test]
fn cdc_idle_slot_does_not_hold_back_wal_written_elsewhere() {
    let mb: u64 = std::env::var("CQPG_QUIET_WAL_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let pg = PgServer::start();
    create_tables(&pg);
    pg.psql("CREATE DATABASE other");
    pg.psql_db("other", "CREATE TABLE filler (v text)");
    let tmp = tempfile::tempdir().unwrap();
    let cdc = CdcRun::new(&pg, tmp.path(), "e2e-quiet", &TABLES);
    let run = cdc.start_streaming();
    let retained = |pg: &PgServer| -> u64 {
        one(
            pg,
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint \
             FROM pg_replication_slots WHERE slot_name = 'cq_e2e_quiet'",
        )
        .parse()
        .unwrap()
    };
    let start_lsn = one(&pg, "SELECT pg_current_wal_lsn()");
    let mut max_retained = 0u64;
    let started = Instant::now();
    loop {
        // About 10 MB of WAL per round, in the other database only.
        pg.psql_db(
            "other",
            "INSERT INTO filler SELECT repeat(md5(g::text), 30) FROM generate_series(1, 10000) g;
             TRUNCATE filler;",
        );
        max_retained = max_retained.max(retained(&pg));
        let written: u64 = one(
            &pg,
            &format!("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{start_lsn}')::bigint"),
        )
        .parse()
        .unwrap();
        if written >= mb << 20 {
            break;
        }
    }
    let write_secs = started.elapsed().as_secs_f64();
    // Once the writes stop, the confirmed position catches up within the 10 s margin plus a
    // keepalive interval.
    let end = Instant::now() + Duration::from_secs(60);
    let mut after = retained(&pg);
    while after > 16 << 20 && Instant::now() < end {
        std::thread::sleep(Duration::from_secs(1));
        after = retained(&pg);
    }
    println!(
        "quiet database: {mb} MB of WAL written elsewhere in {write_secs:.1} s; retained by the \
         slot: at most {:.1} MB while writing, {:.1} MB after",
        max_retained as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
    assert!(
        after <= 16 << 20,
        "the slot still holds {after} bytes of WAL"
    );
    assert!(
        max_retained < mb << 20,
        "the slot held back everything written: {max_retained} bytes"
    );
    interrupt(run);
}

/// CDC read from a hot standby (16+). The missing-prerequisite messages say what to
/// run where (the publication on the primary, `hot_standby_feedback` on the standby); then
/// inserts, updates and deletes made on the primary reach the destination through the standby.
fn cdc_from_a_standby(version: u32) {
    let mut primary = PgServer::start_with(PgOptions {
        version: Some(version),
        ..PgOptions::default()
    });
    create_tables(&primary);
    let standby = PgServer::start_standby(&mut primary, "standby1", false);
    let tmp = tempfile::tempdir().unwrap();
    let cdc = CdcRun::new(&standby, tmp.path(), "e2e-standby", &TABLES);

    let done = cdc.spawn().wait();
    let out = done.output();
    assert_eq!(done.code, Some(1), "{out}");
    assert!(
        out.contains(
            r#"Run on the primary: CREATE PUBLICATION cq_e2e_standby FOR TABLE "public"."o1", "public"."o2", "public"."o3" WITH (publish_via_partition_root = true);"#
        ),
        "{out}"
    );
    primary.psql(
        "CREATE PUBLICATION cq_e2e_standby FOR TABLE public.o1, public.o2, public.o3 \
         WITH (publish_via_partition_root = true)",
    );
    assert!(
        wait_until(Duration::from_secs(30), || one(
            &standby,
            "SELECT count(*) FROM pg_publication WHERE pubname = 'cq_e2e_standby'"
        ) == "1"),
        "the publication never reached the standby"
    );

    standby.psql("ALTER SYSTEM SET hot_standby_feedback = off");
    standby.psql("SELECT pg_reload_conf()");
    std::thread::sleep(Duration::from_millis(500));
    let done = cdc.spawn().wait();
    let out = done.output();
    assert_eq!(done.code, Some(1), "{out}");
    assert!(
        out.contains("Run on the standby: ALTER SYSTEM SET hot_standby_feedback = on"),
        "{out}"
    );
    standby.psql("ALTER SYSTEM SET hot_standby_feedback = on");
    standby.psql("SELECT pg_reload_conf()");
    std::thread::sleep(Duration::from_millis(500));

    let mut run = cdc.spawn();
    // A slot on a standby waits for the primary to log its running transactions.
    let streaming = run.wait_for(Duration::from_secs(90), |log| {
        primary.psql("SELECT pg_log_standby_snapshot()");
        log.contains("streaming changes of")
    });
    assert!(streaming, "no stream from the standby:\n{}", run.log());
    wait_equal(&primary, &cdc.dest, &TABLES, Duration::from_secs(60));
    primary.psql(
        "INSERT INTO o1 VALUES (5000, 'via standby', 1);
         UPDATE o2 SET v = 'changed on the primary' WHERE id = 1;
         DELETE FROM o3 WHERE id <= 21;",
    );
    wait_equal(&primary, &cdc.dest, &TABLES, Duration::from_secs(60));
    assert_eq!(
        one(
            &primary,
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'cq_e2e_standby'"
        ),
        "0"
    );
    assert_eq!(
        one(
            &standby,
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'cq_e2e_standby'"
        ),
        "1"
    );
    interrupt(run);
    // A restart streams on from the standby's slot without copying again.
    let run = cdc.start_streaming();
    primary.psql("UPDATE o1 SET v = 'after restart' WHERE id = 5000;");
    wait_equal(&primary, &cdc.dest, &TABLES, Duration::from_secs(60));
    let done = interrupt(run);
    assert!(!done.log.contains("backfilling"), "{}", done.output());
}

#[test]
fn cdc_from_a_standby_pg16() {
    cdc_from_a_standby(16);
}

#[test]
fn cdc_from_a_standby_pg17() {
    cdc_from_a_standby(17);
}
