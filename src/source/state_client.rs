//! The client of CloudQuery's state backend: a destination plugin, reached over gRPC at the
//! target the CLI sends in `Sync.Request.backend` (`unix:///path` for a local plugin,
//! `host:port` otherwise), that stores a key/value table for the source.
//!
//! The calls are the Go SDK's state client's: discovery v1 must list protocol 3; a `Write`
//! stream with one `migrate_table` of the state table; a `Read` of the table; later a `Write`
//! stream with one `insert` of the changed keys. These writes bypass the CLI, so they carry no
//! `_cq_sync_time`/`_cq_source_name` columns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::decode::metadata::{
    CONSTRAINT_NAME, TABLE_DESCRIPTION, TABLE_NAME, TABLE_PERMISSIONS_NEEDED,
    TABLE_SENSITIVE_COLUMNS, TABLE_TITLE,
};
use crate::decode::types::{
    CQ_INCREMENTAL, CQ_PRIMARY_KEY, CQ_PRIMARY_KEY_COMPONENT, CQ_TYPE_SCHEMA, CQ_UNIQUE,
};
use crate::incremental::{StateRow, StateTable};
use crate::output::ipc::{encode_batch, encode_schema};
use crate::pb::discovery::v1 as disc;
use crate::pb::plugin::v3 as pb;

/// How long connecting, and each call, may take before the sync fails with a clear error.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The Go state client's message limit (both ways).
const MAX_MESSAGE: usize = 100 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state backend {target:?}: {source}")]
    Connect {
        target: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("state backend {target:?}: no answer within {CALL_TIMEOUT:?} to {call}")]
    Timeout { target: String, call: &'static str },
    #[error("state backend {target:?} speaks plugin protocol versions {versions:?}, not 3")]
    Protocol { target: String, versions: Vec<i32> },
    #[error("state backend {target:?}: {call} failed: {status}")]
    Rpc {
        target: String,
        call: &'static str,
        #[source]
        status: tonic::Status,
    },
    #[error("state backend {target:?}: unreadable state table {table:?}: {detail}")]
    Data {
        target: String,
        table: String,
        detail: String,
    },
}

/// A connection to the state backend, for one state table.
pub struct StateClient {
    channel: Channel,
    target: String,
    table_name: String,
    schema: SchemaRef,
}

impl StateClient {
    /// Connects to `target` and checks that it speaks protocol 3.
    pub async fn connect(target: &str, table_name: &str) -> Result<StateClient, StateError> {
        let channel = timed(target, "connect", open_channel(target))
            .await?
            .map_err(|source| StateError::Connect {
                target: target.to_string(),
                source,
            })?;
        let versions = timed(
            target,
            "GetVersions",
            disc::discovery_client::DiscoveryClient::new(channel.clone())
                .get_versions(disc::get_versions::Request {}),
        )
        .await?
        .map_err(|status| StateError::Rpc {
            target: target.to_string(),
            call: "GetVersions",
            status,
        })?
        .into_inner()
        .versions;
        if !versions.contains(&3) {
            return Err(StateError::Protocol {
                target: target.to_string(),
                versions,
            });
        }
        Ok(StateClient {
            channel,
            target: target.to_string(),
            table_name: table_name.to_string(),
            schema: state_schema(table_name),
        })
    }

    fn client(&self) -> pb::plugin_client::PluginClient<Channel> {
        pb::plugin_client::PluginClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    fn rpc_error(&self, call: &'static str) -> impl FnOnce(tonic::Status) -> StateError + '_ {
        move |status| StateError::Rpc {
            target: self.target.clone(),
            call,
            status,
        }
    }

    fn data_error(&self, detail: impl Into<String>) -> StateError {
        StateError::Data {
            target: self.target.clone(),
            table: self.table_name.clone(),
            detail: detail.into(),
        }
    }

    /// Creates the state table if needed and reads it.
    pub async fn load(&self) -> Result<StateTable, StateError> {
        let table = encode_schema(&self.schema).map_err(|e| self.data_error(e.to_string()))?;
        let migrate = pb::write::Request {
            message: Some(pb::write::request::Message::MigrateTable(
                pb::write::MessageMigrateTable {
                    table: table.clone(),
                    migrate_force: false,
                },
            )),
        };
        self.write_stream("Write (migrate the state table)", migrate)
            .await?;
        let mut stream = timed(
            &self.target,
            "Read",
            self.client().read(pb::read::Request { table }),
        )
        .await?
        .map_err(self.rpc_error("Read"))?
        .into_inner();
        let mut rows = Vec::new();
        loop {
            let next = timed(&self.target, "Read", stream.message())
                .await?
                .map_err(self.rpc_error("Read"))?;
            let Some(response) = next else { break };
            self.decode_rows(&response.record, &mut rows)?;
        }
        Ok(StateTable::from_rows(rows))
    }

    /// Writes `rows` (the changed keys) as one insert.
    pub async fn write(&self, rows: &[StateRow]) -> Result<(), StateError> {
        if rows.is_empty() {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.key.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.value.as_str()),
            )),
            Arc::new(UInt64Array::from_iter_values(
                rows.iter().map(|r| r.version),
            )),
        ];
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| self.data_error(e.to_string()))?;
        let record = encode_batch(&batch).map_err(|e| self.data_error(e.to_string()))?;
        let insert = pb::write::Request {
            message: Some(pb::write::request::Message::Insert(
                pb::write::MessageInsert { record },
            )),
        };
        self.write_stream("Write (state)", insert).await
    }

    async fn write_stream(
        &self,
        call: &'static str,
        message: pb::write::Request,
    ) -> Result<(), StateError> {
        let requests = tokio_stream::iter(vec![message]);
        timed(&self.target, call, self.client().write(requests))
            .await?
            .map_err(self.rpc_error(call))?;
        Ok(())
    }

    /// Appends the rows of one `Read` record (an Arrow IPC stream).
    fn decode_rows(&self, record: &[u8], rows: &mut Vec<StateRow>) -> Result<(), StateError> {
        rows.extend(decode_state_rows(record).map_err(|e| self.data_error(e))?);
        Ok(())
    }
}

/// The rows of one `Read` record (an Arrow IPC stream of the state table) from the state
/// backend: rows without a key are skipped, a NULL version counts as 0.
pub fn decode_state_rows(record: &[u8]) -> Result<Vec<StateRow>, String> {
    let reader =
        arrow_ipc::reader::StreamReader::try_new(record, None).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| format!("a record has no column {name:?}"))
        };
        let (keys, values, versions) = (column("key")?, column("value")?, column("version")?);
        for i in 0..batch.num_rows() {
            // A row without a key is not a position of anything.
            let Some(key) = text_at(keys, i)? else {
                continue;
            };
            rows.push(StateRow {
                key,
                value: text_at(values, i)?.unwrap_or_default(),
                version: version_at(versions, i)?,
            });
        }
    }
    Ok(rows)
}

/// The state table's schema, with the metadata the Go SDK gives it.
pub fn state_schema(table_name: &str) -> SchemaRef {
    let field = |name: &str, ty: DataType, primary_key: bool| {
        let flag = |b: bool| if b { "true" } else { "false" }.to_string();
        Field::new(name, ty, true).with_metadata(HashMap::from([
            (CQ_PRIMARY_KEY.to_string(), flag(primary_key)),
            (CQ_UNIQUE.to_string(), flag(false)),
            (CQ_INCREMENTAL.to_string(), flag(false)),
            (CQ_PRIMARY_KEY_COMPONENT.to_string(), flag(false)),
            (CQ_TYPE_SCHEMA.to_string(), String::new()),
        ]))
    };
    let metadata = HashMap::from([
        (TABLE_NAME.to_string(), table_name.to_string()),
        (TABLE_TITLE.to_string(), String::new()),
        (TABLE_DESCRIPTION.to_string(), String::new()),
        (CONSTRAINT_NAME.to_string(), String::new()),
        (TABLE_PERMISSIONS_NEEDED.to_string(), "null".to_string()),
        (TABLE_SENSITIVE_COLUMNS.to_string(), "null".to_string()),
    ]);
    Arc::new(Schema::new_with_metadata(
        vec![
            field("key", DataType::Utf8, true),
            field("value", DataType::Utf8, false),
            field("version", DataType::UInt64, false),
        ],
        metadata,
    ))
}

/// A text cell of a state record (destinations may answer Utf8 or LargeUtf8).
fn text_at(array: &ArrayRef, i: usize) -> Result<Option<String>, String> {
    if array.is_null(i) {
        return Ok(None);
    }
    use arrow_array::cast::AsArray;
    match array.data_type() {
        DataType::Utf8 => Ok(Some(array.as_string::<i32>().value(i).to_string())),
        DataType::LargeUtf8 => Ok(Some(array.as_string::<i64>().value(i).to_string())),
        other => Err(format!("a text column has type {other}")),
    }
}

/// A version cell: NULL counts as 0, as in the Go SDK.
fn version_at(array: &ArrayRef, i: usize) -> Result<u64, String> {
    if array.is_null(i) {
        return Ok(0);
    }
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, UInt64Type};
    match array.data_type() {
        DataType::UInt64 => Ok(array.as_primitive::<UInt64Type>().value(i)),
        DataType::Int64 => {
            Ok(u64::try_from(array.as_primitive::<Int64Type>().value(i)).unwrap_or(0))
        }
        other => Err(format!("the version column has type {other}")),
    }
}

async fn timed<F: std::future::Future>(
    target: &str,
    call: &'static str,
    future: F,
) -> Result<F::Output, StateError> {
    tokio::time::timeout(CALL_TIMEOUT, future)
        .await
        .map_err(|_| StateError::Timeout {
            target: target.to_string(),
            call,
        })
}

/// A channel to `unix:///path` (or `unix:/path`, `unix:path`) or `host:port`.
async fn open_channel(target: &str) -> Result<Channel, tonic::transport::Error> {
    if let Some(rest) = target.strip_prefix("unix:") {
        let path = rest.strip_prefix("//").unwrap_or(rest).to_string();
        // The URI only fills `:authority`; the connector ignores it.
        return Endpoint::from_static("http://localhost")
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }))
            .await;
    }
    let url = if target.contains("://") {
        target.to_string()
    } else {
        format!("http://{target}")
    };
    Endpoint::from_shared(url)?.connect().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_schema_matches_the_go_sdk() {
        let s = state_schema("cq_state_x");
        assert_eq!(s.metadata()["cq:table_name"], "cq_state_x");
        assert_eq!(s.metadata()["cq:table_permissions_needed"], "null");
        let names: Vec<_> = s.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["key", "value", "version"]);
        assert_eq!(s.field(0).metadata()[CQ_PRIMARY_KEY], "true");
        assert_eq!(s.field(1).metadata()[CQ_PRIMARY_KEY], "false");
        assert_eq!(s.field(2).data_type(), &DataType::UInt64);
    }

    #[test]
    fn cells_accept_the_types_destinations_answer() {
        let large: ArrayRef = Arc::new(arrow_array::LargeStringArray::from(vec![Some("k"), None]));
        assert_eq!(text_at(&large, 0).unwrap().as_deref(), Some("k"));
        assert_eq!(text_at(&large, 1).unwrap(), None);
        let signed: ArrayRef = Arc::new(arrow_array::Int64Array::from(vec![Some(7), None]));
        assert_eq!(version_at(&signed, 0).unwrap(), 7);
        assert_eq!(version_at(&signed, 1).unwrap(), 0);
        let wrong: ArrayRef = Arc::new(arrow_array::Int32Array::from(vec![1]));
        assert!(version_at(&wrong, 0).is_err());
        assert!(text_at(&wrong, 0).is_err());
    }
}
