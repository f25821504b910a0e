//! UA TCP transport (Part 6, 7.1): the 8-byte message header and the transport messages
//! HEL, ACK, ERR, RHE, and the secure conversation headers of OPN, MSG and CLO.

use super::limits::DecodeLimits;
use super::types::{DResult, Reader};
use nom::bytes::complete::take;
use nom::number::complete::{le_u32, le_u8};
use nom::IResult;
use nom::Parser;

/// Size of the message header: type (3), chunk type (1), message size (4).
pub const HEADER_LEN: usize = 8;

/// Transport message types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MsgType {
    /// Hello (client → server).
    Hel,
    /// Acknowledge (server → client).
    Ack,
    /// Error (either side, usually server).
    Err,
    /// Reverse Hello (server → client).
    Rhe,
    /// OpenSecureChannel.
    Opn,
    /// A service message chunk.
    Msg,
    /// CloseSecureChannel.
    Clo,
}

impl MsgType {
    /// Recognises the three type bytes.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        Some(match b {
            b"HEL" => MsgType::Hel,
            b"ACK" => MsgType::Ack,
            b"ERR" => MsgType::Err,
            b"RHE" => MsgType::Rhe,
            b"OPN" => MsgType::Opn,
            b"MSG" => MsgType::Msg,
            b"CLO" => MsgType::Clo,
            _ => return None,
        })
    }

    /// The three-letter name.
    pub fn as_str(self) -> &'static str {
        match self {
            MsgType::Hel => "HEL",
            MsgType::Ack => "ACK",
            MsgType::Err => "ERR",
            MsgType::Rhe => "RHE",
            MsgType::Opn => "OPN",
            MsgType::Msg => "MSG",
            MsgType::Clo => "CLO",
        }
    }

    /// Smallest valid message size (header included).
    pub fn min_size(self) -> u32 {
        match self {
            // header + 5 × u32 + endpoint URL length
            MsgType::Hel => 32,
            // header + 5 × u32
            MsgType::Ack => 28,
            // header + error + reason length
            MsgType::Err => 16,
            // header + two string lengths
            MsgType::Rhe => 16,
            // header + channel id + 3 lengths + sequence header
            MsgType::Opn => 32,
            // header + channel id + token id + sequence header
            MsgType::Msg | MsgType::Clo => 24,
        }
    }

    /// Whether a chunk type byte is valid for this message type.
    pub fn allows_chunk(self, c: u8) -> bool {
        match self {
            MsgType::Msg => matches!(c, b'F' | b'C' | b'A'),
            _ => c == b'F',
        }
    }

    /// True for the messages that carry a secure channel id after the header.
    pub fn has_channel(self) -> bool {
        matches!(self, MsgType::Opn | MsgType::Msg | MsgType::Clo)
    }
}

/// A checked message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Message type.
    pub msg_type: MsgType,
    /// Chunk type: `F` final, `C` intermediate, `A` abort.
    pub chunk: u8,
    /// Total size of the chunk, header included.
    pub size: u32,
}

/// Outcome of looking for a header at the start of some bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderCheck {
    /// A plausible header.
    Ok(Header),
    /// The bytes so far are a plausible header prefix.
    NeedMore,
    /// Not a header; the name says why.
    Invalid(&'static str),
}

fn raw_header(i: &[u8]) -> IResult<&[u8], (&[u8], u8, u32)> {
    (take(3usize), le_u8, le_u32).parse(i)
}

/// Checks a header at the start of `data`: known type, chunk type valid for it, and a size
/// between the type's minimum and `max_size`.
pub fn check_header(data: &[u8], max_size: u32) -> HeaderCheck {
    let type_bytes = data.get(..3.min(data.len())).unwrap_or_default();
    let known_prefix = [b"HEL", b"ACK", b"ERR", b"RHE", b"OPN", b"MSG", b"CLO"]
        .iter()
        .any(|t| t.starts_with(type_bytes));
    if !known_prefix {
        return HeaderCheck::Invalid("unknown_message_type");
    }
    let Ok((_, (t, chunk, size))) = raw_header(data) else {
        if let (Some(t), Some(&c)) = (data.get(..3), data.get(3)) {
            if let Some(mt) = MsgType::from_bytes(t) {
                if !mt.allows_chunk(c) {
                    return HeaderCheck::Invalid("bad_chunk_type");
                }
            }
        }
        return HeaderCheck::NeedMore;
    };
    let Some(msg_type) = MsgType::from_bytes(t) else {
        return HeaderCheck::Invalid("unknown_message_type");
    };
    if !msg_type.allows_chunk(chunk) {
        return HeaderCheck::Invalid("bad_chunk_type");
    }
    if size < msg_type.min_size() {
        return HeaderCheck::Invalid("message_size_too_small");
    }
    if size > max_size {
        return HeaderCheck::Invalid("message_size_too_large");
    }
    HeaderCheck::Ok(Header {
        msg_type,
        chunk,
        size,
    })
}

/// Hello: what the client asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello<'a> {
    /// Protocol version.
    pub version: u32,
    /// Receive buffer size.
    pub receive_buffer: u32,
    /// Send buffer size.
    pub send_buffer: u32,
    /// Largest message the client accepts (0 = no limit).
    pub max_message_size: u32,
    /// Most chunks per message the client accepts (0 = no limit).
    pub max_chunk_count: u32,
    /// Endpoint URL the client wants.
    pub endpoint_url: Option<&'a [u8]>,
}

/// Decodes a Hello body (after the header).
pub fn parse_hello<'a>(r: &mut Reader<'a>) -> DResult<Hello<'a>> {
    Ok(Hello {
        version: r.u32()?,
        receive_buffer: r.u32()?,
        send_buffer: r.u32()?,
        max_message_size: r.u32()?,
        max_chunk_count: r.u32()?,
        endpoint_url: r.string()?,
    })
}

/// Acknowledge: what the server grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acknowledge {
    /// Protocol version.
    pub version: u32,
    /// Receive buffer size.
    pub receive_buffer: u32,
    /// Send buffer size.
    pub send_buffer: u32,
    /// Largest message accepted (0 = no limit).
    pub max_message_size: u32,
    /// Most chunks per message (0 = no limit).
    pub max_chunk_count: u32,
}

/// Decodes an Acknowledge body.
pub fn parse_ack(r: &mut Reader<'_>) -> DResult<Acknowledge> {
    Ok(Acknowledge {
        version: r.u32()?,
        receive_buffer: r.u32()?,
        send_buffer: r.u32()?,
        max_message_size: r.u32()?,
        max_chunk_count: r.u32()?,
    })
}

/// Error message: a status code and a reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorMsg<'a> {
    /// Status code.
    pub code: u32,
    /// Reason text.
    pub reason: Option<&'a [u8]>,
}

/// Decodes an Error body.
pub fn parse_error<'a>(r: &mut Reader<'a>) -> DResult<ErrorMsg<'a>> {
    Ok(ErrorMsg {
        code: r.u32()?,
        reason: r.string()?,
    })
}

/// Reverse Hello: a server announcing itself to a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReverseHello<'a> {
    /// Server application URI.
    pub server_uri: Option<&'a [u8]>,
    /// Endpoint URL.
    pub endpoint_url: Option<&'a [u8]>,
}

/// Decodes a Reverse Hello body.
pub fn parse_reverse_hello<'a>(r: &mut Reader<'a>) -> DResult<ReverseHello<'a>> {
    Ok(ReverseHello {
        server_uri: r.string()?,
        endpoint_url: r.string()?,
    })
}

/// The asymmetric security header of OPN (after the secure channel id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsymHeader<'a> {
    /// Security policy URI.
    pub policy_uri: Option<&'a [u8]>,
    /// Sender certificate (DER, possibly a chain).
    pub sender_certificate: Option<&'a [u8]>,
    /// SHA-1 thumbprint of the receiver's certificate.
    pub receiver_thumbprint: Option<&'a [u8]>,
}

/// Decodes the asymmetric security header.
pub fn parse_asym_header<'a>(r: &mut Reader<'a>) -> DResult<AsymHeader<'a>> {
    Ok(AsymHeader {
        policy_uri: r.string()?,
        sender_certificate: r.bytestring()?,
        receiver_thumbprint: r.bytestring()?,
    })
}

/// The sequence header: sequence number and request id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqHeader {
    /// Sequence number of the chunk.
    pub sequence: u32,
    /// Request id shared by a request's chunks and its response's chunks.
    pub request_id: u32,
}

/// Decodes a sequence header.
pub fn parse_seq_header(r: &mut Reader<'_>) -> DResult<SeqHeader> {
    Ok(SeqHeader {
        sequence: r.u32()?,
        request_id: r.u32()?,
    })
}

/// The security policy URI of "no security".
pub const POLICY_NONE: &[u8] = b"http://opcfoundation.org/UA/SecurityPolicy#None";

/// The short name of a policy URI (text after `#`).
pub fn policy_short(uri: &[u8]) -> String {
    let s = String::from_utf8_lossy(uri);
    s.rsplit('#').next().unwrap_or_default().to_string()
}

/// Says whether the first bytes of a stream are UA TCP: a known message type, a chunk type
/// valid for it and a plausible size. A stream picked up mid-connection (OPN, MSG) matches.
pub fn probe(data: &[u8], limits: &DecodeLimits) -> super::Probe {
    if data.is_empty() {
        return super::Probe::NeedMore;
    }
    match check_header(data, limits.max_declared_chunk_size) {
        HeaderCheck::Ok(_) => super::Probe::Match,
        HeaderCheck::NeedMore => super::Probe::NeedMore,
        HeaderCheck::Invalid(_) => super::Probe::NoMatch,
    }
}
