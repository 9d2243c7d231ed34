//! The plugin binary's command line.
//!
//! ```text
//! cq-source-postgresql serve [--network unix|tcp|tcp4|tcp6] [--address A] [--log-level L]
//!                            [--log-format json|text] [--no-sentry] [--license FILE]
//!                            [--otel-endpoint HOST:PORT] [--otel-endpoint-insecure]
//! cq-source-postgresql --version | --help
//! ```
//! The CloudQuery CLI runs `serve --log-level L --log-format json --network unix --address
//! <tmp>/cq-….sock [--no-sentry] [--license F] [--otel-endpoint E] [--otel-endpoint-insecure]`.
//! Parsing is tolerant like the Go SDK's: `--flag value` and `--flag=value` (one or two leading
//! dashes), unknown flags are ignored with a warning (a following non-flag word is taken as their
//! value). Defaults are the Go SDK's: `--network tcp --address localhost:7777 --log-level info
//! --log-format text`. Exit codes: 0 success (also after SIGINT/SIGTERM), 1 failure, 2 usage error.

use std::process::ExitCode;
use std::sync::Arc;

use super::server::{self, Network, ServeOptions};
use super::service::{PluginService, PLUGIN_NAME, PLUGIN_VERSION};
use crate::logging::{Format, Level};
use crate::source::spec::ConnStringCheck;

pub const BINARY: &str = "cq-source-postgresql";

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Serve(ServeOptions),
    Version,
    /// `--help`, or `help [topic]`; `Some("serve")` for the serve flags.
    Help(Option<String>),
    /// `cleanup-cdc`: drop the replication slot and publication of one `cdc_id`.
    CleanupCdc {
        connection_string: String,
        cdc_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    #[error("flag --{0} needs a value")]
    MissingValue(String),
    #[error("--network: unsupported network {0:?} (use unix, tcp, tcp4 or tcp6)")]
    Network(String),
    #[error("--log-level: unknown level {0:?} (use trace, debug, info, warn or error)")]
    LogLevel(String),
    #[error("--log-format: unknown format {0:?} (use json or text)")]
    LogFormat(String),
    #[error("unexpected argument {0:?}")]
    Unexpected(String),
    #[error("cleanup-cdc needs --cdc-id and --connection-string (or PG* environment variables with --connection-string \"\")")]
    CleanupArgs,
}

pub fn usage() -> String {
    format!(
        "{BINARY} {PLUGIN_VERSION}: CloudQuery source plugin `{PLUGIN_NAME}` (plugin protocol v3)\n\
         \n\
         Reads PostgreSQL tables (COPY BINARY straight into Arrow) and, with `cdc_id`, streams\n\
         changes through logical replication. The CloudQuery CLI starts it; you rarely run it by hand.\n\
         \n\
         Usage:\n  \
           {BINARY} serve [flags]     serve the plugin over gRPC\n  \
           {BINARY} cleanup-cdc --connection-string STR --cdc-id ID\n      \
           drop the replication slot and publication of a CDC source\n  \
           {BINARY} --version         print the version\n  \
           {BINARY} --help            this text (`{BINARY} serve --help` for the flags)\n\
         \n\
         Use it from a CloudQuery config:\n  \
           kind: source\n  \
           spec:\n    \
             name: postgresql\n    \
             registry: local                       # or: grpc, with `path: localhost:7777`\n    \
             path: /path/to/{BINARY}\n    \
             tables: [\"*\"]\n    \
             destinations: [\"...\"]\n    \
             spec:\n      \
               connection_string: \"postgres://user:pass@host:5432/db\"\n"
    )
}

pub fn serve_usage() -> String {
    format!(
        "Usage: {BINARY} serve [flags]\n\
         \n\
         Flags (`--flag value` or `--flag=value`; unknown flags are ignored):\n  \
           --network unix|tcp|tcp4|tcp6   transport (default tcp)\n  \
           --address ADDR                 socket path, or host:port (default localhost:7777)\n  \
           --log-level LEVEL              trace, debug, info, warn, error (default info)\n  \
           --log-format json|text         log lines on stdout (default text; the CLI asks for json)\n  \
           --no-sentry                    accepted; this plugin sends no error reports anyway\n  \
           --license FILE                 accepted and ignored (no license needed)\n  \
           --otel-endpoint HOST:PORT      send OpenTelemetry traces, metrics, logs there (OTLP/HTTP)\n  \
           --otel-endpoint-insecure       plain http to the endpoint instead of https\n\
         \n\
         SIGINT or SIGTERM stops the server (exit 0) within 5 seconds, cutting running syncs.\n"
    )
}

/// Parses the arguments after the program name.
pub fn parse_args(args: &[String]) -> Result<Command, UsageError> {
    let Some(first) = args.first() else {
        return Ok(Command::Help(None));
    };
    match first.as_str() {
        "serve" => parse_serve(args.get(1..).unwrap_or_default()),
        "--version" | "-version" | "-v" | "version" => Ok(Command::Version),
        "--help" | "-help" | "-h" => Ok(Command::Help(None)),
        "help" => Ok(Command::Help(args.get(1).cloned())),
        "cleanup-cdc" => parse_cleanup(args.get(1..).unwrap_or_default()),
        other => Err(UsageError::UnknownCommand(other.to_string())),
    }
}

fn parse_serve(args: &[String]) -> Result<Command, UsageError> {
    let mut opts = ServeOptions::default();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return Err(UsageError::Unexpected(arg.clone()));
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        // Value of a flag that takes one: inline, or the next argument.
        let mut value = |name: &str| -> Result<String, UsageError> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            let v = args
                .get(i)
                .cloned()
                .ok_or_else(|| UsageError::MissingValue(name.to_string()))?;
            i += 1;
            Ok(v)
        };
        match name {
            "help" | "h" => return Ok(Command::Help(Some("serve".to_string()))),
            "network" => {
                let v = value(name)?;
                opts.network = match v.as_str() {
                    "unix" => Network::Unix,
                    "tcp" => Network::Tcp,
                    "tcp4" => Network::Tcp4,
                    "tcp6" => Network::Tcp6,
                    _ => return Err(UsageError::Network(v)),
                };
            }
            "address" => opts.address = Some(value(name)?),
            "log-level" => {
                let v = value(name)?;
                opts.log_level = Level::parse(&v).ok_or(UsageError::LogLevel(v))?;
            }
            "log-format" => {
                let v = value(name)?;
                opts.log_format = match v.as_str() {
                    "json" => Format::Json,
                    "text" => Format::Text,
                    _ => return Err(UsageError::LogFormat(v)),
                };
            }
            "license" => opts.license = Some(value(name)?),
            "otel-endpoint" => opts.otel_endpoint = Some(value(name)?),
            // Bare booleans (an inline `=false` is honoured).
            "no-sentry" => opts.no_sentry = inline.as_deref() != Some("false"),
            "otel-endpoint-insecure" => {
                opts.otel_endpoint_insecure = inline.as_deref() != Some("false")
            }
            _ => {
                // Unknown flag: tolerated. A following word that is not a flag is its value.
                if inline.is_none() && args.get(i).is_some_and(|next| !next.starts_with('-')) {
                    i += 1;
                }
                opts.ignored_flags.push(name.to_string());
            }
        }
    }
    Ok(Command::Serve(opts))
}

fn parse_cleanup(args: &[String]) -> Result<Command, UsageError> {
    let (mut conn, mut id) = (None, None);
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        let (name, inline) = match arg.trim_start_matches('-').split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.trim_start_matches('-').to_string(), None),
        };
        let value = match inline {
            Some(v) => v,
            None => {
                let v = args
                    .get(i)
                    .cloned()
                    .ok_or_else(|| UsageError::MissingValue(name.clone()))?;
                i += 1;
                v
            }
        };
        match name.as_str() {
            "connection-string" => conn = Some(value),
            "cdc-id" => id = Some(value),
            _ => return Err(UsageError::Unexpected(arg.clone())),
        }
    }
    match (conn, id) {
        (Some(connection_string), Some(cdc_id)) => Ok(Command::CleanupCdc {
            connection_string,
            cdc_id,
        }),
        _ => Err(UsageError::CleanupArgs),
    }
}

/// Drops one `cdc_id`'s slot and publication; returns one line per object (dropped or absent).
fn cleanup_cdc(connection_string: &str, cdc_id: &str) -> Result<Vec<String>, String> {
    let cdc_id = crate::cdc::CdcId::parse(cdc_id).map_err(|e| format!("cdc_id: {e}"))?;
    let config = crate::wire::Config::parse(connection_string)
        .map_err(|e| format!("connection_string: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    runtime
        .block_on(crate::cdc::cleanup(&config, &cdc_id))
        .map_err(|e| crate::source::api::chain_text(&e))
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_args(&args) {
        Ok(Command::Version) => {
            println!("{BINARY} {PLUGIN_VERSION}");
            ExitCode::SUCCESS
        }
        Ok(Command::Help(Some(topic))) if topic == "serve" => {
            print!("{}", serve_usage());
            ExitCode::SUCCESS
        }
        Ok(Command::Help(_)) => {
            print!("{}", usage());
            ExitCode::SUCCESS
        }
        Ok(Command::CleanupCdc {
            connection_string,
            cdc_id,
        }) => match cleanup_cdc(&connection_string, &cdc_id) {
            Ok(dropped) => {
                for line in dropped {
                    println!("{line}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{BINARY} cleanup-cdc: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(Command::Serve(opts)) => {
            let service = PluginService::new(
                Arc::new(crate::source::PostgresSource::new()),
                CONN_STRING_CHECK,
            );
            match server::run(&opts, service) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    crate::log_error!("plugin server failed", error = e.to_string());
                    eprintln!("{BINARY}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("{BINARY}: {e}\n\n{}", usage());
            ExitCode::from(2)
        }
    }
}

/// How Init and TestConnection check `connection_string` beyond "non-empty": the wire client's
/// own parser (URL or DSN, environment applied); its errors never contain the password.
pub const CONN_STRING_CHECK: ConnStringCheck = check_connection_string;

fn check_connection_string(s: &str) -> Result<(), String> {
    crate::wire::Config::parse(s)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn serve(s: &str) -> ServeOptions {
        match parse_args(&args(s)).unwrap() {
            Command::Serve(o) => o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exactly_what_the_cli_passes() {
        let o = serve(
            "serve --log-level debug --log-format json --network unix \
             --address /tmp/cq-JQCeftoOtpcgTWto.sock --no-sentry --license /tmp/lic \
             --otel-endpoint localhost:4318 --otel-endpoint-insecure",
        );
        assert_eq!(o.network, Network::Unix);
        assert_eq!(o.address.as_deref(), Some("/tmp/cq-JQCeftoOtpcgTWto.sock"));
        assert_eq!(o.log_level, Level::Debug);
        assert_eq!(o.log_format, Format::Json);
        assert!(o.no_sentry);
        assert_eq!(o.license.as_deref(), Some("/tmp/lic"));
        assert_eq!(o.otel_endpoint.as_deref(), Some("localhost:4318"));
        assert!(o.otel_endpoint_insecure);
        assert!(o.ignored_flags.is_empty());
    }

    #[test]
    fn defaults_are_the_go_sdks() {
        let o = serve("serve");
        assert_eq!(o.network, Network::Tcp);
        assert_eq!(o.address, None);
        assert_eq!(o.address_or_default(), "localhost:7777");
        assert_eq!(o.log_level, Level::Info);
        assert_eq!(o.log_format, Format::Text);
        assert!(!o.no_sentry && !o.otel_endpoint_insecure);
    }

    #[test]
    fn equals_form_single_dash_and_bare_booleans() {
        let o = serve(
            "serve --network=tcp4 -address=127.0.0.1:9 --log-level=warn --log-format=text \
             --otel-endpoint-insecure --no-sentry=false",
        );
        assert_eq!(o.network, Network::Tcp4);
        assert_eq!(o.address.as_deref(), Some("127.0.0.1:9"));
        assert_eq!(o.log_level, Level::Warn);
        assert!(o.otel_endpoint_insecure);
        assert!(!o.no_sentry);
        assert_eq!(serve("serve --network tcp6").network, Network::Tcp6);
    }

    #[test]
    fn unknown_flags_are_tolerated() {
        let o = serve("serve --future-flag --with-value v --x=1 --network unix --address /tmp/s");
        assert_eq!(o.ignored_flags, ["future-flag", "with-value", "x"]);
        assert_eq!(o.network, Network::Unix);
        assert_eq!(o.address.as_deref(), Some("/tmp/s"));
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let err = |s: &str| parse_args(&args(s)).unwrap_err();
        assert_eq!(
            err("serve --network udp"),
            UsageError::Network("udp".into())
        );
        assert_eq!(
            err("serve --log-level INFO"),
            UsageError::LogLevel("INFO".into())
        );
        assert_eq!(
            err("serve --log-format xml"),
            UsageError::LogFormat("xml".into())
        );
        assert_eq!(
            err("serve --address"),
            UsageError::MissingValue("address".into())
        );
        assert_eq!(err("serve stray"), UsageError::Unexpected("stray".into()));
        assert_eq!(err("sync"), UsageError::UnknownCommand("sync".into()));
    }

    #[test]
    fn version_and_help() {
        assert_eq!(parse_args(&args("--version")).unwrap(), Command::Version);
        assert_eq!(parse_args(&args("-h")).unwrap(), Command::Help(None));
        assert_eq!(parse_args(&[]).unwrap(), Command::Help(None));
        assert_eq!(
            parse_args(&args("serve --help")).unwrap(),
            Command::Help(Some("serve".into()))
        );
        assert!(usage().contains("serve"));
        assert!(serve_usage().contains("--otel-endpoint-insecure"));
    }
}
