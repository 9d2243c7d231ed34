//! The CopyBoth stream of `START_REPLICATION`: XLogData and keepalives in, standby status updates
//! and CopyDone out.

use super::codec::{self, tag, ReplicationMessage};
use super::connection::{Connection, State};
use super::error::Error;
use super::lsn::Lsn;

/// An open CopyBoth stream. [`ReplicationStream::next_message`] is cancel-safe: a caller may
/// `tokio::select!` it against a timer and send a status update when the timer wins.
pub struct ReplicationStream<'a> {
    conn: &'a mut Connection,
    done: bool,
    error: Option<Error>,
}

impl Connection {
    /// Sends `sql` (e.g. `START_REPLICATION SLOT s LOGICAL 0/0 (…)`) and waits for CopyBothResponse.
    pub async fn copy_both(&mut self, sql: &str) -> Result<ReplicationStream<'_>, Error> {
        self.start_copy(sql, tag::COPY_BOTH_RESPONSE).await?;
        Ok(ReplicationStream {
            conn: self,
            done: false,
            error: None,
        })
    }
}

impl ReplicationStream<'_> {
    /// Whether a whole message is already in the read buffer, so that
    /// [`Self::next_message`] returns it without reading from the socket (it may still write
    /// unsent bytes first). Lets a caller handle a burst of messages before doing its
    /// per-wakeup work.
    pub(crate) fn has_buffered_message(&self) -> bool {
        !self.done && self.conn.has_buffered_frame()
    }

    /// The next XLogData or keepalive; `data` of XLogData borrows the read buffer until the next
    /// call. `None` once the server has ended the stream (after [`Self::copy_done`] or on its own)
    /// and the connection is idle again.
    pub async fn next_message(&mut self) -> Result<Option<ReplicationMessage<'_>>, Error> {
        if self.done {
            return Ok(None);
        }
        // Unsent bytes (a status update interrupted by cancellation) go out first.
        self.conn.flush().await?;
        let body = loop {
            let f = self.conn.next_message().await?;
            match f.tag {
                tag::COPY_DATA => break f.body,
                tag::COPY_DONE => {
                    // The server ended the stream: answer with our CopyDone (once).
                    if self.conn.state == (State::CopyBoth { client_done: false }) {
                        self.send_copy_done().await?;
                    }
                }
                // A timeline switch ends with a small result set, then CommandComplete.
                tag::COMMAND_COMPLETE | tag::ROW_DESCRIPTION | tag::DATA_ROW => {}
                tag::ERROR_RESPONSE => {
                    let e = self.conn.server_error(&f, "during replication");
                    self.error.get_or_insert(e);
                }
                tag::READY_FOR_QUERY => {
                    self.done = true;
                    self.conn.set_bulk_reads(false);
                    if matches!(self.conn.state, State::CopyBoth { .. }) {
                        self.conn.state = State::Idle;
                    }
                    return match self.error.take() {
                        Some(e) => Err(e),
                        None => Ok(None),
                    };
                }
                other => {
                    self.conn.state = State::Broken;
                    return Err(Error::protocol(format!(
                        "unexpected message '{}' during replication",
                        other.escape_ascii()
                    )));
                }
            }
        };
        let payload = self.conn.read_buf.get(body).unwrap_or_default();
        codec::parse_replication_message(payload)
            .map(Some)
            .map_err(|e| Error::protocol(format!("replication stream: {e}")))
    }

    /// Reports progress: LSNs written, flushed and applied; `clock` in microseconds since
    /// 2000-01-01 (see [`super::epoch::pg_clock_now`]); `reply_requested` asks for a keepalive back.
    pub async fn send_status_update(
        &mut self,
        write: Lsn,
        flush: Lsn,
        apply: Lsn,
        clock: i64,
        reply_requested: bool,
    ) -> Result<(), Error> {
        if self.done || self.conn.state != (State::CopyBoth { client_done: false }) {
            return Err(Error::Closed("the replication stream has ended".into()));
        }
        codec::encode_standby_status_update(
            self.conn.write_buf_mut(),
            write,
            flush,
            apply,
            clock,
            reply_requested,
        );
        self.conn.flush().await
    }

    /// Bulk reads on or off (see [`super::batched_read`]): with them, a read waits up to
    /// 2 ms for 128 KiB to arrive, so a fast stream wakes the reader (and makes the sending
    /// walsender wake it) once per many messages instead of once per few. For a backlog, not
    /// for a trickle of changes whose latency matters.
    pub(crate) fn set_bulk_reads(&mut self, on: bool) {
        self.conn.set_bulk_reads(on);
    }

    /// Ends the stream from our side; keep calling [`Self::next_message`] until `None` to read
    /// what the server still sends.
    pub async fn copy_done(&mut self) -> Result<(), Error> {
        if self.conn.state == (State::CopyBoth { client_done: false }) {
            self.send_copy_done().await?;
        }
        Ok(())
    }

    async fn send_copy_done(&mut self) -> Result<(), Error> {
        postgres_protocol::message::frontend::copy_done(self.conn.write_buf_mut());
        self.conn.state = State::CopyBoth { client_done: true };
        self.conn.flush().await
    }
}
