//! The discovery statements, sent as one simple query (one round trip, five result sets).
//!
//! `rels` = the relations the plugin can sync: ordinary and partitioned tables (partitions are
//! folded into their root), views, materialized views and foreign tables, in every schema the
//! user may use, except the system schemas and temporary schemas. Each statement that needs it
//! starts from the same CTE, so the four views of the catalog always agree.

const RELS: &str = "rels AS (
  SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
    AND has_schema_privilege(n.oid, 'USAGE')
)";

/// Database, current schema (bare table names), server version.
const INFO: &str =
    "SELECT current_database(), coalesce(current_schema(), ''), current_setting('server_version_num')";

const RELATIONS: &str = "
SELECT c.oid, n.nspname, c.relname, c.relkind, coalesce(obj_description(c.oid, 'pg_class'), ''),
       c.relpages, c.relreplident,
       coalesce((SELECT k.conname FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p'), '')
FROM rels JOIN pg_class c ON c.oid = rels.oid JOIN pg_namespace n ON n.oid = c.relnamespace";

const COLUMNS: &str = "
SELECT a.attrelid, a.attnum, a.attname, a.atttypid, a.atttypmod, a.attnotnull,
       format_type(a.atttypid, a.atttypmod)
FROM rels JOIN pg_attribute a ON a.attrelid = rels.oid
WHERE a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum";

/// Every type the columns reach: their own, domains' base types, arrays' element types.
const TYPES: &str = ", types(oid) AS (
  SELECT DISTINCT a.atttypid FROM rels JOIN pg_attribute a ON a.attrelid = rels.oid
  WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION
  SELECT x.oid FROM types t JOIN pg_type ty ON ty.oid = t.oid
  CROSS JOIN LATERAL (
    SELECT ty.typbasetype WHERE ty.typtype = 'd'
    UNION ALL SELECT ty.typelem WHERE ty.typcategory = 'A' AND ty.typelem <> 0
  ) x(oid)
)
SELECT ty.oid, ty.typtype, ty.typcategory, ty.typelem, ty.typbasetype, ty.typtypmod, ty.typnotnull
FROM types t JOIN pg_type ty ON ty.oid = t.oid";

const CONSTRAINTS: &str = "
SELECT k.conrelid, k.contype, k.conname, array_to_string(k.conkey, ',')
FROM rels JOIN pg_constraint k ON k.conrelid = rels.oid
WHERE k.contype IN ('p', 'u')";

/// The five statements, in the order [`super::parse_catalog`] expects their results.
pub(crate) fn discovery_sql() -> String {
    format!(
        "{INFO};\nWITH {RELS}{RELATIONS};\nWITH {RELS}{COLUMNS};\nWITH RECURSIVE {RELS}{TYPES};\nWITH {RELS}{CONSTRAINTS};"
    )
}
