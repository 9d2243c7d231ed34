//! The PostgreSQL frontend/backend protocol, hand-rolled on tokio.
//!
//! - [`config`]: connection strings (URL and DSN), the `PG*` environment, the passfile.
//! - [`codec`]: framing, backend-message parsing, frontend-message encoding; no I/O (fuzzed).
//! - [`epoch`]: PostgreSQL's clock (2000-01-01) and its offsets from the Unix epoch.
//! - [`connection`]: the socket, message I/O and connection state; `startup` connects (TLS in
//!   `tls`, authentication helpers in [`auth`]); [`query`] runs simple and extended queries.
//! - [`copy`] / [`replication`]: COPY TO STDOUT and CopyBoth streams whose payloads are borrowed
//!   from the connection's read buffer.
//! - [`lsn`]: a position in the write-ahead log and its `XXX/XXX` text form.
//! - [`error`]: the typed errors.

pub mod auth;
mod batched_read;
pub mod codec;
pub(crate) mod config;
pub(crate) mod connection;
pub(crate) mod copy;
pub(crate) mod epoch;
pub(crate) mod error;
pub(crate) mod keepalive;
pub(crate) mod lsn;
pub(crate) mod query;
pub(crate) mod replication;
mod startup;
mod tls;

pub use codec::{FieldDescription, ReplicationMessage};
pub use config::{Config, Host, HostSpec, RootCert, SslMode, TargetSessionAttrs};
pub use connection::{CancelToken, Connection};
pub use copy::CopyOut;
pub use epoch::{pg_clock_now, PG_EPOCH_OFFSET_MICROS};
pub use error::{ConfigError, Error, ServerError};
pub use lsn::{Lsn, LsnParseError};
pub use query::{Param, QueryResult, Row, SimpleResult};
pub use replication::ReplicationStream;
