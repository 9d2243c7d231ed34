//! OpenTelemetry export, end to end: real PostgreSQL servers, the real CloudQuery CLI running
//! the plugin binary, and two real OTLP/HTTP receivers: the CLI's own (`sync
//! --tables-metrics-location`, the OpenTelemetry collector's OTLP receiver inside the CLI) and
//! `tests/otlp/receiver.py`, which decodes what it receives with the official OpenTelemetry
//! protobuf definitions. Row counts come from the test's own constants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::cli::{sync, Config};
use support::pg::{roles, PgServer};

const PLUGIN: &str = env!("CARGO_BIN_EXE_cq-source-postgresql");

/// The tables every test syncs, with their row counts.
const TABLES: [(&str, u64); 4] = [
    ("users", 1200),
    ("orders", 100),
    ("products", 37),
    ("empty", 0),
];

fn seed(pg: &PgServer) {
    for (table, rows) in TABLES {
        pg.psql(&format!(
            "CREATE TABLE {table} (id int PRIMARY KEY, v text);
             INSERT INTO {table} SELECT g, 'row ' || g FROM generate_series(1, {rows}) g;"
        ));
    }
}

fn config(pg: &PgServer, dir: &Path) -> Config {
    Config::local(PLUGIN, dir.join("dest"))
        .spec(json!({ "connection_string": pg.url(roles::SUPERUSER, roles::PASSWORD, "postgres") }))
        .tables(&["*"])
}

/// One row of the CLI's tables-metrics file.
#[derive(Debug)]
struct MetricsRow {
    duration: String,
    resources: u64,
    errors: u64,
}

/// The file is a go-pretty table; its columns vary with the CLI release
/// (`| TABLE | DURATION | RESOURCES | ERRORS | PANICS |` now, with `CLIENT ID`, `START TIME`
/// and `END TIME` in 6.21), so cells are found by their header.
fn parse_metrics_file(text: &str) -> BTreeMap<String, MetricsRow> {
    let cells =
        |line: &str| -> Vec<String> { line.split('|').map(|c| c.trim().to_string()).collect() };
    let mut rows = BTreeMap::new();
    let mut header: Vec<String> = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('|')) {
        let row = cells(line);
        if row.get(1).map(String::as_str) == Some("TABLE") {
            header = row;
            continue;
        }
        let cell = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .and_then(|i| row.get(i))
                .cloned()
        };
        let (Some(table), Some(duration), Some(resources), Some(errors)) = (
            cell("TABLE"),
            cell("DURATION"),
            cell("RESOURCES").and_then(|r| r.parse().ok()),
            cell("ERRORS").and_then(|r| r.parse().ok()),
        ) else {
            continue;
        };
        rows.insert(
            table,
            MetricsRow {
                duration,
                resources,
                errors,
            },
        );
    }
    rows
}

/// A Go `time.Duration` as printed (`0s`, `12ms`, `1.5s`, `2m3.4s`, `850.1µs`).
fn is_go_duration(s: &str) -> bool {
    let re = regex::Regex::new(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?(s|ms|µs|us|ns))?$").expect("regex");
    !s.is_empty() && re.is_match(s)
}

/// The CLI's receiver writes every table with its row count and duration.
#[test]
fn telemetry_tables_metrics_file_through_the_cli() {
    let pg = PgServer::start();
    seed(&pg);
    let tmp = tempfile::tempdir().expect("tempdir");
    let metrics = tmp.path().join("metrics.txt");
    let run = sync(&config(&pg, tmp.path()).write(tmp.path()))
        .arg("--tables-metrics-location")
        .arg(&metrics)
        .run();
    run.assert_success();
    let text = std::fs::read_to_string(&metrics).expect("metrics file");
    println!("{text}");
    let got = parse_metrics_file(&text);
    for (table, rows) in TABLES {
        let row = got
            .get(table)
            .unwrap_or_else(|| panic!("{table} missing from the metrics file:\n{text}"));
        assert_eq!(row.resources, rows, "{table} resources:\n{text}");
        assert_eq!(row.errors, 0, "{table} errors:\n{text}");
        assert!(
            is_go_duration(&row.duration),
            "{table} duration {:?}:\n{text}",
            row.duration
        );
    }
    assert_eq!(got.len(), TABLES.len(), "only the synced tables:\n{text}");
}

/// `tests/otlp/receiver.py`, killed on drop.
struct Receiver {
    child: Child,
    out: PathBuf,
    port: u16,
}

impl Receiver {
    fn start(dir: &Path) -> Receiver {
        let out = dir.join("otlp.jsonl");
        let port_file = dir.join("otlp.port");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otlp/receiver.py");
        let child = Command::new(support::cli::venv_python())
            .arg(script)
            .arg(&out)
            .arg(&port_file)
            .stdin(Stdio::null())
            .spawn()
            .expect("start the OTLP receiver");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|p| p.trim().parse().ok())
            {
                break port;
            }
            assert!(Instant::now() < deadline, "the OTLP receiver did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        Receiver { child, out, port }
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every export request received so far, of `signal`.
    fn requests(&self, signal: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["signal"] == signal)
            .map(|r| {
                assert!(r.get("error").is_none(), "undecodable request: {r}");
                r["request"].clone()
            })
            .collect()
    }

    fn spans(&self) -> Vec<Value> {
        let mut spans = Vec::new();
        for req in self.requests("traces") {
            for rs in req["resourceSpans"].as_array().into_iter().flatten() {
                for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                    assert_eq!(ss["scope"]["name"], "io.cloudquery", "{ss}");
                    spans.extend(ss["spans"].as_array().into_iter().flatten().cloned());
                }
            }
        }
        spans
    }

    /// Every metric data point: (metric name, unit, kind, point).
    fn points(&self) -> Vec<(String, String, String, Value)> {
        let mut out = Vec::new();
        for req in self.requests("metrics") {
            for rm in req["resourceMetrics"].as_array().into_iter().flatten() {
                for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
                    for m in sm["metrics"].as_array().into_iter().flatten() {
                        let name = m["name"].as_str().unwrap_or("").to_string();
                        let unit = m["unit"].as_str().unwrap_or("").to_string();
                        for kind in ["sum", "gauge", "histogram"] {
                            for p in m[kind]["dataPoints"].as_array().into_iter().flatten() {
                                out.push((name.clone(), unit.clone(), kind.to_string(), p.clone()));
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OTLP attribute list as a map of key to value (ints from their JSON strings).
fn attrs(list: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for a in list.as_array().into_iter().flatten() {
        let v = &a["value"];
        let value = if let Some(s) = v.get("stringValue") {
            s.clone()
        } else if let Some(i) = v.get("intValue") {
            json!(i.as_str().and_then(|s| s.parse::<i64>().ok()))
        } else {
            v.clone()
        };
        out.insert(a["key"].as_str().unwrap_or("").to_string(), value);
    }
    out
}

fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// One `sync` span and one `sync.table.<name>` span per table under
/// it, with its row count, and the per-table counters, at a collector given by the spec's
/// `otel_endpoint`.
#[test]
fn telemetry_spans_per_table_at_an_otlp_receiver() {
    let pg = PgServer::start();
    seed(&pg);
    let tmp = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(tmp.path());
    let cfg = config(&pg, tmp.path())
        .source_key("otel_endpoint", json!(receiver.endpoint()))
        .source_key("otel_endpoint_insecure", json!(true));
    let run = sync(&cfg.write(tmp.path())).run();
    run.assert_success();
    // The plugin flushes at the end of the Sync call, before the CLI sees the stream end.
    let spans = receiver.spans();
    let sync_spans: Vec<&Value> = spans.iter().filter(|s| s["name"] == "sync").collect();
    assert_eq!(sync_spans.len(), 1, "one sync span: {spans:#?}");
    let sync_span = sync_spans[0];
    assert!(attrs(&sync_span["attributes"]).contains_key("sync.invocation.id"));
    for (table, rows) in TABLES {
        let name = format!("sync.table.{table}");
        let mine: Vec<&Value> = spans.iter().filter(|s| s["name"] == name).collect();
        assert_eq!(mine.len(), 1, "one span for {table}: {spans:#?}");
        let span = mine[0];
        assert_eq!(span["traceId"], sync_span["traceId"], "{table}: same trace");
        assert_eq!(
            span["parentSpanId"], sync_span["spanId"],
            "{table}: under sync"
        );
        let a = attrs(&span["attributes"]);
        assert_eq!(a.get("sync.client.id"), Some(&json!("")), "{span}");
        assert_eq!(
            a.get("sync.invocation.id"),
            attrs(&sync_span["attributes"]).get("sync.invocation.id")
        );
        let stats: Vec<&Value> = span["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["name"] == "sync.finish.stats")
            .collect();
        assert_eq!(stats.len(), 1, "{span}");
        let stats = attrs(&stats[0]["attributes"]);
        assert_eq!(stats.get("sync.resources"), Some(&json!(rows)), "{table}");
        assert_eq!(stats.get("sync.errors"), Some(&json!(0)), "{table}");
        assert_eq!(stats.get("sync.panics"), Some(&json!(0)), "{table}");
    }
    assert_eq!(spans.len(), 1 + TABLES.len(), "{spans:#?}");
    // The counters, cumulative: the last point of each table is its total.
    let points = receiver.points();
    for (table, rows) in TABLES {
        let last = |metric: &str| {
            points
                .iter()
                .rfind(|(n, _, kind, p)| {
                    n == metric
                        && kind == "sum"
                        && attrs(&p["attributes"]).get("sync.table.name") == Some(&json!(table))
                })
                .cloned()
        };
        let (_, unit, _, p) = last("sync.table.resources")
            .unwrap_or_else(|| panic!("no sync.table.resources for {table}: {points:#?}"));
        assert_eq!(unit, "/{tot}");
        assert_eq!(as_u64(&p["asInt"]), Some(rows), "{table}: {p}");
        assert_eq!(
            attrs(&p["attributes"]).get("sync.client.id"),
            Some(&json!(""))
        );
        let (_, unit, _, _) = last("sync.table.duration")
            .unwrap_or_else(|| panic!("no sync.table.duration for {table}: {points:#?}"));
        assert_eq!(unit, "ms");
    }
    // The log lines also went out as log records, the fields as attributes.
    let mut finished = Vec::new();
    for req in receiver.requests("logs") {
        for rl in req["resourceLogs"].as_array().into_iter().flatten() {
            for sl in rl["scopeLogs"].as_array().into_iter().flatten() {
                assert_eq!(sl["scope"]["name"], "cloudquery", "{sl}");
                for r in sl["logRecords"].as_array().into_iter().flatten() {
                    if r["body"]["stringValue"] == "table sync finished" {
                        assert_eq!(r["severityText"], "info", "{r}");
                        let a = attrs(&r["attributes"]);
                        assert_eq!(a.get("module"), Some(&json!("postgresql-source")), "{r}");
                        finished.push((a.get("table").cloned(), a.get("rows").cloned()));
                    }
                }
            }
        }
    }
    finished.sort_by_key(|(t, _)| t.as_ref().map(Value::to_string));
    let mut expected: Vec<_> = TABLES
        .iter()
        .map(|&(t, rows)| (Some(json!(t)), Some(json!(rows))))
        .collect();
    expected.sort_by_key(|(t, _)| t.as_ref().map(Value::to_string));
    assert_eq!(
        finished, expected,
        "one 'table sync finished' record per table"
    );
    // The resource names the plugin as the Go SDK does.
    let req = &receiver.requests("traces")[0];
    let resource = attrs(&req["resourceSpans"][0]["resource"]["attributes"]);
    assert_eq!(
        resource.get("service.name"),
        Some(&json!("cloudquery-postgresql"))
    );
    assert_eq!(
        resource.get("cloudquery.plugin.path"),
        Some(&json!("cloudquery/source/postgresql"))
    );
}

/// While a CDC stream runs, the change rate, the WAL lag and the
/// commit-to-emit latency reach the collector.
#[test]
fn telemetry_cdc_metrics_during_a_stream() {
    const TXNS: u64 = 40;
    let pg = PgServer::start();
    pg.psql("CREATE TABLE t (id int PRIMARY KEY, v text);");
    let tmp = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(tmp.path());
    let endpoint = receiver.endpoint();
    let cdc = support::cdc::CdcRun::with(&pg, tmp.path(), "otel", &["t"], |c| {
        c.source_key("otel_endpoint", json!(endpoint))
            .source_key("otel_endpoint_insecure", json!(true))
    });
    let mut run = sync(&cdc.config)
        .env("OTEL_METRIC_EXPORT_INTERVAL", "300")
        .timeout(Duration::from_secs(300))
        .spawn();
    assert!(
        support::cdc::wait_streaming(&mut run, Duration::from_secs(90)),
        "not streaming:\n{}",
        run.log()
    );
    for i in 1..=TXNS {
        pg.psql(&format!("INSERT INTO t VALUES ({i}, 'v{i}')"));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let (rate, lag, latency) = loop {
        let points = receiver.points();
        let find = |name: &str, kind: &str| {
            points
                .iter()
                .filter(|(n, _, k, _)| n == name && k == kind)
                .map(|(_, u, _, p)| (u.clone(), p.clone()))
                .collect::<Vec<_>>()
        };
        let rate = find("sync.cdc.change_rate", "gauge");
        let lag = find("sync.cdc.wal_lag", "gauge");
        let latency = find("sync.cdc.commit_to_emit", "histogram");
        let seen_all = latency
            .last()
            .and_then(|(_, p)| as_u64(&p["count"]))
            .is_some_and(|c| c >= TXNS);
        let some_rate = rate
            .iter()
            .any(|(_, p)| p["asDouble"].as_f64().is_some_and(|r| r > 0.0));
        // The backfill's table span goes out with the batch span processor's next export.
        let table_span = receiver.spans().iter().any(|s| s["name"] == "sync.table.t");
        if seen_all && some_rate && !lag.is_empty() && table_span {
            break (rate, lag, latency);
        }
        assert!(
            Instant::now() < deadline,
            "CDC telemetry incomplete: rate {rate:?}, lag {lag:?}, latency {latency:?}, \
             table span {table_span}\n{}",
            run.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    support::cdc::interrupt(run);
    println!("rate {rate:?}\nlag {lag:?}\nlatency {:?}", latency.last());
    assert_eq!(rate[0].0, "{change}/s");
    assert_eq!(lag[0].0, "By");
    assert!(
        lag.iter().all(|(_, p)| as_u64(&p["asInt"]).is_some()),
        "{lag:?}"
    );
    let (unit, last) = &latency[latency.len() - 1];
    assert_eq!(unit, "ms");
    // Cumulative: the count covers every committed transaction (servers before 15 also send
    // empty ones, for transactions that touched no published table).
    let count = as_u64(&last["count"]).unwrap_or(0);
    assert!(count >= TXNS, "{last}");
    // Milliseconds from commit to hand-off: above zero, and far below the test's own run time.
    let mean = last["sum"].as_f64().unwrap_or(0.0) / count as f64;
    assert!(
        mean > 0.0 && mean < 30_000.0,
        "mean latency {mean} ms: {last}"
    );
}

/// A collector that cannot be reached as configured (https to a plain-http receiver) costs the
/// sync nothing: every row arrives, and the failed exports are the Go SDK's `otel error`
/// warnings.
#[test]
fn telemetry_failed_exports_are_warnings_not_failures() {
    let pg = PgServer::start();
    seed(&pg);
    let tmp = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(tmp.path());
    let cfg = config(&pg, tmp.path()).source_key("otel_endpoint", json!(receiver.endpoint()));
    let run = sync(&cfg.write(tmp.path())).run();
    run.assert_success();
    let summary = run.summary().expect("summary");
    assert_eq!(
        summary.resources,
        TABLES.iter().map(|(_, n)| n).sum::<u64>()
    );
    assert!(
        !run.log_lines_with("otel error").is_empty(),
        "no 'otel error' warning:\n{}",
        run.log
    );
    assert!(
        receiver.requests("traces").is_empty(),
        "nothing decodable arrived"
    );
}
