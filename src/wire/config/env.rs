//! What the string leaves out: the `PG*` environment, libpq's defaults, and the checks of every
//! value, turning the merged key/value pairs into a [`Config`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    echo_if_name, ChannelBindingMode, Config, Host, HostSpec, Raw, RootCert, SslMode,
    TargetSessionAttrs,
};
use crate::wire::error::ConfigError;
use crate::wire::keepalive::{self, Keepalive};

const DEFAULT_PORT: u16 = 5432;
/// libpq's compiled-in socket directories: Debian's and upstream's. Tried in this order.
pub(crate) const DEFAULT_SOCKET_DIRS: [&str; 2] = ["/var/run/postgresql", "/tmp"];

/// Keys libpq or pgx know that do not apply to this client; accepted and ignored rather than sent
/// to the server as runtime parameters (which the server would reject).
const IGNORED_KEYS: &[&str] = &[
    "tcp_user_timeout",
    "sslcompression",
    "sslsni",
    "sslcrl",
    "sslcrldir",
    "sslcertmode",
    "sslnegotiation",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "requiressl",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "requirepeer",
    "load_balance_hosts",
    "statement_cache_capacity",
    "description_cache_capacity",
    "default_query_exec_mode",
    "min_read_buffer_size",
];

/// Keys the client interprets, besides the keepalive keys ([`keepalive::KEYS`]); everything else
/// becomes a runtime parameter.
const KNOWN_KEYS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "connect_timeout",
    "application_name",
    "fallback_application_name",
    "options",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "channel_binding",
    "target_session_attrs",
    "client_encoding",
    "gssencmode",
    "service",
    "replication",
];

/// Which environment variable fills which key when the string leaves it out.
const ENV_KEYS: &[(&str, &str)] = &[
    ("host", "PGHOST"),
    ("hostaddr", "PGHOSTADDR"),
    ("port", "PGPORT"),
    ("dbname", "PGDATABASE"),
    ("user", "PGUSER"),
    ("password", "PGPASSWORD"),
    ("passfile", "PGPASSFILE"),
    ("application_name", "PGAPPNAME"),
    ("connect_timeout", "PGCONNECT_TIMEOUT"),
    ("sslmode", "PGSSLMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("sslcert", "PGSSLCERT"),
    ("sslkey", "PGSSLKEY"),
    ("options", "PGOPTIONS"),
    ("channel_binding", "PGCHANNELBINDING"),
    ("target_session_attrs", "PGTARGETSESSIONATTRS"),
];

/// Sets each key the string left out from its `PG*` variable, when that is set.
pub(super) fn fill_from_env(raw: &mut Raw, env: &dyn Fn(&str) -> Option<String>) {
    for (key, var) in ENV_KEYS {
        if raw.get(key).is_none() {
            if let Some(v) = env(var) {
                raw.set(key, v);
            }
        }
    }
}

/// The merged keys checked and completed with libpq's defaults (user from the OS, dbname from
/// the user, passfile under `HOME`, sslmode prefer, port 5432, the default socket directories).
pub(super) fn resolve(
    raw: Raw,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    if raw.get("service").is_some() {
        return Err(ConfigError::new(
            "\"service\" (pg_service.conf) is not supported",
        ));
    }
    if let Some(g) = raw.get("gssencmode") {
        if g == "require" {
            return Err(ConfigError::new(
                "gssencmode=require is not supported (no GSSAPI)",
            ));
        }
    }
    if let Some(enc) = raw.get("client_encoding") {
        if !enc.eq_ignore_ascii_case("utf8") && !enc.eq_ignore_ascii_case("utf-8") {
            return Err(ConfigError::new(format!(
                "client_encoding \"{enc}\" is not supported: this client always uses UTF8"
            )));
        }
    }
    if raw.get("replication").is_some() {
        return Err(ConfigError::new(
            "\"replication\" is set by the client for replication connections, not in the connection string",
        ));
    }

    let hosts = resolve_hosts(&raw)?;
    let user = match raw.get("user") {
        Some(u) => u.to_string(),
        None => env("USER").or_else(|| env("LOGNAME")).ok_or_else(|| {
            ConfigError::new("no user given (user, PGUSER) and the OS user name is unknown")
        })?,
    };
    let dbname = raw
        .get("dbname")
        .map_or_else(|| user.clone(), str::to_string);
    let passfile = match raw.get("passfile") {
        Some(p) => Some(PathBuf::from(p)),
        None => env("HOME").map(|h| Path::new(&h).join(".pgpass")),
    };
    let connect_timeout = match raw.get("connect_timeout") {
        None => None,
        Some(t) => {
            let secs: i64 = t.trim().parse().map_err(|_| {
                ConfigError::new(format!(
                    "invalid connect_timeout \"{t}\" (expected whole seconds)"
                ))
            })?;
            // libpq: zero or negative waits forever; the minimum is 2 s.
            (secs > 0).then(|| Duration::from_secs(secs.max(2) as u64))
        }
    };
    let ssl_root_cert = raw.get("sslrootcert").map(|r| {
        if r == "system" {
            RootCert::System
        } else {
            RootCert::File(PathBuf::from(r))
        }
    });
    let ssl_mode = match raw.get("sslmode") {
        Some(m) => SslMode::parse(m)?,
        // libpq 16: sslrootcert=system makes verify-full the default…
        None if ssl_root_cert == Some(RootCert::System) => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    // …and refuses weaker modes with it, since any public CA could vouch for any name.
    if ssl_root_cert == Some(RootCert::System) && ssl_mode != SslMode::VerifyFull {
        return Err(ConfigError::new(format!(
            "weak sslmode \"{}\" may not be used with sslrootcert=system (use \"verify-full\")",
            ssl_mode.as_str()
        )));
    }
    let channel_binding = match raw.get("channel_binding") {
        None | Some("prefer") => ChannelBindingMode::Prefer,
        Some("disable") => ChannelBindingMode::Disable,
        Some("require") => ChannelBindingMode::Require,
        Some(other) => {
            return Err(ConfigError::new(format!(
                "invalid channel_binding \"{other}\" (expected disable, prefer or require)"
            )))
        }
    };
    let target_session_attrs = match raw.get("target_session_attrs") {
        Some(t) => TargetSessionAttrs::parse(t)?,
        None => TargetSessionAttrs::Any,
    };
    let application_name = raw
        .get("application_name")
        .or_else(|| raw.get("fallback_application_name"))
        .map(str::to_string);
    let keepalive = Keepalive::from_params(|k| raw.get(k))?;

    let mut runtime_params = Vec::new();
    for (k, v) in &raw.0 {
        let k = k.as_str();
        if KNOWN_KEYS.contains(&k)
            || keepalive::KEYS.contains(&k)
            || IGNORED_KEYS.contains(&k)
            || k.starts_with("pool_")
        {
            continue;
        }
        if !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        {
            return Err(ConfigError::new(format!(
                "invalid parameter name {}: names hold only letters, digits, '_', '.' and '-'",
                echo_if_name(k)
            )));
        }
        runtime_params.push((k.to_string(), v.clone()));
    }

    Ok(Config {
        hosts,
        user,
        dbname,
        password: raw
            .0
            .iter()
            .find(|(k, _)| k == "password")
            .map(|(_, v)| v.clone()),
        passfile,
        connect_timeout,
        application_name,
        options: raw.get("options").map(str::to_string),
        ssl_mode,
        ssl_root_cert,
        ssl_cert: raw.get("sslcert").map(PathBuf::from),
        ssl_key: raw.get("sslkey").map(PathBuf::from),
        ssl_password: raw.get("sslpassword").map(str::to_string),
        channel_binding,
        target_session_attrs,
        runtime_params,
        keepalive,
    })
}

fn resolve_hosts(raw: &Raw) -> Result<Vec<HostSpec>, ConfigError> {
    let split = |v: Option<&str>| -> Vec<String> {
        v.map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default()
    };
    let mut hosts = split(raw.get("host"));
    let addrs = split(raw.get("hostaddr"));
    let ports = split(raw.get("port"));
    if hosts.is_empty() {
        hosts = vec![String::new(); addrs.len().max(1)];
    }
    let n = hosts.len();
    if !addrs.is_empty() && addrs.len() != n {
        return Err(ConfigError::new(format!(
            "could not match {} hostaddr values to {n} host names",
            addrs.len()
        )));
    }
    if ports.len() > 1 && ports.len() != n {
        return Err(ConfigError::new(format!(
            "could not match {} port numbers to {n} hosts",
            ports.len()
        )));
    }
    let mut out = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let port_s = if ports.len() == 1 {
            &ports[0]
        } else {
            ports.get(i).map_or("", |p| p.as_str())
        };
        let port = if port_s.is_empty() {
            DEFAULT_PORT
        } else {
            match port_s.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => {
                    return Err(ConfigError::new(format!(
                        "invalid port number \"{port_s}\""
                    )))
                }
            }
        };
        let hostaddr = match addrs.get(i).filter(|a| !a.is_empty()) {
            None => None,
            Some(a) => Some(a.parse::<IpAddr>().map_err(|_| {
                ConfigError::new(format!(
                    "invalid hostaddr \"{a}\" (expected a numeric IP address)"
                ))
            })?),
        };
        if host.is_empty() {
            match hostaddr {
                Some(a) => out.push(HostSpec {
                    host: Host::Tcp(a.to_string()),
                    hostaddr,
                    port,
                }),
                None => {
                    for dir in DEFAULT_SOCKET_DIRS {
                        out.push(HostSpec {
                            host: Host::Unix(PathBuf::from(dir)),
                            hostaddr: None,
                            port,
                        });
                    }
                }
            }
        } else if host.starts_with('/') {
            out.push(HostSpec {
                host: Host::Unix(PathBuf::from(host)),
                hostaddr,
                port,
            });
        } else {
            let h = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            out.push(HostSpec {
                host: Host::Tcp(h.to_string()),
                hostaddr,
                port,
            });
        }
    }
    Ok(out)
}
