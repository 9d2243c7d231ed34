//! The CDC options besides `cdc_id`: how long a broken stream keeps reconnecting
//! (`cdc_reconnect_timeout`), whether the first start copies the existing rows
//! (`cdc_initial_sync`), and what a lost replication slot does (`cdc_on_lost_slot`).

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::json_kind;
use crate::cdc::reconnect::DEFAULT_RECONNECT_TIMEOUT;
use crate::cdc::LostSlotAction;

/// The fields this module reads, in the order errors are reported.
#[cfg(test)]
pub const FIELDS: [&str; 3] = [
    "cdc_reconnect_timeout",
    "cdc_initial_sync",
    "cdc_on_lost_slot",
];

/// Durations as Go writes them (`90s`, `10m`, `1h30m`, `1.5h`, `500ms`): one or more numbers,
/// each with a unit.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// The shortest `cdc_reconnect_timeout`: one attempt after the first backoff.
const MIN_RECONNECT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CdcSpec {
    pub reconnect_timeout: Duration,
    pub initial_sync: bool,
    pub on_lost_slot: LostSlotAction,
}

impl Default for CdcSpec {
    fn default() -> Self {
        CdcSpec {
            reconnect_timeout: DEFAULT_RECONNECT_TIMEOUT,
            initial_sync: true,
            on_lost_slot: LostSlotAction::Error,
        }
    }
}

/// Parses the CDC options of `map`; each problem is `(field, rule broken)`.
pub fn parse_cdc_options(
    map: &Map<String, Value>,
    errors: &mut Vec<(&'static str, String)>,
) -> CdcSpec {
    let mut spec = CdcSpec::default();
    let mut fail = |field: &'static str, problem: String| errors.push((field, problem));
    match map.get("cdc_reconnect_timeout") {
        None => {}
        Some(Value::String(s)) => match parse_duration(s) {
            Ok(d) if d >= MIN_RECONNECT_TIMEOUT => spec.reconnect_timeout = d,
            Ok(_) => fail(
                "cdc_reconnect_timeout",
                format!("must be at least 1s, got {s:?}"),
            ),
            Err(problem) => fail("cdc_reconnect_timeout", problem),
        },
        Some(other) => fail(
            "cdc_reconnect_timeout",
            format!(
                "must be a duration string such as \"10m\", got {}",
                json_kind(other)
            ),
        ),
    }
    match map.get("cdc_initial_sync") {
        None => {}
        Some(Value::Bool(b)) => spec.initial_sync = *b,
        Some(other) => fail(
            "cdc_initial_sync",
            format!("must be true or false, got {}", json_kind(other)),
        ),
    }
    match map.get("cdc_on_lost_slot") {
        None => {}
        Some(Value::String(s)) => match LostSlotAction::parse(s) {
            Some(a) => spec.on_lost_slot = a,
            None => fail(
                "cdc_on_lost_slot",
                format!("must be one of error, resync, got {s:?}"),
            ),
        },
        Some(other) => fail(
            "cdc_on_lost_slot",
            format!("must be one of error, resync, got {}", json_kind(other)),
        ),
    }
    spec
}

/// A Go-style duration: `1h30m`, `90s`, `1.5h`, `250ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let rule = || {
        format!(
            "must be a duration such as \"90s\", \"10m\" or \"1h30m\" (numbers with a unit: ms, s, m, h), got {s:?}"
        )
    };
    if s.is_empty() {
        return Err(rule());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(rule)?;
        let (number, after) = rest.split_at(digits);
        let value: f64 = number.parse().map_err(|_| rule())?;
        let (seconds, unit_len) = if after.starts_with("ms") {
            (0.001, 2)
        } else if after.starts_with('s') {
            (1.0, 1)
        } else if after.starts_with('m') {
            (60.0, 1)
        } else if after.starts_with('h') {
            (3600.0, 1)
        } else {
            return Err(rule());
        };
        total += value * seconds;
        rest = after.get(unit_len..).unwrap_or_default();
    }
    Duration::try_from_secs_f64(total).map_err(|_| rule())
}

/// The JSON Schema properties of these options.
pub fn cdc_properties() -> Map<String, Value> {
    let properties = json!({
        "cdc_reconnect_timeout": {
            "description": "With cdc_id: how long a CDC stream whose connection broke (server restart, \
                            failover, network) keeps reconnecting before the sync fails; a Go-style \
                            duration such as 10m.",
            "type": "string",
            "pattern": DURATION_PATTERN,
            "default": "10m"
        },
        "cdc_initial_sync": {
            "description": "With cdc_id: false streams changes from the slot's creation without \
                            copying the rows already in the tables.",
            "type": "boolean",
            "default": true
        },
        "cdc_on_lost_slot": {
            "description": "With cdc_id: what to do when the replication slot is missing after an \
                            earlier run, or invalidated: error stops with the recovery command, \
                            resync creates a new slot and copies every streamed table again.",
            "type": "string",
            "enum": ["error", "resync"],
            "default": "error"
        }
    });
    match properties {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "10", "m", "10x", "-1s", "1 m", "1..5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_pattern_agrees_with_the_parser() {
        let re = regex::Regex::new(DURATION_PATTERN).unwrap();
        for s in [
            "90s", "10m", "1h30m", "1.5h", "250ms", "", "10", "10x", "1 m", "-1s",
        ] {
            assert_eq!(re.is_match(s), parse_duration(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn options_and_their_errors() {
        let map = |v: Value| v.as_object().cloned().unwrap();
        let mut errors = Vec::new();
        let spec = parse_cdc_options(&map(json!({})), &mut errors);
        assert_eq!(spec, CdcSpec::default());
        let spec = parse_cdc_options(
            &map(
                json!({"cdc_reconnect_timeout": "2m", "cdc_initial_sync": false, "cdc_on_lost_slot": "resync"}),
            ),
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(spec.reconnect_timeout, Duration::from_secs(120));
        assert!(!spec.initial_sync);
        assert_eq!(spec.on_lost_slot, LostSlotAction::Resync);
        parse_cdc_options(
            &map(
                json!({"cdc_reconnect_timeout": "0s", "cdc_initial_sync": "no", "cdc_on_lost_slot": "ignore"}),
            ),
            &mut errors,
        );
        let fields: Vec<&str> = errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, FIELDS);
    }
}
