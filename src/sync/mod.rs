//! The full sync: one exported snapshot, tables (and ctid ranges of big tables) read in parallel
//! with COPY BINARY, decoded straight into Arrow records.

pub mod engine;
pub mod plan;

pub use plan::{TablePlan, WorkItem};
