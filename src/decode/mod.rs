//! Pure decoders from PostgreSQL binary values into Arrow builders.

pub mod types;

pub use types::PgType;
