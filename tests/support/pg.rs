//! A real PostgreSQL cluster per test, stopped on Drop (also when the test panics).
//!
//! Binaries come from `$CQ_CACHE_DIR/pg/<major>/bin` (installed by `scripts/setup.sh`) unless
//! `CQPG_PG_BIN_DIR` names another directory. The major is `PgOptions::version`, else
//! `CQPG_TEST_PG_VERSION`, else 17.
//!
//! Starting a cluster is cheap: `initdb` (and the role setup) runs once per major into a cached
//! template under `$CQ_CACHE_DIR/templates/`, and each server copies it. Every server gets its
//! own temporary directory holding the data directory, the unix-socket directory, the TLS files
//! (a CA, a server certificate for `localhost`/`127.0.0.1`, a `cert_user` client certificate, and
//! an unrelated "foreign" CA) and the server log, plus a free TCP port on 127.0.0.1.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root the server processes run as
//! the unprivileged user `cqpg` (created by `scripts/setup.sh`) through `runuser`, and the files
//! the server reads are given to that user.
//!
//! The harness's own `psql` connects over the unix socket as `postgres` with the shared password
//! (scram-sha-256, like every other superuser login), so tests must not change that password.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::{cache_dir, free_port, is_root};

/// The roles every cluster has. All TCP users except `trust_user` and `cert_user` use
/// [`roles::PASSWORD`].
pub mod roles {
    /// Superuser, scram-sha-256 over TCP and the unix socket.
    pub const SUPERUSER: &str = "postgres";
    /// Password stored as SCRAM, `scram-sha-256` auth, has REPLICATION.
    pub const SCRAM_USER: &str = "scram_user";
    /// Password stored as MD5, `md5` auth.
    pub const MD5_USER: &str = "md5_user";
    /// `password` (cleartext) auth.
    pub const PLAIN_USER: &str = "plain_user";
    /// `trust` auth, no password.
    pub const TRUST_USER: &str = "trust_user";
    /// `cert` auth over `hostssl` only: the client certificate's CN is the user name.
    pub const CERT_USER: &str = "cert_user";
    /// The password of every password-authenticated role, the superuser included.
    pub const PASSWORD: &str = "Pa55-w0rd!secret";
}

/// The major used when neither `PgOptions::version` nor `CQPG_TEST_PG_VERSION` says otherwise.
pub const DEFAULT_MAJOR: u32 = 17;
/// The unprivileged user that runs the servers when the tests run as root.
pub const SERVER_USER: &str = "cqpg";
/// Bump when the template's contents change (roles, pg_hba, config layout) so caches rebuild.
const TEMPLATE_FORMAT: u32 = 1;
/// Name of the per-server config file the template's postgresql.conf includes.
const SERVER_CONF: &str = "cqpg.conf";
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Prefix of each server's temporary directory, and the file in it naming the test process.
const SERVER_DIR_PREFIX: &str = "cqpg-srv-";
const OWNER_FILE: &str = "owner.pid";

#[derive(Clone, Debug)]
pub struct PgOptions {
    /// PostgreSQL major; `None` means `CQPG_TEST_PG_VERSION`, else 17.
    pub version: Option<u32>,
    /// `logical` by default.
    pub wal_level: &'static str,
    /// Extra postgresql.conf lines, appended after the harness's settings (so they win).
    /// Leave `port`, `listen_addresses` and `unix_socket_directories` to the harness.
    pub extra_conf: Vec<String>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            version: None,
            wal_level: "logical",
            extra_conf: Vec::new(),
        }
    }
}

/// Paths of the TLS material generated for one server.
struct Tls {
    ca_cert: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    foreign_ca_cert: PathBuf,
    foreign_client_cert: PathBuf,
    foreign_client_key: PathBuf,
}

mod standby;

pub struct PgServer {
    major: u32,
    bin_dir: PathBuf,
    port: u16,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    tls: Tls,
    /// `runuser` (as root) or `postgres` itself; `None` while stopped.
    child: Option<Child>,
    /// Holds everything above; removed on Drop after the server stopped.
    root: tempfile::TempDir,
}

impl PgServer {
    /// Starts a server with the default options (`wal_level=logical`, major from
    /// `CQPG_TEST_PG_VERSION`, default 17).
    pub fn start() -> PgServer {
        Self::start_with(PgOptions::default())
    }

    pub fn start_with(opts: PgOptions) -> PgServer {
        let (bin_dir, major) = resolve_binaries(opts.version);
        let template = ensure_template(&bin_dir, major);
        let owner = server_owner();

        let tmp_root = server_tmp_root();
        static SWEPT: OnceLock<()> = OnceLock::new();
        SWEPT.get_or_init(|| sweep_orphans(&tmp_root));
        let root = tempfile::Builder::new()
            .prefix(SERVER_DIR_PREFIX)
            .tempdir_in(&tmp_root)
            .expect("create the server's temporary directory");
        // The server user must traverse it to reach the data, socket and certificate dirs.
        set_mode(root.path(), 0o755);
        fs::write(root.path().join(OWNER_FILE), std::process::id().to_string())
            .expect("write the owner pid");
        let data_dir = root.path().join("data");
        let socket_dir = root.path().join("sock");
        let certs_dir = root.path().join("certs");
        let log_file = root.path().join("postgres.log");

        // `cp -a` keeps the template's owner (the server user) and its 0700 mode.
        run_checked(
            Command::new("cp").arg("-a").arg(&template).arg(&data_dir),
            "copy the cluster template",
        );
        fs::create_dir(&socket_dir).expect("create the socket directory");
        set_mode(&socket_dir, 0o755);
        give_to_server(&socket_dir, owner);
        fs::create_dir(&certs_dir).expect("create the certificate directory");
        set_mode(&certs_dir, 0o755);
        let tls = generate_tls(&certs_dir, owner);

        let mut server = PgServer {
            major,
            bin_dir,
            port: 0,
            data_dir,
            socket_dir,
            log_file,
            tls,
            child: None,
            root,
        };

        // Another process may take the port between our probe and the server's bind: retry
        // with a new port in that case only.
        let mut attempt = 0;
        loop {
            attempt += 1;
            server.port = free_port();
            server.write_conf(&opts);
            match server.spawn_and_wait(true) {
                Ok(()) => break,
                Err(why) => {
                    let log = server.log_tail();
                    if attempt < 5 && log.contains("Address already in use") {
                        continue;
                    }
                    panic!(
                        "PostgreSQL {} did not start: {why}\n--- {} ---\n{log}",
                        server.major,
                        server.log_file.display()
                    );
                }
            }
        }
        server
    }

    pub fn version_major(&self) -> u32 {
        self.major
    }

    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Directory with this server's PostgreSQL binaries.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The server's log file (stderr of the postmaster).
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// `postgres://user:password@127.0.0.1:port/db?sslmode=disable`; an empty password is
    /// left out.
    pub fn url(&self, user: &str, password: &str, db: &str) -> String {
        let mut url = String::from("postgres://");
        url.push_str(&percent_encode(user));
        if !password.is_empty() {
            url.push(':');
            url.push_str(&percent_encode(password));
        }
        let _ = write!(
            url,
            "@127.0.0.1:{}/{}?sslmode=disable",
            self.port,
            percent_encode(db)
        );
        url
    }

    /// The arguments that point a PostgreSQL client tool (psql, pgbench) at this server as the
    /// superuser over its unix socket (`PGPASSWORD` = `roles::PASSWORD` must be set too).
    pub fn client_args(&self) -> Vec<std::ffi::OsString> {
        vec![
            "-h".into(),
            self.socket_dir.clone().into_os_string(),
            "-p".into(),
            self.port.to_string().into(),
            "-U".into(),
            roles::SUPERUSER.into(),
        ]
    }

    /// Runs `sql` through psql as the superuser on database `postgres`; returns trimmed stdout
    /// (`-At`: unaligned, tuples only). Panics with psql's stderr on any error.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_db("postgres", sql)
    }

    /// Like [`PgServer::psql`] on database `db`.
    pub fn psql_db(&self, db: &str, sql: &str) -> String {
        let mut cmd = psql_command();
        cmd.args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-f", "-"])
            .args(self.client_args())
            .args(["-d", db])
            .env("PGPASSWORD", roles::PASSWORD);
        let out = run_with_stdin(&mut cmd, sql);
        if !out.status.success() {
            panic!(
                "psql failed ({}) on PostgreSQL {} db {db}:\n--- sql ---\n{}\n--- stderr ---\n{}",
                out.status,
                self.major,
                redact(sql),
                redact(&String::from_utf8_lossy(&out.stderr))
            );
        }
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn ca_cert(&self) -> &Path {
        &self.tls.ca_cert
    }

    /// A CA that signed nothing this server uses (for verification-failure tests).
    pub fn foreign_ca_cert(&self) -> &Path {
        &self.tls.foreign_ca_cert
    }

    pub fn server_cert(&self) -> &Path {
        &self.tls.server_cert
    }

    pub fn server_key(&self) -> &Path {
        &self.tls.server_key
    }

    /// Client certificate with CN=`cert_user`, signed by [`PgServer::ca_cert`].
    pub fn client_cert(&self) -> &Path {
        &self.tls.client_cert
    }

    /// Key of [`PgServer::client_cert`], mode 0600, owned by the test process's user.
    pub fn client_key(&self) -> &Path {
        &self.tls.client_key
    }

    /// Client certificate with CN=`cert_user` signed by the foreign CA: the server rejects it.
    pub fn foreign_client_cert(&self) -> &Path {
        &self.tls.foreign_client_cert
    }

    pub fn foreign_client_key(&self) -> &Path {
        &self.tls.foreign_client_key
    }

    /// Whether the postmaster is running (started and not stopped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Clean (fast) shutdown then start again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(why) = self.spawn_and_wait(false) {
            panic!(
                "PostgreSQL {} did not restart: {why}\n--- {} ---\n{}",
                self.major,
                self.log_file.display(),
                self.log_tail()
            );
        }
    }

    /// Starts a stopped server again (after [`PgServer::stop`] and work on its data directory).
    pub fn start_again(&mut self) {
        assert!(!self.is_running(), "start_again: the server is running");
        if let Err(why) = self.spawn_and_wait(false) {
            panic!(
                "PostgreSQL {} did not start again: {why}\n--- {} ---\n{}",
                self.major,
                self.log_file.display(),
                self.log_tail()
            );
        }
    }

    /// A command for a PostgreSQL program (e.g. Debian's `/usr/lib/postgresql/15/bin/pg_resetwal`)
    /// run as the server's user, so it may touch the data directory.
    pub fn server_tool(&self, program: &Path) -> Command {
        server_command(program)
    }

    /// Clean (fast) shutdown; the data directory stays until Drop. No-op when stopped.
    pub fn stop(&mut self) {
        if let Err(why) = self.shutdown("fast") {
            panic!("stopping PostgreSQL {} failed: {why}", self.major);
        }
    }

    /// Last lines of the server log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log_file).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    fn write_conf(&self, opts: &PgOptions) {
        let tls = &self.tls;
        let mut conf = String::new();
        let mut set = |name: &str, value: &str| {
            let _ = writeln!(conf, "{name} = {value}");
        };
        set("listen_addresses", "'127.0.0.1'");
        set("port", &self.port.to_string());
        set(
            "unix_socket_directories",
            &conf_quote(&self.socket_dir.to_string_lossy()),
        );
        set("wal_level", opts.wal_level);
        set("max_replication_slots", "20");
        // wal_level=minimal refuses to start with WAL senders configured.
        let senders = if opts.wal_level == "minimal" {
            "0"
        } else {
            "20"
        };
        set("max_wal_senders", senders);
        set("password_encryption", "'scram-sha-256'");
        set("ssl", "on");
        set(
            "ssl_cert_file",
            &conf_quote(&tls.server_cert.to_string_lossy()),
        );
        set(
            "ssl_key_file",
            &conf_quote(&tls.server_key.to_string_lossy()),
        );
        set("ssl_ca_file", &conf_quote(&tls.ca_cert.to_string_lossy()));
        // Throwaway clusters: durability only costs time.
        set("fsync", "off");
        set("full_page_writes", "off");
        set("log_line_prefix", "'%m [%p] %q%u@%d '");
        for line in &opts.extra_conf {
            conf.push_str(line);
            conf.push('\n');
        }
        let path = self.data_dir.join(SERVER_CONF);
        fs::write(&path, conf).expect("write the server configuration");
        give_to_server(&path, server_owner());
    }

    fn spawn_and_wait(&mut self, fresh_log: bool) -> Result<(), String> {
        // A fresh log per start attempt (a retry must not see the previous attempt's bind
        // error); a restart appends so the log keeps the whole story.
        let log = OpenOptions::new()
            .create(true)
            .write(true)
            .append(!fresh_log)
            .truncate(fresh_log)
            .open(&self.log_file)
            .map_err(|e| format!("open the log file: {e}"))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("clone the log file: {e}"))?;
        // The postmaster runs as our child, in our process group (`pg_ctl start` would detach
        // it with setsid), so nextest's timeout signal to the test's group reaches it too.
        // Servers of processes that died otherwise are removed by `sweep_orphans`.
        let child = server_command(&self.bin_dir.join("postgres"))
            .arg("-D")
            .arg(&self.data_dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("spawn postgres: {e}"))?;
        self.child = Some(child);
        let result = wait_ready(&self.data_dir, self.child.as_mut().expect("child"));
        if result.is_err() {
            let _ = self.shutdown("immediate");
        }
        result
    }

    fn shutdown(&mut self, mode: &str) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Ok(Some(_)) = child.try_wait() {
            return Ok(());
        }
        let out = server_command(&self.bin_dir.join("pg_ctl"))
            .arg("stop")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", mode, "-w", "-t", "60"])
            .stdin(Stdio::null())
            .output();
        let stopped = matches!(&out, Ok(o) if o.status.success());
        if !stopped {
            // Last resort: the postmaster's pid is the first line of postmaster.pid.
            if let Some(pid) = postmaster_pid(&self.data_dir) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            let _ = child.kill();
        }
        let _ = child.wait();
        if stopped {
            Ok(())
        } else {
            Err(match out {
                Ok(o) => format!(
                    "pg_ctl stop -m {mode}: {}: {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
                Err(e) => format!("pg_ctl stop -m {mode}: {e}"),
            })
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Immediate: nothing to keep, and it must be quick even after a failed test.
        if let Err(why) = self.shutdown("immediate") {
            eprintln!("warning: {why}");
        }
        // `root` (a TempDir) is dropped after this and removes every file.
    }
}

/// A psql session the test drives statement by statement (stdin kept open): for transactions
/// that stay open while something else runs.
pub struct Session {
    child: std::process::Child,
}

impl Session {
    /// As the superuser on database `postgres`, over the server's unix socket.
    pub fn open(pg: &PgServer) -> Session {
        let mut cmd = psql_command();
        cmd.args(["-X", "-At", "-v", "ON_ERROR_STOP=1"])
            .args(pg.client_args())
            .args(["-d", "postgres"])
            .env("PGPASSWORD", roles::PASSWORD)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Session {
            child: cmd.spawn().expect("psql session"),
        }
    }

    /// Sends `sql` (psql runs it when the statement is complete).
    pub fn send(&mut self, sql: &str) {
        use std::io::Write as _;
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{sql}").expect("write to psql");
        stdin.flush().expect("flush psql");
    }

    /// Closes stdin and waits for psql to exit.
    pub fn finish(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// A `psql` command (Debian's client tools) with every `PG*` variable of the test process
/// removed, so only what the caller sets applies. Tests add the connection arguments.
pub fn psql_command() -> Command {
    let mut cmd = Command::new(psql_path());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("PGCONNECT_TIMEOUT", "10").stdin(Stdio::null());
    cmd
}

/// Debian's psql: `CQPG_PSQL` if set, else the version-15 binary itself (skipping the perl
/// `pg_wrapper` behind /usr/bin/psql saves time per call), else `psql` on PATH.
pub fn psql_path() -> PathBuf {
    if let Some(p) = std::env::var_os("CQPG_PSQL") {
        return PathBuf::from(p);
    }
    let direct = Path::new("/usr/lib/postgresql/15/bin/psql");
    if direct.exists() {
        return direct.to_path_buf();
    }
    if let Some(p) = find_on_path("psql") {
        return p;
    }
    panic!("psql not found (Debian postgresql-client-15): run `bash scripts/setup.sh`");
}

/// Where the servers' temporary directories go: `CQPG_TEST_TMPDIR`, else /dev/shm when it is
/// a writable directory (copying the template there takes a tenth of the time it takes on the
/// disk of these virtual machines, and the servers run faster), else the system temp dir.
pub fn server_tmp_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("CQPG_TEST_TMPDIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let usable = tempfile::Builder::new()
            .prefix("cqpg-probe-")
            .tempdir_in(shm)
            .is_ok();
        if usable {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    })
    .clone()
}

/// Removes the directories (and stops the servers) of test processes that were killed before
/// their `PgServer` could drop, e.g. by nextest's timeout: in /dev/shm they would hold memory.
fn sweep_orphans(tmp_root: &Path) {
    let Ok(entries) = fs::read_dir(tmp_root) else {
        return;
    };
    let alive = |pid: u32| Path::new("/proc").join(pid.to_string()).exists();
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(SERVER_DIR_PREFIX)
        {
            continue;
        }
        let dir = entry.path();
        // No owner file yet: another process is creating it right now.
        let Some(owner) = fs::read_to_string(dir.join(OWNER_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        else {
            continue;
        };
        if alive(owner) {
            continue;
        }
        if let Some(pid) = postmaster_pid(&dir.join("data")) {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            // Only a postgres process: the pid may have been reused since.
            if String::from_utf8_lossy(&cmdline).contains("postgres") {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

/// The major a test gets when it does not ask for one: `CQPG_TEST_PG_VERSION`, else 17.
pub fn default_major() -> u32 {
    match std::env::var("CQPG_TEST_PG_VERSION") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().unwrap_or_else(|_| {
            panic!("CQPG_TEST_PG_VERSION={v:?} is not a PostgreSQL major like 17")
        }),
        _ => DEFAULT_MAJOR,
    }
}

fn resolve_binaries(requested: Option<u32>) -> (PathBuf, u32) {
    let wanted = requested.unwrap_or_else(default_major);
    let custom = std::env::var_os("CQPG_PG_BIN_DIR").filter(|d| !d.is_empty());
    let bin_dir = match &custom {
        Some(dir) => PathBuf::from(dir),
        None => cache_dir().join("pg").join(wanted.to_string()).join("bin"),
    };
    let postgres = bin_dir.join("postgres");
    if !postgres.exists() {
        panic!(
            "PostgreSQL {wanted} binaries not found at {}: run `bash scripts/setup.sh` \
             (or `CQPG_PG_MAJORS={wanted} bash scripts/setup.sh`)",
            bin_dir.display()
        );
    }
    let actual = binary_major(&postgres);
    // A custom directory decides the version unless the test asked for a specific one.
    if actual != wanted && (custom.is_none() || requested.is_some()) {
        panic!(
            "{} is PostgreSQL {actual}, not {wanted}: run `bash scripts/setup.sh`",
            postgres.display()
        );
    }
    (bin_dir, actual)
}

/// Major of a `postgres` binary, from `postgres --version` ("postgres (PostgreSQL) 17.10").
fn binary_major(postgres: &Path) -> u32 {
    let version = postgres_version(postgres);
    version
        .rsplit(' ')
        .next()
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("unexpected `{} --version`: {version}", postgres.display()))
}

fn postgres_version(postgres: &Path) -> String {
    let out = Command::new(postgres)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("run {} --version: {e}", postgres.display()));
    assert!(
        out.status.success(),
        "{} --version failed: {}",
        postgres.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The cached, initialised cluster for these binaries (roles, passwords and pg_hba in place),
/// building it on first use. Parallel test processes serialise on a lock file.
fn ensure_template(bin_dir: &Path, major: u32) -> PathBuf {
    let templates = cache_dir().join("templates");
    fs::create_dir_all(&templates)
        .unwrap_or_else(|e| panic!("create {}: {e}", templates.display()));
    set_mode(&templates, 0o755);
    let default_bin = cache_dir().join("pg").join(major.to_string()).join("bin");
    let key = if bin_dir == default_bin {
        major.to_string()
    } else {
        format!(
            "{major}-{:016x}",
            fnv1a(bin_dir.as_os_str().as_encoded_bytes())
        )
    };
    let dir = templates.join(&key);
    // The owner is part of it: a cache restored on a machine where `cqpg` got another uid
    // would hold a data directory the server refuses to use.
    let stamp = format!(
        "format={TEMPLATE_FORMAT}\n{}\n{}\nowner={:?}\n",
        postgres_version(&bin_dir.join("postgres")),
        bin_dir.display(),
        server_owner()
    );
    let ready = || fs::read_to_string(dir.join("stamp")).ok().as_deref() == Some(stamp.as_str());
    if ready() {
        return dir.join("data");
    }
    let _lock = LockFile::acquire(templates.join(format!("{key}.lock")));
    if ready() {
        return dir.join("data");
    }
    let build = templates.join(format!(".build-{key}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&build);
    fs::create_dir(&build).unwrap_or_else(|e| panic!("create {}: {e}", build.display()));
    set_mode(&build, 0o755);
    build_template(bin_dir, major, &build);
    fs::write(build.join("stamp"), &stamp).expect("write the template stamp");
    if dir.exists() {
        let old = templates.join(format!(".old-{key}-{}", std::process::id()));
        fs::rename(&dir, &old).expect("move the outdated template away");
        let _ = fs::remove_dir_all(&old);
    }
    fs::rename(&build, &dir).expect("move the new template into place");
    dir.join("data")
}

fn build_template(bin_dir: &Path, major: u32, build: &Path) {
    let owner = server_owner();
    let data = build.join("data");
    let sock = build.join("sock");
    for d in [&data, &sock] {
        fs::create_dir(d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
        give_to_server(d, owner);
    }
    set_mode(&data, 0o700);
    let out = server_command(&bin_dir.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-U", roles::SUPERUSER, "-A", "trust", "-E", "UTF8"])
        .args(["--locale=C", "--no-sync"])
        .stdin(Stdio::null())
        .output()
        .expect("run initdb");
    assert!(
        out.status.success(),
        "initdb (PostgreSQL {major}) failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Start it on the socket only (trust, from initdb) to create the roles.
    let log_path = build.join("template.log");
    let log = File::create(&log_path).expect("create the template log");
    let log_err = log.try_clone().expect("clone the template log");
    let mut child = server_command(&bin_dir.join("postgres"))
        .arg("-D")
        .arg(&data)
        .args([
            "-c",
            "listen_addresses=",
            "-c",
            "port=5432",
            "-c",
            "fsync=off",
        ])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", sock.display()))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .expect("spawn postgres for the template");
    let ready = wait_ready(&data, &mut child);
    let sql_result = ready.clone().map(|()| {
        let mut cmd = psql_command();
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-", "-p", "5432"])
            .arg("-h")
            .arg(&sock)
            .args(["-U", roles::SUPERUSER, "-d", "postgres"]);
        run_with_stdin(&mut cmd, &roles_sql())
    });
    let _ = server_command(&bin_dir.join("pg_ctl"))
        .arg("stop")
        .arg("-D")
        .arg(&data)
        .args(["-m", "fast", "-w", "-t", "60"])
        .stdin(Stdio::null())
        .output();
    let _ = child.wait();
    let log_text = || fs::read_to_string(&log_path).unwrap_or_default();
    match sql_result {
        Err(why) => panic!(
            "template server (PostgreSQL {major}) did not start: {why}\n{}",
            log_text()
        ),
        Ok(out) if !out.status.success() => panic!(
            "creating the roles (PostgreSQL {major}) failed: {}",
            redact(&String::from_utf8_lossy(&out.stderr))
        ),
        Ok(_) => {}
    }
    assert!(
        postmaster_pid(&data).is_none(),
        "template server (PostgreSQL {major}) did not stop\n{}",
        log_text()
    );

    let hba = data.join("pg_hba.conf");
    fs::write(&hba, pg_hba()).expect("write pg_hba.conf");
    give_to_server(&hba, owner);
    let conf = data.join("postgresql.conf");
    let mut f = OpenOptions::new()
        .append(true)
        .open(&conf)
        .expect("open postgresql.conf");
    // Per-server settings (port, sockets, TLS files, options) live in this included file.
    writeln!(f, "\ninclude_if_exists = '{SERVER_CONF}'").expect("append to postgresql.conf");
    let _ = fs::remove_dir_all(&sock);
    let _ = fs::remove_file(&log_path);
}

fn roles_sql() -> String {
    let pw = roles::PASSWORD.replace('\'', "''");
    format!(
        "SET password_encryption = 'scram-sha-256';\n\
         ALTER ROLE {su} PASSWORD '{pw}';\n\
         CREATE ROLE {scram} LOGIN REPLICATION PASSWORD '{pw}';\n\
         CREATE ROLE {plain} LOGIN PASSWORD '{pw}';\n\
         CREATE ROLE {trust} LOGIN;\n\
         CREATE ROLE {cert} LOGIN;\n\
         SET password_encryption = 'md5';\n\
         CREATE ROLE {md5} LOGIN PASSWORD '{pw}';\n",
        su = roles::SUPERUSER,
        scram = roles::SCRAM_USER,
        plain = roles::PLAIN_USER,
        trust = roles::TRUST_USER,
        cert = roles::CERT_USER,
        md5 = roles::MD5_USER,
    )
}

fn pg_hba() -> String {
    let mut hba = String::from(
        "# Written by tests/support/pg.rs. First match wins; a failed match does not fall through.\n\
         # TYPE  DATABASE     USER        ADDRESS         METHOD\n",
    );
    let addrs = ["127.0.0.1/32", "::1/128"];
    let dbs = ["all", "replication"];
    for db in dbs {
        for addr in addrs {
            let _ = writeln!(
                hba,
                "hostssl {db:<12} {:<11} {addr:<15} cert",
                roles::CERT_USER
            );
        }
    }
    for (user, method) in [
        (roles::MD5_USER, "md5"),
        (roles::PLAIN_USER, "password"),
        (roles::TRUST_USER, "trust"),
    ] {
        for db in dbs {
            let _ = writeln!(hba, "local   {db:<12} {user:<11} {:<15} {method}", "");
            for addr in addrs {
                let _ = writeln!(hba, "host    {db:<12} {user:<11} {addr:<15} {method}");
            }
        }
    }
    // Everyone else, the superuser and the harness's own psql included.
    for db in dbs {
        let _ = writeln!(
            hba,
            "local   {db:<12} {:<11} {:<15} scram-sha-256",
            "all", ""
        );
        for addr in addrs {
            let _ = writeln!(
                hba,
                "host    {db:<12} {:<11} {addr:<15} scram-sha-256",
                "all"
            );
        }
    }
    hba
}

/// Waits until postmaster.pid reports "ready" (the 8th line, PostgreSQL 10+), the way
/// `pg_ctl -w` does, or the process exits.
fn wait_ready(data_dir: &Path, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let pid_file = data_dir.join("postmaster.pid");
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("postgres exited: {status}"));
        }
        if let Ok(text) = fs::read_to_string(&pid_file) {
            // `standby`: a hot standby accepting read-only connections.
            if matches!(
                text.lines().nth(7).map(str::trim),
                Some("ready" | "standby")
            ) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("not ready after {START_TIMEOUT:?}"));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn postmaster_pid(data_dir: &Path) -> Option<u32> {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

fn generate_tls(dir: &Path, owner: Option<(u32, u32)>) -> Tls {
    let (ca_pem, ca) = new_ca("cq-source-postgresql test CA");
    let (foreign_ca_pem, foreign_ca) = new_ca("cq-source-postgresql foreign CA");

    let mut server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server certificate parameters");
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.use_authority_key_identifier_extension = true;
    server.key_usages.push(KeyUsagePurpose::DigitalSignature);
    server
        .extended_key_usages
        .push(ExtendedKeyUsagePurpose::ServerAuth);
    let server_key = KeyPair::generate().expect("server key");
    let server_cert = server
        .signed_by(&server_key, &ca)
        .expect("sign the server certificate");

    let client = |issuer: &Issuer<'static, KeyPair>| {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, roles::CERT_USER);
        params.use_authority_key_identifier_extension = true;
        params.key_usages.push(KeyUsagePurpose::DigitalSignature);
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
        let key = KeyPair::generate().expect("client key");
        let cert = params
            .signed_by(&key, issuer)
            .expect("sign the client certificate");
        (cert.pem(), key.serialize_pem())
    };
    let (client_pem, client_key_pem) = client(&ca);
    let (foreign_client_pem, foreign_client_key_pem) = client(&foreign_ca);

    let write = |name: &str, contents: &str, mode: u32| {
        let path = dir.join(name);
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        set_mode(&path, mode);
        path
    };
    let tls = Tls {
        ca_cert: write("ca.crt", &ca_pem, 0o644),
        server_cert: write("server.crt", &server_cert.pem(), 0o644),
        // PostgreSQL refuses a key readable by others, and it must belong to the server user.
        server_key: write("server.key", &server_key.serialize_pem(), 0o600),
        // libpq wants client keys 0600 and owned by the user running the client (us).
        client_cert: write("client.crt", &client_pem, 0o644),
        client_key: write("client.key", &client_key_pem, 0o600),
        foreign_ca_cert: write("foreign-ca.crt", &foreign_ca_pem, 0o644),
        foreign_client_cert: write("foreign-client.crt", &foreign_client_pem, 0o644),
        foreign_client_key: write("foreign-client.key", &foreign_client_key_pem, 0o600),
    };
    give_to_server(&tls.server_key, owner);
    tls
}

fn new_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages.extend([
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ]);
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("self-sign the CA");
    (cert.pem(), Issuer::new(params, key))
}

/// Runs `cmd` with `input` on stdin (written from a thread so a large output cannot deadlock).
fn run_with_stdin(cmd: &mut Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_owned();
    let writer = thread::spawn(move || {
        // psql may exit early (ON_ERROR_STOP) and close the pipe: its status reports that.
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("wait for the child");
    let _ = writer.join();
    out
}

fn run_checked(cmd: &mut Command, what: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A command for a server binary: as `cqpg` through `runuser` when we are root.
fn server_command(program: &Path) -> Command {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", SERVER_USER, "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    // The test's working directory may be unreadable for the server user.
    cmd.current_dir("/");
    cmd
}

/// uid/gid of the server user when we are root (files it must own), else `None`.
fn server_owner() -> Option<(u32, u32)> {
    static OWNER: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *OWNER.get_or_init(|| {
        if !is_root() {
            return None;
        }
        let id = |flag: &str| -> u32 {
            let out = Command::new("id")
                .args([flag, SERVER_USER])
                .output()
                .expect("run id");
            assert!(
                out.status.success(),
                "user {SERVER_USER} does not exist: run `bash scripts/setup.sh` as root"
            );
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("numeric id")
        };
        Some((id("-u"), id("-g")))
    })
}

fn give_to_server(path: &Path, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {} to {SERVER_USER}: {e}", path.display()));
    }
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {} {mode:o}: {e}", path.display()));
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Single-quoted postgresql.conf string.
fn conf_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Failure messages may quote SQL or server errors: never show the password.
fn redact(s: &str) -> String {
    s.replace(roles::PASSWORD, "********")
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A lock file created atomically; a lock whose holder process is gone is taken over.
struct LockFile(PathBuf);

impl LockFile {
    fn acquire(path: PathBuf) -> LockFile {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let _ = write!(f, "{}", std::process::id());
                    return LockFile(path);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    if lock_is_stale(&path) {
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                }
                Err(e) => panic!("create lock {}: {e}", path.display()),
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {}",
                path.display()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

fn lock_is_stale(path: &Path) -> bool {
    let mut text = String::new();
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    if f.read_to_string(&mut text).is_err() {
        return false;
    }
    match text.trim().parse::<u32>() {
        Ok(pid) => !Path::new("/proc").join(pid.to_string()).exists(),
        // Holder between create and write, or it died right there: give it 10 s.
        Err(_) => f
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(10)),
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}
