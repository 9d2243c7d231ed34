//! zerolog-style logging on stdout, the format the CloudQuery CLI parses.
//!
//! One JSON object per line: `{"level":"info","module":"postgresql-source","message":"…",…fields}`.
//! The CLI reads plugin stdout line by line, drops lines over 4096 bytes and counts `warn`/`error`
//! lines in its summary, so every line is kept under [`MAX_LINE`] bytes and levels are lower-case.
//! `--log-format text` gives a human-readable line instead.
//!
//! Two levels are kept: the plugin's own (`--log-level`) and the wire client's (`pgx_log_level` in
//! the spec, `error` by default), so protocol tracing can be turned on without drowning the plugin
//! log. A wire line is written only when both levels let it through.
//!
//! Nothing here knows about passwords: callers never pass secrets as fields (connection settings
//! are logged through their redacted form only).

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

use serde_json::{Map, Value};

/// Longest line written; the CLI discards lines of 4096 bytes or more.
pub const MAX_LINE: usize = 4000;
/// The `module` field, as the Go SDK names it: `<plugin name>-<kind>`.
pub const MODULE: &str = "postgresql-source";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
}

impl Level {
    pub const NAMES: [&'static str; 5] = ["trace", "debug", "info", "warn", "error"];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Parses the exact lower-case names the CLI and the official plugin use.
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "trace" => Some(Level::Trace),
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }

    fn from_u8(v: u8) -> Level {
        match v {
            0 => Level::Trace,
            1 => Level::Debug,
            2 => Level::Info,
            3 => Level::Warn,
            _ => Level::Error,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

static PLUGIN_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static WIRE_LEVEL: AtomicU8 = AtomicU8::new(Level::Error as u8);
static FORMAT: AtomicU8 = AtomicU8::new(0);

/// Sets the plugin's level and the output format (from the `serve` flags).
pub fn init(level: Level, format: Format) {
    PLUGIN_LEVEL.store(level as u8, Ordering::Relaxed);
    FORMAT.store(
        match format {
            Format::Json => 0,
            Format::Text => 1,
        },
        Ordering::Relaxed,
    );
}

/// Sets the wire client's level (the spec's `pgx_log_level`).
pub fn set_wire_level(level: Level) {
    WIRE_LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level >= Level::from_u8(PLUGIN_LEVEL.load(Ordering::Relaxed))
}

pub fn wire_enabled(level: Level) -> bool {
    enabled(level) && level >= Level::from_u8(WIRE_LEVEL.load(Ordering::Relaxed))
}

fn format() -> Format {
    if FORMAT.load(Ordering::Relaxed) == 1 {
        Format::Text
    } else {
        Format::Json
    }
}

/// Writes one log line if `level` is enabled. Prefer the `log_*!` macros.
pub fn emit(level: Level, message: &str, fields: &[(&str, Value)]) {
    if !enabled(level) {
        return;
    }
    let line = render(level, message, fields, format());
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // The CLI may have gone away (broken pipe): logging must never panic or fail the caller.
    let _ = out.write_all(line.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
    drop(out);
    // The same event to the registered sink (telemetry's OTLP log records, with an endpoint).
    if let Some(sink) = SINK.get() {
        sink(level, message, fields);
    }
}

/// Where every written log line also goes. Registered by the telemetry module, so logging (used
/// by every layer, the wire client included) depends on nothing above it.
pub type LogSink = fn(Level, &str, &[(&str, Value)]);

static SINK: std::sync::OnceLock<LogSink> = std::sync::OnceLock::new();

/// Registers the sink (the first registration wins).
pub fn set_sink(sink: LogSink) {
    let _ = SINK.set(sink);
}

/// Renders one line (without the newline), never longer than [`MAX_LINE`] bytes.
pub fn render(level: Level, message: &str, fields: &[(&str, Value)], format: Format) -> String {
    // First try as is; if too long, shorten long strings, then drop fields, then cut the message.
    for limit in [usize::MAX, 512, 64] {
        let line = render_once(level, message, fields, format, limit);
        if line.len() <= MAX_LINE {
            return line;
        }
    }
    let short = truncate_str(message, 1024);
    render_once(level, &short, &[], format, 64)
}

fn render_once(
    level: Level,
    message: &str,
    fields: &[(&str, Value)],
    format: Format,
    limit: usize,
) -> String {
    let shorten = |v: &Value| -> Value {
        match v {
            Value::String(s) if s.len() > limit => Value::String(truncate_str(s, limit)),
            other => other.clone(),
        }
    };
    match format {
        Format::Json => {
            let mut map = Map::new();
            map.insert("level".into(), Value::String(level.as_str().into()));
            map.insert("module".into(), Value::String(MODULE.into()));
            for (k, v) in fields {
                map.insert((*k).to_string(), shorten(v));
            }
            map.insert(
                "message".into(),
                Value::String(truncate_str(message, limit.max(1024))),
            );
            serde_json::to_string(&Value::Object(map)).unwrap_or_default()
        }
        Format::Text => {
            let mut line = format!(
                "{} {}",
                level.as_str().to_uppercase(),
                truncate_str(message, limit.max(1024))
            );
            for (k, v) in fields {
                match shorten(v) {
                    Value::String(s) => line.push_str(&format!(" {k}={s:?}")),
                    other => line.push_str(&format!(" {k}={other}")),
                }
            }
            line
        }
    }
}

fn truncate_str(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// `log_at!(Level::Info, "message", key = value, …)`: fields are anything `serde_json::json!` takes.
#[macro_export]
macro_rules! log_at {
    ($level:expr, $msg:expr $(, $key:ident = $value:expr)* $(,)?) => {{
        let level = $level;
        if $crate::logging::enabled(level) {
            $crate::logging::emit(level, &$msg, &[$((stringify!($key), serde_json::json!($value))),*]);
        }
    }};
}

#[macro_export]
macro_rules! log_error { ($($t:tt)*) => { $crate::log_at!($crate::logging::Level::Error, $($t)*) }; }
#[macro_export]
macro_rules! log_warn { ($($t:tt)*) => { $crate::log_at!($crate::logging::Level::Warn, $($t)*) }; }
#[macro_export]
macro_rules! log_info { ($($t:tt)*) => { $crate::log_at!($crate::logging::Level::Info, $($t)*) }; }
#[macro_export]
macro_rules! log_debug { ($($t:tt)*) => { $crate::log_at!($crate::logging::Level::Debug, $($t)*) }; }
#[macro_export]
macro_rules! log_trace { ($($t:tt)*) => { $crate::log_at!($crate::logging::Level::Trace, $($t)*) }; }

/// Wire-client logging, gated by `pgx_log_level` as well as the plugin level. Adds `component=wire`.
#[macro_export]
macro_rules! wire_log {
    ($level:expr, $msg:expr $(, $key:ident = $value:expr)* $(,)?) => {{
        let level = $level;
        if $crate::logging::wire_enabled(level) {
            $crate::logging::emit(
                level,
                &$msg,
                &[("component", serde_json::json!("wire")) $(, (stringify!($key), serde_json::json!($value)))*],
            );
        }
    }};
}

/// An error and its causes as one line for a person: `outer: inner: root`, skipping a cause
/// whose text the outer message already contains.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_line_has_level_module_message_and_fields() {
        let line = render(
            Level::Warn,
            "table skipped",
            &[("table", json!("users")), ("rows", json!(3))],
            Format::Json,
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["module"], MODULE);
        assert_eq!(v["message"], "table skipped");
        assert_eq!(v["table"], "users");
        assert_eq!(v["rows"], 3);
    }

    #[test]
    fn long_lines_stay_under_the_cli_limit_and_remain_json() {
        let big = "x".repeat(100_000);
        let line = render(
            Level::Error,
            &big,
            &[("detail", json!(big.clone())), ("other", json!(big))],
            Format::Json,
        );
        assert!(line.len() <= MAX_LINE, "{}", line.len());
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "error");
    }

    #[test]
    fn text_format_is_readable() {
        let line = render(Level::Info, "hello", &[("n", json!(1))], Format::Text);
        assert_eq!(line, "INFO hello n=1");
    }

    #[test]
    fn levels_parse_exactly() {
        for name in Level::NAMES {
            assert_eq!(Level::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(Level::parse("INFO"), None);
        assert_eq!(Level::parse("warning"), None);
    }
}
