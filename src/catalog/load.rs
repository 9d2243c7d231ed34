//! Runs the discovery statements over a connection.

use crate::catalog::discovery::discovery_sql;
use crate::catalog::{parse_catalog, Catalog, CatalogParseError};
use crate::wire::{self, Connection};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("failed to read the catalog: {0}")]
    Query(#[from] wire::Error),
    #[error(transparent)]
    Parse(#[from] CatalogParseError),
}

/// Discovers every table the connecting user can see (one round trip).
pub async fn load(conn: &mut Connection) -> Result<Catalog, CatalogError> {
    let results = conn.simple_query(&discovery_sql()).await?;
    let rows: Vec<_> = results.into_iter().map(|r| r.rows).collect();
    Ok(parse_catalog(&rows)?)
}
