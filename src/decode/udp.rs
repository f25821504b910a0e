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
