//! The CloudQuery plugin surface: command line, gRPC services, spec, unix-socket transport.
//!
//! - [`cli`]: `serve` flags as the CLI passes them, `--version`, `--help`; and the connection-string check.
//! - [`server`]: runtime, listener (unix socket or TCP), signals, bounded shutdown.
//! - [`transport`]: the unix-socket `:authority` normaliser that lets h2 accept grpc-go's requests.
//! - [`service`]: discovery v1 and plugin v3 over the [`service::Source`] seam that the catalog,
//!   sync and CDC layers implement; the Sync stream.
//! - [`ipc`]: records as Arrow IPC streams, each table's schema message encoded once.
//! - [`spec`] / [`spec_schema`]: the spec's rules, once as a validator and once as the JSON Schema
//!   GetSpecSchema returns; [`spec_values`] the value options (numeric, interval, ±infinity,
//!   out-of-range dates) for both.
//! - [`pb`]: generated protobuf messages, servers and clients.
//!
//! The handlers hold no business logic: they translate protobuf to and from [`spec::Spec`],
//! [`service::SyncRequest`], [`service::SyncMessage`] and Arrow schemas/batches.

pub mod cli;
pub mod ipc;
pub mod pb;
pub mod server;
pub mod service;
pub mod spec;
pub mod spec_schema;
pub mod spec_values;
pub mod state_client;
pub mod table_options;
pub mod transport;
