//! The gRPC services: `cloudquery.discovery.v1.Discovery` and `cloudquery.plugin.v3.Plugin`.
//!
//! Thin by design: each RPC translates between protobuf and the plugin's own types and calls the
//! [`Source`] seam, which the catalog/sync/CDC layers implement. What lives here:
//!
//! - spec parsing at Init and TestConnection ([`Spec::parse`], with the wire client's connection
//!   string check injected as a [`ConnStringCheck`]);
//! - the state rules of the Go SDK: RPCs before a successful Init fail with `plugin not
//!   initialized`; Init or Sync while another Init/Sync runs fail with `plugin already in use`;
//! - error mapping (reference §5): Init → `Internal "failed to init plugin: …"`, GetTables →
//!   `Internal "failed to get tables: …"`, Sync → `Internal "failed to sync records: …"` at the end
//!   of the stream, TestConnection with an invalid spec → `success=false, INVALID_SPEC`;
//! - Arrow IPC *stream* encoding: schema-only for GetTables and `migrate_table`, schema + exactly
//!   one batch for `insert` (done by [`SyncSender`] on the producer's task, so tables read in
//!   parallel also encode in parallel);
//! - the Sync stream: a bounded channel (the producer awaits when the CLI is slower:
//!   backpressure), `error` messages only when the request has `withErrorMessages` (otherwise they
//!   are logged at error level so the CLI counts them), and cancellation: when the client goes
//!   away the sync task is aborted (its future is dropped) and every later send fails with
//!   [`SendError::Closed`].

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, Schema, SchemaRef};
use tokio::sync::{mpsc, oneshot, Mutex, OwnedMutexGuard};
use tokio::task::JoinHandle;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::ipc::IpcEncoder;
pub use super::ipc::{encode_batch, encode_schema};
use super::pb::discovery::v1 as disc;
use super::pb::plugin::v3 as pb;
use super::spec::{ConnStringCheck, Spec};
use super::spec_schema::spec_schema_json;
use crate::{log_debug, log_error, log_info};

pub const PLUGIN_NAME: &str = "postgresql";
/// GetVersion: the crate version with CloudQuery's leading `v`.
pub const PLUGIN_VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));
/// Protocol versions answered by discovery v1.
pub const PROTOCOL_VERSIONS: [i32; 1] = [3];
/// gRPC message limits, as the CLI and the Go SDK set them (200 MiB).
pub const MAX_GRPC_MESSAGE: usize = 200 << 20;
/// Largest single Sync message: the Go SDK drops anything over 100 MiB.
pub const MAX_SYNC_MESSAGE: usize = 100 << 20;
/// Encoded Sync messages buffered between the source and the gRPC stream.
pub const SYNC_CHANNEL_CAPACITY: usize = 8;

/// An error from the source, shown to the CLI inside the RPC's status message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("plugin not initialized")]
    NotInitialized,
    #[error("{0}")]
    Failed(String),
}

impl SourceError {
    pub fn msg(message: impl Into<String>) -> SourceError {
        SourceError::Failed(message.into())
    }

    /// Keeps the whole `source()` chain: `outer: inner: root`.
    pub fn from_error(err: &(dyn std::error::Error + 'static)) -> SourceError {
        let mut text = err.to_string();
        let mut cause = err.source();
        while let Some(c) = cause {
            let s = c.to_string();
            if !text.contains(&s) {
                text.push_str(": ");
                text.push_str(&s);
            }
            cause = c.source();
        }
        SourceError::Failed(text)
    }
}

/// TestConnection failure codes used by the SDK and the official plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCode {
    InvalidSpec,
    InvalidDsn,
    AuthFailed,
    AccessDenied,
    Unreachable,
    DnsFailed,
    ConnFailed,
    UnknownDatabase,
    Unknown,
}

impl FailureCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::InvalidSpec => "INVALID_SPEC",
            FailureCode::InvalidDsn => "INVALID_DSN",
            FailureCode::AuthFailed => "AUTH_FAILED",
            FailureCode::AccessDenied => "ACCESS_DENIED",
            FailureCode::Unreachable => "UNREACHABLE",
            FailureCode::DnsFailed => "DNS_FAILED",
            FailureCode::ConnFailed => "CONN_FAILED",
            FailureCode::UnknownDatabase => "UNKNOWN_DATABASE",
            FailureCode::Unknown => "UNKNOWN",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestConnectionOutcome {
    Success,
    /// `description` is one line (newlines are flattened before sending).
    Failure {
        code: FailureCode,
        description: String,
    },
}

/// Sync.Request in the plugin's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncRequest {
    pub tables: Vec<String>,
    pub skip_tables: Vec<String>,
    pub skip_dependent_tables: bool,
    pub deterministic_cq_id: bool,
    /// `--shard num/total` (1-based `num`), validated by the CLI.
    pub shard: Option<Shard>,
    /// State backend (table name and gRPC target), set only with `backend_options`.
    pub backend: Option<BackendOptions>,
    pub with_error_messages: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub num: i32,
    pub total: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendOptions {
    pub table_name: String,
    pub connection: String,
}

impl From<pb::sync::Request> for SyncRequest {
    fn from(r: pb::sync::Request) -> SyncRequest {
        SyncRequest {
            tables: r.tables,
            skip_tables: r.skip_tables,
            skip_dependent_tables: r.skip_dependent_tables,
            deterministic_cq_id: r.deterministic_cq_id,
            shard: r.shard.map(|s| Shard {
                num: s.num,
                total: s.total,
            }),
            backend: r.backend.and_then(|b| {
                (!b.table_name.is_empty() || !b.connection.is_empty()).then_some(BackendOptions {
                    table_name: b.table_name,
                    connection: b.connection,
                })
            }),
            with_error_messages: r.with_error_messages,
        }
    }
}

/// One message of the Sync stream.
#[derive(Debug, Clone)]
pub enum SyncMessage {
    /// A table's schema (with the CloudQuery metadata, `cq:table_name` at least). Send it before
    /// any insert into that table, parents before children, once per table.
    MigrateTable(SchemaRef),
    /// Rows of one table; the batch's schema must be the one sent in `MigrateTable`.
    Insert(RecordBatch),
    DeleteRecord(DeleteRecord),
    /// A per-table problem. Forwarded only when the request has `withErrorMessages`; otherwise
    /// logged at error level (the CLI then counts it in its summary) and the sync goes on.
    Error {
        table: String,
        error: String,
    },
}

#[derive(Debug, Clone)]
pub struct DeleteRecord {
    pub table_name: String,
    pub where_clause: Vec<PredicateGroup>,
    pub table_relations: Vec<TableRelation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    And,
    Or,
}

#[derive(Debug, Clone)]
pub struct PredicateGroup {
    pub grouping: Grouping,
    pub predicates: Vec<Predicate>,
}

/// `column = value`, the value being the single row of `record` (the only operator is EQ).
#[derive(Debug, Clone)]
pub struct Predicate {
    pub column: String,
    pub record: RecordBatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRelation {
    pub table_name: String,
    pub parent_table: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The CLI went away (or the sync was cancelled): stop producing.
    #[error("the sync stream is closed (the client went away)")]
    Closed,
    #[error("encoding Arrow IPC for table {table}: {source}")]
    Encode {
        table: String,
        #[source]
        source: ArrowError,
    },
    #[error("a Sync message for table {table} is {bytes} bytes, over the {MAX_SYNC_MESSAGE}-byte limit; send smaller records")]
    TooLarge { table: String, bytes: usize },
}

/// Where a [`Source`] sends Sync messages. Cheap to clone (one per table task); all clones must be
/// dropped before [`Source::sync`] returns, or the stream stays open.
#[derive(Clone)]
pub struct SyncSender {
    tx: mpsc::Sender<Outgoing>,
    with_error_messages: bool,
    /// Shared by the clones: each table's schema message is encoded once.
    ipc: IpcEncoder,
}

/// What travels from the sync to the gRPC stream.
enum Outgoing {
    Message(Result<pb::sync::Response, Status>),
    /// Answered when the stream takes it, i.e. once every message queued before it was taken.
    Barrier(oneshot::Sender<()>),
}

/// The receiving end of a [`SyncSender`]: encoded Sync responses, then at most one failed status.
pub struct SyncReceiver {
    rx: mpsc::Receiver<Outgoing>,
}

impl SyncReceiver {
    pub fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<pb::sync::Response, Status>>> {
        loop {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Outgoing::Barrier(done))) => {
                    // The waiter may have given up; nothing to tell then.
                    let _ = done.send(());
                }
                Poll::Ready(Some(Outgoing::Message(m))) => return Poll::Ready(Some(m)),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    pub async fn recv(&mut self) -> Option<Result<pb::sync::Response, Status>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }
}

impl SyncSender {
    /// A sender and its receiver, as the Sync RPC creates them; also lets the sync layers drive
    /// [`Source::sync`] in their own tests without a gRPC server.
    pub fn channel(capacity: usize, with_error_messages: bool) -> (SyncSender, SyncReceiver) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            SyncSender {
                tx,
                with_error_messages,
                ipc: IpcEncoder::default(),
            },
            SyncReceiver { rx },
        )
    }

    /// Encodes `msg` on the caller's task, then waits for room in the stream (backpressure).
    pub async fn send(&self, msg: SyncMessage) -> Result<(), SendError> {
        let Some(response) = self.encode(msg)? else {
            return Ok(());
        };
        self.tx
            .send(Outgoing::Message(Ok(response)))
            .await
            .map_err(|_| SendError::Closed)
    }

    /// Waits until the gRPC stream has taken every message this sender (or any clone) queued
    /// before the call: from then on they are the CLI's. The incremental sync stores a table's
    /// position only after this.
    pub async fn flushed(&self) -> Result<(), SendError> {
        let (done, taken) = oneshot::channel();
        self.tx
            .send(Outgoing::Barrier(done))
            .await
            .map_err(|_| SendError::Closed)?;
        taken.await.map_err(|_| SendError::Closed)
    }

    /// True once the client went away.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves when the client goes away.
    pub async fn closed(&self) {
        self.tx.closed().await
    }

    fn encode(&self, msg: SyncMessage) -> Result<Option<pb::sync::Response>, SendError> {
        use pb::sync::response::Message;
        let message = match msg {
            SyncMessage::MigrateTable(schema) => {
                let table = table_name_of(&schema);
                crate::telemetry::table_known(&table);
                let bytes = encode_schema(&schema).map_err(|source| SendError::Encode {
                    table: table.clone(),
                    source,
                })?;
                check_size(&table, bytes.len())?;
                Message::MigrateTable(pb::sync::MessageMigrateTable { table: bytes })
            }
            SyncMessage::Insert(batch) => {
                let table = table_name_of(&batch.schema());
                let bytes = self
                    .ipc
                    .encode(&batch)
                    .map_err(|source| SendError::Encode {
                        table: table.clone(),
                        source,
                    })?;
                check_size(&table, bytes.len())?;
                crate::telemetry::rows(&table, batch.num_rows());
                Message::Insert(pb::sync::MessageInsert { record: bytes })
            }
            SyncMessage::DeleteRecord(d) => Message::DeleteRecord(encode_delete(d)?),
            SyncMessage::Error { table, error } => {
                crate::telemetry::table_error(&table);
                if !self.with_error_messages {
                    log_error!("table sync failed", table = table, error = error);
                    return Ok(None);
                }
                Message::Error(pb::sync::MessageError {
                    table_name: table,
                    error,
                })
            }
        };
        Ok(Some(pb::sync::Response {
            message: Some(message),
        }))
    }
}

fn check_size(table: &str, bytes: usize) -> Result<(), SendError> {
    if bytes > MAX_SYNC_MESSAGE {
        return Err(SendError::TooLarge {
            table: table.to_string(),
            bytes,
        });
    }
    Ok(())
}

fn table_name_of(schema: &Schema) -> String {
    schema
        .metadata()
        .get("cq:table_name")
        .cloned()
        .unwrap_or_default()
}

fn encode_delete(d: DeleteRecord) -> Result<pb::sync::MessageDeleteRecord, SendError> {
    let mut where_clause = Vec::with_capacity(d.where_clause.len());
    for group in d.where_clause {
        let mut predicates = Vec::with_capacity(group.predicates.len());
        for p in group.predicates {
            let record = encode_batch(&p.record).map_err(|source| SendError::Encode {
                table: d.table_name.clone(),
                source,
            })?;
            predicates.push(pb::Predicate {
                operator: pb::predicate::Operator::Eq as i32,
                column: p.column,
                record,
            });
        }
        where_clause.push(pb::PredicatesGroup {
            grouping_type: match group.grouping {
                Grouping::And => pb::predicates_group::GroupingType::And as i32,
                Grouping::Or => pb::predicates_group::GroupingType::Or as i32,
            },
            predicates,
        });
    }
    Ok(pb::sync::MessageDeleteRecord {
        table_name: d.table_name,
        where_clause,
        table_relations: d
            .table_relations
            .into_iter()
            .map(|r| pb::TableRelation {
                table_name: r.table_name,
                parent_table: r.parent_table,
            })
            .collect(),
    })
}

/// The seam between the gRPC surface and the product: catalog, sync and CDC implement it.
///
/// Each CLI command starts a fresh plugin process, so there is normally one `init` per process
/// (a second `init` after a successful one is passed on, not refused). `init` and `sync` never
/// run at the same time; `tables` and `test_connection` may run at any time.
#[tonic::async_trait]
pub trait Source: Send + Sync + 'static {
    /// Init: connect (when allowed) and discover. `no_connection` is what `cloudquery tables` and
    /// `migrate` send; see the source's documentation for what it does then.
    async fn init(&self, spec: Spec, no_connection: bool) -> Result<(), SourceError>;

    /// GetTables: the selected tables' schemas, parents first; empty when nothing matches.
    async fn tables(
        &self,
        tables: &[String],
        skip_tables: &[String],
        skip_dependent_tables: bool,
    ) -> Result<Vec<SchemaRef>, SourceError>;

    /// Sync: send every selected table's `MigrateTable`, then its inserts (and, for CDC, deletes).
    /// Per-table failures go out as [`SyncMessage::Error`] and the sync goes on; an `Err` ends
    /// the stream with a failed status. The future is dropped when the client goes away, so
    /// cleanup belongs in `Drop`, and a [`SendError::Closed`] means "stop now".
    async fn sync(&self, request: SyncRequest, out: SyncSender) -> Result<(), SourceError>;

    /// TestConnection with an already validated spec (no Init has necessarily happened).
    async fn test_connection(&self, spec: Spec) -> TestConnectionOutcome;
}

/// `cloudquery.plugin.v3.Plugin` over a [`Source`].
pub struct PluginService<S: Source> {
    source: Arc<S>,
    check_conn: ConnStringCheck,
    initialized: AtomicBool,
    /// Held by Init and by a running Sync: the SDK's "plugin already in use".
    busy: Arc<Mutex<()>>,
}

impl<S: Source> PluginService<S> {
    pub fn new(source: Arc<S>, check_conn: ConnStringCheck) -> Self {
        PluginService {
            source,
            check_conn,
            initialized: AtomicBool::new(false),
            busy: Arc::new(Mutex::new(())),
        }
    }

    /// The generated server with the 200 MiB message limits.
    pub fn into_server(self) -> pb::plugin_server::PluginServer<Self> {
        pb::plugin_server::PluginServer::new(self)
            .max_decoding_message_size(MAX_GRPC_MESSAGE)
            .max_encoding_message_size(MAX_GRPC_MESSAGE)
    }

    fn try_busy(&self) -> Result<OwnedMutexGuard<()>, Status> {
        self.busy
            .clone()
            .try_lock_owned()
            .map_err(|_| Status::internal("plugin already in use"))
    }

    fn parse_spec(&self, bytes: &[u8]) -> Result<Spec, super::spec::SpecErrors> {
        let bytes: &[u8] = if bytes.is_empty() { b"null" } else { bytes };
        Spec::parse(bytes, self.check_conn)
    }
}

/// `cloudquery.discovery.v1.Discovery`: protocol 3 only.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiscoveryService;

impl DiscoveryService {
    pub fn into_server(self) -> disc::discovery_server::DiscoveryServer<Self> {
        disc::discovery_server::DiscoveryServer::new(self)
    }
}

#[tonic::async_trait]
impl disc::discovery_server::Discovery for DiscoveryService {
    async fn get_versions(
        &self,
        _: Request<disc::get_versions::Request>,
    ) -> Result<Response<disc::get_versions::Response>, Status> {
        Ok(Response::new(disc::get_versions::Response {
            versions: PROTOCOL_VERSIONS.to_vec(),
        }))
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tonic::async_trait]
impl<S: Source> pb::plugin_server::Plugin for PluginService<S> {
    async fn get_name(
        &self,
        _: Request<pb::get_name::Request>,
    ) -> Result<Response<pb::get_name::Response>, Status> {
        Ok(Response::new(pb::get_name::Response {
            name: PLUGIN_NAME.to_string(),
        }))
    }

    async fn get_version(
        &self,
        _: Request<pb::get_version::Request>,
    ) -> Result<Response<pb::get_version::Response>, Status> {
        Ok(Response::new(pb::get_version::Response {
            version: PLUGIN_VERSION.to_string(),
        }))
    }

    async fn get_spec_schema(
        &self,
        _: Request<pb::get_spec_schema::Request>,
    ) -> Result<Response<pb::get_spec_schema::Response>, Status> {
        Ok(Response::new(pb::get_spec_schema::Response {
            json_schema: Some(spec_schema_json()),
        }))
    }

    async fn init(
        &self,
        request: Request<pb::init::Request>,
    ) -> Result<Response<pb::init::Response>, Status> {
        let _busy = self.try_busy()?;
        let req = request.into_inner();
        let spec = self
            .parse_spec(&req.spec)
            .map_err(|e| Status::internal(format!("failed to init plugin: {e}")))?;
        crate::logging::set_wire_level(spec.pgx_log_level);
        crate::telemetry::set_invocation_id(&req.invocation_id);
        log_debug!(
            "spec accepted",
            invocation_id = req.invocation_id,
            no_connection = req.no_connection,
            pgx_log_level = spec.pgx_log_level.as_str(),
            rows_per_record = spec.rows_per_record,
            concurrency = spec.concurrency,
            destination_table_name = spec.destination_table_name.as_str(),
            cdc_id = spec.cdc_id.as_ref().map(|c| c.as_str().to_string()),
            numeric_type = spec.values.numeric_type.as_str(),
            interval_type = spec.values.interval_type.as_str(),
            infinity = spec.values.infinity.as_str(),
            out_of_range = spec.values.out_of_range.as_str(),
        );
        self.source
            .init(spec, req.no_connection)
            .await
            .map_err(|e| Status::internal(format!("failed to init plugin: {e}")))?;
        self.initialized.store(true, Ordering::SeqCst);
        Ok(Response::new(pb::init::Response {}))
    }

    async fn get_tables(
        &self,
        request: Request<pb::get_tables::Request>,
    ) -> Result<Response<pb::get_tables::Response>, Status> {
        if !self.initialized.load(Ordering::SeqCst) {
            return Err(Status::internal(format!(
                "failed to get tables: {}",
                SourceError::NotInitialized
            )));
        }
        let req = request.into_inner();
        let schemas = self
            .source
            .tables(&req.tables, &req.skip_tables, req.skip_dependent_tables)
            .await
            .map_err(|e| Status::internal(format!("failed to get tables: {e}")))?;
        let tables = schemas
            .iter()
            .map(|s| encode_schema(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Status::internal(format!("failed to encode tables: {e}")))?;
        Ok(Response::new(pb::get_tables::Response { tables }))
    }

    type SyncStream = BoxStream<pb::sync::Response>;

    async fn sync(
        &self,
        request: Request<pb::sync::Request>,
    ) -> Result<Response<Self::SyncStream>, Status> {
        if !self.initialized.load(Ordering::SeqCst) {
            return Err(Status::internal(format!(
                "failed to sync records: {}",
                SourceError::NotInitialized
            )));
        }
        let busy = self.try_busy()?;
        let req = SyncRequest::from(request.into_inner());
        let (out, rx) = SyncSender::channel(SYNC_CHANNEL_CAPACITY, req.with_error_messages);
        let tx = out.tx.clone();
        let source = self.source.clone();
        let task = tokio::spawn(async move {
            let _busy = busy;
            let started = std::time::Instant::now();
            let telemetry = crate::telemetry::sync_started();
            match source.sync(req, out).await {
                Ok(()) => {
                    log_info!(
                        "sync finished",
                        duration_ms = started.elapsed().as_millis() as u64
                    );
                    telemetry.finish(None).await;
                }
                Err(e) => {
                    log_error!("sync failed", error = e.to_string());
                    telemetry.finish(Some(&e.to_string())).await;
                    // Ignored if the client is gone already.
                    let _ = tx
                        .send(Outgoing::Message(Err(Status::internal(format!(
                            "failed to sync records: {e}"
                        )))))
                        .await;
                }
            }
        });
        Ok(Response::new(Box::pin(SyncStream {
            rx,
            task: AbortOnDrop(task),
        })))
    }

    type ReadStream = BoxStream<pb::read::Response>;

    async fn read(
        &self,
        _: Request<pb::read::Request>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        Err(Status::unimplemented(
            "Read is not supported by a source plugin",
        ))
    }

    async fn write(
        &self,
        _: Request<Streaming<pb::write::Request>>,
    ) -> Result<Response<pb::write::Response>, Status> {
        Err(Status::unimplemented(
            "Write is not supported by a source plugin",
        ))
    }

    type TransformStream = BoxStream<pb::transform::Response>;

    async fn transform(
        &self,
        _: Request<Streaming<pb::transform::Request>>,
    ) -> Result<Response<Self::TransformStream>, Status> {
        Err(Status::unimplemented(
            "Transform is not supported by a source plugin",
        ))
    }

    async fn transform_schema(
        &self,
        _: Request<pb::transform_schema::Request>,
    ) -> Result<Response<pb::transform_schema::Response>, Status> {
        Err(Status::unimplemented(
            "TransformSchema is not supported by a source plugin",
        ))
    }

    async fn close(
        &self,
        _: Request<pb::close::Request>,
    ) -> Result<Response<pb::close::Response>, Status> {
        Ok(Response::new(pb::close::Response {}))
    }

    async fn test_connection(
        &self,
        request: Request<pb::test_connection::Request>,
    ) -> Result<Response<pb::test_connection::Response>, Status> {
        let req = request.into_inner();
        let outcome = match self.parse_spec(&req.spec) {
            Err(e) => TestConnectionOutcome::Failure {
                code: FailureCode::InvalidSpec,
                description: e.to_string(),
            },
            Ok(spec) => {
                crate::logging::set_wire_level(spec.pgx_log_level);
                self.source.test_connection(spec).await
            }
        };
        let response = match outcome {
            TestConnectionOutcome::Success => pb::test_connection::Response {
                success: true,
                failure_code: String::new(),
                failure_description: String::new(),
            },
            TestConnectionOutcome::Failure { code, description } => pb::test_connection::Response {
                success: false,
                failure_code: code.as_str().to_string(),
                failure_description: one_line(&description),
            },
        };
        Ok(Response::new(response))
    }
}

/// Aborts the sync task when the response stream is dropped (client gone, server shutting down).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct SyncStream {
    rx: SyncReceiver,
    #[allow(dead_code)] // held for its Drop
    task: AbortOnDrop,
}

impl Stream for SyncStream {
    type Item = Result<pb::sync::Response, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().rx.poll_recv(cx)
    }
}
