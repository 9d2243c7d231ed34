//! The gRPC services in-process, through the generated client over TCP, with a scripted
//! [`Source`] standing in for the catalog/sync layers (the seam under test is the RPC translation:
//! state rules, error mapping, Arrow IPC encoding, the Sync stream's backpressure and cancellation).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::Cursor;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use cq_source_postgresql::output::{SendError, SyncMessage, SyncSender, TableError, TableFailure};
use cq_source_postgresql::pb::discovery::v1 as disc;
use cq_source_postgresql::pb::plugin::v3 as pb;
use cq_source_postgresql::plugin::server::{serve_listener, Listener};
use cq_source_postgresql::plugin::service::{PluginService, MAX_GRPC_MESSAGE};
use cq_source_postgresql::source::spec::{accept_any_conn_string, Spec};
use cq_source_postgresql::source::{
    FailureCode, Source, SourceError, SyncRequest, TestConnectionOutcome,
};
use pb::plugin_client::PluginClient;
use pb::sync::response::Message;
use tokio::sync::{oneshot, Notify};
use tonic::transport::Channel;
use tonic::Code;

#[derive(Default)]
struct Scripted {
    inits: Mutex<Vec<(Spec, bool)>>,
    /// Sync behaviour, by the first requested table name.
    started: Notify,
    release: Notify,
    sent: AtomicUsize,
    stopped: AtomicBool,
    saw_closed: AtomicBool,
}

fn schema(name: &str) -> SchemaRef {
    Arc::new(
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ])
        .with_metadata(std::collections::HashMap::from([(
            "cq:table_name".to_string(),
            name.to_string(),
        )])),
    )
}

fn batch(name: &str, rows: usize, text_len: usize) -> RecordBatch {
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
    let names: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..rows).map(|i| format!("{i}{}", "x".repeat(text_len))),
    ));
    RecordBatch::try_new(schema(name), vec![ids, names]).unwrap()
}

struct StopFlag<'a>(&'a AtomicBool);

impl Drop for StopFlag<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tonic::async_trait]
impl Source for Scripted {
    async fn init(&self, spec: Spec, no_connection: bool) -> Result<(), SourceError> {
        if spec.connection_string == "fail" {
            return Err(SourceError::msg("cannot reach the server"));
        }
        self.inits.lock().unwrap().push((spec, no_connection));
        Ok(())
    }

    async fn tables(
        &self,
        tables: &[String],
        _: &[String],
        _: bool,
    ) -> Result<Vec<SchemaRef>, SourceError> {
        if tables.iter().any(|t| t == "missing") {
            return Err(SourceError::msg(
                "tables include a pattern missing with no matches",
            ));
        }
        Ok(vec![schema("users"), schema("orders")])
    }

    async fn sync(&self, req: SyncRequest, out: SyncSender) -> Result<(), SourceError> {
        let _stop = StopFlag(&self.stopped);
        let mode = req.tables.first().cloned().unwrap_or_default();
        let send = |m| {
            let out = out.clone();
            async move { out.send(m).await }
        };
        let sent = |r: Result<(), SendError>| -> Result<(), SourceError> {
            if matches!(r, Err(SendError::Closed)) {
                self.saw_closed.store(true, Ordering::SeqCst);
            }
            r.map_err(SourceError::Send)
        };
        match mode.as_str() {
            "block" => {
                self.started.notify_one();
                self.release.notified().await;
                Ok(())
            }
            "flood" => {
                sent(send(SyncMessage::MigrateTable(schema("big"))).await)?;
                for _ in 0..200 {
                    sent(send(SyncMessage::Insert(batch("big", 1000, 100))).await)?;
                    self.sent.fetch_add(1, Ordering::SeqCst);
                }
                Ok(())
            }
            "huge" => {
                sent(send(SyncMessage::MigrateTable(schema("huge"))).await)?;
                // ~6 MiB: over gRPC's 4 MiB default, under the plugin's limits.
                sent(send(SyncMessage::Insert(batch("huge", 6, 1 << 20))).await)
            }
            _ => {
                sent(send(SyncMessage::MigrateTable(schema("users"))).await)?;
                sent(send(SyncMessage::Insert(batch("users", 3, 1))).await)?;
                sent(
                    send(SyncMessage::TableFailed(TableFailure {
                        table: "orders".into(),
                        rows_sent: 0,
                        error: TableError::Truncated,
                    }))
                    .await,
                )?;
                if mode == "fail" {
                    return Err(SourceError::msg("replication slot vanished"));
                }
                Ok(())
            }
        }
    }

    async fn test_connection(&self, spec: Spec) -> TestConnectionOutcome {
        if spec.connection_string.contains("wrong") {
            TestConnectionOutcome::Failure {
                code: FailureCode::AuthFailed,
                description: "password authentication failed\nfor user \"x\"".into(),
            }
        } else {
            TestConnectionOutcome::Success
        }
    }
}

struct Harness {
    source: Arc<Scripted>,
    client: PluginClient<Channel>,
    discovery: disc::discovery_client::DiscoveryClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start() -> Harness {
    let source = Arc::new(Scripted::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let service = PluginService::new(source.clone(), accept_any_conn_string);
    tokio::spawn(serve_listener(Listener::Tcp(listener), service, async {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Harness {
        source,
        client: PluginClient::new(channel.clone())
            .max_decoding_message_size(MAX_GRPC_MESSAGE)
            .max_encoding_message_size(MAX_GRPC_MESSAGE),
        discovery: disc::discovery_client::DiscoveryClient::new(channel),
        stop: Some(stop),
    }
}

fn init_req(spec: &str) -> pb::init::Request {
    pb::init::Request {
        spec: spec.as_bytes().to_vec(),
        no_connection: false,
        invocation_id: "test".into(),
    }
}

fn sync_req(table: &str, with_errors: bool) -> pb::sync::Request {
    pb::sync::Request {
        tables: vec![table.into()],
        with_error_messages: with_errors,
        ..Default::default()
    }
}

/// Init with a spec the scripted source accepts, then Sync `table`: the opening of every Sync
/// test. Returns the response stream.
async fn init_then_sync(
    h: &mut Harness,
    table: &str,
    with_errors: bool,
) -> tonic::Streaming<pb::sync::Response> {
    h.client
        .init(init_req(r#"{"connection_string":"x"}"#))
        .await
        .unwrap();
    h.client
        .sync(sync_req(table, with_errors))
        .await
        .unwrap()
        .into_inner()
}

fn decode(bytes: &[u8]) -> (SchemaRef, Vec<RecordBatch>) {
    let reader = arrow_ipc::reader::StreamReader::try_new(Cursor::new(bytes), None).unwrap();
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>().unwrap();
    (schema, batches)
}

async fn collect(
    stream: &mut tonic::Streaming<pb::sync::Response>,
) -> (Vec<Message>, Option<tonic::Status>) {
    let mut messages = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(r)) => messages.push(r.message.expect("every response carries a message")),
            Ok(None) => return (messages, None),
            Err(status) => return (messages, Some(status)),
        }
    }
}

#[tokio::test]
async fn static_rpcs() {
    let mut h = start().await;
    let v = h
        .discovery
        .get_versions(disc::get_versions::Request {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.versions, vec![3]);
    let name = h.client.get_name(pb::get_name::Request {}).await.unwrap();
    assert_eq!(name.into_inner().name, "postgresql");
    let version = h
        .client
        .get_version(pb::get_version::Request {})
        .await
        .unwrap();
    assert!(version.into_inner().version.starts_with('v'));
    let schema = h
        .client
        .get_spec_schema(pb::get_spec_schema::Request {})
        .await
        .unwrap()
        .into_inner()
        .json_schema
        .unwrap();
    let schema: serde_json::Value = serde_json::from_str(&schema).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    h.client.close(pb::close::Request {}).await.unwrap();
}

#[tokio::test]
async fn destination_rpcs_are_unimplemented() {
    let mut h = start().await;
    let e = h
        .client
        .read(pb::read::Request { table: vec![] })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    let e = h
        .client
        .write(tokio_stream::iter(Vec::<pb::write::Request>::new()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    let e = h
        .client
        .transform_schema(pb::transform_schema::Request { schema: vec![] })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
}

#[tokio::test]
async fn init_validates_the_spec_and_reports_source_errors() {
    let mut h = start().await;
    for (spec, expected) in [
        (
            "null",
            "failed to init plugin: invalid spec: connection_string: is required",
        ),
        (
            "",
            "failed to init plugin: invalid spec: connection_string: is required",
        ),
        (
            r#"{"connection_string":"x","rows_per_record":0}"#,
            "failed to init plugin: invalid spec: rows_per_record: must be an integer >= 1, got 0",
        ),
        (
            r#"{"connection_string":"fail"}"#,
            "failed to init plugin: cannot reach the server",
        ),
        (
            "{",
            "failed to init plugin: invalid spec: spec: is not valid JSON",
        ),
    ] {
        let e = h.client.init(init_req(spec)).await.unwrap_err();
        assert_eq!(e.code(), Code::Internal, "{spec}");
        assert!(e.message().starts_with(expected), "{spec}: {}", e.message());
    }
    let mut req = init_req(r#"{"connection_string":"postgres://x"}"#);
    req.no_connection = true;
    h.client.init(req).await.unwrap();
    let inits = h.source.inits.lock().unwrap();
    assert_eq!(inits.len(), 1);
    assert!(inits[0].1, "no_connection is passed on");
    assert_eq!(inits[0].0.rows_per_record, 500);
}

#[tokio::test]
async fn calls_before_init_fail() {
    let mut h = start().await;
    let e = h
        .client
        .get_tables(pb::get_tables::Request::default())
        .await
        .unwrap_err();
    assert!(e.message().contains("plugin not initialized"), "{e}");
    let e = h.client.sync(sync_req("users", false)).await.unwrap_err();
    assert!(e.message().contains("plugin not initialized"), "{e}");
}

#[tokio::test]
async fn get_tables_returns_schema_only_ipc_streams() {
    let mut h = start().await;
    h.client
        .init(init_req(r#"{"connection_string":"x"}"#))
        .await
        .unwrap();
    let tables = h
        .client
        .get_tables(pb::get_tables::Request {
            tables: vec!["*".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tables;
    assert_eq!(tables.len(), 2);
    let (schema, batches) = decode(&tables[0]);
    assert!(batches.is_empty());
    assert_eq!(schema.metadata()["cq:table_name"], "users");
    let e = h
        .client
        .get_tables(pb::get_tables::Request {
            tables: vec!["missing".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Internal);
    assert!(e
        .message()
        .starts_with("failed to get tables: tables include a pattern missing"));
}

#[tokio::test]
async fn sync_streams_migrate_then_one_batch_per_insert() {
    let mut h = start().await;
    let mut stream = init_then_sync(&mut h, "users", false).await;
    let (messages, status) = collect(&mut stream).await;
    assert!(status.is_none(), "{status:?}");
    assert_eq!(
        messages.len(),
        2,
        "the error message is dropped without withErrorMessages"
    );
    let Message::MigrateTable(m) = &messages[0] else {
        panic!("{:?}", messages[0])
    };
    let (schema, batches) = decode(&m.table);
    assert!(batches.is_empty());
    assert_eq!(schema.metadata()["cq:table_name"], "users");
    let Message::Insert(i) = &messages[1] else {
        panic!("{:?}", messages[1])
    };
    let (insert_schema, batches) = decode(&i.record);
    assert_eq!(insert_schema, schema, "insert carries the migrate schema");
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0], batch("users", 3, 1));
}

#[tokio::test]
async fn sync_error_messages_only_when_asked() {
    let mut h = start().await;
    let mut stream = init_then_sync(&mut h, "users", true).await;
    let (messages, status) = collect(&mut stream).await;
    assert!(status.is_none());
    let Some(Message::Error(e)) = messages.get(2) else {
        panic!("{messages:?}")
    };
    assert_eq!(e.table_name, "orders");
    assert_eq!(e.error, TableError::Truncated.to_string());
}

#[tokio::test]
async fn a_fatal_sync_error_ends_the_stream_after_the_messages() {
    let mut h = start().await;
    let mut stream = init_then_sync(&mut h, "fail", false).await;
    let (messages, status) = collect(&mut stream).await;
    assert_eq!(messages.len(), 2);
    let status = status.expect("a failed status");
    assert_eq!(status.code(), Code::Internal);
    assert_eq!(
        status.message(),
        "failed to sync records: replication slot vanished"
    );
}

#[tokio::test]
async fn messages_over_4_mib_pass() {
    let mut h = start().await;
    let mut stream = init_then_sync(&mut h, "huge", false).await;
    let (messages, status) = collect(&mut stream).await;
    assert!(status.is_none(), "{status:?}");
    let Message::Insert(i) = &messages[1] else {
        panic!()
    };
    assert!(i.record.len() > 6 << 20);
    // And a big request: an 8 MiB spec is decoded (then rejected for its unknown key).
    let spec = format!(
        r#"{{"connection_string":"x","pad":"{}"}}"#,
        "p".repeat(8 << 20)
    );
    let e = h.client.init(init_req(&spec)).await.unwrap_err();
    assert!(
        e.message().contains("pad: unknown field"),
        "{}",
        &e.message()[..200]
    );
}

#[tokio::test]
async fn a_slow_client_holds_the_source_back_and_a_gone_client_stops_it() {
    let mut h = start().await;
    let mut stream = init_then_sync(&mut h, "flood", false).await;
    assert!(stream.message().await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = h.source.sent.load(Ordering::SeqCst);
    // 200 inserts of ~100 KB: the bounded channel + HTTP/2 windows hold only a few.
    assert!(
        sent < 60,
        "no backpressure: {sent} of 200 sent to a client that reads nothing"
    );
    drop(stream);
    for _ in 0..100 {
        if h.source.stopped.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        h.source.stopped.load(Ordering::SeqCst),
        "sync still running after the client left"
    );
    assert!(h.source.sent.load(Ordering::SeqCst) < 200);
}

#[tokio::test]
async fn init_and_sync_are_exclusive() {
    let mut h = start().await;
    h.client
        .init(init_req(r#"{"connection_string":"x"}"#))
        .await
        .unwrap();
    let started = h.source.started.notified();
    let mut first = h.client.clone();
    let running = tokio::spawn(async move {
        let mut s = first
            .sync(sync_req("block", false))
            .await
            .unwrap()
            .into_inner();
        collect(&mut s).await
    });
    started.await;
    let e = h.client.sync(sync_req("users", false)).await.unwrap_err();
    assert_eq!(e.message(), "plugin already in use");
    let e = h
        .client
        .init(init_req(r#"{"connection_string":"x"}"#))
        .await
        .unwrap_err();
    assert_eq!(e.message(), "plugin already in use");
    h.source.release.notify_one();
    let (messages, status) = running.await.unwrap();
    assert!(messages.is_empty() && status.is_none());
    // Free again once the first sync ended.
    let mut s = h
        .client
        .sync(sync_req("users", false))
        .await
        .unwrap()
        .into_inner();
    assert!(collect(&mut s).await.1.is_none());
}

#[tokio::test]
async fn test_connection_outcomes() {
    let mut h = start().await;
    let call = |spec: &str| pb::test_connection::Request {
        spec: spec.as_bytes().to_vec(),
    };
    let r = h
        .client
        .test_connection(call(r#"{"connection_string":"x"}"#))
        .await
        .unwrap()
        .into_inner();
    assert!(r.success);
    let r = h
        .client
        .test_connection(call(r#"{"rows_per_record":0}"#))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.success);
    assert_eq!(r.failure_code, "INVALID_SPEC");
    assert!(r.failure_description.contains("connection_string"));
    assert!(r.failure_description.contains("rows_per_record"));
    let r = h
        .client
        .test_connection(call(r#"{"connection_string":"wrong"}"#))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.failure_code, "AUTH_FAILED");
    assert_eq!(
        r.failure_description, "password authentication failed for user \"x\"",
        "one line"
    );
}
