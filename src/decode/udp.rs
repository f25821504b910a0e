//! UDP header (RFC 768).

use super::{read_u16, DecodeError, DecodeErrorKind, UdpDatagram, Upper};

/// IP protocol number of UDP.
pub(super) const PROTO: u8 = 17;

/// UDP header fields.
mod field {
    use super::super::Field;
    /// Source port.
    pub(super) const SRC_PORT: Field = 0..2;
    /// Destination port.
    pub(super) const DST_PORT: Field = 2..4;
    /// Length of header and payload.
    pub(super) const LENGTH: Field = 4..6;
    /// Checksum (not verified).
    #[allow(dead_code)] // documents the layout
    pub(super) const CHECKSUM: Field = 6..8;
    /// Header length.
    pub(super) const LEN: usize = 8;
}

/// Decodes the UDP datagram in an IP payload. The payload is trimmed to the UDP length when
/// that is smaller than what the IP layer carries; a larger UDP length is not an error (lax):
/// the payload is what was captured.
pub(super) fn decode<'a>(upper: &Upper<'a>) -> Result<UdpDatagram<'a>, DecodeError> {
    let err = |kind| DecodeError::at(kind, upper.offset);
    let data = upper.data;
    if data.len() < field::LEN {
        return Err(err(DecodeErrorKind::UdpTruncated));
    }
    let length = usize::from(read_u16(data, field::LENGTH));
    if length < field::LEN {
        return Err(err(DecodeErrorKind::UdpBadLength));
    }
    let datagram = data.get(..length).unwrap_or(data);
    Ok(UdpDatagram {
        src_port: read_u16(data, field::SRC_PORT),
        dst_port: read_u16(data, field::DST_PORT),
        payload: datagram.get(field::LEN..).unwrap_or_default(),
    })
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
    use super::super::{
        decode, DecodeError, DecodeErrorKind as K, LinkType, Transport, UdpDatagram,
    };
    use rstest::rstest;

    /// Offset of UDP in an Ethernet frame around [`IPV4_UDP`].
    const L4: usize = 14 + IPV4_UDP_L4;

    fn eth_frame(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut ip = IPV4_UDP.to_vec();
        edit(&mut ip);
        frame(&[&ETH_IPV4, &ip])
    }

    #[test]
    fn header_fields() {
        let f = eth_frame(|_| {});
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!(
            d.transport,
            Transport::Udp(UdpDatagram {
                src_port: 20000,
                dst_port: 20000,
                payload: &[0x05, 0x64, 0x05, 0xc9],
            })
        );
    }

    #[rstest]
    #[case::empty(0)]
    #[case::at_dst_port(2)]
    #[case::at_length(4)]
    #[case::at_checksum(6)]
    #[case::in_checksum(7)]
    fn truncated_at_each_field(#[case] cut: usize) {
        let f = eth_frame(|_| {});
        let d = decode(LinkType::Ethernet, &f[..L4 + cut], whole(&f));
        assert_eq!(
            d.error,
            Some(DecodeError {
                kind: K::UdpTruncated,
                offset: L4
            })
        );
        assert_eq!(d.ip.unwrap().proto, 17);
        assert_eq!(d.transport, Transport::None);
    }

    #[rstest]
    #[case::zero(0)]
    #[case::four(4)]
    #[case::seven(7)]
    fn length_below_header(#[case] length: u16) {
        let f = eth_frame(|ip| put16(ip, IPV4_UDP_L4 + 4, length));
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(
            d.error,
            Some(DecodeError {
                kind: K::UdpBadLength,
                offset: L4
            })
        );
        assert!(d.ip.is_some());
    }

    #[rstest]
    #[case::header_only(8, 0)]
    #[case::trimmed(10, 2)]
    #[case::exact(12, 4)]
    #[case::beyond_what_ip_carries(400, 4)]
    fn payload_follows_the_length(#[case] length: u16, #[case] payload: usize) {
        let f = eth_frame(|ip| put16(ip, IPV4_UDP_L4 + 4, length));
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, None);
        let Transport::Udp(u) = d.transport else {
            panic!("{:?}", d.transport)
        };
        assert_eq!(u.payload, &IPV4_UDP[28..28 + payload]);
    }

    #[test]
    fn snaplen_cut_payload() {
        let f = eth_frame(|_| {});
        let d = decode(LinkType::Ethernet, &f[..L4 + 10], whole(&f));
        let Transport::Udp(u) = d.transport else {
            panic!("{:?}", d.transport)
        };
        assert_eq!(u.payload, &[0x05, 0x64]);
    }

    #[test]
    fn ipv6_udp() {
        let d = decode(LinkType::Ipv6, &IPV6_UDP, whole(&IPV6_UDP));
        assert_eq!(
            d.transport,
            Transport::Udp(UdpDatagram {
                src_port: 1234,
                dst_port: 4840,
                payload: &IPV6_UDP[IPV6_UDP_L4 + 8..],
            })
        );
    }
}
