//! The real process environment fills what the connection string leaves out. Alone in its binary: it sets process-wide variables.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use cq_source_postgresql::wire::{Config, Connection};
use support::pg::{roles, PgServer};

#[tokio::test]
async fn process_environment_fills_missing_parts() {
    let pg = PgServer::start();
    let vars = [
        ("PGHOST", "127.0.0.1".to_string()),
        ("PGPORT", pg.port().to_string()),
        ("PGUSER", roles::SCRAM_USER.to_string()),
        ("PGPASSWORD", roles::PASSWORD.to_string()),
        ("PGDATABASE", "postgres".to_string()),
        ("PGSSLMODE", "require".to_string()),
        ("PGAPPNAME", "process-env".to_string()),
    ];
    for (k, v) in &vars {
        std::env::set_var(k, v);
    }
    let cfg = Config::parse("").expect("parses");
    assert!(!cfg.redacted().contains(roles::PASSWORD));
    let mut conn = Connection::connect(&cfg)
        .await
        .expect("connects from PG* variables");
    assert!(conn.is_tls());
    let r = conn
        .simple_query("SHOW application_name")
        .await
        .expect("query");
    assert_eq!(r[0].rows[0][0].as_deref(), Some("process-env"));
    conn.close().await;
    for (k, _) in &vars {
        std::env::remove_var(k);
    }
}
