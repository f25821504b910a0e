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

use super::Detector;
use crate::alert::signatures::*;
use crate::alert::{Alert, AlertEvidence};
use crate::baseline::{device_words, event_summary, fmt_num, Baseline, Channel, SigKey};
use crate::event::{AppProto, Endpoint, IcsEvent};
use crate::flow::hash::KeyHashBuilder;
use crate::time::Timestamp;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;

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

type ChanKey = (IpAddr, IpAddr, AppProto);

/// Encoding NodeId of the OPC UA PublishRequest (i=826).
const OPCUA_PUBLISH_REQUEST: u32 = 826;

#[derive(Debug)]
struct SigState {
    last: Timestamp,
    recent: VecDeque<u64>,
    stopped: bool,
    period_reported: bool,
    client: Endpoint,
    server: Endpoint,
    unit: Option<u8>,
    /// The last request (its evidence is built only if an alert needs it).
    last_ev: IcsEvent,
}

#[derive(Debug, Default)]
struct ChanState {
    bucket: Option<i64>,
    count: u64,
    burst_reported: bool,
    /// Position in the cycle of the last cycle request.
    last_cycle_pos: Option<usize>,
    order: VecDeque<bool>,
    order_reported: bool,
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
}

/// The timing detector.
#[derive(Debug)]
pub struct Timing {
    cfg: TimingConfig,
    /// Per (channel, signature), looked up once.
    infos: HashMap<(ChanKey, SigKey), SigInfo, KeyHashBuilder>,
    /// Poll states, with their channel and signature.
    states: Vec<(ChanKey, String, SigState)>,
    /// `states` in (channel, signature) order, for deterministic ticks.
    order: BTreeMap<(ChanKey, String), usize>,
    chans: HashMap<ChanKey, ChanState, KeyHashBuilder>,
    /// States not kept because the table was full.
    pub states_dropped: u64,
}

fn median(v: &VecDeque<u64>) -> f64 {
    let mut s: Vec<u64> = v.iter().copied().collect();
    s.sort_unstable();
    s.get(s.len() / 2).copied().unwrap_or(0) as f64
}

impl Timing {
    /// A timing detector.
    pub fn new(cfg: TimingConfig) -> Self {
        Timing {
            cfg,
            infos: HashMap::default(),
            states: Vec::new(),
            order: BTreeMap::new(),
            chans: HashMap::default(),
            states_dropped: 0,
        }
    }

    fn burst(
        &mut self,
        ev: &IcsEvent,
        key: ChanKey,
        max10: u64,
        ch: &Channel,
        out: &mut Vec<Alert>,
    ) {
        let limit = ((self.cfg.burst_factor * max10 as f64).ceil() as u64)
            .max(max10.saturating_add(self.cfg.burst_min_extra));
        let st = self.chans.entry(key).or_default();
        let b = ev.ts.secs.div_euclid(10);
        if st.bucket != Some(b) {
            st.bucket = Some(b);
            st.count = 0;
            st.burst_reported = false;
        }
        st.count += 1;
        if st.count > limit && !st.burst_reported {
            st.burst_reported = true;
            let explanation = format!(
                "{} sent {} requests to {} within 10 seconds; in the baseline this channel \
                 never sent more than {max10} in 10 seconds. A flood of requests can overload \
                 a PLC (denial of service) or force outputs by brute force.",
                ev.client.ip,
                st.count,
                device_words(ev.server.ip, ev.unit_id)
            );
            out.push(
                Alert::from_event(&TRAFFIC_BURST, ev, explanation, event_summary(ev)).with_fact(
                    format!("at most {max10} requests per 10 s"),
                    format!("{}.volume.max_per_10s", ch.ref_name()),
                ),
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn order(
        cfg: &TimingConfig,
        chans: &mut HashMap<ChanKey, ChanState, KeyHashBuilder>,
        ev: &IcsEvent,
        key: ChanKey,
        (sig, pos): (&str, usize),
        cycle: &[String],
        ch: &Channel,
        out: &mut Vec<Alert>,
    ) {
        let window = cfg.order_window.max(1);
        let min_bad = cfg.order_min_violations;
        let st = chans.entry(key).or_default();
        let Some(ppos) = st.last_cycle_pos.replace(pos) else {
            return;
        };
        let prev = cycle.get(ppos).map(String::as_str).unwrap_or("");
        let expected = cycle
            .get((ppos + 1) % cycle.len())
            .map(String::as_str)
            .unwrap_or("");
        let ok = expected == sig;
        st.order.push_back(ok);
        while st.order.len() > window {
            st.order.pop_front();
        }
        let bad = st.order.iter().filter(|o| !**o).count();
        if bad == 0 {
            st.order_reported = false;
        }
        if bad >= min_bad && !st.order_reported {
            st.order_reported = true;
            let explanation = format!(
                "{} changed the order of its polling cycle on {}: after \"{prev}\" came \
                 \"{sig}\" instead of \"{expected}\" ({bad} of the last {} steps out of order). \
                 In the baseline the cycle was always: {}. A master's cycle only changes when \
                 its configuration changes, or when another program injects requests on its \
                 connection.",
                ev.client.ip,
                device_words(ev.server.ip, ev.unit_id),
                st.order.len(),
                cycle.join(" → ")
            );
            out.push(
                Alert::from_event(&POLL_ORDER_CHANGED, ev, explanation, event_summary(ev))
                    .with_fact(
                        format!("cycle: {}", cycle.join(" → ")),
                        format!("{}.cycle", ch.ref_name()),
                    ),
            );
        }
    }
}

impl Detector for Timing {
    fn name(&self) -> &'static str {
        "timing"
    }

    fn on_event(&mut self, ev: &IcsEvent, baseline: Option<&Baseline>, out: &mut Vec<Alert>) {
        let Some(ch) = baseline.and_then(|b| b.channel(ev.client.ip, ev.server.ip, ev.proto))
        else {
            return;
        };
        let key = (ev.client.ip, ev.server.ip, ev.proto);
        self.burst(ev, key, ch.volume.max_per_10s, ch, out);
        if ev.proto == AppProto::Opcua && ev.function.code == OPCUA_PUBLISH_REQUEST {
            // An OPC UA client keeps Publish requests queued at the server and sends the next
            // one when a notification or keep-alive comes back: their pace follows how often
            // the data changes, not a polling cycle, so they have no period to keep.
            return;
        }
        let skey = (key, SigKey::of(ev));
        let info = match self.infos.get_mut(&skey) {
            Some(info) => info,
            None => {
                let sig = skey.1.to_string();
                let poll = ch
                    .polls
                    .iter()
                    .position(|p| p.periodic && p.signature == sig);
                let cycle_pos = ch.cycle.iter().position(|s| *s == sig);
                if self.infos.len() >= self.cfg.max_states {
                    // Table full: check the order, but keep no poll state.
                    self.states_dropped += 1;
                    if let Some(pos) = cycle_pos {
                        let (cfg, chans) = (&self.cfg, &mut self.chans);
                        Timing::order(cfg, chans, ev, key, (&sig, pos), &ch.cycle, ch, out);
                    }
                    return;
                }
                self.infos.entry(skey).or_insert(SigInfo {
                    sig,
                    poll,
                    cycle_pos,
                    state: None,
                })
            }
        };
        if let Some(pos) = info.cycle_pos {
            let (cfg, chans) = (&self.cfg, &mut self.chans);
            Timing::order(cfg, chans, ev, key, (&info.sig, pos), &ch.cycle, ch, out);
        }
        let Some(p) = info.poll.and_then(|i| ch.polls.get(i)) else {
            return;
        };
        let Some(st) = info
            .state
            .and_then(|i| self.states.get_mut(i))
            .map(|(_, _, st)| st)
        else {
            let i = self.states.len();
            info.state = Some(i);
            self.order.insert((key, info.sig.clone()), i);
            self.states.push((
                key,
                info.sig.clone(),
                SigState {
                    last: ev.ts,
                    recent: VecDeque::new(),
                    stopped: false,
                    period_reported: false,
                    client: ev.client,
                    server: ev.server,
                    unit: ev.unit_id,
                    last_ev: ev.clone(),
                },
            ));
            return;
        };
        let d = ev.ts.micros_since(st.last);
        st.last = ev.ts;
        st.client = ev.client;
        st.server = ev.server;
        st.last_ev.clone_from(ev);
        if st.stopped {
            // Polling resumed: start over, the gap is not a period.
            st.stopped = false;
            st.recent.clear();
            return;
        }
        st.recent.push_back(d);
        while st.recent.len() > self.cfg.period_window.max(1) {
            st.recent.pop_front();
        }
        if st.recent.len() < self.cfg.period_window.max(1) {
            return;
        }
        let med_ms = median(&st.recent) / 1e3;
        let tol = (self.cfg.period_tolerance_frac * p.period_ms)
            .max(self.cfg.jitter_factor * p.jitter_ms)
            .max(self.cfg.period_min_tolerance_ms);
        if (med_ms - p.period_ms).abs() <= tol {
            st.period_reported = false;
            return;
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

    fn on_tick(&mut self, now: Timestamp, baseline: Option<&Baseline>, out: &mut Vec<Alert>) {
        let Some(b) = baseline else {
            return;
        };
        for &i in self.order.values() {
            let Some((key, sig, st)) = self.states.get_mut(i) else {
                continue;
            };
            if st.stopped {
                continue;
            }
            let Some(ch) = b.channel(key.0, key.1, key.2) else {
                continue;
            };
            let Some(p) = ch.poll(sig) else {
                continue;
            };
            let gap_ms = now.micros_since(st.last) as f64 / 1e3;
            let limit = (self.cfg.stop_factor * p.period_ms)
                .max(self.cfg.stop_gap_factor * p.max_gap_ms)
                .max(self.cfg.stop_min_ms);
            if gap_ms <= limit {
                continue;
            }
            st.stopped = true;
            let explanation = format!(
                "{} stopped polling {} with \"{sig}\": the last request was {} s ago, at {}. In \
                 the baseline it came every {} ms and was never more than {} ms late. A master \
                 that stops polling loses sight of the process: the operator may be looking \
                 at stale values, or the master or PLC may have crashed or been taken over.",
                key.0,
                device_words(key.1, st.unit),
                fmt_num((gap_ms / 100.0).round() / 10.0),
                st.last,
                fmt_num(p.period_ms.round()),
                fmt_num(p.max_gap_ms.round()),
            );
            let mut a = Alert::new(
                &POLL_STOPPED,
                now,
                &st.client,
                &st.server,
                key.2,
                explanation,
            )
            .with_fact(
                format!(
                    "period {} ms, longest gap {} ms",
                    fmt_num(p.period_ms.round()),
                    fmt_num(p.max_gap_ms.round())
                ),
                format!("{}.polls[{sig}]", ch.ref_name()),
            );
            a.otwatch.unit_id = st.unit;
            a.otwatch.evidence.push(AlertEvidence::from_event(
                &st.last_ev,
                event_summary(&st.last_ev),
            ));
            out.push(a);
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
