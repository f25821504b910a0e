//! OPC UA binary: UA TCP transport, secure channels, services and events.
//!
//! [`OpcuaParser`] frames UA TCP chunks (`transport`), follows the secure channel opened by
//! OPN (policy, mode, channel and token ids; encrypted bodies are counted, not parsed),
//! reassembles MSG chunks, and OPN chunks too, per request id (`state`), names every service
//! by its binary encoding id (`services`), decodes the common services in depth with the
//! bounded built-in type decoders (`types`, `limits`), and turns each request/response pair
//! into one [`IcsEvent`]. Every limit hit, violation, resync and gap is counted in
//! [`OpcuaStats`].
//!
//! OPN events carry the SHA-1 thumbprint of each sender certificate (`sha1`) as the detail
//! `sender_certificate_sha1` and the fact `certificate_sha1` of the side that sent it; a
//! receiver thumbprint that does not match the certificate the peer sent is the violation
//! `receiver_thumbprint_mismatch`. A response whose service result could not be decoded gets
//! the outcome BadDecodingError with the detail `service_result = "undecodable"` (see
//! `UNDECODABLE`), never `Ok`.

#[doc(hidden)]
pub mod fixtures;
pub mod limits;
pub mod names;
pub mod services;
pub mod sha1;
pub mod state;
pub mod status;
pub mod transport;
pub mod types;

use crate::event::{
    AppProto, AssetFact, Endpoint, Evidence, Function, IcsEvent, OpKind, Outcome, Side, Value,
};
use crate::flow::Direction;
use crate::proto::{recycle, ParseCx, Probe, StreamParser};
use crate::time::Timestamp;
use limits::DecodeLimits;
use names::{Counts, Name};
use serde::Serialize;
use services::{Decoded, MsgKind};
use state::{ChunkResult, Pending, PendingTable, Reassembler, Response};
use std::collections::BTreeMap;
use transport::{Header, HeaderCheck, MsgType, HEADER_LEN};
use types::{hex, text, DecodeError, Reader};

/// OPC UA counters for `otwatch stats`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OpcuaStats {
    /// Messages (chunks) framed, of every type.
    pub messages: u64,
    /// Chunks framed per message type (`HEL`, `ACK`, `ERR`, `RHE`, `OPN`, `MSG`, `CLO`).
    pub by_type: Counts,
    /// Decoded service messages per encoding name (`ReadRequest`, `ReadResponse`, …).
    pub services: Counts,
    /// Chunks whose body was encrypted (counted, not parsed).
    pub encrypted_messages: u64,
    /// Protocol violations and limit hits by name.
    pub violations: BTreeMap<&'static str, u64>,
    /// Decode limits hit (also in `violations` by name).
    pub limit_hits: u64,
    /// Messages dropped by an abort chunk.
    pub aborted: u64,
    /// Times the framing was found again after a gap or garbage.
    pub resyncs: u64,
    /// Gaps in the stream.
    pub gaps: u64,
    /// Bytes skipped while looking for a header.
    pub skipped_bytes: u64,
    /// Chunks larger than the buffering cap, skipped.
    pub oversized_chunks: u64,
    /// Request/response pairs completed.
    pub transactions: u64,
    /// Requests never answered (flow closed, or evicted from the pending table).
    pub unanswered: u64,
    /// Responses without a request.
    pub unsolicited: u64,
    /// Service messages with an encoding id that is not a Part 4 request or response.
    pub unknown_services: u64,
}

impl OpcuaStats {
    fn violation(&mut self, name: &'static str) {
        *self.violations.entry(name).or_insert(0) += 1;
    }

    fn decode_error(&mut self, e: &DecodeError) {
        if e.is_limit() {
            self.limit_hits += 1;
        }
        self.violation(e.violation());
    }
}

/// The outcome of a transaction whose response arrived but whose status (the service result of
/// its ResponseHeader, or the code of an ERR) could not be decoded. [`Outcome::Bad`] needs a status code: this is
/// BadDecodingError, the code a client stack reports itself for a response it cannot decode.
/// The server did not send it, so such events also carry the violation that broke the decode
/// and the detail `service_result = "undecodable"`. A response whose service result was read
/// but whose rest was malformed keeps the server's result (with the violation).
const UNDECODABLE: Outcome = Outcome::Bad {
    code: 0x8007_0000,
    name: "BadDecodingError",
};

/// Says whether the first bytes of a stream are OPC UA binary (UA TCP).
pub fn probe(data: &[u8]) -> Probe {
    transport::probe(data, &DecodeLimits::default())
}

/// Sync state and reassembly of one direction.
#[derive(Debug, Default)]
struct DirState {
    /// After a gap or garbage: scanning for the next header.
    lost_sync: bool,
    /// Bytes of an oversized chunk still to skip.
    skip: u64,
    /// MSG chunk reassembly.
    reasm: Reassembler,
    /// OPN chunk reassembly (policy None), apart from MSG so that the two never mix.
    opn_reasm: Reassembler,
}

/// What is known of the secure channel.
#[derive(Debug, Default)]
struct Channel {
    /// Secure channel id.
    id: Option<u32>,
    /// Current token id.
    token: Option<u32>,
    /// Whether the policy is None (`None` when no OPN was seen).
    policy_none: Option<bool>,
    /// Message security mode (1 None, 2 Sign, 3 SignAndEncrypt), when known.
    mode: Option<u32>,
    /// SHA-1 of the certificate each side last sent in OPN ([to-server, to-client] sender).
    cert_sha1: [Option<[u8; sha1::DIGEST_LEN]>; 2],
}

impl Channel {
    /// Bodies are certainly encrypted.
    fn encrypted(&self) -> bool {
        self.policy_none == Some(false) && self.mode == Some(3)
    }
    /// A body that fails to decode may be encrypted rather than malformed.
    fn maybe_encrypted(&self) -> bool {
        self.policy_none != Some(true) && self.mode != Some(1)
    }
}

/// The OPC UA parser of one flow.
#[derive(Debug, Default)]
pub struct OpcuaParser {
    limits: DecodeLimits,
    dirs: [DirState; 2],
    channel: Channel,
    /// The wire direction that carries requests, once the content told us.
    requests_from: Option<Direction>,
    /// Service requests (and plain OPN requests) by request id.
    pending: PendingTable,
    /// A HEL waiting for its ACK or ERR.
    hello: Option<Pending>,
    /// An encrypted OPN waiting for its response.
    opn: Option<Pending>,
    /// The session text of the channel id it was written for.
    session_text: Option<(u32, String)>,
    /// The names of the monitored items seen last.
    handle_names: services::HandleNames,
    /// A Publish request waiting in a record of its own while `pending` is empty (see
    /// [`PublishWait`]).
    wait: Option<PublishWait>,
    /// Tests: every request and response through the pending table, every response
    /// through its own record and the merge in `emit` (the reference the Publish paths are
    /// tested against).
    general_only: bool,
    /// Tests: chunks that took the one-step path (`common_msg`).
    #[cfg(test)]
    common_taken: usize,
}

/// A Publish request as the general path would keep it, in 40 bytes instead of a
/// [`Pending`] record: a PublishRequest read whole (no violation), whose record would hold
/// only its request handle, the detail `acknowledgements` and the session of `channel`.
/// It waits here only while the pending table is empty; anything else that needs the table
/// (another request, another response, the end of the flow) first moves it there as the
/// record the general path would have made ([`OpcuaParser::spill`]), so the table, its caps
/// and the order of events are as they would be. Its response, a PublishResponse with the
/// same request id, is decoded into the event's parts and emitted in one step
/// ([`OpcuaParser::emit_publish`], tested against the general merge).
#[derive(Clone, Copy, Debug)]
struct PublishWait {
    request_id: u32,
    /// Where the request was (its first chunk).
    ts: Timestamp,
    packet: u64,
    request_handle: u32,
    acknowledgements: i64,
    /// The channel id the session text is written from (as when the request came).
    channel: Option<u32>,
}

/// What was decoded of a message before its body (an OPN chunk's security details and
/// violations), boxed: a MSG has none, and passes an empty word rather than the records.
type Before = Option<Box<(Decoded, Vec<&'static str>)>>;

/// A message context: direction, and the time and packet of its (first) chunk.
#[derive(Clone, Copy, Debug)]
struct At {
    dir: Direction,
    ts: Timestamp,
    packet: u64,
}

/// Whether the body of a response may be decoded straight into the record `p` of its request
/// rather than into one of its own: a Publish response to a Publish request, with nothing
/// decoded before the body (`before`: an OPN chunk's security details). Such a request record
/// holds at most the detail `acknowledgements`, a key no Publish response detail has, and no
/// accesses, item values, bad items or facts, so [`OpcuaParser::emit`] gives the same event
/// from the one record as it merges from two (tested).
fn into_request(
    enc: &services::Encoding,
    p: &Pending,
    before: Option<&(Decoded, Vec<&'static str>)>,
) -> bool {
    let d = &p.decoded;
    // By encoding id: a request record's code is its request's (the name goes with it).
    enc.id == services::PUBLISH_RESPONSE
        && p.code == services::PUBLISH_REQUEST
        && before.is_none_or(|(b, _)| b.is_empty())
        && d.accesses.is_empty()
        && d.item_values.is_empty()
        && d.bad_items.is_empty()
        && d.facts.is_empty()
        && match d.details.as_slice() {
            [] => true,
            [(k, _)] => *k == "acknowledgements",
            _ => false,
        }
}

/// The detail `bad_item_status` of each bad item status not named yet in `details`.
fn bad_item_details(details: &mut Vec<(&'static str, Value)>, codes: impl Iterator<Item = u32>) {
    for code in codes {
        let name = status::name(code);
        if !details
            .iter()
            .any(|(k, x)| *k == "bad_item_status" && matches!(x, Value::Str(n) if n == name))
        {
            details.push(("bad_item_status", Value::Str(name.to_string())));
        }
    }
}

/// Notes `n` items of a response dropped by the decode limits, when there were any.
fn items_dropped_detail(details: &mut Vec<(&'static str, Value)>, n: u64) {
    if n > 0 {
        details.push((
            "items_dropped",
            Value::Int(i64::try_from(n).unwrap_or(i64::MAX)),
        ));
    }
}

/// The outcome of a response with the service result `code`.
fn outcome_of(code: u32) -> Outcome {
    if status::is_bad(code) {
        Outcome::Bad {
            code,
            name: status::name(code),
        }
    } else {
        Outcome::Ok
    }
}

fn transport_pending(at: At, name: &'static str, op: OpKind, session: Option<String>) -> Pending {
    Pending {
        ts: at.ts,
        packet: at.packet,
        code: 0,
        name,
        category: "transport",
        op,
        request_handle: None,
        decoded: Decoded::default(),
        violations: Vec::new(),
        session,
    }
}

impl OpcuaParser {
    /// A parser for a new flow, with the default limits.
    pub fn new() -> Self {
        Self::with_limits(DecodeLimits::default())
    }

    /// A parser for a new flow with these limits.
    pub fn with_limits(limits: DecodeLimits) -> Self {
        OpcuaParser {
            limits,
            ..OpcuaParser::default()
        }
    }

    fn dir_state(&mut self, dir: Direction) -> &mut DirState {
        let [a, b] = &mut self.dirs;
        match dir {
            Direction::ToServer => a,
            Direction::ToClient => b,
        }
    }

    fn learn_requests_from(&mut self, dir: Direction) {
        if self.requests_from.is_none() {
            self.requests_from = Some(dir);
        }
    }

    fn session(&mut self) -> Option<String> {
        self.session_of(self.channel.id)
    }

    /// The session text of channel `id` (what `session` gives while the channel id is `id`).
    fn session_of(&mut self, id: Option<u32>) -> Option<String> {
        let id = id?;
        match &self.session_text {
            // A recycled string, not a new one, when there is one.
            Some((kept, s)) if *kept == id => Some(recycle::name(s)),
            _ => {
                let s = types::decimal(id);
                self.session_text = Some((id, s.clone()));
                Some(s)
            }
        }
    }

    /// A plausible header at the start of `data` while resynchronising (`None`: need more).
    fn resync_candidate(&self, data: &[u8]) -> Option<bool> {
        match transport::check_header(data, self.limits.max_declared_chunk_size) {
            HeaderCheck::NeedMore => None,
            HeaderCheck::Invalid(_) => Some(false),
            HeaderCheck::Ok(h) => {
                let Some(known) = self.channel.id.filter(|_| h.msg_type.has_channel()) else {
                    return Some(true);
                };
                let id = data.get(8..12)?;
                let id = u32::from_le_bytes([
                    id.first().copied().unwrap_or(0),
                    id.get(1).copied().unwrap_or(0),
                    id.get(2).copied().unwrap_or(0),
                    id.get(3).copied().unwrap_or(0),
                ]);
                Some(id == known || (h.msg_type == MsgType::Opn && id == 0))
            }
        }
    }

    fn on_chunk(&mut self, h: Header, chunk: &[u8], at: At, cx: &mut ParseCx<'_>) {
        let st = &mut cx.stats.opcua;
        st.messages += 1;
        st.by_type.count(Name::msg_type(h.msg_type));
        let body = chunk.get(HEADER_LEN..).unwrap_or_default();
        let limits = self.limits.clone();
        let mut r = Reader::new(body, &limits);
        match h.msg_type {
            MsgType::Hel => self.on_hello(&mut r, at, cx),
            MsgType::Ack => self.on_ack(&mut r, at, cx),
            MsgType::Err => self.on_error(&mut r, at, cx),
            MsgType::Rhe => self.on_reverse_hello(&mut r, at, cx),
            MsgType::Opn => self.on_open(h.chunk, &mut r, at, cx),
            MsgType::Msg => self.on_msg(h.chunk, &mut r, at, cx),
            MsgType::Clo => self.on_close_channel(&mut r, at, cx),
        }
    }

    fn on_hello(&mut self, r: &mut Reader<'_>, at: At, cx: &mut ParseCx<'_>) {
        self.learn_requests_from(at.dir);
        let mut p = transport_pending(at, "Hello", OpKind::Session, None);
        match transport::parse_hello(r) {
            Ok(h) => {
                let d = &mut p.decoded.details;
                d.push(("protocol_version", Value::Int(i64::from(h.version))));
                if let Some(url) = text(h.endpoint_url) {
                    d.push(("endpoint_url", Value::Str(url)));
                }
                d.push((
                    "max_message_size",
                    Value::Int(i64::from(h.max_message_size)),
                ));
                d.push(("max_chunk_count", Value::Int(i64::from(h.max_chunk_count))));
            }
            Err(e) => {
                cx.stats.opcua.decode_error(&e);
                p.violations.push(e.violation());
            }
        }
        if let Some(old) = self.hello.replace(p) {
            self.emit(old, None, Outcome::NoResponse, cx);
            cx.stats.opcua.unanswered += 1;
        }
    }

    fn on_ack(&mut self, r: &mut Reader<'_>, at: At, cx: &mut ParseCx<'_>) {
        self.learn_requests_from(at.dir.reverse());
        let mut resp = self.response_at(at);
        match transport::parse_ack(r) {
            Ok(a) => {
                let d = &mut resp.decoded.details;
                d.push((
                    "receive_buffer_size",
                    Value::Int(i64::from(a.receive_buffer)),
                ));
                d.push(("send_buffer_size", Value::Int(i64::from(a.send_buffer))));
                d.push((
                    "granted_max_message_size",
                    Value::Int(i64::from(a.max_message_size)),
                ));
                d.push((
                    "granted_max_chunk_count",
                    Value::Int(i64::from(a.max_chunk_count)),
                ));
            }
            Err(e) => {
                cx.stats.opcua.decode_error(&e);
                resp.violations.push(e.violation());
                resp.undecodable = true;
            }
        }
        self.complete_hello(at, "Acknowledge", resp, cx);
    }

    fn complete_hello(&mut self, at: At, name: &'static str, resp: Response, cx: &mut ParseCx<'_>) {
        match self.hello.take() {
            Some(p) => {
                cx.stats.opcua.transactions += 1;
                self.emit(p, Some(resp), Outcome::Ok, cx);
            }
            None => {
                cx.stats.opcua.unsolicited += 1;
                let p = transport_pending(at, name, OpKind::Session, self.session());
                let outcome = match resp.status {
                    Some(code) => Outcome::Bad {
                        code,
                        name: status::name(code),
                    },
                    None => Outcome::Unsolicited,
                };
                let resp = Response {
                    status: None,
                    ..resp
                };
                let mut p = p;
                p.decoded = resp.decoded;
                p.violations = resp.violations;
                self.emit(p, None, outcome, cx);
            }
        }
    }

    fn on_error(&mut self, r: &mut Reader<'_>, at: At, cx: &mut ParseCx<'_>) {
        let mut resp = self.response_at(at);
        // The code first: a malformed reason must not lose it.
        let res = r.status_code().and_then(|code| {
            resp.status = Some(code);
            r.string()
        });
        match res {
            Ok(reason) => {
                if let Some(reason) = text(reason) {
                    resp.decoded.details.push(("reason", Value::Str(reason)));
                }
            }
            Err(e) => {
                cx.stats.opcua.decode_error(&e);
                resp.violations.push(e.violation());
                resp.undecodable = resp.status.is_none();
            }
        }
        self.complete_hello(at, "Error", resp, cx);
    }

    fn on_reverse_hello(&mut self, r: &mut Reader<'_>, at: At, cx: &mut ParseCx<'_>) {
        // The server sends RHE; the client answers with HEL.
        self.learn_requests_from(at.dir.reverse());
        let mut p = transport_pending(at, "ReverseHello", OpKind::Session, None);
        match transport::parse_reverse_hello(r) {
            Ok(h) => {
                if let Some(uri) = text(h.server_uri) {
                    p.decoded.facts.push(AssetFact {
                        side: Side::Server,
                        key: "application_uri",
                        value: uri,
                    });
                }
                if let Some(url) = text(h.endpoint_url) {
                    p.decoded.details.push(("endpoint_url", Value::Str(url)));
                }
            }
            Err(e) => {
                cx.stats.opcua.decode_error(&e);
                p.violations.push(e.violation());
            }
        }
        self.emit(p, None, Outcome::NotApplicable, cx);
    }

    fn response_at(&self, at: At) -> Response {
        Response {
            ts: at.ts,
            packet: at.packet,
            status: None,
            request_handle: None,
            decoded: Decoded::default(),
            violations: Vec::new(),
            undecodable: false,
        }
    }

    fn on_open(&mut self, chunk_type: u8, r: &mut Reader<'_>, at: At, cx: &mut ParseCx<'_>) {
        let header = r
            .u32()
            .and_then(|id| Ok((id, transport::parse_asym_header(r)?)));
        let (channel_id, asym) = match header {
            Ok(x) => x,
            Err(e) => {
                cx.stats.opcua.decode_error(&e);
                if chunk_type != b'F' {
                    // An intermediate chunk gives no event of its own.
                    return;
                }
                let mut p = transport_pending(at, "OpenSecureChannel", OpKind::Session, None);
                p.code = 446;
                p.violations.push(e.violation());
                self.emit(p, None, Outcome::NotApplicable, cx);
                return;
            }
        };
        if channel_id != 0 {
            self.channel.id = Some(channel_id);
        }
        let policy = asym.policy_uri.unwrap_or_default();
        let policy_none = policy == transport::POLICY_NONE;
        self.channel.policy_none = Some(policy_none);
        let mut violations = Vec::new();
        if chunk_type != b'F' {
            cx.stats.opcua.violation("chunked_open_secure_channel");
        }
        if !policy_none {
            // Asymmetrically encrypted: the sequence header (request id) and body are not
            // readable, so chunks cannot be matched up; the final chunk stands for the message.
            cx.stats.opcua.encrypted_messages += 1;
            match chunk_type {
                b'F' => {}
                b'A' => {
                    cx.stats.opcua.aborted += 1;
                    return;
                }
                _ => return,
            }
        }
        // The details are those of the chunk that completes the message: every chunk repeats
        // the same security header.
        let is_request = match self.requests_from {
            Some(d) => d == at.dir,
            None => self.opn.is_none(),
        };
        let mut decoded = Decoded::default();
        if chunk_type == b'F' {
            self.security_details(&asym, at.dir, is_request, &mut decoded, &mut violations, cx);
        }
        if !policy_none {
            self.on_encrypted_open(is_request, at, decoded, violations, cx);
            return;
        }
        match transport::parse_seq_header(r) {
            Ok(seq) => {
                let limits = r.limits();
                let res = self.dir_state(at.dir).opn_reasm.push(
                    chunk_type,
                    seq.request_id,
                    r.rest(),
                    at.ts,
                    at.packet,
                    limits,
                );
                let before = (!decoded.is_empty() || !violations.is_empty())
                    .then(|| Box::new((decoded, violations)));
                self.on_chunk_result(res, at, seq.request_id, limits, cx, before);
            }
            Err(e) => {
                cx.stats.opcua.decode_error(&e);
                if chunk_type != b'F' {
                    return;
                }
                violations.push(e.violation());
                let mut p = transport_pending(at, "OpenSecureChannel", OpKind::Session, None);
                p.code = 446;
                p.decoded = decoded;
                p.violations = violations;
                self.emit(p, None, Outcome::NotApplicable, cx);
            }
        }
    }

    /// Details and facts of an asymmetric security header: policy, the sender certificate
    /// (length and SHA-1 thumbprint) and the receiver thumbprint, checked against the
    /// thumbprint of the certificate the peer sent.
    fn security_details(
        &mut self,
        asym: &transport::AsymHeader<'_>,
        dir: Direction,
        from_client: bool,
        decoded: &mut Decoded,
        violations: &mut Vec<&'static str>,
        cx: &mut ParseCx<'_>,
    ) {
        let policy = asym.policy_uri.unwrap_or_default();
        let d = &mut decoded.details;
        d.push((
            "security_policy",
            Value::Str(transport::policy_short(policy)),
        ));
        let cert = asym.sender_certificate.unwrap_or_default();
        d.push(("sender_certificate_len", Value::Int(cert.len() as i64)));
        let own = if cert.is_empty() {
            None
        } else {
            let digest = sha1::sha1(transport::leaf_certificate(cert));
            let thumb = hex(&digest);
            d.push(("sender_certificate_sha1", Value::Str(thumb.clone())));
            decoded.facts.push(AssetFact {
                side: if from_client {
                    Side::Client
                } else {
                    Side::Server
                },
                key: "certificate_sha1",
                value: thumb,
            });
            Some(digest)
        };
        if let Some(t) = asym.receiver_thumbprint.filter(|t| !t.is_empty()) {
            decoded
                .details
                .push(("receiver_thumbprint", Value::Str(hex(t))));
            let peer = self.channel.cert_sha1.get(dir.reverse().index()).copied();
            if let Some(Some(peer)) = peer {
                if t != peer.as_slice() {
                    cx.stats.opcua.violation("receiver_thumbprint_mismatch");
                    violations.push("receiver_thumbprint_mismatch");
                }
            }
        }
        if let Some(slot) = self.channel.cert_sha1.get_mut(dir.index()) {
            *slot = own;
        }
    }

    /// The final chunk of an asymmetrically encrypted OPN: pairs requests and responses by
    /// direction, since the request id is encrypted.
    fn on_encrypted_open(
        &mut self,
        is_request: bool,
        at: At,
        mut decoded: Decoded,
        violations: Vec<&'static str>,
        cx: &mut ParseCx<'_>,
    ) {
        decoded.details.push(("encrypted", Value::Bool(true)));
        if is_request {
            self.learn_requests_from(at.dir);
            let mut p = transport_pending(at, "OpenSecureChannel", OpKind::Session, self.session());
            p.code = 446;
            p.category = "service";
            p.decoded = decoded;
            p.violations = violations;
            if let Some(old) = self.opn.replace(p) {
                cx.stats.opcua.unanswered += 1;
                self.emit(old, None, Outcome::NoResponse, cx);
            }
            return;
        }
        let mut resp = self.response_at(at);
        resp.decoded = decoded;
        resp.violations = violations;
        match self.opn.take() {
            Some(mut p) => {
                cx.stats.opcua.transactions += 1;
                if p.session.is_none() {
                    p.session = self.session();
                }
                self.emit(p, Some(resp), Outcome::Ok, cx);
            }
            None => {
                cx.stats.opcua.unsolicited += 1;
                let mut p =
                    transport_pending(at, "OpenSecureChannel", OpKind::Session, self.session());
                p.code = 446;
                p.category = "service";
                p.decoded = resp.decoded;
                p.violations = resp.violations;
                self.emit(p, None, Outcome::Unsolicited, cx);
            }
        }
    }

    /// Acts on what a chunk did to its message (MSG, and OPN with policy None).
    #[allow(clippy::too_many_arguments)]
    fn on_chunk_result(
        &mut self,
        res: ChunkResult<'_>,
        at: At,
        request_id: u32,
        limits: &DecodeLimits,
        cx: &mut ParseCx<'_>,
        before: Before,
    ) {
        match res {
            ChunkResult::Complete(msg, ts, packet) => {
                let first = At { ts, packet, ..at };
                self.on_message_with_response_at(first, at, request_id, &msg, limits, cx, before);
            }
            ChunkResult::Pending | ChunkResult::Discarded => {}
            ChunkResult::Aborted => cx.stats.opcua.aborted += 1,
            ChunkResult::Limit(name) => {
                cx.stats.opcua.limit_hits += 1;
                cx.stats.opcua.violation(name);
            }
        }
    }
    fn on_msg(&mut self, chunk_type: u8, r: &mut Reader<'_>, at: At, cx: &mut ParseCx<'_>) {
        let (channel_id, token) = match r.u32().and_then(|c| Ok((c, r.u32()?))) {
            Ok(x) => x,
            Err(e) => {
                cx.stats.opcua.decode_error(&e);
                return;
            }
        };
        match self.channel.id {
            Some(id) if id != channel_id => cx.stats.opcua.violation("channel_id_mismatch"),
            Some(_) => {}
            None => self.channel.id = Some(channel_id),
        }
        self.channel.token = Some(token);
        if self.channel.encrypted() {
            cx.stats.opcua.encrypted_messages += 1;
            return;
        }
        let seq = match transport::parse_seq_header(r) {
            Ok(s) => s,
            Err(e) => {
                cx.stats.opcua.decode_error(&e);
                return;
            }
        };
        let limits = r.limits();
        let body = r.rest();
        let res = self.dir_state(at.dir).reasm.push(
            chunk_type,
            seq.request_id,
            body,
            at.ts,
            at.packet,
            limits,
        );
        self.on_chunk_result(res, at, seq.request_id, limits, cx, None);
    }

    fn on_close_channel(&mut self, r: &mut Reader<'_>, at: At, cx: &mut ParseCx<'_>) {
        self.learn_requests_from(at.dir);
        let mut p = transport_pending(at, "CloseSecureChannel", OpKind::Session, self.session());
        p.code = 452;
        p.category = "service";
        let parsed = r
            .u32()
            .and_then(|_| r.u32())
            .and_then(|_| transport::parse_seq_header(r));
        if self.channel.encrypted() {
            cx.stats.opcua.encrypted_messages += 1;
            p.decoded.details.push(("encrypted", Value::Bool(true)));
        } else if parsed.is_ok() {
            let mut t = Reader::new(r.rest(), &self.limits);
            match t.expanded_node_id().map(|id| id.node.ns0_numeric()) {
                Ok(Some(id @ 452)) => {
                    if let Some(enc) = services::lookup(id) {
                        cx.stats.opcua.services.count(enc.stat);
                    }
                    match services::request_header(&mut t) {
                        Ok(h) => p.request_handle = Some(h.request_handle),
                        Err(e) => {
                            cx.stats.opcua.decode_error(&e);
                            p.violations.push(e.violation());
                        }
                    }
                }
                _ if self.channel.maybe_encrypted() => {
                    cx.stats.opcua.encrypted_messages += 1;
                    p.decoded.details.push(("encrypted", Value::Bool(true)));
                }
                _ => {
                    cx.stats.opcua.violation("unexpected_close_body");
                    p.violations.push("unexpected_close_body");
                }
            }
        } else if let Err(e) = parsed {
            cx.stats.opcua.decode_error(&e);
            p.violations.push(e.violation());
        }
        self.emit(p, None, Outcome::NotApplicable, cx);
    }

    /// Decodes one complete message (service request or response, or a plain OPN body).
    /// `first` is where its first chunk was, `last` where its final chunk was.
    #[allow(clippy::too_many_arguments)]
    fn on_message_with_response_at(
        &mut self,
        first: At,
        last: At,
        request_id: u32,
        body: &[u8],
        limits: &DecodeLimits,
        cx: &mut ParseCx<'_>,
        before: Before,
    ) {
        let mut r = Reader::new(body, limits);
        let enc = match r.encoding_id() {
            Ok(id) => id.and_then(services::lookup),
            Err(e) => {
                if self.channel.maybe_encrypted() {
                    cx.stats.opcua.encrypted_messages += 1;
                } else {
                    cx.stats.opcua.decode_error(&e);
                }
                return;
            }
        };
        let Some(enc) = enc else {
            if self.channel.maybe_encrypted() && self.channel.policy_none.is_some() {
                cx.stats.opcua.encrypted_messages += 1;
            } else {
                cx.stats.opcua.unknown_services += 1;
                cx.stats.opcua.violation("unknown_service");
            }
            return;
        };
        if self.channel.policy_none == Some(false) && self.channel.mode.is_none() {
            // A readable body on a secured channel: the mode is Sign.
            self.channel.mode = Some(2);
        }
        cx.stats.opcua.services.count(enc.stat);
        match enc.kind {
            MsgKind::Request | MsgKind::Structure => {
                if enc.id == services::PUBLISH_REQUEST
                    && before.is_none()
                    && self.pending.is_empty()
                    && self.wait.is_none()
                    && !self.general_only
                {
                    let mut t = r.clone();
                    let read = services::request_handle(&mut t)
                        .and_then(|h| Ok((h, services::publish_acks(&mut t)?)));
                    if let Ok((request_handle, acknowledgements)) = read {
                        // What the general path keeps, without the record (see `PublishWait`).
                        self.learn_requests_from(first.dir);
                        self.wait = Some(PublishWait {
                            request_id,
                            ts: first.ts,
                            packet: first.packet,
                            request_handle,
                            acknowledgements,
                            channel: self.channel.id,
                        });
                        return;
                    }
                }
                self.spill();
                let (mut decoded, mut violations) = before.map(|b| *b).unwrap_or_default();
                if enc.kind == MsgKind::Structure {
                    cx.stats.opcua.violation("not_a_service");
                    violations.push("not_a_service");
                }
                self.learn_requests_from(first.dir);
                let mut handle = None;
                let res = services::request_handle(&mut r).and_then(|h| {
                    handle = Some(h);
                    if enc.id == services::PUBLISH_REQUEST {
                        services::publish_request(&mut r, &mut decoded)
                    } else if enc.service == "OpenSecureChannel" {
                        self.open_request(&mut r, &mut decoded)
                    } else {
                        services::decode_request(enc.service, &mut r, &mut decoded)
                    }
                });
                if let Err(e) = res {
                    cx.stats.opcua.decode_error(&e);
                    violations.push(e.violation());
                }
                let p = Pending {
                    ts: first.ts,
                    packet: first.packet,
                    code: enc.id,
                    name: enc.service,
                    category: "service",
                    op: services::op_kind(enc.service),
                    request_handle: handle,
                    decoded,
                    violations,
                    session: self.session(),
                };
                if self.pending.len() >= self.limits.max_pending {
                    if let Some((_, old)) = self.pending.pop_first() {
                        cx.stats.opcua.limit_hits += 1;
                        cx.stats.opcua.violation("too_many_pending_requests");
                        cx.stats.opcua.unanswered += 1;
                        self.emit(old, None, Outcome::NoResponse, cx);
                    }
                }
                if let Some(old) = self.pending.insert(request_id, p) {
                    cx.stats.opcua.violation("duplicate_request_id");
                    cx.stats.opcua.unanswered += 1;
                    self.emit(old, None, Outcome::NoResponse, cx);
                }
            }
            MsgKind::Response | MsgKind::Fault => {
                self.learn_requests_from(first.dir.reverse());
                if enc.id == services::PUBLISH_RESPONSE && before.is_none() {
                    if let Some(w) = self.wait.filter(|w| w.request_id == request_id) {
                        self.wait = None;
                        self.publish_response(w, last, &mut r, cx);
                        return;
                    }
                }
                self.spill();
                let mut pending = self.pending.remove(request_id);
                // A Publish response is decoded straight into its request's record: the
                // event `emit` would merge from the two is the same (see `into_request`).
                let direct = match &mut pending {
                    Some(p) if !self.general_only && into_request(&enc, p, before.as_deref()) => {
                        Some(&mut p.decoded)
                    }
                    _ => None,
                };
                let (decoded, violations) = before.map(|b| *b).unwrap_or_default();
                let mut resp = Response {
                    ts: last.ts,
                    packet: last.packet,
                    status: None,
                    request_handle: None,
                    decoded,
                    violations,
                    undecodable: false,
                };
                let target = match direct {
                    Some(d) => d,
                    None => &mut resp.decoded,
                };
                let res = services::response_status(&mut r).and_then(|(_, handle, result)| {
                    resp.status = Some(result);
                    resp.request_handle = Some(handle);
                    services::skip_response_header_rest(&mut r)?;
                    if enc.id == services::PUBLISH_RESPONSE {
                        services::decode_publish_response(&mut r, target, &mut self.handle_names)
                    } else if enc.service == "OpenSecureChannel" {
                        self.open_response(&mut r, target)
                    } else {
                        services::decode_response_with(
                            enc.service,
                            &mut r,
                            target,
                            &mut self.handle_names,
                        )
                    }
                });
                if let Err(e) = res {
                    cx.stats.opcua.decode_error(&e);
                    resp.violations.push(e.violation());
                    resp.undecodable = resp.status.is_none();
                }
                match pending {
                    Some(p) => {
                        if p.request_handle.is_some()
                            && resp.request_handle.is_some()
                            && p.request_handle != resp.request_handle
                        {
                            cx.stats.opcua.violation("request_handle_mismatch");
                            resp.violations.push("request_handle_mismatch");
                        }
                        if enc.kind == MsgKind::Response && enc.service != p.name {
                            cx.stats.opcua.violation("response_service_mismatch");
                            resp.violations.push("response_service_mismatch");
                        }
                        cx.stats.opcua.transactions += 1;
                        self.emit(p, Some(resp), Outcome::Ok, cx);
                    }
                    None => {
                        cx.stats.opcua.unsolicited += 1;
                        let mut p = transport_pending(
                            first,
                            enc.service,
                            services::op_kind(enc.service),
                            self.session(),
                        );
                        p.code = services::request_id_of(enc.service).unwrap_or(enc.id);
                        p.category = "service";
                        p.decoded = resp.decoded;
                        p.violations = resp.violations;
                        p.request_handle = resp.request_handle;
                        let outcome = match resp.status {
                            Some(code) if status::is_bad(code) => Outcome::Bad {
                                code,
                                name: status::name(code),
                            },
                            _ => Outcome::Unsolicited,
                        };
                        self.emit(p, None, outcome, cx);
                    }
                }
            }
        }
    }

    /// The OpenSecureChannelRequest body (policy None).
    fn open_request(&mut self, r: &mut Reader<'_>, d: &mut Decoded) -> types::DResult<()> {
        r.u32()?; // client protocol version
        let request_type = r.u32()?;
        let mode = r.u32()?;
        self.channel.mode = Some(mode);
        d.details.push((
            "request_type",
            Value::Str(if request_type == 0 { "Issue" } else { "Renew" }.to_string()),
        ));
        d.details.push((
            "security_mode",
            Value::Str(services::security_mode_name(mode).to_string()),
        ));
        r.bytestring()?; // client nonce
        let lifetime = r.u32()?;
        d.details
            .push(("requested_lifetime_ms", Value::Int(i64::from(lifetime))));
        Ok(())
    }

    /// The OpenSecureChannelResponse body (policy None).
    fn open_response(&mut self, r: &mut Reader<'_>, d: &mut Decoded) -> types::DResult<()> {
        r.u32()?; // server protocol version
        let channel = r.u32()?;
        let token = r.u32()?;
        r.datetime()?; // created at
        let lifetime = r.u32()?;
        self.channel.id = Some(channel);
        self.channel.token = Some(token);
        d.details
            .push(("channel_id", Value::Int(i64::from(channel))));
        d.details.push(("token_id", Value::Int(i64::from(token))));
        d.details
            .push(("revised_lifetime_ms", Value::Int(i64::from(lifetime))));
        r.bytestring()?; // server nonce
        Ok(())
    }

    /// The common chunk in one step: a whole final MSG chunk of the known channel, not
    /// encrypted, with no message being reassembled in its direction, within the size caps,
    /// goes straight to its message (what `check_header`, `on_chunk`, `on_msg`, the
    /// reassembler and `on_chunk_result` do with it, without their steps; tested). Returns
    /// the chunk's size, or `None` (nothing done) for anything else.
    #[inline]
    fn common_msg(&mut self, dir: Direction, data: &[u8], cx: &mut ParseCx<'_>) -> Option<usize> {
        let &[b'M', b'S', b'G', b'F', s0, s1, s2, s3, c0, c1, c2, c3, k0, k1, k2, k3, _, _, _, _, i0, i1, i2, i3] =
            data.first_chunk::<24>()?
        else {
            return None;
        };
        let size = u32::from_le_bytes([s0, s1, s2, s3]);
        let channel = u32::from_le_bytes([c0, c1, c2, c3]);
        if self.general_only
            || size > self.limits.max_declared_chunk_size
            || self.channel.id != Some(channel)
            || self.channel.encrypted()
        {
            return None;
        }
        // At least the header, channel, token and sequence header (24, the MSG minimum).
        let chunk = data.get(..usize::try_from(size).ok()?)?;
        let body = chunk.get(24..)?;
        if chunk.len() > self.limits.max_chunk_size
            || body.len() > self.limits.max_message_size
            || !self.dir_state(dir).reasm.is_empty()
        {
            return None;
        }
        #[cfg(test)]
        {
            self.common_taken += 1;
        }
        let st = &mut cx.stats.opcua;
        st.messages += 1;
        st.by_type.count(Name::msg_type(MsgType::Msg));
        self.channel.token = Some(u32::from_le_bytes([k0, k1, k2, k3]));
        let at = At {
            dir,
            ts: cx.ts,
            packet: cx.packet,
        };
        let request_id = u32::from_le_bytes([i0, i1, i2, i3]);
        let limits = self.limits.clone();
        self.on_message_with_response_at(at, at, request_id, body, &limits, cx, None);
        Some(chunk.len())
    }

    /// Moves a waiting Publish request into the pending table as the record the general
    /// path would have made of it (the table is empty while one waits).
    fn spill(&mut self) {
        let Some(w) = self.wait.take() else {
            return;
        };
        let mut details = recycle::details(4);
        details.push(("acknowledgements", Value::Int(w.acknowledgements)));
        let decoded = Decoded {
            details,
            ..Decoded::default()
        };
        let p = Pending {
            ts: w.ts,
            packet: w.packet,
            code: services::PUBLISH_REQUEST,
            name: "Publish",
            category: "service",
            op: OpKind::Subscribe,
            request_handle: Some(w.request_handle),
            decoded,
            violations: Vec::new(),
            session: self.session_of(w.channel),
        };
        self.pending.insert(w.request_id, p);
    }

    /// The PublishResponse `r` (after its encoding id) to the waiting request `w`, decoded
    /// and emitted as the general path would (its response decoded into the request's
    /// record, then `emit`).
    fn publish_response(
        &mut self,
        w: PublishWait,
        last: At,
        r: &mut Reader<'_>,
        cx: &mut ParseCx<'_>,
    ) {
        let mut d = Decoded {
            details: recycle::details(4),
            ..Decoded::default()
        };
        d.details
            .push(("acknowledgements", Value::Int(w.acknowledgements)));
        let mut status = None;
        let mut handle = None;
        let mut violations = Vec::new();
        let res = services::response_status(r).and_then(|(_, h, result)| {
            status = Some(result);
            handle = Some(h);
            services::skip_response_header_rest(r)?;
            services::decode_publish_response(r, &mut d, &mut self.handle_names)
        });
        let undecodable = match res {
            Ok(()) => false,
            Err(e) => {
                cx.stats.opcua.decode_error(&e);
                violations.push(e.violation());
                status.is_none()
            }
        };
        if handle.is_some_and(|h| h != w.request_handle) {
            cx.stats.opcua.violation("request_handle_mismatch");
            violations.push("request_handle_mismatch");
        }
        cx.stats.opcua.transactions += 1;
        self.emit_publish(w, last, d, violations, status, undecodable, cx);
    }

    /// The event `emit` makes of a Publish transaction whose response was decoded into its
    /// request's record `d` (request details first), with the response's `violations`.
    #[allow(clippy::too_many_arguments)]
    fn emit_publish(
        &mut self,
        w: PublishWait,
        last: At,
        d: Decoded,
        resp_violations: Vec<&'static str>,
        status: Option<u32>,
        undecodable: bool,
        cx: &mut ParseCx<'_>,
    ) {
        let session = self.session_of(w.channel);
        let (client, server) = self.endpoints(cx);
        let Decoded {
            accesses,
            item_values: _,
            bad_items,
            mut details,
            facts,
            items_dropped,
        } = d;
        bad_item_details(&mut details, bad_items.into_iter());
        let mut violations = resp_violations;
        if violations.len() > 1 {
            let mut seen: Vec<&'static str> = Vec::with_capacity(violations.len());
            for v in violations {
                if !seen.contains(&v) {
                    seen.push(v);
                }
            }
            violations = seen;
        }
        let outcome = match status {
            Some(code) => outcome_of(code),
            None if undecodable => {
                details.push(("service_result", Value::Opaque("undecodable")));
                UNDECODABLE
            }
            None => Outcome::Ok,
        };
        items_dropped_detail(&mut details, items_dropped);
        cx.events.push(IcsEvent {
            ts: w.ts,
            proto: AppProto::Opcua,
            flow_id: cx.meta.id,
            client,
            server,
            vlan: cx.meta.vlan,
            unit_id: None,
            session,
            op: OpKind::Subscribe,
            function: Function {
                code: services::PUBLISH_REQUEST,
                name: "Publish",
                category: "service",
                sub: None,
                sub_name: None,
            },
            accesses,
            outcome,
            latency_us: Some(last.ts.micros_since(w.ts)),
            violations,
            facts,
            details,
            evidence: Evidence {
                file: cx.file.clone(),
                packet: w.packet,
                response_packet: Some(last.packet),
            },
        });
    }

    fn endpoints(&self, cx: &ParseCx<'_>) -> (Endpoint, Endpoint) {
        if self.requests_from == Some(Direction::ToClient) {
            (cx.meta.server, cx.meta.client)
        } else {
            (cx.meta.client, cx.meta.server)
        }
    }

    /// Emits the event of a transaction (or of a one-way message when `resp` is `None`).
    fn emit(&self, p: Pending, resp: Option<Response>, default: Outcome, cx: &mut ParseCx<'_>) {
        let (client, server) = self.endpoints(cx);
        let mut accesses = p.decoded.accesses;
        let mut details = p.decoded.details;
        let mut facts = p.decoded.facts;
        let mut violations = p.violations;
        let mut outcome = default;
        let mut latency_us = None;
        let mut response_packet = None;
        let mut dropped = p.decoded.items_dropped;
        if let Some(resp) = resp {
            latency_us = Some(resp.ts.micros_since(p.ts));
            response_packet = Some(resp.packet);
            let rd = resp.decoded;
            dropped += rd.items_dropped;
            // Each merge is skipped when the response gave nothing to merge (a Publish
            // response decoded into its request's record).
            if !rd.item_values.is_empty() {
                for (a, vals) in accesses.iter_mut().zip(rd.item_values) {
                    if a.values.is_empty() {
                        a.values = vals.into();
                    } else {
                        details.extend(vals.into_iter().map(|v| ("output_argument", v)));
                    }
                }
            }
            if accesses.is_empty() {
                // The request named no object (Publish): the response's list, as it is.
                accesses = rd.accesses;
            } else if !rd.accesses.is_empty() {
                accesses.extend(rd.accesses);
            }
            if !rd.details.is_empty() {
                for kv in rd.details {
                    if !details.contains(&kv) {
                        details.push(kv);
                    }
                }
            }
            if !rd.facts.is_empty() {
                for f in rd.facts {
                    if !facts.contains(&f) {
                        facts.push(f);
                    }
                }
            }
            // A request record holds bad items only when its response was decoded into it.
            let bad = p.decoded.bad_items;
            if !bad.is_empty() || !rd.bad_items.is_empty() {
                bad_item_details(&mut details, bad.into_iter().chain(rd.bad_items));
            }
            if !resp.violations.is_empty() {
                for v in resp.violations {
                    if !violations.contains(&v) {
                        violations.push(v);
                    }
                }
            }
            match resp.status {
                Some(code) => outcome = outcome_of(code),
                None if resp.undecodable => {
                    // A response came but its status could not be read: not a success.
                    outcome = UNDECODABLE;
                    details.push(("service_result", Value::Opaque("undecodable")));
                }
                None => {}
            }
        }
        items_dropped_detail(&mut details, dropped);
        cx.events.push(IcsEvent {
            ts: p.ts,
            proto: AppProto::Opcua,
            flow_id: cx.meta.id,
            client,
            server,
            vlan: cx.meta.vlan,
            unit_id: None,
            session: p.session,
            op: p.op,
            function: Function {
                code: p.code,
                name: p.name,
                category: p.category,
                sub: None,
                sub_name: None,
            },
            accesses,
            outcome,
            latency_us,
            violations,
            facts,
            details,
            evidence: Evidence {
                file: cx.file.clone(),
                packet: p.packet,
                response_packet,
            },
        });
    }
}

impl StreamParser for OpcuaParser {
    fn parse(&mut self, dir: Direction, data: &[u8], cx: &mut ParseCx<'_>) -> usize {
        let mut pos = 0usize;
        let max_declared = self.limits.max_declared_chunk_size;
        let max_chunk = self.limits.max_chunk_size;
        loop {
            let rest = data.get(pos..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            let ds = self.dir_state(dir);
            if ds.skip > 0 {
                let n = usize::try_from(ds.skip)
                    .unwrap_or(usize::MAX)
                    .min(rest.len());
                ds.skip -= n as u64;
                pos += n;
                continue;
            }
            if ds.lost_sync {
                let mut found = None;
                let mut need_more_at = None;
                for i in 0..rest.len() {
                    let cand = rest.get(i..).unwrap_or_default();
                    match self.resync_candidate(cand) {
                        Some(true) => {
                            found = Some(i);
                            break;
                        }
                        Some(false) => {}
                        None => {
                            need_more_at = Some(i);
                            break;
                        }
                    }
                }
                match found {
                    Some(i) => {
                        cx.stats.opcua.skipped_bytes += i as u64;
                        cx.stats.opcua.resyncs += 1;
                        self.dir_state(dir).lost_sync = false;
                        pos += i;
                        continue;
                    }
                    None => {
                        let i = need_more_at.unwrap_or(rest.len());
                        cx.stats.opcua.skipped_bytes += i as u64;
                        pos += i;
                        break;
                    }
                }
            }
            if let Some(size) = self.common_msg(dir, rest, cx) {
                pos += size;
                continue;
            }
            match transport::check_header(rest, max_declared) {
                HeaderCheck::NeedMore => break,
                HeaderCheck::Invalid(why) => {
                    cx.stats.opcua.violation(why);
                    self.dir_state(dir).lost_sync = true;
                }
                HeaderCheck::Ok(h) => {
                    let size = h.size as usize;
                    if size > max_chunk {
                        cx.stats.opcua.oversized_chunks += 1;
                        cx.stats.opcua.limit_hits += 1;
                        cx.stats.opcua.violation("chunk_too_large");
                        cx.stats.opcua.messages += 1;
                        cx.stats.opcua.by_type.count(Name::msg_type(h.msg_type));
                        self.dir_state(dir).skip = u64::from(h.size);
                        continue;
                    }
                    let Some(chunk) = rest.get(..size) else {
                        break;
                    };
                    pos += size;
                    let at = At {
                        dir,
                        ts: cx.ts,
                        packet: cx.packet,
                    };
                    self.on_chunk(h, chunk, at, cx);
                }
            }
        }
        pos
    }

    fn on_gap(&mut self, dir: Direction, len: u64, cx: &mut ParseCx<'_>) {
        cx.stats.opcua.gaps += 1;
        let ds = self.dir_state(dir);
        if ds.skip >= len && ds.skip > 0 {
            // The gap fell inside a chunk being skipped: still in sync.
            ds.skip -= len;
            return;
        }
        ds.skip = 0;
        ds.lost_sync = true;
        let dropped = ds.reasm.clear() + ds.opn_reasm.clear();
        if dropped > 0 {
            cx.stats.opcua.violation("partial_message_lost_in_gap");
        }
    }

    fn on_close(&mut self, cx: &mut ParseCx<'_>) {
        self.spill();
        let mut all: Vec<Pending> = self.pending.take_all();
        all.extend(self.hello.take());
        all.extend(self.opn.take());
        all.sort_by_key(|p| (p.ts, p.packet));
        for p in all {
            cx.stats.opcua.unanswered += 1;
            self.emit(p, None, Outcome::NoResponse, cx);
        }
    }

    fn max_message_len(&self) -> usize {
        self.limits.max_chunk_size
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests;
