//! Log records over OTLP, as the Go SDK sends its zerolog events when an endpoint is given: the
//! logger `cloudquery`, the message as the body, the level as the severity, every field (with
//! `module`) as an attribute. The stdout lines the CLI reads are written as before; like the
//! SDK's, these records carry no trace context.

use std::time::SystemTime;

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use serde_json::Value;

use crate::logging::{Level, MODULE};

/// The Go SDK's logger name.
pub const LOGGER: &str = "cloudquery";

pub struct LogBridge {
    logger: SdkLogger,
}

impl LogBridge {
    pub fn new(provider: &SdkLoggerProvider) -> LogBridge {
        LogBridge {
            logger: provider.logger_with_scope(InstrumentationScope::builder(LOGGER).build()),
        }
    }

    pub fn emit(&self, level: Level, message: &str, fields: &[(&str, Value)]) {
        let mut record = self.logger.create_log_record();
        let now = SystemTime::now();
        record.set_timestamp(now);
        record.set_observed_timestamp(now);
        let (severity, text) = severity(level);
        record.set_severity_number(severity);
        record.set_severity_text(text);
        record.set_body(AnyValue::from(message.to_string()));
        record.add_attribute("module", MODULE);
        for (key, value) in fields {
            record.add_attribute(key.to_string(), any_value(value));
        }
        self.logger.emit(record);
    }
}

fn severity(level: Level) -> (Severity, &'static str) {
    match level {
        Level::Trace => (Severity::Trace, "trace"),
        Level::Debug => (Severity::Debug, "debug"),
        Level::Info => (Severity::Info, "info"),
        Level::Warn => (Severity::Warn, "warn"),
        Level::Error => (Severity::Error, "error"),
    }
}

/// Scalars as themselves; lists and objects as their JSON text (the SDK's hook does the same
/// with what it cannot map).
fn any_value(v: &Value) -> AnyValue {
    match v {
        Value::String(s) => AnyValue::from(s.clone()),
        Value::Bool(b) => AnyValue::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => AnyValue::Int(i),
            (None, Some(f)) => AnyValue::Double(f),
            (None, None) => AnyValue::from(n.to_string()),
        },
        Value::Null => AnyValue::from(String::new()),
        other => AnyValue::from(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_values() {
        assert_eq!(any_value(&Value::from(3)), AnyValue::Int(3));
        assert_eq!(any_value(&Value::from(1.5)), AnyValue::Double(1.5));
        assert_eq!(any_value(&Value::from(true)), AnyValue::Boolean(true));
        assert_eq!(
            any_value(&serde_json::json!(["a"])),
            AnyValue::from("[\"a\"]".to_string())
        );
        assert_eq!(severity(Level::Warn).1, "warn");
    }
}
