//! Incremental sync without replication: what an incremental table reads (`predicate`), the
//! position it stores after each sync (`position`) and the key/value rules of CloudQuery's state
//! backend (`state_table`). Pure code: the source drives it, the sync engine reads, and the
//! plugin's state client carries the positions to and from the destination.

pub(crate) mod position;
pub(crate) mod predicate;
pub(crate) mod state_table;

pub use position::{Mode, PgSnapshot, Position, PositionError, Scope};
pub use predicate::{plan_read, CursorColumn, Read, WholeReason};
pub use state_table::{StateRow, StateTable};
