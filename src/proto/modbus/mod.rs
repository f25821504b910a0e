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
//! cannot be framed: the direction loses sync. Out of sync (after every gap, and after a
//! header that cannot be framed), the parser scans forward for a strictly plausible header (protocol id 0,
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
pub(crate) use events::{read_values, PostedRead};
mod recent;
mod state;

use crate::event::{Endpoint, IcsEvent, OpKind, Outcome, Value};
use crate::flow::{Direction, SideSource};
use crate::proto::{ParseCx, Probe, StreamParser};
use crate::time::Timestamp;
use events::EventCx;
use parser::{
    candidate_at, decode_request, decode_response, frame_adu, header_violations, parse_adu,
    parse_request, parse_response, Candidate,
};
use serde::Serialize;
use state::{Pending, Release, Transactions};
use std::collections::BTreeMap;
use std::sync::Arc;
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
    pub function_codes: FcCounts,
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

/// Counts by function code (exception bit cleared, so 0..=127): a fixed array, counted
/// without a map search per ADU. Reads, serializes and compares as the sorted map of its
/// non-zero counts (`{"3": 10, "16": 2}`), as a `BTreeMap<u8, u64>` did.
#[derive(Clone, PartialEq, Eq)]
pub struct FcCounts([u64; 128]);

impl Default for FcCounts {
    fn default() -> Self {
        FcCounts([0; 128])
    }
}

impl FcCounts {
    /// Counts one ADU of code `fc` (its exception bit ignored).
    #[inline]
    pub fn add_one(&mut self, fc: u8) {
        if let Some(n) = self.0.get_mut(usize::from(fc & 0x7f)) {
            *n += 1;
        }
    }

    /// The count of code `fc`, `None` when zero (as a map without the key).
    pub fn get(&self, fc: &u8) -> Option<&u64> {
        self.0.get(usize::from(*fc)).filter(|n| **n > 0)
    }

    /// The non-zero counts in code order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, u64)> + '_ {
        (0u8..).zip(self.0.iter().copied()).filter(|&(_, n)| n > 0)
    }

    /// Adds another part's counts.
    pub fn merge(&mut self, o: &FcCounts) {
        for (a, b) in self.0.iter_mut().zip(o.0.iter()) {
            *a += b;
        }
    }

    /// The non-zero counts as a sorted map.
    pub fn to_map(&self) -> BTreeMap<u8, u64> {
        self.iter().collect()
    }
}

impl std::fmt::Debug for FcCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for FcCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl ModbusStats {
    fn count(&mut self, v: Violations) {
        for name in v.names() {
            *self.violations.entry(name).or_insert(0) += 1;
        }
    }
}

/// `now.micros_since(then)`, in 64-bit arithmetic when the seconds are less than 2^33 apart
/// (always, in a capture), without the 128-bit division (the rest out of line).
#[inline(always)]
fn latency_us(now: Timestamp, then: Timestamp) -> u64 {
    match now.secs.checked_sub(then.secs) {
        Some(ds) if (-(1i64 << 33)..(1i64 << 33)).contains(&ds) => {
            let d = ds * 1_000_000_000 + (i64::from(now.nanos) - i64::from(then.nanos));
            if d <= 0 {
                0
            } else {
                d.unsigned_abs() / 1000
            }
        }
        _ => far_latency_us(now, then),
    }
}

/// [`latency_us`] for times 2^33 seconds or more apart.
#[cold]
#[inline(never)]
fn far_latency_us(now: Timestamp, then: Timestamp) -> u64 {
    now.micros_since(then)
}

/// Says whether the first bytes of a stream are Modbus/TCP.
///
/// Needs protocol id 0, length 2..=254, the whole first frame, and either a plausible function
/// code (public, user-defined, UMAS, or their exceptions) or a frame that ends exactly where
/// the data ends; when bytes follow the frame, the next header must be well-shaped too. A
/// zero protocol id with a length of 0 or 1 is `NeedMore`: a scanner's empty probe, the other
/// direction may still tell.
pub fn probe(data: &[u8]) -> Probe {
    match candidate_at(data, true) {
        Candidate::Yes => Probe::Match,
        Candidate::NeedMore => Probe::NeedMore,
        Candidate::No => match parser::parse_mbap(data) {
            Ok((_, h)) if h.protocol_id == 0 && h.length < 2 => Probe::NeedMore,
            _ => Probe::NoMatch,
        },
    }
}

/// The Modbus/TCP parser of one flow.
///
/// Small (104 bytes) for the flows it is made for, which poll: a read taken by the fast path
/// waits in `fast`, and the general transaction layer (a map, a queue, 200-byte slots) is
/// allocated only by the first request or response that needs it.
#[derive(Debug, Default)]
pub struct ModbusParser {
    /// [`ModbusConfig::request_timeout_secs`].
    timeout_secs: u64,
    /// [`ModbusConfig::max_pending`] (saturated: no flow holds 2^32 requests).
    max_pending: u32,
    /// Whether each direction ([to-server, to-client]) is at a frame boundary.
    in_sync: [bool; 2],
    /// `Some(true)` when the Modbus client is the flow table's server side.
    swapped: Option<bool>,
    /// The entry of `recent` the next new read replaces.
    recent_next: u8,
    /// The read request taken by the fast path, pending while nothing else is (`tx` absent
    /// or idle).
    fast: Option<events::FastRead>,
    /// Capture file of the fast path's reads: set by a read request from another file than
    /// the last one's (so a request costs no reference count but when the file changes).
    fast_file: Option<Arc<str>>,
    /// Read requests recently taken by the fast path, recognised by their bytes.
    recent: recent::Recent,
    /// The general transaction layer, once a request or response has needed it.
    tx: Option<Box<Transactions>>,
    /// Tests only: never take the read fast path (the reference it is checked against).
    #[cfg(test)]
    no_fast: bool,
    /// Tests only: ADUs the read fast path handled.
    #[cfg(test)]
    fast_hits: u64,
}

impl ModbusParser {
    /// A parser for a new flow, default limits.
    pub fn new() -> Self {
        Self::with_config(ModbusConfig::default())
    }

    /// A parser for a new flow with the given limits.
    pub fn with_config(config: ModbusConfig) -> Self {
        ModbusParser {
            timeout_secs: config.request_timeout_secs,
            max_pending: u32::try_from(config.max_pending).unwrap_or(u32::MAX),
            // The driver starts each direction at a message boundary (it reports a gap when
            // it could not).
            in_sync: [true, true],
            swapped: None,
            recent_next: 0,
            fast: None,
            fast_file: None,
            recent: recent::Recent::default(),
            tx: None,
            #[cfg(test)]
            no_fast: false,
            #[cfg(test)]
            fast_hits: 0,
        }
    }

    /// Whether the Modbus client was found to be the flow table's server side (`None`
    /// before the first ADU).
    pub fn swapped(&self) -> Option<bool> {
        self.swapped
    }

    /// Requests waiting for a response.
    pub fn pending(&self) -> usize {
        usize::from(self.fast.is_some()) + self.tx.as_ref().map_or(0, |t| t.len())
    }

    /// The pending cap.
    #[inline]
    fn cap(&self) -> usize {
        self.max_pending as usize
    }

    /// True when nothing is pending or queued (and no flood is open): a read may wait in
    /// `fast`.
    #[inline(always)]
    fn idle(&self) -> bool {
        self.fast.is_none() && self.tx.as_ref().is_none_or(|t| t.idle())
    }

    /// The general transaction layer, with the fast path's pending read (if any) moved into
    /// it as the general path would have kept it: every use of the layer goes through here
    /// but [`ModbusParser::release`], which releases that read itself first.
    fn tx(&mut self, file: &Arc<str>) -> &mut Transactions {
        let tx = self.tx.get_or_insert_with(Box::default);
        if let Some(f) = self.fast.take() {
            // `fast` is set only while the layer is idle: the read becomes its one request.
            let key = (f.tid, f.unit);
            let (fc, quantity) = (f.fc, f.quantity);
            let slot = tx.alloc();
            if let Some(p) = tx.slot_mut(slot) {
                f.write_into(&mut p.req, self.fast_file.as_ref().unwrap_or(file));
                p.shape = events::ReqShape::Read { fc, quantity };
                p.fc = fc;
                p.violations = Violations::NONE;
                tx.add_idle(key, slot);
            }
        }
        tx
    }

    fn event_cx<'a>(&self, cx: &ParseCx<'a>) -> EventCx<'a> {
        EventCx {
            ts: cx.ts,
            file: cx.file,
            packet: cx.packet,
            meta: cx.meta,
            swapped: self.swapped == Some(true),
        }
    }

    /// Emits a finished event: violations named, counted.
    fn emit(cx: &mut ParseCx<'_>, mut ev: IcsEvent, v: Violations) {
        if !v.is_empty() {
            cx.stats.modbus.count(v);
            ev.violations = v.names().collect();
        }
        cx.events.push(ev);
    }

    /// Emits the event of a request that left without a response.
    fn emit_pending(cx: &mut ParseCx<'_>, ecx: &EventCx<'_>, p: &mut Pending, outcome: Outcome) {
        Self::emit(cx, p.req.take_event(ecx, outcome), p.violations);
    }

    /// Emits the event of a request answered by `resp`, which fills it in.
    fn emit_answered(
        cx: &mut ParseCx<'_>,
        ecx: &EventCx<'_>,
        p: &mut Pending,
        pair: Violations,
        resp: &types::Pdu<types::Response<'_>>,
        resp_violations: Violations,
    ) {
        let mut ev = p.req.take_event(ecx, Outcome::NoResponse);
        let pair = pair | events::apply_response(&mut ev, p.fc, &p.shape, resp);
        ev.latency_us = Some(latency_us(ecx.ts, ev.ts));
        ev.evidence.response_packet = Some(ecx.packet);
        let v = p.violations | resp_violations | pair;
        if !v.is_empty() {
            cx.stats.modbus.count(v);
            ev.violations = v.names().collect();
        }
        cx.events.push(ev);
    }

    /// Whether [`ModbusParser::release`] without `all` would do anything at `now`.
    #[inline(always)]
    fn release_due(&self, now: Timestamp) -> bool {
        match (&self.fast, &self.tx) {
            (Some(f), _) => f.ts().plus_secs(self.timeout_secs) < now,
            (None, Some(t)) => t.release_due(now, self.timeout_secs),
            (None, None) => false,
        }
    }

    fn release(&mut self, cx: &mut ParseCx<'_>, all: bool) {
        let (timeout, cap) = (self.timeout_secs, self.cap());
        let now = cx.ts;
        let ecx = self.event_cx(cx);
        if let Some(f) = &self.fast {
            // Alone pending (the layer idle): released as the layer releases its one request.
            let timed_out = f.ts().plus_secs(timeout) < now;
            if timed_out || all {
                if let Some(f) = self.fast.take() {
                    let outcome = if timed_out {
                        cx.stats.modbus.timeouts += 1;
                        Outcome::Timeout
                    } else {
                        cx.stats.modbus.unanswered += 1;
                        Outcome::NoResponse
                    };
                    let file = self.fast_file.as_ref().unwrap_or(cx.file);
                    cx.events.push(f.into_event(&ecx, outcome, file));
                }
            }
        }
        let Some(tx) = self.tx.as_mut() else {
            return;
        };
        tx.release(now, timeout, all, cap, |why, p| {
            let outcome = match why {
                Release::Timeout => {
                    cx.stats.modbus.timeouts += 1;
                    Outcome::Timeout
                }
                Release::NoResponse => {
                    cx.stats.modbus.unanswered += 1;
                    Outcome::NoResponse
                }
            };
            Self::emit_pending(cx, &ecx, p, outcome);
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

    /// Handles one framed ADU: the read fast path inline (in the framing loop), the rest in
    /// [`ModbusParser::on_adu_slow`].
    #[inline(always)]
    fn on_adu(&mut self, dir: Direction, h: &Mbap, pdu: &[u8], cx: &mut ParseCx<'_>) {
        if let (Some((&fc, body)), Some(swapped)) = (pdu.split_first(), self.swapped) {
            let is_request = (dir == Direction::ToServer) != swapped;
            if self.fast_read(is_request, h, fc, body, cx) {
                cx.stats.modbus.pdus += 1;
                cx.stats.modbus.function_codes.add_one(fc);
                return;
            }
        }
        self.on_adu_slow(dir, h, pdu, cx);
    }

    /// Handles one framed ADU the general way (it still takes the read fast path when the
    /// flow is oriented by this ADU).
    #[inline(never)]
    fn on_adu_slow(&mut self, dir: Direction, h: &Mbap, pdu: &[u8], cx: &mut ParseCx<'_>) {
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
        cx.stats.modbus.function_codes.add_one(fc);
        if self.swapped.is_none() {
            self.orient(dir, fc, body, cx);
        }
        let is_request = (dir == Direction::ToServer) != (self.swapped == Some(true));
        if self.fast_read(is_request, h, fc, body, cx) {
            return;
        }
        let key = (h.transaction_id, h.unit_id);
        let cap = self.cap();
        let ecx = self.event_cx(cx);
        let tx = self.tx(cx.file);
        if is_request {
            cx.stats.modbus.requests += 1;
            let req = decode_request(fc, body);
            let slot = tx.alloc();
            let Some(p) = tx.slot_mut(slot) else {
                return;
            };
            p.shape = events::request_event(&mut p.req, &ecx, h, &req);
            p.fc = fc;
            p.violations = hv | req.violations;
            let flood_fc = p.req.function.clone();
            let added = tx.add(key, slot, cap);
            if let Some(old) = added.replaced {
                cx.stats.modbus.unanswered += 1;
                if let Some(p) = tx.slot_mut(old) {
                    Self::emit_pending(cx, &ecx, p, Outcome::NoResponse);
                }
                tx.free(old);
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
            let resp = decode_response(fc, body);
            if let types::Response::Exception { code } = resp.body {
                cx.stats.modbus.exceptions += 1;
                *cx.stats.modbus.exception_codes.entry(code).or_insert(0) += 1;
            }
            let rv = hv | resp.violations;
            match tx.answer(key, resp.function, cap) {
                Some((slot, pair)) => {
                    cx.stats.modbus.transactions += 1;
                    if let Some(p) = tx.slot_mut(slot) {
                        Self::emit_answered(cx, &ecx, p, pair, &resp, rv);
                    }
                    tx.free(slot);
                }
                None => {
                    cx.stats.modbus.unsolicited += 1;
                    let ev = events::unsolicited_event(&ecx, h, &resp);
                    Self::emit(cx, ev, rv);
                }
            }
        }
    }

    /// The common read poll (FC 1–4), request or response, when nothing about it needs the
    /// general path of [`ModbusParser::on_adu`]: no violation in the header, the request or
    /// the pair, a request when nothing is pending, the response of the fast path's pending
    /// read with its transaction id and the byte count its quantity asks for. Does what the
    /// general path does (counters, pending request, event) and returns true; false when the
    /// ADU is not such a read (nothing done). The ADU's `pdus` and function code are counted.
    #[inline(always)]
    fn fast_read(
        &mut self,
        is_request: bool,
        h: &Mbap,
        fc: u8,
        body: &[u8],
        cx: &mut ParseCx<'_>,
    ) -> bool {
        #[cfg(test)]
        if self.no_fast {
            return false;
        }
        let Some(table) = types::read_table(fc) else {
            return false;
        };
        if h.protocol_id != 0 {
            return false;
        }
        if is_request {
            // Length 6 (so within 2..=254): the function code and these four bytes.
            let &[a, b, c, d] = body else {
                return false;
            };
            let (start, quantity) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
            let max = if fc <= 2 {
                types::limits::READ_BITS
            } else {
                types::limits::READ_REGISTERS
            };
            if quantity == 0
                || quantity > max
                || u32::from(start) + u32::from(quantity) > 0x1_0000
                || !self.idle()
            {
                return false;
            }
            let rkey = recent::key_from(h.unit_id, fc, start, quantity);
            if !self.recent.contains(rkey) {
                self.recent.insert(&mut self.recent_next, rkey);
            }
            self.read_request(h.transaction_id, h.unit_id, fc, table, start, quantity, cx);
            return true;
        }
        // Read data whose byte count is the body's (so the length is within 2..=254 and
        // not 0, and even for registers when it is the count asked for).
        let [byte_count, data @ ..] = body else {
            return false;
        };
        let Some(f) = self.fast.as_ref() else {
            return false;
        };
        let expected = f.byte_count();
        if f.tid != h.transaction_id
            || f.unit != h.unit_id
            || f.fc != fc
            || usize::from(*byte_count) != expected
            || data.len() != expected
        {
            return false;
        }
        self.read_response(data, cx);
        true
    }

    /// The request of a read (checked by the read fast path, or found in the recent table)
    /// with transaction id `tid` and unit id `unit`, when nothing is pending: counted (but
    /// for its `pdus` and function code) and made the pending fast read.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn read_request(
        &mut self,
        tid: u16,
        unit: u8,
        fc: u8,
        table: crate::event::ModbusTable,
        start: u16,
        quantity: u16,
        cx: &mut ParseCx<'_>,
    ) {
        cx.stats.modbus.requests += 1;
        if !self
            .fast_file
            .as_ref()
            .is_some_and(|f| Arc::ptr_eq(f, cx.file))
        {
            self.fast_file = Some(Arc::clone(cx.file));
        }
        let read = events::FastRead {
            packet: cx.packet,
            secs: cx.ts.secs,
            nanos: cx.ts.nanos,
            tid,
            start,
            quantity,
            unit,
            fc,
            table,
        };
        // Nothing is pending (the callers checked `idle`); a read is plain data (its file is
        // the parser's), so the assignment has no drop glue.
        self.fast = Some(read);
        #[cfg(test)]
        {
            self.fast_hits += 1;
        }
    }

    /// The response of the pending fast read, with read data `data` of the byte count it
    /// asks for (checked by the caller): counted (but for its `pdus` and function code), its
    /// event built where it lands.
    #[inline(always)]
    fn read_response(&mut self, data: &[u8], cx: &mut ParseCx<'_>) {
        let m = &mut cx.stats.modbus;
        m.responses += 1;
        m.transactions += 1;
        let ecx = self.event_cx(cx);
        if let Some(f) = self.fast.as_mut() {
            // Written over a stale event of the output, latency and response packet
            // included, from the read where it waits (not moved out first); its file is
            // taken out of the read.
            let file = self.fast_file.as_ref().unwrap_or(cx.file);
            // In line, not through `fill_read`'s closure (a call and its set-up per read).
            if cx.events.posts() {
                cx.events.post_read(f.posted(&ecx), file, data);
            } else if let Some(ev) = cx.events.read_slot(file) {
                f.read_into(ev, &ecx, file);
                cx.events.commit_read(data, f.bits());
            }
            self.fast = None;
            #[cfg(test)]
            {
                self.fast_hits += 1;
            }
        }
    }

    /// The read fast path decided from the raw bytes at a frame boundary, before any header
    /// is decoded: a request whose bytes 4..12 are a [`recent::Recent`] key while nothing is
    /// pending, or the response whose first eight bytes and byte count are what the pending
    /// fast read expects. Returns the bytes it consumed (0 when it took nothing: the general
    /// framing follows).
    #[inline(always)]
    fn direct(&mut self, dir: Direction, rest: &[u8], cx: &mut ParseCx<'_>) -> usize {
        #[cfg(test)]
        if self.no_fast {
            return 0;
        }
        let Some(swapped) = self.swapped else {
            return 0;
        };
        let Some((head, body)) = rest.split_first_chunk::<8>() else {
            return 0;
        };
        if (dir == Direction::ToServer) != swapped {
            // Bytes 4..12 (length, unit id, function, start, quantity) as one load.
            let (Some(k), [t0, t1, 0, 0, ..]) =
                (rest.get(4..).and_then(|r| r.first_chunk::<8>()), *head)
            else {
                return 0;
            };
            let key = recent::key_of(*k);
            if !self.recent.contains(key) || !self.idle() {
                return 0;
            }
            let [_, _, unit, fc, a, b, c, d] = key.to_be_bytes();
            // A key passed every check of `fast_read`: a read function, its quantity.
            let Some(table) = types::read_table(fc) else {
                return 0;
            };
            let m = &mut cx.stats.modbus;
            m.pdus += 1;
            m.function_codes.add_one(fc);
            self.read_request(
                u16::from_be_bytes([t0, t1]),
                unit,
                fc,
                table,
                u16::from_be_bytes([a, b]),
                u16::from_be_bytes([c, d]),
                cx,
            );
            return 12;
        }
        let Some(f) = self.fast.as_ref() else {
            return 0;
        };
        let bc = f.byte_count();
        let Some(data) = body
            .split_first()
            .filter(|(&n, _)| {
                usize::from(n) == bc
                    && u64::from_be_bytes(*head) == recent::response_head(f.tid, f.unit, f.fc, n)
            })
            .and_then(|(_, d)| d.get(..bc))
        else {
            return 0;
        };
        let m = &mut cx.stats.modbus;
        m.pdus += 1;
        m.function_codes.add_one(f.fc);
        self.read_response(data, cx);
        9 + bc
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

impl ModbusParser {
    /// [`StreamParser::parse`] from offset `pos` of `data` on: the framing loop.
    #[inline(never)]
    fn parse_from(
        &mut self,
        dir: Direction,
        data: &[u8],
        mut pos: usize,
        cx: &mut ParseCx<'_>,
    ) -> usize {
        let d = dir.index();
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
            let n = self.direct(dir, rest, cx);
            if n > 0 {
                pos += n;
                continue;
            }
            if let Some((h, pdu, tail)) = frame_adu(rest) {
                self.on_adu(dir, &h, pdu, cx);
                pos += rest.len() - tail.len();
                continue;
            }
            match parse_adu(rest) {
                Ok((tail, (h, pdu))) => {
                    self.on_adu(dir, &h, pdu, cx);
                    pos += rest.len() - tail.len();
                }
                Err(nom::Err::Incomplete(_)) => break,
                Err(_) => {
                    // Cannot be framed: scan from here (the strict rules reject this header,
                    // so the scan skips at least one byte and counts the resync).
                    if let Some(s) = self.in_sync.get_mut(d) {
                        *s = false;
                    }
                }
            }
        }
        pos
    }
}

impl StreamParser for ModbusParser {
    fn parse(&mut self, dir: Direction, data: &[u8], cx: &mut ParseCx<'_>) -> usize {
        if self.release_due(cx.ts) {
            self.release(cx, false);
        }
        // The common packet, one ADU that the read fast path takes from its bytes, without
        // the framing loop's setup (`direct` does nothing when it takes nothing: the loop
        // then starts where it would have).
        let mut pos = 0;
        if self.in_sync.get(dir.index()).copied().unwrap_or(false) {
            pos = self.direct(dir, data, cx);
            if pos == data.len() {
                return pos;
            }
        }
        self.parse_from(dir, data, pos, cx)
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

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::event::{Access, AccessDir, ModbusTable, ObjectRef, Side, Values};
    use crate::flow::{FlowKey, FlowMeta};
    use crate::proto::ProtoStats;
    use crate::time::Timestamp;
    use proptest::prelude::*;
    use rstest::rstest;
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;

    proptest::proptest! {
        /// The function-code array reads, serializes, prints, merges and compares as the
        /// map it replaced (including codes with the exception bit set, counted as theirs).
        #[test]
        fn fc_counts_are_the_map(codes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
                                 more in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..10)) {
            let (mut a, mut m) = (FcCounts::default(), BTreeMap::<u8, u64>::new());
            for &c in &codes {
                a.add_one(c);
                *m.entry(c & 0x7f).or_insert(0) += 1;
            }
            proptest::prop_assert_eq!(a.to_map(), m.clone());
            proptest::prop_assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&m).unwrap());
            proptest::prop_assert_eq!(format!("{a:?}"), format!("{m:?}"));
            for c in 0..=255u8 {
                proptest::prop_assert_eq!(a.get(&c), m.get(&c));
            }
            let (mut b, mut n) = (FcCounts::default(), BTreeMap::<u8, u64>::new());
            for &c in &more {
                b.add_one(c);
                *n.entry(c & 0x7f).or_insert(0) += 1;
            }
            proptest::prop_assert_eq!(a == b, m == n);
            a.merge(&b);
            for (k, v) in n {
                *m.entry(k).or_insert(0) += v;
            }
            proptest::prop_assert_eq!(a.to_map(), m);
        }
    }

    proptest::proptest! {
        /// The 64-bit latency is `micros_since`, near and far apart, either order, any
        /// nanoseconds (including out-of-range ones a `Timestamp` literal can hold).
        #[test]
        fn latency_is_micros_since(
            a in proptest::prelude::any::<i64>(),
            d in proptest::prelude::prop_oneof![-5i64..5, -100_000i64..100_000, proptest::prelude::any::<i64>()],
            na in 0u32..2_000_000_000,
            nb in 0u32..2_000_000_000,
        ) {
            let now = Timestamp { secs: a, nanos: na };
            let then = Timestamp { secs: a.wrapping_sub(d), nanos: nb };
            proptest::prop_assert_eq!(latency_us(now, then), now.micros_since(then));
        }
    }

    const CLIENT: u8 = 5;
    const SERVER: u8 = 20;

    fn ep(host: u8, port: u16) -> Endpoint {
        Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, host)),
            port,
            mac: None,
        }
    }

    fn meta(client: Endpoint, server: Endpoint, side_source: SideSource) -> FlowMeta {
        FlowMeta {
            id: 7,
            key: FlowKey::new((client.ip, client.port), (server.ip, server.port), 6, 0),
            client,
            server,
            side_source,
            first_seen: Timestamp::default(),
            last_seen: Timestamp::default(),
            packets: [0, 0],
            bytes: [0, 0],
            vlan: None,
        }
    }

    /// A flow, its parser and everything a `ParseCx` borrows; `pending` plays the driver's
    /// buffer of unconsumed bytes.
    struct Harness {
        parser: ModbusParser,
        meta: FlowMeta,
        file: Arc<str>,
        stats: ProtoStats,
        events: crate::proto::slots::EventBuf,
        pending: [Vec<u8>; 2],
        ts: Timestamp,
        packet: u64,
    }

    impl Harness {
        fn new() -> Self {
            Self::with(
                ModbusConfig::default(),
                meta(ep(CLIENT, 40000), ep(SERVER, 502), SideSource::Handshake),
            )
        }

        fn with(config: ModbusConfig, meta: FlowMeta) -> Self {
            Harness {
                parser: ModbusParser::with_config(config),
                meta,
                file: Arc::from("t.pcap"),
                stats: ProtoStats::default(),
                events: crate::proto::slots::EventBuf::new(),
                pending: [Vec::new(), Vec::new()],
                ts: Timestamp::new(1000, 0),
                packet: 0,
            }
        }

        fn run<R>(&mut self, f: impl FnOnce(&mut ModbusParser, &mut ParseCx<'_>) -> R) -> R {
            let mut cx = ParseCx {
                ts: self.ts,
                file: &self.file,
                packet: self.packet,
                meta: &self.meta,
                events: &mut self.events,
                stats: &mut self.stats,
            };
            f(&mut self.parser, &mut cx)
        }

        /// Delivers one packet's bytes at `ms` milliseconds, as the stream driver would.
        fn send(&mut self, dir: Direction, ms: u64, data: &[u8]) {
            self.packet += 1;
            self.ts = Timestamp::from_micros(1_000_000_000 + i64::try_from(ms * 1000).unwrap());
            let mut buf = std::mem::take(&mut self.pending[dir.index()]);
            buf.extend_from_slice(data);
            let used = self.run(|p, cx| p.parse(dir, &buf, cx));
            assert!(used <= buf.len());
            buf.drain(..used);
            self.pending[dir.index()] = buf;
        }

        fn gap(&mut self, dir: Direction) {
            self.pending[dir.index()].clear();
            self.run(|p, cx| p.on_gap(dir, 100, cx));
        }

        fn close(&mut self, ms: u64) {
            self.ts = Timestamp::from_micros(1_000_000_000 + i64::try_from(ms * 1000).unwrap());
            self.run(|p, cx| p.on_close(cx));
        }

        fn m(&self) -> &ModbusStats {
            &self.stats.modbus
        }
    }

    /// An ADU: MBAP header (protocol id 0, length from the PDU) + unit id + PDU.
    fn adu(tid: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
        let mut v = tid.to_be_bytes().to_vec();
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&(u16::try_from(pdu.len()).unwrap() + 1).to_be_bytes());
        v.push(unit);
        v.extend_from_slice(pdu);
        v
    }

    const TS: Direction = Direction::ToServer;
    const TC: Direction = Direction::ToClient;

    #[test]
    fn fc3_correct_response_is_not_flagged() {
        let mut h = Harness::new();
        // FC 3, start 0x006b, quantity 3
        h.send(TS, 0, &adu(1, 1, &[0x03, 0x00, 0x6b, 0x00, 0x03]));
        // FC 3, byte count 6 = 2 × 3, registers 0x022b 0x0000 0x0064
        h.send(
            TC,
            2,
            &adu(1, 1, &[0x03, 0x06, 0x02, 0x2b, 0x00, 0x00, 0x00, 0x64]),
        );
        assert_eq!(h.events.len(), 1);
        let ev = &h.events[0];
        assert!(ev.violations.is_empty(), "{:?}", ev.violations);
        assert_eq!(ev.outcome, Outcome::Ok);
        assert_eq!(ev.op, OpKind::Read);
        assert_eq!(ev.function.name, "read_holding_registers");
        assert_eq!(ev.latency_us, Some(2000));
        assert_eq!(ev.evidence.packet, 1);
        assert_eq!(ev.evidence.response_packet, Some(2));
        assert_eq!(ev.client, ep(CLIENT, 40000));
        assert_eq!(
            ev.accesses,
            vec![Access {
                dir: AccessDir::Read,
                object: ObjectRef::Modbus {
                    table: ModbusTable::HoldingRegister,
                    start: 0x6b,
                    count: 3
                },
                values: vec![Value::Int(0x022b), Value::Int(0), Value::Int(0x64)].into(),
            }]
        );
        assert!(h.m().violations.is_empty());
        assert_eq!((h.m().pdus, h.m().transactions), (2, 1));
        // Both through the read fast path.
        assert_eq!(h.parser.fast_hits, 2);
    }

    /// An event the last round left in a slot, of a shape no Modbus read has: a session,
    /// three named accesses, facts, details, violations, another file.
    fn odd_stale_event(file: &str) -> IcsEvent {
        let mut ev = crate::detect::testkit::read_hr(5, "10.9.9.9", "10.8.8.8", 7, 3, &[1, 2]);
        ev.proto = crate::event::AppProto::Opcua;
        ev.session = Some("ns=1;i=99".to_string());
        ev.accesses = (0..3)
            .map(|k| Access {
                dir: AccessDir::Write,
                object: ObjectRef::Node {
                    node_id: format!("ns=2;s=Tag{k}"),
                    attribute: Some(13),
                },
                values: vec![Value::Str("x".repeat(k)); 200].into(),
            })
            .collect();
        ev.facts = vec![crate::event::AssetFact {
            side: Side::Server,
            key: "vendor_name",
            value: "v".to_string(),
        }];
        ev.details = vec![("raw", Value::Bytes(vec![1, 2, 3]))];
        ev.violations = vec!["odd"];
        ev.latency_us = None;
        ev.outcome = Outcome::Timeout;
        ev.evidence.file = Arc::from(file);
        ev
    }

    /// The read fast path writes its events over stale slots of any shape (the pipeline
    /// clears its list after each packet) and names the request's file when the response
    /// comes in the next file: the same events as the general path, which builds new ones.
    #[test]
    fn fast_reads_over_stale_slots_and_across_files() {
        let run = |fast: bool| {
            let mut h = Harness::new();
            h.parser.no_fast = !fast;
            for k in 0..3 {
                h.events.push(odd_stale_event(&format!("old{k}.pcap")));
            }
            h.events.clear();
            let mut out = Vec::new();
            let mut step = |h: &mut Harness, dir, ms, bytes: &[u8]| {
                h.send(dir, ms, bytes);
                out.extend(h.events.iter().cloned());
                h.events.clear();
            };
            let regs = |n: u8| {
                let mut d = vec![0x03, 2 * n];
                d.extend((0..n).flat_map(|i| [i, 0x10 + i]));
                d
            };
            let mut ms = 0;
            for (tid, n) in [(1u16, 2u8), (2, 9), (3, 1), (4, 9), (5, 2), (6, 125)] {
                h.send(TS, ms, &adu(tid, 1, &[0x03, 0x00, 0x10, 0x00, n]));
                step(&mut h, TC, ms + 1, &adu(tid, 1, &regs(n)));
                // Coils between the registers: bits over registers and back.
                h.send(
                    TS,
                    ms + 2,
                    &adu(100 + tid, 1, &[0x01, 0x00, 0x00, 0x00, 0x0b]),
                );
                step(
                    &mut h,
                    TC,
                    ms + 3,
                    &adu(100 + tid, 1, &[0x01, 0x02, 0xa5, 0x03]),
                );
                ms += 10;
                if tid == 3 {
                    // The next file starts between a request and its response.
                    h.send(TS, ms, &adu(50, 1, &[0x03, 0x00, 0x10, 0x00, 0x02]));
                    h.file = Arc::from("next.pcap");
                    step(&mut h, TC, ms + 1, &adu(50, 1, &regs(2)));
                    ms += 10;
                }
            }
            // A read left unanswered, released at the end, with the file changed again.
            h.send(TS, ms, &adu(60, 1, &[0x04, 0x00, 0x00, 0x00, 0x01]));
            h.file = Arc::from("last.pcap");
            h.close(ms + 1);
            out.extend(h.events.iter().cloned());
            (out, h.stats.modbus, h.parser.fast_hits)
        };
        let (fast, fast_stats, hits) = run(true);
        let (slow, slow_stats, none) = run(false);
        assert_eq!(fast, slow);
        assert_eq!(fast_stats, slow_stats);
        assert_eq!(none, 0);
        assert!(hits >= 24, "{hits}");
        let files: Vec<&str> = fast.iter().map(|e| &*e.evidence.file).collect();
        assert_eq!(files.iter().filter(|f| **f == "t.pcap").count(), 7);
        assert_eq!(files.last(), Some(&"next.pcap"));
        assert!(fast
            .iter()
            .all(|e| e.session.is_none() && e.facts.is_empty()));
    }

    /// A stale event of `n` accesses of object kind `kind` (Modbus range, OPC UA node,
    /// named), value lists of `len` values (registers kept compact when `compact`), its
    /// access list with room for `room` more.
    fn stale_shape(n: usize, kind: u8, len: usize, compact: bool, room: usize) -> IcsEvent {
        let mut ev = odd_stale_event("stale.pcap");
        ev.accesses = (0..n)
            .map(|k| {
                let object = match kind % 3 {
                    0 => ObjectRef::Modbus {
                        table: ModbusTable::Coil,
                        start: k as u32,
                        count: 9,
                    },
                    1 => ObjectRef::Node {
                        node_id: format!("ns=2;i={k}"),
                        attribute: None,
                    },
                    _ => ObjectRef::Other {
                        name: "n".repeat(k),
                    },
                };
                let mut values = Values::from(vec![Value::Int(k as i64); len]);
                if compact {
                    values.set_registers(&vec![0xab; 2 * len], len);
                }
                Access {
                    dir: AccessDir::Write,
                    object,
                    values,
                }
            })
            .collect();
        ev.accesses.reserve(room);
        ev
    }

    proptest! {
        /// Reads of any quantity and data, registers and coils, written by the fast path
        /// over stale slots of any shape (read, OPC UA event of several accesses, no access,
        /// lists of any room): the events and counters of the general path.
        #[test]
        fn fast_reads_over_any_stale_slot(
            shapes in proptest::collection::vec(
                (0usize..6, 0u8..3, 0usize..140, any::<bool>(), 0usize..80), 1..4),
            reads in proptest::collection::vec(
                (any::<bool>(), 1u16..=125, proptest::collection::vec(any::<u8>(), 250)), 1..6),
        ) {
            let run = |fast: bool| {
                let mut h = Harness::new();
                h.parser.no_fast = !fast;
                let mut out = Vec::new();
                let mut tid = 0u16;
                for &(n, kind, len, compact, room) in &shapes {
                    for _ in 0..2 {
                        h.events.push(stale_shape(n, kind, len, compact, room));
                    }
                    h.events.clear();
                    for (coils, quantity, bytes) in &reads {
                        tid += 1;
                        let (fc, count) = if *coils {
                            (0x01, usize::from(quantity.div_ceil(8)))
                        } else {
                            (0x03, 2 * usize::from(*quantity))
                        };
                        let [q0, q1] = quantity.to_be_bytes();
                        h.send(TS, u64::from(tid), &adu(tid, 1, &[fc, 0x00, 0x10, q0, q1]));
                        let mut data = vec![fc, count as u8];
                        data.extend_from_slice(&bytes[..count]);
                        h.send(TC, u64::from(tid), &adu(tid, 1, &data));
                    }
                    out.extend(h.events.iter().cloned());
                    h.events.clear();
                }
                (out, h.stats.modbus, h.parser.fast_hits)
            };
            let (fast, fast_stats, hits) = run(true);
            let (slow, slow_stats, _) = run(false);
            prop_assert_eq!(fast, slow);
            prop_assert_eq!(fast_stats, slow_stats);
            prop_assert!(hits > 0);
        }
    }

    /// The read fast path taken in the framing loop falls back to the general path exactly
    /// where it must: the first ADU (flow not yet oriented), an ADU without a function
    /// code, exceptions, mismatched byte counts, unknown transaction ids, coalesced ADUs.
    #[test]
    fn inline_fast_path_falls_back_like_the_reference() {
        let run = |fast: bool| {
            let mut h = Harness::new();
            h.parser.no_fast = !fast;
            let read = [0x03, 0x00, 0x10, 0x00, 0x02];
            let data = [0x03, 0x04, 0x00, 0x01, 0x00, 0x02];
            // Unoriented first read, answered.
            h.send(TS, 0, &adu(1, 1, &read));
            h.send(TC, 1, &adu(1, 1, &data));
            // A unit id and nothing else, each way.
            h.send(TS, 2, &adu(2, 1, &[]));
            h.send(TC, 3, &adu(2, 1, &[]));
            // Exception; byte count off by one; unknown transaction id.
            h.send(TS, 4, &adu(3, 1, &read));
            h.send(TC, 5, &adu(3, 1, &[0x83, 0x02]));
            h.send(TS, 6, &adu(4, 1, &read));
            h.send(TC, 7, &adu(4, 1, &[0x03, 0x03, 0x00, 0x01, 0x00]));
            h.send(TS, 8, &adu(5, 1, &read));
            h.send(TC, 9, &adu(6, 1, &data));
            // Two polls coalesced in one segment each way, then a clean pair.
            let mut two = adu(7, 1, &read);
            two.extend(adu(8, 1, &[0x01, 0x00, 0x00, 0x00, 0x09]));
            h.send(TS, 10, &two);
            let mut back = adu(7, 1, &data);
            back.extend(adu(8, 1, &[0x01, 0x02, 0xff, 0x01]));
            h.send(TC, 11, &back);
            h.send(TS, 12, &adu(9, 1, &read));
            h.send(TC, 13, &adu(9, 1, &data));
            h.close(14);
            (h.events, h.stats.modbus, h.parser.fast_hits)
        };
        let (fast, fast_stats, hits) = run(true);
        let (slow, slow_stats, none) = run(false);
        assert_eq!(fast, slow);
        assert_eq!(fast_stats, slow_stats);
        assert_eq!(none, 0);
        // First pair, the request of each fallback pair and the last clean pair.
        assert!(hits >= 4, "{hits}");
        assert_eq!(fast_stats.pdus, 16);
    }

    /// A master cycling more polls than the table holds, on two unit ids, each in its own
    /// segment: every request and response after the first round is taken from the raw bytes
    /// (the table's entries replaced in turn), with the general path's events and counters.
    #[test]
    fn repeated_polls_taken_from_the_table() {
        let polls: [&[u8]; 3] = [
            &[0x03, 0x00, 0x10, 0x00, 0x02],
            &[0x01, 0x00, 0x00, 0x00, 0x0a],
            &[0x04, 0x01, 0x00, 0x00, 0x01],
        ];
        let answers: [&[u8]; 3] = [
            &[0x03, 0x04, 0x00, 0x01, 0x00, 0x02],
            &[0x01, 0x02, 0xff, 0x01],
            &[0x04, 0x02, 0x12, 0x34],
        ];
        let run = |fast: bool| {
            let mut h = Harness::new();
            h.parser.no_fast = !fast;
            let mut tid = 0u16;
            for round in 0..4u64 {
                for unit in [1u8, 2] {
                    for (req, resp) in polls.iter().zip(answers) {
                        tid += 1;
                        h.send(TS, round * 100 + u64::from(tid), &adu(tid, unit, req));
                        h.send(TC, round * 100 + u64::from(tid), &adu(tid, unit, resp));
                    }
                }
            }
            h.close(1000);
            let direct = h.parser.recent.replaced;
            (h.events, h.stats.modbus, h.parser.fast_hits, direct)
        };
        let (fast, fast_stats, hits, replaced) = run(true);
        let (slow, slow_stats, _, _) = run(false);
        assert_eq!(fast, slow);
        assert_eq!(fast_stats, slow_stats);
        // Every ADU (the first through the general path, which orients the flow and then
        // takes the fast path).
        assert_eq!(hits, 4 * 2 * 3 * 2);
        // Six polls through four entries: replaced in turn every round.
        assert!(replaced >= 3 * 2 * 3, "{replaced}");
    }

    /// A read waiting in the parser itself (the fast path's) moves into the general
    /// transaction layer as the general path would have kept it: a write, a reused
    /// transaction id, an exception, a response of another unit, a timeout and the end of the
    /// flow after it give the reference's events and counters.
    #[test]
    fn pending_fast_read_spills_like_the_reference() {
        let read = [0x03, 0x00, 0x10, 0x00, 0x02];
        let data = [0x03, 0x04, 0x00, 0x01, 0x00, 0x02];
        let write = [0x06, 0x00, 0x01, 0x00, 0x03];
        // Each case after an oriented, answered poll: the requests and responses that follow
        // a pending fast read (tid 2), as (to the server, ms, tid, unit, PDU).
        type Case<'a> = Vec<(bool, u64, u16, u8, &'a [u8])>;
        let cases: Vec<Case<'_>> = vec![
            // A write before the read's answer; answered out of order.
            vec![
                (true, 3, 3, 1, &write),
                (false, 4, 3, 1, &write),
                (false, 5, 2, 1, &data),
            ],
            // The same transaction id again while pending.
            vec![(true, 3, 2, 1, &read), (false, 4, 2, 1, &data)],
            // An exception; an answer from another unit, then the right one.
            vec![(false, 3, 2, 1, &[0x83, 0x02])],
            vec![(false, 3, 2, 2, &data), (false, 4, 2, 1, &data)],
            // Another transaction id (taken as the answer, flagged).
            vec![(false, 3, 9, 1, &data)],
            // Left to time out (the next packet 20 s later), then a read left at the end.
            vec![(true, 20_003, 3, 1, &read)],
            // Left at the end.
            vec![],
        ];
        for (k, case) in cases.iter().enumerate() {
            let run = |fast: bool| {
                let mut h = Harness::new();
                h.parser.no_fast = !fast;
                h.send(TS, 0, &adu(1, 1, &read));
                h.send(TC, 1, &adu(1, 1, &data));
                h.send(TS, 2, &adu(2, 1, &read));
                let waiting = h.parser.fast.is_some();
                for &(to_server, ms, tid, unit, pdu) in case {
                    h.send(if to_server { TS } else { TC }, ms, &adu(tid, unit, pdu));
                }
                h.close(30_000);
                (h.events, h.stats.modbus, waiting)
            };
            let (fast, fast_stats, waiting) = run(true);
            let (slow, slow_stats, _) = run(false);
            assert!(waiting, "case {k}");
            assert_eq!(fast, slow, "case {k}");
            assert_eq!(fast_stats, slow_stats, "case {k}");
        }
    }

    /// A polling flow's parser is small: its pending fast read 32 bytes (the table's niche
    /// for `None`; its file is the parser's), the parser 104 bytes outside tests, and a flow that only polls never
    /// allocates the general transaction layer.
    #[test]
    fn polling_flow_state_is_small() {
        assert_eq!(std::mem::size_of::<Option<events::FastRead>>(), 32);
        let size = std::mem::size_of::<ModbusParser>();
        // Tests add 17 bytes: `no_fast`, `fast_hits` and the recent table's `replaced`.
        assert!(size <= 104 + 24, "{size}");
        let mut h = Harness::new();
        for tid in 1..20u16 {
            h.send(
                TS,
                u64::from(tid),
                &adu(tid, 1, &[0x03, 0x00, 0x10, 0x00, 0x02]),
            );
            h.send(
                TC,
                u64::from(tid),
                &adu(tid, 1, &[0x03, 0x04, 0x00, 0x01, 0x00, 0x02]),
            );
        }
        assert!(h.parser.tx.is_none());
        assert_eq!(h.events.len(), 19);
        // A write needs the general layer.
        h.send(TS, 50, &adu(30, 1, &[0x06, 0x00, 0x01, 0x00, 0x03]));
        assert!(h.parser.tx.is_some());
    }

    #[test]
    fn several_adus_in_one_segment() {
        let mut h = Harness::new();
        let mut seg = adu(1, 1, &[0x01, 0x00, 0x00, 0x00, 0x0a]);
        seg.extend(adu(2, 1, &[0x05, 0x00, 0x02, 0xff, 0x00]));
        seg.extend(adu(3, 1, &[0x07]));
        h.send(TS, 0, &seg);
        assert!(h.pending[0].is_empty());
        assert_eq!(h.m().pdus, 3);
        assert_eq!(h.m().function_codes.get(&5), Some(&1));
        assert_eq!(h.parser.pending(), 3);
        // Responses, also in one segment.
        let mut seg = adu(1, 1, &[0x01, 0x02, 0xff, 0x03]);
        seg.extend(adu(2, 1, &[0x05, 0x00, 0x02, 0xff, 0x00]));
        seg.extend(adu(3, 1, &[0x07, 0x6d]));
        h.send(TC, 1, &seg);
        assert_eq!(h.events.len(), 3);
        let coils = &h.events[0].accesses[0].values;
        assert_eq!(coils.len(), 10);
        assert!(coils.is_bits());
        assert_eq!(coils.get(8).as_deref(), Some(&Value::Bool(true)));
        assert_eq!(coils.get(9).as_deref(), Some(&Value::Bool(true)));
        assert_eq!(h.events[1].op, OpKind::Write);
        assert_eq!(h.events[1].accesses[0].values, vec![Value::Bool(true)]);
        assert_eq!(h.events[2].op, OpKind::Diagnostic);
        assert!(h.events.iter().all(|e| e.violations.is_empty()));
    }

    #[test]
    fn one_adu_split_at_every_byte() {
        let req = adu(
            9,
            1,
            &[0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0a, 0x01, 0x02],
        );
        for cut in 0..=req.len() {
            let mut h = Harness::new();
            h.send(TS, 0, &req[..cut]);
            h.send(TS, 1, &req[cut..]);
            assert_eq!(h.m().pdus, 1, "cut at {cut}");
            assert_eq!(h.parser.pending(), 1);
            assert_eq!(h.m().resyncs, 0);
        }
        // Byte by byte.
        let mut h = Harness::new();
        for (k, b) in req.iter().enumerate() {
            h.send(TS, k as u64, &[*b]);
        }
        assert_eq!(h.m().pdus, 1);
        h.send(TC, 50, &adu(9, 1, &[0x10, 0x00, 0x01, 0x00, 0x02]));
        assert_eq!(
            h.events[0].accesses[0].values,
            vec![Value::Int(10), Value::Int(0x0102)]
        );
        assert_eq!(h.events[0].evidence.packet, req.len() as u64);
    }

    #[test]
    fn resync_after_gap() {
        let mut h = Harness::new();
        h.send(TS, 0, &adu(1, 1, &[0x03, 0x00, 0x00, 0x00, 0x01]));
        h.gap(TS);
        // The tail of a lost frame, then a valid frame.
        let mut seg = vec![0x00, 0x17, 0x42, 0x00, 0x99, 0x01];
        seg.extend(adu(2, 1, &[0x04, 0x00, 0x00, 0x00, 0x01]));
        h.send(TS, 1, &seg);
        assert_eq!(h.m().gaps, 1);
        assert_eq!(h.m().resyncs, 1);
        assert_eq!(h.m().resync_skipped_bytes, 6);
        assert_eq!(h.m().pdus, 2);
        assert_eq!(h.m().function_codes.get(&4), Some(&1));
    }

    #[test]
    fn garbage_in_sync_loses_sync_then_recovers() {
        let mut h = Harness::new();
        h.send(TS, 0, &adu(1, 1, &[0x07]));
        // Length 0x4141 cannot be framed.
        let mut seg = b"AAAAAAAAAAAA".to_vec();
        seg.extend(adu(2, 1, &[0x07]));
        h.send(TS, 1, &seg);
        assert_eq!(h.m().pdus, 2);
        assert_eq!(h.m().resyncs, 1);
        assert_eq!(h.m().resync_skipped_bytes, 12);
    }

    #[test]
    fn responses_matched_out_of_order() {
        let mut h = Harness::new();
        h.send(TS, 0, &adu(10, 1, &[0x04, 0x00, 0x00, 0x00, 0x01]));
        h.send(TS, 1, &adu(11, 2, &[0x04, 0x00, 0x05, 0x00, 0x02]));
        h.send(TC, 3, &adu(11, 2, &[0x04, 0x04, 0x00, 0x01, 0x00, 0x02]));
        h.send(TC, 7, &adu(10, 1, &[0x04, 0x02, 0x00, 0x09]));
        assert_eq!(h.events.len(), 2);
        assert_eq!(h.events[0].unit_id, Some(2));
        assert_eq!(h.events[0].latency_us, Some(2000));
        assert_eq!(
            h.events[0].accesses[0].values,
            vec![Value::Int(1), Value::Int(2)]
        );
        assert_eq!(h.events[1].unit_id, Some(1));
        assert_eq!(h.events[1].latency_us, Some(7000));
        assert_eq!(h.m().transactions, 2);
        assert!(h.events.iter().all(|e| e.violations.is_empty()));
    }

    #[test]
    fn unanswered_request_times_out_lazily() {
        let mut h = Harness::new();
        h.send(TS, 0, &adu(1, 1, &[0x03, 0x00, 0x00, 0x00, 0x01]));
        h.send(TS, 5_000, &adu(2, 1, &[0x03, 0x00, 0x00, 0x00, 0x01]));
        assert!(h.events.is_empty());
        h.send(TS, 10_001, &adu(3, 1, &[0x03, 0x00, 0x00, 0x00, 0x01]));
        assert_eq!(h.events.len(), 1);
        assert_eq!(h.events[0].outcome, Outcome::Timeout);
        assert_eq!(h.events[0].evidence.packet, 1);
        assert_eq!(h.m().timeouts, 1);
        // A late response to it is unsolicited.
        h.send(TC, 10_002, &adu(1, 1, &[0x03, 0x02, 0x00, 0x01]));
        assert_eq!(h.events[1].outcome, Outcome::Unsolicited);
        assert_eq!(h.m().unsolicited, 1);
        // At close: request 2 is older than 10 s, request 3 is not.
        h.close(15_500);
        assert_eq!(h.events.len(), 4);
        assert_eq!(h.events[2].outcome, Outcome::Timeout);
        assert_eq!(h.events[3].outcome, Outcome::NoResponse);
        assert_eq!((h.m().timeouts, h.m().unanswered), (2, 1));
        assert_eq!(h.parser.pending(), 0);
    }

    #[test]
    fn pending_cap_flood() {
        let cfg = ModbusConfig {
            request_timeout_secs: 10,
            max_pending: 4,
        };
        let mut h = Harness::with(
            cfg,
            meta(ep(CLIENT, 40000), ep(SERVER, 502), SideSource::Handshake),
        );
        for tid in 0..10u16 {
            h.send(TS, u64::from(tid), &adu(tid, 1, &[0x07]));
        }
        assert_eq!(h.parser.pending(), 4);
        assert_eq!(h.m().pending_dropped, 6);
        assert_eq!(h.m().floods, 1);
        assert_eq!(h.events.len(), 1);
        let flood = &h.events[0];
        assert_eq!(flood.violations, vec!["pending_request_flood"]);
        assert_eq!(flood.op, OpKind::Other);
        // Answering drains the episode; a second flood is a new episode.
        for tid in 6..10u16 {
            h.send(TC, 20, &adu(tid, 1, &[0x07, 0x00]));
        }
        assert_eq!(h.m().transactions, 4);
        for tid in 20..26u16 {
            h.send(TS, 30, &adu(tid, 1, &[0x07]));
        }
        assert_eq!(h.m().floods, 2);
        assert_eq!(h.m().violations.get("pending_request_flood"), Some(&2));
        // The dropped requests' late responses are unsolicited.
        h.send(TC, 40, &adu(0, 1, &[0x07, 0x00]));
        assert_eq!(h.m().unsolicited, 1);
    }

    #[test]
    fn unsolicited_response() {
        let mut h = Harness::new();
        h.send(TC, 0, &adu(77, 1, &[0x06, 0x00, 0x01, 0x00, 0x03]));
        assert_eq!(h.events.len(), 1);
        let ev = &h.events[0];
        assert_eq!(ev.outcome, Outcome::Unsolicited);
        assert_eq!(ev.op, OpKind::Write);
        assert_eq!(ev.accesses[0].values, vec![Value::Int(3)]);
        assert_eq!(ev.evidence.response_packet, None);
        assert_eq!(h.m().unsolicited, 1);
    }

    #[rstest]
    #[case::function(
        &[0x03, 0x00, 0x00, 0x00, 0x01],
        &[0x04, 0x02, 0x00, 0x01],
        "response_function_mismatch"
    )]
    #[case::byte_count(
        &[0x03, 0x00, 0x00, 0x00, 0x02],
        &[0x03, 0x02, 0x00, 0x01],
        "response_byte_count_mismatch"
    )]
    #[case::coil_byte_count(
        &[0x01, 0x00, 0x00, 0x00, 0x09],
        &[0x01, 0x01, 0xff],
        "response_byte_count_mismatch"
    )]
    #[case::fc23_byte_count(
        &[0x17, 0x00, 0x00, 0x00, 0x02, 0x00, 0x10, 0x00, 0x01, 0x02, 0x00, 0x07],
        &[0x17, 0x02, 0x00, 0x01],
        "response_byte_count_mismatch"
    )]
    #[case::echo_single(
        &[0x06, 0x00, 0x01, 0x00, 0x03],
        &[0x06, 0x00, 0x01, 0x00, 0x04],
        "response_echo_mismatch"
    )]
    #[case::echo_multiple(
        &[0x0f, 0x00, 0x13, 0x00, 0x0a, 0x02, 0xcd, 0x01],
        &[0x0f, 0x00, 0x13, 0x00, 0x0b],
        "response_echo_mismatch"
    )]
    #[case::echo_mask(
        &[0x16, 0x00, 0x04, 0x00, 0xf2, 0x00, 0x25],
        &[0x16, 0x00, 0x04, 0x00, 0xf2, 0x00, 0x26],
        "response_echo_mismatch"
    )]
    #[case::echo_diag(
        &[0x08, 0x00, 0x00, 0xa5, 0x37],
        &[0x08, 0x00, 0x01, 0xa5, 0x37],
        "response_echo_mismatch"
    )]
    #[case::exception_code(
        &[0x03, 0x00, 0x00, 0x00, 0x01],
        &[0x83, 0x07],
        "invalid_exception_code"
    )]
    #[case::quantity(
        &[0x03, 0x00, 0x00, 0x00, 0x00],
        &[0x83, 0x03],
        "quantity_out_of_range"
    )]
    fn pair_violations(#[case] req: &[u8], #[case] resp: &[u8], #[case] name: &str) {
        let mut h = Harness::new();
        h.send(TS, 0, &adu(1, 1, req));
        h.send(TC, 1, &adu(1, 1, resp));
        assert_eq!(h.events.len(), 1);
        assert_eq!(h.events[0].violations, vec![name]);
        assert_eq!(h.m().violations.get(name), Some(&1));
    }

    #[test]
    fn exception_outcome_named() {
        let mut h = Harness::new();
        h.send(TS, 0, &adu(1, 1, &[0x03, 0x00, 0x00, 0x00, 0x01]));
        h.send(TC, 1, &adu(1, 1, &[0x83, 0x02]));
        assert_eq!(
            h.events[0].outcome,
            Outcome::Exception {
                code: 2,
                name: "illegal_data_address"
            }
        );
        assert!(h.events[0].violations.is_empty());
        assert_eq!(h.m().exceptions, 1);
        assert_eq!(h.m().exception_codes.get(&2), Some(&1));
        assert_eq!(h.m().function_codes.get(&3), Some(&2));
    }

    #[test]
    fn header_anomalies_are_data() {
        let mut h = Harness::new();
        // Protocol id 1, FC 7.
        h.send(TS, 0, &[0x00, 0x01, 0x00, 0x01, 0x00, 0x02, 0x01, 0x07]);
        // Length 1: unit id and no function code.
        h.send(TS, 1, &[0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01]);
        assert_eq!(h.m().pdus, 2);
        assert_eq!(h.events.len(), 1);
        assert_eq!(
            h.events[0].violations,
            vec!["length_out_of_range", "missing_function_code"]
        );
        h.close(2);
        assert_eq!(h.events[1].violations, vec!["protocol_id_nonzero"]);
    }

    #[test]
    fn response_with_other_transaction_id_matches_only_pending_request() {
        let mut h = Harness::new();
        h.send(TS, 0, &adu(0, 1, &[0x03, 0x00, 0x00, 0x00, 0x01]));
        h.send(TC, 1, &adu(1, 1, &[0x03, 0x02, 0x41, 0xc8]));
        assert_eq!(h.events.len(), 1);
        assert_eq!(h.events[0].outcome, Outcome::Ok);
        assert_eq!(
            h.events[0].violations,
            vec!["response_transaction_id_mismatch"]
        );
        assert_eq!(h.events[0].accesses[0].values, vec![Value::Int(0x41c8)]);
        // Two pending: no guess, the response is unsolicited.
        h.send(TS, 2, &adu(0, 1, &[0x03, 0x00, 0x00, 0x00, 0x01]));
        h.send(TS, 3, &adu(5, 1, &[0x03, 0x00, 0x00, 0x00, 0x01]));
        h.send(TC, 4, &adu(1, 1, &[0x03, 0x02, 0x41, 0xc8]));
        assert_eq!(h.events[1].outcome, Outcome::Unsolicited);
        // Other unit or function: no guess either.
        let mut h = Harness::new();
        h.send(TS, 0, &adu(0, 1, &[0x03, 0x00, 0x00, 0x00, 0x01]));
        h.send(TC, 1, &adu(1, 2, &[0x03, 0x02, 0x41, 0xc8]));
        h.send(TC, 1, &adu(1, 1, &[0x04, 0x02, 0x41, 0xc8]));
        assert_eq!(h.m().unsolicited, 2);
    }

    #[test]
    fn transaction_id_reuse() {
        let mut h = Harness::new();
        h.send(TS, 0, &adu(5, 1, &[0x03, 0x00, 0x00, 0x00, 0x01]));
        h.send(TS, 1, &adu(5, 1, &[0x03, 0x00, 0x01, 0x00, 0x01]));
        assert_eq!(h.events.len(), 1);
        assert_eq!(h.events[0].outcome, Outcome::NoResponse);
        h.send(TC, 2, &adu(5, 1, &[0x03, 0x02, 0x00, 0x01]));
        assert_eq!(h.events[1].violations, vec!["transaction_id_reused"]);
        assert_eq!(
            h.events[1].accesses[0].object,
            ObjectRef::Modbus {
                table: ModbusTable::HoldingRegister,
                start: 1,
                count: 1
            }
        );
    }

    #[test]
    fn requests_flowing_to_client_swap_endpoints() {
        // The flow table guessed wrong: it calls the PLC (port 502) the client.
        let m = meta(ep(SERVER, 502), ep(CLIENT, 40000), SideSource::Port);
        let mut h = Harness::with(ModbusConfig::default(), m);
        h.send(TC, 0, &adu(1, 1, &[0x01, 0x00, 0x00, 0x00, 0x08]));
        h.send(TS, 1, &adu(1, 1, &[0x01, 0x01, 0x81]));
        assert_eq!(h.parser.swapped(), Some(true));
        assert_eq!(h.m().swapped_flows, 1);
        assert_eq!(h.m().requests, 1);
        let ev = &h.events[0];
        assert_eq!(ev.client, ep(CLIENT, 40000));
        assert_eq!(ev.server, ep(SERVER, 502));
        assert_eq!(ev.outcome, Outcome::Ok);
        assert!(ev.violations.is_empty());
    }

    #[test]
    fn ambiguous_first_adu_oriented_by_port() {
        // FC 6 request and response look the same; the side on port 502 is the server.
        let m = meta(ep(SERVER, 502), ep(CLIENT, 40000), SideSource::Port);
        let mut h = Harness::with(ModbusConfig::default(), m);
        h.send(TC, 0, &adu(1, 1, &[0x06, 0x00, 0x01, 0x00, 0x03]));
        assert_eq!(h.parser.swapped(), Some(true));
        // A response first, content says it: the sender is the server.
        let m = meta(ep(1, 1000), ep(2, 2000), SideSource::Port);
        let mut h = Harness::with(ModbusConfig::default(), m);
        h.send(TS, 0, &adu(1, 1, &[0x83, 0x02]));
        assert_eq!(h.parser.swapped(), Some(true));
        assert_eq!(h.m().unsolicited, 1);
        assert_eq!(h.events[0].client, ep(2, 2000));
    }

    #[test]
    fn device_identification_facts() {
        let mut h = Harness::new();
        // FC 43, MEI 14, basic stream, object 0
        h.send(TS, 0, &adu(1, 0xff, &[0x2b, 0x0e, 0x01, 0x00]));
        h.send(
            TC,
            1,
            &adu(
                1,
                0xff,
                &[
                    0x2b, 0x0e, // FC 43, MEI 14
                    0x01, 0x01, 0x00, 0x00, // code, conformity, more follows, next object
                    0x04, // four objects
                    0x00, 0x04, b'A', b'c', b'm', b'e', // vendor name
                    0x01, 0x02, b'P', b'1', // product code
                    0x02, 0x03, b'1', b'.', b'0', // revision
                    0x81, 0x01, b'x', // private object 0x81
                ],
            ),
        );
        let ev = &h.events[0];
        assert_eq!(ev.op, OpKind::Identify);
        assert_eq!(ev.function.sub, Some(14));
        assert_eq!(ev.function.sub_name, Some("read_device_identification"));
        let facts: Vec<_> = ev.facts.iter().map(|f| (f.key, f.value.as_str())).collect();
        assert_eq!(
            facts,
            vec![
                ("vendor_name", "Acme"),
                ("product_code", "P1"),
                ("revision", "1.0"),
                ("private_object", "0x81=x")
            ]
        );
        assert!(ev.facts.iter().all(|f| f.side == Side::Server));
        assert!(ev.violations.is_empty());
    }

    #[test]
    fn report_server_id_facts() {
        let mut h = Harness::new();
        h.send(TS, 0, &adu(0, 10, &[0x11]));
        // Byte count 6: server id 0x00, run indicator ON, "Wing"
        h.send(
            TC,
            1,
            &adu(0, 10, &[0x11, 0x06, 0x00, 0xff, b'W', b'i', b'n', b'g']),
        );
        let ev = &h.events[0];
        assert_eq!(ev.op, OpKind::Identify);
        let facts: Vec<_> = ev.facts.iter().map(|f| (f.key, f.value.as_str())).collect();
        assert_eq!(
            facts,
            vec![
                ("server_id", "0x00"),
                ("run_indicator", "on"),
                ("server_id_additional", "Wing")
            ]
        );
    }

    #[rstest]
    #[case(0x02, OpKind::Read, "read_id")]
    #[case(0x41, OpKind::Program, "stop_plc")]
    #[case(0x34, OpKind::Program, "download_block")]
    #[case(0x23, OpKind::Write, "write_variables")]
    fn umas_events(#[case] code: u8, #[case] op: OpKind, #[case] name: &str) {
        let mut h = Harness::new();
        // FC 90, pair 0x00, UMAS code
        h.send(TS, 0, &adu(1, 0, &[0x5a, 0x00, code]));
        // FC 90, pair 0x00, 0xfe OK
        h.send(TC, 1, &adu(1, 0, &[0x5a, 0x00, 0xfe]));
        let ev = &h.events[0];
        assert_eq!(ev.op, op);
        assert_eq!(ev.function.category, "vendor");
        assert_eq!(ev.function.sub_name, Some(name));
        assert!(ev
            .details
            .contains(&("umas_status", Value::Str("ok".to_string()))));
    }

    #[test]
    fn fc8_and_user_defined_events() {
        let mut h = Harness::new();
        h.send(TS, 0, &adu(1, 1, &[0x08, 0x00, 0x0b, 0x00, 0x00]));
        h.send(TC, 1, &adu(1, 1, &[0x08, 0x00, 0x0b, 0x01, 0x2c]));
        h.send(TS, 2, &adu(2, 1, &[0x47, 0xde, 0xad]));
        h.send(TC, 3, &adu(2, 1, &[0x47, 0xbe]));
        let ev = &h.events[0];
        assert_eq!(ev.op, OpKind::Diagnostic);
        assert_eq!(ev.function.sub_name, Some("return_bus_message_count"));
        assert!(ev.details.contains(&("diagnostic_result", Value::Int(300))));
        let ev = &h.events[1];
        assert_eq!(
            (ev.function.code, ev.function.category),
            (71, "user_defined")
        );
        assert_eq!(ev.op, OpKind::Other);
        assert!(ev
            .details
            .contains(&("data", Value::Bytes(vec![0xde, 0xad]))));
        assert!(ev
            .details
            .contains(&("response_data", Value::Bytes(vec![0xbe]))));
    }

    #[test]
    fn file_record_and_fifo_events() {
        let mut h = Harness::new();
        // FC 20: one sub-request, file 4, record 1, 2 registers
        h.send(
            TS,
            0,
            &adu(
                1,
                1,
                &[0x14, 0x07, 0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02],
            ),
        );
        h.send(
            TC,
            1,
            &adu(1, 1, &[0x14, 0x06, 0x05, 0x06, 0x0d, 0xf8, 0x0d, 0x98]),
        );
        // FC 24: pointer 0x04de
        h.send(TS, 2, &adu(2, 1, &[0x18, 0x04, 0xde]));
        h.send(
            TC,
            3,
            &adu(
                2,
                1,
                &[0x18, 0x00, 0x06, 0x00, 0x02, 0x01, 0xb8, 0x12, 0x84],
            ),
        );
        let a = &h.events[0].accesses[0];
        assert_eq!(
            a.object,
            ObjectRef::Modbus {
                table: ModbusTable::FileRecord,
                start: 4 << 16 | 1,
                count: 2
            }
        );
        assert_eq!(a.values, vec![Value::Int(0x0df8), Value::Int(0x0d98)]);
        let a = &h.events[1].accesses[0];
        assert_eq!(
            a.object,
            ObjectRef::Modbus {
                table: ModbusTable::Fifo,
                start: 0x04de,
                count: 2
            }
        );
        assert_eq!(a.values.len(), 2);
        assert!(h.events.iter().all(|e| e.violations.is_empty()));
    }

    #[test]
    fn value_caps() {
        let mut h = Harness::new();
        // FC 1 for 2000 coils: 250 bytes of response data.
        h.send(TS, 0, &adu(1, 1, &[0x01, 0x00, 0x00, 0x07, 0xd0]));
        let mut resp = vec![0x01, 250];
        resp.extend(std::iter::repeat_n(0xffu8, 250));
        h.send(TC, 1, &adu(1, 1, &resp));
        assert_eq!(h.events[0].accesses[0].values.len(), 2000);
        assert!(h.events[0].violations.is_empty());
    }

    #[rstest]
    #[case::empty(&[], Probe::NeedMore)]
    #[case::seven(&[0, 1, 0, 0, 0, 6, 1], Probe::NeedMore)]
    #[case::request(&[0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1], Probe::Match)]
    #[case::exception(&[0, 1, 0, 0, 0, 3, 1, 0x83, 2], Probe::Match)]
    #[case::umas(&[0, 0, 0, 0, 0, 4, 0, 0x5a, 0, 2], Probe::Match)]
    #[case::tls(&[0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03], Probe::NoMatch)]
    #[case::http(b"GET / HTTP/1.0\r\n\r\n", Probe::NoMatch)]
    #[case::onc_rpc(&[0x80, 0x00, 0x00, 0x28, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0], Probe::NoMatch)]
    #[case::zero_fc_exact(&[0, 1, 0, 0, 0, 2, 1, 0], Probe::Match)]
    #[case::zero_fc_then_garbage(&[0, 1, 0, 0, 0, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8], Probe::NoMatch)]
    #[case::empty_length(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 1, 0x9c, 1], Probe::NeedMore)]
    #[case::length_255(&[0, 1, 0, 0, 0, 0xff, 1, 3, 0], Probe::NoMatch)]
    fn probes(#[case] data: &[u8], #[case] p: Probe) {
        assert_eq!(probe(data), p);
    }

    #[test]
    fn through_the_stream_driver() {
        let mut driver = crate::proto::StreamDriver::new();
        let m = meta(ep(CLIENT, 40000), ep(SERVER, 502), SideSource::Handshake);
        let file: Arc<str> = Arc::from("d.pcap");
        let mut stats = ProtoStats::default();
        let mut events = crate::proto::slots::EventBuf::new();
        let req = adu(1, 1, &[0x03, 0x00, 0x00, 0x00, 0x01]);
        let resp = adu(1, 1, &[0x03, 0x02, 0x12, 0x34]);
        for (k, (dir, bytes)) in [(TS, &req[..5]), (TS, &req[5..]), (TC, &resp[..])]
            .into_iter()
            .enumerate()
        {
            let mut cx = ParseCx {
                ts: Timestamp::new(10, u32::try_from(k).unwrap() * 1000),
                file: &file,
                packet: k as u64 + 1,
                meta: &m,
                events: &mut events,
                stats: &mut stats,
            };
            driver.on_data(dir, bytes, &mut cx);
        }
        assert_eq!(stats.stream.detected_modbus, 1);
        assert_eq!(stats.modbus.pdus, 2);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].accesses[0].values, vec![Value::Int(0x1234)]);
        assert_eq!(events[0].latency_us, Some(1));
    }

    /// A generated request/response pair and what the event must say.
    #[derive(Debug, Clone)]
    struct Case {
        fc: u8,
        start: u16,
        quantity: u16,
        values: Vec<u16>,
        write_start: u16,
        write_values: Vec<u16>,
    }

    fn arb_case() -> impl Strategy<Value = Case> {
        let fc = prop::sample::select(vec![1u8, 2, 3, 4, 5, 6, 15, 16, 23]);
        (fc, any::<u16>(), any::<u16>()).prop_flat_map(|(fc, start, write_start)| {
            let (qmax, bit) = match fc {
                1 | 2 => (2000u16, true),
                3 | 4 | 23 => (125, false),
                15 => (1968, true),
                16 => (123, false),
                _ => (1, fc == 5),
            };
            (1..=qmax, 1..=121u16).prop_flat_map(move |(q, wq)| {
                let q = q.min(u16::try_from(65536 - u32::from(start)).unwrap_or(u16::MAX));
                let wq = wq.min(u16::try_from(65536 - u32::from(write_start)).unwrap_or(u16::MAX));
                let vals = if bit {
                    prop::collection::vec(prop::sample::select(vec![0u16, 1]), usize::from(q))
                        .boxed()
                } else {
                    prop::collection::vec(any::<u16>(), usize::from(q)).boxed()
                };
                let wvals = prop::collection::vec(any::<u16>(), usize::from(wq));
                (vals, wvals).prop_map(move |(values, write_values)| Case {
                    fc,
                    start,
                    quantity: q,
                    values,
                    write_start,
                    write_values: if fc == 23 { write_values } else { Vec::new() },
                })
            })
        })
    }

    fn pack_bits(v: &[u16]) -> Vec<u8> {
        let mut out = vec![0u8; v.len().div_ceil(8)];
        for (k, b) in v.iter().enumerate() {
            if *b != 0 {
                out[k / 8] |= 1 << (k % 8);
            }
        }
        out
    }

    fn regs(v: &[u16]) -> Vec<u8> {
        v.iter().flat_map(|r| r.to_be_bytes()).collect()
    }

    /// Serialises a case into request and response PDUs.
    fn build(c: &Case) -> (Vec<u8>, Vec<u8>) {
        let mut req = vec![c.fc];
        let mut resp = vec![c.fc];
        let be = |x: u16| x.to_be_bytes();
        match c.fc {
            1..=4 => {
                req.extend(be(c.start));
                req.extend(be(c.quantity));
                let data = if c.fc <= 2 {
                    pack_bits(&c.values)
                } else {
                    regs(&c.values)
                };
                resp.push(u8::try_from(data.len()).unwrap());
                resp.extend(data);
            }
            5 | 6 => {
                let v = if c.fc == 5 {
                    if c.values[0] != 0 {
                        0xff00
                    } else {
                        0
                    }
                } else {
                    c.values[0]
                };
                req.extend(be(c.start));
                req.extend(be(v));
                resp = req.clone();
            }
            15 | 16 => {
                let data = if c.fc == 15 {
                    pack_bits(&c.values)
                } else {
                    regs(&c.values)
                };
                req.extend(be(c.start));
                req.extend(be(c.quantity));
                req.push(u8::try_from(data.len()).unwrap());
                req.extend(data);
                resp.extend(be(c.start));
                resp.extend(be(c.quantity));
            }
            23 => {
                req.extend(be(c.start));
                req.extend(be(c.quantity));
                req.extend(be(c.write_start));
                req.extend(be(u16::try_from(c.write_values.len()).unwrap()));
                let w = regs(&c.write_values);
                req.push(u8::try_from(w.len()).unwrap());
                req.extend(w);
                let r = regs(&c.values);
                resp.push(u8::try_from(r.len()).unwrap());
                resp.extend(r);
            }
            _ => unreachable!(),
        }
        (req, resp)
    }

    fn expected_values(c: &Case) -> Vec<Value> {
        match c.fc {
            1 | 2 | 5 | 15 => c.values.iter().map(|v| Value::Bool(*v != 0)).collect(),
            _ => c.values.iter().map(|v| Value::Int(i64::from(*v))).collect(),
        }
    }

    /// One step of a conversation for the fast-path equivalence test.
    #[derive(Debug, Clone)]
    enum Step {
        /// A request and (maybe) its response, with what goes wrong: 0 nothing, 1 byte count
        /// off by one, 2 exception, 3 no response, 4 response of another read function, 5
        /// response with another transaction id, 6 request flagged (protocol id 1), 7 data
        /// cut short, 8 request repeated before the response (tid reused). `split` cuts the
        /// request and the response in two packets; `twice` sends a second request (next
        /// tid) in the same segment, and both responses in one segment.
        Pair {
            case: Case,
            tid: u16,
            unit: u8,
            wrong: u8,
            split: Option<usize>,
            twice: bool,
        },
        /// A reassembly gap in one direction.
        Gap(bool),
        /// Seconds pass.
        Wait(u8),
        /// Arbitrary bytes in one direction.
        Junk(bool, Vec<u8>),
    }

    fn arb_step() -> impl Strategy<Value = Step> {
        prop_oneof![
            8 => (arb_case(), 0u16..4, 0u8..2, prop_oneof![6 => Just(0u8), 4 => 0u8..9],
                  prop::option::weighted(0.2, 1usize..20), prop::bool::weighted(0.2))
                .prop_map(|(case, tid, unit, wrong, split, twice)| Step::Pair {
                    case, tid, unit, wrong, split, twice,
                }),
            1 => any::<bool>().prop_map(Step::Gap),
            1 => (0u8..15).prop_map(Step::Wait),
            1 => (any::<bool>(), prop::collection::vec(any::<u8>(), 0..20))
                .prop_map(|(d, b)| Step::Junk(d, b)),
        ]
    }

    /// Polls in the pool of [`recent_reads_are_the_general_path`]: more than the table holds.
    const RECENT_POOL: usize = recent::RECENT_ENTRIES + 2;

    /// A read poll (FC 1–4), small.
    fn arb_poll() -> impl Strategy<Value = (u8, u16, u16)> {
        (
            1u8..=4,
            prop_oneof![Just(0u16), Just(65_530), any::<u16>()],
            1u16..=20,
        )
            .prop_map(|(fc, start, q)| {
                (
                    fc,
                    start,
                    q.min(u16::try_from(65536 - u32::from(start)).unwrap_or(1)),
                )
            })
    }

    /// A step of a polling conversation: `Ok(pick)` a poll of the pool (which one, tid,
    /// unit, what goes wrong, split, twice, a value salt), `Err` another step.
    type Pick = Result<(usize, u16, u8, u8, Option<usize>, bool, u16), Step>;

    fn arb_pick() -> impl Strategy<Value = Pick> {
        prop_oneof![
            12 => (0..RECENT_POOL, 0u16..3, prop_oneof![4 => Just(1u8), 1 => 0u8..3],
                   prop_oneof![8 => Just(0u8), 4 => 0u8..9],
                   prop::option::weighted(0.15, 1usize..20), prop::bool::weighted(0.15), any::<u16>())
                .prop_map(Ok),
            1 => arb_step().prop_map(Err),
        ]
    }

    /// The steps of `picks` over the polls of `pool`.
    fn poll_steps(pool: &[(u8, u16, u16)], picks: &[Pick]) -> Vec<Step> {
        picks
            .iter()
            .map(|p| match p {
                Ok((i, tid, unit, wrong, split, twice, salt)) => {
                    let (fc, start, quantity) = pool[*i % pool.len()];
                    let values = (0..quantity)
                        .map(|k| {
                            let v = salt.wrapping_add(k.wrapping_mul(7919));
                            if fc <= 2 {
                                v & 1
                            } else {
                                v
                            }
                        })
                        .collect();
                    Step::Pair {
                        case: Case {
                            fc,
                            start,
                            quantity,
                            values,
                            write_start: 0,
                            write_values: Vec::new(),
                        },
                        tid: *tid,
                        unit: *unit,
                        wrong: *wrong,
                        split: *split,
                        twice: *twice,
                    }
                }
                Err(s) => s.clone(),
            })
            .collect()
    }

    /// Runs `steps` through a parser with the read fast path on or off: its events and
    /// counters.
    fn converse(steps: &[Step], cap: usize, fast: bool) -> (Vec<IcsEvent>, ModbusStats) {
        let cfg = ModbusConfig {
            request_timeout_secs: 10,
            max_pending: cap,
        };
        let mut h = Harness::with(
            cfg,
            meta(ep(CLIENT, 40000), ep(SERVER, 502), SideSource::Handshake),
        );
        h.parser.no_fast = !fast;
        let mut ms = 0u64;
        let send =
            |h: &mut Harness, ms: &mut u64, dir: Direction, bytes: &[u8], split: Option<usize>| {
                *ms += 1;
                match split.filter(|k| *k < bytes.len()) {
                    Some(k) => {
                        h.send(dir, *ms, &bytes[..k]);
                        *ms += 1;
                        h.send(dir, *ms, &bytes[k..]);
                    }
                    None => h.send(dir, *ms, bytes),
                }
            };
        for step in steps {
            match step {
                Step::Pair {
                    case,
                    tid,
                    unit,
                    wrong,
                    split,
                    twice,
                } => {
                    let (req, mut resp) = build(case);
                    let mut req_adu = adu(*tid, *unit, &req);
                    if *wrong == 6 {
                        req_adu[3] = 1;
                    }
                    match wrong {
                        1 if resp.len() > 1 && matches!(case.fc, 1..=4 | 23) => {
                            resp[1] = resp[1].wrapping_add(1)
                        }
                        2 => resp = vec![case.fc | 0x80, 2],
                        4 if matches!(case.fc, 1..=4) => resp[0] = if case.fc == 3 { 4 } else { 3 },
                        7 if resp.len() > 2 => {
                            resp.pop();
                        }
                        _ => {}
                    }
                    let resp_tid = if *wrong == 5 {
                        tid.wrapping_add(9)
                    } else {
                        *tid
                    };
                    let mut req_seg = req_adu.clone();
                    if *wrong == 8 {
                        req_seg.extend(&req_adu);
                    }
                    let mut resp_seg = adu(resp_tid, *unit, &resp);
                    if *twice {
                        req_seg.extend(adu(tid.wrapping_add(1), *unit, &req));
                        resp_seg.extend(adu(resp_tid.wrapping_add(1), *unit, &resp));
                    }
                    send(&mut h, &mut ms, TS, &req_seg, *split);
                    if *wrong != 3 {
                        send(&mut h, &mut ms, TC, &resp_seg, *split);
                    }
                }
                Step::Gap(to_client) => h.gap(if *to_client { TC } else { TS }),
                Step::Wait(secs) => ms += u64::from(*secs) * 1000,
                Step::Junk(to_client, bytes) => send(
                    &mut h,
                    &mut ms,
                    if *to_client { TC } else { TS },
                    bytes,
                    None,
                ),
            }
        }
        h.close(ms + 1);
        (h.events.take(), h.stats.modbus.clone())
    }

    proptest! {
        #[test]
        fn round_trip(c in arb_case(), tid in any::<u16>(), unit in any::<u8>()) {
            let (req, resp) = build(&c);
            // Parser level.
            let p = parse_request(c.fc, &req[1..]);
            prop_assert!(p.violations.is_empty(), "{:?}", p.violations);
            let r = parse_response(c.fc, &resp[1..]);
            prop_assert!(r.violations.is_empty(), "{:?}", r.violations);
            // Through the parser.
            let mut h = Harness::new();
            h.send(TS, 0, &adu(tid, unit, &req));
            h.send(TC, 3, &adu(tid, unit, &resp));
            prop_assert_eq!(h.events.len(), 1);
            let ev = &h.events[0];
            prop_assert!(ev.violations.is_empty(), "{:?}", ev.violations);
            prop_assert_eq!(ev.unit_id, Some(unit));
            prop_assert_eq!(ev.function.code, u32::from(c.fc));
            prop_assert_eq!(ev.outcome.clone(), Outcome::Ok);
            let a = &ev.accesses[0];
            let count = if matches!(c.fc, 5 | 6) { 1 } else { u32::from(c.quantity) };
            match &a.object {
                ObjectRef::Modbus { start, count: n, .. } => {
                    prop_assert_eq!(*start, u32::from(c.start));
                    prop_assert_eq!(*n, count);
                }
                o => prop_assert!(false, "{:?}", o),
            }
            prop_assert_eq!(&a.values, &expected_values(&c));
            if c.fc == 23 {
                let w = &ev.accesses[1];
                let wv: Vec<Value> = c.write_values.iter().map(|v| Value::Int(i64::from(*v))).collect();
                prop_assert_eq!(&w.values, &wv);
                prop_assert_eq!(w.dir, AccessDir::Write);
            }
        }

        /// The read fast path gives the events and counters of the general path, whatever
        /// happens around the reads: exceptions, wrong byte counts or functions, other
        /// transaction ids, flagged requests, split and coalesced ADUs, requests pending or
        /// repeated, floods (small caps), gaps, timeouts and garbage.
        #[test]
        fn read_fast_path_is_the_general_path(
            steps in prop::collection::vec(arb_step(), 0..16),
            cap in prop_oneof![Just(1usize), Just(2), Just(500)],
        ) {
            let (fast, fast_stats) = converse(&steps, cap, true);
            let (general, general_stats) = converse(&steps, cap, false);
            prop_assert_eq!(fast_stats, general_stats);
            prop_assert_eq!(fast, general);
        }

        /// Repeated polls taken by the table of recent reads (recognised from their bytes in
        /// the framing loop) give the events and counters of the general path: a pool of
        /// more reads than the table holds (entries replaced in turn), unit id changes,
        /// exceptions, wrong byte counts and functions, other transaction ids, flagged,
        /// repeated, split and coalesced ADUs, floods, gaps, timeouts and garbage.
        #[test]
        fn recent_reads_are_the_general_path(
            pool in prop::collection::vec(arb_poll(), RECENT_POOL),
            picks in prop::collection::vec(arb_pick(), 0..40),
            cap in prop_oneof![Just(1usize), Just(2), Just(500)],
        ) {
            let steps = poll_steps(&pool, &picks);
            let (fast, fast_stats) = converse(&steps, cap, true);
            let (general, general_stats) = converse(&steps, cap, false);
            prop_assert_eq!(fast_stats, general_stats);
            prop_assert_eq!(fast, general);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            chunks in prop::collection::vec(
                (any::<bool>(), prop::collection::vec(any::<u8>(), 0..300)),
                0..8,
            ),
        ) {
            let mut h = Harness::new();
            for (k, (to_client, bytes)) in chunks.iter().enumerate() {
                let dir = if *to_client { TC } else { TS };
                if k % 3 == 2 {
                    h.gap(dir);
                }
                h.send(dir, k as u64 * 4000, bytes);
                prop_assert!(h.pending[dir.index()].len() <= h.parser.max_message_len());
            }
            h.close(100_000);
            prop_assert_eq!(h.parser.pending(), 0);
        }

        #[test]
        fn arbitrary_frames_never_panic(
            frames in prop::collection::vec(
                (any::<bool>(), any::<u8>(), prop::collection::vec(any::<u8>(), 0..40)),
                0..12,
            ),
        ) {
            let mut h = Harness::new();
            for (k, (to_client, fc, body)) in frames.iter().enumerate() {
                let mut pdu = vec![*fc];
                pdu.extend_from_slice(body);
                let dir = if *to_client { TC } else { TS };
                h.send(dir, k as u64, &adu(u16::try_from(k % 3).unwrap(), 1, &pdu));
            }
            prop_assert_eq!(h.m().pdus, frames.len() as u64);
            h.close(1_000_000);
        }
    }
}
