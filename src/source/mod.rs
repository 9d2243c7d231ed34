//! The PostgreSQL source: what Init, GetTables, Sync and TestConnection do, on top of the wire
//! client, the catalog and the sync engine. The gRPC layer (`plugin`) only translates to and from
//! these calls.
//!
//! - [`api`]: the [`Source`] trait the gRPC surface calls, its request and error types;
//! - [`spec`]: the spec, its validation and its JSON Schema;
//! - [`table_options`]: the spec's per-table options resolved against the catalog;
//! - [`incremental`]: a sync whose tables read only what changed since the stored position;
//! - [`state_client`]: the client of CloudQuery's state backend (a destination plugin over gRPC).

pub mod api;
pub(crate) mod incremental;
pub mod spec;
pub mod state_client;
pub(crate) mod table_options;

use std::sync::Arc;
use std::time::SystemTime;

use arrow_schema::SchemaRef;
use tokio::sync::Mutex;

use crate::catalog::{self, select::select, Catalog, Table};
use crate::cdc::{self, Backfill, BackfillFuture, CdcError, CdcId, CdcOptions, StreamTable};
use crate::decode::types::CQ_INCREMENTAL;
use crate::output::{SendError, SyncMessage, SyncSender};
use crate::sync::engine::{self, SyncOptions};
use crate::sync::plan::shard;
use crate::sync::TablePlan;
use crate::wire::{self, Connection};
use crate::{log_info, log_warn};
pub use api::{
    BackendOptions, FailureCode, Shard, Source, SourceError, SyncRequest, TestConnectionOutcome,
};
use incremental::{incremental_table, missing_backend_message, IncrementalSync};
use spec::{render_table_name, Spec};
use table_options::{is_incremental, without_excluded, ResolvedOptions, TableSettings};

/// State kept between Init and the later calls of one plugin process.
struct Initialized {
    spec: Spec,
    config: wire::Config,
    catalog: Catalog,
    /// `table_options` per table.
    options: ResolvedOptions,
}

#[derive(Default)]
pub struct PostgresSource {
    state: Mutex<Option<Arc<Initialized>>>,
}

impl PostgresSource {
    pub fn new() -> Self {
        Self::default()
    }

    async fn initialized(&self) -> Result<Arc<Initialized>, SourceError> {
        self.state
            .lock()
            .await
            .clone()
            .ok_or(SourceError::NotInitialized)
    }
}

#[tonic::async_trait]
impl Source for PostgresSource {
    async fn init(&self, spec: Spec, no_connection: bool) -> Result<(), SourceError> {
        // The service has applied `pgx_log_level` and logged the accepted spec already.
        let config =
            wire::Config::parse(&spec.connection_string).map_err(SourceError::ConnectionString)?;
        let catalog = match discover(&config, &spec.values).await {
            Ok(catalog) => catalog,
            // `cloudquery tables` / `migrate` send no_connection: list nothing rather than fail.
            Err(e) if no_connection => {
                log_warn!(
                    "could not connect to discover tables; listing none",
                    error = e.to_string()
                );
                Catalog::default()
            }
            Err(DiscoverError::Connect(e)) => return Err(SourceError::Connect(e)),
            Err(DiscoverError::Catalog(e)) => return Err(SourceError::Catalog(e)),
        };
        let options = resolve_table_options(&spec, &config, &catalog, no_connection).await?;
        if let (Some(cdc_id), false) = (&spec.cdc_id, no_connection) {
            check_cdc(&config, cdc_id, &catalog, &options).await?;
        }
        *self.state.lock().await = Some(Arc::new(Initialized {
            spec,
            config,
            catalog,
            options,
        }));
        Ok(())
    }

    async fn tables(
        &self,
        tables: &[String],
        skip_tables: &[String],
        _skip_dependent_tables: bool,
    ) -> Result<Vec<SchemaRef>, SourceError> {
        let state = self.initialized().await?;
        let now = SystemTime::now();
        Ok(
            selected_plans(&state, tables, skip_tables, now, &uuid::Uuid::new_v4())
                .into_iter()
                .map(|p| p.schema)
                .collect(),
        )
    }

    async fn sync(&self, request: SyncRequest, out: SyncSender) -> Result<(), SourceError> {
        let state = self.initialized().await?;
        // One clock read per sync: every table's name uses the same instant.
        let now = SystemTime::now();
        let uuid = uuid::Uuid::new_v4();
        let mut plans = selected_plans(&state, &request.tables, &request.skip_tables, now, &uuid);
        if plans.is_empty() {
            return Err(SourceError::msg(format!(
                "no tables selected for syncing: review `tables` and `skip_tables` (searched {})",
                searched(&state.catalog)
            )));
        }
        if let (Some(s), None) = (request.shard, &state.spec.cdc_id) {
            let (num, total) = (s.num.max(0) as usize, s.total.max(0) as usize);
            plans = shard(plans, num, total);
            log_info!(
                "shard selected",
                shard = format!("{num}/{total}"),
                tables = plans.len()
            );
        }
        let options = SyncOptions {
            rows_per_record: state.spec.rows_per_record,
            concurrency: state.spec.concurrency,
            values: state.spec.values,
            ..SyncOptions::default()
        };
        if let Some(cdc_id) = &state.spec.cdc_id {
            // CDC streams every selected table until the CLI goes away; shards do not apply.
            return sync_cdc(&state, cdc_id, plans, options, out).await;
        }
        let incremental: Vec<_> = plans
            .iter()
            .enumerate()
            .filter(|(_, p)| is_incremental_schema(&p.schema))
            .map(|(i, p)| {
                incremental_table(
                    i,
                    p,
                    &state.catalog.database,
                    state.options.tables.get(&p.table.oid),
                    schema_table_name(&p.schema),
                )
            })
            .collect();
        if !incremental.is_empty() {
            let Some(backend) = &request.backend else {
                let names: Vec<String> = incremental
                    .iter()
                    .map(|t| plans[t.plan].table.display_name.clone())
                    .collect();
                return Err(SourceError::msg(missing_backend_message(&names)));
            };
            return Ok(IncrementalSync {
                config: &state.config,
                backend,
                tables: incremental,
            }
            .run(plans, options, out)
            .await?);
        }
        send_migrations(&out, &plans).await?;
        if plans.is_empty() {
            return Ok(());
        }
        Ok(engine::run(&state.config, plans, options, out).await?)
    }

    async fn test_connection(&self, spec: Spec) -> TestConnectionOutcome {
        let config = match wire::Config::parse(&spec.connection_string) {
            Ok(c) => c,
            Err(e) => {
                return TestConnectionOutcome::Failure {
                    code: FailureCode::InvalidSpec,
                    description: format!("connection_string: {e}"),
                }
            }
        };
        match discover(&config, &spec.values).await {
            Ok(catalog) => {
                log_info!("test connection succeeded", tables = catalog.tables.len());
                TestConnectionOutcome::Success
            }
            Err(DiscoverError::Connect(e)) => TestConnectionOutcome::Failure {
                code: failure_code(&e),
                description: e.to_string(),
            },
            Err(e) => TestConnectionOutcome::Failure {
                code: match &e {
                    DiscoverError::Catalog(catalog::load::CatalogError::Query(q))
                        if q.code() == Some("42501") =>
                    {
                        FailureCode::AccessDenied
                    }
                    _ => FailureCode::ConnFailed,
                },
                description: e.to_string(),
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum DiscoverError {
    #[error("failed to connect to PostgreSQL: {0}")]
    Connect(#[source] wire::Error),
    #[error(transparent)]
    Catalog(#[from] catalog::load::CatalogError),
}

/// Maps a connection failure to the CloudQuery test-connection failure codes.
fn failure_code(e: &wire::Error) -> FailureCode {
    match e.code() {
        Some("28P01") | Some("28000") => FailureCode::AuthFailed,
        Some("3D000") => FailureCode::UnknownDatabase,
        Some("42501") => FailureCode::AccessDenied,
        // No answer at the socket level: refused, no route, DNS, or silence until the timeout.
        _ if matches!(e, wire::Error::Io { .. } | wire::Error::Timeout { .. }) => {
            FailureCode::Unreachable
        }
        _ => FailureCode::ConnFailed,
    }
}

async fn discover(
    config: &wire::Config,
    values: &crate::decode::ValueOptions,
) -> Result<Catalog, DiscoverError> {
    let started = std::time::Instant::now();
    let mut conn = Connection::connect(config)
        .await
        .map_err(DiscoverError::Connect)?;
    let catalog = catalog::load::load_with(&mut conn, values).await?;
    conn.close().await;
    log_info!(
        "catalog discovered",
        server_version = catalog.server_version_num,
        database = catalog.database.as_str(),
        tables = catalog.tables.len(),
        duration_ms = started.elapsed().as_millis() as u64,
    );
    Ok(catalog)
}

/// Applies `tables` / `skip_tables`, warns about patterns that matched nothing, and names each
/// table for the destination.
fn searched(catalog: &Catalog) -> String {
    format!(
        "all schemas of database {:?} the user can use; tables of the current schema {:?} are named bare, others schema.table",
        catalog.database, catalog.current_schema
    )
}

fn selected_plans(
    state: &Initialized,
    tables: &[String],
    skip_tables: &[String],
    now: SystemTime,
    uuid: &uuid::Uuid,
) -> Vec<TablePlan> {
    let names: Vec<&str> = state
        .catalog
        .tables
        .iter()
        .map(|t| t.display_name.as_str())
        .collect();
    let selection = select(&names, tables, skip_tables);
    let searched = searched(&state.catalog);
    for pattern in &selection.unmatched_tables {
        log_warn!(
            "tables pattern matched no table",
            pattern = pattern.as_str(),
            searched = searched.as_str()
        );
    }
    for pattern in &selection.unmatched_skips {
        log_warn!(
            "skip_tables pattern matched no table",
            pattern = pattern.as_str(),
            searched = searched.as_str()
        );
    }
    selection
        .selected
        .into_iter()
        .map(|i| {
            let table = &state.catalog.tables[i];
            let dest = render_table_name(
                &state.spec.destination_table_name,
                &table.display_name,
                now,
                uuid,
            );
            table_plan(state, table, &dest)
        })
        .collect()
}

/// A selected table as the sync reads it: `table_options` applied (excluded columns gone, the
/// filter, the incremental flags in the schema).
fn table_plan(state: &Initialized, table: &Table, dest: &str) -> TablePlan {
    let settings = state.options.tables.get(&table.oid);
    let table = without_excluded(table, settings);
    let mut schema = catalog::schema::arrow_schema(&table, dest);
    if is_incremental(state.spec.incremental, table.kind, settings) {
        schema = mark_incremental(&schema, settings.and_then(|s| s.cursor_column.as_deref()));
    }
    TablePlan {
        table: Arc::new(table),
        schema,
        filter: settings.and_then(|s| s.filter.as_deref()).map(Arc::from),
        scans: None,
    }
}

/// `cq:extension:incremental` on the schema (the CLI then keeps the table's rows that a later
/// sync does not re-send) and on the cursor column.
fn mark_incremental(schema: &SchemaRef, cursor: Option<&str>) -> SchemaRef {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| {
            if Some(f.name().as_str()) == cursor {
                let mut metadata = f.metadata().clone();
                metadata.insert(CQ_INCREMENTAL.to_string(), "true".to_string());
                Arc::new(f.as_ref().clone().with_metadata(metadata))
            } else {
                f.clone()
            }
        })
        .collect();
    let mut metadata = schema.metadata().clone();
    metadata.insert(CQ_INCREMENTAL.to_string(), "true".to_string());
    Arc::new(arrow_schema::Schema::new_with_metadata(fields, metadata))
}

fn is_incremental_schema(schema: &SchemaRef) -> bool {
    schema.metadata().get(CQ_INCREMENTAL).map(String::as_str) == Some("true")
}

/// Resolves `table_options` against the catalog and, when connected, has the server check
/// every filter. Problems fail Init, each naming its entry, table and column.
async fn resolve_table_options(
    spec: &Spec,
    config: &wire::Config,
    catalog: &Catalog,
    no_connection: bool,
) -> Result<ResolvedOptions, SourceError> {
    let fail = |errors: Vec<table_options::OptionsError>| {
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        SourceError::msg(format!("invalid table_options: {}", text.join("; ")))
    };
    let (resolved, warnings) =
        table_options::resolve(&spec.table_options, catalog).map_err(fail)?;
    for warning in &warnings {
        log_warn!(warning.as_str());
    }
    if no_connection || resolved.tables.values().all(|s| s.filter.is_none()) {
        return Ok(resolved);
    }
    let mut conn = Connection::connect(config)
        .await
        .map_err(SourceError::Connect)?;
    let checked = table_options::check_filters(&mut conn, catalog, &resolved).await;
    conn.close().await;
    checked.map_err(fail)?;
    Ok(resolved)
}

/// A table as CDC streams it: `table` already without its excluded columns, which the stream
/// also leaves out of every change, and the filter of its `table_options`.
fn stream_table(table: Table, settings: Option<&TableSettings>, dest_name: String) -> StreamTable {
    StreamTable {
        table,
        dest_name,
        excluded_columns: settings
            .map(|s| s.exclude_columns.clone())
            .unwrap_or_default(),
        filter: settings.and_then(|s| s.filter.clone()),
    }
}

/// Init-time CDC checks (wal_level, REPLICATION, a free slot, a streamable table), so a
/// misconfigured server fails `cloudquery sync` at once with an actionable message.
async fn check_cdc(
    config: &wire::Config,
    cdc_id: &CdcId,
    catalog: &Catalog,
    options: &ResolvedOptions,
) -> Result<(), SourceError> {
    let names = cdc_id.names();
    let mut conn = Connection::connect(config)
        .await
        .map_err(SourceError::Connect)?;
    let with_options: Vec<StreamTable> = catalog
        .tables
        .iter()
        .filter(|t| options.tables.contains_key(&t.oid))
        .map(|t| {
            let settings = options.tables.get(&t.oid);
            stream_table(
                without_excluded(t, settings),
                settings,
                t.display_name.clone(),
            )
        })
        .collect();
    let mut result = cdc::check_prerequisites(&mut conn, names, &catalog.tables)
        .await
        .map(|_| ());
    if result.is_ok() {
        result = cdc::check_publication_options(&mut conn, &with_options).await;
    }
    if result.is_ok() {
        match cdc::failover_readiness(&mut conn).await {
            Ok(Some(warning)) => log_warn!(warning, slot = names.slot.as_str()),
            Ok(None) => {}
            Err(e) => result = Err(e),
        }
    }
    conn.close().await;
    result?;
    log_info!(
        "CDC prerequisites met",
        slot = names.slot.as_str(),
        publication = names.publication.as_str()
    );
    Ok(())
}

async fn sync_cdc(
    state: &Initialized,
    cdc_id: &CdcId,
    plans: Vec<TablePlan>,
    options: SyncOptions,
    out: SyncSender,
) -> Result<(), SourceError> {
    let names = cdc_id.names();
    let selected: Vec<StreamTable> = plans
        .iter()
        .map(|p| {
            stream_table(
                (*p.table).clone(),
                state.options.tables.get(&p.table.oid),
                schema_table_name(&p.schema),
            )
        })
        .collect();
    let backfill = EngineBackfill {
        config: &state.config,
        plans,
        options: options.clone(),
        out: out.clone(),
    };
    let result = cdc::run(
        &state.config,
        names,
        selected,
        CdcOptions {
            rows_per_record: options.rows_per_record,
            values: options.values,
            reconnect_timeout: state.spec.cdc.reconnect_timeout,
            initial_sync: state.spec.cdc.initial_sync,
            on_lost_slot: state.spec.cdc.on_lost_slot,
        },
        &backfill,
        out,
    )
    .await;
    drop(backfill);
    Ok(result?)
}

/// Every plan's `migrate_table`, in plan order: before any row, as the CLI expects.
async fn send_migrations(out: &SyncSender, plans: &[TablePlan]) -> Result<(), SendError> {
    for plan in plans {
        out.send(SyncMessage::MigrateTable(plan.schema.clone()))
            .await?;
    }
    Ok(())
}

fn schema_table_name(schema: &SchemaRef) -> String {
    schema
        .metadata()
        .get(catalog::schema::TABLE_NAME)
        .cloned()
        .unwrap_or_default()
}

/// The CDC initial sync, done by the full-sync engine inside the snapshot CDC hands over.
struct EngineBackfill<'a> {
    config: &'a wire::Config,
    /// Every selected table with its destination schema (the backfill reads a subset).
    plans: Vec<TablePlan>,
    options: SyncOptions,
    out: SyncSender,
}

impl Backfill for EngineBackfill<'_> {
    fn backfill<'a>(
        &'a self,
        _leader: &'a mut Connection,
        snapshot_name: &'a str,
        tables: &'a [Table],
    ) -> BackfillFuture<'a> {
        Box::pin(async move {
            let plans: Vec<TablePlan> = tables
                .iter()
                .filter_map(|t| self.plans.iter().find(|p| p.table.oid == t.oid).cloned())
                .collect();
            send_migrations(&self.out, &plans).await?;
            // CDC's own connection holds the snapshot open; the engine reads through connections
            // of its own that import it.
            let leader = engine::open_in_snapshot(self.config, snapshot_name).await?;
            engine::run_in_snapshot(
                self.config,
                leader,
                snapshot_name,
                plans,
                self.options.clone(),
                self.out.clone(),
            )
            .await
            .map_err(|e| match e {
                engine::SyncError::Cancelled => CdcError::Send(SendError::Closed),
                other => CdcError::Backfill(other),
            })
        })
    }
}
