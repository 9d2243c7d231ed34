//! Relations: which streamed table a relation id names, its columns as the stream describes
//! them (looked up again when a column was added or retyped), and the key used for deletes.

use std::time::Instant;

use crate::catalog::{Column, Table};
use crate::decode::pgoutput::Relation;

use super::{Rel, SchemaVersion, Streamer};
use crate::cdc::CdcError;

pub(super) fn key_indices(table: &Table, names: &[String], flagged: &[usize]) -> Vec<usize> {
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

impl Streamer {
    pub(super) fn rel_table(&mut self, id: u32) -> Option<usize> {
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

    pub(super) async fn relation(
        &mut self,
        r: &Relation<'_>,
        now: Instant,
    ) -> Result<(), CdcError> {
        let Some(ti) = self
            .tables
            .iter()
            .position(|t| t.stream.table.schema == r.namespace && t.stream.table.name == r.name)
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
                .stream
                .excluded_columns
                .iter()
                .any(|c| c == rc.name)
            {
                // Excluded: never decoded, never sent (before 15 the server still streams it).
                slots.push(None);
                continue;
            }
            let known = self.tables[ti]
                .latest
                .iter()
                .chain(self.tables[ti].stream.table.columns.iter())
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
        let key = key_indices(&self.tables[ti].stream.table, &names, &flagged);
        let same = columns.len() == self.tables[ti].latest.len()
            && columns
                .iter()
                .zip(&self.tables[ti].latest)
                .all(|(a, b)| a.name == b.name && a.type_oid == b.type_oid);
        if !same {
            crate::log_info!(
                format!(
                    "table {} changed columns while streaming; sending its new schema",
                    self.table_name(ti)
                ),
                table = self.table_name(ti)
            );
            self.tables[ti].latest = columns.clone();
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
            .map_err(|source| CdcError::Catalog {
                table: self.table_name(ti),
                source,
            })?;
        let t = &self.tables[ti].stream.table;
        Ok(catalog
            .tables
            .into_iter()
            .find(|c| c.schema == t.schema && c.name == t.name)
            .map(|c| c.columns)
            .unwrap_or_default())
    }
}
