//! The gRPC services: `cloudquery.discovery.v1.Discovery` and `cloudquery.plugin.v3.Plugin`.
//!
//! Thin by design: each RPC translates between protobuf and the source's own types
//! ([`crate::source::api`]) and calls the [`Source`]. What lives here:
//!
//! - spec parsing at Init and TestConnection ([`Spec::parse`], with the wire client's connection
//!   string check injected as a [`ConnStringCheck`]);
//! - the state rules of the Go SDK: RPCs before a successful Init fail with `plugin not
//!   initialized`; Init or Sync while another Init/Sync runs fail with `plugin already in use`;
//! - error mapping, as the Go SDK does it: Init → `Internal "failed to init plugin: …"`,
//!   GetTables → `Internal "failed to get tables: …"`, Sync → `Internal "failed to sync records:
//!   …"` at the end of the stream, TestConnection with an invalid spec → `success=false,
//!   INVALID_SPEC`; the text is the source error with its whole cause chain;
//! - the Sync stream: the output channel's deliveries (Arrow already encoded by the producers)
//!   mapped onto Sync responses; a failed table is logged at error level (the CLI counts it in
//!   its summary) and, when the request has `withErrorMessages`, also sent as an `error`
//!   message (the CLI fails the sync on one it did not ask for); when the client goes away the
//!   sync task is aborted (its future is dropped) and every later send fails with
//!   [`crate::output::SendError::Closed`].

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio::task::JoinHandle;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::output::ipc::encode_schema;
use crate::output::{
    channel, Delivery, EncodedDelete, Grouping, SyncReceiver, SYNC_CHANNEL_CAPACITY,
};
use crate::pb::discovery::v1 as disc;
use crate::pb::plugin::v3 as pb;
use crate::source::api::chain_text;
use crate::source::spec::schema::spec_schema_json;
use crate::source::spec::{ConnStringCheck, Spec, SpecErrors};
use crate::source::{
    BackendOptions, FailureCode, Shard, Source, SourceError, SyncRequest, TestConnectionOutcome,
};
use crate::{log_debug, log_error, log_info};

pub const PLUGIN_NAME: &str = "postgresql";
/// GetVersion: the crate version with CloudQuery's leading `v`.
pub const PLUGIN_VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));
/// Protocol versions answered by discovery v1.
pub const PROTOCOL_VERSIONS: [i32; 1] = [3];
/// gRPC message limits, as the CLI and the Go SDK set them (200 MiB).
pub const MAX_GRPC_MESSAGE: usize = 200 << 20;

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

/// One delivery of the sync as a Sync response; `None` for what the stream does not carry.
///
/// A failed table is always logged at error level (the CLI counts those lines in its summary)
/// and, when the request asked for them, also sent as an `error` message.
fn sync_response(
    delivery: Delivery,
    with_error_messages: bool,
) -> Option<Result<pb::sync::Response, Status>> {
    use pb::sync::response::Message;
    let message = match delivery {
        Delivery::MigrateTable { table, schema } => {
            crate::telemetry::table_known(&table);
            Message::MigrateTable(pb::sync::MessageMigrateTable { table: schema })
        }
        Delivery::Insert {
            table,
            rows,
            record,
        } => {
            crate::telemetry::rows(&table, rows);
            Message::Insert(pb::sync::MessageInsert { record })
        }
        Delivery::DeleteRecord(d) => Message::DeleteRecord(delete_record(d)),
        Delivery::TableFailed(failure) => {
            let error = chain_text(&failure.error);
            log_error!(
                "table sync failed",
                table = failure.table.as_str(),
                error = error.as_str(),
                sqlstate = failure.error.sqlstate().unwrap_or(""),
                rows_sent = failure.rows_sent
            );
            if !with_error_messages {
                return None;
            }
            Message::Error(pb::sync::MessageError {
                table_name: failure.table,
                error,
            })
        }
        Delivery::Failed(error) => {
            return Some(Err(Status::internal(format!(
                "failed to sync records: {error}"
            ))))
        }
    };
    Some(Ok(pb::sync::Response {
        message: Some(message),
    }))
}

fn delete_record(d: EncodedDelete) -> pb::sync::MessageDeleteRecord {
    pb::sync::MessageDeleteRecord {
        table_name: d.table_name,
        where_clause: d
            .where_clause
            .into_iter()
            .map(|group| pb::PredicatesGroup {
                grouping_type: match group.grouping {
                    Grouping::And => pb::predicates_group::GroupingType::And as i32,
                    Grouping::Or => pb::predicates_group::GroupingType::Or as i32,
                },
                predicates: group
                    .predicates
                    .into_iter()
                    .map(|p| pb::Predicate {
                        operator: pb::predicate::Operator::Eq as i32,
                        column: p.column,
                        record: p.record,
                    })
                    .collect(),
            })
            .collect(),
        table_relations: d
            .table_relations
            .into_iter()
            .map(|r| pb::TableRelation {
                table_name: r.table_name,
                parent_table: r.parent_table,
            })
            .collect(),
    }
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

    fn parse_spec(&self, bytes: &[u8]) -> Result<Spec, SpecErrors> {
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
            .map_err(|e| Status::internal(format!("failed to init plugin: {}", e.chain_text())))?;
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
            .map_err(|e| Status::internal(format!("failed to get tables: {}", e.chain_text())))?;
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
        let with_error_messages = req.with_error_messages;
        let (out, rx) = channel(SYNC_CHANNEL_CAPACITY);
        let end = out.clone();
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
                    let error = e.chain_text();
                    log_error!(
                        "sync failed",
                        error = error.as_str(),
                        sqlstate = e.sqlstate().unwrap_or("")
                    );
                    telemetry.finish(Some(&error)).await;
                    // Ignored if the client is gone already.
                    let _ = end.fail(error).await;
                }
            }
        });
        Ok(Response::new(Box::pin(SyncStream {
            rx,
            with_error_messages,
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
    with_error_messages: bool,
    #[allow(dead_code)] // held for its Drop
    task: AbortOnDrop,
}

impl Stream for SyncStream {
    type Item = Result<pb::sync::Response, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(delivery)) => {
                    if let Some(item) = sync_response(delivery, this.with_error_messages) {
                        return Poll::Ready(Some(item));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
