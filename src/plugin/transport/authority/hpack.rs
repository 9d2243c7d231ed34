//! HPACK (RFC 7541) for one header block: decoded with the connection's decoder (whose dynamic
//! table must follow every block), `:authority` replaced, every header re-encoded as a literal
//! without indexing and without Huffman coding.

use loona_hpack::Decoder;

use super::{AuthorityError, MAX_DECODED_BLOCK, REPLACEMENT_AUTHORITY};

/// The block `fragment` of `stream` decoded and re-encoded, `:authority` replaced.
pub(super) fn rewrite_block(
    decoder: &mut Decoder<'static>,
    stream: u32,
    fragment: &[u8],
) -> Result<Vec<u8>, AuthorityError> {
    let mut block = Vec::with_capacity(fragment.len() + fragment.len() / 2 + 16);
    let mut too_large = false;
    decoder
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
    Ok(block)
}

/// HPACK integer (RFC 7541 §5.1) with an `prefix_bits`-bit prefix; `first` holds the high bits.
pub(super) fn encode_integer(out: &mut Vec<u8>, value: usize, prefix_bits: u32, first: u8) {
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
pub(super) fn encode_literal_without_indexing(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    encode_integer(out, name.len(), 7, 0);
    out.extend_from_slice(name);
    encode_integer(out, value.len(), 7, 0);
    out.extend_from_slice(value);
}
