//! Link layers: Ethernet II with 802.1Q/QinQ tags, BSD null and loop, raw IP, Linux cooked
//! capture v1 (SLL) and v2 (SLL2).

use super::{
    read_array, read_u16, read_u8, DecodeError, DecodeErrorKind, Decoded, IpVersion, LinkType,
    Network,
};

/// EtherType of IPv4.
pub(super) const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub(super) const ETHERTYPE_IPV6: u16 = 0x86dd;
/// TPID of an 802.1Q customer tag.
const TPID_8021Q: u16 = 0x8100;
/// TPID of an 802.1ad service tag (QinQ outer tag).
const TPID_8021AD: u16 = 0x88a8;
/// Pre-standard QinQ outer TPID.
const TPID_QINQ_OLD: u16 = 0x9100;
/// Smallest EtherType value; smaller values are an 802.3 length field.
const ETHERTYPE_MIN: u16 = 0x0600;
/// VLAN tags decoded at most; a further tag is [`DecodeErrorKind::VlanTooMany`].
const MAX_VLAN_TAGS: usize = 2;

/// Ethernet II header.
mod eth {
    use super::super::Field;
    /// Destination MAC.
    pub(super) const DST: Field = 0..6;
    /// Source MAC.
    pub(super) const SRC: Field = 6..12;
    /// EtherType (or 802.3 length).
    pub(super) const ETHERTYPE: Field = 12..14;
    /// Header length.
    pub(super) const LEN: usize = 14;
}

/// One 802.1Q tag after its TPID.
mod vlan {
    use super::super::Field;
    /// Tag control information: PCP (3 bits), DEI (1 bit), VLAN id (12 bits).
    pub(super) const TCI: Field = 0..2;
    /// EtherType of what follows the tag.
    pub(super) const ETHERTYPE: Field = 2..4;
    /// Tag length (without the TPID).
    pub(super) const LEN: usize = 4;
    /// VLAN id bits of the TCI.
    pub(super) const VID_MASK: u16 = 0x0fff;
}

/// BSD null / OpenBSD loop header.
mod null {
    use super::super::Field;
    /// Address family (host order for null, network order for loop).
    pub(super) const FAMILY: Field = 0..4;
    /// Header length.
    pub(super) const LEN: usize = 4;
    /// AF_INET on every BSD.
    pub(super) const AF_INET: u32 = 2;
    /// AF_INET6 values: NetBSD/OpenBSD (24), FreeBSD/DragonFly (28), Darwin (30).
    pub(super) const AF_INET6: [u32; 3] = [24, 28, 30];
}

/// Linux cooked capture v1 header.
mod sll {
    use super::super::Field;
    /// Packet type (to us, broadcast, multicast, other host, outgoing).
    #[allow(dead_code)] // documents the layout
    pub(super) const PKTTYPE: Field = 0..2;
    /// ARPHRD_ device type.
    pub(super) const HATYPE: Field = 2..4;
    /// Link-layer address length.
    pub(super) const HALEN: Field = 4..6;
    /// Link-layer address (first `HALEN` bytes used, at most 8).
    pub(super) const ADDR: Field = 6..14;
    /// Protocol (EtherType).
    pub(super) const PROTOCOL: Field = 14..16;
    /// Header length.
    pub(super) const LEN: usize = 16;
}

/// Linux cooked capture v2 header.
mod sll2 {
    use super::super::Field;
    /// Protocol (EtherType).
    pub(super) const PROTOCOL: Field = 0..2;
    /// Reserved (must be zero).
    #[allow(dead_code)] // documents the layout
    pub(super) const RESERVED: Field = 2..4;
    /// Interface index.
    #[allow(dead_code)] // documents the layout
    pub(super) const IFINDEX: Field = 4..8;
    /// ARPHRD_ device type.
    pub(super) const HATYPE: Field = 8..10;
    /// Packet type.
    #[allow(dead_code)] // documents the layout
    pub(super) const PKTTYPE: usize = 10;
    /// Link-layer address length.
    pub(super) const HALEN: usize = 11;
    /// Link-layer address (first `HALEN` bytes used, at most 8).
    pub(super) const ADDR: Field = 12..20;
    /// Header length.
    pub(super) const LEN: usize = 20;
}

/// ARPHRD_ETHER: the SLL address is a MAC.
const ARPHRD_ETHER: u16 = 1;
/// MAC address length.
const MAC_LEN: usize = 6;

/// Decodes the link layer into `out`; returns where IP starts, or `None` if the frame is not IP.
pub(super) fn decode(
    link: LinkType,
    data: &[u8],
    out: &mut Decoded<'_>,
) -> Result<Option<Network>, DecodeError> {
    match link {
        LinkType::Ethernet => ethernet(data, out),
        LinkType::Null => null_family(data, false),
        LinkType::Loop => null_family(data, true),
        LinkType::Raw => raw(data).map(Some),
        LinkType::Ipv4 => Ok(Some(Network {
            offset: 0,
            version: IpVersion::V4,
        })),
        LinkType::Ipv6 => Ok(Some(Network {
            offset: 0,
            version: IpVersion::V6,
        })),
        LinkType::LinuxSll => linux_sll(data, out),
        LinkType::LinuxSll2 => linux_sll2(data, out),
        LinkType::Other(_) => Err(DecodeError::at(DecodeErrorKind::UnsupportedLinkType, 0)),
    }
}

/// Ethernet II: MACs, then the EtherType chain.
fn ethernet(data: &[u8], out: &mut Decoded<'_>) -> Result<Option<Network>, DecodeError> {
    if data.len() < eth::LEN {
        return Err(DecodeError::at(DecodeErrorKind::LinkTruncated, 0));
    }
    out.dst_mac = read_array(data, eth::DST);
    out.src_mac = read_array(data, eth::SRC);
    ethertype_chain(data, eth::LEN, read_u16(data, eth::ETHERTYPE), out)
}

/// Follows VLAN tags from `offset` (where the header after `ethertype` starts) and maps the
/// final EtherType to an IP version. Shared by Ethernet and SLL/SLL2.
fn ethertype_chain(
    data: &[u8],
    mut offset: usize,
    mut ethertype: u16,
    out: &mut Decoded<'_>,
) -> Result<Option<Network>, DecodeError> {
    let mut tags = 0;
    while matches!(ethertype, TPID_8021Q | TPID_8021AD | TPID_QINQ_OLD) {
        if tags == MAX_VLAN_TAGS {
            return Err(DecodeError::at(DecodeErrorKind::VlanTooMany, offset));
        }
        let tag = data
            .get(offset..)
            .and_then(|rest| rest.get(..vlan::LEN))
            .ok_or(DecodeError::at(DecodeErrorKind::VlanTruncated, offset))?;
        let vid = read_u16(tag, vlan::TCI) & vlan::VID_MASK;
        if tags == 0 {
            out.vlan = Some(vid);
        } else {
            out.inner_vlan = Some(vid);
        }
        ethertype = read_u16(tag, vlan::ETHERTYPE);
        offset += vlan::LEN;
        tags += 1;
    }
    if ethertype < ETHERTYPE_MIN {
        // 802.3 length field (LLC/SNAP follows) or a Linux pseudo-protocol: not IP.
        return Ok(None);
    }
    out.ethertype = Some(ethertype);
    let version = match ethertype {
        ETHERTYPE_IPV4 => IpVersion::V4,
        ETHERTYPE_IPV6 => IpVersion::V6,
        _ => return Ok(None),
    };
    Ok(Some(Network { offset, version }))
}

/// BSD null (either byte order) or loop (network order): a 4-byte address family.
fn null_family(data: &[u8], network_order: bool) -> Result<Option<Network>, DecodeError> {
    let Some(raw) = read_array::<4>(data, null::FAMILY) else {
        return Err(DecodeError::at(DecodeErrorKind::LinkTruncated, 0));
    };
    let be = u32::from_be_bytes(raw);
    let le = u32::from_le_bytes(raw);
    // The capturing host's byte order is unknown: a family valid in either order is taken.
    // No family value is valid in both orders, so this is unambiguous.
    let candidates: &[u32] = if network_order { &[be] } else { &[be, le] };
    for &family in candidates {
        let version = if family == null::AF_INET {
            IpVersion::V4
        } else if null::AF_INET6.contains(&family) {
            IpVersion::V6
        } else {
            continue;
        };
        return Ok(Some(Network {
            offset: null::LEN,
            version,
        }));
    }
    Err(DecodeError::at(DecodeErrorKind::UnknownAddressFamily, 0))
}

/// Raw IP: the version nibble says which.
fn raw(data: &[u8]) -> Result<Network, DecodeError> {
    let Some(&first) = data.first() else {
        return Err(DecodeError::at(DecodeErrorKind::LinkTruncated, 0));
    };
    let version = match first >> 4 {
        4 => IpVersion::V4,
        6 => IpVersion::V6,
        _ => return Err(DecodeError::at(DecodeErrorKind::IpBadVersion, 0)),
    };
    Ok(Network { offset: 0, version })
}

/// Linux cooked capture v1.
fn linux_sll(data: &[u8], out: &mut Decoded<'_>) -> Result<Option<Network>, DecodeError> {
    if data.len() < sll::LEN {
        return Err(DecodeError::at(DecodeErrorKind::LinkTruncated, 0));
    }
    let halen = read_u16(data, sll::HALEN);
    if usize::from(halen) == MAC_LEN && read_u16(data, sll::HATYPE) == ARPHRD_ETHER {
        out.src_mac = read_array(data, sll::ADDR.start..sll::ADDR.start + MAC_LEN);
    }
    ethertype_chain(data, sll::LEN, read_u16(data, sll::PROTOCOL), out)
}

/// Linux cooked capture v2.
fn linux_sll2(data: &[u8], out: &mut Decoded<'_>) -> Result<Option<Network>, DecodeError> {
    if data.len() < sll2::LEN {
        return Err(DecodeError::at(DecodeErrorKind::LinkTruncated, 0));
    }
    let halen = read_u8(data, sll2::HALEN);
    if usize::from(halen) == MAC_LEN && read_u16(data, sll2::HATYPE) == ARPHRD_ETHER {
        out.src_mac = read_array(data, sll2::ADDR.start..sll2::ADDR.start + MAC_LEN);
    }
    ethertype_chain(data, sll2::LEN, read_u16(data, sll2::PROTOCOL), out)
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
    use super::super::{decode, DecodeError, DecodeErrorKind as K, LinkType, Transport};
    use rstest::rstest;

    /// Ethernet II header with one 802.1Q tag.
    const ETH_VLAN: [u8; 18] = [
        0x00, 0x1d, 0x9c, 0xc8, 0x03, 0xe9, // destination MAC
        0x00, 0x0c, 0x29, 0x4f, 0x8e, 0x35, // source MAC
        0x81, 0x00, // TPID 802.1Q
        0xa0, 0x64, // TCI: PCP 5, DEI 0, VLAN id 100
        0x08, 0x00, // EtherType IPv4
    ];

    /// Ethernet II header with an 802.1ad outer tag and an 802.1Q inner tag.
    const ETH_QINQ: [u8; 22] = [
        0x00, 0x1d, 0x9c, 0xc8, 0x03, 0xe9, // destination MAC
        0x00, 0x0c, 0x29, 0x4f, 0x8e, 0x35, // source MAC
        0x88, 0xa8, // TPID 802.1ad (service tag)
        0x00, 0x0a, // TCI: VLAN id 10
        0x81, 0x00, // TPID 802.1Q (customer tag)
        0x0f, 0xff, // TCI: VLAN id 4095
        0x08, 0x00, // EtherType IPv4
    ];

    fn err(kind: K, offset: usize) -> Option<DecodeError> {
        Some(DecodeError { kind, offset })
    }

    /// The TCP segment of a decoded [`IPV4_TCP`], or a panic.
    fn assert_modbus_tcp(d: &super::super::Decoded<'_>) {
        match d.transport {
            Transport::Tcp(t) => {
                assert_eq!((t.src_port, t.dst_port), (49152, 502));
                assert_eq!(t.payload, &IPV4_TCP[IPV4_TCP_PAYLOAD..]);
            }
            other => panic!("expected TCP, got {other:?}"),
        }
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let f = frame(&[&ETH_IPV4, &IPV4_TCP]);
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!(d.dst_mac, Some(DST_MAC));
        assert_eq!(d.src_mac, Some(SRC_MAC));
        assert_eq!(d.ethertype, Some(0x0800));
        assert_eq!((d.vlan, d.inner_vlan), (None, None));
        assert_modbus_tcp(&d);
    }

    #[rstest]
    #[case::empty(0)]
    #[case::in_dst_mac(3)]
    #[case::at_src_mac(6)]
    #[case::at_ethertype(12)]
    #[case::in_ethertype(13)]
    fn ethernet_truncated(#[case] cut: usize) {
        let f = frame(&[&ETH_IPV4, &IPV4_TCP]);
        let d = decode(LinkType::Ethernet, &f[..cut], whole(&f));
        assert_eq!(d.error, err(K::LinkTruncated, 0));
        assert_eq!((d.src_mac, d.dst_mac, d.ethertype), (None, None, None));
    }

    #[test]
    fn single_vlan_tag() {
        let f = frame(&[&ETH_VLAN, &IPV4_TCP]);
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!((d.vlan, d.inner_vlan), (Some(100), None));
        assert_eq!(d.ethertype, Some(0x0800));
        assert_modbus_tcp(&d);
    }

    #[rstest]
    #[case::tpid_8021ad_8021q(0x88a8, 0x8100)]
    #[case::tpid_9100_8100(0x9100, 0x8100)]
    #[case::tpid_8100_8100(0x8100, 0x8100)]
    fn qinq(#[case] outer: u16, #[case] inner: u16) {
        let mut f = frame(&[&ETH_QINQ, &IPV4_TCP]);
        put16(&mut f, 12, outer);
        put16(&mut f, 16, inner);
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!((d.vlan, d.inner_vlan), (Some(10), Some(4095)));
        assert_eq!(d.ethertype, Some(0x0800));
        assert_modbus_tcp(&d);
    }

    #[test]
    fn third_vlan_tag_stops_with_vlan_too_many() {
        let mut f = frame(&[&ETH_QINQ, &[0x00, 0x05, 0x08, 0x00], &IPV4_TCP]);
        put16(&mut f, 20, 0x8100); // the inner tag's EtherType is a third TPID
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, err(K::VlanTooMany, 22));
        assert_eq!((d.vlan, d.inner_vlan), (Some(10), Some(4095)));
        assert_eq!((d.ethertype, d.ip), (None, None));
    }

    #[rstest]
    #[case::no_tci(14)]
    #[case::in_tci(15)]
    #[case::at_ethertype(16)]
    #[case::in_ethertype(17)]
    fn vlan_truncated(#[case] cut: usize) {
        let f = frame(&[&ETH_VLAN, &IPV4_TCP]);
        let d = decode(LinkType::Ethernet, &f[..cut], whole(&f));
        assert_eq!(d.error, err(K::VlanTruncated, 14));
        assert_eq!(d.src_mac, Some(SRC_MAC));
        assert_eq!((d.vlan, d.ethertype), (None, None));
    }

    #[rstest]
    #[case::no_tci(18)]
    #[case::in_tci(19)]
    #[case::at_ethertype(20)]
    #[case::in_ethertype(21)]
    fn inner_vlan_truncated(#[case] cut: usize) {
        let f = frame(&[&ETH_QINQ, &IPV4_TCP]);
        let d = decode(LinkType::Ethernet, &f[..cut], whole(&f));
        assert_eq!(d.error, err(K::VlanTruncated, 18));
        assert_eq!((d.vlan, d.inner_vlan), (Some(10), None));
    }

    #[test]
    fn ieee_802_3_length_field_is_not_ip_and_not_an_error() {
        let f = [
            0x01, 0x80, 0xc2, 0x00, 0x00, 0x00, // destination MAC (STP multicast)
            0x00, 0x0c, 0x29, 0x4f, 0x8e, 0x35, // source MAC
            0x00, 0x26, // 802.3 length 38
            0x42, 0x42, 0x03, // LLC: DSAP, SSAP (STP), control
        ];
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!(d.src_mac, Some(SRC_MAC));
        assert_eq!(
            (d.ethertype, d.ip, d.transport),
            (None, None, Transport::None)
        );
    }

    #[test]
    fn other_ethertype_is_recorded_not_decoded() {
        let mut f = frame(&[&ETH_IPV4, &[0u8; 28]]);
        put16(&mut f, 12, 0x0806); // ARP
        let d = decode(LinkType::Ethernet, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!((d.ethertype, d.ip), (Some(0x0806), None));
    }

    #[rstest]
    #[case::ipv4_le([2, 0, 0, 0], true)]
    #[case::ipv4_be([0, 0, 0, 2], true)]
    #[case::ipv6_netbsd_le([24, 0, 0, 0], false)]
    #[case::ipv6_freebsd_le([28, 0, 0, 0], false)]
    #[case::ipv6_darwin_le([30, 0, 0, 0], false)]
    #[case::ipv6_darwin_be([0, 0, 0, 30], false)]
    fn bsd_null(#[case] family: [u8; 4], #[case] v4: bool) {
        let payload: &[u8] = if v4 { &IPV4_TCP } else { &IPV6_UDP };
        let f = frame(&[&family, payload]);
        let d = decode(LinkType::Null, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!(d.ip.unwrap().src.is_ipv4(), v4);
        assert_eq!((d.src_mac, d.ethertype), (None, None));
    }

    #[rstest]
    #[case::unknown_family(LinkType::Null, [7, 0, 0, 0])]
    #[case::linux_af_inet6_is_not_bsd(LinkType::Null, [10, 0, 0, 0])]
    #[case::loop_is_network_order_only(LinkType::Loop, [2, 0, 0, 0])]
    fn bsd_unknown_family(#[case] link: LinkType, #[case] family: [u8; 4]) {
        let f = frame(&[&family, &IPV4_TCP]);
        let d = decode(link, &f, whole(&f));
        assert_eq!(d.error, err(K::UnknownAddressFamily, 0));
        assert_eq!(d.ip, None);
    }

    #[rstest]
    #[case::null_0(LinkType::Null, 0)]
    #[case::null_3(LinkType::Null, 3)]
    #[case::loop_0(LinkType::Loop, 0)]
    #[case::loop_2(LinkType::Loop, 2)]
    fn bsd_truncated(#[case] link: LinkType, #[case] cut: usize) {
        let f = frame(&[&[0, 0, 0, 2], &IPV4_TCP]);
        let d = decode(link, &f[..cut], whole(&f));
        assert_eq!(d.error, err(K::LinkTruncated, 0));
    }

    #[test]
    fn openbsd_loop() {
        let f = frame(&[&[0, 0, 0, 24], &IPV6_UDP]); // AF_INET6 (OpenBSD), network order
        let d = decode(LinkType::Loop, &f, whole(&f));
        assert_eq!(d.error, None);
        assert!(matches!(d.transport, Transport::Udp(u) if u.dst_port == 4840));
    }

    #[test]
    fn null_family_says_ipv4_but_packet_is_ipv6() {
        let f = frame(&[&[2, 0, 0, 0], &IPV6_UDP]);
        let d = decode(LinkType::Null, &f, whole(&f));
        assert_eq!(d.error, err(K::IpBadVersion, 4));
    }

    #[rstest]
    #[case::raw_v4(LinkType::Raw, &IPV4_TCP[..], None)]
    #[case::raw_v6(LinkType::Raw, &IPV6_UDP[..], None)]
    #[case::raw_version_5(LinkType::Raw, &[0x50, 0, 0, 0][..], err(K::IpBadVersion, 0))]
    #[case::raw_empty(LinkType::Raw, &[][..], err(K::LinkTruncated, 0))]
    #[case::ipv4(LinkType::Ipv4, &IPV4_TCP[..], None)]
    #[case::ipv4_given_v6(LinkType::Ipv4, &IPV6_UDP[..], err(K::IpBadVersion, 0))]
    #[case::ipv6(LinkType::Ipv6, &IPV6_UDP[..], None)]
    #[case::ipv6_given_v4(LinkType::Ipv6, &IPV4_TCP[..48], err(K::IpBadVersion, 0))]
    fn raw_ip(#[case] link: LinkType, #[case] f: &[u8], #[case] error: Option<DecodeError>) {
        let d = decode(link, f, whole(f));
        assert_eq!(d.error, error);
        assert_eq!(d.ip.is_some(), error.is_none());
        assert_eq!((d.src_mac, d.ethertype), (None, None));
    }

    #[test]
    fn linux_sll() {
        let f = frame(&[&SLL_IPV4, &IPV4_TCP]);
        let d = decode(LinkType::LinuxSll, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!((d.src_mac, d.dst_mac), (Some(SRC_MAC), None));
        assert_eq!(d.ethertype, Some(0x0800));
        assert_modbus_tcp(&d);
    }

    #[rstest]
    #[case::loopback_device(0x0304, 6)] // ARPHRD_LOOPBACK
    #[case::no_address(1, 0)]
    #[case::long_address(1, 8)]
    fn linux_sll_without_mac(#[case] hatype: u16, #[case] halen: u16) {
        let mut f = frame(&[&SLL_IPV4, &IPV4_TCP]);
        put16(&mut f, 2, hatype);
        put16(&mut f, 4, halen);
        let d = decode(LinkType::LinuxSll, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!(d.src_mac, None);
        assert_modbus_tcp(&d);
    }

    #[test]
    fn linux_sll_with_vlan_tag() {
        let mut f = frame(&[&SLL_IPV4, &[0x00, 0x07, 0x08, 0x00], &IPV4_TCP]);
        put16(&mut f, 14, 0x8100); // protocol 802.1Q; the tag: VLAN 7, then IPv4
        let d = decode(LinkType::LinuxSll, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!((d.vlan, d.ethertype), (Some(7), Some(0x0800)));
        assert_modbus_tcp(&d);
        assert_eq!(
            decode(LinkType::LinuxSll, &f[..18], whole(&f)).error,
            err(K::VlanTruncated, 16)
        );
    }

    #[test]
    fn linux_sll_pseudo_protocol_is_not_ip() {
        let mut f = frame(&[&SLL_IPV4, &[0xaa, 0xaa, 0x03]]);
        put16(&mut f, 14, 0x0004); // ETH_P_802_2: LLC frame
        let d = decode(LinkType::LinuxSll, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!((d.ethertype, d.ip), (None, None));
        assert_eq!(d.src_mac, Some(SRC_MAC));
    }

    #[rstest]
    #[case::empty(0)]
    #[case::at_hatype(2)]
    #[case::at_halen(4)]
    #[case::at_address(6)]
    #[case::at_protocol(14)]
    #[case::in_protocol(15)]
    fn linux_sll_truncated(#[case] cut: usize) {
        let f = frame(&[&SLL_IPV4, &IPV4_TCP]);
        let d = decode(LinkType::LinuxSll, &f[..cut], whole(&f));
        assert_eq!(d.error, err(K::LinkTruncated, 0));
        assert_eq!(d.src_mac, None);
    }

    #[test]
    fn linux_sll2() {
        let f = frame(&[&SLL2_IPV4, &IPV4_TCP]);
        let d = decode(LinkType::LinuxSll2, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!((d.src_mac, d.dst_mac), (Some(SRC_MAC), None));
        assert_eq!(d.ethertype, Some(0x0800));
        assert_modbus_tcp(&d);
    }

    #[test]
    fn linux_sll2_ipv6_without_mac() {
        let mut f = frame(&[&SLL2_IPV4, &IPV6_UDP]);
        put16(&mut f, 0, 0x86dd); // protocol IPv6
        put16(&mut f, 8, 0x0304); // ARPHRD_LOOPBACK
        let d = decode(LinkType::LinuxSll2, &f, whole(&f));
        assert_eq!(d.error, None);
        assert_eq!((d.src_mac, d.ethertype), (None, Some(0x86dd)));
        assert!(matches!(d.transport, Transport::Udp(u) if u.payload == [0xde, 0xad, 0xbe, 0xef]));
    }

    #[rstest]
    #[case::empty(0)]
    #[case::at_reserved(2)]
    #[case::at_ifindex(4)]
    #[case::at_hatype(8)]
    #[case::at_pkttype(10)]
    #[case::at_halen(11)]
    #[case::at_address(12)]
    #[case::in_address(19)]
    fn linux_sll2_truncated(#[case] cut: usize) {
        let f = frame(&[&SLL2_IPV4, &IPV4_TCP]);
        let d = decode(LinkType::LinuxSll2, &f[..cut], whole(&f));
        assert_eq!(d.error, err(K::LinkTruncated, 0));
    }

    #[test]
    fn other_link_type_is_unsupported() {
        let f = frame(&[&ETH_IPV4, &IPV4_TCP]);
        let d = decode(LinkType::Other(147), &f, whole(&f));
        assert_eq!(d.error, err(K::UnsupportedLinkType, 0));
        assert_eq!(d.src_mac, None);
    }
}
