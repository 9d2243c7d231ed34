//! Incremental sync without replication, end to end: real PostgreSQL servers, the real CLI, the
//! test destination as both the sync's destination and CloudQuery's state backend (it answers
//! `Read` across CLI runs). Expected row counts are the test's own constants (the rows it
//! changed); expected contents come from PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::cli::{pg_config, send_signal, sync, validate_config, CliRun, Config, PLUGIN};
use support::destination;
use support::pg::{roles, PgOptions, PgServer, Session};

const STATE_TABLE: &str = "cq_state_postgresql";

/// Autovacuum off: its ANALYZE takes a transaction id, and one running while a sync takes its
/// snapshot would widen the re-read window (correct, but the exact counts below would move).
fn server(version: Option<u32>) -> PgServer {
    PgServer::start_with(PgOptions {
        version,
        extra_conf: vec!["autovacuum = off".into(), "log_statement = 'all'".into()],
        ..PgOptions::default()
    })
}

/// The test destination also serves as the state backend.
fn config(pg: &PgServer, dir: &Path, spec: Value) -> Config {
    pg_config(pg, roles::SUPERUSER, dir, spec).source_key(
        "backend_options",
        json!({ "table_name": STATE_TABLE, "connection": "@@plugins.test.connection" }),
    )
}

fn dest(dir: &Path) -> PathBuf {
    dir.join("dest")
}

/// Runs a sync that must succeed with no errors; returns the rows each table received in it.
fn sync_counting(cfg: &Path, dest: &Path, tables: &[&str]) -> (CliRun, BTreeMap<String, u64>) {
    let before: Vec<u64> = tables
        .iter()
        .map(|t| destination::received_rows(dest, t))
        .collect();
    let run = sync(cfg).run();
    run.assert_success();
    let summary = run.summary().expect("a sync summary");
    assert_eq!(summary.errors, 0, "{}", run.output());
    let counts = tables
        .iter()
        .zip(before)
        .map(|(t, b)| (t.to_string(), destination::received_rows(dest, t) - b))
        .collect();
    (run, counts)
}

/// `(id, v, note)` of every row, from PostgreSQL.
fn source_rows(pg: &PgServer, table: &str) -> Vec<(i64, i64, String)> {
    pg.psql(&format!("SELECT id, v, note FROM {table} ORDER BY id"))
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(3, '|').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].to_string(),
            )
        })
        .collect()
}

/// `(id, v, note)` of every row of the destination's applied state.
fn dest_rows(dest: &Path, table: &str) -> Vec<(i64, i64, String)> {
    let mut rows: Vec<_> = destination::state(dest, table)
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().expect("id"),
                r["v"].as_i64().expect("v"),
                r["note"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// `incremental: xmin` for every table, `table` by its cursor `column` instead.
fn xmin_with_cursor(table: &str, column: &str) -> Value {
    json!({
        "incremental": "xmin",
        "table_options": [{ "tables": [table], "cursor_column": column }]
    })
}

fn create_table(pg: &PgServer, table: &str, rows: u32) {
    pg.psql(&format!(
        "CREATE TABLE {table} (id bigint PRIMARY KEY, v bigint NOT NULL, note text);
         INSERT INTO {table} SELECT g, 0, 'row ' || g FROM generate_series(1, {rows}) g;"
    ));
}

/// 100 updates and 50 inserts, each its own transaction.
fn change_150(pg: &PgServer, table: &str, first_new_id: u32) {
    let mut sql = String::new();
    for id in 1..=100 {
        sql.push_str(&format!(
            "UPDATE {table} SET v = v + 1, note = 'updated' WHERE id = {id};\n"
        ));
    }
    for id in first_new_id..first_new_id + 50 {
        sql.push_str(&format!(
            "INSERT INTO {table} VALUES ({id}, 7, 'inserted');\n"
        ));
    }
    pg.psql(&sql);
}

#[test]
fn xmin_mode_second_sync_sends_only_the_changed_rows() {
    let pg = server(None);
    for t in ["inc_a", "inc_b"] {
        create_table(&pg, t, 10_000);
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&pg, dir.path(), json!({ "incremental": "xmin" }))
        .tables(&["inc_a", "inc_b"])
        .write(dir.path());
    let dest = dest(dir.path());

    let (first, counts) = sync_counting(&cfg, &dest, &["inc_a", "inc_b"]);
    assert_eq!(counts["inc_a"], 10_000);
    assert_eq!(counts["inc_b"], 10_000);
    assert!(
        !first
            .log_lines_with("incremental: whole table read (first sync")
            .is_empty(),
        "{}",
        first.output()
    );
    let schema = destination::schema(&dest, "inc_a").expect("migrated");
    assert_eq!(schema["metadata"]["cq:extension:incremental"], "true");

    for t in ["inc_a", "inc_b"] {
        change_150(&pg, t, 20_001);
    }
    let (second, counts) = sync_counting(&cfg, &dest, &["inc_a", "inc_b"]);
    assert_eq!(counts["inc_a"], 150, "{}", second.output());
    assert_eq!(counts["inc_b"], 150, "{}", second.output());
    assert!(
        !second
            .log_lines_with("incremental: 150 changed rows since snapshot")
            .is_empty(),
        "{}",
        second.output()
    );
    // The CLI's default write mode (overwrite-delete-stale) kept the 9,900 rows not re-sent.
    for t in ["inc_a", "inc_b"] {
        assert_eq!(dest_rows(&dest, t), source_rows(&pg, t), "table {t}");
    }
    // Nothing changed: nothing read.
    let (_, counts) = sync_counting(&cfg, &dest, &["inc_a", "inc_b"]);
    assert_eq!(counts["inc_a"], 0);
    assert_eq!(counts["inc_b"], 0);

    // Rows written since, then frozen by VACUUM FREEZE, keep their xmin: still found.
    pg.psql(
        "INSERT INTO inc_a SELECT g, 9, 'frozen' FROM generate_series(30001, 30010) g;
         VACUUM FREEZE inc_a;",
    );
    let (_, counts) = sync_counting(&cfg, &dest, &["inc_a", "inc_b"]);
    assert_eq!((counts["inc_a"], counts["inc_b"]), (10, 0));
    assert_eq!(dest_rows(&dest, "inc_a"), source_rows(&pg, "inc_a"));
}

/// Both modes on every major (12 reads its snapshot with `txid_current_snapshot()`).
#[test]
fn incremental_xmin_and_cursor_matrix() {
    let pg = server(None);
    for t in ["m_x", "m_c"] {
        pg.psql(&format!(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, v bigint NOT NULL, note text,
                               ts timestamptz NOT NULL DEFAULT clock_timestamp());
             CREATE INDEX ON {t} (ts);
             INSERT INTO {t} (id, v, note) SELECT g, 0, 'row ' || g FROM generate_series(1, 500) g;"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&pg, dir.path(), xmin_with_cursor("m_c", "ts"))
        .tables(&["m_x", "m_c"])
        .write(dir.path());
    let dest = dest(dir.path());
    let (_, counts) = sync_counting(&cfg, &dest, &["m_x", "m_c"]);
    assert_eq!((counts["m_x"], counts["m_c"]), (500, 500));
    for t in ["m_x", "m_c"] {
        pg.psql(&format!(
            "UPDATE {t} SET v = 1, note = 'changed', ts = clock_timestamp() WHERE id % 100 = 0;
             INSERT INTO {t} (id, v, note) VALUES (1001, 2, 'new');"
        ));
    }
    let (run, counts) = sync_counting(&cfg, &dest, &["m_x", "m_c"]);
    assert_eq!((counts["m_x"], counts["m_c"]), (6, 6), "{}", run.output());
    for t in ["m_x", "m_c"] {
        assert_eq!(dest_rows(&dest, t), source_rows(&pg, t), "table {t}");
    }
}

#[test]
fn a_transaction_open_during_a_sync_is_delivered_by_the_next_one() {
    let pg = server(None);
    create_table(&pg, "x_tab", 1_000);
    pg.psql(
        "CREATE TABLE c_tab (id bigint PRIMARY KEY, v bigint NOT NULL, note text,
                             updated_at timestamptz NOT NULL);
         CREATE INDEX ON c_tab (updated_at);
         INSERT INTO c_tab SELECT g, 0, 'row ' || g, '2026-01-01'::timestamptz + g * interval '1 s'
           FROM generate_series(1, 1000) g;",
    );
    // Writes before the sync, commits after it; half of it after a SAVEPOINT (a subtransaction,
    // whose id the snapshot's in-progress list does not hold). The cursor values are older than
    // every committed one.
    let mut open = Session::open(&pg);
    open.send(
        "BEGIN;
         INSERT INTO x_tab VALUES (5001, 1, 'in flight');
         INSERT INTO c_tab VALUES (5001, 1, 'in flight', '2000-01-01');
         SAVEPOINT s;
         INSERT INTO x_tab VALUES (5002, 1, 'in flight, subtransaction');
         INSERT INTO c_tab VALUES (5002, 1, 'in flight, subtransaction', '2000-01-02');
         SET application_name = 'in_flight_ready';",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.psql(
        "SELECT count(*) FROM pg_stat_activity
          WHERE application_name = 'in_flight_ready' AND state = 'idle in transaction'",
    ) != "1"
    {
        assert!(
            Instant::now() < deadline,
            "the open transaction never got ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&pg, dir.path(), xmin_with_cursor("c_tab", "updated_at"))
        .tables(&["x_tab", "c_tab"])
        .write(dir.path());
    let dest = dest(dir.path());
    let (_, counts) = sync_counting(&cfg, &dest, &["x_tab", "c_tab"]);
    assert_eq!((counts["x_tab"], counts["c_tab"]), (1_000, 1_000));
    let cursor_schema = destination::schema(&dest, "c_tab").expect("migrated");
    let updated_at = cursor_schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "updated_at")
        .expect("updated_at field");
    assert_eq!(updated_at["metadata"]["cq:extension:incremental"], "true");

    open.send("COMMIT;");
    open.finish();
    let (second, counts) = sync_counting(&cfg, &dest, &["x_tab", "c_tab"]);
    assert_eq!(counts["x_tab"], 2, "{}", second.output());
    assert_eq!(counts["c_tab"], 2, "{}", second.output());
    for t in ["x_tab", "c_tab"] {
        assert_eq!(dest_rows(&dest, t), source_rows(&pg, t), "table {t}");
    }
}

/// The statements the plugin logged for `table` (`table read statement`, debug level).
fn read_statements(run: &CliRun, table: &str) -> Vec<String> {
    run.log_lines_with("table read statement")
        .iter()
        .filter_map(|line| {
            let start = line.find('{')?;
            let v: Value = serde_json::from_str(&line[start..]).ok()?;
            (v["table"] == table).then(|| v["statement"].as_str().map(str::to_string))?
        })
        .collect()
}

#[test]
fn cursor_mode_reads_an_indexed_timestamptz_through_the_index() {
    let pg = server(None);
    pg.psql(
        "CREATE TABLE ev (id bigint PRIMARY KEY, v bigint NOT NULL, note text,
                          updated_at timestamptz NOT NULL);
         CREATE INDEX ev_updated_at ON ev (updated_at);
         INSERT INTO ev SELECT g, 0, 'row ' || g, '2026-01-01'::timestamptz + g * interval '1 s'
           FROM generate_series(1, 20000) g;
         ANALYZE ev;",
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &pg,
        dir.path(),
        json!({ "table_options": [{ "tables": ["ev"], "cursor_column": "updated_at" }] }),
    )
    .tables(&["ev"])
    .write(dir.path());
    let dest = dest(dir.path());
    let (_, counts) = sync_counting(&cfg, &dest, &["ev"]);
    assert_eq!(counts["ev"], 20_000);

    pg.psql(
        "UPDATE ev SET updated_at = clock_timestamp(), v = 1, note = 'changed'
          WHERE id % 2000 = 0",
    );
    let before = destination::received_rows(&dest, "ev");
    let run = sync(&cfg).log_json().run();
    run.assert_success();
    assert_eq!(destination::received_rows(&dest, "ev") - before, 10);
    assert_eq!(dest_rows(&dest, "ev"), source_rows(&pg, "ev"));

    let statements = read_statements(&run, "ev");
    assert_eq!(statements.len(), 1, "{statements:?}\n{}", run.output());
    let select = statements[0]
        .strip_prefix("COPY (")
        .and_then(|s| s.strip_suffix(") TO STDOUT (FORMAT binary)"))
        .expect("a COPY (SELECT …) statement");
    let plan = pg.psql(&format!("EXPLAIN {select}"));
    assert!(
        plan.contains("Index Scan using ev_updated_at")
            || plan.contains("Bitmap Index Scan on ev_updated_at"),
        "not an index scan:\n{plan}"
    );
    assert!(!plan.contains("Seq Scan"), "{plan}");
}

#[test]
fn a_sync_killed_mid_table_leaves_the_position_where_it_was() {
    let pg = server(None);
    create_table(&pg, "k_tab", 10_000);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&pg, dir.path(), json!({ "incremental": "xmin" })).tables(&["k_tab"]);
    let fast = cfg.write(dir.path());
    let dest = dest(dir.path());
    let (_, counts) = sync_counting(&fast, &dest, &["k_tab"]);
    assert_eq!(counts["k_tab"], 10_000);

    pg.psql("UPDATE k_tab SET v = v + 1, note = 'changed' WHERE id <= 5000");
    // One row per message to a slow destination: the CLI's pipeline fills up and holds the
    // plugin in the middle of the table.
    let slow = config(
        &pg,
        dir.path(),
        json!({ "incremental": "xmin", "rows_per_record": 1 }),
    )
    .tables(&["k_tab"])
    .dest_delay_ms(10)
    .write_as(dir.path().join("slow.yml"));
    let before = destination::received_rows(&dest, "k_tab");
    let running = sync(&slow).spawn();
    assert!(
        destination::wait_for_rows(&dest, "k_tab", before + 200, Duration::from_secs(60)),
        "the second sync never delivered rows"
    );
    let plugin = running
        .plugins()
        .into_iter()
        .find(|p| p.cmdline.contains(PLUGIN))
        .expect("the source plugin process");
    assert!(send_signal(plugin.pid, "KILL"));
    let killed = running.wait();
    let got = destination::received_rows(&dest, "k_tab") - before;
    assert!(
        got < 5_000 && killed.log_lines_with("changed rows since").is_empty(),
        "the kill came after the table was done ({got} rows), so it tests nothing:\n{}",
        killed.output()
    );

    // The position did not move: every changed row comes again.
    let (_, counts) = sync_counting(&fast, &dest, &["k_tab"]);
    assert_eq!(counts["k_tab"], 5_000);
    assert_eq!(dest_rows(&dest, "k_tab"), source_rows(&pg, "k_tab"));
}

/// Debian's PostgreSQL 15 tools (scripts/setup.sh installs postgresql-15).
const PG_RESETWAL_15: &str = "/usr/lib/postgresql/15/bin/pg_resetwal";

#[test]
fn transaction_ids_wrapping_between_syncs_lose_nothing() {
    let mut pg = server(Some(15));
    // Freeze everything, then move the next transaction id to just below 2^32 (with the oldest
    // id beside it, so the server's wraparound guard is satisfied). pg_xact needs the segment
    // holding the new id.
    let databases = pg.psql("SELECT datname FROM pg_database WHERE datallowconn");
    for db in databases.lines().filter(|l| !l.is_empty()) {
        pg.psql_db(db, "VACUUM FREEZE");
    }
    pg.stop();
    let next: u64 = (1 << 32) - 1_500;
    let out = pg
        .server_tool(Path::new(PG_RESETWAL_15))
        .args(["-u", &next.to_string(), "-x", &next.to_string(), "-D"])
        .arg(pg.data_dir())
        .output()
        .expect("run pg_resetwal (scripts/setup.sh installs postgresql-15)");
    assert!(
        out.status.success(),
        "pg_resetwal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let segment = pg.data_dir().join(format!("pg_xact/{:04X}", next >> 20));
    let out = pg
        .server_tool(Path::new("/usr/bin/dd"))
        .args(["if=/dev/zero", "bs=262144", "count=1"])
        .arg(format!("of={}", segment.display()))
        .output()
        .expect("dd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pg.start_again();
    let before_wrap: u64 = pg.psql("SELECT txid_current()").parse().unwrap();
    assert!(before_wrap < 1 << 32, "{before_wrap}");

    create_table(&pg, "w_tab", 1_000);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&pg, dir.path(), json!({ "incremental": "xmin" }))
        .tables(&["w_tab"])
        .write(dir.path());
    let dest = dest(dir.path());
    let (_, counts) = sync_counting(&cfg, &dest, &["w_tab"]);
    assert_eq!(counts["w_tab"], 1_000);

    // 100 updates before the wrap, then past 2^32, then 50 inserts.
    let mut sql = String::new();
    for id in 1..=100 {
        sql.push_str(&format!(
            "UPDATE w_tab SET v = v + 1, note = 'updated' WHERE id = {id};\n"
        ));
    }
    pg.psql(&sql);
    pg.psql("DO $$ BEGIN FOR i IN 1..2000 LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$");
    let mut sql = String::new();
    for id in 5_001..5_051 {
        sql.push_str(&format!(
            "INSERT INTO w_tab VALUES ({id}, 7, 'inserted');\n"
        ));
    }
    pg.psql(&sql);
    let after_wrap: u64 = pg.psql("SELECT txid_current()").parse().unwrap();
    assert!(after_wrap > 1 << 32, "no wraparound: {after_wrap}");

    let (second, counts) = sync_counting(&cfg, &dest, &["w_tab"]);
    assert_eq!(counts["w_tab"], 150, "{}", second.output());
    assert_eq!(dest_rows(&dest, "w_tab"), source_rows(&pg, "w_tab"));
}

/// Full sync with `exclude_columns` and `filter`, on every major: the excluded columns never
/// appear in the server's statements (its `log_statement = all` log), the schema or the data.
#[test]
fn excluded_columns_and_filters_in_a_full_sync_matrix() {
    let pg = server(None);
    pg.psql(
        "CREATE TABLE audit_log (id bigint PRIMARY KEY, v bigint NOT NULL, note text,
                                 payload text, secret text);
         INSERT INTO audit_log SELECT g, g, 'row ' || g, 'PAYLOAD-' || g, 'SECRET-' || g
           FROM generate_series(1, 100) g;
         CREATE TABLE audit_other (id bigint PRIMARY KEY, v bigint NOT NULL, note text,
                                   payload text);
         INSERT INTO audit_other SELECT g, g, 'row ' || g, 'PAYLOAD-' || g
           FROM generate_series(1, 100) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    // Two entries match audit_log: exclusions add up, the later filter wins.
    let cfg = Config::local(PLUGIN, dir.path().join("dest"))
        .spec(json!({
            "connection_string": pg.url(roles::SUPERUSER, roles::PASSWORD, "postgres"),
            "table_options": [
                { "tables": ["audit_*"], "exclude_columns": ["payload"], "filter": "id % 2 = 1" },
                { "tables": ["audit_log"], "exclude_columns": ["secret"], "filter": "id % 2 = 0" }
            ]
        }))
        .tables(&["audit_*"])
        .write(dir.path());
    let dest = dest(dir.path());
    let run = sync(&cfg).run();
    run.assert_success();
    assert_eq!(run.summary().unwrap().errors, 0, "{}", run.output());

    let fields = |t: &str| -> Vec<String> {
        destination::field_types(&dest, t)
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| !n.starts_with("_cq_"))
            .collect()
    };
    assert_eq!(fields("audit_log"), ["id", "v", "note"]);
    assert_eq!(fields("audit_other"), ["id", "v", "note"]);
    let even: Vec<_> = source_rows(&pg, "audit_log")
        .into_iter()
        .filter(|r| r.0 % 2 == 0)
        .collect();
    let odd: Vec<_> = source_rows(&pg, "audit_other")
        .into_iter()
        .filter(|r| r.0 % 2 == 1)
        .collect();
    assert_eq!(dest_rows(&dest, "audit_log"), even);
    assert_eq!(dest_rows(&dest, "audit_other"), odd);
    for row in destination::rows(&dest, "audit_log") {
        let text = row.to_string();
        assert!(
            !text.contains("PAYLOAD") && !text.contains("SECRET"),
            "{text}"
        );
    }

    let server_log = std::fs::read_to_string(pg.log_file()).expect("server log");
    let copies: Vec<&str> = server_log
        .lines()
        .filter(|l| l.contains("statement: COPY") && l.contains("audit_"))
        .collect();
    assert_eq!(copies.len(), 2, "{server_log}");
    for line in &copies {
        assert!(
            !line.contains("payload") && !line.contains("secret"),
            "{line}"
        );
    }
}

#[test]
fn bad_table_options_fail_init_naming_entry_table_and_column() {
    let pg = server(None);
    pg.psql(
        "CREATE TABLE opt_t (id bigint PRIMARY KEY, doc jsonb, ts timestamptz);
         CREATE VIEW opt_v AS SELECT * FROM opt_t;",
    );
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!([{ "tables": ["opt_t"], "exclude_columns": ["nope"] }]),
            vec!["table_options[0].exclude_columns", "opt_t", "\"nope\""],
        ),
        (
            json!([{ "tables": ["opt_t"], "cursor_column": "missing" }]),
            vec!["table_options[0].cursor_column", "opt_t", "\"missing\""],
        ),
        (
            json!([{ "tables": ["opt_t"], "filter": "true" }, { "tables": ["opt_t"], "cursor_column": "doc" }]),
            vec![
                "table_options[1].cursor_column",
                "opt_t",
                "\"doc\"",
                "jsonb",
            ],
        ),
        (
            json!([{ "tables": ["opt_v"], "cursor_column": "ts" }]),
            vec!["table_options[0].cursor_column", "opt_v", "view"],
        ),
        (
            json!([{ "tables": ["opt_t"], "filter": "no_such_column > 1" }]),
            vec!["table_options[0].filter", "opt_t", "no_such_column"],
        ),
        (
            json!([{ "tables": ["opt_t"], "cursor": "ts" }]),
            vec!["table_options[0].cursor", "unknown key"],
        ),
    ];
    for (i, (options, needles)) in cases.into_iter().enumerate() {
        let cfg = config(&pg, dir.path(), json!({ "table_options": options }))
            .write_as(dir.path().join(format!("bad{i}.yml")));
        let run = sync(&cfg).run();
        run.assert_code(1);
        let text = run.output();
        assert!(text.contains("failed to init"), "case {i}:\n{text}");
        for needle in needles {
            assert!(text.contains(needle), "case {i}: no {needle:?} in\n{text}");
        }
    }

    // CDC and incremental exclude each other.
    let cfg = config(
        &pg,
        dir.path(),
        json!({ "incremental": "xmin", "cdc_id": "x" }),
    )
    .write_as(dir.path().join("cdc.yml"));
    let run = sync(&cfg).run();
    run.assert_code(1);
    assert!(run
        .output()
        .contains("incremental: cannot be combined with cdc_id"));

    // A pattern matching nothing is a warning, and the sync goes on.
    let cfg = config(
        &pg,
        dir.path(),
        json!({ "table_options": [{ "tables": ["ghost"], "filter": "true" }] }),
    )
    .tables(&["opt_t"])
    .write_as(dir.path().join("ghost.yml"));
    let run = sync(&cfg).run();
    run.assert_success();
    assert!(
        !run.log_lines_with("\"ghost\" matches no table").is_empty(),
        "{}",
        run.output()
    );

    // Shape errors are caught by validate-config through the JSON schema.
    for (i, options) in [
        json!([{ "tables": ["opt_t"], "cursor": "ts" }]),
        json!([{ "cursor_column": "ts" }]),
        json!([{ "tables": ["opt_t"] }]),
        json!({ "tables": ["opt_t"] }),
    ]
    .into_iter()
    .enumerate()
    {
        let cfg = config(&pg, dir.path(), json!({ "table_options": options }))
            .write_as(dir.path().join(format!("shape{i}.yml")));
        let run = validate_config(&cfg).run();
        assert!(
            !run.success(),
            "case {i} passed validate-config:\n{}",
            run.output()
        );
        assert!(
            run.output().contains("table_options"),
            "case {i}:\n{}",
            run.output()
        );
    }
}

#[test]
fn incremental_without_backend_options_fails_with_the_lines_to_add() {
    let pg = server(None);
    create_table(&pg, "nb_tab", 10);
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::local(PLUGIN, dir.path().join("dest"))
        .spec(json!({
            "connection_string": pg.url(roles::SUPERUSER, roles::PASSWORD, "postgres"),
            "incremental": "xmin"
        }))
        .tables(&["nb_tab"])
        .write(dir.path());
    let run = sync(&cfg).run();
    run.assert_code(1);
    let text = run.output();
    for needle in [
        "nb_tab",
        "backend_options:",
        "table_name: cq_state_postgresql",
    ] {
        assert!(text.contains(needle), "no {needle:?} in\n{text}");
    }
}

/// `--shard` and `destination_table_name` with incremental tables: each shard stores and reads
/// the positions of its own tables; the destination names follow the template.
#[test]
fn shards_and_destination_names_keep_their_own_positions() {
    let pg = server(None);
    let tables = ["s_a", "s_b", "s_c"];
    for t in tables {
        create_table(&pg, t, 300);
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &pg,
        dir.path(),
        json!({ "incremental": "xmin", "destination_table_name": "raw_{{TABLE}}" }),
    )
    .tables(&tables)
    .write(dir.path());
    let dest = dest(dir.path());
    let raw: Vec<String> = tables.iter().map(|t| format!("raw_{t}")).collect();
    let raw: Vec<&str> = raw.iter().map(String::as_str).collect();
    let shard_sync = |shard: &str| -> BTreeMap<String, u64> {
        let before: Vec<u64> = raw
            .iter()
            .map(|t| destination::received_rows(&dest, t))
            .collect();
        let run = sync(&cfg).args(["--shard", shard]).run();
        run.assert_success();
        raw.iter()
            .zip(before)
            .map(|(t, b)| (t.to_string(), destination::received_rows(&dest, t) - b))
            .collect()
    };
    let first = shard_sync("1/2");
    let second = shard_sync("2/2");
    let total = |m: &BTreeMap<String, u64>| m.values().sum::<u64>();
    assert_eq!(total(&first) + total(&second), 900, "{first:?} {second:?}");
    for t in tables {
        pg.psql(&format!(
            "UPDATE {t} SET v = 5, note = 'changed' WHERE id <= 7"
        ));
    }
    let first = shard_sync("1/2");
    let second = shard_sync("2/2");
    for t in &raw {
        assert_eq!(first[*t] + second[*t], 7, "{t}: {first:?} {second:?}");
    }
    for (t, r) in tables.iter().zip(&raw) {
        assert_eq!(dest_rows(&dest, r), source_rows(&pg, t), "table {t}");
    }
}
