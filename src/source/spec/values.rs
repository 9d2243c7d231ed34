//! The spec's value options: how numeric and interval columns travel and what happens to dates
//! and timestamps a destination cannot hold (the rules themselves are in
//! [`crate::decode::rules`]).
//!
//! | field | values, default |
//! |---|---|
//! | `numeric_type` | `string`, `decimal` |
//! | `interval_type` | `string`, `month_day_nano` |
//! | `infinity` | `clamp`, `null`, `error` |
//! | `out_of_range` | `clamp`, `null`, `error` |

use serde_json::{json, Map, Value};

use crate::decode::rules::{InfinityRule, IntervalType, NumericType, OutOfRangeRule};
use crate::decode::ValueOptions;

/// The spec keys of this module, in the order errors are reported.
#[cfg(test)]
pub const VALUE_FIELDS: [&str; 4] = ["numeric_type", "interval_type", "infinity", "out_of_range"];

/// One field: its allowed names and the description the JSON Schema carries.
struct Field {
    key: &'static str,
    names: &'static [&'static str],
    description: &'static str,
}

const SPEC_FIELDS: [Field; 4] = [
    Field {
        key: "numeric_type",
        names: NumericType::NAMES,
        description: "How numeric columns travel. string: PostgreSQL's exact text (1.50, NaN, \
            Infinity). decimal: numeric(p,s) with p <= 38 as Arrow decimal128(p,s), p <= 76 as \
            decimal256(p,s), exact; an unconstrained numeric and larger precisions stay text; \
            NaN and +/-Infinity arrive as NULL and are counted in a warning.",
    },
    Field {
        key: "interval_type",
        names: IntervalType::NAMES,
        description: "How interval columns travel. string: ISO 8601 text (P1Y2M3DT4H5M6S). \
            month_day_nano: Arrow month_day_nano_interval with PostgreSQL's months, days and \
            microseconds (as nanoseconds).",
    },
    Field {
        key: "infinity",
        names: InfinityRule::NAMES,
        description: "What date and timestamp infinity/-infinity become (and interval ones with \
            month_day_nano). clamp: 9999-12-31 / 9999-12-31 23:59:59.999999 and 0001-01-01 / \
            0001-01-01 00:00:00, the edges every destination holds. null: NULL. error: the table \
            fails.",
    },
    Field {
        key: "out_of_range",
        names: OutOfRangeRule::NAMES,
        description:
            "What finite dates and timestamps outside the years 1-9999 (e.g. 294276-12-31, \
            4713-01-01 BC) become. clamp: the nearest of those edges. null: NULL. error: the \
            table fails. clamp and null log a warning per table and column with the count.",
    },
];

/// Reads the four keys (absent → default), pushing `(field, problem)` for each bad value.
pub fn parse_value_options(
    map: &Map<String, Value>,
    errors: &mut Vec<(&'static str, String)>,
) -> ValueOptions {
    let mut pick = |f: &Field| -> Option<&'static str> {
        let value = map.get(f.key)?;
        let found = match value {
            Value::String(s) => f.names.iter().find(|n| **n == s.as_str()).copied(),
            _ => None,
        };
        if found.is_none() {
            let got = match value {
                Value::String(s) => format!("{s:?}"),
                other => format!("a {}", kind(other)),
            };
            errors.push((
                f.key,
                format!("must be one of {}, got {got}", f.names.join(", ")),
            ));
        }
        found
    };
    let [numeric, interval, infinity, out_of_range] = &SPEC_FIELDS;
    let mut options = ValueOptions::default();
    if let Some(n) = pick(numeric).and_then(NumericType::parse) {
        options.numeric_type = n;
    }
    if let Some(n) = pick(interval).and_then(IntervalType::parse) {
        options.interval_type = n;
    }
    if let Some(n) = pick(infinity).and_then(InfinityRule::parse) {
        options.infinity = n;
    }
    if let Some(n) = pick(out_of_range).and_then(OutOfRangeRule::parse) {
        options.out_of_range = n;
    }
    options
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

/// The JSON Schema properties of the four keys.
pub fn value_properties() -> Map<String, Value> {
    SPEC_FIELDS
        .iter()
        .map(|f| {
            (
                f.key.to_string(),
                json!({
                    "description": f.description,
                    "type": "string",
                    "enum": f.names,
                    "default": f.names[0],
                }),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> (ValueOptions, Vec<(&'static str, String)>) {
        let mut errors = Vec::new();
        let map = v.as_object().cloned().unwrap_or_default();
        (parse_value_options(&map, &mut errors), errors)
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(parse(json!({})), (ValueOptions::default(), vec![]));
        let (o, e) = parse(
            json!({"numeric_type": "decimal", "interval_type": "month_day_nano",
                                  "infinity": "null", "out_of_range": "error"}),
        );
        assert!(e.is_empty());
        assert_eq!(o.numeric_type, NumericType::Decimal);
        assert_eq!(o.interval_type, IntervalType::MonthDayNano);
        assert_eq!(o.infinity, InfinityRule::Null);
        assert_eq!(o.out_of_range, OutOfRangeRule::Error);
    }

    #[test]
    fn bad_values_name_the_field_and_the_choices() {
        let (_, e) = parse(json!({"numeric_type": "Decimal", "infinity": 1}));
        assert_eq!(
            e,
            vec![
                (
                    "numeric_type",
                    "must be one of string, decimal, got \"Decimal\"".to_string()
                ),
                (
                    "infinity",
                    "must be one of clamp, null, error, got a number".to_string()
                ),
            ]
        );
    }

    #[test]
    fn schema_lists_the_same_names() {
        let props = value_properties();
        assert_eq!(props.len(), VALUE_FIELDS.len());
        for key in VALUE_FIELDS {
            assert!(props.contains_key(key), "{key}");
        }
        assert_eq!(
            props["interval_type"]["enum"],
            json!(["string", "month_day_nano"])
        );
        assert_eq!(props["out_of_range"]["default"], "clamp");
    }
}
