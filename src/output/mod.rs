//! The output vocabulary: what a sync produces and how it leaves the producer.
//!
//! - [`message`]: the messages a sync emits (a table's schema, a record of rows, a delete, a
//!   table that failed), with typed errors that keep their cause;
//! - [`channel`]: the bounded channel between the producers (full sync, incremental sync, CDC)
//!   and the consumer (the gRPC Sync stream): back-pressure, a flush barrier, cancellation;
//! - [`ipc`]: Arrow IPC stream encoding, done on the producer's task so tables read in parallel
//!   also encode in parallel.
//!
//! This module sits below `sync` and `cdc` and above `catalog`: it knows Arrow, the wire
//! client's and the decoders' errors, and nothing of gRPC or of the layers that produce.

pub(crate) mod channel;
pub mod ipc;
pub(crate) mod message;

pub use channel::{
    channel, Delivery, EncodedDelete, EncodedGroup, EncodedPredicate, SendError, SyncReceiver,
    SyncSender, MAX_SYNC_MESSAGE, SYNC_CHANNEL_CAPACITY,
};
pub use message::{
    DeleteRecord, Grouping, Predicate, PredicateGroup, SyncMessage, TableError, TableFailure,
    TableRelation,
};
