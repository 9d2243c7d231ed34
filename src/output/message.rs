//! The messages a sync emits, in the plugin's own terms (the gRPC layer maps them onto protobuf).

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, SchemaRef};

use crate::decode::DecodeError;
use crate::wire;

/// One message of a sync.
#[derive(Debug)]
pub enum SyncMessage {
    /// A table's schema (with the CloudQuery metadata, `cq:table_name` at least). Sent before any
    /// insert into that table, parents before children, once per table.
    MigrateTable(SchemaRef),
    /// Rows of one table; the batch's schema is the one sent in `MigrateTable`.
    Insert(RecordBatch),
    DeleteRecord(DeleteRecord),
    /// A table that could not be read to the end; the sync goes on with the others.
    TableFailed(TableFailure),
}

#[derive(Debug, Clone)]
pub struct DeleteRecord {
    pub table_name: String,
    pub where_clause: Vec<PredicateGroup>,
    pub table_relations: Vec<TableRelation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    And,
    Or,
}

#[derive(Debug, Clone)]
pub struct PredicateGroup {
    pub grouping: Grouping,
    pub predicates: Vec<Predicate>,
}

/// `column = value`, the value being the single row of `record` (the only operator is EQ).
#[derive(Debug, Clone)]
pub struct Predicate {
    pub column: String,
    pub record: RecordBatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRelation {
    pub table_name: String,
    pub parent_table: String,
}

/// A table the sync gave up on, with the rows of it already sent.
#[derive(Debug, thiserror::Error)]
#[error("table {table}: {error}")]
pub struct TableFailure {
    /// The table's name as the user selects it (`schema.table`, or bare in the current schema).
    pub table: String,
    /// Rows of this table handed to the output before the failure.
    pub rows_sent: u64,
    #[source]
    pub error: TableError,
}

/// Why a table failed: the server refused or broke off the read, a value could not be decoded,
/// or a record could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("the server failed the read: {0}")]
    Read(#[source] wire::Error),
    #[error("could not decode column {column:?} ({column_type}): {source}")]
    DecodeColumn {
        column: String,
        column_type: String,
        #[source]
        source: DecodeError,
    },
    #[error("could not decode the rows: {0}")]
    Decode(#[source] DecodeError),
    #[error("COPY ended without the binary trailer; rows may be missing")]
    Truncated,
    #[error("could not build a record: {0}")]
    Record(#[source] ArrowError),
    #[error("could not deliver a record: {0}")]
    Delivery(#[source] super::SendError),
}

impl TableError {
    /// The SQLSTATE of the server's error, when the server failed the read.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            TableError::Read(e) => e.code(),
            _ => None,
        }
    }
}
