//! CDC end to end: the real `cloudquery sync` starting the real plugin binary with `cdc_id`,
//! real PostgreSQL servers, changes made with psql (or a wire connection), and the test
//! destination applying upserts and deletes. Expected state always comes from PostgreSQL
//! (`to_jsonb` of each row, ordered by primary key), never from the plugin's output.
//! The `matrix` tests run on PostgreSQL 12–18 in CI; the races of deletes and inserts are in
//! `tests/cdc_cli.rs`; `crash_safety_long` runs behind `#[ignore]`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cq_source_postgresql::wire::{Config, Connection};
use serde_json::{json, Value};
use support::cdc::*;
use support::cli::{self, send_signal};
use support::destination;
use support::pg::{roles, PgOptions, PgServer};

/// Destination log entries of `table` from index `from` on: (type, rows or deleted).
fn log_since(dest: &std::path::Path, table: &str, from: usize) -> Vec<(String, u64)> {
    destination::log(dest)
        .into_iter()
        .skip(from)
        .filter(|e| e["table"] == table)
        .map(|e| {
            let n = e["rows"].as_u64().or(e["deleted"].as_u64()).unwrap_or(0);
            (e["type"].as_str().unwrap_or("").to_string(), n)
        })
        .collect()
}

/// The first start: the initial sync, then inserts, updates and deletes streamed.
#[test]
fn cdc_matrix_first_start_streams_insert_update_delete() {
    let pg = PgServer::start();
    pg.psql(
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t SELECT g, 'seed ' || g FROM generate_series(1, 20) g;",
    );
    let tmp = tempfile::tempdir().unwrap();
    let cdc = CdcRun::new(&pg, tmp.path(), "e2e-first", &["t"]);
    assert_eq!(objects_exist(&pg, "cq_e2e_first"), (false, false));
    let run = cdc.start_streaming();
    assert_eq!(
        objects_exist(&pg, "cq_e2e_first"),
        (true, true),
        "slot and publication cq_e2e_first"
    );
    assert_eq!(
        one(
            &pg,
            "SELECT string_agg(schemaname || '.' || tablename, ',') FROM pg_publication_tables \
             WHERE pubname = 'cq_e2e_first'"
        ),
        "public.t"
    );
    assert!(run.log().contains("created replication slot cq_e2e_first"));
    // The initial sync: the 20 existing rows.
    wait_equal(&pg, &cdc.dest, &["t"], Duration::from_secs(30));
    let mark = destination::log(&cdc.dest).len();
    let rows_before = destination::rows(&cdc.dest, "t").len();

    // Three transactions, far enough apart to land in three flushes (linger 20 ms).
    pg.psql("INSERT INTO t VALUES (100, 'inserted')");
    std::thread::sleep(Duration::from_millis(300));
    pg.psql("UPDATE t SET v = 'updated' WHERE id = 2");
    std::thread::sleep(Duration::from_millis(300));
    pg.psql("DELETE FROM t WHERE id = 3");
    wait_equal(&pg, &cdc.dest, &["t"], Duration::from_secs(30));
    let log = log_since(&cdc.dest, "t", mark);
    assert_eq!(
        log,
        vec![
            ("insert".to_string(), 1),
            ("insert".to_string(), 1),
            ("delete_record".to_string(), 1)
        ],
        "destination log after the initial sync"
    );
    let streamed: Vec<Value> = destination::rows(&cdc.dest, "t")
        .into_iter()
        .skip(rows_before)
        .collect();
    assert_eq!(
        streamed,
        vec![
            json!({"id": 100, "v": "inserted"}),
            json!({"id": 2, "v": "updated"})
        ]
    );
    let done = interrupt(run);
    assert!(!done.timed_out, "{}", done.output());
    // The slot stays for the next run.
    assert_eq!(objects_exist(&pg, "cq_e2e_first"), (true, true));
}

/// What is asserted about re-sent rows:
/// - the second run logs no slot creation and no backfill;
/// - it delivers no row of a key that was not changed in the last `SAFETY_MARGIN` (10 s)
///   before the stop or while the plugin was down. Key 1 is changed and then the test waits
///   until the slot's confirmed position has passed that change, so key 1 must not come again;
///   key 2 is changed just before Ctrl-C (inside the margin, so it may come again); keys 5..50
///   are never changed after the initial sync and must not come again.
#[test]
fn cdc_matrix_restart_resumes_without_initial_sync() {
    let pg = PgServer::start();
    pg.psql(
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         INSERT INTO t SELECT g, 'seed ' || g FROM generate_series(1, 50) g;",
    );
    let tmp = tempfile::tempdir().unwrap();
    let cdc = CdcRun::new(&pg, tmp.path(), "e2e-restart", &["t"]);
    let run = cdc.start_streaming();
    wait_equal(&pg, &cdc.dest, &["t"], Duration::from_secs(30));
    pg.psql("UPDATE t SET v = 'confirmed before stop' WHERE id = 1");
    let after_1 = one(&pg, "SELECT pg_current_wal_lsn()");
    let end = Instant::now() + Duration::from_secs(25);
    while one(
        &pg,
        &format!(
            "SELECT confirmed_flush_lsn >= '{after_1}' FROM pg_replication_slots \
             WHERE slot_name = 'cq_e2e_restart'"
        ),
    ) != "t"
    {
        assert!(
            Instant::now() < end,
            "the slot's confirmed position did not pass {after_1}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    pg.psql("UPDATE t SET v = 'inside the margin' WHERE id = 2");
    wait_equal(&pg, &cdc.dest, &["t"], Duration::from_secs(30));
    let first = interrupt(run);
    let rows_before = destination::rows(&cdc.dest, "t").len();

    // While nothing runs.
    pg.psql(
        "INSERT INTO t VALUES (1000, 'while down');
         UPDATE t SET v = 'changed while down' WHERE id = 3;
         DELETE FROM t WHERE id = 4;",
    );
    let run = cdc.start_streaming();
    wait_equal(&pg, &cdc.dest, &["t"], Duration::from_secs(30));
    let log = run.log();
    assert!(
        !log.contains("created replication slot") && !log.contains("backfilling"),
        "the second run must not create a slot or backfill:\n{log}"
    );
    assert!(
        first
            .log
            .contains("created replication slot cq_e2e_restart"),
        "{}",
        first.output()
    );
    let again: Vec<i64> = destination::rows(&cdc.dest, "t")
        .into_iter()
        .skip(rows_before)
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert!(again.contains(&1000) && again.contains(&3), "{again:?}");
    for id in &again {
        assert!(
            [2, 3, 1000].contains(id),
            "row {id} was sent again after the restart (sent: {again:?})"
        );
    }
    interrupt(run);
}

/// Init fails clearly on `wal_level = replica` and on dynamic placeholders.
#[test]
fn cdc_matrix_init_errors_wal_level_and_dynamic_placeholders() {
    let pg = PgServer::start_with(PgOptions {
        wal_level: "replica",
        ..PgOptions::default()
    });
    pg.psql("CREATE TABLE t (id int PRIMARY KEY, v text)");
    let tmp = tempfile::tempdir().unwrap();
    let cdc = CdcRun::new(&pg, &tmp.path().join("wal"), "e2e-wal", &["t"]);
    let run = cli::sync(&cdc.config)
        .timeout(Duration::from_secs(60))
        .run();
    run.assert_code(1);
    let out = run.output();
    assert!(
        out.contains("needs wal_level = logical") && out.contains("restart"),
        "{out}"
    );
    assert_eq!(objects_exist(&pg, "cq_e2e_wal"), (false, false));

    let cdc = CdcRun::with(&pg, &tmp.path().join("tpl"), "e2e-tpl", &["t"], |mut c| {
        c.spec["destination_table_name"] = json!("{{TABLE}}_{{YEAR}}");
        c
    });
    let run = cli::sync(&cdc.config)
        .timeout(Duration::from_secs(60))
        .run();
    run.assert_code(1);
    let out = run.output();
    assert!(out.contains("dynamic placeholders"), "{out}");
}

/// Commit → arrival at the destination (an upper bound of commit → the change
/// leaves the plugin) under 20 single-row transactions a second for 10 s.
#[test]
fn latency_under_light_steady_load() {
    let pg = PgServer::start();
    pg.psql("CREATE TABLE lat (id int PRIMARY KEY, v text)");
    let tmp = tempfile::tempdir().unwrap();
    let cdc = CdcRun::new(&pg, tmp.path(), "e2e-latency", &["lat"]);
    let run = cdc.start_streaming();
    const N: usize = 200;
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (arrivals, stop, dest) = (arrivals.clone(), stop.clone(), cdc.dest.clone());
        std::thread::spawn(move || {
            let mut seen = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let n = destination::received_rows(&dest, "lat");
                let now = Instant::now();
                while seen < n {
                    arrivals.lock().unwrap().push(now);
                    seen += 1;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let url = pg.url(roles::SUPERUSER, roles::PASSWORD, "postgres");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let commits: Vec<Instant> = rt.block_on(async {
        let mut w = Connection::connect(&Config::parse(&url).unwrap())
            .await
            .unwrap();
        let start = tokio::time::Instant::now();
        let mut commits = Vec::new();
        for i in 0..N {
            tokio::time::sleep_until(start + Duration::from_millis(50 * i as u64)).await;
            w.batch_execute(&format!("INSERT INTO lat VALUES ({i}, 'x')"))
                .await
                .unwrap();
            commits.push(Instant::now());
        }
        commits
    });
    let end = Instant::now() + Duration::from_secs(30);
    while arrivals.lock().unwrap().len() < N && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    poller.join().unwrap();
    let arrivals = arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), N, "rows that arrived");
    let mut ms: Vec<f64> = commits
        .iter()
        .zip(&arrivals)
        .map(|(c, a)| a.saturating_duration_since(*c).as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    let (p50, p99, max) = (pct(0.50), pct(0.99), ms[ms.len() - 1]);
    println!(
        "CDC latency, commit -> destination, {N} transactions at 20/s: p50 {p50:.1} ms, \
         p99 {p99:.1} ms, max {max:.1} ms (polling every 5 ms)"
    );
    assert!(p99 < 5000.0, "p99 {p99:.1} ms");
    wait_equal(&pg, &cdc.dest, &["lat"], Duration::from_secs(10));
    interrupt(run);
}

/// Two `cdc_id`s on one database stream side by side, each delivers every
/// change; `cleanup-cdc` drops one's slot and publication and leaves the other's alone.
#[test]
fn two_cdc_ids_at_once_and_cleanup_drops_only_one() {
    let pg = PgServer::start();
    pg.psql(
        "CREATE TABLE a (id int PRIMARY KEY, v text);
         CREATE TABLE b (id int PRIMARY KEY, v text);
         INSERT INTO a SELECT g, 'a' FROM generate_series(1, 10) g;
         INSERT INTO b SELECT g, 'b' FROM generate_series(1, 10) g;",
    );
    let tmp = tempfile::tempdir().unwrap();
    let one_id = CdcRun::new(&pg, &tmp.path().join("one"), "e2e-one", &["a", "b"]);
    let two_id = CdcRun::new(&pg, &tmp.path().join("two"), "e2e-two", &["a"]);
    let run1 = one_id.spawn();
    let mut run2 = two_id.spawn();
    let mut run1 = run1;
    assert!(
        wait_streaming(&mut run1, Duration::from_secs(90)),
        "{}",
        run1.log()
    );
    assert!(
        wait_streaming(&mut run2, Duration::from_secs(90)),
        "{}",
        run2.log()
    );
    // Phase 1: inserts and updates. While a table has a delete held (1 s, batch.rs) its later
    // changes coalesce per key, so a key inserted and deleted inside that window legitimately
    // never shows its insert; deletes therefore come in phase 2, so that every single change
    // has to show at both destinations.
    for i in 0..30 {
        pg.psql(&format!(
            "INSERT INTO a VALUES ({k}, 'new'); UPDATE a SET v = 'u{i}' WHERE id = {u};
             INSERT INTO b VALUES ({k}, 'new');",
            k = 100 + i,
            u = 1 + i % 10,
        ));
    }
    wait_equal(&pg, &one_id.dest, &["a", "b"], Duration::from_secs(30));
    wait_equal(&pg, &two_id.dest, &["a"], Duration::from_secs(30));
    // Phase 2: deletes.
    for k in 100..125 {
        pg.psql(&format!(
            "DELETE FROM a WHERE id = {k}; DELETE FROM b WHERE id = {k};"
        ));
    }
    wait_equal(&pg, &one_id.dest, &["a", "b"], Duration::from_secs(30));
    wait_equal(&pg, &two_id.dest, &["a"], Duration::from_secs(30));
    // Every change reached both destinations, not only the end state: each inserted key, each
    // update's value, one delete_record per deleted key.
    for dest in [&one_id.dest, &two_id.dest] {
        let rows = destination::rows(dest, "a");
        for k in 100..130 {
            assert!(
                rows.iter().any(|r| r["id"] == k && r["v"] == "new"),
                "insert of key {k} missing at {}",
                dest.display()
            );
        }
        for i in 0..30 {
            assert!(
                rows.iter().any(|r| r["v"] == format!("u{i}").as_str()),
                "update u{i} missing at {}",
                dest.display()
            );
        }
        let deletes = destination::summary(dest)["tables"]["a"]["deletes"]
            .as_u64()
            .unwrap_or(0);
        assert_eq!(
            deletes,
            25,
            "delete_record messages for a at {}",
            dest.display()
        );
    }
    assert_eq!(
        destination::tables(&two_id.dest),
        vec!["a".to_string()],
        "e2e-two selects only a"
    );
    interrupt(run1);
    interrupt(run2);

    // cleanup-cdc of e2e-one.
    let url = pg.url(roles::SUPERUSER, roles::PASSWORD, "postgres");
    // The walsenders of the stopped runs may take a moment to let go of their slots.
    let end = Instant::now() + Duration::from_secs(15);
    while one(
        &pg,
        "SELECT count(*) FROM pg_replication_slots WHERE active",
    ) != "0"
    {
        assert!(Instant::now() < end, "slots still active");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = Command::new(PLUGIN)
        .args([
            "cleanup-cdc",
            "--connection-string",
            &url,
            "--cdc-id",
            "e2e-one",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("cq_e2e_one"), "{text}");
    assert_eq!(objects_exist(&pg, "cq_e2e_one"), (false, false), "{text}");
    assert_eq!(objects_exist(&pg, "cq_e2e_two"), (true, true));
    // Again: nothing left to drop.
    let out = Command::new(PLUGIN)
        .args([
            "cleanup-cdc",
            "--connection-string",
            &url,
            "--cdc-id",
            "e2e-one",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("no replication slot cq_e2e_one")
            && stdout.contains("no publication cq_e2e_one"),
        "{stdout}"
    );
    assert_eq!(objects_exist(&pg, "cq_e2e_two"), (true, true));
}

/// An update of another column keeps a 100 kB TOASTed text intact (REPLICA
/// IDENTITY DEFAULT: the unchanged value is not in the WAL record). `STORAGE EXTERNAL` keeps the
/// value out of line, uncompressed, whatever its content; the check that no row ever arrived
/// with the text missing covers every record, not only the end state.
#[test]
fn toast_value_survives_update_of_another_column() {
    let pg = PgServer::start();
    let big = "(SELECT string_agg(md5(g::text || 'x'), '') FROM generate_series(1, 3200) g)";
    pg.psql(&format!(
        "CREATE TABLE doc (id int PRIMARY KEY, body text, n int);
         ALTER TABLE doc ALTER body SET STORAGE EXTERNAL;
         INSERT INTO doc VALUES (1, {big}, 0);"
    ));
    assert_eq!(one(&pg, "SELECT length(body) FROM doc"), "102400");
    // Stored in the TOAST table, not inline.
    assert_eq!(
        one(
            &pg,
            "SELECT (SELECT count(*) FROM pg_class c JOIN pg_class d ON d.reltoastrelid = c.oid \
             WHERE d.relname = 'doc') = 1 AND pg_relation_size((SELECT reltoastrelid FROM pg_class \
             WHERE relname = 'doc')) > 100000"
        ),
        "t"
    );
    let tmp = tempfile::tempdir().unwrap();
    let cdc = CdcRun::new(&pg, tmp.path(), "e2e-toast", &["doc"]);
    let run = cdc.start_streaming();
    wait_equal(&pg, &cdc.dest, &["doc"], Duration::from_secs(30));
    pg.psql(&format!(
        "UPDATE doc SET n = 1 WHERE id = 1;
         INSERT INTO doc VALUES (2, {big} || 'two', 0);"
    ));
    std::thread::sleep(Duration::from_millis(300));
    pg.psql("UPDATE doc SET n = 2 WHERE id = 2; UPDATE doc SET n = 3 WHERE id = 1;");
    wait_equal(&pg, &cdc.dest, &["doc"], Duration::from_secs(30));
    for r in destination::rows(&cdc.dest, "doc") {
        let len = r["body"].as_str().map(str::len);
        assert!(
            len == Some(102400) || len == Some(102403),
            "row {} arrived with body of length {len:?}",
            r["id"]
        );
    }
    interrupt(run);
}

// ------------------------------------------------------------------------------------------------
// Crash safety.

const CRASH_TABLES: [&str; 3] = ["c1", "c2", "c3"];

/// `kills` SIGKILLs of the plugin (the first `backfill_kills` of them as soon as the initial sync
/// has started, the others at random moments) interleaved with `interrupts` SIGINTs of the CLI,
/// each followed by a new `cloudquery sync`, under a random workload on three tables.
fn crash_safety(kills: usize, interrupts: usize, backfill_kills: usize) {
    let pg = PgServer::start();
    for t in CRASH_TABLES {
        pg.psql(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, v text, n int);
             INSERT INTO {t} SELECT g, 'seed', 0 FROM generate_series(1, 400, 2) g;"
        ));
    }
    // A big table keeps the initial sync busy long enough to be killed in the middle of it.
    pg.psql(
        "CREATE TABLE big (id int PRIMARY KEY, v text);
         INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 100000) g;",
    );
    let tables = ["c1", "c2", "c3", "big"];
    let tmp = tempfile::tempdir().unwrap();
    let cdc = CdcRun::new(&pg, tmp.path(), "e2e-crash", &tables);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("crash_safety seed {seed}");
    let stop = Arc::new(AtomicBool::new(false));
    let url = pg.url(roles::SUPERUSER, roles::PASSWORD, "postgres");
    let load = random_workload(url, &CRASH_TABLES, 400, stop.clone(), seed, false);
    let mut x = seed.wrapping_mul(2654435761) | 1;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    // The first `backfill_kills` cycles are SIGKILLs in a row (each start re-does the
    // unfinished initial sync), then SIGKILLs and SIGINTs alternate.
    let mut plan: Vec<&str> = vec!["KILL"; backfill_kills.min(kills)];
    let (mut k, mut i) = (plan.len(), 0);
    while k < kills || i < interrupts {
        if i < interrupts {
            plan.push("INT");
            i += 1;
        }
        if k < kills {
            plan.push("KILL");
            k += 1;
        }
    }
    let mut during_backfill = 0;
    for (cycle, how) in plan.iter().enumerate() {
        let mut run = cdc.spawn();
        let kill_index = plan[..cycle].iter().filter(|h| **h == "KILL").count();
        if how == &"KILL" && (kill_index < backfill_kills || rnd(3) == 0) {
            // during the (re)started initial sync or during setup
            run.wait_for(Duration::from_secs(60), |t| {
                t.contains("backfilling") || t.contains("streaming changes of")
            });
        } else {
            assert!(
                wait_streaming(&mut run, Duration::from_secs(90)),
                "{}",
                run.log()
            );
            std::thread::sleep(Duration::from_millis(200 + rnd(3000)));
        }
        match *how {
            "KILL" => {
                let pid = plugin_pid(&run).expect("plugin process");
                assert!(send_signal(pid, "KILL"));
                let end = Instant::now() + Duration::from_secs(30);
                while run.is_running() && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(50));
                }
                if run.is_running() {
                    run.interrupt();
                }
                let done = run.wait();
                // The plugin is dead: its log is complete. Killed inside the initial sync when
                // it had started one and not yet started streaming.
                if done.log.contains("backfilling") && !done.log.contains("streaming changes of") {
                    during_backfill += 1;
                }
            }
            _ => {
                let _ = interrupt(run);
            }
        }
        println!("cycle {cycle}: {how}");
    }
    assert!(
        during_backfill >= backfill_kills,
        "{during_backfill} kills landed in the initial sync"
    );
    stop.store(true, Ordering::SeqCst);
    let txs = load.join().unwrap();
    println!(
        "crash_safety: {} SIGKILLs ({during_backfill} during the initial sync), {interrupts} \
         SIGINTs, {txs} transactions",
        kills
    );
    let run = cdc.start_streaming();
    wait_equal(&pg, &cdc.dest, &CRASH_TABLES, Duration::from_secs(120));
    // `big` never changes: every row is there (its rows are compared by count).
    assert_eq!(destination::state(&cdc.dest, "big").len(), 100000);
    interrupt(run);
}

#[test]
fn crash_safety_short() {
    crash_safety(2, 1, 1);
}

#[test]
#[ignore = "long: CQPG_LONG=1 bash scripts/test.sh"]
fn crash_safety_long() {
    crash_safety(12, 4, 2);
}

/// `exclude_columns` and `filter` with CDC: on 15+ through the publication's column list and
/// row filter (the excluded column never leaves the server); on 12–14 a filter fails Init and
/// excluded columns are dropped by the plugin before decoding. Both: the initial sync and the
/// stream deliver only the kept columns of the matching rows.
#[test]
fn cdc_matrix_excluded_columns_and_filter() {
    let pg = PgServer::start();
    let has_row_filters = pg.version_major() >= 15;
    pg.psql(
        "CREATE TABLE t (id int PRIMARY KEY, v text, secret text);
         INSERT INTO t SELECT g, 'seed ' || g, 'SECRET' FROM generate_series(1, 20) g;
         INSERT INTO t VALUES (500, 'outside the filter', 'SECRET');",
    );
    let tmp = tempfile::tempdir().unwrap();
    let options = |filter: bool| {
        let mut entry = json!({ "tables": ["t"], "exclude_columns": ["secret"] });
        if filter {
            entry["filter"] = json!("id < 100");
        }
        move |c: cli::Config| {
            let mut spec = c.spec.clone();
            spec["table_options"] = json!([entry]);
            c.spec(spec)
        }
    };
    if !has_row_filters {
        let refused = CdcRun::with(
            &pg,
            &tmp.path().join("f"),
            "e2e-opts",
            &["t"],
            options(true),
        );
        let run = cli::sync(&refused.config).run();
        run.assert_code(1);
        assert!(
            run.output().contains("needs PostgreSQL 15 or later"),
            "{}",
            run.output()
        );
    }
    if has_row_filters {
        // A row filter on a column outside the replica identity would make the server refuse
        // the table's UPDATEs once the publication exists: Init says so and creates nothing.
        let unsafe_filter = CdcRun::with(&pg, &tmp.path().join("u"), "e2e-opts", &["t"], |c| {
            let mut spec = c.spec.clone();
            spec["table_options"] = json!([{ "tables": ["t"], "filter": "v <> 'x'" }]);
            c.spec(spec)
        });
        let run = cli::sync(&unsafe_filter.config).run();
        run.assert_code(1);
        assert!(
            run.output().contains("would refuse its UPDATEs or DELETEs"),
            "{}",
            run.output()
        );
        assert_eq!(objects_exist(&pg, "cq_e2e_opts"), (false, false));
        pg.psql("UPDATE t SET v = v WHERE id = 1");
    }
    let cdc = CdcRun::with(
        &pg,
        &tmp.path().join("s"),
        "e2e-opts",
        &["t"],
        options(has_row_filters),
    );
    let expected = |pg: &PgServer| -> Vec<Value> {
        let filter = if has_row_filters {
            "WHERE id < 100"
        } else {
            ""
        };
        let out = pg.psql(&format!(
            "SELECT coalesce(json_agg(jsonb_build_object('id', id, 'v', v) ORDER BY id), '[]')
               FROM t {filter}"
        ));
        serde_json::from_str(&out).expect("json")
    };
    let wait = |pg: &PgServer| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = dest_rows(&cdc.dest, "t");
            if got == expected(pg) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "destination {got:?}\nexpected {:?}",
                expected(pg)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let run = cdc.start_streaming();
    wait(&pg);
    if has_row_filters {
        assert_eq!(
            one(
                &pg,
                "SELECT attnames::text || ' ' || rowfilter FROM pg_publication_tables \
                 WHERE pubname = 'cq_e2e_opts'"
            ),
            "{id,v} (id < 100)"
        );
    }
    pg.psql(
        "INSERT INTO t VALUES (21, 'inserted', 'SECRET'), (600, 'outside', 'SECRET');
         UPDATE t SET v = 'updated', secret = 'SECRET2' WHERE id IN (2, 500);
         DELETE FROM t WHERE id = 3;",
    );
    wait(&pg);
    let done = interrupt(run);
    assert!(!done.timed_out, "{}", done.output());
    for row in destination::rows(&cdc.dest, "t") {
        assert!(!row.to_string().contains("SECRET"), "{row}");
        assert!(row.get("secret").is_none(), "{row}");
    }
}
