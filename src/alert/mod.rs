//! Alerts: the versioned, EVE-compatible record ([`schema`]), the signature catalog
//! ([`signatures`]), the ATT&CK for ICS technique table ([`attack`]) and Community ID flow
//! hashes ([`community_id`]).
//!
//! The JSON Schema of the record is `src/alert/alert.schema.json` ([`JSON_SCHEMA`]).

pub mod attack;
pub mod community_id;
pub mod json;
pub mod schema;
pub mod signatures;
pub mod text;

pub use json::AlertWriter;
pub use schema::{
    Alert, AlertBody, AlertEvidence, AlertMetadata, MlFeature, MlScore, OtwatchInfo, MAX_EVIDENCE,
    SCHEMA_VERSION,
};
pub use signatures::Signature;

/// Appends `ip` to `s` as its `Display` writes it (IPv4 by hand: this runs several times for
/// every alert of a flood; IPv6 through `Display`).
pub fn push_ip(s: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                if o >= 100 {
                    s.push(char::from(b'0' + o / 100));
                }
                if o >= 10 {
                    s.push(char::from(b'0' + (o / 10) % 10));
                }
                s.push(char::from(b'0' + o % 10));
            }
        }
        std::net::IpAddr::V6(_) => {
            use std::fmt::Write as _;
            let _ = write!(s, "{ip}");
        }
    }
}

/// Appends `v` in decimal (as `Display` writes it) to `s`.
pub fn push_u64(s: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(b) = buf.get_mut(i) {
            *b = b'0' + (v % 10) as u8;
        }
        v /= 10;
        if v == 0 || i == 0 {
            break;
        }
    }
    s.push_str(ascii(buf.get(i..).unwrap_or(&[]), 20 - i));
}

/// Appends `v` in decimal (as `Display` writes it) to `s`.
pub fn push_i64(s: &mut String, v: i64) {
    if v < 0 {
        s.push('-');
    }
    push_u64(s, v.unsigned_abs());
}

/// The first `n` bytes of `b`, digits only (written above), as text.
#[inline]
fn ascii(b: &[u8], n: usize) -> &str {
    let b = b.get(..n).unwrap_or(b);
    // Only ASCII digits are written, so this never fails; an ASCII check of at most
    // 20 bytes is what it costs.
    std::str::from_utf8(b).unwrap_or("")
}

/// The JSON Schema of the alert record.
pub const JSON_SCHEMA: &str = include_str!("alert.schema.json");

#[cfg(test)]
mod tests {
    use super::{push_i64, push_ip, push_u64};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    #[test]
    fn push_ip_matches_display() {
        let mut ips: Vec<IpAddr> = Vec::new();
        for a in [0u8, 1, 9, 10, 99, 100, 109, 110, 199, 200, 255] {
            for b in [0u8, 5, 10, 42, 100, 255] {
                ips.push(IpAddr::V4(Ipv4Addr::new(a, b, 255 - b, a ^ b)));
            }
        }
        for x in 0..=255u8 {
            ips.push(IpAddr::V4(Ipv4Addr::new(x, x, x, x)));
        }
        ips.push(IpAddr::V6(Ipv6Addr::LOCALHOST));
        ips.push(IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 1, 2, 3, 4)));
        ips.push(IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped()));
        for ip in ips {
            let mut s = String::from("x");
            push_ip(&mut s, ip);
            assert_eq!(s, format!("x{ip}"));
        }
    }

    #[test]
    fn push_numbers_match_display() {
        let mut vals: Vec<i64> = vec![0, 1, -1, 9, 10, -10, 99, 100, i64::MAX, i64::MIN];
        let mut p = 1i64;
        while let Some(q) = p.checked_mul(10) {
            vals.extend([p - 1, p, p + 1, -p, q / 3]);
            p = q;
        }
        for v in vals {
            let mut s = String::from("x");
            push_i64(&mut s, v);
            assert_eq!(s, format!("x{v}"));
            let u = v.unsigned_abs();
            let mut s = String::new();
            push_u64(&mut s, u);
            assert_eq!(s, u.to_string());
        }
        let mut s = String::new();
        push_u64(&mut s, u64::MAX);
        assert_eq!(s, u64::MAX.to_string());
    }
}
