//! Byte-like values: `"char"`, bytea (hex and escape formats), uuid.

use super::{err, hex_val};
use crate::decode::error::DecodeError;

/// `"char"`: charout prints the byte itself, nothing for `\0`, and (PostgreSQL ≥ 15) `\ooo` for
/// a byte with the high bit set. charsend always sends exactly one byte.
pub(super) fn parse_char(text: &[u8]) -> Result<u8, DecodeError> {
    match text {
        [] => Ok(0),
        [c] => Ok(*c),
        [b'\\', a, b, c] => octal3(*a, *b, *c).ok_or(err("\"char\" text", "\\ooo octal", 1)),
        _ => Err(err("\"char\" text", "one byte or \\ooo", 0)),
    }
}

fn octal3(a: u8, b: u8, c: u8) -> Option<u8> {
    let d = |x: u8| matches!(x, b'0'..=b'7').then(|| u32::from(x - b'0'));
    let v = d(a)? * 64 + d(b)? * 8 + d(c)?;
    u8::try_from(v).ok()
}

pub(super) fn parse_bytea(text: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    const WHAT: &str = "bytea text";
    if let Some(hex) = text.strip_prefix(b"\\x") {
        if hex.len() % 2 != 0 {
            return Err(err(
                WHAT,
                "an even number of hex digits after \\x",
                text.len(),
            ));
        }
        out.reserve(hex.len() / 2);
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            match (hex_val(pair[0]), hex_val(pair[1])) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err(err(WHAT, "hex digits after \\x", 2 + 2 * i)),
            }
        }
        return Ok(());
    }
    // Escape format (bytea_output = escape): `\\` is a backslash, `\ooo` an octal byte.
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        match text.get(i + 1..i + 4) {
            Some([b'\\', ..]) => {
                out.push(b'\\');
                i += 2;
            }
            Some(&[a, b, c]) => {
                let v = octal3(a, b, c).ok_or(err(WHAT, "\\\\ or \\ooo in escape format", i))?;
                out.push(v);
                i += 4;
            }
            _ => {
                if text.get(i + 1) == Some(&b'\\') {
                    out.push(b'\\');
                    i += 2;
                } else {
                    return Err(err(WHAT, "\\\\ or \\ooo in escape format", i));
                }
            }
        }
    }
    Ok(())
}

pub(super) fn parse_uuid(text: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    const WHAT: &str = "uuid text";
    // uuid_out: 8-4-4-4-12 lower-case hex digits.
    if text.len() != 36 {
        return Err(err(WHAT, "36 characters (8-4-4-4-12 hex digits)", 0));
    }
    let mut nibbles = Vec::with_capacity(32);
    for (i, &b) in text.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b != b'-' {
                return Err(err(WHAT, "'-' between the groups", i));
            }
        } else {
            nibbles.push(hex_val(b).ok_or(err(WHAT, "hex digits", i))?);
        }
    }
    out.extend(nibbles.chunks_exact(2).map(|p| p[0] << 4 | p[1]));
    Ok(())
}
