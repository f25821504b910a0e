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

use super::{list_words, Detector};
use crate::alert::signatures::*;
use crate::alert::Alert;
use crate::baseline::{
    device_words, event_summary, fmt_num, for_each_access_key, key_words, numeric, Baseline,
    Channel, ObjKey, ValueProfile,
};
use crate::event::{AccessDir, AppProto, IcsEvent, Outcome};
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
            counter_rate_factor: 2.0,
        }
    }
}

#[derive(Debug)]
struct ObjState {
    last: f64,
    run: u64,
    /// Capture time of the first read of the current run.
    run_since: Timestamp,
    frozen_reported: bool,
}

type ChanKey = (IpAddr, IpAddr, AppProto);
type FastMap<K, V> = HashMap<K, V, KeyHashBuilder>;

/// A profile looked up in the baseline once per object and channel.
#[derive(Debug, Default)]
enum Lookup {
    /// Not looked up yet.
    #[default]
    NotYet,
    /// The baseline has no profile for it.
    Missing,
    /// The merged profile.
    Found(Box<Normal>),
}

impl Lookup {
    /// The profile, looking it up on first use.
    fn get(&mut self, f: impl FnOnce() -> Option<Normal>) -> Option<&Normal> {
        if matches!(self, Lookup::NotYet) {
            *self = match f() {
                Some(n) => Lookup::Found(Box::new(n)),
                None => Lookup::Missing,
            };
        }
        match self {
            Lookup::Found(n) => Some(n),
            _ => None,
        }
    }
}

/// What the detector knows of one object on one channel.
#[derive(Debug, Default)]
struct ObjEntry {
    read: Lookup,
    written: Lookup,
    /// Last value read and its run, once a read with a known profile was seen.
    state: Option<ObjState>,
}

/// The values detector.
#[derive(Debug)]
pub struct Values {
    cfg: ValuesConfig,
    /// Per channel, per object: profiles and read state.
    objects: FastMap<ChanKey, FastMap<ObjKey, ObjEntry>>,
    /// Entries in `objects`.
    n_states: usize,
    /// Objects not tracked because the state table was full (they are still checked against
    /// their profiles, looked up each time, but cannot jump or freeze).
    pub states_dropped: u64,
}

/// A merged profile and who contributed to it.
#[derive(Debug)]
struct Normal {
    min: f64,
    max: f64,
    max_step: f64,
    max_same_run: u64,
    distinct: u32,
    count: u64,
    who: Vec<IpAddr>,
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
    fn reference(&self, ev: &IcsEvent, key: &str) -> String {
        format!(
            "channels[{}>{} {}].objects[{key}].{}",
            self.ref_client,
            ev.server.ip,
            ev.proto.as_str(),
            self.side
        )
    }

    /// Is `x` outside the range widened by `m`, at capture time `now`? A counter may grow past
    /// its learnt range at up to `factor` times its learnt rate since the end of learning.
    fn outside(&self, x: f64, m: f64, now: Timestamp, factor: f64) -> bool {
        let growth = match self.counter {
            Some((rate, end)) => rate * factor * now.micros_since(end) as f64 / 1e6,
            None => 0.0,
        };
        x < self.min - m || x > self.max + m + growth
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
                who: vec![who],
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
            n.who.push(who);
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
            return n.map(|n| with_counter(n, b));
        }
    }
    let mut n = None;
    for ch in b.channels_to(ev.server.ip, ev.proto) {
        if let Some(p) = ch.objects.get(key).and_then(|o| pick(o, dir)) {
            merge(&mut n, p, ch.client, false, side);
        }
    }
    n.map(|n| with_counter(n, b))
}

/// Sets a counter's learnt rate of growth and the end of learning.
fn with_counter(mut n: Normal, b: &Baseline) -> Normal {
    let end = Timestamp::parse_rfc3339(&b.learned.last);
    if let (true, Some(end)) = (n.monotonic, end) {
        let rate = (n.max - n.min) / b.learned.duration_s.max(1.0);
        n.counter = rate.is_finite().then_some((rate, end));
    }
    n
}

fn range_words(n: &Normal) -> String {
    if n.min == n.max {
        format!("always {}", fmt_num(n.min))
    } else {
        format!("{}–{}", fmt_num(n.min), fmt_num(n.max))
    }
}

impl Values {
    /// A values detector.
    pub fn new(cfg: ValuesConfig) -> Self {
        Values {
            cfg,
            objects: FastMap::default(),
            n_states: 0,
            states_dropped: 0,
        }
    }

    fn write(
        cfg: &ValuesConfig,
        ev: &IcsEvent,
        okey: &ObjKey,
        n: &Normal,
        x: f64,
        out: &mut Vec<Alert>,
    ) {
        let m = n.margin(cfg, cfg.write_margin_frac);
        if !n.outside(x, m, ev.ts, cfg.counter_rate_factor) {
            return;
        }
        let key = okey.to_key_string();
        let key = key.as_str();
        let obj = key_words(key);
        let dev = device_words(ev.server.ip, ev.unit_id);
        let who = if n.own {
            format!("{} itself wrote it", ev.client.ip)
        } else if n.who.len() == 1 {
            format!("only {} wrote it", list_words(&n.who, 5))
        } else {
            format!("{} wrote it", list_words(&n.who, 5))
        };
        let explanation = format!(
            "{} wrote {} to {obj} on {dev}; in the baseline {who}, with values {} ({} writes). \
             A setpoint or parameter far outside its normal range can damage equipment, \
             trip the process or spoil the product.",
            ev.client.ip,
            fmt_num(x),
            range_words(n),
            n.count,
        );
        let fact = format!(
            "{} wrote {obj} on {dev} with values {} ({} writes)",
            list_words(&n.who, 5),
            range_words(n),
            n.count
        );
        out.push(
            Alert::from_event(&WRITE_OUT_OF_RANGE, ev, explanation, event_summary(ev))
                .with_fact(fact, n.reference(ev, key)),
        );
    }

    /// Checks a read value; `state` is the object's read state (`None` when the state table
    /// is full: no jump or freeze checks then).
    #[allow(clippy::too_many_arguments)]
    fn read(
        cfg: &ValuesConfig,
        b: &Baseline,
        ev: &IcsEvent,
        okey: &ObjKey,
        n: &Normal,
        state: Option<&mut Option<ObjState>>,
        x: f64,
        out: &mut Vec<Alert>,
    ) {
        let m = n.margin(cfg, cfg.read_margin_frac);
        let out_of_range = n.outside(x, m, ev.ts, cfg.counter_rate_factor);
        if out_of_range {
            let key = okey.to_key_string();
            let key = key.as_str();
            let obj = key_words(key);
            let dev = device_words(ev.server.ip, ev.unit_id);
            let explanation = format!(
                "{obj} on {dev} read {} (by {}); in the baseline it read {} ({} reads). A \
                 process value far outside its normal range means the process is upset, the \
                 sensor failed, or the value is being falsified.",
                fmt_num(x),
                ev.client.ip,
                range_words(n),
                n.count
            );
            out.push(
                Alert::from_event(&READ_OUT_OF_RANGE, ev, explanation, event_summary(ev))
                    .with_fact(
                        format!("{obj} on {dev} read {}", range_words(n)),
                        n.reference(ev, key),
                    ),
            );
        }
        let Some(state) = state else {
            return;
        };
        let Some(st) = state else {
            *state = Some(ObjState {
                last: x,
                run: 1,
                run_since: ev.ts,
                frozen_reported: false,
            });
            return;
        };
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
        let step = (x - prev).abs();
        let prev_out_of_range = n.outside(prev, m, ev.ts, cfg.counter_rate_factor);
        if !out_of_range
            && !prev_out_of_range
            && n.max_step > 0.0
            && step > (cfg.jump_factor * n.max_step).max(m)
        {
            let key = okey.to_key_string();
            let key = key.as_str();
            let obj = key_words(key);
            let dev = device_words(ev.server.ip, ev.unit_id);
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
                Alert::from_event(&VALUE_JUMP, ev, explanation, event_summary(ev)).with_fact(
                    format!("{obj} on {dev}: largest step {}", fmt_num(n.max_step)),
                    n.reference(ev, key),
                ),
            );
        }
        // Freeze.
        let limit =
            ((cfg.freeze_factor * n.max_same_run as f64).ceil() as u64).max(cfg.freeze_min_reads);
        // The longest learnt run in time: its reads times the mean learnt interval between
        // reads of this object (learning span / reads), so that a burst of reads, which
        // inflates the count, does not make a freeze out of a value that changes slowly.
        let mean_interval_s = b.learned.duration_s / n.count.max(1) as f64;
        let min_secs = (cfg.freeze_factor * n.max_same_run as f64 * mean_interval_s)
            .max(cfg.freeze_min_secs as f64);
        let run_secs = ev.ts.micros_since(st.run_since) / 1_000_000;
        if n.distinct >= cfg.freeze_min_distinct
            && st.run > limit
            && run_secs as f64 >= min_secs
            && !st.frozen_reported
        {
            st.frozen_reported = true;
            let key = okey.to_key_string();
            let key = key.as_str();
            let obj = key_words(key);
            let dev = device_words(ev.server.ip, ev.unit_id);
            let explanation = format!(
                "{obj} on {dev} has read {} for {} reads in a row over {run_secs} s (by {}); in \
                 the baseline it changed all the time ({} different values, never the same for \
                 more than {} reads). A frozen value can be a stuck sensor, a stopped PLC \
                 program, or a replay hiding the real process from the operator.",
                fmt_num(x),
                st.run,
                ev.client.ip,
                n.distinct,
                n.max_same_run
            );
            out.push(
                Alert::from_event(&VALUE_FROZEN, ev, explanation, event_summary(ev)).with_fact(
                    format!(
                        "{obj} on {dev}: {} distinct values, longest run {}",
                        n.distinct, n.max_same_run
                    ),
                    n.reference(ev, key),
                ),
            );
        }
    }
}

impl Detector for Values {
    fn name(&self) -> &'static str {
        "values"
    }

    fn on_event(&mut self, ev: &IcsEvent, baseline: Option<&Baseline>, out: &mut Vec<Alert>) {
        let Some(b) = baseline else {
            return;
        };
        if !matches!(ev.outcome, Outcome::Ok) {
            return;
        }
        let cap = self.cfg.max_values_per_access;
        let own = b.channel(ev.client.ip, ev.server.ip, ev.proto);
        let cfg = &self.cfg;
        let objects = self
            .objects
            .entry((ev.client.ip, ev.server.ip, ev.proto))
            .or_default();
        let mut key = String::new();
        for a in &ev.accesses {
            for_each_access_key(ev.unit_id, &a.object, &a.values, cap, |okey, v| {
                let Some(x) = v.and_then(numeric) else {
                    return;
                };
                let lookup = |key: &mut String| {
                    okey.write_key(key);
                    normal_of(b, own, ev, key, a.dir)
                };
                let entry = match objects.get_mut(&okey) {
                    Some(e) => Some(e),
                    None if self.n_states < cfg.max_states => {
                        self.n_states += 1;
                        Some(objects.entry(okey.clone()).or_default())
                    }
                    None => None,
                };
                match (entry, a.dir) {
                    (Some(e), AccessDir::Write) => {
                        if let Some(n) = e.written.get(|| lookup(&mut key)) {
                            Values::write(cfg, ev, &okey, n, x, out);
                        }
                    }
                    (Some(e), AccessDir::Read) => {
                        if let Some(n) = e.read.get(|| lookup(&mut key)) {
                            Values::read(cfg, b, ev, &okey, n, Some(&mut e.state), x, out);
                        }
                    }
                    (None, dir) => {
                        self.states_dropped += 1;
                        if let Some(n) = lookup(&mut key) {
                            match dir {
                                AccessDir::Write => Values::write(cfg, ev, &okey, &n, x, out),
                                AccessDir::Read => {
                                    Values::read(cfg, b, ev, &okey, &n, None, x, out)
                                }
                            }
                        }
                    }
                }
            });
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
    use crate::baseline::Learner;
    use crate::detect::testkit::*;

    const OTHER: &str = "10.0.0.7";

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
}
