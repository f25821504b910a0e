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
