//! IPv4 header (RFC 791).

use super::{
    read_array, read_u16, read_u8, DecodeError, DecodeErrorKind, Decoded, IpHeader, Upper,
};
use std::net::{IpAddr, Ipv4Addr};

/// IPv4 header fields.
mod field {
    use super::super::Field;
    /// Version (high nibble) and IHL in 32-bit words (low nibble).
    pub(super) const VER_IHL: usize = 0;
    /// DSCP and ECN.
    #[allow(dead_code)] // documents the layout
    pub(super) const TOS: usize = 1;
    /// Total length of the datagram, header included.
    pub(super) const TOTAL_LEN: Field = 2..4;
    /// Identification.
    #[allow(dead_code)] // documents the layout
    pub(super) const IDENT: Field = 4..6;
    /// Flags (3 bits: reserved, DF, MF) and fragment offset (13 bits, 8-byte units).
    pub(super) const FLAGS_FRAG: Field = 6..8;
    /// Time to live.
    pub(super) const TTL: usize = 8;
    /// Upper protocol.
    pub(super) const PROTOCOL: usize = 9;
    /// Header checksum (not verified: offload makes it unreliable in captures).
    #[allow(dead_code)] // documents the layout
    pub(super) const CHECKSUM: Field = 10..12;
    /// Source address.
    pub(super) const SRC: Field = 12..16;
    /// Destination address.
    pub(super) const DST: Field = 16..20;
    /// Fixed header length (IHL 5).
    pub(super) const LEN: usize = 20;
    /// More-fragments flag in `FLAGS_FRAG`.
    pub(super) const MF: u16 = 0x2000;
    /// Fragment offset bits in `FLAGS_FRAG`.
    pub(super) const FRAG_OFFSET: u16 = 0x1fff;
}

/// Decodes the IPv4 header at the start of `data` (at `offset` in the packet; `wire_len` bytes
/// on the wire, ≥ `data.len()`), sets `out.ip`, and returns the upper-layer payload, or `None`
/// for a fragment. The payload's declared length is the total length's, capped at `wire_len`.
pub(super) fn decode<'a>(
    data: &'a [u8],
    offset: usize,
    wire_len: usize,
    out: &mut Decoded<'a>,
) -> Result<Option<Upper<'a>>, DecodeError> {
    let err = |kind| DecodeError::at(kind, offset);
    if data.len() < field::LEN {
        return Err(err(DecodeErrorKind::Ipv4Truncated));
    }
    let ver_ihl = read_u8(data, field::VER_IHL);
    if ver_ihl >> 4 != 4 {
        return Err(err(DecodeErrorKind::IpBadVersion));
    }
    let header_len = usize::from(ver_ihl & 0x0f) * 4;
    if header_len < field::LEN {
        return Err(err(DecodeErrorKind::Ipv4BadHeaderLength));
    }
    // Total length 0: segmentation offload wrote no length; the frame's wire length stands in.
    let total_len = match usize::from(read_u16(data, field::TOTAL_LEN)) {
        0 => wire_len,
        n => n,
    };
    if total_len < header_len {
        return Err(err(if read_u16(data, field::TOTAL_LEN) == 0 {
            DecodeErrorKind::Ipv4BadHeaderLength
        } else {
            DecodeErrorKind::Ipv4BadTotalLength
        }));
    }
    // The datagram as captured: Ethernet padding and trailers beyond total length cut off.
    let datagram = data.get(..total_len).unwrap_or(data);
    let Some(payload) = datagram.get(header_len..) else {
        // Options present on the wire but cut by the capture.
        return Err(err(DecodeErrorKind::Ipv4Truncated));
    };
    let flags_frag = read_u16(data, field::FLAGS_FRAG);
    let fragment = flags_frag & field::MF != 0 || flags_frag & field::FRAG_OFFSET != 0;
    let proto = read_u8(data, field::PROTOCOL);
    let addr = |f| IpAddr::V4(Ipv4Addr::from(read_array::<4>(data, f).unwrap_or_default()));
    out.ip = Some(IpHeader {
        src: addr(field::SRC),
        dst: addr(field::DST),
        proto,
        ttl: read_u8(data, field::TTL),
        fragment,
    });
    if fragment {
        return Ok(None);
    }
    Ok(Some(Upper {
        proto,
        data: payload,
        // A total length beyond the frame's wire length cannot have been sent: cap it.
        len: total_len.min(wire_len).saturating_sub(header_len),
        offset: offset + header_len,
    }))
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
    use std::net::{IpAddr, Ipv4Addr};

    fn err(kind: K, offset: usize) -> Option<DecodeError> {
        Some(DecodeError { kind, offset })
    }

    /// [`IPV4_TCP`] behind Ethernet, with `edit` applied to the IP packet.
    fn eth_frame(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut ip = IPV4_TCP.to_vec();
        edit(&mut ip);
        frame(&[&ETH_IPV4, &ip])
    }

    #[test]
    fn header_fields() {
        let d = decode(LinkType::Ipv4, &IPV4_TCP, whole(&IPV4_TCP));
        assert_eq!(d.error, None);
        assert_eq!(
            d.ip,
            Some(IpHeader {
                src: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)),
                dst: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)),
                proto: 6,
                ttl: 64,
                fragment: false,
            })
        );
        let Transport::Tcp(t) = d.transport else {
            panic!("{:?}", d.transport)
        };
        assert_eq!(t.payload_len, 12);
    }

    #[rstest]
    #[case::empty(0)]
    #[case::at_tos(1)]
    #[case::at_total_length(2)]
    #[case::at_identification(4)]
    #[case::at_flags(6)]
    #[case::at_ttl(8)]
    #[case::at_protocol(9)]
    #[case::at_checksum(10)]
    #[case::at_source(12)]
    #[case::at_destination(16)]
    #[case::in_destination(19)]
    fn truncated_at_each_field(#[case] cut: usize) {
        let f = eth_frame(|_| {});
        let d = decode(LinkType::Ethernet, &f[..14 + cut], whole(&f));
        assert_eq!(d.error, err(K::Ipv4Truncated, 14));
        assert_eq!((d.src_mac, d.ethertype), (Some(SRC_MAC), Some(0x0800)));
        assert_eq!((d.ip, d.transport), (None, Transport::None));
    }

    #[rstest]
    #[case::version_6(0x65, K::IpBadVersion)]
    #[case::version_0(0x05, K::IpBadVersion)]
    #[case::ihl_0(0x40, K::Ipv4BadHeaderLength)]
    #[case::ihl_3(0x43, K::Ipv4BadHeaderLength)]
    #[case::ihl_4(0x44, K::Ipv4BadHeaderLength)]
    #[case::ihl_15_beyond_total_length(0x4f, K::Ipv4BadTotalLength)]
    fn bad_version_or_header_length(#[case] ver_ihl: u8, #[case] kind: K) {
        let f = eth_frame(|ip| ip[0] = ver_ihl);
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, err(kind, 14));
        assert_eq!(d.ip, None);
    }

    #[rstest]
    #[case::one(1)]
    #[case::below_fixed_header(19)]
    fn total_length_below_header(#[case] total: u16) {
        let f = eth_frame(|ip| put16(ip, 2, total));
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, err(K::Ipv4BadTotalLength, 14));
    }

    #[test]
    fn total_length_below_options() {
        // IHL 6 (24 bytes) but total length 23.
        let f = eth_frame(|ip| {
            ip[0] = 0x46;
            put16(ip, 2, 23);
        });
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, err(K::Ipv4BadTotalLength, 14));
    }

    #[test]
    fn options_are_skipped() {
        let mut ip = IPV4_TCP.to_vec();
        ip[0] = 0x46; // IHL 6
        put16(&mut ip, 2, 56); // total length 52 + 4
        ip.splice(20..20, [0x01, 0x01, 0x01, 0x00]); // options: NOP, NOP, NOP, EOL
        let f = frame(&[&ETH_IPV4, &ip]);
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, None);
        let Transport::Tcp(t) = d.transport else {
            panic!("{:?}", d.transport)
        };
        assert_eq!((t.dst_port, t.payload.len(), t.payload_len), (502, 12, 12));
    }

    #[test]
    fn options_cut_by_capture() {
        let mut ip = IPV4_TCP.to_vec();
        ip[0] = 0x48; // IHL 8: 12 bytes of options, only 2 captured
        let f = frame(&[&ETH_IPV4, &ip]);
        let d = decode(LinkType::Ethernet, &f[..14 + 22], whole(&f));
        assert_eq!(d.error, err(K::Ipv4Truncated, 14));
    }

    #[test]
    fn ethernet_padding_is_trimmed() {
        // A bare ACK (40 bytes of IP) padded to the 60-byte Ethernet minimum.
        let mut ip = IPV4_TCP[..40].to_vec();
        put16(&mut ip, 2, 40);
        let f = frame(&[&ETH_IPV4, &ip, &[0u8; 6]]);
        assert_eq!(f.len(), 60);
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, None);
        let Transport::Tcp(t) = d.transport else {
            panic!("{:?}", d.transport)
        };
        assert_eq!((t.payload, t.payload_len), (&[][..], 0));
    }

    #[test]
    fn snaplen_cut_payload_is_shorter_than_declared() {
        let f = eth_frame(|_| {});
        let d = decode(LinkType::Ethernet, &f[..14 + 45], whole(&f));
        assert_eq!(d.error, None);
        let Transport::Tcp(t) = d.transport else {
            panic!("{:?}", d.transport)
        };
        assert_eq!(t.payload, &IPV4_TCP[40..45]);
        assert_eq!(t.payload_len, 12);
    }

    #[test]
    fn total_length_beyond_the_wire_is_capped() {
        let f = eth_frame(|ip| put16(ip, 2, 1500));
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        let Transport::Tcp(t) = d.transport else {
            panic!("{:?}", d.transport)
        };
        assert_eq!((t.payload.len(), t.payload_len), (12, 12));
    }

    #[rstest]
    #[case::whole(66, 12)]
    #[case::offload_snaplen_cut(9014, 9014 - 14 - 40)]
    fn total_length_zero_uses_the_frame(#[case] orig_len: u32, #[case] payload_len: u32) {
        let f = eth_frame(|ip| put16(ip, 2, 0));
        let d = decode(LinkType::Ethernet, &f, orig_len);
        assert_eq!(d.error, None);
        let Transport::Tcp(t) = d.transport else {
            panic!("{:?}", d.transport)
        };
        assert_eq!((t.payload.len(), t.payload_len), (12, payload_len));
    }

    #[test]
    fn total_length_zero_and_options_beyond_the_frame() {
        let f = eth_frame(|ip| {
            ip[0] = 0x4f; // IHL 15: 60 bytes
            put16(ip, 2, 0);
        });
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, err(K::Ipv4BadHeaderLength, 14));
    }

    #[rstest]
    #[case::first_fragment_mf(0x2000, true)]
    #[case::middle_fragment(0x2010, true)]
    #[case::last_fragment(0x0010, true)]
    #[case::dont_fragment(0x4000, false)]
    #[case::reserved_bit(0x8000, false)]
    fn fragments_have_no_transport(#[case] flags_frag: u16, #[case] fragment: bool) {
        let f = eth_frame(|ip| put16(ip, 6, flags_frag));
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, None);
        let ip = d.ip.unwrap();
        assert_eq!((ip.fragment, ip.proto), (fragment, 6));
        assert_eq!(matches!(d.transport, Transport::Tcp(_)), !fragment);
    }

    #[rstest]
    #[case::icmp(1)]
    #[case::sctp(132)]
    fn other_protocols(#[case] proto: u8) {
        let f = eth_frame(|ip| ip[9] = proto);
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!(d.transport, Transport::Other(proto));
    }
}
