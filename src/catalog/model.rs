//! The discovered catalog: tables, columns, keys, and their resolved types.
//!
//! Built from the rows of the discovery statements (`discovery.rs`: five statements, one round trip). Parsing is kept apart
//! from I/O so it can be tested with rows copied from a real server.

use std::collections::HashMap;

use crate::catalog::types::{TypeResolver, TypeRow};
use crate::decode::{PgType, ValueOptions};

/// What kind of relation a table is (`pg_class.relkind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RelKind {
    #[default]
    Table,
    Partitioned,
    View,
    MaterializedView,
    Foreign,
}

impl RelKind {
    fn from_char(c: char) -> Option<RelKind> {
        Some(match c {
            'r' => RelKind::Table,
            'p' => RelKind::Partitioned,
            'v' => RelKind::View,
            'm' => RelKind::MaterializedView,
            'f' => RelKind::Foreign,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub attnum: i16,
    pub type_oid: u32,
    pub pg_type: PgType,
    /// `format_type()` of the column, for logs and docs.
    pub type_name: String,
    pub not_null: bool,
    /// `attnotnull` itself, without NOT NULL domains.
    pub not_null_declared: bool,
    pub primary_key: bool,
    /// Alone forms a PRIMARY KEY or UNIQUE constraint.
    pub unique: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Table {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// The name CloudQuery sees: bare in the current schema, `schema.table` elsewhere.
    pub display_name: String,
    pub kind: RelKind,
    pub comment: String,
    pub columns: Vec<Column>,
    /// Name of the primary key constraint, empty when there is none.
    pub pk_constraint: String,
    /// `relreplident`: d default, n nothing, f full, i index.
    pub replica_identity: char,
    /// Heap pages at the last VACUUM/ANALYZE (used to plan ctid ranges).
    pub relpages: i64,
}

impl Table {
    pub(crate) fn has_primary_key(&self) -> bool {
        self.columns.iter().any(|c| c.primary_key)
    }

    /// `"schema"."name"`, quoted for SQL.
    pub(crate) fn qualified_name(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

/// Everything discovery found.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub database: String,
    pub current_schema: String,
    pub server_version_num: u32,
    /// Sorted by display name.
    pub tables: Vec<Table>,
}

/// A discovery result the parser cannot use; `query` names the statement (`info`, `relations`,
/// `columns`, `types`, `constraints`, or `discovery` for the whole batch).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected catalog row in {query}: {problem}")]
pub struct CatalogParseError {
    pub query: &'static str,
    pub problem: CatalogProblem,
}

/// What was wrong, with the 0-based result column where one is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogProblem {
    #[error("expected {expected} result sets, got {found}")]
    ResultSets { expected: usize, found: usize },
    #[error("no row")]
    NoRow,
    #[error("missing column {column}")]
    Missing { column: usize },
    #[error("column {column} is NULL")]
    Null { column: usize },
    #[error("column {column}: expected {expected}, found {value:?}")]
    Value {
        column: usize,
        expected: &'static str,
        value: String,
    },
}

/// The rows of one discovery statement: text values, NULL as `None`.
pub type Rows = Vec<Vec<Option<String>>>;

/// Quotes an identifier the way `quote_ident` does (always quoted: cheap and never wrong).
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// A string literal that means the same with or without `standard_conforming_strings`: a value
/// holding a backslash is written as an escape string (`E'…'`) with the backslash doubled.
pub fn quote_literal(s: &str) -> String {
    if s.contains('\\') {
        format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

struct Cells<'a> {
    query: &'static str,
    row: &'a [Option<String>],
}

impl<'a> Cells<'a> {
    fn text(&self, i: usize) -> Result<&'a str, CatalogParseError> {
        match self.row.get(i) {
            Some(Some(s)) => Ok(s.as_str()),
            Some(None) => Err(self.err(CatalogProblem::Null { column: i })),
            None => Err(self.err(CatalogProblem::Missing { column: i })),
        }
    }

    fn parse<T: std::str::FromStr>(&self, i: usize) -> Result<T, CatalogParseError> {
        let s = self.text(i)?;
        s.parse()
            .map_err(|_| self.value(i, std::any::type_name::<T>(), s))
    }

    fn boolean(&self, i: usize) -> Result<bool, CatalogParseError> {
        match self.text(i)? {
            "t" => Ok(true),
            "f" => Ok(false),
            other => Err(self.value(i, "a boolean (t or f)", other)),
        }
    }

    fn char(&self, i: usize) -> Result<char, CatalogParseError> {
        let s = self.text(i)?;
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(c),
            _ => Err(self.value(i, "one character", s)),
        }
    }

    fn err(&self, problem: CatalogProblem) -> CatalogParseError {
        CatalogParseError {
            query: self.query,
            problem,
        }
    }

    fn value(&self, column: usize, expected: &'static str, value: &str) -> CatalogParseError {
        self.err(CatalogProblem::Value {
            column,
            expected,
            value: value.to_string(),
        })
    }
}

/// Builds the catalog from the results of the five discovery statements (default value options).
pub fn parse_catalog(results: &[Rows]) -> Result<Catalog, CatalogParseError> {
    parse_catalog_with(results, &ValueOptions::default())
}

/// Builds the catalog, mapping numeric and interval columns as `options` say. A column whose
/// values may arrive as NULL under the options (see [`ValueOptions::may_send_null`]) is
/// nullable even when declared NOT NULL.
pub(crate) fn parse_catalog_with(
    results: &[Rows],
    options: &ValueOptions,
) -> Result<Catalog, CatalogParseError> {
    let [info, relations, columns, types, constraints] = results else {
        return Err(CatalogParseError {
            query: "discovery",
            problem: CatalogProblem::ResultSets {
                expected: 5,
                found: results.len(),
            },
        });
    };
    let info_row = info.first().ok_or(CatalogParseError {
        query: "info",
        problem: CatalogProblem::NoRow,
    })?;
    let info = Cells {
        query: "info",
        row: info_row,
    };
    let database = info.text(0)?.to_string();
    let current_schema = info.text(1)?.to_string();
    let server_version_num = info.parse(2)?;

    let resolver = TypeResolver::with_options(
        types
            .iter()
            .map(|row| {
                let c = Cells {
                    query: "types",
                    row,
                };
                Ok(TypeRow {
                    oid: c.parse(0)?,
                    typtype: c.char(1)?,
                    category: c.char(2)?,
                    elem: c.parse(3)?,
                    base: c.parse(4)?,
                    typmod: c.parse(5)?,
                    not_null: c.boolean(6)?,
                })
            })
            .collect::<Result<Vec<_>, CatalogParseError>>()?,
        options,
    );

    // Constraint columns per relation: (primary key attnums, attnums that alone are unique).
    let mut pk_cols: HashMap<u32, Vec<i16>> = HashMap::new();
    let mut unique_cols: HashMap<u32, Vec<i16>> = HashMap::new();
    for row in constraints {
        let c = Cells {
            query: "constraints",
            row,
        };
        let rel: u32 = c.parse(0)?;
        let kind = c.char(1)?;
        let keys = c
            .text(3)?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<i16>()
                    .map_err(|_| c.value(3, "attribute numbers separated by ','", s))
            })
            .collect::<Result<Vec<i16>, _>>()?;
        if kind == 'p' {
            pk_cols.entry(rel).or_default().extend(&keys);
        }
        if keys.len() == 1 {
            unique_cols.entry(rel).or_default().extend(&keys);
        }
    }

    let mut columns_by_rel: HashMap<u32, Vec<Column>> = HashMap::new();
    for row in columns {
        let c = Cells {
            query: "columns",
            row,
        };
        let rel: u32 = c.parse(0)?;
        let attnum: i16 = c.parse(1)?;
        let type_oid: u32 = c.parse(3)?;
        let typmod: i32 = c.parse(4)?;
        let resolved = resolver.resolve(type_oid, typmod);
        let may_send_null = options.may_send_null(&resolved.pg_type);
        let primary_key = pk_cols.get(&rel).is_some_and(|k| k.contains(&attnum));
        columns_by_rel.entry(rel).or_default().push(Column {
            name: c.text(2)?.to_string(),
            attnum,
            type_oid,
            pg_type: resolved.pg_type,
            type_name: c.text(6)?.to_string(),
            not_null: (c.boolean(5)? || resolved.domain_not_null) && !may_send_null,
            not_null_declared: c.boolean(5)?,
            primary_key,
            unique: unique_cols.get(&rel).is_some_and(|k| k.contains(&attnum)),
        });
    }

    let mut tables = Vec::with_capacity(relations.len());
    for row in relations {
        let c = Cells {
            query: "relations",
            row,
        };
        let oid: u32 = c.parse(0)?;
        let schema = c.text(1)?.to_string();
        let name = c.text(2)?.to_string();
        let relkind = c.char(3)?;
        let kind = RelKind::from_char(relkind)
            .ok_or_else(|| c.value(3, "a relkind of r, p, v, m or f", &relkind.to_string()))?;
        let mut cols = columns_by_rel.remove(&oid).unwrap_or_default();
        cols.sort_by_key(|col| col.attnum);
        if !matches!(kind, RelKind::Table | RelKind::Partitioned) {
            // A NOT NULL domain is enforced when rows are stored, not when a view computes
            // them (an outer join yields NULLs of any type): only stored rows promise it.
            for col in &mut cols {
                col.not_null &= col.not_null_declared;
            }
        }
        let display_name = if schema == current_schema {
            name.clone()
        } else {
            format!("{schema}.{name}")
        };
        tables.push(Table {
            oid,
            display_name,
            schema,
            name,
            kind,
            comment: c.text(4)?.to_string(),
            columns: cols,
            relpages: c.parse(5)?,
            replica_identity: c.char(6)?,
            pk_constraint: c.text(7)?.to_string(),
        });
    }
    tables.sort_by(|a, b| a.display_name.cmp(&b.display_name));
    Ok(Catalog {
        database,
        current_schema,
        server_version_num,
        tables,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows as PostgreSQL 15 returned them for a small schema (see discovery.rs).
    fn rows(text: &str) -> Rows {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                l.trim()
                    .split('|')
                    .map(|v| (v != "<NULL>").then(|| v.to_string()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn parses_a_real_catalog() {
        let results = vec![
            rows("postgres|public|150018"),
            rows(
                "16500|public|users|r|the users|0|d|users_pkey
                 16510|sales|orders|r||0|d|orders_pkey
                 16527|public|v_users|v||0|n|",
            ),
            rows(
                "16500|1|id|20|-1|t|bigint
                 16500|2|name|25|-1|t|text
                 16500|4|age|16491|-1|f|posint
                 16500|7|ts|1114|3|f|timestamp(3) without time zone
                 16510|1|id|23|-1|t|integer
                 16510|2|uid|23|-1|t|integer
                 16510|3|note|1043|14|f|character varying(10)
                 16510|4|moods|16493|-1|f|mood[]
                 16527|1|id|20|-1|f|bigint",
            ),
            rows(
                "16494|e|E|0|0|-1|f
                 16493|b|A|16494|0|-1|f
                 16491|d|N|0|23|-1|t",
            ),
            rows(
                "16500|p|users_pkey|1
                 16510|p|orders_pkey|1,2
                 16510|u|orders_note_key|3",
            ),
        ];
        let cat = parse_catalog(&results).unwrap();
        assert_eq!(cat.server_version_num, 150018);
        let names: Vec<_> = cat.tables.iter().map(|t| t.display_name.as_str()).collect();
        assert_eq!(names, ["sales.orders", "users", "v_users"]);
        let users = &cat.tables[1];
        assert_eq!(users.comment, "the users");
        assert_eq!(users.pk_constraint, "users_pkey");
        let id = &users.columns[0];
        assert!(id.primary_key && id.unique && id.not_null);
        let age = &users.columns[2];
        assert_eq!(age.pg_type, PgType::Int4);
        assert!(age.not_null, "NOT NULL domain");
        assert_eq!(
            users.columns[3].pg_type,
            PgType::Timestamp { precision: Some(3) }
        );
        let orders = &cat.tables[0];
        assert!(orders.columns[0].primary_key && !orders.columns[0].unique);
        assert!(orders.columns[2].unique && !orders.columns[2].primary_key);
        assert_eq!(
            orders.columns[3].pg_type,
            PgType::Array(Box::new(PgType::ServerText))
        );
        assert_eq!(orders.qualified_name(), "\"sales\".\"orders\"");
        assert_eq!(cat.tables[2].kind, RelKind::View);
    }

    #[test]
    fn malformed_rows_are_errors_not_panics() {
        let mut results = vec![rows("db|public|x"), vec![], vec![], vec![], vec![]];
        assert!(parse_catalog(&results).is_err());
        results[0] = rows("db|public|150000");
        results[1] = rows("1|public|t|z||0|d|");
        let e = parse_catalog(&results).unwrap_err();
        assert_eq!(e.query, "relations");
        assert!(matches!(
            e.problem,
            CatalogProblem::Value { column: 3, ref value, .. } if value == "z"
        ));
        let e = parse_catalog(&results[..2]).unwrap_err();
        assert_eq!(
            e.problem,
            CatalogProblem::ResultSets {
                expected: 5,
                found: 2
            }
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}
