//! The plugin process: runtime, listener, gRPC server, signals, shutdown.
//!
//! - Signal handlers are installed first, so a SIGINT that arrives during start-up still ends in a
//!   clean exit 0.
//! - `--network unix`: a stale socket file at `--address` is removed (anything else there is an
//!   error), the socket is bound at once (the CLI gives up after 5 s) and every accepted
//!   connection goes through the `:authority` normaliser ([`super::transport`]). The socket file
//!   is removed on exit.
//! - `--network tcp|tcp4|tcp6`: `host:port` resolved and bound as is (stock tonic works over TCP).
//! - "Plugin server listening" is logged with `address`, `network` and `plugin`.
//! - SIGINT/SIGTERM: stop accepting, give in-flight RPCs [`SHUTDOWN_GRACE`], then cut them (the
//!   runtime is shut down, which drops every task, Sync producers included); exit 0 well within
//!   the CLI's 5 s before SIGKILL.

use std::future::Future;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{signal, SignalKind};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt;
use tonic::transport::Server;

use super::service::{DiscoveryService, PluginService, PLUGIN_NAME, PLUGIN_VERSION};
use super::transport::unix_incoming;
use crate::logging::{Format, Level};
use crate::source::Source;
use crate::{log_info, log_warn};

/// The Go SDK's default `--address`.
pub const DEFAULT_ADDRESS: &str = "localhost:7777";
/// How long in-flight RPCs get after a signal before they are cut.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(2000);
/// How long the runtime waits for its tasks (and blocking threads) when shutting down.
pub const RUNTIME_SHUTDOWN: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Unix,
    Tcp,
    Tcp4,
    Tcp6,
}

impl Network {
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Unix => "unix",
            Network::Tcp => "tcp",
            Network::Tcp4 => "tcp4",
            Network::Tcp6 => "tcp6",
        }
    }
}

/// The `serve` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    pub network: Network,
    /// `None`: [`DEFAULT_ADDRESS`].
    pub address: Option<String>,
    pub log_level: Level,
    pub log_format: Format,
    /// Accepted; this plugin never reports to Sentry.
    pub no_sentry: bool,
    /// Accepted and ignored.
    pub license: Option<String>,
    /// Accepted and ignored (no OpenTelemetry export yet).
    pub otel_endpoint: Option<String>,
    pub otel_endpoint_insecure: bool,
    /// Unknown flags that were skipped (logged as a warning).
    pub ignored_flags: Vec<String>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            network: Network::Tcp,
            address: None,
            log_level: Level::Info,
            log_format: Format::Text,
            no_sentry: false,
            license: None,
            otel_endpoint: None,
            otel_endpoint_insecure: false,
            ignored_flags: Vec::new(),
        }
    }
}

impl ServeOptions {
    pub fn address_or_default(&self) -> &str {
        self.address.as_deref().unwrap_or(DEFAULT_ADDRESS)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("starting the async runtime: {0}")]
    Runtime(#[source] io::Error),
    #[error("installing signal handlers: {0}")]
    Signals(#[source] io::Error),
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket { path: String },
    #[error("removing stale socket {path}: {source}")]
    RemoveStale {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("resolving {address}: {source}")]
    Resolve {
        address: String,
        #[source]
        source: io::Error,
    },
    #[error("no {network} address found for {address}")]
    NoAddress {
        network: &'static str,
        address: String,
    },
    #[error("listening on {network} {address}: {source}")]
    Bind {
        network: &'static str,
        address: String,
        #[source]
        source: io::Error,
    },
    #[error("setting up OpenTelemetry: {0}")]
    Telemetry(#[source] crate::telemetry::TelemetryError),
    #[error("gRPC server: {0}")]
    Server(#[source] tonic::transport::Error),
    #[error("gRPC server task: {0}")]
    ServerTask(#[source] tokio::task::JoinError),
}

/// A bound listener.
pub enum Listener {
    /// Connections go through the `:authority` normaliser.
    Unix(UnixListener),
    Tcp(TcpListener),
}

/// Removes the socket file when dropped.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `serve` to the end: blocks until a signal (Ok) or a server failure (Err).
pub fn run<S: Source>(opts: &ServeOptions, service: PluginService<S>) -> Result<(), ServeError> {
    crate::logging::init(opts.log_level, opts.log_format);
    if !opts.ignored_flags.is_empty() {
        log_warn!(
            "ignoring unknown serve flags",
            flags = opts.ignored_flags.clone()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cq-pg")
        .build()
        .map_err(ServeError::Runtime)?;
    // Telemetry: OTLP export to --otel-endpoint, on this runtime; nothing without the flag.
    let telemetry = {
        let _rt = runtime.enter();
        let endpoint = opts.otel_endpoint.as_deref();
        crate::telemetry::init(
            endpoint,
            opts.otel_endpoint_insecure,
            PLUGIN_NAME,
            PLUGIN_VERSION,
        )
        .map_err(ServeError::Telemetry)?
    };
    if telemetry {
        log_info!(
            "OpenTelemetry export on",
            endpoint = opts.otel_endpoint.clone().unwrap_or_default(),
            insecure = opts.otel_endpoint_insecure
        );
    }
    let mut socket_file = None;
    let result = runtime.block_on(serve_until_signal(opts, service, &mut socket_file));
    // Telemetry: send what is buffered while the runtime still runs the exporters' requests.
    crate::telemetry::shutdown();
    // Cuts whatever is still running (in-flight Sync streams and their producers).
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    drop(socket_file);
    if result.is_ok() {
        log_info!("plugin server stopped");
    }
    result
}

async fn serve_until_signal<S: Source>(
    opts: &ServeOptions,
    service: PluginService<S>,
    socket_file: &mut Option<SocketFile>,
) -> Result<(), ServeError> {
    let mut sigint = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let address = opts.address_or_default().to_string();
    let listener = bind(opts.network, &address, socket_file).await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(serve_listener(listener, service, async {
        let _ = stop_rx.await;
    }));
    log_info!(
        "Plugin server listening",
        address = address,
        network = opts.network.as_str(),
        plugin = PLUGIN_NAME,
        version = PLUGIN_VERSION,
    );
    let signal_name = tokio::select! {
        _ = sigint.recv() => "SIGINT",
        _ = sigterm.recv() => "SIGTERM",
        finished = &mut server => {
            return match finished {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(ServeError::Server(e)),
                Err(join) => Err(ServeError::ServerTask(join)),
            };
        }
    };
    log_info!("stopping the plugin server", signal = signal_name);
    let _ = stop_tx.send(());
    if tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
        .await
        .is_err()
    {
        log_warn!(
            "in-flight RPCs did not finish in time; cutting them",
            grace_ms = SHUTDOWN_GRACE.as_millis() as u64
        );
        server.abort();
    }
    Ok(())
}

/// Binds the listener for `network`/`address`; for unix sockets also records the file to remove.
async fn bind(
    network: Network,
    address: &str,
    socket_file: &mut Option<SocketFile>,
) -> Result<Listener, ServeError> {
    let bind_err = |source| ServeError::Bind {
        network: network.as_str(),
        address: address.to_string(),
        source,
    };
    match network {
        Network::Unix => {
            remove_stale_socket(Path::new(address))?;
            let listener = UnixListener::bind(address).map_err(bind_err)?;
            *socket_file = Some(SocketFile(PathBuf::from(address)));
            Ok(Listener::Unix(listener))
        }
        Network::Tcp | Network::Tcp4 | Network::Tcp6 => {
            let candidates: Vec<_> = tokio::net::lookup_host(address)
                .await
                .map_err(|source| ServeError::Resolve {
                    address: address.to_string(),
                    source,
                })?
                .filter(|a| match network {
                    Network::Tcp4 => a.is_ipv4(),
                    Network::Tcp6 => a.is_ipv6(),
                    _ => true,
                })
                .collect();
            let mut last_err = None;
            for addr in &candidates {
                match TcpListener::bind(addr).await {
                    Ok(listener) => return Ok(Listener::Tcp(listener)),
                    Err(e) => last_err = Some(e),
                }
            }
            Err(match last_err {
                Some(e) => bind_err(e),
                None => ServeError::NoAddress {
                    network: network.as_str(),
                    address: address.to_string(),
                },
            })
        }
    }
}

fn remove_stale_socket(path: &Path) -> Result<(), ServeError> {
    let shown = || path.display().to_string();
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ServeError::RemoveStale {
            path: shown(),
            source,
        }),
        Ok(meta) if meta.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|source| ServeError::RemoveStale {
                path: shown(),
                source,
            })
        }
        Ok(_) => Err(ServeError::NotASocket { path: shown() }),
    }
}

/// Serves discovery v1 and plugin v3 on `listener` until `shutdown` resolves and the
/// connections have closed (callers bound the wait; see [`SHUTDOWN_GRACE`]). Tests and the
/// benchmark harness use it to run the plugin in-process.
pub async fn serve_listener<S: Source>(
    listener: Listener,
    service: PluginService<S>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let router = Server::builder()
        .add_service(DiscoveryService.into_server())
        .add_service(service.into_server());
    match listener {
        Listener::Unix(l) => {
            router
                .serve_with_incoming_shutdown(unix_incoming(l), shutdown)
                .await
        }
        Listener::Tcp(l) => {
            let incoming = TcpListenerStream::new(l).map(|conn| {
                conn.and_then(|s| {
                    s.set_nodelay(true)?;
                    Ok(s)
                })
            });
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_sockets_are_removed_other_files_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        drop(l);
        assert!(sock.exists());
        remove_stale_socket(&sock).unwrap();
        assert!(!sock.exists());
        remove_stale_socket(&sock).unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, b"keep me").unwrap();
        assert!(matches!(
            remove_stale_socket(&file),
            Err(ServeError::NotASocket { .. })
        ));
        assert!(file.exists());
    }
}
