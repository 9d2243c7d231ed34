//! The one error type of the decoders: it says what was being read, what was expected and what
//! was found. Column indexes are added by the COPY decoder; table and column names by the caller.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes left than the next field needs.
    #[error("{what}: truncated: needed {needed} bytes, {available} left")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    /// A value whose length is fixed by its type had another length.
    #[error("{what}: expected {expected} bytes, found {found}")]
    Length {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    /// Bytes left over after a complete value or message.
    #[error("{what}: {count} unexpected trailing bytes")]
    TrailingBytes { what: &'static str, count: usize },
    /// Text that is not UTF-8.
    #[error("{what}: invalid UTF-8 after {valid_up_to} valid bytes")]
    InvalidUtf8 {
        what: &'static str,
        valid_up_to: usize,
    },
    /// A header or field holding a value outside its allowed set.
    #[error("{what}: expected {expected}, found {found}")]
    Invalid {
        what: &'static str,
        expected: &'static str,
        found: i64,
    },
    /// The COPY BINARY stream did not start with `PGCOPY\n\xff\r\n\0`.
    #[error("COPY binary header: bad signature (expected PGCOPY\\n\\xff\\r\\n\\0)")]
    BadSignature,
    /// A COPY tuple with another number of fields than the decoder has columns.
    #[error("COPY binary tuple: expected {expected} fields, found {found}")]
    FieldCount { expected: usize, found: i64 },
    /// A CopyData payload after the trailer.
    #[error("COPY binary: {count} bytes of data after the trailer")]
    AfterTrailer { count: usize },
    /// A value the column's Arrow type cannot hold, under a rule that says to fail.
    #[error("{what} {value} cannot be sent ({rule})")]
    Unrepresentable {
        what: &'static str,
        value: String,
        rule: &'static str,
    },
    /// An unknown pgoutput message tag.
    #[error("pgoutput: unknown message type {tag:#04x} ({})", char::from(*tag))]
    UnknownMessage { tag: u8 },
    /// A value inside a column failed; `column` is the 0-based column index.
    #[error("column {column}: {source}")]
    Column {
        column: usize,
        #[source]
        source: Box<DecodeError>,
    },
    /// A previous error left a partly decoded row behind; the decoder cannot be used further.
    #[error("decoder unusable after an earlier error")]
    Poisoned,
    /// Arrow refused the assembled batch (e.g. a NULL in a non-nullable field).
    #[error("building the Arrow batch: {0}")]
    Arrow(String),
}

impl DecodeError {
    /// Tag this error with the index of the column it happened in.
    pub fn in_column(self, column: usize) -> DecodeError {
        DecodeError::Column {
            column,
            source: Box::new(self),
        }
    }
}
