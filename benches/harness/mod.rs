//! The benchmark harness: launches a CloudQuery source plugin as the CLI does and measures it.

pub mod cdc;
pub mod client;
pub mod ipc;
pub mod process;
