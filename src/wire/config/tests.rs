//! Unit tests of connection-string parsing (pure: the environment is a map).

use super::*;
use std::collections::HashMap;

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

fn parse(s: &str) -> Config {
    Config::parse_with_env(s, &env(&[("USER", "osuser")])).unwrap()
}

fn parse_err(s: &str) -> String {
    Config::parse_with_env(s, &env(&[("USER", "osuser")]))
        .unwrap_err()
        .to_string()
}

#[test]
fn url_basic_with_percent_decoding() {
    let c =
        parse("postgres://us%40er:p%3Ass@127.0.0.1:5433/my%20db?sslmode=disable&search_path=a,b");
    assert_eq!(c.user(), "us@er");
    assert_eq!(c.password(), Some("p:ss"));
    assert_eq!(c.dbname(), "my db");
    assert_eq!(c.ssl_mode, SslMode::Disable);
    assert_eq!(
        c.hosts,
        vec![HostSpec {
            host: Host::Tcp("127.0.0.1".into()),
            hostaddr: None,
            port: 5433
        }]
    );
    assert_eq!(c.runtime_params, vec![("search_path".into(), "a,b".into())]);
}

#[test]
fn url_ipv6_multi_host_and_socket() {
    let c = parse("postgresql://[::1]:5433,db2,[fe80::2]/x?target_session_attrs=read-write");
    assert_eq!(c.hosts.len(), 3);
    assert_eq!(c.hosts[0].host, Host::Tcp("::1".into()));
    assert_eq!(c.hosts[0].port, 5433);
    assert_eq!(c.hosts[1].host, Host::Tcp("db2".into()));
    assert_eq!(c.hosts[1].port, 5432);
    assert_eq!(c.hosts[2].host, Host::Tcp("fe80::2".into()));
    assert_eq!(c.target_session_attrs, TargetSessionAttrs::ReadWrite);
    let c = parse("postgres:///db?host=/tmp/sock&port=7777");
    assert_eq!(c.hosts[0].host, Host::Unix("/tmp/sock".into()));
    assert_eq!(c.hosts[0].port, 7777);
    assert_eq!(c.dbname(), "db");
    assert_eq!(c.user(), "osuser");
    let c = parse("postgres://%2Ftmp%2Fs/db");
    assert_eq!(c.hosts[0].host, Host::Unix("/tmp/s".into()));
}

#[test]
fn dsn_quotes_and_escapes() {
    let c = parse(
        r"host = h1,h2 port=1,2 user='a b' password='it\'s \\ x' dbname=d\ e options='-c work_mem=4MB'",
    );
    assert_eq!(c.user(), "a b");
    assert_eq!(c.password(), Some(r"it's \ x"));
    assert_eq!(c.dbname(), "d e");
    assert_eq!(c.options.as_deref(), Some("-c work_mem=4MB"));
    assert_eq!(c.hosts[1].port, 2);
}

#[test]
fn defaults_like_libpq() {
    let c = parse("");
    assert_eq!(c.user(), "osuser");
    assert_eq!(c.dbname(), "osuser");
    assert_eq!(c.ssl_mode, SslMode::Prefer);
    assert_eq!(c.hosts.len(), 2);
    assert_eq!(c.hosts[0].host, Host::Unix("/var/run/postgresql".into()));
    assert_eq!(c.hosts[0].port, 5432);
}

#[test]
fn env_fills_missing_parts_only() {
    let e = env(&[
        ("PGHOST", "envhost"),
        ("PGPORT", "6000"),
        ("PGUSER", "envuser"),
        ("PGDATABASE", "envdb"),
        ("PGPASSWORD", "envpw"),
        ("PGSSLMODE", "require"),
        ("PGAPPNAME", "app"),
        ("PGCONNECT_TIMEOUT", "1"),
        ("PGOPTIONS", "-c x=y"),
        ("HOME", "/home/u"),
    ]);
    let c = Config::parse_with_env("user=given", &e).unwrap();
    assert_eq!(c.user(), "given");
    assert_eq!(c.dbname(), "envdb");
    assert_eq!(c.password(), Some("envpw"));
    assert_eq!(c.hosts[0].host, Host::Tcp("envhost".into()));
    assert_eq!(c.hosts[0].port, 6000);
    assert_eq!(c.ssl_mode, SslMode::Require);
    assert_eq!(c.application_name(), Some("app"));
    assert_eq!(c.connect_timeout, Some(Duration::from_secs(2)));
    assert_eq!(c.options.as_deref(), Some("-c x=y"));
    assert_eq!(c.passfile, Some(PathBuf::from("/home/u/.pgpass")));
}

#[test]
fn errors_name_the_part_and_never_the_password() {
    assert!(parse_err("host=x port=abc").contains("\"abc\""));
    assert!(parse_err("host=x sslmode=bogus").contains("sslmode \"bogus\""));
    assert!(parse_err("host=x user").contains("\"user\""));
    let e = parse_err("password='secret");
    assert!(e.contains("unterminated") && !e.contains("secret"), "{e}");
    let e = parse_err("postgres://u:sec%zzret@h/db");
    assert!(e.contains("password") && !e.contains("sec"), "{e}");
    assert!(parse_err("postgres://[::1/db").contains("]"));
    assert!(parse_err("postgres://h/db?novalue").contains("novalue"));
    // Fragments of a sloppy password are never echoed.
    let e = parse_err("host=h password=two words");
    assert!(
        e.contains("following the value of \"password\"") && !e.contains("words"),
        "{e}"
    );
    let e = parse_err("postgres://u:Zq?Xw@Vy@h/db");
    assert!(
        !e.contains("Zq") && !e.contains("Xw") && !e.contains("Vy"),
        "{e}"
    );
    assert!(parse_err("host=a,b port=1,2,3").contains("3 port"));
    assert!(parse_err("sslrootcert=system sslmode=require").contains("weak sslmode"));
}

#[test]
fn password_masked_in_debug_and_redacted() {
    let c = parse("postgres://u:TopSecret@h/db");
    assert!(!format!("{c:?}").contains("TopSecret"));
    let r = c.redacted();
    assert!(
        !r.contains("TopSecret") && r.contains("password=********"),
        "{r}"
    );
}

#[test]
fn passfile_matching_and_escapes() {
    let f = "# comment\nother:*:*:*:nope\nh\\:x:5432:db:u:pa\\:ss\\\\w\n*:*:*:u:fallback\n";
    assert_eq!(
        passfile_lookup(f, "h:x", 5432, "db", "u").as_deref(),
        Some("pa:ss\\w")
    );
    assert_eq!(
        passfile_lookup(f, "zzz", 1, "any", "u").as_deref(),
        Some("fallback")
    );
    assert_eq!(passfile_lookup(f, "zzz", 1, "any", "v"), None);
}

#[test]
fn ignored_and_runtime_keys() {
    let c = parse("host=h keepalives=1 pool_max_conns=4 search_path=s statement_timeout=5s");
    assert_eq!(
        c.runtime_params,
        vec![
            ("search_path".to_string(), "s".to_string()),
            ("statement_timeout".to_string(), "5s".to_string())
        ]
    );
    assert_eq!(c.keepalive, Some(Keepalive::default()));
    assert_eq!(parse("host=h keepalives=0").keepalive, None);
    let c = parse("hostaddr=127.0.0.1 host=localhost sslrootcert=system");
    assert_eq!(c.ssl_mode, SslMode::VerifyFull);
    assert_eq!(c.hosts[0].hostaddr, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(c.ssl_root_cert, Some(RootCert::System));
}
