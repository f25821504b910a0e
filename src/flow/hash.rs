//! A fast keyed hasher for flow keys.
//!
//! Each 64-bit word is mixed with a folded 64×64→128-bit multiply by a secret key, starting
//! from a secret state; both secrets are drawn per table from the standard library's random
//! hash seed. Without them an attacker cannot craft keys that collide, so a flood of chosen
//! 5-tuples does not degrade the table to O(n). The output never depends on the seed: the table
//! never iterates its map to produce anything.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Multiplies and folds the 128-bit product to 64 bits.
#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Builds [`KeyHasher`]s with this table's secret seeds.
#[derive(Clone, Debug)]
pub(crate) struct KeyHashBuilder {
    k0: u64,
    k1: u64,
}

impl KeyHashBuilder {
    /// Fresh random seeds.
    pub(crate) fn random() -> Self {
        let rs = RandomState::new();
        let mut h = rs.build_hasher();
        h.write_u64(0x243f_6a88_85a3_08d3);
        let k0 = h.finish();
        h.write_u64(0x1319_8a2e_0370_7344);
        let k1 = h.finish();
        KeyHashBuilder {
            k0,
            // An odd multiplier never maps distinct words to the same product.
            k1: k1 | 1,
        }
    }

    /// Fixed seeds: for tests, and where the same key must always hash alike from run to
    /// run (the worker a flow goes to), not for tables an attacker could fill with collisions.
    pub(crate) fn with_seeds(k0: u64, k1: u64) -> Self {
        KeyHashBuilder { k0, k1: k1 | 1 }
    }
}

impl Default for KeyHashBuilder {
    /// Fresh random seeds, as [`KeyHashBuilder::random`].
    fn default() -> Self {
        KeyHashBuilder::random()
    }
}

impl BuildHasher for KeyHashBuilder {
    type Hasher = KeyHasher;

    #[inline]
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher {
            acc: self.k0,
            key: self.k1,
        }
    }
}

/// The hasher state.
#[derive(Clone, Debug)]
pub(crate) struct KeyHasher {
    acc: u64,
    key: u64,
}

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        let rem = chunks.remainder();
        let mut w = [0u8; 8];
        for (d, s) in w.iter_mut().zip(rem) {
            *d = *s;
        }
        // The length byte keeps "ab" and "ab\0" apart.
        self.write_u64(u64::from_le_bytes(w) ^ ((rem.len() as u64) << 56));
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.acc = fold_mul(self.acc ^ i, self.key);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        fold_mul(
            self.acc ^ 0x9e37_79b9_7f4a_7c15,
            self.key.rotate_left(29) | 1,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    fn h<T: Hash>(b: &KeyHashBuilder, v: &T) -> u64 {
        b.hash_one(v)
    }

    #[test]
    fn seeds_change_hashes_and_inputs_are_told_apart() {
        let a = KeyHashBuilder::with_seeds(1, 2);
        let b = KeyHashBuilder::with_seeds(3, 4);
        assert_ne!(h(&a, &42u64), h(&b, &42u64));
        assert_eq!(h(&a, &42u64), h(&a, &42u64));
        assert_ne!(h(&a, &[1u8, 2].as_slice()), h(&a, &[1u8, 2, 0].as_slice()));
        assert_ne!(h(&a, &(1u16, 2u16)), h(&a, &(2u16, 1u16)));
        let r1 = KeyHashBuilder::random();
        let r2 = KeyHashBuilder::random();
        assert_ne!((r1.k0, r1.k1), (r2.k0, r2.k1));
    }

    #[test]
    fn top_bits_spread_over_sequential_ports() {
        // hashbrown uses the top 7 bits as tags: sequential keys must not share them all.
        for b in [
            KeyHashBuilder::with_seeds(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210),
            KeyHashBuilder::random(),
        ] {
            let tags: std::collections::HashSet<u64> =
                (0u16..512).map(|p| h(&b, &(p, 502u16)) >> 57).collect();
            assert!(tags.len() > 100, "{}", tags.len());
        }
    }
}
