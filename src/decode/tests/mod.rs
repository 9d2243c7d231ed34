//! Decoder tests. Expected values are PostgreSQL's own: the hex encodings below were produced by
//! PostgreSQL 15 itself (`encode(<type>_send(v), 'hex')`, `COPY … (FORMAT binary)`) next to the
//! text it prints for the same value (`v::text`), or are hand-built from the documented send
//! formats of known constants.

mod bench;
mod copy_binary;
mod numeric_inet;
mod pgoutput;
mod readers;

/// Bytes from a hex string (test constants only).
pub(super) fn hex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}
