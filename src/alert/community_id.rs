//! Community ID v1 flow hashes, so that an alert can be joined with Zeek, Suricata and other
//! sensors' records of the same connection.
//!
//! The hash input is: the seed (2 bytes, big-endian), the smaller endpoint's address then the
//! larger one's (4 or 16 bytes each), the IP protocol number (1 byte), one zero byte of
//! padding, then the two ports (2 bytes each, big-endian) in the same order as the addresses.
//! "Smaller" orders by address bytes first, then by port, so both directions of a flow give the
//! same id. The SHA-1 digest is base64-encoded and prefixed with `1:`.
//!
//! SHA-1 and base64 are implemented here (about 80 lines) rather than pulled in as crates: the
//! hash is used only as the specification's fingerprint, not for security, and a few lines
//! tested against the FIPS 180 and RFC 4648 vectors keep the dependency tree small.

use std::net::IpAddr;

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// Community ID v1 of a flow. `sport`/`dport` are ports (for ICMP, the type and code mapped as
/// the specification says; callers here only pass TCP and UDP). Mixed address families give the
/// hash of whatever bytes they have, as the reference implementations do not define that case.
pub fn community_id_v1(
    seed: u16,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    sport: u16,
    dport: u16,
) -> String {
    // A flood of alerts on a few connections would hash the same tuple again and again: a small
    // direct-mapped memo per thread (1024 slots, ~100 KB) keeps the last ids (the value is a pure function of the key).
    let key = (seed, src, dst, proto, sport, dport);
    let slot = {
        use std::hash::BuildHasher;
        (crate::flow::hash::KeyHashBuilder::with_seeds(
            0x9e37_79b9_7f4a_7c15,
            0x2545_f491_4f6c_dd1d,
        )
        .hash_one(key)
            % MEMO_SLOTS as u64) as usize
    };
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        if let Some(Some((k, id))) = memo.get(slot) {
            if *k == key {
                MEMO_HITS.with(|h| h.set(h.get() + 1));
                return id.clone();
            }
        }
        let id = compute_v1(seed, src, dst, proto, sport, dport);
        if let Some(entry) = memo.get_mut(slot) {
            *entry = Some((key, id.clone()));
        }
        id
    })
}

/// Slots of the per-thread memo of [`community_id_v1`].
const MEMO_SLOTS: usize = 1024;

type MemoKey = (u16, IpAddr, IpAddr, u8, u16, u16);

thread_local! {
    static MEMO: std::cell::RefCell<Vec<Option<(MemoKey, String)>>> =
        std::cell::RefCell::new(vec![None; MEMO_SLOTS]);
    /// Answers given from the memo on this thread (for tests).
    static MEMO_HITS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn compute_v1(seed: u16, src: IpAddr, dst: IpAddr, proto: u8, sport: u16, dport: u16) -> String {
    let a = addr_bytes(src);
    let b = addr_bytes(dst);
    let (first, second) = if (a.as_slice(), sport) <= (b.as_slice(), dport) {
        ((a, sport), (b, dport))
    } else {
        ((b, dport), (a, sport))
    };
    let mut input = Vec::with_capacity(2 + 16 + 16 + 2 + 4);
    input.extend_from_slice(&seed.to_be_bytes());
    input.extend_from_slice(&first.0);
    input.extend_from_slice(&second.0);
    input.push(proto);
    input.push(0);
    input.extend_from_slice(&first.1.to_be_bytes());
    input.extend_from_slice(&second.1.to_be_bytes());
    format!("1:{}", base64(&sha1(&input)))
}

fn addr_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// SHA-1 digest (FIPS 180-4) of `data`.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w: Vec<u32> = block
            .chunks_exact(4)
            .map(|b| u32::from_be_bytes(<[u8; 4]>::try_from(b).unwrap_or_default()))
            .collect();
        for i in 16..80 {
            let g = |k: usize| w.get(i - k).copied().unwrap_or(0);
            let v = (g(3) ^ g(8) ^ g(14) ^ g(16)).rotate_left(1);
            w.push(v);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hi, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hi = hi.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (o, word) in out.chunks_exact_mut(4).zip(h) {
        o.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// Standard base64 (RFC 4648 section 4) with `=` padding.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |i: u32| char::from(ALPHABET.get((i & 63) as usize).copied().unwrap_or(b'='));
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b0 = u32::from(chunk.first().copied().unwrap_or(0));
        let b1 = u32::from(chunk.get(1).copied().unwrap_or(0));
        let b2 = u32::from(chunk.get(2).copied().unwrap_or(0));
        let n = (b0 << 16) | (b1 << 8) | b2;
        out.push(sym(n >> 18));
        out.push(sym(n >> 12));
        out.push(if chunk.len() > 1 { sym(n >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { sym(n) } else { '=' });
    }
    out
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
    use rstest::rstest;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[rstest]
    #[case(b"", "da39a3ee5e6b4b0d3255bfef95601890afd80709")]
    #[case(b"abc", "a9993e364706816aba3e25717850c26c9cd0d89d")]
    #[case(
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
    )]
    fn sha1_fips_vectors(#[case] input: &[u8], #[case] want: &str) {
        assert_eq!(hex(&sha1(input)), want);
    }

    #[test]
    fn sha1_million_a() {
        let m = vec![b'a'; 1_000_000];
        assert_eq!(hex(&sha1(&m)), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    }

    #[rstest]
    #[case(b"", "")]
    #[case(b"f", "Zg==")]
    #[case(b"fo", "Zm8=")]
    #[case(b"foo", "Zm9v")]
    #[case(b"foob", "Zm9vYg==")]
    #[case(b"fooba", "Zm9vYmE=")]
    #[case(b"foobar", "Zm9vYmFy")]
    fn base64_rfc4648_vectors(#[case] input: &[u8], #[case] want: &str) {
        assert_eq!(base64(input), want);
    }

    /// The specification's published vectors (as used by the Zeek plugin's and other
    /// implementations' test suites): TCP, UDP, ICMP echo and ICMPv6 echo, seeds 0 and 1.
    /// ICMP types/codes are passed already mapped to "ports" as the specification does.
    #[rstest]
    #[case(
        "1.2.3.4",
        "5.6.7.8",
        6,
        1122,
        3344,
        0,
        "1:wCb3OG7yAFWelaUydu0D+125CLM="
    )]
    #[case(
        "1.2.3.4",
        "5.6.7.8",
        17,
        1122,
        3344,
        0,
        "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="
    )]
    #[case("1.2.3.4", "5.6.7.8", 1, 8, 0, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=")]
    #[case(
        "fe80:1:203:405:607:809:a0b:c0d",
        "fe80:1011:1213:1415:1617:1819:1a1b:1c1d",
        58,
        128,
        129,
        0,
        "1:0bf7hyMJUwt3fMED7z8LIfRpBeo="
    )]
    #[case(
        "1.2.3.4",
        "5.6.7.8",
        6,
        1122,
        3344,
        1,
        "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="
    )]
    #[case(
        "1.2.3.4",
        "5.6.7.8",
        17,
        1122,
        3344,
        1,
        "1:OShq+iKDAMVouh/4bMxB9Sz4amw="
    )]
    #[case("1.2.3.4", "5.6.7.8", 1, 8, 0, 1, "1:9pr4ZGTICiuZoIh90RRYE2RyXpU=")]
    #[case(
        "fe80:1:203:405:607:809:a0b:c0d",
        "fe80:1011:1213:1415:1617:1819:1a1b:1c1d",
        58,
        128,
        129,
        1,
        "1:IO27GQzPuCtNnwFvjWALMHu5tJE="
    )]
    fn community_id_spec_vectors(
        #[case] src: &str,
        #[case] dst: &str,
        #[case] proto: u8,
        #[case] sport: u16,
        #[case] dport: u16,
        #[case] seed: u16,
        #[case] want: &str,
    ) {
        let s: IpAddr = src.parse().unwrap();
        let d: IpAddr = dst.parse().unwrap();
        assert_eq!(community_id_v1(seed, s, d, proto, sport, dport), want);
        // Both directions of a flow give the same id.
        assert_eq!(community_id_v1(seed, d, s, proto, dport, sport), want);
    }

    #[test]
    fn same_address_orders_by_port() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(
            community_id_v1(0, a, a, 6, 502, 40000),
            community_id_v1(0, a, a, 6, 40000, 502)
        );
    }

    #[test]
    fn memo_answers_a_repeated_tuple() {
        let a: IpAddr = "10.9.0.1".parse().unwrap();
        let b: IpAddr = "10.9.0.2".parse().unwrap();
        let first = community_id_v1(0, a, b, 6, 41000, 502);
        let hits = MEMO_HITS.with(|h| h.get());
        for _ in 0..10 {
            assert_eq!(community_id_v1(0, a, b, 6, 41000, 502), first);
        }
        assert_eq!(MEMO_HITS.with(|h| h.get()), hits + 10);
    }

    #[test]
    fn memo_gives_the_computed_id_whatever_collides() {
        // More tuples than memo slots, twice over in two orders: every answer is the id
        // computed afresh.
        let tuples: Vec<(IpAddr, IpAddr, u16, u16)> = (0..300u16)
            .map(|i| {
                let a: IpAddr = format!("10.0.{}.{}", i / 200, i % 200).parse().unwrap();
                let b: IpAddr = "10.1.0.1".parse().unwrap();
                (a, b, 40000 + i, 502)
            })
            .collect();
        for round in 0..2 {
            for (i, &(a, b, sp, dp)) in tuples.iter().enumerate() {
                let (a, b, sp, dp) = if (i + round) % 2 == 0 {
                    (a, b, sp, dp)
                } else {
                    (b, a, dp, sp)
                };
                assert_eq!(
                    community_id_v1(0, a, b, 6, sp, dp),
                    compute_v1(0, a, b, 6, sp, dp)
                );
            }
        }
    }
}
