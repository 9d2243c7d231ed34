//! Delete-after-insert races through the real CLI starting the real plugin binary with `cdc_id`,
//! and the test destination (which applies upserts and deletes): keys inserted then deleted,
//! updated then deleted, deleted then re-inserted, in millisecond bursts, hundreds of times
//! across three tables; then the cross-flush race (a key's delete one flush after its insert);
//! then Ctrl-C, changes while nothing runs, and a restart. After each step the destination's
//! applied state equals the source (read from PostgreSQL).
//!
//! This exercises what only the CLI can: its reordering of `delete_record` ahead of earlier
//! inserts, against the buffer's coalescing and hold (batch.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use std::time::Duration;

use cq_source_postgresql::wire::{Config, Connection};
use support::cdc::{interrupt, wait_equal, CdcRun};
use support::destination;
use support::pg::{roles, PgServer};

/// A slow destination (per Write message) keeps the CLI's insert pipeline busy, which is when
/// a `delete_record` overtakes earlier inserts.
const DEST_DELAY_MS: u64 = 5;

#[test]
fn cli_applies_inserts_updates_deletes_and_races() {
    let pg = PgServer::start();
    let tables = ["r1", "r2", "r3"];
    for t in tables {
        pg.psql(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, v text);
             INSERT INTO {t} SELECT g, 'seed' FROM generate_series(1, 5) g;"
        ));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cdc = CdcRun::with(&pg, tmp.path(), "cli-test", &tables, |c| {
        c.dest_delay_ms(DEST_DELAY_MS)
    });
    let dest = cdc.dest.clone();
    let run = cdc.spawn();

    // 1. Initial sync in the slot's snapshot.
    assert!(
        destination::wait_for_rows(&dest, "r3", 5, Duration::from_secs(60)),
        "initial rows did not arrive; CLI log:\n{}",
        run.log()
    );
    wait_equal(&pg, &dest, &tables, Duration::from_secs(30));

    // 2. An insert, an update and a delete.
    pg.psql(
        "INSERT INTO r1 VALUES (100, 'new');
         UPDATE r1 SET v = 'changed' WHERE id = 2;
         DELETE FROM r1 WHERE id = 3;",
    );
    wait_equal(&pg, &dest, &tables, Duration::from_secs(30));

    // 3. Races: keys inserted then deleted, inserted/updated/deleted, deleted then re-inserted,
    // in millisecond bursts, hundreds of times across the three tables.
    let mut sql = String::new();
    for i in 0..600 {
        let t = tables[i % 3];
        let k = 1000 + i;
        match i % 4 {
            0 => sql.push_str(&format!(
                "INSERT INTO {t} VALUES ({k}, 'a'); DELETE FROM {t} WHERE id = {k};\n"
            )),
            1 => sql.push_str(&format!(
                "INSERT INTO {t} VALUES ({k}, 'a'); UPDATE {t} SET v = 'b' WHERE id = {k}; \
                 DELETE FROM {t} WHERE id = {k};\n"
            )),
            2 => sql.push_str(&format!(
                "INSERT INTO {t} VALUES ({k}, 'a'); DELETE FROM {t} WHERE id = {k}; \
                 INSERT INTO {t} VALUES ({k}, 'c');\n"
            )),
            _ => sql.push_str(&format!(
                "UPDATE {t} SET v = 'u{i}' WHERE id = {}; DELETE FROM {t} WHERE id = {};\n",
                k - 3,
                k - 1
            )),
        }
        if i % 60 == 59 {
            pg.psql(&sql);
            sql.clear();
        }
    }
    wait_equal(&pg, &dest, &tables, Duration::from_secs(60));

    // 3b. Updated then deleted, for keys that exist at the destination already: 300 rows
    // inserted and delivered, then each updated and deleted back to back (two transactions
    // each), interleaved with new keys inserted then deleted, across the three tables.
    let mut sql = String::new();
    for i in 0..300 {
        sql.push_str(&format!(
            "INSERT INTO {} VALUES ({}, 'pre');\n",
            tables[i % 3],
            20000 + i
        ));
    }
    pg.psql(&sql);
    wait_equal(&pg, &dest, &tables, Duration::from_secs(60));
    let mut sql = String::new();
    for i in 0..300 {
        let (t, k) = (tables[i % 3], 20000 + i);
        sql.push_str(&format!(
            "UPDATE {t} SET v = 'post' WHERE id = {k}; DELETE FROM {t} WHERE id = {k};\n\
             INSERT INTO {t} VALUES ({n}, 'n'); DELETE FROM {t} WHERE id = {n};\n",
            n = 30000 + i
        ));
        if i % 50 == 49 {
            pg.psql(&sql);
            sql.clear();
        }
    }
    wait_equal(&pg, &dest, &tables, Duration::from_secs(60));
    for t in tables {
        let left = destination::state(&dest, t)
            .iter()
            .filter(|r| r["id"].as_i64().is_some_and(|k| k >= 20000))
            .count();
        assert_eq!(left, 0, "{t}: rows updated/inserted then deleted survived");
    }

    // 4. The cross-flush race: a key's insert record handed to the CLI, its delete one flush
    // later (30 ms after the commit of the insert); the delete must not overtake the insert in
    // the CLI's pipeline. Without the hold (DELETE_HOLD = 0) this is where rows survive.
    let url = pg.url(roles::SUPERUSER, roles::PASSWORD, "postgres");
    rt.block_on(async {
        let mut w = Connection::connect(&Config::parse(&url).unwrap())
            .await
            .unwrap();
        for i in 0..60 {
            let t = tables[i % 3];
            let k = 5000 + i;
            w.batch_execute(&format!("INSERT INTO {t} VALUES ({k}, 'x')"))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(25)).await;
            w.batch_execute(&format!("DELETE FROM {t} WHERE id = {k}"))
                .await
                .unwrap();
        }
    });
    wait_equal(&pg, &dest, &tables, Duration::from_secs(60));
    let summary = destination::summary(&dest);
    let deletes: u64 = tables
        .iter()
        .map(|t| summary["tables"][t]["deletes"].as_u64().unwrap_or(0))
        .sum();
    assert!(deletes > 100, "deletes reached the destination: {summary}");

    // 5. Ctrl-C (the CLI kills the destination at once), changes while nothing runs, and a
    // new `cloudquery sync` with the same cdc_id: no initial sync, the changes arrive.
    interrupt(run);
    pg.psql(
        "INSERT INTO r2 VALUES (7000, 'while down');
         UPDATE r2 SET v = 'changed while down' WHERE id = 4;
         DELETE FROM r2 WHERE id = 5;",
    );
    let run = cdc.spawn();
    wait_equal(&pg, &dest, &tables, Duration::from_secs(60));
    let log = run.log();
    assert!(
        !log.contains("backfilling"),
        "no initial sync after a restart:\n{log}"
    );
    interrupt(run);
    drop(rt);
}
