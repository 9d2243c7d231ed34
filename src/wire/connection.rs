//! The connection: socket (TCP or unix), TLS negotiation, startup, authentication, and the query
//! flows. Messages are framed by `codec` over one read buffer; a frame's body stays in that buffer
//! until the next read, which is how COPY and replication hand out payloads without copying.
//!
//! Cancel safety: every read goes through [`Connection::next_frame`], which only changes state
//! once a whole message is buffered, and writes go through `write_buf`, which keeps unsent bytes.
//! A read future can therefore be dropped (e.g. in `tokio::select!`) and called again.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;

use super::batched_read::{self, LOW_WATER};
use super::codec::{self, tag, Frame};
use super::config::Config;
use super::error::{Error, ServerError};
use crate::logging::Level;
use crate::wire_log;

/// Read in large chunks: one syscall per many COPY rows.
pub(super) const READ_CHUNK: usize = 256 * 1024;

pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Where a CancelRequest goes: the address the connection used.
#[derive(Debug, Clone)]
pub(super) enum CancelAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// Sends a CancelRequest for the connection it came from, on a new socket.
#[derive(Debug, Clone)]
pub struct CancelToken {
    addr: CancelAddr,
    process_id: i32,
    secret_key: Vec<u8>,
    timeout: Option<Duration>,
}

impl CancelToken {
    /// Asks the server to cancel the running statement. Success means the request was delivered;
    /// the statement then fails with SQLSTATE 57014 if it was still running.
    pub async fn cancel(&self) -> Result<(), Error> {
        let work = async {
            let mut buf = BytesMut::new();
            codec::encode_cancel_request(&mut buf, self.process_id, &self.secret_key);
            let ctx = "sending CancelRequest";
            let mut stream = match &self.addr {
                CancelAddr::Tcp(a) => Stream::Tcp(
                    TcpStream::connect(a)
                        .await
                        .map_err(|e| Error::io(format!("{ctx} to {a}"), e))?,
                ),
                CancelAddr::Unix(p) => Stream::Unix(
                    UnixStream::connect(p)
                        .await
                        .map_err(|e| Error::io(format!("{ctx} to {}", p.display()), e))?,
                ),
            };
            stream
                .write_all(&buf)
                .await
                .map_err(|e| Error::io(ctx, e))?;
            stream.flush().await.map_err(|e| Error::io(ctx, e))?;
            // The server closes the socket once it has handled the request.
            let mut sink = [0u8; 16];
            let _ = stream.read(&mut sink).await;
            Ok(())
        };
        match self.timeout {
            Some(t) => tokio::time::timeout(t, work)
                .await
                .map_err(|_| Error::Timeout {
                    context: "sending CancelRequest".into(),
                    after: t,
                })?,
            None => work.await,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Idle,
    /// A COPY TO STDOUT was started and not read to its end.
    CopyOut,
    /// A CopyBoth stream is open; `client_done` once we sent CopyDone.
    CopyBoth {
        client_done: bool,
    },
    /// A fatal error: the connection must not be used again.
    Broken,
}

pub struct Connection {
    pub(super) stream: Stream,
    pub(crate) read_buf: BytesMut,
    pub(super) write_buf: BytesMut,
    /// Bytes of the last frame handed out, dropped at the next read.
    pub(super) consumed: usize,
    pub(crate) state: State,
    pub(super) params: HashMap<String, String>,
    pub(super) process_id: i32,
    pub(super) secret_key: Vec<u8>,
    pub(super) cancel_addr: CancelAddr,
    pub(super) connect_timeout: Option<Duration>,
    pub(super) auth_mechanism: &'static str,
    pub(super) tls: bool,
    pub(super) peer: String,
    /// From the last ReadyForQuery: `I` idle, `T` in a transaction, `E` in a failed transaction.
    pub(super) transaction_status: u8,
    /// Whether the socket's receive low-water mark is raised for a bulk stream (see
    /// [`super::batched_read`]); reads then wait at most [`batched_read::WAIT`] for it.
    pub(super) bulk_reads: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .field("process_id", &self.process_id)
            .field("tls", &self.tls)
            .field("state", &self.state)
            .finish()
    }
}

fn parse_server_version(v: &str) -> u32 {
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .take_while(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    if major >= 10 {
        major * 10000 + minor
    } else {
        let patch = parts.next().unwrap_or(0);
        major * 10000 + minor * 100 + patch
    }
}

pub(super) fn lost(context: &str) -> Error {
    Error::io(
        context,
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "server closed the connection unexpectedly",
        ),
    )
}

impl Connection {
    /// Connects to the first host of `cfg` that accepts, as libpq does.
    pub async fn connect(cfg: &Config) -> Result<Connection, Error> {
        super::startup::connect_any(cfg, false).await
    }

    /// A replication connection (`replication=database`): accepts replication commands
    /// (CREATE_REPLICATION_SLOT, START_REPLICATION, …) and SQL.
    pub async fn connect_replication(cfg: &Config) -> Result<Connection, Error> {
        super::startup::connect_any(cfg, true).await
    }

    /// `server_version_num` as the server reports it, e.g. 170010 (from `server_version`).
    pub fn server_version_num(&self) -> u32 {
        self.params
            .get("server_version")
            .map_or(0, |v| parse_server_version(v))
    }

    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    pub fn process_id(&self) -> i32 {
        self.process_id
    }

    /// The authentication the server asked for: `none` (trust, cert or peer: no challenge),
    /// `password`, `md5`, `SCRAM-SHA-256` or `SCRAM-SHA-256-PLUS`.
    pub fn auth_mechanism(&self) -> &'static str {
        self.auth_mechanism
    }

    /// `b'I'` idle, `b'T'` inside a transaction block, `b'E'` inside a failed one (as of the last
    /// ReadyForQuery).
    pub fn transaction_status(&self) -> u8 {
        self.transaction_status
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Whether the connection can still be used (no fatal error seen).
    pub fn is_broken(&self) -> bool {
        self.state == State::Broken
    }

    pub fn cancel_token(&self) -> CancelToken {
        CancelToken {
            addr: self.cancel_addr.clone(),
            process_id: self.process_id,
            secret_key: self.secret_key.clone(),
            timeout: self.connect_timeout,
        }
    }

    /// Sends Terminate and closes the socket.
    pub async fn close(mut self) {
        if self.state != State::Broken {
            frontend::terminate(&mut self.write_buf);
            let _ = self.flush().await;
        }
        let _ = self.stream.shutdown().await;
    }

    // ---- low level ----

    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        while !self.write_buf.is_empty() {
            let n = self.write_buf.len();
            match self.stream.write_buf(&mut self.write_buf).await {
                Ok(0) => {
                    self.state = State::Broken;
                    return Err(lost("writing to the server"));
                }
                Ok(_) => {}
                Err(e) => {
                    self.state = State::Broken;
                    return Err(Error::io(format!("writing to {}", self.peer), e));
                }
            }
            wire_log!(Level::Trace, "sent", bytes = n - self.write_buf.len());
        }
        self.stream.flush().await.map_err(|e| {
            self.state = State::Broken;
            Error::io(format!("writing to {}", self.peer), e)
        })
    }

    /// Whether the read buffer holds a whole frame after the one last returned.
    pub(crate) fn has_buffered_frame(&self) -> bool {
        self.read_buf
            .get(self.consumed..)
            .is_some_and(|rest| matches!(codec::frame(rest), Ok(Some(_))))
    }

    /// The next whole message; its body is `self.read_buf[frame.body]` until the next call.
    pub(crate) async fn next_frame(&mut self) -> Result<Frame, Error> {
        if self.consumed > 0 {
            self.read_buf.advance(self.consumed);
            self.consumed = 0;
        }
        loop {
            match codec::frame(&self.read_buf) {
                Ok(Some(f)) => {
                    self.consumed = f.total_len();
                    wire_log!(
                        Level::Trace,
                        "received",
                        tag = (f.tag as char).to_string(),
                        len = f.body.len()
                    );
                    return Ok(f);
                }
                Ok(None) => {
                    let need = codec::needed(&self.read_buf).ok().flatten().unwrap_or(5);
                    let want = need.saturating_sub(self.read_buf.len()).max(READ_CHUNK);
                    self.read_buf.reserve(want);
                    let read = if self.bulk_reads {
                        self.read_batched().await
                    } else {
                        self.stream.read_buf(&mut self.read_buf).await
                    };
                    match read {
                        Ok(0) => {
                            self.state = State::Broken;
                            return Err(lost(&format!("reading from {}", self.peer)));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            self.state = State::Broken;
                            return Err(Error::io(format!("reading from {}", self.peer), e));
                        }
                    }
                }
                Err(e) => {
                    self.state = State::Broken;
                    return Err(Error::protocol(format!("from {}: {e}", self.peer)));
                }
            }
        }
    }

    /// The TCP socket beneath the stream (also under TLS); `None` for unix-domain sockets.
    fn tcp_fd(&self) -> Option<RawFd> {
        match &self.stream {
            Stream::Tcp(s) => Some(s.as_raw_fd()),
            Stream::Tls(s) => Some(s.get_ref().0.as_raw_fd()),
            Stream::Unix(_) => None,
        }
    }

    /// Raises (`true`) or restores (`false`) the socket's receive low-water mark, so a bulk
    /// stream is read in fewer, larger reads. Best effort: where the mark cannot be set, reads
    /// stay as they were.
    pub(crate) fn set_bulk_reads(&mut self, on: bool) {
        if self.bulk_reads == on {
            return;
        }
        let Some(fd) = self.tcp_fd() else { return };
        let mark = if on { LOW_WATER } else { 1 };
        match batched_read::set_low_water(fd, mark) {
            Ok(()) => self.bulk_reads = on,
            Err(e) => wire_log!(Level::Debug, "SO_RCVLOWAT not set", error = e.to_string()),
        }
    }

    /// A read in bulk mode: wait for the low-water mark, but not longer than
    /// [`batched_read::WAIT`]; then lower the mark, take what has arrived and raise it again.
    async fn read_batched(&mut self) -> io::Result<usize> {
        let read = self.stream.read_buf(&mut self.read_buf);
        if let Ok(r) = tokio::time::timeout(batched_read::WAIT, read).await {
            return r;
        }
        let Some(fd) = self.tcp_fd() else {
            return self.stream.read_buf(&mut self.read_buf).await;
        };
        // If the mark cannot be lowered the read could wait forever: fail the connection instead.
        batched_read::set_low_water(fd, 1)?;
        let r = self.stream.read_buf(&mut self.read_buf).await;
        batched_read::set_low_water(fd, LOW_WATER)?;
        r
    }

    /// The next message if it is already whole in the read buffer and has tag `want`: consumed
    /// and returned without I/O or an await. Anything else (not enough bytes, another message)
    /// is left for [`Self::next_frame`]. Malformed framing is left for it too, so it is
    /// reported in one place.
    pub(crate) fn buffered_frame(&mut self, want: u8) -> Option<Frame> {
        if self.consumed > 0 {
            self.read_buf.advance(self.consumed);
            self.consumed = 0;
        }
        match codec::frame(&self.read_buf) {
            Ok(Some(f)) if f.tag == want => {
                self.consumed = f.total_len();
                Some(f)
            }
            _ => None,
        }
    }

    pub(crate) fn write_buf_mut(&mut self) -> &mut BytesMut {
        &mut self.write_buf
    }

    pub(crate) fn body(&self, f: &Frame) -> &[u8] {
        self.read_buf.get(f.body.clone()).unwrap_or_default()
    }

    /// The next message that is not asynchronous: notices are logged, parameter changes kept.
    pub(crate) async fn next_message(&mut self) -> Result<Frame, Error> {
        loop {
            let f = self.next_frame().await?;
            match f.tag {
                tag::NOTICE_RESPONSE => {
                    let n = codec::parse_error_fields(self.body(&f)).map_err(|e| self.proto(e))?;
                    log_notice(&n);
                }
                tag::PARAMETER_STATUS => {
                    let (k, v) =
                        codec::parse_parameter_status(self.body(&f)).map_err(|e| self.proto(e))?;
                    let (k, v) = (k.to_string(), v.to_string());
                    wire_log!(Level::Debug, "parameter status", name = k.clone());
                    self.params.insert(k, v);
                }
                tag::NOTIFICATION_RESPONSE => {
                    wire_log!(Level::Debug, "notification ignored");
                }
                tag::READY_FOR_QUERY => {
                    let status =
                        codec::parse_ready_for_query(self.body(&f)).map_err(|e| self.proto(e))?;
                    self.transaction_status = status;
                    return Ok(f);
                }
                _ => return Ok(f),
            }
        }
    }

    /// A malformed message. The framing is intact, but the flow that met it stops early, so the
    /// connection is marked broken by [`Self::poison`].
    pub(super) fn proto(&self, e: codec::CodecError) -> Error {
        Error::protocol(format!("from {}: {e}", self.peer))
    }

    /// Marks the connection broken after a protocol error: the message flow is out of step.
    pub(crate) fn poison<T>(&mut self, r: Result<T, Error>) -> Result<T, Error> {
        if matches!(r, Err(Error::Protocol(_))) {
            self.state = State::Broken;
        }
        r
    }

    pub(crate) fn server_error(&mut self, f: &Frame, context: &str) -> Error {
        match codec::parse_error_fields(self.body(f)) {
            Ok(e) => {
                if e.severity == "FATAL" || e.severity == "PANIC" {
                    self.state = State::Broken;
                }
                Error::server(context, e)
            }
            Err(e) => self.proto(e),
        }
    }

    /// Brings the connection back to idle: finishes an abandoned COPY, flushes pending writes.
    pub(crate) async fn ensure_idle(&mut self) -> Result<(), Error> {
        match self.state {
            State::Idle => self.flush().await,
            State::Broken => Err(Error::Closed(format!(
                "the connection to {} failed earlier",
                self.peer
            ))),
            State::CopyOut | State::CopyBoth { .. } => {
                if let State::CopyBoth { client_done: false } = self.state {
                    frontend::copy_done(&mut self.write_buf);
                    self.state = State::CopyBoth { client_done: true };
                }
                self.flush().await?;
                wire_log!(Level::Debug, "draining an unfinished COPY");
                loop {
                    let f = self.next_message().await?;
                    if f.tag == tag::READY_FOR_QUERY {
                        self.set_bulk_reads(false);
                        self.state = State::Idle;
                        return Ok(());
                    }
                }
            }
        }
    }
}

fn log_notice(n: &ServerError) {
    let level = match n.severity_nonlocalized.as_deref().unwrap_or(&n.severity) {
        "WARNING" => Level::Warn,
        "DEBUG" => Level::Debug,
        _ => Level::Info,
    };
    wire_log!(
        level,
        format!("server notice: {}", n.message),
        severity = n.severity.clone(),
        sqlstate = n.code.clone()
    );
}

#[cfg(test)]
mod tests {
    use super::parse_server_version;

    #[test]
    fn server_versions() {
        assert_eq!(parse_server_version("17.10"), 170010);
        assert_eq!(
            parse_server_version("15.5 (Debian 15.5-1.pgdg120+1)"),
            150005
        );
        assert_eq!(parse_server_version("18beta1"), 180000);
        assert_eq!(parse_server_version("9.6.24"), 90624);
        assert_eq!(parse_server_version(""), 0);
    }
    /// The connection and its futures cross threads (a table reader runs on a tokio worker).
    #[allow(dead_code)]
    fn _assert_send(conn: &mut super::Connection) {
        fn send<T: Send>(_: &T) {}
        send(conn);
        send(&conn.cancel_token());
        send(&conn.simple_query(""));
        send(&conn.query("", &[]));
        send(&conn.copy_out(""));
        send(&conn.copy_both(""));
    }
}
