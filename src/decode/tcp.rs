//! TCP header (RFC 9293). Options are skipped, not parsed.

use super::{
    read_u16, read_u32, read_u8, DecodeError, DecodeErrorKind, TcpFlags, TcpSegment, Upper,
};

/// IP protocol number of TCP.
pub(super) const PROTO: u8 = 6;

/// TCP header fields.
mod field {
    use super::super::Field;
    /// Source port.
    pub(super) const SRC_PORT: Field = 0..2;
    /// Destination port.
    pub(super) const DST_PORT: Field = 2..4;
    /// Sequence number.
    pub(super) const SEQ: Field = 4..8;
    /// Acknowledgment number.
    pub(super) const ACK: Field = 8..12;
    /// Data offset in 32-bit words (high nibble), reserved bits and the AE flag.
    pub(super) const DATA_OFFSET: usize = 12;
    /// Flags CWR … FIN.
    pub(super) const FLAGS: usize = 13;
    /// Receive window.
    pub(super) const WINDOW: Field = 14..16;
    /// Checksum (not verified: offload makes it unreliable in captures).
    #[allow(dead_code)] // documents the layout
    pub(super) const CHECKSUM: Field = 16..18;
    /// Urgent pointer.
    #[allow(dead_code)] // documents the layout
    pub(super) const URGENT: Field = 18..20;
    /// Fixed header length (data offset 5).
    pub(super) const LEN: usize = 20;
}

/// Decodes the TCP segment in an IP payload.
pub(super) fn decode<'a>(upper: &Upper<'a>) -> Result<TcpSegment<'a>, DecodeError> {
    let err = |kind| DecodeError::at(kind, upper.offset);
    let data = upper.data;
    if data.len() < field::LEN {
        return Err(err(DecodeErrorKind::TcpTruncated));
    }
    let header_len = usize::from(read_u8(data, field::DATA_OFFSET) >> 4) * 4;
    if header_len < field::LEN || header_len > upper.len {
        return Err(err(DecodeErrorKind::TcpBadDataOffset));
    }
    let Some(payload) = data.get(header_len..) else {
        // Options on the wire, cut by the capture.
        return Err(err(DecodeErrorKind::TcpTruncated));
    };
    Ok(TcpSegment {
        src_port: read_u16(data, field::SRC_PORT),
        dst_port: read_u16(data, field::DST_PORT),
        seq: read_u32(data, field::SEQ),
        ack: read_u32(data, field::ACK),
        flags: TcpFlags(read_u8(data, field::FLAGS)),
        window: read_u16(data, field::WINDOW),
        payload,
        payload_len: u32::try_from(upper.len - header_len).unwrap_or(u32::MAX),
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
        decode, DecodeError, DecodeErrorKind as K, LinkType, TcpFlags, TcpSegment, Transport,
    };
    use rstest::rstest;

    /// Offset of TCP in an Ethernet frame around [`IPV4_TCP`].
    const L4: usize = 14 + IPV4_TCP_L4;

    fn eth_frame(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut ip = IPV4_TCP.to_vec();
        edit(&mut ip);
        frame(&[&ETH_IPV4, &ip])
    }

    fn tcp<'a>(d: &super::super::Decoded<'a>) -> TcpSegment<'a> {
        match d.transport {
            Transport::Tcp(t) => t,
            other => panic!("expected TCP, got {other:?} ({:?})", d.error),
        }
    }

    #[test]
    fn header_fields() {
        let f = eth_frame(|_| {});
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!(
            tcp(&d),
            TcpSegment {
                src_port: 49152,
                dst_port: 502,
                seq: 100,
                ack: 200,
                flags: TcpFlags(TcpFlags::PSH | TcpFlags::ACK),
                window: 8192,
                payload: &IPV4_TCP[IPV4_TCP_PAYLOAD..],
                payload_len: 12,
            }
        );
    }

    #[rstest]
    #[case::empty(0)]
    #[case::at_dst_port(2)]
    #[case::at_seq(4)]
    #[case::at_ack(8)]
    #[case::at_data_offset(12)]
    #[case::at_flags(13)]
    #[case::at_window(14)]
    #[case::at_checksum(16)]
    #[case::at_urgent(18)]
    #[case::in_urgent(19)]
    fn truncated_at_each_field(#[case] cut: usize) {
        let f = eth_frame(|_| {});
        let d = decode(LinkType::Ethernet, &f[..L4 + cut], whole(&f));
        assert_eq!(
            d.error,
            Some(DecodeError {
                kind: K::TcpTruncated,
                offset: L4
            })
        );
        assert_eq!(d.ip.unwrap().proto, 6);
        assert_eq!(d.src_mac, Some(SRC_MAC));
        assert_eq!(d.transport, Transport::None);
    }

    #[test]
    fn declared_segment_shorter_than_header() {
        let f = eth_frame(|ip| put16(ip, 2, 20 + 19));
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(
            d.error,
            Some(DecodeError {
                kind: K::TcpTruncated,
                offset: L4
            })
        );
    }

    #[rstest]
    #[case::zero(0x00)]
    #[case::two(0x20)]
    #[case::four(0x40)]
    #[case::beyond_the_segment(0xf0)] // 60 bytes, segment is 32
    #[case::just_beyond_the_segment(0x90)] // 36 bytes
    fn bad_data_offset(#[case] offset_byte: u8) {
        let f = eth_frame(|ip| ip[IPV4_TCP_L4 + 12] = offset_byte);
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(
            d.error,
            Some(DecodeError {
                kind: K::TcpBadDataOffset,
                offset: L4
            })
        );
        assert!(d.ip.is_some());
    }

    #[test]
    fn data_offset_equal_to_segment_is_an_empty_payload() {
        let f = eth_frame(|ip| ip[IPV4_TCP_L4 + 12] = 0x80); // 32 bytes: all of it
        let t = tcp(&decode(LinkType::Ethernet, &f, whole(&f)));
        assert_eq!((t.payload.len(), t.payload_len), (0, 0));
    }

    #[test]
    fn options_are_skipped() {
        // Data offset 8: 12 bytes of options (MSS 1460, SACK permitted, NOP, window scale 7,
        // NOP, NOP), then the 12-byte payload.
        let opts = [2, 4, 0x05, 0xb4, 4, 2, 1, 3, 3, 7, 1, 1];
        let mut ip = IPV4_TCP.to_vec();
        ip[IPV4_TCP_L4 + 12] = 0x80;
        ip.splice(40..40, opts);
        put16(&mut ip, 2, 64);
        let f = frame(&[&ETH_IPV4, &ip]);
        let t = tcp(&decode(LinkType::Ethernet, &f, whole(&f)));
        assert_eq!(t.payload, &IPV4_TCP[IPV4_TCP_PAYLOAD..]);
        assert_eq!(t.payload_len, 12);
        // Cut inside the options: the header is incomplete, not wrong.
        let d = decode(LinkType::Ethernet, &f[..L4 + 25], whole(&f));
        assert_eq!(
            d.error,
            Some(DecodeError {
                kind: K::TcpTruncated,
                offset: L4
            })
        );
    }

    #[rstest]
    #[case::header_only(L4 + 20, 0)]
    #[case::part_of_payload(L4 + 27, 7)]
    #[case::all_but_one(L4 + 31, 11)]
    fn snaplen_cut(#[case] caplen: usize, #[case] captured: usize) {
        let f = eth_frame(|_| {});
        let d = decode(LinkType::Ethernet, &f[..caplen], whole(&f));
        assert_eq!(d.error, None);
        let t = tcp(&d);
        assert_eq!(
            t.payload,
            &IPV4_TCP[IPV4_TCP_PAYLOAD..IPV4_TCP_PAYLOAD + captured]
        );
        assert_eq!(t.payload_len, 12);
    }

    #[rstest]
    #[case::syn(0x02)]
    #[case::syn_ack(0x12)]
    #[case::fin_ack(0x11)]
    #[case::rst(0x04)]
    #[case::all_eight(0xff)]
    fn flags_are_the_low_byte(#[case] flags: u8) {
        let f = eth_frame(|ip| {
            ip[IPV4_TCP_L4 + 12] = 0x51; // data offset 5, AE bit (not in the low byte)
            ip[IPV4_TCP_L4 + 13] = flags;
        });
        let t = tcp(&decode(LinkType::Ethernet, &f, whole(&f)));
        assert_eq!(t.flags, TcpFlags(flags));
        assert_eq!(t.flags.has(TcpFlags::SYN), flags & 0x02 != 0);
    }
}
