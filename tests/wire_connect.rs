//! Wire client against real servers: connection strings, version, wrong password, refused and
//! silent hosts, unix sockets, environment and passfile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::collections::HashMap;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use cq_source_postgresql::wire::{Config, Connection, Error};
use support::free_port;
use support::pg::{roles, PgServer};

/// The environment a test sees: nothing from the machine except what it names.
fn env_of(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
    let mut m: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    m.entry("USER".into())
        .or_insert_with(|| "nobody_os_user".into());
    move |k| m.get(k).cloned()
}

fn parse(s: &str) -> Config {
    Config::parse_with_env(s, &env_of(&[])).expect("connection string parses")
}

async fn one_value(conn: &mut Connection, sql: &str) -> String {
    let r = conn.simple_query(sql).await.expect("query runs");
    r[0].rows[0][0].clone().expect("not null")
}

#[tokio::test]
async fn matrix_url_connects_and_reports_server_version() {
    let pg = PgServer::start();
    let url = pg.url(roles::SCRAM_USER, roles::PASSWORD, "postgres");
    let mut conn = Connection::connect(&parse(&url)).await.expect("connects");
    let expected: u32 = pg.psql("SHOW server_version_num").parse().expect("number");
    assert_eq!(conn.server_version_num(), expected);
    assert_eq!(conn.server_version_num() / 10000, pg.version_major());
    assert!(conn.process_id() > 0);
    assert_eq!(conn.parameter("client_encoding"), Some("UTF8"));
    // The session settings every connection sends, as the server sees them.
    assert_eq!(one_value(&mut conn, "SHOW TimeZone").await, "UTC");
    assert_eq!(one_value(&mut conn, "SHOW DateStyle").await, "ISO, MDY");
    assert_eq!(one_value(&mut conn, "SHOW IntervalStyle").await, "iso_8601");
    assert_eq!(one_value(&mut conn, "SHOW extra_float_digits").await, "3");
    assert_eq!(
        one_value(&mut conn, "SELECT current_user").await,
        roles::SCRAM_USER
    );
    conn.close().await;
}

#[tokio::test]
async fn dsn_connects_with_runtime_parameters() {
    let pg = PgServer::start();
    let dsn = format!(
        "user={} password='{}' host=127.0.0.1 port={} dbname=postgres sslmode=disable \
         application_name='wire dsn' search_path=pg_catalog",
        roles::SCRAM_USER,
        roles::PASSWORD,
        pg.port()
    );
    let mut conn = Connection::connect(&parse(&dsn)).await.expect("connects");
    assert_eq!(
        one_value(&mut conn, "SHOW application_name").await,
        "wire dsn"
    );
    assert_eq!(one_value(&mut conn, "SHOW search_path").await, "pg_catalog");
    conn.close().await;
}

#[tokio::test]
async fn matrix_wrong_password_says_authentication_failed() {
    let pg = PgServer::start();
    let wrong = "Not-The-Secret-42";
    for user in [roles::SCRAM_USER, roles::MD5_USER, roles::PLAIN_USER] {
        let url = pg.url(user, wrong, "postgres");
        let err = Connection::connect(&parse(&url))
            .await
            .expect_err("must fail");
        let text = err.to_string();
        assert_eq!(err.code(), Some("28P01"), "{user}: {text}");
        assert!(
            text.contains(&format!(
                "password authentication failed for user \"{user}\""
            )),
            "{text}"
        );
        assert!(
            !text.contains(wrong) && !text.contains(roles::PASSWORD),
            "{text}"
        );
        assert!(!format!("{err:?}").contains(wrong));
    }
}

#[tokio::test]
async fn refused_port_and_silent_listener() {
    // A port nobody listens on: bind, learn the port, close.
    let port = free_port();
    let cfg = parse(&format!(
        "host=127.0.0.1 port={port} user=u password=p sslmode=disable"
    ));
    let err = Connection::connect(&cfg).await.expect_err("refused");
    match &err {
        Error::Io { source, .. } => {
            assert_eq!(
                source.kind(),
                std::io::ErrorKind::ConnectionRefused,
                "{err}"
            )
        }
        other => panic!("expected an I/O error, got {other}"),
    }
    assert!(err.to_string().contains(&port.to_string()), "{err}");

    // Accepts TCP (the kernel completes the handshake) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    for sslmode in ["disable", "prefer"] {
        let cfg = parse(&format!(
            "host=127.0.0.1 port={port} user=u password=p sslmode={sslmode} connect_timeout=2"
        ));
        let start = Instant::now();
        let err = Connection::connect(&cfg).await.expect_err("times out");
        let took = start.elapsed();
        assert!(err.is_timeout(), "{err}");
        assert!(took >= Duration::from_millis(1900), "{took:?}");
        assert!(took <= Duration::from_secs(3), "{took:?}");
        assert!(err.to_string().contains("timeout"), "{err}");
    }
    drop(silent);
}

#[tokio::test]
async fn matrix_unix_socket_dsn_and_url() {
    let pg = PgServer::start();
    let dir = pg.socket_dir().display().to_string();
    let dsn = format!(
        "host={dir} port={} user={} password={} dbname=postgres",
        pg.port(),
        roles::SCRAM_USER,
        roles::PASSWORD
    );
    let url = format!(
        "postgres:///postgres?host={}&port={}&user={}&password={}",
        dir.replace('/', "%2F"),
        pg.port(),
        roles::SCRAM_USER,
        roles::PASSWORD
    );
    let url_plain_path = format!(
        "postgres://{}:{}@/postgres?host={dir}&port={}",
        roles::SCRAM_USER,
        roles::PASSWORD,
        pg.port()
    );
    for s in [dsn, url, url_plain_path] {
        let mut conn = Connection::connect(&parse(&s))
            .await
            .expect("connects over the socket");
        assert!(!conn.is_tls());
        // A unix-socket backend has no client address.
        let r = conn
            .simple_query("SELECT inet_client_addr()")
            .await
            .expect("query");
        assert_eq!(r[0].rows[0][0], None);
        assert_eq!(conn.server_version_num() / 10000, pg.version_major());
        conn.close().await;
    }
}

fn write_passfile(dir: &std::path::Path, contents: &str, mode: u32) -> std::path::PathBuf {
    let path = dir.join("pgpass");
    std::fs::write(&path, contents).expect("write passfile");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

#[tokio::test]
async fn environment_and_passfile_fill_missing_parts() {
    let pg = PgServer::start();
    let port = pg.port().to_string();
    // Everything from the environment.
    let env = env_of(&[
        ("PGHOST", "127.0.0.1".into()),
        ("PGPORT", port.clone()),
        ("PGUSER", roles::SCRAM_USER.into()),
        ("PGPASSWORD", roles::PASSWORD.into()),
        ("PGDATABASE", "postgres".into()),
        ("PGSSLMODE", "disable".into()),
        ("PGAPPNAME", "from-env".into()),
        ("PGOPTIONS", "-c work_mem=7MB".into()),
        ("PGCONNECT_TIMEOUT", "10".into()),
    ]);
    let cfg = Config::parse_with_env("", &env).expect("parses");
    let mut conn = Connection::connect(&cfg)
        .await
        .expect("connects from the environment");
    assert_eq!(
        one_value(&mut conn, "SHOW application_name").await,
        "from-env"
    );
    assert_eq!(one_value(&mut conn, "SHOW work_mem").await, "7MB");
    conn.close().await;

    // The string wins over the environment.
    let cfg = Config::parse_with_env("application_name=from-string", &env).expect("parses");
    let mut conn = Connection::connect(&cfg).await.expect("connects");
    assert_eq!(
        one_value(&mut conn, "SHOW application_name").await,
        "from-string"
    );
    conn.close().await;

    // The password from a passfile: explicit key, PGPASSFILE, and ~/.pgpass through HOME.
    let tmp = tempfile::tempdir().expect("tempdir");
    let line = format!(
        "# test\nother:*:*:*:wrong\n127.0.0.1:{port}:postgres:{}:{}\n",
        roles::SCRAM_USER,
        roles::PASSWORD.replace('\\', "\\\\").replace(':', "\\:")
    );
    let passfile = write_passfile(tmp.path(), &line, 0o600);
    let base = format!(
        "host=127.0.0.1 port={port} user={} dbname=postgres sslmode=disable",
        roles::SCRAM_USER
    );
    let explicit = format!("{base} passfile={}", passfile.display());
    let cfg = Config::parse_with_env(&explicit, &env_of(&[])).expect("parses");
    Connection::connect(&cfg)
        .await
        .expect("passfile key")
        .close()
        .await;
    let cfg = Config::parse_with_env(
        &base,
        &env_of(&[("PGPASSFILE", passfile.display().to_string())]),
    )
    .expect("parses");
    Connection::connect(&cfg)
        .await
        .expect("PGPASSFILE")
        .close()
        .await;
    std::fs::copy(&passfile, tmp.path().join(".pgpass")).expect("copy");
    std::fs::set_permissions(
        tmp.path().join(".pgpass"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    let cfg = Config::parse_with_env(
        &base,
        &env_of(&[("HOME", tmp.path().display().to_string())]),
    )
    .expect("parses");
    Connection::connect(&cfg)
        .await
        .expect("~/.pgpass")
        .close()
        .await;

    // libpq ignores a passfile others can read.
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let cfg = Config::parse_with_env(&explicit, &env_of(&[])).expect("parses");
    let err = Connection::connect(&cfg)
        .await
        .expect_err("world-readable passfile is ignored");
    assert!(err.to_string().contains("requested a password"), "{err}");
}

#[tokio::test]
async fn multiple_hosts_try_the_next_one() {
    let pg = PgServer::start();
    let dead = free_port();
    let url = format!(
        "postgres://{}:{}@127.0.0.1:{dead},127.0.0.1:{}/postgres?sslmode=disable&target_session_attrs=read-write",
        roles::SCRAM_USER,
        "Pa55-w0rd%21secret",
        pg.port()
    );
    let conn = Connection::connect(&parse(&url))
        .await
        .expect("second host");
    assert_eq!(conn.server_version_num() / 10000, pg.version_major());
    conn.close().await;
}
