//! IPv6 fixed header (RFC 8200) and its extension header chain.

use super::{
    read_array, read_u16, read_u8, DecodeError, DecodeErrorKind, Decoded, IpHeader, Upper,
};
use std::net::{IpAddr, Ipv6Addr};

/// IPv6 fixed header fields.
mod field {
    use super::super::Field;
    /// Version (4 bits), traffic class (8 bits), flow label (20 bits); version is the high nibble
    /// of the first byte.
    pub(super) const VER_TC: usize = 0;
    /// Payload length: bytes after the fixed header, extension headers included.
    pub(super) const PAYLOAD_LEN: Field = 4..6;
    /// First next-header value.
    pub(super) const NEXT_HEADER: usize = 6;
    /// Hop limit.
    pub(super) const HOP_LIMIT: usize = 7;
    /// Source address.
    pub(super) const SRC: Field = 8..24;
    /// Destination address.
    pub(super) const DST: Field = 24..40;
    /// Fixed header length.
    pub(super) const LEN: usize = 40;
}

/// Extension header fields, common to all of them.
mod ext {
    use super::super::Field;
    /// Next header.
    pub(super) const NEXT_HEADER: usize = 0;
    /// Header length: 8-byte units after the first 8 bytes (AH: 4-byte units minus 2).
    pub(super) const HDR_LEN: usize = 1;
    /// Fragment header: offset (13 bits, 8-byte units), 2 reserved bits, M flag.
    pub(super) const FRAG_OFFSET_M: Field = 2..4;
    /// Fragment header length (fixed).
    pub(super) const FRAG_LEN: usize = 8;
    /// Bytes needed to read next header and length.
    pub(super) const MIN_READ: usize = 2;
}

/// Hop-by-hop options.
const HOP_BY_HOP: u8 = 0;
/// Routing header.
const ROUTING: u8 = 43;
/// Fragment header.
const FRAGMENT: u8 = 44;
/// Authentication header.
const AH: u8 = 51;
/// Destination options.
const DEST_OPTS: u8 = 60;
/// Mobility header.
const MOBILITY: u8 = 135;
/// No next header: nothing follows.
pub(super) const NO_NEXT_HEADER: u8 = 59;
/// Longest extension header chain walked.
pub(super) const MAX_EXTENSION_HEADERS: usize = 8;

/// Decodes the IPv6 header at the start of `data` (at `offset` in the packet; `wire_len` bytes
/// on the wire, ≥ `data.len()`), walks the extension headers, sets `out.ip`, and returns the
/// upper-layer payload, or `None` for a fragment or "no next header".
pub(super) fn decode<'a>(
    data: &'a [u8],
    offset: usize,
    wire_len: usize,
    out: &mut Decoded<'a>,
) -> Result<Option<Upper<'a>>, DecodeError> {
    if data.len() < field::LEN {
        return Err(DecodeError::at(DecodeErrorKind::Ipv6Truncated, offset));
    }
    if read_u8(data, field::VER_TC) >> 4 != 6 {
        return Err(DecodeError::at(DecodeErrorKind::IpBadVersion, offset));
    }
    // Payload length 0: a jumbogram or segmentation offload; the frame's wire length stands in.
    // A length beyond the wire length cannot have been sent: cap it.
    let packet_len = match usize::from(read_u16(data, field::PAYLOAD_LEN)) {
        0 => wire_len,
        n => field::LEN + n,
    }
    .min(wire_len);
    // The packet as captured: Ethernet padding and trailers cut off.
    let packet = data.get(..packet_len).unwrap_or(data);
    let addr = |f| {
        IpAddr::V6(Ipv6Addr::from(
            read_array::<16>(data, f).unwrap_or_default(),
        ))
    };
    let mut header = IpHeader {
        src: addr(field::SRC),
        dst: addr(field::DST),
        proto: read_u8(data, field::NEXT_HEADER),
        ttl: read_u8(data, field::HOP_LIMIT),
        fragment: false,
    };
    let walked = walk_extensions(packet, header.proto);
    header.proto = walked.proto;
    header.fragment = walked.fragment;
    out.ip = Some(header);
    let end = walked
        .end
        .map_err(|at| DecodeError::at(DecodeErrorKind::Ipv6BadExtension, offset + at))?;
    if walked.fragment || walked.proto == NO_NEXT_HEADER {
        return Ok(None);
    }
    Ok(Some(Upper {
        proto: walked.proto,
        data: packet.get(end..).unwrap_or_default(),
        len: packet_len.saturating_sub(end),
        offset: offset + end,
    }))
}

/// Where the extension header chain ended.
struct Walked {
    /// Last next-header value reached: the upper protocol, or the header where the walk failed.
    proto: u8,
    /// A fragment header with offset ≠ 0 or M set was met (the walk stops there).
    fragment: bool,
    /// Offset of the upper-layer header within the IP packet, or of the extension header that
    /// was cut short or exceeded the chain limit.
    end: Result<usize, usize>,
}

/// Walks extension headers in `packet` (the IP packet, trimmed to its declared length) from
/// the fixed header's next-header value `first`.
fn walk_extensions(packet: &[u8], first: u8) -> Walked {
    let mut proto = first;
    let mut pos = field::LEN;
    let mut count = 0;
    loop {
        if !matches!(
            proto,
            HOP_BY_HOP | ROUTING | FRAGMENT | AH | DEST_OPTS | MOBILITY
        ) {
            return Walked {
                proto,
                fragment: false,
                end: Ok(pos),
            };
        }
        let stop = Walked {
            proto,
            fragment: false,
            end: Err(pos),
        };
        if count == MAX_EXTENSION_HEADERS {
            return stop;
        }
        let rest = packet.get(pos..).unwrap_or_default();
        if rest.len() < ext::MIN_READ {
            return stop;
        }
        let units = usize::from(read_u8(rest, ext::HDR_LEN));
        let len = match proto {
            FRAGMENT => ext::FRAG_LEN,
            AH => (units + 2) * 4,
            _ => (units + 1) * 8,
        };
        let Some(hdr) = rest.get(..len) else {
            return stop;
        };
        let next = read_u8(hdr, ext::NEXT_HEADER);
        pos += len;
        count += 1;
        if proto == FRAGMENT {
            // Offset ≠ 0 or M set. An atomic fragment (both zero, RFC 6946) is a whole packet.
            if read_u16(hdr, ext::FRAG_OFFSET_M) & 0xfff9 != 0 {
                return Walked {
                    proto: next,
                    fragment: true,
                    end: Ok(pos),
                };
            }
        }
        proto = next;
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
    use super::super::fixtures::*;
    use super::super::{decode, DecodeError, DecodeErrorKind as K, IpHeader, LinkType, Transport};
    use rstest::rstest;
    use std::net::{IpAddr, Ipv6Addr};

    /// Hop-by-hop options header, 8 bytes, followed by a fragment header.
    const HOP_BY_HOP_TO_FRAGMENT: [u8; 8] = [
        44,   // next header: fragment
        0x00, // header length 0 (8 bytes)
        0x01, 0x04, 0x00, 0x00, 0x00, 0x00, // option PadN, 4 bytes of padding
    ];

    /// Fragment header of a first fragment (offset 0, M set), followed by TCP.
    const FRAGMENT_FIRST: [u8; 8] = [
        6,    // next header: TCP
        0x00, // reserved
        0x00, 0x01, // fragment offset 0, M set
        0x12, 0x34, 0x56, 0x78, // identification
    ];

    /// The UDP part of [`IPV6_UDP`].
    fn udp() -> &'static [u8] {
        &IPV6_UDP[IPV6_UDP_L4..]
    }

    /// An IPv6 packet with fixed header from [`IPV6_UDP`], first next header `next`, and
    /// `rest` after it (payload length set to match).
    fn v6(next: u8, rest: &[&[u8]]) -> Vec<u8> {
        let rest = rest.concat();
        let mut p = IPV6_UDP[..40].to_vec();
        p[6] = next;
        put16(&mut p, 4, u16::try_from(rest.len()).unwrap());
        p.extend_from_slice(&rest);
        p
    }

    /// A generic extension header of `len` bytes (multiple of 8) announcing `next`.
    fn ext(next: u8, len: usize) -> Vec<u8> {
        let mut h = vec![0u8; len];
        h[0] = next;
        h[1] = u8::try_from(len / 8 - 1).unwrap();
        h
    }

    fn err(kind: K, offset: usize) -> Option<DecodeError> {
        Some(DecodeError { kind, offset })
    }

    #[test]
    fn header_fields() {
        let d = decode(LinkType::Ipv6, &IPV6_UDP, whole(&IPV6_UDP));
        assert_eq!(d.error, None);
        assert_eq!(
            d.ip,
            Some(IpHeader {
                src: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
                dst: IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)),
                proto: 17,
                ttl: 64,
                fragment: false,
            })
        );
        assert!(matches!(d.transport, Transport::Udp(u) if u.src_port == 1234));
    }

    #[rstest]
    #[case::empty(0)]
    #[case::in_version(1)]
    #[case::at_payload_length(4)]
    #[case::at_next_header(6)]
    #[case::at_hop_limit(7)]
    #[case::at_source(8)]
    #[case::at_destination(24)]
    #[case::in_destination(39)]
    fn truncated_at_each_field(#[case] cut: usize) {
        let f = frame(&[&ETH_IPV6, &IPV6_UDP]);
        let d = decode(LinkType::Ethernet, &f[..14 + cut], whole(&f));
        assert_eq!(d.error, err(K::Ipv6Truncated, 14));
        assert_eq!(
            (d.src_mac, d.ethertype, d.ip),
            (Some(SRC_MAC), Some(0x86dd), None)
        );
    }

    #[test]
    fn ethertype_ipv6_but_version_4() {
        let f = frame(&[&ETH_IPV6, &IPV4_TCP]);
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, err(K::IpBadVersion, 14));
    }

    #[test]
    fn hop_by_hop_then_fragment() {
        let f = frame(&[
            &ETH_IPV6,
            &v6(
                0,
                &[&HOP_BY_HOP_TO_FRAGMENT, &FRAGMENT_FIRST, &IPV4_TCP[20..]],
            ),
        ]);
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, None);
        let ip = d.ip.unwrap();
        assert_eq!((ip.proto, ip.fragment), (6, true));
        assert_eq!(d.transport, Transport::None);
    }

    #[test]
    fn hop_by_hop_then_udp() {
        let hbh = ext(17, 8);
        let f = v6(0, &[&hbh, udp()]);
        let d = decode(LinkType::Ipv6, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!(d.ip.unwrap().proto, 17);
        assert!(matches!(d.transport, Transport::Udp(u) if u.payload == [0xde, 0xad, 0xbe, 0xef]));
    }

    #[rstest]
    #[case::later_fragment(0x0008, true)] // offset 1 (8 bytes), M clear
    #[case::middle_fragment(0x0009, true)]
    #[case::atomic_fragment(0x0000, false)] // RFC 6946: a whole packet
    #[case::reserved_bits_only(0x0006, false)]
    fn fragment_header(#[case] offset_m: u16, #[case] fragment: bool) {
        let mut frag = FRAGMENT_FIRST;
        frag[0] = 17;
        frag[2..4].copy_from_slice(&offset_m.to_be_bytes());
        let f = v6(44, &[&frag, udp()]);
        let d = decode(LinkType::Ipv6, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!(
            (d.ip.unwrap().proto, d.ip.unwrap().fragment),
            (17, fragment)
        );
        assert_eq!(matches!(d.transport, Transport::Udp(_)), !fragment);
    }

    #[test]
    fn every_extension_type_is_walked() {
        let ah = [
            60, // next header: destination options
            4,  // payload length 4: (4 + 2) * 4 = 24 bytes
            0, 0, // reserved
            0, 0, 0, 1, // SPI
            0, 0, 0, 1, // sequence number
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ICV, 12 bytes
        ];
        let f = v6(
            0,
            &[
                &ext(43, 8),
                &ext(51, 16),
                &ah,
                &ext(135, 8),
                &ext(17, 24),
                udp(),
            ],
        );
        let d = decode(LinkType::Ipv6, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!(d.ip.unwrap().proto, 17);
        assert!(matches!(d.transport, Transport::Udp(u) if u.dst_port == 4840));
    }

    #[rstest]
    #[case::directly(&[][..])]
    #[case::after_mobility(&[59, 0, 0, 0, 0, 0, 0, 0][..])]
    fn no_next_header(#[case] before: &[u8]) {
        let f = if before.is_empty() {
            v6(59, &[])
        } else {
            v6(135, &[before])
        };
        let d = decode(LinkType::Ipv6, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!(d.ip.unwrap().proto, 59);
        assert_eq!(d.transport, Transport::None);
    }

    #[test]
    fn eight_extension_headers_are_fine_nine_are_not() {
        let eight: Vec<Vec<u8>> = (0..8)
            .map(|i| ext(if i < 7 { 60 } else { 17 }, 8))
            .collect();
        let mut parts: Vec<&[u8]> = eight.iter().map(Vec::as_slice).collect();
        parts.push(udp());
        let f = v6(60, &parts);
        assert_eq!(decode(LinkType::Ipv6, &f, whole(&f)).error, None);

        let nine: Vec<Vec<u8>> = (0..9)
            .map(|i| ext(if i < 8 { 60 } else { 17 }, 8))
            .collect();
        let mut parts: Vec<&[u8]> = nine.iter().map(Vec::as_slice).collect();
        parts.push(udp());
        let f = frame(&[&ETH_IPV6, &v6(60, &parts)]);
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, err(K::Ipv6BadExtension, 14 + 40 + 8 * 8));
        assert_eq!(d.ip.unwrap().proto, 60);
        assert_eq!(d.transport, Transport::None);
    }

    #[rstest]
    #[case::before_next_header(0)]
    #[case::before_length(1)]
    #[case::in_options(9)]
    fn extension_cut_by_capture(#[case] keep: usize) {
        let f = frame(&[&ETH_IPV6, &v6(0, &[&ext(17, 16), udp()])]);
        let d = decode(LinkType::Ethernet, &f[..14 + 40 + keep], whole(&f));
        assert_eq!(d.error, err(K::Ipv6BadExtension, 54));
        // The fixed header was intact: addresses are kept, proto says where it stopped.
        let ip = d.ip.unwrap();
        assert_eq!((ip.proto, ip.ttl), (0, 64));
    }

    #[test]
    fn extension_beyond_payload_length() {
        let mut f = v6(0, &[&ext(17, 16), udp()]);
        put16(&mut f, 4, 8); // payload length 8, but the hop-by-hop header says 16
        let d = decode(LinkType::Ipv6, &f, whole(&f));
        assert_eq!(d.error, err(K::Ipv6BadExtension, 40));
    }

    #[test]
    fn fragment_header_cut_short() {
        let f = v6(44, &[&FRAGMENT_FIRST]);
        let d = decode(LinkType::Ipv6, &f[..40 + 7], whole(&f));
        assert_eq!(d.error, err(K::Ipv6BadExtension, 40));
    }

    #[test]
    fn padding_is_trimmed() {
        let f = frame(&[&ETH_IPV6, &IPV6_UDP, &[0xff; 8]]);
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert!(matches!(d.transport, Transport::Udp(u) if u.payload == [0xde, 0xad, 0xbe, 0xef]));
    }

    #[rstest]
    #[case::whole(72, 12)]
    #[case::jumbo_cut(70_000, 70_000 - 40 - 20)]
    fn payload_length_zero_uses_the_frame(#[case] orig_len: u32, #[case] payload_len: u32) {
        let mut f = v6(6, &[&IPV4_TCP[20..]]);
        put16(&mut f, 4, 0);
        let d = decode(LinkType::Ipv6, &f, orig_len);
        assert_eq!(d.error, None);
        let Transport::Tcp(t) = d.transport else {
            panic!("{:?}", d.transport)
        };
        assert_eq!((t.payload.len(), t.payload_len), (12, payload_len));
    }
}
