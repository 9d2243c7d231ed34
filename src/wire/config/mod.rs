//! Connection settings as libpq and pgx accept them: a `postgres://` URL or a keyword/value DSN,
//! completed by the `PG*` environment and libpq's defaults.
//!
//! [`Config::parse_with_env`] is a pure function of the string and an environment lookup so it can
//! be unit-tested and fuzzed; the passfile is read only at connect time (per host, as libpq does).
//! The password is kept private and masked in `Debug` and [`Config::redacted`]; no error built here
//! quotes the value of `password` or `sslpassword`.
//!
//! One job per file: [`url`] and [`dsn`] read the two string forms into ordered key/value pairs,
//! [`env`] fills what the string leaves out from the environment and libpq's defaults and checks
//! every value, [`passfile`] finds a password at connect time. The merge order, in
//! [`Config::parse_with_env`]: the string's own keys, then the `PG*` variables for the keys it
//! leaves out, then defaults.

mod dsn;
mod env;
mod passfile;
mod url;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::ConfigError;
use super::keepalive::Keepalive;

use env::DEFAULT_SOCKET_DIRS;
pub(crate) use passfile::passfile_lookup;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode, ConfigError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(ConfigError::new(format!(
                    "invalid sslmode \"{other}\" (expected disable, allow, prefer, require, verify-ca or verify-full)"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// The operating system's trust store (`sslrootcert=system`).
    System,
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSessionAttrs {
    Any,
    ReadWrite,
    ReadOnly,
    Primary,
    Standby,
    PreferStandby,
}

impl TargetSessionAttrs {
    fn parse(s: &str) -> Result<TargetSessionAttrs, ConfigError> {
        Ok(match s {
            "any" => TargetSessionAttrs::Any,
            "read-write" => TargetSessionAttrs::ReadWrite,
            "read-only" => TargetSessionAttrs::ReadOnly,
            "primary" => TargetSessionAttrs::Primary,
            "standby" => TargetSessionAttrs::Standby,
            "prefer-standby" => TargetSessionAttrs::PreferStandby,
            other => {
                return Err(ConfigError::new(format!(
                    "invalid target_session_attrs \"{other}\" (expected any, read-write, read-only, primary, standby or prefer-standby)"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TargetSessionAttrs::Any => "any",
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::ReadOnly => "read-only",
            TargetSessionAttrs::Primary => "primary",
            TargetSessionAttrs::Standby => "standby",
            TargetSessionAttrs::PreferStandby => "prefer-standby",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChannelBindingMode {
    Disable,
    Prefer,
    Require,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A host name or IP literal (without brackets).
    Tcp(String),
    /// A unix-socket directory; the socket is `<dir>/.s.PGSQL.<port>`.
    Unix(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub host: Host,
    /// Numeric address to connect to instead of resolving `host` (which still names the server for
    /// TLS and the passfile).
    pub hostaddr: Option<IpAddr>,
    pub port: u16,
}

impl HostSpec {
    /// `host:port` or the socket path, for messages.
    pub fn display(&self) -> String {
        match (&self.host, self.hostaddr) {
            (Host::Unix(dir), _) => format!("{}/.s.PGSQL.{}", dir.display(), self.port),
            (Host::Tcp(h), Some(a)) if h != &a.to_string() => {
                format!("{h} ({a}) port {}", self.port)
            }
            (Host::Tcp(h), _) if h.contains(':') => format!("[{h}]:{}", self.port),
            (Host::Tcp(h), _) => format!("{h}:{}", self.port),
        }
    }
}

/// Parsed connection settings.
#[derive(Clone)]
pub struct Config {
    pub(crate) hosts: Vec<HostSpec>,
    pub(crate) user: String,
    pub(crate) dbname: String,
    password: Option<String>,
    pub(crate) passfile: Option<PathBuf>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) application_name: Option<String>,
    pub(crate) options: Option<String>,
    pub(crate) ssl_mode: SslMode,
    pub(crate) ssl_root_cert: Option<RootCert>,
    pub(crate) ssl_cert: Option<PathBuf>,
    pub(crate) ssl_key: Option<PathBuf>,
    ssl_password: Option<String>,
    pub(crate) channel_binding: ChannelBindingMode,
    pub(crate) target_session_attrs: TargetSessionAttrs,
    pub(crate) runtime_params: Vec<(String, String)>,
    /// TCP keepalives (`keepalives*` keys); None when turned off.
    pub(crate) keepalive: Option<Keepalive>,
}

const MASK: &str = "********";

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("hosts", &self.hosts)
            .field("user", &self.user)
            .field("dbname", &self.dbname)
            .field("password", &self.password.as_ref().map(|_| MASK))
            .field("passfile", &self.passfile)
            .field("connect_timeout", &self.connect_timeout)
            .field("application_name", &self.application_name)
            .field("options", &self.options)
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_root_cert", &self.ssl_root_cert)
            .field("ssl_cert", &self.ssl_cert)
            .field("ssl_key", &self.ssl_key)
            .field("ssl_password", &self.ssl_password.as_ref().map(|_| MASK))
            .field("channel_binding", &self.channel_binding)
            .field("target_session_attrs", &self.target_session_attrs)
            .field("runtime_params", &self.runtime_params)
            .field("keepalive", &self.keepalive)
            .finish()
    }
}

/// Key/value pairs in the order given; a later duplicate overrides an earlier one.
#[derive(Default)]
struct Raw(Vec<(String, String)>);

impl Raw {
    fn set(&mut self, key: &str, value: String) {
        let key = if key == "database" { "dbname" } else { key };
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value;
        } else {
            self.0.push((key.to_string(), value));
        }
    }

    /// The value if present and non-empty (libpq treats an empty value as unset).
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

impl Config {
    /// Parses `s` and completes it from the process environment.
    pub fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse_with_env(s, &|k| std::env::var(k).ok())
    }

    /// Parses `s` and completes it from `env` (the `PG*` variables, `USER`/`LOGNAME`, `HOME`).
    pub fn parse_with_env(
        s: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let trimmed = s.trim();
        let mut raw = if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://")
        {
            url::parse_url(trimmed)?
        } else {
            dsn::parse_dsn(s)?
        };
        // libpq treats an empty variable as unset.
        let env = |k: &str| env(k).filter(|v| !v.is_empty());
        env::fill_from_env(&mut raw, &env);
        env::resolve(raw, &env)
    }

    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn hosts(&self) -> &[HostSpec] {
        &self.hosts
    }

    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    pub fn application_name(&self) -> Option<&str> {
        self.application_name.as_deref()
    }

    pub fn runtime_params(&self) -> &[(String, String)] {
        &self.runtime_params
    }

    pub fn target_session_attrs(&self) -> TargetSessionAttrs {
        self.target_session_attrs
    }

    pub fn passfile(&self) -> Option<&Path> {
        self.passfile.as_deref()
    }

    /// Whether a password was given in the string or `PGPASSWORD` (the value itself stays private).
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    #[cfg(test)]
    pub(crate) fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    pub(crate) fn ssl_password(&self) -> Option<&str> {
        self.ssl_password.as_deref()
    }

    /// Sets the application name (the plugin names its connections).
    pub fn set_application_name(&mut self, name: &str) {
        self.application_name = Some(name.to_string());
    }

    /// Adds or replaces a runtime parameter sent in the StartupMessage.
    pub fn set_runtime_param(&mut self, name: &str, value: &str) {
        if let Some(slot) = self.runtime_params.iter_mut().find(|(k, _)| k == name) {
            slot.1 = value.to_string();
        } else {
            self.runtime_params
                .push((name.to_string(), value.to_string()));
        }
    }

    /// A DSN of these settings for logs and errors, with the password masked.
    pub fn redacted(&self) -> String {
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|h| match &h.host {
                Host::Tcp(n) => n.clone(),
                Host::Unix(d) => d.display().to_string(),
            })
            .collect();
        let ports: Vec<String> = self.hosts.iter().map(|h| h.port.to_string()).collect();
        let mut out = format!(
            "host={} port={} dbname={} user={}",
            quote(&hosts.join(",")),
            ports.join(","),
            quote(&self.dbname),
            quote(&self.user)
        );
        if self.password.is_some() {
            out.push_str(&format!(" password={MASK}"));
        }
        out.push_str(&format!(" sslmode={}", self.ssl_mode.as_str()));
        if let Some(t) = self.connect_timeout {
            out.push_str(&format!(" connect_timeout={}", t.as_secs()));
        }
        if let Some(a) = &self.application_name {
            out.push_str(&format!(" application_name={}", quote(a)));
        }
        for (k, v) in &self.runtime_params {
            out.push_str(&format!(" {k}={}", quote(v)));
        }
        out
    }

    /// The password for one host: the configured one, else the passfile's matching line.
    pub(crate) fn password_for(&self, host: &HostSpec) -> Option<String> {
        if let Some(p) = &self.password {
            return Some(p.clone());
        }
        let path = self.passfile.as_ref()?;
        let contents = passfile::read_passfile(path)?;
        let host_name = match &host.host {
            Host::Tcp(h) => h.clone(),
            Host::Unix(d) => {
                let d = d.to_string_lossy();
                if DEFAULT_SOCKET_DIRS.contains(&d.as_ref()) {
                    "localhost".to_string()
                } else {
                    d.into_owned()
                }
            }
        };
        passfile_lookup(&contents, &host_name, host.port, &self.dbname, &self.user)
    }
}

fn quote(s: &str) -> String {
    if !s.is_empty() && !s.contains([' ', '\'', '\\']) {
        return s.to_string();
    }
    let mut out = String::from("'");
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}
/// Quotes `s` if it looks like a parameter name; otherwise describes it without echoing it, since
/// a malformed fragment may be part of a password.
fn echo_if_name(s: &str) -> String {
    let is_name = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
    if is_name {
        format!("\"{s}\"")
    } else {
        format!("of {} characters (not shown)", s.chars().count())
    }
}

#[cfg(test)]
mod tests;
