//! The `rules` detector: matches each event against the indexed rules, applies thresholds
//! (capture time only, bounded state) and raises one alert per rule that fires.

use super::index::Merge;
use super::{Rule, RuleSet, ThresholdKind, Track};
use crate::alert::signatures::RULE_MATCH;
use crate::alert::Alert;
use crate::baseline::{device_words, event_summary, fmt_value, object_words, Baseline};
use crate::detect::{Detector, EventKind};
use crate::event::{AppProto, IcsEvent, Outcome, Value};
use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counters of the rules detector, readable while it runs inside an engine.
#[derive(Debug, Default)]
pub struct RuleStats {
    /// Events that matched some rule (before thresholds), counted once per rule.
    pub matched: AtomicU64,
    /// Alerts raised (before aggregation).
    pub alerts: AtomicU64,
    /// Threshold matches not counted because the tracking table was full.
    pub threshold_dropped: AtomicU64,
}

/// Most (rule, tracked value) windows kept for thresholds.
pub const DEFAULT_MAX_TRACKED: usize = 65_536;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TrackKey {
    rule: u32,
    a: IpAddr,
    b: Option<IpAddr>,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    end_us: i64,
    count: u32,
}

/// The rules detector.
#[derive(Debug)]
pub struct RulesDetector {
    set: Arc<RuleSet>,
    windows: BTreeMap<TrackKey, Window>,
    max_tracked: usize,
    stats: Arc<RuleStats>,
}

impl RulesDetector {
    /// A detector over `set`.
    pub fn new(set: Arc<RuleSet>) -> Self {
        RulesDetector {
            set,
            windows: BTreeMap::new(),
            max_tracked: DEFAULT_MAX_TRACKED,
            stats: Arc::new(RuleStats::default()),
        }
    }

    /// The same with at most `max` tracked threshold windows.
    pub fn with_max_tracked(mut self, max: usize) -> Self {
        self.max_tracked = max;
        self
    }

    /// Its counters (shared: they keep counting after the detector moves into an engine).
    pub fn stats(&self) -> Arc<RuleStats> {
        self.stats.clone()
    }
}

/// Threshold windows: (rule position, tracked value) → window, at most `max` of them.
#[derive(Debug)]
struct Windows<'a> {
    map: &'a mut BTreeMap<TrackKey, Window>,
    max: usize,
    stats: &'a RuleStats,
}

impl Windows<'_> {
    /// Counts a match of rule `pos` for its threshold; the number of matches in the current
    /// window when the rule fires now (threshold reached), `None` otherwise.
    fn threshold(&mut self, pos: u32, rule: &Rule, ev: &IcsEvent) -> Option<u32> {
        let Some(t) = rule.threshold else {
            return Some(1);
        };
        let key = match t.track {
            Track::BySrc => TrackKey {
                rule: pos,
                a: ev.client.ip,
                b: None,
            },
            Track::ByDst => TrackKey {
                rule: pos,
                a: ev.server.ip,
                b: None,
            },
            Track::ByChannel => TrackKey {
                rule: pos,
                a: ev.client.ip,
                b: Some(ev.server.ip),
            },
            Track::ByRule => TrackKey {
                rule: pos,
                a: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                b: None,
            },
        };
        let now = ev.ts.as_micros();
        let len_us = i64::from(t.seconds).saturating_mul(1_000_000);
        if !self.map.contains_key(&key) && self.map.len() >= self.max {
            self.map.retain(|_, w| w.end_us > now);
            if self.map.len() >= self.max {
                self.stats.threshold_dropped.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        let w = self.map.entry(key).or_insert(Window {
            end_us: now.saturating_add(len_us),
            count: 0,
        });
        if now >= w.end_us {
            *w = Window {
                end_us: now.saturating_add(len_us),
                count: 0,
            };
        }
        w.count = w.count.saturating_add(1);
        match t.kind {
            ThresholdKind::Both => (w.count == t.count).then_some(w.count),
            ThresholdKind::Limit => (w.count <= t.count).then_some(w.count),
            ThresholdKind::Every => {
                let n = w.count;
                if n >= t.count {
                    // Counting starts over within the same window.
                    w.count = 0;
                    Some(n)
                } else {
                    None
                }
            }
        }
    }
}

/// What the event did, in plain words: `10.0.0.66 sent diagnostics (fc 8)
/// force_listen_only_mode to 10.0.0.20 unit 1`.
pub fn what_happened(ev: &IcsEvent) -> String {
    let f = &ev.function;
    let mut s = match ev.proto {
        AppProto::Modbus => format!("{} sent {} (fc {})", ev.client.ip, f.name, f.code),
        AppProto::Opcua => format!("{} sent {}", ev.client.ip, f.name),
    };
    if let Some(sub) = f.sub_name {
        s.push(' ');
        s.push_str(sub);
    }
    s.push_str(" to ");
    s.push_str(&device_words(ev.server.ip, ev.unit_id));
    let objects: Vec<String> = ev
        .accesses
        .iter()
        .take(3)
        .map(|a| {
            let mut o = object_words(&a.object);
            if !a.values.is_empty() {
                let vals: Vec<String> = a.values.iter().take(4).map(|v| fmt_value(&v)).collect();
                let more = if a.values.len() > 4 { ", …" } else { "" };
                o.push_str(&format!(" = {}{more}", vals.join(", ")));
            }
            o
        })
        .collect();
    if !objects.is_empty() {
        s.push_str(" for ");
        s.push_str(&objects.join("; "));
        if ev.accesses.len() > 3 {
            s.push_str(" …");
        }
    }
    let security: Vec<String> = [
        ("security_mode", "security mode"),
        ("security_policy", "policy"),
        ("identity_token", "identity"),
    ]
    .iter()
    .filter_map(|(k, words)| {
        ev.details.iter().find_map(|(dk, v)| match v {
            Value::Str(x) if dk == k => Some(format!("{words} {x}")),
            _ => None,
        })
    })
    .collect();
    if !security.is_empty() {
        s.push_str(&format!(" ({})", security.join(", ")));
    }
    match &ev.outcome {
        Outcome::Exception { code, name } => {
            s.push_str(&format!("; the device answered exception {code} {name}"))
        }
        Outcome::Bad { name, .. } => s.push_str(&format!("; the server answered {name}")),
        _ => {}
    }
    s
}

fn track_words(t: Track, ev: &IcsEvent) -> String {
    match t {
        Track::BySrc => format!("from {}", ev.client.ip),
        Track::ByDst => format!("to {}", ev.server.ip),
        Track::ByChannel => format!("from {} to {}", ev.client.ip, ev.server.ip),
        Track::ByRule => "in all".to_string(),
    }
}

impl Detector for RulesDetector {
    fn name(&self) -> &'static str {
        "rules"
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("matched", self.stats.matched.load(Ordering::Relaxed)),
            (
                "threshold_dropped",
                self.stats.threshold_dropped.load(Ordering::Relaxed),
            ),
        ]
    }

    fn acts_on(&self, kind: &EventKind) -> bool {
        // Without a candidate rule `on_event` returns at once.
        let (a, b) = self.set.index.candidates_of(kind.proto, kind.code, kind.ok);
        !a.is_empty() || !b.is_empty()
    }

    fn on_event(&mut self, ev: &IcsEvent, _b: Option<&Baseline>, out: &mut Vec<Alert>) {
        let set = &*self.set;
        let candidates = set.index.candidates(ev);
        if candidates.0.is_empty() && candidates.1.is_empty() {
            // No rule can match (most events): nothing to set up.
            return;
        }
        let mut windows = Windows {
            map: &mut self.windows,
            max: self.max_tracked,
            stats: &self.stats,
        };
        for pos in Merge::new(candidates) {
            let Some(rule) = usize::try_from(pos).ok().and_then(|p| set.rules.get(p)) else {
                continue;
            };
            if !rule.matcher.matches_indexed(ev) {
                continue;
            }
            windows.stats.matched.fetch_add(1, Ordering::Relaxed);
            let Some(n) = windows.threshold(pos, rule, ev) else {
                continue;
            };
            let mut explanation = what_happened(ev);
            if let Some(t) = rule.threshold.filter(|t| t.count > 1) {
                explanation.push_str(&format!(
                    " ({n} matching operations within {} s {})",
                    t.seconds,
                    track_words(t.track, ev)
                ));
            }
            explanation.push_str(". ");
            explanation.push_str(&rule.description);
            let mut a = Alert::from_event(&RULE_MATCH, ev, explanation, event_summary(ev))
                .with_severity(rule.severity)
                .with_techniques(rule.techniques.clone());
            a.alert.signature_id = rule.id;
            a.alert.rev = rule.rev;
            a.alert.signature.clone_from(&rule.signature);
            windows.stats.alerts.fetch_add(1, Ordering::Relaxed);
            out.push(a);
        }
    }

    fn on_tick(&mut self, now: Timestamp, _b: Option<&Baseline>, _out: &mut Vec<Alert>) {
        // Expired windows go at ticks too, so the table stays small without pressure.
        if self.windows.len() > self.max_tracked / 2 {
            let now = now.as_micros();
            self.windows.retain(|_, w| w.end_us > now);
        }
    }
}
