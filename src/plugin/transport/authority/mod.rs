//! The unix-socket `:authority` normaliser.
//!
//! For `registry: local` the CLI dials the plugin over a unix socket with grpc-go, which sends
//! `:authority = %2Ftmp%2Fcq-….sock`. h2 (under tonic) validates `:authority` with the `http`
//! crate, which rejects `%` in a host and resets every stream with PROTOCOL_ERROR. The fix lives
//! here, in the plugin's own transport: the client→server byte stream of an accepted unix
//! connection passes through [`AuthorityRewriter`], which
//!
//! - checks and forwards the 24-byte client preface;
//! - forwards every frame except HEADERS/CONTINUATION untouched (header and payload bytes as they
//!   arrive, so DATA is never buffered);
//! - collects each header block (HEADERS + CONTINUATION*, PADDED and PRIORITY stripped), decodes it
//!   with ONE HPACK decoder per connection (grpc-go indexes `:authority` on the first request and
//!   refers to it through the dynamic table afterwards), replaces `:authority` by `localhost`, and
//!   re-encodes every header as a literal without indexing and without Huffman coding, so h2's own
//!   HPACK table stays empty and the client's table-size updates can be dropped;
//! - re-frames the block as HEADERS (+ CONTINUATION when over 16,384 bytes, the smallest frame size
//!   every HTTP/2 peer accepts), keeping END_STREAM on HEADERS and END_HEADERS on the last frame.
//!
//! Server→client bytes are not touched (see [`super::AuthorityStream`]), so the Sync data path costs
//! nothing. The rewriter is a pure state machine (bytes in, bytes out, no I/O): it never panics, and
//! malformed input yields an [`AuthorityError`] after which the connection must be closed (every
//! later call fails too). It is unit-tested with byte streams recorded from the real CLI
//! (`tests/fixtures/grpc-go-headers/`) and fuzzed (`fuzz/fuzz_targets/authority.rs`).
//!
//! Parts: the state machine here (preface, frame boundaries, open header blocks); HTTP/2 frame
//! headers in [`frame`]; HPACK decoding and re-encoding of a whole block in [`hpack`].

mod frame;
mod hpack;

use loona_hpack::Decoder;

use frame::{
    strip_padding_and_priority, FrameHeader, FLAG_END_HEADERS, FLAG_END_STREAM, FRAME_HEADER_LEN,
    TYPE_CONTINUATION, TYPE_HEADERS, TYPE_PUSH_PROMISE,
};

/// The HTTP/2 client connection preface.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The `:authority` value h2 gets instead of the percent-encoded socket path.
pub const REPLACEMENT_AUTHORITY: &[u8] = b"localhost";
/// Largest frame payload written: 16,384 is the initial SETTINGS_MAX_FRAME_SIZE and its minimum.
pub const MAX_OUT_FRAME: usize = 16_384;
/// Largest header block (all HEADERS + CONTINUATION payloads of one block) accepted from a client.
pub(crate) const MAX_HEADER_BLOCK: usize = 1 << 20;
/// Largest re-encoded header block: dynamic-table references make a decoded block far larger than
/// its encoding (an "HPACK bomb"), so the output is bounded too.
pub(crate) const MAX_DECODED_BLOCK: usize = 1 << 20;
/// HPACK dynamic table size: h2's default SETTINGS_HEADER_TABLE_SIZE, which the client must honour.
pub(crate) const HPACK_TABLE_SIZE: usize = 4096;

/// Why a client byte stream was rejected; the connection is closed afterwards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorityError {
    #[error("the client did not start with the HTTP/2 connection preface")]
    BadPreface,
    #[error("{frame} frame on stream 0")]
    StreamZero { frame: &'static str },
    #[error("HEADERS frame on stream {stream}: padding of {pad} bytes exceeds its payload")]
    BadPadding { stream: u32, pad: usize },
    #[error("HEADERS frame on stream {stream}: PRIORITY flag but fewer than 5 payload bytes")]
    ShortPriority { stream: u32 },
    #[error(
        "expected CONTINUATION on stream {stream}, got frame type {frame_type:#x} on stream {got_stream}"
    )]
    ExpectedContinuation {
        stream: u32,
        frame_type: u8,
        got_stream: u32,
    },
    #[error("CONTINUATION on stream {stream} without an open header block")]
    UnexpectedContinuation { stream: u32 },
    #[error("header block on stream {stream} exceeds {MAX_HEADER_BLOCK} bytes")]
    HeaderBlockTooLarge { stream: u32 },
    #[error("decoded header block on stream {stream} exceeds {MAX_DECODED_BLOCK} bytes")]
    DecodedBlockTooLarge { stream: u32 },
    #[error("PUSH_PROMISE from a client on stream {stream}")]
    PushPromise { stream: u32 },
    #[error("HPACK decoding failed on stream {stream}: {detail}")]
    Hpack { stream: u32, detail: String },
    #[error("the connection already failed")]
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// This many bytes of the preface were seen.
    Preface(usize),
    /// At a frame boundary.
    FrameHeader,
    /// Inside the payload of a forwarded frame; this many bytes are left.
    Passthrough(usize),
}

struct OpenBlock {
    stream: u32,
    end_stream: bool,
    fragment: Vec<u8>,
}

/// Rewrites the client→server half of one HTTP/2 connection. See the module documentation.
pub struct AuthorityRewriter {
    decoder: Decoder<'static>,
    phase: Phase,
    /// Unconsumed input: at most one incomplete frame header or header frame.
    pending: Vec<u8>,
    open: Option<OpenBlock>,
    failed: bool,
}

impl Default for AuthorityRewriter {
    fn default() -> Self {
        Self::new()
    }
}

impl AuthorityRewriter {
    pub fn new() -> Self {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(HPACK_TABLE_SIZE);
        decoder.set_max_table_size(HPACK_TABLE_SIZE);
        AuthorityRewriter {
            decoder,
            phase: Phase::Preface(0),
            pending: Vec::new(),
            open: None,
            failed: false,
        }
    }

    /// Feeds bytes read from the client and appends what the server must see to `out`.
    ///
    /// Input may be split anywhere; output is the same however it is split. After an error the
    /// rewriter stays failed and the caller must close the connection.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), AuthorityError> {
        if self.failed {
            return Err(AuthorityError::Failed);
        }
        let result = self.feed_inner(data, out);
        if result.is_err() {
            self.failed = true;
            self.pending = Vec::new();
            self.open = None;
        }
        result
    }

    /// True when the input ended on a frame boundary with no header block open.
    pub fn at_boundary(&self) -> bool {
        self.phase == Phase::FrameHeader && self.pending.is_empty() && self.open.is_none()
    }

    fn feed_inner(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), AuthorityError> {
        // Fast path for payload bytes of forwarded frames: no buffering.
        let mut data = data;
        if self.pending.is_empty() {
            while let Phase::Passthrough(left) = self.phase {
                if data.is_empty() {
                    return Ok(());
                }
                let n = left.min(data.len());
                let (now, rest) = data.split_at(n);
                out.extend_from_slice(now);
                data = rest;
                self.phase = if left == n {
                    Phase::FrameHeader
                } else {
                    Phase::Passthrough(left - n)
                };
            }
        }
        let mut input = std::mem::take(&mut self.pending);
        input.extend_from_slice(data);
        let consumed = self.process(&input, out);
        // Keep the unconsumed tail (an incomplete frame) for the next call.
        if let Ok(n) = consumed {
            input.drain(..n.min(input.len()));
            self.pending = input;
        }
        consumed.map(|_| ())
    }

    /// Consumes as much of `input` as possible; returns how many bytes were consumed.
    fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, AuthorityError> {
        let mut pos = 0;
        loop {
            let rest = input.get(pos..).unwrap_or_default();
            match self.phase {
                Phase::Preface(seen) => {
                    let want = PREFACE.get(seen..).unwrap_or_default();
                    let n = want.len().min(rest.len());
                    if rest.get(..n) != want.get(..n) {
                        return Err(AuthorityError::BadPreface);
                    }
                    out.extend_from_slice(rest.get(..n).unwrap_or_default());
                    pos += n;
                    if seen + n < PREFACE.len() {
                        self.phase = Phase::Preface(seen + n);
                        return Ok(pos);
                    }
                    self.phase = Phase::FrameHeader;
                }
                Phase::Passthrough(left) => {
                    if rest.is_empty() {
                        return Ok(pos);
                    }
                    let n = left.min(rest.len());
                    out.extend_from_slice(rest.get(..n).unwrap_or_default());
                    pos += n;
                    self.phase = if left == n {
                        Phase::FrameHeader
                    } else {
                        Phase::Passthrough(left - n)
                    };
                }
                Phase::FrameHeader => {
                    let Some(header) = rest.get(..FRAME_HEADER_LEN) else {
                        return Ok(pos);
                    };
                    let frame = FrameHeader::parse(header);
                    if let Some(open) = &self.open {
                        if frame.kind != TYPE_CONTINUATION || frame.stream != open.stream {
                            return Err(AuthorityError::ExpectedContinuation {
                                stream: open.stream,
                                frame_type: frame.kind,
                                got_stream: frame.stream,
                            });
                        }
                    }
                    match frame.kind {
                        TYPE_HEADERS | TYPE_CONTINUATION => {
                            if frame.len > MAX_HEADER_BLOCK {
                                return Err(AuthorityError::HeaderBlockTooLarge {
                                    stream: frame.stream,
                                });
                            }
                            let Some(payload) =
                                rest.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + frame.len)
                            else {
                                return Ok(pos);
                            };
                            self.header_frame(&frame, payload, out)?;
                            pos += FRAME_HEADER_LEN + frame.len;
                        }
                        TYPE_PUSH_PROMISE => {
                            return Err(AuthorityError::PushPromise {
                                stream: frame.stream,
                            })
                        }
                        _ => {
                            out.extend_from_slice(header);
                            pos += FRAME_HEADER_LEN;
                            if frame.len > 0 {
                                self.phase = Phase::Passthrough(frame.len);
                            }
                        }
                    }
                }
            }
        }
    }

    fn header_frame(
        &mut self,
        frame: &FrameHeader,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), AuthorityError> {
        let stream = frame.stream;
        if stream == 0 {
            return Err(AuthorityError::StreamZero {
                frame: if frame.kind == TYPE_HEADERS {
                    "HEADERS"
                } else {
                    "CONTINUATION"
                },
            });
        }
        let end_headers = frame.flags & FLAG_END_HEADERS != 0;
        if frame.kind == TYPE_HEADERS {
            let fragment = strip_padding_and_priority(frame, payload)?;
            let end_stream = frame.flags & FLAG_END_STREAM != 0;
            if end_headers {
                self.emit_block(stream, end_stream, fragment, out)
            } else {
                self.open = Some(OpenBlock {
                    stream,
                    end_stream,
                    fragment: fragment.to_vec(),
                });
                Ok(())
            }
        } else {
            let Some(open) = self.open.as_mut() else {
                return Err(AuthorityError::UnexpectedContinuation { stream });
            };
            if open.fragment.len() + payload.len() > MAX_HEADER_BLOCK {
                return Err(AuthorityError::HeaderBlockTooLarge { stream });
            }
            open.fragment.extend_from_slice(payload);
            if end_headers {
                if let Some(block) = self.open.take() {
                    self.emit_block(block.stream, block.end_stream, &block.fragment, out)?;
                }
            }
            Ok(())
        }
    }

    /// Decodes one complete header block and writes it re-encoded and re-framed.
    fn emit_block(
        &mut self,
        stream: u32,
        end_stream: bool,
        fragment: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), AuthorityError> {
        let block = hpack::rewrite_block(&mut self.decoder, stream, fragment)?;
        frame::write_header_frames(stream, end_stream, &block, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
