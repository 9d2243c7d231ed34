//! Hashers for the change buffer's key maps.
//!
//! The std default (SipHash-1-3, randomly keyed) resists HashDoS: an attacker who chooses the
//! keys cannot make a map degrade to linear lookups. The keys hashed here are primary-key
//! values the user's own database sends over the plugin's own replication connection; whoever
//! can choose them can already write to that database, so that protection buys nothing, and
//! SipHash cost ~10 % of the plugin's CPU while draining a backlog. [`FxHasher`] is the
//! multiply-rotate hash of rustc (`rustc-hash`), with a final avalanche so that keys differing
//! only in their high bytes (big-endian integers) still spread over a table's low bits.

use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// A fast, non-cryptographic, unkeyed hasher (see the module docs for why that is fine here).
#[derive(Clone, Copy, Default)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    /// murmur3's fmix64: every input bit reaches every output bit.
    #[inline]
    fn finish(&self) -> u64 {
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

pub type FxBuildHasher = BuildHasherDefault<FxHasher>;

/// For keys that are already a well-mixed hash (a `u64` from [`FxHasher`]): passes it through.
#[derive(Clone, Copy, Default)]
pub struct HashedHasher {
    hash: u64,
}

impl Hasher for HashedHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Not used by the maps of this module's users (they write one u64); kept correct.
        let mut fx = FxHasher { hash: self.hash };
        fx.write(bytes);
        self.hash = fx.finish();
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.hash = i;
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub type HashedBuildHasher = BuildHasherDefault<HashedHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn big_endian_keys_spread_over_low_bits() {
        let b = FxBuildHasher::default();
        let mut low: std::collections::HashSet<u64> = std::collections::HashSet::new();
        for k in 0..4096u32 {
            low.insert(b.hash_one(k.to_be_bytes().as_slice()) & 0xfff);
        }
        // 4096 keys into 4096 buckets: a uniform hash fills about 63 % of them.
        assert!(low.len() > 2400, "{} distinct low bit patterns", low.len());
    }

    #[test]
    fn equal_keys_equal_hashes() {
        let b = FxBuildHasher::default();
        assert_eq!(b.hash_one(vec![1u8, 2, 3]), b.hash_one(vec![1u8, 2, 3]));
        assert_ne!(b.hash_one(vec![1u8, 2, 3]), b.hash_one(vec![1u8, 2, 4]));
    }
}
