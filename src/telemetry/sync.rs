//! One sync's spans and the per-table metrics, with the Go plugin SDK's names, attributes and
//! units (its `scheduler/metrics` package and scheduler spans):
//!
//! - span `sync` (attribute `sync.invocation.id`) around the whole sync;
//! - span `sync.table.<table>` per table (attributes `sync.client.id`, `sync.invocation.id`),
//!   ending with the event `sync.finish.stats` (`sync.resources`, `sync.errors`, `sync.panics`);
//! - counters `sync.table.resources` and `sync.table.errors` (unit `/{tot}`) and
//!   `sync.table.duration` (unit `ms`), each with `sync.table.name` and `sync.client.id` (empty,
//!   as the SDK sends it). The CLI's `--tables-metrics-location` receiver reads exactly these.
//! - counters `sync.table.start_time` and `sync.table.end_time` (unit `ns`, Unix time), which
//!   SDK releases before mid-2025 sent instead of the duration: CLI releases of that time (6.21
//!   among them) compute a table's duration from them and show "N/A" without.
//!
//! A table's span starts when the sync starts reading it (or at its first rows) and ends when
//! its last read is done; a table still open when the sync ends is closed then.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use opentelemetry::metrics::{Counter, Meter};
use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, Span};

/// The instrumentation scope of every span and instrument, as the SDK names it.
pub const SCOPE: &str = "io.cloudquery";

pub const SPAN_SYNC: &str = "sync";
pub const SPAN_TABLE_PREFIX: &str = "sync.table.";
pub const EVENT_FINISH_STATS: &str = "sync.finish.stats";

pub const METRIC_RESOURCES: &str = "sync.table.resources";
pub const METRIC_ERRORS: &str = "sync.table.errors";
pub const METRIC_DURATION: &str = "sync.table.duration";
pub const METRIC_START_TIME: &str = "sync.table.start_time";
pub const METRIC_END_TIME: &str = "sync.table.end_time";

pub const ATTR_TABLE_NAME: &str = "sync.table.name";
pub const ATTR_CLIENT_ID: &str = "sync.client.id";
pub const ATTR_INVOCATION_ID: &str = "sync.invocation.id";

/// The per-table counters; created once per process like the SDK's.
pub struct TableInstruments {
    resources: Counter<u64>,
    errors: Counter<u64>,
    duration: Counter<u64>,
    start_time: Counter<u64>,
    end_time: Counter<u64>,
}

impl TableInstruments {
    pub fn new(meter: &Meter) -> TableInstruments {
        TableInstruments {
            resources: meter
                .u64_counter(METRIC_RESOURCES)
                .with_description("Number of resources synced for a table")
                .with_unit("/{tot}")
                .build(),
            errors: meter
                .u64_counter(METRIC_ERRORS)
                .with_description("Number of errors encountered while syncing a table")
                .with_unit("/{tot}")
                .build(),
            duration: meter
                .u64_counter(METRIC_DURATION)
                .with_description("Duration of syncing a table")
                .with_unit("ms")
                .build(),
            start_time: meter
                .u64_counter(METRIC_START_TIME)
                .with_description("Start time of syncing a table")
                .with_unit("ns")
                .build(),
            end_time: meter
                .u64_counter(METRIC_END_TIME)
                .with_description("End time of syncing a table")
                .with_unit("ns")
                .build(),
        }
    }
}

struct TableState {
    /// `sync.table.name` and `sync.client.id`, the metrics' attribute set.
    attrs: [KeyValue; 2],
    span: Option<Span>,
    started: Option<Instant>,
    rows: u64,
    errors: u64,
    finished: bool,
}

/// One Sync call: its span and its tables.
pub struct SyncState {
    cx: Context,
    invocation_id: String,
    started: Instant,
    tables: Mutex<HashMap<String, TableState>>,
}

impl SyncState {
    pub fn start(tracer: &SdkTracer, invocation_id: String) -> SyncState {
        let span = tracer
            .span_builder(SPAN_SYNC)
            .with_kind(SpanKind::Internal)
            .with_attributes([KeyValue::new(ATTR_INVOCATION_ID, invocation_id.clone())])
            .start_with_context(tracer, &Context::new());
        SyncState {
            cx: Context::new().with_span(span),
            invocation_id,
            started: Instant::now(),
            tables: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `f` on the table's state, creating it on first sight.
    fn with_table<R>(&self, table: &str, f: impl FnOnce(&mut TableState) -> R) -> Option<R> {
        let mut tables = self.tables.lock().ok()?;
        // Looked up before inserting: the name is copied once per table, not per batch.
        if let Some(state) = tables.get_mut(table) {
            return Some(f(state));
        }
        let state = tables
            .entry(table.to_string())
            .or_insert_with(|| TableState {
                attrs: [
                    KeyValue::new(ATTR_TABLE_NAME, table.to_string()),
                    KeyValue::new(ATTR_CLIENT_ID, ""),
                ],
                span: None,
                started: None,
                rows: 0,
                errors: 0,
                finished: false,
            });
        Some(f(state))
    }

    /// The table will be synced (its schema went out): it is listed even with no rows.
    pub fn table_known(&self, table: &str) {
        self.with_table(table, |_| ());
    }

    pub fn table_started(&self, tracer: &SdkTracer, m: &TableInstruments, table: &str) {
        self.with_table(table, |t| self.open(tracer, m, table, t));
    }

    pub fn add_rows(&self, tracer: &SdkTracer, m: &TableInstruments, table: &str, rows: u64) {
        self.with_table(table, |t| {
            self.open(tracer, m, table, t);
            t.rows += rows;
            m.resources.add(rows, &t.attrs);
        });
    }

    pub fn add_error(&self, m: &TableInstruments, table: &str) {
        self.with_table(table, |t| {
            t.errors += 1;
            m.errors.add(1, &t.attrs);
        });
    }

    pub fn table_finished(&self, tracer: &SdkTracer, m: &TableInstruments, table: &str) {
        self.with_table(table, |t| {
            self.open(tracer, m, table, t);
            self.close(m, t);
        });
    }

    /// Closes every table still open, then the sync span.
    pub fn finish(&self, tracer: &SdkTracer, m: &TableInstruments, error: Option<&str>) {
        if let Ok(mut tables) = self.tables.lock() {
            for (name, t) in tables.iter_mut() {
                self.open(tracer, m, name, t);
                self.close(m, t);
            }
        }
        let span = self.cx.span();
        if let Some(error) = error {
            span.set_status(opentelemetry::trace::Status::error(error.to_string()));
        }
        span.end();
    }

    /// Starts the table's span once (a table is read once per sync). The resources counter
    /// gets its data point at once, so a table with no rows still reports 0.
    fn open(&self, tracer: &SdkTracer, m: &TableInstruments, table: &str, t: &mut TableState) {
        if t.span.is_some() || t.finished {
            return;
        }
        let span = tracer
            .span_builder(format!("{SPAN_TABLE_PREFIX}{table}"))
            .with_kind(SpanKind::Internal)
            .with_attributes([
                KeyValue::new(ATTR_CLIENT_ID, ""),
                KeyValue::new(ATTR_INVOCATION_ID, self.invocation_id.clone()),
            ])
            .start_with_context(tracer, &self.cx);
        t.span = Some(span);
        t.started = Some(Instant::now());
        m.resources.add(0, &t.attrs);
        m.start_time.add(unix_nanos(), &t.attrs);
    }

    fn close(&self, m: &TableInstruments, t: &mut TableState) {
        let Some(mut span) = t.span.take() else {
            return;
        };
        t.finished = true;
        span.add_event(
            EVENT_FINISH_STATS,
            vec![
                KeyValue::new("sync.resources", clamp(t.rows)),
                KeyValue::new("sync.errors", clamp(t.errors)),
                KeyValue::new("sync.panics", 0_i64),
            ],
        );
        span.end();
        let started = t.started.unwrap_or(self.started);
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        m.duration.add(ms, &t.attrs);
        m.end_time.add(unix_nanos(), &t.attrs);
    }
}

fn unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
