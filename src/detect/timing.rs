//! Timing: the learnt polling models of each channel. Needs a baseline.
//!
//! For every request signature the baseline marks periodic:
//! - stopped: no request for longer than `max(stop_factor × period, stop_gap_factor × longest
//!   learnt gap, stop_min_ms)` (checked on ticks). Only signatures seen at least once during
//!   detection are watched, so a capture that simply does not contain a channel is silent;
//! - period changed: the median of the last `period_window` intervals differs from the learnt
//!   period by more than `max(period_tolerance_frac × period, jitter_factor × jitter,
//!   period_min_tolerance_ms)`;
//! - order changed: on a channel with a strict learnt cycle, at least `order_min_violations`
//!   of the last `order_window` transitions between cycle requests were not the learnt ones.
//!
//! OPC UA Publish requests are left out of the period and order checks: a client sends them as
//! the server answers, so their pace follows the data, not a poll cycle.
//!
//! And per channel, a burst: more requests in one 10-second window than
//! `max(burst_factor × learnt maximum, learnt maximum + burst_min_extra)`.

use super::novelty::{baseline_id, channel_index, ChanId};
use super::{ChanSlots, CycleMap, Detector, EventCtx};
use crate::alert::signatures::*;
use crate::alert::{Alert, AlertEvidence};
use crate::baseline::{
    device_words, event_summary, fmt_num, push_decimal, Baseline, Channel, SigKey,
};
use crate::event::{
    Access, AccessDir, AppProto, Endpoint, Function, IcsEvent, ModbusTable, ObjectRef, Outcome,
    Value,
};
use crate::flow::hash::KeyHashBuilder;
use crate::time::Timestamp;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

/// Timing thresholds.
#[derive(Clone, Debug)]
pub struct TimingConfig {
    /// A poll stopped after this many periods ...
    pub stop_factor: f64,
    /// ... and this many times the longest learnt gap ...
    pub stop_gap_factor: f64,
    /// ... and at least this long (ms).
    pub stop_min_ms: f64,
    /// Intervals whose median is compared with the period.
    pub period_window: usize,
    /// Period tolerance as a fraction of the period ...
    pub period_tolerance_frac: f64,
    /// ... or this many times the learnt jitter ...
    pub jitter_factor: f64,
    /// ... and at least this (ms).
    pub period_min_tolerance_ms: f64,
    /// Transitions looked at for order changes.
    pub order_window: usize,
    /// Out-of-order transitions among them that raise an alert.
    pub order_min_violations: usize,
    /// Burst: this many times the learnt maximum per 10 s ...
    pub burst_factor: f64,
    /// ... and at least this many requests above it.
    pub burst_min_extra: u64,
    /// Most (channel, signature) states kept.
    pub max_states: usize,
}

impl Default for TimingConfig {
    fn default() -> Self {
        TimingConfig {
            stop_factor: 3.0,
            stop_gap_factor: 2.0,
            stop_min_ms: 2000.0,
            period_window: 8,
            period_tolerance_frac: 0.25,
            jitter_factor: 6.0,
            period_min_tolerance_ms: 20.0,
            order_window: 10,
            order_min_violations: 3,
            burst_factor: 3.0,
            burst_min_extra: 20,
            max_states: 65_536,
        }
    }
}

/// Encoding NodeId of the OPC UA PublishRequest (i=826).
const OPCUA_PUBLISH_REQUEST: u32 = 826;

/// Values kept per access of the last request: one more than the evidence summary shows, so
/// it still knows there were more.
const KEPT_VALUES: usize = 5;
/// Accesses kept of the last request: one more than the summary shows, for the same reason.
const KEPT_ACCESSES: usize = 4;

/// The state of one poll. Every request of the poll reads and writes its first cache line
/// (its time, due time and the exit of its last check), most of them the window of the
/// second (with the client and the stopped flag), and writes the server and the kept request
/// (written only) in the next three lines: laid out in that order, from a line's start, so
/// that a request touches five lines, the rest (read by ticks and alerts) after.
#[derive(Debug)]
#[repr(C, align(64))]
struct SigState {
    last: Timestamp,
    /// It cannot be found stopped while at most this many microseconds passed since `last`
    /// (see [`quiet_us`]).
    quiet_us: i64,
    /// The time (µs) of its entry in [`Timing::due`], when it has one: never later than its
    /// last request plus `quiet_us` (none: stopped, or not checked at ticks).
    queued: Option<i64>,
    /// When the last median checked took an exit that changes nothing (within `med_ok`, or
    /// out of the tolerance as reported), the interval `[lo, hi]` of medians that take the
    /// same exit: while the window is full, a new interval on the same side of it as the
    /// oldest one it replaces (below, inside or above) leaves as many intervals on each side,
    /// so the median stays inside (see [`Intervals::median_in`]) and the exit is the same
    /// (see [`Timing::poll_repeat`]).
    same: Option<(u64, u64)>,
    recent: Intervals,
    client: Endpoint,
    stopped: bool,
    period_reported: bool,
    unit: Option<u8>,
    server: Endpoint,
    /// The last request, as much of it as its evidence needs (see [`Kept`]).
    kept: Kept,
    /// Index of the baseline channel (in the baseline `base` was taken from).
    ch: Option<u32>,
    /// Index of the first poll pattern with this signature in that channel.
    poll: Option<u32>,
    /// The fixed words of its poll-stopped alert, once it fired.
    stop_text: Option<Arc<StopText>>,
    /// The least and the greatest median interval (µs) found within the period's tolerance
    /// under this baseline (none while `med_ok.0 > med_ok.1`): the medians within the
    /// tolerance are one interval of integers (`|m / 1e3 - period| <= tol` is monotone on
    /// each side of the period), so any median between the two is within it too.
    med_ok: (u64, u64),
    /// The greatest median found below the tolerance and the least found above it under this
    /// baseline (each side of the tolerance is a half-line of integers): a median at or past
    /// either is out of the tolerance too.
    med_bad: (Option<u64>, Option<u64>),
}

/// No median found within the tolerance yet (see [`SigState::med_ok`]).
const NO_MEDIAN: (u64, u64) = (u64::MAX, 0);

/// [`Timestamp::micros_since`], in 64-bit arithmetic when the seconds are less than 2³²
/// apart (always, in a capture).
#[inline(always)]
fn micros_between(now: Timestamp, earlier: Timestamp) -> u64 {
    match now.secs.checked_sub(earlier.secs) {
        Some(s) if s.unsigned_abs() < 1 << 32 => {
            let d = s * 1_000_000_000 + (i64::from(now.nanos) - i64::from(earlier.nanos));
            if d <= 0 {
                0
            } else {
                d.unsigned_abs() / 1000
            }
        }
        _ => now.micros_since(earlier),
    }
}

/// How long (ms) a poll may be silent before it counts as stopped.
fn stop_limit_ms(cfg: &TimingConfig, p: &crate::baseline::PollPattern) -> f64 {
    (cfg.stop_factor * p.period_ms)
        .max(cfg.stop_gap_factor * p.max_gap_ms)
        .max(cfg.stop_min_ms)
}

/// Microseconds after its last request during which a poll with this stop limit cannot be
/// found stopped, with a margin for rounding (very negative when the limit is negative or not
/// a number: always checked).
fn quiet_us(limit_ms: f64) -> i64 {
    if limit_ms >= 0.0 {
        ((limit_ms * 1000.0).floor() as i64).saturating_sub(2)
    } else {
        i64::MIN / 4
    }
}

/// [`quiet_us`] of the poll pattern `poll` of channel `ch` (none: never checked at ticks).
fn quiet_of(cfg: &TimingConfig, b: &Baseline, ch: Option<u32>, poll: Option<u32>) -> i64 {
    ch.and_then(|c| b.channels.get(c as usize))
        .and_then(|c| poll.and_then(|p| c.polls.get(p as usize)))
        .map_or(i64::MAX / 4, |p| quiet_us(stop_limit_ms(cfg, p)))
}

/// The parts of a poll-stopped alert that do not change from one stop to the next.
#[derive(Debug, PartialEq)]
struct StopText {
    /// The explanation up to the gap.
    head: String,
    /// The explanation after the time of the last request.
    tail: String,
    /// The baseline fact.
    fact: String,
    /// Where the fact is in the baseline file.
    reference: String,
}

/// What the words of a burst alert need besides the alert itself (source, destination,
/// unit): written by [`BurstWords::fill`] as [`Timing::burst_alert`] writes them when it
/// does not defer them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BurstWords {
    /// Requests in the 10 seconds.
    count: u64,
    /// The baseline channel's most per 10 s.
    max10: u64,
    /// The baseline channel (as [`Channel::ref_name`] names it).
    ch_client: IpAddr,
    ch_server: IpAddr,
    ch_proto: String,
}

impl BurstWords {
    /// Writes the explanation, the baseline fact and its reference, the Community ID and the
    /// technique ids of `a`, the alert this was taken from.
    #[cold]
    pub(crate) fn fill(&self, a: &mut Alert) {
        let BurstWords {
            count,
            max10,
            ch_client,
            ch_server,
            ref ch_proto,
        } = *self;
        a.community_id = a.connection_id();
        a.alert.metadata.mitre_attack_ics = TRAFFIC_BURST.techniques.to_vec();
        a.otwatch.explanation = format!(
            "{} sent {} requests to {} within 10 seconds; in the baseline this channel \
             never sent more than {max10} in 10 seconds. A flood of requests can overload \
             a PLC (denial of service) or force outputs by brute force.",
            a.src_ip,
            count,
            device_words(a.dest_ip, a.otwatch.unit_id)
        );
        a.otwatch.baseline_fact = Some(format!("at most {max10} requests per 10 s"));
        a.otwatch.baseline_ref = Some(format!(
            "channels[{ch_client}>{ch_server} {ch_proto}].volume.max_per_10s"
        ));
    }
}

/// What the words of a poll-stopped alert need besides the alert itself: written by
/// [`StopWords::fill`] as [`Timing::on_tick`] writes them when it does not defer them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StopWords {
    text: Arc<StopText>,
    /// The gap in tenths of a second (unrounded).
    tenths: f64,
    /// The time of the last request.
    last: Timestamp,
    /// What the summary of the alert's evidence (the last request) prints, until it is
    /// written (see [`StopWords::fill_evidence`]).
    shape: Option<Shape>,
}

impl StopWords {
    /// The explanation of a poll-stopped alert.
    fn explanation(text: &StopText, tenths: f64, last: Timestamp) -> String {
        let mut explanation = String::with_capacity(text.head.len() + text.tail.len() + 48);
        explanation.push_str(&text.head);
        push_tenths(&mut explanation, tenths);
        explanation.push_str(" s ago, at ");
        last.push_rfc3339(&mut explanation);
        explanation.push_str(&text.tail);
        explanation
    }

    /// Writes the summary of the evidence of the alert this was taken from (its one
    /// evidence, the last request), once: whoever keeps that evidence without the rest of
    /// the alert (the aggregator, of a repeat) needs it written first.
    #[cold]
    pub(crate) fn fill_evidence(&mut self, evidence: &mut [AlertEvidence]) {
        if let (Some(shape), Some(e)) = (self.shape.take(), evidence.first_mut()) {
            e.summary = shape.summary();
        }
    }

    /// Writes the explanation, the baseline fact and its reference, the Community ID and the
    /// technique ids of `a`, the alert this was taken from.
    #[cold]
    pub(crate) fn fill(&self, a: &mut Alert) {
        a.community_id = a.connection_id();
        a.alert.metadata.mitre_attack_ics = POLL_STOPPED.techniques.to_vec();
        a.otwatch.explanation = StopWords::explanation(&self.text, self.tenths, self.last);
        a.otwatch.baseline_fact = Some(self.text.fact.clone());
        a.otwatch.baseline_ref = Some(self.text.reference.clone());
    }
}

/// What every request of a channel reads and writes (its baseline channel and burst count),
/// in one cache line of its own: the other fields of [`Chan`] are read only by the checks of
/// some requests.
#[derive(Debug)]
#[repr(C, align(64))]
struct ChanHot {
    /// The first second of `bucket` (`i64::MAX` when it does not fit; with no bucket yet, an
    /// empty range): a request within the same 10 seconds needs no division ...
    bucket_from: i64,
    /// ... `bucket_from + 10` (saturating).
    bucket_to: i64,
    count: u64,
    /// Requests per 10 s above which it is a burst (from the baseline channel).
    limit: u64,
    bucket: Option<i64>,
    /// Index of the baseline channel (none: the detector ignores it).
    ch: Option<u32>,
    reported: bool,
}

impl Default for ChanHot {
    fn default() -> Self {
        ChanHot {
            bucket_from: i64::MAX,
            bucket_to: i64::MIN,
            count: 0,
            limit: 0,
            bucket: None,
            ch: None,
            reported: false,
        }
    }
}

impl ChanHot {
    /// Counts a request at `secs` in its 10-second bucket (a new bucket starts from zero).
    /// Only [`ChanHot::enter_bucket`] makes the range of seconds non-empty, and sets
    /// `bucket` with it.
    #[inline(always)]
    fn count_in_bucket(&mut self, secs: i64) {
        if !(self.bucket_from <= secs && secs < self.bucket_to) {
            self.enter_bucket(secs);
        }
        self.count += 1;
    }

    /// The bucket of `secs` (a new one starts from zero), off the common path (its
    /// division is worked out only here).
    #[cold]
    #[inline(never)]
    fn enter_bucket(&mut self, secs: i64) {
        let b = secs.div_euclid(10);
        if self.bucket != Some(b) {
            self.bucket = Some(b);
            self.count = 0;
            self.reported = false;
        }
        self.bucket_from = b.checked_mul(10).unwrap_or(i64::MAX);
        self.bucket_to = self.bucket_from.saturating_add(10);
    }

    /// Whether the count is past the limit and not reported yet.
    #[inline(always)]
    fn burst(&self) -> bool {
        self.count > self.limit && !self.reported
    }
}

/// The order check's state of a channel: what every request with a cycle position reads and
/// writes first, in one cache line (see [`Chan`]), the queue of long windows after.
#[derive(Debug, Default)]
#[repr(C)]
struct ChanState {
    /// Position in the cycle of the last cycle request.
    last_cycle_pos: Option<usize>,
    /// The last transitions for windows of at most 64: bit `i` is set when the `i`-th last
    /// transition was out of order ...
    order_bits: u64,
    /// ... of this many.
    order_len: usize,
    /// Out-of-order transitions in the window (`order_bits` or `order`).
    bad: usize,
    order_reported: bool,
    /// The last transitions (at most a window of them), when the window is longer than 64.
    order: VecDeque<bool>,
}

impl ChanState {
    /// Adds a transition to the window of the last `window` ones, in one word (`bits`, for
    /// windows of at most 64) or in a queue; how many the window holds.
    #[inline(always)]
    fn push_order(&mut self, ok: bool, window: usize, bits: bool) -> usize {
        if bits {
            let keep = u64::MAX >> (64 - window.clamp(1, 64));
            self.order_bits = ((self.order_bits << 1) | u64::from(!ok)) & keep;
            self.order_len = (self.order_len + 1).min(window);
            self.bad = self.order_bits.count_ones() as usize;
            return self.order_len;
        }
        self.push_order_queue(ok, window)
    }

    /// [`ChanState::push_order`] for windows longer than 64.
    #[cold]
    #[inline(never)]
    fn push_order_queue(&mut self, ok: bool, window: usize) -> usize {
        self.order.push_back(ok);
        self.bad += usize::from(!ok);
        while self.order.len() > window {
            if self.order.pop_front() == Some(false) {
                self.bad -= 1;
            }
        }
        self.order.len()
    }
}

/// Most Modbus signatures a channel remembers in [`Chan::sigs`] (beyond: found by a hash
/// lookup, as before they were remembered).
const MAX_CHAN_SIGS: usize = 32;

/// One channel: its baseline channel (none: the detector ignores it) and its state, the
/// order state in the line after the hot one.
#[derive(Debug)]
#[repr(C)]
struct Chan {
    hot: ChanHot,
    st: ChanState,
    /// Modbus signatures of the channel with their index in `infos` (at most
    /// [`MAX_CHAN_SIGS`], the same as in `modbus_index`).
    sigs: CycleMap<ModbusSig, u32>,
    /// Other requests of the channel with their index in `infos` (at most
    /// [`MAX_CHAN_NAMED`]), looked up after the last hit first.
    named: Vec<(NamedReq, u32)>,
    /// Where to look first in `named`.
    named_next: usize,
}

/// Most other requests a channel remembers in [`Chan::named`] (beyond: found by building
/// their [`SigKey`], as before they were remembered).
const MAX_CHAN_NAMED: usize = 16;

/// What makes the [`SigKey`] of a request that is not a Modbus one, compared field by field
/// with an event (no key built): equal ones have equal keys (the first object compared whole,
/// the count of accesses always).
#[derive(Debug)]
struct NamedReq {
    proto: AppProto,
    code: u32,
    name: &'static str,
    sub: Option<u16>,
    unit: Option<u8>,
    first: Option<ObjectRef>,
    accesses: usize,
}

impl NamedReq {
    fn of(ev: &IcsEvent) -> Self {
        NamedReq {
            proto: ev.proto,
            code: ev.function.code,
            name: ev.function.name,
            sub: ev.function.sub,
            unit: ev.unit_id,
            first: ev.accesses.first().map(|a| a.object.clone()),
            accesses: ev.accesses.len(),
        }
    }

    #[inline]
    fn matches(&self, ev: &IcsEvent) -> bool {
        self.code == ev.function.code
            && self.proto == ev.proto
            && self.accesses == ev.accesses.len()
            && self.sub == ev.function.sub
            && self.unit == ev.unit_id
            && self.name == ev.function.name
            && self.first.as_ref() == ev.accesses.first().map(|a| &a.object)
    }
}

impl Chan {
    fn new(cfg: &TimingConfig, b: &Baseline, key: &ChanId) -> Self {
        let mut c = Chan {
            hot: ChanHot::default(),
            st: ChanState::default(),
            sigs: CycleMap::default(),
            named: Vec::new(),
            named_next: 0,
        };
        c.bind(cfg, b, key);
        c
    }

    /// The index in `infos` of a remembered request that is not a Modbus one.
    #[inline]
    fn find_named(&mut self, ev: &IcsEvent) -> Option<u32> {
        let i = match self.named.get(self.named_next) {
            Some((r, _)) if r.matches(ev) => self.named_next,
            _ => self.named.iter().position(|(r, _)| r.matches(ev))?,
        };
        self.named_next = if i + 1 < self.named.len() { i + 1 } else { 0 };
        self.named.get(i).map(|&(_, x)| x)
    }

    /// Looks the channel up in `b`.
    fn bind(&mut self, cfg: &TimingConfig, b: &Baseline, key: &ChanId) {
        self.hot.ch = channel_index(b, key);
        let max10 = self
            .hot
            .ch
            .and_then(|i| b.channels.get(i as usize))
            .map_or(0, |c| c.volume.max_per_10s);
        self.hot.limit = ((cfg.burst_factor * max10 as f64).ceil() as u64)
            .max(max10.saturating_add(cfg.burst_min_extra));
    }
}

/// A request signature with the identity of [`SigKey`]: in `Copy` form for Modbus requests
/// (their first object is a Modbus range or nothing), else the `SigKey` itself.
#[derive(Clone, Debug)]
enum TSig {
    Modbus(ModbusSig),
    Other(SigKey),
}

/// The fields of a Modbus [`SigKey`].
#[derive(Clone, Copy, Debug, Eq)]
struct ModbusSig {
    code: u32,
    name: &'static str,
    sub: Option<u16>,
    unit: Option<u8>,
    obj: Option<(ModbusTable, u32, u32)>,
}

impl PartialEq for ModbusSig {
    #[inline]
    fn eq(&self, o: &Self) -> bool {
        self.code == o.code
            && self.sub == o.sub
            && self.unit == o.unit
            && self.obj == o.obj
            && (std::ptr::eq(self.name, o.name) || self.name == o.name)
    }
}

impl std::hash::Hash for ModbusSig {
    /// Hashes everything but the name (equal signatures still hash equal), in two words.
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let sub = self.sub.map_or(0, |s| u64::from(s) + 1);
        let unit = self.unit.map_or(0, |u| u64::from(u) + 1);
        let (table, range) = match self.obj {
            Some((t, start, count)) => (t as u64 + 1, (u64::from(start) << 32) | u64::from(count)),
            None => (0, 0),
        };
        h.write_u64(u64::from(self.code) | (sub << 32) | (unit << 49) | (table << 58));
        h.write_u64(range);
    }
}

impl ModbusSig {
    /// The signature of a Modbus request whose first object is a Modbus range, or that has
    /// none.
    #[inline]
    fn of(ev: &IcsEvent) -> Option<ModbusSig> {
        if ev.proto != AppProto::Modbus {
            return None;
        }
        let obj = match ev.accesses.first().map(|a| &a.object) {
            None => None,
            Some(ObjectRef::Modbus {
                table,
                start,
                count,
            }) => Some((*table, *start, *count)),
            Some(_) => return None,
        };
        Some(ModbusSig {
            code: ev.function.code,
            name: ev.function.name,
            sub: ev.function.sub,
            unit: ev.unit_id,
            obj,
        })
    }
}

impl TSig {
    fn of(ev: &IcsEvent) -> TSig {
        match ModbusSig::of(ev) {
            Some(m) => TSig::Modbus(m),
            None => TSig::Other(SigKey::of(ev)),
        }
    }
}

/// What the detector knows of one request signature on one channel, looked up in the
/// baseline once.
#[derive(Debug)]
struct SigInfo {
    /// The signature as the baseline file writes it.
    sig: String,
    /// Index of its poll pattern in the channel's `polls`, when periodic.
    poll: Option<usize>,
    /// Its position in the channel's cycle.
    cycle_pos: Option<usize>,
    /// Index of its state in `Timing::states`.
    state: Option<usize>,
    /// Index of its channel in `Timing::chans`.
    chan: u32,
}

/// The timing detector.
#[derive(Debug)]
pub struct Timing {
    cfg: TimingConfig,
    /// Per (channel, signature), looked up once.
    infos: Vec<SigInfo>,
    /// Index in `infos` by (channel, signature), for Modbus signatures ...
    modbus_index: HashMap<(ChanId, ModbusSig), u32, KeyHashBuilder>,
    /// ... and the others.
    info_index: HashMap<(ChanId, SigKey), u32, KeyHashBuilder>,
    /// Poll states, with their channel and signature.
    states: Vec<(ChanId, String, SigState)>,
    /// `states` in (channel, signature) order, for deterministic ticks.
    order: BTreeMap<((IpAddr, IpAddr, AppProto), String), usize>,
    /// Each state's position in `order`, refreshed at the first tick that needs it after a
    /// state was added.
    rank: Vec<u32>,
    order_stale: bool,
    /// Per channel (unknown ones too, up to `max_states`).
    chans: Vec<Chan>,
    /// Index in `chans` by channel; iterated only to update in place.
    chan_index: ChanSlots<u32>,
    /// By engine request number ([`EventCtx::req`]): what was found of the request, under
    /// the baseline `base` names.
    req_memo: Vec<ReqMemo>,
    /// The baseline the channel indices point into.
    base: Option<(usize, usize, usize)>,
    /// Changes with `base` (from 1): the [`Hint`]s of another one no longer hold.
    gen: u64,
    /// The running states by the time (µs) after which they may be found stopped (see
    /// [`SigState::queued`]; entries whose time is not their state's `queued` are stale): a
    /// tick looks only at the states due, not at all of them.
    due: DueQueue,
    /// States due at a tick (reused): their index, then `(rank << 32) | index` for sorting.
    due_now: Vec<u64>,
    /// Room to sort a poll's intervals in (see [`Intervals::median`]).
    scratch: Vec<u64>,
    /// Tests: every running state is due at every tick (the walk `due` saves).
    #[cfg(test)]
    walk_all: bool,
    /// Tests: every median is checked against the tolerance (the work `med_ok` saves).
    #[cfg(test)]
    check_every_median: bool,
    /// Tests: no poll takes [`Timing::poll_repeat`] (the general check for every interval).
    #[cfg(test)]
    no_poll_repeat: bool,
    /// Tests: intervals taken by [`Timing::poll_repeat`].
    #[cfg(test)]
    poll_repeats: u64,
    /// Tests: other requests are found by their key only (not in [`Chan::named`]).
    #[cfg(test)]
    no_named_memo: bool,
    /// Tests: events taken through a [`Hint`] that held.
    #[cfg(test)]
    hint_hits: u64,
    /// Poll-stopped and burst alerts leave their words to [`Alert::resolve`] (see
    /// [`Timing::deferring_texts`]).
    defer_texts: bool,
    /// States not kept because the table was full.
    pub states_dropped: u64,
    /// Events of channels outside the baseline not remembered as such because
    /// `MAX_UNKNOWN_CHANS` were (looked up again next time: no check is skipped).
    pub chans_uncached: u64,
}

/// Most channels outside the baseline that [`Timing`] remembers as having nothing to check
/// (each costs about 400 bytes; beyond, they are looked up again on every event). A plant has
/// a few hundred channels; 100,000 new ones would otherwise hold 25 MB for nothing.
const MAX_UNKNOWN_CHANS: usize = 4096;

/// The median of sorted intervals (the upper one of an even count).
#[cfg(test)]
fn median(sorted: &[u64]) -> f64 {
    median_us(sorted) as f64
}

/// The median of sorted intervals (the upper one of an even count), in µs.
#[inline]
fn median_us(sorted: &[u64]) -> u64 {
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

/// The last intervals of a poll (at most a window of them), in arrival order (a ring). Where
/// their median lies against an interval of integers is told by counting (see
/// [`Intervals::median_in`]); the median itself is worked out (sorted in a scratch vector)
/// only when its value is needed.
#[derive(Debug, Default)]
struct Intervals {
    /// The intervals, oldest at `head` once the window is full.
    ring: Vec<u64>,
    head: usize,
}

impl Intervals {
    /// Intervals kept.
    fn len(&self) -> usize {
        self.ring.len()
    }

    /// Forgets every interval.
    fn clear(&mut self) {
        self.ring.clear();
        self.head = 0;
    }

    /// The oldest interval of a full window (`None`: the window is empty).
    #[inline(always)]
    fn oldest(&self) -> Option<u64> {
        self.ring.get(self.head).copied()
    }

    /// Adds `d`, dropping the oldest interval when there are `window` already.
    #[inline(always)]
    fn push(&mut self, d: u64, window: usize) {
        if self.ring.len() < window {
            self.ring.push(d);
        } else if let Some(slot) = self.ring.get_mut(self.head) {
            *slot = d;
            self.head = if self.head + 1 < self.ring.len() {
                self.head + 1
            } else {
                0
            };
        }
    }

    /// Whether the median (the upper one of an even count) is within `[lo, hi]` (never when
    /// `lo > hi`), without sorting: the element of rank `m = len / 2` is at least `lo` when
    /// at most `m` intervals are below `lo`, and at most `hi` when at most `len - 1 - m` are
    /// above `hi`.
    #[inline]
    fn median_in(&self, lo: u64, hi: u64) -> bool {
        let (mut below, mut above) = (0usize, 0usize);
        for &x in &self.ring {
            below += usize::from(x < lo);
            above += usize::from(x > hi);
        }
        let n = self.ring.len();
        let m = n / 2;
        n > 0 && below <= m && above < n - m
    }

    /// The median (the upper one of an even count), in µs, sorted in `scratch` (one for
    /// every poll, kept by [`Timing`]: a poll's state stays small).
    #[inline(never)]
    fn median(&self, scratch: &mut Vec<u64>) -> u64 {
        scratch.clear();
        scratch.extend_from_slice(&self.ring);
        scratch.sort_unstable();
        median_us(scratch)
    }

    /// The intervals in ascending order.
    #[cfg(test)]
    fn sorted_now(&self) -> Vec<u64> {
        let mut s = self.ring.clone();
        s.sort_unstable();
        s
    }
}

/// Slots of [`DueQueue`]'s calendar (a power of two).
const DUE_SLOTS: usize = 64;
/// Each slot of the calendar covers `1 << DUE_SHIFT` microseconds (about a second).
const DUE_SHIFT: u32 = 20;

/// Entries `(time in µs, state)`, taken out once a tick's time is past theirs, in no
/// particular order (a tick sorts the states it takes). A calendar of [`DUE_SLOTS`] slots
/// from slot `base` on (slot `k` holds the times `t` with `t >> DUE_SHIFT == k`, and slot
/// `base` also those before it), and a list of the times beyond: a tick empties the slots it
/// passed and looks through the one it is in, instead of popping a heap.
#[derive(Debug, Default)]
struct DueQueue {
    /// The calendar (empty until the first entry).
    slots: Vec<Vec<(i64, u32)>>,
    /// The first slot number not emptied.
    base: i64,
    /// Entries in `slots`.
    in_slots: usize,
    /// The entries past the calendar ...
    far: Vec<(i64, u32)>,
    /// ... and the earliest of their times (`i64::MAX` when none).
    far_min: i64,
}

impl DueQueue {
    /// Forgets every entry.
    fn clear(&mut self) {
        self.slots.iter_mut().for_each(Vec::clear);
        self.in_slots = 0;
        self.far.clear();
        self.far_min = i64::MAX;
    }

    /// The calendar slot of slot number `k` (at least `base`, less than `base + DUE_SLOTS`).
    #[inline]
    fn slot(&mut self, k: i64) -> Option<&mut Vec<(i64, u32)>> {
        self.slots.get_mut((k as usize) & (DUE_SLOTS - 1))
    }

    /// Adds an entry.
    #[inline]
    fn push(&mut self, t: i64, i: u32) {
        if self.slots.is_empty() {
            self.slots.resize_with(DUE_SLOTS, Vec::new);
            self.far_min = i64::MAX;
        }
        let k = t >> DUE_SHIFT;
        if self.in_slots == 0 && k > self.base {
            // Nothing in the calendar: it starts at this entry's slot.
            self.base = k;
        }
        let k = k.max(self.base);
        if k - self.base < DUE_SLOTS as i64 {
            if let Some(s) = self.slot(k) {
                s.push((t, i));
                self.in_slots += 1;
                return;
            }
        }
        self.far.push((t, i));
        self.far_min = self.far_min.min(t);
    }

    /// Takes out every entry whose time is before `now`, handing each to `f`.
    fn take_before(&mut self, now: i64, mut f: impl FnMut(i64, u32)) {
        if self.slots.is_empty() {
            return;
        }
        let kn = now >> DUE_SHIFT;
        if self.in_slots > 0 && kn > self.base {
            // The slots passed hold only times before `now`.
            let n = (kn - self.base).min(DUE_SLOTS as i64);
            for k in self.base..self.base + n {
                if let Some(s) = self.slot(k) {
                    for (t, i) in s.drain(..) {
                        f(t, i);
                    }
                }
            }
            self.in_slots = self.slots.iter().map(Vec::len).sum();
        }
        self.base = self.base.max(kn);
        // The slot of `now` (and of the entries pushed late): those before `now`.
        let base = self.base;
        let mut taken = 0;
        if let Some(s) = self.slot(base) {
            s.retain(|&(t, i)| {
                let due = t < now;
                if due {
                    f(t, i);
                    taken += 1;
                }
                !due
            });
        }
        self.in_slots -= taken;
        if self.far_min < now {
            let far = std::mem::take(&mut self.far);
            self.far_min = i64::MAX;
            for (t, i) in far {
                if t < now {
                    f(t, i);
                } else {
                    self.push(t, i);
                }
            }
        }
    }
}

/// Values of a kept Modbus range access that its summary shows (one more is counted, so that
/// it still knows there were more).
const RANGE_VALUES: usize = 4;

/// The last request of a poll, as much of it as the evidence of its poll-stopped alert needs,
/// in the form the evidence takes it: time, capture file and packets, and what its summary
/// prints ([`Shape`]). Kept over the last one at every request ([`keep_for_evidence`]); the
/// summary is written only for an alert (and then only if it comes out, see [`StopWords`]).
#[derive(Clone, Debug, PartialEq)]
struct Kept {
    ts: Timestamp,
    file: Arc<str>,
    packet: u64,
    response_packet: Option<u64>,
    shape: Shape,
}

/// What the summary of a kept request prints.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Shape {
    /// One access to a Modbus range, ended normally, whose shown values are integers or
    /// booleans (a poll's request), in line.
    Range(KeptRange),
    /// Any other request: its function, outcome and first accesses with their first values
    /// (see [`keep_general`]).
    Event(Box<IcsEvent>),
}

/// [`Shape::Range`]: the fields [`event_summary`] prints of such a request.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct KeptRange {
    proto: AppProto,
    function: Function,
    dir: AccessDir,
    table: ModbusTable,
    start: u32,
    count: u32,
    /// The access's values, counted up to `RANGE_VALUES + 1` ...
    n: u8,
    /// ... the first of them (at most [`RANGE_VALUES`]) as integers ...
    vals: [i64; RANGE_VALUES],
    /// ... bit `i` set when value `i` is a boolean.
    bools: u8,
}

/// A range kept of nothing yet (overwritten whole by [`keep_range`]).
const NO_RANGE: KeptRange = KeptRange {
    proto: AppProto::Modbus,
    function: Function::NONE,
    dir: AccessDir::Read,
    table: ModbusTable::Coil,
    start: 0,
    count: 0,
    n: 0,
    vals: [0; RANGE_VALUES],
    bools: 0,
};

impl Kept {
    /// What [`keep_for_evidence`] keeps of `ev`.
    fn of(ev: &IcsEvent) -> Kept {
        let mut r = NO_RANGE;
        let shape = if keep_range(&mut r, ev) {
            Shape::Range(r)
        } else {
            Shape::Event(Box::new(evidence_copy(ev)))
        };
        Kept {
            ts: ev.ts,
            file: ev.evidence.file.clone(),
            packet: ev.evidence.packet,
            response_packet: ev.evidence.response_packet,
            shape,
        }
    }

    /// The evidence of the kept request, with `summary`.
    fn evidence(&self, summary: String) -> AlertEvidence {
        AlertEvidence {
            ts: self.ts,
            file: self.file.clone(),
            packet: self.packet,
            response_packet: self.response_packet,
            summary,
        }
    }
}

impl Shape {
    /// [`event_summary`] of the kept request.
    pub(crate) fn summary(&self) -> String {
        match self {
            Shape::Event(ev) => event_summary(ev),
            Shape::Range(r) => event_summary(&r.event()),
        }
    }
}

impl KeptRange {
    /// An event that [`event_summary`] prints as it printed the kept one (what it does not
    /// print left empty, and a value past the shown ones as a zero).
    fn event(&self) -> IcsEvent {
        let nobody = Endpoint {
            ip: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            port: 0,
            mac: None,
        };
        let values = (0..usize::from(self.n))
            .map(|i| match self.vals.get(i) {
                Some(&v) if self.bools >> i & 1 == 1 => Value::Bool(v != 0),
                Some(&v) => Value::Int(v),
                None => Value::Int(0),
            })
            .collect();
        IcsEvent {
            ts: Timestamp::default(),
            proto: self.proto,
            flow_id: 0,
            client: nobody,
            server: nobody,
            vlan: None,
            unit_id: None,
            session: None,
            op: crate::event::OpKind::Read,
            function: copy_function(&self.function),
            accesses: vec![Access {
                dir: self.dir,
                object: ObjectRef::Modbus {
                    table: self.table,
                    start: self.start,
                    count: self.count,
                },
                values,
            }],
            outcome: Outcome::Ok,
            latency_us: None,
            violations: Vec::new(),
            facts: Vec::new(),
            details: Vec::new(),
            evidence: crate::event::Evidence {
                file: Arc::from(""),
                packet: 0,
                response_packet: None,
            },
        }
    }
}

/// Keeps in `dst` what the evidence of a poll-stopped alert needs of `src` (see [`Kept`]):
/// a poll's repeat in line, any other shape through [`keep_shape`].
#[inline(always)]
fn keep_for_evidence(dst: &mut Kept, src: &IcsEvent) {
    dst.ts = src.ts;
    dst.packet = src.evidence.packet;
    dst.response_packet = src.evidence.response_packet;
    if !Arc::ptr_eq(&dst.file, &src.evidence.file) {
        dst.file = src.evidence.file.clone();
    }
    let in_line = match &mut dst.shape {
        Shape::Range(r) => keep_range(r, src),
        Shape::Event(_) => false,
    };
    if !in_line {
        keep_shape(&mut dst.shape, src);
    }
}

/// The [`Shape::Range`] of `src` into `r`; false (and `r` partly written: the caller
/// replaces it) for any other shape.
#[inline(always)]
fn keep_range(r: &mut KeptRange, src: &IcsEvent) -> bool {
    if !matches!(src.outcome, Outcome::Ok) {
        return false;
    }
    let [a] = src.accesses.as_slice() else {
        return false;
    };
    let ObjectRef::Modbus {
        table,
        start,
        count,
    } = a.object
    else {
        return false;
    };
    let mut bools = 0u8;
    match (a.values.compact(), a.values.as_list()) {
        (Some(words), _) => {
            for (&y, x) in words.iter().zip(r.vals.iter_mut()) {
                *x = i64::from(y);
            }
            if a.values.is_bits() {
                bools = (1u16 << words.len().min(RANGE_VALUES)).wrapping_sub(1) as u8;
            }
        }
        (None, list) => {
            for (i, (v, x)) in list
                .unwrap_or_default()
                .iter()
                .zip(r.vals.iter_mut())
                .enumerate()
            {
                match *v {
                    Value::Int(y) => *x = y,
                    Value::Bool(b) => {
                        *x = i64::from(b);
                        bools |= 1 << i;
                    }
                    _ => return false,
                }
            }
        }
    }
    r.n = a.values.len().min(RANGE_VALUES + 1) as u8;
    r.bools = bools;
    r.proto = src.proto;
    r.function = copy_function(&src.function);
    r.dir = a.dir;
    r.table = table;
    r.start = start;
    r.count = count;
    true
}

/// [`keep_for_evidence`] when the shape is not the kept range's: the range of `src` when it
/// has one, else the event as far as its summary prints it.
#[inline(never)]
fn keep_shape(d: &mut Shape, src: &IcsEvent) {
    let mut r = NO_RANGE;
    if keep_range(&mut r, src) {
        *d = Shape::Range(r);
        return;
    }
    match d {
        Shape::Event(e) => keep_general(e, src),
        Shape::Range(_) => *d = Shape::Event(Box::new(evidence_copy(src))),
    }
}

/// `*d = s.clone()`, in place for a Modbus range into a Modbus range.
#[inline(always)]
fn copy_object(d: &mut ObjectRef, s: &ObjectRef) {
    match (d, s) {
        (
            ObjectRef::Modbus {
                table,
                start,
                count,
            },
            &ObjectRef::Modbus {
                table: t,
                start: s,
                count: c,
            },
        ) => {
            *table = t;
            *start = s;
            *count = c;
        }
        (o, s) => {
            if *o != *s {
                o.clone_from(s);
            }
        }
    }
}

/// A copy of a function, field by field (all `Copy`): cheaper than the derived `clone`.
#[inline(always)]
fn copy_function(f: &Function) -> Function {
    let Function {
        code,
        name,
        category,
        sub,
        sub_name,
    } = *f;
    Function {
        code,
        name,
        category,
        sub,
        sub_name,
    }
}

/// Copies into `dst` what [`event_summary`] and the evidence print of `src` (time, packets,
/// function, the first accesses and values, outcome), reusing `dst`'s vectors; the rest of
/// `dst` is left as it is.
fn keep_general(dst: &mut IcsEvent, src: &IcsEvent) {
    dst.ts = src.ts;
    dst.proto = src.proto;
    dst.function = copy_function(&src.function);
    if !matches!((&dst.outcome, &src.outcome), (Outcome::Ok, Outcome::Ok)) {
        dst.outcome.clone_from(&src.outcome);
    }
    if !std::sync::Arc::ptr_eq(&dst.evidence.file, &src.evidence.file) {
        dst.evidence.file = src.evidence.file.clone();
    }
    dst.evidence.packet = src.evidence.packet;
    dst.evidence.response_packet = src.evidence.response_packet;
    keep_accesses(dst, src);
}

/// The accesses part of [`keep_general`].
fn keep_accesses(dst: &mut IcsEvent, src: &IcsEvent) {
    let n = src.accesses.len().min(KEPT_ACCESSES);
    dst.accesses.truncate(n);
    for (i, a) in src.accesses.iter().take(n).enumerate() {
        match dst.accesses.get_mut(i) {
            Some(d) => {
                d.dir = a.dir;
                copy_object(&mut d.object, &a.object);
                d.values.copy_prefix(&a.values, KEPT_VALUES);
            }
            None => {
                let mut values = crate::event::Values::new();
                values.copy_prefix(&a.values, KEPT_VALUES);
                dst.accesses.push(Access {
                    dir: a.dir,
                    object: a.object.clone(),
                    values,
                });
            }
        }
    }
}

/// A fresh copy of what [`keep_general`] keeps.
fn evidence_copy(ev: &IcsEvent) -> IcsEvent {
    let mut e = super::evidence_shell(ev, Vec::new());
    keep_general(&mut e, ev);
    e
}

/// Appends `fmt_num(t.round() / 10.0)` to `s`: a number of tenths in words, worked out in
/// integers when it is small enough for that to be exact (below 10⁹ tenths).
fn push_tenths(s: &mut String, t: f64) {
    let k = t.round();
    if (0.0..1e9).contains(&k) {
        let k = k as u64;
        push_decimal(s, k / 10);
        if k % 10 != 0 {
            s.push('.');
            push_decimal(s, k % 10);
        }
        return;
    }
    s.push_str(&fmt_num(k / 10.0));
}

/// Index of the first poll pattern of `sig` in the channel `ch` of `b`.
fn poll_index(b: &Baseline, ch: Option<u32>, sig: &str) -> Option<u32> {
    let ch = b.channels.get(ch? as usize)?;
    let i = ch.polls.iter().position(|p| p.signature == sig)?;
    u32::try_from(i).ok()
}

impl Timing {
    /// A timing detector.
    pub fn new(cfg: TimingConfig) -> Self {
        Timing {
            cfg,
            infos: Vec::new(),
            modbus_index: HashMap::default(),
            info_index: HashMap::default(),
            states: Vec::new(),
            order: BTreeMap::new(),
            rank: Vec::new(),
            order_stale: false,
            chans: Vec::new(),
            chan_index: ChanSlots::default(),
            req_memo: Vec::new(),
            base: None,
            gen: 1,
            due: DueQueue::default(),
            due_now: Vec::new(),
            scratch: Vec::new(),
            #[cfg(test)]
            walk_all: false,
            #[cfg(test)]
            check_every_median: false,
            #[cfg(test)]
            no_poll_repeat: false,
            #[cfg(test)]
            poll_repeats: 0,
            #[cfg(test)]
            no_named_memo: false,
            #[cfg(test)]
            hint_hits: 0,
            defer_texts: false,
            states_dropped: 0,
            chans_uncached: 0,
        }
    }

    /// The detector, raising poll-stopped and burst alerts whose words (explanation, baseline
    /// fact and reference, Community ID, technique ids) are left to [`Alert::resolve`], which
    /// whoever takes its alerts must call (the engine's aggregator does, for the alerts it
    /// emits).
    pub fn deferring_texts(mut self) -> Self {
        self.defer_texts = true;
        self
    }

    /// Points the cached channel and poll indices into `b` (when it is not the baseline they
    /// were taken from).
    #[inline]
    fn sync(&mut self, b: &Baseline) {
        let id = baseline_id(b);
        if self.base != Some(id) {
            self.rebind(b, id);
        }
    }

    #[cold]
    fn rebind(&mut self, b: &Baseline, id: (usize, usize, usize)) {
        self.base = Some(id);
        self.gen += 1;
        self.req_memo.clear();
        // Iterated to update in place only; nothing from here reaches the output.
        for (key, &mut i) in self.chan_index.iter_mut() {
            if let Some(c) = self.chans.get_mut(i as usize) {
                c.bind(&self.cfg, b, key);
            }
        }
        self.due.clear();
        for (i, (key, sig, st)) in self.states.iter_mut().enumerate() {
            st.ch = channel_index(b, key);
            st.poll = poll_index(b, st.ch, sig);
            st.stop_text = None;
            st.med_ok = NO_MEDIAN;
            st.med_bad = (None, None);
            st.same = None;
            st.quiet_us = quiet_of(&self.cfg, b, st.ch, st.poll);
            st.queued = None;
            if !st.stopped {
                if let Ok(i) = u32::try_from(i) {
                    let t = st.last.as_micros().saturating_add(st.quiet_us);
                    st.queued = Some(t);
                    self.due.push(t, i);
                }
            }
        }
    }

    #[inline(always)]
    fn burst(
        hot: &mut ChanHot,
        ev: &IcsEvent,
        max10: u64,
        ch: &Channel,
        defer: bool,
        out: &mut Vec<Alert>,
    ) {
        hot.count_in_bucket(ev.ts.secs);
        if hot.burst() {
            hot.reported = true;
            Timing::burst_alert(hot.count, ev, max10, ch, defer, out);
        }
    }

    /// A burst alert: its words left to [`Alert::resolve`] when `defer` (see
    /// [`BurstWords`]), else written.
    #[cold]
    fn burst_alert(
        count: u64,
        ev: &IcsEvent,
        max10: u64,
        ch: &Channel,
        defer: bool,
        out: &mut Vec<Alert>,
    ) {
        if defer {
            let words = BurstWords {
                count,
                max10,
                ch_client: ch.client,
                ch_server: ch.server,
                ch_proto: ch.proto.clone(),
            };
            out.push(Alert::from_event_deferred(
                &TRAFFIC_BURST,
                ev,
                event_summary(ev),
                Box::new(super::Words::Burst(words)),
            ));
            return;
        }
        let explanation = format!(
            "{} sent {} requests to {} within 10 seconds; in the baseline this channel \
             never sent more than {max10} in 10 seconds. A flood of requests can overload \
             a PLC (denial of service) or force outputs by brute force.",
            ev.client.ip,
            count,
            device_words(ev.server.ip, ev.unit_id)
        );
        out.push(
            Alert::from_event(&TRAFFIC_BURST, ev, explanation, event_summary(ev)).with_fact(
                format!("at most {max10} requests per 10 s"),
                format!("{}.volume.max_per_10s", ch.ref_name()),
            ),
        );
    }

    /// The order check of a request at position `pos` of the cycle of `ch`, whose length is
    /// `cycle_len` (given apart: a request in order reads nothing of `ch`).
    #[inline(always)]
    fn order<'a>(
        cfg: &TimingConfig,
        st: &mut ChanState,
        ev: &IcsEvent,
        (sig, pos): (impl Fn() -> &'a str, usize),
        cycle_len: usize,
        ch: &Channel,
        out: &mut Vec<Alert>,
    ) {
        let window = cfg.order_window.max(1);
        let min_bad = cfg.order_min_violations;
        let Some(ppos) = st.last_cycle_pos.replace(pos) else {
            return;
        };
        // `pos` is where `sig` first is in the cycle: the next position holds it for sure.
        let next = match ppos + 1 {
            n if n < cycle_len => n,
            n => n % cycle_len.max(1),
        };
        let ok = next == pos || ch.cycle.get(next).map(String::as_str).unwrap_or("") == sig();
        let len = st.push_order(ok, window, window <= 64);
        let bad = st.bad;
        if bad == 0 {
            st.order_reported = false;
        }
        if bad >= min_bad && !st.order_reported {
            Timing::order_alert(st, ev, (sig(), ppos), &ch.cycle, ch, len, out);
        }
    }

    /// The alert of a cycle order change: after position `ppos` of `cycle` came `sig`, with
    /// `st.bad` of the last `len` steps out of order.
    #[cold]
    #[inline(never)]
    fn order_alert(
        st: &mut ChanState,
        ev: &IcsEvent,
        (sig, ppos): (&str, usize),
        cycle: &[String],
        ch: &Channel,
        len: usize,
        out: &mut Vec<Alert>,
    ) {
        let bad = st.bad;
        let prev = cycle.get(ppos).map(String::as_str).unwrap_or("");
        let expected = cycle
            .get((ppos + 1) % cycle.len())
            .map(String::as_str)
            .unwrap_or("");
        st.order_reported = true;
        let explanation = format!(
            "{} changed the order of its polling cycle on {}: after \"{prev}\" came \
             \"{sig}\" instead of \"{expected}\" ({bad} of the last {} steps out of order). \
             In the baseline the cycle was always: {}. A master's cycle only changes when \
             its configuration changes, or when another program injects requests on its \
             connection.",
            ev.client.ip,
            device_words(ev.server.ip, ev.unit_id),
            len,
            cycle.join(" → ")
        );
        out.push(
            Alert::from_event(&POLL_ORDER_CHANGED, ev, explanation, event_summary(ev)).with_fact(
                format!("cycle: {}", cycle.join(" → ")),
                format!("{}.cycle", ch.ref_name()),
            ),
        );
    }
}

impl Detector for Timing {
    fn name(&self) -> &'static str {
        "timing"
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("states_dropped", self.states_dropped),
            ("chans_uncached", self.chans_uncached),
        ]
    }

    fn on_event(&mut self, ev: &IcsEvent, baseline: Option<&Baseline>, out: &mut Vec<Alert>) {
        self.on_event_ctx(ev, &EventCtx::of(ev), baseline, out);
    }

    fn on_event_ctx(
        &mut self,
        ev: &IcsEvent,
        ctx: &EventCtx,
        baseline: Option<&Baseline>,
        out: &mut Vec<Alert>,
    ) {
        let Some(b) = baseline else {
            return;
        };
        self.sync(b);
        // A request seen before, by its engine number: its info, or nothing to do.
        if let Some(r) = ctx.req {
            if let Some(&m) = self.req_memo.get(r as usize) {
                if std::ptr::eq(m.name, ev.function.name) {
                    match m.info {
                        MEMO_NONE => {}
                        MEMO_SKIP => return,
                        i => return self.known_memo(ev, &ctx.key, b, i, m, out),
                    }
                }
            }
        }
        self.first_sight(ev, ctx, b, out);
    }
    fn on_tick(&mut self, now: Timestamp, baseline: Option<&Baseline>, out: &mut Vec<Alert>) {
        let Some(b) = baseline else {
            return;
        };
        self.sync(b);
        let now_us = now.as_micros();
        // The states that may be stopped: those due before now (a state cannot be found
        // stopped while at most its `quiet_us` passed since its last request).
        self.due_now.clear();
        let (states, due_now) = (&mut self.states, &mut self.due_now);
        self.due.take_before(now_us, |t, i| {
            if let Some((_, _, st)) = states.get_mut(i as usize) {
                if st.queued == Some(t) {
                    st.queued = None;
                    due_now.push(u64::from(i));
                }
            }
        });
        #[cfg(test)]
        if self.walk_all {
            for (i, (_, _, st)) in self.states.iter_mut().enumerate() {
                if st.queued.is_some() || (!st.stopped && !self.due_now.contains(&(i as u64))) {
                    st.queued = None;
                    self.due_now.push(i as u64);
                }
            }
        }
        // The states due that are not stopped yet go back into `due` at their time (or the
        // next tick's, if that passed already); the others are stopped now.
        let (states, due, cfg) = (&mut self.states, &mut self.due, &self.cfg);
        self.due_now.retain(|&x| {
            let i = x as u32;
            let Some((_, _, st)) = states.get_mut(i as usize) else {
                return false;
            };
            if st.stopped {
                return false;
            }
            let gap_us = micros_between(now, st.last);
            // Within its quiet time (a request came since it was queued) it is not stopped,
            // whatever its pattern; past it, the pattern's limit tells.
            let quiet = i64::try_from(gap_us).is_ok_and(|g| g <= st.quiet_us);
            if !quiet {
                let Some(p) = st
                    .ch
                    .and_then(|c| b.channels.get(c as usize))
                    .and_then(|ch| st.poll.and_then(|p| ch.polls.get(p as usize)))
                else {
                    return false;
                };
                if gap_us as f64 / 1e3 > stop_limit_ms(cfg, p) {
                    return true;
                }
            }
            let t = st.last.as_micros().saturating_add(st.quiet_us);
            st.queued = Some(t);
            due.push(t, i);
            false
        });
        if self.due_now.is_empty() {
            return;
        }
        if self.order_stale {
            self.order_stale = false;
            self.rank.clear();
            self.rank.resize(self.states.len(), u32::MAX);
            for (r, &i) in self.order.values().enumerate() {
                if let Some(x) = self.rank.get_mut(i) {
                    *x = u32::try_from(r).unwrap_or(u32::MAX);
                }
            }
        }
        // In (channel, signature) order, as the alerts go out: sorted by (rank, index) packed
        // in one number.
        let rank = &self.rank;
        for x in self.due_now.iter_mut() {
            let r = rank.get(*x as usize).copied().unwrap_or(u32::MAX);
            *x = (u64::from(r) << 32) | (*x & u64::from(u32::MAX));
        }
        self.due_now.sort_unstable();
        for &x in &self.due_now {
            let i = x as u32;
            let Some((key, sig, st)) = self.states.get_mut(i as usize) else {
                continue;
            };
            let Some(ch) = st.ch.and_then(|c| b.channels.get(c as usize)) else {
                continue;
            };
            let Some(p) = st.poll.and_then(|p| ch.polls.get(p as usize)) else {
                continue;
            };
            let gap_ms = micros_between(now, st.last) as f64 / 1e3;
            st.stopped = true;
            // The words that depend only on the state and its poll pattern are built at its
            // first stop and kept: a poll that stops and resumes repeats them.
            let text = st.stop_text.get_or_insert_with(|| {
                let period = fmt_num(p.period_ms.round());
                let max_gap = fmt_num(p.max_gap_ms.round());
                Arc::new(StopText {
                    head: format!(
                        "{} stopped polling {} with \"{sig}\": the last request was ",
                        key.client(),
                        device_words(key.server(), st.unit),
                    ),
                    tail: format!(
                        ". In the baseline it came every {period} ms and was never more than \
                         {max_gap} ms late. A master that stops polling loses sight of the \
                         process: the operator may be looking at stale values, or the master or \
                         PLC may have crashed or been taken over."
                    ),
                    fact: format!("period {period} ms, longest gap {max_gap} ms"),
                    // As `Channel::ref_name`, in one string.
                    reference: format!(
                        "channels[{}>{} {}].polls[{sig}]",
                        ch.client, ch.server, ch.proto
                    ),
                })
            });
            let tenths = gap_ms / 100.0;
            let mut a = if self.defer_texts {
                // The words are written only if the alert comes out of the aggregator, the
                // evidence's summary only if the aggregator keeps the evidence.
                let words = StopWords {
                    text: Arc::clone(text),
                    tenths,
                    last: st.last,
                    shape: Some(st.kept.shape.clone()),
                };
                Alert::new_deferred(
                    &POLL_STOPPED,
                    now,
                    &st.client,
                    &st.server,
                    key.proto(),
                    Box::new(super::Words::Stop(words)),
                )
            } else {
                Alert::new(
                    &POLL_STOPPED,
                    now,
                    &st.client,
                    &st.server,
                    key.proto(),
                    StopWords::explanation(text, tenths, st.last),
                )
                .with_fact(text.fact.clone(), text.reference.clone())
            };
            let summary = if self.defer_texts {
                String::new()
            } else {
                st.kept.shape.summary()
            };
            a.otwatch.unit_id = st.unit;
            a.otwatch.evidence = vec![st.kept.evidence(summary)];
            out.push(a);
        }
    }
}

/// What the engine keeps in its memo of a prepared request of what the detector found of
/// it (see [`Timing::on_hinted`]): for events of the function named `name`, while the
/// detector's [`Timing::gen`] is `gen` (0: nothing kept), either nothing to do
/// (`info` [`MEMO_SKIP`]) or the request's info and channel (index in `chans`, whose
/// baseline channel is in the baseline), and whether it has order or period checks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hint {
    gen: u64,
    name: &'static str,
    info: u32,
    chan: u32,
    checks: bool,
    /// The info's poll state (index in `states`; [`NO_INDEX`]: none when the hint was made,
    /// the general [`Timing::request`] then) ...
    state: u32,
    /// ... and its position in the channel's cycle ([`NO_INDEX`]: none): a state and a
    /// position, once an info has them, never change ...
    pos: u32,
    /// ... and the length of that cycle (in the baseline of `gen`), so that a request in
    /// order reads nothing of the baseline channel.
    cycle_len: u32,
}

/// No state or cycle position (see [`Hint`]).
const NO_INDEX: u32 = u32::MAX;

/// No hint (see [`Hint`]).
pub(crate) const NO_HINT: Hint = Hint {
    gen: 0,
    name: "",
    info: MEMO_NONE,
    chan: 0,
    checks: false,
    state: NO_INDEX,
    pos: NO_INDEX,
    cycle_len: 0,
};

impl Timing {
    /// [`Detector::on_event_ctx`] for a repeat of a request the engine prepared (see
    /// [`super::Engine`]'s memo): an event with a request number in `ctx`, and the baseline
    /// the engine always passes. With a `hint` that holds, a request with nothing to check
    /// returns at once, and one with an info counts towards its channel's bursts and takes
    /// its checks ([`Timing::known_memo`] without looking anything up); else the general
    /// path, after which `hint` is what it found.
    #[inline(always)]
    pub(crate) fn on_hinted(
        &mut self,
        ev: &IcsEvent,
        ctx: &EventCtx,
        baseline: Option<&Baseline>,
        hint: &mut Hint,
        out: &mut Vec<Alert>,
    ) {
        if hint.gen == self.gen && std::ptr::eq(hint.name, ev.function.name) {
            #[cfg(test)]
            {
                self.hint_hits += 1;
            }
            if hint.info == MEMO_SKIP {
                return;
            }
            if let Some(chan) = self.chans.get_mut(hint.chan as usize) {
                chan.hot.count_in_bucket(ev.ts.secs);
                if hint.checks || chan.hot.burst() {
                    self.hinted_checks(ev, ctx, baseline, hint, out);
                }
            }
            return;
        }
        self.hint_miss(ev, ctx, baseline, hint, out);
    }

    /// Tests: events taken through a hint that held.
    #[cfg(test)]
    pub(crate) fn hint_hits(&self) -> u64 {
        self.hint_hits
    }

    /// The rest of [`Timing::known_memo`] for a request whose [`Hint`] holds, after it was
    /// counted: the burst alert if it is one, and its checks.
    #[inline]
    fn hinted_checks(
        &mut self,
        ev: &IcsEvent,
        ctx: &EventCtx,
        baseline: Option<&Baseline>,
        hint: &Hint,
        out: &mut Vec<Alert>,
    ) {
        let Some(b) = baseline else {
            return;
        };
        let Some(chan) = self.chans.get_mut(hint.chan as usize) else {
            return;
        };
        let Some(ci) = chan
            .hot
            .ch
            .map(|c| c as usize)
            .filter(|&c| c < b.channels.len())
        else {
            return;
        };
        if chan.hot.burst() {
            Timing::burst_found(&mut chan.hot, ev, b, ci, self.defer_texts, out);
        }
        if hint.checks {
            if let Some(ch) = b.channels.get(ci) {
                if hint.state == NO_INDEX {
                    self.request(ev, &ctx.key, ch, hint.info, out);
                } else {
                    self.request_hinted(ev, ch, hint, out);
                }
            }
        }
    }

    /// [`Timing::request`] for a request whose hint names its poll state (and cycle
    /// position): no info, state or pattern looked up.
    #[inline(always)]
    fn request_hinted(&mut self, ev: &IcsEvent, ch: &Channel, hint: &Hint, out: &mut Vec<Alert>) {
        if hint.pos != NO_INDEX && (hint.info as usize) < self.infos.len() {
            if let Some(chan) = self.chans.get_mut(hint.chan as usize) {
                // The info's signature is read only when the order is out (or reported).
                let infos = &self.infos;
                let sig = || infos.get(hint.info as usize).map_or("", |i| i.sig.as_str());
                let at = (sig, hint.pos as usize);
                let len = hint.cycle_len as usize;
                Timing::order(&self.cfg, &mut chan.st, ev, at, len, ch, out);
            }
        }
        self.poll_step(ev, hint.state, hint.info, ch, out);
    }

    /// [`Timing::on_hinted`] without a hint that holds: the general path, then the hint of
    /// what it found.
    #[inline(never)]
    fn hint_miss(
        &mut self,
        ev: &IcsEvent,
        ctx: &EventCtx,
        baseline: Option<&Baseline>,
        hint: &mut Hint,
        out: &mut Vec<Alert>,
    ) {
        self.on_event_ctx(ev, ctx, baseline, out);
        *hint = self.hint_of(ev, ctx, baseline);
    }

    /// The [`Hint`] of the request of `ev` (number in `ctx`) as remembered in `req_memo`
    /// under `baseline` ([`NO_HINT`] when it is not, or not in the baseline's indices).
    fn hint_of(&self, ev: &IcsEvent, ctx: &EventCtx, baseline: Option<&Baseline>) -> Hint {
        let (Some(b), Some(r)) = (baseline, ctx.req) else {
            return NO_HINT;
        };
        if self.base != Some(baseline_id(b)) {
            return NO_HINT;
        }
        let Some(&m) = self.req_memo.get(r as usize) else {
            return NO_HINT;
        };
        if !std::ptr::eq(m.name, ev.function.name) {
            return NO_HINT;
        }
        let skip = Hint {
            gen: self.gen,
            name: m.name,
            info: MEMO_SKIP,
            ..NO_HINT
        };
        match m.info {
            MEMO_NONE | MEMO_BURST => NO_HINT,
            MEMO_SKIP => skip,
            i => {
                // `known_memo` does nothing for a channel outside the baseline.
                let ch = self
                    .chans
                    .get(m.chan as usize)
                    .and_then(|c| c.hot.ch)
                    .and_then(|c| b.channels.get(c as usize));
                let Some(ch) = ch else {
                    return skip;
                };
                let index = |x: Option<usize>| x.and_then(|x| u32::try_from(x).ok());
                let info = self.infos.get(i as usize);
                // A cycle too long to tell in the hint: the general path (no state).
                let cycle_len = u32::try_from(ch.cycle.len()).ok();
                Hint {
                    info: i,
                    chan: m.chan,
                    checks: m.checks,
                    state: info
                        .and_then(|f| index(f.state))
                        .filter(|_| cycle_len.is_some())
                        .unwrap_or(NO_INDEX),
                    pos: info.and_then(|f| index(f.cycle_pos)).unwrap_or(NO_INDEX),
                    cycle_len: cycle_len.unwrap_or(0),
                    ..skip
                }
            }
        }
    }
}

impl Timing {
    /// An event whose request the detector has no memo of (first sight, or no engine
    /// number): its channel and signature looked up, and remembered.
    #[inline(never)]
    fn first_sight(&mut self, ev: &IcsEvent, ctx: &EventCtx, b: &Baseline, out: &mut Vec<Alert>) {
        let key = ctx.key;
        let known_chan = self.chan_index.find(ctx);
        // A Modbus request already seen on a channel: found in the channel's list of
        // signatures, else by one lookup of both.
        if let Some(m) = ModbusSig::of(ev) {
            let listed = known_chan
                .and_then(|s| self.chan_index.get_mut(s).map(|c| *c))
                .and_then(|c| self.chans.get_mut(c as usize))
                .and_then(|chan| chan.sigs.find(&m));
            let found = match listed {
                Some(i) => Some(i),
                None => self.modbus_index.get(&(key, m)).copied().inspect(|&i| {
                    let c = self.infos.get(i as usize).map(|info| info.chan);
                    if let Some(chan) = c.and_then(|c| self.chans.get_mut(c as usize)) {
                        chan.sigs.push_within(MAX_CHAN_SIGS, m, i);
                    }
                }),
            };
            if let Some(i) = found {
                self.memo(ctx, m.name, i);
                return self.known(ev, &key, b, i, out);
            }
        }
        let c = match known_chan.and_then(|s| self.chan_index.get_mut(s).map(|c| *c)) {
            Some(c) => c,
            None => {
                let chan = Chan::new(&self.cfg, b, &key);
                let c = u32::try_from(self.chans.len()).ok();
                // Channels of the baseline are always kept (there are only so many); others
                // while there is room, else looked up again next time.
                let room = self.cfg.max_states.min(MAX_UNKNOWN_CHANS);
                match c.filter(|_| chan.hot.ch.is_some() || self.chans.len() < room) {
                    Some(c) => {
                        self.chans.push(chan);
                        self.chan_index.insert(ctx, c);
                        c
                    }
                    None => {
                        self.chans_uncached += 1;
                        return;
                    }
                }
            }
        };
        let Some(chan) = self.chans.get_mut(c as usize) else {
            return;
        };
        let Some(ch) = chan.hot.ch.and_then(|i| b.channels.get(i as usize)) else {
            // Not a baseline channel: nothing to do (while the baseline is this one).
            if ctx.sig.is_some() {
                self.memo(ctx, ev.function.name, MEMO_SKIP);
            }
            return;
        };
        let max10 = ch.volume.max_per_10s;
        Timing::burst(&mut chan.hot, ev, max10, ch, self.defer_texts, out);
        // A named request the engine numbered (its number stands for its channel, function
        // and objects) is remembered by its number as a Modbus one is.
        let numbered = ctx.sig.is_none() && ctx.req.is_some();
        #[cfg(test)]
        let numbered = numbered && !self.no_named_memo;
        if ev.proto == AppProto::Opcua && ev.function.code == OPCUA_PUBLISH_REQUEST {
            // An OPC UA client keeps Publish requests queued at the server and sends the next
            // one when a notification or keep-alive comes back: their pace follows how often
            // the data changes, not a polling cycle, so they have no period to keep.
            if numbered {
                self.memo_burst(ctx, ev.function.name, c);
            }
            return;
        }
        let modbus = ModbusSig::of(ev).is_some();
        #[cfg(test)]
        let modbus = modbus || self.no_named_memo;
        if !modbus {
            if let Some(i) = chan.find_named(ev) {
                // A request remembered with its info: as found by its key.
                if numbered {
                    self.memo(ctx, ev.function.name, i);
                }
                return self.request(ev, &key, ch, i, out);
            }
        }
        let (found, tsig) = match TSig::of(ev) {
            TSig::Modbus(m) => (self.modbus_index.get(&(key, m)).copied(), TSig::Modbus(m)),
            TSig::Other(k) => {
                let skey = (key, k);
                (self.info_index.get(&skey).copied(), TSig::Other(skey.1))
            }
        };

        let i = match found {
            Some(i) => i,
            None => {
                let sig = SigKey::of(ev).to_string();
                let poll = ch
                    .polls
                    .iter()
                    .position(|p| p.periodic && p.signature == sig);
                let cycle_pos = ch.cycle.iter().position(|s| *s == sig);
                let i = u32::try_from(self.infos.len()).ok();
                let Some(i) = i.filter(|_| self.infos.len() < self.cfg.max_states) else {
                    // Table full: check the order, but keep no poll state.
                    self.states_dropped += 1;
                    if let Some(pos) = cycle_pos {
                        let at = (|| sig.as_str(), pos);
                        let len = ch.cycle.len();
                        Timing::order(&self.cfg, &mut chan.st, ev, at, len, ch, out);
                    }
                    return;
                };
                self.infos.push(SigInfo {
                    sig,
                    poll,
                    cycle_pos,
                    state: None,
                    chan: c,
                });
                match tsig {
                    TSig::Modbus(m) => self.modbus_index.insert((key, m), i),
                    TSig::Other(k) => self.info_index.insert((key, k), i),
                };
                i
            }
        };
        if !modbus {
            if let Some(chan) = self.chans.get_mut(c as usize) {
                if chan.named.len() < MAX_CHAN_NAMED {
                    chan.named.push((NamedReq::of(ev), i));
                }
            }
            if numbered {
                self.memo(ctx, ev.function.name, i);
            }
        }
        self.request(ev, &key, ch, i, out);
    }
}

/// No memo (in [`Timing::req_memo`]).
const MEMO_NONE: u32 = u32::MAX;
/// The request's channel is not in the baseline: nothing to do.
const MEMO_SKIP: u32 = u32::MAX - 1;
/// A request with no info that only counts towards its channel's bursts (an OPC UA Publish):
/// [`Timing::known_memo`] without checks.
const MEMO_BURST: u32 = u32::MAX - 2;

/// What the detector found of an engine-numbered request (see [`EventCtx::req`]).
#[derive(Clone, Copy, Debug)]
struct ReqMemo {
    /// Index in `infos`, or [`MEMO_NONE`], or [`MEMO_SKIP`].
    info: u32,
    /// Its index in `chans` (with an info).
    chan: u32,
    /// It has a cycle position or a poll pattern (with an info): `request` has work.
    checks: bool,
    /// The function name of the request (part of its [`ModbusSig`], not of its number):
    /// the memo holds for this name only.
    name: &'static str,
}

impl Timing {
    /// Remembers what was found of the event's request (when the engine numbered it).
    fn memo(&mut self, ctx: &EventCtx, name: &'static str, info: u32) {
        let Some(r) = ctx.req.map(|r| r as usize) else {
            return;
        };
        if r >= self.req_memo.len() {
            self.req_memo.resize(
                r + 1,
                ReqMemo {
                    info: MEMO_NONE,
                    chan: 0,
                    checks: false,
                    name: "",
                },
            );
        }
        let (chan, checks) = self.infos.get(info as usize).map_or((0, false), |i| {
            (i.chan, i.cycle_pos.is_some() || i.poll.is_some())
        });
        if let Some(m) = self.req_memo.get_mut(r) {
            *m = ReqMemo {
                info,
                chan,
                checks,
                name,
            };
        }
    }

    /// Remembers that the event's request (numbered by the engine) only counts towards the
    /// bursts of channel `c` (see [`MEMO_BURST`]).
    fn memo_burst(&mut self, ctx: &EventCtx, name: &'static str, c: u32) {
        self.memo(ctx, name, MEMO_BURST);
        if let Some(m) = ctx.req.and_then(|r| self.req_memo.get_mut(r as usize)) {
            m.chan = c;
            m.checks = false;
        }
    }

    /// As [`Timing::known`], with the channel and whether there are checks from the memo
    /// (an info's channel and checks never change).
    #[inline]
    fn known_memo(
        &mut self,
        ev: &IcsEvent,
        key: &ChanId,
        b: &Baseline,
        i: u32,
        m: ReqMemo,
        out: &mut Vec<Alert>,
    ) {
        let Some(chan) = self.chans.get_mut(m.chan as usize) else {
            return;
        };
        // The baseline channel is looked up only when there is a check to make or an alert
        // to raise (an index within `b.channels` finds it).
        let Some(ci) = chan
            .hot
            .ch
            .map(|c| c as usize)
            .filter(|&c| c < b.channels.len())
        else {
            return;
        };
        chan.hot.count_in_bucket(ev.ts.secs);
        if chan.hot.burst() {
            Timing::burst_found(&mut chan.hot, ev, b, ci, self.defer_texts, out);
        }
        if m.checks {
            if let Some(ch) = b.channels.get(ci) {
                self.request(ev, key, ch, i, out);
            }
        }
    }

    /// A burst found by [`Timing::known_memo`] on the baseline channel `ci` of `b`.
    #[cold]
    fn burst_found(
        hot: &mut ChanHot,
        ev: &IcsEvent,
        b: &Baseline,
        ci: usize,
        defer: bool,
        out: &mut Vec<Alert>,
    ) {
        if let Some(ch) = b.channels.get(ci) {
            hot.reported = true;
            Timing::burst_alert(hot.count, ev, ch.volume.max_per_10s, ch, defer, out);
        }
    }

    /// A request with info `i`: the burst check of its channel, and its order and period
    /// checks.
    #[inline]
    fn known(&mut self, ev: &IcsEvent, key: &ChanId, b: &Baseline, i: u32, out: &mut Vec<Alert>) {
        let Some(info) = self.infos.get(i as usize) else {
            return;
        };
        let Some(chan) = self.chans.get_mut(info.chan as usize) else {
            return;
        };
        let Some(ch) = chan.hot.ch.and_then(|c| b.channels.get(c as usize)) else {
            return;
        };
        let max10 = ch.volume.max_per_10s;
        Timing::burst(&mut chan.hot, ev, max10, ch, self.defer_texts, out);
        if info.cycle_pos.is_some() || info.poll.is_some() {
            // (Without either, `request` has nothing to do.)
            self.request(ev, key, ch, i, out);
        }
    }

    /// The period check of a poll whose last check took an exit that changes nothing
    /// ([`SigState::same`]), for a new interval `d` on the same side of that exit's
    /// interval as the oldest one it replaces: the median takes the same exit, so only the
    /// window changes (true). False (nothing changed): the general check decides.
    #[inline(always)]
    fn poll_repeat(st: &mut SigState, d: u64, window: usize) -> bool {
        let (Some((lo, hi)), Some(old)) = (st.same, st.recent.oldest()) else {
            return false;
        };
        let side = |x: u64| u8::from(x >= lo) + u8::from(x > hi);
        if side(d) != side(old) {
            return false;
        }
        st.recent.push(d, window);
        true
    }

    /// The order and period checks of a request with info `i` on the baseline channel `ch`.
    #[inline]
    fn request(&mut self, ev: &IcsEvent, key: &ChanId, ch: &Channel, i: u32, out: &mut Vec<Alert>) {
        let Some(info) = self.infos.get_mut(i as usize) else {
            return;
        };
        if let Some(pos) = info.cycle_pos {
            if let Some(chan) = self.chans.get_mut(info.chan as usize) {
                Timing::order(
                    &self.cfg,
                    &mut chan.st,
                    ev,
                    (|| info.sig.as_str(), pos),
                    ch.cycle.len(),
                    ch,
                    out,
                );
            }
        }
        if info.poll.and_then(|i| ch.polls.get(i)).is_none() {
            return;
        }
        let Some(si) = info.state.filter(|&i| i < self.states.len()) else {
            let ci = self.chans.get(info.chan as usize).and_then(|c| c.hot.ch);
            let i = self.states.len();
            info.state = Some(i);
            self.order.insert(
                ((key.client(), key.server(), key.proto()), info.sig.clone()),
                i,
            );
            self.order_stale = true;
            // The first poll pattern with this signature, as ticks look it up.
            let poll = ch
                .polls
                .iter()
                .position(|p| p.signature == info.sig)
                .and_then(|i| u32::try_from(i).ok());
            let quiet = ch
                .polls
                .get(poll.map_or(usize::MAX, |p| p as usize))
                .map_or(i64::MAX / 4, |p| quiet_us(stop_limit_ms(&self.cfg, p)));
            let t = ev.ts.as_micros().saturating_add(quiet);
            if let Ok(i) = u32::try_from(i) {
                self.due.push(t, i);
            }
            self.states.push((
                *key,
                info.sig.clone(),
                SigState {
                    last: ev.ts,
                    recent: Intervals::default(),
                    stopped: false,
                    period_reported: false,
                    client: ev.client,
                    server: ev.server,
                    unit: ev.unit_id,
                    kept: Kept::of(ev),
                    ch: ci,
                    poll,
                    stop_text: None,
                    quiet_us: quiet,
                    queued: u32::try_from(i).ok().map(|_| t),
                    med_ok: NO_MEDIAN,
                    med_bad: (None, None),
                    same: None,
                },
            ));
            return;
        };
        if let Ok(si) = u32::try_from(si) {
            self.poll_step(ev, si, i, ch, out);
        }
    }

    /// The period check of a request of poll state `si` (of info `i`, whose poll pattern is
    /// in `ch`): its interval since the last request, its due time and evidence kept.
    #[inline(always)]
    fn poll_step(&mut self, ev: &IcsEvent, si: u32, i: u32, ch: &Channel, out: &mut Vec<Alert>) {
        let Some((_, _, st)) = self.states.get_mut(si as usize) else {
            return;
        };
        let d = micros_between(ev.ts, st.last);
        st.last = ev.ts;
        // Its entry in `due` stays valid while it is not later than the new time (requests
        // in time order only move the time later); else (a request back in time, or a poll
        // that resumes) a new entry.
        let t = ev.ts.as_micros().saturating_add(st.quiet_us);
        if st.queued.is_none_or(|q| t < q) {
            st.queued = Some(t);
            self.due.push(t, si);
        }
        st.client = ev.client;
        st.server = ev.server;
        keep_for_evidence(&mut st.kept, ev);
        if st.stopped {
            // Polling resumed: start over, the gap is not a period.
            st.stopped = false;
            st.recent.clear();
            st.same = None;
            return;
        }
        #[cfg(test)]
        let repeat = !self.check_every_median && !self.no_poll_repeat;
        #[cfg(not(test))]
        let repeat = true;
        let window = self.cfg.period_window.max(1);
        if repeat && Timing::poll_repeat(st, d, window) {
            #[cfg(test)]
            {
                self.poll_repeats += 1;
            }
            return;
        }
        st.same = None;
        st.recent.push(d, window);
        if st.recent.len() < window {
            return;
        }
        #[cfg(test)]
        if self.check_every_median {
            st.med_ok = NO_MEDIAN;
            st.med_bad = (None, None);
        }
        if st.recent.median_in(st.med_ok.0, st.med_ok.1) {
            // Between two medians within the tolerance: within it.
            st.period_reported = false;
            st.same = Some(st.med_ok);
            return;
        }
        if st.period_reported {
            // Out of the tolerance (as a median found out of it on the same side), reported.
            if let Some(m) = st.med_bad.0.filter(|&m| st.recent.median_in(0, m)) {
                st.same = Some((0, m));
                return;
            }
            if let Some(m) = st.med_bad.1.filter(|&m| st.recent.median_in(m, u64::MAX)) {
                st.same = Some((m, u64::MAX));
                return;
            }
        }
        let p = self
            .infos
            .get(i as usize)
            .and_then(|info| info.poll)
            .and_then(|p| ch.polls.get(p));
        if let Some(p) = p {
            Timing::period_check(&self.cfg, st, ev, p, ch, &mut self.scratch, out);
        }
    }

    /// The median of a poll's full window of intervals against its pattern `p` (of the
    /// baseline channel `ch`), when no bound kept in its state tells where it lies.
    #[inline(never)]
    fn period_check(
        cfg: &TimingConfig,
        st: &mut SigState,
        ev: &IcsEvent,
        p: &crate::baseline::PollPattern,
        ch: &Channel,
        scratch: &mut Vec<u64>,
        out: &mut Vec<Alert>,
    ) {
        let med = st.recent.median(scratch);
        let med_ms = med as f64 / 1e3;
        let tol = (cfg.period_tolerance_frac * p.period_ms)
            .max(cfg.jitter_factor * p.jitter_ms)
            .max(cfg.period_min_tolerance_ms);
        let off = med_ms - p.period_ms;
        if off.abs() <= tol {
            st.med_ok = (st.med_ok.0.min(med), st.med_ok.1.max(med));
            st.period_reported = false;
            return;
        }
        // Out of the tolerance: so is every median further on the same side.
        if off < 0.0 {
            st.med_bad.0 = Some(st.med_bad.0.map_or(med, |m| m.max(med)));
        } else if off > 0.0 {
            st.med_bad.1 = Some(st.med_bad.1.map_or(med, |m| m.min(med)));
        }
        if st.period_reported {
            return;
        }
        st.period_reported = true;
        let explanation = format!(
            "{} now polls {} with \"{}\" every {} ms (median of the last {} requests); in the \
             baseline it came every {} ms with {} ms jitter. A polling period only changes \
             when the master is reconfigured, overloaded, or replaced by something else.",
            ev.client.ip,
            device_words(ev.server.ip, ev.unit_id),
            p.signature,
            fmt_num(med_ms.round()),
            st.recent.len(),
            fmt_num(p.period_ms.round()),
            fmt_num(p.jitter_ms.round()),
        );
        out.push(
            Alert::from_event(&POLL_PERIOD_CHANGED, ev, explanation, event_summary(ev)).with_fact(
                format!(
                    "period {} ms, jitter {} ms",
                    fmt_num(p.period_ms.round()),
                    fmt_num(p.jitter_ms.round())
                ),
                format!("{}.polls[{}]", ch.ref_name(), p.signature),
            ),
        );
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
    use crate::baseline::Learner;
    use crate::detect::testkit::*;
    use std::collections::BTreeSet;

    /// A 1 s cycle of two reads, 10 minutes.
    fn learnt() -> Baseline {
        let mut l = Learner::default();
        for i in 0..600i64 {
            let t = i * 1000 + (i * 37 % 21) - 10;
            l.observe(&read_hr(t, MASTER, PLC, 1, 0, &[1, 2]));
            l.observe(&read_coils(t + 15, MASTER, PLC, 1, 0, &[true]));
        }
        l.finish().unwrap()
    }

    fn run(evs: &[IcsEvent], ticks: &[i64]) -> Vec<Alert> {
        let b = learnt();
        let mut d = Timing::new(TimingConfig::default());
        let mut out = Vec::new();
        let mut ticks = ticks.iter().peekable();
        for e in evs {
            while let Some(t) = ticks.next_if(|t| ts_ms(**t) <= e.ts) {
                d.on_tick(ts_ms(*t), Some(&b), &mut out);
            }
            d.on_event(e, Some(&b), &mut out);
        }
        for t in ticks {
            d.on_tick(ts_ms(*t), Some(&b), &mut out);
        }
        out
    }

    fn normal(from_s: i64, to_s: i64, period_ms: i64) -> Vec<IcsEvent> {
        let mut v = Vec::new();
        let mut t = from_s * 1000;
        while t < to_s * 1000 {
            v.push(read_hr(t, MASTER, PLC, 1, 0, &[1, 2]));
            v.push(read_coils(t + 15, MASTER, PLC, 1, 0, &[true]));
            t += period_ms;
        }
        v
    }

    /// As [`run`], with each event's channel and request numbered as an engine numbers them,
    /// so that repeats take the memo path.
    fn run_numbered(evs: &[IcsEvent], ticks: &[i64]) -> Vec<Alert> {
        let b = learnt();
        let mut d = Timing::new(TimingConfig::default());
        let mut out = Vec::new();
        let mut ticks = ticks.iter().peekable();
        let mut chans: Vec<ChanId> = Vec::new();
        let mut reqs: Vec<(ChanId, super::super::novelty::ModSig)> = Vec::new();
        for e in evs {
            while let Some(t) = ticks.next_if(|t| ts_ms(**t) <= e.ts) {
                d.on_tick(ts_ms(*t), Some(&b), &mut out);
            }
            let mut ctx = EventCtx::of(e);
            let c = chans.iter().position(|k| *k == ctx.key).unwrap_or_else(|| {
                chans.push(ctx.key);
                chans.len() - 1
            });
            ctx.chan = Some(c as u32);
            if let Some(sig) = ctx.sig {
                let r = reqs
                    .iter()
                    .position(|x| *x == (ctx.key, sig))
                    .unwrap_or_else(|| {
                        reqs.push((ctx.key, sig));
                        reqs.len() - 1
                    });
                ctx.req = Some(r as u32);
            }
            d.on_event_ctx(e, &ctx, Some(&b), &mut out);
        }
        for t in ticks {
            d.on_tick(ts_ms(*t), Some(&b), &mut out);
        }
        out
    }

    /// The memo path (numbered requests) raises what the plain path raises: bursts, period
    /// and order changes, stops and resumes, on known and unknown channels.
    #[test]
    fn numbered_requests_give_the_same_alerts() {
        let mut streams = vec![
            (normal(700, 720, 400), vec![]),
            (normal(700, 750, 1000), vec![760_000, 761_000, 790_000]),
        ];
        let mut burst: Vec<IcsEvent> = (0..200)
            .map(|i| read_hr(700_000 + i * 10, MASTER, PLC, 1, 0, &[1, 2]))
            .collect();
        burst.extend((0..200).map(|i| read_hr(712_000 + i * 10, MASTER, PLC, 1, 0, &[1, 2])));
        burst.extend((0..50).map(|i| read_hr(700_000 + i * 10, "10.9.9.9", PLC, 1, 0, &[1])));
        streams.push((burst, vec![]));
        let mut swapped = Vec::new();
        for i in 0..20 {
            let t = 700_000 + i * 1000;
            swapped.push(read_coils(t, MASTER, PLC, 1, 0, &[true]));
            swapped.push(read_coils(t + 5, MASTER, PLC, 1, 0, &[true]));
            swapped.push(read_hr(t + 15, MASTER, PLC, 1, 0, &[1, 2]));
        }
        streams.push((swapped, vec![]));
        let mut resumed = normal(700, 710, 1000);
        resumed.extend(normal(730, 740, 1000));
        streams.push((resumed, vec![712_000, 725_000, 745_000]));
        let mut kinds = Vec::new();
        for (evs, ticks) in &streams {
            let plain = run(evs, ticks);
            let numbered = run_numbered(evs, ticks);
            assert_eq!(format!("{numbered:?}"), format!("{plain:?}"));
            kinds.extend(plain.iter().map(|a| a.otwatch.kind));
        }
        for k in [
            "traffic_burst",
            "poll_period_changed",
            "poll_order_changed",
            "poll_stopped",
        ] {
            assert!(kinds.contains(&k), "{k} in {kinds:?}");
        }
    }

    /// A Modbus read event dressed as an OPC UA PublishRequest.
    fn publish(ms: i64) -> IcsEvent {
        let mut e = read_hr(ms, MASTER, PLC, 1, 0, &[1]);
        e.proto = AppProto::Opcua;
        e.unit_id = None;
        e.function.code = OPCUA_PUBLISH_REQUEST;
        e.function.name = "PublishRequest";
        e.accesses.clear();
        e
    }

    #[test]
    fn tenths_is_fmt_num_of_tenths() {
        let mut cases: Vec<f64> = (0..20_000).map(|i| f64::from(i) * 0.37).collect();
        cases.extend([
            -0.4,
            -0.6,
            -3.0,
            -25.5,
            0.0,
            -0.0,
            0.05,
            0.049_999,
            0.5,
            9.5,
            99.95,
            1e8,
            1e9 - 0.6,
            1e9 - 0.4,
            1e9,
            1e9 + 0.5,
            3.7e12,
            1e300,
            f64::INFINITY,
            f64::NAN,
            f64::MAX,
        ]);
        let mut x = 7u64;
        for _ in 0..20_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            cases.push((x >> 11) as f64 / (1u64 << 53) as f64 * 2e9);
        }
        for t in cases {
            let mut s = String::from("x");
            push_tenths(&mut s, t);
            assert_eq!(s, format!("x{}", fmt_num(t.round() / 10.0)), "{t}");
        }
    }

    #[test]
    fn publish_requests_have_no_period() {
        let mut l = Learner::default();
        for i in 0..300i64 {
            l.observe(&publish(i * 1000));
        }
        let b = l.finish().unwrap();
        let mut d = Timing::new(TimingConfig::default());
        let mut out = Vec::new();
        // The data stops changing: Publish requests now come every 12 s (keep-alives).
        for i in 0..30i64 {
            d.on_event(&publish(1_000_000 + i * 12_000), Some(&b), &mut out);
            d.on_tick(ts_ms(1_000_000 + i * 12_000 + 6000), Some(&b), &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn learnt_model() {
        let b = learnt();
        let ch = &b.channels[0];
        assert_eq!(ch.polls.len(), 2);
        assert!(ch.polls.iter().all(|p| p.periodic));
        assert!(
            (ch.polls[0].period_ms - 1000.0).abs() < 25.0,
            "{:?}",
            ch.polls[0]
        );
        assert_eq!(ch.cycle.len(), 2);
    }

    #[test]
    fn steady_polling_is_silent() {
        let ticks: Vec<i64> = (700..800).map(|s| s * 1000).collect();
        assert!(run(&normal(700, 800, 1000), &ticks).is_empty());
    }

    #[test]
    fn stop_is_reported_once() {
        let ticks: Vec<i64> = (700..800).map(|s| s * 1000 + 500).collect();
        let out = run(&normal(700, 750, 1000), &ticks);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out.iter().all(|a| a.otwatch.kind == "poll_stopped"));
        assert!(out[0]
            .otwatch
            .explanation
            .starts_with("10.0.0.1 stopped polling 10.0.1.1 unit 1"));
        assert_eq!(out[0].timestamp, ts_ms(752_500));
    }

    #[test]
    fn a_flood_of_unknown_channels_stays_within_its_cap() {
        // Channels outside the baseline are remembered up to MAX_UNKNOWN_CHANS, the rest
        // counted; a baseline channel is still kept and checked after the flood.
        let b = learnt();
        let mut d = Timing::new(TimingConfig::default());
        let mut out = Vec::new();
        let n = MAX_UNKNOWN_CHANS as u32 + 500;
        for k in 0..n {
            let client = format!("10.9.{}.{}", k >> 8, k & 255);
            let ev = read_coils(700_000, &client, PLC, 1, 0, &[true]);
            d.on_event(&ev, Some(&b), &mut out);
            assert!(d.chans.len() <= MAX_UNKNOWN_CHANS);
        }
        assert_eq!(d.chans.len(), MAX_UNKNOWN_CHANS);
        assert_eq!(d.chans_uncached, 500);
        d.on_event(
            &read_coils(700_000, MASTER, PLC, 1, 0, &[true]),
            Some(&b),
            &mut out,
        );
        assert_eq!(d.chans.len(), MAX_UNKNOWN_CHANS + 1);
        assert!(d.chans.iter().any(|c| c.hot.ch.is_some()));
        assert_eq!(
            d.counters(),
            vec![("states_dropped", 0), ("chans_uncached", 500)]
        );
    }

    #[test]
    fn full_state_table_and_another_baseline() {
        // No room for poll states: stops and period changes go unseen, the order is still
        // checked, and every refused signature is counted.
        let b = learnt();
        let cfg = TimingConfig {
            max_states: 0,
            ..TimingConfig::default()
        };
        let mut d = Timing::new(cfg);
        let mut out = Vec::new();
        for i in 0..20 {
            let t = 700_000 + i * 1000;
            d.on_event(
                &read_coils(t, MASTER, PLC, 1, 0, &[true]),
                Some(&b),
                &mut out,
            );
            d.on_event(
                &read_coils(t + 5, MASTER, PLC, 1, 0, &[true]),
                Some(&b),
                &mut out,
            );
            d.on_event(
                &read_hr(t + 15, MASTER, PLC, 1, 0, &[1, 2]),
                Some(&b),
                &mut out,
            );
        }
        d.on_tick(ts_ms(900_000), Some(&b), &mut out);
        let kinds: Vec<_> = out.iter().map(|a| a.otwatch.kind).collect();
        assert_eq!(kinds, ["poll_order_changed"]);
        assert_eq!(d.states_dropped, 60);

        // States made under one baseline, ticked under another without the channel: silent.
        let mut d = Timing::new(TimingConfig::default());
        let mut out = Vec::new();
        for e in normal(700, 720, 1000) {
            d.on_event(&e, Some(&b), &mut out);
        }
        let mut l = Learner::default();
        for i in 0..600i64 {
            l.observe(&read_hr(i * 1000, ROGUE, PLC, 1, 0, &[1]));
        }
        let other = l.finish().unwrap();
        d.on_tick(ts_ms(800_000), Some(&other), &mut out);
        assert!(out.is_empty(), "{out:?}");
        // Back to the first: both polls stopped.
        d.on_tick(ts_ms(800_000), Some(&b), &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
    }

    #[test]
    fn evidence_of_a_stop_is_the_last_request() {
        let ticks: Vec<i64> = vec![760_000];
        let mut evs = normal(700, 750, 1000);
        // The last read has more values and accesses than the summary shows.
        if let Some(e) = evs.iter_mut().rev().find(|e| e.function.code == 3) {
            e.accesses[0].values = ints(&[1, 2, 3, 4, 5, 6]).into();
        }
        let last = evs
            .iter()
            .rev()
            .find(|e| e.function.code == 3)
            .unwrap()
            .clone();
        let out = run(&evs, &ticks);
        let stop = out
            .iter()
            .find(|a| a.otwatch.explanation.contains("holding_register"))
            .unwrap();
        assert_eq!(
            stop.otwatch.evidence[0].summary,
            event_summary(&last),
            "{stop:?}"
        );
        assert_eq!(stop.otwatch.evidence[0].packet, last.evidence.packet);
        let mut kept = Kept::of(&evs[0]);
        keep_for_evidence(&mut kept, &last);
        assert_eq!(kept.shape.summary(), event_summary(&last));
    }

    /// The evidence of what `keep_for_evidence` kept, its summary written as the alert's.
    fn kept_evidence(k: &Kept) -> AlertEvidence {
        k.evidence(k.shape.summary())
    }

    /// Keeping one event after another in the same copy gives what a fresh copy of the last
    /// one gives, whatever changed between them (objects of either kind, value kinds and
    /// counts, accesses, function, outcome).
    #[test]
    fn kept_evidence_equals_a_fresh_copy() {
        use crate::event::{AccessDir, Outcome};
        let base = read_hr(1000, MASTER, PLC, 1, 0, &[1, 2]);
        let objects = [
            ObjectRef::Modbus {
                table: ModbusTable::HoldingRegister,
                start: 0,
                count: 2,
            },
            ObjectRef::Modbus {
                table: ModbusTable::Coil,
                start: 7,
                count: 1,
            },
            ObjectRef::Node {
                node_id: "ns=2;s=A".into(),
                attribute: Some(13),
            },
            ObjectRef::Other { name: "x".into() },
        ];
        let values = [
            Value::Int(-3),
            Value::UInt(9),
            Value::Bool(true),
            Value::Float(0.5),
            Value::Str("s".into()),
            Value::Bytes(vec![1]),
            Value::Opaque("V"),
        ];
        let mut evs = Vec::new();
        for k in 0..60usize {
            let mut ev = base.clone();
            ev.ts = ts_ms(1000 + k as i64);
            ev.evidence.packet = k as u64;
            ev.function.code = (k % 3) as u32;
            ev.function.sub_name = (k % 5 == 0).then_some("sub");
            if k % 7 == 3 {
                ev.outcome = Outcome::Exception {
                    code: 2,
                    name: "illegal data address",
                };
            }
            ev.accesses = (0..(k * 5 % 7))
                .map(|i| Access {
                    dir: if i % 2 == 0 {
                        AccessDir::Read
                    } else {
                        AccessDir::Write
                    },
                    object: objects[(k / 3 + i) % objects.len()].clone(),
                    values: values
                        .iter()
                        .cycle()
                        .skip(k % 4 + i)
                        .take((k + i) % 8)
                        .cloned()
                        .collect(),
                })
                .collect();
            evs.push(ev);
        }
        // Runs of the repeat shape (one access to a Modbus range, the fast path) with values
        // of every kind and count, and ranges that change.
        for k in 0..120usize {
            let mut ev = base.clone();
            ev.ts = ts_ms(5000 + k as i64);
            ev.evidence.packet = 1000 + k as u64;
            ev.accesses[0].object = objects[usize::from(k % 11 == 5)].clone();
            if k % 13 == 4 {
                ev.accesses[0].dir = AccessDir::Write;
            }
            let n = if k % 9 < 6 { 4 } else { k % 9 };
            ev.accesses[0].values = values.iter().cycle().skip(k % 7).take(n).cloned().collect();
            if k % 17 == 16 {
                ev.accesses[0].object = objects[2].clone();
            }
            evs.push(ev);
        }
        // Runs of the in-line range shape: integers and booleans, counts 0 to 7, a
        // value not shown of another kind now and then, between the others above.
        for k in 0..120usize {
            let mut ev = base.clone();
            ev.ts = ts_ms(9000 + k as i64);
            ev.evidence.packet = 2000 + k as u64;
            ev.accesses[0].object = objects[usize::from(k % 5 == 2)].clone();
            ev.accesses[0].values = (0..k % 8)
                .map(|i| match (i + k) % 3 {
                    0 => Value::Bool(i % 2 == 0),
                    _ if i >= 4 && k % 4 == 1 => Value::Str("s".into()),
                    _ => Value::Int(i as i64 - k as i64),
                })
                .collect();
            let at = (k * 7) % evs.len();
            evs.insert(at, ev);
        }
        let (mut kept, mut ranges) = (Kept::of(&evs[0]), 0);
        for ev in &evs {
            keep_for_evidence(&mut kept, ev);
            let fresh = Kept::of(ev);
            assert_eq!(
                kept_evidence(&kept),
                AlertEvidence::from_event(ev, event_summary(ev))
            );
            assert_eq!(kept_evidence(&kept), kept_evidence(&fresh));
            match (&kept.shape, &fresh.shape) {
                (Shape::Event(k), Shape::Event(f)) => {
                    assert_eq!(k.accesses, f.accesses);
                    assert_eq!(k.function, f.function);
                    assert_eq!(k.outcome, f.outcome);
                }
                (Shape::Range(_), Shape::Range(_)) => ranges += 1,
                _ => panic!("{kept:?} kept, {fresh:?} fresh"),
            }
        }
        assert!(ranges > 40, "{ranges}");
    }

    /// The in-line range path of `keep_for_evidence` gives what the general path gives, on
    /// every pair of shapes (ranges with any number of values, and each reason to fall back:
    /// other outcomes, accesses, objects, protocols, values), and is taken for the ranges.
    #[test]
    fn kept_range_equals_the_general_path() {
        let mut evs = vec![
            read_hr(1000, MASTER, PLC, 1, 0, &[1, 2]),
            read_hr(1010, MASTER, PLC, 1, 0, &[3, 4]),
            read_hr(1020, MASTER, PLC, 1, 0, &[1, 2, 3, 4, 5, 6, 7]),
            read_hr(1030, MASTER, PLC, 1, 0, &[1, 2, 3, 4, 5]),
            read_hr(1040, MASTER, PLC, 1, 4, &[9]),
            read_coils(1050, MASTER, PLC, 1, 0, &[true, false]),
            read_coils(1060, MASTER, PLC, 1, 0, &[false, true]),
            write_hr(1070, MASTER, PLC, 1, 3, 7),
        ];
        let mut e = read_hr(1080, MASTER, PLC, 1, 0, &[5, 6]);
        e.outcome = crate::detect::testkit::exception(2);
        evs.push(e);
        let mut e = read_hr(1090, MASTER, PLC, 1, 0, &[5, 6]);
        e.evidence.file = std::sync::Arc::from("other.pcap");
        evs.push(e);
        let mut e = read_hr(1100, MASTER, PLC, 1, 0, &[5, 6]);
        e.accesses.push(e.accesses[0].clone());
        evs.push(e);
        let mut e = read_hr(1110, MASTER, PLC, 1, 0, &[5, 6]);
        e.accesses[0].object = ObjectRef::Other { name: "x".into() };
        evs.push(e);
        // Values past the four shown may be of any kind; one shown that is not a number.
        let mut e = read_hr(1115, MASTER, PLC, 1, 0, &[1, 2, 3, 4, 5]);
        e.accesses[0].values.list_mut()[4] = Value::Str("s".into());
        evs.push(e);
        let mut e = read_hr(1116, MASTER, PLC, 1, 0, &[1, 2, 3]);
        e.accesses[0].values.list_mut()[2] = Value::Float(0.5);
        evs.push(e);
        evs.push(publish(1120));
        let mut in_line = 0;
        for a in &evs {
            for b in &evs {
                let mut kept = Kept::of(a);
                if let Shape::Range(r) = &kept.shape {
                    in_line += usize::from(keep_range(&mut r.clone(), b));
                }
                keep_for_evidence(&mut kept, b);
                let general = Kept {
                    shape: Shape::Event(Box::new(evidence_copy(b))),
                    ..Kept::of(b)
                };
                assert_eq!(
                    kept_evidence(&kept),
                    kept_evidence(&general),
                    "{a:?} then {b:?}"
                );
                assert_eq!(kept.shape.summary(), event_summary(b));
            }
        }
        // Every pair of the ten ranges (the five reads, two coils, the write, the read from
        // another file, the one with a string past the shown values).
        assert_eq!(in_line, 10 * 10);
    }

    /// Several channels and signatures with their own periods, learnt for 10 minutes.
    fn learnt_plant() -> Baseline {
        let mut l = Learner::default();
        for i in 0..600i64 {
            for (k, &(m, p, period)) in plant().iter().enumerate() {
                let t = i * period + (i * 37 % 21) - 10 + k as i64;
                if t < 600_000 {
                    l.observe(&read_hr(t, m, p, 1, 0, &[1, 2]));
                    l.observe(&read_coils(t + 15, m, p, 1, 0, &[true]));
                    l.observe(&read_hr(t + 30, m, p, 2, 100, &[3]));
                }
            }
        }
        l.finish().unwrap()
    }

    fn plant() -> [(&'static str, &'static str, i64); 4] {
        [
            (MASTER, PLC, 1000),
            (MASTER, "10.0.1.2", 500),
            ("10.0.0.2", PLC, 2000),
            ("10.0.0.3", "10.0.1.3", 250),
        ]
    }

    /// Detection traffic with stops and restarts, requests out of time order, a channel and a
    /// signature the baseline does not have, and ticks at odd times (some between the events
    /// of one instant, some long after the last event).
    fn plant_traffic(seed: u64) -> (Vec<IcsEvent>, Vec<i64>) {
        let mut x = seed;
        let mut rnd = move |n: u64| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % n.max(1)
        };
        let mut evs = Vec::new();
        for (k, &(m, p, period)) in plant().iter().enumerate() {
            let mut t = 700_000 + k as i64 * 3;
            let mut off = false;
            while t < 760_000 {
                if rnd(40) == 0 {
                    off = !off;
                }
                if !off {
                    evs.push(read_hr(t, m, p, 1, 0, &[1, 2]));
                    evs.push(read_coils(t + 15, m, p, 1, 0, &[true]));
                    if rnd(3) != 0 {
                        evs.push(read_hr(t + 30, m, p, 2, 100, &[3]));
                    }
                    if rnd(50) == 0 {
                        evs.push(read_hr(t + 40, m, p, 7, 900, &[3]));
                    }
                }
                t += period + rnd(2 * period as u64 / 5) as i64 - period / 5;
            }
        }
        for i in 0..30 {
            evs.push(read_hr(705_000 + i * 900, ROGUE, PLC, 1, 0, &[1]));
        }
        evs.sort_by_key(|e| e.ts);
        // Some requests out of time order: swapped with the next, or repeated seconds late.
        for i in (1..evs.len()).step_by(17) {
            evs.swap(i - 1, i);
        }
        let mut late = Vec::with_capacity(evs.len() * 2);
        for (i, e) in evs.into_iter().enumerate() {
            if i % 23 == 5 {
                let mut old = e.clone();
                old.ts = Timestamp::from_micros(e.ts.as_micros() - 1000 * (500 + rnd(6000) as i64));
                late.push(e);
                late.push(old);
            } else {
                late.push(e);
            }
        }
        let evs = late;
        let mut ticks: Vec<i64> = (0..200).map(|_| 699_000 + rnd(80_000) as i64).collect();
        ticks.sort_unstable();
        (evs, ticks)
    }

    #[test]
    fn hinted_requests_give_the_same_alerts() {
        // The engine's hints (what was found of a request, kept in its memo) against the
        // general path, as an engine hands requests over: polls that stop and resume,
        // requests out of time order, an unknown channel and signature, floods, a function
        // name that changes (the hint does not hold for it), ticks under another baseline
        // now and then (the hints of the first no longer hold until it is back).
        let b = learnt_plant();
        let other = learnt();
        let mut kinds = BTreeSet::new();
        for seed in 0..4u64 {
            let (mut evs, ticks) = plant_traffic(seed);
            for (from, n) in [(765_000i64, 300i64), (774_000, 300)] {
                for k in 0..n {
                    evs.push(read_hr(from + k * 9, MASTER, PLC, 1, 0, &[1, 2]));
                }
            }
            for (n, e) in evs.iter_mut().enumerate() {
                if n % 41 == 7 {
                    e.function.name = "read_holding_registers_too";
                }
            }
            let run = |hinted: bool| {
                let mut d = Timing::new(TimingConfig::default()).deferring_texts();
                let mut out = Vec::new();
                let mut ticks = ticks.iter().peekable();
                let mut reqs: Vec<(ChanId, super::super::novelty::ModSig)> = Vec::new();
                let mut hints: Vec<Hint> = Vec::new();
                for (n, e) in evs.iter().enumerate() {
                    while let Some(t) = ticks.next_if(|t| ts_ms(**t) <= e.ts) {
                        let base = if seed >= 2 && n % 31 == 3 { &other } else { &b };
                        d.on_tick(ts_ms(*t), Some(base), &mut out);
                    }
                    let mut ctx = EventCtx::of(e);
                    ctx.req = ctx.sig.map(|sig| {
                        let k = (ctx.key, sig);
                        let r = reqs.iter().position(|x| *x == k).unwrap_or_else(|| {
                            reqs.push(k);
                            reqs.len() - 1
                        });
                        r as u32
                    });
                    match ctx.req.filter(|_| hinted) {
                        Some(r) => {
                            let r = r as usize;
                            if r >= hints.len() {
                                hints.resize(r + 1, NO_HINT);
                            }
                            d.on_hinted(e, &ctx, Some(&b), &mut hints[r], &mut out);
                        }
                        None => d.on_event_ctx(e, &ctx, Some(&b), &mut out),
                    }
                }
                for t in ticks {
                    d.on_tick(ts_ms(*t), Some(&b), &mut out);
                }
                d.on_tick(ts_ms(900_000), Some(&b), &mut out);
                out.iter_mut().for_each(Alert::resolve);
                let lines: Vec<String> = out.iter().map(Alert::to_json_line).collect();
                (lines, d.hint_hits, d.counters())
            };
            let (general, none, c1) = run(false);
            let (hinted, hits, c2) = run(true);
            assert_eq!(none, 0);
            assert!(
                hits > evs.len() as u64 / 2,
                "seed {seed}: {hits} of {}",
                evs.len()
            );
            assert_eq!(hinted, general, "seed {seed}");
            assert_eq!(c1, c2);
            kinds.extend(general.iter().filter_map(|l| {
                Some(
                    l.split("\"kind\":\"")
                        .nth(1)?
                        .split('"')
                        .next()?
                        .to_string(),
                )
            }));
        }
        for k in [
            "poll_stopped",
            "traffic_burst",
            "poll_period_changed",
            "poll_order_changed",
        ] {
            assert!(kinds.contains(k), "{k} in {kinds:?}");
        }
    }

    #[test]
    fn deferred_stop_words_are_the_eager_ones() {
        // Polls that stop and resume (some under another baseline now and then, IPv4 with
        // units), floods: the deferred poll-stopped and burst alerts, once resolved, are the
        // eager ones, whole; and an aggregator fed them unresolved emits what it emits fed the
        // eager ones (it writes the words of the alerts it emits), for several windows.
        use crate::detect::aggregate::Aggregator;
        let b = learnt_plant();
        let other = learnt();
        for seed in 0..4u64 {
            let (mut evs, ticks) = plant_traffic(seed);
            // Floods (bursts), in two 10-second buckets and in a later one.
            for (from, n) in [(765_000i64, 300i64), (774_000, 300), (790_000, 150)] {
                for k in 0..n {
                    evs.push(read_hr(from + k * 9, MASTER, PLC, 1, 0, &[1, 2]));
                }
            }
            let run = |defer: bool| {
                let mut d = Timing::new(TimingConfig::default());
                if defer {
                    d = d.deferring_texts();
                }
                let mut out = Vec::new();
                let mut ticks = ticks.iter().peekable();
                for (n, e) in evs.iter().enumerate() {
                    while let Some(t) = ticks.next_if(|t| ts_ms(**t) <= e.ts) {
                        let base = if seed == 3 && n % 97 == 3 { &other } else { &b };
                        d.on_tick(ts_ms(*t), Some(base), &mut out);
                    }
                    d.on_event(e, Some(&b), &mut out);
                }
                for t in ticks {
                    d.on_tick(ts_ms(*t), Some(&b), &mut out);
                }
                d.on_tick(ts_ms(900_000), Some(&b), &mut out);
                out
            };
            let eager = run(false);
            let deferred = run(true);
            let kind = |k: &str| eager.iter().filter(|a| a.otwatch.kind == k).count();
            assert!(kind("poll_stopped") >= 8, "seed {seed}");
            assert!(kind("traffic_burst") >= 2, "seed {seed}");
            assert!(eager.iter().all(|a| a.deferred.is_none()));
            assert_eq!(
                deferred.iter().filter(|a| a.deferred.is_some()).count(),
                kind("poll_stopped") + kind("traffic_burst")
            );
            for window in [0u64, 1, 5, 300] {
                let agg = |alerts: &[Alert]| {
                    let mut g = Aggregator::new(window);
                    let mut out = Vec::new();
                    for a in alerts {
                        g.push(a.clone(), &mut out);
                    }
                    g.finish(&mut out);
                    out.iter().map(Alert::to_json_line).collect::<Vec<_>>()
                };
                assert_eq!(agg(&deferred), agg(&eager), "seed {seed} window {window}");
            }
            let mut resolved = deferred;
            resolved.iter_mut().for_each(Alert::resolve);
            assert_eq!(resolved, eager, "seed {seed}");
        }
    }

    #[test]
    fn due_states_are_those_a_walk_finds() {
        let b = learnt_plant();
        let mut other = Learner::default();
        for i in 0..600i64 {
            other.observe(&read_hr(i * 1000, MASTER, PLC, 1, 0, &[1, 2]));
        }
        let other = other.finish().unwrap();
        for seed in 0..6u64 {
            let (evs, ticks) = plant_traffic(seed);
            let run = |walk_all: bool| {
                let mut d = Timing::new(TimingConfig {
                    // Seed 5: the state table fills up.
                    max_states: if seed == 5 { 7 } else { 65_536 },
                    // Seed 4: some polls are always due.
                    stop_min_ms: if seed == 4 { -1.0 } else { 2000.0 },
                    ..TimingConfig::default()
                });
                d.walk_all = walk_all;
                let mut out = Vec::new();
                let mut ticks = ticks.iter().peekable();
                for (n, e) in evs.iter().enumerate() {
                    while let Some(t) = ticks.next_if(|t| ts_ms(**t) <= e.ts) {
                        // Now and then under another baseline.
                        let base = if n % 97 == 3 { &other } else { &b };
                        d.on_tick(ts_ms(*t), Some(base), &mut out);
                    }
                    d.on_event(e, Some(&b), &mut out);
                }
                for t in ticks {
                    d.on_tick(ts_ms(*t), Some(&b), &mut out);
                }
                d.on_tick(ts_ms(900_000), Some(&b), &mut out);
                out.iter().map(Alert::to_json_line).collect::<Vec<_>>()
            };
            let slow = run(true);
            assert!(
                slow.iter().filter(|a| a.contains("poll_stopped")).count() >= 8,
                "{seed}: {slow:?}"
            );
            assert_eq!(run(false), slow, "seed {seed}");
        }
    }

    #[test]
    fn medians_between_two_within_tolerance_need_no_check() {
        // Polls whose period drifts out of the tolerance and back, with jitter, stops, and a
        // change of baseline: the same alerts with every median checked.
        let b = learnt_plant();
        let other = learnt();
        for seed in 0..4u64 {
            let (mut evs, ticks) = plant_traffic(seed);
            let mut t = 770_000;
            for k in 0..240i64 {
                // 1 s, then slower and slower, then back to 1 s, then faster, then back.
                let period = match k {
                    0..=59 => 1000 + k * 15,
                    60..=119 => 1000,
                    120..=179 => 1000 - (k - 120) * 8 + (k % 3) * 40,
                    _ => 1000,
                };
                t += period + (k * 37 % 21) - 10;
                evs.push(read_hr(t, MASTER, PLC, 1, 0, &[1, 2]));
                evs.push(read_coils(t + 15, MASTER, PLC, 1, 0, &[true]));
            }
            let run = |every: bool| {
                let mut d = Timing::new(TimingConfig::default());
                d.check_every_median = every;
                let mut out = Vec::new();
                let mut ticks = ticks.iter().peekable();
                for (n, e) in evs.iter().enumerate() {
                    while let Some(t) = ticks.next_if(|t| ts_ms(**t) <= e.ts) {
                        d.on_tick(ts_ms(*t), Some(&b), &mut out);
                    }
                    let base = if n % 401 == 7 { &other } else { &b };
                    d.on_event(e, Some(base), &mut out);
                }
                out.iter().map(Alert::to_json_line).collect::<Vec<_>>()
            };
            let slow = run(true);
            assert!(
                slow.iter().any(|a| a.contains("poll_period_changed")),
                "seed {seed}"
            );
            assert_eq!(run(false), slow, "seed {seed}");
        }
    }

    #[test]
    fn poll_repeats_take_the_exit_of_the_general_check() {
        // Polls drifting out of the tolerance (reported, staying out on either side) and back,
        // intervals on the very bounds of the exits, stops and resumes, requests back in time,
        // a change of baseline, windows of 1, 3 and 8: the same alerts and poll states as
        // with every interval through the general check.
        let b = learnt_plant();
        let other = learnt();
        for (seed, window) in [(0u64, 8usize), (1, 8), (2, 3), (3, 1), (4, 8)] {
            let (mut evs, ticks) = plant_traffic(seed);
            let mut t = 770_000;
            for k in 0..400i64 {
                let period = match k {
                    0..=59 => 1000 + k * 15,
                    60..=119 => 1900 + (k % 4) * 30,
                    120..=179 => 1000,
                    180..=259 => 600 - (k % 5) * 20,
                    260..=299 => 1000 + (k % 2) * 250,
                    _ => 1000 + (k * 37 % 41) - 20,
                };
                t += period;
                if seed == 4 && k % 97 == 50 {
                    // A stop (found at a tick) and a resume.
                    t += 20_000;
                }
                evs.push(read_hr(t, MASTER, PLC, 1, 0, &[1, 2]));
                evs.push(read_coils(t + 15, MASTER, PLC, 1, 0, &[true]));
            }
            let mut ticks = ticks;
            ticks.extend((770..1300).map(|s| s * 1000));
            ticks.sort_unstable();
            let run = |general: bool| {
                let cfg = TimingConfig {
                    period_window: window,
                    ..TimingConfig::default()
                };
                let mut d = Timing::new(cfg);
                d.no_poll_repeat = general;
                let mut out = Vec::new();
                let mut ticks = ticks.iter().peekable();
                for (n, e) in evs.iter().enumerate() {
                    while let Some(t) = ticks.next_if(|t| ts_ms(**t) <= e.ts) {
                        d.on_tick(ts_ms(*t), Some(&b), &mut out);
                    }
                    let base = if seed == 1 && n % 401 == 7 {
                        &other
                    } else {
                        &b
                    };
                    d.on_event(e, Some(base), &mut out);
                }
                let states: Vec<_> = d
                    .states
                    .iter()
                    .map(|(_, sig, st)| {
                        (
                            sig.clone(),
                            st.last,
                            st.stopped,
                            st.period_reported,
                            st.recent.ring.clone(),
                            st.recent.head,
                            st.recent.sorted_now(),
                            st.med_ok,
                            st.med_bad,
                            st.queued,
                        )
                    })
                    .collect();
                let lines = out.iter().map(Alert::to_json_line).collect::<Vec<_>>();
                (lines, format!("{states:?}"), d.poll_repeats)
            };
            let (slow, slow_states, none) = run(true);
            assert_eq!(none, 0);
            assert!(
                slow.iter().any(|a| a.contains("poll_period_changed")),
                "seed {seed}"
            );
            let (fast, fast_states, repeats) = run(false);
            assert!(repeats > 100, "seed {seed}: {repeats}");
            assert_eq!(fast, slow, "seed {seed}");
            assert_eq!(fast_states, slow_states, "seed {seed}");
        }
    }

    /// An OPC UA read of `n` nodes from `node` on.
    fn opc_read(ms: i64, node: u32, n: u32) -> IcsEvent {
        let mut e = read_hr(ms, MASTER, PLC, 1, 0, &[1]);
        e.proto = AppProto::Opcua;
        e.unit_id = None;
        e.function.code = 631;
        e.function.name = "ReadRequest";
        e.accesses = (0..n)
            .map(|k| Access {
                dir: crate::event::AccessDir::Read,
                object: ObjectRef::Node {
                    node_id: format!("ns=2;s=Tag{}", node + k),
                    attribute: Some(13),
                },
                values: vec![Value::Int(i64::from(k))].into(),
            })
            .collect();
        e
    }

    #[test]
    fn named_requests_remembered_change_no_alert() {
        // More other requests per channel than a channel remembers, in a cycle that stops,
        // changes order and period: the same alerts as when each is found by its key.
        let reqs = |i: i64| -> Vec<(u32, u32)> {
            (0..20u32)
                .map(|k| {
                    let extra = i >= 700 && i % 7 == 3 && k == 5;
                    (k * 3, 1 + u32::from(k % 4 == 0) + u32::from(extra))
                })
                .collect()
        };
        let mut l = Learner::default();
        for i in 0..600i64 {
            for (k, &(node, n)) in reqs(i).iter().enumerate() {
                l.observe(&opc_read(i * 1000 + k as i64 * 10, node, n));
            }
        }
        let b = l.finish().unwrap();
        let mut evs = Vec::new();
        for i in 700..800i64 {
            if (730..740).contains(&i) {
                continue;
            }
            let mut r = reqs(i);
            if i % 9 == 0 {
                r.swap(2, 3);
            }
            let period = if (760..775).contains(&i) { 1600 } else { 1000 };
            for (k, &(node, n)) in r.iter().enumerate() {
                evs.push(opc_read(
                    700_000 + (i - 700) * period + k as i64 * 10,
                    node,
                    n,
                ));
            }
        }
        // Publish requests in between (bursts only; a burst of them once), some of them
        // under another function name.
        let mut publish = Vec::new();
        for (n, e) in evs.iter().enumerate() {
            let copies = match n {
                300..=319 => 60,
                _ if n % 3 == 0 => 1,
                _ => 0,
            };
            for _ in 0..copies {
                let mut p = opc_read(0, (n % 4) as u32, 1 + (n % 2) as u32);
                p.ts = e.ts;
                p.function.code = OPCUA_PUBLISH_REQUEST;
                p.function.name = if n % 11 == 0 { "Publish2" } else { "Publish" };
                publish.push(p);
            }
        }
        evs.extend(publish);
        evs.sort_by_key(|e| e.ts);
        // `numbered`: requests numbered as the engine numbers named ones (channel, function
        // code, unit and objects; one in five without a number).
        let run = |no_memo: bool, numbered: bool| {
            let mut d = Timing::new(TimingConfig::default());
            d.no_named_memo = no_memo;
            let mut out = Vec::new();
            let mut reqs: Vec<(u32, Vec<ObjectRef>)> = Vec::new();
            for (n, e) in evs.iter().enumerate() {
                if n % 50 == 0 {
                    d.on_tick(e.ts, Some(&b), &mut out);
                }
                let mut ctx = EventCtx::of(e);
                if numbered {
                    let k = (
                        e.function.code,
                        e.accesses.iter().map(|a| a.object.clone()).collect(),
                    );
                    let rank = reqs.iter().position(|x| *x == k).unwrap_or_else(|| {
                        reqs.push(k);
                        reqs.len() - 1
                    });
                    ctx.req = (rank % 5 != 4).then(|| u32::try_from(rank).unwrap());
                }
                d.on_event_ctx(e, &ctx, Some(&b), &mut out);
            }
            d.on_tick(ts_ms(900_000), Some(&b), &mut out);
            let memos = [MEMO_BURST, 0].map(|x| {
                d.req_memo
                    .iter()
                    .filter(|m| (m.info == MEMO_BURST) == (x == MEMO_BURST) && m.info < MEMO_SKIP)
                    .count()
            });
            (
                (
                    out.iter().map(Alert::to_json_line).collect::<Vec<_>>(),
                    d.infos.len(),
                ),
                memos,
            )
        };
        let ((slow, infos), _) = run(true, false);
        for k in [
            "poll_stopped",
            "poll_order_changed",
            "poll_period_changed",
            "traffic_burst",
        ] {
            assert!(slow.iter().any(|a| a.contains(k)), "{k} missing");
        }
        assert!(infos > MAX_CHAN_NAMED, "{infos}");
        assert_eq!(run(false, false).0, (slow.clone(), infos));
        let (numbered, [bursts, others]) = run(false, true);
        assert_eq!(numbered, (slow.clone(), infos));
        // Publish requests and others remembered by their numbers.
        assert!(bursts >= 2 && others > 10, "{bursts} {others}");
        assert_eq!(run(true, true).0, (slow, infos));
    }

    #[test]
    fn buckets_without_division_are_those_of_a_division() {
        let mut x = 21u64;
        // One cache line.
        assert_eq!(std::mem::size_of::<ChanHot>(), 64);
        let mut fast = ChanHot::default();
        let (mut bucket, mut count): (Option<i64>, u64) = (None, 0);
        let mut secs: i64 = 1_700_000_000;
        for step in 0..20_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            secs = match (x >> 33) % 50 {
                0 => secs.saturating_sub(((x >> 40) % 30) as i64),
                1 => [i64::MIN, i64::MIN + 9, i64::MAX, i64::MAX - 7, -1, 0, 9, 10][step % 8],
                2 => secs.saturating_add(((x >> 20) % 1000) as i64),
                _ => secs.saturating_add(((x >> 40) % 3) as i64),
            };
            let b = secs.div_euclid(10);
            if bucket != Some(b) {
                bucket = Some(b);
                count = 0;
            }
            count += 1;
            fast.count_in_bucket(secs);
            assert_eq!((fast.bucket, fast.count), (bucket, count), "{secs}");
        }
    }

    #[test]
    fn due_queue_takes_what_a_heap_pops() {
        // Against a heap popped while its top is before the tick: the same entries, for ticks
        // forward, back in time and far apart, times in the past, far away or negative.
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut x = 5u64;
        let mut rnd = move |n: u64| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (x >> 20) % n.max(1)
        };
        for round in 0..40 {
            let mut q = DueQueue::default();
            let mut heap: BinaryHeap<Reverse<(i64, u32)>> = BinaryHeap::new();
            let mut now: i64 = 1_700_000_000_000_000 + rnd(1 << 30) as i64;
            for step in 0..3000u32 {
                match rnd(10) {
                    0..=5 => {
                        let t = match rnd(12) {
                            0 => now - rnd(5_000_000) as i64,
                            1 => now + 100_000_000 + rnd(1 << 34) as i64,
                            2 => i64::MAX / 4 + now,
                            3 if round % 5 == 0 => i64::MIN / 4 + now,
                            4 if round % 7 == 0 => -(rnd(1 << 30) as i64),
                            _ => now + rnd(8_000_000) as i64,
                        };
                        q.push(t, step);
                        heap.push(Reverse((t, step)));
                    }
                    6 if round % 3 == 0 => {
                        q.clear();
                        heap.clear();
                    }
                    _ => {
                        now = match rnd(20) {
                            0 => now - rnd(3_000_000) as i64,
                            1 => now + rnd(200_000_000) as i64,
                            _ => now + rnd(1_500_000) as i64,
                        };
                        let mut want = Vec::new();
                        while let Some(&Reverse((t, i))) = heap.peek() {
                            if t >= now {
                                break;
                            }
                            heap.pop();
                            want.push((t, i));
                        }
                        let mut got = Vec::new();
                        q.take_before(now, |t, i| got.push((t, i)));
                        want.sort_unstable();
                        got.sort_unstable();
                        assert_eq!(got, want, "round {round} step {step}");
                        let mut left: Vec<_> = q.slots.iter().flatten().copied().collect();
                        left.extend(q.far.iter().copied());
                        assert_eq!(left.len(), heap.len());
                        assert_eq!(q.in_slots, q.slots.iter().map(Vec::len).sum::<usize>());
                    }
                }
            }
        }
    }

    #[test]
    fn micros_between_is_micros_since() {
        let mut x = 9u64;
        let mut rnd = move || {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            x >> 11
        };
        let base = [
            Timestamp::new(1_700_000_000, 0),
            Timestamp::new(0, 0),
            Timestamp::new(-5, 999_999_999),
            Timestamp::new(i64::MAX, 999_999_999),
            Timestamp::new(i64::MIN, 0),
        ];
        for a in base {
            for _ in 0..3000 {
                let r = rnd();
                let secs = match r % 4 {
                    0 => a.secs.saturating_add((r >> 8) as i64 % 5),
                    1 => a.secs.saturating_sub((r >> 8) as i64 % 3),
                    2 => a.secs.saturating_add(((r >> 8) % (1 << 40)) as i64),
                    _ => (r >> 2) as i64 * if r % 8 == 3 { -1 } else { 1 },
                };
                let b = Timestamp::new(secs, (rnd() % 1_000_000_000) as u32);
                assert_eq!(micros_between(b, a), b.micros_since(a), "{b:?} {a:?}");
                assert_eq!(micros_between(a, b), a.micros_since(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn order_window_in_a_word_equals_a_queue() {
        let mut x = 3u64;
        for window in [1usize, 2, 3, 10, 63, 64] {
            let (mut bits, mut queue) = (ChanState::default(), ChanState::default());
            for step in 0..3000 {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let ok = (x >> 30) % if step % 400 < 200 { 2 } else { 9 } != 0;
                let a = bits.push_order(ok, window, true);
                let b = queue.push_order(ok, window, false);
                assert_eq!((a, bits.bad), (b, queue.bad), "window {window} step {step}");
            }
        }
        // Alerts with the default window, which fits in a word.
        assert!(TimingConfig::default().order_window <= 64);
    }

    #[test]
    fn intervals_equal_a_window_sorted_anew() {
        // Against the window kept as a queue and sorted at each step: the same intervals, in
        // order, the same median, and `median_in` as the sorted median says, for any window
        // (ties, repeats, a window of one) and bounds (empty, one point, open on either side,
        // on the intervals themselves).
        let mut x = 11u64;
        for window in [1usize, 2, 3, 8, 9] {
            let mut fast = Intervals::default();
            let mut slow: VecDeque<u64> = VecDeque::new();
            for step in 0..2000 {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let d = (x >> 40) % if step % 7 == 0 { 3 } else { 1000 };
                if step % 500 == 499 {
                    fast.clear();
                    slow.clear();
                }
                fast.push(d, window);
                slow.push_back(d);
                while slow.len() > window {
                    slow.pop_front();
                }
                let mut sorted: Vec<u64> = slow.iter().copied().collect();
                sorted.sort_unstable();
                assert_eq!(fast.sorted_now(), sorted, "window {window} step {step}");
                assert_eq!(fast.len(), slow.len());
                if fast.len() == window {
                    assert_eq!(fast.oldest(), slow.front().copied());
                }
                let med = median(&sorted) as u64;
                assert_eq!(fast.median(&mut Vec::new()), med);
                let (a, b) = ((x >> 20) % 1000, (x >> 30) % 1000);
                for (lo, hi) in [
                    (a, b),
                    (a.min(b), a.max(b)),
                    (med, med),
                    (0, a),
                    (a, u64::MAX),
                    (d, d),
                    (d, u64::MAX),
                    (0, d),
                    NO_MEDIAN,
                ] {
                    assert_eq!(
                        fast.median_in(lo, hi),
                        lo <= med && med <= hi,
                        "window {window} step {step} [{lo}, {hi}]"
                    );
                }
            }
        }
        assert!(!Intervals::default().median_in(0, u64::MAX));
    }

    #[test]
    fn what_a_poll_request_touches_is_in_few_lines_of_its_state() {
        // The fields every request of a poll reads or writes (up to the kept request) end
        // within the first five cache lines of its state, in the lines its comment gives.
        use std::mem::{offset_of, size_of};
        let end = |at: usize, size: usize| at + size;
        assert_eq!(std::mem::align_of::<SigState>(), 64);
        assert!(end(offset_of!(SigState, same), size_of::<Option<(u64, u64)>>()) <= 64);
        assert!(offset_of!(SigState, recent) >= 64);
        assert!(end(offset_of!(SigState, unit), size_of::<Option<u8>>()) <= 128);
        assert!(end(offset_of!(SigState, client), size_of::<Endpoint>()) <= 128);
        assert!(offset_of!(SigState, server) < offset_of!(SigState, kept));
        assert!(end(offset_of!(SigState, kept), size_of::<Kept>()) <= 5 * 64);
        // A channel's order state (but the queue of long windows) is in one line.
        assert_eq!(std::mem::align_of::<Chan>(), 64);
        let st = offset_of!(Chan, st);
        assert!(st % 64 + offset_of!(ChanState, order) <= 64, "{st}");
    }

    #[test]
    fn sorted_window_median() {
        let mut d = Timing::new(TimingConfig::default());
        let b = learnt();
        let mut out = Vec::new();
        // Irregular intervals around 1 s: the median stays within tolerance.
        let mut t = 700_000;
        for i in 0..40 {
            t += [990, 1010, 400, 1600, 1000][i % 5];
            d.on_event(&read_hr(t, MASTER, PLC, 1, 0, &[1, 2]), Some(&b), &mut out);
            d.on_event(
                &read_coils(t + 15, MASTER, PLC, 1, 0, &[true]),
                Some(&b),
                &mut out,
            );
        }
        assert!(out.is_empty(), "{out:?}");
        for (_, _, st) in &mut d.states {
            let mut r: Vec<u64> = st.recent.ring.clone();
            r.sort_unstable();
            assert_eq!(r, st.recent.sorted_now());
            assert_eq!(st.recent.median(&mut Vec::new()), median(&r) as u64);
        }
    }

    #[test]
    fn period_change_and_burst_and_order() {
        let out = run(&normal(700, 720, 400), &[]);
        let kinds: Vec<_> = out.iter().map(|a| a.otwatch.kind).collect();
        assert_eq!(kinds, ["poll_period_changed", "poll_period_changed"]);
        assert!(out[0].otwatch.explanation.contains("every 400 ms"));

        let burst: Vec<IcsEvent> = (0..200)
            .map(|i| read_hr(700_000 + i * 10, MASTER, PLC, 1, 0, &[1, 2]))
            .collect();
        let out = run(&burst, &[]);
        assert!(
            out.iter().any(|a| a.otwatch.kind == "traffic_burst"),
            "{out:?}"
        );

        let mut swapped = Vec::new();
        for i in 0..20 {
            let t = 700_000 + i * 1000;
            swapped.push(read_coils(t, MASTER, PLC, 1, 0, &[true]));
            swapped.push(read_coils(t + 5, MASTER, PLC, 1, 0, &[true]));
            swapped.push(read_hr(t + 15, MASTER, PLC, 1, 0, &[1, 2]));
        }
        let out = run(&swapped, &[]);
        assert!(
            out.iter().any(|a| a.otwatch.kind == "poll_order_changed"),
            "{out:?}"
        );
    }
}
