//! Pure `nom` parsers for Modbus/TCP: MBAP framing and every public function's PDU.
//!
//! Framing ([`parse_adu`]) is streaming: too few bytes give `Incomplete`, a header that cannot
//! be framed gives an error. Once framed, a PDU is decoded with complete parsers and never
//! fails: what breaks the specification becomes [`Violations`] on the returned [`Pdu`], and a
//! body too short to decode is kept raw.

use super::types::{
    device_object_name, exception_possible, is_plausible_function, limits, DeviceId, DeviceObjects,
    Mbap, Pdu, Request, Response, Violations, FC_UMAS, MAX_FRAMED_LENGTH, MAX_SPEC_LENGTH,
    MBAP_LEN, MEI_READ_DEVICE_ID, MIN_SPEC_LENGTH,
};
use nom::number::complete::{be_u16, u8 as be_u8};
use nom::IResult;

type Res<'a, T> = IResult<&'a [u8], T>;

/// Parses the 7-byte MBAP header (streaming: `Incomplete` when fewer bytes are present).
pub fn parse_mbap(i: &[u8]) -> Res<'_, Mbap> {
    use nom::number::streaming::{be_u16, u8};
    let (i, transaction_id) = be_u16(i)?;
    let (i, protocol_id) = be_u16(i)?;
    let (i, length) = be_u16(i)?;
    let (i, unit_id) = u8(i)?;
    Ok((
        i,
        Mbap {
            transaction_id,
            protocol_id,
            length,
            unit_id,
        },
    ))
}

/// Frames one ADU: the MBAP header and its PDU bytes (function code first; empty when the
/// length is 1). Fails on a length of 0, above [`MAX_FRAMED_LENGTH`], or a protocol id other
/// than 0 together with a length above 254 (garbage, not Modbus). Streaming.
pub fn parse_adu(i: &[u8]) -> Res<'_, (Mbap, &[u8])> {
    let (rest, h) = parse_mbap(i)?;
    if !frameable(&h) {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        )));
    }
    let body_len = usize::from(h.length).saturating_sub(1);
    let (rest, pdu) = nom::bytes::streaming::take(body_len)(rest)?;
    Ok((rest, (h, pdu)))
}

/// Frames one ADU like [`parse_adu`] when that succeeds, without `nom`: the header, the PDU
/// (unit id excluded) and the bytes after it. `None` when [`parse_adu`] would not succeed
/// (too few bytes, or a header that cannot be framed): call it for its answer.
#[inline]
pub fn frame_adu(i: &[u8]) -> Option<(Mbap, &[u8], &[u8])> {
    let (head, rest) = i.split_first_chunk::<MBAP_LEN>()?;
    let [t0, t1, p0, p1, l0, l1, unit_id] = *head;
    let h = Mbap {
        transaction_id: u16::from_be_bytes([t0, t1]),
        protocol_id: u16::from_be_bytes([p0, p1]),
        length: u16::from_be_bytes([l0, l1]),
        unit_id,
    };
    if !frameable(&h) {
        return None;
    }
    let (pdu, tail) = rest.split_at_checked(usize::from(h.length).saturating_sub(1))?;
    Some((h, pdu, tail))
}

/// Decodes a request PDU: [`parse_request`], with the common reads and single writes (the
/// function's exact body length) decoded directly.
#[inline]
pub fn decode_request(fc: u8, body: &[u8]) -> Pdu<Request<'_>> {
    if let &[a, b, c, d] = body {
        let (x, y) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
        match fc {
            1..=4 => {
                let max = if fc <= 2 {
                    limits::READ_BITS
                } else {
                    limits::READ_REGISTERS
                };
                return Pdu {
                    function: fc,
                    body: Request::Read {
                        start: x,
                        quantity: y,
                    },
                    violations: quantity_check(y, max) | address_check(x, y),
                };
            }
            5 | 6 => {
                return Pdu {
                    function: fc,
                    body: Request::WriteSingle {
                        address: x,
                        value: y,
                    },
                    violations: coil_check(fc, y),
                };
            }
            _ => {}
        }
    }
    parse_request(fc, body)
}

/// Decodes a response PDU: [`parse_response`], with read data whose byte count matches the
/// body and the echoes of writes (their exact body length) decoded directly.
#[inline]
pub fn decode_response(fc: u8, body: &[u8]) -> Pdu<Response<'_>> {
    match (fc, body) {
        (1..=4, [byte_count, data @ ..]) if usize::from(*byte_count) == data.len() => {
            let byte_count = *byte_count;
            let mut v = Violations::NONE;
            if fc >= 3 && byte_count % 2 != 0 {
                v |= Violations::BYTE_COUNT_MISMATCH;
            }
            if byte_count == 0 {
                v |= Violations::QUANTITY_OUT_OF_RANGE;
            }
            Pdu {
                function: fc,
                body: Response::ReadData { byte_count, data },
                violations: v,
            }
        }
        (5 | 6 | 15 | 16, &[a, b, c, d]) => {
            let (x, y) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
            if fc <= 6 {
                Pdu {
                    function: fc,
                    body: Response::WriteSingle {
                        address: x,
                        value: y,
                    },
                    violations: coil_check(fc, y),
                }
            } else {
                let max = if fc == 15 {
                    limits::WRITE_BITS
                } else {
                    limits::WRITE_REGISTERS
                };
                Pdu {
                    function: fc,
                    body: Response::WriteMultiple {
                        start: x,
                        quantity: y,
                    },
                    violations: quantity_check(y, max) | address_check(x, y),
                }
            }
        }
        _ => parse_response(fc, body),
    }
}

/// Whether a header can be framed at all while in sync.
pub fn frameable(h: &Mbap) -> bool {
    h.length >= 1
        && h.length <= MAX_FRAMED_LENGTH
        && (h.protocol_id == 0 || h.length <= MAX_SPEC_LENGTH)
}

/// Violations of the MBAP header alone.
pub fn header_violations(h: &Mbap) -> Violations {
    let mut v = Violations::NONE;
    if h.protocol_id != 0 {
        v |= Violations::PROTOCOL_ID_NONZERO;
    }
    if !(MIN_SPEC_LENGTH..=MAX_SPEC_LENGTH).contains(&h.length) {
        v |= Violations::LENGTH_OUT_OF_RANGE;
    }
    v
}

/// Strict plausibility of a header and function code, used to detect and to resynchronise:
/// protocol id 0, length 2..=254, and a public, user-defined or UMAS function (or its
/// exception).
pub fn plausible(h: &Mbap, fc: u8) -> bool {
    shaped(h) && is_plausible_function(fc)
}

/// Answer of [`candidate_at`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Candidate {
    /// A plausible frame starts here (and the next one too, when its bytes are present).
    Yes,
    /// Not a frame start.
    No,
    /// Too few bytes to judge (fewer than 8, or a plausible frame not yet complete when
    /// `need_whole` is set).
    NeedMore,
}

/// Judges whether a frame starts at the beginning of `data`.
///
/// The header must have protocol id 0 and a length of 2..=254 ([`shaped`]). Then evidence is
/// needed: a plausible function code ([`plausible`]), or failing that the structure itself
/// (the whole frame is present and ends exactly where the data ends). When the whole frame and
/// the next header are present, the next header must be [`shaped`] too. With `need_whole`,
/// a frame not yet complete is `NeedMore` even with a plausible function code.
pub fn candidate_at(data: &[u8], need_whole: bool) -> Candidate {
    let Some((h, fc)) = header_and_fc(data) else {
        return Candidate::NeedMore;
    };
    if !shaped(&h) {
        return Candidate::No;
    }
    let known = is_plausible_function(fc);
    let end = MBAP_LEN - 1 + usize::from(h.length);
    match data.get(end..) {
        None if need_whole || !known => Candidate::NeedMore,
        None | Some([]) => Candidate::Yes,
        Some(next) => match header_and_fc(next) {
            None if known => Candidate::Yes,
            None => Candidate::NeedMore,
            Some((h2, _)) if shaped(&h2) => Candidate::Yes,
            Some(_) => Candidate::No,
        },
    }
}

/// Protocol id 0 and a length within the specification's 2..=254.
pub fn shaped(h: &Mbap) -> bool {
    h.protocol_id == 0 && (MIN_SPEC_LENGTH..=MAX_SPEC_LENGTH).contains(&h.length)
}

fn header_and_fc(data: &[u8]) -> Option<(Mbap, u8)> {
    let (rest, h) = parse_mbap(data).ok()?;
    let fc = *rest.first()?;
    Some((h, fc))
}

fn pdu<T>(function: u8, res: Res<'_, (T, Violations)>, raw: impl FnOnce() -> T) -> Pdu<T> {
    match res {
        Ok((rest, (body, mut violations))) => {
            if !rest.is_empty() {
                violations |= Violations::LENGTH_MISMATCH;
            }
            Pdu {
                function,
                body,
                violations,
            }
        }
        Err(_) => Pdu {
            function,
            body: raw(),
            violations: Violations::LENGTH_MISMATCH,
        },
    }
}

/// Takes `n` bytes, or all that is left (flagged `length_mismatch`) when fewer remain.
fn counted(i: &[u8], n: usize) -> (&[u8], &[u8], Violations) {
    match i.split_at_checked(n) {
        Some((data, rest)) => (data, rest, Violations::NONE),
        None => (i, &[], Violations::LENGTH_MISMATCH),
    }
}

fn quantity_check(quantity: u16, max: u16) -> Violations {
    if quantity == 0 || quantity > max {
        Violations::QUANTITY_OUT_OF_RANGE
    } else {
        Violations::NONE
    }
}

fn address_check(start: u16, quantity: u16) -> Violations {
    if u32::from(start) + u32::from(quantity) > 0x1_0000 {
        Violations::ADDRESS_OVERFLOW
    } else {
        Violations::NONE
    }
}

fn coil_check(fc: u8, value: u16) -> Violations {
    if fc == 5 && value != 0x0000 && value != 0xFF00 {
        Violations::INVALID_COIL_VALUE
    } else {
        Violations::NONE
    }
}

/// Bytes needed for `quantity` packed coils.
pub fn bit_bytes(quantity: u16) -> usize {
    usize::from(quantity).div_ceil(8)
}

/// Decodes a request PDU: `fc` is its function code, `body` the bytes after it.
pub fn parse_request(fc: u8, body: &[u8]) -> Pdu<Request<'_>> {
    let raw = || Request::Raw { data: body };
    if fc & 0x80 != 0 {
        return Pdu {
            function: fc,
            body: raw(),
            violations: Violations::EXCEPTION_IN_REQUEST,
        };
    }
    let res = match fc {
        1..=4 => req_read(fc, body),
        5 | 6 => req_write_single(fc, body),
        7 | 11 | 12 | 17 => Ok((body, (Request::Empty, Violations::NONE))),
        8 => diag(body)
            .map(|(i, (sub, data))| (i, (Request::Diagnostics { sub, data }, Violations::NONE))),
        15 | 16 => req_write_multiple(fc, body),
        20 => req_read_file(body),
        21 => write_file(body).map(|(i, (byte_count, data, v))| {
            (i, (Request::WriteFileRecord { byte_count, data }, v))
        }),
        22 => mask(body).map(|(i, (address, and_mask, or_mask))| {
            (
                i,
                (
                    Request::MaskWrite {
                        address,
                        and_mask,
                        or_mask,
                    },
                    Violations::NONE,
                ),
            )
        }),
        23 => req_read_write(body),
        24 => {
            be_u16(body).map(|(i, pointer)| (i, (Request::ReadFifo { pointer }, Violations::NONE)))
        }
        43 => req_mei(body),
        FC_UMAS => umas(body).map(|(i, (pair, code, data))| {
            (i, (Request::Umas { pair, code, data }, Violations::NONE))
        }),
        _ => Ok((&[][..], (raw(), Violations::NONE))),
    };
    pdu(fc, res, raw)
}

fn req_read(fc: u8, i: &[u8]) -> Res<'_, (Request<'_>, Violations)> {
    let (i, start) = be_u16(i)?;
    let (i, quantity) = be_u16(i)?;
    let max = if fc <= 2 {
        limits::READ_BITS
    } else {
        limits::READ_REGISTERS
    };
    let v = quantity_check(quantity, max) | address_check(start, quantity);
    Ok((i, (Request::Read { start, quantity }, v)))
}

fn req_write_single(fc: u8, i: &[u8]) -> Res<'_, (Request<'_>, Violations)> {
    let (i, address) = be_u16(i)?;
    let (i, value) = be_u16(i)?;
    Ok((
        i,
        (
            Request::WriteSingle { address, value },
            coil_check(fc, value),
        ),
    ))
}

fn req_write_multiple(fc: u8, i: &[u8]) -> Res<'_, (Request<'_>, Violations)> {
    let (i, start) = be_u16(i)?;
    let (i, quantity) = be_u16(i)?;
    let (i, byte_count) = be_u8(i)?;
    let (data, i, mut v) = counted(i, usize::from(byte_count));
    let (max, expected) = if fc == 15 {
        (limits::WRITE_BITS, bit_bytes(quantity))
    } else {
        (limits::WRITE_REGISTERS, usize::from(quantity) * 2)
    };
    v |= quantity_check(quantity, max) | address_check(start, quantity);
    if usize::from(byte_count) != expected {
        v |= Violations::BYTE_COUNT_MISMATCH;
    }
    Ok((
        i,
        (
            Request::WriteMultiple {
                start,
                quantity,
                byte_count,
                data,
            },
            v,
        ),
    ))
}

/// One FC 20 sub-request: (reference type, file number, record number, record length).
pub fn read_file_subrequests(data: &[u8]) -> impl Iterator<Item = (u8, u16, u16, u16)> + '_ {
    data.chunks_exact(7).filter_map(|c| {
        let (_, (r, f, n, l)) = (be_u8::<_, nom::error::Error<&[u8]>>, be_u16, be_u16, be_u16)
            .parse_complete(c)
            .ok()?;
        Some((r, f, n, l))
    })
}

use nom::Parser;

fn req_read_file(i: &[u8]) -> Res<'_, (Request<'_>, Violations)> {
    let (i, byte_count) = be_u8(i)?;
    let (data, i, mut v) = counted(i, usize::from(byte_count));
    if !(7..=0xF5).contains(&byte_count) || usize::from(byte_count) % 7 != 0 {
        v |= Violations::BYTE_COUNT_MISMATCH;
    }
    if read_file_subrequests(data).any(|(r, ..)| r != 6) {
        v |= Violations::INVALID_REFERENCE_TYPE;
    }
    Ok((i, (Request::ReadFileRecord { byte_count, data }, v)))
}

/// One FC 21 sub-request (or FC 20 sub-response data): reference type, file, record, values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRecord<'a> {
    /// Reference type (6).
    pub reference_type: u8,
    /// File number.
    pub file: u16,
    /// Record number.
    pub record: u16,
    /// Record data (big-endian registers).
    pub data: &'a [u8],
}

/// Walks FC 21 sub-requests without allocating; [`FileRecords::exact`] says, once the walk
/// is over, whether the bytes ended exactly after the last record.
pub fn write_file_records(data: &[u8]) -> FileRecords<'_> {
    FileRecords {
        rest: data,
        broken: false,
    }
}

/// Iterator of [`write_file_records`].
#[derive(Clone, Debug)]
pub struct FileRecords<'a> {
    rest: &'a [u8],
    broken: bool,
}

impl FileRecords<'_> {
    /// True when the walk so far found no cut or malformed record (complete once the
    /// iterator is exhausted).
    pub fn exact(&self) -> bool {
        !self.broken
    }
}

impl<'a> Iterator for FileRecords<'a> {
    type Item = FileRecord<'a>;

    fn next(&mut self) -> Option<FileRecord<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = (be_u8::<_, nom::error::Error<&[u8]>>, be_u16, be_u16, be_u16)
            .parse_complete(self.rest)
            .ok()
            .and_then(|(rest, (reference_type, file, record, len))| {
                let (data, rest) = rest.split_at_checked(usize::from(len) * 2)?;
                Some((
                    FileRecord {
                        reference_type,
                        file,
                        record,
                        data,
                    },
                    rest,
                ))
            });
        match parsed {
            Some((r, rest)) => {
                self.rest = rest;
                Some(r)
            }
            None => {
                self.broken = true;
                self.rest = &[];
                None
            }
        }
    }
}

fn write_file(i: &[u8]) -> Res<'_, (u8, &[u8], Violations)> {
    let (i, byte_count) = be_u8(i)?;
    let (data, i, mut v) = counted(i, usize::from(byte_count));
    let mut records = write_file_records(data);
    if records.by_ref().any(|r| r.reference_type != 6) {
        v |= Violations::INVALID_REFERENCE_TYPE;
    }
    records.by_ref().for_each(drop);
    if !records.exact() || !(0x09..=0xFB).contains(&byte_count) {
        v |= Violations::BYTE_COUNT_MISMATCH;
    }
    Ok((i, (byte_count, data, v)))
}

fn diag(i: &[u8]) -> Res<'_, (u16, &[u8])> {
    let (i, sub) = be_u16(i)?;
    Ok((&[], (sub, i)))
}

fn mask(i: &[u8]) -> Res<'_, (u16, u16, u16)> {
    (be_u16, be_u16, be_u16).parse_complete(i)
}

fn umas(i: &[u8]) -> Res<'_, (u8, u8, &[u8])> {
    let (i, pair) = be_u8(i)?;
    let (i, code) = be_u8(i)?;
    Ok((&[], (pair, code, i)))
}

fn req_read_write(i: &[u8]) -> Res<'_, (Request<'_>, Violations)> {
    let (i, (read_start, read_quantity, write_start, write_quantity, byte_count)) =
        (be_u16, be_u16, be_u16, be_u16, be_u8).parse_complete(i)?;
    let (data, i, mut v) = counted(i, usize::from(byte_count));
    v |= quantity_check(read_quantity, limits::READ_REGISTERS)
        | quantity_check(write_quantity, limits::READ_WRITE_WRITE_REGISTERS)
        | address_check(read_start, read_quantity)
        | address_check(write_start, write_quantity);
    if usize::from(byte_count) != usize::from(write_quantity) * 2 {
        v |= Violations::BYTE_COUNT_MISMATCH;
    }
    Ok((
        i,
        (
            Request::ReadWrite {
                read_start,
                read_quantity,
                write_start,
                write_quantity,
                byte_count,
                data,
            },
            v,
        ),
    ))
}

fn req_mei(i: &[u8]) -> Res<'_, (Request<'_>, Violations)> {
    let (i, mei_type) = be_u8(i)?;
    if mei_type == MEI_READ_DEVICE_ID {
        let (i, code) = be_u8(i)?;
        let (i, object_id) = be_u8(i)?;
        let v = if (1..=4).contains(&code) {
            Violations::NONE
        } else {
            Violations::INVALID_DEVICE_ID_CODE
        };
        Ok((i, (Request::ReadDeviceId { code, object_id }, v)))
    } else {
        Ok((&[], (Request::Mei { mei_type, data: i }, Violations::NONE)))
    }
}

/// Decodes a response PDU: `fc` is its function code (exception bit included), `body` the
/// bytes after it. Checks that need the request are done by the transaction layer.
pub fn parse_response(fc: u8, body: &[u8]) -> Pdu<Response<'_>> {
    let raw = || Response::Raw { data: body };
    if fc & 0x80 != 0 {
        let res = be_u8(body).map(|(i, code)| {
            let v = if exception_possible(fc, code) {
                Violations::NONE
            } else {
                Violations::INVALID_EXCEPTION_CODE
            };
            (i, (Response::Exception { code }, v))
        });
        return pdu(fc, res, raw);
    }
    let res = match fc {
        1..=4 | 23 => resp_read(fc, body),
        5 | 6 => (be_u16, be_u16)
            .parse_complete(body)
            .map(|(i, (address, value))| {
                (
                    i,
                    (
                        Response::WriteSingle { address, value },
                        coil_check(fc, value),
                    ),
                )
            }),
        7 => be_u8(body)
            .map(|(i, status)| (i, (Response::ExceptionStatus { status }, Violations::NONE))),
        8 => diag(body)
            .map(|(i, (sub, data))| (i, (Response::Diagnostics { sub, data }, Violations::NONE))),
        11 => (be_u16, be_u16)
            .parse_complete(body)
            .map(|(i, (status, event_count))| {
                (
                    i,
                    (
                        Response::CommEventCounter {
                            status,
                            event_count,
                        },
                        Violations::NONE,
                    ),
                )
            }),
        12 => resp_event_log(body),
        15 | 16 => (be_u16, be_u16)
            .parse_complete(body)
            .map(|(i, (start, quantity))| {
                let max = if fc == 15 {
                    limits::WRITE_BITS
                } else {
                    limits::WRITE_REGISTERS
                };
                let v = quantity_check(quantity, max) | address_check(start, quantity);
                (i, (Response::WriteMultiple { start, quantity }, v))
            }),
        17 => be_u8(body).map(|(i, byte_count)| {
            let (data, i, v) = counted(i, usize::from(byte_count));
            (i, (Response::ReportServerId { byte_count, data }, v))
        }),
        20 => resp_read_file(body),
        21 => write_file(body)
            .map(|(i, (byte_count, data, v))| (i, (Response::FileRecord { byte_count, data }, v))),
        22 => mask(body).map(|(i, (address, and_mask, or_mask))| {
            (
                i,
                (
                    Response::MaskWrite {
                        address,
                        and_mask,
                        or_mask,
                    },
                    Violations::NONE,
                ),
            )
        }),
        24 => resp_fifo(body),
        43 => resp_mei(body),
        FC_UMAS => umas(body).map(|(i, (pair, code, data))| {
            (i, (Response::Umas { pair, code, data }, Violations::NONE))
        }),
        _ => Ok((&[][..], (raw(), Violations::NONE))),
    };
    pdu(fc, res, raw)
}

fn resp_read(fc: u8, i: &[u8]) -> Res<'_, (Response<'_>, Violations)> {
    let (i, byte_count) = be_u8(i)?;
    let (data, i, mut v) = counted(i, usize::from(byte_count));
    if fc >= 3 && byte_count % 2 != 0 {
        v |= Violations::BYTE_COUNT_MISMATCH;
    }
    if byte_count == 0 {
        v |= Violations::QUANTITY_OUT_OF_RANGE;
    }
    Ok((i, (Response::ReadData { byte_count, data }, v)))
}

fn resp_event_log(i: &[u8]) -> Res<'_, (Response<'_>, Violations)> {
    let (i, byte_count) = be_u8(i)?;
    let (i, (status, event_count, message_count)) = (be_u16, be_u16, be_u16).parse_complete(i)?;
    let mut v = Violations::NONE;
    let n = match usize::from(byte_count).checked_sub(6) {
        Some(n) => n,
        None => {
            v |= Violations::BYTE_COUNT_MISMATCH;
            0
        }
    };
    let (events, i, v2) = counted(i, n);
    Ok((
        i,
        (
            Response::CommEventLog {
                byte_count,
                status,
                event_count,
                message_count,
                events,
            },
            v | v2,
        ),
    ))
}

/// Walks FC 20 sub-responses, (reference type, record data), without allocating;
/// [`SubResponses::exact`] says, once the walk is over, whether the bytes ended exactly after
/// the last.
pub fn read_file_subresponses(data: &[u8]) -> SubResponses<'_> {
    SubResponses {
        rest: data,
        broken: false,
    }
}

/// Iterator of [`read_file_subresponses`].
#[derive(Clone, Debug)]
pub struct SubResponses<'a> {
    rest: &'a [u8],
    broken: bool,
}

impl SubResponses<'_> {
    /// True when the walk so far found no cut or malformed sub-response (complete once the
    /// iterator is exhausted).
    pub fn exact(&self) -> bool {
        !self.broken
    }
}

impl<'a> Iterator for SubResponses<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = (be_u8::<_, nom::error::Error<&[u8]>>, be_u8)
            .parse_complete(self.rest)
            .ok()
            .and_then(|(rest, (len, reference_type))| {
                let n = usize::from(len).checked_sub(1)?;
                let (rec, rest) = rest.split_at_checked(n)?;
                Some(((reference_type, rec), rest))
            });
        match parsed {
            Some((item, rest)) => {
                self.rest = rest;
                Some(item)
            }
            None => {
                self.broken = true;
                self.rest = &[];
                None
            }
        }
    }
}

fn resp_read_file(i: &[u8]) -> Res<'_, (Response<'_>, Violations)> {
    let (i, byte_count) = be_u8(i)?;
    let (data, i, mut v) = counted(i, usize::from(byte_count));
    let mut subs = read_file_subresponses(data);
    if subs.by_ref().any(|(r, _)| r != 6) {
        v |= Violations::INVALID_REFERENCE_TYPE;
    }
    subs.by_ref().for_each(drop);
    if !subs.exact() {
        v |= Violations::BYTE_COUNT_MISMATCH;
    }
    Ok((i, (Response::FileRecord { byte_count, data }, v)))
}

fn resp_fifo(i: &[u8]) -> Res<'_, (Response<'_>, Violations)> {
    let (i, (byte_count, fifo_count)) = (be_u16, be_u16).parse_complete(i)?;
    let (data, i, mut v) = counted(i, usize::from(fifo_count) * 2);
    if fifo_count > limits::FIFO_COUNT {
        v |= Violations::FIFO_COUNT_OUT_OF_RANGE;
    }
    if usize::from(byte_count) != 2 + usize::from(fifo_count) * 2 {
        v |= Violations::BYTE_COUNT_MISMATCH;
    }
    Ok((
        i,
        (
            Response::ReadFifo {
                byte_count,
                fifo_count,
                data,
            },
            v,
        ),
    ))
}

fn resp_mei(i: &[u8]) -> Res<'_, (Response<'_>, Violations)> {
    let (i, mei_type) = be_u8(i)?;
    if mei_type != MEI_READ_DEVICE_ID {
        return Ok((&[], (Response::Mei { mei_type, data: i }, Violations::NONE)));
    }
    let (mut i, (code, conformity, more_follows, next_object_id, count)) =
        (be_u8, be_u8, be_u8, be_u8, be_u8).parse_complete(i)?;
    let mut v = Violations::NONE;
    if !(1..=4).contains(&code) || !matches!(more_follows, 0x00 | 0xFF) {
        v |= Violations::INVALID_DEVICE_ID_CODE;
    }
    let list = i;
    let mut parsed = 0u8;
    // What follows the last object walked whole.
    let mut after = i;
    for _ in 0..count {
        let Ok((rest, (_, len))) = (be_u8::<_, nom::error::Error<&[u8]>>, be_u8).parse_complete(i)
        else {
            v |= Violations::LENGTH_MISMATCH;
            break;
        };
        let Some(rest) = rest.get(usize::from(len)..) else {
            v |= Violations::LENGTH_MISMATCH;
            i = &[];
            break;
        };
        parsed += 1;
        i = rest;
        after = rest;
    }
    let whole = list.get(..list.len() - after.len()).unwrap_or_default();
    Ok((
        i,
        (
            Response::DeviceId(DeviceId {
                code,
                conformity,
                more_follows,
                next_object_id,
                objects: DeviceObjects {
                    bytes: whole,
                    count: parsed,
                },
            }),
            v,
        ),
    ))
}

/// Text of a device identification object: lossy UTF-8, trailing NULs and spaces trimmed.
pub fn object_text(value: &[u8]) -> String {
    String::from_utf8_lossy(value)
        .trim_end_matches(['\0', ' '])
        .to_string()
}

/// The standard fact name of an object, or `None` for reserved and private objects.
pub fn object_fact(id: u8) -> Option<&'static str> {
    device_object_name(id)
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
    use rstest::rstest;

    const NONE: Violations = Violations::NONE;

    #[test]
    fn mbap_header() {
        let bytes = [
            0x12, 0x34, // transaction id
            0x00, 0x00, // protocol id
            0x00, 0x06, // length: unit id + 5-byte PDU
            0x11, // unit id
            0x03, // function: read holding registers
        ];
        let (rest, h) = parse_mbap(&bytes).unwrap();
        assert_eq!(rest, &[0x03]);
        assert_eq!(
            h,
            Mbap {
                transaction_id: 0x1234,
                protocol_id: 0,
                length: 6,
                unit_id: 0x11
            }
        );
    }

    /// Truncation at every MBAP field and inside the PDU is `Incomplete`, never an error.
    #[rstest]
    #[case(0)]
    #[case(1)]
    #[case(2)]
    #[case(3)]
    #[case(4)]
    #[case(5)]
    #[case(6)]
    #[case(7)]
    #[case(8)]
    #[case(11)]
    fn truncated_adu_is_incomplete(#[case] n: usize) {
        let bytes = [
            0x00, 0x01, // transaction id
            0x00, 0x00, // protocol id
            0x00, 0x06, // length
            0x01, // unit id
            0x03, // function
            0x00, 0x10, // start
            0x00, 0x02, // quantity
        ];
        assert!(matches!(
            parse_adu(&bytes[..n]),
            Err(nom::Err::Incomplete(_))
        ));
        let (rest, (h, pdu)) = parse_adu(&bytes).unwrap();
        assert!(rest.is_empty());
        assert_eq!(h.length, 6);
        assert_eq!(pdu, &bytes[7..]);
    }

    #[rstest]
    #[case::length_zero(0x0000, 0x0000, false)]
    #[case::length_one(0x0000, 0x0001, true)]
    #[case::length_max_spec(0x0000, 254, true)]
    #[case::length_umas_255(0x0000, 255, true)]
    #[case::length_cap(0x0000, 1024, true)]
    #[case::length_over_cap(0x0000, 1025, false)]
    #[case::length_huge(0x0000, 0xffff, false)]
    #[case::proto_nonzero_short(0x0001, 6, true)]
    #[case::proto_nonzero_long(0x0001, 300, false)]
    fn framing_policy(#[case] proto: u16, #[case] length: u16, #[case] frames: bool) {
        let h = Mbap {
            transaction_id: 0,
            protocol_id: proto,
            length,
            unit_id: 1,
        };
        assert_eq!(frameable(&h), frames);
        let mut bytes = vec![0, 0];
        bytes.extend_from_slice(&proto.to_be_bytes());
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.push(1);
        bytes.resize(6 + usize::from(length).max(1), 0x03);
        let r = parse_adu(&bytes);
        assert_eq!(r.is_ok(), frames, "{r:?}");
    }

    #[rstest]
    #[case::ok(0, 6, NONE)]
    #[case::proto(7, 6, Violations::PROTOCOL_ID_NONZERO)]
    #[case::short(0, 1, Violations::LENGTH_OUT_OF_RANGE)]
    #[case::long(0, 255, Violations::LENGTH_OUT_OF_RANGE)]
    fn header_flags(#[case] protocol_id: u16, #[case] length: u16, #[case] v: Violations) {
        let h = Mbap {
            transaction_id: 1,
            protocol_id,
            length,
            unit_id: 0,
        };
        assert_eq!(header_violations(&h), v);
    }

    fn req(fc: u8, body: &[u8]) -> Pdu<Request<'_>> {
        parse_request(fc, body)
    }

    #[rstest]
    // FC 1: start 0x0013, quantity 0x0013 (19 coils)
    #[case(1, &[0x00, 0x13, 0x00, 0x13], Request::Read { start: 0x13, quantity: 19 }, NONE)]
    // FC 2: start 0x00c4, quantity 22
    #[case(2, &[0x00, 0xc4, 0x00, 0x16], Request::Read { start: 0xc4, quantity: 22 }, NONE)]
    // FC 3: start 0x006b, quantity 3
    #[case(3, &[0x00, 0x6b, 0x00, 0x03], Request::Read { start: 0x6b, quantity: 3 }, NONE)]
    // FC 4: start 8, quantity 1
    #[case(4, &[0x00, 0x08, 0x00, 0x01], Request::Read { start: 8, quantity: 1 }, NONE)]
    // FC 3: quantity 0
    #[case(3, &[0x00, 0x00, 0x00, 0x00], Request::Read { start: 0, quantity: 0 }, Violations::QUANTITY_OUT_OF_RANGE)]
    // FC 3: quantity 126 (> 125)
    #[case(3, &[0x00, 0x00, 0x00, 0x7e], Request::Read { start: 0, quantity: 126 }, Violations::QUANTITY_OUT_OF_RANGE)]
    // FC 1: quantity 2001 (> 2000)
    #[case(1, &[0x00, 0x00, 0x07, 0xd1], Request::Read { start: 0, quantity: 2001 }, Violations::QUANTITY_OUT_OF_RANGE)]
    // FC 1: quantity 2000 is the maximum
    #[case(1, &[0x00, 0x00, 0x07, 0xd0], Request::Read { start: 0, quantity: 2000 }, NONE)]
    // FC 3: start 0xffff, quantity 2: runs past 65535
    #[case(3, &[0xff, 0xff, 0x00, 0x02], Request::Read { start: 0xffff, quantity: 2 }, Violations::ADDRESS_OVERFLOW)]
    // FC 5: address 0x00ac, value ON
    #[case(5, &[0x00, 0xac, 0xff, 0x00], Request::WriteSingle { address: 0xac, value: 0xff00 }, NONE)]
    // FC 5: value 0x1234 is neither ON nor OFF
    #[case(5, &[0x00, 0xac, 0x12, 0x34], Request::WriteSingle { address: 0xac, value: 0x1234 }, Violations::INVALID_COIL_VALUE)]
    // FC 6: address 1, value 3
    #[case(6, &[0x00, 0x01, 0x00, 0x03], Request::WriteSingle { address: 1, value: 3 }, NONE)]
    // FC 7, 11, 12, 17: no data
    #[case(7, &[], Request::Empty, NONE)]
    #[case(11, &[], Request::Empty, NONE)]
    #[case(12, &[], Request::Empty, NONE)]
    #[case(17, &[], Request::Empty, NONE)]
    // FC 17 with a stray byte
    #[case(17, &[0x00], Request::Empty, Violations::LENGTH_MISMATCH)]
    // FC 8: sub-function 0 (return query data), data 0xa537
    #[case(8, &[0x00, 0x00, 0xa5, 0x37], Request::Diagnostics { sub: 0, data: &[0xa5, 0x37] }, NONE)]
    // FC 15: start 0x13, 10 coils, byte count 2, coils 0xcd 0x01
    #[case(15, &[0x00, 0x13, 0x00, 0x0a, 0x02, 0xcd, 0x01], Request::WriteMultiple { start: 0x13, quantity: 10, byte_count: 2, data: &[0xcd, 0x01] }, NONE)]
    // FC 15: 10 coils but byte count 3
    #[case(15, &[0x00, 0x13, 0x00, 0x0a, 0x03, 0xcd, 0x01, 0x00], Request::WriteMultiple { start: 0x13, quantity: 10, byte_count: 3, data: &[0xcd, 0x01, 0x00] }, Violations::BYTE_COUNT_MISMATCH)]
    // FC 15: 1969 coils (> 1968), byte count 247
    #[case(15, &[0x00, 0x00, 0x07, 0xb1, 0x00], Request::WriteMultiple { start: 0, quantity: 1969, byte_count: 0, data: &[] }, Violations::QUANTITY_OUT_OF_RANGE | Violations::BYTE_COUNT_MISMATCH)]
    // FC 16: start 1, 2 registers, byte count 4, values 0x000a 0x0102
    #[case(16, &[0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0a, 0x01, 0x02], Request::WriteMultiple { start: 1, quantity: 2, byte_count: 4, data: &[0x00, 0x0a, 0x01, 0x02] }, NONE)]
    // FC 16: byte count 4 but only 2 value bytes present
    #[case(16, &[0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0a], Request::WriteMultiple { start: 1, quantity: 2, byte_count: 4, data: &[0x00, 0x0a] }, Violations::LENGTH_MISMATCH)]
    // FC 16: 124 registers (> 123)
    #[case(16, &[0x00, 0x00, 0x00, 0x7c, 0x00], Request::WriteMultiple { start: 0, quantity: 124, byte_count: 0, data: &[] }, Violations::QUANTITY_OUT_OF_RANGE | Violations::BYTE_COUNT_MISMATCH)]
    // FC 20: byte count 7; ref 6, file 4, record 1, length 2
    #[case(20, &[0x07, 0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02], Request::ReadFileRecord { byte_count: 7, data: &[0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02] }, NONE)]
    // FC 20: reference type 5
    #[case(20, &[0x07, 0x05, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02], Request::ReadFileRecord { byte_count: 7, data: &[0x05, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02] }, Violations::INVALID_REFERENCE_TYPE)]
    // FC 21: byte count 9; ref 6, file 4, record 7, length 1, value 0x06af
    #[case(21, &[0x09, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x01, 0x06, 0xaf], Request::WriteFileRecord { byte_count: 9, data: &[0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x01, 0x06, 0xaf] }, NONE)]
    // FC 22: address 4, and mask 0x00f2, or mask 0x0025
    #[case(22, &[0x00, 0x04, 0x00, 0xf2, 0x00, 0x25], Request::MaskWrite { address: 4, and_mask: 0xf2, or_mask: 0x25 }, NONE)]
    // FC 23: read 3, 6 registers; write 0x0e, 3 registers, byte count 6, values
    #[case(23, &[0x00, 0x03, 0x00, 0x06, 0x00, 0x0e, 0x00, 0x03, 0x06, 0x00, 0xff, 0x00, 0xff, 0x00, 0xff], Request::ReadWrite { read_start: 3, read_quantity: 6, write_start: 0x0e, write_quantity: 3, byte_count: 6, data: &[0x00, 0xff, 0x00, 0xff, 0x00, 0xff] }, NONE)]
    // FC 23: write quantity 122 (> 121), byte count 0
    #[case(23, &[0x00, 0x03, 0x00, 0x06, 0x00, 0x0e, 0x00, 0x7a, 0x00], Request::ReadWrite { read_start: 3, read_quantity: 6, write_start: 0x0e, write_quantity: 122, byte_count: 0, data: &[] }, Violations::QUANTITY_OUT_OF_RANGE | Violations::BYTE_COUNT_MISMATCH)]
    // FC 24: FIFO pointer 0x04de
    #[case(24, &[0x04, 0xde], Request::ReadFifo { pointer: 0x04de }, NONE)]
    // FC 43/14: basic stream from object 0
    #[case(43, &[0x0e, 0x01, 0x00], Request::ReadDeviceId { code: 1, object_id: 0 }, NONE)]
    // FC 43/14: access code 5 does not exist
    #[case(43, &[0x0e, 0x05, 0x00], Request::ReadDeviceId { code: 5, object_id: 0 }, Violations::INVALID_DEVICE_ID_CODE)]
    // FC 43/13: CANopen, bytes kept
    #[case(43, &[0x0d, 0x01, 0x02], Request::Mei { mei_type: 13, data: &[0x01, 0x02] }, NONE)]
    // FC 90: pair 0x00, UMAS 0x02 read id
    #[case(90, &[0x00, 0x02], Request::Umas { pair: 0, code: 2, data: &[] }, NONE)]
    // FC 90: pair 0x8a, UMAS 0x41 stop PLC, data
    #[case(90, &[0x8a, 0x41, 0xff, 0x00], Request::Umas { pair: 0x8a, code: 0x41, data: &[0xff, 0x00] }, NONE)]
    // FC 71 (user-defined): raw
    #[case(71, &[0x01, 0x02, 0x03], Request::Raw { data: &[0x01, 0x02, 0x03] }, NONE)]
    // FC 9 (reserved), FC 0, FC 52 (unassigned): raw
    #[case(9, &[0xaa], Request::Raw { data: &[0xaa] }, NONE)]
    #[case(0, &[], Request::Raw { data: &[] }, NONE)]
    #[case(52, &[0x00], Request::Raw { data: &[0x00] }, NONE)]
    // FC 3 truncated after the start address: raw and flagged
    #[case(3, &[0x00, 0x6b], Request::Raw { data: &[0x00, 0x6b] }, Violations::LENGTH_MISMATCH)]
    // FC 3 with a trailing byte
    #[case(3, &[0x00, 0x6b, 0x00, 0x03, 0x00], Request::Read { start: 0x6b, quantity: 3 }, Violations::LENGTH_MISMATCH)]
    // An exception code sent as a request
    #[case(0x83, &[0x02], Request::Raw { data: &[0x02] }, Violations::EXCEPTION_IN_REQUEST)]
    fn requests(
        #[case] fc: u8,
        #[case] body: &[u8],
        #[case] expected: Request<'_>,
        #[case] v: Violations,
    ) {
        let p = req(fc, body);
        assert_eq!(p.function, fc);
        assert_eq!(p.body, expected);
        assert_eq!(
            p.violations,
            v,
            "{:?}",
            p.violations.names().collect::<Vec<_>>()
        );
    }

    #[rstest]
    // FC 1: byte count 3, coils
    #[case(1, &[0x03, 0xcd, 0x6b, 0x05], Response::ReadData { byte_count: 3, data: &[0xcd, 0x6b, 0x05] }, NONE)]
    // FC 2: byte count 1
    #[case(2, &[0x01, 0x35], Response::ReadData { byte_count: 1, data: &[0x35] }, NONE)]
    // FC 3: byte count 6, three registers
    #[case(3, &[0x06, 0x02, 0x2b, 0x00, 0x00, 0x00, 0x64], Response::ReadData { byte_count: 6, data: &[0x02, 0x2b, 0x00, 0x00, 0x00, 0x64] }, NONE)]
    // FC 4: byte count 2, one register
    #[case(4, &[0x02, 0x00, 0x0a], Response::ReadData { byte_count: 2, data: &[0x00, 0x0a] }, NONE)]
    // FC 3: odd byte count
    #[case(3, &[0x03, 0x00, 0x0a, 0x01], Response::ReadData { byte_count: 3, data: &[0x00, 0x0a, 0x01] }, Violations::BYTE_COUNT_MISMATCH)]
    // FC 3: byte count 4, 2 bytes present
    #[case(3, &[0x04, 0x00, 0x0a], Response::ReadData { byte_count: 4, data: &[0x00, 0x0a] }, Violations::LENGTH_MISMATCH)]
    // FC 4: byte count 0
    #[case(4, &[0x00], Response::ReadData { byte_count: 0, data: &[] }, Violations::QUANTITY_OUT_OF_RANGE)]
    // FC 5: echo address 0xac, ON
    #[case(5, &[0x00, 0xac, 0xff, 0x00], Response::WriteSingle { address: 0xac, value: 0xff00 }, NONE)]
    // FC 6: echo
    #[case(6, &[0x00, 0x01, 0x00, 0x03], Response::WriteSingle { address: 1, value: 3 }, NONE)]
    // FC 7: status 0x6d
    #[case(7, &[0x6d], Response::ExceptionStatus { status: 0x6d }, NONE)]
    // FC 8: sub 0 echo
    #[case(8, &[0x00, 0x00, 0xa5, 0x37], Response::Diagnostics { sub: 0, data: &[0xa5, 0x37] }, NONE)]
    // FC 11: status 0xffff, count 0x0108
    #[case(11, &[0xff, 0xff, 0x01, 0x08], Response::CommEventCounter { status: 0xffff, event_count: 0x0108 }, NONE)]
    // FC 12: byte count 8, status 0, events 0x0108, messages 0x0121, events 0x20 0x00
    #[case(12, &[0x08, 0x00, 0x00, 0x01, 0x08, 0x01, 0x21, 0x20, 0x00], Response::CommEventLog { byte_count: 8, status: 0, event_count: 0x0108, message_count: 0x0121, events: &[0x20, 0x00] }, NONE)]
    // FC 12: byte count 5 (< 6)
    #[case(12, &[0x05, 0x00, 0x00, 0x01, 0x08, 0x01, 0x21], Response::CommEventLog { byte_count: 5, status: 0, event_count: 0x0108, message_count: 0x0121, events: &[] }, Violations::BYTE_COUNT_MISMATCH)]
    // FC 15: start 0x13, 10 coils
    #[case(15, &[0x00, 0x13, 0x00, 0x0a], Response::WriteMultiple { start: 0x13, quantity: 10 }, NONE)]
    // FC 16: start 1, 2 registers
    #[case(16, &[0x00, 0x01, 0x00, 0x02], Response::WriteMultiple { start: 1, quantity: 2 }, NONE)]
    // FC 17: byte count 3: server id 0x00, run indicator ON, 'W'
    #[case(17, &[0x03, 0x00, 0xff, 0x57], Response::ReportServerId { byte_count: 3, data: &[0x00, 0xff, 0x57] }, NONE)]
    // FC 20: data length 6; sub-response length 5, ref 6, registers 0x0df8 0x0d98
    #[case(20, &[0x06, 0x05, 0x06, 0x0d, 0xf8, 0x0d, 0x98], Response::FileRecord { byte_count: 6, data: &[0x05, 0x06, 0x0d, 0xf8, 0x0d, 0x98] }, NONE)]
    // FC 20: sub-response length runs past the data
    #[case(20, &[0x03, 0x09, 0x06, 0x0d], Response::FileRecord { byte_count: 3, data: &[0x09, 0x06, 0x0d] }, Violations::BYTE_COUNT_MISMATCH)]
    // FC 21: echo of the request
    #[case(21, &[0x09, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x01, 0x06, 0xaf], Response::FileRecord { byte_count: 9, data: &[0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x01, 0x06, 0xaf] }, NONE)]
    // FC 22: echo
    #[case(22, &[0x00, 0x04, 0x00, 0xf2, 0x00, 0x25], Response::MaskWrite { address: 4, and_mask: 0xf2, or_mask: 0x25 }, NONE)]
    // FC 23: byte count 4, two registers
    #[case(23, &[0x04, 0x00, 0xfe, 0x0a, 0xcd], Response::ReadData { byte_count: 4, data: &[0x00, 0xfe, 0x0a, 0xcd] }, NONE)]
    // FC 24: byte count 6, fifo count 2, registers 0x01b8 0x1284
    #[case(24, &[0x00, 0x06, 0x00, 0x02, 0x01, 0xb8, 0x12, 0x84], Response::ReadFifo { byte_count: 6, fifo_count: 2, data: &[0x01, 0xb8, 0x12, 0x84] }, NONE)]
    // FC 24: fifo count 32 (> 31), byte count disagrees, no data
    #[case(24, &[0x00, 0x02, 0x00, 0x20], Response::ReadFifo { byte_count: 2, fifo_count: 32, data: &[] }, Violations::FIFO_COUNT_OUT_OF_RANGE | Violations::BYTE_COUNT_MISMATCH | Violations::LENGTH_MISMATCH)]
    // FC 43/13: bytes kept
    #[case(43, &[0x0d, 0xaa], Response::Mei { mei_type: 13, data: &[0xaa] }, NONE)]
    // FC 90: pair 0, status 0xfe (ok), data
    #[case(90, &[0x00, 0xfe, 0x10], Response::Umas { pair: 0, code: 0xfe, data: &[0x10] }, NONE)]
    // Exceptions: each defined code
    #[case(0x81, &[0x01], Response::Exception { code: 1 }, NONE)]
    #[case(0x82, &[0x02], Response::Exception { code: 2 }, NONE)]
    #[case(0x83, &[0x03], Response::Exception { code: 3 }, NONE)]
    #[case(0x84, &[0x04], Response::Exception { code: 4 }, NONE)]
    #[case(0x85, &[0x05], Response::Exception { code: 5 }, NONE)]
    #[case(0x86, &[0x06], Response::Exception { code: 6 }, NONE)]
    #[case(0x94, &[0x08], Response::Exception { code: 8 }, NONE)]
    #[case(0x90, &[0x0a], Response::Exception { code: 10 }, NONE)]
    #[case(0x8f, &[0x0b], Response::Exception { code: 11 }, NONE)]
    // Impossible exception codes
    #[case(0x83, &[0x00], Response::Exception { code: 0 }, Violations::INVALID_EXCEPTION_CODE)]
    #[case(0x83, &[0x07], Response::Exception { code: 7 }, Violations::INVALID_EXCEPTION_CODE)]
    #[case(0x83, &[0x08], Response::Exception { code: 8 }, Violations::INVALID_EXCEPTION_CODE)]
    #[case(0x83, &[0x09], Response::Exception { code: 9 }, Violations::INVALID_EXCEPTION_CODE)]
    #[case(0x83, &[0x0c], Response::Exception { code: 12 }, Violations::INVALID_EXCEPTION_CODE)]
    // Exception without its code
    #[case(0x83, &[], Response::Raw { data: &[] }, Violations::LENGTH_MISMATCH)]
    // User-defined, unassigned: raw
    #[case(100, &[0x01], Response::Raw { data: &[0x01] }, NONE)]
    #[case(29, &[], Response::Raw { data: &[] }, NONE)]
    fn responses(
        #[case] fc: u8,
        #[case] body: &[u8],
        #[case] expected: Response<'_>,
        #[case] v: Violations,
    ) {
        let p = parse_response(fc, body);
        assert_eq!(p.function, fc);
        assert_eq!(p.body, expected);
        assert_eq!(
            p.violations,
            v,
            "{:?}",
            p.violations.names().collect::<Vec<_>>()
        );
    }

    #[test]
    fn read_device_identification_response() {
        let body = [
            0x0e, // MEI type 14
            0x01, // read device id code: basic
            0x01, // conformity level
            0x00, // more follows: no
            0x00, // next object id
            0x03, // number of objects
            0x00, 0x07, b'C', b'o', b'm', b'p', b'a', b'n', b'y', // object 0: vendor name
            0x01, 0x05, b'P', b'C', b'-', b'1', 0x00, // object 1: product code
            0x02, 0x04, b'V', b'2', b'.', b'1', // object 2: revision
        ];
        let p = parse_response(43, &body);
        assert_eq!(p.violations, NONE);
        let Response::DeviceId(d) = p.body else {
            panic!("not a device id: {:?}", p.body)
        };
        assert_eq!((d.code, d.conformity, d.more_follows), (1, 1, 0));
        assert_eq!(d.objects.len(), 3);
        let objects: Vec<_> = d.objects.iter().collect();
        assert_eq!(objects.len(), 3);
        assert_eq!(objects[0], (0, &b"Company"[..]));
        assert_eq!(object_text(objects[1].1), "PC-1");
        assert_eq!(objects[2], (2, &b"V2.1"[..]));
        assert_eq!(object_fact(2), Some("revision"));
        // Object list cut short: objects so far kept, flagged.
        let p = parse_response(43, &body[..body.len() - 2]);
        assert!(p.violations.contains(Violations::LENGTH_MISMATCH));
        let Response::DeviceId(d) = p.body else {
            panic!()
        };
        assert_eq!(d.objects.len(), 2);
        assert_eq!(d.objects.iter().count(), 2);
        // Cut inside the header of the third object: still two, flagged.
        let p = parse_response(43, &body[..body.len() - 5]);
        assert!(p.violations.contains(Violations::LENGTH_MISMATCH));
        let Response::DeviceId(d) = p.body else {
            panic!()
        };
        assert_eq!(d.objects.iter().count(), 2);
        // More objects announced than present: the ones present, flagged.
        let mut more = body.to_vec();
        more[5] = 0x05;
        let p = parse_response(43, &more);
        assert!(p.violations.contains(Violations::LENGTH_MISMATCH));
        let Response::DeviceId(d) = p.body else {
            panic!()
        };
        assert_eq!(d.objects.iter().count(), 3);
    }

    #[test]
    fn file_record_walkers() {
        let mut walk = write_file_records(&[
            0x06, // reference type
            0x00, 0x04, // file number
            0x00, 0x07, // record number
            0x00, 0x01, // record length: one register
            0x06, 0xaf, // register value
            0x06, 0x00, // next sub-request cut after two bytes
        ]);
        let recs: Vec<_> = walk.by_ref().collect();
        assert!(!walk.exact());
        assert_eq!(recs.len(), 1);
        assert_eq!((recs[0].file, recs[0].record), (4, 7));
        assert_eq!(recs[0].data, &[0x06, 0xaf]);
        let mut walk = write_file_records(&[6, 0, 1, 0, 2, 0, 0]);
        assert_eq!(walk.by_ref().count(), 1);
        assert!(walk.exact());
        let subs: Vec<_> = read_file_subrequests(&[6, 0, 4, 0, 1, 0, 2]).collect();
        assert_eq!(subs, vec![(6, 4, 1, 2)]);
        // A sub-response length of 0 cannot hold its reference type.
        let mut walk = read_file_subresponses(&[0x00]);
        assert_eq!(walk.by_ref().count(), 0);
        assert!(!walk.exact());
        let mut walk = read_file_subresponses(&[
            0x03, // sub-response length: reference type + one register
            0x06, // reference type
            0x0d, 0xfe, // register
        ]);
        assert_eq!(walk.next(), Some((6, &[0x0d, 0xfe][..])));
        assert_eq!(walk.next(), None);
        assert!(walk.exact());
    }

    #[rstest]
    // Too few bytes.
    #[case(&[], Candidate::NeedMore)]
    #[case(&[0, 1, 0, 0, 0, 6, 1], Candidate::NeedMore)]
    // A whole FC 3 request.
    #[case(&[0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1], Candidate::Yes)]
    // A plausible header whose frame is still incomplete.
    #[case(&[0, 1, 0, 0, 0, 6, 1, 3, 0], Candidate::NeedMore)]
    // Protocol id 1.
    #[case(&[0, 1, 0, 1, 0, 6, 1, 3, 0, 0, 0, 1], Candidate::No)]
    // Length 255.
    #[case(&[0, 1, 0, 0, 0, 0xff, 1, 3, 0, 0, 0, 1], Candidate::No)]
    // Unassigned function 52: accepted on structure when the frame fits the data exactly...
    #[case(&[0, 1, 0, 0, 0, 6, 1, 52, 0, 0, 0, 1], Candidate::Yes)]
    // ... or is followed by another well-shaped header; not while incomplete.
    #[case(&[0, 1, 0, 0, 0, 2, 1, 52, 0, 2, 0, 0, 0, 2, 1, 0], Candidate::Yes)]
    #[case(&[0, 1, 0, 0, 0, 6, 1, 52, 0, 0], Candidate::NeedMore)]
    #[case(&[0, 1, 0, 0, 0, 2, 1, 52, 0, 2], Candidate::NeedMore)]
    // Two frames, the second plausible.
    #[case(&[0, 1, 0, 0, 0, 2, 1, 7, 0, 2, 0, 0, 0, 2, 1, 0x87], Candidate::Yes)]
    // A frame followed by garbage.
    #[case(&[0, 1, 0, 0, 0, 2, 1, 7, b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'1'], Candidate::No)]
    // TLS record, HTTP request, DCE/RPC bind.
    #[case(&[0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1], Candidate::No)]
    #[case(b"GET / HTTP/1.1\r\n", Candidate::No)]
    #[case(&[0x05, 0x00, 0x0b, 0x03, 0x10, 0x00, 0x00, 0x00, 0x48, 0x00], Candidate::No)]
    fn candidates(#[case] data: &[u8], #[case] c: Candidate) {
        assert_eq!(candidate_at(data, true), c);
    }

    /// The direct framing agrees with `parse_adu`: same header, PDU and rest when it frames,
    /// and it declines exactly when `parse_adu` does not succeed.
    fn assert_frame_agrees(i: &[u8]) {
        match (frame_adu(i), parse_adu(i)) {
            (Some((h, pdu, tail)), Ok((rest, (h2, pdu2)))) => {
                assert_eq!((h, pdu, tail), (h2, pdu2, rest), "{i:02x?}");
            }
            (None, Err(_)) => {}
            (fast, slow) => panic!("{i:02x?}: fast {fast:?}, nom {slow:?}"),
        }
    }

    /// Edge cases of the fast paths, each checked against the `nom` parsers: lengths around
    /// the frame and body sizes they accept, and the values that raise violations.
    #[rstest]
    #[case(&[])]
    #[case(&[0, 1, 0, 0, 0, 6, 1])]
    #[case(&[0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0])]
    #[case(&[0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1])]
    #[case(&[0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1, 9, 9])]
    #[case(&[0, 1, 0, 0, 0, 0, 1, 3])]
    #[case(&[0, 1, 0, 0, 0, 1, 1])]
    #[case(&[0, 1, 0, 0, 4, 1, 1, 3])]
    #[case(&[0, 1, 0, 7, 0, 0xff, 1, 3])]
    #[case(&[0, 1, 0, 7, 0, 6, 1, 3, 0, 0, 0, 1])]
    #[case(&[0, 1, 0, 0, 0, 0xff, 1, 3])]
    fn frame_adu_agrees_with_parse_adu(#[case] i: &[u8]) {
        assert_frame_agrees(i);
    }

    #[rstest]
    #[case(&[])]
    #[case(&[0, 0, 0])]
    #[case(&[0, 0, 0, 1])]
    #[case(&[0, 0, 0, 0])]
    #[case(&[0, 0, 0x07, 0xd1])]
    #[case(&[0, 0, 0, 0x7e])]
    #[case(&[0xff, 0xff, 0, 2])]
    #[case(&[0, 1, 0xff, 0])]
    #[case(&[0, 1, 0x12, 0x34])]
    #[case(&[0, 0, 0, 1, 0])]
    #[case(&[2, 0, 1])]
    #[case(&[0, 0, 0, 0, 0])]
    #[case(&[3, 0, 1, 0])]
    #[case(&[4, 0, 1, 0, 2])]
    #[case(&[1, 0xff])]
    fn decoders_agree_with_nom(#[case] body: &[u8]) {
        for fc in [1, 2, 3, 4, 5, 6, 7, 8, 15, 16, 17, 23, 43, 0x83, 0x85, 0x90] {
            assert_eq!(
                decode_request(fc, body),
                parse_request(fc, body),
                "{fc} {body:02x?}"
            );
            assert_eq!(
                decode_response(fc, body),
                parse_response(fc, body),
                "{fc} {body:02x?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn frame_adu_agrees_on_any_bytes(i in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            assert_frame_agrees(&i);
        }

        #[test]
        fn frame_adu_agrees_on_shaped_headers(
            tid in proptest::prelude::any::<u16>(),
            proto in proptest::sample::select(vec![0u16, 1, 0xffff]),
            length in proptest::prelude::prop_oneof![0u16..16, 250u16..260, 1020u16..1030, proptest::prelude::any::<u16>()],
            unit in proptest::prelude::any::<u8>(),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20),
        ) {
            let mut i = tid.to_be_bytes().to_vec();
            i.extend(proto.to_be_bytes());
            i.extend(length.to_be_bytes());
            i.push(unit);
            i.extend(body);
            assert_frame_agrees(&i);
        }

        #[test]
        fn decoders_agree_on_any_body(
            fc in proptest::prelude::prop_oneof![1u8..=24, proptest::prelude::any::<u8>()],
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
        ) {
            proptest::prop_assert_eq!(decode_request(fc, &body), parse_request(fc, &body));
            proptest::prop_assert_eq!(decode_response(fc, &body), parse_response(fc, &body));
        }

        #[test]
        fn decoders_agree_on_read_responses(
            fc in 1u8..=4,
            count in proptest::prelude::any::<u8>(),
            extra in 0usize..3,
            fill in proptest::prelude::any::<u8>(),
        ) {
            // Byte count equal to, or one off from, the data that follows.
            let n = (usize::from(count) + extra).saturating_sub(1);
            let mut body = vec![count];
            body.extend(std::iter::repeat_n(fill, n));
            proptest::prop_assert_eq!(decode_response(fc, &body), parse_response(fc, &body));
        }
    }
}
