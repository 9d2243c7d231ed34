//! The change stream: pgoutput messages → [`ChangeBuffer`] → Sync messages, with standby status
//! updates from the [`AckTracker`].
//!
//! Values: binary pgoutput values are already in the send format; text values (PostgreSQL
//! 12–13, or a published column without a native decoder) are converted by
//! [`text_to_binary`], so one set of column readers builds every record.
//!
//! Per change:
//! - Insert / Update → an upsert of the complete new row. An unchanged TOAST value (`u`) is
//!   taken from the old row under REPLICA IDENTITY FULL, otherwise the row's current values are
//!   read by key on a normal connection (a row gone by then is skipped: its delete follows in
//!   the stream). An update that changed the key also deletes the old key.
//! - Delete → a delete of the key: the primary key columns, or the replica identity columns of
//!   a table without one.
//! - Truncate → a warning naming the table (CloudQuery has no message for it).
//! - Relation → the table's columns; when they differ from what was last sent, a new
//!   `migrate_table` goes out before the table's next rows.

use std::collections::HashMap;
use std::time::Instant;

use arrow_schema::SchemaRef;

use crate::catalog::{Column, Table};
use crate::decode::pgoutput::{self, OldKind, PgOutputMessage, TupleData, TupleValue};
use crate::decode::text::text_to_binary;
use crate::decode::{DecodeError, PgType, ValueOptions};
use crate::output::{SyncMessage, SyncSender};
use crate::wire::Connection;

use super::ack::AckTracker;
use super::batch::{ChangeBuffer, Lsn, Output};
pub use super::packed::{Key, Row, Value};
use super::CdcError;
use relations::key_indices;

mod records;
mod relations;
mod toast;

/// A streamed table: the catalog entry (columns as last sent) and its destination name.
#[derive(Clone, Debug, Default)]
pub struct StreamTable {
    pub table: Table,
    pub dest_name: String,
    /// `table_options.exclude_columns`: left out of the publication (PostgreSQL 15+) and, on
    /// every version, out of every change before it is decoded.
    pub excluded_columns: Vec<String>,
    /// `table_options.filter`: the publication's row filter (PostgreSQL 15+ only).
    pub filter: Option<String>,
}

/// What a Migrate carries through the buffer: the new columns.
#[derive(Clone, Debug)]
pub struct SchemaVersion {
    columns: Vec<Column>,
}

type Buffer = ChangeBuffer<usize, Key, Row, SchemaVersion>;

/// One relation id's columns as the stream describes them.
struct Rel {
    table: usize,
    /// Per relation column: its type, or `None` for a column left out of rows (see
    /// [`Streamer::relation`]).
    types: Vec<Option<PgType>>,
    /// Indices (in the row, i.e. the kept columns) of the key used for deletes and re-reads.
    key: Vec<usize>,
    /// Names and types of the kept columns, in row order.
    names: Vec<String>,
    kept_types: Vec<PgType>,
}

/// What the table's records are built with (switches when a Migrate is handed over).
struct Emit {
    schema: SchemaRef,
    columns: Vec<Column>,
    key: Vec<usize>,
}

/// One streamed table's state: what it is, what the stream last said about it, and what its
/// records are built with now.
struct TableState {
    stream: StreamTable,
    /// The columns the stream last described (what the buffer's rows follow).
    latest: Vec<Column>,
    emit: Emit,
}

pub struct Streamer {
    /// Indexed by the buffer's table number.
    tables: Vec<TableState>,
    rels: HashMap<u32, Rel>,
    unknown_rels: HashMap<u32, String>,
    warned_rels: std::collections::HashSet<u32>,
    buffer: Buffer,
    ack: AckTracker,
    /// Normal connection for re-reading rows with unchanged TOAST values.
    fetch: Connection,
    /// LSN of the message being handled (for errors).
    lsn: Lsn,
    scratch: Vec<u8>,
    /// Inserts, updates and deletes seen (for the lag line and the metrics).
    changes: u64,
    /// Commit time of the last transaction seen (microseconds since 2000-01-01 UTC).
    last_commit_time: Option<i64>,
    /// Value options: column mapping of re-read catalogs, the readers' value rules.
    values: ValueOptions,
}

fn schema_of(t: &StreamTable, columns: &[Column]) -> SchemaRef {
    let mut table = t.table.clone();
    table.columns = columns.to_vec();
    crate::catalog::schema::arrow_schema(&table, &t.dest_name)
}

impl Streamer {
    pub fn new(
        tables: Vec<StreamTable>,
        buffer: Buffer,
        ack: AckTracker,
        fetch: Connection,
    ) -> Self {
        let tables = tables
            .into_iter()
            .map(|t| {
                let names: Vec<String> = t.table.columns.iter().map(|c| c.name.clone()).collect();
                TableState {
                    emit: Emit {
                        schema: schema_of(&t, &t.table.columns),
                        columns: t.table.columns.clone(),
                        key: key_indices(&t.table, &names, &[]),
                    },
                    latest: t.table.columns.clone(),
                    stream: t,
                }
            })
            .collect();
        Streamer {
            tables,
            rels: HashMap::new(),
            unknown_rels: HashMap::new(),
            warned_rels: std::collections::HashSet::new(),
            buffer,
            ack,
            values: ValueOptions::default(),
            fetch,
            lsn: Lsn::ZERO,
            scratch: Vec::new(),
            changes: 0,
            last_commit_time: None,
        }
    }

    /// A value of `column` of `table` that could not be decoded, at the current LSN.
    fn value_err(&self, table: usize, column: &str, source: DecodeError) -> CdcError {
        CdcError::Value {
            table: self.table_name(table),
            column: column.to_string(),
            lsn: self.lsn,
            source,
        }
    }

    fn record_err(&self, table: usize, source: arrow_schema::ArrowError) -> CdcError {
        CdcError::Record {
            table: self.table_name(table),
            lsn: self.lsn,
            source,
        }
    }

    /// Inserts, updates and deletes seen so far.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Commit time of the last transaction seen, in PostgreSQL's clock (µs since 2000-01-01).
    pub fn last_commit_time(&self) -> Option<i64> {
        self.last_commit_time
    }

    /// The LSN of the message being handled.
    pub fn position(&self) -> Lsn {
        self.lsn
    }

    /// The value options (default until set): see [`ValueOptions`].
    pub fn with_values(mut self, values: ValueOptions) -> Self {
        self.values = values;
        self
    }

    fn table_name(&self, table: usize) -> String {
        self.tables.get(table).map_or_else(String::new, |t| {
            format!("{}.{}", t.stream.table.schema, t.stream.table.name)
        })
    }

    /// Handle one XLogData payload (a pgoutput message) received at `wal_start`, at `now`.
    pub async fn handle_xlog(
        &mut self,
        wal_start: Lsn,
        data: &[u8],
        now: Instant,
    ) -> Result<(), CdcError> {
        // Messages without a WAL record of their own (Relation, …) carry position 0.
        if wal_start != Lsn::ZERO {
            self.lsn = wal_start;
        }
        let msg = pgoutput::parse(data).map_err(|source| CdcError::Message {
            lsn: wal_start,
            source,
        })?;
        crate::telemetry::cdc_message(&msg);
        match msg {
            PgOutputMessage::Begin(b) => self.buffer.begin(b.final_lsn),
            PgOutputMessage::Commit(c) => {
                self.last_commit_time = Some(c.commit_time);
                self.buffer.commit(c.end_lsn)
            }
            PgOutputMessage::Relation(r) => self.relation(&r, now).await?,
            PgOutputMessage::Insert(i) => {
                self.changes += 1;
                if let Some(table) = self.rel_table(i.relation_id) {
                    let row = self.row(i.relation_id, &i.new, None).await?;
                    if let Some(row) = row {
                        let key = self.key_of(i.relation_id, &row);
                        self.buffer.upsert(table, key, row, now);
                    }
                }
            }
            PgOutputMessage::Update(u) => {
                self.changes += 1;
                if let Some(table) = self.rel_table(u.relation_id) {
                    let old_full = match &u.old {
                        Some((OldKind::Old, old)) => Some(*old),
                        _ => None,
                    };
                    let row = self.row(u.relation_id, &u.new, old_full.as_ref()).await?;
                    if let Some((_, old)) = &u.old {
                        // The key changed (or FULL identity): delete the old key if it differs.
                        let old_row = self.values(u.relation_id, old)?;
                        let old_key = self.key_of(u.relation_id, &old_row);
                        let new_key = row.as_ref().map(|r| self.key_of(u.relation_id, r));
                        if old_key.iter().any(|v| v.is_some()) && Some(&old_key) != new_key.as_ref()
                        {
                            self.buffer.delete(table, old_key, now);
                        }
                    }
                    if let Some(row) = row {
                        let key = self.key_of(u.relation_id, &row);
                        self.buffer.upsert(table, key, row, now);
                    }
                }
            }
            PgOutputMessage::Delete(d) => {
                self.changes += 1;
                if let Some(table) = self.rel_table(d.relation_id) {
                    let old = self.values(d.relation_id, &d.old.1)?;
                    let key = self.key_of(d.relation_id, &old);
                    self.buffer.delete(table, key, now);
                }
            }
            PgOutputMessage::Truncate(t) => {
                for id in t.relation_ids() {
                    let name = self
                        .rels
                        .get(&id)
                        .map(|r| self.table_name(r.table))
                        .or_else(|| self.unknown_rels.get(&id).cloned())
                        .unwrap_or_else(|| format!("relation {id}"));
                    crate::log_warn!(
                        format!(
                            "TRUNCATE of {name} was not applied at the destination: CloudQuery \
                             has no message for it; the rows stay until deleted or re-synced"
                        ),
                        table = name,
                        lsn = wal_start.to_string()
                    );
                }
            }
            // Origin, Type, logical messages: nothing to do; streamed-transaction messages do
            // not occur with proto_version 1.
            _ => {}
        }
        Ok(())
    }

    /// One tuple's values in send format (`u` values stay `None`; see [`Self::row`]).
    fn values(&mut self, rel_id: u32, tuple: &TupleData<'_>) -> Result<Row, CdcError> {
        let rel = self.rels.get(&rel_id).ok_or(CdcError::UnknownRelation {
            relation_id: rel_id,
            lsn: self.lsn,
        })?;
        let ti = rel.table;
        // Packed values take at most the bytes they took in the message (text converted to
        // binary may take more; the buffer then grows).
        let mut out = Row::with_capacity(tuple.byte_len());
        let mut n = 0;
        for (i, v) in tuple.iter().enumerate() {
            let ty = rel.types.get(i).ok_or_else(|| CdcError::TupleShape {
                table: self.table_name(ti),
                lsn: self.lsn,
            })?;
            let Some(ty) = ty else { continue };
            match v {
                TupleValue::Null | TupleValue::UnchangedToast => out.push(None),
                TupleValue::Binary(b) => out.push(Some(b)),
                TupleValue::Text(t) => {
                    self.scratch.clear();
                    text_to_binary(ty, t, &mut self.scratch).map_err(|source| {
                        self.value_err(ti, rel.names.get(n).map_or("?", String::as_str), source)
                    })?;
                    out.push(Some(&self.scratch));
                }
            }
            n += 1;
        }
        Ok(out)
    }

    fn key_of(&self, rel_id: u32, row: &Row) -> Key {
        match self.rels.get(&rel_id) {
            Some(rel) => match rel.key.as_slice() {
                // The usual case: a one-column key, often the first column.
                [i] => Key::new([row.get(*i)]),
                key => Key::new(key.iter().map(|&i| row.get(i))),
            },
            None => Key::new([]),
        }
    }

    /// What the buffer releases now, to hand over with [`Self::send`] in order, then
    /// [`Self::handed_off`].
    pub fn ready(&mut self, now: Instant) -> Vec<Output<usize, Key, Row, SchemaVersion>> {
        let mut outputs = Vec::new();
        self.buffer.poll(now, &mut outputs);
        outputs
    }

    /// Hand one released output to the CLI (waits while the CLI applies backpressure).
    pub async fn send(
        &mut self,
        o: Output<usize, Key, Row, SchemaVersion>,
        out: &SyncSender,
    ) -> Result<(), CdcError> {
        match o {
            Output::Migrate { table, schema } => {
                let t = &self.tables[table].stream;
                let names: Vec<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
                let key = key_indices(&t.table, &names, &[]);
                let arrow = schema_of(t, &schema.columns);
                self.tables[table].emit = Emit {
                    schema: arrow.clone(),
                    columns: schema.columns,
                    key,
                };
                out.send(SyncMessage::MigrateTable(arrow)).await?;
            }
            Output::Insert { table, rows } => {
                let batch = self.record(table, &rows)?;
                out.send(SyncMessage::Insert(batch)).await?;
            }
            Output::Delete { table, key } => {
                let msg = self.delete_message(table, &key)?;
                out.send(SyncMessage::DeleteRecord(msg)).await?;
            }
        }
        Ok(())
    }

    /// Everything [`Self::ready`] returned was sent: record the progress.
    pub fn handed_off(&mut self, now: Instant) {
        let resume = self.buffer.resume_lsn();
        self.ack.handed_off(resume, now);
        crate::telemetry::cdc_handed_off(resume, self.ack.server_wal_end());
    }

    pub fn ack(&mut self) -> &mut AckTracker {
        &mut self.ack
    }

    pub fn buffer(&self) -> &Buffer {
        &self.buffer
    }
}
