//! Unchanged TOAST values: an update whose new tuple leaves a large value out (`u`) gets it from
//! the old tuple under REPLICA IDENTITY FULL, otherwise by re-reading the row by its key.

use crate::catalog::quote_ident;
use crate::decode::pgoutput::TupleData;
use crate::decode::pgoutput::TupleValue;
use crate::decode::PgType;
use crate::wire::Param;

use super::{Row, Streamer, Value};
use crate::cdc::CdcError;

impl Streamer {
    /// The new row with unchanged TOAST values filled in, or `None` when the row is gone.
    pub(super) async fn row(
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
        let t = &self.tables[ti].stream.table;
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
                return Err(CdcError::ToastKey {
                    table: self.table_name(ti),
                    column: name.to_string(),
                    lsn: self.lsn,
                });
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
