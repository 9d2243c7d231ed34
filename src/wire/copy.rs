//! `COPY … TO STDOUT`: CopyData payloads handed out in place, borrowed from the connection's read
//! buffer, so a decoder consumes each row frame without a copy or an allocation.

use super::codec::tag;
use super::connection::{Connection, State};
use super::error::Error;

/// A running COPY TO STDOUT. Dropping it early is allowed: the next call on the connection reads
/// the rest of the COPY and discards it.
pub struct CopyOut<'a> {
    conn: &'a mut Connection,
    done: bool,
    error: Option<Error>,
    tag: Option<String>,
}

impl Connection {
    /// Starts `sql` (a `COPY … TO STDOUT …`) and returns the stream of its CopyData payloads.
    pub async fn copy_out(&mut self, sql: &str) -> Result<CopyOut<'_>, Error> {
        self.start_copy(sql, tag::COPY_OUT_RESPONSE).await?;
        self.set_bulk_reads(true);
        Ok(CopyOut {
            conn: self,
            done: false,
            error: None,
            tag: None,
        })
    }
}

impl CopyOut<'_> {
    /// The next CopyData payload, borrowed from the read buffer until the next call; `None` after
    /// CopyDone, CommandComplete and ReadyForQuery. Cancel-safe.
    pub async fn next_frame(&mut self) -> Result<Option<&[u8]>, Error> {
        if self.done {
            return Ok(None);
        }
        let body = loop {
            let f = self.conn.next_message().await?;
            match f.tag {
                tag::COPY_DATA => break f.body,
                tag::COPY_DONE => {}
                tag::COMMAND_COMPLETE => {
                    let t = super::codec::parse_command_complete(self.conn.body(&f))
                        .unwrap_or_default()
                        .to_string();
                    self.tag = Some(t);
                }
                tag::ERROR_RESPONSE => {
                    let e = self.conn.server_error(&f, "during COPY TO STDOUT");
                    self.error.get_or_insert(e);
                }
                tag::READY_FOR_QUERY => {
                    self.done = true;
                    self.conn.set_bulk_reads(false);
                    if self.conn.state == State::CopyOut {
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
                        "unexpected message '{}' during COPY TO STDOUT",
                        other.escape_ascii()
                    )));
                }
            }
        };
        Ok(self.conn.read_buf.get(body))
    }

    /// The next CopyData payload if it is already in the read buffer (no I/O, no await), else
    /// `None`: then [`Self::next_frame`] reads more or handles the end of the stream. A COPY
    /// arrives as one message per row, so a reader that drains the buffer with this first spends
    /// its awaits on socket reads, not on rows.
    pub(crate) fn next_buffered(&mut self) -> Option<&[u8]> {
        if self.done {
            return None;
        }
        let f = self.conn.buffered_frame(tag::COPY_DATA)?;
        self.conn.read_buf.get(f.body)
    }

    /// The CommandComplete tag (`COPY n`) once the stream has ended.
    pub fn command_tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// Rows copied, from the command tag, once the stream has ended.
    pub fn rows(&self) -> Option<u64> {
        self.tag.as_deref()?.strip_prefix("COPY ")?.parse().ok()
    }

    /// A cancel token for the connection (to stop a long COPY from elsewhere).
    pub fn cancel_token(&self) -> super::connection::CancelToken {
        self.conn.cancel_token()
    }
}
