//! The plugin binary under the real CloudQuery CLI, for what needs no database: spec validation
//! (`validate-config` goes through GetSpecSchema, `sync` through GetVersions + Init,
//! `test-connection` through TestConnection, all over the unix socket, so these also prove the
//! `:authority` normaliser end to end), `registry: grpc` over TCP, and signal handling.
//!
//! The CLI is `CQPG_CLOUDQUERY`, else `$CQ_CACHE_DIR/bin/cloudquery`, else the project venv's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::cli::{self, sync, test_connection, validate_config, CliRun, Config, PLUGIN};
use support::{free_port, wait_until};

const CONN: &str = "postgres://user:Pa55-w0rd!secret@localhost:5432/db?sslmode=disable";

fn write_config(dir: &Path, spec: Value) -> PathBuf {
    Config::local(PLUGIN, dir.join("dest"))
        .spec(spec)
        .write(dir)
}

fn validate(spec: Value) -> CliRun {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), spec);
    validate_config(&cfg).timeout(Duration::from_secs(60)).run()
}

#[test]
fn validate_config_accepts_good_specs() {
    for spec in [
        json!({ "connection_string": CONN }),
        json!({
            "connection_string": CONN,
            "pgx_log_level": "debug",
            "rows_per_record": 1000,
            "destination_table_name": "pg_{{TABLE}}_{{YEAR}}{{MONTH}}",
            "concurrency": 2,
        }),
        json!({
            "connection_string": CONN,
            "cdc_id": "My-Sync_1",
            "destination_table_name": "cdc_{{TABLE}}",
        }),
        json!({
            "connection_string": CONN,
            "numeric_type": "decimal",
            "interval_type": "month_day_nano",
            "infinity": "null",
            "out_of_range": "error",
        }),
    ] {
        let run = validate(spec.clone());
        assert_eq!(run.code, Some(0), "{spec}\n{}", run.output());
    }
}

#[test]
fn validate_config_rejects_each_bad_spec_naming_the_field() {
    let cases = [
        (Value::Null, "connection_string"),
        (json!({ "connection_string": "" }), "connection_string"),
        (json!({ "connection_string": "  " }), "connection_string"),
        (
            json!({ "connection_string": CONN, "pgx_log_level": "loud" }),
            "pgx_log_level",
        ),
        (
            json!({ "connection_string": CONN, "rows_per_record": 0 }),
            "rows_per_record",
        ),
        (
            json!({ "connection_string": CONN, "rows_per_record": -5 }),
            "rows_per_record",
        ),
        (
            json!({ "connection_string": CONN, "rows_per_record": 1.5 }),
            "rows_per_record",
        ),
        (
            json!({ "connection_string": CONN, "rows_per_record": "500" }),
            "rows_per_record",
        ),
        (
            json!({ "connection_string": CONN, "destination_table_name": "static" }),
            "destination_table_name",
        ),
        (
            json!({ "connection_string": CONN, "destination_table_name": "{{FOO}}_{{TABLE}}" }),
            "destination_table_name",
        ),
        (
            json!({ "connection_string": CONN, "cdc_id": "x", "destination_table_name": "{{TABLE}}_{{DAY}}" }),
            "destination_table_name",
        ),
        (
            json!({ "connection_string": CONN, "cdc_id": "not ok!" }),
            "cdc_id",
        ),
        (
            json!({ "connection_string": CONN, "concurrency": 0 }),
            "concurrency",
        ),
        (
            json!({ "connection_string": CONN, "bogus_key": 1 }),
            "bogus_key",
        ),
    ];
    for (spec, field) in cases {
        let run = validate(spec.clone());
        let out = run.output();
        assert_eq!(run.code, Some(1), "{spec} should be rejected\n{out}");
        assert!(
            out.contains("failed to validate source config") && out.contains(field),
            "{spec}: the error should name {field}\n{out}"
        );
        assert!(!out.contains("Pa55-w0rd"), "password leaked:\n{out}");
    }
}

#[test]
fn sync_rejects_a_bad_spec_at_init() {
    // GetVersions then Init on the same connection: the second request's `:authority` is an
    // HPACK dynamic-table reference, so this also covers the normaliser's connection state.
    let cases = [
        (
            json!({ "rows_per_record": 0 }),
            "connection_string: is required",
        ),
        (
            json!({ "connection_string": CONN, "rows_per_record": 0 }),
            "rows_per_record: must be an integer >= 1",
        ),
        (
            json!({ "connection_string": CONN, "pgx_log_level": "loud" }),
            "pgx_log_level: must be one of error, warn, info, debug, trace",
        ),
        (
            json!({ "connection_string": CONN, "destination_table_name": "{{FOO}}{{TABLE}}" }),
            "unknown placeholder {{FOO}}",
        ),
        (
            json!({ "connection_string": CONN, "cdc_id": "a", "destination_table_name": "{{TABLE}}{{HOUR}}" }),
            "not allowed in CDC mode",
        ),
        (
            json!({ "connection_string": CONN, "extra": true }),
            "extra: unknown field",
        ),
    ];
    for (spec, message) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = write_config(tmp.path(), spec.clone());
        let run = sync(&cfg).timeout(Duration::from_secs(60)).run();
        let out = run.output();
        assert_eq!(run.code, Some(1), "{spec}\n{out}");
        assert!(
            out.contains("failed to init plugin: invalid spec:") && out.contains(message),
            "{spec}: expected {message:?}\n{out}"
        );
        assert!(!out.contains("Pa55-w0rd"), "password leaked:\n{out}");
    }
}

#[test]
fn test_connection_reports_an_invalid_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(
        tmp.path(),
        json!({ "connection_string": CONN, "rows_per_record": 0 }),
    );
    let run = test_connection(&cfg).timeout(Duration::from_secs(60)).run();
    let out = run.output();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(out.contains("INVALID_SPEC"), "{out}");
    assert!(out.contains("rows_per_record"), "{out}");
}

/// A plugin process started by the test (stopped on drop).
struct Plugin {
    child: Child,
}

impl Plugin {
    fn start(args: &[&str]) -> Plugin {
        let child = Command::new(PLUGIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the plugin");
        Plugin { child }
    }

    fn signal(&self, sig: &str) {
        assert!(cli::send_signal(self.child.id(), sig));
    }

    /// Exit status within `timeout`, if it exited.
    fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sigint_and_sigterm_exit_zero_and_remove_the_socket() {
    for sig in ["INT", "TERM"] {
        let tmp = tempfile::tempdir().unwrap();
        let sock = tmp.path().join("cq-TestSocketAbcdefg.sock");
        // A stale socket from an earlier run is replaced.
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        let sock_str = sock.to_str().unwrap();
        let mut plugin = Plugin::start(&[
            "serve",
            "--log-level",
            "info",
            "--log-format",
            "json",
            "--network",
            "unix",
            "--address",
            sock_str,
            "--no-sentry",
        ]);
        assert!(
            wait_until(Duration::from_secs(5), || {
                std::os::unix::net::UnixStream::connect(&sock).is_ok()
            }),
            "the plugin did not listen on {sock_str} within 5 s"
        );
        let started = Instant::now();
        plugin.signal(sig);
        let status = plugin
            .wait(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("SIG{sig}: no exit within 5 s"));
        assert_eq!(status.code(), Some(0), "SIG{sig}: {status:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!sock.exists(), "SIG{sig}: socket file left behind");
    }
}

#[test]
fn sigint_with_an_open_connection_still_exits_in_time() {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("cq-busy.sock");
    let mut plugin = Plugin::start(&[
        "serve",
        "--network",
        "unix",
        "--address",
        sock.to_str().unwrap(),
    ]);
    assert!(wait_until(Duration::from_secs(5), || sock.exists()));
    // A client that connected, sent the preface and went quiet: graceful shutdown would wait
    // for it; the deadline cuts it.
    use std::io::Write;
    let mut idle = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    idle.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    plugin.signal("INT");
    let status = plugin
        .wait(Duration::from_secs(5))
        .expect("exit within 5 s");
    assert_eq!(status.code(), Some(0));
    assert!(!sock.exists());
}

#[test]
fn registry_grpc_over_tcp() {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let mut plugin = Plugin::start(&["serve", "--network", "tcp", "--address", &address]);
    assert!(wait_until(Duration::from_secs(5), || {
        std::net::TcpStream::connect(&address).is_ok()
    }));
    let tmp = tempfile::tempdir().unwrap();
    let ok = Config::grpc(&address, tmp.path().join("dest"))
        .spec(json!({ "connection_string": CONN }))
        .write(tmp.path());
    let run = validate_config(&ok).timeout(Duration::from_secs(60)).run();
    assert_eq!(run.code, Some(0), "{}", run.output());
    let bad = Config::grpc(&address, tmp.path().join("dest"))
        .spec(json!({ "connection_string": CONN, "concurrency": 0 }))
        .write_as(tmp.path().join("bad.yml"));
    let run = sync(&bad).timeout(Duration::from_secs(60)).run();
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(run
        .output()
        .contains("concurrency: must be an integer >= 1"));
    plugin.signal("INT");
    assert_eq!(
        plugin.wait(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0)
    );
}

#[test]
fn version_and_help_are_readable() {
    let out = Command::new(PLUGIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("cq-source-postgresql v"));
    let out = Command::new(PLUGIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("serve") && text.contains("registry: local"),
        "{text}"
    );
    let out = Command::new(PLUGIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--log-format"));
    let out = Command::new(PLUGIN).arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
