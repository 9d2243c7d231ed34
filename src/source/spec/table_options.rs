//! The spec's `incremental` and `table_options` fields: their shape, checked at Init and
//! TestConnection without a connection. Whether the tables, columns and filters they name exist
//! is checked against the catalog by the source (`crate::source::table_options`).
//!
//! ```yaml
//! incremental: xmin              # off (default) | xmin
//! table_options:                 # applied in order; patterns as in `tables`
//!   - tables: ["orders", "sales.*"]
//!     cursor_column: updated_at
//!   - tables: ["audit_log"]
//!     exclude_columns: ["payload"]
//!     filter: "created_at > now() - interval '90 days'"
//! ```

use serde_json::{Map, Value};

use super::SpecError;

/// `incremental`: how tables without a `cursor_column` are synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncrementalMode {
    /// Every sync reads every row (the default).
    #[default]
    Off,
    /// After the first sync, read only the rows written by transactions the previous sync's
    /// snapshot did not see.
    Xmin,
}

impl IncrementalMode {
    pub const NAMES: [&'static str; 2] = ["off", "xmin"];

    pub fn as_str(self) -> &'static str {
        match self {
            IncrementalMode::Off => "off",
            IncrementalMode::Xmin => "xmin",
        }
    }

    fn parse(s: &str) -> Option<IncrementalMode> {
        match s {
            "off" => Some(IncrementalMode::Off),
            "xmin" => Some(IncrementalMode::Xmin),
            _ => None,
        }
    }
}

/// The keys one `table_options` entry may have.
pub const ENTRY_KEYS: [&str; 4] = ["tables", "cursor_column", "exclude_columns", "filter"];

/// One entry of `table_options`, as written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableOptionsEntry {
    /// Position in the list (entries are named `table_options[N]` in messages).
    pub index: usize,
    pub tables: Vec<String>,
    pub cursor_column: Option<String>,
    pub exclude_columns: Vec<String>,
    pub filter: Option<String>,
}

impl TableOptionsEntry {
    /// `table_options[N]`, the entry's name in messages.
    pub fn name(&self) -> String {
        format!("table_options[{}]", self.index)
    }
}

/// Parses `incremental`; problems are pushed to `errors`.
pub fn parse_incremental(value: Option<&Value>, errors: &mut Vec<SpecError>) -> IncrementalMode {
    let names = IncrementalMode::NAMES.join(", ");
    match value {
        None => IncrementalMode::Off,
        Some(Value::String(s)) => IncrementalMode::parse(s).unwrap_or_else(|| {
            errors.push(SpecError::new(
                "incremental",
                format!("must be one of {names}, got {s:?}"),
            ));
            IncrementalMode::Off
        }),
        Some(Value::Bool(false)) => IncrementalMode::Off,
        Some(other) => {
            errors.push(SpecError::new(
                "incremental",
                format!("must be one of {names}, got {}", super::json_kind(other)),
            ));
            IncrementalMode::Off
        }
    }
}

/// Parses `table_options`; problems are pushed to `errors`, each naming the entry and key.
pub fn parse_table_options(
    value: Option<&Value>,
    errors: &mut Vec<SpecError>,
) -> Vec<TableOptionsEntry> {
    let list = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(list)) => list,
        Some(other) => {
            errors.push(SpecError::new(
                "table_options",
                format!(
                    "must be a list of entries like {{tables: [\"orders\"], cursor_column: updated_at}}, got {}",
                    super::json_kind(other)
                ),
            ));
            return Vec::new();
        }
    };
    list.iter()
        .enumerate()
        .filter_map(|(index, v)| parse_entry(index, v, errors))
        .collect()
}

fn parse_entry(
    index: usize,
    value: &Value,
    errors: &mut Vec<SpecError>,
) -> Option<TableOptionsEntry> {
    let name = format!("table_options[{index}]");
    let Value::Object(map) = value else {
        errors.push(SpecError::new(
            &name,
            format!(
                "must be a mapping with the keys {}, got {}",
                ENTRY_KEYS.join(", "),
                super::json_kind(value)
            ),
        ));
        return None;
    };
    let before = errors.len();
    for key in map.keys() {
        if !ENTRY_KEYS.contains(&key.as_str()) {
            errors.push(SpecError::new(
                &format!("{name}.{key}"),
                format!("unknown key; the valid keys are {}", ENTRY_KEYS.join(", ")),
            ));
        }
    }
    let tables = match map.get("tables") {
        None => {
            errors.push(SpecError::new(
                &format!("{name}.tables"),
                "is required: the table name patterns (as in `tables`) this entry applies to",
            ));
            Vec::new()
        }
        Some(v) => string_list(&format!("{name}.tables"), v, errors),
    };
    if map.contains_key("tables") && tables.is_empty() && errors.len() == before {
        errors.push(SpecError::new(
            &format!("{name}.tables"),
            "must list at least one table name pattern",
        ));
    }
    let cursor_column = non_empty_string(map, &name, "cursor_column", errors);
    let exclude_columns = match map.get("exclude_columns") {
        None => Vec::new(),
        Some(v) => string_list(&format!("{name}.exclude_columns"), v, errors),
    };
    let filter = non_empty_string(map, &name, "filter", errors);
    if let Some(cursor) = &cursor_column {
        if exclude_columns.iter().any(|c| c == cursor) {
            errors.push(SpecError::new(
                &format!("{name}.exclude_columns"),
                format!("excludes the entry's own cursor_column {cursor:?}"),
            ));
        }
    }
    if errors.len() == before
        && cursor_column.is_none()
        && exclude_columns.is_empty()
        && filter.is_none()
    {
        errors.push(SpecError::new(
            &name,
            "sets none of cursor_column, exclude_columns, filter: it would do nothing",
        ));
    }
    (errors.len() == before).then_some(TableOptionsEntry {
        index,
        tables,
        cursor_column,
        exclude_columns,
        filter,
    })
}

fn non_empty_string(
    map: &Map<String, Value>,
    entry: &str,
    key: &str,
    errors: &mut Vec<SpecError>,
) -> Option<String> {
    match map.get(key) {
        None => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::String(_)) => {
            errors.push(SpecError::new(
                &format!("{entry}.{key}"),
                "must not be empty (leave the key out instead)",
            ));
            None
        }
        Some(other) => {
            errors.push(SpecError::new(
                &format!("{entry}.{key}"),
                format!("must be a string, got {}", super::json_kind(other)),
            ));
            None
        }
    }
}

fn string_list(field: &str, value: &Value, errors: &mut Vec<SpecError>) -> Vec<String> {
    let Value::Array(items) = value else {
        errors.push(SpecError::new(
            field,
            format!("must be a list of strings, got {}", super::json_kind(value)),
        ));
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) if !s.is_empty() => out.push(s.clone()),
            Value::String(_) => errors.push(SpecError::new(
                &format!("{field}[{i}]"),
                "must not be empty",
            )),
            other => errors.push(SpecError::new(
                &format!("{field}[{i}]"),
                format!("must be a string, got {}", super::json_kind(other)),
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> (Vec<TableOptionsEntry>, Vec<SpecError>) {
        let mut errors = Vec::new();
        let entries = parse_table_options(Some(&v), &mut errors);
        (entries, errors)
    }

    fn fields(errors: &[SpecError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn good_entries() {
        let (entries, errors) = parse(json!([
            {"tables": ["orders", "sales.*"], "cursor_column": "updated_at"},
            {"tables": ["audit_log"], "exclude_columns": ["payload"], "filter": "id > 3"}
        ]));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].tables, vec!["orders", "sales.*"]);
        assert_eq!(entries[0].cursor_column.as_deref(), Some("updated_at"));
        assert_eq!(entries[1].index, 1);
        assert_eq!(entries[1].name(), "table_options[1]");
        assert_eq!(entries[1].exclude_columns, vec!["payload"]);
        assert_eq!(entries[1].filter.as_deref(), Some("id > 3"));
    }

    #[test]
    fn shape_errors_name_the_entry_and_key() {
        let (_, errors) = parse(json!([
            {"tables": ["a"], "cursor": "x"},
            {"cursor_column": "x"},
            {"tables": [], "filter": "true"},
            {"tables": ["a"], "exclude_columns": "payload"},
            {"tables": ["a"]},
            "orders",
            {"tables": ["a"], "filter": ""},
            {"tables": ["a"], "cursor_column": "c", "exclude_columns": ["c"]},
            {"tables": [1], "filter": "x"}
        ]));
        assert_eq!(
            fields(&errors),
            vec![
                "table_options[0].cursor",
                "table_options[1].tables",
                "table_options[2].tables",
                "table_options[3].exclude_columns",
                "table_options[4]",
                "table_options[5]",
                "table_options[6].filter",
                "table_options[7].exclude_columns",
                "table_options[8].tables[0]",
            ]
        );
        assert!(errors[0].problem.contains("valid keys are tables"));
        assert!(errors[4].problem.contains("would do nothing"));
    }

    #[test]
    fn not_a_list() {
        let (entries, errors) = parse(json!({"tables": ["a"]}));
        assert!(entries.is_empty());
        assert_eq!(fields(&errors), vec!["table_options"]);
    }

    #[test]
    fn incremental_values() {
        let mut errors = Vec::new();
        assert_eq!(parse_incremental(None, &mut errors), IncrementalMode::Off);
        assert_eq!(
            parse_incremental(Some(&json!("xmin")), &mut errors),
            IncrementalMode::Xmin
        );
        assert_eq!(
            parse_incremental(Some(&json!("off")), &mut errors),
            IncrementalMode::Off
        );
        assert!(errors.is_empty());
        parse_incremental(Some(&json!("cursor")), &mut errors);
        parse_incremental(Some(&json!(1)), &mut errors);
        assert_eq!(fields(&errors), vec!["incremental", "incremental"]);
        assert!(errors[0].problem.contains("off, xmin"));
    }
}
