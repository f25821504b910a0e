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
        Self::from_array(<[u8; 3]>::try_from(b).ok()?)
    }

    /// Recognises the three type bytes, as an array (compared as integers, not as strings).
    fn from_array(b: [u8; 3]) -> Option<Self> {
        Some(match &b {
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

    /// Whether a chunk type byte can be framed for this message type. Part 6 (6.7.2.2) says
    /// IsFinal is always `F` except for MSG, but an OPN carrying a long certificate chain may
    /// not fit a small receive buffer and some stacks chunk it anyway: OPN chunks are framed
    /// and reassembled, and the parser flags them (`chunked_open_secure_channel`).
    pub fn allows_chunk(self, c: u8) -> bool {
        match self {
            MsgType::Msg | MsgType::Opn => matches!(c, b'F' | b'C' | b'A'),
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
    if let Some(&[t0, t1, t2, chunk, s0, s1, s2, s3]) = data.first_chunk::<HEADER_LEN>() {
        // A whole header: the same checks as below without the prefix search.
        let Some(msg_type) = MsgType::from_array([t0, t1, t2]) else {
            return HeaderCheck::Invalid("unknown_message_type");
        };
        return checked(
            msg_type,
            chunk,
            u32::from_le_bytes([s0, s1, s2, s3]),
            max_size,
        );
    }
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
    checked(msg_type, chunk, size, max_size)
}

/// The checks of a whole header once its type is known.
fn checked(msg_type: MsgType, chunk: u8, size: u32, max_size: u32) -> HeaderCheck {
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

/// The first certificate of a sender certificate field, which may hold a chain of DER
/// certificates back to back (Part 6, 6.7.2.3): its thumbprint names the sender. The outer
/// DER SEQUENCE header gives the length; when it is not a plausible one, the whole field.
pub fn leaf_certificate(field: &[u8]) -> &[u8] {
    let len = match field {
        [0x30, n, rest @ ..] if *n < 0x80 => Some((2, usize::from(*n), rest)),
        [0x30, l @ 0x81..=0x84, rest @ ..] => {
            let k = usize::from(l & 0x0f);
            rest.get(..k).map(|b| {
                let n = b.iter().fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
                (2 + k, n, rest.get(k..).unwrap_or_default())
            })
        }
        _ => None,
    };
    match len {
        Some((head, n, rest)) if n <= rest.len() => field.get(..head + n).unwrap_or(field),
        _ => field,
    }
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

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::proto::Probe;
    use rstest::rstest;

    const MAX: u32 = 16 << 20;

    #[rstest]
    #[case(b"HELF\x20\0\0\0", HeaderCheck::Ok(Header { msg_type: MsgType::Hel, chunk: b'F', size: 32 }))]
    #[case(b"ACKF\x1c\0\0\0", HeaderCheck::Ok(Header { msg_type: MsgType::Ack, chunk: b'F', size: 28 }))]
    #[case(b"ERRF\x10\0\0\0", HeaderCheck::Ok(Header { msg_type: MsgType::Err, chunk: b'F', size: 16 }))]
    #[case(b"RHEF\x10\0\0\0", HeaderCheck::Ok(Header { msg_type: MsgType::Rhe, chunk: b'F', size: 16 }))]
    #[case(b"OPNF\x20\0\0\0", HeaderCheck::Ok(Header { msg_type: MsgType::Opn, chunk: b'F', size: 32 }))]
    #[case(b"MSGC\x18\0\0\0", HeaderCheck::Ok(Header { msg_type: MsgType::Msg, chunk: b'C', size: 24 }))]
    #[case(b"OPNC\x20\0\0\0", HeaderCheck::Ok(Header { msg_type: MsgType::Opn, chunk: b'C', size: 32 }))]
    #[case(b"CLOC\x18\0\0\0", HeaderCheck::Invalid("bad_chunk_type"))]
    #[case(b"MSGA\x18\0\0\0", HeaderCheck::Ok(Header { msg_type: MsgType::Msg, chunk: b'A', size: 24 }))]
    #[case(b"CLOF\x18\0\0\0", HeaderCheck::Ok(Header { msg_type: MsgType::Clo, chunk: b'F', size: 24 }))]
    #[case(b"HELC\x20\0\0\0", HeaderCheck::Invalid("bad_chunk_type"))] // HEL is never chunked
    #[case(b"MSGX\x18\0\0\0", HeaderCheck::Invalid("bad_chunk_type"))]
    #[case(b"MSGF\x17\0\0\0", HeaderCheck::Invalid("message_size_too_small"))]
    #[case(
        b"MSGF\x00\x00\x00\x02",
        HeaderCheck::Invalid("message_size_too_large")
    )] // 32 MiB
    #[case(b"GET / HT", HeaderCheck::Invalid("unknown_message_type"))]
    #[case(b"MS", HeaderCheck::NeedMore)]
    #[case(b"MSGF\x18\0", HeaderCheck::NeedMore)]
    #[case(b"HELC", HeaderCheck::Invalid("bad_chunk_type"))]
    #[case(b"", HeaderCheck::NeedMore)]
    fn headers(#[case] bytes: &[u8], #[case] want: HeaderCheck) {
        assert_eq!(check_header(bytes, MAX), want);
    }

    #[rstest]
    #[case(b"HELF\x38\0\0\0", Probe::Match)]
    #[case(b"MSGF\x79\0\0\0\x04\0\0\0", Probe::Match)] // picked up mid-stream
    #[case(b"HEL", Probe::NeedMore)]
    #[case(b"", Probe::NeedMore)]
    #[case(b"\x00\x01\x00\x00\x00\x06\x01\x03", Probe::NoMatch)] // Modbus MBAP
    #[case(b"HELF\x01\0\0\0", Probe::NoMatch)]
    fn probes(#[case] bytes: &[u8], #[case] want: Probe) {
        assert_eq!(probe(bytes, &DecodeLimits::default()), want);
    }

    #[test]
    fn hello_ack_error_reverse_hello() {
        let l = DecodeLimits::default();
        let hel = [
            0, 0, 0, 0, // protocol version 0
            0xff, 0xff, 0, 0, // receive buffer 65535
            0xff, 0xff, 0, 0, // send buffer 65535
            0, 0, 0, 0, // max message size 0
            0, 0, 0, 0, // max chunk count 0
            3, 0, 0, 0, b'o', b'p', b'c', // endpoint URL "opc"
        ];
        let h = parse_hello(&mut Reader::new(&hel, &l)).unwrap();
        assert_eq!(
            (h.receive_buffer, h.endpoint_url),
            (65535, Some(&b"opc"[..]))
        );
        assert!(parse_hello(&mut Reader::new(&hel[..22], &l)).is_err());
        let a = parse_ack(&mut Reader::new(&hel[..20], &l)).unwrap();
        assert_eq!(a.send_buffer, 65535);
        let err = [
            0, 0, 0x07, 0x80, // BadDecodingError
            2, 0, 0, 0, b'n', b'o', // reason "no"
        ];
        let e = parse_error(&mut Reader::new(&err, &l)).unwrap();
        assert_eq!((e.code, e.reason), (0x8007_0000, Some(&b"no"[..])));
        let rhe = [
            1, 0, 0, 0, b'u', // server URI "u"
            0xff, 0xff, 0xff, 0xff, // endpoint URL null
        ];
        let r = parse_reverse_hello(&mut Reader::new(&rhe, &l)).unwrap();
        assert_eq!((r.server_uri, r.endpoint_url), (Some(&b"u"[..]), None));
    }

    #[rstest]
    #[case(&[0x30, 0x02, 0xaa, 0xbb], 4)] // short form: one certificate
    #[case(&[0x30, 0x01, 0xaa, 0x30, 0x00], 3)] // a chain: the first certificate
    #[case(&[0x30, 0x81, 0x01, 0xaa, 0xbb], 4)] // long form, one length byte
    #[case(&[0x30, 0x82, 0x00, 0x01, 0xaa], 5)] // long form, two length bytes
    #[case(&[0x30, 0x82, 0xff, 0xff, 0xaa], 5)] // declared longer than the field: whole field
    #[case(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], 6)] // 4 GiB declared: whole field
    #[case(&[0x30, 0x85, 0, 0, 0, 0, 1], 7)] // five length bytes are not DER here
    #[case(&[0x30, 0x82, 0x00], 3)] // truncated length
    #[case(&[0x31, 0x01, 0x00], 3)] // not a SEQUENCE
    #[case(&[], 0)]
    fn leaf_certificates(#[case] field: &[u8], #[case] want: usize) {
        assert_eq!(leaf_certificate(field), &field[..want]);
    }

    #[test]
    fn security_headers() {
        let l = DecodeLimits::default();
        let asym = [
            4, 0, 0, 0, b'x', b'#', b'N', b'o', // policy URI "x#No"
            2, 0, 0, 0, 0x30, 0x82, // sender certificate (2 bytes)
            0xff, 0xff, 0xff, 0xff, // receiver thumbprint null
            7, 0, 0, 0, // sequence number 7
            9, 0, 0, 0, // request id 9
        ];
        let mut r = Reader::new(&asym, &l);
        let a = parse_asym_header(&mut r).unwrap();
        assert_eq!(a.sender_certificate, Some(&[0x30, 0x82][..]));
        assert_eq!(policy_short(a.policy_uri.unwrap()), "No");
        let s = parse_seq_header(&mut r).unwrap();
        assert_eq!((s.sequence, s.request_id), (7, 9));
    }
}
