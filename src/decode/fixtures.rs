//! Hand-built headers shared by the decoder's tests, one comment per field.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

/// Destination MAC of [`ETH_IPV4`].
pub(super) const DST_MAC: [u8; 6] = [0x00, 0x1d, 0x9c, 0xc8, 0x03, 0xe9];
/// Source MAC of [`ETH_IPV4`].
pub(super) const SRC_MAC: [u8; 6] = [0x00, 0x0c, 0x29, 0x4f, 0x8e, 0x35];

/// Ethernet II header carrying IPv4.
pub(super) const ETH_IPV4: [u8; 14] = [
    0x00, 0x1d, 0x9c, 0xc8, 0x03, 0xe9, // destination MAC
    0x00, 0x0c, 0x29, 0x4f, 0x8e, 0x35, // source MAC
    0x08, 0x00, // EtherType IPv4
];

/// Ethernet II header carrying IPv6.
pub(super) const ETH_IPV6: [u8; 14] = [
    0x00, 0x1d, 0x9c, 0xc8, 0x03, 0xe9, // destination MAC
    0x00, 0x0c, 0x29, 0x4f, 0x8e, 0x35, // source MAC
    0x86, 0xdd, // EtherType IPv6
];

/// Linux cooked v1 header of an Ethernet device carrying IPv4.
pub(super) const SLL_IPV4: [u8; 16] = [
    0x00, 0x00, // packet type: to us
    0x00, 0x01, // ARPHRD_ETHER
    0x00, 0x06, // address length 6
    0x00, 0x0c, 0x29, 0x4f, 0x8e, 0x35, 0x00, 0x00, // address: MAC + 2 bytes padding
    0x08, 0x00, // protocol IPv4
];

/// Linux cooked v2 header of an Ethernet device carrying IPv4.
pub(super) const SLL2_IPV4: [u8; 20] = [
    0x08, 0x00, // protocol IPv4
    0x00, 0x00, // reserved
    0x00, 0x00, 0x00, 0x02, // interface index 2
    0x00, 0x01, // ARPHRD_ETHER
    0x04, // packet type: outgoing
    0x06, // address length 6
    0x00, 0x0c, 0x29, 0x4f, 0x8e, 0x35, 0x00, 0x00, // address: MAC + 2 bytes padding
];

/// IPv4 + TCP carrying a 12-byte Modbus/TCP request: 192.168.1.10:49152 → 192.168.1.20:502.
pub(super) const IPV4_TCP: [u8; 52] = [
    // IPv4
    0x45, // version 4, IHL 5 (20 bytes)
    0x00, // DSCP 0, ECN 0
    0x00, 0x34, // total length 52
    0x12, 0x34, // identification
    0x40, 0x00, // flags DF, fragment offset 0
    0x40, // TTL 64
    0x06, // protocol TCP
    0x00, 0x00, // header checksum (not verified)
    192, 168, 1, 10, // source address
    192, 168, 1, 20, // destination address
    // TCP
    0xc0, 0x00, // source port 49152
    0x01, 0xf6, // destination port 502
    0x00, 0x00, 0x00, 0x64, // sequence number 100
    0x00, 0x00, 0x00, 0xc8, // acknowledgment number 200
    0x50, // data offset 5 (20 bytes), reserved 0
    0x18, // flags PSH|ACK
    0x20, 0x00, // window 8192
    0x00, 0x00, // checksum (not verified)
    0x00, 0x00, // urgent pointer
    // Modbus/TCP: read holding registers 0..10 of unit 1
    0x00, 0x01, // transaction id 1
    0x00, 0x00, // protocol id 0
    0x00, 0x06, // length 6
    0x01, // unit id 1
    0x03, // function code 3
    0x00, 0x00, // start address 0
    0x00, 0x0a, // quantity 10
];
/// Offset of the TCP header in [`IPV4_TCP`].
pub(super) const IPV4_TCP_L4: usize = 20;
/// Offset of the TCP payload in [`IPV4_TCP`].
pub(super) const IPV4_TCP_PAYLOAD: usize = 40;

/// IPv4 + UDP carrying 4 bytes: 10.0.0.1:20000 → 10.0.0.2:20000.
pub(super) const IPV4_UDP: [u8; 32] = [
    // IPv4
    0x45, // version 4, IHL 5
    0x00, // DSCP 0, ECN 0
    0x00, 0x20, // total length 32
    0x00, 0x01, // identification
    0x00, 0x00, // no flags, fragment offset 0
    0x80, // TTL 128
    0x11, // protocol UDP
    0x00, 0x00, // header checksum
    10, 0, 0, 1, // source address
    10, 0, 0, 2, // destination address
    // UDP
    0x4e, 0x20, // source port 20000
    0x4e, 0x20, // destination port 20000
    0x00, 0x0c, // length 12 (8 header + 4 payload)
    0x00, 0x00, // checksum (none)
    0x05, 0x64, 0x05, 0xc9, // payload: start of a DNP3 link header
];
/// Offset of the UDP header in [`IPV4_UDP`].
pub(super) const IPV4_UDP_L4: usize = 20;

/// IPv6 + UDP carrying 4 bytes: fe80::1:1234 → ff02::1:4840.
pub(super) const IPV6_UDP: [u8; 52] = [
    // IPv6
    0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
    0x00, 0x0c, // payload length 12
    0x11, // next header UDP
    0x40, // hop limit 64
    0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // source fe80::1
    0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // destination ff02::1
    // UDP
    0x04, 0xd2, // source port 1234
    0x12, 0xe8, // destination port 4840
    0x00, 0x0c, // length 12
    0x00, 0x00, // checksum
    0xde, 0xad, 0xbe, 0xef, // payload
];
/// Offset of the UDP header in [`IPV6_UDP`].
pub(super) const IPV6_UDP_L4: usize = 40;

/// Concatenates header pieces into one frame.
pub(super) fn frame(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Sets a big-endian u16 at `at`.
pub(super) fn put16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Orig length of a frame that was captured whole.
pub(super) fn whole(buf: &[u8]) -> u32 {
    u32::try_from(buf.len()).unwrap()
}
