//! Runs the discovery statements over a connection.

use crate::catalog::discovery::discovery_sql;
use crate::catalog::model::parse_catalog_with;
use crate::catalog::{Catalog, CatalogParseError};
use crate::decode::ValueOptions;
use crate::wire::{self, Connection};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("failed to read the catalog: {0}")]
    Query(#[from] wire::Error),
    #[error(transparent)]
    Parse(#[from] CatalogParseError),
}

/// Discovers every table the connecting user can see (one round trip), default value options.
pub async fn load(conn: &mut Connection) -> Result<Catalog, CatalogError> {
    load_with(conn, &ValueOptions::default()).await
}

/// As [`load`], with numeric and interval columns mapped as `options` say.
pub(crate) async fn load_with(
    conn: &mut Connection,
    options: &ValueOptions,
) -> Result<Catalog, CatalogError> {
    let results = conn.simple_query(&discovery_sql()).await?;
    let rows: Vec<_> = results.into_iter().map(|r| r.rows).collect();
    Ok(parse_catalog_with(&rows, options)?)
}
