//! Pure decoders from PostgreSQL binary values into Arrow.
//!
//! - [`types`]: the type tree ([`PgType`]) and its Arrow fields, CloudQuery metadata included.
//! - [`readers`]: one [`ColumnReader`] per column, chosen once from the type tree, appending
//!   binary send-format values straight into Arrow builders (arrays wrap their element reader).
//! - [`copy_binary`]: the COPY BINARY stream (header, tuples, trailer) driving the readers.
//! - [`pgoutput`]: logical replication messages, parsed into borrowed views.
//!
//! Nothing here does I/O; every input is treated as untrusted and malformed bytes become a
//! [`DecodeError`] (no panics), which is what the fuzz targets check.

mod array;
mod buf;
pub mod copy_binary;
mod decimal;
pub(crate) mod error;
mod fixed;
pub(crate) mod inet;
pub(crate) mod interval;
pub mod metadata;
pub(crate) mod numeric;
pub mod pgoutput;
pub(crate) mod readers;
pub mod rules;
pub mod text;
pub mod types;

pub use copy_binary::CopyBinaryDecoder;
pub use error::DecodeError;
pub use pgoutput::{parse as parse_pgoutput, PgOutputMessage};
pub use readers::ColumnReader;
pub use rules::ValueOptions;
pub use types::{arrow_field, arrow_type, cq_field, PgType};

#[cfg(test)]
mod tests;
