//! Helpers shared by the CDC end-to-end tests (`tests/e2e_cdc.rs`, `tests/cdc_cli.rs`,
//! `tests/e2e_values.rs`): the real
//! CLI starting the real plugin binary with `cdc_id`, expected state read from PostgreSQL, the
//! destination's applied state, and the plugin process to kill.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::cli::{self, Config as CliConfig, RunningCli};
use super::destination;
use super::pg::{roles, PgServer};

pub use super::cli::PLUGIN;

/// A CDC stream's CLI config: the real plugin (`registry: local`), `cdc_id`, the given tables,
/// one test destination in `dir/dest` (write_mode `overwrite`: upserts by primary key).
pub struct CdcRun {
    pub dir: PathBuf,
    pub dest: PathBuf,
    pub config: PathBuf,
}

impl CdcRun {
    pub fn new(pg: &PgServer, dir: &Path, cdc_id: &str, tables: &[&str]) -> CdcRun {
        Self::with(pg, dir, cdc_id, tables, |c| c)
    }

    pub fn with(
        pg: &PgServer,
        dir: &Path,
        cdc_id: &str,
        tables: &[&str],
        f: impl FnOnce(CliConfig) -> CliConfig,
    ) -> CdcRun {
        std::fs::create_dir_all(dir).unwrap();
        let dest = dir.join("dest");
        let cfg = CliConfig::local(PLUGIN, &dest)
            .spec(cli::pg_spec(
                pg,
                roles::SUPERUSER,
                json!({ "cdc_id": cdc_id }),
            ))
            .tables(tables)
            .write_mode("overwrite");
        let config = f(cfg).write(dir);
        CdcRun {
            dir: dir.to_path_buf(),
            dest,
            config,
        }
    }

    /// `cloudquery sync` in the background (it runs until interrupted).
    pub fn spawn(&self) -> RunningCli {
        cli::sync(&self.config)
            .timeout(Duration::from_secs(600))
            .spawn()
    }

    /// Starts the CLI and waits until the plugin logs that it streams.
    pub fn start_streaming(&self) -> RunningCli {
        let mut run = self.spawn();
        assert!(
            wait_streaming(&mut run, Duration::from_secs(90)),
            "the plugin did not start streaming; CLI log:\n{}",
            run.log()
        );
        run
    }
}

/// True once the CLI log shows the plugin's "streaming changes" line.
pub fn wait_streaming(run: &mut RunningCli, timeout: Duration) -> bool {
    run.wait_for(timeout, |t| t.contains("streaming changes of"))
}

/// Ctrl-C and wait for the CLI to exit.
pub fn interrupt(run: RunningCli) -> cli::CliRun {
    run.interrupt();
    run.wait()
}

/// The source plugin's process id among the CLI's children.
pub fn plugin_pid(run: &RunningCli) -> Option<u32> {
    run.plugins()
        .into_iter()
        .find(|p| p.cmdline.contains("cq-source-postgresql"))
        .map(|p| p.pid)
}

/// Every row of `table` as canonical JSON objects (`to_jsonb` of the row: ints, text and NULL
/// render as the destination does), ordered by `id`.
pub fn source_rows(pg: &PgServer, table: &str) -> Vec<Value> {
    let out = pg.psql(&format!(
        "SELECT coalesce(json_agg(to_jsonb(t) ORDER BY t.id), '[]') FROM {table} t"
    ));
    serde_json::from_str(&out).expect("json")
}

/// The destination's applied state of `table`, ordered by `id`.
pub fn dest_rows(dest: &Path, table: &str) -> Vec<Value> {
    let mut rows = destination::state(dest, table);
    rows.sort_by_key(|r| r["id"].as_i64());
    rows
}

/// Waits until every table's applied state equals the source, row for row; panics with the
/// first difference otherwise.
#[track_caller]
pub fn wait_equal(pg: &PgServer, dest: &Path, tables: &[&str], timeout: Duration) {
    let want: Vec<Vec<Value>> = tables.iter().map(|t| source_rows(pg, t)).collect();
    let end = Instant::now() + timeout;
    loop {
        let got: Vec<Vec<Value>> = tables.iter().map(|t| dest_rows(dest, t)).collect();
        if got == want {
            return;
        }
        if Instant::now() > end {
            for ((t, g), w) in tables.iter().zip(&got).zip(&want) {
                if g != w {
                    let short = |v: &[Value]| {
                        v.iter()
                            .map(|r| r.to_string().chars().take(200).collect::<String>())
                            .collect::<Vec<_>>()
                            .join("\n")
                    };
                    panic!(
                        "table {t}: destination ({} rows) differs from source ({} rows)\n\
                         --- destination\n{}\n--- source\n{}",
                        g.len(),
                        w.len(),
                        short(g),
                        short(w)
                    );
                }
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `SELECT … ` one value as text.
pub fn one(pg: &PgServer, sql: &str) -> String {
    pg.psql(sql).trim().to_string()
}

/// Whether the slot and the publication named `name` exist.
pub fn objects_exist(pg: &PgServer, name: &str) -> (bool, bool) {
    let slot = one(
        pg,
        &format!("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{name}'"),
    ) == "1";
    let publication = one(
        pg,
        &format!("SELECT count(*) FROM pg_publication WHERE pubname = '{name}'"),
    ) == "1";
    (slot, publication)
}

/// Random transactions of inserts (upserts), updates and deletes, one to five statements each,
/// on tables shaped `(id int PRIMARY KEY, v text, n int)`, until `stop`. With `reconnect`, a
/// transaction that fails (the server restarting) is dropped and the connection opened again;
/// otherwise a failure panics. Returns the committed transactions.
pub fn random_workload(
    url: String,
    tables: &'static [&'static str],
    keys: u64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    seed: u64,
    reconnect: bool,
) -> std::thread::JoinHandle<u64> {
    use cq_source_postgresql::wire::{Config, Connection};
    use std::sync::atomic::Ordering;
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let cfg = Config::parse(&url).unwrap();
            let mut conn: Option<Connection> = None;
            let mut x = seed | 1;
            let mut rnd = move |n: u64| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % n
            };
            let mut committed = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let Some(c) = conn.as_mut() else {
                    match Connection::connect(&cfg).await {
                        Ok(c) => conn = Some(c),
                        Err(_) if reconnect => {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(e) => panic!("workload connection: {e}"),
                    }
                    continue;
                };
                let mut sql = String::from("BEGIN;");
                for _ in 0..1 + rnd(5) {
                    let t = tables[rnd(tables.len() as u64) as usize];
                    let k = rnd(keys);
                    sql.push_str(&match rnd(3) {
                        0 => format!(
                            "INSERT INTO {t} VALUES ({k}, 'i{committed}', {committed}) \
                             ON CONFLICT (id) DO UPDATE SET v = excluded.v, n = excluded.n;"
                        ),
                        1 => {
                            format!("UPDATE {t} SET v = 'u{committed}', n = n + 1 WHERE id = {k};")
                        }
                        _ => format!("DELETE FROM {t} WHERE id = {k};"),
                    });
                }
                sql.push_str("COMMIT;");
                match c.batch_execute(&sql).await {
                    Ok(()) => committed += 1,
                    Err(_) if reconnect => conn = None,
                    Err(e) => panic!("workload transaction: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(rnd(15))).await;
            }
            committed
        })
    })
}
