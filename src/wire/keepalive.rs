//! TCP keepalives on every connection, so a peer that silently went away (a host that stopped
//! answering, a dropped route, a NAT that forgot the flow) is noticed instead of a read waiting
//! forever. libpq's keys set them: `keepalives` (0 turns them off), `keepalives_idle`,
//! `keepalives_interval`, `keepalives_count` (seconds, seconds, probes). Unlike libpq, which
//! leaves the operating system's defaults (two hours of silence before the first probe on
//! Linux), the plugin's defaults notice a dead peer within about a minute: 30 s idle, then 3
//! probes 10 s apart.

use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

use super::error::ConfigError;

/// The keepalive settings of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keepalive {
    /// Silence before the first probe.
    pub idle: Duration,
    /// Time between probes.
    pub interval: Duration,
    /// Unanswered probes before the connection is declared dead.
    pub count: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            idle: Duration::from_secs(30),
            interval: Duration::from_secs(10),
            count: 3,
        }
    }
}

/// The connection-string keys this module reads.
pub(crate) const KEYS: [&str; 4] = [
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
];

impl Keepalive {
    /// The longest a silently dead peer goes unnoticed on an idle connection.
    #[cfg(test)]
    pub(crate) fn detection_time(&self) -> Duration {
        self.idle + self.interval * self.count
    }

    /// From the connection string's keys (`get`); None when `keepalives=0`.
    pub(crate) fn from_params<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Option<Keepalive>, ConfigError> {
        match get("keepalives").map(str::trim) {
            None | Some("1") => {}
            Some("0") => return Ok(None),
            Some(other) => {
                return Err(ConfigError::new(format!(
                    "invalid keepalives \"{other}\" (expected 0 or 1)"
                )))
            }
        }
        let number = |key: &str| -> Result<Option<u32>, ConfigError> {
            let Some(text) = get(key) else {
                return Ok(None);
            };
            match text.trim().parse::<u32>() {
                Ok(n) if n >= 1 => Ok(Some(n)),
                _ => Err(ConfigError::new(format!(
                    "invalid {key} \"{text}\" (expected a whole number >= 1)"
                ))),
            }
        };
        let defaults = Keepalive::default();
        Ok(Some(Keepalive {
            idle: number("keepalives_idle")?
                .map_or(defaults.idle, |s| Duration::from_secs(u64::from(s))),
            interval: number("keepalives_interval")?
                .map_or(defaults.interval, |s| Duration::from_secs(u64::from(s))),
            count: number("keepalives_count")?.unwrap_or(defaults.count),
        }))
    }

    /// Turns keepalives on for `stream` with these settings.
    pub fn apply(&self, stream: &TcpStream) -> std::io::Result<()> {
        let settings = TcpKeepalive::new()
            .with_time(self.idle)
            .with_interval(self.interval)
            .with_retries(self.count);
        SockRef::from(stream).set_tcp_keepalive(&settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<Option<Keepalive>, ConfigError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        Keepalive::from_params(|k| map.get(k).copied())
    }

    #[test]
    fn defaults_notice_a_dead_peer_within_a_minute() {
        let k = parse(&[]).unwrap().unwrap();
        assert_eq!(k, Keepalive::default());
        assert_eq!(k.detection_time(), Duration::from_secs(60));
    }

    #[test]
    fn libpq_keys() {
        assert_eq!(parse(&[("keepalives", "0")]).unwrap(), None);
        let k = parse(&[
            ("keepalives", "1"),
            ("keepalives_idle", "5"),
            ("keepalives_interval", "2"),
            ("keepalives_count", "4"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (k.idle, k.interval, k.count),
            (Duration::from_secs(5), Duration::from_secs(2), 4)
        );
        for bad in [
            ("keepalives", "yes"),
            ("keepalives_idle", "0"),
            ("keepalives_interval", "-1"),
            ("keepalives_count", "x"),
        ] {
            let e = parse(&[bad]).unwrap_err();
            assert!(e.0.contains(bad.0), "{e:?}");
        }
    }

    #[tokio::test]
    async fn apply_sets_the_socket_options() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let k = Keepalive {
            idle: Duration::from_secs(7),
            interval: Duration::from_secs(3),
            count: 5,
        };
        k.apply(&stream).unwrap();
        let sock = SockRef::from(&stream);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(7));
        assert_eq!(
            sock.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(3)
        );
        assert_eq!(sock.tcp_keepalive_retries().unwrap(), 5);
    }
}
