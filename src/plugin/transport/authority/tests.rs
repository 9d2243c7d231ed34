//! Unit tests of the rewriter, with byte streams recorded from the real CLI.

use super::frame::*;
use super::hpack::*;
use super::*;

const FIXTURES: &[(&str, &[u8])] = &[
    (
        "sync-source",
        include_bytes!("../../../../tests/fixtures/grpc-go-headers/sync-source.bin"),
    ),
    (
        "sync-destination",
        include_bytes!("../../../../tests/fixtures/grpc-go-headers/sync-destination.bin"),
    ),
    (
        "tables-source",
        include_bytes!("../../../../tests/fixtures/grpc-go-headers/tables-source.bin"),
    ),
    (
        "test-connection-source",
        include_bytes!("../../../../tests/fixtures/grpc-go-headers/test-connection-source.bin"),
    ),
    (
        "validate-config-source",
        include_bytes!("../../../../tests/fixtures/grpc-go-headers/validate-config-source.bin"),
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
