//! Network addresses: inet/cidr and macaddr/macaddr8.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{err, hex_val, utf8};
use crate::decode::error::DecodeError;
use crate::decode::inet::{PGSQL_AF_INET, PGSQL_AF_INET6};

pub(super) fn parse_inet(text: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    const WHAT: &str = "inet text";
    let s = utf8(text, WHAT)?;
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => {
            let bits: u8 = b
                .parse()
                .map_err(|_| err(WHAT, "a prefix length after '/'", a.len() + 1))?;
            (a, Some(bits))
        }
        None => (s, None),
    };
    if addr.contains(':') {
        let ip: Ipv6Addr = addr.parse().map_err(|_| err(WHAT, "an IPv6 address", 0))?;
        let bits = bits.unwrap_or(128);
        if bits > 128 {
            return Err(err(WHAT, "a prefix length of at most 128", addr.len() + 1));
        }
        out.extend_from_slice(&[PGSQL_AF_INET6, bits, 0, 16]);
        out.extend_from_slice(&ip.octets());
    } else {
        let ip: Ipv4Addr = addr.parse().map_err(|_| err(WHAT, "an IPv4 address", 0))?;
        let bits = bits.unwrap_or(32);
        if bits > 32 {
            return Err(err(WHAT, "a prefix length of at most 32", addr.len() + 1));
        }
        out.extend_from_slice(&[PGSQL_AF_INET, bits, 0, 4]);
        out.extend_from_slice(&ip.octets());
    }
    Ok(())
}

pub(super) fn parse_mac<const N: usize>(
    text: &[u8],
    what: &'static str,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    // macaddr_out / macaddr8_out: two lower-case hex digits per byte, ':' between them.
    if text.len() != N * 3 - 1 {
        return Err(err(what, "hex byte pairs separated by ':'", 0));
    }
    for i in 0..N {
        let p = i * 3;
        if i > 0 && !matches!(text[p - 1], b':' | b'-') {
            return Err(err(what, "':' between the bytes", p - 1));
        }
        match (hex_val(text[p]), hex_val(text[p + 1])) {
            (Some(h), Some(l)) => out.push(h << 4 | l),
            _ => return Err(err(what, "hex digits", p)),
        }
    }
    Ok(())
}
