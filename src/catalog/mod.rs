//! Catalog discovery: which tables exist, their columns, keys and types, mapped to Arrow.

pub mod model;
pub mod schema;
pub mod select;
pub mod types;

pub use model::{parse_catalog, quote_ident, Catalog, Column, RelKind, Table};

/// The discovery statements (one simple-query round trip; see the comments in the file).
pub const DISCOVERY_SQL: &str = include_str!("discovery.sql");
