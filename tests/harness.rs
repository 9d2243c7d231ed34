//! Proves the test harness (tests/support/pg.rs): every role logs in with its own method and only
//! with it, the TLS files work for `verify-full` and `cert` auth, the server settings are
//! applied, and servers go away on drop, also after a panic. Tests with `matrix` in their name
//! run on every PostgreSQL major (scripts/test.sh).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::net::TcpStream;
use std::path::Path;

use support::pg::{psql_command, roles, PgOptions, PgServer};

const WRONG: &str = "not-the-password";

/// One psql login over TCP to 127.0.0.1 (never prompting): `Ok(stdout)` or `Err(stderr)`.
/// `env` is applied last, so it can override PGHOST or PGSSLMODE (default `disable`).
fn login(
    pg: &PgServer,
    user: &str,
    password: Option<&str>,
    env: &[(&str, &str)],
    sql: &str,
) -> Result<String, String> {
    login_db(pg, user, password, env, "dbname=postgres", sql)
}

fn login_db(
    pg: &PgServer,
    user: &str,
    password: Option<&str>,
    env: &[(&str, &str)],
    conninfo: &str,
    sql: &str,
) -> Result<String, String> {
    let mut cmd = psql_command();
    cmd.args([
        "-X",
        "-At",
        "-w",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        sql,
        "-d",
        conninfo,
    ])
    .env("PGHOST", "127.0.0.1")
    .env("PGPORT", pg.port().to_string())
    .env("PGUSER", user)
    .env("PGSSLMODE", "disable");
    if let Some(pw) = password {
        cmd.env("PGPASSWORD", pw);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run psql");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[track_caller]
fn expect_ok(what: &str, r: Result<String, String>) -> String {
    r.unwrap_or_else(|e| panic!("{what}: expected success, got: {e}"))
}

#[track_caller]
fn expect_err(what: &str, r: Result<String, String>, needle: &str) {
    match r {
        Ok(out) => panic!("{what}: expected a failure, got success: {out}"),
        // Case-insensitive: wording and case differ between PostgreSQL majors.
        Err(e) => assert!(
            e.to_lowercase().contains(&needle.to_lowercase()),
            "{what}: expected {needle:?} in: {e}"
        ),
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn matrix_password_roles_use_their_method() {
    let pg = PgServer::start();
    let num: u32 = pg.psql("SHOW server_version_num").parse().unwrap();
    assert_eq!(num / 10000, pg.version_major(), "server_version_num {num}");

    // The stored format decides what md5/scram authentication can do.
    let stored = pg.psql(
        "SELECT rolname || '=' || CASE WHEN rolpassword IS NULL THEN 'none' \
           WHEN rolpassword LIKE 'md5%' THEN 'md5' \
           WHEN rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'scram' ELSE 'other' END \
         FROM pg_authid WHERE rolname IN \
           ('postgres','scram_user','md5_user','plain_user','trust_user','cert_user') \
         ORDER BY rolname",
    );
    assert_eq!(
        stored.lines().collect::<Vec<_>>(),
        [
            "cert_user=none",
            "md5_user=md5",
            "plain_user=scram",
            "postgres=scram",
            "scram_user=scram",
            "trust_user=none",
        ]
    );
    let hba = pg.psql(
        "SELECT DISTINCT array_to_string(user_name, ',') || '=' || auth_method \
         FROM pg_hba_file_rules WHERE type <> 'local' ORDER BY 1",
    );
    assert_eq!(
        hba.lines().collect::<Vec<_>>(),
        [
            "all=scram-sha-256",
            "cert_user=cert",
            "md5_user=md5",
            "plain_user=password",
            "trust_user=trust",
        ]
    );

    for user in [
        roles::SUPERUSER,
        roles::SCRAM_USER,
        roles::MD5_USER,
        roles::PLAIN_USER,
    ] {
        let who = login(&pg, user, Some(roles::PASSWORD), &[], "SELECT current_user");
        assert_eq!(expect_ok(user, who), user);
        expect_err(
            &format!("{user} with a wrong password"),
            login(&pg, user, Some(WRONG), &[], "SELECT 1"),
            "password authentication failed",
        );
        expect_err(
            &format!("{user} without a password"),
            login(&pg, user, None, &[], "SELECT 1"),
            "no password supplied",
        );
    }
    let who = login(&pg, roles::TRUST_USER, None, &[], "SELECT current_user");
    assert_eq!(expect_ok("trust_user", who), roles::TRUST_USER);
    // cert_user has no password: without TLS it falls to scram and cannot log in.
    expect_err(
        "cert_user without TLS",
        login(
            &pg,
            roles::CERT_USER,
            Some(roles::PASSWORD),
            &[],
            "SELECT 1",
        ),
        "password authentication failed for user \"cert_user\"",
    );
}

#[test]
fn matrix_tls_verify_full_and_client_certificates() {
    let pg = PgServer::start();
    let ca = path(pg.ca_cert());
    let verify_full = [
        ("PGHOST", "localhost"),
        ("PGSSLMODE", "verify-full"),
        ("PGSSLROOTCERT", ca),
    ];
    let ssl_in_use =
        "SELECT current_user || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

    let with_cert = [
        verify_full.as_slice(),
        &[
            ("PGSSLCERT", path(pg.client_cert())),
            ("PGSSLKEY", path(pg.client_key())),
        ],
    ]
    .concat();
    let out = login(&pg, roles::CERT_USER, None, &with_cert, ssl_in_use);
    assert_eq!(
        expect_ok("cert_user with its certificate", out),
        "cert_user true"
    );

    // The server certificate names 127.0.0.1 too.
    let mut by_ip = with_cert.clone();
    by_ip.push(("PGHOST", "127.0.0.1"));
    let out = login(&pg, roles::CERT_USER, None, &by_ip, ssl_in_use);
    assert_eq!(expect_ok("cert_user via 127.0.0.1", out), "cert_user true");

    // TLS without a client certificate: cert auth fails.
    let no_cert = [
        verify_full.as_slice(),
        &[("PGSSLCERT", "/nonexistent"), ("PGSSLKEY", "/nonexistent")],
    ]
    .concat();
    expect_err(
        "cert_user without a certificate",
        login(&pg, roles::CERT_USER, None, &no_cert, "SELECT 1"),
        "client certificate",
    );
    // A certificate for the same CN from another CA is refused during the handshake.
    let foreign_cert = [
        verify_full.as_slice(),
        &[
            ("PGSSLCERT", path(pg.foreign_client_cert())),
            ("PGSSLKEY", path(pg.foreign_client_key())),
        ],
    ]
    .concat();
    expect_err(
        "cert_user with a foreign certificate",
        login(&pg, roles::CERT_USER, None, &foreign_cert, "SELECT 1"),
        "unknown ca",
    );
    // The client refuses a server certificate from a CA it was not given.
    let foreign_root = [
        ("PGHOST", "localhost"),
        ("PGSSLMODE", "verify-full"),
        ("PGSSLROOTCERT", path(pg.foreign_ca_cert())),
    ];
    expect_err(
        "verify-full against the foreign CA",
        login(
            &pg,
            roles::SCRAM_USER,
            Some(roles::PASSWORD),
            &foreign_root,
            "SELECT 1",
        ),
        "certificate verify failed",
    );
    // Password users work over TLS as well.
    let out = login(
        &pg,
        roles::SCRAM_USER,
        Some(roles::PASSWORD),
        &no_cert,
        ssl_in_use,
    );
    assert_eq!(expect_ok("scram_user over TLS", out), "scram_user true");
}

#[test]
fn matrix_server_settings_and_replication() {
    let pg = PgServer::start();
    let settings = pg.psql(
        "SELECT name || '=' || setting FROM pg_settings WHERE name IN \
         ('wal_level','max_replication_slots','max_wal_senders','ssl','password_encryption', \
          'listen_addresses') ORDER BY name",
    );
    assert_eq!(
        settings.lines().collect::<Vec<_>>(),
        [
            "listen_addresses=127.0.0.1",
            "max_replication_slots=20",
            "max_wal_senders=20",
            "password_encryption=scram-sha-256",
            "ssl=on",
            "wal_level=logical",
        ]
    );
    assert_eq!(pg.psql("SHOW wal_level"), "logical");

    // Logical replication connections: scram_user has REPLICATION, md5_user does not.
    let out = login_db(
        &pg,
        roles::SCRAM_USER,
        Some(roles::PASSWORD),
        &[],
        "dbname=postgres replication=database",
        "IDENTIFY_SYSTEM",
    );
    let system_id = pg.psql("SELECT system_identifier FROM pg_control_system()");
    assert!(
        expect_ok("IDENTIFY_SYSTEM as scram_user", out).starts_with(&format!("{system_id}|")),
        "IDENTIFY_SYSTEM reports this cluster"
    );
    expect_err(
        "replication as md5_user",
        login_db(
            &pg,
            roles::MD5_USER,
            Some(roles::PASSWORD),
            &[],
            "dbname=postgres replication=database",
            "IDENTIFY_SYSTEM",
        ),
        "replication",
    );
}

#[test]
fn unix_socket_logins_use_the_same_rules() {
    let pg = PgServer::start();
    let sock = path(pg.socket_dir());
    let env = [("PGHOST", sock)];
    for user in [roles::SUPERUSER, roles::SCRAM_USER, roles::MD5_USER] {
        let who = login(
            &pg,
            user,
            Some(roles::PASSWORD),
            &env,
            "SELECT current_user",
        );
        assert_eq!(expect_ok(user, who), user);
        expect_err(
            &format!("{user} over the socket with a wrong password"),
            login(&pg, user, Some(WRONG), &env, "SELECT 1"),
            "password authentication failed",
        );
    }
    expect_err(
        "cert_user over the socket",
        login(&pg, roles::CERT_USER, None, &env, "SELECT 1"),
        "no password supplied",
    );
}

#[test]
fn url_is_a_working_connection_string() {
    let pg = PgServer::start();
    let url = pg.url(roles::SCRAM_USER, roles::PASSWORD, "postgres");
    assert!(url.starts_with("postgres://scram_user:"));
    assert!(url.ends_with(&format!(
        "@127.0.0.1:{}/postgres?sslmode=disable",
        pg.port()
    )));
    let out = psql_command()
        .args(["-X", "-At", "-w", "-c", "SELECT current_user", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "scram_user");
    assert_eq!(
        pg.url(roles::TRUST_USER, "", "my db"),
        format!(
            "postgres://trust_user@127.0.0.1:{}/my%20db?sslmode=disable",
            pg.port()
        )
    );
}

#[test]
fn psql_runs_scripts_and_reports_errors() {
    let pg = PgServer::start();
    pg.psql("CREATE DATABASE other; CREATE TABLE t (a int)");
    pg.psql_db(
        "other",
        "CREATE TABLE o (x text); INSERT INTO o VALUES ('a'), ('b')",
    );
    assert_eq!(
        pg.psql_db("other", "SELECT string_agg(x, ',' ORDER BY x) FROM o"),
        "a,b"
    );
    assert_eq!(pg.psql("SELECT 1; SELECT 2"), "1\n2");

    let err = std::panic::catch_unwind(|| pg.psql("SELECT * FROM missing_table"))
        .expect_err("psql must panic on an SQL error");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("missing_table"), "panic message: {msg}");
    // The password never appears in failure messages.
    let err = std::panic::catch_unwind(|| pg.psql(&format!("SELECT '{}'::int", roles::PASSWORD)))
        .expect_err("bad cast");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(!msg.contains(roles::PASSWORD), "password leaked: {msg}");
}

#[test]
fn server_stops_and_cleans_up_on_drop() {
    let pg = PgServer::start();
    let port = pg.port();
    let data = pg.data_dir().to_path_buf();
    let sock = pg.socket_dir().to_path_buf();
    TcpStream::connect(("127.0.0.1", port)).expect("server listens");
    drop(pg);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still open after drop"
    );
    assert!(!data.exists(), "{} still exists", data.display());
    assert!(!sock.exists(), "{} still exists", sock.display());
}

#[test]
fn server_stops_when_the_test_panics() {
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let pg = PgServer::start();
        tx.send((pg.port(), pg.data_dir().to_path_buf())).unwrap();
        panic!("test failure while the server runs");
    })
    .join();
    assert!(result.is_err());
    let (port, data) = rx.recv().unwrap();
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still open after a panic"
    );
    assert!(!data.exists());
}

#[test]
fn restart_and_stop_keep_the_data() {
    let mut pg = PgServer::start();
    pg.psql("CREATE TABLE kept AS SELECT 42 AS v; ALTER SYSTEM SET work_mem = '5MB'");
    let pid_before = pg.psql("SELECT pg_backend_pid()");
    pg.restart();
    assert!(pg.is_running());
    assert_eq!(pg.psql("SELECT v FROM kept"), "42");
    assert_eq!(
        pg.psql("SHOW work_mem"),
        "5MB",
        "ALTER SYSTEM applies after restart"
    );
    assert_ne!(pg.psql("SELECT pg_backend_pid()"), pid_before);
    pg.stop();
    assert!(!pg.is_running());
    assert!(TcpStream::connect(("127.0.0.1", pg.port())).is_err());
    assert!(
        pg.data_dir().join("PG_VERSION").exists(),
        "stop keeps the data dir"
    );
    pg.restart();
    assert_eq!(pg.psql("SELECT v FROM kept"), "42");
    // The log keeps every start.
    let log = std::fs::read_to_string(pg.log_file()).unwrap();
    assert_eq!(
        log.matches("database system is ready to accept connections")
            .count(),
        3,
        "{log}"
    );
}

#[test]
fn options_choose_wal_level_extra_conf_and_version() {
    let pg = PgServer::start_with(PgOptions {
        version: Some(17),
        wal_level: "replica",
        extra_conf: vec!["work_mem = '7MB'".into(), "max_wal_senders = 3".into()],
    });
    assert_eq!(pg.version_major(), 17);
    assert_eq!(pg.psql("SHOW wal_level"), "replica");
    assert_eq!(pg.psql("SHOW work_mem"), "7MB");
    assert_eq!(pg.psql("SHOW max_wal_senders"), "3", "extra_conf wins");
    assert!(pg.psql("SHOW server_version").starts_with("17."));

    let minimal = PgServer::start_with(PgOptions {
        wal_level: "minimal",
        ..PgOptions::default()
    });
    assert_eq!(minimal.psql("SHOW wal_level"), "minimal");
}

#[test]
fn parallel_servers_are_independent() {
    let a = PgServer::start();
    let b = PgServer::start();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.socket_dir(), b.socket_dir());
    a.psql("CREATE TABLE only_in_a (x int)");
    assert_eq!(
        b.psql("SELECT count(*) FROM pg_class WHERE relname = 'only_in_a'"),
        "0"
    );
    let id_a = a.psql("SELECT system_identifier FROM pg_control_system()");
    assert!(!id_a.is_empty());
}
