//! COPY BINARY of 1,000,000 rows streams with constant memory. Alone in
//! its test binary so no other test's allocations move the process's peak RSS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use cq_source_postgresql::wire::{Config, Connection};
use support::pg::{roles, PgServer};

/// Peak resident set size of this process (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM line")
}

#[tokio::test]
async fn copy_binary_million_rows_constant_memory() {
    let pg = PgServer::start();
    pg.psql(
        "CREATE TABLE big AS SELECT g::int8 AS id, md5(g::text) AS name, g * 0.5 AS half, now() AS ts \
         FROM generate_series(1, 1000000) g; GRANT SELECT ON big TO scram_user;",
    );
    let url = pg.url(roles::SCRAM_USER, roles::PASSWORD, "postgres");
    let cfg = Config::parse_with_env(&url, &|_| None).expect("parses");
    let mut conn = Connection::connect(&cfg).await.expect("connects");

    // Warm up: the read buffer and the allocator reach their working size.
    let mut copy = conn
        .copy_out("COPY (SELECT * FROM big LIMIT 10000) TO STDOUT (FORMAT binary)")
        .await
        .expect("copy starts");
    while copy.next_frame().await.expect("frame").is_some() {}

    let before = peak_rss_kib();
    let mut copy = conn
        .copy_out("COPY big TO STDOUT (FORMAT binary)")
        .await
        .expect("copy starts");
    let (mut frames, mut bytes, mut checksum) = (0u64, 0u64, 0u64);
    while let Some(frame) = copy.next_frame().await.expect("frame") {
        frames += 1;
        bytes += frame.len() as u64;
        checksum = checksum.wrapping_add(frame.iter().map(|&b| b as u64).sum::<u64>());
    }
    assert_eq!(copy.rows(), Some(1_000_000));
    let growth = peak_rss_kib().saturating_sub(before);
    eprintln!("streamed {frames} frames, {bytes} bytes; peak RSS grew by {growth} KiB");
    // Header and trailer travel with or apart from the rows depending on the version.
    assert!((1_000_000..=1_000_002).contains(&frames), "{frames} frames");
    assert!(bytes > 60_000_000, "{bytes} bytes streamed");
    assert!(checksum > 0);
    // Everything streamed is ~70 MB; holding even a tenth of it would show here.
    assert!(
        growth < 8 * 1024,
        "peak RSS grew by {growth} KiB while streaming {bytes} bytes"
    );
    conn.close().await;
}
