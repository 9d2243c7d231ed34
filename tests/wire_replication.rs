//! CopyBoth: a replication connection, a temporary pgoutput slot, START_REPLICATION, XLogData and
//! keepalives, standby status updates, CopyDone — with the read future raced against a timer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::time::{Duration, Instant};

use cq_source_postgresql::wire::{pg_clock_now, Config, Connection, Lsn, ReplicationMessage};
use support::pg::{roles, PgServer};

#[tokio::test]
async fn replication_stream_xlogdata_keepalive_status_and_copy_done() {
    let pg = PgServer::start();
    pg.psql(
        "CREATE TABLE r (id int PRIMARY KEY, v text); CREATE PUBLICATION p FOR TABLE r; \
         GRANT SELECT ON r TO scram_user;",
    );
    let url = pg.url(roles::SCRAM_USER, roles::PASSWORD, "postgres");
    let cfg = Config::parse_with_env(&url, &|_| None).expect("parses");
    let mut conn = Connection::connect_replication(&cfg)
        .await
        .expect("replication connection");
    let ident = conn
        .simple_query("IDENTIFY_SYSTEM")
        .await
        .expect("IDENTIFY_SYSTEM");
    assert_eq!(ident[0].columns[0], "systemid");
    let slot = conn
        .simple_query(
            "CREATE_REPLICATION_SLOT wire_test TEMPORARY LOGICAL pgoutput NOEXPORT_SNAPSHOT",
        )
        .await
        .expect("slot");
    assert_eq!(slot[0].rows[0][0].as_deref(), Some("wire_test"));
    pg.psql("INSERT INTO r VALUES (1, 'one')");

    let mut stream = conn
        .copy_both("START_REPLICATION SLOT wire_test LOGICAL 0/0 (proto_version '1', publication_names 'p')")
        .await
        .expect("streaming starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let mut last_lsn = Lsn::ZERO;
    let mut timer_fired = 0;
    while !seen.contains(&b'C') {
        assert!(
            Instant::now() < deadline,
            "no commit within 30 s; saw {seen:?}"
        );
        tokio::select! {
            msg = stream.next_message() => match msg.expect("message").expect("stream open") {
                ReplicationMessage::XLogData { wal_start, wal_end, data, .. } => {
                    assert!(wal_end >= wal_start);
                    last_lsn = last_lsn.max(wal_end);
                    seen.push(data[0]);
                }
                ReplicationMessage::PrimaryKeepalive { wal_end, .. } => {
                    last_lsn = last_lsn.max(wal_end);
                }
            },
            // The read future is dropped whenever the timer wins: it must be cancel-safe.
            _ = tokio::time::sleep(Duration::from_millis(20)) => {
                timer_fired += 1;
            }
        }
        if timer_fired % 10 == 1 {
            stream
                .send_status_update(last_lsn, last_lsn, last_lsn, pg_clock_now(), false)
                .await
                .expect("status update");
        }
    }
    // pgoutput: Begin, Relation, Insert, Commit.
    assert_eq!(seen, vec![b'B', b'R', b'I', b'C'], "{seen:?}");

    // A keepalive with reply requested comes back when we ask for one.
    stream
        .send_status_update(last_lsn, last_lsn, last_lsn, pg_clock_now(), true)
        .await
        .expect("status update");
    loop {
        match stream.next_message().await.expect("message").expect("open") {
            ReplicationMessage::PrimaryKeepalive { .. } => break,
            ReplicationMessage::XLogData { .. } => {}
        }
    }

    stream.copy_done().await.expect("CopyDone");
    while stream.next_message().await.expect("drain").is_some() {}
    // Back to a usable replication connection.
    let r = conn
        .simple_query("IDENTIFY_SYSTEM")
        .await
        .expect("usable after CopyDone");
    assert_eq!(r[0].rows.len(), 1);
    let pos: String = pg.psql("SELECT confirmed_flush_lsn IS NOT NULL FROM pg_replication_slots WHERE slot_name = 'wire_test'");
    assert_eq!(pos, "t");
    conn.close().await;
}
