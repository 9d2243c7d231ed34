//! Reading back what the test destination (`tests/destination/`) recorded.
//!
//! Values are canonical JSON (documented in `tests/destination/cqdest_values.py`): uuid as
//! 8-4-4-4-12 text, json as its text, bytea as `\x…` hex, dates `YYYY-MM-DD`, timestamps
//! `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, NaN/±Inf as strings, lists as arrays; values a calendar cannot
//! show as `"<type>:<raw>"` (e.g. `"date32:2147483647"`). `rows`/`state` leave out the `_cq_*`
//! columns; the `_with_cq` variants keep them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cli::venv_python;

/// Directory of the destination's Python sources.
pub const DEST_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/destination");

pub fn inspect_script() -> PathBuf {
    Path::new(DEST_DIR).join("inspect.py")
}

/// Runs `inspect.py <args>` with the virtualenv's Python and parses its JSON output.
pub fn inspect(args: &[&str]) -> Value {
    let out = Command::new(venv_python())
        .arg(inspect_script())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running inspect.py {args:?}: {e}"));
    assert!(
        out.status.success(),
        "inspect.py {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "inspect.py {args:?}: bad JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn s(dir: &Path) -> String {
    dir.to_string_lossy().into_owned()
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        other => panic!("expected a JSON array, got {other}"),
    }
}

/// `{"tables": {T: {"inserts", "rows", "batch_rows", "migrates", "deletes", "delete_stale"}},
/// "order": [message types], "messages": n, "lifecycle": [events]}`.
pub fn summary(dir: &Path) -> Value {
    inspect(&["summary", &s(dir)])
}

/// Every row received for `table`, in arrival order, without `_cq_*` columns.
pub fn rows(dir: &Path, table: &str) -> Vec<Value> {
    array(inspect(&["rows", &s(dir), table]))
}

/// As `rows`, with `_cq_sync_time` / `_cq_source_name` (and any other `_cq_*` column).
pub fn rows_with_cq(dir: &Path, table: &str) -> Vec<Value> {
    array(inspect(&["rows", &s(dir), table, "--with-cq"]))
}

/// The applied state of `table` (upserts by primary key, deletes applied), sorted by primary key,
/// without `_cq_*` columns.
pub fn state(dir: &Path, table: &str) -> Vec<Value> {
    array(inspect(&["state", &s(dir), table]))
}

pub fn state_with_cq(dir: &Path, table: &str) -> Vec<Value> {
    array(inspect(&["state", &s(dir), table, "--with-cq"]))
}

/// The last `migrate_table` entry of `table` (`fields`: name, type, extension, nullable,
/// metadata; `metadata`: schema metadata; `migrate_force`), None when none arrived.
pub fn schema(dir: &Path, table: &str) -> Option<Value> {
    match inspect(&["schema", &s(dir), table]) {
        Value::Null => None,
        v => Some(v),
    }
}

/// The fields of the last migrate of `table` as (name, arrow type) pairs.
pub fn field_types(dir: &Path, table: &str) -> Vec<(String, String)> {
    let schema = schema(dir, table).unwrap_or_else(|| panic!("no migrate_table for {table}"));
    schema["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Names of the tables that got any message, sorted.
pub fn tables(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = summary(dir)["tables"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// `log.jsonl` read directly (no Python): every complete line, a torn last line skipped.
pub fn log(dir: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(dir.join("log.jsonl")) else {
        return Vec::new();
    };
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Rows received so far for `table`, counted from `log.jsonl` (cheap; for polling).
pub fn received_rows(dir: &Path, table: &str) -> u64 {
    log(dir)
        .iter()
        .filter(|e| e["type"] == "insert" && e["table"] == table)
        .map(|e| e["rows"].as_u64().unwrap_or(0))
        .sum()
}

/// Polls until at least `n` rows of `table` arrived; false on timeout.
pub fn wait_for_rows(dir: &Path, table: &str, n: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if received_rows(dir, table) >= n {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `tests/destination/selftest.py` (canonical JSON and state application); returns its exit
/// success and combined output.
pub fn run_selftest() -> (bool, String) {
    let out = Command::new(venv_python())
        .arg(Path::new(DEST_DIR).join("selftest.py"))
        .output()
        .expect("running selftest.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
