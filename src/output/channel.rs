//! The bounded channel between a sync's producers and the gRPC Sync stream.
//!
//! Producers encode on their own task (tables read in parallel also encode in parallel) and then
//! wait for room: the channel's capacity is the only buffer between PostgreSQL and the CLI, so a
//! slow CLI slows the readers down instead of growing memory. When the consumer goes away every
//! later send fails with [`SendError::Closed`], which producers take as "stop now".

use std::task::{Context, Poll};

use arrow_schema::{ArrowError, Schema};
use tokio::sync::{mpsc, oneshot};

use super::ipc::{encode_batch, encode_schema, IpcEncoder};
use super::message::{DeleteRecord, Grouping, SyncMessage, TableFailure, TableRelation};
use crate::catalog::schema::TABLE_NAME;

/// Largest single Sync message: the Go SDK drops anything over 100 MiB.
pub const MAX_SYNC_MESSAGE: usize = 100 << 20;
/// Encoded messages buffered between the producers and the gRPC stream.
pub const SYNC_CHANNEL_CAPACITY: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The CLI went away (or the sync was cancelled): stop producing.
    #[error("the sync stream is closed (the client went away)")]
    Closed,
    #[error("encoding Arrow IPC for table {table}: {source}")]
    Encode {
        table: String,
        #[source]
        source: ArrowError,
    },
    #[error("a Sync message for table {table} is {bytes} bytes, over the {MAX_SYNC_MESSAGE}-byte limit; send smaller records")]
    TooLarge { table: String, bytes: usize },
}

/// A message as it leaves the channel: Arrow already encoded as IPC streams.
#[derive(Debug)]
pub enum Delivery {
    MigrateTable {
        table: String,
        schema: Vec<u8>,
    },
    Insert {
        table: String,
        rows: usize,
        record: Vec<u8>,
    },
    DeleteRecord(EncodedDelete),
    TableFailed(TableFailure),
    /// The sync ended with this error; nothing follows.
    Failed(String),
}

#[derive(Debug)]
pub struct EncodedDelete {
    pub table_name: String,
    pub where_clause: Vec<EncodedGroup>,
    pub table_relations: Vec<TableRelation>,
}

#[derive(Debug)]
pub struct EncodedGroup {
    pub grouping: Grouping,
    pub predicates: Vec<EncodedPredicate>,
}

/// `column = value`, the value an IPC stream of one row.
#[derive(Debug)]
pub struct EncodedPredicate {
    pub column: String,
    pub record: Vec<u8>,
}

/// What travels through the channel.
enum Outgoing {
    Message(Delivery),
    /// Answered when the consumer takes it, i.e. once every message queued before it was taken.
    Barrier(oneshot::Sender<()>),
}

/// Where a sync sends its messages. Cheap to clone (one per table task); the consumer sees the
/// end of the stream once every clone is dropped.
#[derive(Clone)]
pub struct SyncSender {
    tx: mpsc::Sender<Outgoing>,
    /// Shared by the clones: each table's schema message is encoded once.
    ipc: IpcEncoder,
}

/// The consuming end of a [`SyncSender`].
pub struct SyncReceiver {
    rx: mpsc::Receiver<Outgoing>,
}

/// A sender and its receiver holding at most `capacity` encoded messages.
pub fn channel(capacity: usize) -> (SyncSender, SyncReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (
        SyncSender {
            tx,
            ipc: IpcEncoder::default(),
        },
        SyncReceiver { rx },
    )
}

impl SyncReceiver {
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        loop {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Outgoing::Barrier(done))) => {
                    // The waiter may have given up; nothing to tell then.
                    let _ = done.send(());
                }
                Poll::Ready(Some(Outgoing::Message(m))) => return Poll::Ready(Some(m)),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    pub async fn recv(&mut self) -> Option<Delivery> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }
}

impl SyncSender {
    /// Encodes `msg` on the caller's task, then waits for room in the channel (back-pressure).
    pub async fn send(&self, msg: SyncMessage) -> Result<(), SendError> {
        let delivery = self.encode(msg)?;
        self.deliver(delivery).await
    }

    /// Ends the stream with `error` (the consumer turns it into a failed status).
    pub async fn fail(&self, error: String) -> Result<(), SendError> {
        self.deliver(Delivery::Failed(error)).await
    }

    async fn deliver(&self, delivery: Delivery) -> Result<(), SendError> {
        self.tx
            .send(Outgoing::Message(delivery))
            .await
            .map_err(|_| SendError::Closed)
    }

    /// Waits until the consumer has taken every message this sender (or any clone) queued
    /// before the call: from then on they are the CLI's. The incremental sync stores a table's
    /// position only after this.
    pub async fn flushed(&self) -> Result<(), SendError> {
        let (done, taken) = oneshot::channel();
        self.tx
            .send(Outgoing::Barrier(done))
            .await
            .map_err(|_| SendError::Closed)?;
        taken.await.map_err(|_| SendError::Closed)
    }

    /// True once the consumer went away.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves when the consumer goes away.
    pub async fn closed(&self) {
        self.tx.closed().await
    }

    fn encode(&self, msg: SyncMessage) -> Result<Delivery, SendError> {
        Ok(match msg {
            SyncMessage::MigrateTable(schema) => {
                let table = table_name_of(&schema);
                let bytes = encode_schema(&schema).map_err(|source| SendError::Encode {
                    table: table.clone(),
                    source,
                })?;
                check_size(&table, bytes.len())?;
                Delivery::MigrateTable {
                    table,
                    schema: bytes,
                }
            }
            SyncMessage::Insert(batch) => {
                let table = table_name_of(&batch.schema());
                let record = self
                    .ipc
                    .encode(&batch)
                    .map_err(|source| SendError::Encode {
                        table: table.clone(),
                        source,
                    })?;
                check_size(&table, record.len())?;
                Delivery::Insert {
                    table,
                    rows: batch.num_rows(),
                    record,
                }
            }
            SyncMessage::DeleteRecord(d) => Delivery::DeleteRecord(encode_delete(d)?),
            SyncMessage::TableFailed(failure) => Delivery::TableFailed(failure),
        })
    }
}

fn check_size(table: &str, bytes: usize) -> Result<(), SendError> {
    if bytes > MAX_SYNC_MESSAGE {
        return Err(SendError::TooLarge {
            table: table.to_string(),
            bytes,
        });
    }
    Ok(())
}

fn table_name_of(schema: &Schema) -> String {
    schema
        .metadata()
        .get(TABLE_NAME)
        .cloned()
        .unwrap_or_default()
}

fn encode_delete(d: DeleteRecord) -> Result<EncodedDelete, SendError> {
    let mut where_clause = Vec::with_capacity(d.where_clause.len());
    for group in d.where_clause {
        let mut predicates = Vec::with_capacity(group.predicates.len());
        for p in group.predicates {
            let record = encode_batch(&p.record).map_err(|source| SendError::Encode {
                table: d.table_name.clone(),
                source,
            })?;
            predicates.push(EncodedPredicate {
                column: p.column,
                record,
            });
        }
        where_clause.push(EncodedGroup {
            grouping: group.grouping,
            predicates,
        });
    }
    Ok(EncodedDelete {
        table_name: d.table_name,
        where_clause,
        table_relations: d.table_relations,
    })
}
