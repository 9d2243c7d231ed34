//! The plugin's spec (the nested `spec:` of the source's YAML), parsed and validated at Init and
//! TestConnection.
//!
//! | field | type, default | rule |
//! |---|---|---|
//! | `connection_string` | string, required | non-empty; then checked by the wire client's parser |
//! | `pgx_log_level` | string, `error` | one of `error`, `warn`, `info`, `debug`, `trace` |
//! | `rows_per_record` | integer, 500 | ≥ 1: the most rows in one Arrow record (one insert message) |
//! | `destination_table_name` | string, `{{TABLE}}` | see [`TableNameTemplate`] |
//! | `cdc_id` | string, empty = CDC off | see [`CdcId`] |
//! | `concurrency` | integer, 4 | ≥ 1: how many tables are read at the same time |
//! | `incremental` | string, `off` | `off` or `xmin`; not with `cdc_id` (see [`table_options`]) |
//! | `table_options` | list, empty | per-table `cursor_column`, `exclude_columns`, `filter`; a `cursor_column` not with `cdc_id` |
//! | `numeric_type`, `interval_type`, `infinity`, `out_of_range` | strings | see [`values`] |
//!
//! Any other key is an error naming it. Every problem is reported (not just the first), each naming
//! its field and the rule. The spec `null` (no `spec:` in the YAML) is the empty spec, which fails on
//! `connection_string`. [`schema`] expresses the same rules as a JSON
//! Schema for `cloudquery validate-config`.

pub(crate) mod cdc_options;
pub mod schema;
pub(crate) mod table_options;
pub(crate) mod template;
pub(crate) mod values;

use std::fmt;

use serde_json::{Map, Value};

pub use crate::cdc::CdcId;
use crate::decode::ValueOptions;
use crate::logging::Level;
use cdc_options::parse_cdc_options;
pub use cdc_options::CdcSpec;
use table_options::{parse_incremental, parse_table_options};
pub use table_options::{IncrementalMode, TableOptionsEntry};
pub use template::{
    render_table_name, Placeholder, TableNameTemplate, UtcMinute, DEFAULT_TABLE_TEMPLATE,
};
use values::parse_value_options;

pub const DEFAULT_ROWS_PER_RECORD: usize = 500;
pub const DEFAULT_CONCURRENCY: usize = 4;

pub const FIELDS: [&str; 15] = [
    "connection_string",
    "pgx_log_level",
    "rows_per_record",
    "destination_table_name",
    "cdc_id",
    "cdc_reconnect_timeout",
    "cdc_initial_sync",
    "cdc_on_lost_slot",
    "concurrency",
    "incremental",
    "table_options",
    "numeric_type",
    "interval_type",
    "infinity",
    "out_of_range",
];

/// Checks a connection string; the error text must already mask any password.
///
/// The plugin passes the wire client's parser (`crate::wire::Config::parse`); tests of the spec
/// alone accept any string.
pub type ConnStringCheck = fn(&str) -> Result<(), String>;

/// Accepts every non-empty connection string (syntax is left to the connection attempt).
pub fn accept_any_conn_string(_: &str) -> Result<(), String> {
    Ok(())
}

/// One problem with the spec: the field and what rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct SpecError {
    pub field: String,
    pub problem: String,
}

impl SpecError {
    pub(crate) fn new(field: &str, problem: impl Into<String>) -> SpecError {
        SpecError {
            field: field.to_string(),
            problem: problem.into(),
        }
    }
}

/// Every problem found in a spec, in field order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid spec: ")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

impl SpecErrors {
    pub fn fields(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.field.as_str()).collect()
    }
}

/// The validated spec.
#[derive(Clone, PartialEq, Eq)]
pub struct Spec {
    /// URL or key=value DSN, as given (environment and defaults are applied by the wire client).
    pub connection_string: String,
    /// Log level of the wire client (`pgx_log_level`).
    pub pgx_log_level: Level,
    /// Most rows per Arrow record, i.e. per insert message.
    pub rows_per_record: usize,
    pub destination_table_name: TableNameTemplate,
    /// `Some` when CDC is on.
    pub cdc_id: Option<CdcId>,
    /// `cdc_reconnect_timeout`, `cdc_initial_sync`, `cdc_on_lost_slot` (used only with `cdc_id`).
    pub cdc: CdcSpec,
    /// Tables read at the same time.
    pub concurrency: usize,
    /// How tables without a `cursor_column` are synced.
    pub incremental: IncrementalMode,
    /// Per-table options, in the order written.
    pub table_options: Vec<TableOptionsEntry>,
    /// `numeric_type`, `interval_type`, `infinity`, `out_of_range`.
    pub values: ValueOptions,
}

impl fmt::Debug for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection string may hold a password: never print it.
        f.debug_struct("Spec")
            .field("connection_string", &"<redacted>")
            .field("pgx_log_level", &self.pgx_log_level)
            .field("rows_per_record", &self.rows_per_record)
            .field(
                "destination_table_name",
                &self.destination_table_name.as_str(),
            )
            .field("cdc_id", &self.cdc_id.as_ref().map(CdcId::as_str))
            .field("concurrency", &self.concurrency)
            .field("incremental", &self.incremental)
            .field("table_options", &self.table_options)
            .field("values", &self.values)
            .finish()
    }
}

impl Spec {
    /// Parses and validates the spec bytes the CLI sends in Init / TestConnection (JSON).
    pub fn parse(json: &[u8], check_conn: ConnStringCheck) -> Result<Spec, SpecErrors> {
        let value: Value = serde_json::from_slice(json).map_err(|e| {
            SpecErrors(vec![SpecError::new(
                "spec",
                format!("is not valid JSON: {e}"),
            )])
        })?;
        Spec::from_value(&value, check_conn)
    }

    pub fn from_value(value: &Value, check_conn: ConnStringCheck) -> Result<Spec, SpecErrors> {
        let empty = Map::new();
        let map = match value {
            Value::Null => &empty,
            Value::Object(map) => map,
            other => {
                return Err(SpecErrors(vec![SpecError::new(
                    "spec",
                    format!("must be a mapping of fields, got {}", json_kind(other)),
                )]))
            }
        };
        let mut errors = Vec::new();

        for key in map.keys() {
            if !FIELDS.contains(&key.as_str()) {
                errors.push(SpecError::new(
                    key,
                    format!("unknown field; the valid fields are {}", FIELDS.join(", ")),
                ));
            }
        }

        let connection_string = match map.get("connection_string") {
            None => {
                errors.push(SpecError::new(
                    "connection_string",
                    "is required (a postgres:// URL or a key=value connection string)",
                ));
                String::new()
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                errors.push(SpecError::new(
                    "connection_string",
                    "is required and must not be empty",
                ));
                String::new()
            }
            Some(Value::String(s)) => {
                if let Err(problem) = check_conn(s) {
                    errors.push(SpecError::new("connection_string", problem));
                }
                s.clone()
            }
            Some(other) => {
                errors.push(SpecError::new(
                    "connection_string",
                    format!("must be a string, got {}", json_kind(other)),
                ));
                String::new()
            }
        };

        let levels = Level::NAMES
            .iter()
            .rev()
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        let pgx_log_level = match map.get("pgx_log_level") {
            None => Level::Error,
            Some(Value::String(s)) => Level::parse(s).unwrap_or_else(|| {
                errors.push(SpecError::new(
                    "pgx_log_level",
                    format!("must be one of {levels}, got {s:?}"),
                ));
                Level::Error
            }),
            Some(other) => {
                errors.push(SpecError::new(
                    "pgx_log_level",
                    format!("must be one of {levels}, got {}", json_kind(other)),
                ));
                Level::Error
            }
        };

        let rows_per_record =
            positive_integer(map, "rows_per_record", DEFAULT_ROWS_PER_RECORD, &mut errors);
        let concurrency = positive_integer(map, "concurrency", DEFAULT_CONCURRENCY, &mut errors);

        let cdc_id = match map.get("cdc_id") {
            None => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => match CdcId::parse(s) {
                Ok(id) => Some(id),
                Err(e) => {
                    errors.push(SpecError::new("cdc_id", e.to_string()));
                    None
                }
            },
            Some(other) => {
                errors.push(SpecError::new(
                    "cdc_id",
                    format!("must be a string, got {}", json_kind(other)),
                ));
                None
            }
        };
        let cdc_requested = matches!(map.get("cdc_id"), Some(Value::String(s)) if !s.is_empty());

        let destination_table_name = match map.get("destination_table_name") {
            None => TableNameTemplate::default(),
            Some(Value::String(s)) => match TableNameTemplate::parse(s) {
                Ok(t) if cdc_requested && t.has_time_placeholders() => {
                    errors.push(SpecError::new(
                        "destination_table_name",
                        "dynamic placeholders ({{YEAR}}, {{MONTH}}, {{DAY}}, {{HOUR}}, {{MINUTE}}) \
                         are not allowed in CDC mode (cdc_id is set)",
                    ));
                    t
                }
                Ok(t) => t,
                Err(problem) => {
                    errors.push(SpecError::new("destination_table_name", problem));
                    TableNameTemplate::default()
                }
            },
            Some(other) => {
                errors.push(SpecError::new(
                    "destination_table_name",
                    format!("must be a string, got {}", json_kind(other)),
                ));
                TableNameTemplate::default()
            }
        };

        let incremental = parse_incremental(map.get("incremental"), &mut errors);
        let table_options = parse_table_options(map.get("table_options"), &mut errors);
        if cdc_requested {
            if incremental != IncrementalMode::Off {
                errors.push(SpecError::new(
                    "incremental",
                    "cannot be combined with cdc_id: choose CDC (keep cdc_id, remove incremental) \
                     to stream every change including deletes through logical replication, or an \
                     incremental sync without replication (keep incremental, remove cdc_id)",
                ));
            }
            for entry in table_options.iter().filter(|e| e.cursor_column.is_some()) {
                errors.push(SpecError::new(
                    &format!("{}.cursor_column", entry.name()),
                    "cannot be combined with cdc_id: choose CDC (keep cdc_id, remove \
                     cursor_column) or an incremental sync by this column (keep cursor_column, \
                     remove cdc_id)",
                ));
            }
        }
        let mut value_errors = Vec::new();
        let cdc = parse_cdc_options(map, &mut value_errors);
        let values = parse_value_options(map, &mut value_errors);
        errors.extend(value_errors.into_iter().map(|(f, p)| SpecError::new(f, p)));

        if !errors.is_empty() {
            // Stable sort: nested fields (`table_options[0].filter`) sort with their top field.
            errors.sort_by_key(|e| {
                let top = e.field.split(['[', '.']).next().unwrap_or_default();
                FIELDS
                    .iter()
                    .position(|f| *f == top)
                    .unwrap_or(FIELDS.len())
            });
            return Err(SpecErrors(errors));
        }
        Ok(Spec {
            connection_string,
            pgx_log_level,
            rows_per_record,
            destination_table_name,
            cdc_id,
            cdc,
            concurrency,
            incremental,
            table_options,
            values,
        })
    }
}

fn positive_integer(
    map: &Map<String, Value>,
    field: &str,
    default: usize,
    errors: &mut Vec<SpecError>,
) -> usize {
    let Some(value) = map.get(field) else {
        return default;
    };
    let parsed = match value {
        Value::Number(n) => n.as_u64().and_then(|v| usize::try_from(v).ok()),
        _ => None,
    };
    match parsed {
        Some(v) if v >= 1 => v,
        _ => {
            let got = match value {
                Value::Number(n) => n.to_string(),
                other => json_kind(other).to_string(),
            };
            errors.push(SpecError::new(
                field,
                format!("must be an integer >= 1, got {got}"),
            ));
            default
        }
    }
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, UNIX_EPOCH};

    fn parse(v: Value) -> Result<Spec, SpecErrors> {
        Spec::from_value(&v, accept_any_conn_string)
    }

    fn errors(v: Value) -> SpecErrors {
        parse(v).unwrap_err()
    }

    fn only_error(v: Value) -> SpecError {
        let e = errors(v);
        assert_eq!(e.0.len(), 1, "{e}");
        e.0[0].clone()
    }

    const CONN: &str = "postgres://u:p@localhost/db";

    #[test]
    fn defaults() {
        let spec = parse(json!({ "connection_string": CONN })).unwrap();
        assert_eq!(spec.connection_string, CONN);
        assert_eq!(spec.pgx_log_level, Level::Error);
        assert_eq!(spec.rows_per_record, 500);
        assert_eq!(spec.concurrency, 4);
        assert!(spec.destination_table_name.is_identity());
        assert_eq!(spec.cdc_id, None);
        assert_eq!(spec.incremental, IncrementalMode::Off);
        assert!(spec.table_options.is_empty());
    }

    #[test]
    fn incremental_and_cursor_columns_exclude_cdc() {
        let e = errors(json!({
            "connection_string": CONN,
            "cdc_id": "x",
            "incremental": "xmin",
            "table_options": [{"tables": ["t"], "cursor_column": "c"}, {"tables": ["u"], "filter": "true"}]
        }));
        assert_eq!(
            e.fields(),
            vec!["incremental", "table_options[0].cursor_column"]
        );
        assert!(e.0[0].problem.contains("choose CDC"));
        let ok = parse(json!({
            "connection_string": CONN,
            "incremental": "xmin",
            "table_options": [{"tables": ["t"], "cursor_column": "c"}]
        }))
        .unwrap();
        assert_eq!(ok.incremental, IncrementalMode::Xmin);
        assert_eq!(ok.table_options.len(), 1);
        // filter and exclude_columns work with CDC.
        parse(json!({
            "connection_string": CONN,
            "cdc_id": "x",
            "table_options": [{"tables": ["t"], "exclude_columns": ["c"], "filter": "id > 1"}]
        }))
        .unwrap();
    }

    #[test]
    fn all_fields() {
        let spec = parse(json!({
            "connection_string": CONN,
            "pgx_log_level": "trace",
            "rows_per_record": 1,
            "destination_table_name": "pg_{{TABLE}}_{{YEAR}}",
            "cdc_id": "",
            "concurrency": 16,
        }))
        .unwrap();
        assert_eq!(spec.pgx_log_level, Level::Trace);
        assert_eq!(spec.rows_per_record, 1);
        assert_eq!(spec.concurrency, 16);
        assert_eq!(
            spec.destination_table_name.as_str(),
            "pg_{{TABLE}}_{{YEAR}}"
        );
        assert_eq!(spec.cdc_id, None, "empty cdc_id is off");
    }

    #[test]
    fn debug_never_shows_the_connection_string() {
        let spec = parse(json!({ "connection_string": "postgres://u:hunter2@h/db" })).unwrap();
        assert!(!format!("{spec:?}").contains("hunter2"));
    }

    #[test]
    fn null_and_empty_specs_fail_on_connection_string() {
        for json in ["null", "{}"] {
            let e = Spec::parse(json.as_bytes(), accept_any_conn_string).unwrap_err();
            assert_eq!(e.fields(), ["connection_string"], "{json}");
            assert!(
                e.to_string().contains("connection_string: is required"),
                "{e}"
            );
        }
        let e = only_error(json!({ "connection_string": "  " }));
        assert_eq!(e.field, "connection_string");
        assert!(e.problem.contains("must not be empty"));
        let e = only_error(json!({ "connection_string": 5 }));
        assert!(e.problem.contains("must be a string"));
    }

    #[test]
    fn invalid_json_and_non_objects() {
        let e = Spec::parse(b"{", accept_any_conn_string).unwrap_err();
        assert_eq!(e.fields(), ["spec"]);
        let e = only_error(json!(["a"]));
        assert_eq!(e.field, "spec");
        assert!(e.problem.contains("mapping"));
    }

    #[test]
    fn connection_string_check_is_called() {
        fn reject(s: &str) -> Result<(), String> {
            Err(format!(
                "cannot parse {:?}",
                s.replace("secret", "********")
            ))
        }
        let e = Spec::from_value(
            &json!({ "connection_string": "postgres://u:secret@/x" }),
            reject,
        )
        .unwrap_err();
        assert_eq!(e.fields(), ["connection_string"]);
        assert!(!e.to_string().contains("secret"));
    }

    #[test]
    fn pgx_log_level_rule() {
        for bad in [json!("ERROR"), json!("none"), json!("warning"), json!(3)] {
            let e = only_error(json!({ "connection_string": CONN, "pgx_log_level": bad }));
            assert_eq!(e.field, "pgx_log_level");
            assert!(
                e.problem.contains("error, warn, info, debug, trace"),
                "{}",
                e.problem
            );
        }
    }

    #[test]
    fn integer_rules() {
        for field in ["rows_per_record", "concurrency"] {
            for bad in [
                json!(0),
                json!(-1),
                json!(1.5),
                json!(2.0),
                json!("500"),
                json!(null),
                json!(true),
            ] {
                let mut v = json!({ "connection_string": CONN });
                v[field] = bad.clone();
                let e = only_error(v);
                assert_eq!(e.field, field, "{bad}");
                assert!(
                    e.problem.contains("must be an integer >= 1"),
                    "{}",
                    e.problem
                );
            }
            let mut v = json!({ "connection_string": CONN });
            v[field] = json!(7);
            let spec = parse(v).unwrap();
            assert_eq!(
                if field == "concurrency" {
                    spec.concurrency
                } else {
                    spec.rows_per_record
                },
                7
            );
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = errors(json!({ "connection_strin": CONN, "cdc": true }));
        let fields = e.fields();
        assert!(fields.contains(&"connection_strin"));
        assert!(fields.contains(&"cdc"));
        assert!(fields.contains(&"connection_string"));
        assert!(e.to_string().contains("cdc: unknown field"), "{e}");
    }

    #[test]
    fn every_problem_is_reported() {
        let e = errors(json!({
            "pgx_log_level": "loud",
            "rows_per_record": 0,
            "destination_table_name": "{{FOO}}",
            "cdc_id": "bad id!",
            "concurrency": -2,
        }));
        assert_eq!(
            e.fields(),
            [
                "connection_string",
                "pgx_log_level",
                "rows_per_record",
                "destination_table_name",
                "cdc_id",
                "concurrency"
            ]
        );
    }

    #[test]
    fn destination_table_name_rules() {
        let with = |t: &str| json!({ "connection_string": CONN, "destination_table_name": t });
        for ok in [
            "{{TABLE}}",
            "{{UUID}}",
            "src_{{TABLE}}",
            "{{TABLE}}_{{YEAR}}{{MONTH}}{{DAY}}_{{HOUR}}{{MINUTE}}",
            "x{y}z_{{TABLE}}}",
            "a{_{{TABLE}}",
        ] {
            parse(with(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let e = only_error(with("{{FOO}}_{{TABLE}}"));
        assert_eq!(e.field, "destination_table_name");
        assert!(
            e.problem.contains("unknown placeholder {{FOO}}"),
            "{}",
            e.problem
        );
        let e = only_error(with("{{table}}"));
        assert!(e.problem.contains("{{table}}"), "{}", e.problem);
        let e = only_error(with("static_name"));
        assert!(e.problem.contains("must contain {{TABLE}} or {{UUID}}"));
        let e = only_error(with("{{YEAR}}_{{MONTH}}"));
        assert!(e.problem.contains("must contain {{TABLE}} or {{UUID}}"));
        let e = only_error(with("{{TABLE}}_{{YEAR"));
        assert!(e.problem.contains("unterminated"), "{}", e.problem);
        let e = only_error(with("{{{TABLE}}"));
        assert!(
            e.problem.contains("unknown placeholder {{{TABLE}}"),
            "{}",
            e.problem
        );
        let e = only_error(json!({ "connection_string": CONN, "destination_table_name": 1 }));
        assert!(e.problem.contains("must be a string"));
    }

    #[test]
    fn time_placeholders_are_rejected_in_cdc_mode() {
        for t in ["{{TABLE}}_{{YEAR}}", "{{TABLE}}_{{MINUTE}}"] {
            let e = only_error(json!({
                "connection_string": CONN,
                "destination_table_name": t,
                "cdc_id": "sync1",
            }));
            assert_eq!(e.field, "destination_table_name");
            assert!(
                e.problem.contains("not allowed in CDC mode"),
                "{}",
                e.problem
            );
        }
        let spec = parse(json!({
            "connection_string": CONN,
            "destination_table_name": "cdc_{{TABLE}}",
            "cdc_id": "sync1",
        }))
        .unwrap();
        assert_eq!(spec.cdc_id.unwrap().slot_name(), "cq_sync1");
    }

    #[test]
    fn cdc_id_rule() {
        let id = CdcId::parse("My-Sync_2").unwrap();
        assert_eq!(id.as_str(), "My-Sync_2");
        assert_eq!(id.slot_name(), "cq_my_sync_2");
        assert_eq!(id.publication_name(), "cq_my_sync_2");
        assert_eq!(CdcId::parse(&"a".repeat(60)).unwrap().slot_name().len(), 63);
        for bad in ["has space", "dot.ted", "ünï", &"a".repeat(61), "semi;colon"] {
            let e = only_error(json!({ "connection_string": CONN, "cdc_id": bad }));
            assert_eq!(e.field, "cdc_id");
            assert!(e.problem.contains("replication slot name"), "{}", e.problem);
        }
        let e = only_error(json!({ "connection_string": CONN, "cdc_id": 12 }));
        assert!(e.problem.contains("must be a string"));
    }

    #[test]
    fn render_is_utc_and_zero_padded() {
        let t = TableNameTemplate::parse(
            "{{TABLE}}_{{YEAR}}-{{MONTH}}-{{DAY}}T{{HOUR}}:{{MINUTE}}_{{UUID}}",
        )
        .unwrap();
        // 2026-01-09T07:05:59Z
        let now = UNIX_EPOCH + Duration::from_secs(1_767_942_359);
        let uuid = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(
            render_table_name(&t, "users", now, &uuid),
            "users_2026-01-09T07:05_01234567_89ab_cdef_0123_456789abcdef"
        );
        let d = TableNameTemplate::default();
        assert_eq!(render_table_name(&d, "public.x", now, &uuid), "public.x");
    }

    #[test]
    fn civil_dates() {
        let cases = [
            (0, (1970, 1, 1, 0, 0)),
            (951_782_400, (2000, 2, 29, 0, 0)),
            (4_107_542_399, (2100, 2, 28, 23, 59)),
            (-1, (1969, 12, 31, 23, 59)),
            (1_709_164_800 + 3_600 * 13 + 60 * 7, (2024, 2, 29, 13, 7)),
        ];
        for (secs, (y, mo, d, h, mi)) in cases {
            let t = UtcMinute::from_unix_seconds(secs);
            assert_eq!(
                (t.year, t.month, t.day, t.hour, t.minute),
                (y, mo, d, h, mi),
                "{secs}"
            );
        }
    }
}
