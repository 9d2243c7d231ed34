//! Fuzzes the unix-socket `:authority` normaliser (src/plugin/transport/authority.rs).
//!
//! The input is the client byte stream after the HTTP/2 preface (prepended here so the fuzzer
//! does not spend its time on the preface check), fed in chunks whose sizes come from the first
//! byte. Checked: no panic; the output does not depend on the chunking; a successful rewrite parses
//! back into well-formed frames whose header blocks are plain literals with `:authority: localhost`.
#![no_main]

use cq_source_postgresql::plugin::transport::authority::{
    AuthorityRewriter, MAX_OUT_FRAME, PREFACE, REPLACEMENT_AUTHORITY,
};
use libfuzzer_sys::fuzz_target;

/// HPACK integer with a 7-bit prefix (the only form the rewriter writes).
fn int7(b: &[u8], pos: &mut usize) -> usize {
    let first = usize::from(b[*pos] & 0x7f);
    *pos += 1;
    if first < 0x7f {
        return first;
    }
    let (mut value, mut shift) = (first, 0);
    loop {
        let byte = b[*pos];
        *pos += 1;
        value += usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return value;
        }
    }
}

/// A rewritten single-frame header block is nothing but literals without indexing, new names,
/// no Huffman; `:authority`, if present, is `localhost`.
fn check_literal_block(block: &[u8]) {
    let mut pos = 0;
    while pos < block.len() {
        assert_eq!(block[pos], 0x00, "literal without indexing, new name");
        pos += 1;
        assert_eq!(block[pos] & 0x80, 0, "no Huffman");
        let n = int7(block, &mut pos);
        let name = &block[pos..pos + n];
        pos += n;
        assert_eq!(block[pos] & 0x80, 0, "no Huffman");
        let v = int7(block, &mut pos);
        let value = &block[pos..pos + v];
        pos += v;
        if name == b":authority" {
            assert_eq!(value, REPLACEMENT_AUTHORITY);
        }
    }
}

fn run(input: &[u8], chunk: usize) -> (Result<(), ()>, Vec<u8>) {
    let mut rw = AuthorityRewriter::new();
    let mut out = Vec::new();
    for c in input.chunks(chunk.max(1)) {
        if rw.feed(c, &mut out).is_err() {
            return (Err(()), out);
        }
    }
    (Ok(()), out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, body)) = data.split_first() else {
        return;
    };
    let mut input = PREFACE.to_vec();
    input.extend_from_slice(body);
    let (whole_result, whole) = run(&input, input.len());
    let (chunked_result, chunked) = run(&input, usize::from(chunk));
    assert_eq!(whole_result, chunked_result);
    if whole_result.is_err() {
        return;
    }
    assert_eq!(whole, chunked);
    // Re-parse what h2 would see.
    let mut pos = PREFACE.len();
    while let Some(h) = whole.get(pos..pos + 9) {
        let len = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
        let Some(payload) = whole.get(pos + 9..pos + 9 + len) else {
            break; // a forwarded frame that is still incomplete
        };
        if h[3] == 0x1 || h[3] == 0x9 {
            assert!(len <= MAX_OUT_FRAME);
            assert_eq!(h[4] & 0x28, 0, "PADDED/PRIORITY must be stripped");
            if h[3] == 0x1 && h[4] & 0x4 != 0 {
                check_literal_block(payload);
            }
        }
        pos += 9 + len;
    }
});
