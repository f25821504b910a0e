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
