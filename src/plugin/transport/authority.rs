//! The unix-socket `:authority` normaliser (reference `cloudquery-protocol.md` §0).
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

use loona_hpack::Decoder;

/// The HTTP/2 client connection preface.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The `:authority` value h2 gets instead of the percent-encoded socket path.
pub const REPLACEMENT_AUTHORITY: &[u8] = b"localhost";
/// Largest frame payload written: 16,384 is the initial SETTINGS_MAX_FRAME_SIZE and its minimum.
pub const MAX_OUT_FRAME: usize = 16_384;
/// Largest header block (all HEADERS + CONTINUATION payloads of one block) accepted from a client.
pub const MAX_HEADER_BLOCK: usize = 1 << 20;
/// Largest re-encoded header block: dynamic-table references make a decoded block far larger than
/// its encoding (an "HPACK bomb"), so the output is bounded too.
pub const MAX_DECODED_BLOCK: usize = 1 << 20;
/// HPACK dynamic table size: h2's default SETTINGS_HEADER_TABLE_SIZE, which the client must honour.
pub const HPACK_TABLE_SIZE: usize = 4096;

const FRAME_HEADER_LEN: usize = 9;
const TYPE_HEADERS: u8 = 0x1;
const TYPE_PUSH_PROMISE: u8 = 0x5;
const TYPE_CONTINUATION: u8 = 0x9;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

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
        let mut block = Vec::with_capacity(fragment.len() + fragment.len() / 2 + 16);
        let mut too_large = false;
        self.decoder
            .decode_with_cb(fragment, |name, value| {
                // Keep decoding (the HPACK table must stay in step) but stop writing.
                if too_large || block.len() + name.len() + value.len() > MAX_DECODED_BLOCK {
                    too_large = true;
                    return;
                }
                let value: &[u8] = if name.as_ref() == b":authority" {
                    REPLACEMENT_AUTHORITY
                } else {
                    value.as_ref()
                };
                encode_literal_without_indexing(&mut block, name.as_ref(), value);
            })
            .map_err(|e| AuthorityError::Hpack {
                stream,
                detail: e.to_string(),
            })?;
        if too_large {
            return Err(AuthorityError::DecodedBlockTooLarge { stream });
        }
        write_header_frames(stream, end_stream, &block, out);
        Ok(())
    }
}

struct FrameHeader {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

impl FrameHeader {
    /// `bytes` holds at least the 9 header bytes.
    fn parse(bytes: &[u8]) -> FrameHeader {
        let b = |i: usize| bytes.get(i).copied().unwrap_or(0);
        FrameHeader {
            len: (usize::from(b(0)) << 16) | (usize::from(b(1)) << 8) | usize::from(b(2)),
            kind: b(3),
            flags: b(4),
            stream: u32::from_be_bytes([b(5) & 0x7f, b(6), b(7), b(8)]),
        }
    }
}

/// The header block fragment of a HEADERS payload, without pad length, priority and padding.
fn strip_padding_and_priority<'a>(
    frame: &FrameHeader,
    payload: &'a [u8],
) -> Result<&'a [u8], AuthorityError> {
    let stream = frame.stream;
    let mut body = payload;
    let mut pad = 0usize;
    if frame.flags & FLAG_PADDED != 0 {
        let Some((&len, rest)) = body.split_first() else {
            return Err(AuthorityError::BadPadding { stream, pad: 1 });
        };
        pad = usize::from(len);
        body = rest;
    }
    if frame.flags & FLAG_PRIORITY != 0 {
        body = body
            .get(5..)
            .ok_or(AuthorityError::ShortPriority { stream })?;
    }
    let keep = body
        .len()
        .checked_sub(pad)
        .ok_or(AuthorityError::BadPadding { stream, pad })?;
    Ok(body.get(..keep).unwrap_or_default())
}

/// HPACK integer (RFC 7541 §5.1) with an `prefix_bits`-bit prefix; `first` holds the high bits.
fn encode_integer(out: &mut Vec<u8>, value: usize, prefix_bits: u32, first: u8) {
    let max_prefix = (1usize << prefix_bits) - 1;
    if value < max_prefix {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max_prefix as u8);
    let mut rest = value - max_prefix;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// "Literal Header Field without Indexing — New Name" (RFC 7541 §6.2.2), no Huffman coding.
fn encode_literal_without_indexing(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    encode_integer(out, name.len(), 7, 0);
    out.extend_from_slice(name);
    encode_integer(out, value.len(), 7, 0);
    out.extend_from_slice(value);
}

fn write_frame_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    // `len` <= MAX_OUT_FRAME, so it fits the 24-bit length field.
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
}

/// HEADERS (+ CONTINUATION) frames carrying `block`, each payload at most [`MAX_OUT_FRAME`].
fn write_header_frames(stream: u32, end_stream: bool, block: &[u8], out: &mut Vec<u8>) {
    let mut chunks = block.chunks(MAX_OUT_FRAME).peekable();
    let first = chunks.next().unwrap_or_default();
    let mut flags = if end_stream { FLAG_END_STREAM } else { 0 };
    if chunks.peek().is_none() {
        flags |= FLAG_END_HEADERS;
    }
    write_frame_header(out, first.len(), TYPE_HEADERS, flags, stream);
    out.extend_from_slice(first);
    while let Some(chunk) = chunks.next() {
        let flags = if chunks.peek().is_none() {
            FLAG_END_HEADERS
        } else {
            0
        };
        write_frame_header(out, chunk.len(), TYPE_CONTINUATION, flags, stream);
        out.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &[(&str, &[u8])] = &[
        (
            "sync-source",
            include_bytes!("../../../tests/fixtures/grpc-go-headers/sync-source.bin"),
        ),
        (
            "sync-destination",
            include_bytes!("../../../tests/fixtures/grpc-go-headers/sync-destination.bin"),
        ),
        (
            "tables-source",
            include_bytes!("../../../tests/fixtures/grpc-go-headers/tables-source.bin"),
        ),
        (
            "test-connection-source",
            include_bytes!("../../../tests/fixtures/grpc-go-headers/test-connection-source.bin"),
        ),
        (
            "validate-config-source",
            include_bytes!("../../../tests/fixtures/grpc-go-headers/validate-config-source.bin"),
        ),
    ];

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Frame {
        kind: u8,
        flags: u8,
        stream: u32,
        payload: Vec<u8>,
    }

    /// Splits a client byte stream (after the preface) into frames; test-only, panics on junk.
    fn frames(bytes: &[u8]) -> Vec<Frame> {
        assert_eq!(&bytes[..24], PREFACE);
        let mut pos = 24;
        let mut frames = Vec::new();
        while pos < bytes.len() {
            let h = FrameHeader::parse(&bytes[pos..pos + 9]);
            frames.push(Frame {
                kind: h.kind,
                flags: h.flags,
                stream: h.stream,
                payload: bytes[pos + 9..pos + 9 + h.len].to_vec(),
            });
            pos += 9 + h.len;
        }
        assert_eq!(pos, bytes.len(), "trailing partial frame");
        frames
    }

    /// Frames with each header block reassembled (HEADERS flags without PADDED/PRIORITY) and
    /// decoded with one connection-wide decoder.
    #[derive(Debug, PartialEq, Eq)]
    enum Item {
        Headers {
            stream: u32,
            end_stream: bool,
            headers: Vec<(Vec<u8>, Vec<u8>)>,
        },
        Other(Frame),
    }

    fn items(bytes: &[u8]) -> Vec<Item> {
        let mut decoder = Decoder::new();
        let mut items = Vec::new();
        let mut open: Option<(u32, bool, Vec<u8>)> = None;
        for f in frames(bytes) {
            match f.kind {
                TYPE_HEADERS => {
                    let h = FrameHeader {
                        len: f.payload.len(),
                        kind: f.kind,
                        flags: f.flags,
                        stream: f.stream,
                    };
                    let frag = strip_padding_and_priority(&h, &f.payload).unwrap().to_vec();
                    open = Some((f.stream, f.flags & FLAG_END_STREAM != 0, frag));
                }
                TYPE_CONTINUATION => open.as_mut().unwrap().2.extend_from_slice(&f.payload),
                _ => {
                    items.push(Item::Other(f));
                    continue;
                }
            }
            if f.flags & FLAG_END_HEADERS != 0 {
                let (stream, end_stream, frag) = open.take().unwrap();
                items.push(Item::Headers {
                    stream,
                    end_stream,
                    headers: decoder.decode(&frag).unwrap(),
                });
            }
        }
        items
    }

    fn rewrite(input: &[u8]) -> Result<Vec<u8>, AuthorityError> {
        let mut rw = AuthorityRewriter::new();
        let mut out = Vec::new();
        rw.feed(input, &mut out)?;
        assert!(rw.at_boundary());
        Ok(out)
    }

    fn rewrite_in_chunks(input: &[u8], chunk: usize) -> Vec<u8> {
        let mut rw = AuthorityRewriter::new();
        let mut out = Vec::new();
        for c in input.chunks(chunk) {
            rw.feed(c, &mut out).unwrap();
        }
        assert!(rw.at_boundary());
        out
    }

    fn with_localhost(items: Vec<Item>) -> Vec<Item> {
        items
            .into_iter()
            .map(|item| match item {
                Item::Headers {
                    stream,
                    end_stream,
                    headers,
                } => Item::Headers {
                    stream,
                    end_stream,
                    headers: headers
                        .into_iter()
                        .map(|(n, v)| {
                            if n == b":authority" {
                                (n, REPLACEMENT_AUTHORITY.to_vec())
                            } else {
                                (n, v)
                            }
                        })
                        .collect(),
                },
                other => other,
            })
            .collect()
    }

    #[test]
    fn recorded_cli_streams_get_localhost_and_keep_everything_else() {
        for (name, bytes) in FIXTURES {
            let out = rewrite(bytes).unwrap();
            let before = items(bytes);
            let after = items(&out);
            let header_blocks = before
                .iter()
                .filter(|i| matches!(i, Item::Headers { .. }))
                .count();
            assert!(header_blocks >= 1, "{name}");
            assert_eq!(after, with_localhost(before), "{name}");
            // Every rewritten header is a literal without indexing with a new name, no Huffman.
            for f in frames(&out) {
                if f.kind == TYPE_HEADERS {
                    assert_eq!(f.flags & (FLAG_PADDED | FLAG_PRIORITY), 0);
                    assert_eq!(f.payload[0], 0x00, "{name}");
                }
            }
        }
    }

    #[test]
    fn recorded_second_rpc_needs_the_connection_decoder() {
        // In the recorded sync, the Init request's :authority is a dynamic-table reference
        // (index 62+) to the GetVersions request's literal: a fresh decoder cannot read it.
        let bytes = FIXTURES[0].1;
        let headers: Vec<Frame> = frames(bytes)
            .into_iter()
            .filter(|f| f.kind == TYPE_HEADERS)
            .collect();
        assert!(headers.len() >= 2);
        assert!(Decoder::new().decode(&headers[1].payload).is_err());
        let out = rewrite(bytes).unwrap();
        let out_headers: Vec<Frame> = frames(&out)
            .into_iter()
            .filter(|f| f.kind == TYPE_HEADERS)
            .collect();
        // The rewritten blocks stand alone: h2 can decode each with an empty table.
        for f in &out_headers {
            let decoded = Decoder::new().decode(&f.payload).unwrap();
            let authority: Vec<_> = decoded.iter().filter(|(n, _)| n == b":authority").collect();
            assert_eq!(authority.len(), 1);
            assert_eq!(authority[0].1, REPLACEMENT_AUTHORITY);
        }
        assert_eq!(out_headers.len(), headers.len());
    }

    #[test]
    fn output_does_not_depend_on_how_input_is_split() {
        for (name, bytes) in FIXTURES {
            let whole = rewrite(bytes).unwrap();
            for chunk in [1, 2, 7, 9, 10, 24, 33, 100] {
                assert_eq!(
                    rewrite_in_chunks(bytes, chunk),
                    whole,
                    "{name} chunk {chunk}"
                );
            }
        }
    }

    #[test]
    fn non_header_frames_pass_through_byte_for_byte() {
        let bytes = FIXTURES[1].1;
        let out = rewrite(bytes).unwrap();
        let keep = |v: Vec<Frame>| -> Vec<Frame> {
            v.into_iter()
                .filter(|f| f.kind != TYPE_HEADERS && f.kind != TYPE_CONTINUATION)
                .collect()
        };
        let before = keep(frames(bytes));
        assert!(before.iter().any(|f| f.kind == 0 && !f.payload.is_empty()));
        assert_eq!(keep(frames(&out)), before);
    }

    fn frame_bytes(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        write_frame_header(&mut v, payload.len(), kind, flags, stream);
        v.extend_from_slice(payload);
        v
    }

    /// The first recorded header block (GetVersions) and the bytes that follow the preface before it.
    fn first_block() -> (Vec<u8>, Vec<u8>) {
        let bytes = FIXTURES[0].1;
        let fs = frames(bytes);
        let idx = fs.iter().position(|f| f.kind == TYPE_HEADERS).unwrap();
        let mut prefix = PREFACE.to_vec();
        for f in &fs[..idx] {
            prefix.extend(frame_bytes(f.kind, f.flags, f.stream, &f.payload));
        }
        (prefix, fs[idx].payload.clone())
    }

    #[test]
    fn continuation_padding_and_priority_are_reassembled() {
        let (prefix, block) = first_block();
        let mut single = prefix.clone();
        single.extend(frame_bytes(
            TYPE_HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            1,
            &block,
        ));
        let expected = rewrite(&single).unwrap();

        // HEADERS(PADDED|PRIORITY|END_STREAM, 3 pad bytes) + CONTINUATION + CONTINUATION(END_HEADERS).
        let (a, rest) = block.split_at(10);
        let (b, c) = rest.split_at(50);
        let mut payload = vec![3u8];
        payload.extend([0x80, 0, 0, 0, 16]); // exclusive dependency on stream 0, weight 16
        payload.extend_from_slice(a);
        payload.extend([0, 0, 0]);
        let mut split = prefix;
        split.extend(frame_bytes(
            TYPE_HEADERS,
            FLAG_PADDED | FLAG_PRIORITY | FLAG_END_STREAM,
            1,
            &payload,
        ));
        split.extend(frame_bytes(TYPE_CONTINUATION, 0, 1, b));
        split.extend(frame_bytes(TYPE_CONTINUATION, FLAG_END_HEADERS, 1, c));
        assert_eq!(rewrite(&split).unwrap(), expected);
        for chunk in [1, 5, 11] {
            assert_eq!(rewrite_in_chunks(&split, chunk), expected);
        }
        let f = frames(&expected);
        let h = f.iter().find(|f| f.kind == TYPE_HEADERS).unwrap();
        assert_eq!(h.flags, FLAG_END_HEADERS | FLAG_END_STREAM);
    }

    #[test]
    fn large_blocks_are_split_into_continuations() {
        let mut block = Vec::new();
        encode_literal_without_indexing(&mut block, b":authority", b"%2Ftmp%2Fx.sock");
        for i in 0..5 {
            encode_literal_without_indexing(
                &mut block,
                format!("x-big-{i}").as_bytes(),
                &vec![b'a' + i as u8; 10_000],
            );
        }
        let mut input = PREFACE.to_vec();
        input.extend(frame_bytes(
            TYPE_HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            5,
            &block,
        ));
        let out = rewrite(&input).unwrap();
        let fs = frames(&out);
        assert_eq!(fs.len(), 4, "50 KB block → HEADERS + 3 CONTINUATION");
        assert_eq!(fs[0].kind, TYPE_HEADERS);
        assert_eq!(fs[0].flags, FLAG_END_STREAM);
        assert!(fs[1..3]
            .iter()
            .all(|f| f.kind == TYPE_CONTINUATION && f.flags == 0));
        assert_eq!(fs[3].flags, FLAG_END_HEADERS);
        assert!(fs
            .iter()
            .all(|f| f.payload.len() <= MAX_OUT_FRAME && f.stream == 5));
        let Item::Headers { headers, .. } = &items(&out)[0] else {
            panic!("no header block")
        };
        assert_eq!(headers.len(), 6);
        assert_eq!(headers[0], (b":authority".to_vec(), b"localhost".to_vec()));
        assert_eq!(headers[5].1, vec![b'e'; 10_000]);
    }

    #[test]
    fn empty_header_block_and_trailers() {
        let mut input = PREFACE.to_vec();
        input.extend(frame_bytes(TYPE_HEADERS, FLAG_END_HEADERS, 1, &[]));
        // Trailers without :authority stay as they are (re-encoded).
        let mut trailer = Vec::new();
        encode_literal_without_indexing(&mut trailer, b"grpc-status", b"0");
        input.extend(frame_bytes(
            TYPE_HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            1,
            &trailer,
        ));
        let out = rewrite(&input).unwrap();
        assert_eq!(out, input);
    }

    fn error_of(input: &[u8]) -> AuthorityError {
        let mut rw = AuthorityRewriter::new();
        let mut out = Vec::new();
        let err = rw.feed(input, &mut out).unwrap_err();
        assert_eq!(rw.feed(b"", &mut out), Err(AuthorityError::Failed));
        err
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert_eq!(error_of(b"GET / HTTP/1.1\r\n"), AuthorityError::BadPreface);
        let p = PREFACE.to_vec();
        let with = |frames: &[Vec<u8>]| -> Vec<u8> {
            let mut v = p.clone();
            for f in frames {
                v.extend_from_slice(f);
            }
            v
        };
        let hdr = frame_bytes(TYPE_HEADERS, FLAG_END_HEADERS, 0, &[0x82]);
        assert!(matches!(
            error_of(&with(&[hdr])),
            AuthorityError::StreamZero { .. }
        ));
        let cont = frame_bytes(TYPE_CONTINUATION, FLAG_END_HEADERS, 1, &[0x82]);
        assert_eq!(
            error_of(&with(&[cont])),
            AuthorityError::UnexpectedContinuation { stream: 1 }
        );
        let open = frame_bytes(TYPE_HEADERS, 0, 1, &[0x82]);
        let data = frame_bytes(0, 0, 1, b"x");
        assert!(matches!(
            error_of(&with(&[open.clone(), data])),
            AuthorityError::ExpectedContinuation {
                stream: 1,
                frame_type: 0,
                ..
            }
        ));
        let other = frame_bytes(TYPE_CONTINUATION, FLAG_END_HEADERS, 3, &[0x82]);
        assert!(matches!(
            error_of(&with(&[open, other])),
            AuthorityError::ExpectedContinuation { got_stream: 3, .. }
        ));
        let pad = frame_bytes(TYPE_HEADERS, FLAG_END_HEADERS | FLAG_PADDED, 1, &[9, 0x82]);
        assert!(matches!(
            error_of(&with(&[pad])),
            AuthorityError::BadPadding { .. }
        ));
        let prio = frame_bytes(TYPE_HEADERS, FLAG_END_HEADERS | FLAG_PRIORITY, 1, &[0, 0]);
        assert!(matches!(
            error_of(&with(&[prio])),
            AuthorityError::ShortPriority { .. }
        ));
        // Index 200 is past the static table and the (empty) dynamic table.
        let bad_index = frame_bytes(TYPE_HEADERS, FLAG_END_HEADERS, 1, &[0xff, 0x49]);
        assert!(matches!(
            error_of(&with(&[bad_index])),
            AuthorityError::Hpack { stream: 1, .. }
        ));
        // A table-size update above 4096.
        let resize = frame_bytes(TYPE_HEADERS, FLAG_END_HEADERS, 1, &[0x3f, 0xe1, 0x3f, 0x82]);
        assert!(matches!(
            error_of(&with(&[resize])),
            AuthorityError::Hpack { .. }
        ));
        let push = frame_bytes(TYPE_PUSH_PROMISE, FLAG_END_HEADERS, 1, &[0, 0, 0, 2]);
        assert!(matches!(
            error_of(&with(&[push])),
            AuthorityError::PushPromise { .. }
        ));
        // HPACK bomb: one 4000-byte header indexed once, then referenced 300 times (1.2 MB).
        let mut bomb = vec![0x40, 0x01, b'x', 0x7f];
        let mut len_bytes = Vec::new();
        encode_integer(&mut len_bytes, 4000, 7, 0);
        bomb.truncate(3);
        bomb.extend(len_bytes);
        bomb.extend(vec![b'v'; 4000]);
        bomb.extend(std::iter::repeat_n(0xbe, 300)); // index 62: the entry just added
        let bomb = frame_bytes(TYPE_HEADERS, FLAG_END_HEADERS, 1, &bomb);
        assert!(matches!(
            error_of(&with(&[bomb])),
            AuthorityError::DecodedBlockTooLarge { stream: 1 }
        ));
        let mut huge = p.clone();
        huge.extend([0x10, 0x00, 0x01, TYPE_HEADERS, 0, 0, 0, 0, 1]);
        assert!(matches!(
            error_of(&huge),
            AuthorityError::HeaderBlockTooLarge { .. }
        ));
    }

    /// A cheap deterministic fuzz run for every `cargo test` (the libFuzzer target goes further):
    /// mutated recordings never panic, and chunking never changes the result.
    #[test]
    fn mutated_recordings_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..4000 {
            let (_, base) = FIXTURES[round % FIXTURES.len()];
            let mut input = base.to_vec();
            for _ in 0..(1 + next() % 4) {
                let i = 24 + (next() as usize) % (input.len() - 24);
                match next() % 3 {
                    0 => input[i] = next() as u8,
                    1 => input[i] ^= 1 << (next() % 8),
                    _ => {
                        let cut = i + (next() as usize % 16).min(input.len() - i);
                        input.drain(i..cut);
                    }
                }
                if input.len() <= 25 {
                    break;
                }
            }
            let chunk = 1 + (next() as usize) % 64;
            let mut whole_rw = AuthorityRewriter::new();
            let mut whole = Vec::new();
            let whole_result = whole_rw.feed(&input, &mut whole);
            let mut rw = AuthorityRewriter::new();
            let mut chunked = Vec::new();
            let mut chunked_result = Ok(());
            for c in input.chunks(chunk) {
                chunked_result = rw.feed(c, &mut chunked);
                if chunked_result.is_err() {
                    break;
                }
            }
            assert_eq!(
                whole_result.is_ok(),
                chunked_result.is_ok(),
                "round {round}"
            );
            if whole_result.is_ok() {
                assert_eq!(whole, chunked, "round {round}");
            }
        }
    }

    #[test]
    fn integers_round_trip_through_the_hpack_decoder() {
        for len in [0usize, 1, 126, 127, 128, 255, 16_383, 100_000] {
            let mut block = Vec::new();
            let value = vec![b'v'; len];
            encode_literal_without_indexing(&mut block, b"x-len", &value);
            let decoded = Decoder::new().decode(&block).unwrap();
            assert_eq!(decoded, vec![(b"x-len".to_vec(), value)]);
        }
    }
}
