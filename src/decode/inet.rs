//! `inet`/`cidr` binary (inet_send) → text `address/bits`.
//!
//! Wire form: u8 family (2 = PGSQL_AF_INET, 3 = PGSQL_AF_INET6), u8 bits, u8 is_cidr, u8 nb
//! (address length, 4 or 16), then nb address bytes. The address is printed as PostgreSQL's
//! pg_inet_net_ntop prints it: IPv4 as four decimal octets, IPv6 lowercase hex with the first
//! longest run (≥ 2) of zero words shortened to `::`, and an IPv4 tail in dotted form for
//! IPv4-compatible (`::1.2.3.4`) and IPv4-mapped (`::ffff:1.2.3.4`) addresses. Unlike
//! PostgreSQL's inet output, the prefix is always written (`10.0.0.1/32`, `::1/128`), as the
//! CloudQuery `inet` extension (Go `IPNet.String()`) expects.

use std::fmt::Write;

use super::buf::Buf;
use super::error::DecodeError;

pub(crate) const PGSQL_AF_INET: u8 = 2;
pub(crate) const PGSQL_AF_INET6: u8 = 3;

/// Append the text form of the inet/cidr in `bytes` to `out`. On error `out` is unchanged.
pub(crate) fn write_inet(bytes: &[u8], out: &mut String) -> Result<(), DecodeError> {
    let mut r = Buf::new(bytes);
    let family = r.u8("inet family")?;
    let bits = r.u8("inet bits")?;
    let _is_cidr = r.u8("inet is_cidr")?;
    let nb = r.u8("inet address length")?;
    let (want_nb, max_bits) = match family {
        PGSQL_AF_INET => (4, 32),
        PGSQL_AF_INET6 => (16, 128),
        other => {
            return Err(DecodeError::Invalid {
                what: "inet family",
                expected: "2 (IPv4) or 3 (IPv6)",
                found: i64::from(other),
            })
        }
    };
    if nb != want_nb {
        return Err(DecodeError::Invalid {
            what: "inet address length",
            expected: if want_nb == 4 {
                "4 for IPv4"
            } else {
                "16 for IPv6"
            },
            found: i64::from(nb),
        });
    }
    if bits > max_bits {
        return Err(DecodeError::Invalid {
            what: "inet bits",
            expected: if max_bits == 32 {
                "at most 32"
            } else {
                "at most 128"
            },
            found: i64::from(bits),
        });
    }
    let addr = r.take(usize::from(nb), "inet address")?;
    r.finish("inet")?;
    // Writing to a String cannot fail; fmt::Result is only there for the trait.
    let _ = if let Ok(v4) = <[u8; 4]>::try_from(addr) {
        write_ipv4(out, v4)
    } else if let Ok(v6) = <[u8; 16]>::try_from(addr) {
        write_ipv6(out, &v6)
    } else {
        Ok(())
    }
    .and_then(|()| write!(out, "/{bits}"));
    Ok(())
}

fn write_ipv4(out: &mut String, a: [u8; 4]) -> std::fmt::Result {
    write!(out, "{}.{}.{}.{}", a[0], a[1], a[2], a[3])
}

/// inet_net_ntop_ipv6, minus the prefix.
fn write_ipv6(out: &mut String, src: &[u8; 16]) -> std::fmt::Result {
    let mut words = [0u16; 8];
    for (w, pair) in words.iter_mut().zip(src.chunks_exact(2)) {
        *w = u16::from_be_bytes([pair[0], pair[1]]);
    }
    // The first longest run of zero words, if at least two long.
    let mut best: Option<(usize, usize)> = None;
    let mut cur: Option<(usize, usize)> = None;
    for (i, &w) in words.iter().enumerate() {
        if w == 0 {
            cur = Some(cur.map_or((i, 1), |(b, l)| (b, l + 1)));
        } else if let Some(c) = cur.take() {
            if best.is_none_or(|b| c.1 > b.1) {
                best = Some(c);
            }
        }
    }
    if let Some(c) = cur {
        if best.is_none_or(|b| c.1 > b.1) {
            best = Some(c);
        }
    }
    let best = best.filter(|&(_, len)| len >= 2);

    for (i, &w) in words.iter().enumerate() {
        if let Some((base, len)) = best {
            if i >= base && i < base + len {
                if i == base {
                    out.push(':');
                }
                continue;
            }
        }
        if i != 0 {
            out.push(':');
        }
        // An IPv4-compatible (::a.b.c.d) or IPv4-mapped (::ffff:a.b.c.d) address: dotted tail.
        // (PostgreSQL also tests a 7-word run here, but such a run covers word 6, so it never
        // reaches this point.)
        let embedded_v4 = match best {
            Some((0, 6)) => true,
            Some((0, 5)) => words[5] == 0xffff,
            _ => false,
        };
        if i == 6 && embedded_v4 {
            return write_ipv4(out, [src[12], src[13], src[14], src[15]]);
        }
        write!(out, "{w:x}")?;
    }
    if let Some((base, len)) = best {
        if base + len == 8 {
            out.push(':');
        }
    }
    Ok(())
}
