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
use crate::event::{IcsEvent, OpKind};
use crate::time::Timestamp;
use aggregate::Aggregator;
use std::sync::Arc;

/// A detector: looks at each event, and at ticks of the capture clock. Detectors are `Send`
/// so that [`Engine::parallel`] can run them on threads of their own.
pub trait Detector: Send {
    /// Short stable name (`novelty`, `timing`, …).
    fn name(&self) -> &'static str;
    /// Looks at one event; pushes any alerts to `out`.
    fn on_event(&mut self, ev: &IcsEvent, baseline: Option<&Baseline>, out: &mut Vec<Alert>);
    /// Called as capture time passes (at most once per tick interval, and at the end), for
    /// checks that fire on absence, like a poll that stopped.
    fn on_tick(&mut self, _now: Timestamp, _baseline: Option<&Baseline>, _out: &mut Vec<Alert>) {}
    /// Counters worth reporting (caps hit, work left undone), as `(name, count)`; names ending
    /// in `dropped` count checks a cap made the detector skip.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
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
    detectors: Vec<Box<dyn Detector>>,
    /// The detectors on threads of their own, once [`Engine::parallel`] moved them there.
    pool: Option<parallel::Pool>,
    agg: Aggregator,
    tick_us: u64,
    last_tick: Option<Timestamp>,
    now: Option<Timestamp>,
    raw: Vec<Alert>,
    /// Raw alerts raised by the detectors (before aggregation).
    pub raised: u64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field(
                "detectors",
                &self.detectors.iter().map(|d| d.name()).collect::<Vec<_>>(),
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
        let mut detectors: Vec<Box<dyn Detector>> = vec![
            Box::new(violations::Violations),
            Box::new(novelty::Novelty::new(cfg.novelty.clone())),
            Box::new(values::Values::new(cfg.values.clone())),
            Box::new(timing::Timing::new(cfg.timing.clone())),
            Box::new(scans::Scans::new(cfg.scans.clone())),
        ];
        if cfg.ml.enabled && baseline.as_ref().is_some_and(|b| b.ml.is_some()) {
            detectors.push(Box::new(ml::MlDetector::new(cfg.ml.clone())));
        }
        Engine {
            baseline: baseline.map(Arc::new),
            detectors,
            pool: None,
            agg: Aggregator::new(cfg.aggregate_window_s),
            tick_us: cfg.tick_interval_ms.saturating_mul(1000).max(1),
            last_tick: None,
            now: None,
            raw: Vec::new(),
            raised: 0,
        }
    }

    /// Adds a detector (e.g. a machine-learning scorer); it runs after the standard ones.
    /// Detectors added after [`Engine::parallel`] run on the calling thread, after the others
    /// (their alerts then come before those of the threads for the same event).
    pub fn add_detector(&mut self, d: Box<dyn Detector>) {
        self.detectors.push(d);
    }

    /// Moves the detectors onto `threads` threads of their own (nothing changes for fewer
    /// than 2), in groups of about equal cost; events go to them in batches and their alerts
    /// are merged back into exactly the order one thread gives, so the output is the same. The
    /// price is latency: the alerts of an event come out up to one batch of events later (all
    /// of them at [`Engine::finish`]). Call it after the last [`Engine::add_detector`].
    pub fn parallel(mut self, threads: usize) -> Self {
        if threads >= 2 && self.pool.is_none() && self.detectors.len() >= 2 {
            let detectors = std::mem::take(&mut self.detectors);
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
        ];
        if let Some(pool) = &self.pool {
            for (_, d, c, n) in pool.counters() {
                v.push((format!("{d}.{c}"), *n));
            }
        }
        for d in &self.detectors {
            for (c, n) in d.counters() {
                v.push((format!("{}.{c}", d.name()), n));
            }
        }
        v
    }

    fn tick(&mut self, now: Timestamp) {
        for d in &mut self.detectors {
            d.on_tick(now, self.baseline.as_deref(), &mut self.raw);
        }
    }

    fn drain(&mut self, out: &mut Vec<Alert>) {
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
                d.on_event(&ev, self.baseline.as_deref(), &mut self.raw);
            }
            self.drain(out);
        }
        if let Some(pool) = self.pool.as_mut() {
            pool.push(ev, due.then_some(now), &mut self.agg, &mut self.raised, out);
        }
    }

    /// Events the detector threads are done with (after [`Engine::parallel`]; otherwise none),
    /// so that the caller can free them where they were allocated.
    pub fn take_finished(&mut self) -> Vec<IcsEvent> {
        self.pool
            .as_mut()
            .map_or_else(Vec::new, parallel::Pool::take_finished)
    }

    /// Advances the capture clock to `ts`; whether a tick is due (and records it).
    fn clock(&mut self, ts: Timestamp) -> bool {
        let now = self.now.map_or(ts, |n| n.max(ts));
        self.now = Some(now);
        match self.last_tick {
            None => {
                self.last_tick = Some(now);
                false
            }
            Some(t) if now.micros_since(t) >= self.tick_us => {
                self.last_tick = Some(now);
                true
            }
            Some(_) => false,
        }
    }

    /// The detectors on this thread, on one event.
    fn run(&mut self, ev: &IcsEvent, out: &mut Vec<Alert>) {
        let due = self.clock(ev.ts);
        if due {
            let now = self.now.unwrap_or(ev.ts);
            self.tick(now);
            self.drain(out);
            self.agg.flush_expired(now, out);
        }
        for d in &mut self.detectors {
            d.on_event(ev, self.baseline.as_deref(), &mut self.raw);
        }
        self.drain(out);
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
