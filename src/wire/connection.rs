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
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::auth;
use super::codec::{self, tag, AuthRequest, BindParam, FieldDescription, Frame};
use super::config::{ChannelBindingMode, Config, Host, HostSpec, SslMode, TargetSessionAttrs};
use super::error::{Error, ServerError};
use super::tls;
use crate::logging::Level;
use crate::wire_log;

/// Read in large chunks: one syscall per many COPY rows.
const READ_CHUNK: usize = 256 * 1024;

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
enum CancelAddr {
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

/// One result of a simple query: text values, `None` for NULL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimpleResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// The command tag, e.g. `SELECT 3`.
    pub tag: String,
}

/// A parameter of an extended query. Integers and booleans travel in binary with their type;
/// text lets the server infer the type; bytes are bytea.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param<'a> {
    Null,
    Text(&'a str),
    Bytes(&'a [u8]),
    I32(i32),
    I64(i64),
    Bool(bool),
}

/// One row of an extended query: binary values.
#[derive(Debug, Clone)]
pub struct Row {
    body: Bytes,
    values: Vec<Option<std::ops::Range<usize>>>,
}

impl Row {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The raw (binary) value of column `i`; `None` for NULL or out of range.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let range = self.values.get(i)?.clone()?;
        self.body.get(range)
    }

    pub fn is_null(&self, i: usize) -> bool {
        matches!(self.values.get(i), Some(None))
    }

    pub fn get_str(&self, i: usize) -> Result<Option<&str>, Error> {
        self.get(i)
            .map(|b| {
                std::str::from_utf8(b)
                    .map_err(|_| Error::protocol(format!("column {i} is not UTF-8 text")))
            })
            .transpose()
    }

    fn fixed<const N: usize>(&self, i: usize, ty: &str) -> Result<Option<[u8; N]>, Error> {
        self.get(i)
            .map(|b| {
                <[u8; N]>::try_from(b).map_err(|_| {
                    Error::protocol(format!(
                        "column {i}: {} bytes is not a binary {ty}",
                        b.len()
                    ))
                })
            })
            .transpose()
    }

    pub fn get_i16(&self, i: usize) -> Result<Option<i16>, Error> {
        Ok(self.fixed::<2>(i, "int2")?.map(i16::from_be_bytes))
    }
    pub fn get_i32(&self, i: usize) -> Result<Option<i32>, Error> {
        Ok(self.fixed::<4>(i, "int4")?.map(i32::from_be_bytes))
    }
    pub fn get_u32(&self, i: usize) -> Result<Option<u32>, Error> {
        Ok(self.fixed::<4>(i, "oid")?.map(u32::from_be_bytes))
    }
    pub fn get_i64(&self, i: usize) -> Result<Option<i64>, Error> {
        Ok(self.fixed::<8>(i, "int8")?.map(i64::from_be_bytes))
    }
    pub fn get_bool(&self, i: usize) -> Result<Option<bool>, Error> {
        Ok(self.fixed::<1>(i, "bool")?.map(|b| b[0] != 0))
    }
}

/// Result of an extended query.
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    pub columns: Vec<FieldDescription>,
    pub rows: Vec<Row>,
    pub tag: String,
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
    stream: Stream,
    pub(crate) read_buf: BytesMut,
    write_buf: BytesMut,
    /// Bytes of the last frame handed out, dropped at the next read.
    consumed: usize,
    pub(crate) state: State,
    params: HashMap<String, String>,
    process_id: i32,
    secret_key: Vec<u8>,
    cancel_addr: CancelAddr,
    connect_timeout: Option<Duration>,
    auth_mechanism: &'static str,
    tls: bool,
    peer: String,
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

enum TlsChoice {
    Off,
    /// Ask for TLS; `required` refuses a server without it.
    On {
        config: Arc<rustls::ClientConfig>,
        required: bool,
    },
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

fn lost(context: &str) -> Error {
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
        connect_any(cfg, false).await
    }

    /// A replication connection (`replication=database`): accepts replication commands
    /// (CREATE_REPLICATION_SLOT, START_REPLICATION, …) and SQL.
    pub async fn connect_replication(cfg: &Config) -> Result<Connection, Error> {
        connect_any(cfg, true).await
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

    /// The next whole message; its body is `self.read_buf[frame.body]` until the next call.
    pub(crate) async fn next_frame(&mut self) -> Result<Frame, Error> {
        if self.consumed > 0 {
            self.read_buf.advance(self.consumed);
            self.consumed = 0;
        }
        loop {
            match codec::frame(&self.read_buf) {
                Ok(Some(f)) => {
                    self.consumed = f.len();
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
                    match self.stream.read_buf(&mut self.read_buf).await {
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
                _ => return Ok(f),
            }
        }
    }

    /// A malformed message. The framing is intact, but the flow that met it stops early, so the
    /// connection is marked broken by [`Self::poison`].
    fn proto(&self, e: codec::CodecError) -> Error {
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
                        self.state = State::Idle;
                        return Ok(());
                    }
                }
            }
        }
    }

    // ---- queries ----

    /// Runs one or more statements with the simple protocol; text results.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<SimpleResult>, Error> {
        let r = self.simple_query_inner(sql).await;
        self.poison(r)
    }

    async fn simple_query_inner(&mut self, sql: &str) -> Result<Vec<SimpleResult>, Error> {
        self.ensure_idle().await?;
        frontend::query(sql, &mut self.write_buf)
            .map_err(|e| Error::protocol(format!("encoding Query: {e}")))?;
        self.flush().await?;
        let mut results = Vec::new();
        let mut current: Option<SimpleResult> = None;
        let mut error: Option<Error> = None;
        loop {
            let f = self.next_message().await?;
            match f.tag {
                tag::ROW_DESCRIPTION => {
                    let fields =
                        codec::parse_row_description(self.body(&f)).map_err(|e| self.proto(e))?;
                    current = Some(SimpleResult {
                        columns: fields.into_iter().map(|c| c.name).collect(),
                        ..SimpleResult::default()
                    });
                }
                tag::DATA_ROW => {
                    let body = self.body(&f);
                    let ranges = codec::parse_data_row(body).map_err(|e| self.proto(e))?;
                    let body = self.body(&f);
                    let mut row = Vec::with_capacity(ranges.len());
                    for r in ranges {
                        // The session is UTF8; a SQL_ASCII database can still hold other bytes,
                        // which are replaced rather than failing a catalog query.
                        row.push(
                            r.and_then(|r| body.get(r))
                                .map(|b| String::from_utf8_lossy(b).into_owned()),
                        );
                    }
                    if let Some(c) = current.as_mut() {
                        c.rows.push(row);
                    }
                }
                tag::COMMAND_COMPLETE => {
                    let t = codec::parse_command_complete(self.body(&f))
                        .map_err(|e| self.proto(e))?
                        .to_string();
                    let mut r = current.take().unwrap_or_default();
                    r.tag = t;
                    results.push(r);
                }
                tag::EMPTY_QUERY_RESPONSE => {}
                tag::ERROR_RESPONSE => {
                    let e = self.server_error(&f, "running a simple query");
                    error.get_or_insert(e);
                }
                tag::COPY_IN_RESPONSE => {
                    frontend::copy_fail(
                        "COPY FROM STDIN is not supported by this client",
                        &mut self.write_buf,
                    )
                    .map_err(|e| Error::protocol(e.to_string()))?;
                    self.flush().await?;
                }
                tag::COPY_OUT_RESPONSE | tag::COPY_BOTH_RESPONSE => {
                    if f.tag == tag::COPY_BOTH_RESPONSE {
                        frontend::copy_done(&mut self.write_buf);
                        self.flush().await?;
                    }
                    error.get_or_insert(Error::Usage(
                        "simple_query started a COPY; use copy_out or copy_both".into(),
                    ));
                }
                tag::COPY_DATA | tag::COPY_DONE => {}
                tag::READY_FOR_QUERY => break,
                other => {
                    wire_log!(
                        Level::Debug,
                        "unexpected message in simple query",
                        tag = (other as char).to_string()
                    );
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(results),
        }
    }

    /// Runs statements, discarding their results.
    pub async fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        self.simple_query(sql).await.map(|_| ())
    }

    /// Extended query: Parse/Bind/Describe/Execute/Sync, binary parameters and results.
    pub async fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<QueryResult, Error> {
        let r = self.query_inner(sql, params).await;
        self.poison(r)
    }

    async fn query_inner(&mut self, sql: &str, params: &[Param<'_>]) -> Result<QueryResult, Error> {
        self.ensure_idle().await?;
        let mut types = Vec::with_capacity(params.len());
        let mut encoded: Vec<Option<Vec<u8>>> = Vec::with_capacity(params.len());
        let mut formats = Vec::with_capacity(params.len());
        for p in params {
            let (oid, format, value) = match p {
                Param::Null => (0, 0, None),
                Param::Text(s) => (0, 0, Some(s.as_bytes().to_vec())),
                Param::Bytes(b) => (17, 1, Some(b.to_vec())),
                Param::I32(v) => (23, 1, Some(v.to_be_bytes().to_vec())),
                Param::I64(v) => (20, 1, Some(v.to_be_bytes().to_vec())),
                Param::Bool(v) => (16, 1, Some(vec![*v as u8])),
            };
            types.push(oid);
            formats.push(format);
            encoded.push(value);
        }
        let binds: Vec<BindParam<'_>> = encoded
            .iter()
            .zip(&formats)
            .map(|(v, f)| BindParam {
                format: *f,
                value: v.as_deref(),
            })
            .collect();
        let enc = |e: codec::CodecError| Error::protocol(format!("encoding the query: {e}"));
        codec::encode_parse(&mut self.write_buf, sql, &types).map_err(enc)?;
        codec::encode_bind(&mut self.write_buf, &binds, 1).map_err(enc)?;
        frontend::describe(b'P', "", &mut self.write_buf)
            .map_err(|e| Error::protocol(e.to_string()))?;
        frontend::execute("", 0, &mut self.write_buf)
            .map_err(|e| Error::protocol(e.to_string()))?;
        frontend::sync(&mut self.write_buf);
        self.flush().await?;

        let mut result = QueryResult::default();
        let mut error: Option<Error> = None;
        loop {
            let f = self.next_message().await?;
            match f.tag {
                tag::PARSE_COMPLETE | tag::BIND_COMPLETE | tag::NO_DATA => {}
                tag::ROW_DESCRIPTION => {
                    result.columns =
                        codec::parse_row_description(self.body(&f)).map_err(|e| self.proto(e))?;
                }
                tag::DATA_ROW => {
                    let body = Bytes::copy_from_slice(self.body(&f));
                    let values = codec::parse_data_row(&body).map_err(|e| self.proto(e))?;
                    result.rows.push(Row { body, values });
                }
                tag::COMMAND_COMPLETE => {
                    result.tag = codec::parse_command_complete(self.body(&f))
                        .map_err(|e| self.proto(e))?
                        .to_string();
                }
                tag::EMPTY_QUERY_RESPONSE | tag::PORTAL_SUSPENDED => {}
                tag::ERROR_RESPONSE => {
                    let e = self.server_error(&f, "running an extended query");
                    error.get_or_insert(e);
                }
                tag::READY_FOR_QUERY => break,
                tag::COPY_IN_RESPONSE | tag::COPY_OUT_RESPONSE | tag::COPY_BOTH_RESPONSE => {
                    self.state = State::Broken;
                    return Err(Error::protocol(
                        "an extended query started a COPY; use copy_out or copy_both",
                    ));
                }
                other => {
                    wire_log!(
                        Level::Debug,
                        "unexpected message in extended query",
                        tag = (other as char).to_string()
                    );
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(result),
        }
    }

    /// Sends `sql` with the simple protocol and waits for the given Copy*Response.
    pub(crate) async fn start_copy(&mut self, sql: &str, expected: u8) -> Result<(), Error> {
        let r = self.start_copy_inner(sql, expected).await;
        self.poison(r)
    }

    async fn start_copy_inner(&mut self, sql: &str, expected: u8) -> Result<(), Error> {
        self.ensure_idle().await?;
        frontend::query(sql, &mut self.write_buf)
            .map_err(|e| Error::protocol(format!("encoding Query: {e}")))?;
        self.flush().await?;
        let mut error: Option<Error> = None;
        loop {
            let f = self.next_message().await?;
            match f.tag {
                t if t == expected => {
                    codec::parse_copy_response(self.body(&f)).map_err(|e| self.proto(e))?;
                    self.state = if expected == tag::COPY_BOTH_RESPONSE {
                        State::CopyBoth { client_done: false }
                    } else {
                        State::CopyOut
                    };
                    return Ok(());
                }
                tag::ERROR_RESPONSE => {
                    let e = self.server_error(&f, "starting COPY");
                    error.get_or_insert(e);
                }
                tag::READY_FOR_QUERY => {
                    return Err(error.unwrap_or_else(|| {
                        Error::Usage(format!(
                            "the statement did not start a {}",
                            if expected == tag::COPY_BOTH_RESPONSE {
                                "CopyBoth stream"
                            } else {
                                "COPY TO STDOUT"
                            }
                        ))
                    }));
                }
                tag::COPY_IN_RESPONSE => {
                    frontend::copy_fail(
                        "COPY FROM STDIN is not supported by this client",
                        &mut self.write_buf,
                    )
                    .map_err(|e| Error::protocol(e.to_string()))?;
                    self.flush().await?;
                }
                tag::COPY_OUT_RESPONSE | tag::COPY_BOTH_RESPONSE => {
                    // The other kind of COPY: finish it, then report.
                    self.state = if f.tag == tag::COPY_BOTH_RESPONSE {
                        State::CopyBoth { client_done: false }
                    } else {
                        State::CopyOut
                    };
                    self.ensure_idle().await?;
                    return Err(Error::protocol(
                        "the statement started another kind of COPY",
                    ));
                }
                _ => {}
            }
        }
    }

    // ---- startup ----

    async fn startup(
        cfg: &Config,
        host: &HostSpec,
        stream: Stream,
        cancel_addr: CancelAddr,
        peer: String,
        replication: bool,
    ) -> Result<Connection, Error> {
        let tls = matches!(stream, Stream::Tls(_));
        let mut conn = Connection {
            stream,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            write_buf: BytesMut::with_capacity(8 * 1024),
            consumed: 0,
            state: State::Idle,
            params: HashMap::new(),
            process_id: 0,
            secret_key: Vec::new(),
            cancel_addr,
            connect_timeout: cfg.connect_timeout,
            auth_mechanism: "none",
            tls,
            peer,
        };
        let mut params: Vec<(&str, &str)> = vec![
            ("user", cfg.user.as_str()),
            ("database", cfg.dbname.as_str()),
        ];
        const FIXED: [(&str, &str); 5] = [
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO"),
            ("TimeZone", "UTC"),
            ("IntervalStyle", "iso_8601"),
            ("extra_float_digits", "3"),
        ];
        params.extend(FIXED);
        if let Some(a) = &cfg.application_name {
            params.push(("application_name", a));
        }
        if let Some(o) = &cfg.options {
            params.push(("options", o));
        }
        if replication {
            params.push(("replication", "database"));
        }
        for (k, v) in &cfg.runtime_params {
            // The session settings are the plugin's contract; the string may not change them.
            if FIXED.iter().any(|(f, _)| f.eq_ignore_ascii_case(k)) {
                wire_log!(
                    Level::Warn,
                    "connection parameter ignored: the client fixes it",
                    name = k
                );
                continue;
            }
            params.push((k, v));
        }
        frontend::startup_message(params.iter().copied(), &mut conn.write_buf)
            .map_err(|e| Error::protocol(format!("encoding StartupMessage: {e}")))?;
        conn.flush().await?;
        wire_log!(
            Level::Debug,
            "startup sent",
            peer = conn.peer.clone(),
            replication = replication
        );
        conn.authenticate(cfg, host).await?;
        // After AuthenticationOk: ParameterStatus, BackendKeyData, then ReadyForQuery.
        loop {
            let f = conn.next_message().await?;
            match f.tag {
                tag::BACKEND_KEY_DATA => {
                    let (pid, key) = codec::parse_backend_key_data(conn.body(&f))
                        .map(|(p, k)| (p, k.to_vec()))
                        .map_err(|e| conn.proto(e))?;
                    conn.process_id = pid;
                    conn.secret_key = key;
                }
                tag::READY_FOR_QUERY => break,
                tag::ERROR_RESPONSE => {
                    let ctx = format!("starting the session as user \"{}\"", cfg.user);
                    return Err(conn.server_error(&f, &ctx));
                }
                tag::NEGOTIATE_PROTOCOL_VERSION => {
                    wire_log!(Level::Debug, "server negotiated the protocol version down");
                }
                other => {
                    return Err(Error::protocol(format!(
                        "unexpected message '{}' during startup",
                        other.escape_ascii()
                    )))
                }
            }
        }
        wire_log!(
            Level::Debug,
            "connected",
            peer = conn.peer.clone(),
            server_version = conn.parameter("server_version").unwrap_or("").to_string(),
            tls = conn.tls,
            auth = conn.auth_mechanism
        );
        Ok(conn)
    }

    async fn authenticate(&mut self, cfg: &Config, host: &HostSpec) -> Result<(), Error> {
        let user = cfg.user.clone();
        let ctx = format!("for user \"{user}\"");
        let mut password: Option<String> = None;
        let mut scram: Option<ScramSha256> = None;
        let mut need_password = |conn: &Connection| -> Result<String, Error> {
            if let Some(p) = &password {
                return Ok(p.clone());
            }
            match cfg.password_for(host) {
                Some(p) => {
                    password = Some(p.clone());
                    Ok(p)
                }
                None => Err(Error::auth(
                    ctx.clone(),
                    format!(
                        "the server at {} requested a password and none was given (password, PGPASSWORD or a passfile)",
                        conn.peer
                    ),
                )),
            }
        };
        loop {
            let f = self.next_message().await?;
            match f.tag {
                tag::AUTHENTICATION => {}
                tag::ERROR_RESPONSE => {
                    let e = self.server_error(&f, format!("authenticating {ctx}").as_str());
                    self.state = State::Broken;
                    return Err(e);
                }
                tag::NEGOTIATE_PROTOCOL_VERSION => continue,
                other => {
                    self.state = State::Broken;
                    return Err(Error::protocol(format!(
                        "unexpected message '{}' during authentication",
                        other.escape_ascii()
                    )));
                }
            }
            let req = codec::parse_authentication(self.body(&f)).map_err(|e| self.proto(e))?;
            let request = match req {
                AuthRequest::Ok => None,
                AuthRequest::Cleartext => Some(Step::Cleartext),
                AuthRequest::Md5 { salt } => Some(Step::Md5(salt)),
                AuthRequest::Sasl(mechs) => {
                    let cert_hash = self.channel_binding_hash();
                    let mech = auth::choose_mechanism(
                        &mechs,
                        cert_hash.is_some(),
                        cfg.channel_binding == ChannelBindingMode::Disable,
                    );
                    let offered = mechs.join(", ");
                    Some(Step::Sasl(mech, cert_hash, offered))
                }
                AuthRequest::SaslContinue(d) => Some(Step::SaslContinue(d.to_vec())),
                AuthRequest::SaslFinal(d) => Some(Step::SaslFinal(d.to_vec())),
                AuthRequest::Unsupported(name) => {
                    self.state = State::Broken;
                    return Err(Error::auth(
                        ctx,
                        format!("the server requested {name} authentication, which this client does not support"),
                    ));
                }
            };
            let Some(step) = request else {
                if cfg.channel_binding == ChannelBindingMode::Require
                    && self.auth_mechanism != auth::SCRAM_SHA_256_PLUS
                {
                    self.state = State::Broken;
                    return Err(Error::auth(
                        ctx,
                        "channel_binding=require, but the server authenticated the client without channel binding",
                    ));
                }
                wire_log!(Level::Debug, "authenticated", method = self.auth_mechanism);
                return Ok(());
            };
            let enc =
                |e: io::Error| Error::protocol(format!("encoding an authentication message: {e}"));
            match step {
                Step::Cleartext => {
                    self.auth_mechanism = "password";
                    let p = need_password(self)?;
                    frontend::password_message(p.as_bytes(), &mut self.write_buf).map_err(enc)?;
                }
                Step::Md5(salt) => {
                    self.auth_mechanism = "md5";
                    let p = need_password(self)?;
                    let hash = postgres_protocol::authentication::md5_hash(
                        user.as_bytes(),
                        p.as_bytes(),
                        salt,
                    );
                    frontend::password_message(hash.as_bytes(), &mut self.write_buf)
                        .map_err(enc)?;
                }
                Step::Sasl(mech, cert_hash, offered) => {
                    let Some(mech) = mech else {
                        self.state = State::Broken;
                        return Err(Error::auth(
                            ctx,
                            format!("the server offered SASL mechanisms this client does not support: {offered}"),
                        ));
                    };
                    if cfg.channel_binding == ChannelBindingMode::Require
                        && mech != auth::SCRAM_SHA_256_PLUS
                    {
                        self.state = State::Broken;
                        return Err(Error::auth(
                            ctx,
                            "channel_binding=require, but the server does not offer SCRAM-SHA-256-PLUS over this connection",
                        ));
                    }
                    self.auth_mechanism = mech;
                    let p = need_password(self)?;
                    let binding = match (mech, cert_hash) {
                        (auth::SCRAM_SHA_256_PLUS, Some(h)) => {
                            ChannelBinding::tls_server_end_point(h)
                        }
                        // Over TLS we could bind but the server did not offer it ("y");
                        // without TLS binding is impossible ("n").
                        (_, Some(_)) if cfg.channel_binding != ChannelBindingMode::Disable => {
                            ChannelBinding::unrequested()
                        }
                        _ => ChannelBinding::unsupported(),
                    };
                    let s = ScramSha256::new(p.as_bytes(), binding);
                    frontend::sasl_initial_response(mech, s.message(), &mut self.write_buf)
                        .map_err(enc)?;
                    scram = Some(s);
                }
                Step::SaslContinue(data) => {
                    let Some(s) = scram.as_mut() else {
                        return Err(Error::protocol("SASLContinue before SASL started"));
                    };
                    s.update(&data).map_err(|e| {
                        Error::auth(ctx.clone(), format!("SCRAM exchange failed: {e}"))
                    })?;
                    frontend::sasl_response(s.message(), &mut self.write_buf).map_err(enc)?;
                }
                Step::SaslFinal(data) => {
                    let Some(s) = scram.as_mut() else {
                        return Err(Error::protocol("SASLFinal before SASL started"));
                    };
                    s.finish(&data).map_err(|e| {
                        Error::auth(
                            ctx.clone(),
                            format!("SCRAM server signature check failed: {e}"),
                        )
                    })?;
                    continue;
                }
            }
            self.flush().await?;
        }
    }

    /// The `tls-server-end-point` hash of the server certificate, when on TLS.
    fn channel_binding_hash(&self) -> Option<Vec<u8>> {
        let Stream::Tls(tls) = &self.stream else {
            return None;
        };
        let cert = tls.get_ref().1.peer_certificates()?.first()?;
        auth::tls_server_end_point(cert.as_ref())
    }
}

enum Step {
    Cleartext,
    Md5([u8; 4]),
    Sasl(Option<&'static str>, Option<Vec<u8>>, String),
    SaslContinue(Vec<u8>),
    SaslFinal(Vec<u8>),
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

// ---- connecting ----

enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

async fn resolve(host: &HostSpec) -> Result<Vec<Target>, Error> {
    match (&host.host, host.hostaddr) {
        (Host::Unix(dir), _) => Ok(vec![Target::Unix(
            dir.join(format!(".s.PGSQL.{}", host.port)),
        )]),
        (Host::Tcp(_), Some(addr)) => Ok(vec![Target::Tcp(SocketAddr::new(addr, host.port))]),
        (Host::Tcp(name), None) => {
            let addrs = tokio::net::lookup_host((name.as_str(), host.port))
                .await
                .map_err(|e| Error::io(format!("resolving host \"{name}\""), e))?;
            Ok(addrs.map(Target::Tcp).collect())
        }
    }
}

async fn connect_any(cfg: &Config, replication: bool) -> Result<Connection, Error> {
    let tls_config = tls::client_config(cfg)?;
    let passes: &[Option<TargetSessionAttrs>] = match cfg.target_session_attrs {
        TargetSessionAttrs::PreferStandby => &[Some(TargetSessionAttrs::Standby), None],
        TargetSessionAttrs::Any => &[None],
        other => match other {
            TargetSessionAttrs::ReadWrite => &[Some(TargetSessionAttrs::ReadWrite)],
            TargetSessionAttrs::ReadOnly => &[Some(TargetSessionAttrs::ReadOnly)],
            TargetSessionAttrs::Primary => &[Some(TargetSessionAttrs::Primary)],
            _ => &[Some(TargetSessionAttrs::Standby)],
        },
    };
    let mut last: Option<Error> = None;
    for want in passes {
        for host in &cfg.hosts {
            let targets = match resolve(host).await {
                Ok(t) => t,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            for target in targets {
                let attempt = connect_target(cfg, host, &target, tls_config.clone(), replication);
                let result = match cfg.connect_timeout {
                    Some(t) => match tokio::time::timeout(t, attempt).await {
                        Ok(r) => r,
                        Err(_) => Err(Error::Timeout {
                            context: format!("connecting to {}", target_display(host, &target)),
                            after: t,
                        }),
                    },
                    None => attempt.await,
                };
                match result {
                    Ok(mut conn) => match want {
                        None => return Ok(conn),
                        Some(w) => match session_matches(&mut conn, *w).await {
                            Ok(true) => return Ok(conn),
                            Ok(false) => {
                                last = Some(Error::Closed(format!(
                                    "{} does not satisfy target_session_attrs={}",
                                    conn.peer,
                                    w.as_str()
                                )));
                                conn.close().await;
                            }
                            Err(e) => last = Some(e),
                        },
                    },
                    Err(e) => {
                        wire_log!(
                            Level::Debug,
                            "connection attempt failed",
                            error = e.to_string()
                        );
                        last = Some(e);
                    }
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| Error::Closed("no host to connect to".into())))
}

async fn session_matches(conn: &mut Connection, want: TargetSessionAttrs) -> Result<bool, Error> {
    let r = conn
        .simple_query("SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.current_setting('transaction_read_only')")
        .await?;
    let row = r.first().and_then(|r| r.rows.first());
    let get = |i: usize| row.and_then(|r| r.get(i)).cloned().flatten();
    let in_recovery = get(0).as_deref() == Some("t");
    let read_only = get(1).as_deref() == Some("on");
    Ok(match want {
        TargetSessionAttrs::Any => true,
        TargetSessionAttrs::ReadWrite => !read_only,
        TargetSessionAttrs::ReadOnly => read_only,
        TargetSessionAttrs::Primary => !in_recovery,
        TargetSessionAttrs::Standby | TargetSessionAttrs::PreferStandby => in_recovery,
    })
}

fn target_display(host: &HostSpec, target: &Target) -> String {
    match (target, &host.host) {
        (Target::Unix(p), _) => format!("socket {}", p.display()),
        (Target::Tcp(a), Host::Tcp(name)) if name != &a.ip().to_string() => {
            format!("{name} ({a})")
        }
        (Target::Tcp(a), _) => a.to_string(),
    }
}

/// One attempt at one address; sslmode=allow/prefer fall back as libpq does.
async fn connect_target(
    cfg: &Config,
    host: &HostSpec,
    target: &Target,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    replication: bool,
) -> Result<Connection, Error> {
    let first = match (&tls_config, cfg.ssl_mode, target) {
        // libpq does not use TLS on unix sockets.
        (_, _, Target::Unix(_)) | (None, _, _) | (_, SslMode::Allow, _) => TlsChoice::Off,
        (Some(c), mode, _) => TlsChoice::On {
            config: c.clone(),
            required: mode != SslMode::Prefer,
        },
    };
    let tried_tls = matches!(first, TlsChoice::On { .. });
    match connect_once(cfg, host, target, first, replication).await {
        Ok(c) => Ok(c),
        // allow: plain first; if the server wants encryption (pg_hba hostssl), retry with TLS.
        Err(e)
            if cfg.ssl_mode == SslMode::Allow
                && matches!(target, Target::Tcp(_))
                && e.code() == Some("28000") =>
        {
            let Some(config) = tls_config else {
                return Err(e);
            };
            connect_once(
                cfg,
                host,
                target,
                TlsChoice::On {
                    config,
                    required: true,
                },
                replication,
            )
            .await
        }
        // prefer: if the TLS handshake fails, retry without.
        Err(Error::Tls { .. }) if cfg.ssl_mode == SslMode::Prefer && tried_tls => {
            connect_once(cfg, host, target, TlsChoice::Off, replication).await
        }
        Err(e) => Err(e),
    }
}

async fn connect_once(
    cfg: &Config,
    host: &HostSpec,
    target: &Target,
    tls: TlsChoice,
    replication: bool,
) -> Result<Connection, Error> {
    let display = target_display(host, target);
    match target {
        Target::Unix(path) => {
            let s = UnixStream::connect(path)
                .await
                .map_err(|e| Error::io(format!("connecting to {display}"), e))?;
            Connection::startup(
                cfg,
                host,
                Stream::Unix(s),
                CancelAddr::Unix(path.clone()),
                display,
                replication,
            )
            .await
        }
        Target::Tcp(addr) => {
            let mut s = TcpStream::connect(addr)
                .await
                .map_err(|e| Error::io(format!("connecting to {display}"), e))?;
            let _ = s.set_nodelay(true);
            let stream = match tls {
                TlsChoice::Off => Stream::Tcp(s),
                TlsChoice::On { config, required } => {
                    let mut req = BytesMut::new();
                    frontend::ssl_request(&mut req);
                    s.write_all(&req)
                        .await
                        .map_err(|e| Error::io(format!("sending SSLRequest to {display}"), e))?;
                    // Exactly one byte: anything buffered after 'S' would be unencrypted injection.
                    let answer = s.read_u8().await.map_err(|e| {
                        Error::io(format!("reading the SSLRequest answer from {display}"), e)
                    })?;
                    match answer {
                        b'S' => {
                            let name = match &host.host {
                                Host::Tcp(n) => n.clone(),
                                Host::Unix(_) => addr.ip().to_string(),
                            };
                            let server_name = tls::server_name(&name)?;
                            let tls = TlsConnector::from(config)
                                .connect(server_name, s)
                                .await
                                .map_err(|e| Error::Tls {
                                    context: format!("handshake with {display}"),
                                    message: e.to_string(),
                                })?;
                            wire_log!(Level::Debug, "TLS established", peer = display.clone());
                            Stream::Tls(Box::new(tls))
                        }
                        b'N' if !required => Stream::Tcp(s),
                        b'N' => {
                            return Err(Error::Tls {
                                context: format!("negotiating with {display}"),
                                message: format!(
                                    "the server does not support SSL, but sslmode={} requires it",
                                    cfg.ssl_mode.as_str()
                                ),
                            })
                        }
                        other => {
                            return Err(Error::protocol(format!(
                                "unexpected answer '{}' to SSLRequest from {display}",
                                other.escape_ascii()
                            )))
                        }
                    }
                }
            };
            Connection::startup(
                cfg,
                host,
                stream,
                CancelAddr::Tcp(*addr),
                display,
                replication,
            )
            .await
        }
    }
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
