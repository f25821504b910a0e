//! Scans: reconnaissance patterns, from events alone (a baseline, when given, only discounts
//! what was normal on the channel).
//!
//! Per client → server pair, over a sliding window of `window_s` capture seconds:
//! - function-code scan: at least `fc_distinct` distinct function codes (only codes the
//!   baseline channel never used, when there is one), or at least `illegal_fc_distinct`
//!   distinct codes answered "illegal function";
//! - unit-id scan: at least `unit_distinct` distinct unit ids (only new ones, with a baseline);
//! - address sweep: at least `sweep_distinct` distinct objects requested (the first object of
//!   each request), which are mostly not repeats (`distinct / requests ≥ sweep_min_novel_share`):
//!   polling re-reads the same blocks, a sweep does not. With a baseline only blocks outside the
//!   channel's learnt ranges count, and the threshold is `sweep_distinct_with_baseline` (also for a
//!   client the baseline never saw: everything it reads is never-polled);
//! - exception burst: at least `max(exception_min, exception_factor × learnt maximum per
//!   minute)` exception or bad-status responses.
//!
//! Each fires once, and is re-armed when its count falls under half its threshold.

use super::novelty::{baseline_id, channel_index, KnownNamed, KnownSigs, ModSig};
use super::{ChanSlots, Detector, EventCtx};
use crate::alert::signatures::*;
use crate::alert::{Alert, AlertEvidence, MAX_EVIDENCE};
use crate::baseline::{
    device_words, event_summary, space_key, with_space_key, Baseline, Channel, RangeSet,
};
use crate::event::{Access, IcsEvent, ObjectRef, Outcome, Values};
use std::collections::{BTreeMap, VecDeque};

/// Scan thresholds.
#[derive(Clone, Debug)]
pub struct ScanConfig {
    /// Sliding window, capture seconds.
    pub window_s: u64,
    /// Distinct function codes that make a scan.
    pub fc_distinct: usize,
    /// Distinct function codes answered "illegal function" that make a scan.
    pub illegal_fc_distinct: usize,
    /// Distinct unit ids that make a scan.
    pub unit_distinct: usize,
    /// Distinct objects that make a sweep, without a baseline.
    pub sweep_distinct: usize,
    /// Distinct objects outside the learnt ranges that make a sweep, with a baseline.
    pub sweep_distinct_with_baseline: usize,
    /// Share of requests that must be to distinct objects.
    pub sweep_min_novel_share: f64,
    /// Exception responses that make a burst, at least.
    pub exception_min: usize,
    /// ... or this many times the learnt maximum per minute.
    pub exception_factor: f64,
    /// Most items kept per window.
    pub max_window_items: usize,
    /// Most client → server pairs tracked.
    pub max_pairs: usize,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            window_s: 60,
            fc_distinct: 8,
            illegal_fc_distinct: 3,
            unit_distinct: 8,
            sweep_distinct: 128,
            sweep_distinct_with_baseline: 32,
            sweep_min_novel_share: 0.75,
            exception_min: 20,
            exception_factor: 3.0,
            max_window_items: 4096,
            max_pairs: 4096,
        }
    }
}

/// A sliding window of items with their distinct count.
#[derive(Debug)]
struct WindowSet<T: Ord + Clone> {
    items: VecDeque<(i64, T)>,
    counts: BTreeMap<T, u32>,
    reported: bool,
}

impl<T: Ord + Clone> Default for WindowSet<T> {
    fn default() -> Self {
        WindowSet {
            items: VecDeque::new(),
            counts: BTreeMap::new(),
            reported: false,
        }
    }
}

impl<T: Ord + Clone> WindowSet<T> {
    fn evict_one(&mut self) {
        if let Some((_, old)) = self.items.pop_front() {
            if let Some(c) = self.counts.get_mut(&old) {
                *c -= 1;
                if *c == 0 {
                    self.counts.remove(&old);
                }
            }
        }
    }

    fn push(&mut self, now_us: i64, window_us: i64, cap: usize, item: T) {
        while self
            .items
            .front()
            .is_some_and(|(t, _)| *t <= now_us - window_us)
        {
            self.evict_one();
        }
        while self.items.len() >= cap.max(1) {
            self.evict_one();
        }
        self.items.push_back((now_us, item.clone()));
        *self.counts.entry(item).or_insert(0) += 1;
    }

    fn distinct(&self) -> usize {
        self.counts.len()
    }

    fn total(&self) -> usize {
        self.items.len()
    }

    /// True once when `hit` becomes true; re-armed when `rearm` is true.
    fn fire(&mut self, hit: bool, rearm: bool) -> bool {
        if rearm {
            self.reported = false;
        }
        if hit && !self.reported {
            self.reported = true;
            return true;
        }
        false
    }
}

#[derive(Debug, Default)]
struct PairState {
    fcs: WindowSet<(u32, Option<u16>)>,
    illegal: WindowSet<u32>,
    units: WindowSet<u8>,
    blocks: WindowSet<String>,
    exceptions: WindowSet<u8>,
    /// What the evidence of the last events needs (built only if an alert needs it; see
    /// [`keep_for_evidence`]).
    recent: VecDeque<IcsEvent>,
    /// Index of the baseline channel (in the baseline `Scans::base` names).
    ch: Option<u32>,
    /// Modbus requests found known on the baseline channel (function, unit and block).
    known: KnownSigs<ModSig>,
    /// Other requests found known on it.
    known_named: KnownNamed,
}

/// A numbered request found known, and in its pair's set of known requests.
const REQ_KNOWN: u8 = 1;
/// A numbered request found known, not in its pair's set (full): each of its events counts
/// in `sigs_uncached`, as it would without the number.
const REQ_KNOWN_UNCACHED: u8 = 2;

/// The scan detector.
#[derive(Debug)]
pub struct Scans {
    cfg: ScanConfig,
    /// Per (client, server, protocol); iterated only to update in place.
    pairs: ChanSlots<PairState>,
    /// The baseline the pairs' channel indices point into.
    base: Option<(usize, usize, usize)>,
    /// Every "at least" threshold is at least 1, so empty windows fire nothing.
    thresholds_positive: bool,
    /// By engine request number ([`EventCtx::req`]): [`REQ_KNOWN`] when the request was
    /// found known on its channel (under the baseline `base` names; its pair is tracked),
    /// [`REQ_KNOWN_UNCACHED`] when its pair's set of known requests had no room for it.
    known_reqs: Vec<u8>,
    /// Pairs not tracked because the table was full.
    pub pairs_dropped: u64,
    /// Known requests not remembered because their pair's set was full.
    pub sigs_uncached: u64,
}

/// Is the first object of the event outside what the channel learnt?
fn block_is_known(ch: &Channel, ev: &IcsEvent) -> bool {
    match ev.accesses.first() {
        Some(a) => match &a.object {
            ObjectRef::Modbus {
                table,
                start,
                count,
            } => {
                let last = start.saturating_add(count.saturating_sub(1));
                with_space_key(ev.unit_id, *table, |space| {
                    [&ch.read_ranges, &ch.write_ranges].iter().any(|m| {
                        m.get(space)
                            .is_some_and(|p| RangeSet::pairs_cover(p, *start, last))
                    })
                })
            }
            other => crate::baseline::named_object_key(other)
                .is_some_and(|k| ch.objects.contains_key(&k)),
        },
        None => true,
    }
}

fn block_key(ev: &IcsEvent) -> Option<String> {
    let a = ev.accesses.first()?;
    match &a.object {
        ObjectRef::Modbus { start, count, .. } => Some(format!(
            "{}/{start}+{count}",
            space_key(ev.unit_id, &a.object)?
        )),
        other => crate::baseline::named_object_key(other),
    }
}

impl Scans {
    /// A scan detector.
    pub fn new(cfg: ScanConfig) -> Self {
        let thresholds_positive = cfg.fc_distinct >= 1
            && cfg.illegal_fc_distinct >= 1
            && cfg.unit_distinct >= 1
            && cfg.sweep_distinct >= 1
            && cfg.sweep_distinct_with_baseline >= 1
            && cfg.exception_min >= 1;
        Scans {
            cfg,
            pairs: ChanSlots::default(),
            base: None,
            thresholds_positive,
            known_reqs: Vec::new(),
            pairs_dropped: 0,
            sigs_uncached: 0,
        }
    }
}

/// Most accesses, and values of each, that a pair keeps of one of its last events:
/// [`event_summary`] shows three accesses and four values of each, and marks that there are
/// more (a test checks that the summaries agree).
const KEEP_ACCESSES: usize = 4;
const KEEP_VALUES: usize = 5;

/// Copies into `dst` what the evidence of `ev` needs ([`AlertEvidence::from_event`] and
/// [`event_summary`]), reusing `dst`'s vectors: at most [`KEEP_ACCESSES`] accesses of at most
/// [`KEEP_VALUES`] values each, no session, violations, facts or details.
fn keep_for_evidence(dst: &mut IcsEvent, ev: &IcsEvent) {
    dst.ts = ev.ts;
    dst.proto = ev.proto;
    dst.flow_id = ev.flow_id;
    dst.client = ev.client;
    dst.server = ev.server;
    dst.vlan = ev.vlan;
    dst.unit_id = ev.unit_id;
    dst.session = None;
    dst.op = ev.op;
    dst.function.clone_from(&ev.function);
    dst.outcome.clone_from(&ev.outcome);
    dst.latency_us = ev.latency_us;
    dst.violations.clear();
    dst.facts.clear();
    dst.details.clear();
    dst.evidence.clone_from(&ev.evidence);
    let n = ev.accesses.len().min(KEEP_ACCESSES);
    dst.accesses.truncate(n);
    for (i, a) in ev.accesses.iter().take(n).enumerate() {
        match dst.accesses.get_mut(i) {
            Some(d) => {
                d.dir = a.dir;
                d.object.clone_from(&a.object);
                d.values.copy_prefix(&a.values, KEEP_VALUES);
            }
            None => {
                let mut values = Values::new();
                values.copy_prefix(&a.values, KEEP_VALUES);
                dst.accesses.push(Access {
                    dir: a.dir,
                    object: a.object.clone(),
                    values,
                });
            }
        }
    }
}

/// A new copy of what the evidence of `ev` needs (see [`keep_for_evidence`]).
fn kept_for_evidence(ev: &IcsEvent) -> IcsEvent {
    let mut e = super::evidence_shell(ev, Vec::with_capacity(ev.accesses.len().min(KEEP_ACCESSES)));
    keep_for_evidence(&mut e, ev);
    e
}

fn alert_with_recent(
    sig: &crate::alert::Signature,
    ev: &IcsEvent,
    explanation: String,
    recent: &VecDeque<IcsEvent>,
) -> Alert {
    let mut a = Alert::from_event(sig, ev, explanation, event_summary(ev));
    a.otwatch.evidence = recent
        .iter()
        .map(|e| AlertEvidence::from_event(e, event_summary(e)))
        .collect();
    a
}

impl Detector for Scans {
    fn name(&self) -> &'static str {
        "scans"
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("pairs_dropped", self.pairs_dropped),
            ("sigs_uncached", self.sigs_uncached),
        ]
    }

    fn can_idle(&self) -> bool {
        true
    }

    fn idle_on(&self, ctx: &EventCtx) -> bool {
        // A known request answered normally returns at once (see `on_event_ctx`), as long as
        // the baseline stays (an engine's does) and it is in its pair's set (or it counts).
        self.thresholds_positive
            && ctx
                .req
                .is_some_and(|r| self.known_reqs.get(r as usize) == Some(&REQ_KNOWN))
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
        let id = baseline.map(baseline_id);
        if self.base != id {
            self.base = id;
            // Iterated to update in place only; nothing from here reaches the output.
            for (key, st) in self.pairs.iter_mut() {
                st.ch = baseline.and_then(|b| channel_index(b, key));
                st.known.clear();
                st.known_named.clear();
            }
            self.known_reqs.clear();
        }
        let exc = match ev.outcome {
            Outcome::Exception { code, .. } => Some(code),
            Outcome::Bad { .. } => Some(0),
            _ => None,
        };
        let known_req = ctx
            .req
            .and_then(|r| self.known_reqs.get(r as usize).copied())
            .unwrap_or(0);
        if known_req != 0 && exc.is_none() && self.thresholds_positive {
            // As below for a known request (its pair is tracked, as it was when the request
            // was found known), without looking the pair up.
            if known_req == REQ_KNOWN_UNCACHED {
                self.sigs_uncached += 1;
            }
            return;
        }
        let key = ctx.key;
        let found = match self.pairs.find(ctx) {
            Some(i) => Some(i),
            None if self.pairs.len() >= self.cfg.max_pairs => None,
            None => self.pairs.insert(
                ctx,
                PairState {
                    ch: baseline.and_then(|b| channel_index(b, &key)),
                    ..PairState::default()
                },
            ),
        };
        let Some(st) = found.and_then(|i| self.pairs.get_mut(i)) else {
            self.pairs_dropped += 1;
            return;
        };
        let cfg = &self.cfg;
        let ch = st
            .ch
            .and_then(|i| baseline.and_then(|b| b.channels.get(i as usize)));
        let now = ev.ts.as_micros();
        let win = i64::try_from(cfg.window_s)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(1_000_000);
        let cap = cfg.max_window_items;
        let f = &ev.function;
        // A request already found known on the channel is known again: these checks depend
        // only on the baseline channel and on the request's signature.
        let sig = ctx.sig;
        let cached = match &sig {
            Some(_) if ctx.req.is_some() => known_req == REQ_KNOWN,
            Some(s) => st.known.contains(s),
            None => ch.is_some() && st.known_named.contains(ev),
        };
        let (fc_known, unit_known, block_known) = match cached {
            true => (true, true, true),
            false => {
                let fc_known = ch.is_some_and(|c| c.operation(f.code, f.sub).is_some());
                let unit_known = ev
                    .unit_id
                    .is_none_or(|u| ch.is_some_and(|c| c.unit_ids.contains(&u)));
                let block_known =
                    ev.accesses.is_empty() || ch.is_some_and(|c| block_is_known(c, ev));
                if fc_known && unit_known && block_known {
                    let kept = match (sig, ctx.req) {
                        (Some(_), Some(_)) if known_req == REQ_KNOWN_UNCACHED => false,
                        (Some(sig), Some(r)) => {
                            // Into the pair's set as without the number, so that requests
                            // without one find the same set.
                            let kept = st.known.insert(sig);
                            let r = r as usize;
                            if r >= self.known_reqs.len() {
                                self.known_reqs.resize(r + 1, 0);
                            }
                            if let Some(k) = self.known_reqs.get_mut(r) {
                                *k = if kept { REQ_KNOWN } else { REQ_KNOWN_UNCACHED };
                            }
                            kept
                        }
                        (Some(sig), None) => st.known.insert(sig),
                        (None, r) => {
                            // A named request with a number (OPC UA): known as a Modbus one
                            // is, so that it goes idle.
                            let kept = st.known_named.insert(ev);
                            if let Some(r) = r.map(|r| r as usize) {
                                if r >= self.known_reqs.len() {
                                    self.known_reqs.resize(r + 1, 0);
                                }
                                if let Some(k) = self.known_reqs.get_mut(r) {
                                    *k = if kept { REQ_KNOWN } else { REQ_KNOWN_UNCACHED };
                                }
                            }
                            kept
                        }
                    };
                    if !kept {
                        self.sigs_uncached += 1;
                    }
                }
                (fc_known, unit_known, block_known)
            }
        };
        if cached && exc.is_none() && self.thresholds_positive {
            // A known request answered normally pushes nothing: every count stays as the last
            // event left it, and each window already fired or re-armed for those counts then
            // (every push is followed by its window's check, and a check with unchanged counts
            // changes nothing, as "fire" and "re-arm" never hold together). With positive
            // thresholds that holds from the start too. Nothing can happen: skip the checks.
            return;
        }
        // The evidence of a scan: the last events that counted towards one (every alert below
        // fires on such an event), the oldest's vectors reused for the newest. Steady polling
        // counts towards nothing and is not copied.
        if !(fc_known && unit_known && block_known && exc.is_none()) {
            match st.recent.len() >= MAX_EVIDENCE {
                true => {
                    if let Some(mut old) = st.recent.pop_front() {
                        keep_for_evidence(&mut old, ev);
                        st.recent.push_back(old);
                    }
                }
                false => {
                    if st.recent.capacity() == 0 {
                        // Room for the evidence only (not the next power of two).
                        st.recent.reserve_exact(MAX_EVIDENCE);
                    }
                    st.recent.push_back(kept_for_evidence(ev))
                }
            }
        }

        // Function codes.
        if !fc_known {
            st.fcs.push(now, win, cap, (f.code, f.sub));
        }
        if let Outcome::Exception { code: 1, .. } = ev.outcome {
            st.illegal.push(now, win, cap, f.code);
        }
        let (nf, ni) = (st.fcs.distinct(), st.illegal.distinct());
        let hit = nf >= cfg.fc_distinct || ni >= cfg.illegal_fc_distinct;
        let rearm = nf < cfg.fc_distinct / 2 && ni < cfg.illegal_fc_distinct.div_ceil(2);
        if st.fcs.fire(hit, rearm) {
            let codes: Vec<String> = st.fcs.counts.keys().map(|(c, _)| c.to_string()).collect();
            let dev = device_words(ev.server.ip, None);
            let explanation = format!(
                "{} tried {nf} different{} function codes on {dev} within {} s ({}), {ni} of \
                 them answered \"illegal function\". Masters use a fixed handful of functions; \
                 trying many is how scanners find out what a device supports.",
                ev.client.ip,
                if ch.is_some() { " new" } else { "" },
                cfg.window_s,
                super::list_words(&codes, 12),
            );
            out.push(alert_with_recent(
                &FUNCTION_SCAN,
                ev,
                explanation,
                &st.recent,
            ));
        }

        // Unit ids.
        if let Some(u) = ev.unit_id {
            if !unit_known {
                st.units.push(now, win, cap, u);
            }
            let n = st.units.distinct();
            if st
                .units
                .fire(n >= cfg.unit_distinct, n < cfg.unit_distinct / 2)
            {
                let units: Vec<String> = st.units.counts.keys().map(u8::to_string).collect();
                let dev = device_words(ev.server.ip, None);
                let explanation = format!(
                    "{} addressed {n} different{} unit ids on {dev} within {} s ({}). A master \
                     talks to the units it is configured for; walking through unit ids is how \
                     scanners find devices behind a gateway.",
                    ev.client.ip,
                    if ch.is_some() { " new" } else { "" },
                    cfg.window_s,
                    super::list_words(&units, 12),
                );
                out.push(alert_with_recent(
                    &UNIT_ID_SCAN,
                    ev,
                    explanation,
                    &st.recent,
                ));
            }
        }

        // Address sweep.
        // (`block_key` is `Some` exactly when the event has an object; it is built only
        // when the block is pushed.)
        if !ev.accesses.is_empty() {
            if !block_known {
                if let Some(block) = block_key(ev) {
                    st.blocks.push(now, win, cap, block);
                }
            }
            // With a baseline, a client it never saw has polled nothing: every block it
            // reads is a never-polled one, so the baseline threshold applies to it too.
            let need = if baseline.is_some() {
                cfg.sweep_distinct_with_baseline
            } else {
                cfg.sweep_distinct
            };
            let (n, total) = (st.blocks.distinct(), st.blocks.total().max(1));
            let share = n as f64 / total as f64;
            if st.blocks.fire(
                n >= need && share >= cfg.sweep_min_novel_share,
                n < need / 2,
            ) {
                let dev = device_words(ev.server.ip, None);
                let explanation = format!(
                    "{} requested {n} different{} objects on {dev} within {} s, nearly all of \
                     them once ({} requests). Polling re-reads the same blocks; reading one \
                     address after another is a sweep that maps the device's points and tags.",
                    ev.client.ip,
                    if ch.is_some() { " never-polled" } else { "" },
                    cfg.window_s,
                    total
                );
                out.push(alert_with_recent(
                    &ADDRESS_SWEEP,
                    ev,
                    explanation,
                    &st.recent,
                ));
            }
        }

        // Exception responses.
        if let Some(code) = exc {
            st.exceptions.push(now, win, cap, code);
        }
        let learnt = ch.map_or(0, |c| c.volume.max_exceptions_per_min);
        let need = ((cfg.exception_factor * learnt as f64).ceil() as usize).max(cfg.exception_min);
        let n = st.exceptions.total();
        if st.exceptions.fire(n >= need, n < need / 2) {
            let dev = device_words(ev.server.ip, None);
            let explanation = format!(
                "{dev} answered {n} requests from {} with exceptions or errors within {} s; \
                 {}. Bursts of exceptions come from scans, misconfigured tools or a device \
                 refusing commands.",
                ev.client.ip,
                cfg.window_s,
                if ch.is_some() {
                    format!("in the baseline this channel had at most {learnt} per minute")
                } else {
                    "normal polling gets no exceptions".to_string()
                }
            );
            out.push(alert_with_recent(
                &EXCEPTION_BURST,
                ev,
                explanation,
                &st.recent,
            ));
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
    use crate::detect::testkit::*;
    use crate::event::OpKind;

    #[test]
    fn a_kept_event_gives_the_same_evidence() {
        // Events of 0..6 accesses of 0..8 values each, kept new and kept over an older copy
        // (of another size): the evidence and its summary are those of the whole event.
        let mut older = read_hr(5, MASTER, PLC, 1, 0, &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        older.facts.clear();
        for n_acc in 0..6usize {
            for n_val in 0..8i64 {
                let mut ev = write_hr(1000, ROGUE, PLC, 3, 40, 9);
                ev.session = Some("s".into());
                ev.violations.push("odd");
                ev.accesses = (0..n_acc)
                    .map(|k| Access {
                        dir: crate::event::AccessDir::Write,
                        object: ObjectRef::Modbus {
                            table: crate::event::ModbusTable::HoldingRegister,
                            start: 40 + k as u32 * 10,
                            count: n_val as u32,
                        },
                        values: ints(&(0..n_val).map(|v| v * 7 + k as i64).collect::<Vec<_>>())
                            .into(),
                    })
                    .collect();
                let want = AlertEvidence::from_event(&ev, event_summary(&ev));
                let kept = kept_for_evidence(&ev);
                assert_eq!(AlertEvidence::from_event(&kept, event_summary(&kept)), want);
                assert!(kept.accesses.len() <= KEEP_ACCESSES);
                assert!(kept.accesses.iter().all(|a| a.values.len() <= KEEP_VALUES));
                assert!(kept.session.is_none() && kept.violations.is_empty());
                keep_for_evidence(&mut older, &ev);
                assert_eq!(
                    AlertEvidence::from_event(&older, event_summary(&older)),
                    want
                );
                assert_eq!(
                    (older.ts, older.client, older.server, older.unit_id),
                    (ev.ts, ev.client, ev.server, ev.unit_id)
                );
            }
        }
    }

    fn run(evs: &[IcsEvent]) -> Vec<Alert> {
        let mut d = Scans::new(ScanConfig::default());
        let mut out = Vec::new();
        for e in evs {
            d.on_event(e, None, &mut out);
        }
        out
    }

    fn kinds(a: &[Alert]) -> Vec<&'static str> {
        a.iter().map(|x| x.otwatch.kind).collect()
    }

    #[test]
    fn polling_is_not_a_scan() {
        let mut evs = Vec::new();
        for i in 0..600 {
            for b in 0..20u32 {
                evs.push(read_hr(
                    i * 1000 + i64::from(b),
                    MASTER,
                    PLC,
                    1,
                    b * 10,
                    &[1; 10],
                ));
            }
        }
        assert!(run(&evs).is_empty());
    }

    #[test]
    fn function_code_scan() {
        let evs: Vec<IcsEvent> = (1..=10)
            .map(|fc| {
                modbus(
                    i64::from(fc) * 100,
                    ROGUE,
                    PLC,
                    1,
                    fc,
                    "x",
                    OpKind::Other,
                    vec![],
                    exception(1),
                )
            })
            .collect();
        let out = run(&evs);
        assert_eq!(kinds(&out), ["function_code_scan"]);
        assert!(
            out[0]
                .otwatch
                .explanation
                .contains("3 different function codes"),
            "{}",
            out[0].otwatch.explanation
        );
        assert_eq!(out[0].otwatch.evidence.len(), 3);
    }

    #[test]
    fn unit_scan_sweep_and_exceptions() {
        let evs: Vec<IcsEvent> = (1..=10)
            .map(|u| read_hr(i64::from(u) * 100, ROGUE, PLC, u, 0, &[1]))
            .collect();
        assert_eq!(kinds(&run(&evs)), ["unit_id_scan"]);

        let evs: Vec<IcsEvent> = (0..200)
            .map(|a| read_hr(i64::from(a) * 10, ROGUE, PLC, 1, a, &[1]))
            .collect();
        assert_eq!(kinds(&run(&evs)), ["address_sweep"]);

        let mut evs: Vec<IcsEvent> = Vec::new();
        for i in 0..25 {
            let mut e = read_hr(i * 100, ROGUE, PLC, 1, 0, &[]);
            e.outcome = exception(2);
            evs.push(e);
        }
        assert_eq!(kinds(&run(&evs)), ["exception_burst"]);
    }

    #[test]
    fn known_requests_skip_checks_but_not_exceptions() {
        use crate::baseline::Learner;
        let mut l = Learner::default();
        for i in 0..50 {
            l.observe(&read_hr(i * 1000, MASTER, PLC, 1, 0, &[1]));
        }
        let b = l.finish().unwrap();
        let mut d = Scans::new(ScanConfig::default());
        let mut out = Vec::new();
        // Known polling first (cached as known), then the same request answered with
        // exceptions: they count and make a burst.
        for i in 0..10 {
            d.on_event(
                &read_hr(i * 100, MASTER, PLC, 1, 0, &[1]),
                Some(&b),
                &mut out,
            );
        }
        assert!(out.is_empty());
        for i in 0..25 {
            let mut e = read_hr(2000 + i * 100, MASTER, PLC, 1, 0, &[]);
            e.outcome = exception(2);
            d.on_event(&e, Some(&b), &mut out);
            // Known requests in between change nothing.
            d.on_event(
                &read_hr(2050 + i * 100, MASTER, PLC, 1, 0, &[1]),
                Some(&b),
                &mut out,
            );
        }
        assert_eq!(kinds(&out), ["exception_burst"]);
        assert_eq!(out[0].otwatch.evidence.len(), MAX_EVIDENCE.min(20));
        // Another baseline for the same detector: the cached "known" must go.
        let mut l = Learner::default();
        for i in 0..50 {
            l.observe(&read_coils(i * 1000, MASTER, PLC, 1, 0, &[true]));
        }
        let other = l.finish().unwrap();
        out.clear();
        for fc in 0..8u32 {
            let mut e = read_hr(100_000 + i64::from(fc), MASTER, PLC, 1, 0, &[1]);
            e.function.code = 3 + 100 * fc;
            d.on_event(&e, Some(&other), &mut out);
        }
        assert_eq!(kinds(&out), ["function_code_scan"]);
        assert!(out[0].otwatch.explanation.contains("8 different new"));
    }

    #[test]
    fn window_slides() {
        // 8 function codes spread over 10 minutes never make a scan.
        let evs: Vec<IcsEvent> = (1..=8)
            .map(|fc| {
                modbus(
                    i64::from(fc) * 70_000,
                    ROGUE,
                    PLC,
                    1,
                    fc,
                    "x",
                    OpKind::Other,
                    vec![],
                    Outcome::Ok,
                )
            })
            .collect();
        assert!(run(&evs).is_empty());
    }
}
