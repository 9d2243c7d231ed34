//! OpenTelemetry traces, metrics and logs, exported over OTLP/HTTP to `--otel-endpoint` with
//! the names the Go plugin SDK uses, so that the CLI's `--tables-metrics-location` receiver and
//! collectors read this plugin like any other.
//!
//! - [`export`]: the providers and their OTLP exporters; [`http_client`] the exporters' HTTP
//!   client.
//! - [`sync`]: the `sync` and `sync.table.<name>` spans and the `sync.table.*` counters.
//! - [`cdc`]: the change stream's rate, WAL lag and commit-to-emit latency.
//! - [`logs`]: the log lines also as OTLP log records.
//!
//! The rest of the plugin calls the free functions below. Without `--otel-endpoint` nothing is
//! set up and each call is one load of an unset [`OnceLock`]: no spans, no instruments, no
//! clock reads, no allocation.
//!
//! The stdout log lines are not touched: the Go SDK writes no trace or span ids into them (nor
//! into the log records it exports).

pub mod cdc;
pub mod export;
pub mod http_client;
pub mod logs;
pub mod sync;

use std::sync::{Arc, Mutex, OnceLock, RwLock};

use arrow_schema::Schema;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use crate::decode::pgoutput::PgOutputMessage;
use crate::logging::Level;
use crate::wire::Lsn;

pub use export::TelemetryError;

use cdc::CdcMetrics;
use logs::LogBridge;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use sync::{SyncState, TableInstruments, SCOPE};

struct Telemetry {
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    logger_provider: SdkLoggerProvider,
    logs: LogBridge,
    tracer: SdkTracer,
    tables: TableInstruments,
    cdc: CdcMetrics,
    invocation_id: Mutex<String>,
    current: RwLock<Option<Arc<SyncState>>>,
}

static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();

fn get() -> Option<&'static Telemetry> {
    TELEMETRY.get()
}

/// Sets up the export when `endpoint` is given (`host:port`; https unless `insecure`). Call
/// once, inside the Tokio runtime the exports should run on. Returns whether it is on.
pub fn init(
    endpoint: Option<&str>,
    insecure: bool,
    plugin_name: &str,
    plugin_version: &str,
) -> Result<bool, TelemetryError> {
    // The Go SDK too takes an empty endpoint for none.
    let Some(endpoint) = endpoint.filter(|e| !e.trim().is_empty()) else {
        return Ok(false);
    };
    let providers = export::build(endpoint, insecure, plugin_name, plugin_version)?;
    let scope = InstrumentationScope::builder(SCOPE).build();
    let tracer = providers.tracer.tracer_with_scope(scope.clone());
    let meter = providers.meter.meter_with_scope(scope);
    let telemetry = Telemetry {
        tables: TableInstruments::new(&meter),
        cdc: CdcMetrics::new(&meter),
        tracer,
        logs: LogBridge::new(&providers.logger),
        tracer_provider: providers.tracer,
        meter_provider: providers.meter,
        logger_provider: providers.logger,
        invocation_id: Mutex::new(String::new()),
        current: RwLock::new(None),
    };
    // A second init keeps the first set-up (there is one server per process).
    let _ = TELEMETRY.set(telemetry);
    crate::logging::set_sink(log);
    Ok(true)
}

/// Sends what is buffered and stops the exporters (blocking; call it off the async workers).
pub fn shutdown() {
    if let Some(t) = get() {
        // Errors here mean the collector was unreachable; the plugin is stopping anyway.
        let _ = t.tracer_provider.shutdown();
        let _ = t.meter_provider.shutdown();
        let _ = t.logger_provider.shutdown();
    }
}

/// The invocation id of the Init call, which the next syncs' spans carry.
pub fn set_invocation_id(id: &str) {
    if let Some(t) = get() {
        if let Ok(mut current) = t.invocation_id.lock() {
            *current = id.to_string();
        }
    }
}

/// The telemetry of one Sync call; a no-op without an endpoint. Call [`SyncGuard::finish`]
/// when the sync returns.
pub struct SyncGuard(Option<Arc<SyncState>>);

/// Starts the `sync` span; the table hooks below report to this sync until it finishes.
pub fn sync_started() -> SyncGuard {
    let Some(t) = get() else {
        return SyncGuard(None);
    };
    let invocation_id = t
        .invocation_id
        .lock()
        .map(|id| id.clone())
        .unwrap_or_default();
    let state = Arc::new(SyncState::start(&t.tracer, invocation_id));
    if let Ok(mut current) = t.current.write() {
        *current = Some(state.clone());
    }
    SyncGuard(Some(state))
}

impl SyncGuard {
    /// Ends the open table spans and the sync span (with `error` as its status), then sends
    /// spans, metrics and logs at once, as the Go SDK flushes at the end of every Sync.
    pub async fn finish(mut self, error: Option<&str>) {
        let (Some(state), Some(t)) = (self.0.take(), get()) else {
            return;
        };
        state.finish(&t.tracer, &t.tables, error);
        if let Ok(mut current) = t.current.write() {
            if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &state)) {
                *current = None;
            }
        }
        // force_flush blocks until the exporters' threads are done, and those post through
        // this runtime: keep the async workers free.
        let flushed = tokio::task::spawn_blocking(move || {
            (
                t.tracer_provider.force_flush(),
                t.meter_provider.force_flush(),
                t.logger_provider.force_flush(),
            )
        })
        .await;
        // The Go SDK reports export failures as warnings with this message.
        if let Ok((traces, metrics, logs)) = flushed {
            for (signal, result) in [("traces", traces), ("metrics", metrics), ("logs", logs)] {
                if let Err(e) = result {
                    crate::log_warn!("otel error", signal = signal, error = e.to_string());
                }
            }
        }
    }
}

impl Drop for SyncGuard {
    /// A sync task aborted (the CLI went away) still closes its spans.
    fn drop(&mut self) {
        if let (Some(state), Some(t)) = (self.0.take(), get()) {
            state.finish(&t.tracer, &t.tables, Some("the sync was cancelled"));
        }
    }
}

fn current() -> Option<(&'static Telemetry, Arc<SyncState>)> {
    let t = get()?;
    let state = t.current.read().ok()?.clone()?;
    Some((t, state))
}

fn table_name(schema: &Schema) -> Option<&str> {
    schema
        .metadata()
        .get(crate::decode::metadata::TABLE_NAME)
        .map(String::as_str)
}

/// A table's schema went to the CLI: it is part of this sync.
pub fn table_known(table: &str) {
    if let Some((_, s)) = current() {
        s.table_known(table);
    }
}

/// The sync starts reading the table of this (CloudQuery) schema.
pub fn table_started(schema: &Schema) {
    if let Some((t, s)) = current() {
        if let Some(name) = table_name(schema) {
            s.table_started(&t.tracer, &t.tables, name);
        }
    }
}

/// The last read of the table of this schema is done.
pub fn table_finished(schema: &Schema) {
    if let Some((t, s)) = current() {
        if let Some(name) = table_name(schema) {
            s.table_finished(&t.tracer, &t.tables, name);
        }
    }
}

/// `rows` rows of `table` went to the CLI.
pub fn rows(table: &str, rows: usize) {
    if let Some((t, s)) = current() {
        s.add_rows(&t.tracer, &t.tables, table, rows as u64);
    }
}

/// A table failed (the sync goes on with the others).
pub fn table_error(table: &str) {
    if let Some((t, s)) = current() {
        s.add_error(&t.tables, table);
    }
}

/// Same, for a table known by its schema.
pub fn table_error_of(schema: &Schema) {
    if let Some(name) = table_name(schema) {
        table_error(name);
    }
}

/// A log line that was written (its level is enabled), also as an OTLP log record.
pub fn log(level: Level, message: &str, fields: &[(&str, serde_json::Value)]) {
    if let Some(t) = get() {
        t.logs.emit(level, message, fields);
    }
}

/// One pgoutput message of the change stream.
pub fn cdc_message(msg: &PgOutputMessage<'_>) {
    let Some(t) = get() else {
        return;
    };
    match msg {
        PgOutputMessage::Insert(_) | PgOutputMessage::Update(_) | PgOutputMessage::Delete(_) => {
            t.cdc.change()
        }
        PgOutputMessage::Commit(c) => t.cdc.commit(c.end_lsn.as_u64(), c.commit_time),
        _ => {}
    }
}

/// The change stream handed everything before `resume_lsn` to the CLI; the server's WAL end
/// is `wal_end`.
pub fn cdc_handed_off(resume_lsn: Lsn, wal_end: Lsn) {
    if let Some(t) = get() {
        t.cdc.handed_off(resume_lsn.as_u64(), wal_end.as_u64());
    }
}
