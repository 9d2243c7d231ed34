//! TLS per sslmode against a real server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use cq_source_postgresql::wire::{Config, Connection, Error};
use support::pg::{roles, PgServer};

fn parse(s: &str) -> Config {
    Config::parse_with_env(s, &|k| (k == "USER").then(|| "nobody_os_user".to_string()))
        .expect("connection string parses")
}

async fn ssl_in_use(conn: &mut Connection) -> bool {
    let r = conn
        .simple_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .await
        .expect("query");
    r[0].rows[0][0].as_deref() == Some("t")
}

#[tokio::test]
async fn tls_modes_certificates_and_client_certificate() {
    let pg = PgServer::start();
    let base = format!(
        "port={} user={} password={} dbname=postgres",
        pg.port(),
        roles::SCRAM_USER,
        roles::PASSWORD
    );
    let ca = pg.ca_cert().display().to_string();
    let foreign = pg.foreign_ca_cert().display().to_string();

    // require: encrypted, no verification.
    let mut conn = Connection::connect(&parse(&format!("{base} host=127.0.0.1 sslmode=require")))
        .await
        .expect("require connects");
    assert!(conn.is_tls() && ssl_in_use(&mut conn).await);
    conn.close().await;

    // prefer uses TLS over TCP when the server has it, and never on a unix socket.
    let mut conn = Connection::connect(&parse(&format!("{base} host=127.0.0.1 sslmode=prefer")))
        .await
        .expect("prefer connects");
    assert!(conn.is_tls() && ssl_in_use(&mut conn).await);
    conn.close().await;
    let s = format!("{base} host={} sslmode=prefer", pg.socket_dir().display());
    let mut conn = Connection::connect(&parse(&s))
        .await
        .expect("prefer over the socket");
    assert!(!conn.is_tls() && !ssl_in_use(&mut conn).await);
    conn.close().await;

    // verify-full with the right CA, by name and by IP (both in the certificate).
    for host in ["host=localhost hostaddr=127.0.0.1", "host=127.0.0.1"] {
        let s = format!("{base} {host} sslmode=verify-full sslrootcert={ca}");
        let mut conn = Connection::connect(&parse(&s))
            .await
            .unwrap_or_else(|e| panic!("verify-full {host}: {e}"));
        assert!(ssl_in_use(&mut conn).await);
        conn.close().await;
    }

    // verify-full with a host name the certificate does not carry.
    let s = format!(
        "{base} host=wrong.example hostaddr=127.0.0.1 sslmode=verify-full sslrootcert={ca}"
    );
    let err = Connection::connect(&parse(&s))
        .await
        .expect_err("wrong name");
    assert!(matches!(err, Error::Tls { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("certificate") && text.contains("not valid for name"),
        "{text}"
    );

    // verify-ca ignores the name but checks the chain.
    let s =
        format!("{base} host=wrong.example hostaddr=127.0.0.1 sslmode=verify-ca sslrootcert={ca}");
    Connection::connect(&parse(&s))
        .await
        .expect("verify-ca ignores the name")
        .close()
        .await;
    let s =
        format!("{base} host=localhost hostaddr=127.0.0.1 sslmode=verify-ca sslrootcert={foreign}");
    let err = Connection::connect(&parse(&s))
        .await
        .expect_err("foreign CA");
    assert!(matches!(err, Error::Tls { .. }), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");

    // require with a root certificate verifies the chain too (libpq's rule).
    let s = format!("{base} host=127.0.0.1 sslmode=require sslrootcert={foreign}");
    let err = Connection::connect(&parse(&s))
        .await
        .expect_err("require + foreign root");
    assert!(matches!(err, Error::Tls { .. }), "{err}");

    // verify-ca without any root certificate is refused before connecting.
    let s = format!("{base} host=127.0.0.1 sslmode=verify-ca");
    let err = Connection::connect(&parse(&s)).await.expect_err("no root");
    assert!(err.to_string().contains("sslrootcert"), "{err}");

    // Client certificate authentication (pg_hba `cert`): no password at all.
    let s = format!(
        "host=localhost hostaddr=127.0.0.1 port={} user={} dbname=postgres sslmode=verify-full \
         sslrootcert={ca} sslcert={} sslkey={}",
        pg.port(),
        roles::CERT_USER,
        pg.client_cert().display(),
        pg.client_key().display()
    );
    let mut conn = Connection::connect(&parse(&s))
        .await
        .expect("client certificate auth");
    let r = conn
        .simple_query("SELECT current_user")
        .await
        .expect("query");
    assert_eq!(r[0].rows[0][0].as_deref(), Some(roles::CERT_USER));
    assert_eq!(conn.auth_mechanism(), "none");
    conn.close().await;

    // Without the certificate, cert_user is refused by the server.
    let s = format!(
        "host=127.0.0.1 port={} user={} dbname=postgres sslmode=require",
        pg.port(),
        roles::CERT_USER
    );
    let err = Connection::connect(&parse(&s))
        .await
        .expect_err("no client certificate");
    assert!(err.code().is_some(), "{err}");
}
