//! The URL form of a connection string:
//! `postgres[ql]://[user[:password]@][host[:port][,…]][/dbname][?key=value&…]`.

use super::{echo_if_name, Raw};
use crate::wire::error::ConfigError;

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
pub(super) fn parse_url(s: &str) -> Result<Raw, ConfigError> {
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
