//! The plugin binary end to end under the real CloudQuery CLI 6.21.1
//! (`registry: local` over the unix socket, `registry: grpc` over TCP), real PostgreSQL servers
//! from `support::pg`, and the test destination of `tests/destination/`.
//!
//! Expected values come from the DDL each test writes and the type mapping in the README, never from the
//! plugin's own output. `plugin_cli.rs` covers what needs no database (validate-config of each bad
//! spec, the serve flags, signals on an idle plugin); this file adds the database-backed paths and
//! runs every bad spec through `sync` as well.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::cli::{self, sync, tables, test_connection, validate_config, CliRun, Config, PLUGIN};
use support::destination as dest;
use support::pg::{roles, PgServer};
use support::{free_port, wait_until};

const CLI_TIMEOUT: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------------------------------------
// The 3-table database

/// users and orders in `public` (the current schema, so named bare), regions in schema `sales`.
const THREE_TABLES: &str = "
CREATE TABLE users (
    id integer PRIMARY KEY,
    email text NOT NULL CONSTRAINT users_email_key UNIQUE,
    name varchar(100),
    ext_id uuid,
    created_at timestamptz(3) NOT NULL DEFAULT now()
);
COMMENT ON TABLE users IS 'Registered people';
CREATE TABLE orders (
    order_no bigint,
    line smallint,
    user_id integer NOT NULL REFERENCES users (id),
    amount numeric(12,2) NOT NULL,
    note text,
    CONSTRAINT orders_pk PRIMARY KEY (order_no, line),
    CONSTRAINT orders_user_note UNIQUE (user_id, note)
);
COMMENT ON TABLE orders IS 'Order lines';
CREATE SCHEMA sales;
CREATE TABLE sales.regions (
    code char(2) PRIMARY KEY,
    name text NOT NULL UNIQUE,
    tags text[]
);
INSERT INTO users (id, email, name) VALUES (1, 'a@example.com', 'Ann'), (2, 'b@example.com', NULL);
INSERT INTO orders VALUES (10, 1, 1, 9.50, NULL), (10, 2, 1, 1.00, 'gift'), (11, 1, 2, 3.25, NULL);
INSERT INTO sales.regions VALUES ('EU', 'Europe', '{a,b}');
";

/// Rows inserted above, per table.
const THREE_TABLE_ROWS: [(&str, u64); 3] = [("users", 2), ("orders", 3), ("sales.regions", 1)];

/// One expected field of a migrate message (pyarrow's type names, as the destination records
/// them).
struct F {
    name: &'static str,
    ty: &'static str,
    extension: Option<&'static str>,
    nullable: bool,
    pk: bool,
    unique: bool,
}

const fn f(name: &'static str, ty: &'static str, nullable: bool, pk: bool, unique: bool) -> F {
    F {
        name,
        ty,
        extension: None,
        nullable,
        pk,
        unique,
    }
}

struct T {
    name: &'static str,
    description: &'static str,
    constraint: &'static str,
    fields: Vec<F>,
}

/// What the DDL above must produce (the README's type mapping: integer → Int32, varchar/text/char(n) and
/// numeric → Utf8, uuid → FixedSizeBinary(16) with the `uuid` extension, timestamptz(3) →
/// Timestamp(ms, UTC), text[] → List<Utf8>; NOT NULL → non-nullable; primary_key on every PK
/// column; unique only for a column that alone forms a PK or UNIQUE constraint).
fn expected_three_tables() -> Vec<T> {
    vec![
        T {
            name: "users",
            description: "Registered people",
            constraint: "users_pkey",
            fields: vec![
                f("id", "int32", false, true, true),
                f("email", "string", false, false, true),
                f("name", "string", true, false, false),
                F {
                    extension: Some("uuid"),
                    ..f("ext_id", "fixed_size_binary[16]", true, false, false)
                },
                f("created_at", "timestamp[ms, tz=UTC]", false, false, false),
            ],
        },
        T {
            name: "orders",
            description: "Order lines",
            constraint: "orders_pk",
            fields: vec![
                f("order_no", "int64", false, true, false),
                f("line", "int16", false, true, false),
                f("user_id", "int32", false, false, false),
                f("amount", "string", false, false, false),
                f("note", "string", true, false, false),
            ],
        },
        T {
            name: "sales.regions",
            description: "",
            constraint: "regions_pkey",
            fields: vec![
                f("code", "string", false, true, true),
                f("name", "string", false, false, true),
                f("tags", "list<item: string>", true, false, false),
            ],
        },
    ]
}

fn flag(field: &Value, key: &str) -> bool {
    field["metadata"][key].as_str() == Some("true")
}

/// Checks the last migrate message of every table in `names` against the DDL's expectations.
fn assert_migrates(dest_dir: &Path, names: &[&str]) {
    for t in expected_three_tables()
        .into_iter()
        .filter(|t| names.contains(&t.name))
    {
        let schema = dest::schema(dest_dir, t.name)
            .unwrap_or_else(|| panic!("no migrate_table message for {}", t.name));
        let meta = &schema["metadata"];
        assert_eq!(meta["cq:table_name"], t.name, "{schema}");
        assert_eq!(meta["cq:table_description"], t.description, "{schema}");
        assert_eq!(
            meta["cq:extension:constraint_name"], t.constraint,
            "{schema}"
        );
        assert_eq!(meta["cq:table_title"], "", "{schema}");
        // The CLI prepends _cq_sync_time and _cq_source_name; the rest is the source's.
        let fields: Vec<&Value> = schema["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .filter(|f| !f["name"].as_str().unwrap_or("").starts_with("_cq_"))
            .collect();
        let got: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
        let want: Vec<&str> = t.fields.iter().map(|f| f.name).collect();
        assert_eq!(got, want, "{}: columns in attnum order", t.name);
        for (field, want) in fields.iter().zip(&t.fields) {
            let ctx = format!("{}.{}: {field}", t.name, want.name);
            assert_eq!(field["type"], want.ty, "type of {ctx}");
            assert_eq!(
                field["extension"].as_str(),
                want.extension,
                "extension of {ctx}"
            );
            assert_eq!(field["nullable"], want.nullable, "nullability of {ctx}");
            assert_eq!(
                flag(field, "cq:extension:primary_key"),
                want.pk,
                "primary_key of {ctx}"
            );
            assert_eq!(
                flag(field, "cq:extension:unique"),
                want.unique,
                "unique of {ctx}"
            );
        }
    }
}

fn three_table_server() -> PgServer {
    let pg = PgServer::start();
    pg.psql(THREE_TABLES);
    pg
}

fn superuser_url(pg: &PgServer) -> String {
    pg.url(roles::SUPERUSER, roles::PASSWORD, "postgres")
}

/// Asserts a successful sync of exactly `names`: every table's migrate with its metadata, the
/// rows the DDL inserted, no errors or warnings.
fn assert_synced_exactly(run: &CliRun, dest_dir: &Path, names: &[&str]) {
    run.assert_success();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(dest::tables(dest_dir), want, "{}", run.output());
    assert_migrates(dest_dir, names);
    let rows: u64 = THREE_TABLE_ROWS
        .iter()
        .filter(|(t, _)| names.contains(t))
        .map(|(_, n)| n)
        .sum();
    let summary = run.summary().expect("a sync summary");
    assert_eq!(summary.resources, rows, "{}", run.output());
    assert_eq!(
        (summary.errors, summary.warnings),
        (0, 0),
        "{}",
        run.output()
    );
    for (table, n) in THREE_TABLE_ROWS.iter().filter(|(t, _)| names.contains(t)) {
        assert_eq!(
            dest::rows(dest_dir, table).len() as u64,
            *n,
            "rows of {table}"
        );
    }
}

const ALL_THREE: [&str; 3] = ["users", "orders", "sales.regions"];

#[test]
fn e2e_plugin_sync_registry_local_migrates_every_table_with_metadata() {
    let pg = three_table_server();
    let tmp = tempfile::tempdir().unwrap();
    let dest_dir = tmp.path().join("dest");
    let cfg = Config::local(PLUGIN, &dest_dir)
        .spec(json!({ "connection_string": superuser_url(&pg) }))
        .write(tmp.path());
    let run = sync(&cfg).timeout(CLI_TIMEOUT).run();
    assert_synced_exactly(&run, &dest_dir, &ALL_THREE);
}

/// A plugin process the test starts itself (`registry: grpc`); SIGKILLed on drop if still alive.
struct ServedPlugin {
    child: Child,
    address: String,
}

impl ServedPlugin {
    fn start_tcp() -> ServedPlugin {
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let child = Command::new(PLUGIN)
            .args(["serve", "--network", "tcp", "--address", &address])
            .args(["--log-level", "info", "--log-format", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the plugin");
        let plugin = ServedPlugin { child, address };
        assert!(
            wait_until(Duration::from_secs(5), || {
                std::net::TcpStream::connect(&plugin.address).is_ok()
            }),
            "the plugin did not listen on {} within 5 s",
            plugin.address
        );
        plugin
    }

    /// SIGINT, then the exit status within 5 s.
    fn interrupt(mut self) -> Option<std::process::ExitStatus> {
        assert!(cli::send_signal(self.child.id(), "INT"));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ServedPlugin {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn e2e_plugin_sync_registry_grpc_migrates_every_table_with_metadata() {
    let pg = three_table_server();
    let plugin = ServedPlugin::start_tcp();
    let tmp = tempfile::tempdir().unwrap();
    let dest_dir = tmp.path().join("dest");
    let cfg = Config::grpc(&plugin.address, &dest_dir)
        .spec(json!({ "connection_string": superuser_url(&pg) }))
        .write(tmp.path());
    let run = sync(&cfg).timeout(CLI_TIMEOUT).run();
    assert_synced_exactly(&run, &dest_dir, &ALL_THREE);
    let status = plugin
        .interrupt()
        .expect("the plugin exits within 5 s of SIGINT");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

// ------------------------------------------------------------------------------------------------
// Table selection

#[test]
fn e2e_plugin_sync_tables_skip_tables_and_a_pattern_matching_nothing() {
    let pg = three_table_server();
    let conn = superuser_url(&pg);
    let tmp = tempfile::tempdir().unwrap();
    let start = |name: &str, tables: &[&str], skip: &[&str]| -> (cli::RunningCli, PathBuf) {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let dest_dir = dir.join("dest");
        let cfg = Config::local(PLUGIN, &dest_dir)
            .spec(json!({ "connection_string": conn }))
            .tables(tables)
            .skip_tables(skip)
            .write(&dir);
        (sync(&cfg).timeout(CLI_TIMEOUT).spawn(), dest_dir)
    };
    // Independent syncs, run side by side.
    let runs = [
        (
            start("only", &["users", "orders"], &[]),
            vec!["users", "orders"],
        ),
        // A skip pattern over the other schema's prefixed names, and a skip by bare name.
        (
            start("skip_schema", &["*"], &["sales.*"]),
            vec!["users", "orders"],
        ),
        (
            start("skip_orders", &["*"], &["orders"]),
            vec!["users", "sales.regions"],
        ),
        (
            start("schema_glob", &["sales.*"], &[]),
            vec!["sales.regions"],
        ),
    ];
    let missing = start("missing", &["users", "no_such_table"], &[]);
    for ((running, dest_dir), want) in runs {
        assert_synced_exactly(&running.wait(), &dest_dir, &want);
    }

    // A pattern that matches nothing: a warning the CLI counts, and the sync goes on.
    let (run, dest_dir) = (missing.0.wait(), missing.1);
    run.assert_success();
    let summary = run.summary().expect("a sync summary");
    assert!(summary.completed_ok, "{}", run.output());
    assert!(
        summary.warnings >= 1,
        "warning not counted:\n{}",
        run.output()
    );
    assert_eq!(summary.errors, 0, "{}", run.output());
    assert_eq!(summary.resources, 2, "{}", run.output());
    let warnings: Vec<String> = run
        .log_lines_with("no_such_table")
        .into_iter()
        .filter(|l| l.contains(" WRN "))
        .collect();
    assert!(
        !warnings.is_empty(),
        "no warning naming the pattern:\n{}",
        run.output()
    );
    assert_eq!(dest::tables(&dest_dir), vec!["users".to_string()]);
    assert_migrates(&dest_dir, &["users"]);
}

// ------------------------------------------------------------------------------------------------
// `cloudquery tables`: the type contract

/// (column type, Arrow type as arrow-go prints it in `__tables.json`) from the README's type mapping; each
/// also gets an array column `a_<name>` of type `list<item: <arrow>, nullable>`, except the
/// serials (no arrays of them).
fn type_contract(major: u32) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut types = vec![
        ("bool", "boolean", "bool"),
        ("int2", "smallint", "int16"),
        ("int4", "integer", "int32"),
        ("int8", "bigint", "int64"),
        ("float4", "real", "float32"),
        ("float8", "double precision", "float64"),
        ("numeric", "numeric", "utf8"),
        ("numeric_ps", "numeric(10,2)", "utf8"),
        ("money", "money", "utf8"),
        ("oid", "oid", "uint32"),
        ("xid", "xid", "uint32"),
        ("cid", "cid", "uint32"),
        ("regclass", "regclass", "utf8"),
        ("regtype", "regtype", "utf8"),
        ("regproc", "regproc", "utf8"),
        ("text", "text", "utf8"),
        ("varchar", "varchar(10)", "utf8"),
        ("bpchar", "char(5)", "utf8"),
        ("name", "name", "utf8"),
        ("citext", "citext", "utf8"),
        ("char1", "\"char\"", "utf8"),
        ("bytea", "bytea", "binary"),
        ("uuid", "uuid", "uuid"),
        ("json", "json", "json"),
        ("jsonb", "jsonb", "json"),
        ("jsonpath", "jsonpath", "utf8"),
        ("xml", "xml", "utf8"),
        ("inet", "inet", "inet"),
        ("cidr", "cidr", "inet"),
        ("macaddr", "macaddr", "mac"),
        ("macaddr8", "macaddr8", "mac"),
        ("date", "date", "date32"),
        ("time0", "time(0)", "time32[s]"),
        ("time1", "time(1)", "time32[ms]"),
        ("time3", "time(3)", "time32[ms]"),
        ("time4", "time(4)", "time64[us]"),
        ("time", "time", "time64[us]"),
        ("timetz", "timetz", "utf8"),
        ("ts0", "timestamp(0)", "timestamp[s, tz=UTC]"),
        ("ts3", "timestamp(3)", "timestamp[ms, tz=UTC]"),
        ("ts5", "timestamp(5)", "timestamp[us, tz=UTC]"),
        ("ts", "timestamp", "timestamp[us, tz=UTC]"),
        ("tstz0", "timestamptz(0)", "timestamp[s, tz=UTC]"),
        ("tstz2", "timestamptz(2)", "timestamp[ms, tz=UTC]"),
        ("tstz", "timestamptz", "timestamp[us, tz=UTC]"),
        ("interval", "interval", "utf8"),
        ("bit", "bit(4)", "utf8"),
        ("varbit", "varbit", "utf8"),
        ("tsvector", "tsvector", "utf8"),
        ("tsquery", "tsquery", "utf8"),
        ("point", "point", "utf8"),
        ("line", "line", "utf8"),
        ("lseg", "lseg", "utf8"),
        ("box", "box", "utf8"),
        ("path", "path", "utf8"),
        ("polygon", "polygon", "utf8"),
        ("circle", "circle", "utf8"),
        ("int4range", "int4range", "utf8"),
        ("tstzrange", "tstzrange", "utf8"),
        ("mood", "mood", "utf8"),
        ("posint", "posint", "int32"),
        ("label", "label", "utf8"),
        ("stamp", "stamp3", "timestamp[ms, tz=UTC]"),
        ("pair", "pair", "utf8"),
        ("hstore", "hstore", "utf8"),
        ("pg_lsn", "pg_lsn", "utf8"),
    ];
    if major >= 13 {
        types.push(("xid8", "xid8", "uint64"));
    }
    if major >= 14 {
        types.push(("int4multirange", "int4multirange", "utf8"));
    }
    types
}

const SERIALS: [(&str, &str, &str); 3] = [
    ("smallserial", "smallserial", "int16"),
    ("serial", "serial", "int32"),
    ("bigserial", "bigserial", "int64"),
];

const TYPE_OBJECTS: &str = "
CREATE EXTENSION citext;
CREATE EXTENSION hstore;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN label AS text;
CREATE DOMAIN stamp3 AS timestamptz(3);
CREATE TYPE pair AS (a integer, b text);
";

#[test]
fn e2e_plugin_tables_lists_every_table_with_the_type_contract() {
    let pg = three_table_server();
    let types = type_contract(pg.version_major());
    let mut columns = Vec::new();
    let mut expected: Vec<(String, String)> = Vec::new();
    for (name, pg_type, arrow) in SERIALS {
        columns.push(format!("t_{name} {pg_type}"));
        expected.push((format!("t_{name}"), arrow.to_string()));
    }
    for (name, pg_type, arrow) in &types {
        columns.push(format!("t_{name} {pg_type}"));
        expected.push((format!("t_{name}"), arrow.to_string()));
    }
    for (name, pg_type, arrow) in &types {
        columns.push(format!("a_{name} {pg_type}[]"));
        expected.push((
            format!("a_{name}"),
            format!("list<item: {arrow}, nullable>"),
        ));
    }
    pg.psql(&format!(
        "{TYPE_OBJECTS}\nCREATE TABLE all_types (\n  {}\n);",
        columns.join(",\n  ")
    ));

    let tmp = tempfile::tempdir().unwrap();
    let cfg = Config::local(PLUGIN, tmp.path().join("dest"))
        .spec(json!({ "connection_string": superuser_url(&pg) }))
        .write(tmp.path());
    let docs = tmp.path().join("docs");
    let run = tables(&cfg, &docs).timeout(CLI_TIMEOUT).run();
    run.assert_success();
    let listed = read_tables_json(&docs, &run);
    let names: Vec<&str> = listed.iter().map(|t| t["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec!["all_types", "orders", "sales.regions", "users"],
        "{}",
        run.output()
    );

    let table = listed
        .iter()
        .find(|t| t["name"] == "all_types")
        .expect("all_types listed");
    let got: Vec<(String, String)> = table["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mismatches: Vec<String> = expected
        .iter()
        .zip(
            got.iter()
                .chain(std::iter::repeat(&(String::new(), String::new()))),
        )
        .filter(|(want, got)| want != got)
        .map(|(want, got)| format!("{}: want {}, got {} {}", want.0, want.1, got.0, got.1))
        .collect();
    assert!(
        mismatches.is_empty() && got.len() == expected.len(),
        "{} of {} columns differ ({} listed):\n{}",
        mismatches.len(),
        expected.len(),
        got.len(),
        mismatches.join("\n")
    );

    // The 3-table part of the listing: descriptions, primary keys, types.
    let by_name: BTreeMap<&str, &Value> = listed
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t))
        .collect();
    assert_eq!(by_name["users"]["description"], "Registered people");
    assert_eq!(by_name["orders"]["description"], "Order lines");
    let orders: Vec<(String, String, bool)> = by_name["orders"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["type"].as_str().unwrap().to_string(),
                c["is_primary_key"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let want = [
        ("order_no", "int64", true),
        ("line", "int16", true),
        ("user_id", "int32", false),
        ("amount", "utf8", false),
        ("note", "utf8", false),
    ]
    .map(|(n, t, pk)| (n.to_string(), t.to_string(), pk));
    assert_eq!(orders, want.to_vec());
}

fn read_tables_json(docs: &Path, run: &CliRun) -> Vec<Value> {
    let path = docs.join("postgresql/__tables.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), run.output()));
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(tables)) => tables,
        other => panic!("{}: not a JSON array: {other:?}", path.display()),
    }
}

#[test]
fn e2e_plugin_tables_with_an_unreachable_database_lists_none_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let closed = free_port();
    let cfg = Config::local(PLUGIN, tmp.path().join("dest"))
        .spec(json!({
            "connection_string": format!("postgres://postgres:{}@127.0.0.1:{closed}/postgres?sslmode=disable", roles::PASSWORD)
        }))
        .write(tmp.path());
    let docs = tmp.path().join("docs");
    let run = tables(&cfg, &docs).timeout(CLI_TIMEOUT).run();
    run.assert_success();
    assert_eq!(read_tables_json(&docs, &run), Vec::<Value>::new());
    let warnings: Vec<String> = run
        .log_lines_with("listing none")
        .into_iter()
        // A warning that says which address could not be reached.
        .filter(|l| l.contains(" WRN ") && l.contains(&format!("127.0.0.1:{closed}")))
        .collect();
    assert!(!warnings.is_empty(), "no warning:\n{}", run.output());
    assert!(
        !run.output().contains(roles::PASSWORD),
        "password leaked:\n{}",
        run.output()
    );
}

// ------------------------------------------------------------------------------------------------
// Spec validation: validate-config and sync

const CONN: &str = "postgres://user:Pa55-w0rd!secret@localhost:5432/db?sslmode=disable";

/// Each bad spec of the README's spec table (and `concurrency`), with the field the error must name.
fn bad_specs() -> Vec<(Value, &'static str)> {
    vec![
        (Value::Null, "connection_string"),
        (json!({}), "connection_string"),
        (json!({ "connection_string": "" }), "connection_string"),
        (
            json!({ "connection_string": CONN, "pgx_log_level": "loud" }),
            "pgx_log_level",
        ),
        (
            json!({ "connection_string": CONN, "pgx_log_level": "ERROR" }),
            "pgx_log_level",
        ),
        (
            json!({ "connection_string": CONN, "rows_per_record": 0 }),
            "rows_per_record",
        ),
        (
            json!({ "connection_string": CONN, "rows_per_record": -1 }),
            "rows_per_record",
        ),
        (
            json!({ "connection_string": CONN, "rows_per_record": 2.5 }),
            "rows_per_record",
        ),
        (
            json!({ "connection_string": CONN, "rows_per_record": "500" }),
            "rows_per_record",
        ),
        (
            json!({ "connection_string": CONN, "destination_table_name": "fixed" }),
            "destination_table_name",
        ),
        (
            json!({ "connection_string": CONN, "destination_table_name": "{{YEAR}}" }),
            "destination_table_name",
        ),
        (
            json!({ "connection_string": CONN, "destination_table_name": "{{TABLE}}_{{SECOND}}" }),
            "destination_table_name",
        ),
        (
            json!({ "connection_string": CONN, "cdc_id": "s1", "destination_table_name": "{{TABLE}}_{{MINUTE}}" }),
            "destination_table_name",
        ),
        (
            json!({ "connection_string": CONN, "cdc_id": "has space" }),
            "cdc_id",
        ),
        (
            json!({ "connection_string": CONN, "cdc_id": "x".repeat(61) }),
            "cdc_id",
        ),
        (
            json!({ "connection_string": CONN, "concurrency": 0 }),
            "concurrency",
        ),
        (
            json!({ "connection_string": CONN, "concurrency": "4" }),
            "concurrency",
        ),
        (
            json!({ "connection_string": CONN, "tables": ["users"] }),
            "tables",
        ),
        (
            json!({ "connection_string": CONN, "numeric_type": "decimals" }),
            "numeric_type",
        ),
        (
            json!({ "connection_string": CONN, "interval_type": 1 }),
            "interval_type",
        ),
        (
            json!({ "connection_string": CONN, "infinity": "Clamp" }),
            "infinity",
        ),
        (
            json!({ "connection_string": CONN, "out_of_range": "nullify" }),
            "out_of_range",
        ),
    ]
}

/// The part of the sync error that shows the rule (the field name alone could come from a
/// generic message).
fn sync_rule(spec: &Value, field: &str) -> &'static str {
    match field {
        "connection_string" => "connection_string: is required",
        "pgx_log_level" => "pgx_log_level: must be one of error, warn, info, debug, trace",
        "rows_per_record" => "rows_per_record: must be an integer >= 1",
        "concurrency" => "concurrency: must be an integer >= 1",
        "destination_table_name" if spec.get("cdc_id").is_some() => "not allowed in CDC mode",
        "destination_table_name" if spec["destination_table_name"] == "{{TABLE}}_{{SECOND}}" => {
            "{{SECOND}}"
        }
        "destination_table_name" => "destination_table_name: ",
        "cdc_id" => "cdc_id: must consist of",
        "tables" => "tables: unknown field",
        "numeric_type" => "numeric_type: must be one of string, decimal",
        "interval_type" => "interval_type: must be one of string, month_day_nano",
        "infinity" => "infinity: must be one of clamp, null, error",
        "out_of_range" => "out_of_range: must be one of clamp, null, error",
        _ => unreachable!("{field}"),
    }
}

#[test]
fn e2e_plugin_validate_config_and_sync_reject_each_bad_spec_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = bad_specs();
    // A few cases at a time: each CLI mostly waits for plugin start-up, but the machine is shared
    // and the CLI gives a plugin 5 s to start.
    let mut failures = Vec::new();
    for (chunk_no, chunk) in cases.chunks(3).enumerate() {
        let mut running = Vec::new();
        for (i, (spec, field)) in chunk.iter().enumerate() {
            let dir = tmp.path().join(format!("case{chunk_no}-{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let cfg = Config::local(PLUGIN, dir.join("dest"))
                .spec(spec.clone())
                .write(&dir);
            let validate = validate_config(&cfg).timeout(CLI_TIMEOUT).spawn();
            let synced = sync(&cfg).timeout(CLI_TIMEOUT).spawn();
            running.push((spec, *field, validate, synced, dir));
        }
        check_rejections(running, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

type Rejection<'a> = (
    &'a Value,
    &'static str,
    cli::RunningCli,
    cli::RunningCli,
    PathBuf,
);

fn check_rejections(running: Vec<Rejection<'_>>, failures: &mut Vec<String>) {
    for (spec, field, validate, synced, dir) in running {
        let validate = validate.wait();
        let synced = synced.wait();
        let v_out = validate.output();
        // The CLI's `Error:` line (stderr) carries the reason.
        if validate.code != Some(1)
            || !validate.stderr.contains("failed to validate source config")
            || !validate.stderr.contains(field)
        {
            failures.push(format!(
                "validate-config did not reject {spec} naming {field}:\n{v_out}"
            ));
        }
        let s_out = synced.output();
        let rule = sync_rule(spec, field);
        if synced.code != Some(1)
            || !synced
                .stderr
                .contains("failed to init plugin: invalid spec: ")
            || !synced.stderr.contains(rule)
        {
            failures.push(format!(
                "sync did not reject {spec} with {rule:?}:\n{s_out}"
            ));
        }
        for out in [&v_out, &s_out] {
            if out.contains("Pa55-w0rd") {
                failures.push(format!("password leaked for {spec}:\n{out}"));
            }
        }
        // Rejected before any table was read: the destination got no message.
        if !dest::log(&dir.join("dest"))
            .iter()
            .all(|e| e["type"] != "migrate_table")
        {
            failures.push(format!("{spec}: the destination got a migrate"));
        }
    }
}

#[test]
fn e2e_plugin_sync_rejects_an_unparsable_connection_string_masking_the_password() {
    // The JSON Schema cannot parse connection strings, so this one is caught at Init.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = Config::local(PLUGIN, tmp.path().join("dest"))
        .spec(json!({ "connection_string": "postgres://user:Pa55-w0rd!secret@localhost:99999/db" }))
        .write(tmp.path());
    let run = sync(&cfg).timeout(CLI_TIMEOUT).run();
    let out = run.output();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(out.contains("connection_string: "), "{out}");
    assert!(
        out.contains("invalid port number"),
        "the error should say the port is wrong:\n{out}"
    );
    assert!(!out.contains("Pa55-w0rd"), "password leaked:\n{out}");
}

#[test]
fn e2e_plugin_rows_per_record_defaults_to_500() {
    let pg = PgServer::start();
    pg.psql("CREATE TABLE numbers (n integer PRIMARY KEY); INSERT INTO numbers SELECT generate_series(1, 1201);");
    let tmp = tempfile::tempdir().unwrap();
    let dest_dir = tmp.path().join("dest");
    let cfg = Config::local(PLUGIN, &dest_dir)
        .spec(json!({ "connection_string": superuser_url(&pg) }))
        .dest_state(false)
        .write(tmp.path());
    let run = sync(&cfg).timeout(CLI_TIMEOUT).run();
    run.assert_success();
    // The plugin says so in a debug line of the CLI log …
    let lines = run.log_lines_with("spec accepted");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" DBG ") && l.contains("rows_per_record=500")),
        "no debug line with rows_per_record=500:\n{}",
        run.output()
    );
    // … and the destination got records of at most 500 rows: 500 + 500 + 201.
    let summary = dest::summary(&dest_dir);
    let mut batches: Vec<u64> = summary["tables"]["numbers"]["batch_rows"]
        .as_array()
        .expect("batch_rows")
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    batches.sort_unstable();
    assert_eq!(batches, vec![201, 500, 500], "{summary}");
}

// ------------------------------------------------------------------------------------------------
// test-connection and connection failures

#[test]
fn e2e_plugin_test_connection_success_and_failure_codes() {
    let pg = PgServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let closed = free_port();
    let cases = [
        (
            "ok",
            pg.url(roles::SCRAM_USER, roles::PASSWORD, "postgres"),
            None,
        ),
        (
            "auth",
            pg.url(roles::SCRAM_USER, "Wr0ng-Pa55-word", "postgres"),
            Some("AUTH_FAILED"),
        ),
        (
            "closed",
            format!(
                "postgres://postgres:{}@127.0.0.1:{closed}/postgres?sslmode=disable",
                roles::PASSWORD
            ),
            Some("UNREACHABLE"),
        ),
        (
            "nodb",
            pg.url(roles::SCRAM_USER, roles::PASSWORD, "no_such_db"),
            Some("UNKNOWN_DATABASE"),
        ),
    ];
    let running: Vec<_> = cases
        .iter()
        .map(|(name, url, code)| {
            let dir = tmp.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let cfg = Config::local(PLUGIN, dir.join("dest"))
                .spec(json!({ "connection_string": url }))
                .write(&dir);
            (
                name,
                code,
                test_connection(&cfg).timeout(CLI_TIMEOUT).spawn(),
            )
        })
        .collect();
    for (name, code, run) in running {
        let run = run.wait();
        let out = run.output();
        match code {
            None => {
                assert_eq!(run.code, Some(0), "{name}: {out}");
                assert!(run.stdout.contains("Success"), "{name}: {out}");
                assert!(!run.stdout.contains("Failure"), "{name}: {out}");
            }
            Some(code) => {
                assert_eq!(run.code, Some(1), "{name}: {out}");
                assert!(
                    out.contains(&format!("Failure: {code}")),
                    "{name}: expected {code}:\n{out}"
                );
                assert!(
                    out.contains("at least one test connection failed"),
                    "{name}: {out}"
                );
            }
        }
        assert!(!out.contains("Pa55-w"), "{name}: password leaked:\n{out}");
    }
}

#[test]
fn e2e_plugin_sync_with_a_wrong_password_fails_naming_the_user_without_the_password() {
    let pg = PgServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let wrong = "Wr0ng-Pa55-word";
    let cfg = Config::local(PLUGIN, tmp.path().join("dest"))
        .spec(json!({ "connection_string": pg.url(roles::SCRAM_USER, wrong, "postgres") }))
        .write(tmp.path());
    let run = sync(&cfg).timeout(CLI_TIMEOUT).run();
    let out = run.output();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(
        run.stderr.contains(&format!(
            "password authentication failed for user \"{}\"",
            roles::SCRAM_USER
        )),
        "stderr should say why:\n{out}"
    );
    assert!(!out.contains(wrong), "the given password leaked:\n{out}");
    assert!(!out.contains(roles::PASSWORD), "a password leaked:\n{out}");
    assert!(!out.contains("Pa55"), "part of a password leaked:\n{out}");
}

#[test]
fn e2e_plugin_sync_with_a_silent_host_times_out_after_connect_timeout() {
    // Accepted by the kernel (backlog), never read or answered.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().unwrap().port();
    let closed = free_port();
    let tmp = tempfile::tempdir().unwrap();
    let config_for = |name: &str, port: u16| {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        Config::local(PLUGIN, dir.join("dest"))
            .spec(json!({
                "connection_string": format!(
                    "postgres://postgres:{}@127.0.0.1:{port}/postgres?sslmode=disable&connect_timeout=2",
                    roles::PASSWORD
                )
            }))
            .write(&dir)
    };
    // The same sync against a closed port fails at once: its duration is the CLI's own overhead
    // (plugin start-up on a possibly busy machine), run side by side.
    // (`CliRun::elapsed` is taken when `wait` returns, so each run waits in its own thread.)
    let baseline = sync(&config_for("closed", closed)).timeout(CLI_TIMEOUT);
    let baseline = std::thread::spawn(move || baseline.run());
    let run = sync(&config_for("silent", port)).timeout(CLI_TIMEOUT).run();
    let baseline = baseline.join().expect("baseline run");
    let out = run.output();
    assert_eq!(run.code, Some(1), "{out}");
    assert_eq!(baseline.code, Some(1), "{}", baseline.output());
    assert!(
        run.elapsed >= Duration::from_secs(2),
        "failed before connect_timeout, so not by it ({:?}):\n{out}",
        run.elapsed
    );
    assert!(
        run.elapsed <= baseline.elapsed + Duration::from_secs(2 + 3),
        "took {:?}: more than connect_timeout + 3 s over an immediate failure ({:?}):\n{out}",
        run.elapsed,
        baseline.elapsed
    );
    let lower = run.stderr.to_lowercase();
    assert!(
        lower.contains("timed out") || lower.contains("timeout"),
        "stderr should say it timed out:\n{out}"
    );
    assert!(
        run.stderr.contains(&format!("127.0.0.1:{port}")),
        "stderr should name the address:\n{out}"
    );
    assert!(!out.contains(roles::PASSWORD), "password leaked:\n{out}");
    drop(silent);
}

// ------------------------------------------------------------------------------------------------
// SIGINT during a sync

/// `registry: local` through a `/bin/sh` wrapper that runs the plugin and records its exit
/// status: the plugin is the CLI's child's child, and the status is the plugin's own (130 if the
/// signal had killed it).
fn exit_recording_wrapper(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let status_file = dir.join("plugin-exit-status");
    let wrapper = dir.join("cq-source-postgresql-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n\"{PLUGIN}\" \"$@\"\necho $? > \"{}.tmp\"\nmv \"{0}.tmp\" \"{0}\"\n",
            status_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    (wrapper, status_file)
}

fn address_of(cmdline: &str) -> Option<PathBuf> {
    let mut words = cmdline.split(' ');
    while let Some(w) = words.next() {
        if w == "--address" {
            return words.next().map(PathBuf::from);
        }
        if let Some(a) = w.strip_prefix("--address=") {
            return Some(PathBuf::from(a));
        }
    }
    None
}

/// Holds `ACCESS EXCLUSIVE` on `table` in an open transaction (a psql session the test started),
/// so that any read of it waits. Killed on drop.
struct LockHolder(Child);

impl LockHolder {
    fn hold(pg: &PgServer, table: &str) -> LockHolder {
        let child = support::pg::psql_command()
            .args(["-X", "-q"])
            .args(pg.client_args())
            .args(["-d", "postgres"])
            .arg("-c")
            .arg(format!(
                "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120);"
            ))
            .env("PGPASSWORD", roles::PASSWORD)
            .stdout(Stdio::null())
            .spawn()
            .expect("start psql");
        let holder = LockHolder(child);
        let granted = format!(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
             WHERE c.relname = '{table}' AND l.mode = 'AccessExclusiveLock' AND l.granted"
        );
        assert!(
            wait_until(Duration::from_secs(10), || pg.psql(&granted) == "1"),
            "the lock on {table} was not taken"
        );
        holder
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn e2e_plugin_sigint_during_a_sync_exits_zero_within_5_s_and_removes_the_socket() {
    let pg = PgServer::start();
    pg.psql(
        "CREATE TABLE free (id integer PRIMARY KEY);
         INSERT INTO free SELECT generate_series(1, 1000);
         CREATE TABLE held (id integer PRIMARY KEY);
         INSERT INTO held SELECT generate_series(1, 1000);",
    );
    // Reading `held` waits for the lock: the Sync stream stays open (rows of `free` sent, `held`
    // pending) until the signal.
    let _lock = LockHolder::hold(&pg, "held");
    let tmp = tempfile::tempdir().unwrap();
    let (wrapper, status_file) = exit_recording_wrapper(tmp.path());
    let dest_dir = tmp.path().join("dest");
    let cfg = Config::local(&wrapper, &dest_dir)
        .spec(json!({ "connection_string": superuser_url(&pg) }))
        .dest_state(false)
        .write(tmp.path());
    let mut running = sync(&cfg).timeout(CLI_TIMEOUT).spawn();
    assert!(
        dest::wait_for_rows(&dest_dir, "free", 1000, Duration::from_secs(30)),
        "the sync did not start:\n{}\n{}",
        running.log(),
        running.stderr()
    );
    // The plugin is waiting on `held`.
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                   AND query ILIKE '%held%' AND pid <> pg_backend_pid()";
    assert!(
        wait_until(Duration::from_secs(10), || pg.psql(waiting) != "0"),
        "the plugin is not waiting to read held:\n{}",
        running.log()
    );
    assert!(running.is_running(), "{}", running.log());

    let shell = running
        .plugins()
        .into_iter()
        .find(|p| p.cmdline.contains(wrapper.to_str().unwrap()))
        .expect("the CLI started the source wrapper");
    let plugin = cli::child_processes(shell.pid)
        .into_iter()
        .find(|p| p.cmdline.starts_with(PLUGIN))
        .expect("the wrapper started the plugin");
    let socket = address_of(&plugin.cmdline).expect("--address on the plugin's command line");
    assert!(socket.exists(), "{} does not exist", socket.display());

    let signalled = Instant::now();
    assert!(cli::send_signal(plugin.pid, "INT"));
    assert!(
        wait_until(Duration::from_secs(5), || status_file.exists()),
        "the plugin did not exit within 5 s of SIGINT:\n{}",
        running.log()
    );
    let elapsed = signalled.elapsed();
    let status = std::fs::read_to_string(&status_file).unwrap();
    assert_eq!(
        status.trim(),
        "0",
        "plugin exit status after SIGINT (after {elapsed:?})"
    );
    assert!(!socket.exists(), "socket {} left behind", socket.display());
    assert_eq!(dest::received_rows(&dest_dir, "held"), 0);
    // The CLI notices the source is gone and ends (it does not hang).
    let run = running.wait();
    assert!(
        !run.timed_out,
        "the CLI hung after the source exited:\n{}",
        run.output()
    );
    // … and reports the cut stream as a failed sync.
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(
        run.stderr.contains("sync client receive"),
        "{}",
        run.output()
    );
}
