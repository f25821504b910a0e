//! Values: what is written and read, against the learnt value profiles. Needs a baseline.
//!
//! - A written value outside `[min − m, max + m]` of the object's written profile, where
//!   `m = max(write_margin_frac × (max − min), magnitude_frac × |largest bound|, min_margin)`.
//!   The profile is the writer's own channel's, or, for a writer the baseline never saw, the
//!   union of every baseline writer's to that server (so "who wrote it normally" can be named).
//! - A read value outside its read profile, with the wider `read_margin_frac`. A counter (a
//!   value that only ever went up while learning: pump starts, operating hours) may grow past
//!   its learnt range at up to `counter_rate_factor` times its learnt rate since the end of
//!   learning; faster, or below the range, is unusual.
//! - A jump: two consecutive reads on one channel differing by more than
//!   `jump_factor × max_step` (and the margin), for objects whose value moved while learning;
//!   neither read may be out of range (that is reported as such, and the way back is not news).
//! - A freeze: an object whose value changed while learning (at least `freeze_min_distinct`
//!   distinct values) returns the same value for more than
//!   `max(freeze_factor × max_same_run, freeze_min_reads)` reads in a row, spanning at least
//!   `max(freeze_min_secs, freeze_factor × max_same_run × mean learnt read interval)` (a fast
//!   burst of reads is not a freeze).

use super::{list_words, ChanSlots, CycleMap, Detector, EventCtx};
use crate::alert::signatures::*;
use crate::alert::text::{object_ref, read_explanation, read_fact};
use crate::alert::Alert;
use crate::baseline::{
    device_words, event_summary, fmt_num, key_words, modbus_object_key, numeric, push_decimal,
    table_key, write_named_object_key, Baseline, Channel, ValueProfile,
};
use crate::event::{
    Access, AccessDir, AppProto, IcsEvent, ModbusTable, ObjectRef, Outcome, Value,
    Values as AccessValues,
};
use crate::flow::hash::KeyHashBuilder;
use crate::time::Timestamp;
use std::collections::HashMap;
use std::net::IpAddr;

/// Value thresholds.
#[derive(Clone, Debug)]
pub struct ValuesConfig {
    /// Margin around the written range, as a fraction of its width.
    pub write_margin_frac: f64,
    /// Margin around the read range, as a fraction of its width.
    pub read_margin_frac: f64,
    /// Margin floor, as a fraction of the largest bound's magnitude.
    pub magnitude_frac: f64,
    /// Margin floor, absolute.
    pub min_margin: f64,
    /// A jump is larger than this many times the largest learnt step.
    pub jump_factor: f64,
    /// A freeze is longer than this many times the longest learnt run ...
    pub freeze_factor: f64,
    /// ... and at least this many reads.
    pub freeze_min_reads: u64,
    /// Only objects with at least this many distinct learnt values can freeze.
    pub freeze_min_distinct: u32,
    /// ... and the value must have stayed the same for at least this long (capture seconds):
    /// a burst of reads in a fraction of a second sees one value many times without anything
    /// being frozen.
    pub freeze_min_secs: u64,
    /// Most values examined per access.
    pub max_values_per_access: usize,
    /// Most per-object states kept (last value, run length).
    pub max_states: usize,
    /// Most compiled addresses kept over all channels' request blocks; when full, every
    /// channel's blocks are dropped and compiled again when next seen (counted in
    /// `cache_resets`).
    pub max_cached_slots: usize,
    /// A counter may grow past its learnt range by this many times its learnt rate of growth
    /// over the time since the end of learning.
    pub counter_rate_factor: f64,
}

impl Default for ValuesConfig {
    fn default() -> Self {
        ValuesConfig {
            write_margin_frac: 0.25,
            read_margin_frac: 0.5,
            magnitude_frac: 0.05,
            min_margin: 1.0,
            jump_factor: 4.0,
            freeze_factor: 3.0,
            freeze_min_reads: 20,
            freeze_min_distinct: 3,
            freeze_min_secs: 10,
            max_values_per_access: 128,
            max_states: 65_536,
            max_cached_slots: 65_536,
            counter_rate_factor: 2.0,
        }
    }
}

/// The read state of one object: its last value and how many reads in a row returned it
/// (`run` 0: no read with a known profile seen yet; `last` is NaN then).
#[derive(Debug)]
struct ObjState {
    last: f64,
    run: u64,
    /// Capture time of the first read of the current run.
    run_since: Timestamp,
    frozen_reported: bool,
    /// A read of the same value is quiet (no alert: inside the range without the counter
    /// test, a step of 0 is no jump) and only counts, while `run` is below this: 0 when not
    /// known quiet, `u64::MAX` when the freeze is already reported, else the freeze
    /// threshold. Kept by [`read`] and [`read_quiet`], used by the repeat path of blocks.
    quiet_until: u64,
}

type ChanKey = (IpAddr, IpAddr, AppProto);
type FastMap<K, V> = HashMap<K, V, KeyHashBuilder>;
/// A Modbus object on a channel: unit, table, address.
type AddrKey = (Option<u8>, ModbusTable, u32);

impl Default for ObjState {
    fn default() -> Self {
        ObjState {
            last: f64::NAN,
            run: 0,
            run_since: Timestamp::default(),
            frozen_reported: false,
            quiet_until: 0,
        }
    }
}

/// A slot not yet tied to its object's state (no numeric value seen at it yet).
const UNRESOLVED: u32 = u32::MAX;
/// A slot whose object is not tracked: the state table was full (it never empties).
const UNTRACKED: u32 = u32::MAX - 1;

/// A merged profile and who contributed to it.
#[derive(Debug)]
struct Normal {
    min: f64,
    max: f64,
    max_step: f64,
    max_same_run: u64,
    distinct: u32,
    count: u64,
    /// The first contributor ...
    who: IpAddr,
    /// ... and the others, in order (a profile of one contributor allocates nothing).
    more_who: Vec<IpAddr>,
    own: bool,
    /// Client of the first contributing channel (for `baseline_ref`).
    ref_client: IpAddr,
    /// `read` or `written`.
    side: &'static str,
    /// Every contributing profile is a counter (it only ever went up).
    monotonic: bool,
    /// For a counter: its learnt rate of growth (per second) and the end of learning.
    counter: Option<(f64, Timestamp)>,
}

impl Normal {
    /// Every contributor, in order.
    fn who_list(&self) -> Vec<IpAddr> {
        std::iter::once(self.who)
            .chain(self.more_who.iter().copied())
            .collect()
    }

    fn reference(&self, ev: &IcsEvent, key: &str) -> String {
        let proto = ev.proto.as_str();
        object_ref(self.ref_client, ev.server.ip, proto, key, self.side)
    }

    /// The margin around the range (see the module docs).
    fn margin(&self, cfg: &ValuesConfig, frac: f64) -> f64 {
        let width = self.max - self.min;
        let mag = self.min.abs().max(self.max.abs());
        (frac * width)
            .max(cfg.magnitude_frac * mag)
            .max(cfg.min_margin)
    }
}

/// One object's profile in one direction with every threshold that does not depend on the
/// value worked out once (the rules are in the module docs).
#[derive(Debug)]
struct Check {
    /// `min − m`.
    lo: f64,
    /// `max + m`.
    hi: f64,
    /// Values above this need the upper test: `hi`, or −∞ for a counter whose growth could
    /// be negative (a negative `counter_rate_factor`).
    hi_fast: f64,
    /// For a counter: its learnt rate times `counter_rate_factor`, and the end of learning.
    growth: Option<(f64, Timestamp)>,
    /// A jump is a step larger than this (infinite when the value never moved while
    /// learning: no jumps then).
    jump_above: f64,
    /// A freeze is a run of more reads than this (`u64::MAX` with too few distinct learnt
    /// values: no freezes then) ...
    freeze_reads: u64,
    /// ... spanning at least this many seconds.
    freeze_secs: f64,
    /// `freeze_reads` when a step of 0 is no jump (`jump_above` is not negative), else 0:
    /// see [`ObjState::quiet_until`].
    quiet_base: u64,
    /// The profile, for the alert texts.
    n: Box<Normal>,
}

impl Check {
    fn new(cfg: &ValuesConfig, b: &Baseline, n: Normal, dir: AccessDir) -> Check {
        let frac = match dir {
            AccessDir::Read => cfg.read_margin_frac,
            AccessDir::Write => cfg.write_margin_frac,
        };
        let m = n.margin(cfg, frac);
        let freeze_reads =
            ((cfg.freeze_factor * n.max_same_run as f64).ceil() as u64).max(cfg.freeze_min_reads);
        // The longest learnt run in time: its reads times the mean learnt interval between
        // reads of this object (learning span / reads), so that a burst of reads, which
        // inflates the count, does not make a freeze out of a value that changes slowly.
        let mean_interval_s = b.learned.duration_s / n.count.max(1) as f64;
        let freeze_secs = (cfg.freeze_factor * n.max_same_run as f64 * mean_interval_s)
            .max(cfg.freeze_min_secs as f64);
        let growth = n
            .counter
            .map(|(rate, end)| (rate * cfg.counter_rate_factor, end));
        let hi = n.max + m;
        Check {
            lo: n.min - m,
            hi,
            hi_fast: match growth {
                Some((rate, _)) if rate.is_nan() || rate < 0.0 => f64::NEG_INFINITY,
                _ => hi,
            },
            growth,
            jump_above: if n.max_step > 0.0 {
                (cfg.jump_factor * n.max_step).max(m)
            } else {
                f64::INFINITY
            },
            freeze_reads: if n.distinct >= cfg.freeze_min_distinct {
                freeze_reads
            } else {
                u64::MAX
            },
            freeze_secs,
            quiet_base: 0,
            n: Box::new(n),
        }
        .with_quiet_base()
    }

    fn with_quiet_base(mut self) -> Check {
        self.quiet_base = if 0.0 > self.jump_above {
            0
        } else {
            self.freeze_reads
        };
        self
    }

    /// [`ObjState::quiet_until`] after a read of `x`.
    #[inline]
    fn quiet_after(&self, x: f64, frozen_reported: bool) -> u64 {
        if x >= self.lo && x <= self.hi_fast {
            quiet_until(self.quiet_base, frozen_reported)
        } else {
            0
        }
    }

    /// Is `x` outside the widened range at capture time `now`? A counter may grow past its
    /// learnt range at up to `counter_rate_factor` times its learnt rate since the end of
    /// learning.
    #[inline]
    fn outside(&self, x: f64, now: &mut Now) -> bool {
        // `x` is finite. Up to `hi_fast` nothing above `hi` needs testing: a growth of 0 or
        // more cannot bring a value at or below `hi` outside.
        x < self.lo || (x > self.hi_fast && self.above(x, now))
    }

    /// Is `x` above the (grown) upper bound?
    #[inline]
    fn above(&self, x: f64, now: &mut Now) -> bool {
        match self.growth {
            None => x > self.hi,
            Some((rate, end)) => x > self.hi + rate * now.micros_since(end) / 1e6,
        }
    }
}

/// [`ObjState::quiet_until`] after a read inside the range (see [`Check::quiet_base`]).
#[inline(always)]
fn quiet_until(quiet_base: u64, frozen_reported: bool) -> u64 {
    if quiet_base == 0 {
        0
    } else if frozen_reported {
        u64::MAX
    } else {
        quiet_base
    }
}

/// What every value alert says about its object and event.
struct AlertWords {
    /// The object's baseline key (`u1/holding_register/4`).
    key: String,
    /// The object in words.
    obj: String,
    /// The event's summary line.
    summary: String,
    /// The device in words.
    dev: String,
}

/// The capture time of the event being checked, with the time since the end of learning (the
/// same for every counter) worked out once per event.
#[derive(Debug)]
struct Now {
    ts: Timestamp,
    /// The last `end` asked for and the microseconds since it.
    since: Option<(Timestamp, f64)>,
    /// The event's summary line and device words, built by its first alert and shared by the
    /// others (a read of many registers out of range raises one alert per register).
    words: Option<Box<(String, String)>>,
}

impl Now {
    fn new(ts: Timestamp) -> Now {
        Now {
            ts,
            since: None,
            words: None,
        }
    }

    /// The words of an alert on object `key` of this event (summary and device words built
    /// once per event, see `words`).
    #[cold]
    fn alert_words(&mut self, ev: &IcsEvent, key: KeyRef<'_>) -> AlertWords {
        let w = self.words.get_or_insert_with(|| {
            Box::new((event_summary(ev), device_words(ev.server.ip, ev.unit_id)))
        });
        if w.1.is_empty() {
            w.1 = device_words(ev.server.ip, ev.unit_id);
        }
        let key = key.string();
        AlertWords {
            obj: key_words(&key),
            key,
            summary: w.0.clone(),
            dev: w.1.clone(),
        }
    }

    /// The event's summary line (built once per event, see `words`).
    #[cold]
    fn summary(&mut self, ev: &IcsEvent) -> String {
        // The device words are left empty (never empty once built) until an alert needs them.
        let w = self
            .words
            .get_or_insert_with(|| Box::new((event_summary(ev), String::new())));
        w.0.clone()
    }

    /// Microseconds from `end` to now, as a float.
    #[inline]
    fn micros_since(&mut self, end: Timestamp) -> f64 {
        match self.since {
            Some((e, us)) if e == end => us,
            _ => {
                let us = micros_between(self.ts, end) as f64;
                self.since = Some((end, us));
                us
            }
        }
    }
}

/// `now.micros_since(earlier)` ([`Timestamp::micros_since`]) in 64-bit arithmetic when the
/// difference fits (capture times less than 292 years apart), which the compiler turns into
/// a multiplication instead of a 128-bit division.
#[inline]
fn micros_between(now: Timestamp, earlier: Timestamp) -> u64 {
    let d = now
        .secs
        .checked_sub(earlier.secs)
        .and_then(|s| s.checked_mul(1_000_000_000))
        .and_then(|n| n.checked_add(i64::from(now.nanos) - i64::from(earlier.nanos)));
    match d {
        Some(d) if d <= 0 => 0,
        Some(d) => d.unsigned_abs() / 1000,
        None => now.micros_since(earlier),
    }
}

/// The per-value fields of one address of a cached Modbus request block, kept apart from
/// its [`Check`] (alert texts, counters' growth) so that the per-value loop reads 40 bytes.
#[derive(Clone, Copy, Debug)]
struct Hot {
    /// [`Check::lo`] (+∞ without a profile).
    lo: f64,
    /// [`Check::hi_fast`].
    hi_fast: f64,
    /// [`Check::jump_above`], or NaN (no change path) without a profile or when a run of 1
    /// is a freeze (`freeze_reads` 0).
    step_max: f64,
    /// [`Check::quiet_base`].
    quiet_base: u64,
    /// Index of the object's state in its channel's `states`, or [`UNRESOLVED`] /
    /// [`UNTRACKED`].
    obj: u32,
    /// The address has a profile in the block's direction.
    has: bool,
}

impl Hot {
    fn of(c: Option<&Check>) -> Hot {
        match c {
            Some(c) => Hot {
                lo: c.lo,
                hi_fast: c.hi_fast,
                step_max: if c.freeze_reads == 0 {
                    f64::NAN
                } else {
                    c.jump_above
                },
                quiet_base: c.quiet_base,
                obj: UNRESOLVED,
                has: true,
            },
            None => Hot {
                lo: f64::INFINITY,
                hi_fast: f64::NEG_INFINITY,
                step_max: f64::NAN,
                quiet_base: 0,
                obj: UNRESOLVED,
                has: false,
            },
        }
    }
}

/// The addresses of a cached Modbus request block, as structure of arrays: per address its
/// per-value fields and its compiled profile (`None` when the baseline has none).
#[derive(Debug, Default)]
struct Slots {
    hot: Vec<Hot>,
    checks: Vec<Option<Check>>,
}

impl Slots {
    fn len(&self) -> usize {
        self.hot.len()
    }
}

/// A Modbus request block on any channel: unit, table, first address, addresses examined
/// (the count capped at `max_values_per_access`) and direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    unit: Option<u8>,
    table: ModbusTable,
    start: u32,
    n: u32,
    dir: AccessDir,
}

impl Shape {
    /// The block of access `a` of `ev` (its count capped at `cap`), `None` when `a` is not
    /// to Modbus objects.
    fn of(ev: &IcsEvent, a: &Access, cap: u32) -> Option<Shape> {
        let ObjectRef::Modbus {
            table,
            start,
            count,
        } = &a.object
        else {
            return None;
        };
        Some(Shape {
            unit: ev.unit_id,
            table: *table,
            start: *start,
            n: (*count).min(cap),
            dir: a.dir,
        })
    }
}

/// A Modbus request block on one channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BlockKey {
    chan: ChanKey,
    shape: Shape,
}

impl std::hash::Hash for BlockKey {
    /// Three words for an IPv4 channel instead of one per field (hashed once per access).
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let (client, server, proto) = self.chan;
        match (client, server) {
            (IpAddr::V4(c), IpAddr::V4(s)) => {
                h.write_u64(u64::from(u32::from(c)) << 32 | u64::from(u32::from(s)));
            }
            (c, s) => {
                c.hash(h);
                s.hash(h);
            }
        }
        let b = &self.shape;
        h.write_u64(u64::from(b.start) | u64::from(b.n) << 32);
        let unit = b.unit.map_or(256, u64::from);
        h.write_u64(unit | (b.table as u64) << 9 | (b.dir as u64) << 16 | (proto as u64) << 17);
    }
}

/// A cached block: its channel (index in `chans`), its shape and one slot per address.
///
/// What a read of a block that owns its objects' states touches comes first, in the
/// block's first cache line (the alignment puts every block at the start of one): the
/// per-value fields are one load from it, with no box in between.
#[derive(Debug)]
#[repr(C, align(64))]
struct Block {
    /// Per owned slot: what the block loop reads and writes (empty while the block does
    /// not own its objects' states).
    fast: FastSlots,
    /// The next observation's number, while the block owns its objects' states.
    k: u64,
    /// The rest of the read states of the block's objects, when the block owns them (see
    /// [`OwnedCold`]).
    own: Option<Box<OwnedCold>>,
    chan: usize,
    /// Observations to wait before owning the objects again, and the next wait (doubled
    /// each time ownership ends soon after it began).
    cool: u32,
    cool_len: u32,
    /// Every owned slot is the block slot of the same index (no slot without a profile).
    dense: bool,
    /// The block's unit, table, addresses and direction.
    shape: Shape,
    /// Slots not yet tied to an object state.
    unresolved: u32,
    slots: Slots,
}

impl Block {
    fn new(chan: usize, shape: Shape, slots: Slots, unresolved: u32) -> Block {
        Block {
            fast: FastSlots::default(),
            k: FIRST_OBS,
            own: None,
            chan,
            cool: 0,
            cool_len: 1,
            dense: false,
            shape,
            unresolved,
            slots,
        }
    }
}

/// Observation times a block that owns its objects remembers (a power of two).
const RING: u64 = 64;
/// Integers of at most this magnitude convert to `f64` and back exactly, and their
/// differences do too.
const EXACT: i64 = 1 << 52;
/// The first observation number of a block that takes its objects.
///
/// Observation numbers stay below [`LAST_OBS`] (a block gives its objects back there), so
/// that [`Fast`] holds them in 32 bits; runs begun before a block took them (at most
/// [`MAX_OWNED_RUN`] long) are numbered from above 0.
const FIRST_OBS: u64 = 1 << 31;
/// A block gives its objects back when its next observation would be this one (a run's
/// quiet end after a change, at most `RING` on, is still below `u32::MAX`).
const LAST_OBS: u64 = u32::MAX as u64 - RING;
/// Longest run a block takes over (longer ones stay in [`ObjState`]).
const MAX_OWNED_RUN: u64 = 1 << 30;
/// [`OwnedCold::aux_base`] of a slot without an [`Aux`].
const NO_AUX: u64 = u64::MAX;

/// The change path's window of a slot lies within `±NARROW` (see [`narrow_window`]), and
/// the step it allows is below it: so the [`DETACHED`] value is no step from any value in it,
/// and differences of 32-bit values within a step are exact in 32 bits.
const NARROW: i64 = 1 << 30;
/// [`Fast::last`] of a detached slot (an attached slot's last value is never this one).
const DETACHED: i32 = i32::MIN;

/// The per-value fields of an owned slot for the block loop: the read state of its object
/// as integers, with the thresholds of the repeat and change paths. Kept in lanes of
/// [`FastGroup`]s; this is one slot's, taken out.
///
/// The narrow fields hold what Modbus values need (16-bit registers, coils); a value or
/// state beyond them takes the full checks, which is what the fast paths stand in for.
#[derive(Clone, Copy, Debug)]
struct Fast {
    /// The last value read ([`DETACHED`] with `qend` 0 when the slot is detached: its
    /// [`ObjState`] holds the state, every value takes the full checks).
    last: i32,
    /// A repeat at observation `k` is quiet (only counted) while `k < qend`.
    qend: u32,
    /// A change to `x` is quiet when `x − lo` (wrapping, unsigned) is at most `span` ...
    lo: i32,
    span: u32,
    /// ... and `x − last + step` (wrapping, unsigned) at most `step2` (= 2 × `step`; a
    /// step of 0 is no change path).
    step: u32,
    step2: u32,
    /// `min(quiet_base, RING − 1)`: `qend − base` after a change.
    qbc: u32,
    /// The run of `last` began at observation `base` (its length before observation `k`
    /// is `k − base`).
    base: u32,
}

/// Owned slots a [`FastGroup`] holds: the 32-bit lanes of a 128-bit vector, the width every
/// x86-64 processor has.
const LANES: usize = 4;

/// The [`Fast`] fields of [`LANES`] owned slots, field by field, so that the block loop
/// tests and updates a group of values at once, without a branch per value (whether a noisy
/// register repeats or changes is a coin toss to a branch predictor). Two cache lines; the
/// repeat path's fields in the first.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct FastGroup {
    last: [i32; LANES],
    qend: [u32; LANES],
    lo: [i32; LANES],
    span: [u32; LANES],
    step: [u32; LANES],
    step2: [u32; LANES],
    qbc: [u32; LANES],
    base: [u32; LANES],
}

/// A group's lanes past the block's last owned slot (never read: see [`owned_prefix`]).
const SPARE_GROUP: FastGroup = FastGroup {
    last: [DETACHED; LANES],
    qend: [0; LANES],
    lo: [0; LANES],
    span: [0; LANES],
    step: [0; LANES],
    step2: [0; LANES],
    qbc: [0; LANES],
    base: [0; LANES],
};

/// The [`Fast`] fields of a block's owned slots, in groups of [`LANES`].
#[derive(Debug, Default)]
struct FastSlots {
    groups: Vec<FastGroup>,
    /// The number of owned slots (the last group's lanes from `len % LANES` on are spare).
    len: usize,
}

impl FastSlots {
    fn len(&self) -> usize {
        self.len
    }

    /// Owned slot `i`'s fields.
    fn get(&self, i: usize) -> Option<Fast> {
        if i >= self.len {
            return None;
        }
        lane_get(self.groups.get(i / LANES)?, i % LANES)
    }

    /// Sets owned slot `i`'s fields (nothing when there is no slot `i`).
    fn set(&mut self, i: usize, f: Fast) {
        if i < self.len {
            if let Some(g) = self.groups.get_mut(i / LANES) {
                lane_set(g, i % LANES, f);
            }
        }
    }

    /// Runs `op` on owned slot `i`'s fields and keeps what it leaves there; `None` when
    /// there is no slot `i`.
    #[inline(always)]
    fn update<R>(&mut self, i: usize, op: impl FnOnce(&mut Fast) -> R) -> Option<R> {
        let mut f = self.get(i)?;
        let r = op(&mut f);
        self.set(i, f);
        Some(r)
    }
}

impl FromIterator<Fast> for FastSlots {
    fn from_iter<I: IntoIterator<Item = Fast>>(iter: I) -> FastSlots {
        let mut s = FastSlots::default();
        for f in iter {
            if s.len % LANES == 0 {
                s.groups.push(SPARE_GROUP);
            }
            s.len += 1;
            s.set(s.len - 1, f);
        }
        s
    }
}

/// Lane `l` of group `g` as a [`Fast`] (`None` when `l` is not below [`LANES`]).
#[inline(always)]
fn lane_get(g: &FastGroup, l: usize) -> Option<Fast> {
    Some(Fast {
        last: *g.last.get(l)?,
        qend: *g.qend.get(l)?,
        lo: *g.lo.get(l)?,
        span: *g.span.get(l)?,
        step: *g.step.get(l)?,
        step2: *g.step2.get(l)?,
        qbc: *g.qbc.get(l)?,
        base: *g.base.get(l)?,
    })
}

/// Sets lane `l` of group `g` to `f` (nothing when `l` is not below [`LANES`]).
#[inline(always)]
fn lane_set(g: &mut FastGroup, l: usize, f: Fast) {
    fn put<T>(d: Option<&mut T>, v: T) {
        if let Some(d) = d {
            *d = v;
        }
    }
    put(g.last.get_mut(l), f.last);
    put(g.qend.get_mut(l), f.qend);
    put(g.lo.get_mut(l), f.lo);
    put(g.span.get_mut(l), f.span);
    put(g.step.get_mut(l), f.step);
    put(g.step2.get_mut(l), f.step2);
    put(g.qbc.get_mut(l), f.qbc);
    put(g.base.get_mut(l), f.base);
}

/// What an owned slot's state holds beyond [`Fast`] when it is not the plain one after a
/// change (valid while [`OwnedCold::aux_base`] is the slot's `base`).
#[derive(Clone, Copy, Debug, Default)]
struct Aux {
    since: Timestamp,
    frozen: bool,
    quiet: u64,
}

/// The read states of a block's objects kept by the block itself, as integers, when it is
/// the only block of its channel that reads them: a value equal to the last one is counted
/// by one compare, a quiet change costs three stores, and the run's first time comes from
/// the ring of observation times. Every other case goes through [`read`] on the object's
/// [`ObjState`], rebuilt for it and taken back after. Another block reading one of its
/// objects, or the cache being emptied, writes every state back ([`release`]).
///
/// The block holds what its loop touches per value ([`Block::fast`]) and its observation
/// number; the rest is here, boxed.
#[derive(Debug)]
struct OwnedCold {
    /// Capture time of observation `k` at `ring[k % RING]`, for `k >= FIRST_OBS`.
    ring: [Timestamp; RING as usize],
    /// Per owned slot: its index in the block.
    pos: Vec<u32>,
    /// Per owned slot: the observation of the run its `aux` is for, or [`NO_AUX`].
    aux_base: Vec<u64>,
    aux: Vec<Aux>,
    /// Per owned slot: [`Check::quiet_base`].
    qb: Vec<u64>,
    /// Per owned slot: its state is in its [`ObjState`], not in `fast`.
    detached: Vec<bool>,
}

/// `(lo, span, step)` of [`Fast`] for a slot's hot fields: integers that pass are inside
/// the float range and step tests of [`read_change`] (an empty window when there is no
/// change path).
fn int_window(h: &Hot) -> (i64, u64, u64) {
    const LIM: f64 = EXACT as f64;
    let empty = (0, 0, 0);
    // Written so that a NaN anywhere gives the empty window.
    let usable = h.step_max >= 0.0 && h.lo <= h.hi_fast && h.lo <= LIM && h.hi_fast >= -LIM;
    if !usable {
        return empty;
    }
    let lo = if h.lo < -LIM {
        -EXACT
    } else {
        h.lo.ceil() as i64
    };
    let hi = if h.hi_fast > LIM {
        EXACT
    } else {
        h.hi_fast.floor() as i64
    };
    if lo > hi {
        return empty;
    }
    let step = if h.step_max > LIM {
        EXACT as u64
    } else {
        h.step_max.floor() as u64
    };
    (lo, hi.abs_diff(lo), step)
}

/// `(lo, span, step)` of [`Fast`] from those of [`int_window`]: the window cut to
/// `±NARROW` and the step to what the narrow field holds (both only let fewer values take
/// the change path); an empty window has step 0.
fn narrow_window((lo, span, step): (i64, u64, u64)) -> (i32, u32, u32) {
    // `lo` is at least −EXACT and `span` at most 2 × EXACT: no overflow.
    let hi = lo + span as i64;
    let (lo, hi) = (lo.max(-NARROW), hi.min(NARROW));
    let step = step.min(u64::from(u16::MAX));
    match (
        i32::try_from(lo),
        u32::try_from(hi - lo),
        u16::try_from(step),
    ) {
        (Ok(lo), Ok(span), Ok(step)) if step > 0 => (lo, span, u32::from(step)),
        _ => (0, 0, 0),
    }
}

impl OwnedCold {
    /// The state of owned slot `i` (its fields `f`) before observation `k` (not detached).
    fn state(&self, f: &Fast, i: usize, k: u64) -> Option<ObjState> {
        let aux = self
            .aux_base
            .get(i)
            .filter(|&&b| b == u64::from(f.base))
            .and_then(|_| self.aux.get(i));
        let since = match aux {
            Some(a) => a.since,
            None => *self.ring.get((f.base as u64 % RING) as usize)?,
        };
        Some(ObjState {
            last: f64::from(f.last),
            run: k.wrapping_sub(u64::from(f.base)),
            run_since: since,
            frozen_reported: aux.is_some_and(|a| a.frozen),
            quiet_until: match aux {
                Some(a) => a.quiet,
                None => *self.qb.get(i)?,
            },
        })
    }

    /// Takes `st` into owned slot `i` before observation `k` (`ring`: the observation
    /// times back to the run's start may be in the ring), or detaches the slot when the
    /// state is not one of integers.
    fn take(&mut self, f: &mut Fast, i: usize, st: &ObjState, k: u64, ring: bool) {
        let (Some(d), Some(ab), Some(aux), Some(&qb)) = (
            self.detached.get_mut(i),
            self.aux_base.get_mut(i),
            self.aux.get_mut(i),
            self.qb.get(i),
        ) else {
            return;
        };
        let x = st.last as i64;
        let exact = (x as f64).to_bits() == st.last.to_bits();
        let narrow = i32::try_from(x).ok().filter(|&x| x != DETACHED);
        let (Some(x), true) = (narrow, exact && st.run > 0 && st.run <= MAX_OWNED_RUN) else {
            *d = true;
            f.last = DETACHED;
            f.qend = 0;
            return;
        };
        *d = false;
        // `k` is below LAST_OBS and at least FIRST_OBS, the run at most MAX_OWNED_RUN:
        // `base` is a u32 above 0.
        let base = k - st.run;
        f.last = x;
        f.base = base as u32;
        let in_ring = ring
            && st.run < RING - 1
            && base >= FIRST_OBS
            && self.ring.get((base % RING) as usize) == Some(&st.run_since);
        if in_ring && !st.frozen_reported && st.quiet_until == qb {
            *ab = NO_AUX;
            f.qend = f.base + f.qbc;
        } else {
            *ab = base;
            *aux = Aux {
                since: st.run_since,
                frozen: st.frozen_reported,
                quiet: st.quiet_until,
            };
            // A quiet end beyond u32 ends the repeat path sooner: the full checks then.
            f.qend = base.saturating_add(st.quiet_until).min(u64::from(u32::MAX)) as u32;
        }
    }
}

/// Gives the states of block `bi`'s objects back to their [`ObjState`]s and ends its
/// ownership.
#[cold]
fn release(store: &mut [Block], chans: &mut [Chan], bi: usize) {
    if let Some(block) = store.get_mut(bi) {
        release_block(block, chans);
    }
}

/// [`release`] of `block`.
#[cold]
#[inline(never)]
fn release_block(block: &mut Block, chans: &mut [Chan]) {
    let Some(c) = block.own.take() else {
        return;
    };
    let fast = std::mem::take(&mut block.fast);
    let k = block.k;
    block.cool_len = if k - FIRST_OBS >= 64 {
        1
    } else {
        (block.cool_len * 2).min(1024)
    };
    block.cool = block.cool_len;
    let Some(chan) = chans.get_mut(block.chan) else {
        return;
    };
    for (i, &p) in c.pos.iter().enumerate() {
        let (Some(h), Some(f)) = (block.slots.hot.get(p as usize), fast.get(i)) else {
            continue;
        };
        if let Some(o) = chan.owner.get_mut(h.obj as usize) {
            *o = NO_BLOCK;
        }
        if c.detached.get(i) == Some(&false) {
            if let (Some(st), Some(s)) = (c.state(&f, i, k), chan.states.get_mut(h.obj as usize)) {
                *s = st;
            }
        }
    }
}

/// Takes the read states of the objects of block `bi` (cached), or of `slots` of channel
/// `ci` (a block being made), back from every other block that owns one.
#[inline(never)]
fn free_objects(
    store: &mut [Block],
    chans: &mut [Chan],
    bi: Option<u32>,
    slots: Option<(usize, &Slots)>,
) {
    loop {
        let (ci, hot) = match (bi, slots) {
            (Some(bi), _) => match store.get(bi as usize) {
                Some(b) => (b.chan, &b.slots.hot),
                None => return,
            },
            (None, Some((ci, s))) => (ci, &s.hot),
            (None, None) => return,
        };
        let Some(chan) = chans.get(ci) else {
            return;
        };
        if chan.owner.is_empty() {
            return;
        }
        let other = hot.iter().find_map(|h| {
            chan.owner
                .get(h.obj as usize)
                .copied()
                .filter(|&o| o != NO_BLOCK && Some(o) != bi)
        });
        match other {
            Some(o) => release(store, chans, o as usize),
            None => return,
        }
    }
}

/// Makes block `bi` (a read block, cached, every slot tied to a tracked object none of
/// which another block owns) the owner of its objects' read states.
#[cold]
fn acquire(store: &mut [Block], chans: &mut [Chan], bi: u32) {
    let Some(block) = store.get_mut(bi as usize) else {
        return;
    };
    let Some(chan) = chans.get_mut(block.chan) else {
        return;
    };
    let hot = &block.slots.hot;
    let owned = |h: &Hot| {
        chan.owner
            .get(h.obj as usize)
            .is_some_and(|&o| o != NO_BLOCK)
    };
    if block.unresolved > 0
        || hot.iter().any(|h| h.obj >= UNTRACKED || h.has && owned(h))
        || !hot.iter().any(|h| h.has)
    {
        return;
    }
    if chan.owner.len() < chan.states.len() {
        chan.owner.resize(chan.states.len(), NO_BLOCK);
    }
    let m = hot.iter().filter(|h| h.has).count();
    let mut fast = Vec::with_capacity(m);
    let mut c = OwnedCold {
        ring: [Timestamp::default(); RING as usize],
        pos: Vec::with_capacity(m),
        aux_base: vec![NO_AUX; m],
        aux: vec![Aux::default(); m],
        qb: Vec::with_capacity(m),
        detached: vec![true; m],
    };
    for (p, h) in hot.iter().enumerate().filter(|(_, h)| h.has) {
        let (lo, span, step) = narrow_window(int_window(h));
        // `p` is below the block's length, a u32.
        c.pos.push(p as u32);
        c.qb.push(h.quiet_base);
        fast.push(Fast {
            base: 0,
            qend: 0,
            last: DETACHED,
            lo,
            span,
            step,
            step2: step * 2,
            // Below RING: a u32.
            qbc: h.quiet_base.min(RING - 1) as u32,
        });
    }
    for (i, f) in fast.iter_mut().enumerate() {
        let Some(h) = c.pos.get(i).and_then(|&p| hot.get(p as usize)) else {
            continue;
        };
        if let Some(o) = chan.owner.get_mut(h.obj as usize) {
            *o = bi;
        }
        if let Some(st) = chan.states.get(h.obj as usize) {
            c.take(f, i, st, FIRST_OBS, false);
        }
    }
    block.dense = m == hot.len();
    block.k = FIRST_OBS;
    block.fast = fast.into_iter().collect();
    block.own = Some(Box::new(c));
}

/// Checks the values of a read of `block` when it owns its objects' states (false, nothing
/// done, when it does not): the repeat and change paths first, and from the first value
/// that needs the full checks on, [`owned_rest`] (off the common path). `now`: the event's,
/// or `None` (then made only when a value needs the full checks).
#[inline(always)]
fn run_owned(
    ev: &IcsEvent,
    now: Option<&mut Now>,
    values: &AccessValues,
    block: &mut Block,
    chans: &mut [Chan],
    out: &mut Vec<Alert>,
) -> bool {
    let Some(c) = block.own.as_deref_mut() else {
        return false;
    };
    let k = block.k;
    if let Some(t) = c.ring.get_mut((k % RING) as usize) {
        *t = ev.ts;
    }
    // Below LAST_OBS: a u32.
    let done = if block.dense {
        match (values.compact(), values.as_list()) {
            (Some(words), _) => owned_prefix(&mut block.fast, words, k as u32),
            (None, Some(list)) => owned_prefix(&mut block.fast, list, k as u32),
            (None, None) => 0,
        }
    } else {
        0
    };
    if done < block.fast.len() {
        owned_rest(ev, now, values, block, chans, out, done);
    }
    block.k = k + 1;
    if block.k >= LAST_OBS {
        release_block(block, chans);
    }
    true
}

/// How many of the first values of a dense owned block took the repeat or change path
/// ([`owned_fast`]), up to the first that needs the full checks: over a list of [`Value`]s,
/// or over words kept compact (registers, or bits as 0 and 1: the numbers the paths see for
/// [`Value::Int`] and [`Value::Bool`]).
///
/// A group of [`LANES`] values at a time ([`group_fast`]); the values after the last whole
/// group, or from a group with one that needs the full checks, one by one.
#[inline(never)]
fn owned_prefix<V: OwnedNum>(fast: &mut FastSlots, values: &[V], k: u32) -> usize {
    let n = fast.len.min(values.len());
    let mut done = 0;
    for (g, v) in fast.groups.iter_mut().zip(values.chunks_exact(LANES)) {
        if done + LANES > n {
            break;
        }
        match owned_lanes(v) {
            Some(x) if group_fast(g, &x, k) => done += LANES,
            _ => break,
        }
    }
    // (`owned_fast` changes nothing of a slot whose value it does not take.)
    while let Some(v) = values.get(done).filter(|_| done < n) {
        if fast.update(done, |f| owned_fast(f, v, k)) != Some(true) {
            break;
        }
        done += 1;
    }
    done
}

/// [`LANES`] values as the repeat and change paths take them, or `None` when one needs the
/// full checks.
#[inline(always)]
fn owned_lanes<V: OwnedNum>(v: &[V]) -> Option<[i32; LANES]> {
    let v: &[V; LANES] = v.try_into().ok()?;
    let mut x = [0; LANES];
    for (x, v) in x.iter_mut().zip(v) {
        *x = v.owned_num()?;
    }
    Some(x)
}

/// [`owned_fast`] on every lane of group `g` at once, without a branch per lane: true, with
/// each lane updated as `owned_fast` updates it, when every value took the repeat or change
/// path; false, with nothing changed, otherwise.
#[inline(always)]
// Every index is below LANES, the length of every array here: no bounds checks, and the
// lanes' loops compile to vector instructions.
#[allow(clippy::indexing_slicing)]
fn group_fast(g: &mut FastGroup, x: &[i32; LANES], k: u32) -> bool {
    // Per lane, all ones or zero (`&` and `|`, not `&&` and `||`: no branches).
    let mut ok = [0u32; LANES];
    let mut change = [0u32; LANES];
    for j in 0..LANES {
        let repeat = mask(x[j] == g.last[j]);
        let quiet = mask(k < g.qend[j]);
        // Exact in 32 bits (see NARROW): the window is within ±NARROW and the step below it.
        let within = mask((x[j].wrapping_sub(g.lo[j]) as u32) <= g.span[j])
            & mask((x[j].wrapping_sub(g.last[j]) as u32).wrapping_add(g.step[j]) <= g.step2[j]);
        ok[j] = (repeat & quiet) | (!repeat & within);
        change[j] = !repeat & within;
    }
    if ok.iter().fold(u32::MAX, |a, &o| a & o) == 0 {
        return false;
    }
    for j in 0..LANES {
        // A repeat's value is its last one.
        g.last[j] = x[j];
        let m = change[j];
        g.base[j] = (k & m) | (g.base[j] & !m);
        // `k` is below LAST_OBS, `qbc` below RING: no overflow.
        g.qend[j] = (k.wrapping_add(g.qbc[j]) & m) | (g.qend[j] & !m);
    }
    true
}

/// All ones when `b`, else zero.
#[inline(always)]
fn mask(b: bool) -> u32 {
    0u32.wrapping_sub(u32::from(b))
}

/// A value as the repeat and change paths of an owned slot take it.
trait OwnedNum {
    /// The value as a number from 0 to `i32::MAX`, or `None` when it needs the full checks.
    fn owned_num(&self) -> Option<i32>;
}

impl OwnedNum for Value {
    #[inline(always)]
    fn owned_num(&self) -> Option<i32> {
        // Negative integers and those beyond 31 bits take the full checks (Modbus values
        // are neither; the test is one compare).
        match self {
            Value::Int(x) if *x as u64 <= i32::MAX as u64 => Some(*x as i32),
            Value::Bool(b) => Some(i32::from(*b)),
            _ => None,
        }
    }
}

impl OwnedNum for u16 {
    #[inline(always)]
    fn owned_num(&self) -> Option<i32> {
        Some(i32::from(*self))
    }
}

/// [`run_owned`] from owned slot `from` on (every slot before it took the repeat or change
/// path; `from` is 0 for a block that is not dense): the values that need them get the full
/// checks ([`owned_slow`]), the slots without a value too.
#[cold]
#[inline(never)]
fn owned_rest(
    ev: &IcsEvent,
    now: Option<&mut Now>,
    values: &AccessValues,
    block: &mut Block,
    chans: &mut [Chan],
    out: &mut Vec<Alert>,
    from: usize,
) {
    let mut mine;
    let now = match now {
        Some(now) => now,
        None => {
            mine = Now::new(ev.ts);
            &mut mine
        }
    };
    let Block {
        fast,
        k,
        own: Some(c),
        chan,
        dense,
        shape,
        slots,
        ..
    } = block
    else {
        return;
    };
    // Below LAST_OBS: a u32.
    let (k, dense) = (*k, *dense);
    let k32 = k as u32;
    // Everything the full checks need, in one record.
    let mut s = Slow {
        ev,
        now,
        key: shape,
        slots,
        c,
        k,
        chans,
        chan: *chan,
        out,
    };
    let n = fast.len();
    if dense {
        for (i, v) in (0..n).zip(values).skip(from) {
            fast.update(i, |f| {
                if !owned_fast(f, &*v, k32) {
                    owned_slow(&mut s, i, Some(&v), f);
                }
            });
        }
        // Slots without a value (a short answer).
        for i in values.len()..n {
            fast.update(i, |f| owned_slow(&mut s, i, None, f));
        }
    } else {
        for i in 0..n {
            let v = s.c.pos.get(i).and_then(|&p| values.get(p as usize));
            fast.update(i, |f| {
                if !v.as_deref().is_some_and(|v| owned_fast(f, v, k32)) {
                    owned_slow(&mut s, i, v.as_deref(), f);
                }
            });
        }
    }
}

/// What the full checks of an owned slot need besides the slot (see [`owned_slow`]).
struct Slow<'a, 'b> {
    ev: &'a IcsEvent,
    now: &'a mut Now,
    key: &'a Shape,
    slots: &'a Slots,
    c: &'a mut OwnedCold,
    /// The observation's number.
    k: u64,
    /// The channels, and the block's (its objects' states are looked up only here).
    chans: &'a mut [Chan],
    chan: usize,
    out: &'b mut Vec<Alert>,
}

/// The repeat and change paths of an owned slot for value `v` at observation `k`: true
/// when `v` is an integer (or boolean) that [`read`] would only count (a repeat while the
/// run is quiet) or start a quiet run with (a change inside the range that is no jump).
#[inline(always)]
fn owned_fast(f: &mut Fast, v: &impl OwnedNum, k: u32) -> bool {
    let Some(x) = v.owned_num() else {
        return false;
    };
    if x == f.last {
        return k < f.qend;
    }
    // Exact in 32 bits (see NARROW): the window is within ±NARROW and the step below it.
    if (x.wrapping_sub(f.lo) as u32) <= f.span
        && (x.wrapping_sub(f.last) as u32).wrapping_add(f.step) <= f.step2
    {
        f.last = x;
        f.base = k;
        // `k` is below LAST_OBS, `qbc` below RING: no overflow.
        f.qend = k + f.qbc;
        return true;
    }
    false
}

/// The full checks of the value `v` of owned slot `i` (its fields `f`, context `s`): its
/// state rebuilt in its [`ObjState`], [`read`], and taken back.
#[cold]
#[inline(never)]
fn owned_slow(s: &mut Slow<'_, '_>, i: usize, v: Option<&Value>, f: &mut Fast) {
    let Slow {
        ev,
        now,
        key,
        slots,
        c,
        k,
        chans,
        chan,
        out,
        ..
    } = s;
    let k = *k;
    let Some(&p) = c.pos.get(i) else {
        return;
    };
    let p = p as usize;
    let (Some(h), Some(Some(chk))) = (slots.hot.get(p), slots.checks.get(p)) else {
        return;
    };
    let Some(st) = chans
        .get_mut(*chan)
        .and_then(|ch| ch.states.get_mut(h.obj as usize))
    else {
        return;
    };
    if c.detached.get(i) == Some(&false) {
        if let Some(s) = c.state(f, i, k) {
            *st = s;
        }
    }
    if let Some(x) = v.and_then(numeric) {
        read(
            ev,
            now,
            || KeyRef::Modbus(slot_addr(key, p)),
            chk,
            Some(st),
            x,
            out,
        );
    }
    c.take(f, i, st, k + 1, true);
}

/// A profile compiled on first use.
#[derive(Debug, Default)]
enum Lazy {
    /// Not looked up yet.
    #[default]
    NotYet,
    /// The baseline has no profile for it.
    Missing,
    /// The compiled profile.
    Found(Check),
}

/// A tracked named object (OPC UA node, other) on one channel.
#[derive(Debug)]
struct NamedObj {
    /// Its baseline key.
    key: String,
    /// Index of its state in the channel's `states`.
    obj: u32,
    read: Lazy,
    written: Lazy,
    /// The per-value fields of `read` for its repeat and change paths (those of no profile
    /// until it is compiled and found: no fast path then).
    hot: Hot,
}

/// Most cached blocks a channel lists in [`Chan::blocks`] (beyond: found by a hash lookup).
const MAX_CHAN_BLOCKS: usize = 64;

/// A block of a channel in [`Chan::blocks`]: the rest of its [`BlockKey`] in two words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SubKey {
    range: u64,
    kind: u32,
}

impl SubKey {
    #[inline]
    fn of(key: &Shape) -> SubKey {
        SubKey {
            range: u64::from(key.start) | u64::from(key.n) << 32,
            kind: key.unit.map_or(256, u32::from)
                | (key.table as u32) << 9
                | (key.dir as u32) << 16,
        }
    }
}

/// What the detector knows of one channel.
#[derive(Debug, Default)]
struct Chan {
    /// Cached blocks of the channel with their index in `Values::store` (at most
    /// [`MAX_CHAN_BLOCKS`], all in `Values::blocks` too).
    blocks: CycleMap<SubKey, u32>,
    /// Tracked Modbus objects: index in `states`.
    modbus: FastMap<AddrKey, u32>,
    /// Tracked named objects by key: index in `named_objs`.
    named: FastMap<String, u32>,
    /// The tracked named objects.
    named_objs: Vec<NamedObj>,
    /// Named objects as events name them, with their index in `named_objs` (at most
    /// [`MAX_NAMED_MEMO`]): found by a compare instead of building the key and hashing it;
    /// looked up after the last hit first (a polling cycle hits it).
    named_memo: CycleMap<ObjectRef, u32>,
    /// Per tracked object: last value read and its run.
    states: Vec<ObjState>,
    /// Per tracked object: the block (index in `Values::store`) that owns its read state
    /// ([`Owned`]), or [`NO_BLOCK`].
    owner: Vec<u32>,
}

/// Most accesses of a named request whose objects [`Values`] keeps by request number (an
/// engine numbers requests of at most 64 objects).
const MAX_NAMED_REQ_ACCESSES: usize = 64;

/// No slot or object (in [`Values::named_by_req`] and [`Values::named_reqs`]).
const NO_NAMED: u32 = u32::MAX;

/// Most named objects a channel remembers in [`Chan::named_memo`].
const MAX_NAMED_MEMO: usize = 64;

impl Chan {
    /// Remembers that `o` names `named_objs[i]`, while the memo has room.
    fn memo_add(&mut self, o: &ObjectRef, i: u32) {
        // Checked first: `o` is cloned only when it is kept.
        if self.named_memo.len() < MAX_NAMED_MEMO {
            self.named_memo.push_within(MAX_NAMED_MEMO, o.clone(), i);
        }
    }
}

/// No block (in [`Values::by_req`]).
const NO_BLOCK: u32 = u32::MAX;

/// What the engine keeps in its memo of a prepared request of what the detector found of
/// it (see [`Values::on_hinted`]): the block of its access (index in `store`), while the
/// cache was emptied `resets` times (the block of a request stays the same until then).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hint {
    bi: u32,
    resets: u64,
}

/// No hint (see [`Hint`]): no cache was ever emptied `u64::MAX` times.
pub(crate) const NO_HINT: Hint = Hint {
    bi: NO_BLOCK,
    resets: u64::MAX,
};

/// The values detector.
#[derive(Debug)]
pub struct Values {
    cfg: ValuesConfig,
    /// Channel → index in `chans`.
    chan_index: ChanSlots<usize>,
    /// Per channel: objects and read states.
    chans: Vec<Chan>,
    /// Compiled Modbus request blocks of every channel: index in `store`.
    blocks: FastMap<BlockKey, u32>,
    /// The blocks.
    store: Vec<Block>,
    /// By request number ([`EventCtx::req`]): the index in `store` of the block of each of
    /// its (at most two) accesses, [`NO_BLOCK`] when not known yet (emptied with `store`).
    by_req: Vec<[u32; 2]>,
    /// By request number of a named request ([`EventCtx::req`] without a Modbus signature):
    /// its index in `named_reqs` ([`NO_NAMED`]: none yet).
    named_by_req: Vec<u32>,
    /// Named requests: their channel (index in `chans`) and, per access, the index of its
    /// object in the channel's `named_objs` ([`NO_NAMED`]: not known yet). A channel's named
    /// objects are never dropped, so an index once found stays right.
    named_reqs: Vec<(usize, Vec<u32>)>,
    /// Objects tracked, over all channels.
    n_states: usize,
    /// Values of objects not tracked because the state table was full (they are still checked
    /// against their profiles, but cannot jump or freeze).
    pub states_dropped: u64,
    /// Slots in `blocks`.
    cached_slots: usize,
    /// Times `blocks` was emptied because it held `max_cached_slots` (the blocks are
    /// compiled again when next seen).
    pub cache_resets: u64,
    /// Leave the words of read-out-of-range alerts to whoever takes them ([`Alert::resolve`]:
    /// the engine's aggregator), instead of writing them before they leave.
    defer_read_texts: bool,
    /// A named object's key, reused.
    key_buf: String,
    /// The end of learning as last parsed: the baseline's `learned.last` and its time
    /// (parsed again only when the text changes, not per block compiled).
    learned_end: (String, Option<Timestamp>),
    /// Take the fast paths: the repeat and change paths of reads in blocks, the memo of
    /// named objects (false only in tests, to compare them with the full checks).
    fast_paths: bool,
    /// `max_values_per_access` as a block length.
    cap: u32,
    /// Most channels in `chans` ([`MAX_CHANS`]; smaller in tests).
    max_chans: usize,
    /// Accesses not checked because their channel was new and `max_chans` channels were kept
    /// (counted once per access, or once per event for named objects).
    pub chans_dropped: u64,
    /// Tests: events checked through a [`Hint`] that held.
    #[cfg(test)]
    hint_hits: u64,
}

/// Most channels whose objects [`Values`] tracks (each about 250 bytes with its index, more
/// with its objects and blocks). A plant has a few hundred channels; a block none of whose
/// addresses has a profile (a channel and server new to the baseline) keeps no check and no
/// object state, so 16,384 such channels hold about 10 MB. Beyond, the values of a new
/// channel's accesses are not checked (counted).
const MAX_CHANS: usize = 16_384;

fn merge(into: &mut Option<Normal>, p: &ValueProfile, who: IpAddr, own: bool, side: &'static str) {
    match into {
        None => {
            *into = Some(Normal {
                min: p.min,
                max: p.max,
                max_step: p.max_step,
                max_same_run: p.max_same_run,
                distinct: p.distinct,
                count: p.count,
                who,
                more_who: Vec::new(),
                own,
                ref_client: who,
                side,
                monotonic: p.monotonic,
                counter: None,
            })
        }
        Some(n) => {
            n.min = n.min.min(p.min);
            n.max = n.max.max(p.max);
            n.max_step = n.max_step.max(p.max_step);
            n.max_same_run = n.max_same_run.max(p.max_same_run);
            n.distinct = n.distinct.max(p.distinct);
            n.count += p.count;
            n.more_who.push(who);
            n.monotonic &= p.monotonic;
        }
    }
}

/// The normal values of `key` in direction `dir`: the channel's own profile if it has one,
/// else the union over every baseline channel to the same server.
fn normal_of(
    b: &Baseline,
    own: Option<&Channel>,
    ev: &IcsEvent,
    key: &str,
    dir: AccessDir,
) -> Option<Normal> {
    fn pick(o: &crate::baseline::ObjectProfile, dir: AccessDir) -> Option<&ValueProfile> {
        match dir {
            AccessDir::Read => o.read.as_ref(),
            AccessDir::Write => o.written.as_ref(),
        }
    }
    let side = match dir {
        AccessDir::Read => "read",
        AccessDir::Write => "written",
    };
    if let Some(ch) = own {
        if let Some(p) = ch.objects.get(key).and_then(|o| pick(o, dir)) {
            let mut n = None;
            merge(&mut n, p, ch.client, true, side);
            return n;
        }
    }
    let mut n = None;
    for ch in b.channels_to(ev.server.ip, ev.proto) {
        if let Some(p) = ch.objects.get(key).and_then(|o| pick(o, dir)) {
            merge(&mut n, p, ch.client, false, side);
        }
    }
    n
}

/// Sets a counter's learnt rate of growth and the end of learning (`end`, parsed from
/// `b.learned.last`).
fn with_counter(mut n: Normal, b: &Baseline, end: Option<Timestamp>) -> Normal {
    if let (true, Some(end)) = (n.monotonic, end) {
        let rate = (n.max - n.min) / b.learned.duration_s.max(1.0);
        n.counter = rate.is_finite().then_some((rate, end));
    }
    n
}

/// What compiling the profiles of one event's objects needs, looked up once.
struct Compiler<'a> {
    cfg: &'a ValuesConfig,
    b: &'a Baseline,
    ev: &'a IcsEvent,
    /// The event's channel in the baseline.
    own: Option<&'a Channel>,
    /// The end of learning.
    end: Option<Timestamp>,
}

impl<'a> Compiler<'a> {
    /// `memo`: the end of learning as last parsed (see [`Values::learned_end`]).
    fn new(
        cfg: &'a ValuesConfig,
        b: &'a Baseline,
        ev: &'a IcsEvent,
        memo: &mut (String, Option<Timestamp>),
    ) -> Self {
        if memo.0 != b.learned.last {
            memo.0.clone_from(&b.learned.last);
            memo.1 = Timestamp::parse_rfc3339(&b.learned.last);
        }
        Compiler {
            cfg,
            b,
            ev,
            own: b.channel(ev.client.ip, ev.server.ip, ev.proto),
            end: memo.1,
        }
    }

    /// The compiled profile of object `key` on the event's channel in direction `dir`.
    fn check(&self, key: &str, dir: AccessDir) -> Option<Check> {
        normal_of(self.b, self.own, self.ev, key, dir)
            .map(|n| Check::new(self.cfg, self.b, with_counter(n, self.b, self.end), dir))
    }

    /// The slots of a Modbus request block, every address's profile compiled.
    fn block(&self, key: &Shape) -> Slots {
        let n = key.n as usize;
        let mut slots = Slots {
            hot: Vec::with_capacity(n),
            checks: Vec::with_capacity(n),
        };
        // Every key of the block shares its unit and table: that prefix is written once,
        // each address's digits after it (the string `ObjKey::write_key` gives).
        let mut buf = String::with_capacity(32);
        block_key_prefix(key, &mut buf);
        let prefix = buf.len();
        for i in 0..key.n {
            buf.truncate(prefix);
            push_decimal(&mut buf, u64::from(key.start.saturating_add(i)));
            let check = self.check(&buf, key.dir);
            slots.hot.push(Hot::of(check.as_ref()));
            slots.checks.push(check);
        }
        if slots.checks.iter().all(Option::is_none) {
            // Nothing to check (a channel the baseline does not know): no room for checks,
            // read as `None` as each of them would be.
            slots.checks = Vec::new();
        }
        slots
    }
}

/// The part of the object keys of block `key` before the address (`u1/holding_register/`):
/// with the address in decimal after it, the string [`crate::baseline::ObjKey::write_key`]
/// writes.
fn block_key_prefix(key: &Shape, buf: &mut String) {
    buf.clear();
    buf.push('u');
    match key.unit {
        Some(u) => push_decimal(buf, u64::from(u)),
        None => buf.push('-'),
    }
    buf.push('/');
    buf.push_str(table_key(key.table));
    buf.push('/');
}

fn range_words(n: &Normal) -> String {
    range_text(n.min, n.max)
}

/// [`range_words`] of a range `min`..`max`.
fn range_text(min: f64, max: f64) -> String {
    if min == max {
        format!("always {}", fmt_num(min))
    } else {
        format!("{}–{}", fmt_num(min), fmt_num(max))
    }
}

/// An object's key, turned into the baseline file's string only when an alert needs it.
#[derive(Clone, Copy, Debug)]
enum KeyRef<'a> {
    /// A Modbus address.
    Modbus(AddrKey),
    /// A named object's key.
    Named(&'a str),
}

impl KeyRef<'_> {
    /// The key, owned (for words written later).
    fn owned(self) -> OwnedKey {
        match self {
            KeyRef::Modbus(k) => OwnedKey::Modbus(k),
            KeyRef::Named(s) => OwnedKey::Named(s.into()),
        }
    }

    fn string(self) -> String {
        match self {
            KeyRef::Modbus((unit, table, addr)) => modbus_object_key(unit, table, addr),
            KeyRef::Named(s) => s.to_string(),
        }
    }
}

/// A new object state in `states`, while the state table has room.
fn new_state(states: &mut Vec<ObjState>, n_states: &mut usize, max_states: usize) -> Option<u32> {
    let i = u32::try_from(states.len())
        .ok()
        .filter(|&i| i < UNTRACKED)?;
    if *n_states >= max_states {
        return None;
    }
    *n_states += 1;
    states.push(ObjState::default());
    Some(i)
}

/// The tracked object's index for `key`, added while the state table has room ([`UNTRACKED`]
/// once it is full).
#[cold]
fn resolve(
    objs: &mut FastMap<AddrKey, u32>,
    states: &mut Vec<ObjState>,
    n_states: &mut usize,
    max_states: usize,
    key: AddrKey,
) -> u32 {
    if let Some(&i) = objs.get(&key) {
        return i;
    }
    match new_state(states, n_states, max_states) {
        Some(i) => {
            objs.insert(key, i);
            i
        }
        None => UNTRACKED,
    }
}

/// Checks value `x` of one object against its compiled profile; `state` is the object's read
/// state (`None` when the state table is full: no jump or freeze checks then). `key` names the
/// object, for alerts only.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn check_value<'k>(
    ev: &IcsEvent,
    now: &mut Now,
    key: impl Fn() -> KeyRef<'k>,
    dir: AccessDir,
    c: &Check,
    state: Option<&mut ObjState>,
    x: f64,
    out: &mut Vec<Alert>,
) {
    match dir {
        AccessDir::Write => {
            if c.outside(x, now) {
                write_alert(ev, now, key(), &c.n, x, out);
            }
        }
        AccessDir::Read => read(ev, now, key, c, state, x, out),
    }
}

#[inline(always)]
fn read<'k>(
    ev: &IcsEvent,
    now: &mut Now,
    key: impl Fn() -> KeyRef<'k>,
    c: &Check,
    state: Option<&mut ObjState>,
    x: f64,
    out: &mut Vec<Alert>,
) {
    let out_of_range = c.outside(x, now);
    if out_of_range {
        read_alert(ev, now, key(), &c.n, x, out);
    }
    let Some(st) = state else {
        return;
    };
    if st.run == 0 {
        *st = ObjState {
            last: x,
            run: 1,
            run_since: ev.ts,
            frozen_reported: false,
            quiet_until: c.quiet_after(x, false),
        };
        return;
    }
    let prev = st.last;
    if x == prev {
        st.run += 1;
    } else {
        st.run = 1;
        st.run_since = ev.ts;
        st.frozen_reported = false;
    }
    st.last = x;
    // Jump. A step back from a value that was itself out of range (already reported) is
    // the process or an operator putting things right, not a new anomaly.
    if !out_of_range && (x - prev).abs() > c.jump_above && !c.outside(prev, now) {
        jump_alert(ev, now, key(), &c.n, prev, x, out);
    }
    // Freeze.
    if st.run > c.freeze_reads && !st.frozen_reported {
        let run_secs = micros_between(ev.ts, st.run_since) / 1_000_000;
        if run_secs as f64 >= c.freeze_secs {
            st.frozen_reported = true;
            frozen_alert(ev, now, key(), &c.n, x, st.run, run_secs, out);
        }
    }
    st.quiet_until = c.quiet_after(x, st.frozen_reported);
}

#[cold]
fn write_alert(
    ev: &IcsEvent,
    now: &mut Now,
    key: KeyRef<'_>,
    n: &Normal,
    x: f64,
    out: &mut Vec<Alert>,
) {
    let AlertWords {
        key,
        obj,
        summary,
        dev,
    } = now.alert_words(ev, key);
    let all_who = n.who_list();
    let who = if n.own {
        format!("{} itself wrote it", ev.client.ip)
    } else if all_who.len() == 1 {
        format!("only {} wrote it", list_words(&all_who, 5))
    } else {
        format!("{} wrote it", list_words(&all_who, 5))
    };
    let range = range_words(n);
    let explanation = format!(
        "{} wrote {} to {obj} on {dev}; in the baseline {who}, with values {range} ({} writes). \
         A setpoint or parameter far outside its normal range can damage equipment, \
         trip the process or spoil the product.",
        ev.client.ip,
        fmt_num(x),
        n.count,
    );
    let fact = format!(
        "{} wrote {obj} on {dev} with values {range} ({} writes)",
        list_words(&all_who, 5),
        n.count
    );
    out.push(
        Alert::from_event(&WRITE_OUT_OF_RANGE, ev, explanation, summary)
            .with_fact(fact, n.reference(ev, &key)),
    );
}

/// A read-out-of-range alert of value `x` of object `key`: built without its words (and its
/// Community ID and technique ids), which are left to [`ReadText`] (written at once unless the
/// detector defers them, see [`Values::deferring_read_texts`]).
#[cold]
fn read_alert(
    ev: &IcsEvent,
    now: &mut Now,
    key: KeyRef<'_>,
    n: &Normal,
    x: f64,
    out: &mut Vec<Alert>,
) {
    let summary = now.summary(ev);
    let text = Box::new(super::Words::Read(ReadText {
        key: key.owned(),
        x,
        min: n.min,
        max: n.max,
        count: n.count,
        ref_client: n.ref_client,
        side: n.side,
    }));
    out.push(Alert::from_event_deferred(
        &READ_OUT_OF_RANGE,
        ev,
        summary,
        text,
    ));
}

/// What the words of a read-out-of-range alert need besides the alert itself (source,
/// destination, unit and protocol): written by [`ReadText::fill`] as the eager path wrote
/// them ([`read_alert_eager`] in tests).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ReadText {
    key: OwnedKey,
    x: f64,
    min: f64,
    max: f64,
    count: u64,
    ref_client: IpAddr,
    side: &'static str,
}

/// [`KeyRef`], owned.
#[derive(Clone, Debug, PartialEq)]
enum OwnedKey {
    /// A Modbus address.
    Modbus(AddrKey),
    /// A named object's key.
    Named(Box<str>),
}

impl ReadText {
    /// Writes the explanation, the baseline fact and its reference, the Community ID and the
    /// technique ids of `a`, the alert this was taken from.
    #[cold]
    pub(crate) fn fill(&self, a: &mut Alert) {
        a.community_id = a.connection_id();
        a.alert.metadata.mitre_attack_ics = READ_OUT_OF_RANGE.techniques.to_vec();
        let key = match &self.key {
            OwnedKey::Modbus((unit, table, addr)) => modbus_object_key(*unit, *table, *addr),
            OwnedKey::Named(s) => s.to_string(),
        };
        let obj = key_words(&key);
        let dev = device_words(a.dest_ip, a.otwatch.unit_id);
        let range = range_text(self.min, self.max);
        a.otwatch.explanation = read_explanation(&obj, &dev, self.x, a.src_ip, &range, self.count);
        a.otwatch.baseline_fact = Some(read_fact(&obj, &dev, &range));
        a.otwatch.baseline_ref = Some(object_ref(
            self.ref_client,
            a.dest_ip,
            a.app_proto.as_str(),
            &key,
            self.side,
        ));
    }
}

/// The eager form of [`read_alert`] (before the words were deferred): its reference in tests.
#[cfg(test)]
fn read_alert_eager(
    ev: &IcsEvent,
    now: &mut Now,
    key: KeyRef<'_>,
    n: &Normal,
    x: f64,
    out: &mut Vec<Alert>,
) {
    let AlertWords {
        key,
        obj,
        summary,
        dev,
    } = now.alert_words(ev, key);
    let range = range_words(n);
    let explanation = read_explanation(&obj, &dev, x, ev.client.ip, &range, n.count);
    let fact = read_fact(&obj, &dev, &range);
    out.push(
        Alert::from_event(&READ_OUT_OF_RANGE, ev, explanation, summary)
            .with_fact(fact, n.reference(ev, &key)),
    );
}

/// A read-out-of-range alert of `ev` on object `key` (an address of its unit, or a named
/// key) with the normal range `min`..`max`: with its words deferred, or written at once by
/// the eager path (the aggregator's tests feed both).
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn test_read_alert(
    ev: &IcsEvent,
    addr: u32,
    named: Option<&str>,
    min: f64,
    max: f64,
    count: u64,
    x: f64,
    eager: bool,
) -> Option<Alert> {
    let n = Normal {
        min,
        max,
        max_step: 1.0,
        max_same_run: 1,
        distinct: 2,
        count,
        who: ev.client.ip,
        more_who: Vec::new(),
        own: false,
        ref_client: ev.server.ip,
        side: "read",
        monotonic: false,
        counter: None,
    };
    let key = match named {
        Some(k) => KeyRef::Named(k),
        None => KeyRef::Modbus((ev.unit_id, ModbusTable::HoldingRegister, addr)),
    };
    let mut now = Now::new(ev.ts);
    let mut out = Vec::new();
    if eager {
        read_alert_eager(ev, &mut now, key, &n, x, &mut out);
    } else {
        read_alert(ev, &mut now, key, &n, x, &mut out);
    }
    out.pop()
}

#[cold]
fn jump_alert(
    ev: &IcsEvent,
    now: &mut Now,
    key: KeyRef<'_>,
    n: &Normal,
    prev: f64,
    x: f64,
    out: &mut Vec<Alert>,
) {
    let AlertWords {
        key,
        obj,
        summary,
        dev,
    } = now.alert_words(ev, key);
    let explanation = format!(
        "{obj} on {dev} jumped from {} to {} between two reads by {}; in the baseline \
         it never moved more than {} between reads (range {}). A sudden jump can be a \
         manipulated value or a process upset.",
        fmt_num(prev),
        fmt_num(x),
        ev.client.ip,
        fmt_num(n.max_step),
        range_words(n)
    );
    out.push(
        Alert::from_event(&VALUE_JUMP, ev, explanation, summary).with_fact(
            format!("{obj} on {dev}: largest step {}", fmt_num(n.max_step)),
            n.reference(ev, &key),
        ),
    );
}

#[cold]
#[allow(clippy::too_many_arguments)]
fn frozen_alert(
    ev: &IcsEvent,
    now: &mut Now,
    key: KeyRef<'_>,
    n: &Normal,
    x: f64,
    run: u64,
    run_secs: u64,
    out: &mut Vec<Alert>,
) {
    let AlertWords {
        key,
        obj,
        summary,
        dev,
    } = now.alert_words(ev, key);
    let explanation = format!(
        "{obj} on {dev} has read {} for {run} reads in a row over {run_secs} s (by {}); in \
         the baseline it changed all the time ({} different values, never the same for \
         more than {} reads). A frozen value can be a stuck sensor, a stopped PLC \
         program, or a replay hiding the real process from the operator.",
        fmt_num(x),
        ev.client.ip,
        n.distinct,
        n.max_same_run
    );
    out.push(
        Alert::from_event(&VALUE_FROZEN, ev, explanation, summary).with_fact(
            format!(
                "{obj} on {dev}: {} distinct values, longest run {}",
                n.distinct, n.max_same_run
            ),
            n.reference(ev, &key),
        ),
    );
}

/// One channel's object table and the detector's state counts, for [`run_block`].
struct Tracker<'a> {
    objs: &'a mut FastMap<AddrKey, u32>,
    states: &'a mut Vec<ObjState>,
    n_states: &'a mut usize,
    states_dropped: &'a mut u64,
    max_states: usize,
    /// Take the repeat and change paths of reads ([`Values::fast_paths`]).
    fast: bool,
}

/// The address of slot `i` of a block (for alerts and the object table only: kept out of
/// the per-value loop).
#[inline(never)]
fn slot_addr(key: &Shape, i: usize) -> AddrKey {
    // `i` is below the block's length, a u32.
    (key.unit, key.table, key.start.saturating_add(i as u32))
}

/// Ties the slots of a block that have a numeric value in `values` to their objects'
/// states; `unresolved` counts the block's slots not yet tied to one. An object is tracked
/// from its first numeric value, in the order of the values (the checks do not change the
/// state table).
#[cold]
fn resolve_slots(
    values: &AccessValues,
    key: &Shape,
    slots: &mut Slots,
    unresolved: &mut u32,
    t: &mut Tracker<'_>,
) {
    for (i, (slot, v)) in slots.hot.iter_mut().zip(values).enumerate() {
        if slot.obj == UNRESOLVED && numeric(&v).is_some() {
            slot.obj = resolve(
                t.objs,
                t.states,
                t.n_states,
                t.max_states,
                slot_addr(key, i),
            );
            *unresolved = unresolved.saturating_sub(1);
        }
    }
}

/// Checks the values of a Modbus access against its compiled block, every slot with a
/// numeric value tied to its object ([`resolve_slots`]) and no other block owning one.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run_block(
    ev: &IcsEvent,
    now: &mut Now,
    values: &AccessValues,
    key: &Shape,
    slots: &mut Slots,
    t: Tracker<'_>,
    out: &mut Vec<Alert>,
) {
    // One loop per direction, each with the per-value checks inlined.
    let (states, dropped) = (t.states, t.states_dropped);
    match values.compact() {
        Some(words) => {
            let xs = words.iter().map(|&w| Some(f64::from(w)));
            run_block_nums(ev, now, xs, key, slots, states, dropped, t.fast, out);
        }
        None => {
            let list = values.as_list().unwrap_or_default();
            let xs = list.iter().map(value_num);
            run_block_nums(ev, now, xs, key, slots, states, dropped, t.fast, out);
        }
    }
}

/// [`run_block`] over the values' numbers `xs` (`None` for a value without one), one loop
/// per direction.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run_block_nums(
    ev: &IcsEvent,
    now: &mut Now,
    xs: impl Iterator<Item = Option<f64>>,
    key: &Shape,
    slots: &Slots,
    states: &mut [ObjState],
    dropped: &mut u64,
    fast: bool,
    out: &mut Vec<Alert>,
) {
    match (key.dir, fast) {
        (AccessDir::Read, true) => {
            run_block_dir::<true, true>(ev, now, xs, key, slots, states, dropped, out)
        }
        (AccessDir::Read, false) => {
            run_block_dir::<true, false>(ev, now, xs, key, slots, states, dropped, out)
        }
        (AccessDir::Write, _) => {
            run_block_dir::<false, false>(ev, now, xs, key, slots, states, dropped, out)
        }
    }
}

/// The number the checks see of `v`: registers are integers and coils booleans, those
/// cases first, without the jump table of [`numeric`].
#[inline(always)]
fn value_num(v: &Value) -> Option<f64> {
    if let Value::Int(n) = v {
        Some(*n as f64)
    } else if let Value::Bool(b) = v {
        Some(f64::from(u8::from(*b)))
    } else {
        numeric_other(v)
    }
}

/// The change path of a read, in the per-value fields only: the object has a state with a
/// last value other than `x`, `x` is inside the range without the counter test (no alert)
/// and its step is no jump, and a run of 1 is no freeze. Then it does what [`read`] does
/// (starts a new run) and returns true; false (nothing changed) when the full checks are
/// needed. A state without a last value has a NaN `last` (see [`ObjState::default`]), so
/// the step test fails for it.
#[inline(always)]
fn read_change(h: &Hot, st: &mut ObjState, x: f64, ts: Timestamp) -> bool {
    if !(x >= h.lo && x <= h.hi_fast && (x - st.last).abs() <= h.step_max) {
        return false;
    }
    st.run = 1;
    st.run_since = ts;
    st.frozen_reported = false;
    st.last = x;
    st.quiet_until = h.quiet_base;
    true
}

/// [`run_block`] for reads (`READ`) or writes, once every slot with a numeric value is
/// resolved; `FAST`: reads take the repeat and change paths when they can.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run_block_dir<const READ: bool, const FAST: bool>(
    ev: &IcsEvent,
    now: &mut Now,
    xs: impl Iterator<Item = Option<f64>>,
    key: &Shape,
    slots: &Slots,
    states: &mut [ObjState],
    states_dropped: &mut u64,
    out: &mut Vec<Alert>,
) {
    // A slot's index, worked out from its address off the common paths (no index kept in
    // the loop).
    let base = slots.hot.as_ptr() as usize;
    let index =
        |h: &Hot| (h as *const Hot as usize).wrapping_sub(base) / std::mem::size_of::<Hot>();
    for (h, x) in slots.hot.iter().zip(xs) {
        let Some(x) = x else {
            continue;
        };
        // Every index but UNTRACKED's (UNRESOLVED's cannot occur here) is in `states`.
        let Some(st) = states.get_mut(h.obj as usize) else {
            let i = index(h);
            if let Some(Some(c)) = slots.checks.get(i) {
                // A read that cannot jump or freeze (nothing is lost for an object without a
                // profile, or for a write).
                if READ {
                    *states_dropped += 1;
                }
                let dir = if READ {
                    AccessDir::Read
                } else {
                    AccessDir::Write
                };
                untracked(ev, now, KeyRef::Modbus(slot_addr(key, i)), dir, c, x, out);
            }
            continue;
        };
        if READ && FAST {
            if x == st.last {
                if st.run < st.quiet_until {
                    // The repeat path: see `ObjState::quiet_until` (`read` would only count
                    // it). `x == last` holds for 0 and −0: keep the value read, as `read`
                    // does.
                    st.run += 1;
                    st.last = x;
                    continue;
                }
            } else if read_change(h, st, x, ev.ts) {
                continue;
            }
        }
        if !h.has {
            continue;
        }
        let i = index(h);
        if READ {
            if let Some(Some(c)) = slots.checks.get(i) {
                let key = || KeyRef::Modbus(slot_addr(key, i));
                read(ev, now, key, c, Some(st), x, out);
            }
        } else if x < h.lo || x > h.hi_fast {
            if let Some(Some(c)) = slots.checks.get(i) {
                if c.outside(x, now) {
                    write_alert(ev, now, KeyRef::Modbus(slot_addr(key, i)), &c.n, x, out);
                }
            }
        }
    }
}

/// [`numeric`] of a value that is neither an integer nor a boolean (kept out of the
/// per-value loop).
#[cold]
fn numeric_other(v: &Value) -> Option<f64> {
    numeric(v)
}

/// Checks a value of an object that is not tracked (the state table is full).
#[cold]
fn untracked(
    ev: &IcsEvent,
    now: &mut Now,
    key: KeyRef<'_>,
    dir: AccessDir,
    c: &Check,
    x: f64,
    out: &mut Vec<Alert>,
) {
    check_value(ev, now, || key, dir, c, None, x, out);
}

impl Values {
    /// This detector, leaving the words of its read-out-of-range alerts to whoever takes them
    /// ([`Alert::resolve`]), as the engine's aggregator does: it writes them only for the
    /// alerts it emits, not for the repeats it folds (only the last of a window is emitted).
    pub fn deferring_read_texts(mut self) -> Self {
        self.defer_read_texts = true;
        self
    }

    /// A values detector.
    pub fn new(cfg: ValuesConfig) -> Self {
        Values {
            chan_index: ChanSlots::default(),
            chans: Vec::new(),
            blocks: FastMap::default(),
            store: Vec::new(),
            by_req: Vec::new(),
            named_by_req: Vec::new(),
            named_reqs: Vec::new(),
            n_states: 0,
            states_dropped: 0,
            cached_slots: 0,
            cache_resets: 0,
            key_buf: String::new(),
            learned_end: (String::new(), Timestamp::parse_rfc3339("")),
            defer_read_texts: false,
            fast_paths: true,
            cap: u32::try_from(cfg.max_values_per_access).unwrap_or(u32::MAX),
            max_chans: MAX_CHANS,
            chans_dropped: 0,
            #[cfg(test)]
            hint_hits: 0,
            cfg,
        }
    }

    /// The index of the event's channel in `chans`, added if new while fewer than
    /// [`MAX_CHANS`] are kept (else none, counted in `chans_dropped`).
    fn chan_of(&mut self, ctx: &EventCtx) -> Option<usize> {
        if let Some(&mut i) = self
            .chan_index
            .find(ctx)
            .and_then(|s| self.chan_index.get_mut(s))
        {
            return Some(i);
        }
        if self.chans.len() >= self.max_chans {
            self.chans_dropped += 1;
            return None;
        }
        let i = self.chans.len();
        self.chans.push(Chan::default());
        self.chan_index.insert(ctx, i);
        Some(i)
    }

    /// The cached block `key` of channel `ci` (index in `chans`, when it has one): from the
    /// channel's list, else from the map (then listed).
    #[inline]
    fn find_block(&mut self, ci: Option<usize>, ev: &IcsEvent, shape: &Shape) -> Option<u32> {
        let sub = SubKey::of(shape);
        // The map's key, built only when the channel's list does not have the block.
        let key = || BlockKey {
            chan: (ev.client.ip, ev.server.ip, ev.proto),
            shape: *shape,
        };
        let Some(chan) = ci.and_then(|ci| self.chans.get_mut(ci)) else {
            return self.blocks.get(&key()).copied();
        };
        if let Some(b) = chan.blocks.find(&sub) {
            return Some(b);
        }
        let b = *self.blocks.get(&key())?;
        chan.blocks.push_within(MAX_CHAN_BLOCKS, sub, b);
        Some(b)
    }

    /// Checks the values of a Modbus access: per channel and (unit, table, start, count,
    /// direction) the profiles are compiled once and kept. The index in `store` of the block
    /// used, when it is cached.
    #[allow(clippy::too_many_arguments)]
    fn modbus_access(
        &mut self,
        b: &Baseline,
        ev: &IcsEvent,
        ctx: &EventCtx,
        ci: Option<usize>,
        now: &mut Now,
        a: &Access,
        key: Shape,
        out: &mut Vec<Alert>,
    ) -> Option<u32> {
        if let Some(bi) = self.find_block(ci, ev, &key) {
            self.cached_block(bi, ev, now, a, &key, out);
            return Some(bi);
        }
        self.new_block(b, ev, ctx, now, a, key, out)
    }

    /// Checks the values of a Modbus access against the cached block `bi` (its block).
    #[inline(always)]
    fn cached_block(
        &mut self,
        bi: u32,
        ev: &IcsEvent,
        now: &mut Now,
        a: &Access,
        key: &Shape,
        out: &mut Vec<Alert>,
    ) {
        let Some(block) = self.store.get_mut(bi as usize) else {
            return;
        };
        debug_assert!(block.own.is_none() || block.shape == *key);
        if run_owned(ev, Some(now), &a.values, block, &mut self.chans, out) {
            return;
        }
        self.block_slow(bi, ev, now, a, key, out);
    }

    /// [`Values::cached_block`] for a block that does not own its objects: ties its slots
    /// to objects, takes their states from the blocks that own them, checks the values,
    /// and then (reads, after a wait when it lost them soon before) takes the states.
    #[inline(never)]
    fn block_slow(
        &mut self,
        bi: u32,
        ev: &IcsEvent,
        now: &mut Now,
        a: &Access,
        key: &Shape,
        out: &mut Vec<Alert>,
    ) {
        let max_states = self.cfg.max_states;
        let fast = self.fast_paths;
        let read = key.dir == AccessDir::Read;
        let Some(block) = self.store.get_mut(bi as usize) else {
            return;
        };
        let Some(chan) = self.chans.get_mut(block.chan) else {
            return;
        };
        let mut t = Tracker {
            objs: &mut chan.modbus,
            states: &mut chan.states,
            n_states: &mut self.n_states,
            states_dropped: &mut self.states_dropped,
            max_states,
            fast,
        };
        if block.unresolved > 0 {
            resolve_slots(
                &a.values,
                key,
                &mut block.slots,
                &mut block.unresolved,
                &mut t,
            );
        }
        if read {
            free_objects(&mut self.store, &mut self.chans, Some(bi), None);
        }
        let Some(block) = self.store.get_mut(bi as usize) else {
            return;
        };
        let Some(chan) = self.chans.get_mut(block.chan) else {
            return;
        };
        let t = Tracker {
            objs: &mut chan.modbus,
            states: &mut chan.states,
            n_states: &mut self.n_states,
            states_dropped: &mut self.states_dropped,
            max_states,
            fast,
        };
        run_block(ev, now, &a.values, key, &mut block.slots, t, out);
        if fast && read {
            block.cool = block.cool.saturating_sub(1);
            if block.cool == 0 {
                acquire(&mut self.store, &mut self.chans, bi);
            }
        }
    }

    /// Gives every owned state back to its [`ObjState`] (before the cache is emptied).
    fn release_all(&mut self) {
        for bi in 0..self.store.len() {
            release(&mut self.store, &mut self.chans, bi);
        }
    }

    /// Remembers that access `i` of request `r` uses the cached block `bi`.
    #[cold]
    fn remember_block(&mut self, r: u32, i: usize, bi: u32) {
        let r = r as usize;
        if r >= self.by_req.len() {
            self.by_req.resize(r + 1, [NO_BLOCK; 2]);
        }
        if let Some(x) = self.by_req.get_mut(r).and_then(|x| x.get_mut(i)) {
            *x = bi;
        }
    }

    /// [`Values::modbus_access`] for a block not in the cache: compiles it, caches it if it
    /// fits, and checks the access.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn new_block(
        &mut self,
        b: &Baseline,
        ev: &IcsEvent,
        ctx: &EventCtx,
        now: &mut Now,
        a: &Access,
        key: Shape,
        out: &mut Vec<Alert>,
    ) -> Option<u32> {
        let max_states = self.cfg.max_states;
        let ci = self.chan_of(ctx)?;
        let full_key = BlockKey {
            chan: (ev.client.ip, ev.server.ip, ev.proto),
            shape: key,
        };
        let mut slots = Compiler::new(&self.cfg, b, ev, &mut self.learned_end).block(&key);
        let mut unresolved = key.n;
        if slots.checks.is_empty() {
            // No address of the block has a profile (its channel and server are new to the
            // baseline): its objects need no read state, nothing could jump or freeze.
            for h in &mut slots.hot {
                h.obj = UNTRACKED;
            }
            unresolved = 0;
        }
        let bi = u32::try_from(self.store.len()).ok();
        let cacheable = slots.len() <= self.cfg.max_cached_slots && bi.is_some();
        if cacheable && self.cached_slots + slots.len() > self.cfg.max_cached_slots {
            self.release_all();
            self.blocks.clear();
            self.store.clear();
            self.by_req.clear();
            for c in &mut self.chans {
                c.blocks.clear();
            }
            self.cached_slots = 0;
            self.cache_resets += 1;
        }
        let fast = self.fast_paths;
        let read = key.dir == AccessDir::Read;
        {
            let chan = self.chans.get_mut(ci)?;
            let mut t = Tracker {
                objs: &mut chan.modbus,
                states: &mut chan.states,
                n_states: &mut self.n_states,
                states_dropped: &mut self.states_dropped,
                max_states,
                fast,
            };
            resolve_slots(&a.values, &key, &mut slots, &mut unresolved, &mut t);
        }
        if read {
            free_objects(&mut self.store, &mut self.chans, None, Some((ci, &slots)));
        }
        let chan = self.chans.get_mut(ci)?;
        let bi = u32::try_from(self.store.len()).ok().filter(|_| cacheable);
        let slots = match bi {
            Some(bi) => {
                self.cached_slots += slots.len();
                self.blocks.insert(full_key, bi);
                chan.blocks
                    .push_within(MAX_CHAN_BLOCKS, SubKey::of(&key), bi);
                self.store.push(Block::new(ci, key, slots, unresolved));
                &mut self.store.last_mut()?.slots
            }
            None => &mut slots,
        };
        let t = Tracker {
            objs: &mut chan.modbus,
            states: &mut chan.states,
            n_states: &mut self.n_states,
            states_dropped: &mut self.states_dropped,
            max_states,
            fast,
        };
        run_block(ev, now, &a.values, &key, slots, t, out);
        if let (Some(bi), true, true) = (bi, fast, read) {
            acquire(&mut self.store, &mut self.chans, bi);
        }
        bi
    }

    /// The repeat and change paths of [`Values::named_access`] for a read of named object
    /// `o` (known) of channel `ci`, in line: true when the read took one of them (done,
    /// as `named_access` would have done it); false (nothing changed) when it needs
    /// `named_access`.
    #[inline(always)]
    fn named_quick(&mut self, ci: usize, o: u32, a: &Access, ts: Timestamp) -> bool {
        if !self.fast_paths || a.dir != AccessDir::Read {
            return false;
        }
        let Some(x) = a.values.first().as_deref().and_then(numeric) else {
            return false;
        };
        let Some(chan) = self.chans.get_mut(ci) else {
            return false;
        };
        let (Some(e), states) = (chan.named_objs.get(o as usize), &mut chan.states) else {
            return false;
        };
        let Some(st) = states.get_mut(e.obj as usize) else {
            return false;
        };
        if x == st.last {
            if st.run < st.quiet_until {
                st.run += 1;
                st.last = x;
                return true;
            }
            return false;
        }
        read_change(&e.hot, st, x, ts)
    }

    /// Checks the value of an access to a named object (OPC UA node, other).
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn named_access(
        &mut self,
        b: &Baseline,
        ev: &IcsEvent,
        now: &mut Now,
        ci: usize,
        a: &Access,
        out: &mut Vec<Alert>,
        known: Option<u32>,
    ) -> Option<u32> {
        let x = a.values.first().as_deref().and_then(numeric)?;
        let Values {
            cfg,
            chans,
            n_states,
            states_dropped,
            key_buf,
            learned_end,
            fast_paths,
            ..
        } = self;
        let chan = chans.get_mut(ci)?;
        let memo = match known {
            Some(i) => Some(i),
            None if *fast_paths => chan.named_memo.find(&a.object),
            None => None,
        };
        let i = match memo {
            Some(i) => i,
            None => {
                if !write_named_object_key(&a.object, key_buf) {
                    return None;
                }
                let okey = key_buf.as_str();
                match chan.named.get(okey) {
                    Some(&i) => {
                        chan.memo_add(&a.object, i);
                        i
                    }
                    None => {
                        let Some(obj) = new_state(&mut chan.states, n_states, cfg.max_states)
                        else {
                            *states_dropped += 1;
                            if let Some(c) =
                                Compiler::new(cfg, b, ev, learned_end).check(okey, a.dir)
                            {
                                untracked(ev, now, KeyRef::Named(okey), a.dir, &c, x, out);
                            }
                            return None;
                        };
                        // Fewer named objects than states, whose indices are u32.
                        let i = u32::try_from(chan.named_objs.len()).ok()?;
                        chan.named_objs.push(NamedObj {
                            key: okey.to_string(),
                            obj,
                            read: Lazy::NotYet,
                            written: Lazy::NotYet,
                            hot: Hot::of(None),
                        });
                        chan.named.insert(okey.to_string(), i);
                        chan.memo_add(&a.object, i);
                        i
                    }
                }
            }
        };
        let e = chan.named_objs.get_mut(i as usize)?;
        // The repeat and change paths of a read (as in blocks, see `run_block_dir`): the
        // state is kept by `read`, `hot` is the compiled read profile's.
        if *fast_paths && a.dir == AccessDir::Read {
            if let Some(st) = chan.states.get_mut(e.obj as usize) {
                if x == st.last {
                    if st.run < st.quiet_until {
                        st.run += 1;
                        st.last = x;
                        return Some(i);
                    }
                } else if read_change(&e.hot, st, x, ev.ts) {
                    return Some(i);
                }
            }
        }
        let okey = e.key.as_str();
        let lazy = match a.dir {
            AccessDir::Read => &mut e.read,
            AccessDir::Write => &mut e.written,
        };
        if matches!(lazy, Lazy::NotYet) {
            *lazy = match Compiler::new(cfg, b, ev, learned_end).check(okey, a.dir) {
                Some(c) => {
                    if a.dir == AccessDir::Read {
                        e.hot = Hot::of(Some(&c));
                    }
                    Lazy::Found(c)
                }
                None => Lazy::Missing,
            };
        }
        if let Lazy::Found(c) = lazy {
            let state = chan.states.get_mut(e.obj as usize);
            check_value(ev, now, || KeyRef::Named(okey), a.dir, c, state, x, out);
        }
        Some(i)
    }

    /// The slot in `named_reqs` of the named request numbered `r` on channel `ci` (made if
    /// new, for `n` accesses; none for more than [`MAX_NAMED_REQ_ACCESSES`]).
    #[inline(never)]
    fn named_req(&mut self, r: u32, ci: usize, n: usize) -> Option<usize> {
        let r = r as usize;
        match self.named_by_req.get(r) {
            Some(&s) if s != NO_NAMED => return Some(s as usize),
            _ => {}
        }
        if n > MAX_NAMED_REQ_ACCESSES {
            return None;
        }
        if r >= self.named_by_req.len() {
            self.named_by_req.resize(r + 1, NO_NAMED);
        }
        let s = u32::try_from(self.named_reqs.len())
            .ok()
            .filter(|&s| s != NO_NAMED)?;
        self.named_reqs.push((ci, vec![NO_NAMED; n]));
        if let Some(x) = self.named_by_req.get_mut(r) {
            *x = s;
        }
        Some(s as usize)
    }
}

impl Detector for Values {
    fn name(&self) -> &'static str {
        "values"
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("states_dropped", self.states_dropped),
            ("cache_resets", self.cache_resets),
            ("chans_dropped", self.chans_dropped),
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
        if !matches!(ev.outcome, Outcome::Ok) || ev.accesses.is_empty() {
            return;
        }
        let start = out.len();
        if !self.owned_request(ev, ctx, out) {
            self.check_accesses(ev, ctx, b, out);
        }
        if !self.defer_read_texts && out.len() > start {
            out.iter_mut().skip(start).for_each(Alert::resolve);
        }
    }
}

impl Values {
    /// [`Detector::on_event_ctx`] for a repeat of a request the engine prepared (see
    /// [`super::Engine`]'s memo): an event that ended normally, without violations, with one
    /// access to a Modbus range, and a request number in `ctx`. With a `hint` that holds
    /// (the request's block) whose block owns its objects' states, the values go straight
    /// to [`run_owned`]; else the general path, after which `hint` is the request's block.
    #[inline(always)]
    pub(crate) fn on_hinted(
        &mut self,
        ev: &IcsEvent,
        ctx: &EventCtx,
        baseline: Option<&Baseline>,
        hint: &mut Hint,
        out: &mut Vec<Alert>,
    ) {
        if hint.resets == self.cache_resets {
            if let ([a], Some(block)) =
                (ev.accesses.as_slice(), self.store.get_mut(hint.bi as usize))
            {
                debug_assert!(
                    block.own.is_none() || Some(block.shape) == Shape::of(ev, a, self.cap)
                );
                if !a.values.is_empty()
                    && run_owned(ev, None, &a.values, block, &mut self.chans, out)
                {
                    #[cfg(test)]
                    {
                        self.hint_hits += 1;
                    }
                    return;
                }
            }
        }
        self.hint_miss(ev, ctx, baseline, hint, out);
    }

    /// Tests: events taken through a hint that held.
    #[cfg(test)]
    pub(crate) fn hint_hits(&self) -> u64 {
        self.hint_hits
    }

    /// [`Values::on_hinted`] without a hint that holds, or for a block that does not own
    /// its objects: the general path, then the hint of the block it used.
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
        *hint = NO_HINT;
        // Blocks are looked up by request only on the fast paths, and checked straight only
        // when their alerts' words are left to the engine (as `owned_request`).
        if baseline.is_none() || !self.fast_paths || !self.defer_read_texts {
            return;
        }
        let bi = ctx
            .req
            .and_then(|r| self.by_req.get(r as usize))
            .map_or(NO_BLOCK, |x| x[0]);
        if bi != NO_BLOCK {
            *hint = Hint {
                bi,
                resets: self.cache_resets,
            };
        }
    }

    /// A numbered request with one Modbus access whose block owns its objects' states (the
    /// common poll): checked straight by [`run_owned`], without the general path's set-up.
    /// False (nothing done) for any other event.
    ///
    /// The block is the one `by_req` names for the request: the request's number stands for
    /// its channel and signature ([`EventCtx::req`]), which fixes the access's unit, table,
    /// addresses and direction, so the block's shape is the access's (asserted in tests);
    /// `by_req` is emptied with the blocks.
    #[inline(always)]
    fn owned_request(&mut self, ev: &IcsEvent, ctx: &EventCtx, out: &mut Vec<Alert>) -> bool {
        let (Some(r), [a], true) = (ctx.req, ev.accesses.as_slice(), self.fast_paths) else {
            return false;
        };
        let Some(&[bi, _]) = self.by_req.get(r as usize) else {
            return false;
        };
        let Some(block) = self.store.get_mut(bi as usize) else {
            return false;
        };
        debug_assert!(block.own.is_none() || Some(block.shape) == Shape::of(ev, a, self.cap));
        !a.values.is_empty() && run_owned(ev, None, &a.values, block, &mut self.chans, out)
    }

    /// Checks every access of an event (the general path).
    #[inline(never)]
    fn check_accesses(
        &mut self,
        ev: &IcsEvent,
        ctx: &EventCtx,
        b: &Baseline,
        out: &mut Vec<Alert>,
    ) {
        let cap = self.cap;
        let mut now = Now::new(ev.ts);
        // A numbered request (at most two Modbus accesses, its signature fixing their
        // blocks): the blocks it used before, straight from `by_req` (read per access, as an
        // access may empty the cache).
        let req = ctx.req.filter(|_| self.fast_paths);
        // The channel's index, when it has one, for its list of blocks (looked up once, when
        // a block is not in `by_req`).
        let mut known = None;
        // The channel's index, for named objects (added if new; none when the table is full).
        let mut ci: Option<Option<usize>> = None;
        // A named request's number, and its slot in `named_reqs` once looked up.
        let named = ctx.req.filter(|_| self.fast_paths && ctx.sig.is_none());
        let mut nslot: Option<usize> = None;
        for (i, a) in ev.accesses.iter().enumerate() {
            match &a.object {
                ObjectRef::Modbus {
                    table,
                    start,
                    count,
                } => {
                    let n = (*count).min(cap);
                    if n == 0 || a.values.is_empty() {
                        continue;
                    }
                    let key = Shape {
                        unit: ev.unit_id,
                        table: *table,
                        start: *start,
                        n,
                        dir: a.dir,
                    };
                    let cached = req.and_then(|r| self.by_req.get(r as usize)?.get(i).copied());
                    if let Some(bi) = cached {
                        if bi != NO_BLOCK {
                            self.cached_block(bi, ev, &mut now, a, &key, out);
                            continue;
                        }
                    }
                    let known = *known.get_or_insert_with(|| {
                        self.chan_index
                            .find(ctx)
                            .and_then(|s| self.chan_index.get_mut(s).map(|c| *c))
                    });
                    let bi = self.modbus_access(b, ev, ctx, known, &mut now, a, key, out);
                    if let (Some(r), Some(bi)) = (req, bi) {
                        if i < 2 {
                            self.remember_block(r, i, bi);
                        }
                    }
                }
                _ => {
                    // A named request numbered by the engine (its number stands for its
                    // channel and objects): its channel and objects as found last time.
                    if let (Some(r), None) = (named, ci) {
                        let c = match self.named_by_req.get(r as usize) {
                            Some(&s) if s != NO_NAMED => {
                                nslot = Some(s as usize);
                                self.named_reqs.get(s as usize).map(|x| x.0)
                            }
                            _ => {
                                let c = self.chan_of(ctx);
                                nslot = c.and_then(|c| self.named_req(r, c, ev.accesses.len()));
                                c
                            }
                        };
                        ci = Some(c);
                    }
                    if let Some(ci) = *ci.get_or_insert_with(|| self.chan_of(ctx)) {
                        let known = nslot
                            .and_then(|s| self.named_reqs.get(s)?.1.get(i).copied())
                            .filter(|&o| o != NO_NAMED);
                        if let Some(o) = known {
                            if self.named_quick(ci, o, a, ev.ts) {
                                continue;
                            }
                        }
                        let found = self.named_access(b, ev, &mut now, ci, a, out, known);
                        if let (None, Some(o), Some(s)) = (known, found, nslot) {
                            if let Some(x) = self.named_reqs.get_mut(s).and_then(|x| x.1.get_mut(i))
                            {
                                *x = o;
                            }
                        }
                    }
                }
            }
        }
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
    use crate::baseline::{Learner, ObjKey};
    use crate::detect::testkit::*;

    const OTHER: &str = "10.0.0.7";

    #[test]
    fn block_keys_are_the_object_keys() {
        // A block's keys (its prefix once, then each address) are what `ObjKey::write_key`
        // writes for each of its objects, whatever the unit, table and addresses (saturated
        // at the top of the address space as `Compiler::block` does).
        let tables = [
            ModbusTable::Coil,
            ModbusTable::DiscreteInput,
            ModbusTable::InputRegister,
            ModbusTable::HoldingRegister,
        ];
        let mut buf = String::new();
        let mut want = String::new();
        for unit in [
            None,
            Some(0),
            Some(1),
            Some(9),
            Some(10),
            Some(99),
            Some(255),
        ] {
            for &table in &tables {
                for start in [0, 1, 9, 10, 99, 40_000, 65_535, u32::MAX - 2, u32::MAX] {
                    let key = Shape {
                        unit,
                        table,
                        start,
                        n: 4,
                        dir: AccessDir::Read,
                    };
                    block_key_prefix(&key, &mut buf);
                    let prefix = buf.len();
                    for i in 0..key.n {
                        let addr = start.saturating_add(i);
                        buf.truncate(prefix);
                        push_decimal(&mut buf, u64::from(addr));
                        ObjKey::Modbus { unit, table, addr }.write_key(&mut want);
                        assert_eq!(buf, want);
                        assert_eq!(buf, modbus_object_key(unit, table, addr));
                    }
                }
            }
        }
    }

    #[test]
    fn alert_words_match_their_format() {
        let ips: [IpAddr; 3] = [
            "10.0.0.7".parse().unwrap(),
            "192.168.100.250".parse().unwrap(),
            "fe80::1".parse().unwrap(),
        ];
        let xs = [
            0.0,
            -1.5,
            7.0,
            1e12,
            0.1,
            f64::NAN,
            f64::INFINITY,
            -0.0,
            12345.678,
        ];
        for (i, &x) in xs.iter().enumerate() {
            for &ip in &ips {
                for count in [0u64, 1, 99, u64::MAX] {
                    assert_eq!(
                        read_explanation(
                            "holding register 40",
                            "10.0.0.2 unit 1",
                            x,
                            ip,
                            "1–2",
                            count
                        ),
                        crate::alert::text::read_explanation_fmt(
                            "holding register 40",
                            "10.0.0.2 unit 1",
                            x,
                            ip,
                            "1–2",
                            count
                        )
                    );
                }
                for &y in &xs[i..] {
                    for side in ["read", "written"] {
                        let n = Normal {
                            min: x,
                            max: y,
                            max_step: 0.0,
                            max_same_run: 0,
                            distinct: 1,
                            count: 1,
                            who: ip,
                            more_who: Vec::new(),
                            own: false,
                            ref_client: ip,
                            side,
                            monotonic: false,
                            counter: None,
                        };
                        let want = if n.min == n.max {
                            format!("always {}", fmt_num(n.min))
                        } else {
                            format!("{}–{}", fmt_num(n.min), fmt_num(n.max))
                        };
                        assert_eq!(range_words(&n), want);
                        for ev in [
                            read_ir(5, MASTER, PLC, 1, 0, &[1]),
                            write_hr(5, OTHER, PLC, 1, 40, 2),
                        ] {
                            for key in ["1/holding_register/40", "node/ns=2;s=x"] {
                                assert_eq!(
                                    n.reference(&ev, key),
                                    format!(
                                        "channels[{}>{} {}].objects[{key}].{}",
                                        n.ref_client,
                                        ev.server.ip,
                                        ev.proto.as_str(),
                                        n.side
                                    )
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    fn learnt() -> Baseline {
        let mut l = Learner::default();
        for i in 0..200i64 {
            let t = i * 1000;
            // Input register 0: a slow ramp 100..=299; register 1 constant 7.
            l.observe(&read_ir(t, MASTER, PLC, 1, 0, &[100 + i, 7]));
            if i % 10 == 0 {
                l.observe(&write_hr(t + 5, OTHER, PLC, 1, 40, 470 + (i % 61)));
            }
        }
        l.observe(&write_hr(300_000, OTHER, PLC, 1, 40, 530));
        l.finish().unwrap()
    }

    fn run(evs: &[IcsEvent]) -> Vec<Alert> {
        let b = learnt();
        let mut d = Values::new(ValuesConfig::default());
        let mut out = Vec::new();
        for e in evs {
            d.on_event(e, Some(&b), &mut out);
        }
        out
    }

    fn run_with(cfg: ValuesConfig, evs: &[IcsEvent]) -> (Vec<Alert>, Values) {
        let b = learnt();
        let mut d = Values::new(cfg);
        let mut out = Vec::new();
        for e in evs {
            d.on_event(e, Some(&b), &mut out);
        }
        (out, d)
    }

    fn texts(out: &[Alert]) -> Vec<(&'static str, String)> {
        out.iter()
            .map(|a| (a.otwatch.kind, a.otwatch.explanation.clone()))
            .collect()
    }

    /// An access to a named object: the event `ev` with its access replaced.
    fn named(mut ev: IcsEvent, obj: ObjectRef, dir: AccessDir, v: i64) -> IcsEvent {
        ev.accesses = vec![Access {
            dir,
            object: obj,
            values: vec![Value::Int(v)].into(),
        }];
        ev
    }

    fn level() -> ObjectRef {
        ObjectRef::Node {
            node_id: "ns=2;s=Tank.Level".into(),
            attribute: Some(13),
        }
    }

    /// A small deterministic pseudo-random generator for the fast path tests.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    /// A mixed stream: reads of input registers 0..=3 through overlapping blocks (register
    /// 0 is a counter in `learnt`, 1 constant), runs of repeats long enough to freeze,
    /// steps small and large, values out of range, −0 and 0, NaN, non-numeric values, short
    /// responses (unresolved slots), writes, named objects, and time that sometimes goes
    /// back.
    fn mixed_stream(seed: u64, n: usize) -> Vec<IcsEvent> {
        let mut r = Lcg(seed);
        let mut t = 999_000i64;
        let mut cur = [180i64, 7, 50, 3];
        let mut evs = Vec::new();
        for i in 0..n {
            // Every other stretch of 100 events the values hold still (long enough to
            // freeze), register 0 at a normal value.
            let still = i % 200 >= 100;
            if i % 200 == 100 {
                cur[0] = 180;
            }
            t += match r.next(20) {
                0 => -1500,
                1..=9 => 900,
                _ => r.next(2500) as i64,
            };
            for c in cur.iter_mut().filter(|_| !still) {
                *c = match r.next(12) {
                    0..=5 => *c,
                    6 | 7 => *c + r.next(5) as i64 - 2,
                    8 => 100 + r.next(200) as i64,
                    9 => 250 + r.next(40) as i64,
                    10 => 5000,
                    _ => 7,
                };
            }
            let start = r.next(3) as u32;
            let vals: Vec<i64> = cur[start as usize..].to_vec();
            let mut ev = read_ir(t, MASTER, PLC, 1, start, &vals);
            match r.next(14) {
                0 => ev = write_hr(t, OTHER, PLC, 1, 40, 300 + r.next(400) as i64),
                1 => {
                    // A short response: the block's last slots stay unresolved.
                    if let Some(a) = ev.accesses.first_mut() {
                        a.values.truncate(1);
                    }
                }
                2 => {
                    if let Some(a) = ev.accesses.first_mut() {
                        let odd = [
                            Value::Float(f64::NAN),
                            Value::Float(-0.0),
                            Value::Float(0.0),
                            Value::Str("x".into()),
                            Value::Bool(true),
                            Value::UInt(180),
                            Value::Float(180.0),
                        ];
                        let k = r.next(odd.len() as u64) as usize;
                        if let Some(v) = a.values.list_mut().first_mut() {
                            *v = odd[k].clone();
                        }
                    }
                }
                3 => {
                    let name = format!("client_handle={}", r.next(80));
                    let obj = ObjectRef::Other { name };
                    let dir = if r.next(4) == 0 {
                        AccessDir::Write
                    } else {
                        AccessDir::Read
                    };
                    ev = named(ev, obj, dir, cur[0]);
                }
                4 => ev = named(ev, level(), AccessDir::Read, cur[0] + 100),
                _ => {}
            }
            evs.push(ev);
        }
        evs
    }

    #[test]
    fn a_block_without_profiles_takes_no_state() {
        // A server the baseline does not know: nothing of its reads can be checked, so they
        // take no read state and count no dropped one (also with no room for states).
        let evs: Vec<IcsEvent> = (0..5)
            .map(|k| read_ir(1000 + k * 1000, "10.9.0.1", "10.9.9.9", 1, 0, &[100 + k, 7]))
            .collect();
        let (out, d) = run_with(ValuesConfig::default(), &evs);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!((d.n_states, d.states_dropped, d.chans.len()), (0, 0, 1));
        let none = || ValuesConfig {
            max_states: 0,
            ..ValuesConfig::default()
        };
        let (_, d) = run_with(none(), &evs);
        assert_eq!(d.states_dropped, 0);
        // A baseline channel's reads do lose their jump and freeze checks then: counted.
        let known: Vec<IcsEvent> = (0..3)
            .map(|k| read_ir(1000 + k * 1000, MASTER, PLC, 1, 0, &[100, 7]))
            .collect();
        let (_, d) = run_with(none(), &known);
        assert!(d.states_dropped > 0);
        let (_, d) = run_with(ValuesConfig::default(), &known);
        assert!(d.n_states > 0);
        assert_eq!(d.states_dropped, 0);
    }

    #[test]
    fn a_flood_of_distinct_channels_stays_within_the_channel_cap() {
        let b = learnt();
        let mut d = Values::new(ValuesConfig::default());
        d.max_chans = 8;
        let mut out = Vec::new();
        for k in 0..50 {
            let client = format!("10.9.0.{k}");
            d.on_event(
                &read_ir(1000, &client, PLC, 1, 0, &[100, 7]),
                Some(&b),
                &mut out,
            );
            assert!(d.chans.len() <= 8);
        }
        assert_eq!((d.chans.len(), d.chans_dropped), (8, 42));
        // Full: a baseline channel seen after the flood is not checked, and that is counted.
        let wild = read_ir(201_000, MASTER, PLC, 1, 0, &[99_999, 7]);
        d.on_event(&wild, Some(&b), &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(d.chans_dropped, 43);
        assert!(d.counters().contains(&("chans_dropped", 43)));
        // With room, the same read is checked.
        let (out, d) = run_with(ValuesConfig::default(), &[wild]);
        assert!(!out.is_empty());
        assert_eq!(d.chans_dropped, 0);
    }

    /// The alerts and the final object states of `evs`, with the fast paths or without.
    fn run_paths(cfg: &ValuesConfig, evs: &[IcsEvent], fast: bool) -> (Vec<Alert>, String) {
        let b = learnt();
        let mut d = Values::new(cfg.clone());
        d.fast_paths = fast;
        let mut out = Vec::new();
        for e in evs {
            d.on_event(e, Some(&b), &mut out);
        }
        d.release_all();
        let states: Vec<String> = d
            .chans
            .iter()
            .map(|c| format!("{:?} {}", c.states, d.states_dropped))
            .collect();
        (out, states.join("\n"))
    }

    #[test]
    fn the_fast_paths_change_no_alert_and_no_state() {
        let configs = [
            ValuesConfig::default(),
            // Room for few objects: untracked objects, full state table.
            ValuesConfig {
                max_states: 2,
                ..ValuesConfig::default()
            },
            // The block cache emptied again and again.
            ValuesConfig {
                max_cached_slots: 3,
                ..ValuesConfig::default()
            },
            // A run of 1 is already a freeze.
            ValuesConfig {
                freeze_factor: 0.0,
                freeze_min_reads: 0,
                freeze_min_secs: 0,
                ..ValuesConfig::default()
            },
            // Short freezes (the frozen state is reached and reported often).
            ValuesConfig {
                freeze_min_reads: 3,
                freeze_factor: 0.0,
                freeze_min_secs: 1,
                ..ValuesConfig::default()
            },
            // A step of 0 is a jump (negative threshold).
            ValuesConfig {
                jump_factor: -1.0,
                min_margin: -50.0,
                read_margin_frac: -0.6,
                magnitude_frac: -1.0,
                ..ValuesConfig::default()
            },
            // Counters whose growth is negative: every value above the range is tested.
            ValuesConfig {
                counter_rate_factor: -1.0,
                ..ValuesConfig::default()
            },
            // Narrow ranges: many values out of range.
            ValuesConfig {
                read_margin_frac: 0.0,
                magnitude_frac: 0.0,
                min_margin: 0.0,
                ..ValuesConfig::default()
            },
        ];
        for (k, cfg) in configs.iter().enumerate() {
            for seed in 0..6u64 {
                let evs = mixed_stream(seed * 7 + k as u64, 600);
                let (fast, fast_states) = run_paths(cfg, &evs, true);
                let (slow, slow_states) = run_paths(cfg, &evs, false);
                assert_eq!(texts(&fast), texts(&slow), "config {k} seed {seed}");
                assert_eq!(fast_states, slow_states, "config {k} seed {seed}");
                if k == 0 && seed == 0 {
                    // The stream does raise every kind of value alert.
                    for kind in [
                        "read_value_out_of_range",
                        "value_jump",
                        "value_frozen",
                        "written_value_out_of_range",
                    ] {
                        let kinds: Vec<&str> = fast.iter().map(|a| a.otwatch.kind).collect();
                        assert!(kinds.contains(&kind), "{kind}: {kinds:?}");
                    }
                }
            }
        }
    }

    /// The alerts and the final object states of `evs`, each event with the request number
    /// `number` gives (given its rank among the requests seen), or none.
    fn run_numbered(
        cfg: &ValuesConfig,
        evs: &[IcsEvent],
        number: &dyn Fn(u32) -> Option<u32>,
    ) -> (Vec<Alert>, String, usize) {
        let b = learnt();
        let mut d = Values::new(cfg.clone());
        let mut reqs: Vec<(
            crate::detect::novelty::ChanId,
            crate::detect::novelty::ModSig,
        )> = Vec::new();
        let mut out = Vec::new();
        let mut used = 0;
        for e in evs {
            let mut ctx = EventCtx::of(e);
            ctx.req = ctx.sig.and_then(|s| {
                let k = (ctx.key, s);
                let rank = reqs.iter().position(|x| *x == k).unwrap_or_else(|| {
                    reqs.push(k);
                    reqs.len() - 1
                });
                number(u32::try_from(rank).unwrap())
            });
            d.on_event_ctx(e, &ctx, Some(&b), &mut out);
            // The most blocks the request table held at once.
            used = used.max(
                d.by_req
                    .iter()
                    .flatten()
                    .filter(|&&x| x != NO_BLOCK)
                    .count(),
            );
        }
        d.release_all();
        let states: Vec<String> = d
            .chans
            .iter()
            .map(|c| format!("{:?} {}", c.states, d.states_dropped))
            .collect();
        (out, states.join("\n"), used)
    }

    #[test]
    fn blocks_found_by_request_number_change_no_alert_and_no_state() {
        // Requests with two accesses (read and write of holding registers), some channels
        // other than the baseline's, a cache emptied within one event (by its second access
        // when its first was cached), requests without numbers and numbers in any order.
        let mut evs = mixed_stream(11, 900);
        let mut r = Lcg(5);
        for ev in &mut evs {
            match r.next(6) {
                0 if ev.accesses.len() == 1 => {
                    ev.function.code = 23;
                    ev.accesses.push(Access {
                        dir: AccessDir::Write,
                        object: ObjectRef::Modbus {
                            table: ModbusTable::HoldingRegister,
                            start: 40,
                            count: 1,
                        },
                        values: ints(&[400 + r.next(200) as i64]).into(),
                    });
                }
                1 => ev.client.ip = ip(OTHER),
                _ => {}
            }
        }
        let configs = [
            ValuesConfig::default(),
            ValuesConfig {
                max_cached_slots: 3,
                ..ValuesConfig::default()
            },
            ValuesConfig {
                max_cached_slots: 5,
                max_values_per_access: 2,
                ..ValuesConfig::default()
            },
        ];
        for (k, cfg) in configs.iter().enumerate() {
            let (none, none_states, used) = run_numbered(cfg, &evs, &|_| None);
            assert_eq!(used, 0);
            assert!(!none.is_empty());
            let numberings: [&dyn Fn(u32) -> Option<u32>; 3] =
                [&Some, &|r| Some(900 - r), &|r| (r % 3 != 1).then_some(r)];
            for (j, number) in numberings.iter().enumerate() {
                let (out, states, used) = run_numbered(cfg, &evs, number);
                assert_eq!(texts(&out), texts(&none), "config {k} numbering {j}");
                assert_eq!(states, none_states, "config {k} numbering {j}");
                assert!(used > 0, "config {k} numbering {j}");
            }
        }
    }

    /// Runs `evs` as an engine does: requests numbered, those it would memoize (ended
    /// normally, no violations, one access to a Modbus range) through [`Values::on_hinted`]
    /// with a hint kept per request number (`hints`), the others (or all, without `hints`)
    /// through `on_event_ctx`; the alerts (words resolved), the states and the hint hits.
    /// Every channel's states with the detector's state counters, a line a channel: what two
    /// runs compare to show they left the same state behind.
    fn state_dump(d: &Values) -> Vec<String> {
        d.chans
            .iter()
            .map(|c| format!("{:?} {} {}", c.states, d.states_dropped, d.n_states))
            .collect()
    }

    fn run_hinted(
        b: &Baseline,
        cfg: &ValuesConfig,
        evs: &[IcsEvent],
        hints: bool,
    ) -> (Vec<String>, String, u64) {
        let mut d = Values::new(cfg.clone()).deferring_read_texts();
        let mut out = Vec::new();
        let mut reqs = Vec::new();
        let mut kept: Vec<Hint> = Vec::new();
        for e in evs {
            let ctx = numbered_ctx(&mut reqs, e);
            let memo = matches!(e.outcome, Outcome::Ok)
                && e.violations.is_empty()
                && matches!(
                    e.accesses.as_slice(),
                    [Access {
                        object: ObjectRef::Modbus { .. },
                        ..
                    }]
                );
            match ctx.req.filter(|_| hints && memo) {
                Some(r) => {
                    let r = r as usize;
                    if r >= kept.len() {
                        kept.resize(r + 1, NO_HINT);
                    }
                    d.on_hinted(e, &ctx, Some(b), &mut kept[r], &mut out);
                }
                None => d.on_event_ctx(e, &ctx, Some(b), &mut out),
            }
        }
        out.iter_mut().for_each(Alert::resolve);
        d.release_all();
        let states = state_dump(&d);
        let lines = out.iter().map(Alert::to_json_line).collect();
        (lines, states.join("\n"), d.hint_hits)
    }

    #[test]
    fn hinted_requests_change_no_alert_and_no_state() {
        // The engine's hints (a request's block, found again without a lookup) against the
        // general path: blocks that own their objects and lose them to a shorter block over
        // the same registers (the hint holds, the block does not own: general path), caches
        // emptied (the hint no longer holds), writes, short answers, odd values, blocks that
        // are not dense, two accesses, other channels.
        let b = learnt_many();
        let mut evs = owned_stream(17, 1500, false);
        evs.extend(owned_stream(19, 1500, true));
        let mut more = mixed_stream(23, 600);
        for (i, ev) in more.iter_mut().enumerate() {
            if i % 5 == 0 {
                ev.client.ip = ip(OTHER);
            }
        }
        evs.extend(more);
        let configs = [
            ValuesConfig::default(),
            ValuesConfig {
                max_cached_slots: 8,
                ..ValuesConfig::default()
            },
            ValuesConfig {
                max_values_per_access: 3,
                ..ValuesConfig::default()
            },
        ];
        for (k, cfg) in configs.iter().enumerate() {
            let (general, general_states, none) = run_hinted(&b, cfg, &evs, false);
            let (hinted, hinted_states, hits) = run_hinted(&b, cfg, &evs, true);
            assert_eq!(none, 0);
            assert!(hits > 1000, "config {k}: {hits}");
            assert!(general.len() > 10, "config {k}: {}", general.len());
            assert_eq!(hinted, general, "config {k}");
            assert_eq!(hinted_states, general_states, "config {k}");
        }
    }

    /// A baseline of input registers 10..=15: a noisy triangle, a constant, three values
    /// taking turns, large values, a flag and negative values.
    fn learnt_many() -> Baseline {
        let mut l = Learner::default();
        let mut r = Lcg(3);
        for i in 0..400i64 {
            let tri = if i % 100 < 50 { i % 100 } else { 100 - i % 100 };
            let vals = [
                500 + tri * 4 + r.next(3) as i64,
                7,
                [10, 20, 30][(i / 7 % 3) as usize],
                1_000_000 + (i % 50) * 1000,
                i / 13 % 2,
                -300 - (i % 40),
            ];
            l.observe(&read_ir(i * 1000, MASTER, PLC, 1, 10, &vals));
        }
        l.finish().unwrap()
    }

    /// Reads of registers 10..=15 mostly through one block (the owned path), sometimes
    /// through a shorter block over the same registers (the states go back and forth),
    /// with every kind of value the full checks treat apart: out of range, jumps, long
    /// repeats (freezes), values too large for the integer paths, non-integers, −0,
    /// missing values, and time going back.
    ///
    /// `wide`: the usual block reads register 16 too, which has no profile (a block that is
    /// not dense: its owned slots are not its slots of the same index).
    fn owned_stream(seed: u64, n: usize, wide: bool) -> Vec<IcsEvent> {
        let mut r = Lcg(seed);
        let mut t = 500_000i64;
        let mut cur = [600i64, 7, 20, 1_020_000, 1, -310];
        let mut evs = Vec::new();
        for i in 0..n {
            let still = i % 150 >= 90;
            t += match r.next(30) {
                0 => -800,
                1..=20 => 1000,
                _ => r.next(3000) as i64,
            };
            if !still {
                cur[0] = (cur[0] + r.next(9) as i64 - 4).clamp(520, 680);
                cur[2] = [10, 20, 30][r.next(3) as usize];
                cur[3] = 1_000_000 + r.next(50) as i64 * 1000;
                cur[4] = r.next(2) as i64;
                cur[5] = -300 - r.next(40) as i64;
            }
            let mut vals = cur.to_vec();
            if wide {
                vals.push(r.next(3) as i64);
            }
            match r.next(40) {
                0 => vals[0] = 5000,
                1 => vals[0] += if cur[0] > 600 { -150 } else { 150 },
                2 => vals[3] = 1 << 60,
                3 => vals[5] = i64::MIN,
                4 => vals[1] = i64::MAX,
                5 => vals[2] = 0,
                _ => {}
            }
            let mut ev = read_ir(t, MASTER, PLC, 1, 10, &vals);
            match r.next(25) {
                _ if i % 250 == 100 => ev = read_ir(t, MASTER, PLC, 1, 10, &vals[..4]),
                _ if i % 250 == 150 && wide => ev = read_ir(t, MASTER, PLC, 1, 10, &vals[..6]),
                _ if i % 250 == 200 => ev = read_ir(t, MASTER, PLC, 1, 12, &vals[2..]),
                2 => {
                    if let Some(a) = ev.accesses.first_mut() {
                        a.values.truncate(3);
                    }
                }
                3 => {
                    if let Some(a) = ev.accesses.first_mut() {
                        let odd = [
                            Value::Float(600.5),
                            Value::Float(-0.0),
                            Value::Float(7.0),
                            Value::Str("x".into()),
                            Value::UInt(20),
                            Value::Bool(true),
                            Value::Float(f64::NAN),
                        ];
                        let k = r.next(odd.len() as u64) as usize;
                        let at = r.next(6) as usize;
                        if let Some(v) = a.values.list_mut().get_mut(at) {
                            *v = odd[k].clone();
                        }
                    }
                }
                4 => ev = write_hr(t, OTHER, PLC, 1, 40, 500),
                _ => {}
            }
            evs.push(ev);
        }
        evs
    }

    /// The context an engine gives `e`: its request numbered by its channel and signature
    /// (`reqs`: those seen so far, in order).
    fn numbered_ctx(
        reqs: &mut Vec<(
            crate::detect::novelty::ChanId,
            crate::detect::novelty::ModSig,
        )>,
        e: &IcsEvent,
    ) -> EventCtx {
        let mut ctx = EventCtx::of(e);
        ctx.req = ctx.sig.map(|s| {
            let k = (ctx.key, s);
            let rank = reqs.iter().position(|x| *x == k).unwrap_or_else(|| {
                reqs.push(k);
                reqs.len() - 1
            });
            u32::try_from(rank).unwrap()
        });
        ctx
    }

    /// A named request: channel, function code, objects with their directions.
    type NamedKey = (
        crate::detect::novelty::ChanId,
        u32,
        Vec<(AccessDir, ObjectRef)>,
    );

    /// [`run_owned_paths`] (fast paths) with named requests numbered as an engine numbers
    /// them (channel, function and objects with their directions; one in six without a
    /// number), with the number of objects found by request number at the end.
    fn run_named_numbered(
        b: &Baseline,
        cfg: &ValuesConfig,
        evs: &[IcsEvent],
    ) -> (Vec<Alert>, String, usize) {
        let mut d = Values::new(cfg.clone());
        let mut out = Vec::new();
        let mut reqs: Vec<NamedKey> = Vec::new();
        for e in evs {
            let mut ctx = EventCtx::of(e);
            if ctx.sig.is_none() {
                let k = (
                    ctx.key,
                    e.function.code,
                    e.accesses
                        .iter()
                        .map(|a| (a.dir, a.object.clone()))
                        .collect(),
                );
                let rank = reqs.iter().position(|x| *x == k).unwrap_or_else(|| {
                    reqs.push(k);
                    reqs.len() - 1
                });
                ctx.req = (rank % 6 != 5).then(|| 1000 + u32::try_from(rank).unwrap());
            }
            d.on_event_ctx(e, &ctx, Some(b), &mut out);
        }
        let remembered = d
            .named_reqs
            .iter()
            .flat_map(|(_, o)| o)
            .filter(|&&o| o != NO_NAMED)
            .count();
        d.release_all();
        let states = state_dump(&d);
        (out, states.join("\n"), remembered)
    }

    /// [`run_paths`] on baseline `b`, with the number of events that found a block owning
    /// its objects (`numbered`: requests numbered as an engine does, and then the number of
    /// events that [`Values::owned_request`] takes).
    fn run_owned_paths(
        b: &Baseline,
        cfg: &ValuesConfig,
        evs: &[IcsEvent],
        fast: bool,
        numbered: bool,
    ) -> (Vec<Alert>, String, usize) {
        let mut d = Values::new(cfg.clone());
        d.fast_paths = fast;
        let mut out = Vec::new();
        let mut owned = 0;
        let mut reqs = Vec::new();
        for e in evs {
            if !numbered {
                owned += usize::from(d.store.iter().any(|b| b.own.is_some()));
                d.on_event(e, Some(b), &mut out);
                continue;
            }
            let ctx = numbered_ctx(&mut reqs, e);
            let by_req = ctx.req.and_then(|r| d.by_req.get(r as usize));
            let block = by_req.and_then(|&[bi, _]| d.store.get(bi as usize));
            let taken = block.is_some_and(|b| b.own.is_some())
                && e.accesses.len() == 1
                && e.accesses.iter().all(|a| !a.values.is_empty())
                && matches!(e.outcome, Outcome::Ok);
            owned += usize::from(taken && fast);
            d.on_event_ctx(e, &ctx, Some(b), &mut out);
        }
        d.release_all();
        assert!(d
            .chans
            .iter()
            .all(|c| c.owner.iter().all(|&o| o == NO_BLOCK)));
        let states = state_dump(&d);
        (out, states.join("\n"), owned)
    }

    #[test]
    fn blocks_give_their_states_back_before_the_last_observation() {
        // Every 50 events, each block that owns its states is numbered forward by whole
        // rings to a few observations before LAST_OBS (its runs and quiet ends with it), so
        // that it gives its objects back there and takes them again later: the same alerts
        // and states as the full checks.
        fn near_the_end(d: &mut Values) {
            for b in d.store.iter_mut() {
                let Some(c) = b.own.as_deref_mut() else {
                    continue;
                };
                let by = (LAST_OBS - 3).saturating_sub(b.k) / RING * RING;
                b.k += by;
                for (i, ab) in c.aux_base.iter_mut().enumerate() {
                    b.fast.update(i, |f| {
                        f.base += by as u32;
                        if f.qend != 0 {
                            f.qend = f.qend.saturating_add(by as u32);
                        }
                    });
                    if *ab != NO_AUX {
                        *ab += by;
                    }
                }
            }
        }
        let b = learnt_many();
        let cfg = ValuesConfig::default();
        for seed in 0..4u64 {
            let evs = owned_stream(seed * 7 + 3, 1500, seed % 2 == 1);
            let mut d = Values::new(cfg.clone());
            let mut out = Vec::new();
            let mut given_back = 0;
            for (i, e) in evs.iter().enumerate() {
                if i % 50 == 0 {
                    near_the_end(&mut d);
                }
                let before = d.store.iter().filter(|b| b.own.is_some()).count();
                d.on_event(e, Some(&b), &mut out);
                let after = d.store.iter().filter(|b| b.own.is_some()).count();
                given_back += usize::from(after < before);
            }
            d.release_all();
            let states = state_dump(&d);
            let (slow, slow_states, _) = run_owned_paths(&b, &cfg, &evs, false, false);
            assert_eq!(texts(&out), texts(&slow), "seed {seed}");
            assert_eq!(states.join("\n"), slow_states, "seed {seed}");
            assert!(given_back >= 10, "seed {seed}: {given_back}");
        }
    }

    #[test]
    fn blocks_owning_their_states_change_no_alert_and_no_state() {
        let b = learnt_many();
        let configs = [
            ValuesConfig::default(),
            // Room for a few objects: some slots untracked (the block never owns them).
            ValuesConfig {
                max_states: 4,
                ..ValuesConfig::default()
            },
            // The cache emptied when the other block shape comes (states given back).
            ValuesConfig {
                max_cached_slots: 7,
                ..ValuesConfig::default()
            },
            // Short freezes, often reported (repeats past the ring of observation times).
            ValuesConfig {
                freeze_min_reads: 3,
                freeze_factor: 0.0,
                freeze_min_secs: 1,
                ..ValuesConfig::default()
            },
            // Long runs of repeats, never frozen (runs longer than the ring).
            ValuesConfig {
                freeze_min_reads: 1_000,
                freeze_factor: 100.0,
                ..ValuesConfig::default()
            },
            // A run of 1 is already a freeze (no change path).
            ValuesConfig {
                freeze_factor: 0.0,
                freeze_min_reads: 0,
                freeze_min_secs: 0,
                ..ValuesConfig::default()
            },
            // Narrow ranges and steps: many values out of range and many jumps.
            ValuesConfig {
                read_margin_frac: 0.0,
                magnitude_frac: 0.0,
                min_margin: 0.0,
                jump_factor: 0.5,
                ..ValuesConfig::default()
            },
            // A step of 0 is a jump.
            ValuesConfig {
                jump_factor: -1.0,
                min_margin: -50.0,
                read_margin_frac: -0.6,
                magnitude_frac: -1.0,
                ..ValuesConfig::default()
            },
        ];
        for (k, cfg) in configs.iter().enumerate() {
            for seed in 0..4u64 {
                // Odd seeds: the usual block is not dense.
                let wide = seed % 2 == 1;
                let evs = owned_stream(seed * 13 + k as u64, 1500, wide);
                let (fast, fast_states, owned) = run_owned_paths(&b, cfg, &evs, true, false);
                let (slow, slow_states, none) = run_owned_paths(&b, cfg, &evs, false, false);
                assert_eq!(texts(&fast), texts(&slow), "config {k} seed {seed}");
                assert_eq!(fast_states, slow_states, "config {k} seed {seed}");
                assert_eq!(none, 0);
                // The same through the numbered requests' path (`owned_request`).
                let (num, num_states, taken) = run_owned_paths(&b, cfg, &evs, true, true);
                assert_eq!(texts(&num), texts(&slow), "config {k} seed {seed} numbered");
                assert_eq!(num_states, slow_states, "config {k} seed {seed} numbered");
                let (num_slow, num_slow_states, none) = run_owned_paths(&b, cfg, &evs, false, true);
                assert_eq!(texts(&num_slow), texts(&slow), "config {k} seed {seed}");
                assert_eq!(num_slow_states, slow_states, "config {k} seed {seed}");
                assert_eq!(none, 0);
                // With room for 4 objects the block (6) never owns its states.
                let least = if k == 1 { 0 } else { 1000 };
                assert!(owned >= least, "config {k} seed {seed}: {owned}");
                assert!(taken >= least, "config {k} seed {seed}: {taken}");
                if k == 0 && seed == 0 {
                    let kinds: Vec<&str> = fast.iter().map(|a| a.otwatch.kind).collect();
                    for kind in ["read_value_out_of_range", "value_jump", "value_frozen"] {
                        assert!(kinds.contains(&kind), "{kind}: {kinds:?}");
                    }
                }
            }
        }
    }

    /// The named objects of [`learnt_named`]: a level that grows (a counter), a constant, a
    /// mode taking turns over three values, and a noisy value named in words.
    fn named_objs() -> [ObjectRef; 4] {
        let node = |s: &str| ObjectRef::Node {
            node_id: s.into(),
            attribute: Some(13),
        };
        [
            level(),
            node("ns=2;s=Const"),
            node("ns=2;s=Mode"),
            ObjectRef::Other {
                name: "client_handle=9".into(),
            },
        ]
    }

    /// An event reading `vals` of [`named_objs`] (in order) at `t` ms.
    fn named_read(t: i64, vals: &[Value]) -> IcsEvent {
        let mut ev = read_ir(t, MASTER, PLC, 1, 0, &[0]);
        ev.accesses = named_objs()
            .into_iter()
            .zip(vals)
            .map(|(object, v)| Access {
                dir: AccessDir::Read,
                object,
                values: vec![v.clone()].into(),
            })
            .collect();
        ev
    }

    fn learnt_named() -> Baseline {
        let mut l = Learner::default();
        let mut r = Lcg(4);
        for i in 0..300i64 {
            let vals = [
                100 + i / 2,
                7,
                [10, 20, 30][(i / 5 % 3) as usize],
                50 + r.next(5) as i64,
            ];
            l.observe(&named_read(i * 1000, &ints(&vals)));
        }
        l.finish().unwrap()
    }

    #[test]
    fn named_reads_take_the_fast_paths_without_changing_alerts_or_states() {
        let b = learnt_named();
        let mut r = Lcg(21);
        let mut t = 400_000i64;
        let mut cur = [180i64, 7, 20, 52];
        let mut evs = Vec::new();
        for i in 0..1500 {
            let still = i % 200 >= 120;
            t += match r.next(25) {
                0 => -700,
                1..=18 => 1000,
                _ => r.next(4000) as i64,
            };
            if !still {
                cur[0] = (cur[0] + r.next(5) as i64 - 2).clamp(130, 230);
                cur[2] = [10, 20, 30][r.next(3) as usize];
                cur[3] = 50 + r.next(5) as i64;
            }
            let mut vals = ints(&cur);
            match r.next(30) {
                0 => vals[0] = Value::Int(9000),
                1 => vals[3] = Value::Int(cur[3] + 40),
                7 | 8 => vals[0] = Value::Int(cur[0] + if cur[0] < 180 { 100 } else { -100 }),
                2 => vals[1] = Value::Float(7.0),
                3 => vals[2] = Value::Float(f64::NAN),
                4 => vals[3] = Value::Str("x".into()),
                5 => vals[0] = Value::Int(-5),
                6 => vals[1] = Value::Float(-0.0),
                _ => {}
            }
            let mut ev = named_read(t, &vals);
            if r.next(40) == 0 {
                ev.accesses[2].dir = AccessDir::Write;
            }
            if r.next(50) == 0 {
                ev.accesses.reverse();
            }
            evs.push(ev);
        }
        let configs = [
            ValuesConfig::default(),
            ValuesConfig {
                max_states: 2,
                ..ValuesConfig::default()
            },
            ValuesConfig {
                freeze_min_reads: 3,
                freeze_factor: 0.0,
                freeze_min_secs: 1,
                ..ValuesConfig::default()
            },
            ValuesConfig {
                freeze_factor: 0.0,
                freeze_min_reads: 0,
                freeze_min_secs: 0,
                ..ValuesConfig::default()
            },
            ValuesConfig {
                jump_factor: -1.0,
                min_margin: -50.0,
                read_margin_frac: -0.6,
                magnitude_frac: -1.0,
                ..ValuesConfig::default()
            },
            ValuesConfig {
                counter_rate_factor: -1.0,
                ..ValuesConfig::default()
            },
            ValuesConfig {
                read_margin_frac: 0.0,
                magnitude_frac: 0.0,
                min_margin: 0.0,
                jump_factor: 0.5,
                ..ValuesConfig::default()
            },
        ];
        for (k, cfg) in configs.iter().enumerate() {
            let (fast, fast_states, _) = run_owned_paths(&b, cfg, &evs, true, false);
            let (slow, slow_states, _) = run_owned_paths(&b, cfg, &evs, false, false);
            assert_eq!(texts(&fast), texts(&slow), "config {k}");
            assert_eq!(fast_states, slow_states, "config {k}");
            // With named requests numbered (their objects then found by number).
            let (numbered, numbered_states, remembered) = run_named_numbered(&b, cfg, &evs);
            assert_eq!(texts(&numbered), texts(&slow), "config {k}");
            assert_eq!(numbered_states, slow_states, "config {k}");
            assert!(remembered > 0, "config {k}");
            if k == 0 {
                let kinds: Vec<&str> = fast.iter().map(|a| a.otwatch.kind).collect();
                for kind in ["read_value_out_of_range", "value_jump", "value_frozen"] {
                    assert!(kinds.contains(&kind), "{kind}: {kinds:?}");
                }
            }
        }
    }

    #[test]
    fn the_integer_window_is_inside_the_float_tests() {
        // Integers that pass the owned change path pass `read_change`'s float tests.
        let mut r = Lcg(9);
        let edges = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            0.5,
            -0.5,
            7.0,
            1e300,
            -1e300,
            EXACT as f64,
            -(EXACT as f64),
            EXACT as f64 * 4.0,
        ];
        let pick = |r: &mut Lcg| match r.next(3) {
            0 => edges[r.next(edges.len() as u64) as usize],
            1 => r.next(2000) as f64 - 1000.0,
            _ => (r.next(2000) as f64 - 1000.0) / 7.0,
        };
        for _ in 0..20_000 {
            let h = Hot {
                lo: pick(&mut r),
                hi_fast: pick(&mut r),
                step_max: pick(&mut r),
                ..Hot::of(None)
            };
            let (lo, span, step) = int_window(&h);
            let (nlo, nspan, nstep) = narrow_window((lo, span, step));
            // The owned slot's change path (`Fast`), from a last value (narrow) to `x`.
            let narrow = |x: i64, last: i32| {
                let mut f = Fast {
                    last,
                    qend: 0,
                    lo: nlo,
                    span: nspan,
                    step: nstep,
                    step2: nstep * 2,
                    qbc: 1,
                    base: FIRST_OBS as u32,
                };
                x != i64::from(last) && owned_fast(&mut f, &Value::Int(x), FIRST_OBS as u32)
            };
            for _ in 0..8 {
                let int = |r: &mut Lcg| match r.next(6) {
                    0 => [i64::MIN, i64::MAX, EXACT, -EXACT, EXACT + 1, 0][r.next(6) as usize],
                    _ => r.next(2400) as i64 - 1200,
                };
                let (x, last) = (int(&mut r), int(&mut r));
                let last = if last.unsigned_abs() <= EXACT as u64 {
                    last
                } else {
                    0
                };
                // (An equal value takes the repeat path, not this one.)
                let fast = x != last
                    && (x.wrapping_sub(lo) as u64) <= span
                    && (x.wrapping_sub(last) as u64).wrapping_add(step) <= step * 2;
                let (xf, lf) = (x as f64, last as f64);
                let slow = xf >= h.lo && xf <= h.hi_fast && (xf - lf).abs() <= h.step_max;
                assert!(!fast || slow, "{h:?} {x} {last}");
                // The narrow fields let no more values through, and none from a detached
                // slot; for small values at least 0 they let the same ones through.
                if let Ok(l) = i32::try_from(last) {
                    let n = narrow(x, l);
                    assert!(!n || fast, "{h:?} {x} {last}");
                    let small = (0..1 << 20).contains(&x) && lo.abs() < 1 << 20 && span < 1 << 20;
                    if small && step < 1 << 15 {
                        assert_eq!(n, fast, "{h:?} {x} {last}");
                    }
                }
                assert!(!narrow(x, DETACHED), "{h:?} {x}");
            }
        }
    }

    /// Every owned slot's fields, in order.
    fn slots_of(f: &FastSlots) -> Vec<Fast> {
        (0..f.len()).map_while(|i| f.get(i)).collect()
    }

    #[test]
    fn owned_slots_read_back_as_set() {
        let mut r = Lcg(23);
        for n in 0..3 * LANES + 2 {
            let mut one = || Fast {
                last: r.next(1000) as i32,
                qend: r.next(1000) as u32,
                lo: r.next(1000) as i32 - 500,
                span: r.next(1000) as u32,
                step: r.next(1000) as u32,
                step2: r.next(1000) as u32,
                qbc: r.next(64) as u32,
                base: r.next(1000) as u32,
            };
            let want: Vec<Fast> = (0..n).map(|_| one()).collect();
            let mut s: FastSlots = want.iter().copied().collect();
            assert_eq!(s.len(), n);
            assert_eq!(s.groups.len(), n.div_ceil(LANES));
            assert_eq!(format!("{:?}", slots_of(&s)), format!("{want:?}"));
            assert!(s.get(n).is_none());
            // Each slot set on its own changes that slot alone; past the end, nothing.
            let mut want = want;
            for i in 0..n {
                let f = one();
                s.set(i, f);
                want[i] = f;
                assert_eq!(format!("{:?}", slots_of(&s)), format!("{want:?}"));
            }
            s.set(n, one());
            assert_eq!(s.len(), n);
            assert_eq!(format!("{:?}", slots_of(&s)), format!("{want:?}"));
        }
    }

    #[test]
    fn the_owned_prefix_by_groups_is_the_one_by_one_loop() {
        // Every pair of lengths up to three groups and a part (the values after the whole
        // groups included), and values that stop the prefix at every place, in a group or
        // after: repeats (quiet or not), quiet and loud changes, non-integers.
        fn one_by_one(fast: &mut [Fast], values: &[Value], k: u32) -> usize {
            let mut done = 0;
            for (f, v) in fast.iter_mut().zip(values) {
                if !owned_fast(f, v, k) {
                    break;
                }
                done += 1;
            }
            done
        }
        let key = |f: &[Fast]| -> Vec<(i32, u32, u32)> {
            f.iter().map(|f| (f.last, f.qend, f.base)).collect()
        };
        let mut r = Lcg(21);
        let k = FIRST_OBS as u32 + 10;
        for _ in 0..40_000 {
            let (nf, nv) = (
                r.next(3 * LANES as u64 + 3) as usize,
                r.next(3 * LANES as u64 + 3) as usize,
            );
            // Mostly integers, so that whole groups take the paths.
            let odd = 4 + r.next(40);
            let fast: Vec<Fast> = (0..nf)
                .map(|_| Fast {
                    last: r.next(4) as i32,
                    qend: k - 1 + r.next(3) as u32,
                    lo: 0,
                    span: r.next(6) as u32,
                    step: 1,
                    step2: 2,
                    qbc: r.next(3) as u32,
                    base: FIRST_OBS as u32,
                })
                .collect();
            let values: Vec<Value> = (0..nv)
                .map(|_| match r.next(odd) {
                    0 => Value::Float(1.0),
                    1 => Value::Bool(r.next(2) == 1),
                    2 => Value::Str("x".into()),
                    _ => Value::Int(r.next(5) as i64),
                })
                .collect();
            let mut a: FastSlots = fast.iter().copied().collect();
            let mut b = fast;
            let da = owned_prefix(&mut a, &values, k);
            let db = one_by_one(&mut b, &values, k);
            assert_eq!(da, db, "{values:?}");
            assert_eq!(key(&slots_of(&a)), key(&b));
        }
    }

    #[test]
    fn the_owned_prefix_of_compact_values_is_that_of_their_list() {
        // Registers and bits kept as words take the same paths, and stop at the same place,
        // as the same values in a list; every pair of lengths, repeats and changes at every
        // place, registers past the 32-bit-signed window's small cases (up to 65535).
        let key = |f: &FastSlots| -> Vec<(i32, u32, u32)> {
            slots_of(f)
                .iter()
                .map(|f| (f.last, f.qend, f.base))
                .collect()
        };
        let mut r = Lcg(22);
        let k = FIRST_OBS as u32 + 10;
        for round in 0..20_000 {
            let (nf, nv) = (
                r.next(3 * LANES as u64 + 3) as usize,
                r.next(3 * LANES as u64 + 3) as usize,
            );
            let bits = round % 3 == 0;
            let top = if bits {
                2
            } else if round % 2 == 0 {
                5
            } else {
                65_536
            };
            let fast: Vec<Fast> = (0..nf)
                .map(|_| Fast {
                    last: r.next(top) as i32,
                    qend: k - 1 + r.next(3) as u32,
                    lo: r.next(3) as i32,
                    span: r.next(top) as u32,
                    step: r.next(4) as u32,
                    step2: r.next(9) as u32,
                    qbc: r.next(3) as u32,
                    base: FIRST_OBS as u32,
                })
                .collect();
            let words: Vec<u16> = (0..nv).map(|_| r.next(top) as u16).collect();
            let mut compact = AccessValues::new();
            if bits {
                let mut packed = vec![0u8; nv.div_ceil(8)];
                for (i, w) in words.iter().enumerate() {
                    packed[i / 8] |= (*w as u8) << (i % 8);
                }
                compact.set_bits(&packed, nv);
            } else {
                let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
                compact.set_registers(&bytes, nv);
            }
            let list = compact.to_vec();
            assert_eq!(compact.compact(), Some(&words[..]));
            let mut a: FastSlots = fast.iter().copied().collect();
            let mut b: FastSlots = fast.into_iter().collect();
            let da = owned_prefix(&mut a, &words, k);
            let db = owned_prefix(&mut b, &list, k);
            assert_eq!(da, db, "{words:?}");
            assert_eq!(key(&a), key(&b));
        }
    }

    #[test]
    fn the_repeat_path_counts_like_the_full_checks() {
        // 180 read 30 times a second apart: the repeats take the repeat path until the run
        // reaches the freeze threshold (20), then the full checks raise the freeze once; and
        // with the freeze reported, repeats take the repeat path again.
        let evs: Vec<IcsEvent> = (0..40)
            .map(|i| read_ir(999_000 + i * 1000, MASTER, PLC, 1, 0, &[180, 7]))
            .collect();
        let cfg = ValuesConfig::default();
        let (fast, fast_states) = run_paths(&cfg, &evs, true);
        let (slow, slow_states) = run_paths(&cfg, &evs, false);
        assert_eq!(fast.len(), 1, "{fast:?}");
        assert_eq!(fast[0].otwatch.kind, "value_frozen");
        assert_eq!(texts(&fast), texts(&slow));
        assert_eq!(fast_states, slow_states);
        // A value that stays out of range is reported on every read: never the repeat path.
        let evs: Vec<IcsEvent> = (0..5)
            .map(|i| read_ir(999_000 + i * 1000, MASTER, PLC, 1, 0, &[180, 9000]))
            .collect();
        let (fast, _) = run_paths(&cfg, &evs, true);
        assert_eq!(fast.len(), 5, "{fast:?}");
    }

    #[test]
    fn a_block_with_registers_the_baseline_never_saw() {
        // Input registers 0 and 1 have profiles, 2 and 3 none: only 0 is reported, and all
        // four are tracked (as before: an object is tracked from its first numeric value).
        let (out, d) = run_with(
            ValuesConfig::default(),
            &[read_ir(999_000, MASTER, PLC, 1, 0, &[5000, 7, 9999, -9999])],
        );
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0]
            .otwatch
            .explanation
            .starts_with("input register 0 on 10.0.1.1 unit 1 read 5000"));
        assert_eq!(d.n_states, 4);
        // Fewer values than the request's count: only the values present are looked at.
        let mut ev = read_ir(999_000, MASTER, PLC, 1, 0, &[5000]);
        if let Some(a) = ev.accesses.first_mut() {
            a.object = ObjectRef::Modbus {
                table: ModbusTable::InputRegister,
                start: 0,
                count: 4,
            };
        }
        let (out, d) = run_with(ValuesConfig::default(), &[ev]);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(d.n_states, 1);
    }

    #[test]
    fn overlapping_blocks_share_the_state_of_an_object() {
        // Register 0 read through two different blocks: the jump is seen across them.
        let out = run(&[
            read_ir(999_000, MASTER, PLC, 1, 0, &[150, 7]),
            read_ir(1_000_000, MASTER, PLC, 1, 0, &[250]),
        ]);
        let kinds: Vec<&str> = out.iter().map(|a| a.otwatch.kind).collect();
        assert_eq!(kinds, ["value_jump"], "{out:?}");
        // A freeze counted over alternating blocks (0+2, 0+1, and 1+1 which does not touch
        // register 0) is the freeze of one block.
        let alternating: Vec<IcsEvent> = (0..60)
            .map(|i| match i % 3 {
                0 => read_ir(999_000 + i * 500, MASTER, PLC, 1, 0, &[180, 7]),
                1 => read_ir(999_000 + i * 500, MASTER, PLC, 1, 0, &[180]),
                _ => read_ir(999_000 + i * 500, MASTER, PLC, 1, 1, &[7]),
            })
            .collect();
        let single: Vec<IcsEvent> = (0..60)
            .filter(|i| i % 3 != 2)
            .map(|i| read_ir(999_000 + i * 500, MASTER, PLC, 1, 0, &[180, 7]))
            .collect();
        let a = run(&alternating);
        let s = run(&single);
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].otwatch.kind, "value_frozen");
        assert_eq!(texts(&a), texts(&s));
    }

    #[test]
    fn objects_beyond_the_state_cap_are_checked_but_not_tracked() {
        let cfg = ValuesConfig {
            max_states: 1,
            ..ValuesConfig::default()
        };
        // Register 1 takes the only state; register 0 cannot jump, but is still out of range.
        let (out, d) = run_with(
            cfg,
            &[
                read_ir(998_000, MASTER, PLC, 1, 1, &[7]),
                read_ir(999_000, MASTER, PLC, 1, 0, &[150, 7]),
                read_ir(1_000_000, MASTER, PLC, 1, 0, &[250, 7]),
                read_ir(1_001_000, MASTER, PLC, 1, 0, &[5000, 7]),
                write_hr(1_002_000, OTHER, PLC, 1, 40, 9999),
            ],
        );
        let kinds: Vec<&str> = out.iter().map(|a| a.otwatch.kind).collect();
        assert_eq!(
            kinds,
            ["read_value_out_of_range", "written_value_out_of_range"],
            "{out:?}"
        );
        assert_eq!(d.n_states, 1);
        // The three reads of register 0 (the write loses nothing: writes cannot jump).
        assert_eq!(d.states_dropped, 3);
        // With room, the same reads jump.
        let out = run(&[
            read_ir(998_000, MASTER, PLC, 1, 1, &[7]),
            read_ir(999_000, MASTER, PLC, 1, 0, &[150, 7]),
            read_ir(1_000_000, MASTER, PLC, 1, 0, &[250, 7]),
        ]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].otwatch.kind, "value_jump");
    }

    #[test]
    fn a_block_ties_its_slots_to_objects_as_values_arrive() {
        // A read of input registers 1..=2 that returned one value only: register 2 is not
        // tracked yet. With room for one object, register 0 (read next) and then register 2
        // are not tracked: register 0 cannot jump.
        let mut short = read_ir(997_000, MASTER, PLC, 1, 1, &[7]);
        if let Some(a) = short.accesses.first_mut() {
            a.object = ObjectRef::Modbus {
                table: ModbusTable::InputRegister,
                start: 1,
                count: 2,
            };
        }
        let evs = [
            short,
            read_ir(998_000, MASTER, PLC, 1, 0, &[150, 7]),
            read_ir(999_000, MASTER, PLC, 1, 0, &[250, 7]),
            read_ir(1_000_000, MASTER, PLC, 1, 1, &[7, 5]),
        ];
        let cap = |max_states| ValuesConfig {
            max_states,
            ..ValuesConfig::default()
        };
        let (out, d) = run_with(cap(1), &evs);
        assert!(out.is_empty(), "{out:?}");
        // Register 0's two reads (register 2, without a profile, loses nothing).
        assert_eq!((d.n_states, d.states_dropped), (1, 2));
        let (out, d) = run_with(cap(3), &evs);
        let kinds: Vec<&str> = out.iter().map(|a| a.otwatch.kind).collect();
        assert_eq!(kinds, ["value_jump"], "{out:?}");
        assert_eq!((d.n_states, d.states_dropped), (3, 0));
    }

    #[test]
    fn the_block_cache_changes_no_alert() {
        // Reads and writes through blocks of several shapes; the same alerts whether the
        // blocks stay cached, the cache is emptied again and again, or nothing fits in it.
        let mut evs = Vec::new();
        for i in 0..120i64 {
            let t = 999_000 + i * 700;
            let v = if i % 40 < 25 { 180 } else { 100 + i };
            evs.push(match i % 4 {
                0 => read_ir(t, MASTER, PLC, 1, 0, &[v, 7]),
                1 => read_ir(t, MASTER, PLC, 1, 0, &[v]),
                2 => read_ir(t, MASTER, PLC, 1, 1, &[7 + i % 3, v]),
                _ => write_hr(t, OTHER, PLC, 1, 40, 400 + i * 3),
            });
        }
        evs.push(read_ir(1_200_000, MASTER, PLC, 1, 0, &[9000, 7]));
        let (cached, d) = run_with(ValuesConfig::default(), &evs);
        assert_eq!(d.cache_resets, 0);
        assert!(cached.len() >= 4, "{cached:?}");
        let (resets, d) = run_with(
            ValuesConfig {
                max_cached_slots: 2,
                ..ValuesConfig::default()
            },
            &evs,
        );
        assert!(d.cache_resets > 50, "{}", d.cache_resets);
        assert!(d.cached_slots <= 2);
        let (uncached, d) = run_with(
            ValuesConfig {
                max_cached_slots: 0,
                ..ValuesConfig::default()
            },
            &evs,
        );
        assert_eq!(d.cached_slots, 0);
        assert_eq!(texts(&cached), texts(&resets));
        assert_eq!(texts(&cached), texts(&uncached));
    }

    #[test]
    fn named_objects_are_checked_and_tracked() {
        let mut l = Learner::default();
        for i in 0..200i64 {
            let ev = read_ir(i * 1000, MASTER, PLC, 1, 0, &[0]);
            l.observe(&named(ev, level(), AccessDir::Read, 100 + i));
        }
        let b = l.finish().unwrap();
        let ev = |t: i64, v: i64| {
            named(
                read_ir(t, MASTER, PLC, 1, 0, &[0]),
                level(),
                AccessDir::Read,
                v,
            )
        };
        let mut d = Values::new(ValuesConfig::default());
        let mut out = Vec::new();
        for e in [ev(999_000, 5000), ev(1_000_000, 150), ev(1_001_000, 250)] {
            d.on_event(&e, Some(&b), &mut out);
        }
        let kinds: Vec<&str> = out.iter().map(|a| a.otwatch.kind).collect();
        assert_eq!(kinds, ["read_value_out_of_range", "value_jump"], "{out:?}");
        assert!(out[0]
            .otwatch
            .explanation
            .starts_with("node ns=2;s=Tank.Level on 10.0.1.1 unit 1 read 5000"));
        assert_eq!(d.n_states, 1);
        // Full state table: still out of range, never a jump; counted.
        let mut d = Values::new(ValuesConfig {
            max_states: 0,
            ..ValuesConfig::default()
        });
        out.clear();
        for e in [ev(999_000, 5000), ev(1_000_000, 150), ev(1_001_000, 250)] {
            d.on_event(&e, Some(&b), &mut out);
        }
        let kinds: Vec<&str> = out.iter().map(|a| a.otwatch.kind).collect();
        assert_eq!(kinds, ["read_value_out_of_range"], "{out:?}");
        assert_eq!(d.states_dropped, 3);
    }

    #[test]
    fn every_kind_of_value_in_a_block_is_checked_as_numeric_says() {
        // Integers and booleans take the block loop's own conversions, the rest `numeric`:
        // a block of mixed kinds gives the alerts of the same numbers as integers, and a value
        // that is not a number is skipped (not tracked, no alert).
        let with = |vals: Vec<Value>| {
            let mut ev = read_ir(999_000, MASTER, PLC, 1, 0, &[0, 0]);
            if let Some(a) = ev.accesses.first_mut() {
                a.values = vals.into();
            }
            ev
        };
        let mixed = [
            with(vec![Value::Float(5000.0), Value::Bool(true)]),
            with(vec![Value::UInt(150), Value::Str("x".into())]),
            with(vec![Value::Float(250.0), Value::Bool(false)]),
            with(vec![Value::Int(9000), Value::Opaque("y")]),
        ];
        let ints = [
            read_ir(999_000, MASTER, PLC, 1, 0, &[5000, 1]),
            read_ir(999_000, MASTER, PLC, 1, 0, &[150]),
            read_ir(999_000, MASTER, PLC, 1, 0, &[250, 0]),
            read_ir(999_000, MASTER, PLC, 1, 0, &[9000]),
        ];
        let (a, da) = run_with(ValuesConfig::default(), &mixed);
        let (b, db) = run_with(ValuesConfig::default(), &ints);
        let kinds: Vec<&str> = a.iter().map(|x| x.otwatch.kind).collect();
        assert_eq!(
            kinds,
            [
                "read_value_out_of_range",
                "read_value_out_of_range",
                "value_jump",
                "read_value_out_of_range",
                "read_value_out_of_range",
            ],
            "{a:#?}"
        );
        assert_eq!(texts(&a), texts(&b));
        assert_eq!((da.n_states, db.n_states), (2, 2));
    }

    #[test]
    fn micros_between_is_micros_since() {
        let ts = |secs: i64, nanos: u32| Timestamp { secs, nanos };
        let cases = [
            (ts(10, 0), ts(10, 0)),
            (ts(10, 999), ts(10, 0)),
            (ts(10, 1000), ts(10, 0)),
            (ts(11, 0), ts(10, 999_999_999)),
            (ts(10, 0), ts(11, 0)),
            (ts(1_700_000_000, 5_000), ts(1_600_000_000, 999_000)),
            (ts(i64::MAX, 0), ts(0, 0)),
            (ts(i64::MAX, 999_999_999), ts(i64::MIN, 0)),
            (ts(-5, 10), ts(-6, 999_999_999)),
        ];
        for (now, earlier) in cases {
            assert_eq!(
                micros_between(now, earlier),
                now.micros_since(earlier),
                "{now:?} {earlier:?}"
            );
        }
    }

    #[test]
    fn a_counter_may_grow_past_its_range_but_not_fall_below_it() {
        // Input register 5 counts pump starts: +1 every 60 reads while learning (100..=109),
        // register 6 goes up and down in the same range.
        let mut l = Learner::default();
        for i in 0..600i64 {
            let wobble = 100 + (i / 60) % 3;
            l.observe(&read_ir(
                i * 1000,
                MASTER,
                PLC,
                1,
                5,
                &[100 + i / 60, wobble],
            ));
        }
        let b = l.finish().unwrap();
        let ch = &b.channels[0];
        assert!(
            ch.objects["u1/input_register/5"]
                .read
                .as_ref()
                .unwrap()
                .monotonic
        );
        assert!(
            !ch.objects["u1/input_register/6"]
                .read
                .as_ref()
                .unwrap()
                .monotonic
        );
        let mut d = Values::new(ValuesConfig::default());
        let mut out = Vec::new();
        // An hour later the counter reads 160: normal. The wobbling value at 160 is not.
        d.on_event(
            &read_ir(4_200_000, MASTER, PLC, 1, 5, &[160, 160]),
            Some(&b),
            &mut out,
        );
        assert_eq!(out.len(), 1, "{out:#?}");
        assert!(out[0].otwatch.explanation.starts_with("input register 6 "));
        // A counter that went backwards below its learnt range is reported.
        out.clear();
        d.on_event(
            &read_ir(4_201_000, MASTER, PLC, 1, 5, &[3, 101]),
            Some(&b),
            &mut out,
        );
        assert_eq!(out.len(), 1, "{out:#?}");
        assert!(out[0].otwatch.explanation.starts_with("input register 5 "));
        // Far faster than its pace: 5000 an hour later is out of range.
        let mut d = Values::new(ValuesConfig::default());
        out.clear();
        d.on_event(
            &read_ir(4_200_000, MASTER, PLC, 1, 5, &[5000, 101]),
            Some(&b),
            &mut out,
        );
        assert_eq!(out.len(), 1, "{out:#?}");
        assert!(out[0].otwatch.explanation.starts_with("input register 5 "));
    }

    #[test]
    fn issue_example_explanation() {
        let out = run(&[write_hr(999_000, ROGUE, PLC, 1, 40, 9999)]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].otwatch.kind, "written_value_out_of_range");
        let e = &out[0].otwatch.explanation;
        assert!(
            e.starts_with("10.0.0.66 wrote 9999 to holding register 40 on 10.0.1.1 unit 1; in the baseline only 10.0.0.7 wrote it, with values 470–530"),
            "{e}"
        );
    }

    #[test]
    fn writes_within_margin_are_silent() {
        assert!(run(&[write_hr(999_000, OTHER, PLC, 1, 40, 540)]).is_empty());
        assert!(run(&[write_hr(999_000, OTHER, PLC, 1, 40, 455)]).is_empty());
        let out = run(&[write_hr(999_000, OTHER, PLC, 1, 40, 600)]);
        assert!(out[0]
            .otwatch
            .explanation
            .contains("10.0.0.7 itself wrote it"));
    }

    #[test]
    fn read_out_of_range_jump_and_freeze() {
        let out = run(&[read_ir(999_000, MASTER, PLC, 1, 0, &[5000, 7])]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].otwatch.kind, "read_value_out_of_range");

        let out = run(&[
            read_ir(999_000, MASTER, PLC, 1, 0, &[150, 7]),
            read_ir(1_000_000, MASTER, PLC, 1, 0, &[250, 7]),
        ]);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].otwatch.kind, "value_jump");
        assert!(out[0]
            .otwatch
            .explanation
            .contains("jumped from 150 to 250"));

        let evs: Vec<IcsEvent> = (0..30)
            .map(|i| read_ir(999_000 + i * 1000, MASTER, PLC, 1, 0, &[180, 7]))
            .collect();
        let out = run(&evs);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].otwatch.kind, "value_frozen");
        assert!(out[0].otwatch.explanation.contains("for 21 reads in a row"));
        // The same value 30 times within 0.3 s (a burst of reads) is not frozen.
        let evs: Vec<IcsEvent> = (0..30)
            .map(|i| read_ir(999_000 + i * 10, MASTER, PLC, 1, 0, &[180, 7]))
            .collect();
        assert!(run(&evs).is_empty());
        // The constant register 1 never "freezes".
        assert!(!out[0].otwatch.explanation.contains("input register 1 "));
    }

    #[test]
    fn way_back_from_out_of_range_is_not_a_jump() {
        // 5000 is out of range (reported as such); 150 after it is back to normal.
        let out = run(&[
            read_ir(999_000, MASTER, PLC, 1, 0, &[5000, 7]),
            read_ir(1_000_000, MASTER, PLC, 1, 0, &[150, 7]),
        ]);
        let kinds: Vec<&str> = out.iter().map(|a| a.otwatch.kind).collect();
        assert_eq!(kinds, ["read_value_out_of_range"], "{out:?}");
    }

    proptest::proptest! {
        /// The deferred words of a read-out-of-range alert, written by `ReadText::fill`, are
        /// the eager path's, byte for byte, and so is the rest of the alert.
        #[test]
        fn deferred_read_words_are_the_eager_ones(
            client in 0usize..4,
            unit in 0u8..3,
            addr in 0u32..70_000,
            named in proptest::option::of("[a-z0-9=;/._ ]{0,12}"),
            min in -1.0e6f64..1.0e6,
            width in proptest::sample::select(vec![0.0, 0.5, 1.0, 7.25, 1.0e3, 3.0e15]),
            count in 0u64..1_000_000,
            x in proptest::sample::select(vec![
                0.0, -1.0, 1.5, 99_999.0, -0.001, 1.0e16, 2.0e-9, 12_345.678, -7.0e300,
            ]),
            ms in 0i64..10_000_000,
        ) {
            let c = ["10.0.0.7", "10.0.0.66", "fe80::1", "100.0.0.1"][client];
            let mut ev = read_hr(ms, c, PLC, unit, addr, &[1, 2, 3, 4, 5, 6]);
            if unit == 0 {
                ev.unit_id = None;
            }
            let named = named.as_deref();
            let (min, max) = (min, min + width);
            let eager = test_read_alert(&ev, addr, named, min, max, count, x, true).unwrap();
            let mut lazy = test_read_alert(&ev, addr, named, min, max, count, x, false).unwrap();
            proptest::prop_assert!(lazy.deferred.is_some());
            proptest::prop_assert!(lazy.otwatch.explanation.is_empty());
            lazy.resolve();
            proptest::prop_assert!(lazy.deferred.is_none());
            proptest::prop_assert_eq!(&lazy, &eager);
            proptest::prop_assert_eq!(
                serde_json::to_string(&lazy).unwrap(),
                serde_json::to_string(&eager).unwrap()
            );
        }
    }

    #[test]
    fn a_deferred_read_alert_leaves_the_device_words_to_the_next_alert() {
        // The summary line is shared by the alerts of one event; the device words, which a
        // deferred read alert does not build, are built by the next alert that needs them.
        let ev = read_hr(1000, MASTER, PLC, 3, 40, &[5]);
        let n = Normal {
            min: 0.0,
            max: 1.0,
            max_step: 1.0,
            max_same_run: 1,
            distinct: 2,
            count: 9,
            who: ev.client.ip,
            more_who: Vec::new(),
            own: false,
            ref_client: ev.client.ip,
            side: "read",
            monotonic: false,
            counter: None,
        };
        let key = KeyRef::Modbus((Some(3), ModbusTable::HoldingRegister, 40));
        let mut now = Now::new(ev.ts);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        read_alert(&ev, &mut now, key, &n, 5.0, &mut a);
        read_alert_eager(&ev, &mut now, key, &n, 5.0, &mut b);
        let w = now.alert_words(&ev, key);
        assert_eq!(w.dev, device_words(ev.server.ip, ev.unit_id));
        assert_eq!(w.summary, event_summary(&ev));
        let mut mine = Now::new(ev.ts);
        read_alert_eager(&ev, &mut mine, key, &n, 5.0, &mut b);
        a[0].resolve();
        assert_eq!(a[0], b[0]);
        assert_eq!(b[0], b[1]);
    }
}
