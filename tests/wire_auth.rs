//! Authentication methods against real servers: trust, cleartext, md5,
//! SCRAM-SHA-256, and SCRAM-SHA-256-PLUS over TLS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use cq_source_postgresql::wire::{Config, Connection};
use support::pg::{roles, PgServer};

fn parse(s: &str) -> Config {
    Config::parse_with_env(s, &|k| (k == "USER").then(|| "nobody_os_user".to_string()))
        .expect("connection string parses")
}

#[tokio::test]
async fn matrix_auth_methods() {
    let pg = PgServer::start();
    let cases = [
        (roles::TRUST_USER, "none"),
        (roles::PLAIN_USER, "password"),
        (roles::MD5_USER, "md5"),
        (roles::SCRAM_USER, "SCRAM-SHA-256"),
    ];
    for (user, mechanism) in cases {
        for host in [
            "127.0.0.1".to_string(),
            pg.socket_dir().display().to_string(),
        ] {
            let s = format!(
                "host={host} port={} user={user} password={} dbname=postgres sslmode=disable",
                pg.port(),
                roles::PASSWORD
            );
            let mut conn = Connection::connect(&parse(&s))
                .await
                .unwrap_or_else(|e| panic!("{user} via {host}: {e}"));
            assert_eq!(conn.auth_mechanism(), mechanism, "{user} via {host}");
            let r = conn
                .simple_query("SELECT current_user")
                .await
                .expect("query");
            assert_eq!(r[0].rows[0][0].as_deref(), Some(user));
            conn.close().await;
        }
    }

    // Over TLS the server offers SCRAM-SHA-256-PLUS and the client binds to its certificate.
    let s = format!(
        "host=127.0.0.1 port={} user={} password={} dbname=postgres sslmode=require channel_binding=require",
        pg.port(),
        roles::SCRAM_USER,
        roles::PASSWORD
    );
    let mut conn = Connection::connect(&parse(&s))
        .await
        .expect("SCRAM-SHA-256-PLUS");
    assert!(conn.is_tls());
    assert_eq!(conn.auth_mechanism(), "SCRAM-SHA-256-PLUS");
    let r = conn
        .simple_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .await
        .expect("query");
    assert_eq!(r[0].rows[0][0].as_deref(), Some("t"));
    conn.close().await;

    // channel_binding=disable keeps plain SCRAM over TLS.
    let s = s.replace("channel_binding=require", "channel_binding=disable");
    let conn = Connection::connect(&parse(&s))
        .await
        .expect("SCRAM without binding");
    assert_eq!(conn.auth_mechanism(), "SCRAM-SHA-256");
    conn.close().await;

    // channel_binding=require without TLS cannot be met.
    let s = format!(
        "host=127.0.0.1 port={} user={} password={} dbname=postgres sslmode=disable channel_binding=require",
        pg.port(),
        roles::SCRAM_USER,
        roles::PASSWORD
    );
    let err = Connection::connect(&parse(&s))
        .await
        .expect_err("no binding without TLS");
    assert!(err.to_string().contains("channel_binding=require"), "{err}");

    // A password-requesting server and no password: a clear error, no hang.
    let s = format!(
        "host=127.0.0.1 port={} user={} dbname=postgres sslmode=disable passfile=/nonexistent",
        pg.port(),
        roles::SCRAM_USER
    );
    let err = Connection::connect(&parse(&s))
        .await
        .expect_err("no password");
    assert!(err.to_string().contains("requested a password"), "{err}");
}
