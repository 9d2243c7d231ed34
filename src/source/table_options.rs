//! `table_options` resolved against the catalog: which entries apply to which table, and
//! whether the columns they name exist and can serve. The filters are checked by the server
//! at Init (see `check_filters`).
//!
//! Several entries matching one table: `cursor_column` and `filter` come from the last matching
//! entry that sets them; `exclude_columns` is the union of every matching entry's list (a column
//! excluded once stays excluded).

use std::collections::HashMap;

use super::spec::{IncrementalMode, TableOptionsEntry};
use crate::catalog::select::glob_match;
use crate::catalog::{Catalog, Column, RelKind, Table};
use crate::decode::PgType;
use crate::wire::{self, Connection};

/// What the options say about one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSettings {
    pub exclude_columns: Vec<String>,
    pub filter: Option<String>,
    /// The entry that set the filter (for messages).
    pub filter_entry: Option<String>,
    pub cursor_column: Option<String>,
}

/// The per-table settings, by table oid; tables without entries are absent.
#[derive(Debug, Clone, Default)]
pub struct ResolvedOptions {
    pub tables: HashMap<u32, TableSettings>,
}

/// A problem found at Init, naming the entry, the table and the column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct OptionsError {
    pub field: String,
    pub problem: String,
}

/// The column types a cursor can use: a total order PostgreSQL compares exactly, and a text form
/// that reads back as the same value.
pub const CURSOR_TYPES: &str = "smallint, integer, bigint, numeric, date, timestamp, \
    timestamp with time zone, text, varchar, char (or a domain over one of them)";

fn cursor_type_ok(ty: &PgType) -> bool {
    matches!(
        ty,
        PgType::Int2
            | PgType::Int4
            | PgType::Int8
            | PgType::Numeric
            | PgType::Date
            | PgType::Timestamp { .. }
            | PgType::TimestampTz { .. }
            | PgType::Text
    )
}

/// `table` without the columns `settings` exclude: what every read of it selects.
pub fn without_excluded(table: &Table, settings: Option<&TableSettings>) -> Table {
    let mut table = table.clone();
    if let Some(s) = settings {
        table
            .columns
            .retain(|c| !s.exclude_columns.contains(&c.name));
    }
    table
}

/// Relations with row versions (`xmin`): the ones an incremental read can use.
pub fn has_row_versions(kind: RelKind) -> bool {
    matches!(
        kind,
        RelKind::Table | RelKind::Partitioned | RelKind::MaterializedView
    )
}

/// Resolves `entries` against the catalog. Returns the settings and warnings (patterns that
/// match nothing, nullable cursor columns, an excluded key), or every problem found.
pub fn resolve(
    entries: &[TableOptionsEntry],
    catalog: &Catalog,
) -> Result<(ResolvedOptions, Vec<String>), Vec<OptionsError>> {
    let mut resolved = ResolvedOptions::default();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for entry in entries {
        let name = entry.name();
        let matched: Vec<&Table> = catalog
            .tables
            .iter()
            .filter(|t| entry.tables.iter().any(|p| glob_match(p, &t.display_name)))
            .collect();
        for pattern in &entry.tables {
            if !catalog
                .tables
                .iter()
                .any(|t| glob_match(pattern, &t.display_name))
            {
                warnings.push(format!(
                    "{name}.tables: pattern {pattern:?} matches no table; the entry does nothing for it"
                ));
            }
        }
        for column in &entry.exclude_columns {
            if !matched.is_empty() && !matched.iter().any(|t| find(t, column).is_some()) {
                errors.push(OptionsError {
                    field: format!("{name}.exclude_columns"),
                    problem: format!(
                        "no table it matches has a column {column:?} (tables: {})",
                        names(&matched)
                    ),
                });
            }
        }
        for table in &matched {
            let settings = resolved.tables.entry(table.oid).or_default();
            for column in &entry.exclude_columns {
                if find(table, column).is_some() && !settings.exclude_columns.contains(column) {
                    settings.exclude_columns.push(column.clone());
                }
            }
            if let Some(filter) = &entry.filter {
                settings.filter = Some(filter.clone());
                settings.filter_entry = Some(name.clone());
            }
            if let Some(cursor) = &entry.cursor_column {
                match check_cursor(table, cursor) {
                    Ok(col) => {
                        if !col.not_null {
                            warnings.push(format!(
                                "{name}.cursor_column: column {cursor:?} of table {} may be NULL; \
                                 rows whose {cursor} is NULL are read by the first sync only",
                                table.display_name
                            ));
                        }
                        settings.cursor_column = Some(cursor.clone());
                    }
                    Err(problem) => errors.push(OptionsError {
                        field: format!("{name}.cursor_column"),
                        problem,
                    }),
                }
            }
        }
    }
    for (oid, settings) in &resolved.tables {
        let Some(table) = catalog.tables.iter().find(|t| t.oid == *oid) else {
            continue;
        };
        if let Some(cursor) = &settings.cursor_column {
            if settings.exclude_columns.contains(cursor) {
                errors.push(OptionsError {
                    field: "table_options".to_string(),
                    problem: format!(
                        "table {}: its cursor_column {cursor:?} is also in exclude_columns",
                        table.display_name
                    ),
                });
            }
        }
        let excluded_keys: Vec<&str> = table
            .columns
            .iter()
            .filter(|c| c.primary_key && settings.exclude_columns.contains(&c.name))
            .map(|c| c.name.as_str())
            .collect();
        if !excluded_keys.is_empty() {
            warnings.push(format!(
                "table {}: exclude_columns removes primary key column(s) {excluded_keys:?}; \
                 the destination gets the table without a primary key and cannot upsert it",
                table.display_name
            ));
        }
    }
    if errors.is_empty() {
        Ok((resolved, warnings))
    } else {
        Err(errors)
    }
}

fn find<'a>(table: &'a Table, column: &str) -> Option<&'a Column> {
    table.columns.iter().find(|c| c.name == column)
}

fn names(tables: &[&Table]) -> String {
    tables
        .iter()
        .map(|t| t.display_name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_cursor<'a>(table: &'a Table, cursor: &str) -> Result<&'a Column, String> {
    if !has_row_versions(table.kind) {
        return Err(format!(
            "table {} is a view or foreign table: it has no row versions (xmin), which an \
             incremental read needs to find rows written by transactions still running at the \
             previous sync",
            table.display_name
        ));
    }
    let Some(col) = find(table, cursor) else {
        return Err(format!(
            "table {} has no column {cursor:?}",
            table.display_name
        ));
    };
    if !cursor_type_ok(&col.pg_type) {
        return Err(format!(
            "column {cursor:?} of table {} has type {}, which cannot be a cursor; the cursor \
             types are {CURSOR_TYPES}",
            table.display_name, col.type_name
        ));
    }
    Ok(col)
}

/// Whether a selected table is synced incrementally: by its cursor column, or by xmin when the
/// spec says so and the relation has row versions.
pub fn is_incremental(
    mode: IncrementalMode,
    kind: RelKind,
    settings: Option<&TableSettings>,
) -> bool {
    settings.is_some_and(|s| s.cursor_column.is_some())
        || (mode == IncrementalMode::Xmin && has_row_versions(kind))
}

/// Runs every table's filter in a zero-row query, so a filter the server rejects fails Init
/// with the server's own message. One statement in the extended protocol: a filter cannot
/// smuggle in a second statement.
pub async fn check_filters(
    conn: &mut Connection,
    catalog: &Catalog,
    resolved: &ResolvedOptions,
) -> Result<(), Vec<OptionsError>> {
    let mut errors = Vec::new();
    let mut checks: Vec<(&Table, &TableSettings)> = catalog
        .tables
        .iter()
        .filter_map(|t| Some((t, resolved.tables.get(&t.oid)?)))
        .filter(|(_, s)| s.filter.is_some())
        .collect();
    checks.sort_by(|a, b| a.0.display_name.cmp(&b.0.display_name));
    for (table, settings) in checks {
        let Some(filter) = &settings.filter else {
            continue;
        };
        let sql = format!(
            "SELECT 1 FROM {} WHERE ({filter}) LIMIT 0",
            table.qualified_name()
        );
        if let Err(e) = conn.query(&sql, &[]).await {
            if matches!(e, wire::Error::Server { .. }) {
                errors.push(OptionsError {
                    field: format!(
                        "{}.filter",
                        settings.filter_entry.as_deref().unwrap_or("table_options")
                    ),
                    problem: format!(
                        "table {}: the server rejects the filter {filter:?}: {e}",
                        table.display_name
                    ),
                });
                // The failed statement ended nothing (no transaction block); go on.
            } else {
                errors.push(OptionsError {
                    field: "table_options".to_string(),
                    problem: format!("checking the filters: {e}"),
                });
                break;
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, pg_type: PgType, not_null: bool) -> Column {
        Column {
            name: name.into(),
            attnum: 1,
            type_oid: 0,
            pg_type,
            type_name: "t".into(),
            not_null,
            not_null_declared: not_null,
            primary_key: name == "id",
            unique: name == "id",
        }
    }

    fn table(oid: u32, name: &str, kind: RelKind) -> Table {
        Table {
            oid,
            schema: "public".into(),
            name: name.into(),
            display_name: name.into(),
            kind,
            comment: String::new(),
            columns: vec![
                column("id", PgType::Int8, true),
                column("ts", PgType::TimestampTz { precision: None }, false),
                column("doc", PgType::Jsonb, false),
            ],
            pk_constraint: String::new(),
            replica_identity: 'd',
            relpages: 0,
        }
    }

    fn catalog() -> Catalog {
        Catalog {
            database: "db".into(),
            current_schema: "public".into(),
            server_version_num: 170000,
            tables: vec![
                table(1, "orders", RelKind::Table),
                table(2, "items", RelKind::Table),
                table(3, "v", RelKind::View),
            ],
        }
    }

    fn entry(index: usize, tables: &[&str]) -> TableOptionsEntry {
        TableOptionsEntry {
            index,
            tables: tables.iter().map(|s| s.to_string()).collect(),
            ..TableOptionsEntry::default()
        }
    }

    #[test]
    fn later_entries_win_and_exclusions_add_up() {
        let entries = vec![
            TableOptionsEntry {
                cursor_column: Some("id".into()),
                filter: Some("id > 1".into()),
                exclude_columns: vec!["doc".into()],
                ..entry(0, &["*"])
            },
            TableOptionsEntry {
                cursor_column: Some("ts".into()),
                filter: Some("id > 2".into()),
                ..entry(1, &["orders"])
            },
            TableOptionsEntry {
                exclude_columns: vec!["ts".into()],
                ..entry(2, &["items"])
            },
        ];
        let mut cat = catalog();
        cat.tables.pop(); // no view: a cursor on it is an error (tested below)
        let (resolved, warnings) = resolve(&entries, &cat).unwrap();
        let orders = &resolved.tables[&1];
        assert_eq!(orders.cursor_column.as_deref(), Some("ts"));
        assert_eq!(orders.filter.as_deref(), Some("id > 2"));
        assert_eq!(orders.filter_entry.as_deref(), Some("table_options[1]"));
        assert_eq!(orders.exclude_columns, vec!["doc"]);
        let items = &resolved.tables[&2];
        assert_eq!(items.cursor_column.as_deref(), Some("id"));
        assert_eq!(items.exclude_columns, vec!["doc", "ts"]);
        // ts is nullable: a warning for the entry that made it a cursor.
        assert!(warnings
            .iter()
            .any(|w| w.starts_with("table_options[1].cursor_column")));
    }

    #[test]
    fn problems_name_the_entry_table_and_column() {
        let entries = vec![
            TableOptionsEntry {
                exclude_columns: vec!["nope".into()],
                ..entry(0, &["orders"])
            },
            TableOptionsEntry {
                cursor_column: Some("doc".into()),
                ..entry(1, &["orders"])
            },
            TableOptionsEntry {
                cursor_column: Some("missing".into()),
                ..entry(2, &["items"])
            },
            TableOptionsEntry {
                cursor_column: Some("id".into()),
                ..entry(3, &["v"])
            },
            TableOptionsEntry {
                filter: Some("true".into()),
                ..entry(4, &["ghost*"])
            },
        ];
        let errors = resolve(&entries, &catalog()).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "table_options[0].exclude_columns",
                "table_options[1].cursor_column",
                "table_options[2].cursor_column",
                "table_options[3].cursor_column",
            ]
        );
        assert!(errors[0].problem.contains("\"nope\"") && errors[0].problem.contains("orders"));
        assert!(errors[1].problem.contains("jsonb") || errors[1].problem.contains("type t"));
        assert!(errors[2]
            .problem
            .contains("items has no column \"missing\""));
        assert!(errors[3].problem.contains("view"));
        let (_, warnings) = resolve(&entries[4..], &catalog()).unwrap();
        assert!(warnings[0].contains("\"ghost*\" matches no table"));
    }

    #[test]
    fn which_tables_are_incremental() {
        let cursor = TableSettings {
            cursor_column: Some("ts".into()),
            ..TableSettings::default()
        };
        assert!(is_incremental(
            IncrementalMode::Off,
            RelKind::Table,
            Some(&cursor)
        ));
        assert!(!is_incremental(IncrementalMode::Off, RelKind::Table, None));
        assert!(is_incremental(
            IncrementalMode::Xmin,
            RelKind::Partitioned,
            None
        ));
        assert!(!is_incremental(IncrementalMode::Xmin, RelKind::View, None));
        assert!(!is_incremental(
            IncrementalMode::Xmin,
            RelKind::Foreign,
            None
        ));
    }
}
