//! Typed errors of the wire client.
//!
//! Every variant carries enough context to act on (which address, which step) and none carries a
//! password: connection settings only ever reach an error through their redacted form.

use std::fmt;
use std::io;
use std::time::Duration;

/// A connection string, environment or passfile problem. Names the offending part, never a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid connection settings: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    pub(crate) fn new(msg: impl Into<String>) -> ConfigError {
        ConfigError(msg.into())
    }
}

/// Every field of an ErrorResponse (or NoticeResponse), as the server sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerError {
    /// Localized severity (`S`), e.g. `ERROR`, `FATAL`, `WARNING`.
    pub severity: String,
    /// Non-localized severity (`V`, PostgreSQL 9.6+).
    pub severity_nonlocalized: Option<String>,
    /// SQLSTATE (`C`).
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// Cursor position into the query string (`P`), 1-based characters.
    pub position: Option<u32>,
    pub internal_position: Option<u32>,
    pub internal_query: Option<String>,
    pub where_: Option<String>,
    pub schema: Option<String>,
    pub table: Option<String>,
    pub column: Option<String>,
    pub datatype: Option<String>,
    pub constraint: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub routine: Option<String>,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (SQLSTATE {})",
            self.severity, self.message, self.code
        )?;
        if let Some(d) = &self.detail {
            write!(f, "; detail: {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "; hint: {h}")?;
        }
        if let Some(p) = self.position {
            write!(f, "; at position {p}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("TLS error {context}: {message}")]
    Tls { context: String, message: String },
    #[error("timeout after {}s {context}", after.as_secs_f64())]
    Timeout { context: String, after: Duration },
    #[error("authentication failed {context}: {message}")]
    Auth { context: String, message: String },
    #[error("server error {context}: {error}")]
    Server {
        context: String,
        error: Box<ServerError>,
    },
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A value of an extended query's result that the getter cannot read as its type (the
    /// statement returned another type than the caller expects); `column` is 0-based.
    #[error("result column {column}: {len} bytes are not a binary {expected}")]
    ResultValue {
        column: usize,
        expected: &'static str,
        len: usize,
    },
    /// The statement did not do what the call expects (e.g. `copy_out` of a non-COPY statement);
    /// the connection stays usable.
    #[error("{0}")]
    Usage(String),
    /// A call that needs an idle connection found it busy or broken (after an earlier fatal error).
    #[error("connection unusable: {0}")]
    Closed(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn protocol(msg: impl Into<String>) -> Error {
        Error::Protocol(msg.into())
    }

    pub(crate) fn server(context: impl Into<String>, error: ServerError) -> Error {
        Error::Server {
            context: context.into(),
            error: Box::new(error),
        }
    }

    pub(crate) fn auth(context: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Auth {
            context: context.into(),
            message: message.into(),
        }
    }

    /// The SQLSTATE of a server error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Server { error, .. } => Some(error.code.as_str()),
            _ => None,
        }
    }

    /// The full server error, when the server sent one.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            Error::Server { error, .. } => Some(error),
            _ => None,
        }
    }

    /// True when the connection is gone (socket closed or reset, server shutting down): the caller
    /// must reconnect rather than retry on this connection.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Error::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::NotConnected
            ),
            // admin_shutdown, crash_shutdown, cannot_connect_now
            Error::Server { error, .. } => {
                matches!(error.code.as_str(), "57P01" | "57P02" | "57P03")
            }
            Error::Closed(_) => true,
            _ => false,
        }
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }
}
