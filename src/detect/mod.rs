//! Detection: deterministic detectors over [`IcsEvent`]s, with or without a [`Baseline`], and
//! the [`Engine`] that runs them and aggregates their alerts.
//!
//! One module per family, each with its own tests:
//! [`violations`] (protocol violations reported by the parsers, no baseline needed),
//! [`novelty`] (new asset, channel, unit id, function, object; a write to something only
//! ever read), [`values`] (values outside their profile, frozen or jumping process values),
//! [`timing`] (a poll that stops, changes period or order; bursts above the learned rate) and
//! [`scans`] (function-code and unit-id scans, address sweeps, exception bursts; no baseline
//! needed). Every threshold is a named field of [`DetectConfig`] with a default chosen to give
//! no alert on steady periodic polling (see the synthetic-plant tests).
//!
//! Machine learning: [`ml`] is one more [`Detector`], which [`Engine::new`] adds when the
//! baseline holds a model; it sets `otwatch.score` and `otwatch.ml` on the alerts it raises
//! and uses the `ml` detector name.
//!
//! Determinism: detectors read time only from events (ticks are driven by event time), run in a
//! fixed order, and iterate only ordered state (`BTreeMap`s, sorted lists) into alerts; hash maps
//! (keyed by Copy channel and request keys, fast seeded hasher) serve lookups only. The same
//! events always give the same alerts in the same order, with or without [`Engine::parallel`].
//!
//! Speed: on the common path (a known channel repeating a known request) each detector does one
//! hash lookup into its per-channel state and remembers what it already found known; values are
//! checked against per-block profiles compiled once per channel and request.

pub mod aggregate;
pub mod ml;
pub mod novelty;
mod parallel;
pub mod scans;
pub mod timing;
pub mod values;
pub mod violations;

#[cfg(test)]
mod plant_tests;
#[cfg(test)]
pub(crate) mod testkit;

use crate::alert::attack::*;
use crate::alert::Alert;
use crate::baseline::Baseline;
use crate::event::{AccessDir, AppProto, IcsEvent, ModbusTable, ObjectRef, OpKind, Outcome};
use crate::flow::hash::KeyHashBuilder;
use crate::time::Timestamp;
use aggregate::Aggregator;
use novelty::{ChanId, KnownNamed, ModSig};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// What the engine works out of an event once for all its detectors: the channel, its
/// number in this engine, and the Modbus request signature.
#[derive(Clone, Copy, Debug, Default)]
pub struct EventCtx {
    /// The event's channel.
    pub(crate) key: ChanId,
    /// The channel's number in the engine (`None`: not numbered, the table was full, or no
    /// engine): the same channel always has the same number in one engine.
    pub(crate) chan: Option<u32>,
    /// [`ModSig::of`] the event.
    pub(crate) sig: Option<ModSig>,
    /// The request's number in the engine (`None`: no `sig` and not a named request, the
    /// channel has no number, or its list of requests is full): the same channel and `sig`
    /// always have the same number in one engine, different ones different numbers, so that
    /// detectors can keep what they found of a request in a vector. Named requests (OPC UA,
    /// no `sig`) are numbered too: the same number stands for the same channel, function
    /// (code, sub-function, unit) and accessed objects with their directions, in order.
    pub(crate) req: Option<u32>,
}

impl EventCtx {
    /// The context of an event outside an engine (no channel number).
    #[inline]
    pub(crate) fn of(ev: &IcsEvent) -> Self {
        EventCtx {
            key: ChanId::of(ev),
            chan: None,
            sig: ModSig::of(ev),
            req: None,
        }
    }
}

/// What decides whether a detector can act on an event (see [`Detector::acts_on`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventKind {
    /// The protocol.
    pub proto: crate::event::AppProto,
    /// The function code (Modbus) or service (OPC UA).
    pub code: u32,
    /// The outcome is [`crate::event::Outcome::Ok`].
    pub ok: bool,
    /// The event has protocol violations.
    pub violations: bool,
}

impl EventKind {
    /// The kind of an event.
    #[inline]
    pub fn of(ev: &IcsEvent) -> Self {
        EventKind {
            proto: ev.proto,
            code: ev.function.code,
            ok: matches!(ev.outcome, crate::event::Outcome::Ok),
            violations: !ev.violations.is_empty(),
        }
    }

    /// Index in [`Engine`]'s table of detector masks (Modbus codes below 256), else `None`.
    #[inline]
    fn slot(&self) -> Option<usize> {
        (self.proto == crate::event::AppProto::Modbus && self.code < 256).then_some(
            ((self.code as usize) << 2)
                | (usize::from(self.ok) << 1)
                | usize::from(self.violations),
        )
    }
}

/// A placeholder kind (for an empty cache entry).
const NO_KIND: EventKind = EventKind {
    proto: AppProto::Modbus,
    code: 0,
    ok: false,
    violations: false,
};

/// Entries of the engine's table of detector masks (Modbus kinds).
const MASK_SLOTS: usize = 256 << 2;

/// Most other kinds whose detector mask the engine remembers.
const MAX_OTHER_KINDS: usize = 64;

/// Most detectors that the engine skips for kinds they do not act on (beyond, every
/// detector sees every event).
const MAX_MASKED_DETECTORS: usize = 31;

/// A mask with every detector (and the bit that marks a mask as worked out).
const MASK_KNOWN: u32 = 1 << 31;

/// Most requests numbered per channel (see [`EventCtx::req`]).
const MAX_CHAN_REQS: usize = 64;

/// Most requests an engine numbers (a plant: a few hundred channels with a few dozen
/// requests each; every detector keeps a few words per number).
const MAX_REQS: u32 = 1 << 18;

/// A short list of keys with values, looked up after the last hit first: a channel's
/// requests come back in the same polling cycle, so the next lookup is usually one compare.
#[derive(Debug)]
pub(crate) struct CycleMap<K, V> {
    items: Vec<(K, V)>,
    /// Where to look first.
    next: usize,
}

impl<K, V> Default for CycleMap<K, V> {
    fn default() -> Self {
        CycleMap {
            items: Vec::new(),
            next: 0,
        }
    }
}

impl<K: PartialEq, V: Copy> CycleMap<K, V> {
    /// The value of `k`, when listed.
    #[inline]
    pub(crate) fn find(&mut self, k: &K) -> Option<V> {
        let i = match self.items.get(self.next) {
            Some((x, _)) if x == k => self.next,
            _ => self.items.iter().position(|(x, _)| x == k)?,
        };
        self.next = if i + 1 < self.items.len() { i + 1 } else { 0 };
        self.items.get(i).map(|&(_, v)| v)
    }

    /// Lists `k` with `v` while fewer than `cap` are listed; false when full (not listed).
    pub(crate) fn push_within(&mut self, cap: usize, k: K, v: V) -> bool {
        if self.items.len() >= cap {
            return false;
        }
        // Most lists hold one entry (one request per channel): a first push would reserve
        // room for four.
        if self.items.capacity() == 0 {
            self.items.reserve_exact(1);
        }
        self.items.push((k, v));
        true
    }

    /// How many are listed.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Forgets every entry (keeps the room).
    pub(crate) fn clear(&mut self) {
        self.items.clear();
        self.next = 0;
    }
}

/// The requests of one channel with their numbers.
type ChanReqs = CycleMap<ModSig, u32>;

/// The named requests (OPC UA: nodes) of one channel, with their numbers (by their index in
/// the list).
#[derive(Debug, Default)]
struct NamedReqs {
    known: KnownNamed,
    nums: Vec<u32>,
}

/// Most objects of named requests the engine keeps to number them (all channels together;
/// each a few dozen bytes). Beyond, new named requests get no number (their detectors look
/// them up themselves, as before).
const MAX_NAMED_REQ_OBJECTS: usize = 1 << 14;

/// Whether the engine numbers the request of `ev` as a named one: an OPC UA event whose
/// accesses (at least one) name no Modbus objects.
#[inline]
fn is_named(ev: &IcsEvent) -> bool {
    ev.proto == AppProto::Opcua
        && !ev.accesses.is_empty()
        && !ev
            .accesses
            .iter()
            .any(|a| matches!(a.object, ObjectRef::Modbus { .. }))
}

/// Most channels an engine numbers (beyond: detectors look them up themselves, with the
/// same result). A plant has a few hundred; each number costs the engine about 130 bytes
/// (its hash entry and request list) and every detector a slot.
const MAX_NUMBERED_CHANNELS: usize = 4_096;

/// No [`Engine::pair_mask`]: no mask of detectors is all ones (the top bit is
/// [`MASK_KNOWN`]'s).
const NO_PAIR: u32 = u32::MAX;

/// Entries of the engine's memo of recent channel numbers, by flow.
const FLOW_MEMO: usize = 1024;

/// No slot (in [`ChanSlots`]' number table).
const NO_SLOT: u32 = u32::MAX;

/// Bits of the index of the engine's memo of prepared requests ([`ReqMemo`]).
const REQ_MEMO_BITS: u32 = 11;

/// Entries of the engine's memo of prepared requests (a few hundred bytes each, made on the
/// first request prepared).
const REQ_MEMO: usize = 1 << REQ_MEMO_BITS;

/// What the engine prepared for a request seen on a flow: the fields of the event that fix
/// its channel and request signature (checked against every event that lands on the entry),
/// and what they gave: the detectors that act on the request when it ends normally without
/// violations (and the [`EventCtx`], in [`Engine::memo_ctx`] at the same index). A repeat
/// of the request is found with one index and a few compares instead of the channel and
/// request lookups, the kind and its mask. What a repeat reads is in two cache lines: the
/// fields compared and the detectors in the first, the hints in the second (the context is
/// read only by the detectors' general paths).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct ReqMemo {
    /// The flow (it picks the entry; with the addresses it keeps one entry per flow).
    flow_id: u64,
    /// The client's IPv4 address (only requests between IPv4 addresses are memoized).
    client: u32,
    /// The server's IPv4 address.
    server: u32,
    /// The function code.
    code: u32,
    /// The first address of the one access.
    start: u32,
    /// The number of objects of the one access.
    count: u32,
    /// The sub-function.
    sub: Option<u16>,
    /// The unit id.
    unit: Option<u8>,
    /// The table of the one access.
    table: ModbusTable,
    /// The direction of the one access.
    dir: AccessDir,
    /// The detectors that act on the request's kind (with [`MASK_KNOWN`]); 0: no entry.
    mask: u32,
    /// Those of `mask` (without [`MASK_KNOWN`]) not idle on the request, as of `gen` ...
    run: u32,
    /// ... and those of them to ask whether they are idle on it after the event.
    ask: u32,
    /// The engine's [`Engine::idle_gen`] when `run` and `ask` were worked out: they hold
    /// while it is the same (no detector went idle on any request since), and for good once
    /// `ask` is empty (only detectors that may go idle do, and `run` has none).
    gen: u32,
    /// What the detectors found of the request.
    hints: MemoHints,
}

/// What values and timing found of a prepared request, in a cache line of its own.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct MemoHints {
    /// What values found (see [`values::Values::on_hinted`]) ...
    values: values::Hint,
    /// ... and timing (see [`timing::Timing::on_hinted`]).
    timing: timing::Hint,
}

/// An empty entry of the memo.
const NO_MEMO: ReqMemo = ReqMemo {
    flow_id: 0,
    client: 0,
    server: 0,
    code: 0,
    start: 0,
    count: 0,
    sub: None,
    unit: None,
    table: ModbusTable::Coil,
    dir: AccessDir::Read,
    mask: 0,
    run: 0,
    ask: 0,
    gen: 0,
    hints: MemoHints {
        values: values::NO_HINT,
        timing: timing::NO_HINT,
    },
};

/// An empty context (of an empty memo entry).
const NO_CTX: EventCtx = EventCtx {
    key: ChanId::EMPTY,
    chan: None,
    sig: None,
    req: None,
};

/// The one Modbus range access of a Modbus event that ended normally without violations:
/// the only events whose requests the engine memoizes (when both addresses are IPv4).
#[inline(always)]
fn memo_access(ev: &IcsEvent) -> Option<(&crate::event::Access, ModbusTable, u32, u32)> {
    if ev.proto != AppProto::Modbus
        || !matches!(ev.outcome, Outcome::Ok)
        || !ev.violations.is_empty()
    {
        return None;
    }
    let [a] = ev.accesses.as_slice() else {
        return None;
    };
    match a.object {
        ObjectRef::Modbus {
            table,
            start,
            count,
        } => Some((a, table, start, count)),
        _ => None,
    }
}

/// An IPv4 address as one word, its bytes as they are in memory (no byte swap: the memo
/// only compares it).
#[inline(always)]
fn v4_word(a: std::net::Ipv4Addr) -> u32 {
    u32::from_ne_bytes(a.octets())
}

/// The memo entry of a flow's request (its function code and first address).
#[inline(always)]
fn memo_slot(flow_id: u64, start: u32, code: u32) -> usize {
    let h = (flow_id ^ (u64::from(start) << 24) ^ (u64::from(code) << 48))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> (64 - REQ_MEMO_BITS)) as usize
}

/// A detector's per-channel values, found by the engine's channel number when there is one
/// (an index into a vector), else by a hash lookup of the channel.
#[derive(Debug)]
pub(crate) struct ChanSlots<T> {
    index: HashMap<ChanId, u32, KeyHashBuilder>,
    /// Engine channel number → slot, [`NO_SLOT`] when not known yet.
    by_num: Vec<u32>,
    slots: Vec<(ChanId, T)>,
}

impl<T> Default for ChanSlots<T> {
    fn default() -> Self {
        ChanSlots {
            index: HashMap::default(),
            by_num: Vec::new(),
            slots: Vec::new(),
        }
    }
}

impl<T> ChanSlots<T> {
    /// The slot of the event's channel, if it has one.
    #[inline]
    pub(crate) fn find(&mut self, ctx: &EventCtx) -> Option<u32> {
        if let Some(n) = ctx.chan {
            if let Some(&s) = self.by_num.get(n as usize) {
                if s != NO_SLOT {
                    return Some(s);
                }
            }
        }
        self.find_slow(ctx)
    }

    #[inline(never)]
    fn find_slow(&mut self, ctx: &EventCtx) -> Option<u32> {
        let s = *self.index.get(&ctx.key)?;
        self.remember(ctx, s);
        Some(s)
    }

    fn remember(&mut self, ctx: &EventCtx, s: u32) {
        if let Some(n) = ctx.chan.map(|n| n as usize) {
            if n >= self.by_num.len() {
                self.by_num.resize(n + 1, NO_SLOT);
            }
            if let Some(x) = self.by_num.get_mut(n) {
                *x = s;
            }
        }
    }

    /// Adds a slot for the event's channel (which has none); its index (`None` only past
    /// `u32::MAX` slots: not added).
    pub(crate) fn insert(&mut self, ctx: &EventCtx, v: T) -> Option<u32> {
        let s = u32::try_from(self.slots.len())
            .ok()
            .filter(|&s| s != NO_SLOT)?;
        self.slots.push((ctx.key, v));
        self.index.insert(ctx.key, s);
        self.remember(ctx, s);
        Some(s)
    }

    /// Slot `s`.
    #[inline]
    pub(crate) fn get_mut(&mut self, s: u32) -> Option<&mut T> {
        self.slots.get_mut(s as usize).map(|(_, v)| v)
    }

    /// Slots in.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Every slot with its channel (in the order they were added).
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&ChanId, &mut T)> {
        self.slots.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// Forgets every slot.
    pub(crate) fn clear(&mut self) {
        self.index.clear();
        self.by_num.clear();
        self.slots.clear();
    }
}

/// A detector: looks at each event, and at ticks of the capture clock. Detectors are `Send`
/// so that [`Engine::parallel`] can run them on threads of their own.
pub trait Detector: Send {
    /// Short stable name (`novelty`, `timing`, …).
    fn name(&self) -> &'static str;
    /// Looks at one event; pushes any alerts to `out`.
    fn on_event(&mut self, ev: &IcsEvent, baseline: Option<&Baseline>, out: &mut Vec<Alert>);
    /// Whether the detector can act on events of `kind` (raise an alert or change its state);
    /// the engine asks once per kind and does not hand it events of the kinds it answered
    /// no for. The answer must stay the same for the detector's life. By default: every kind.
    fn acts_on(&self, _kind: &EventKind) -> bool {
        true
    }
    /// Whether [`Detector::idle_on`] can ever be true (asked once, with `acts_on`).
    fn can_idle(&self) -> bool {
        false
    }
    /// Whether the detector does nothing, from now on, for events that repeat the request of
    /// `ctx` (same `EventCtx::req`) and ended normally ([`crate::event::Outcome::Ok`]):
    /// asked right after it saw such an event; once it answered yes, the engine no longer
    /// hands it those events.
    fn idle_on(&self, _ctx: &EventCtx) -> bool {
        false
    }
    /// Called as capture time passes (at most once per tick interval, and at the end), for
    /// checks that fire on absence, like a poll that stopped.
    fn on_tick(&mut self, _now: Timestamp, _baseline: Option<&Baseline>, _out: &mut Vec<Alert>) {}
    /// Counters worth reporting (caps hit, work left undone), as `(name, count)`; names ending
    /// in `dropped` count checks a cap made the detector skip.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
    /// As [`Detector::on_event`], with what the engine worked out of the event once for all
    /// detectors ([`EventCtx`]); by default just `on_event`.
    fn on_event_ctx(
        &mut self,
        ev: &IcsEvent,
        _ctx: &EventCtx,
        baseline: Option<&Baseline>,
        out: &mut Vec<Alert>,
    ) {
        self.on_event(ev, baseline, out);
    }
}

/// A detector of an engine: values and timing by their type (called directly, without a
/// virtual call, and on a prepared request through their fast entries), any other behind
/// the trait.
enum Slot {
    /// The values detector.
    Values(Box<values::Values>),
    /// The timing detector.
    Timing(Box<timing::Timing>),
    /// Any other detector.
    Other(Box<dyn Detector>),
}

impl Slot {
    /// The detector.
    fn get(&self) -> &dyn Detector {
        match self {
            Slot::Values(v) => &**v,
            Slot::Timing(t) => &**t,
            Slot::Other(d) => &**d,
        }
    }

    /// The detector, to change.
    fn get_mut(&mut self) -> &mut dyn Detector {
        match self {
            Slot::Values(v) => &mut **v,
            Slot::Timing(t) => &mut **t,
            Slot::Other(d) => &mut **d,
        }
    }

    /// The detector, boxed (for [`Engine::parallel`]).
    fn into_box(self) -> Box<dyn Detector> {
        match self {
            Slot::Values(v) => v,
            Slot::Timing(t) => t,
            Slot::Other(d) => d,
        }
    }

    /// [`Detector::on_event_ctx`], called directly for values and timing.
    #[inline(always)]
    fn on_event_ctx(
        &mut self,
        ev: &IcsEvent,
        ctx: &EventCtx,
        baseline: Option<&Baseline>,
        out: &mut Vec<Alert>,
    ) {
        match self {
            Slot::Values(v) => v.on_event_ctx(ev, ctx, baseline, out),
            Slot::Timing(t) => t.on_event_ctx(ev, ctx, baseline, out),
            Slot::Other(d) => d.on_event_ctx(ev, ctx, baseline, out),
        }
    }
}

/// The words of a raw alert left to write (see [`Alert::resolve`]): what they need.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Words {
    /// A read-out-of-range alert's (see [`values::ReadText`]).
    Read(values::ReadText),
    /// A poll-stopped alert's (see [`timing::StopWords`]).
    Stop(timing::StopWords),
    /// A burst alert's (see [`timing::BurstWords`]).
    Burst(timing::BurstWords),
}

impl Words {
    /// Writes the summaries left to write of `evidence`, the evidence of the alert this was
    /// taken from (a poll-stopped alert's, see [`timing::StopWords::fill_evidence`]).
    #[inline]
    pub(crate) fn fill_evidence(&mut self, evidence: &mut [crate::alert::AlertEvidence]) {
        if let Words::Stop(s) = self {
            s.fill_evidence(evidence);
        }
    }

    /// Writes the words of `a`, the alert this was taken from.
    #[cold]
    pub(crate) fn fill(&self, a: &mut Alert) {
        match self {
            Words::Read(r) => r.fill(a),
            Words::Stop(s) => s.fill(a),
            Words::Burst(s) => s.fill(a),
        }
    }
}

/// All detection thresholds.
#[derive(Clone, Debug)]
pub struct DetectConfig {
    /// Capture-time interval between ticks, milliseconds.
    pub tick_interval_ms: u64,
    /// Aggregation window, capture seconds (see [`aggregate`]); 0 emits every alert.
    pub aggregate_window_s: u64,
    /// Novelty thresholds.
    pub novelty: novelty::NoveltyConfig,
    /// Value thresholds.
    pub values: values::ValuesConfig,
    /// Timing thresholds.
    pub timing: timing::TimingConfig,
    /// Scan thresholds.
    pub scans: scans::ScanConfig,
    /// Machine-learning detector settings (it runs only when the baseline has a model).
    pub ml: ml::MlDetectConfig,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            tick_interval_ms: 1000,
            aggregate_window_s: 300,
            novelty: novelty::NoveltyConfig::default(),
            values: values::ValuesConfig::default(),
            timing: timing::TimingConfig::default(),
            scans: scans::ScanConfig::default(),
            ml: ml::MlDetectConfig::default(),
        }
    }
}

/// Runs the detectors over events and aggregates their alerts.
///
/// ```
/// use otwatch::detect::{DetectConfig, Engine};
/// let mut engine = Engine::new(None, DetectConfig::default());
/// let mut alerts = Vec::new();
/// // for ev in events { engine.on_event(&ev, &mut alerts); }
/// engine.finish(&mut alerts);
/// assert!(alerts.is_empty());
/// ```
pub struct Engine {
    baseline: Option<Arc<Baseline>>,
    detectors: Vec<Slot>,
    /// The detectors on threads of their own, once [`Engine::parallel`] moved them there.
    pool: Option<parallel::Pool>,
    agg: Aggregator,
    tick_us: u64,
    last_tick: Option<Timestamp>,
    /// When the next tick is due, in nanoseconds: `tick_us` after `last_tick` (before the
    /// first tick, the least `i128`).
    next_tick_ns: i128,
    /// `next_tick_ns` in whole seconds, rounded down: a time of fewer seconds (and less than
    /// a second of nanoseconds) is before it, with no 128-bit arithmetic.
    next_tick_secs: i64,
    now: Option<Timestamp>,
    raw: Vec<Alert>,
    /// The context of the event being run, built in place (see [`Engine::fill_ctx`]).
    cur: EventCtx,
    /// Channel numbers given (see [`EventCtx`]), at most [`MAX_NUMBERED_CHANNELS`].
    chan_numbers: HashMap<ChanId, u32, KeyHashBuilder>,
    /// Recently numbered channels, at the slot of their event's flow id (checked against
    /// the channel, so a wrong guess only misses): most events need no hash lookup.
    flow_memo: Vec<Option<(ChanId, u32)>>,
    /// The requests of each numbered channel (see [`EventCtx::req`]).
    chan_reqs: Vec<ChanReqs>,
    /// By channel number: the index of its named requests in `named` ([`NO_SLOT`]: none).
    named_of: Vec<u32>,
    /// The named requests of channels (see [`is_named`]).
    named: Vec<NamedReqs>,
    /// Objects kept in `named` (at most [`MAX_NAMED_REQ_OBJECTS`]).
    named_objects: usize,
    /// Prepared requests by flow and request ([`ReqMemo`]; empty until the first).
    req_memo: Vec<ReqMemo>,
    /// The context of each entry of `req_memo` (channel and request numbered), apart: a
    /// repeat reads it only on a detector's general path.
    memo_ctx: Vec<EventCtx>,
    /// Events run through the memo of prepared requests.
    #[cfg(test)]
    memo_hits: u64,
    /// No memo of prepared requests (the reference the memo is tested against).
    #[cfg(test)]
    memo_off: bool,
    /// Applied to memo indices (tests: few entries, many collisions).
    #[cfg(test)]
    memo_mask: usize,
    /// Memo hits call every detector's `on_event_ctx` (no hints: the reference the hints
    /// are tested against).
    #[cfg(test)]
    hints_off: bool,
    /// Requests numbered.
    reqs: u32,
    /// Which detectors act on each Modbus event kind ([`MASK_KNOWN`] set once worked out).
    masks: Vec<u32>,
    /// The same for other kinds (at most [`MAX_OTHER_KINDS`]).
    other_masks: Vec<(EventKind, u32)>,
    /// The last other kind looked up with its mask (0: none), checked before `other_masks`.
    last_other: (EventKind, u32),
    /// The detectors that may become idle on a request (see [`Detector::idle_on`]).
    may_idle: u32,
    /// By request number: the detectors idle on it (for events that ended normally).
    req_idle: Vec<u32>,
    /// Changes whenever a detector goes idle on a request (see [`ReqMemo::gen`]).
    idle_gen: u32,
    /// The slot of values when timing is in the next one (as [`Engine::new`] puts them) and
    /// they can be masked; a memo hit that runs exactly these two calls them without a loop
    /// (both found with one bounds check).
    pair: Option<usize>,
    /// The detectors of `pair`, one bit each ([`NO_PAIR`] without one).
    pair_mask: u32,
    /// Raw alerts raised by the detectors (before aggregation).
    pub raised: u64,
    /// Events whose channel got no number because the table was full (their detectors look
    /// the channel up themselves: no check is skipped).
    pub channels_unnumbered: u64,
    /// Events whose request got no number because its channel's list or the engine's table
    /// was full (their detectors look the request up themselves: no check is skipped).
    pub requests_unnumbered: u64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field(
                "detectors",
                &self
                    .detectors
                    .iter()
                    .map(|d| d.get().name())
                    .collect::<Vec<_>>(),
            )
            .field("threads", &self.pool.as_ref().map_or(0, |p| p.threads()))
            .field("raised", &self.raised)
            .finish()
    }
}

impl Engine {
    /// An engine with the five standard detectors, plus the [`ml`] detector when the baseline
    /// has a model and `cfg.ml.enabled`. Without a baseline only the baseline-free checks
    /// (violations, scans) raise alerts.
    pub fn new(baseline: Option<Baseline>, cfg: DetectConfig) -> Self {
        let mut detectors = vec![
            Slot::Other(Box::new(violations::Violations)),
            Slot::Other(Box::new(novelty::Novelty::new(cfg.novelty.clone()))),
            Slot::Values(Box::new(
                values::Values::new(cfg.values.clone()).deferring_read_texts(),
            )),
            Slot::Timing(Box::new(
                timing::Timing::new(cfg.timing.clone()).deferring_texts(),
            )),
            Slot::Other(Box::new(scans::Scans::new(cfg.scans.clone()))),
        ];
        if cfg.ml.enabled && baseline.as_ref().is_some_and(|b| b.ml.is_some()) {
            detectors.push(Slot::Other(Box::new(ml::MlDetector::new(cfg.ml.clone()))));
        }
        let mut e = Engine {
            baseline: baseline.map(Arc::new),
            detectors,
            pool: None,
            agg: Aggregator::new(cfg.aggregate_window_s),
            tick_us: cfg.tick_interval_ms.saturating_mul(1000).max(1),
            last_tick: None,
            next_tick_ns: i128::MIN,
            next_tick_secs: i64::MIN,
            now: None,
            raw: Vec::new(),
            cur: EventCtx::default(),
            chan_numbers: HashMap::default(),
            flow_memo: vec![None; FLOW_MEMO],
            chan_reqs: Vec::new(),
            named_of: Vec::new(),
            named: Vec::new(),
            named_objects: 0,
            req_memo: Vec::new(),
            memo_ctx: Vec::new(),
            #[cfg(test)]
            memo_hits: 0,
            #[cfg(test)]
            memo_off: false,
            #[cfg(test)]
            memo_mask: REQ_MEMO - 1,
            #[cfg(test)]
            hints_off: false,
            reqs: 0,
            masks: vec![0; MASK_SLOTS],
            other_masks: Vec::new(),
            last_other: (NO_KIND, 0),
            may_idle: 0,
            req_idle: Vec::new(),
            idle_gen: 0,
            pair: None,
            pair_mask: NO_PAIR,
            raised: 0,
            channels_unnumbered: 0,
            requests_unnumbered: 0,
        };
        e.may_idle = e.idle_mask();
        e.find_pair();
        e
    }

    /// Adds a detector (e.g. a machine-learning scorer); it runs after the standard ones.
    /// Detectors added after [`Engine::parallel`] run on the calling thread, after the others
    /// (their alerts then come before those of the threads for the same event).
    pub fn add_detector(&mut self, d: Box<dyn Detector>) {
        self.detectors.push(Slot::Other(d));
        // The masks are worked out again for the new set of detectors.
        self.masks.iter_mut().for_each(|m| *m = 0);
        self.other_masks.clear();
        self.last_other.1 = 0;
        self.may_idle = self.idle_mask();
        self.find_pair();
        self.req_idle.clear();
        self.req_memo.clear();
        self.memo_ctx.clear();
    }

    /// Finds the slots of values and timing (see [`Engine::pair`]).
    fn find_pair(&mut self) {
        let at = |f: fn(&Slot) -> bool| self.detectors.iter().position(f);
        let v = at(|d| matches!(d, Slot::Values(_)));
        let t = at(|d| matches!(d, Slot::Timing(_)));
        (self.pair, self.pair_mask) = match (v, t) {
            (Some(v), Some(t)) if t == v + 1 && self.detectors.len() <= MAX_MASKED_DETECTORS => {
                (Some(v), (1 << v) | (1 << t))
            }
            _ => (None, NO_PAIR),
        };
    }

    /// The detectors that may become idle on a request, one bit each.
    fn idle_mask(&self) -> u32 {
        if self.detectors.len() > MAX_MASKED_DETECTORS {
            return 0;
        }
        self.detectors
            .iter()
            .enumerate()
            .filter(|(_, d)| d.get().can_idle())
            .fold(0, |m, (i, _)| m | (1 << i))
    }

    /// The detectors that act on events of `kind`, one bit each (every bit when there are
    /// too many detectors to mask).
    #[inline]
    fn mask(&mut self, kind: &EventKind) -> u32 {
        match kind.slot().and_then(|i| self.masks.get(i)) {
            Some(&m) if m != 0 => m,
            None if self.last_other.1 != 0 && self.last_other.0 == *kind => self.last_other.1,
            _ => self.mask_slow(kind),
        }
    }

    #[cold]
    fn mask_slow(&mut self, kind: &EventKind) -> u32 {
        if let Some(&(_, m)) = self.other_masks.iter().find(|(k, _)| k == kind) {
            self.last_other = (*kind, m);
            return m;
        }
        let m = if self.detectors.len() > MAX_MASKED_DETECTORS {
            u32::MAX
        } else {
            self.detectors
                .iter()
                .enumerate()
                .filter(|(_, d)| d.get().acts_on(kind))
                .fold(MASK_KNOWN, |m, (i, _)| m | (1 << i))
        };
        match kind.slot().and_then(|i| self.masks.get_mut(i)) {
            Some(x) => *x = m,
            None if self.other_masks.len() < MAX_OTHER_KINDS => self.other_masks.push((*kind, m)),
            None => {}
        }
        if kind.slot().is_none() {
            self.last_other = (*kind, m);
        }
        m
    }

    /// Moves the detectors onto `threads` threads of their own (nothing changes for fewer
    /// than 2), in groups of about equal cost; events go to them in batches and their alerts
    /// are merged back into exactly the order one thread gives, so the output is the same. The
    /// price is latency: the alerts of an event come out up to one batch of events later (all
    /// of them at [`Engine::finish`]). Call it after the last [`Engine::add_detector`].
    pub fn parallel(mut self, threads: usize) -> Self {
        if threads >= 2 && self.pool.is_none() && self.detectors.len() >= 2 {
            let detectors = std::mem::take(&mut self.detectors)
                .into_iter()
                .map(Slot::into_box)
                .collect();
            self.masks.iter_mut().for_each(|m| *m = 0);
            self.other_masks.clear();
            self.last_other.1 = 0;
            self.may_idle = 0;
            self.req_idle.clear();
            self.req_memo.clear();
            self.memo_ctx.clear();
            self.find_pair();
            self.pool = Some(parallel::Pool::new(
                detectors,
                threads,
                self.baseline.clone(),
            ));
        }
        self
    }

    /// The baseline in use.
    pub fn baseline(&self) -> Option<&Baseline> {
        self.baseline.as_deref()
    }

    /// Alerts suppressed as repeats so far.
    pub fn suppressed(&self) -> u64 {
        self.agg.suppressed
    }

    /// The run's counters, as `(name, count)`: raw alerts raised and suppressed as repeats,
    /// then each detector's own (`values.states_dropped`, …). With [`Engine::parallel`] the
    /// detectors' counters are known only after [`Engine::finish`].
    pub fn counters(&self) -> Vec<(String, u64)> {
        let mut v = vec![
            ("raised".to_string(), self.raised),
            ("suppressed".to_string(), self.agg.suppressed),
            (
                "aggregate.episodes_closed_early".to_string(),
                self.agg.episodes_closed_early,
            ),
        ];
        if let Some(pool) = &self.pool {
            for (_, d, c, n) in pool.counters() {
                v.push((format!("{d}.{c}"), *n));
            }
        }
        for d in self.detectors.iter().map(Slot::get) {
            for (c, n) in d.counters() {
                v.push((format!("{}.{c}", d.name()), n));
            }
        }
        v
    }

    fn tick(&mut self, now: Timestamp) {
        for d in &mut self.detectors {
            d.get_mut()
                .on_tick(now, self.baseline.as_deref(), &mut self.raw);
        }
    }

    #[inline]
    fn drain(&mut self, out: &mut Vec<Alert>) {
        if self.raw.is_empty() {
            // Most events raise nothing.
            return;
        }
        self.raised += self.raw.len() as u64;
        for a in self.raw.drain(..) {
            self.agg.push(a, out);
        }
    }

    /// Runs every detector on one event; emitted alerts are appended to `out` (after
    /// [`Engine::parallel`], those of earlier events as their batch completes).
    pub fn on_event(&mut self, ev: &IcsEvent, out: &mut Vec<Alert>) {
        if self.pool.is_some() {
            self.on_event_owned(ev.clone(), out);
        } else {
            self.run(ev, out);
        }
    }

    /// As [`Engine::on_event`], for an event the caller gives away: after
    /// [`Engine::parallel`] it moves into a batch instead of being copied.
    pub fn on_event_owned(&mut self, ev: IcsEvent, out: &mut Vec<Alert>) {
        if self.pool.is_none() {
            return self.run(&ev, out);
        }
        let due = self.clock(ev.ts);
        let now = self.now.unwrap_or(ev.ts);
        if !self.detectors.is_empty() {
            // Detectors added after `parallel` run here, in the same tick schedule.
            if due {
                self.tick(now);
            }
            for d in &mut self.detectors {
                d.get_mut()
                    .on_event(&ev, self.baseline.as_deref(), &mut self.raw);
            }
            self.drain(out);
        }
        if let Some(pool) = self.pool.as_mut() {
            pool.push(ev, due.then_some(now), &mut self.agg, &mut self.raised, out);
        }
    }

    /// Advances the capture clock to `ts`; whether a tick is due (and records it): at least
    /// `tick_us` microseconds passed since the last tick.
    #[inline]
    fn clock(&mut self, ts: Timestamp) -> bool {
        if ts.secs < self.next_tick_secs && ts.nanos < 1_000_000_000 {
            // Before the next tick (the common case), told by the seconds; so is the clock
            // (always before the next tick once it has ticked), whichever is later.
            if let Some(n) = self.now.as_mut() {
                if ts > *n {
                    *n = ts;
                }
            }
            return false;
        }
        let now = match self.now {
            Some(n) if n >= ts => n,
            _ => ts,
        };
        self.now = Some(now);
        // Before the first tick `next_tick_ns` is the least there is.
        if now.as_nanos() >= self.next_tick_ns {
            let due = self.last_tick.is_some();
            self.set_tick(now);
            return due;
        }
        false
    }

    /// Records a tick at `now` and when the next one is due: `now.micros_since(last) >=
    /// tick_us` holds exactly from `last + tick_us` on (whole microseconds of a positive
    /// difference in nanoseconds, `tick_us` ≥ 1).
    #[cold]
    fn set_tick(&mut self, now: Timestamp) {
        self.last_tick = Some(now);
        self.next_tick_ns = now.as_nanos() + i128::from(self.tick_us) * 1000;
        self.next_tick_secs = i64::try_from(self.next_tick_ns.div_euclid(1_000_000_000)).unwrap_or(
            if self.next_tick_ns < 0 {
                i64::MIN
            } else {
                i64::MAX
            },
        );
    }

    /// The detectors on this thread, on one event: a repeat of a prepared request through
    /// its memo entry ([`Engine::run_memo`]), any other event through the channel and request
    /// lookups (which prepare the request for its next repeat).
    fn run(&mut self, ev: &IcsEvent, out: &mut Vec<Alert>) {
        let due = self.clock(ev.ts);
        if due {
            let now = self.now.unwrap_or(ev.ts);
            self.tick(now);
            self.drain(out);
            self.agg.flush_expired(now, out);
        }
        if let Some(i) = self.memo_hit(ev) {
            #[cfg(test)]
            {
                self.memo_hits += 1;
            }
            return self.run_memo(ev, i, out);
        }
        self.fill_ctx(ev);
        if self.detectors.len() > MAX_MASKED_DETECTORS {
            for d in &mut self.detectors {
                d.on_event_ctx(ev, &self.cur, self.baseline.as_deref(), &mut self.raw);
            }
            return self.drain(out);
        }
        let kind = EventKind::of(ev);
        let known = self.mask(&kind);
        let ctx = &self.cur;
        // A request that ended normally: not the detectors idle on it; the others that may
        // become idle are asked after it.
        let (mask, ask) = match (kind.ok, ctx.req) {
            (true, Some(r)) => self.not_idle(known, r),
            _ => (known & !MASK_KNOWN, 0),
        };
        if kind.ok && !kind.violations {
            self.memo_store(ev, known, mask, ask);
        }
        let ctx = &self.cur;
        call_detectors(
            &mut self.detectors,
            ev,
            ctx,
            self.baseline.as_deref(),
            &mut self.raw,
            mask,
        );
        if ask != 0 {
            let ctx = *ctx;
            self.ask_idle(&ctx, ask);
        }
        self.drain(out);
    }

    /// The memo entry of a repeat of a prepared request (see [`ReqMemo`]), if the event is
    /// one: every field that fixes its channel and request signature equal to the entry's.
    #[inline(always)]
    fn memo_hit(&self, ev: &IcsEvent) -> Option<usize> {
        #[cfg(test)]
        if self.memo_off {
            return None;
        }
        let (a, table, start, count) = memo_access(ev)?;
        let i = self.memo_index(ev.flow_id, start, ev.function.code);
        let m = self.req_memo.get(i)?;
        (m.mask != 0
            && m.flow_id == ev.flow_id
            && m.start == start
            && m.code == ev.function.code
            && m.count == count
            && m.table == table
            && m.dir == a.dir
            && m.sub == ev.function.sub
            && m.unit == ev.unit_id
            && matches!(ev.client.ip, IpAddr::V4(c) if v4_word(c) == m.client)
            && matches!(ev.server.ip, IpAddr::V4(s) if v4_word(s) == m.server))
        .then_some(i)
    }

    /// Prepares the request of the event just looked up (context in `cur`, detectors of
    /// its kind `mask`) for its repeats: when it has a Modbus range access, ended normally
    /// without violations (checked by the caller) and has channel and request numbers.
    #[inline]
    fn memo_store(&mut self, ev: &IcsEvent, mask: u32, run: u32, ask: u32) {
        #[cfg(test)]
        if self.memo_off {
            return;
        }
        let (Some(_), Some(_), Some((a, table, start, count))) =
            (self.cur.chan, self.cur.req, memo_access(ev))
        else {
            return;
        };
        let (IpAddr::V4(client), IpAddr::V4(server)) = (ev.client.ip, ev.server.ip) else {
            return;
        };
        if self.req_memo.is_empty() {
            self.req_memo = vec![NO_MEMO; REQ_MEMO];
            self.memo_ctx = vec![NO_CTX; REQ_MEMO];
        }
        let i = self.memo_index(ev.flow_id, start, ev.function.code);
        if let (Some(m), Some(c)) = (self.req_memo.get_mut(i), self.memo_ctx.get_mut(i)) {
            *m = ReqMemo {
                flow_id: ev.flow_id,
                client: v4_word(client),
                server: v4_word(server),
                code: ev.function.code,
                start,
                count,
                sub: ev.function.sub,
                unit: ev.unit_id,
                table,
                dir: a.dir,
                mask,
                run,
                ask,
                gen: self.idle_gen,
                hints: MemoHints {
                    values: values::NO_HINT,
                    timing: timing::NO_HINT,
                },
            };
            *c = self.cur;
        }
    }

    /// The memo entry of a flow's request ([`memo_slot`]).
    #[inline(always)]
    fn memo_index(&self, flow_id: u64, start: u32, code: u32) -> usize {
        let i = memo_slot(flow_id, start, code);
        #[cfg(test)]
        let i = i & self.memo_mask;
        i
    }

    /// The detectors of `mask` (the kind's) not idle on request `r`, and those of them to
    /// ask whether they are idle on it after the event.
    #[inline(always)]
    fn not_idle(&self, mask: u32, r: u32) -> (u32, u32) {
        let run = mask & !MASK_KNOWN & !self.req_idle.get(r as usize).copied().unwrap_or(0);
        (run, run & self.may_idle)
    }

    /// [`Engine::run`] for a repeat of the request of memo entry `i`: its context and
    /// detectors as prepared, less those idle on it, values and timing through their entries
    /// for a prepared request.
    #[inline(always)]
    fn run_memo(&mut self, ev: &IcsEvent, i: usize, out: &mut Vec<Alert>) {
        let Engine {
            req_memo,
            memo_ctx,
            detectors,
            baseline,
            raw,
            idle_gen,
            ..
        } = self;
        let (Some(m), Some(ctx)) = (req_memo.get_mut(i), memo_ctx.get(i)) else {
            return;
        };
        // With none to ask, none of the detectors it runs may go idle: what it runs stays
        // right whatever went idle since.
        if m.ask != 0 && m.gen != *idle_gen {
            return self.memo_refresh_run(ev, i, out);
        }
        let ReqMemo {
            run,
            ask,
            hints: MemoHints {
                values: vh,
                timing: th,
            },
            ..
        } = m;
        let ask = *ask;
        let baseline = baseline.as_deref();
        let mut run = *run;
        #[cfg(test)]
        if self.hints_off {
            call_detectors(detectors, ev, ctx, baseline, raw, run);
            run = 0;
        }
        if run == self.pair_mask {
            // Values and timing (the common poll), straight.
            if let Some(v) = self.pair {
                if let Some([Slot::Values(v), Slot::Timing(t)]) = detectors.get_mut(v..v + 2) {
                    v.on_hinted(ev, ctx, baseline, vh, raw);
                    t.on_hinted(ev, ctx, baseline, th, raw);
                }
            }
            run = 0;
        }
        while run != 0 {
            let k = run.trailing_zeros() as usize;
            run &= run - 1;
            match detectors.get_mut(k) {
                Some(Slot::Values(v)) => v.on_hinted(ev, ctx, baseline, vh, raw),
                Some(Slot::Timing(t)) => t.on_hinted(ev, ctx, baseline, th, raw),
                Some(Slot::Other(d)) => d.on_event_ctx(ev, ctx, baseline, raw),
                None => {}
            }
        }
        if ask != 0 {
            let ctx = *ctx;
            self.ask_idle(&ctx, ask);
        }
        self.drain(out);
    }

    /// [`Engine::run_memo`] after [`Engine::memo_refresh`].
    #[cold]
    #[inline(never)]
    fn memo_refresh_run(&mut self, ev: &IcsEvent, i: usize, out: &mut Vec<Alert>) {
        self.memo_refresh(i);
        self.run_memo(ev, i, out);
    }

    /// Works out again which detectors memo entry `i` runs and asks (a detector went idle
    /// on some request since).
    #[cold]
    fn memo_refresh(&mut self, i: usize) {
        let gen = self.idle_gen;
        let (Some(&m), Some(req)) = (self.req_memo.get(i), self.memo_ctx.get(i).map(|c| c.req))
        else {
            return;
        };
        let (run, ask) = match req {
            Some(r) => self.not_idle(m.mask, r),
            None => (m.mask & !MASK_KNOWN, 0),
        };
        if let Some(m) = self.req_memo.get_mut(i) {
            m.run = run;
            m.ask = ask;
            m.gen = gen;
        }
    }

    /// Asks the detectors of `ask` whether they are idle on the request of `ctx`.
    #[cold]
    fn ask_idle(&mut self, ctx: &EventCtx, mut ask: u32) {
        let Some(r) = ctx.req.map(|r| r as usize) else {
            return;
        };
        while ask != 0 {
            let i = ask.trailing_zeros() as usize;
            ask &= ask - 1;
            if self.detectors.get(i).is_some_and(|d| d.get().idle_on(ctx)) {
                if r >= self.req_idle.len() {
                    self.req_idle.resize(r + 1, 0);
                }
                if let Some(m) = self.req_idle.get_mut(r) {
                    *m |= 1 << i;
                }
                self.idle_gen = self.idle_gen.wrapping_add(1);
            }
        }
    }

    /// The event's [`EventCtx`] into `cur` (in place, not copied out), its channel numbered
    /// if new (while there is room).
    #[inline]
    fn fill_ctx(&mut self, ev: &IcsEvent) {
        let key = ChanId::of(ev);
        let sig = ModSig::of(ev);
        let slot = (ev.flow_id % FLOW_MEMO as u64) as usize;
        let chan = match self.flow_memo.get(slot) {
            Some(Some((k, n))) if *k == key => Some(*n),
            _ => {
                let chan = match self.chan_numbers.get(&key) {
                    Some(&n) => Some(n),
                    None => self.number(key),
                };
                if let (Some(m), Some(n)) = (self.flow_memo.get_mut(slot), chan) {
                    *m = Some((key, n));
                }
                chan
            }
        };
        let mut req = None;
        if let (Some(n), Some(sig)) = (chan, sig.as_ref()) {
            req = match self.chan_reqs.get_mut(n as usize).and_then(|c| c.find(sig)) {
                Some(r) => Some(r),
                None => self.number_req(n, *sig),
            };
        } else if let (Some(n), true) = (chan, is_named(ev)) {
            req = self.named_req(n, ev);
        }
        self.cur.key = key;
        self.cur.chan = chan;
        self.cur.sig = sig;
        self.cur.req = req;
    }

    /// Numbers the request `sig` of channel number `n` (which has none), while there is room.
    #[cold]
    fn number_req(&mut self, n: u32, sig: ModSig) -> Option<u32> {
        let n = n as usize;
        if n >= self.chan_reqs.len() {
            self.chan_reqs.resize_with(n + 1, ChanReqs::default);
        }
        let r = self.reqs;
        let listed = r < MAX_REQS
            && self
                .chan_reqs
                .get_mut(n)
                .is_some_and(|c| c.push_within(MAX_CHAN_REQS, sig, r));
        if listed {
            self.reqs += 1;
            Some(r)
        } else {
            self.requests_unnumbered += 1;
            None
        }
    }

    /// The number of the named request of `ev` on channel number `n`, numbered if new
    /// (while there is room; else `None`, not counted: its detectors look it up).
    #[inline(never)]
    fn named_req(&mut self, n: u32, ev: &IcsEvent) -> Option<u32> {
        let s = self.named_of.get(n as usize).copied().unwrap_or(NO_SLOT);
        if let Some(c) = self.named.get_mut(s as usize) {
            if let Some(i) = c.known.find(ev) {
                return c.nums.get(i).copied();
            }
        }
        self.number_named(n, ev)
    }

    /// Numbers the named request of `ev` on channel number `n` (which has none), while the
    /// engine's table, the channel's list and the objects kept have room.
    #[cold]
    fn number_named(&mut self, n: u32, ev: &IcsEvent) -> Option<u32> {
        let objects = ev.accesses.len();
        if self.reqs >= MAX_REQS || self.named_objects + objects > MAX_NAMED_REQ_OBJECTS {
            return None;
        }
        let n = n as usize;
        if n >= self.named_of.len() {
            self.named_of.resize(n + 1, NO_SLOT);
        }
        let slot = self.named_of.get_mut(n)?;
        if *slot == NO_SLOT {
            *slot = u32::try_from(self.named.len()).ok()?;
            self.named.push(NamedReqs::default());
        }
        let c = self.named.get_mut(*slot as usize)?;
        if c.nums.len() >= MAX_CHAN_REQS {
            return None;
        }
        let before = c.known.objects();
        if !c.known.insert(ev) {
            return None;
        }
        self.named_objects += c.known.objects() - before;
        let r = self.reqs;
        c.nums.push(r);
        self.reqs += 1;
        Some(r)
    }

    #[cold]
    fn number(&mut self, key: ChanId) -> Option<u32> {
        let n = u32::try_from(self.chan_numbers.len())
            .ok()
            .filter(|_| self.chan_numbers.len() < MAX_NUMBERED_CHANNELS);
        match n {
            Some(n) => {
                self.chan_numbers.insert(key, n);
            }
            None => self.channels_unnumbered += 1,
        }
        n
    }

    /// End of input: a last tick at the last capture time, then every open aggregation
    /// window is closed.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        if let Some(pool) = self.pool.as_mut() {
            pool.finish(self.now, &mut self.agg, &mut self.raised, out);
        }
        if let Some(now) = self.now {
            self.tick(now);
            self.drain(out);
        }
        self.agg.finish(out);
    }
}

/// Runs the detectors of `mask` (one bit each, in order) on an event.
#[inline(always)]
fn call_detectors(
    detectors: &mut [Slot],
    ev: &IcsEvent,
    ctx: &EventCtx,
    baseline: Option<&Baseline>,
    raw: &mut Vec<Alert>,
    mut mask: u32,
) {
    while mask != 0 {
        let i = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        if let Some(d) = detectors.get_mut(i) {
            d.on_event_ctx(ev, ctx, baseline, raw);
        }
    }
}

/// ATT&CK techniques and severity that an operation kind suggests, for novelty alerts.
pub(crate) fn op_impact(op: OpKind, sub: Option<u16>) -> (Vec<&'static str>, u8, &'static str) {
    match op {
        OpKind::Write | OpKind::ReadWrite => (
            vec![UNAUTHORIZED_COMMAND, MODIFY_PARAMETER],
            1,
            "a write changes the process or its configuration",
        ),
        OpKind::Program => (
            vec![PROGRAM_DOWNLOAD, CHANGE_OPERATING_MODE],
            1,
            "programming functions change the logic the PLC runs",
        ),
        OpKind::Diagnostic => match sub {
            // Modbus FC 8 sub 1 restarts communications; sub 4 forces listen-only mode.
            Some(1) => (
                vec![DEVICE_RESTART_SHUTDOWN],
                1,
                "this diagnostic restarts the device's communications",
            ),
            Some(4) => (
                vec![DENIAL_OF_SERVICE],
                1,
                "this diagnostic silences the device (listen-only mode)",
            ),
            _ => (
                vec![REMOTE_SYSTEM_INFO_DISCOVERY],
                2,
                "diagnostics reveal or reset device state",
            ),
        },
        OpKind::Identify => (
            vec![REMOTE_SYSTEM_INFO_DISCOVERY],
            2,
            "identification requests are how attackers fingerprint devices",
        ),
        OpKind::Browse => (
            vec![POINT_TAG_IDENTIFICATION],
            2,
            "browsing maps the server's points and tags",
        ),
        OpKind::Call => (
            vec![UNAUTHORIZED_COMMAND],
            1,
            "a method call can command the device",
        ),
        OpKind::Discovery => (
            vec![REMOTE_SYSTEM_DISCOVERY],
            2,
            "discovery requests map the servers on the network",
        ),
        OpKind::Read | OpKind::Subscribe => (
            vec![MONITOR_PROCESS_STATE],
            3,
            "reads can map the process before an attack",
        ),
        OpKind::Session | OpKind::Other => (
            Vec::new(),
            2,
            "the device is being used in a way it never was",
        ),
    }
}

/// `a, b and c` (at most `max` items, then `and N more`).
/// A copy of `ev`'s who, what, outcome and evidence with no session, accesses, violations, facts
/// or details: the shell a detector fills with what its evidence keeps (`accesses` is its list).
pub(crate) fn evidence_shell(ev: &IcsEvent, accesses: Vec<crate::event::Access>) -> IcsEvent {
    IcsEvent {
        ts: ev.ts,
        proto: ev.proto,
        flow_id: ev.flow_id,
        client: ev.client,
        server: ev.server,
        vlan: ev.vlan,
        unit_id: ev.unit_id,
        session: None,
        op: ev.op,
        function: ev.function.clone(),
        accesses,
        outcome: ev.outcome.clone(),
        latency_us: ev.latency_us,
        violations: Vec::new(),
        facts: Vec::new(),
        details: Vec::new(),
        evidence: ev.evidence.clone(),
    }
}

pub(crate) fn list_words<T: std::fmt::Display>(items: &[T], max: usize) -> String {
    let shown: Vec<String> = items.iter().take(max).map(|x| x.to_string()).collect();
    let rest = items.len().saturating_sub(max);
    match (shown.as_slice(), rest) {
        ([], _) => "nothing".to_string(),
        ([one], 0) => one.clone(),
        (many, 0) => {
            let (last, head) = many
                .split_last()
                .map_or((String::new(), &[][..]), |(l, h)| (l.clone(), h));
            format!("{} and {last}", head.join(", "))
        }
        (many, n) => format!("{} and {n} more", many.join(", ")),
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
    use super::testkit::*;
    use super::*;
    use crate::baseline::Learner;
    use std::collections::BTreeSet;

    const OTHER_PLC: &str = "10.0.1.2";
    const OTHER: &str = "10.0.0.7";

    /// Blocks polled per cycle: more than a channel lists (timing's signatures, values'
    /// blocks), so that the hash lookups behind the lists are used too.
    const BLOCKS: u32 = 70;

    /// One poll cycle at `ms`: `BLOCKS` reads of holding registers by the master, with
    /// values from `v`, and a read of input registers of another PLC.
    fn cycle(ms: i64, v: impl Fn(u32) -> i64) -> Vec<IcsEvent> {
        let mut evs: Vec<IcsEvent> = (0..BLOCKS)
            .map(|b| {
                let vals: Vec<i64> = (0..4).map(|k| v(b * 4 + k)).collect();
                read_hr(ms + i64::from(b), MASTER, PLC, 1, b * 10, &vals)
            })
            .collect();
        evs.push(read_ir(ms + 90, MASTER, OTHER_PLC, 1, 0, &[v(0) % 50, 7]));
        evs
    }

    fn learnt() -> Baseline {
        let mut l = Learner::default();
        for i in 0..120i64 {
            for ev in cycle(i * 1000, |r| 100 + (i * 7 + i64::from(r)) % 40) {
                l.observe(&ev);
            }
            l.observe(&write_hr(i * 1000 + 500, OTHER, PLC, 1, 40, 470 + i % 61));
        }
        l.finish().unwrap()
    }

    /// Detection traffic: normal cycles, values out of range, a frozen block, a master that
    /// stops and comes back, a write from a new client, a new channel; flow ids that collide
    /// in the engine's memo (every channel's events share slots with other channels').
    fn traffic() -> Vec<IcsEvent> {
        let mut evs = Vec::new();
        for i in 200..320i64 {
            if (260..270).contains(&i) {
                continue; // The master stops for 10 s.
            }
            let frozen = i >= 290;
            let mut c = cycle(i * 1000, |r| {
                if frozen && r < 8 {
                    123
                } else if i % 37 == 0 && r == 5 {
                    9_000
                } else {
                    100 + (i * 7 + i64::from(r)) % 40
                }
            });
            for (k, ev) in c.iter_mut().enumerate() {
                let m = FLOW_MEMO as u64;
                ev.flow_id = [1, 1 + m, 3, 1 + m * (k as u64 % 3)][(i as usize + k) % 4];
            }
            evs.extend(c);
            if i % 20 == 0 {
                let mut w = write_hr(i * 1000 + 500, ROGUE, PLC, 1, 40, 9999);
                w.flow_id = 1;
                evs.push(w);
                let mut n = read_hr(i * 1000 + 600, OTHER, OTHER_PLC, 2, 500, &[1, 2]);
                n.flow_id = 1 + FLOW_MEMO as u64;
                evs.push(n);
            }
        }
        evs
    }

    /// `traffic` with exceptions, violations, a request whose function has another name than
    /// its code has elsewhere, and a burst of unknown requests (a scan).
    fn mixed_traffic() -> Vec<IcsEvent> {
        let mut evs = traffic();
        for (i, ev) in evs.iter_mut().enumerate() {
            match i % 97 {
                5 | 6 => ev.outcome = exception(2),
                7 => ev.violations = vec!["length_mismatch"],
                8 => ev.function.name = "read_holding_registers_too",
                9 if i % 3 == 0 => ev.outcome = exception(1),
                _ => {}
            }
        }
        let t = 250_000;
        for fc in 1..12u32 {
            let mut e = read_hr(t + i64::from(fc) * 10, ROGUE, OTHER_PLC, 1, fc * 100, &[1]);
            e.function.code = fc;
            e.outcome = exception(1);
            e.flow_id = 9;
            evs.push(e);
        }
        evs.sort_by_key(|e| e.ts);
        evs
    }

    /// `mixed_traffic` with repeats that differ from a prepared request in one field each
    /// (unit, count, sub-function, server, client, direction, table, outcome, violations,
    /// a second access) on the same flow and address, and a new channel on a known flow.
    fn memo_traffic() -> Vec<IcsEvent> {
        let mut evs = mixed_traffic();
        let n = evs.len();
        for i in (0..n).step_by(7) {
            let Some(base) = evs.get(i).cloned() else {
                continue;
            };
            let mut e = base.clone();
            match (i / 7) % 11 {
                0 => e.unit_id = e.unit_id.map(|u| u.wrapping_add(1)),
                1 => {
                    if let Some(ObjectRef::Modbus { count, .. }) =
                        e.accesses.first_mut().map(|a| &mut a.object)
                    {
                        *count += 1;
                    }
                }
                2 => e.function.sub = Some(4),
                3 => e.server.ip = OTHER_PLC.parse().unwrap(),
                4 => e.client.ip = ROGUE.parse().unwrap(),
                5 => {
                    if let Some(a) = e.accesses.first_mut() {
                        a.dir = AccessDir::Write;
                    }
                }
                6 => {
                    if let Some(ObjectRef::Modbus { table, .. }) =
                        e.accesses.first_mut().map(|a| &mut a.object)
                    {
                        *table = ModbusTable::InputRegister;
                    }
                }
                7 => e.outcome = exception(2),
                8 => e.violations = vec!["length_mismatch"],
                9 => {
                    if let Some(a) = e.accesses.first().cloned() {
                        e.accesses.push(a);
                    }
                }
                _ => e.server.ip = "10.9.9.9".parse().unwrap(),
            }
            e.ts = Timestamp::from_micros(e.ts.as_micros() + 10);
            evs.push(e);
        }
        evs.sort_by_key(|e| e.ts);
        evs
    }

    #[test]
    fn the_request_memo_gives_what_the_lookups_give() {
        // Every event through an engine with the memo (full size, and two entries: every
        // flow and request collide) and one without: each hit's context and detectors are
        // those the lookups find, and the alerts and counters are the same.
        let b = learnt();
        let evs = memo_traffic();
        for (mask, add_at) in [
            (REQ_MEMO - 1, usize::MAX),
            (1, usize::MAX),
            (REQ_MEMO - 1, 900),
        ] {
            let cfg = || DetectConfig {
                aggregate_window_s: 0,
                ..DetectConfig::default()
            };
            let mut with = Engine::new(Some(b.clone()), cfg());
            with.memo_mask = mask;
            let mut without = Engine::new(Some(b.clone()), cfg());
            without.memo_off = true;
            let (mut o1, mut o2) = (Vec::new(), Vec::new());
            for (k, ev) in evs.iter().enumerate() {
                if k == add_at {
                    // A detector added on the way: the memo starts over.
                    with.add_detector(Box::new(violations::Violations));
                    without.add_detector(Box::new(violations::Violations));
                }
                let hit = with.memo_hit(ev);
                with.on_event(ev, &mut o1);
                without.on_event(ev, &mut o2);
                if let Some(i) = hit {
                    let (m, mc) = (with.req_memo[i], with.memo_ctx[i]);
                    let c = without.cur;
                    assert_eq!(
                        (mc.key, mc.chan, mc.sig, mc.req),
                        (c.key, c.chan, c.sig, c.req),
                        "event {k}"
                    );
                    assert_eq!(m.mask, without.mask(&EventKind::of(ev)), "event {k}");
                }
            }
            with.finish(&mut o1);
            without.finish(&mut o2);
            // With two entries most requests take each other's entry: few hits.
            let want = if mask == 1 { 0 } else { evs.len() as u64 / 3 };
            assert!(with.memo_hits > want, "{} of {}", with.memo_hits, evs.len());
            assert_eq!(without.memo_hits, 0);
            assert!(o1.len() > 10, "{}", o1.len());
            assert_eq!(lines(&o1), lines(&o2), "mask {mask}");
            assert_eq!(with.counters(), without.counters());
            assert_eq!(
                (with.channels_unnumbered, with.requests_unnumbered),
                (without.channels_unnumbered, without.requests_unnumbered)
            );
        }
    }

    #[test]
    fn hints_give_what_the_general_paths_give() {
        // Memo hits through values' and timing's hints against the same hits through their
        // `on_event_ctx`, and against no memo at all: the same alerts and counters, with
        // values' cache emptied now and then (its hints no longer hold), requests that
        // differ from a prepared one in one field, detectors going idle on the way.
        let b = learnt();
        let evs = memo_traffic();
        for slots in [usize::MAX, 700] {
            let cfg = || {
                let mut c = DetectConfig {
                    aggregate_window_s: 0,
                    ..DetectConfig::default()
                };
                if slots != usize::MAX {
                    c.values.max_cached_slots = slots;
                }
                c
            };
            let run = |hints: bool, memo: bool| {
                let mut e = Engine::new(Some(b.clone()), cfg());
                e.hints_off = !hints;
                e.memo_off = !memo;
                let mut out = Vec::new();
                for ev in &evs {
                    e.on_event(ev, &mut out);
                }
                e.finish(&mut out);
                let hits = e.detectors.iter().fold((0, 0), |(v, t), d| match d {
                    Slot::Values(d) => (v + d.hint_hits(), t),
                    Slot::Timing(d) => (v, t + d.hint_hits()),
                    Slot::Other(_) => (v, t),
                });
                (lines(&out), e.counters(), e.memo_hits, hits)
            };
            let (hinted, c1, memo_hits, (values, timing)) = run(true, true);
            let (plain, c2, plain_hits, none) = run(false, true);
            let (general, c3, _, _) = run(false, false);
            assert_eq!(none, (0, 0));
            assert_eq!(memo_hits, plain_hits);
            assert!(values > memo_hits / 2, "{values} of {memo_hits}");
            assert!(timing > memo_hits / 2, "{timing} of {memo_hits}");
            assert!(hinted.len() > 10, "{}", hinted.len());
            assert_eq!(hinted, plain, "slots {slots}");
            assert_eq!(hinted, general, "slots {slots}");
            assert_eq!(c1, c2);
            assert_eq!(c1, c3);
            if slots != usize::MAX {
                let resets = c1.iter().find(|(k, _)| k == "values.cache_resets");
                assert!(resets.is_some_and(|(_, n)| *n > 5), "{resets:?}");
            }
        }
    }

    /// A change to an event.
    type Change = dyn Fn(&mut IcsEvent);

    #[test]
    fn the_request_memo_misses_on_any_field_that_differs() {
        let mut e = Engine::new(Some(learnt()), DetectConfig::default());
        let mut out = Vec::new();
        let mut ev = read_hr(0, MASTER, PLC, 1, 0, &[1, 2]);
        ev.flow_id = 7;
        e.on_event(&ev, &mut out);
        assert!(e.memo_hit(&ev).is_some());
        let changes: Vec<Box<Change>> = vec![
            Box::new(|e| e.flow_id = 8),
            Box::new(|e| e.unit_id = Some(2)),
            Box::new(|e| e.unit_id = None),
            Box::new(|e| e.function.code = 4),
            Box::new(|e| e.function.sub = Some(0)),
            Box::new(|e| e.client.ip = ROGUE.parse().unwrap()),
            Box::new(|e| e.server.ip = OTHER_PLC.parse().unwrap()),
            Box::new(|e| e.server.ip = "::1".parse().unwrap()),
            Box::new(|e| e.proto = crate::event::AppProto::Opcua),
            Box::new(|e| e.outcome = exception(2)),
            Box::new(|e| e.violations = vec!["length_mismatch"]),
            Box::new(|e| e.accesses[0].dir = AccessDir::Write),
            Box::new(|e| e.accesses[0].object = ObjectRef::Other { name: "x".into() }),
            Box::new(|e| {
                let a = e.accesses[0].clone();
                e.accesses.push(a);
            }),
            Box::new(|e| e.accesses.clear()),
            Box::new(|e| {
                if let ObjectRef::Modbus {
                    table,
                    start,
                    count,
                } = &mut e.accesses[0].object
                {
                    *table = ModbusTable::Coil;
                    *start += 0;
                    *count += 0;
                }
            }),
            Box::new(|e| {
                if let ObjectRef::Modbus { start, .. } = &mut e.accesses[0].object {
                    *start += 1;
                }
            }),
            Box::new(|e| {
                if let ObjectRef::Modbus { count, .. } = &mut e.accesses[0].object {
                    *count += 1;
                }
            }),
        ];
        for (k, change) in changes.iter().enumerate() {
            let mut x = ev.clone();
            change(&mut x);
            assert!(e.memo_hit(&x).is_none(), "change {k}");
        }
        // Values do not take part: a repeat with other values hits.
        let mut x = ev.clone();
        x.accesses[0].values = crate::event::Values::from(vec![
            crate::event::Value::Int(900),
            crate::event::Value::Bool(true),
        ]);
        x.ts = Timestamp::from_micros(x.ts.as_micros() + 1);
        assert!(e.memo_hit(&x).is_some());
        // What a hit reads of its entry is in two cache lines.
        assert_eq!(std::mem::size_of::<ReqMemo>(), 128);
        assert_eq!(std::mem::size_of::<MemoHints>(), 64);
    }

    /// An OPC UA event (Publish-like) of `c` to `s` on nodes `nodes`, with values.
    fn opcua(ms: i64, c: &str, s: &str, nodes: &[u32], dir: AccessDir) -> IcsEvent {
        let mut e = read_hr(ms, c, s, 1, 0, &[1]);
        e.proto = AppProto::Opcua;
        e.unit_id = None;
        e.function.code = 826;
        e.function.name = "Publish";
        e.accesses = nodes
            .iter()
            .map(|&n| crate::event::Access {
                dir,
                object: ObjectRef::Node {
                    node_id: format!("ns=2;s=Plant.Tag{n}"),
                    attribute: Some(13),
                },
                values: vec![crate::event::Value::Int(100 + i64::from(n))].into(),
            })
            .collect();
        e
    }

    /// Subset `k` of eight nodes (never empty).
    fn subset(k: u32) -> Vec<u32> {
        (0..8).filter(|b| (k % 255 + 1) & (1 << b) != 0).collect()
    }

    #[test]
    fn named_requests_numbered_and_idle_change_no_alert() {
        // OPC UA requests (sets of nodes) numbered by the engine, novelty and scans idle on
        // the known ones: the same alerts and counters as on threads (every detector sees
        // every event, without numbers). Known sets, new sets of known nodes, new nodes,
        // writes, bad outcomes, a client that is no asset, and more sets than a channel
        // numbers (or keeps objects of).
        let mut l = Learner::default();
        for i in 0..100i64 {
            for k in 0..6 {
                l.observe(&opcua(
                    i * 1000 + k,
                    MASTER,
                    OTHER_PLC,
                    &subset(k as u32),
                    AccessDir::Read,
                ));
            }
            l.observe(&read_hr(i * 1000 + 500, MASTER, PLC, 1, 0, &[1, 2]));
        }
        let b = l.finish().unwrap();
        let mut evs = Vec::new();
        for i in 0..400i64 {
            let t = 200_000 + i * 1000;
            for k in 0..6u32 {
                evs.push(opcua(
                    t + i64::from(k),
                    MASTER,
                    OTHER_PLC,
                    &subset(k),
                    AccessDir::Read,
                ));
            }
            // New sets, at first of the known nodes, then of every node.
            let k = 6 + (i as u32 % 150);
            let mut e = opcua(t + 10, MASTER, OTHER_PLC, &subset(k), AccessDir::Read);
            if i > 200 {
                e.accesses.push(
                    opcua(0, MASTER, OTHER_PLC, &[20 + i as u32 % 7], AccessDir::Read)
                        .accesses
                        .remove(0),
                );
            }
            evs.push(e);
            if i % 9 == 0 {
                evs.push(opcua(
                    t + 20,
                    MASTER,
                    OTHER_PLC,
                    &subset(1),
                    AccessDir::Write,
                ));
            }
            if i % 13 == 0 {
                let mut e = opcua(t + 30, MASTER, OTHER_PLC, &subset(2), AccessDir::Read);
                e.outcome = crate::event::Outcome::Bad {
                    code: 0x8034_0000,
                    name: "BadNodeIdUnknown",
                };
                evs.push(e);
            }
            if i % 17 == 0 {
                evs.push(opcua(t + 40, ROGUE, OTHER_PLC, &subset(3), AccessDir::Read));
            }
            evs.push(read_hr(t + 500, MASTER, PLC, 1, 0, &[1, 2]));
        }
        let cfg = || DetectConfig {
            aggregate_window_s: 0,
            ..DetectConfig::default()
        };
        let run = |threads: usize| {
            let mut e = Engine::new(Some(b.clone()), cfg()).parallel(threads);
            let mut out = Vec::new();
            for ev in &evs {
                e.on_event(ev, &mut out);
            }
            e.finish(&mut out);
            // Named requests that novelty (bit 1) and scans (bit 4) are idle on.
            let idle = e
                .named
                .iter()
                .flat_map(|c| &c.nums)
                .filter(|&&r| {
                    e.req_idle
                        .get(r as usize)
                        .is_some_and(|m| m & 0b10010 == 0b10010)
                })
                .count();
            (
                lines(&out),
                e.counters(),
                idle,
                e.named.len(),
                e.named_objects,
            )
        };
        let (one, c1, idle, named, objects) = run(1);
        let (two, c2, _, _, _) = run(2);
        assert!(idle >= 6, "{idle}");
        assert_eq!(named, 2, "two channels with named requests");
        assert!(objects > 100, "{objects}");
        let kinds: BTreeSet<&str> = one
            .iter()
            .filter_map(|l| l.split("\"kind\":\"").nth(1)?.split('"').next())
            .collect();
        assert!(kinds.contains("new_object_read"), "{kinds:?}");
        assert!(kinds.contains("new_channel"), "{kinds:?}");
        assert_eq!(one, two);
        assert_eq!(c1, c2);
    }

    #[test]
    fn a_channel_with_one_request_keeps_room_for_one() {
        // 100,000 plant channels of one poll each must not carry room for four requests.
        let mut e = Engine::new(Some(learnt()), DetectConfig::default());
        let mut out = Vec::new();
        for (k, plc) in [PLC, OTHER_PLC].iter().enumerate() {
            let mut ev = read_hr(k as i64, MASTER, plc, 1, 0, &[1, 2]);
            ev.flow_id = k as u64 + 1;
            e.on_event(&ev, &mut out);
            e.on_event(&ev, &mut out);
        }
        assert_eq!(e.chan_reqs.len(), 2);
        for c in &e.chan_reqs {
            assert_eq!((c.items.len(), c.items.capacity()), (1, 1));
        }
        let mut ev = read_hr(9, MASTER, PLC, 1, 100, &[1]);
        ev.flow_id = 1;
        e.on_event(&ev, &mut out);
        assert_eq!(e.chan_reqs[0].len(), 2);
        assert_eq!(e.requests_unnumbered, 0);
    }

    #[test]
    fn a_flood_of_distinct_channels_stays_within_the_numbering_caps() {
        // More channels than the engine numbers: the rest are counted, not numbered, and the
        // engine's tables stop growing.
        let mut e = Engine::new(Some(learnt()), DetectConfig::default());
        let mut out = Vec::new();
        let n = MAX_NUMBERED_CHANNELS + 100;
        for k in 0..n {
            let client = format!("10.{}.{}.{}", 100 + (k >> 16), (k >> 8) & 255, k & 255);
            let mut ev = read_hr(k as i64, &client, PLC, 1, 0, &[1]);
            ev.flow_id = k as u64 + 1;
            e.on_event(&ev, &mut out);
        }
        assert_eq!(e.chan_numbers.len(), MAX_NUMBERED_CHANNELS);
        assert!(e.chan_reqs.len() <= MAX_NUMBERED_CHANNELS);
        assert_eq!(e.channels_unnumbered, 100);
    }

    #[test]
    fn detectors_skipped_for_kinds_they_ignore_change_no_alert() {
        // The engine hands each event only to the detectors that act on its kind, with channel
        // and request numbers; on threads every detector sees every event, without numbers.
        let b = learnt();
        let evs = mixed_traffic();
        let text = [
            (1, "proto = \"modbus\"\nfunction = 6"),
            (
                2,
                "proto = \"modbus\"\nfunction = 3\noutcome = [\"exception\"]",
            ),
            (3, "proto = \"modbus\"\nviolation = true"),
        ]
        .iter()
        .map(|(id, m)| {
            format!(
                "[[rule]]\nid = {id}\nrev = 1\ntitle = \"Rule {id}\"\nseverity = \"high\"\n\
                 attack = [\"T0836\"]\ndescription = \"x\"\n\n[rule.match]\n{m}\n"
            )
        })
        .collect::<String>();
        let report = crate::rules::load(&[crate::rules::Source {
            name: "t.toml".into(),
            text,
        }]);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let set = Arc::new(report.set);
        let run = |threads: usize| {
            let mut e = Engine::new(Some(b.clone()), DetectConfig::default());
            e.add_detector(Box::new(crate::rules::detector::RulesDetector::new(
                Arc::clone(&set),
            )));
            let mut e = e.parallel(threads);
            let mut out = Vec::new();
            for ev in &evs {
                e.on_event(ev, &mut out);
            }
            e.finish(&mut out);
            let idle = e.req_idle.iter().filter(|m| **m != 0).count();
            (lines(&out), e.counters(), e.requests_unnumbered, idle)
        };
        let (one, c1, unnumbered, idle) = run(1);
        let (two, c2, _, _) = run(2);
        // Scans went idle on the known requests.
        assert!(idle > 10, "{idle}");
        let kinds: BTreeSet<&str> = one
            .iter()
            .filter_map(|l| l.split("\"kind\":\"").nth(1)?.split('"').next())
            .collect();
        for k in [
            "rule",
            "protocol_violation",
            "function_code_scan",
            "exception_burst",
            "poll_stopped",
        ] {
            assert!(kinds.contains(k), "{k} missing from {kinds:?}");
        }
        assert_eq!(one, two);
        assert_eq!(c1, c2);
        // The master polls more blocks than a channel numbers: some requests have no number.
        assert!(unnumbered > 0);
    }

    #[test]
    fn clock_ticks_when_micros_since_the_last_tick_reach_the_interval() {
        let mut x = 3u64;
        let mut rnd = move |n: u64| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (x >> 20) % n.max(1)
        };
        for tick_ms in [0u64, 1, 7, 1000] {
            let mut e = Engine::new(
                None,
                DetectConfig {
                    tick_interval_ms: tick_ms,
                    ..DetectConfig::default()
                },
            );
            let tick_us = tick_ms.saturating_mul(1000).max(1);
            let (mut now, mut last): (Option<Timestamp>, Option<Timestamp>) = (None, None);
            let mut t = Timestamp::new(1_700_000_000, 0);
            let mut ticks = 0;
            for step in 0..20_000 {
                // Steps of nanoseconds to seconds, now and then back in time.
                let d = match rnd(6) {
                    0 => rnd(2_000),
                    1 => rnd(2_000_000),
                    2 => rnd(3_000_000_000),
                    _ => tick_us * 1000 - 1 + rnd(3),
                };
                let ns = t.as_nanos()
                    + if step % 13 == 0 {
                        -(d as i128)
                    } else {
                        d as i128
                    };
                t = Timestamp::new(
                    i64::try_from(ns.div_euclid(1_000_000_000)).unwrap(),
                    u32::try_from(ns.rem_euclid(1_000_000_000)).unwrap(),
                );
                // The clock as it was: `micros_since` the last tick.
                let n = now.map_or(t, |n| n.max(t));
                now = Some(n);
                let want = match last {
                    None => {
                        last = Some(n);
                        false
                    }
                    Some(l) if n.micros_since(l) >= tick_us => {
                        last = Some(n);
                        true
                    }
                    Some(_) => false,
                };
                assert_eq!(e.clock(t), want, "tick {tick_ms} ms, step {step}");
                ticks += usize::from(want);
            }
            assert!(ticks > 100, "{ticks}");
        }
    }

    #[test]
    fn event_kinds_mask_the_detectors() {
        let mut e = Engine::new(None, DetectConfig::default());
        let mut ev = read_hr(0, MASTER, PLC, 1, 0, &[1]);
        let all = e.mask(&EventKind::of(&ev));
        assert_eq!(all & !MASK_KNOWN, 0b11110, "violations skipped");
        ev.violations = vec!["length_mismatch"];
        assert_eq!(e.mask(&EventKind::of(&ev)) & !MASK_KNOWN, 0b11111);
        // Kinds outside the table (OPC UA, codes past 255) are worked out as well, and
        // found again (the last one without a search), one after the other.
        ev.function.code = 300;
        assert_eq!(e.mask(&EventKind::of(&ev)) & !MASK_KNOWN, 0b11111);
        assert_eq!(e.mask(&EventKind::of(&ev)) & !MASK_KNOWN, 0b11111);
        let mut clean = ev.clone();
        clean.violations.clear();
        for _ in 0..3 {
            assert_eq!(e.mask(&EventKind::of(&clean)) & !MASK_KNOWN, 0b11110);
            assert_eq!(e.mask(&EventKind::of(&ev)) & !MASK_KNOWN, 0b11111);
        }
        for i in 0..40 {
            e.add_detector(Box::new(violations::Violations));
            ev.violations.clear();
            let m = e.mask(&EventKind::of(&ev));
            if e.detectors.len() > MAX_MASKED_DETECTORS {
                assert_eq!(m, u32::MAX, "{i}");
            } else {
                assert_eq!(m & !MASK_KNOWN, 0b11110, "{i}");
            }
        }
    }

    /// Numbers a channel (given the numbers so far), or not.
    type Numbering = dyn Fn(&ChanId, &mut HashMap<ChanId, u32>) -> Option<u32>;

    /// Numbers a request, given its rank among the requests seen (or not).
    type ReqNumbering = dyn Fn(u32) -> Option<u32>;

    fn lines(out: &[Alert]) -> Vec<String> {
        out.iter().map(Alert::to_json_line).collect()
    }

    #[test]
    fn channel_numbers_change_no_alert() {
        // The engine numbers channels and hands the numbers to its detectors (with a memo by
        // flow); on threads the detectors look everything up themselves. Same alerts.
        let b = learnt();
        let evs = traffic();
        let cfg = || DetectConfig {
            aggregate_window_s: 0,
            ..DetectConfig::default()
        };
        let mut one = Engine::new(Some(b.clone()), cfg());
        let mut out1 = Vec::new();
        for ev in &evs {
            one.on_event(ev, &mut out1);
        }
        one.finish(&mut out1);
        let mut two = Engine::new(Some(b.clone()), cfg()).parallel(2);
        let mut out2 = Vec::new();
        for ev in &evs {
            two.on_event(ev, &mut out2);
        }
        two.finish(&mut out2);
        let kinds: BTreeSet<&str> = out1.iter().map(|a| a.otwatch.kind).collect();
        for k in [
            "read_value_out_of_range",
            "value_frozen",
            "poll_stopped",
            "written_value_out_of_range",
            "new_channel",
        ] {
            assert!(kinds.contains(k), "{k} missing from {kinds:?}");
        }
        assert_eq!(lines(&out1), lines(&out2));
        assert_eq!(one.counters(), two.counters());
        assert_eq!(one.chan_numbers.len(), 4);
        assert_eq!(one.channels_unnumbered, 0);
    }

    #[test]
    fn detectors_give_the_same_alerts_with_any_channel_numbers() {
        // Each detector on its own: without numbers, with the engine's, and with numbers given
        // in another order (a number is only ever a cache key for its channel).
        let b = learnt();
        let evs = mixed_traffic();
        let run = |number: &Numbering, number_req: &ReqNumbering| {
            let mut dets: Vec<Box<dyn Detector>> = vec![
                Box::new(novelty::Novelty::new(novelty::NoveltyConfig::default())),
                Box::new(values::Values::new(values::ValuesConfig::default())),
                Box::new(timing::Timing::new(timing::TimingConfig::default())),
                Box::new(scans::Scans::new(scans::ScanConfig::default())),
            ];
            let mut nums = HashMap::new();
            let mut reqs: Vec<(ChanId, ModSig)> = Vec::new();
            let mut out = Vec::new();
            for ev in &evs {
                let mut ctx = EventCtx::of(ev);
                ctx.chan = number(&ctx.key, &mut nums);
                ctx.req = ctx.sig.and_then(|s| {
                    let k = (ctx.key, s);
                    let rank = reqs.iter().position(|x| *x == k).unwrap_or_else(|| {
                        reqs.push(k);
                        reqs.len() - 1
                    });
                    number_req(u32::try_from(rank).unwrap())
                });
                for d in &mut dets {
                    d.on_event_ctx(ev, &ctx, Some(&b), &mut out);
                }
                if ev.ts.secs % 5 == 0 {
                    for d in &mut dets {
                        d.on_tick(ev.ts, Some(&b), &mut out);
                    }
                }
            }
            lines(&out)
        };
        let none = run(&|_, _| None, &|_| None);
        let in_order = run(
            &|k, m| {
                let n = u32::try_from(m.len()).unwrap();
                Some(*m.entry(*k).or_insert(n))
            },
            &Some,
        );
        let reversed = run(
            &|k, m| {
                let n = 1000 - u32::try_from(m.len()).unwrap();
                Some(*m.entry(*k).or_insert(n))
            },
            &|r| Some(5000 - r),
        );
        // Some requests without a number (their channel's list was full).
        let partly = run(
            &|k, m| {
                let n = u32::try_from(m.len()).unwrap();
                Some(*m.entry(*k).or_insert(n))
            },
            &|r| (r % 3 != 1).then_some(r),
        );
        assert!(none.len() > 10, "{}", none.len());
        assert_eq!(none, in_order);
        assert_eq!(none, reversed);
        assert_eq!(none, partly);
    }

    #[test]
    fn chan_slots_find_by_number_or_channel() {
        let evs = traffic();
        let mut s: ChanSlots<u32> = ChanSlots::default();
        let mut ctxs: Vec<EventCtx> = Vec::new();
        for ev in &evs {
            let mut ctx = EventCtx::of(ev);
            if !ctxs.iter().any(|c| c.key == ctx.key) {
                ctx.chan = Some(u32::try_from(ctxs.len()).unwrap() * 3);
                ctxs.push(ctx);
            }
        }
        assert_eq!(ctxs.len(), 4);
        for (i, c) in ctxs.iter().enumerate() {
            assert_eq!(s.find(c), None);
            assert_eq!(s.insert(c, i as u32 + 10), Some(i as u32));
        }
        for (i, c) in ctxs.iter().enumerate() {
            let plain = EventCtx { chan: None, ..*c };
            assert_eq!(s.find(c), Some(i as u32));
            assert_eq!(s.find(&plain), Some(i as u32));
            assert_eq!(s.get_mut(i as u32).copied(), Some(i as u32 + 10));
        }
        s.clear();
        assert!(ctxs.iter().all(|c| s.find(c).is_none()));
        assert_eq!(s.len(), 0);
    }
}
