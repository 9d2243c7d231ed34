//! Benchmark harness for CloudQuery source plugins (any plugin that speaks protocol v3).
//!
//! ```text
//! sync_bench sync   --plugin BIN --spec JSON [--tables a,b] [--skip-tables x] [--timeout SECS] [--logs DIR]
//! sync_bench tables --plugin BIN --spec JSON [--tables a,b] [--timeout SECS]
//! sync_bench cdc    --plugin BIN --spec JSON [--changes N] [--txn-changes N] [--latency-seconds S] [--rate TPS] [--timeout SECS] [--logs DIR]
//! sync_bench exec   [--timeout SECS] -- COMMAND [ARGS…]
//! sync_bench limits
//! ```
//! `sync`: launch the plugin as the CLI does, Init, Sync, count rows/bytes from the Arrow IPC
//! headers and discard them. `tables`: Init + GetTables only. `cdc`: CDC throughput (a backlog
//! drained on restart), commit → receive latency and the server's decoding ceiling, on a fresh
//! copy of the `cdc` dataset (see `harness/cdc.rs`). `exec`: run any command and measure it the
//! same way (wall, user+sys CPU and peak RSS of the child from `wait4`), for the peers.
//! `limits`: this plugin's Sync channel capacity and default concurrency, from its code, for
//! the report's memory bound (records in flight).
//! Each prints one JSON object on stdout; errors go to stderr with exit code 1.
//! `scripts/bench.sh` drives it; see `docs/benchmarks.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod harness;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use harness::cdc::CdcOptions;
use harness::client::{run, RunOptions};
use harness::process::Measured;
use serde_json::json;

const USAGE: &str = "usage:
  sync_bench sync   --plugin BIN --spec JSON [--tables a,b] [--skip-tables x,y] [--get-tables] [--adaptive-window] [--timeout SECS] [--logs DIR]
  sync_bench tables --plugin BIN --spec JSON [--tables a,b] [--timeout SECS]
  sync_bench cdc    --plugin BIN --spec JSON [--changes N] [--txn-changes N] [--latency-seconds S] [--rate TPS] [--idle-timeout SECS] [--timeout SECS] [--logs DIR]
  sync_bench exec   [--timeout SECS] -- COMMAND [ARGS...]
  sync_bench limits";

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Walks `--flag [value]` arguments: `handle` gets each flag and a function that takes its value,
/// and returns whether it knew the flag. `--bench` (which `cargo bench` passes to
/// `harness = false` targets) is skipped; an unknown flag is an error.
fn for_each_flag(
    args: &[String],
    mut handle: impl FnMut(&str, &mut dyn FnMut() -> Result<String, String>) -> Result<bool, String>,
) -> Result<(), String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--bench" {
            continue;
        }
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        if !handle(a, &mut value)? {
            return Err(format!("unknown argument {a}\n{USAGE}"));
        }
    }
    Ok(())
}

fn parse_plugin_args(args: &[String], sync: bool) -> Result<RunOptions, String> {
    let mut opts = RunOptions {
        plugin: PathBuf::new(),
        spec: String::new(),
        tables: vec!["*".into()],
        skip_tables: Vec::new(),
        sync,
        get_tables: false,
        timeout: Duration::from_secs(1800),
        keep_logs: None,
        adaptive_window: false,
    };
    for_each_flag(args, |flag, value| {
        match flag {
            "--plugin" => opts.plugin = value()?.into(),
            "--spec" => opts.spec = value()?,
            "--spec-file" => {
                let p = value()?;
                opts.spec = std::fs::read_to_string(&p).map_err(|e| format!("{p}: {e}"))?;
            }
            "--tables" => opts.tables = list(&value()?),
            "--skip-tables" => opts.skip_tables = list(&value()?),
            "--get-tables" => opts.get_tables = true,
            "--timeout" => opts.timeout = Duration::from_secs_f64(secs(&value()?)?),
            "--logs" => opts.keep_logs = Some(value()?.into()),
            "--adaptive-window" => opts.adaptive_window = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if opts.plugin.as_os_str().is_empty() {
        return Err(format!("--plugin is required\n{USAGE}"));
    }
    if opts.spec.is_empty() {
        return Err(format!(
            "--spec is required (the plugin's spec as JSON)\n{USAGE}"
        ));
    }
    serde_json::from_str::<serde_json::Value>(&opts.spec)
        .map_err(|e| format!("--spec is not JSON: {e}"))?;
    Ok(opts)
}

fn parse_cdc_args(args: &[String]) -> Result<CdcOptions, String> {
    let mut opts = CdcOptions {
        plugin: PathBuf::new(),
        spec: String::new(),
        changes: 1_000_000,
        txn_changes: 1000,
        latency_seconds: 15.0,
        rate: 1000.0,
        idle_timeout: Duration::from_secs(60),
        timeout: Duration::from_secs(1800),
        keep_logs: None,
    };
    let count = |v: String| {
        v.parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("not a positive integer: {v}"))
    };
    for_each_flag(args, |flag, value| {
        match flag {
            "--plugin" => opts.plugin = value()?.into(),
            "--spec" => opts.spec = value()?,
            "--changes" => opts.changes = count(value()?)?,
            "--txn-changes" => opts.txn_changes = count(value()?)?,
            "--latency-seconds" => opts.latency_seconds = secs(&value()?)?,
            "--rate" => opts.rate = secs(&value()?)?,
            "--idle-timeout" => opts.idle_timeout = Duration::from_secs_f64(secs(&value()?)?),
            "--timeout" => opts.timeout = Duration::from_secs_f64(secs(&value()?)?),
            "--logs" => opts.keep_logs = Some(value()?.into()),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if opts.plugin.as_os_str().is_empty() || opts.spec.is_empty() {
        return Err(format!("--plugin and --spec are required\n{USAGE}"));
    }
    Ok(opts)
}

fn secs(v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .ok_or_else(|| format!("not a positive number of seconds: {v}"))
}

fn exec(args: &[String]) -> Result<serde_json::Value, String> {
    let mut timeout = Duration::from_secs(1800);
    let mut i = 0;
    while i < args.len() && args[i] != "--" {
        match args[i].as_str() {
            "--timeout" => {
                let v = args.get(i + 1).ok_or("--timeout needs a value")?;
                timeout = Duration::from_secs_f64(secs(v)?);
                i += 1;
            }
            "--bench" => {}
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
        i += 1;
    }
    let cmd = args.get(i + 1..).filter(|c| !c.is_empty()).ok_or(USAGE)?;
    let t = Instant::now();
    // The child's stdout would mix into the JSON line: it goes to /dev/null (stderr is kept).
    let mut child = Measured::spawn(
        Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdout(std::process::Stdio::null()),
    )
    .map_err(|e| format!("starting {}: {e}", cmd[0]))?;
    let exit = match child
        .wait_for(timeout)
        .map_err(|e| format!("waiting for {}: {e}", cmd[0]))?
    {
        Some(e) => e,
        None => {
            let _ = child.stop(Duration::from_secs(5));
            return Err(format!("{} timed out after {timeout:?}", cmd[0]));
        }
    };
    let wall = t.elapsed().as_secs_f64();
    if exit.code != 0 {
        return Err(format!("{} exited with code {}", cmd[0], exit.code));
    }
    Ok(json!({
        "wall_s": wall,
        "user_s": exit.user_s,
        "sys_s": exit.sys_s,
        "cpu_s": exit.user_s + exit.sys_s,
        "max_rss_kib": exit.max_rss_kib,
    }))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.iter().position(|a| a != "--bench") else {
        eprintln!("{USAGE}");
        // `cargo bench` without arguments: nothing to measure, not a failure.
        return ExitCode::SUCCESS;
    };
    let rest = &args[cmd + 1..];
    let result = match args[cmd].as_str() {
        "sync" | "tables" => parse_plugin_args(rest, args[cmd] == "sync").and_then(|opts| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("tokio runtime: {e}"))?;
            rt.block_on(run(&opts)).map(|r| r.to_json())
        }),
        "cdc" => parse_cdc_args(rest).and_then(|opts| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("tokio runtime: {e}"))?;
            rt.block_on(harness::cdc::run(&opts))
        }),
        "exec" => exec(rest),
        "selftest" => harness::ipc::selftest().map(|()| json!({"selftest": "ok"})),
        "limits" => Ok(json!({
            "sync_channel_capacity": cq_source_postgresql::output::SYNC_CHANNEL_CAPACITY,
            "default_concurrency": cq_source_postgresql::source::spec::DEFAULT_CONCURRENCY,
        })),
        "-h" | "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => Err(format!("unknown command {other}\n{USAGE}")),
    };
    match result {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sync_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
