//! Extended query, COPY streams, errors, cancel and lost connections against a real server
//! (issue 2, must-show 9 and the error contract).

mod support;

use std::time::Duration;

use cq_source_postgresql::wire::{Config, Connection, Param};
use support::pg::{roles, PgServer};

fn parse(s: &str) -> Config {
    Config::parse_with_env(s, &|k| (k == "USER").then(|| "nobody_os_user".to_string()))
        .expect("connection string parses")
}

async fn connect(pg: &PgServer) -> Connection {
    let url = pg.url(roles::SCRAM_USER, roles::PASSWORD, "postgres");
    Connection::connect(&parse(&url)).await.expect("connects")
}

#[tokio::test]
async fn extended_query_binary_params_round_trip() {
    let pg = PgServer::start();
    let mut conn = connect(&pg).await;
    let bytes = [0u8, 1, 2, 255, b'\\', 0];
    let r = conn
        .query(
            "SELECT $1::int4, $2::int8, $3::bool, $4::text, $5::bytea, $6::int4 IS NULL, $4::text || 'é'",
            &[
                Param::I32(-2147483648),
                Param::I64(i64::MAX),
                Param::Bool(true),
                Param::Text("héllo 'x'"),
                Param::Bytes(&bytes),
                Param::Null,
            ],
        )
        .await
        .expect("query runs");
    assert_eq!(r.tag, "SELECT 1");
    assert_eq!(r.columns.len(), 7);
    assert!(r.columns.iter().all(|c| c.format == 1));
    assert_eq!(r.columns[0].type_oid, 23);
    let row = &r.rows[0];
    assert_eq!(row.get_i32(0).expect("int4"), Some(-2147483648));
    assert_eq!(row.get_i64(1).expect("int8"), Some(i64::MAX));
    assert_eq!(row.get_bool(2).expect("bool"), Some(true));
    assert_eq!(row.get_str(3).expect("text"), Some("héllo 'x'"));
    assert_eq!(row.get(4), Some(&bytes[..]));
    assert_eq!(row.get_bool(5).expect("bool"), Some(true));
    assert_eq!(row.get_str(6).expect("text"), Some("héllo 'x'é"));

    // Rows and NULLs from a table, compared with psql's view of the same data.
    pg.psql("CREATE TABLE t (id int8 PRIMARY KEY, name text); INSERT INTO t SELECT g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'n' || g END FROM generate_series(1, 100) g; GRANT SELECT ON t TO scram_user;");
    let r = conn
        .query(
            "SELECT id, name FROM t WHERE id > $1 ORDER BY id",
            &[Param::I64(90)],
        )
        .await
        .expect("query runs");
    assert_eq!(r.rows.len(), 10);
    let expected = pg.psql("SELECT coalesce(name, '<null>') FROM t WHERE id > 90 ORDER BY id");
    let got: Vec<String> = r
        .rows
        .iter()
        .map(|row| {
            row.get_str(1)
                .expect("utf8")
                .unwrap_or("<null>")
                .to_string()
        })
        .collect();
    assert_eq!(got.join("\n"), expected);
    assert!(r.rows[2].is_null(1)); // id 93

    // A statement without rows.
    let r = conn
        .query("SET LOCAL work_mem = '8MB'", &[])
        .await
        .expect("runs");
    assert_eq!(r.tag, "SET");
    assert!(r.rows.is_empty());
}

#[tokio::test]
async fn server_errors_keep_every_field_and_the_connection() {
    let pg = PgServer::start();
    pg.psql("CREATE TABLE u (id int PRIMARY KEY); GRANT ALL ON u TO scram_user; INSERT INTO u VALUES (1);");
    let mut conn = connect(&pg).await;
    let err = conn
        .query("SELECT 1/$1", &[Param::I32(0)])
        .await
        .expect_err("division by zero");
    assert_eq!(err.code(), Some("22012"));
    let err = conn
        .simple_query("INSERT INTO u VALUES (1)")
        .await
        .expect_err("duplicate");
    let e = err.server_error().expect("server error");
    assert_eq!(e.code, "23505");
    assert_eq!(e.severity, "ERROR");
    assert_eq!(e.table.as_deref(), Some("u"));
    assert_eq!(e.schema.as_deref(), Some("public"));
    assert_eq!(e.constraint.as_deref(), Some("u_pkey"));
    assert!(e.detail.as_deref().unwrap_or("").contains("already exists"));
    assert!(e.file.is_some() && e.line.is_some() && e.routine.is_some());
    let err = conn
        .simple_query("SELECT nosuchcolumn FROM u")
        .await
        .expect_err("undefined column");
    assert_eq!(err.code(), Some("42703"));
    assert_eq!(err.server_error().and_then(|e| e.position), Some(8));
    // Still usable after errors, in both protocols; several statements in one simple query.
    let r = conn
        .simple_query("SELECT 1; SELECT 'a', NULL")
        .await
        .expect("usable");
    assert_eq!(r.len(), 2);
    assert_eq!(r[1].rows, vec![vec![Some("a".to_string()), None]]);
    assert_eq!(
        conn.query("SELECT 2", &[])
            .await
            .expect("usable")
            .rows
            .len(),
        1
    );
    // An empty query is not an error.
    assert!(conn.simple_query("").await.expect("empty").is_empty());
}

#[tokio::test]
async fn copy_out_frames_and_abandoned_copy() {
    let pg = PgServer::start();
    let mut conn = connect(&pg).await;
    let mut copy = conn
        .copy_out("COPY (SELECT g, 'x' || g FROM generate_series(1, 3) g) TO STDOUT")
        .await
        .expect("copy starts");
    let mut frames = Vec::new();
    while let Some(frame) = copy.next_frame().await.expect("frame") {
        frames.push(String::from_utf8(frame.to_vec()).expect("utf8"));
    }
    assert_eq!(frames, vec!["1\tx1\n", "2\tx2\n", "3\tx3\n"]);
    assert_eq!(copy.rows(), Some(3));
    assert!(copy.next_frame().await.expect("after end").is_none());

    // Binary: header, rows, trailer.
    let mut copy = conn
        .copy_out("COPY (SELECT 7::int4) TO STDOUT (FORMAT binary)")
        .await
        .expect("copy starts");
    let mut all = Vec::new();
    while let Some(frame) = copy.next_frame().await.expect("frame") {
        all.extend_from_slice(frame);
    }
    let mut expected = b"PGCOPY\n\xff\r\n\0".to_vec();
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    expected.extend_from_slice(&[0, 1, 0, 0, 0, 4, 0, 0, 0, 7, 0xff, 0xff]);
    assert_eq!(all, expected);

    // A COPY dropped half-way is drained by the next call.
    {
        let mut copy = conn
            .copy_out("COPY (SELECT g FROM generate_series(1, 100000) g) TO STDOUT")
            .await
            .expect("copy starts");
        assert_eq!(copy.next_frame().await.expect("frame"), Some(&b"1\n"[..]));
    }
    let r = conn
        .simple_query("SELECT 42")
        .await
        .expect("usable after abandoned COPY");
    assert_eq!(r[0].rows[0][0].as_deref(), Some("42"));

    // An error before COPY starts, and a statement that is not a COPY.
    let err = conn
        .copy_out("COPY nosuchtable TO STDOUT")
        .await
        .err()
        .expect("error");
    assert_eq!(err.code(), Some("42P01"));
    let err = conn.copy_out("SELECT 1").await.err().expect("not a copy");
    assert!(err.to_string().contains("COPY"), "{err}");
    assert!(conn.simple_query("SELECT 1").await.is_ok());
}

#[tokio::test]
async fn cancel_request_stops_a_running_statement() {
    let pg = PgServer::start();
    let mut conn = connect(&pg).await;
    let token = conn.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        token.cancel().await
    });
    let started = std::time::Instant::now();
    let err = conn
        .simple_query("SELECT pg_sleep(30)")
        .await
        .expect_err("cancelled");
    assert_eq!(err.code(), Some("57014"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    canceller.await.expect("join").expect("cancel sent");
    assert!(conn.simple_query("SELECT 1").await.is_ok());
}

#[tokio::test]
async fn connection_lost_mid_copy_is_an_error_not_a_hang() {
    let pg = PgServer::start();
    let mut conn = connect(&pg).await;
    let pid = conn.process_id();
    let result = tokio::time::timeout(Duration::from_secs(60), async {
        let mut copy = conn
            .copy_out(
                "COPY (SELECT g, repeat('x', 100) FROM generate_series(1, 50000000) g) TO STDOUT",
            )
            .await
            .expect("copy starts");
        assert!(copy.next_frame().await.expect("first frame").is_some());
        pg.psql(&format!("SELECT pg_terminate_backend({pid})"));
        loop {
            match copy.next_frame().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("COPY ended normally although the backend was terminated"),
                Err(e) => return e,
            }
        }
    })
    .await
    .expect("no hang");
    assert!(result.is_connection_lost(), "{result}");
    let again = conn
        .simple_query("SELECT 1")
        .await
        .expect_err("connection is gone");
    assert!(again.is_connection_lost(), "{again}");
}
