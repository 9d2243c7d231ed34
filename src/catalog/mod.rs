//! Catalog discovery: which tables exist, their columns, keys and types, mapped to Arrow.

pub mod discovery;
pub mod load;
pub mod model;
pub mod schema;
pub mod select;
pub mod types;

pub use model::{
    parse_catalog, quote_ident, quote_literal, Catalog, CatalogParseError, CatalogProblem, Column,
    RelKind, Table,
};
