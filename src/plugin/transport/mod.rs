//! The plugin's listeners: TCP as tonic does it, unix sockets through the `:authority` normaliser.
//!
//! [`AuthorityStream`] wraps an accepted connection: reads go through
//! [`authority::AuthorityRewriter`], writes (the whole server→client direction, including every
//! Sync message) go straight to the socket.

pub mod authority;

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio_stream::wrappers::UnixListenerStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::Connected;

pub use authority::{AuthorityError, AuthorityRewriter};

const READ_CHUNK: usize = 16 * 1024;

/// A client connection whose incoming HTTP/2 header blocks carry `:authority: localhost`.
pub(crate) struct AuthorityStream<S> {
    inner: S,
    rewriter: AuthorityRewriter,
    scratch: Box<[u8]>,
    /// Rewritten bytes not yet handed to the reader, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    eof: bool,
}

impl<S> AuthorityStream<S> {
    pub fn new(inner: S) -> Self {
        AuthorityStream {
            inner,
            rewriter: AuthorityRewriter::new(),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            out: Vec::with_capacity(READ_CHUNK),
            out_pos: 0,
            eof: false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let ready_bytes = this.out.get(this.out_pos..).unwrap_or_default();
            if !ready_bytes.is_empty() {
                let n = ready_bytes.len().min(buf.remaining());
                buf.put_slice(ready_bytes.get(..n).unwrap_or_default());
                this.out_pos += n;
                if this.out_pos >= this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let mut read = ReadBuf::new(&mut this.scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            let filled = read.filled();
            if filled.is_empty() {
                this.eof = true;
                return Poll::Ready(Ok(()));
            }
            this.rewriter
                .feed(filled, &mut this.out)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            // Nothing complete yet (e.g. half a header frame): read again rather than return
            // an empty read, which would mean end of stream.
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: Connected> Connected for AuthorityStream<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// Accepted unix-socket connections, each wrapped in an [`AuthorityStream`].
pub(crate) fn unix_incoming(
    listener: UnixListener,
) -> impl Stream<Item = io::Result<AuthorityStream<UnixStream>>> {
    UnixListenerStream::new(listener).map(|conn| conn.map(AuthorityStream::new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn stream_rewrites_reads_and_passes_writes() {
        let recorded: &[u8] =
            include_bytes!("../../../tests/fixtures/grpc-go-headers/sync-source.bin");
        let mut expected = Vec::new();
        AuthorityRewriter::new()
            .feed(recorded, &mut expected)
            .unwrap();

        let (client, server) = tokio::io::duplex(64);
        let mut wrapped = AuthorityStream::new(server);
        let writer = tokio::spawn(async move {
            let mut client = client;
            for chunk in recorded.chunks(13) {
                client.write_all(chunk).await.unwrap();
            }
            client.shutdown().await.unwrap();
            let mut back = Vec::new();
            client.read_to_end(&mut back).await.unwrap();
            back
        });
        let mut got = Vec::new();
        wrapped.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, expected);
        wrapped.write_all(b"server bytes untouched").await.unwrap();
        wrapped.shutdown().await.unwrap();
        drop(wrapped);
        assert_eq!(writer.await.unwrap(), b"server bytes untouched");
    }

    #[tokio::test]
    async fn malformed_client_bytes_fail_the_read() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b"not http/2 at all, no").await.unwrap();
        let mut wrapped = AuthorityStream::new(server);
        let mut buf = [0u8; 64];
        let err = wrapped.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
