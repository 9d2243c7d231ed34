//! The JSON Schema (draft 2020-12) that GetSpecSchema returns, so `cloudquery validate-config`
//! rejects the same specs as [`Spec::parse`](super::Spec::parse) before anything runs.
//!
//! The CLI compiles it with Go's RE2 regular expressions, so the patterns avoid look-around; unit
//! tests check them against the Rust validators on a corpus of good and bad values.

use serde_json::{json, Value};

use super::table_options::IncrementalMode;
use super::{CdcId, DEFAULT_CONCURRENCY, DEFAULT_ROWS_PER_RECORD, DEFAULT_TABLE_TEMPLATE};

/// Matches one piece of a table-name template: a character that does not start `{{`, or a known
/// placeholder.
const TEMPLATE_TOKEN: &str =
    r"(?:[^{]|\{(?:[^{]|$)|\{\{(?:TABLE|UUID|YEAR|MONTH|DAY|HOUR|MINUTE)\}\})";

/// `destination_table_name`: only known placeholders, and at least one `{{TABLE}}` or `{{UUID}}`.
pub fn table_name_pattern() -> String {
    format!(r"^{TEMPLATE_TOKEN}*\{{\{{(?:TABLE|UUID)\}}\}}{TEMPLATE_TOKEN}*$")
}

/// Time placeholders, rejected when `cdc_id` is set.
pub const TIME_PLACEHOLDER_PATTERN: &str = r"\{\{(?:YEAR|MONTH|DAY|HOUR|MINUTE)\}\}";

pub fn spec_schema() -> Value {
    let mut schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:cq-source-postgresql:spec",
        "title": "PostgreSQL source plugin spec",
        "type": "object",
        "additionalProperties": false,
        "required": ["connection_string"],
        "properties": {
            "connection_string": {
                "description": "PostgreSQL connection string: a postgres:// URL or key=value pairs. \
                                PG* environment variables fill in what it leaves out.",
                "type": "string",
                "minLength": 1,
                "pattern": r"\S"
            },
            "pgx_log_level": {
                "description": "Log level of the PostgreSQL wire client (debug and trace show protocol traffic, never values).",
                "type": "string",
                "enum": ["error", "warn", "info", "debug", "trace"],
                "default": "error"
            },
            "rows_per_record": {
                "description": "Most rows in one Arrow record (one insert message).",
                "type": "integer",
                "minimum": 1,
                "default": DEFAULT_ROWS_PER_RECORD
            },
            "destination_table_name": {
                "description": "Name of each table at the destination. Placeholders: {{TABLE}}, {{UUID}}, \
                                {{YEAR}}, {{MONTH}}, {{DAY}}, {{HOUR}}, {{MINUTE}} (UTC, zero-padded); \
                                must contain {{TABLE}} or {{UUID}}.",
                "type": "string",
                "pattern": table_name_pattern(),
                "default": DEFAULT_TABLE_TEMPLATE
            },
            "cdc_id": {
                "description": format!("Turns on change data capture; names the replication slot and \
                                        publication cq_<cdc_id>. The id {}.", CdcId::RULE),
                "type": "string",
                "pattern": CdcId::json_pattern()
            },
            "concurrency": {
                "description": "How many tables are read at the same time.",
                "type": "integer",
                "minimum": 1,
                "default": DEFAULT_CONCURRENCY
            },
            "incremental": {
                "description": "off: every sync reads every row. xmin: after the first sync, read only \
                                the rows written by transactions the previous sync did not see \
                                (needs backend_options; not with cdc_id).",
                "type": "string",
                "enum": IncrementalMode::NAMES,
                "default": "off"
            },
            "table_options": {
                "description": "Per-table options, applied in order; each entry's `tables` are patterns as in \
                                the source's `tables`.",
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["tables"],
                    "minProperties": 2,
                    "properties": {
                        "tables": {
                            "type": "array",
                            "minItems": 1,
                            "items": { "type": "string", "minLength": 1 }
                        },
                        "cursor_column": {
                            "description": "Sync this table incrementally by this column (integer, numeric, \
                                            date, timestamp, timestamptz or text type).",
                            "type": "string",
                            "minLength": 1
                        },
                        "exclude_columns": {
                            "description": "Columns never read and never sent.",
                            "type": "array",
                            "items": { "type": "string", "minLength": 1 }
                        },
                        "filter": {
                            "description": "A SQL boolean expression: only matching rows are synced.",
                            "type": "string",
                            "minLength": 1,
                            "pattern": r"\S"
                        }
                    }
                }
            }
        },
        "allOf": [
            {
                "if": {
                    "required": ["cdc_id"],
                    "properties": { "cdc_id": { "type": "string", "minLength": 1 } }
                },
                "then": {
                    "properties": {
                        "destination_table_name": {
                            "description": "dynamic placeholders are not allowed in CDC mode",
                            "not": { "pattern": TIME_PLACEHOLDER_PATTERN }
                        },
                        "incremental": {
                            "description": "incremental sync and CDC exclude each other: remove cdc_id or incremental",
                            "const": "off"
                        },
                        "table_options": {
                            "items": {
                                "description": "cursor_column and CDC exclude each other: remove cdc_id or cursor_column",
                                "not": { "required": ["cursor_column"] }
                            }
                        }
                    }
                }
            }
        ]
    });
    if let Some(props) = schema["properties"].as_object_mut() {
        props.extend(super::values::value_properties());
        props.extend(super::cdc_options::cdc_properties());
    }
    schema
}

/// The schema as GetSpecSchema sends it.
pub fn spec_schema_json() -> String {
    spec_schema().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::spec::TableNameTemplate;
    use regex::Regex;

    #[test]
    fn schema_shape() {
        let s: Value = serde_json::from_str(&spec_schema_json()).unwrap();
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["required"], json!(["connection_string"]));
        let props = s["properties"].as_object().unwrap();
        let mut keys: Vec<_> = props.keys().cloned().collect();
        keys.sort();
        let mut fields: Vec<_> = crate::source::spec::FIELDS
            .iter()
            .map(|s| s.to_string())
            .collect();
        fields.sort();
        assert_eq!(keys, fields, "schema and parser know the same fields");
        assert_eq!(props["rows_per_record"]["minimum"], 1);
        assert_eq!(props["concurrency"]["type"], "integer");
        assert_eq!(props["connection_string"]["minLength"], 1);
    }

    #[test]
    fn table_name_pattern_agrees_with_the_parser() {
        let re = Regex::new(&table_name_pattern()).unwrap();
        let corpus = [
            "{{TABLE}}",
            "{{UUID}}",
            "x_{{TABLE}}",
            "{{TABLE}}_{{YEAR}}{{MONTH}}{{DAY}}{{HOUR}}{{MINUTE}}",
            "a{b}c{{TABLE}}",
            "{{TABLE}}{",
            "{{TABLE}}}",
            "{x{{UUID}}",
            "static",
            "",
            "{{YEAR}}",
            "{{FOO}}{{TABLE}}",
            "{{table}}",
            "{{TABLE}",
            "{{{TABLE}}",
            "{{TABLE}}{{",
            "{{TABLE}}{{X",
            "{{}}{{TABLE}}",
            "{",
            "{{",
        ];
        for s in corpus {
            assert_eq!(
                re.is_match(s),
                TableNameTemplate::parse(s).is_ok(),
                "pattern and parser disagree on {s:?}"
            );
        }
    }

    #[test]
    fn cdc_id_pattern_agrees_with_the_parser() {
        let re = Regex::new(&CdcId::json_pattern()).unwrap();
        let long_ok = "a".repeat(60);
        let too_long = "a".repeat(61);
        let corpus = [
            "a",
            "My-Sync_2",
            "0",
            "_",
            "-",
            &long_ok,
            &too_long,
            "a b",
            "a.b",
            "ü",
            "a;",
        ];
        for s in corpus {
            assert_eq!(
                re.is_match(s),
                CdcId::parse(s).is_ok(),
                "pattern and parser disagree on {s:?}"
            );
        }
        assert!(re.is_match(""), "empty cdc_id means CDC off");
    }

    #[test]
    fn time_pattern_matches_only_time_placeholders() {
        let re = Regex::new(TIME_PLACEHOLDER_PATTERN).unwrap();
        for s in ["{{TABLE}}", "{{UUID}}", "x{{TABLE}}_year"] {
            assert_eq!(
                re.is_match(s),
                TableNameTemplate::parse(s).unwrap().has_time_placeholders()
            );
        }
        for s in ["{{TABLE}}{{YEAR}}", "{{MINUTE}}_{{UUID}}"] {
            assert!(re.is_match(s));
            assert!(TableNameTemplate::parse(s).unwrap().has_time_placeholders());
        }
    }
}
