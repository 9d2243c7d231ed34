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
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Schema, SchemaRef};

use crate::catalog::{quote_ident, Column, Table};
use crate::decode::pgoutput::{self, OldKind, PgOutputMessage, Relation, TupleData, TupleValue};
use crate::decode::rules::adjusted_message;
use crate::decode::text::text_to_binary;
use crate::decode::{ColumnReader, PgType, ValueOptions};
use crate::plugin::service::{
    DeleteRecord, Grouping, Predicate, PredicateGroup, SyncMessage, SyncSender,
};
use crate::wire::{Connection, Param};

use super::ack::AckTracker;
use super::batch::{ChangeBuffer, Lsn, Output};
pub use super::packed::{Key, Row, Value};
use super::setup::format_lsn;
use super::CdcError;

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

pub struct Streamer {
    tables: Vec<StreamTable>,
    /// The columns the stream last described per table (what the buffer's rows follow).
    latest: Vec<Vec<Column>>,
    emit: Vec<Emit>,
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
    /// Value options: column mapping of re-read catalogs, the readers' value rules.
    values: ValueOptions,
}

fn key_indices(table: &Table, names: &[String], flagged: &[usize]) -> Vec<usize> {
    let pk: Vec<usize> = table
        .columns
        .iter()
        .filter(|c| c.primary_key)
        .filter_map(|c| names.iter().position(|n| *n == c.name))
        .collect();
    if pk.is_empty() {
        flagged.to_vec()
    } else {
        pk
    }
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
        let latest = tables.iter().map(|t| t.table.columns.clone()).collect();
        let emit = tables
            .iter()
            .map(|t| {
                let names: Vec<String> = t.table.columns.iter().map(|c| c.name.clone()).collect();
                Emit {
                    schema: schema_of(t, &t.table.columns),
                    columns: t.table.columns.clone(),
                    key: key_indices(&t.table, &names, &[]),
                }
            })
            .collect();
        Streamer {
            tables,
            latest,
            emit,
            rels: HashMap::new(),
            unknown_rels: HashMap::new(),
            warned_rels: std::collections::HashSet::new(),
            buffer,
            ack,
            values: ValueOptions::default(),
            fetch,
            lsn: 0,
            scratch: Vec::new(),
        }
    }

    fn decode_err(&self, table: usize, e: impl std::fmt::Display) -> CdcError {
        CdcError::Stream(format!(
            "table {} at LSN {}: {e}",
            self.table_name(table),
            format_lsn(self.lsn)
        ))
    }

    /// The value options (default until set): see [`ValueOptions`].
    pub fn with_values(mut self, values: ValueOptions) -> Self {
        self.values = values;
        self
    }

    fn table_name(&self, table: usize) -> String {
        self.tables.get(table).map_or_else(String::new, |t| {
            format!("{}.{}", t.table.schema, t.table.name)
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
        if wal_start != 0 {
            self.lsn = wal_start;
        }
        let msg = pgoutput::parse(data).map_err(|e| {
            CdcError::Stream(format!(
                "pgoutput message at LSN {}: {e}",
                format_lsn(wal_start)
            ))
        })?;
        crate::telemetry::cdc_message(&msg);
        match msg {
            PgOutputMessage::Begin(b) => self.buffer.begin(b.final_lsn),
            PgOutputMessage::Commit(c) => self.buffer.commit(c.end_lsn),
            PgOutputMessage::Relation(r) => self.relation(&r, now).await?,
            PgOutputMessage::Insert(i) => {
                if let Some(table) = self.rel_table(i.relation_id) {
                    let row = self.row(i.relation_id, &i.new, None).await?;
                    if let Some(row) = row {
                        let key = self.key_of(i.relation_id, &row);
                        self.buffer.upsert(table, key, row, now);
                    }
                }
            }
            PgOutputMessage::Update(u) => {
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
                        lsn = format_lsn(wal_start)
                    );
                }
            }
            // Origin, Type, logical messages: nothing to do; streamed-transaction messages do
            // not occur with proto_version 1.
            _ => {}
        }
        Ok(())
    }

    fn rel_table(&mut self, id: u32) -> Option<usize> {
        let table = self.rels.get(&id).map(|r| r.table);
        if table.is_none() && self.warned_rels.insert(id) {
            let name = self
                .unknown_rels
                .get(&id)
                .cloned()
                .unwrap_or_else(|| format!("relation {id}"));
            crate::log_warn!(
                format!(
                    "the change stream has changes of {name}, which is not selected; ignoring them"
                ),
                table = name
            );
        }
        table
    }

    async fn relation(&mut self, r: &Relation<'_>, now: Instant) -> Result<(), CdcError> {
        let Some(ti) = self
            .tables
            .iter()
            .position(|t| t.table.schema == r.namespace && t.table.name == r.name)
        else {
            // Not one of ours. Publishing via the partition root, pgoutput describes each
            // partition too (changes then name the root), so this is normal; a change that
            // names such a relation is ignored with a warning (see `rel_table`).
            let name = format!("{}.{}", r.namespace, r.name);
            self.unknown_rels.insert(r.id, name);
            self.rels.remove(&r.id);
            return Ok(());
        };
        // Per relation column: its catalog entry, or None for a column to leave out.
        let mut slots: Vec<Option<Column>> = Vec::with_capacity(r.column_count());
        let mut flagged_names = Vec::new();
        let mut unresolved = Vec::new();
        for (i, rc) in r.columns().enumerate() {
            if rc.is_key() {
                flagged_names.push(rc.name.to_string());
            }
            if self.tables[ti]
                .excluded_columns
                .iter()
                .any(|c| c == rc.name)
            {
                // Excluded: never decoded, never sent (before 15 the server still streams it).
                slots.push(None);
                continue;
            }
            let known = self.latest[ti]
                .iter()
                .chain(self.tables[ti].table.columns.iter())
                .find(|c| c.name == rc.name && c.type_oid == rc.type_oid)
                .cloned();
            if known.is_none() {
                unresolved.push(i);
            }
            slots.push(known);
        }
        if !unresolved.is_empty() {
            // A column added or retyped since discovery: look its type up. If the catalog no
            // longer has it (a change replayed after a restart, from before a later DROP or
            // ALTER TYPE), it is left out: its type is unknown and it no longer exists.
            let fresh = self.rediscover(ti).await?;
            let rcs: Vec<_> = r.columns().collect();
            for &i in &unresolved {
                let Some(rc) = rcs.get(i) else { continue };
                match fresh
                    .iter()
                    .find(|f| f.name == rc.name && f.type_oid == rc.type_oid)
                {
                    Some(f) => slots[i] = Some(f.clone()),
                    None => crate::log_warn!(
                        format!(
                            "table {}: column {} in the change stream no longer exists with \
                             that type; its values in changes from before the schema change \
                             are left out",
                            self.table_name(ti),
                            rc.name
                        ),
                        table = self.table_name(ti),
                        column = rc.name
                    ),
                }
            }
        }
        let columns: Vec<Column> = slots.iter().flatten().cloned().collect();
        let flagged: Vec<usize> = columns
            .iter()
            .enumerate()
            .filter(|(_, c)| flagged_names.contains(&c.name))
            .map(|(i, _)| i)
            .collect();
        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        let key = key_indices(&self.tables[ti].table, &names, &flagged);
        let same = columns.len() == self.latest[ti].len()
            && columns
                .iter()
                .zip(&self.latest[ti])
                .all(|(a, b)| a.name == b.name && a.type_oid == b.type_oid);
        if !same {
            crate::log_info!(
                format!(
                    "table {} changed columns while streaming; sending its new schema",
                    self.table_name(ti)
                ),
                table = self.table_name(ti)
            );
            self.latest[ti] = columns.clone();
            self.buffer.schema_change(
                ti,
                SchemaVersion {
                    columns: columns.clone(),
                },
                now,
            );
        }
        self.rels.insert(
            r.id,
            Rel {
                table: ti,
                types: slots
                    .iter()
                    .map(|c| c.as_ref().map(|c| c.pg_type.clone()))
                    .collect(),
                key,
                names,
                kept_types: columns.iter().map(|c| c.pg_type.clone()).collect(),
            },
        );
        Ok(())
    }

    /// The table's columns as the catalog shows them now.
    async fn rediscover(&mut self, ti: usize) -> Result<Vec<Column>, CdcError> {
        let catalog = crate::catalog::load::load_with(&mut self.fetch, &self.values)
            .await
            .map_err(|e| self.decode_err(ti, e))?;
        let t = &self.tables[ti].table;
        Ok(catalog
            .tables
            .into_iter()
            .find(|c| c.schema == t.schema && c.name == t.name)
            .map(|c| c.columns)
            .unwrap_or_default())
    }

    /// One tuple's values in send format (`u` values stay `None`; see [`Self::row`]).
    fn values(&mut self, rel_id: u32, tuple: &TupleData<'_>) -> Result<Row, CdcError> {
        let rel = self
            .rels
            .get(&rel_id)
            .ok_or_else(|| CdcError::Stream(format!("change for unknown relation id {rel_id}")))?;
        let ti = rel.table;
        // Packed values take at most the bytes they took in the message (text converted to
        // binary may take more; the buffer then grows).
        let mut out = Row::with_capacity(tuple.byte_len());
        let mut n = 0;
        for (i, v) in tuple.iter().enumerate() {
            let ty = rel.types.get(i).ok_or_else(|| {
                CdcError::Stream(format!(
                    "table {}: tuple has more columns than its relation",
                    self.table_name(ti)
                ))
            })?;
            let Some(ty) = ty else { continue };
            match v {
                TupleValue::Null | TupleValue::UnchangedToast => out.push(None),
                TupleValue::Binary(b) => out.push(Some(b)),
                TupleValue::Text(t) => {
                    self.scratch.clear();
                    text_to_binary(ty, t, &mut self.scratch).map_err(|e| {
                        CdcError::Stream(format!(
                            "table {} column {} at LSN {}: {e}",
                            self.table_name(ti),
                            rel.names.get(n).map_or("?", String::as_str),
                            format_lsn(self.lsn)
                        ))
                    })?;
                    out.push(Some(&self.scratch));
                }
            }
            n += 1;
        }
        Ok(out)
    }

    /// The new row with unchanged TOAST values filled in, or `None` when the row is gone.
    async fn row(
        &mut self,
        rel_id: u32,
        new: &TupleData<'_>,
        old_full: Option<&TupleData<'_>>,
    ) -> Result<Option<Row>, CdcError> {
        let row = self.values(rel_id, new)?;
        if !new.iter().any(|v| matches!(v, TupleValue::UnchangedToast)) {
            return Ok(Some(row));
        }
        let mut row = row.unpack();
        // Row indices (kept columns only) of the unchanged TOAST values.
        let kept: Vec<bool> = self
            .rels
            .get(&rel_id)
            .map(|r| r.types.iter().map(Option::is_some).collect())
            .unwrap_or_default();
        let missing: Vec<usize> = new
            .iter()
            .zip(kept)
            .filter(|(_, keep)| *keep)
            .enumerate()
            .filter(|(_, (v, _))| matches!(v, TupleValue::UnchangedToast))
            .map(|(j, _)| j)
            .collect();
        if missing.is_empty() {
            return Ok(Some(Row::pack(&row)));
        }
        if let Some(old) = old_full {
            let old_row = self.values(rel_id, old)?.unpack();
            for &i in &missing {
                if let (Some(slot), Some(v)) = (row.get_mut(i), old_row.get(i)) {
                    *slot = v.clone();
                }
            }
            return Ok(Some(Row::pack(&row)));
        }
        Ok(self
            .refetch(rel_id, &mut row, &missing)
            .await?
            .map(|r| Row::pack(&r)))
    }

    /// Read the `missing` columns of the row with `row`'s key from the table as it is now.
    async fn refetch(
        &mut self,
        rel_id: u32,
        row: &mut [Value],
        missing: &[usize],
    ) -> Result<Option<Vec<Value>>, CdcError> {
        let Some(rel) = self.rels.get(&rel_id) else {
            return Ok(None);
        };
        let ti = rel.table;
        let t = &self.tables[ti].table;
        let mut select = Vec::new();
        for &i in missing {
            let name = rel.names.get(i).map_or("", String::as_str);
            let cast = match rel.kept_types.get(i) {
                Some(ty) if ty.needs_server_text_cast() => match ty {
                    PgType::Array(_) => "::text[]",
                    _ => "::text",
                },
                _ => "",
            };
            select.push(format!("{}{cast}", quote_ident(name)));
        }
        let mut texts = Vec::new();
        let mut conds = Vec::new();
        for (n, &k) in rel.key.iter().enumerate() {
            let name = rel.names.get(k).map_or("", String::as_str);
            let ty = rel.kept_types.get(k).cloned().unwrap_or(PgType::ServerText);
            let value = row.get(k).cloned().flatten();
            let Some(text) = value.as_deref().and_then(|v| key_text(&ty, v)) else {
                return Err(self.decode_err(
                    ti,
                    format!(
                        "an update left a TOASTed value unchanged, and the row cannot be re-read \
                         by its key column {name} (type not supported for re-reading); set \
                         REPLICA IDENTITY FULL on the table"
                    ),
                ));
            };
            texts.push(text);
            // An untyped parameter takes the column's type, so the text is parsed by the
            // column type's own input function.
            conds.push(format!("{} = ${}", quote_ident(name), n + 1));
        }
        let sql = format!(
            "SELECT {} FROM {} WHERE {}",
            select.join(", "),
            t.qualified_name(),
            conds.join(" AND ")
        );
        let params: Vec<Param<'_>> = texts.iter().map(|s| Param::Text(s)).collect();
        let result = self.fetch.query(&sql, &params).await?;
        let Some(found) = result.rows.first() else {
            return Ok(None);
        };
        for (j, &i) in missing.iter().enumerate() {
            if let Some(slot) = row.get_mut(i) {
                *slot = found.get(j).map(<[u8]>::to_vec);
            }
        }
        Ok(Some(row.to_vec()))
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
                let t = &self.tables[table];
                let names: Vec<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
                let key = key_indices(&t.table, &names, &[]);
                let arrow = schema_of(t, &schema.columns);
                self.emit[table] = Emit {
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

    fn record(&self, table: usize, rows: &[Row]) -> Result<RecordBatch, CdcError> {
        let emit = &self.emit[table];
        let mut readers: Vec<ColumnReader> = emit
            .columns
            .iter()
            .map(|c| ColumnReader::with_options(&c.pg_type, &self.values))
            .collect();
        // Row by row (a packed row is read front to back); a row with fewer values than
        // columns gets NULLs, values past the columns are ignored.
        for row in rows {
            let mut values = row.iter();
            for (reader, col) in readers.iter_mut().zip(&emit.columns) {
                match values.next().flatten() {
                    Some(v) => reader
                        .append_value(v)
                        .map_err(|e| self.decode_err(table, format!("column {}: {e}", col.name)))?,
                    None => reader.append_null(),
                }
            }
        }
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(readers.len());
        for (mut reader, col) in readers.into_iter().zip(&emit.columns) {
            let adjusted = reader.take_adjusted();
            if adjusted > 0 {
                crate::log_warn!(
                    adjusted_message(&col.pg_type, &self.values),
                    table = self.table_name(table).as_str(),
                    column = col.name.as_str(),
                    column_type = col.type_name.as_str(),
                    count = adjusted
                );
            }
            let array = reader
                .finish()
                .map_err(|e| self.decode_err(table, format!("column {}: {e}", col.name)))?;
            arrays.push(array);
        }
        RecordBatch::try_new(emit.schema.clone(), arrays).map_err(|e| self.decode_err(table, e))
    }

    fn delete_message(&self, table: usize, key: &Key) -> Result<DeleteRecord, CdcError> {
        let emit = &self.emit[table];
        let mut predicates = Vec::with_capacity(emit.key.len());
        for (n, &ci) in emit.key.iter().enumerate() {
            let field = emit.schema.field(ci).clone();
            let col = &emit.columns[ci];
            let mut reader = ColumnReader::with_options(&col.pg_type, &self.values);
            match key.get(n) {
                Some(v) => reader
                    .append_value(v)
                    .map_err(|e| self.decode_err(table, format!("key column {}: {e}", col.name)))?,
                None => reader.append_null(),
            }
            let array = reader
                .finish()
                .map_err(|e| self.decode_err(table, format!("key column {}: {e}", col.name)))?;
            let schema = Arc::new(Schema::new(vec![field]));
            let record =
                RecordBatch::try_new(schema, vec![array]).map_err(|e| self.decode_err(table, e))?;
            predicates.push(Predicate {
                column: col.name.clone(),
                record,
            });
        }
        Ok(DeleteRecord {
            table_name: self.tables[table].dest_name.clone(),
            where_clause: vec![PredicateGroup {
                grouping: Grouping::And,
                predicates,
            }],
            table_relations: Vec::new(),
        })
    }

    pub fn ack(&mut self) -> &mut AckTracker {
        &mut self.ack
    }

    pub fn buffer(&self) -> &Buffer {
        &self.buffer
    }
}

/// A key value in send format → text the server can cast back, for the types keys usually
/// have. `None` for others (see [`Streamer::refetch`]).
fn key_text(ty: &PgType, v: &[u8]) -> Option<String> {
    Some(match ty {
        PgType::Int2 => i16::from_be_bytes(v.try_into().ok()?).to_string(),
        PgType::Int4 => i32::from_be_bytes(v.try_into().ok()?).to_string(),
        PgType::Int8 => i64::from_be_bytes(v.try_into().ok()?).to_string(),
        PgType::Oid | PgType::Xid => u32::from_be_bytes(v.try_into().ok()?).to_string(),
        PgType::Text | PgType::ServerText => String::from_utf8(v.to_vec()).ok()?,
        PgType::Uuid => {
            let b: [u8; 16] = v.try_into().ok()?;
            uuid::Uuid::from_bytes(b).hyphenated().to_string()
        }
        PgType::Bool => (v.first()? != &0).to_string(),
        _ => return None,
    })
}
