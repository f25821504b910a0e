//! SHA-1 (FIPS 180-4), for certificate thumbprints only.
//!
//! OPC UA identifies certificates by the SHA-1 of their DER encoding (the receiver thumbprint
//! of OPN is one). This is a small streaming implementation with no allocation; it is not used
//! for anything security-relevant, only to name the certificate a peer presented.

/// Size of a SHA-1 digest, bytes.
pub const DIGEST_LEN: usize = 20;

/// Initial hash value H(0).
const H0: [u32; 5] = [
    0x6745_2301,
    0xefcd_ab89,
    0x98ba_dcfe,
    0x1032_5476,
    0xc3d2_e1f0,
];

/// An incremental SHA-1 computation.
#[derive(Clone, Debug)]
pub struct Sha1 {
    state: [u32; 5],
    /// Bytes of a partial block.
    block: [u8; 64],
    /// How many bytes of `block` are filled.
    filled: usize,
    /// Message length so far, bytes.
    len: u64,
}

impl Default for Sha1 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha1 {
    /// A fresh computation.
    pub fn new() -> Self {
        Sha1 {
            state: H0,
            block: [0; 64],
            filled: 0,
            len: 0,
        }
    }

    /// Adds bytes to the message.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.filled > 0 {
            let want = 64 - self.filled;
            let (head, rest) = data.split_at(want.min(data.len()));
            if let Some(dst) = self.block.get_mut(self.filled..self.filled + head.len()) {
                dst.copy_from_slice(head);
            }
            self.filled += head.len();
            data = rest;
            if self.filled < 64 {
                return;
            }
            let block = self.block;
            compress(&mut self.state, &block);
            self.filled = 0;
        }
        let mut blocks = data.chunks_exact(64);
        for b in &mut blocks {
            if let Ok(b) = <&[u8; 64]>::try_from(b) {
                compress(&mut self.state, b);
            }
        }
        let rest = blocks.remainder();
        if let Some(dst) = self.block.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        self.filled = rest.len();
    }

    /// Pads the message and returns its digest.
    pub fn finish(mut self) -> [u8; DIGEST_LEN] {
        let bits = self.len.wrapping_mul(8);
        // 0x80, then zeros up to 56 mod 64, then the bit length big-endian.
        let zeros = (64 + 56 - (self.filled + 1) % 64) % 64;
        let mut pad = [0u8; 72];
        pad[0] = 0x80;
        let (tail, _) = pad.split_at_mut(1 + zeros + 8);
        let at = 1 + zeros;
        if let Some(dst) = tail.get_mut(at..) {
            dst.copy_from_slice(&bits.to_be_bytes());
        }
        let len = self.len;
        self.update(tail);
        self.len = len;
        let mut out = [0u8; DIGEST_LEN];
        for (dst, w) in out.chunks_exact_mut(4).zip(self.state) {
            dst.copy_from_slice(&w.to_be_bytes());
        }
        out
    }
}

/// The SHA-1 digest of `data`.
pub fn sha1(data: &[u8]) -> [u8; DIGEST_LEN] {
    let mut h = Sha1::new();
    h.update(data);
    h.finish()
}

/// Processes one 64-byte block.
fn compress(state: &mut [u32; 5], block: &[u8; 64]) {
    let mut w = [0u32; 80];
    for (dst, src) in w.iter_mut().zip(block.chunks_exact(4)) {
        let mut b = [0u8; 4];
        b.copy_from_slice(src);
        *dst = u32::from_be_bytes(b);
    }
    for t in 16..80 {
        let x = w.get(t - 3).copied().unwrap_or(0)
            ^ w.get(t - 8).copied().unwrap_or(0)
            ^ w.get(t - 14).copied().unwrap_or(0)
            ^ w.get(t - 16).copied().unwrap_or(0);
        if let Some(dst) = w.get_mut(t) {
            *dst = x.rotate_left(1);
        }
    }
    let [mut a, mut b, mut c, mut d, mut e] = *state;
    for (t, wt) in w.iter().enumerate() {
        let (f, k) = match t {
            0..=19 => ((b & c) | (!b & d), 0x5a82_7999),
            20..=39 => (b ^ c ^ d, 0x6ed9_eba1),
            40..=59 => ((b & c) | (b & d) | (c & d), 0x8f1b_bcdc),
            _ => (b ^ c ^ d, 0xca62_c1d6),
        };
        let tmp = a
            .rotate_left(5)
            .wrapping_add(f)
            .wrapping_add(e)
            .wrapping_add(k)
            .wrapping_add(*wt);
        e = d;
        d = c;
        c = b.rotate_left(30);
        b = a;
        a = tmp;
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e]) {
        *s = s.wrapping_add(v);
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::proto::opcua::types::hex;
    use rstest::rstest;

    // FIPS 180 (and its example document) test vectors.
    #[rstest]
    #[case(b"abc", "a9993e364706816aba3e25717850c26c9cd0d89d")]
    #[case(b"", "da39a3ee5e6b4b0d3255bfef95601890afd80709")]
    #[case(
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
    )]
    #[case(
        b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
        "a49b2446a02c645bf419f995b67091253a04a259"
    )]
    #[case(
        b"The quick brown fox jumps over the lazy dog",
        "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"
    )]
    fn vectors(#[case] msg: &[u8], #[case] want: &str) {
        assert_eq!(hex(&sha1(msg)), want);
    }

    #[test]
    fn million_a() {
        let mut h = Sha1::new();
        let chunk = [b'a'; 1000];
        for _ in 0..1000 {
            h.update(&chunk);
        }
        assert_eq!(hex(&h.finish()), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    }

    /// Lengths around the padding boundaries (55, 56, 63, 64, 65 bytes): compared with the
    /// digests computed by `sha1sum`.
    #[rstest]
    #[case(55, "c1c8bbdc22796e28c0e15163d20899b65621d65a")]
    #[case(56, "c2db330f6083854c99d4b5bfb6e8f29f201be699")]
    #[case(63, "03f09f5b158a7a8cdad920bddc29b81c18a551f5")]
    #[case(64, "0098ba824b5c16427bd7a1122a5a442a25ec644d")]
    #[case(65, "11655326c708d70319be2610e8a57d9a5b959d3b")]
    fn padding_boundaries(#[case] n: usize, #[case] want: &str) {
        assert_eq!(hex(&sha1(&vec![b'a'; n])), want);
    }

    proptest::proptest! {
        /// Any split of the input into two updates gives the digest of the whole.
        #[test]
        fn incremental_equals_one_shot(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            cut in 0usize..300,
        ) {
            let cut = cut.min(data.len());
            let mut h = Sha1::new();
            h.update(&data[..cut]);
            h.update(&data[cut..]);
            proptest::prop_assert_eq!(h.finish(), sha1(&data));
        }
    }
}
