//! Extended query, COPY streams, errors, cancel and lost connections against a real server
//!.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::time::Duration;

use cq_source_postgresql::wire::{Config, Connection, Lsn, Param};
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
    // The transaction status follows ReadyForQuery.
    conn.batch_execute("BEGIN").await.expect("begin");
    assert_eq!(conn.transaction_status(), b'T');
    assert!(conn.simple_query("SELECT 1/0").await.is_err());
    assert_eq!(conn.transaction_status(), b'E');
    conn.batch_execute("ROLLBACK").await.expect("rollback");
    assert_eq!(conn.transaction_status(), b'I');
    // An empty query is not an error.
    assert!(conn.simple_query("").await.expect("empty").is_empty());
}

/// COPY over TCP reads with a raised receive low-water mark (`src/wire/batched_read.rs`). A
/// producer slower than the mark must still deliver every row, the tail of a COPY smaller than the
/// mark must not wait for more data, and the mark must be restored afterwards, or the next small
/// reply would never wake the reader.
#[tokio::test]
async fn batched_copy_reads_deliver_slow_streams_and_restore_the_socket() {
    let pg = PgServer::start();
    let mut conn = connect(&pg).await;
    let guard = Duration::from_secs(60);
    let slow = async {
        // 40 rows, one every ~5 ms: each arrives far below the low-water mark.
        let mut copy = conn
            .copy_out(
                "COPY (SELECT g FROM generate_series(1, 40) g, LATERAL pg_sleep(0.005)) TO STDOUT",
            )
            .await
            .expect("copy starts");
        let mut rows = Vec::new();
        while let Some(frame) = copy.next_frame().await.expect("frame") {
            rows.push(String::from_utf8(frame.to_vec()).expect("utf8"));
        }
        rows
    };
    let rows = tokio::time::timeout(guard, slow)
        .await
        .expect("slow COPY ends");
    let expected: Vec<String> = (1..=40).map(|g| format!("{g}\n")).collect();
    assert_eq!(rows, expected);

    // A bulk COPY (~4 MB, many low-water marks' worth) followed by a small tail.
    let bulk = async {
        let mut copy = conn
            .copy_out(
                "COPY (SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g) TO STDOUT",
            )
            .await
            .expect("copy starts");
        let (mut n, mut last) = (0u64, Vec::new());
        while let Some(frame) = copy.next_frame().await.expect("frame") {
            n += 1;
            last = frame.to_vec();
        }
        (n, last, copy.rows())
    };
    let (n, last, tag_rows) = tokio::time::timeout(guard, bulk)
        .await
        .expect("bulk COPY ends");
    assert_eq!((n, tag_rows), (20000, Some(20000)));
    assert_eq!(last, format!("20000\t{}\n", "x".repeat(200)).into_bytes());

    // The socket is back to waking on every byte: a small reply arrives without a COPY around it.
    for _ in 0..20 {
        let r = tokio::time::timeout(guard, conn.simple_query("SELECT 42"))
            .await
            .expect("query after COPY does not hang")
            .expect("query");
        assert_eq!(r[0].rows[0][0].as_deref(), Some("42"));
    }
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

/// A TCP proxy that forwards one connection and cuts both sides after `limit` bytes from the
/// server: the socket dies without any message from PostgreSQL.
async fn cutting_proxy(server_port: u16, limit: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.expect("accept");
        let server = tokio::net::TcpStream::connect(("127.0.0.1", server_port))
            .await
            .expect("connect to the server");
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        let up = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut cr, &mut sw).await;
        });
        let mut buf = vec![0u8; 64 * 1024];
        let mut sent = 0;
        while sent < limit {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
            sent += n;
        }
        up.abort();
        // Dropping both halves closes the sockets.
    });
    port
}

#[tokio::test]
async fn socket_cut_mid_copy_is_an_io_error() {
    let pg = PgServer::start();
    let port = cutting_proxy(pg.port(), 2 * 1024 * 1024).await;
    let url = format!(
        "postgres://{}:{}@127.0.0.1:{port}/postgres?sslmode=disable",
        roles::SCRAM_USER,
        "Pa55-w0rd%21secret"
    );
    let mut conn = Connection::connect(&parse(&url))
        .await
        .expect("connects through the proxy");
    let err = tokio::time::timeout(Duration::from_secs(60), async {
        let mut copy = conn
            .copy_out("COPY (SELECT g, repeat('x', 100) FROM generate_series(1, 10000000) g) TO STDOUT (FORMAT binary)")
            .await
            .expect("copy starts");
        let mut frames = 0u64;
        loop {
            match copy.next_frame().await {
                Ok(Some(_)) => frames += 1,
                Ok(None) => panic!("COPY ended normally after {frames} frames"),
                Err(e) => return (e, frames),
            }
        }
    })
    .await
    .expect("no hang");
    let (err, frames) = err;
    assert!(frames > 1000, "{frames}");
    assert!(
        matches!(err, cq_source_postgresql::wire::Error::Io { .. }),
        "{err}"
    );
    assert!(err.is_connection_lost(), "{err}");
    let again = conn.simple_query("SELECT 1").await.expect_err("broken");
    assert!(again.is_connection_lost(), "{again}");
}

#[tokio::test]
async fn notices_do_not_disturb_results() {
    let pg = PgServer::start();
    let mut conn = connect(&pg).await;
    let r = conn
        .simple_query("DO $$ BEGIN RAISE NOTICE 'n1'; RAISE WARNING 'w1'; END $$; SELECT 5")
        .await
        .expect("runs");
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].tag, "DO");
    assert_eq!(r[1].rows[0][0].as_deref(), Some("5"));
    // A parameter change arrives as ParameterStatus and is kept.
    conn.batch_execute("SET application_name = 'renamed'")
        .await
        .expect("set");
    assert_eq!(conn.parameter("application_name"), Some("renamed"));
}

/// Catalog lookups bind names as text parameters (the server infers their type) instead of
/// pasting quoted literals: names with a quote, a backslash and a double quote find the same
/// relation psql finds, and an LSN's text form goes both ways through `pg_lsn`.
#[tokio::test]
async fn text_parameters_bind_names_and_lsns() {
    let pg = PgServer::start();
    let mut conn = connect(&pg).await;
    pg.psql(
        r#"CREATE SCHEMA "we'ird\s"; CREATE TABLE "we'ird\s"."t""x" (id int); GRANT USAGE ON SCHEMA "we'ird\s" TO scram_user;"#,
    );
    let want: u32 = pg
        .psql(r#"SELECT '"we''ird\s"."t""x"'::regclass::oid"#)
        .parse()
        .expect("an oid");
    let r = conn
        .query(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[Param::Text(r"we'ird\s"), Param::Text(r#"t"x"#)],
        )
        .await
        .expect("query runs");
    assert_eq!(r.rows.len(), 1);
    assert_eq!(r.rows[0].get_u32(0).expect("oid"), Some(want));

    // The server's text form parses into Lsn, and Lsn's text form is what pg_lsn reads.
    let text = pg.psql("SELECT pg_current_wal_lsn()");
    let bytes: u64 = pg
        .psql(&format!("SELECT '{text}'::pg_lsn - '0/0'"))
        .parse()
        .expect("a byte position");
    let lsn: Lsn = text.parse().expect("the server's LSN text parses");
    assert_eq!(lsn.as_u64(), bytes);
    let r = conn
        .query(
            "SELECT ($1::pg_lsn - '0/0')::int8, $2::pg_lsn::text",
            &[Param::Text(&lsn.to_string()), Param::Text("16/B374D848")],
        )
        .await
        .expect("query runs");
    assert_eq!(r.rows[0].get_i64(0).expect("int8"), Some(bytes as i64));
    let back: Lsn = r.rows[0]
        .get_str(1)
        .expect("text")
        .expect("not NULL")
        .parse()
        .expect("parses");
    assert_eq!(back, Lsn::new(0x16_B374_D848));
    assert_eq!(back.to_string(), "16/B374D848");
}
