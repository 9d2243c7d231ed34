//! CDC through the real CLI and the test destination (which applies upserts and deletes):
//! a minimal [`Source`] serving `cdc::run` over gRPC (the backfill is a plain COPY BINARY reader
//! standing in for the full-sync engine), `cloudquery sync` against it, changes made with psql,
//! and the destination's applied state compared with the source.
//!
//! This exercises what only the CLI can: its reordering of `delete_record` ahead of earlier
//! inserts (reference §9), against the buffer's coalescing and hold (batch.rs).

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_schema::SchemaRef;
use cq_source_postgresql::catalog::{self, Table};
use cq_source_postgresql::cdc::{
    self, Backfill, BackfillFuture, CdcError, CdcOptions, StreamTable,
};
use cq_source_postgresql::decode::{CopyBinaryDecoder, PgType};
use cq_source_postgresql::plugin::server::{serve_listener, Listener};
use cq_source_postgresql::plugin::service::{
    PluginService, Source, SourceError, SyncMessage, SyncRequest, SyncSender, TestConnectionOutcome,
};
use cq_source_postgresql::plugin::spec::{accept_any_conn_string, Spec};
use cq_source_postgresql::wire::{Config, Connection};
use serde_json::{json, Value};
use support::cli::{self, Config as CliConfig};
use support::destination;
use support::pg::{roles, PgServer};

struct CopyBackfill {
    out: SyncSender,
}

impl Backfill for CopyBackfill {
    fn backfill<'a>(
        &'a self,
        leader: &'a mut Connection,
        _snapshot_name: &'a str,
        tables: &'a [Table],
    ) -> BackfillFuture<'a> {
        Box::pin(async move {
            for t in tables {
                let schema = catalog::schema::arrow_schema(t, &t.name);
                self.out
                    .send(SyncMessage::MigrateTable(schema.clone()))
                    .await?;
                let sql = cq_source_postgresql::sync::plan::copy_statement(t, None);
                let types: Vec<PgType> = t.columns.iter().map(|c| c.pg_type.clone()).collect();
                let mut dec = CopyBinaryDecoder::new(&types);
                let mut copy = leader.copy_out(&sql).await?;
                while let Some(frame) = copy.next_frame().await? {
                    dec.decode_frame(frame)?;
                }
                if dec.rows() > 0 {
                    let batch = dec.finish(schema)?;
                    self.out.send(SyncMessage::Insert(batch)).await?;
                }
            }
            Ok::<(), CdcError>(())
        })
    }
}

/// Streams the tables named in `tables` of the spec's database.
#[derive(Default)]
struct CdcSource {
    spec: Mutex<Option<Spec>>,
}

async fn discover(cfg: &Config) -> Result<Vec<Table>, String> {
    let mut conn = Connection::connect(cfg).await.map_err(|e| e.to_string())?;
    Ok(catalog::load::load(&mut conn)
        .await
        .map_err(|e| e.to_string())?
        .tables)
}

#[tonic::async_trait]
impl Source for CdcSource {
    async fn init(&self, spec: Spec, _no_connection: bool) -> Result<(), SourceError> {
        *self.spec.lock().unwrap() = Some(spec);
        Ok(())
    }

    async fn tables(
        &self,
        _: &[String],
        _: &[String],
        _: bool,
    ) -> Result<Vec<SchemaRef>, SourceError> {
        Ok(Vec::new())
    }

    async fn sync(&self, req: SyncRequest, out: SyncSender) -> Result<(), SourceError> {
        let spec = self.spec.lock().unwrap().clone().expect("init first");
        let cfg =
            Config::parse(&spec.connection_string).map_err(|e| SourceError::msg(e.to_string()))?;
        let tables: Vec<StreamTable> = discover(&cfg)
            .await
            .map_err(SourceError::msg)?
            .into_iter()
            .filter(|t| req.tables.contains(&t.name))
            .map(|t| StreamTable {
                dest_name: t.name.clone(),
                table: t,
            })
            .collect();
        let cdc_id = spec.cdc_id.expect("cdc_id");
        let names = cdc::cdc_names(cdc_id.as_str()).map_err(SourceError::msg)?;
        let backfill = CopyBackfill { out: out.clone() };
        cdc::run(
            &cfg,
            &names,
            tables,
            CdcOptions {
                rows_per_record: spec.rows_per_record,
            },
            &backfill,
            out,
        )
        .await
        .map_err(|e| SourceError::msg(e.to_string()))
    }

    async fn test_connection(&self, _spec: Spec) -> TestConnectionOutcome {
        TestConnectionOutcome::Success
    }
}

/// Rows of `table` as `{"id": n, "v": text}` objects sorted by id (what the destination shows).
fn source_rows(pg: &PgServer, table: &str) -> Vec<Value> {
    let out = pg.psql(&format!(
        "SELECT coalesce(json_agg(json_build_object('id', id, 'v', v) ORDER BY id), '[]') FROM {table}"
    ));
    serde_json::from_str(&out).expect("json")
}

fn dest_rows(dir: &std::path::Path, table: &str) -> Vec<Value> {
    let mut rows: Vec<Value> = destination::state(dir, table)
        .into_iter()
        .map(|r| json!({ "id": r["id"], "v": r["v"] }))
        .collect();
    rows.sort_by_key(|r| r["id"].as_i64());
    rows
}

fn wait_equal(pg: &PgServer, dir: &std::path::Path, tables: &[&str], timeout: Duration) {
    let want: Vec<Vec<Value>> = tables.iter().map(|t| source_rows(pg, t)).collect();
    let end = Instant::now() + timeout;
    loop {
        let got: Vec<Vec<Value>> = tables.iter().map(|t| dest_rows(dir, t)).collect();
        if got == want {
            return;
        }
        if Instant::now() > end {
            for ((t, g), w) in tables.iter().zip(&got).zip(&want) {
                if g != w {
                    panic!("table {t}: destination\n{g:?}\nsource\n{w:?}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

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
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let service = PluginService::new(Arc::new(CdcSource::default()), accept_any_conn_string);
    rt.spawn(serve_listener(
        Listener::Tcp(listener),
        service,
        std::future::pending(),
    ));

    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let cfg = CliConfig::grpc(&addr.to_string(), &dest)
        .spec(json!({
            "connection_string": pg.url(roles::SUPERUSER, roles::PASSWORD, "postgres"),
            "cdc_id": "cli-test",
        }))
        .tables(&tables)
        .write_mode("overwrite")
        .dest_delay_ms(DEST_DELAY_MS)
        .write(tmp.path());
    let run = cli::sync(&cfg).timeout(Duration::from_secs(300)).spawn();

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
    run.interrupt();
    let _ = run.wait();
    pg.psql(
        "INSERT INTO r2 VALUES (7000, 'while down');
         UPDATE r2 SET v = 'changed while down' WHERE id = 4;
         DELETE FROM r2 WHERE id = 5;",
    );
    let run = cli::sync(&cfg).timeout(Duration::from_secs(300)).spawn();
    wait_equal(&pg, &dest, &tables, Duration::from_secs(60));
    run.interrupt();
    let _ = run.wait();
    drop(rt);
}
