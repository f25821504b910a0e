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
