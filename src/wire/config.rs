//! Connection settings as libpq and pgx accept them: a `postgres://` URL or a keyword/value DSN,
//! completed by the `PG*` environment and libpq's defaults.
//!
//! [`Config::parse_with_env`] is a pure function of the string and an environment lookup so it can
//! be unit-tested and fuzzed; the passfile is read only at connect time (per host, as libpq does).
//! The password is kept private and masked in `Debug` and [`Config::redacted`]; no error built here
//! quotes the value of `password` or `sslpassword`.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::ConfigError;
use super::keepalive::Keepalive;

pub const DEFAULT_PORT: u16 = 5432;
/// libpq's compiled-in socket directories: Debian's and upstream's. Tried in this order.
pub const DEFAULT_SOCKET_DIRS: [&str; 2] = ["/var/run/postgresql", "/tmp"];

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
pub enum ChannelBindingMode {
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

/// Keys the client interprets (everything else becomes a runtime parameter).
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
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
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
            parse_url(trimmed)?
        } else {
            parse_dsn(s)?
        };
        let env = |k: &str| env(k).filter(|v| !v.is_empty());
        for (key, var) in ENV_KEYS {
            if raw.get(key).is_none() {
                if let Some(v) = env(var) {
                    raw.set(key, v);
                }
            }
        }
        resolve(raw, &env)
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
        let contents = read_passfile(path)?;
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

/// Reads a passfile if it is a regular file not readable by group or others (libpq's rule:
/// otherwise it is ignored with a warning).
fn read_passfile(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            crate::wire_log!(
                crate::logging::Level::Warn,
                "password file has group or world access; permissions should be u=rw (0600) or less; ignoring it",
                path = path.display().to_string()
            );
            return None;
        }
    }
    std::fs::read_to_string(path).ok()
}

/// The password of the first passfile line matching `host:port:db:user` (`*` matches anything;
/// `\:` and `\\` escape). Pure: the unit-testable half of the passfile.
pub fn passfile_lookup(
    contents: &str,
    host: &str,
    port: u16,
    db: &str,
    user: &str,
) -> Option<String> {
    let port = port.to_string();
    for line in contents.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split_passfile_line(line);
        if fields.len() < 5 {
            continue;
        }
        let matches = |pattern: &(String, bool), value: &str| {
            (pattern.0 == "*" && !pattern.1) || pattern.0 == value
        };
        if matches(&fields[0], host)
            && matches(&fields[1], &port)
            && matches(&fields[2], db)
            && matches(&fields[3], user)
        {
            return Some(fields[4].0.clone());
        }
    }
    None
}

/// Splits on unescaped `:`; each field with a flag saying whether it contained an escape (so a
/// literal `\*` does not act as a wildcard).
fn split_passfile_line(line: &str) -> Vec<(String, bool)> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    escaped = true;
                }
            }
            ':' if fields.len() < 4 => {
                fields.push((std::mem::take(&mut cur), escaped));
                escaped = false;
            }
            // The password ends at the next unescaped colon, as in libpq.
            ':' => break,
            c => cur.push(c),
        }
    }
    fields.push((cur, escaped));
    fields
}

fn percent_decode(s: &str, what: &str) -> Result<String, ConfigError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    return Err(ConfigError::new(format!(
                        "invalid percent-encoding in the URL's {what}"
                    )))
                }
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| {
        ConfigError::new(format!(
            "the URL's {what} is not UTF-8 after percent-decoding"
        ))
    })
}

/// `postgres[ql]://[user[:password]@][host[:port][,…]][/dbname][?key=value&…]`
fn parse_url(s: &str) -> Result<Raw, ConfigError> {
    let rest = s
        .strip_prefix("postgresql://")
        .or_else(|| s.strip_prefix("postgres://"))
        .unwrap_or(s);
    let mut raw = Raw::default();
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    // The authority ends at the first '/' after the last '@' (passwords may hold a raw '/').
    let at = main.rfind('@');
    let path_start = main[at.map_or(0, |a| a + 1)..]
        .find('/')
        .map(|p| p + at.map_or(0, |a| a + 1));
    let (authority, path) = match path_start {
        Some(p) => (&main[..p], Some(&main[p + 1..])),
        None => (main, None),
    };
    let hostpart = match at {
        Some(a) if a < authority.len() => {
            let userinfo = &authority[..a];
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                raw.set("user", percent_decode(user, "user name")?);
            }
            if let Some(p) = password {
                raw.set("password", percent_decode(p, "password")?);
            }
            &authority[a + 1..]
        }
        _ => authority,
    };
    if !hostpart.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for spec in hostpart.split(',') {
            let (host, port) = if let Some(inner) = spec.strip_prefix('[') {
                let Some(close) = inner.find(']') else {
                    return Err(ConfigError::new(format!(
                        "missing \"]\" in IPv6 host \"{spec}\" of the URL"
                    )));
                };
                let after = &inner[close + 1..];
                let port = match after.strip_prefix(':') {
                    Some(p) => p,
                    None if after.is_empty() => "",
                    None => {
                        return Err(ConfigError::new(format!(
                            "unexpected \"{after}\" after IPv6 host \"{spec}\" of the URL"
                        )))
                    }
                };
                (inner[..close].to_string(), port)
            } else {
                match spec.rsplit_once(':') {
                    Some((h, p)) => (percent_decode(h, "host")?, p),
                    None => (percent_decode(spec, "host")?, ""),
                }
            };
            hosts.push(host);
            ports.push(port.to_string());
        }
        if hosts.iter().any(|h| !h.is_empty()) {
            raw.set("host", hosts.join(","));
        }
        if ports.iter().any(|p| !p.is_empty()) {
            raw.set("port", ports.join(","));
        }
    }
    if let Some(path) = path {
        if !path.is_empty() {
            raw.set("dbname", percent_decode(path, "database name")?);
        }
    }
    if let Some(query) = query {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(ConfigError::new(format!(
                    "URL query parameter {} has no \"=\"",
                    echo_if_name(pair)
                )));
            };
            let key = percent_decode(k, "query parameter name")?;
            let what = if key == "password" || key == "sslpassword" {
                "password".to_string()
            } else {
                format!("parameter \"{key}\"")
            };
            let value = percent_decode(v, &what)?;
            // libpq's JDBC-compatible spelling.
            if key == "ssl" && value == "true" {
                raw.set("sslmode", "require".into());
                continue;
            }
            raw.set(&key, value);
        }
    }
    Ok(raw)
}

/// `key=value key2='quoted \' value'` (whitespace around `=` allowed, backslash escapes).
fn parse_dsn(s: &str) -> Result<Raw, ConfigError> {
    let mut raw = Raw::default();
    let mut chars = s.chars().peekable();
    let mut previous_key = String::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            // A word without "=" right after a password is most likely the rest of an unquoted
            // password with a space in it: name the place, not the word.
            let word = if previous_key.contains("password") {
                format!("following the value of \"{previous_key}\" (quote values with spaces)")
            } else {
                echo_if_name(&key)
            };
            return Err(ConfigError::new(format!(
                "missing \"=\" after {word} in the connection string"
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(ConfigError::new(format!(
                    "unterminated quoted value for \"{key}\" in the connection string"
                )));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        if key.is_empty() {
            return Err(ConfigError::new(
                "empty key before \"=\" in the connection string",
            ));
        }
        raw.set(&key, value);
        previous_key = key;
    }
    Ok(raw)
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

fn resolve(raw: Raw, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
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
        if KNOWN_KEYS.contains(&k) || IGNORED_KEYS.contains(&k) || k.starts_with("pool_") {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn parse(s: &str) -> Config {
        Config::parse_with_env(s, &env(&[("USER", "osuser")])).unwrap()
    }

    fn parse_err(s: &str) -> String {
        Config::parse_with_env(s, &env(&[("USER", "osuser")]))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn url_basic_with_percent_decoding() {
        let c = parse(
            "postgres://us%40er:p%3Ass@127.0.0.1:5433/my%20db?sslmode=disable&search_path=a,b",
        );
        assert_eq!(c.user(), "us@er");
        assert_eq!(c.password(), Some("p:ss"));
        assert_eq!(c.dbname(), "my db");
        assert_eq!(c.ssl_mode, SslMode::Disable);
        assert_eq!(
            c.hosts,
            vec![HostSpec {
                host: Host::Tcp("127.0.0.1".into()),
                hostaddr: None,
                port: 5433
            }]
        );
        assert_eq!(c.runtime_params, vec![("search_path".into(), "a,b".into())]);
    }

    #[test]
    fn url_ipv6_multi_host_and_socket() {
        let c = parse("postgresql://[::1]:5433,db2,[fe80::2]/x?target_session_attrs=read-write");
        assert_eq!(c.hosts.len(), 3);
        assert_eq!(c.hosts[0].host, Host::Tcp("::1".into()));
        assert_eq!(c.hosts[0].port, 5433);
        assert_eq!(c.hosts[1].host, Host::Tcp("db2".into()));
        assert_eq!(c.hosts[1].port, 5432);
        assert_eq!(c.hosts[2].host, Host::Tcp("fe80::2".into()));
        assert_eq!(c.target_session_attrs, TargetSessionAttrs::ReadWrite);
        let c = parse("postgres:///db?host=/tmp/sock&port=7777");
        assert_eq!(c.hosts[0].host, Host::Unix("/tmp/sock".into()));
        assert_eq!(c.hosts[0].port, 7777);
        assert_eq!(c.dbname(), "db");
        assert_eq!(c.user(), "osuser");
        let c = parse("postgres://%2Ftmp%2Fs/db");
        assert_eq!(c.hosts[0].host, Host::Unix("/tmp/s".into()));
    }

    #[test]
    fn dsn_quotes_and_escapes() {
        let c = parse(
            r"host = h1,h2 port=1,2 user='a b' password='it\'s \\ x' dbname=d\ e options='-c work_mem=4MB'",
        );
        assert_eq!(c.user(), "a b");
        assert_eq!(c.password(), Some(r"it's \ x"));
        assert_eq!(c.dbname(), "d e");
        assert_eq!(c.options.as_deref(), Some("-c work_mem=4MB"));
        assert_eq!(c.hosts[1].port, 2);
    }

    #[test]
    fn defaults_like_libpq() {
        let c = parse("");
        assert_eq!(c.user(), "osuser");
        assert_eq!(c.dbname(), "osuser");
        assert_eq!(c.ssl_mode, SslMode::Prefer);
        assert_eq!(c.hosts.len(), 2);
        assert_eq!(c.hosts[0].host, Host::Unix("/var/run/postgresql".into()));
        assert_eq!(c.hosts[0].port, 5432);
    }

    #[test]
    fn env_fills_missing_parts_only() {
        let e = env(&[
            ("PGHOST", "envhost"),
            ("PGPORT", "6000"),
            ("PGUSER", "envuser"),
            ("PGDATABASE", "envdb"),
            ("PGPASSWORD", "envpw"),
            ("PGSSLMODE", "require"),
            ("PGAPPNAME", "app"),
            ("PGCONNECT_TIMEOUT", "1"),
            ("PGOPTIONS", "-c x=y"),
            ("HOME", "/home/u"),
        ]);
        let c = Config::parse_with_env("user=given", &e).unwrap();
        assert_eq!(c.user(), "given");
        assert_eq!(c.dbname(), "envdb");
        assert_eq!(c.password(), Some("envpw"));
        assert_eq!(c.hosts[0].host, Host::Tcp("envhost".into()));
        assert_eq!(c.hosts[0].port, 6000);
        assert_eq!(c.ssl_mode, SslMode::Require);
        assert_eq!(c.application_name(), Some("app"));
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(2)));
        assert_eq!(c.options.as_deref(), Some("-c x=y"));
        assert_eq!(c.passfile, Some(PathBuf::from("/home/u/.pgpass")));
    }

    #[test]
    fn errors_name_the_part_and_never_the_password() {
        assert!(parse_err("host=x port=abc").contains("\"abc\""));
        assert!(parse_err("host=x sslmode=bogus").contains("sslmode \"bogus\""));
        assert!(parse_err("host=x user").contains("\"user\""));
        let e = parse_err("password='secret");
        assert!(e.contains("unterminated") && !e.contains("secret"), "{e}");
        let e = parse_err("postgres://u:sec%zzret@h/db");
        assert!(e.contains("password") && !e.contains("sec"), "{e}");
        assert!(parse_err("postgres://[::1/db").contains("]"));
        assert!(parse_err("postgres://h/db?novalue").contains("novalue"));
        // Fragments of a sloppy password are never echoed.
        let e = parse_err("host=h password=two words");
        assert!(
            e.contains("following the value of \"password\"") && !e.contains("words"),
            "{e}"
        );
        let e = parse_err("postgres://u:Zq?Xw@Vy@h/db");
        assert!(
            !e.contains("Zq") && !e.contains("Xw") && !e.contains("Vy"),
            "{e}"
        );
        assert!(parse_err("host=a,b port=1,2,3").contains("3 port"));
        assert!(parse_err("sslrootcert=system sslmode=require").contains("weak sslmode"));
    }

    #[test]
    fn password_masked_in_debug_and_redacted() {
        let c = parse("postgres://u:TopSecret@h/db");
        assert!(!format!("{c:?}").contains("TopSecret"));
        let r = c.redacted();
        assert!(
            !r.contains("TopSecret") && r.contains("password=********"),
            "{r}"
        );
    }

    #[test]
    fn passfile_matching_and_escapes() {
        let f = "# comment\nother:*:*:*:nope\nh\\:x:5432:db:u:pa\\:ss\\\\w\n*:*:*:u:fallback\n";
        assert_eq!(
            passfile_lookup(f, "h:x", 5432, "db", "u").as_deref(),
            Some("pa:ss\\w")
        );
        assert_eq!(
            passfile_lookup(f, "zzz", 1, "any", "u").as_deref(),
            Some("fallback")
        );
        assert_eq!(passfile_lookup(f, "zzz", 1, "any", "v"), None);
    }

    #[test]
    fn ignored_and_runtime_keys() {
        let c = parse("host=h keepalives=1 pool_max_conns=4 search_path=s statement_timeout=5s");
        assert_eq!(
            c.runtime_params,
            vec![
                ("search_path".to_string(), "s".to_string()),
                ("statement_timeout".to_string(), "5s".to_string())
            ]
        );
        assert_eq!(c.keepalive, Some(Keepalive::default()));
        assert_eq!(parse("host=h keepalives=0").keepalive, None);
        let c = parse("hostaddr=127.0.0.1 host=localhost sslrootcert=system");
        assert_eq!(c.ssl_mode, SslMode::VerifyFull);
        assert_eq!(c.hosts[0].hostaddr, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(c.ssl_root_cert, Some(RootCert::System));
    }
}
