//! Catalog discovery: which tables exist, their columns, keys and types, mapped to Arrow.

pub(crate) mod discovery;
pub mod load;
pub(crate) mod model;
pub mod schema;
pub(crate) mod select;
pub(crate) mod types;

pub use model::{
    parse_catalog, quote_ident, quote_literal, Catalog, CatalogParseError, CatalogProblem, Column,
    RelKind, Table,
};
