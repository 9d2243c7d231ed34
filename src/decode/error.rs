//! The one error type of the decoders: it says what was being read, what was expected and what
//! was found. Column indexes are added by the COPY decoder; table and column names by the caller.

use arrow_schema::{ArrowError, DataType};
use thiserror::Error;

#[derive(Debug, Error)]
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
    /// Arrow refused an assembled array or batch (e.g. a NULL in a non-nullable field); `what`
    /// names the part being built.
    #[error("building the Arrow {what}: {source}")]
    Arrow {
        what: &'static str,
        #[source]
        source: ArrowError,
    },
    /// A column's Arrow type is not stored as the reader's values (a reader built for another
    /// type): a bug of the reader's choice, reported instead of a wrong array.
    #[error("Arrow type {data_type} is not stored as {storage}")]
    StorageType {
        data_type: DataType,
        storage: DataType,
    },
}

/// Equal when they say the same: Arrow's error (which has no equality of its own) is compared by
/// its text. Lets tests and callers compare whole results.
impl PartialEq for DecodeError {
    fn eq(&self, other: &DecodeError) -> bool {
        use DecodeError as E;
        match (self, other) {
            (
                E::Truncated {
                    what,
                    needed,
                    available,
                },
                E::Truncated {
                    what: w,
                    needed: n,
                    available: a,
                },
            ) => (what, needed, available) == (w, n, a),
            (
                E::Length {
                    what,
                    expected,
                    found,
                },
                E::Length {
                    what: w,
                    expected: e,
                    found: f,
                },
            ) => (what, expected, found) == (w, e, f),
            (E::TrailingBytes { what, count }, E::TrailingBytes { what: w, count: c }) => {
                (what, count) == (w, c)
            }
            (
                E::InvalidUtf8 { what, valid_up_to },
                E::InvalidUtf8 {
                    what: w,
                    valid_up_to: v,
                },
            ) => (what, valid_up_to) == (w, v),
            (
                E::Invalid {
                    what,
                    expected,
                    found,
                },
                E::Invalid {
                    what: w,
                    expected: e,
                    found: f,
                },
            ) => (what, expected, found) == (w, e, f),
            (E::BadSignature, E::BadSignature) | (E::Poisoned, E::Poisoned) => true,
            (
                E::FieldCount { expected, found },
                E::FieldCount {
                    expected: e,
                    found: f,
                },
            ) => (expected, found) == (e, f),
            (E::AfterTrailer { count }, E::AfterTrailer { count: c }) => count == c,
            (
                E::Unrepresentable { what, value, rule },
                E::Unrepresentable {
                    what: w,
                    value: v,
                    rule: r,
                },
            ) => (what, value, rule) == (w, v, r),
            (E::UnknownMessage { tag }, E::UnknownMessage { tag: t }) => tag == t,
            (
                E::Column { column, source },
                E::Column {
                    column: c,
                    source: s,
                },
            ) => column == c && source == s,
            (E::Arrow { what, source }, E::Arrow { what: w, source: s }) => {
                what == w && source.to_string() == s.to_string()
            }
            (
                E::StorageType { data_type, storage },
                E::StorageType {
                    data_type: d,
                    storage: s,
                },
            ) => (data_type, storage) == (d, s),
            _ => false,
        }
    }
}

impl DecodeError {
    /// Tag this error with the index of the column it happened in.
    pub(crate) fn in_column(self, column: usize) -> DecodeError {
        DecodeError::Column {
            column,
            source: Box::new(self),
        }
    }
}
