//! CloudQuery source plugin for PostgreSQL.
//!
//! One row travels through these layers, top to bottom:
//!
//! - [`wire`]: the PostgreSQL frontend/backend protocol. `wire::codec` parses and builds messages
//!   without doing I/O; `wire::connection` owns the socket, TLS and authentication; COPY and the
//!   replication CopyBoth stream hand out raw frames borrowed from the read buffer.
//! - [`decode`]: pure decoders from PostgreSQL binary values straight into Arrow builders: one
//!   column reader per column, built once from the catalog's type tree.
//! - [`catalog`]: discovers tables, columns, keys and types, and maps them to Arrow schemas with the
//!   CloudQuery metadata.
//! - [`sync`]: the full sync: one exported snapshot, tables read in parallel, records batched.
//! - [`cdc`]: logical replication: slot and publication, initial snapshot, change stream, acks.
//! - [`source`]: Init, GetTables, Sync and TestConnection of the PostgreSQL source, on top of the
//!   layers above.
//! - [`plugin`]: the CloudQuery gRPC surface: spec validation, the services, the unix-socket
//!   transport, logging.
//! - [`telemetry`]: OpenTelemetry traces, metrics and logs over OTLP to `--otel-endpoint`, with
//!   the Go plugin SDK's names.

pub mod catalog;
pub mod cdc;
pub mod decode;
pub mod incremental;
pub mod logging;
pub mod output;
pub mod pb;
pub mod plugin;
pub mod source;
pub mod sync;
pub mod telemetry;
pub mod wire;
