//! Zero-copy decoding of link, network and transport headers.
//!
//! [`decode`] is lax, like a dissector: it decodes a packet as far as it goes and says where
//! and why it stopped ([`DecodeError`]), so a snaplen-cut or malformed packet still yields
//! whatever headers were intact. It never panics, never allocates, and logs nothing.

use std::net::IpAddr;

/// Link-layer header types (pcap `LINKTYPE_*` / `DLT_*` values) that otwatch decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET (1).
    Ethernet,
    /// LINKTYPE_NULL (0): BSD loopback, 4-byte host-order address family.
    Null,
    /// LINKTYPE_LOOP (108): OpenBSD loopback, 4-byte network-order address family.
    Loop,
    /// LINKTYPE_RAW (101; DLT 12 and 14 on some systems): a bare IPv4 or IPv6 packet.
    Raw,
    /// LINKTYPE_IPV4 (228).
    Ipv4,
    /// LINKTYPE_IPV6 (229).
    Ipv6,
    /// LINKTYPE_LINUX_SLL (113): Linux cooked capture v1.
    LinuxSll,
    /// LINKTYPE_LINUX_SLL2 (276): Linux cooked capture v2.
    LinuxSll2,
    /// Any other link type, by number; counted, not decoded.
    Other(u32),
}

impl LinkType {
    /// Maps a pcap/pcapng link type number to a [`LinkType`].
    pub fn from_dlt(dlt: u32) -> Self {
        match dlt {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            n => LinkType::Other(n),
        }
    }

    /// Stable lower-case name for stats output.
    pub fn name(self) -> String {
        match self {
            LinkType::Ethernet => "ethernet".into(),
            LinkType::Null => "null".into(),
            LinkType::Loop => "loop".into(),
            LinkType::Raw => "raw".into(),
            LinkType::Ipv4 => "ipv4".into(),
            LinkType::Ipv6 => "ipv6".into(),
            LinkType::LinuxSll => "linux_sll".into(),
            LinkType::LinuxSll2 => "linux_sll2".into(),
            LinkType::Other(n) => format!("other_{n}"),
        }
    }
}

/// TCP header flags (the low 8 bits of the flags field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN: no more data from sender.
    pub const FIN: u8 = 0x01;
    /// SYN: synchronise sequence numbers.
    pub const SYN: u8 = 0x02;
    /// RST: reset the connection.
    pub const RST: u8 = 0x04;
    /// PSH: push.
    pub const PSH: u8 = 0x08;
    /// ACK: acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
    /// URG: urgent pointer is significant.
    pub const URG: u8 = 0x20;

    /// True if all bits of `mask` are set.
    pub fn has(self, mask: u8) -> bool {
        self.0 & mask == mask
    }
}

/// A decoded TCP segment, borrowing its payload from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Receive window.
    pub window: u16,
    /// Payload bytes present in the capture.
    pub payload: &'a [u8],
    /// Payload length the IP header declares. Larger than `payload.len()` when the capture
    /// cut the packet (snaplen): the missing bytes are a gap for reassembly.
    pub payload_len: u32,
}

/// A decoded UDP datagram, borrowing its payload from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload bytes present in the capture.
    pub payload: &'a [u8],
}

/// The transport layer, as far as it was decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    /// No transport header: not IP, a non-first fragment, or decoding stopped before it.
    None,
    /// TCP.
    Tcp(TcpSegment<'a>),
    /// UDP.
    Udp(UdpDatagram<'a>),
    /// Another IP protocol (ICMP, SCTP, …), by number.
    Other(u8),
}

/// The network layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpHeader {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper protocol number (after IPv6 extension headers).
    pub proto: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    /// True if the packet is a fragment (first or later) of a larger datagram.
    pub fragment: bool,
}

/// Why decoding stopped early. Each variant is one counter in `otwatch stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DecodeErrorKind {
    /// The link type is not one otwatch decodes.
    UnsupportedLinkType,
    /// Link header shorter than its fixed size.
    LinkTruncated,
    /// BSD null/loop header with an address family that is neither IPv4 nor IPv6.
    UnknownAddressFamily,
    /// 802.1Q tag cut short, or more than two VLAN tags.
    VlanTruncated,
    /// IPv4 header cut short.
    Ipv4Truncated,
    /// IP version nibble does not match the expected version.
    IpBadVersion,
    /// IPv4 IHL below 5 or beyond the packet.
    Ipv4BadHeaderLength,
    /// IPv4 total length smaller than the header.
    Ipv4BadTotalLength,
    /// IPv6 fixed header cut short.
    Ipv6Truncated,
    /// IPv6 extension header chain cut short or too long.
    Ipv6BadExtension,
    /// TCP header cut short.
    TcpTruncated,
    /// TCP data offset below 5 or beyond the segment.
    TcpBadDataOffset,
    /// UDP header cut short.
    UdpTruncated,
    /// UDP length field smaller than the header.
    UdpBadLength,
}

impl DecodeErrorKind {
    /// Stable snake_case name for stats and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeErrorKind::UnsupportedLinkType => "unsupported_link_type",
            DecodeErrorKind::LinkTruncated => "link_truncated",
            DecodeErrorKind::UnknownAddressFamily => "unknown_address_family",
            DecodeErrorKind::VlanTruncated => "vlan_truncated",
            DecodeErrorKind::Ipv4Truncated => "ipv4_truncated",
            DecodeErrorKind::IpBadVersion => "ip_bad_version",
            DecodeErrorKind::Ipv4BadHeaderLength => "ipv4_bad_header_length",
            DecodeErrorKind::Ipv4BadTotalLength => "ipv4_bad_total_length",
            DecodeErrorKind::Ipv6Truncated => "ipv6_truncated",
            DecodeErrorKind::Ipv6BadExtension => "ipv6_bad_extension",
            DecodeErrorKind::TcpTruncated => "tcp_truncated",
            DecodeErrorKind::TcpBadDataOffset => "tcp_bad_data_offset",
            DecodeErrorKind::UdpTruncated => "udp_truncated",
            DecodeErrorKind::UdpBadLength => "udp_bad_length",
        }
    }
}

/// Where and why decoding stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// The reason.
    pub kind: DecodeErrorKind,
    /// Byte offset in the packet where the failing header starts.
    pub offset: usize,
}

/// Everything decoded from one packet. Fields after the point where decoding stopped are empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Source MAC (Ethernet, SLL with a 6-byte address).
    pub src_mac: Option<[u8; 6]>,
    /// Destination MAC (Ethernet only).
    pub dst_mac: Option<[u8; 6]>,
    /// Outer 802.1Q VLAN id.
    pub vlan: Option<u16>,
    /// Inner VLAN id (QinQ).
    pub inner_vlan: Option<u16>,
    /// EtherType (or SLL protocol) of the network layer, when the link layer has one.
    pub ethertype: Option<u16>,
    /// IP header, when the packet is IPv4 or IPv6 and the header was intact.
    pub ip: Option<IpHeader>,
    /// Transport layer.
    pub transport: Transport<'a>,
    /// Set when decoding stopped early.
    pub error: Option<DecodeError>,
}

/// Decodes one captured frame of the given link type. `orig_len` is the frame's length on the
/// wire (it may exceed `data.len()` when the capture was cut by snaplen).
pub fn decode(link: LinkType, data: &[u8], orig_len: u32) -> Decoded<'_> {
    let _ = (link, data, orig_len);
    Decoded {
        src_mac: None,
        dst_mac: None,
        vlan: None,
        inner_vlan: None,
        ethertype: None,
        ip: None,
        transport: Transport::None,
        error: Some(DecodeError {
            kind: DecodeErrorKind::UnsupportedLinkType,
            offset: 0,
        }),
    }
}
