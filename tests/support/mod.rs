//! Shared support for the integration tests: real PostgreSQL clusters (`pg`), the real CloudQuery
//! CLI and its config (`cli`), the test destination (`destination`), the CDC stream helpers
//! (`cdc`), and the small helpers every test binary needs (the cache directory, a free port,
//! polling). Each test binary includes it with `mod support;`.

// Every test binary compiles this module but uses only part of it.
#![allow(dead_code)]

pub mod cdc;
pub mod cli;
pub mod destination;
pub mod pg;

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The cache directory shared with scripts/lib.sh (keep the two defaults in sync): `CQ_CACHE_DIR`
/// when set and not empty, else `/var/cache/cq-source-postgresql` as root (root's home is mode
/// 700, so the server user could not reach binaries there), `~/.cache/cq-source-postgresql`
/// otherwise.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CQ_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if is_root() {
        PathBuf::from("/var/cache/cq-source-postgresql")
    } else {
        let home = std::env::var_os("HOME").expect("HOME is not set");
        PathBuf::from(home).join(".cache/cq-source-postgresql")
    }
}

/// Whether this process runs as root (PostgreSQL refuses to, so the servers then run as `cqpg`).
pub fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| {
        // /proc/self belongs to the effective user of this process.
        std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false)
    })
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the listener is closed on return, so
/// nothing listens there until the caller binds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// Polls `pred` every 20 ms until it holds (true) or `timeout` has passed (false); `pred` is
/// tried once more at the deadline.
pub fn wait_until(timeout: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pred() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
