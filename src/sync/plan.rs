//! What a full sync reads: tables, their COPY statements, and how big tables are split.
//!
//! Each work item is one `COPY (SELECT …) TO STDOUT (FORMAT binary)`. Columns whose type travels as
//! server text are cast on the server (`col::text`, `col::text[]`), so the client only decodes
//! native binary formats. On PostgreSQL 14 and later a large plain table is split into ctid ranges
//! (a TID Range Scan reads only those pages), so several connections can read it at once under the
//! shared snapshot; before 14 such a predicate is a full scan per chunk, so one stream per table.

use std::sync::Arc;

use arrow_schema::SchemaRef;

use crate::catalog::{quote_ident, RelKind, Table};

/// First server version with TID Range Scan.
pub const TID_RANGE_SCAN_VERSION: u32 = 140000;

/// One table to sync, with the Arrow schema its records carry (destination name applied).
#[derive(Clone, Debug)]
pub struct TablePlan {
    /// The table with only the columns to read (excluded columns are gone).
    pub table: Arc<Table>,
    pub schema: SchemaRef,
    /// The user's row filter (`table_options`), ANDed into every statement of the table.
    pub filter: Option<Arc<str>>,
    /// None: every row. Some: only the rows of these disjoint scans (an incremental read).
    pub scans: Option<Arc<[RowScan]>>,
}

impl TablePlan {
    /// A plan that reads every row of `table`.
    pub fn whole(table: Arc<Table>, schema: SchemaRef) -> TablePlan {
        TablePlan {
            table,
            schema,
            filter: None,
            scans: None,
        }
    }
}

/// One statement of an incremental read: a row condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowScan {
    pub condition: String,
    /// A condition served by a sequential scan anyway may be split into ctid ranges; one meant
    /// for an index scan is read as one statement.
    pub splittable: bool,
}

/// A page range `[start, end)` of a table's heap; `end` None = to the end of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRange {
    pub start: u32,
    pub end: Option<u32>,
}

/// One COPY statement: a whole table or one page range of it, or one scan of an incremental
/// read (possibly one page range of it).
#[derive(Clone, Debug)]
pub struct WorkItem {
    /// Index into the plan's tables.
    pub table: usize,
    /// Index into the table plan's `scans`.
    pub scan: Option<usize>,
    pub range: Option<PageRange>,
}

/// The select list: every column in attnum order, server-text types cast to text.
pub fn select_list(table: &Table) -> String {
    let mut list = String::new();
    for (i, col) in table.columns.iter().enumerate() {
        if i > 0 {
            list.push_str(", ");
        }
        list.push_str(&quote_ident(&col.name));
        if col.pg_type.needs_server_text_cast() {
            let cast = match col.pg_type {
                crate::decode::PgType::Array(_) => "::text[]",
                _ => "::text",
            };
            list.push_str(cast);
        }
    }
    list
}

/// The relation a statement reads `table`'s own rows from.
pub fn from_clause(table: &Table) -> String {
    // ONLY: rows of inheritance children are not the parent's rows (partitioned tables have no
    // rows of their own, so they are read without it and return their partitions' rows once).
    if table.kind == RelKind::Table {
        format!("ONLY {}", table.qualified_name())
    } else {
        table.qualified_name()
    }
}

/// The COPY statement for one work item of `plan`.
pub fn item_statement(plan: &TablePlan, item: &WorkItem) -> String {
    let condition = item
        .scan
        .and_then(|i| plan.scans.as_ref()?.get(i))
        .map(|s| s.condition.as_str());
    copy_statement(&plan.table, plan.filter.as_deref(), condition, item.range)
}

/// The COPY statement reading `table`'s rows that pass `filter` and `condition`, within `range`.
pub fn copy_statement(
    table: &Table,
    filter: Option<&str>,
    condition: Option<&str>,
    range: Option<PageRange>,
) -> String {
    let select = if table.columns.is_empty() {
        // A table with no columns still has rows; COPY of zero columns counts them correctly.
        String::new()
    } else {
        select_list(table)
    };
    let mut conditions = Vec::new();
    if let Some(range) = range {
        conditions.push(format!("ctid >= '({},0)'::tid", range.start));
        if let Some(end) = range.end {
            conditions.push(format!("ctid < '({end},0)'::tid"));
        }
    }
    // Each in parentheses: a filter `a OR b` must not bind to its neighbours.
    if let Some(filter) = filter {
        conditions.push(format!("({filter})"));
    }
    if let Some(condition) = condition {
        conditions.push(format!("({condition})"));
    }
    let mut sql = format!("COPY (SELECT {select} FROM {}", from_clause(table));
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(") TO STDOUT (FORMAT binary)");
    sql
}

/// Splits the tables into work items, largest first so the long reads start early.
///
/// `chunk_pages` 0 disables splitting. Ranges use `relpages` from the last VACUUM/ANALYZE; the last
/// range is open-ended so pages added since are still read.
pub fn work_items(tables: &[TablePlan], server_version: u32, chunk_pages: u32) -> Vec<WorkItem> {
    let mut order: Vec<usize> = (0..tables.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(tables[i].table.relpages));
    let mut items = Vec::new();
    for i in order {
        let table = &tables[i].table;
        let pages = u32::try_from(table.relpages.max(0)).unwrap_or(u32::MAX);
        let splittable = chunk_pages > 0
            && server_version >= TID_RANGE_SCAN_VERSION
            && table.kind == RelKind::Table
            && pages > chunk_pages.saturating_mul(3) / 2;
        let scans: Vec<(Option<usize>, bool)> = match &tables[i].scans {
            None => vec![(None, splittable)],
            Some(scans) => scans
                .iter()
                .enumerate()
                .map(|(n, s)| (Some(n), splittable && s.splittable))
                .collect(),
        };
        for (scan, split) in scans {
            if !split {
                items.push(WorkItem {
                    table: i,
                    scan,
                    range: None,
                });
                continue;
            }
            let mut start = 0u32;
            while start < pages {
                let end = start.saturating_add(chunk_pages);
                let last = end >= pages;
                items.push(WorkItem {
                    table: i,
                    scan,
                    range: Some(PageRange {
                        start,
                        end: (!last).then_some(end),
                    }),
                });
                start = end;
            }
        }
    }
    items
}

/// The tables of shard `num` of `total` (1-based), as the CloudQuery SDK cuts them: chunks of
/// `ceil(len / total)` in table order; a shard past the last chunk gets nothing.
pub fn shard<T>(tables: Vec<T>, num: usize, total: usize) -> Vec<T> {
    if total <= 1 || num == 0 || num > total {
        return if total <= 1 { tables } else { Vec::new() };
    }
    let chunk = tables.len().div_ceil(total);
    tables
        .into_iter()
        .skip((num - 1) * chunk)
        .take(chunk)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Column;
    use crate::decode::PgType;

    fn table(kind: RelKind, relpages: i64) -> Table {
        let col = |name: &str, pg_type| Column {
            name: name.into(),
            attnum: 1,
            type_oid: 0,
            pg_type,
            type_name: String::new(),
            not_null: false,
            not_null_declared: false,
            primary_key: false,
            unique: false,
        };
        Table {
            oid: 1,
            schema: "public".into(),
            name: "t\"x".into(),
            display_name: "t\"x".into(),
            kind,
            comment: String::new(),
            columns: vec![
                col("id", PgType::Int8),
                col("mood", PgType::ServerText),
                col("moods", PgType::Array(Box::new(PgType::ServerText))),
            ],
            pk_constraint: String::new(),
            replica_identity: 'd',
            relpages,
        }
    }

    fn plan(kind: RelKind, relpages: i64) -> TablePlan {
        TablePlan::whole(
            Arc::new(table(kind, relpages)),
            Arc::new(arrow_schema::Schema::empty()),
        )
    }

    #[test]
    fn copy_statements_cast_server_text_and_quote_names() {
        let t = table(RelKind::Table, 0);
        assert_eq!(
            copy_statement(&t, None, None, None),
            "COPY (SELECT \"id\", \"mood\"::text, \"moods\"::text[] FROM ONLY \"public\".\"t\"\"x\") TO STDOUT (FORMAT binary)"
        );
        let ranged = copy_statement(
            &t,
            None,
            None,
            Some(PageRange {
                start: 10,
                end: Some(20),
            }),
        );
        assert!(ranged.ends_with(
            "FROM ONLY \"public\".\"t\"\"x\" WHERE ctid >= '(10,0)'::tid AND ctid < '(20,0)'::tid) TO STDOUT (FORMAT binary)"
        ));
        let v = table(RelKind::View, 0);
        assert!(copy_statement(&v, None, None, None).contains("FROM \"public\""));
        let filtered = copy_statement(
            &t,
            Some("id > 1 OR id < 0"),
            Some("age(xmin) < 5"),
            Some(PageRange {
                start: 0,
                end: None,
            }),
        );
        assert!(filtered.ends_with(
            "WHERE ctid >= '(0,0)'::tid AND (id > 1 OR id < 0) AND (age(xmin) < 5)) TO STDOUT (FORMAT binary)"
        ));
    }

    #[test]
    fn incremental_scans_split_only_when_splittable() {
        let mut p = plan(RelKind::Table, 2500);
        p.scans = Some(Arc::from(vec![
            RowScan {
                condition: "a".into(),
                splittable: false,
            },
            RowScan {
                condition: "b".into(),
                splittable: true,
            },
        ]));
        let items = work_items(&[p.clone()], 170000, 1000);
        let shape: Vec<_> = items.iter().map(|i| (i.scan, i.range.is_some())).collect();
        assert_eq!(
            shape,
            vec![
                (Some(0), false),
                (Some(1), true),
                (Some(1), true),
                (Some(1), true)
            ]
        );
        assert!(item_statement(&p, &items[0]).contains("WHERE (a)"));
    }

    #[test]
    fn big_tables_split_on_14_only_and_last_range_is_open() {
        let tables = vec![plan(RelKind::Table, 100), plan(RelKind::Table, 2500)];
        let items = work_items(&tables, 170000, 1000);
        let ranges: Vec<_> = items.iter().map(|i| (i.table, i.range)).collect();
        assert_eq!(
            ranges,
            vec![
                (
                    1,
                    Some(PageRange {
                        start: 0,
                        end: Some(1000)
                    })
                ),
                (
                    1,
                    Some(PageRange {
                        start: 1000,
                        end: Some(2000)
                    })
                ),
                (
                    1,
                    Some(PageRange {
                        start: 2000,
                        end: None
                    })
                ),
                (0, None),
            ]
        );
        assert!(work_items(&tables, 130000, 1000)
            .iter()
            .all(|i| i.range.is_none()));
        let views = vec![plan(RelKind::View, 5000)];
        assert!(work_items(&views, 170000, 1000)[0].range.is_none());
    }

    #[test]
    fn shards_cover_every_table_exactly_once() {
        for len in 0..12usize {
            for total in 1..6usize {
                let mut seen = Vec::new();
                for num in 1..=total {
                    seen.extend(shard((0..len).collect(), num, total));
                }
                assert_eq!(
                    seen,
                    (0..len).collect::<Vec<_>>(),
                    "len {len} total {total}"
                );
            }
        }
    }
}
