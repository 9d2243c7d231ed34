//! One plugin run, the way the CloudQuery CLI drives a `registry: local` source: start
//! `<plugin> serve --log-level info --log-format json --network unix --address <dir>/cq-XXX.sock`,
//! connect over the unix socket, GetVersions (discovery v1), GetName, GetVersion, Init(spec),
//! then GetTables and/or Sync; records are counted from their IPC headers and discarded.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cq_source_postgresql::pb::discovery::v1 as disc;
use cq_source_postgresql::pb::plugin::v3 as pb;
use hyper_util::rt::TokioIo;
use pb::sync::response::Message;
use serde_json::json;
use tonic::transport::{Channel, Endpoint, Uri};

use super::ipc;
use super::process::{Exit, Measured};

/// The largest gRPC message accepted from the plugin (the CLI accepts far more than tonic's 4 MiB default).
const MAX_MESSAGE: usize = 1 << 30;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub plugin: PathBuf,
    pub spec: String,
    pub tables: Vec<String>,
    pub skip_tables: Vec<String>,
    /// Sync after Init (otherwise only Init + GetTables).
    pub sync: bool,
    /// Also call GetTables (always done when `sync` is false).
    pub get_tables: bool,
    pub timeout: Duration,
    /// Where the plugin's stdout/stderr go (a file per stream); a temporary directory otherwise.
    pub keep_logs: Option<PathBuf>,
    /// grpc-go-like adaptive (BDP) HTTP/2 windows instead of hyper's fixed 2 MiB / 5 MiB.
    pub adaptive_window: bool,
}

#[derive(Debug, Default)]
pub struct RunReport {
    pub name: String,
    pub version: String,
    pub protocol_versions: Vec<i32>,
    pub start_s: f64,
    pub init_s: f64,
    pub get_tables_s: Option<f64>,
    pub tables: Option<usize>,
    pub sync_s: Option<f64>,
    pub first_record_s: Option<f64>,
    pub migrate_tables: u64,
    pub inserts: u64,
    pub batches: u64,
    pub rows: u64,
    pub record_bytes: u64,
    pub errors: Vec<String>,
    pub total_s: f64,
    /// CPU the harness itself used (HTTP/2, protobuf, IPC header reads), for context.
    pub harness_cpu_s: f64,
    pub exit: Option<Exit>,
}

impl RunReport {
    pub fn to_json(&self) -> serde_json::Value {
        let (user, sys, rss, code) = match self.exit {
            Some(e) => (
                Some(e.user_s),
                Some(e.sys_s),
                Some(e.max_rss_kib),
                Some(e.code),
            ),
            None => (None, None, None, None),
        };
        json!({
            "plugin_name": self.name,
            "plugin_version": self.version,
            "protocol_versions": self.protocol_versions,
            "start_s": self.start_s,
            "init_s": self.init_s,
            "get_tables_s": self.get_tables_s,
            "tables": self.tables,
            "sync_s": self.sync_s,
            "wall_s": self.sync_s.map(|s| self.init_s + s),
            "first_record_s": self.first_record_s,
            "migrate_tables": self.migrate_tables,
            "inserts": self.inserts,
            "batches": self.batches,
            "rows": self.rows,
            "record_bytes": self.record_bytes,
            "errors": self.errors,
            "total_s": self.total_s,
            "harness_cpu_s": self.harness_cpu_s,
            "plugin_user_s": user,
            "plugin_sys_s": sys,
            "plugin_cpu_s": user.zip(sys).map(|(u, s)| u + s),
            "plugin_max_rss_kib": rss,
            "plugin_exit_code": code,
        })
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A launched plugin process, as the CLI launches a `registry: local` plugin: `serve` on a unix
/// socket in a temporary directory, stdout and stderr into files.
pub struct Session {
    child: Measured,
    // Holds the socket's directory (and the logs unless `keep_logs`) until the session ends.
    _tmp: tempfile::TempDir,
    sock: PathBuf,
    out_path: PathBuf,
    err_path: PathBuf,
    /// When the process was started.
    pub started: Instant,
}

impl Session {
    /// Starts `<plugin> serve --log-level info --log-format json --network unix --address …`.
    pub fn spawn(plugin: &Path, keep_logs: Option<&Path>) -> Result<Session, String> {
        let tmp = tempfile::Builder::new()
            .prefix("cq-bench-")
            .tempdir()
            .map_err(|e| format!("creating a temporary directory: {e}"))?;
        let log_dir = keep_logs.map_or_else(|| tmp.path().to_path_buf(), Path::to_path_buf);
        std::fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
        let out_path = log_dir.join("plugin.stdout");
        let err_path = log_dir.join("plugin.stderr");
        let open = |p: &Path| {
            std::fs::File::create(p).map_err(|e| format!("creating {}: {e}", p.display()))
        };
        let sock = tmp
            .path()
            .join(format!("cq-{}.sock", uuid::Uuid::new_v4().simple()));
        let started = Instant::now();
        let child = Measured::spawn(
            Command::new(plugin)
                .args(["serve", "--log-level", "info", "--log-format", "json"])
                .args(["--network", "unix", "--address"])
                .arg(&sock)
                .stdout(Stdio::from(open(&out_path)?))
                .stderr(Stdio::from(open(&err_path)?)),
        )
        .map_err(|e| format!("starting {}: {e}", plugin.display()))?;
        Ok(Session {
            child,
            _tmp: tmp,
            sock,
            out_path,
            err_path,
            started,
        })
    }

    pub fn pid(&self) -> libc::pid_t {
        self.child.pid()
    }

    /// The plugin's log (stdout: JSON lines).
    pub fn stdout_path(&self) -> &Path {
        &self.out_path
    }

    /// The last lines of the plugin's stdout and stderr, for error messages.
    pub fn logs(&self) -> String {
        format!(
            "\n--- plugin stdout (tail) ---\n{}\n--- plugin stderr (tail) ---\n{}",
            tail(&self.out_path),
            tail(&self.err_path)
        )
    }

    /// Waits for the socket as the CLI does, then GetVersions (discovery v1), GetName and
    /// GetVersion; fills those fields of `report`.
    pub async fn connect(
        &mut self,
        adaptive_window: bool,
        report: &mut RunReport,
    ) -> Result<pb::plugin_client::PluginClient<Channel>, String> {
        loop {
            if let Some(exit) = self
                .child
                .try_wait()
                .map_err(|e| format!("watching the plugin: {e}"))?
            {
                return Err(format!(
                    "plugin exited with code {} before serving",
                    exit.code
                ));
            }
            if tokio::net::UnixStream::connect(&self.sock).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let channel = connect(&self.sock, adaptive_window)
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.sock.display()))?;
        report.start_s = self.started.elapsed().as_secs_f64();
        handshake(channel, report).await
    }

    /// Lets the client's connection close (its task runs on the caller's runtime) so the
    /// plugin's graceful shutdown does not wait for it, then SIGTERM (SIGKILL after 15 s) and
    /// reap.
    pub async fn stop(&mut self) -> Result<Exit, String> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.child
            .stop(Duration::from_secs(15))
            .map_err(|e| format!("reaping the plugin (pid {}): {e}", self.child.pid()))
    }
}

/// Init with `spec`; returns its duration in seconds.
pub async fn init(
    client: &mut pb::plugin_client::PluginClient<Channel>,
    spec: &str,
) -> Result<f64, String> {
    let t = Instant::now();
    client
        .init(pb::init::Request {
            spec: spec.as_bytes().to_vec(),
            no_connection: false,
            invocation_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .map_err(|s| format!("Init: {s}"))?;
    Ok(t.elapsed().as_secs_f64())
}

/// The Sync request the CLI sends for these table patterns.
pub fn sync_request(tables: &[String], skip_tables: &[String]) -> pb::sync::Request {
    pb::sync::Request {
        tables: tables.to_vec(),
        skip_tables: skip_tables.to_vec(),
        skip_dependent_tables: false,
        deterministic_cq_id: false,
        backend: None,
        shard: None,
        with_error_messages: true,
    }
}

/// Runs the plugin once. Errors name the step that failed and carry the plugin's last log lines.
pub async fn run(opts: &RunOptions) -> Result<RunReport, String> {
    let cpu0 = super::process::self_cpu_s();
    let mut session = Session::spawn(&opts.plugin, opts.keep_logs.as_deref())?;
    let mut report = RunReport::default();
    let result = tokio::time::timeout(opts.timeout, drive(opts, &mut session, &mut report))
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {:?}", opts.timeout)));
    let exit = session.stop().await?;
    report.total_s = session.started.elapsed().as_secs_f64();
    report.harness_cpu_s = super::process::self_cpu_s() - cpu0;
    report.exit = Some(exit);
    match result {
        Ok(()) => Ok(report),
        Err(e) => Err(format!("{e}{}", session.logs())),
    }
}

async fn connect(sock: &Path, adaptive_window: bool) -> Result<Channel, tonic::transport::Error> {
    let sock = sock.to_path_buf();
    // The URI is ignored by the connector; the host is only what goes into :authority.
    // HTTP/2 receive windows: hyper's fixed 2 MiB per stream / 5 MiB per connection by default;
    // `adaptive_window` sizes them from the measured bandwidth-delay product instead, starting
    // at 64 KiB, which is what grpc-go's client (the CLI) does.
    Endpoint::from_static("http://localhost")
        .http2_adaptive_window(adaptive_window)
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let sock = sock.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(sock).await?))
            }
        }))
        .await
}

/// GetVersions (discovery v1, must offer v3), GetName, GetVersion.
async fn handshake(
    channel: Channel,
    report: &mut RunReport,
) -> Result<pb::plugin_client::PluginClient<Channel>, String> {
    let mut discovery = disc::discovery_client::DiscoveryClient::new(channel.clone());
    report.protocol_versions = discovery
        .get_versions(disc::get_versions::Request {})
        .await
        .map_err(|s| format!("GetVersions: {s}"))?
        .into_inner()
        .versions;
    if !report.protocol_versions.contains(&3) {
        return Err(format!(
            "the plugin does not speak protocol v3 (GetVersions: {:?})",
            report.protocol_versions
        ));
    }
    let mut client = pb::plugin_client::PluginClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    report.name = client
        .get_name(pb::get_name::Request {})
        .await
        .map_err(|s| format!("GetName: {s}"))?
        .into_inner()
        .name;
    report.version = client
        .get_version(pb::get_version::Request {})
        .await
        .map_err(|s| format!("GetVersion: {s}"))?
        .into_inner()
        .version;
    Ok(client)
}

async fn drive(
    opts: &RunOptions,
    session: &mut Session,
    report: &mut RunReport,
) -> Result<(), String> {
    let mut client = session.connect(opts.adaptive_window, report).await?;
    report.init_s = init(&mut client, &opts.spec).await?;

    if opts.get_tables || !opts.sync {
        let t = Instant::now();
        let tables = client
            .get_tables(pb::get_tables::Request {
                tables: opts.tables.clone(),
                skip_tables: opts.skip_tables.clone(),
                skip_dependent_tables: false,
            })
            .await
            .map_err(|s| format!("GetTables: {s}"))?
            .into_inner()
            .tables;
        report.get_tables_s = Some(t.elapsed().as_secs_f64());
        report.tables = Some(tables.len());
    }

    if opts.sync {
        let t = Instant::now();
        let mut stream = client
            .sync(sync_request(&opts.tables, &opts.skip_tables))
            .await
            .map_err(|s| format!("Sync: {s}"))?
            .into_inner();
        loop {
            let msg = match stream.message().await {
                Ok(Some(r)) => r.message,
                Ok(None) => break,
                Err(s) => return Err(format!("Sync stream after {} rows: {s}", report.rows)),
            };
            match msg {
                Some(Message::Insert(ins)) => {
                    if report.first_record_s.is_none() {
                        report.first_record_s = Some(t.elapsed().as_secs_f64());
                    }
                    let c = ipc::count_rows(&ins.record)
                        .map_err(|e| format!("insert #{}: {e}", report.inserts + 1))?;
                    report.inserts += 1;
                    report.rows += c.rows;
                    report.batches += c.batches;
                    report.record_bytes += ins.record.len() as u64;
                }
                Some(Message::MigrateTable(_)) => report.migrate_tables += 1,
                Some(Message::Error(e)) => {
                    report.errors.push(format!("{}: {}", e.table_name, e.error))
                }
                Some(Message::DeleteRecord(_)) | None => {}
            }
        }
        report.sync_s = Some(t.elapsed().as_secs_f64());
    }
    // The CLI closes the plugin before stopping it.
    client
        .close(pb::close::Request {})
        .await
        .map_err(|s| format!("Close: {s}"))?;
    Ok(())
}
