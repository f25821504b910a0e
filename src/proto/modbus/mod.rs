//! Modbus/TCP: MBAP framing, PDUs, transactions and events.
//!
//! - [`parser`]: pure `nom` parsers (MBAP header, every public function's request and response).
//! - [`types`]: messages, code points and their names, [`types::Violations`].
//! - `state`: pending requests matched to responses by (transaction id, unit id).
//! - `events`: building [`IcsEvent`]s from transactions.
//!
//! # Framing policy
//! The MBAP length counts the bytes after it (unit id + PDU). While a direction is in sync,
//! any length from 1 to [`types::MAX_FRAMED_LENGTH`] (1024) is framed; lengths outside the
//! specification's 2..=254 are flagged `length_out_of_range`, a non-zero protocol id
//! `protocol_id_nonzero`. A length of 0, above 1024, or above 254 with a non-zero protocol id
//! cannot be framed: the direction loses sync. Out of sync (at the start of each direction and
//! after every gap), the parser scans forward for a strictly plausible header (protocol id 0,
//! length 2..=254, a public, user-defined or UMAS function code or its exception, and a
//! plausible next header when its bytes are present); skipped bytes count as a resync.
//!
//! # Orientation
//! The flow table's client/server may be a port guess. On the first framed ADU of a flow the
//! parser decides which side is the Modbus client: a handshake-established flow to port 502
//! is trusted; otherwise content decides (an ADU that is valid only as a request, or only as a
//! response), then port 502, then the flow table. Events carry the Modbus client and server.

pub mod parser;
pub mod types;

mod events;
mod state;

use crate::event::{Endpoint, IcsEvent, OpKind, Outcome, Value};
use crate::flow::{Direction, SideSource};
use crate::proto::{ParseCx, Probe, StreamParser};
use events::EventCx;
use parser::{
    candidate_at, header_violations, parse_adu, parse_request, parse_response, Candidate,
};
use serde::Serialize;
use state::{Release, Transactions};
use std::collections::BTreeMap;
use types::{Mbap, Violations, MAX_FRAMED_LENGTH, MBAP_LEN};

/// The well-known Modbus/TCP server port.
pub const MODBUS_PORT: u16 = 502;

/// Limits of the transaction layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModbusConfig {
    /// A request unanswered for this long (capture time) becomes a `Timeout` event.
    pub request_timeout_secs: u64,
    /// Most requests pending per flow; beyond it the oldest are dropped (and counted).
    pub max_pending: usize,
}

impl Default for ModbusConfig {
    fn default() -> Self {
        ModbusConfig {
            request_timeout_secs: 10,
            max_pending: 500,
        }
    }
}

/// Modbus counters for `otwatch stats`.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ModbusStats {
    /// ADUs framed (requests, responses and exceptions).
    pub pdus: u64,
    /// ADUs framed in the request direction.
    pub requests: u64,
    /// ADUs framed in the response direction.
    pub responses: u64,
    /// ADUs by function code (exception bit cleared).
    pub function_codes: BTreeMap<u8, u64>,
    /// Exception responses.
    pub exceptions: u64,
    /// Exception responses by exception code.
    pub exception_codes: BTreeMap<u8, u64>,
    /// Violations by name (each message or pair counts once per flag).
    pub violations: BTreeMap<&'static str, u64>,
    /// Requests matched with their response.
    pub transactions: u64,
    /// Requests without response when their flow ended, or superseded by a reused key.
    pub unanswered: u64,
    /// Requests unanswered within the timeout.
    pub timeouts: u64,
    /// Responses with no matching request.
    pub unsolicited: u64,
    /// Requests dropped because the pending cap was reached.
    pub pending_dropped: u64,
    /// Flood episodes (pending cap reached).
    pub floods: u64,
    /// Times bytes were skipped to find a frame start again.
    pub resyncs: u64,
    /// Bytes skipped while resynchronising.
    pub resync_skipped_bytes: u64,
    /// Reassembly gaps reported to the parser.
    pub gaps: u64,
    /// Flows whose Modbus client is the flow table's server side.
    pub swapped_flows: u64,
}

impl ModbusStats {
    fn count(&mut self, v: Violations) {
        for name in v.names() {
            *self.violations.entry(name).or_insert(0) += 1;
        }
    }
}

/// Says whether the first bytes of a stream are Modbus/TCP.
///
/// Needs protocol id 0, length 2..=254, a plausible function code, the whole first frame and,
/// when its bytes follow, a plausible second header.
pub fn probe(data: &[u8]) -> Probe {
    match candidate_at(data, true) {
        Candidate::Yes => Probe::Match,
        Candidate::No => Probe::NoMatch,
        Candidate::NeedMore => Probe::NeedMore,
    }
}

/// The Modbus/TCP parser of one flow.
#[derive(Debug, Default)]
pub struct ModbusParser {
    config: ModbusConfig,
    /// Whether each direction ([to-server, to-client]) is at a frame boundary.
    in_sync: [bool; 2],
    /// `Some(true)` when the Modbus client is the flow table's server side.
    swapped: Option<bool>,
    tx: Transactions,
}

impl ModbusParser {
    /// A parser for a new flow, default limits.
    pub fn new() -> Self {
        Self::with_config(ModbusConfig::default())
    }

    /// A parser for a new flow with the given limits.
    pub fn with_config(config: ModbusConfig) -> Self {
        ModbusParser {
            config,
            in_sync: [false, false],
            swapped: None,
            tx: Transactions::default(),
        }
    }

    /// Whether the Modbus client was found to be the flow table's server side (`None`
    /// before the first ADU).
    pub fn swapped(&self) -> Option<bool> {
        self.swapped
    }

    /// Requests waiting for a response.
    pub fn pending(&self) -> usize {
        self.tx.len()
    }

    fn event_cx<'a>(&self, cx: &ParseCx<'a>) -> EventCx<'a> {
        let (client, server) = if self.swapped == Some(true) {
            (cx.meta.server, cx.meta.client)
        } else {
            (cx.meta.client, cx.meta.server)
        };
        EventCx {
            ts: cx.ts,
            file: cx.file,
            packet: cx.packet,
            flow_id: cx.meta.id,
            client,
            server,
            vlan: cx.meta.vlan,
        }
    }

    /// Emits a finished event: violations named, counted.
    fn emit(cx: &mut ParseCx<'_>, mut ev: IcsEvent, v: Violations) {
        cx.stats.modbus.count(v);
        ev.violations = v.names().collect();
        cx.events.push(ev);
    }

    fn release(&mut self, cx: &mut ParseCx<'_>, all: bool) {
        let (timeout, cap) = (self.config.request_timeout_secs, self.config.max_pending);
        let now = cx.ts;
        self.tx.release(now, timeout, all, cap, |why, ev, v| {
            match why {
                Release::Timeout => cx.stats.modbus.timeouts += 1,
                Release::NoResponse => cx.stats.modbus.unanswered += 1,
            }
            Self::emit(cx, ev, v);
        });
    }

    /// Decides which side is the Modbus client from the first ADU, sent in direction `dir`.
    fn orient(&mut self, dir: Direction, fc: u8, body: &[u8], cx: &mut ParseCx<'_>) {
        let meta = cx.meta;
        let sender_is_client =
            if meta.side_source == SideSource::Handshake && meta.server.port == MODBUS_PORT {
                dir == Direction::ToServer
            } else {
                let (sender, receiver): (Endpoint, Endpoint) = match dir {
                    Direction::ToServer => (meta.client, meta.server),
                    Direction::ToClient => (meta.server, meta.client),
                };
                let as_request = parse_request(fc, body).violations.is_empty();
                let as_response = parse_response(fc, body).violations.is_empty();
                match (as_request, as_response) {
                    (true, false) => true,
                    (false, true) => false,
                    _ if receiver.port == MODBUS_PORT && sender.port != MODBUS_PORT => true,
                    _ if sender.port == MODBUS_PORT && receiver.port != MODBUS_PORT => false,
                    _ => dir == Direction::ToServer,
                }
            };
        let swapped = sender_is_client != (dir == Direction::ToServer);
        if swapped {
            cx.stats.modbus.swapped_flows += 1;
        }
        self.swapped = Some(swapped);
    }

    /// Handles one framed ADU.
    fn on_adu(&mut self, dir: Direction, h: &Mbap, pdu: &[u8], cx: &mut ParseCx<'_>) {
        cx.stats.modbus.pdus += 1;
        let hv = header_violations(h);
        let Some((&fc, body)) = pdu.split_first() else {
            // Length 1: a unit id and nothing else.
            let ecx = self.event_cx(cx);
            let mut ev = events::base_event(
                &ecx,
                Some(h.unit_id),
                OpKind::Other,
                events::function(0, None, None),
            );
            ev.function.name = "none";
            ev.outcome = Outcome::NotApplicable;
            Self::emit(cx, ev, hv | Violations::MISSING_FUNCTION_CODE);
            return;
        };
        *cx.stats.modbus.function_codes.entry(fc & 0x7f).or_insert(0) += 1;
        if self.swapped.is_none() {
            self.orient(dir, fc, body, cx);
        }
        let is_request = (dir == Direction::ToServer) != (self.swapped == Some(true));
        let key = (h.transaction_id, h.unit_id);
        let cap = self.config.max_pending;
        if is_request {
            cx.stats.modbus.requests += 1;
            let req = parse_request(fc, body);
            let ecx = self.event_cx(cx);
            let (ev, shape) = events::request_event(&ecx, h, &req);
            let mut v = hv | req.violations;
            if self.tx.contains(&key) {
                v |= Violations::TRANSACTION_ID_REUSED;
            }
            let flood_fc = ev.function.clone();
            let added = self.tx.add(key, fc, shape, ev, v, cap);
            if let Some((old, old_v)) = added.replaced {
                cx.stats.modbus.unanswered += 1;
                Self::emit(cx, old, old_v);
            }
            cx.stats.modbus.pending_dropped += added.dropped;
            if added.flood_started {
                cx.stats.modbus.floods += 1;
                let mut ev = events::base_event(&ecx, Some(h.unit_id), OpKind::Other, flood_fc);
                ev.outcome = Outcome::NotApplicable;
                ev.details.push((
                    "max_pending",
                    Value::Int(i64::try_from(cap).unwrap_or(i64::MAX)),
                ));
                Self::emit(cx, ev, Violations::PENDING_REQUEST_FLOOD);
            }
        } else {
            cx.stats.modbus.responses += 1;
            let resp = parse_response(fc, body);
            if let types::Response::Exception { code } = resp.body {
                cx.stats.modbus.exceptions += 1;
                *cx.stats.modbus.exception_codes.entry(code).or_insert(0) += 1;
            }
            let ecx = self.event_cx(cx);
            let rv = hv | resp.violations;
            match self.tx.answer(key, &ecx, &resp, rv, cap) {
                Some((ev, v)) => {
                    cx.stats.modbus.transactions += 1;
                    Self::emit(cx, ev, v);
                }
                None => {
                    cx.stats.modbus.unsolicited += 1;
                    let ev = events::unsolicited_event(&ecx, h, &resp);
                    Self::emit(cx, ev, rv);
                }
            }
        }
    }

    /// Out of sync in `data`: returns the offset of the next plausible frame start, or how
    /// many bytes can be skipped for certain when none is found.
    fn scan(data: &[u8]) -> Result<usize, usize> {
        let mut pos = 0;
        while let Some(rest) = data.get(pos..) {
            match candidate_at(rest, false) {
                Candidate::Yes => return Ok(pos),
                Candidate::NeedMore => return Err(pos),
                Candidate::No => pos += 1,
            }
        }
        Err(data.len())
    }
}

impl StreamParser for ModbusParser {
    fn parse(&mut self, dir: Direction, data: &[u8], cx: &mut ParseCx<'_>) -> usize {
        self.release(cx, false);
        let d = dir.index();
        let mut pos = 0;
        while let Some(rest) = data.get(pos..) {
            if rest.is_empty() {
                break;
            }
            if !self.in_sync.get(d).copied().unwrap_or(false) {
                match Self::scan(rest) {
                    Ok(skip) => {
                        if skip > 0 {
                            cx.stats.modbus.resyncs += 1;
                            cx.stats.modbus.resync_skipped_bytes += skip as u64;
                        }
                        pos += skip;
                        if let Some(s) = self.in_sync.get_mut(d) {
                            *s = true;
                        }
                        continue;
                    }
                    Err(skip) => {
                        if skip > 0 {
                            cx.stats.modbus.resyncs += 1;
                            cx.stats.modbus.resync_skipped_bytes += skip as u64;
                        }
                        return pos + skip;
                    }
                }
            }
            match parse_adu(rest) {
                Ok((tail, (h, pdu))) => {
                    self.on_adu(dir, &h, pdu, cx);
                    pos += rest.len() - tail.len();
                }
                Err(nom::Err::Incomplete(_)) => break,
                Err(_) => {
                    if let Some(s) = self.in_sync.get_mut(d) {
                        *s = false;
                    }
                    // The header at `pos` is not plausible: skip at least its first byte.
                    cx.stats.modbus.resyncs += 1;
                    cx.stats.modbus.resync_skipped_bytes += 1;
                    pos += 1;
                }
            }
        }
        pos
    }

    fn on_gap(&mut self, dir: Direction, _len: u64, cx: &mut ParseCx<'_>) {
        cx.stats.modbus.gaps += 1;
        if let Some(s) = self.in_sync.get_mut(dir.index()) {
            *s = false;
        }
    }

    fn on_close(&mut self, cx: &mut ParseCx<'_>) {
        self.release(cx, true);
    }

    fn max_message_len(&self) -> usize {
        MBAP_LEN - 1 + usize::from(MAX_FRAMED_LENGTH)
    }
}
