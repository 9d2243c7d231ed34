//! Records and deletes: buffered rows and keys turned into Arrow, with the table's columns as
//! last handed over.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::Schema;

use crate::decode::rules::adjusted_message;
use crate::decode::ColumnReader;
use crate::output::{DeleteRecord, Grouping, Predicate, PredicateGroup};

use super::{Key, Row, Streamer};
use crate::cdc::CdcError;

impl Streamer {
    pub(super) fn record(&self, table: usize, rows: &[Row]) -> Result<RecordBatch, CdcError> {
        let emit = &self.tables[table].emit;
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
                        .map_err(|e| self.value_err(table, &col.name, e))?,
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
                .map_err(|e| self.value_err(table, &col.name, e))?;
            arrays.push(array);
        }
        RecordBatch::try_new(emit.schema.clone(), arrays).map_err(|e| self.record_err(table, e))
    }

    pub(super) fn delete_message(&self, table: usize, key: &Key) -> Result<DeleteRecord, CdcError> {
        let emit = &self.tables[table].emit;
        let mut predicates = Vec::with_capacity(emit.key.len());
        for (n, &ci) in emit.key.iter().enumerate() {
            let field = emit.schema.field(ci).clone();
            let col = &emit.columns[ci];
            let mut reader = ColumnReader::with_options(&col.pg_type, &self.values);
            match key.get(n) {
                Some(v) => reader
                    .append_value(v)
                    .map_err(|e| self.value_err(table, &col.name, e))?,
                None => reader.append_null(),
            }
            let array = reader
                .finish()
                .map_err(|e| self.value_err(table, &col.name, e))?;
            let schema = Arc::new(Schema::new(vec![field]));
            let record =
                RecordBatch::try_new(schema, vec![array]).map_err(|e| self.record_err(table, e))?;
            predicates.push(Predicate {
                column: col.name.clone(),
                record,
            });
        }
        Ok(DeleteRecord {
            table_name: self.tables[table].stream.dest_name.clone(),
            where_clause: vec![PredicateGroup {
                grouping: Grouping::And,
                predicates,
            }],
            table_relations: Vec::new(),
        })
    }
}
