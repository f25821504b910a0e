//! Zero-copy decoding of link, network and transport headers.
//!
//! [`decode`] is lax, like a dissector: it decodes a packet as far as it goes and says where
//! and why it stopped ([`DecodeError`]), so a snaplen-cut or malformed packet still yields
//! whatever headers were intact. It never panics, never allocates, and logs nothing.
//!
//! Layout follows smoltcp's `wire`: each header has a `field` module naming its byte ranges,
//! its length is checked once, then the fields are read. One file per layer: `link.rs`
//! (Ethernet, VLAN, BSD null/loop, raw IP, Linux SLL/SLL2), `ipv4.rs`, `ipv6.rs` (with the
//! extension header chain), `tcp.rs` and `udp.rs`.
//!
//! Policies worth knowing:
//! - At most two VLAN tags are decoded (outer in [`Decoded::vlan`], inner in
//!   [`Decoded::inner_vlan`]); a third tag stops decoding with [`DecodeErrorKind::VlanTooMany`].
//! - An 802.3 frame (length field below 0x0600) is not IP and not an error; neither is any
//!   EtherType other than IPv4/IPv6 (recorded in [`Decoded::ethertype`]).
//! - BSD null: the address family is accepted in either byte order (AF_INET 2; AF_INET6 24,
//!   28 or 30); loop: network order only.
//! - IPv4 total length 0 and IPv6 payload length 0 (segmentation offload, jumbograms) mean
//!   "the rest of the frame": the frame's wire length (`orig_len`) is used.
//! - IPv4 fragments and IPv6 fragments (fragment header with offset ≠ 0 or M set) get
//!   [`IpHeader::fragment`] and [`Transport::None`]: there is no IP reassembly.
//! - A declared length beyond the captured bytes is a snaplen cut, not an error: TCP reports
//!   the declared payload length in [`TcpSegment::payload_len`]. A declared length beyond the
//!   frame's wire length (`orig_len`) is capped to it; a shorter one trims padding.
//! - IPv6 "no next header" (59) gives `proto` 59 and [`Transport::None`]; ESP and other
//!   protocols give [`Transport::Other`].
//!
//! ```
//! use otwatch::decode::{decode, LinkType, Transport};
//!
//! // A UDP datagram in a bare IPv4 packet (LINKTYPE_RAW).
//! let packet = [
//!     0x45, 0x00, 0x00, 0x1e, 0x00, 0x00, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00, // IPv4 …
//!     10, 0, 0, 1, 10, 0, 0, 2, // … from 10.0.0.1 to 10.0.0.2
//!     0x4e, 0x20, 0x4e, 0x20, 0x00, 0x0a, 0x00, 0x00, // UDP 20000 → 20000, length 10
//!     0x05, 0x64, // payload
//! ];
//! let d = decode(LinkType::Raw, &packet, packet.len() as u32);
//! assert_eq!(d.error, None);
//! let Transport::Udp(udp) = d.transport else { panic!("not UDP") };
//! assert_eq!((udp.dst_port, udp.payload), (20000, &[0x05, 0x64][..]));
//! ```

use std::net::{IpAddr, Ipv4Addr};

mod ipv4;
mod ipv6;
mod link;
mod tcp;
mod udp;

#[cfg(test)]
mod fixtures;

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
    /// Link header shorter than its fixed size (for raw IP: an empty frame).
    LinkTruncated,
    /// BSD null/loop header with an address family that is neither IPv4 nor IPv6.
    UnknownAddressFamily,
    /// 802.1Q tag (TCI and next EtherType, after the TPID) cut short.
    VlanTruncated,
    /// A third stacked VLAN tag: only two are decoded.
    VlanTooMany,
    /// IPv4 header (fixed part or options) cut short.
    Ipv4Truncated,
    /// IP version nibble does not match the expected version.
    IpBadVersion,
    /// IPv4 IHL below 5, or options beyond the packet's wire length.
    Ipv4BadHeaderLength,
    /// IPv4 total length smaller than the header.
    Ipv4BadTotalLength,
    /// IPv6 fixed header cut short.
    Ipv6Truncated,
    /// IPv6 extension header chain cut short or too long (more than eight headers).
    Ipv6BadExtension,
    /// TCP header (fixed part or options) cut short.
    TcpTruncated,
    /// TCP data offset below 5 or beyond the segment.
    TcpBadDataOffset,
    /// UDP header cut short.
    UdpTruncated,
    /// UDP length field smaller than the header.
    UdpBadLength,
}

impl DecodeErrorKind {
    /// Every kind, in declaration order (for registering counters up front).
    pub const ALL: [DecodeErrorKind; 15] = [
        DecodeErrorKind::UnsupportedLinkType,
        DecodeErrorKind::LinkTruncated,
        DecodeErrorKind::UnknownAddressFamily,
        DecodeErrorKind::VlanTruncated,
        DecodeErrorKind::VlanTooMany,
        DecodeErrorKind::Ipv4Truncated,
        DecodeErrorKind::IpBadVersion,
        DecodeErrorKind::Ipv4BadHeaderLength,
        DecodeErrorKind::Ipv4BadTotalLength,
        DecodeErrorKind::Ipv6Truncated,
        DecodeErrorKind::Ipv6BadExtension,
        DecodeErrorKind::TcpTruncated,
        DecodeErrorKind::TcpBadDataOffset,
        DecodeErrorKind::UdpTruncated,
        DecodeErrorKind::UdpBadLength,
    ];

    /// Stable snake_case name for stats and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeErrorKind::UnsupportedLinkType => "unsupported_link_type",
            DecodeErrorKind::LinkTruncated => "link_truncated",
            DecodeErrorKind::UnknownAddressFamily => "unknown_address_family",
            DecodeErrorKind::VlanTruncated => "vlan_truncated",
            DecodeErrorKind::VlanTooMany => "vlan_too_many",
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

impl std::fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where and why decoding stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at offset {offset}")]
pub struct DecodeError {
    /// The reason.
    pub kind: DecodeErrorKind,
    /// Byte offset in the packet where the failing header starts. For a VLAN tag that is the
    /// TCI (the TPID before it is the previous header's EtherType field).
    pub offset: usize,
}

impl DecodeError {
    /// Builds an error of `kind` at `offset`.
    pub(crate) const fn at(kind: DecodeErrorKind, offset: usize) -> Self {
        DecodeError { kind, offset }
    }
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
    /// EtherType (or SLL protocol) of the network layer, when the link layer has one. `None`
    /// for an 802.3 length field (values below 0x0600).
    pub ethertype: Option<u16>,
    /// IP header, when the packet is IPv4 or IPv6 and the header was intact. For IPv6 it is
    /// set once the fixed header is intact; if the extension chain then fails, `proto` is the
    /// header type where it failed.
    pub ip: Option<IpHeader>,
    /// Transport layer.
    pub transport: Transport<'a>,
    /// Set when decoding stopped early.
    pub error: Option<DecodeError>,
}

impl Decoded<'_> {
    /// Nothing decoded yet, no error.
    pub const EMPTY: Decoded<'static> = Decoded {
        src_mac: None,
        dst_mac: None,
        vlan: None,
        inner_vlan: None,
        ethertype: None,
        ip: None,
        transport: Transport::None,
        error: None,
    };
}

/// Decodes one captured frame of the given link type. `orig_len` is the frame's length on the
/// wire (it may exceed `data.len()` when the capture was cut by snaplen).
pub fn decode(link: LinkType, data: &[u8], orig_len: u32) -> Decoded<'_> {
    if link == LinkType::Ethernet {
        if let Some(f) = ethernet_ipv4_tcp(data, orig_len) {
            return f.decoded();
        }
    }
    let mut out = Decoded::EMPTY;
    if let Err(e) = decode_layers(link, data, orig_len, &mut out) {
        out.error = Some(e);
    }
    out
}

/// The fields of the common frame (see [`ethernet_ipv4_tcp`]): what [`decode`] gives for it,
/// without the fields that are the same for every such frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthIpv4Tcp<'a> {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// TTL.
    pub ttl: u8,
    /// The TCP segment.
    pub tcp: TcpSegment<'a>,
}

impl<'a> EthIpv4Tcp<'a> {
    /// The frame as [`decode`] gives it.
    pub fn decoded(self) -> Decoded<'a> {
        Decoded {
            dst_mac: Some(self.dst_mac),
            src_mac: Some(self.src_mac),
            vlan: None,
            inner_vlan: None,
            ethertype: Some(0x0800),
            ip: Some(IpHeader {
                src: IpAddr::V4(self.src),
                dst: IpAddr::V4(self.dst),
                proto: tcp::PROTO,
                ttl: self.ttl,
                fragment: false,
            }),
            transport: Transport::Tcp(self.tcp),
            error: None,
        }
    }
}

/// Untagged Ethernet, IPv4 without options, not a fragment, TCP with an intact header: the
/// common frame, decoded in one step from fixed offsets. `None` for anything else (including
/// every error), which the layer-by-layer decoder then handles; where this returns a value it
/// is, through [`EthIpv4Tcp::decoded`], the one that decoder gives.
#[inline(always)]
pub fn ethernet_ipv4_tcp(data: &[u8], orig_len: u32) -> Option<EthIpv4Tcp<'_>> {
    common_frame(data, orig_len).map(|f| f.fields())
}

/// Offset of the IPv4 header in an untagged Ethernet frame.
const CF_IP: usize = 14;
/// Offset of the TCP header in the common frame.
const CF_TCP: usize = CF_IP + 20;
/// Bytes of the fixed headers of the common frame.
const CF_HEAD: usize = CF_TCP + 20;

/// A common frame (see [`ethernet_ipv4_tcp`]) checked but not taken apart: its fixed headers,
/// read field by field on demand, and its TCP payload. [`CommonFrame::fields`] gives what
/// [`ethernet_ipv4_tcp`] gives.
#[derive(Clone, Copy, Debug)]
pub struct CommonFrame<'a> {
    head: &'a [u8; CF_HEAD],
    /// The TCP payload as captured.
    pub payload: &'a [u8],
    /// The TCP payload length the IP header declares (more than captured when cut).
    pub payload_len: u32,
}

impl<'a> CommonFrame<'a> {
    /// The source and destination addresses' 8 bytes, as on the wire.
    #[inline(always)]
    fn addr_bytes(&self) -> [u8; 8] {
        let h = self.head;
        [
            h[CF_IP + 12],
            h[CF_IP + 13],
            h[CF_IP + 14],
            h[CF_IP + 15],
            h[CF_IP + 16],
            h[CF_IP + 17],
            h[CF_IP + 18],
            h[CF_IP + 19],
        ]
    }

    /// The source and destination ports' 4 bytes, as on the wire.
    #[inline(always)]
    fn port_bytes(&self) -> [u8; 4] {
        let h = self.head;
        [h[CF_TCP], h[CF_TCP + 1], h[CF_TCP + 2], h[CF_TCP + 3]]
    }

    /// Source address << 32 | destination address.
    #[inline]
    pub fn addrs(&self) -> u64 {
        u64::from_be_bytes(self.addr_bytes())
    }

    /// Source port << 16 | destination port.
    #[inline]
    pub fn ports(&self) -> u32 {
        u32::from_be_bytes(self.port_bytes())
    }

    /// The addresses (8 bytes) and ports (4 bytes) as they are on the wire, read as
    /// little-endian words: sender and receiver apart, without byte swaps.
    #[inline]
    pub fn wire_words(&self) -> (u64, u32) {
        (
            u64::from_le_bytes(self.addr_bytes()),
            u32::from_le_bytes(self.port_bytes()),
        )
    }

    /// TCP sequence number.
    #[inline]
    pub fn seq(&self) -> u32 {
        let h = self.head;
        u32::from_be_bytes([h[CF_TCP + 4], h[CF_TCP + 5], h[CF_TCP + 6], h[CF_TCP + 7]])
    }

    /// TCP acknowledgment number.
    #[inline]
    pub fn ack(&self) -> u32 {
        let h = self.head;
        u32::from_be_bytes([h[CF_TCP + 8], h[CF_TCP + 9], h[CF_TCP + 10], h[CF_TCP + 11]])
    }

    /// TCP flags.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.head[CF_TCP + 13]
    }

    /// Source MAC.
    #[inline]
    pub fn src_mac(&self) -> [u8; 6] {
        let h = self.head;
        [h[6], h[7], h[8], h[9], h[10], h[11]]
    }

    /// Destination MAC.
    #[inline]
    pub fn dst_mac(&self) -> [u8; 6] {
        let h = self.head;
        [h[0], h[1], h[2], h[3], h[4], h[5]]
    }

    /// All the fields, as [`ethernet_ipv4_tcp`] gives them.
    #[inline]
    pub fn fields(&self) -> EthIpv4Tcp<'a> {
        let h = self.head;
        let a = self.addrs();
        let p = self.ports();
        EthIpv4Tcp {
            dst_mac: self.dst_mac(),
            src_mac: self.src_mac(),
            src: Ipv4Addr::from_bits((a >> 32) as u32),
            dst: Ipv4Addr::from_bits(a as u32),
            ttl: h[CF_IP + 8],
            tcp: TcpSegment {
                src_port: (p >> 16) as u16,
                dst_port: p as u16,
                seq: self.seq(),
                ack: self.ack(),
                flags: TcpFlags(self.flags()),
                window: u16::from_be_bytes([h[CF_TCP + 14], h[CF_TCP + 15]]),
                payload: self.payload,
                payload_len: self.payload_len,
            },
        }
    }
}

/// The common frame (see [`ethernet_ipv4_tcp`]) checked in one step, its fields left in place.
#[inline(always)]
pub fn common_frame(data: &[u8], orig_len: u32) -> Option<CommonFrame<'_>> {
    const ETH: usize = CF_IP;
    const IP: usize = 20;
    const T: usize = CF_TCP;
    // Fixed offsets into a fixed-size array: no bounds checks.
    let h: &[u8; CF_HEAD] = data.first_chunk()?;
    // EtherType IPv4 and version 4 with IHL 5 (the type of service byte aside), in one word.
    let eth = u32::from_le_bytes([h[12], h[13], h[ETH], h[ETH + 1]]);
    // IP total length, identification, flags and fragment offset, TTL, protocol.
    let ip = u64::from_be_bytes([
        h[ETH + 2],
        h[ETH + 3],
        h[ETH + 4],
        h[ETH + 5],
        h[ETH + 6],
        h[ETH + 7],
        h[ETH + 8],
        h[ETH + 9],
    ]);
    // Protocol TCP, not a fragment (MF clear, offset 0).
    if eth & 0x00ff_ffff != 0x0045_0008 || ip & 0x3fff_00ff != u64::from(tcp::PROTO) {
        return None;
    }
    // A total length that holds both fixed headers (0, "the rest of the frame", goes the
    // long way).
    let total_len = (ip >> 48) as usize;
    if total_len < IP + 20 {
        return None;
    }
    let header_len = usize::from(h[T + 12] >> 4) * 4;
    if total_len <= data.len() - ETH {
        // The whole datagram captured (the common case): it ends at its total length, which
        // the length on the wire cannot be below. What the general computation below gives.
        let upper_len = total_len - IP;
        if header_len < 20 || header_len > upper_len {
            return None;
        }
        let payload = data.get(T + header_len..ETH + total_len)?;
        return Some(CommonFrame {
            head: h,
            payload,
            payload_len: (upper_len - header_len) as u32,
        });
    }
    let ip_len = data.len().saturating_sub(ETH);
    let wire_len = usize::try_from(orig_len)
        .unwrap_or(usize::MAX)
        .saturating_sub(ETH)
        .max(ip_len);
    // The IP datagram as captured ends at its total length or the end of the capture.
    let seg_end = ETH + total_len.min(ip_len);
    let upper_len = total_len.min(wire_len).saturating_sub(IP);
    if header_len < 20 || header_len > upper_len {
        return None;
    }
    let payload = data.get(T + header_len..seg_end)?;
    Some(CommonFrame {
        head: h,
        payload,
        payload_len: u32::try_from(upper_len - header_len).unwrap_or(u32::MAX),
    })
}

/// Decodes layer by layer into `out`; each layer fills in what it decoded before returning.
fn decode_layers<'a>(
    link: LinkType,
    data: &'a [u8],
    orig_len: u32,
    out: &mut Decoded<'a>,
) -> Result<(), DecodeError> {
    let Some(net) = link::decode(link, data, out)? else {
        return Ok(());
    };
    let ip_data = data.get(net.offset..).unwrap_or_default();
    // Bytes of the network layer on the wire: at least what was captured.
    let wire_len = usize::try_from(orig_len)
        .unwrap_or(usize::MAX)
        .saturating_sub(net.offset)
        .max(ip_data.len());
    let upper = match net.version {
        IpVersion::V4 => ipv4::decode(ip_data, net.offset, wire_len, out)?,
        IpVersion::V6 => ipv6::decode(ip_data, net.offset, wire_len, out)?,
    };
    let Some(upper) = upper else {
        return Ok(());
    };
    out.transport = match upper.proto {
        tcp::PROTO => Transport::Tcp(tcp::decode(&upper)?),
        udp::PROTO => Transport::Udp(udp::decode(&upper)?),
        p => Transport::Other(p),
    };
    Ok(())
}

/// IP version the link layer announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// Where the network layer starts, and which IP version the link layer says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Network {
    /// Offset of the IP header in the packet.
    offset: usize,
    /// Expected IP version.
    version: IpVersion,
}

/// The upper-layer payload of an IP packet, handed to the transport decoders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Upper<'a> {
    /// Upper protocol number.
    proto: u8,
    /// Captured bytes, trimmed to the declared length (no Ethernet padding).
    data: &'a [u8],
    /// Length the IP header declares (≥ `data.len()`; larger when snaplen-cut).
    len: usize,
    /// Offset of `data` in the packet.
    offset: usize,
}

/// A named byte range of a header, as in smoltcp's `wire::field`.
type Field = core::ops::Range<usize>;

/// Reads a big-endian `u16` at `field`; callers check the length first, so the 0 fallback is
/// never taken (it only keeps the read panic-free).
fn read_u16(buf: &[u8], field: Field) -> u16 {
    read_array(buf, field).map_or(0, u16::from_be_bytes)
}

/// Reads a big-endian `u32` at `field` (see [`read_u16`]).
fn read_u32(buf: &[u8], field: Field) -> u32 {
    read_array(buf, field).map_or(0, u32::from_be_bytes)
}

/// Reads the byte at `index` (see [`read_u16`]).
fn read_u8(buf: &[u8], index: usize) -> u8 {
    buf.get(index).copied().unwrap_or(0)
}

/// Reads the bytes of `field` as an array, if `field` is in `buf` and `N` bytes long.
fn read_array<const N: usize>(buf: &[u8], field: Field) -> Option<[u8; N]> {
    buf.get(field).and_then(|b| <[u8; N]>::try_from(b).ok())
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    /// The one-step decoder of the common frame agrees with the layer-by-layer one wherever
    /// it answers, on intact, edited and cut frames.
    #[test]
    fn common_frame_shortcut_matches_layers() {
        let base = frame(&[&ETH_IPV4, &IPV4_TCP]);
        fn slow(f: &[u8], orig: u32) -> Decoded<'_> {
            let mut out = Decoded::EMPTY;
            if let Err(e) = decode_layers(LinkType::Ethernet, f, orig, &mut out) {
                out.error = Some(e);
            }
            out
        }
        let mut answered = 0;
        let mut check = |f: &[u8], orig: u32| {
            if let Some(d) = ethernet_ipv4_tcp(f, orig) {
                answered += 1;
                assert_eq!(d.decoded(), slow(f, orig), "{f:02x?} orig {orig}");
            }
        };
        for cut in 0..=base.len() {
            for orig in [0, cut as u32, base.len() as u32, base.len() as u32 + 100] {
                check(&base[..cut], orig);
            }
        }
        for pos in 12..base.len().min(14 + 20 + 20) {
            for v in [
                0x00, 0x01, 0x06, 0x08, 0x20, 0x3f, 0x45, 0x46, 0x50, 0xf0, 0xff,
            ] {
                let mut f = base.clone();
                f[pos] = v;
                check(&f, whole(&f));
                check(&f[..f.len() - 3], whole(&f));
                f.extend_from_slice(&[0; 7]);
                check(&f, whole(&f));
            }
        }
        assert!(answered > 50, "{answered}");
    }

    proptest! {
        #[test]
        fn common_frame_shortcut_matches_layers_on_any_bytes(
            edits in proptest::collection::vec((12usize..60, any::<u8>()), 0..6),
            cut in 0usize..80,
            extra in 0u32..64,
        ) {
            let mut f = frame(&[&ETH_IPV4, &IPV4_TCP]);
            for (i, v) in edits {
                if let Some(b) = f.get_mut(i) {
                    *b = v;
                }
            }
            let f = &f[..cut.min(f.len())];
            let orig = f.len() as u32 + extra;
            if let Some(d) = ethernet_ipv4_tcp(f, orig).map(EthIpv4Tcp::decoded) {
                let mut out = Decoded::EMPTY;
                if let Err(e) = decode_layers(LinkType::Ethernet, f, orig, &mut out) {
                    out.error = Some(e);
                }
                prop_assert_eq!(d, out);
            }
        }
    }

    #[rstest]
    #[case::ethernet(LinkType::Ethernet, DecodeErrorKind::LinkTruncated)]
    #[case::null(LinkType::Null, DecodeErrorKind::LinkTruncated)]
    #[case::loop_(LinkType::Loop, DecodeErrorKind::LinkTruncated)]
    #[case::raw(LinkType::Raw, DecodeErrorKind::LinkTruncated)]
    #[case::ipv4(LinkType::Ipv4, DecodeErrorKind::Ipv4Truncated)]
    #[case::ipv6(LinkType::Ipv6, DecodeErrorKind::Ipv6Truncated)]
    #[case::sll(LinkType::LinuxSll, DecodeErrorKind::LinkTruncated)]
    #[case::sll2(LinkType::LinuxSll2, DecodeErrorKind::LinkTruncated)]
    #[case::other(LinkType::Other(147), DecodeErrorKind::UnsupportedLinkType)]
    fn empty_input(#[case] link: LinkType, #[case] kind: DecodeErrorKind) {
        let d = decode(link, &[], 0);
        assert_eq!(
            d,
            Decoded {
                error: Some(DecodeError { kind, offset: 0 }),
                ..Decoded::EMPTY
            }
        );
    }

    #[test]
    fn error_kind_names_are_unique_snake_case() {
        let mut names: Vec<&str> = DecodeErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert!(names.iter().all(|n| n
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DecodeErrorKind::ALL.len());
        let e = DecodeError::at(DecodeErrorKind::TcpBadDataOffset, 34);
        assert_eq!(e.to_string(), "tcp_bad_data_offset at offset 34");
    }

    #[test]
    fn every_link_type_reaches_tcp() {
        let cases: [(LinkType, &[u8]); 7] = [
            (LinkType::Ethernet, &ETH_IPV4),
            (LinkType::Null, &[2, 0, 0, 0]), // AF_INET, little-endian host
            (LinkType::Loop, &[0, 0, 0, 2]), // AF_INET, network order
            (LinkType::Raw, &[]),
            (LinkType::Ipv4, &[]),
            (
                LinkType::LinuxSll,
                &[0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00],
            ),
            (
                LinkType::LinuxSll2,
                &[8, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
        ];
        for (link, header) in cases {
            let f = frame(&[header, &IPV4_TCP]);
            let d = decode(link, &f, whole(&f));
            assert_eq!(d.error, None, "{link:?}");
            assert!(
                matches!(d.transport, Transport::Tcp(t) if t.dst_port == 502),
                "{link:?}"
            );
        }
    }

    /// Every link type, including an unsupported one.
    fn any_link() -> impl Strategy<Value = LinkType> {
        prop_oneof![
            Just(LinkType::Ethernet),
            Just(LinkType::Null),
            Just(LinkType::Loop),
            Just(LinkType::Raw),
            Just(LinkType::Ipv4),
            Just(LinkType::Ipv6),
            Just(LinkType::LinuxSll),
            Just(LinkType::LinuxSll2),
            any::<u32>().prop_map(LinkType::from_dlt),
        ]
    }

    /// True if `inner` lies within `outer` (by address).
    fn within(outer: &[u8], inner: &[u8]) -> bool {
        let o = outer.as_ptr_range();
        let i = inner.as_ptr_range();
        o.start <= i.start && i.end <= o.end
    }

    /// Invariants of any decode result.
    fn check_invariants(data: &[u8], d: &Decoded<'_>) -> Result<(), TestCaseError> {
        if let Some(e) = d.error {
            prop_assert!(
                e.offset <= data.len(),
                "error offset {} beyond {}",
                e.offset,
                data.len()
            );
            prop_assert_eq!(d.transport, Transport::None);
        }
        match d.transport {
            Transport::Tcp(t) => {
                prop_assert!(within(data, t.payload));
                prop_assert!(u64::from(t.payload_len) >= t.payload.len() as u64);
                prop_assert!(d.ip.is_some());
            }
            Transport::Udp(u) => {
                prop_assert!(within(data, u.payload));
                prop_assert!(d.ip.is_some());
            }
            Transport::Other(_) => prop_assert!(d.ip.is_some()),
            Transport::None => {}
        }
        if d.inner_vlan.is_some() {
            prop_assert!(d.vlan.is_some());
        }
        Ok(())
    }

    /// A well-formed frame and what decoding it must give.
    #[derive(Clone, Debug)]
    struct Built {
        link: LinkType,
        bytes: Vec<u8>,
        vlans: Vec<u16>,
        src: IpAddr,
        dst: IpAddr,
        tcp: Option<(u16, u16, u32, u32, u8, u16)>,
        udp: Option<(u16, u16)>,
        payload: Vec<u8>,
    }

    prop_compose! {
        fn built()(
            link_kind in 0..5u8,
            vlans in proptest::collection::vec(0..4096u16, 0..=2),
            v6 in any::<bool>(),
            a in any::<[u8; 16]>(),
            b in any::<[u8; 16]>(),
            ttl in any::<u8>(),
            ip_opt_words in 0..=10usize,
            v6_ext in proptest::collection::vec(prop_oneof![Just(0u8), Just(43), Just(60), Just(135)], 0..=7),
            is_tcp in any::<bool>(),
            ports in any::<(u16, u16)>(),
            seq_ack in any::<(u32, u32)>(),
            flags in any::<u8>(),
            window in any::<u16>(),
            tcp_opt_words in 0..=10usize,
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            padding in 0..20usize,
        ) -> Built {
            let mut l4 = Vec::new();
            if is_tcp {
                l4.extend_from_slice(&ports.0.to_be_bytes());
                l4.extend_from_slice(&ports.1.to_be_bytes());
                l4.extend_from_slice(&seq_ack.0.to_be_bytes());
                l4.extend_from_slice(&seq_ack.1.to_be_bytes());
                l4.push(u8::try_from((5 + tcp_opt_words) << 4).unwrap());
                l4.push(flags);
                l4.extend_from_slice(&window.to_be_bytes());
                l4.extend_from_slice(&[0; 4]);
                l4.extend(std::iter::repeat_n(1u8, tcp_opt_words * 4)); // NOP options
            } else {
                l4.extend_from_slice(&ports.0.to_be_bytes());
                l4.extend_from_slice(&ports.1.to_be_bytes());
                l4.extend_from_slice(&u16::try_from(8 + payload.len()).unwrap().to_be_bytes());
                l4.extend_from_slice(&[0; 2]);
            }
            l4.extend_from_slice(&payload);
            let proto = if is_tcp { 6 } else { 17 };
            let (ip, src, dst, ethertype) = if v6 {
                let mut ext = Vec::new();
                // Each header is 8 bytes (next header, length 0, PadN of 4) and names the next.
                let nexts = v6_ext.iter().skip(1).copied().chain(std::iter::once(proto));
                for next in nexts.take(v6_ext.len()) {
                    ext.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
                }
                let first = v6_ext.first().copied().unwrap_or(proto);
                let mut ip = vec![0x60, 0, 0, 0];
                ip.extend_from_slice(&u16::try_from(ext.len() + l4.len()).unwrap().to_be_bytes());
                ip.extend_from_slice(&[first, ttl]);
                ip.extend_from_slice(&a);
                ip.extend_from_slice(&b);
                ip.extend_from_slice(&ext);
                ip.extend_from_slice(&l4);
                (ip, IpAddr::from(a), IpAddr::from(b), 0x86ddu16)
            } else {
                let hl = 20 + ip_opt_words * 4;
                let mut ip = vec![0x40 | u8::try_from(hl / 4).unwrap(), 0];
                ip.extend_from_slice(&u16::try_from(hl + l4.len()).unwrap().to_be_bytes());
                ip.extend_from_slice(&[0, 0, 0x40, 0, ttl, proto, 0, 0]);
                ip.extend_from_slice(&a[..4]);
                ip.extend_from_slice(&b[..4]);
                ip.extend(std::iter::repeat_n(1u8, ip_opt_words * 4)); // NOP options
                ip.extend_from_slice(&l4);
                let src = IpAddr::from(<[u8; 4]>::try_from(&a[..4]).unwrap());
                let dst = IpAddr::from(<[u8; 4]>::try_from(&b[..4]).unwrap());
                (ip, src, dst, 0x0800u16)
            };
            let (link, mut bytes, vlans) = match link_kind {
                0 => {
                    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
                    for v in &vlans {
                        f.extend_from_slice(&[0x81, 0x00]);
                        f.extend_from_slice(&v.to_be_bytes());
                    }
                    f.extend_from_slice(&ethertype.to_be_bytes());
                    (LinkType::Ethernet, f, vlans)
                }
                1 => {
                    let family: u32 = if v6 { 30 } else { 2 };
                    (LinkType::Null, family.to_le_bytes().to_vec(), vec![])
                }
                2 => (LinkType::Raw, vec![], vec![]),
                3 => {
                    let mut f = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 2, 0, 0];
                    f.extend_from_slice(&ethertype.to_be_bytes());
                    (LinkType::LinuxSll, f, vec![])
                }
                _ => {
                    let mut f = ethertype.to_be_bytes().to_vec();
                    f.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 2, 0, 0, 0, 0, 2, 0, 0]);
                    (LinkType::LinuxSll2, f, vec![])
                }
            };
            bytes.extend_from_slice(&ip);
            if link == LinkType::Ethernet {
                bytes.extend(std::iter::repeat_n(0u8, padding));
            }
            Built {
                link,
                bytes,
                vlans,
                src,
                dst,
                tcp: is_tcp.then_some((ports.0, ports.1, seq_ack.0, seq_ack.1, flags, window)),
                udp: (!is_tcp).then_some(ports),
                payload,
            }
        }
    }

    /// What decoding a whole capture gave, counted.
    #[derive(Debug, Default, PartialEq, Eq)]
    struct Tally {
        frames: usize,
        tcp: usize,
        tcp_payload_len: u64,
        udp: usize,
        other_ip: usize,
        ipv6: usize,
        not_ip: usize,
        errors: usize,
    }

    /// Decodes every frame of a legacy pcap from the shared corpus.
    fn tally(name: &str) -> Tally {
        let path = format!("{}/../shared/pcaps/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let cap = pcap_parser::PcapCapture::from_file(&bytes).unwrap();
        let link = LinkType::from_dlt(u32::try_from(cap.header.network.0).unwrap());
        let mut t = Tally::default();
        for b in &cap.blocks {
            let d = decode(link, b.data, b.origlen);
            t.frames += 1;
            t.errors += usize::from(d.error.is_some());
            t.ipv6 += usize::from(d.ip.is_some_and(|ip| ip.src.is_ipv6()));
            t.not_ip += usize::from(d.ip.is_none() && d.error.is_none());
            match d.transport {
                Transport::Tcp(s) => {
                    t.tcp += 1;
                    t.tcp_payload_len += u64::from(s.payload_len);
                }
                Transport::Udp(_) => t.udp += 1,
                Transport::Other(_) => t.other_ip += 1,
                Transport::None => {}
            }
        }
        t
    }

    /// Real captures; the expected counts are tshark 4.0's (`tcp.len` summed, defragmentation
    /// off): frames, TCP, UDP, ICMP and other IP, IPv6, not IP.
    #[rstest]
    #[case::ethernet_with_ipv6_hop_by_hop(
        "EmreEkin__ICS-Pcaps/DNP3__DNP3Value.pcap",
        Tally { frames: 1371, tcp: 760, tcp_payload_len: 10721, udp: 309, other_ip: 49, ipv6: 101, not_ip: 253, errors: 0 }
    )]
    #[case::linux_sll(
        "cisagov__icsnpp-s7comm/tests__traces__s7comm_plus.pcap",
        Tally { frames: 262, tcp: 262, tcp_payload_len: 13943, ..Tally::default() }
    )]
    #[case::bsd_null(
        "ITI__ICS-Security-Tools/pcaps__dnp3__opendnp3-3__conformance__6.1.2__dump.pcap",
        Tally { frames: 79, tcp: 79, tcp_payload_len: 2975, ..Tally::default() }
    )]
    #[case::ethernet_modbus(
        "zeek__zeek/testing__btest__Traces__modbus__modbusSmall.pcap",
        Tally { frames: 166, tcp: 160, tcp_payload_len: 384, udp: 6, ..Tally::default() }
    )]
    fn real_captures_agree_with_tshark(#[case] name: &str, #[case] expected: Tally) {
        assert_eq!(tally(name), expected);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            link in any_link(),
            data in proptest::collection::vec(any::<u8>(), 0..256),
            orig_len in any::<u32>(),
        ) {
            let d = decode(link, &data, orig_len);
            check_invariants(&data, &d)?;
        }

        #[test]
        fn built_frames_round_trip(b in built()) {
            let d = decode(b.link, &b.bytes, whole(&b.bytes));
            prop_assert_eq!(d.error, None);
            prop_assert_eq!(d.vlan, b.vlans.first().copied());
            prop_assert_eq!(d.inner_vlan, b.vlans.get(1).copied());
            let ip = d.ip.unwrap();
            prop_assert_eq!((ip.src, ip.dst, ip.fragment), (b.src, b.dst, false));
            match d.transport {
                Transport::Tcp(t) => {
                    prop_assert_eq!(
                        Some((t.src_port, t.dst_port, t.seq, t.ack, t.flags.0, t.window)),
                        b.tcp
                    );
                    prop_assert_eq!(t.payload, &b.payload[..]);
                    prop_assert_eq!(t.payload_len as usize, b.payload.len());
                }
                Transport::Udp(u) => {
                    prop_assert_eq!(Some((u.src_port, u.dst_port)), b.udp);
                    prop_assert_eq!(u.payload, &b.payload[..]);
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }

        #[test]
        fn mutated_and_cut_frames_never_panic(
            b in built(),
            edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 0..6),
            cut in any::<proptest::sample::Index>(),
            orig_extra in 0..70_000u32,
        ) {
            let mut bytes = b.bytes.clone();
            for (at, v) in edits {
                let i = at.index(bytes.len());
                bytes[i] = v;
            }
            let len = cut.index(bytes.len() + 1);
            let orig = whole(&bytes) + orig_extra;
            let d = decode(b.link, &bytes[..len], orig);
            check_invariants(&bytes[..len], &d)?;
        }

        #[test]
        fn snaplen_cut_keeps_the_declared_length(b in built(), cut in any::<proptest::sample::Index>()) {
            let len = cut.index(b.bytes.len() + 1);
            let d = decode(b.link, &b.bytes[..len], whole(&b.bytes));
            check_invariants(&b.bytes[..len], &d)?;
            if let Transport::Tcp(t) = d.transport {
                prop_assert_eq!(t.payload_len as usize, b.payload.len());
                prop_assert!(b.payload.starts_with(t.payload));
            }
        }
    }
}
