//! Change data capture through logical replication: slot and publication named from `cdc_id`,
//! an initial sync inside the slot's exported snapshot, then the pgoutput stream turned into
//! CloudQuery messages, batched, ordered for the CLI, and acknowledged only once safe.
//!
//! - [`names`]: `cdc_id` → slot and publication names (the documented rule).
//! - [`state`]: progress (which tables are backfilled) in the publication's COMMENT.
//! - [`batch`]: the change buffer: coalescing per key, flushes per table, holding deletes and
//!   schema changes until earlier inserts passed the CLI, progress LSN.
//! - [`ack`]: which position may be confirmed to the server (hand-off + 10 s safety margin,
//!   idle slots follow the server's WAL end) and when to send status updates.

pub mod ack;
pub mod batch;
pub mod names;
pub mod state;

pub use names::{cdc_names, CdcNames};
pub use state::CdcState;
