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
//! - An 802.3 frame (length field below 0x0600) is not IP and not an error.
//! - IPv4 total length 0 and IPv6 payload length 0 (segmentation offload, jumbograms) mean
//!   "the rest of the frame": the frame's wire length (`orig_len`) is used.
//! - IPv4 fragments and IPv6 fragments (fragment header with offset ≠ 0 or M set) get
//!   [`IpHeader::fragment`] and [`Transport::None`]: there is no IP reassembly.
//! - A declared length beyond the captured bytes is a snaplen cut, not an error: TCP reports
//!   the declared payload length in [`TcpSegment::payload_len`].

use std::net::IpAddr;

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
    let mut out = Decoded::EMPTY;
    if let Err(e) = decode_layers(link, data, orig_len, &mut out) {
        out.error = Some(e);
    }
    out
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
