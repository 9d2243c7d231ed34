//! The source's API: the calls the gRPC surface makes (Init, GetTables, Sync, TestConnection) in
//! the plugin's own terms, and the source's error.

use arrow_schema::SchemaRef;

use super::spec::Spec;
use crate::output::{SendError, SyncSender};
use crate::wire;

/// An error that ends an Init, GetTables or Sync call. Each variant keeps its cause as
/// [`std::error::Error::source`], so a server error's SQLSTATE survives up to the gRPC layer,
/// which builds the one-line text the CLI shows ([`SourceError::chain_text`]).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("plugin not initialized")]
    NotInitialized,
    /// A rule of the spec or of the selection, stated for the person who wrote the config.
    #[error("{0}")]
    Invalid(String),
    #[error("connection_string: {0}")]
    ConnectionString(#[source] wire::ConfigError),
    #[error("failed to connect to PostgreSQL: {0}")]
    Connect(#[source] wire::Error),
    #[error("failed to discover tables: {0}")]
    Catalog(#[source] crate::catalog::load::CatalogError),
    #[error(transparent)]
    Sync(#[from] crate::sync::engine::SyncError),
    #[error(transparent)]
    Cdc(#[from] crate::cdc::CdcError),
    #[error(transparent)]
    Incremental(#[from] super::incremental::IncrementalError),
    #[error(transparent)]
    Send(#[from] SendError),
}

impl SourceError {
    pub fn msg(message: impl Into<String>) -> SourceError {
        SourceError::Invalid(message.into())
    }

    /// The SQLSTATE of the PostgreSQL error at the root of this one, if any.
    pub fn sqlstate(&self) -> Option<&str> {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cause {
            if let Some(code) = e.downcast_ref::<wire::Error>().and_then(wire::Error::code) {
                return Some(code);
            }
            cause = e.source();
        }
        None
    }

    /// One line for a person: this error and every cause not already in its text.
    pub fn chain_text(&self) -> String {
        chain_text(self)
    }
}

/// `outer: inner: root`, skipping a cause whose text the outer message already contains.
pub use crate::logging::error_chain as chain_text;

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

/// What the gRPC surface calls; [`super::PostgresSource`] is the implementation.
///
/// Each CLI command starts a fresh plugin process, so there is normally one `init` per process
/// (a second `init` after a successful one is passed on, not refused). `init` and `sync` never
/// run at the same time; `tables` and `test_connection` may run at any time.
#[tonic::async_trait]
pub trait Source: Send + Sync + 'static {
    /// Init: connect (when allowed) and discover. `no_connection` is what `cloudquery tables` and
    /// `migrate` send: the source then lists what it can without failing.
    async fn init(&self, spec: Spec, no_connection: bool) -> Result<(), SourceError>;

    /// GetTables: the selected tables' schemas, parents first; empty when nothing matches.
    async fn tables(
        &self,
        tables: &[String],
        skip_tables: &[String],
        skip_dependent_tables: bool,
    ) -> Result<Vec<SchemaRef>, SourceError>;

    /// Sync: send every selected table's `MigrateTable`, then its inserts (and, for CDC, deletes).
    /// A table that fails goes out as `TableFailed` and the sync goes on; an `Err` ends the
    /// stream with a failed status. The future is dropped when the client goes away, so cleanup
    /// belongs in `Drop`, and a [`SendError::Closed`] means "stop now".
    async fn sync(&self, request: SyncRequest, out: SyncSender) -> Result<(), SourceError>;

    /// TestConnection with an already validated spec (no Init has necessarily happened).
    async fn test_connection(&self, spec: Spec) -> TestConnectionOutcome;
}
