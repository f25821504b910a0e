//! Detection: score each closed window against the baseline's model.

use super::features::{Window, Windower, FEATURES};
use super::MlModel;
use crate::alert::attack::*;
use crate::alert::schema::{MlFeature, MlScore};
use crate::alert::{signatures, Alert};
use crate::baseline::{access_keys, fmt_num, numeric, Baseline, Channel};
use crate::detect::Detector;
use crate::event::{AccessDir, IcsEvent};
use crate::time::Timestamp;

/// Detection settings of the ML detector.
#[derive(Clone, Debug, PartialEq)]
pub struct MlDetectConfig {
    /// Run the ML detector when the baseline has a model.
    pub enabled: bool,
    /// Multiplies the model's threshold (above 1: fewer alerts), without relearning.
    pub threshold_factor: f64,
    /// Most channels tracked at once; events of further channels are not scored.
    pub max_channels: usize,
    /// Most distinct functions, units or objects counted per window.
    pub max_distinct: usize,
    /// Most values taken from one access.
    pub max_values_per_access: usize,
    /// Features named in an explanation.
    pub top_features: usize,
}

impl Default for MlDetectConfig {
    fn default() -> Self {
        MlDetectConfig {
            enabled: true,
            threshold_factor: 1.0,
            max_channels: 4096,
            max_distinct: 1024,
            max_values_per_access: 128,
            top_features: 3,
        }
    }
}

/// The ML detector: windows the events as the learner did, scores each complete window and
/// raises [`signatures::BEHAVIOUR_ANOMALY`] above the threshold. Without a model in the
/// baseline it does nothing.
#[derive(Debug)]
pub struct MlDetector {
    cfg: MlDetectConfig,
    windower: Option<Windower>,
    closed: Vec<Window>,
    /// Windows scored.
    pub scored: u64,
    /// Highest score seen (for tuning).
    pub max_score: f64,
}

impl MlDetector {
    /// A detector with these settings.
    pub fn new(cfg: MlDetectConfig) -> Self {
        MlDetector {
            cfg,
            windower: None,
            closed: Vec::new(),
            scored: 0,
            max_score: 0.0,
        }
    }

    fn windower(&mut self, model: &MlModel) -> &mut Windower {
        let cfg = &self.cfg;
        self.windower.get_or_insert_with(|| {
            Windower::new(
                model.window_s,
                cfg.max_channels,
                cfg.max_distinct,
                cfg.max_values_per_access,
                true,
            )
        })
    }

    fn score_closed(&mut self, model: &MlModel, out: &mut Vec<Alert>) {
        for w in std::mem::take(&mut self.closed) {
            if w.partial {
                continue;
            }
            self.scored += 1;
            let threshold = model.threshold * self.cfg.threshold_factor.max(0.0);
            let (score, x, r) = model.score(&w.features);
            self.max_score = self.max_score.max(score);
            if score > threshold {
                out.push(alert(
                    model,
                    &w,
                    score,
                    threshold,
                    &x,
                    &r,
                    self.cfg.top_features,
                ));
            }
        }
    }
}

/// Values of `ev` outside the range the baseline learnt for their object on this channel, or,
/// for a channel the baseline does not know, on any channel to the same server. Every numeric
/// value of an object never seen counts.
fn new_values(ev: &IcsEvent, b: &Baseline, cap: usize) -> u64 {
    if ev.accesses.is_empty() {
        return 0;
    }
    let chans: Vec<&Channel> = match b.channel(ev.client.ip, ev.server.ip, ev.proto) {
        Some(c) => vec![c],
        None => b.channels_to(ev.server.ip, ev.proto),
    };
    let mut n = 0;
    for a in &ev.accesses {
        for (k, v) in access_keys(ev.unit_id, &a.object, &a.values, cap) {
            let Some(x) = v.as_deref().and_then(numeric) else {
                continue;
            };
            let known = chans.iter().any(|c| {
                c.objects
                    .get(&k)
                    .and_then(|o| match a.dir {
                        AccessDir::Read => o.read.as_ref(),
                        AccessDir::Write => o.written.as_ref(),
                    })
                    .is_some_and(|p| x >= p.min && x <= p.max)
            });
            if !known {
                n += 1;
            }
        }
    }
    n
}

/// ATT&CK techniques the leading feature suggests.
fn techniques_for(feature: &str) -> Vec<&'static str> {
    match feature {
        "requests"
        | "op_read"
        | "values_read"
        | "interarrival_mean_ms"
        | "interarrival_std_ms"
        | "latency_mean_ms"
        | "no_response" => vec![DENIAL_OF_SERVICE],
        "op_write" | "op_read_write" | "values_written" | "op_call" => {
            vec![UNAUTHORIZED_COMMAND, MODIFY_PARAMETER]
        }
        "op_program" => vec![PROGRAM_DOWNLOAD],
        "op_diagnostic" | "op_identify" | "distinct_functions" | "exceptions" => {
            vec![REMOTE_SYSTEM_INFO_DISCOVERY]
        }
        "distinct_units" | "op_discovery" => vec![REMOTE_SYSTEM_DISCOVERY],
        "distinct_objects" | "op_browse" => vec![POINT_TAG_IDENTIFICATION],
        "new_values" => vec![MODIFY_PARAMETER, MANIPULATION_OF_VIEW],
        _ => Vec::new(),
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Builds the alert of an anomalous window.
fn alert(
    model: &MlModel,
    w: &Window,
    score: f64,
    threshold: f64,
    x: &[f64],
    r: &[f64],
    top: usize,
) -> Alert {
    let normal = model.scaler.inverse(r);
    let total: f64 = x.iter().zip(r).map(|(a, b)| (a - b) * (a - b)).sum();
    let mut contrib: Vec<(usize, f64)> = x
        .iter()
        .zip(r)
        .map(|(a, b)| (a - b) * (a - b))
        .enumerate()
        .filter(|(_, c)| *c > 0.0)
        .collect();
    // Largest contribution first; ties in feature order.
    contrib.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut features: Vec<MlFeature> = Vec::new();
    for (i, c) in contrib {
        if features.len() >= top.max(1) {
            break;
        }
        let Some(f) = FEATURES.get(i) else { continue };
        let value = round1(w.features.get(i).copied().unwrap_or(0.0));
        let normal = round1(normal.get(i).copied().unwrap_or(0.0).max(0.0));
        // An operation count equal to the request count says the same thing (all requests
        // were reads): named once.
        let same_as_requests = |g: &MlFeature| {
            (g.name == "requests" || f.name == "requests")
                && g.value == value
                && (g.normal - normal).abs() <= 0.1 * g.normal.max(normal).max(1.0)
        };
        if features.iter().any(same_as_requests) {
            continue;
        }
        features.push(MlFeature {
            name: f.name,
            value,
            normal,
            share: if total > 0.0 {
                (c / total * 1000.0).round() / 1000.0
            } else {
                0.0
            },
        });
    }
    let words: Vec<String> = features
        .iter()
        .filter_map(|f| {
            let feat = FEATURES.iter().find(|x| x.name == f.name)?;
            let words = if f.value == 1.0 { feat.one } else { feat.words };
            Some(format!(
                "{}{words} (normally {})",
                fmt_num(f.value),
                fmt_num(f.normal)
            ))
        })
        .collect();
    let (client, server, proto) = w.key;
    let explanation = format!(
        "The channel {client} → {server} ({}) behaved unlike anything in the baseline in the {} s from {} to {}: {}; anomaly score {}, threshold {}. This is a statistical finding: the other alerts of this channel, if any, say what exactly changed.",
        proto.as_str(),
        model.window_s,
        w.start,
        w.end,
        crate::detect::list_words(&words, words.len().max(1)),
        fmt_num(round1(score)),
        fmt_num(round1(threshold)),
    );
    let techniques = features
        .first()
        .map(|f| techniques_for(f.name))
        .unwrap_or_default();
    let mut a = Alert::new(
        &signatures::BEHAVIOUR_ANOMALY,
        w.last_ts,
        &w.client,
        &w.server,
        proto,
        explanation,
    )
    .with_techniques(techniques);
    a.otwatch.unit_id = w.unit_id;
    a.otwatch.evidence = w.evidence.clone();
    a.otwatch.score = Some(if score.is_finite() {
        (score / (score + threshold.max(f64::MIN_POSITIVE)) * 1000.0).round() / 1000.0
    } else {
        1.0
    });
    a.otwatch.ml = Some(MlScore {
        score: round1(score),
        threshold: round1(threshold),
        window_start: w.start,
        window_end: w.end,
        features,
    });
    a.with_fact(
        format!(
            "k-means model of {} windows of {} s ({} clusters); threshold {}",
            model.training.used,
            model.window_s,
            model.training.k,
            fmt_num(round1(model.threshold))
        ),
        "ml",
    )
}

impl Detector for MlDetector {
    fn name(&self) -> &'static str {
        "ml"
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![(
            "events_dropped",
            self.windower.as_ref().map_or(0, |w| w.dropped_events),
        )]
    }

    fn on_event(&mut self, ev: &IcsEvent, baseline: Option<&Baseline>, out: &mut Vec<Alert>) {
        let Some(b) = baseline else { return };
        let Some(model) = b.ml.as_ref() else { return };
        let nv = new_values(ev, b, self.cfg.max_values_per_access);
        let mut closed = std::mem::take(&mut self.closed);
        self.windower(model).push(ev, nv, &mut closed);
        self.closed = closed;
        self.score_closed(model, out);
    }

    fn on_tick(&mut self, now: Timestamp, baseline: Option<&Baseline>, out: &mut Vec<Alert>) {
        let Some(model) = baseline.and_then(|b| b.ml.as_ref()) else {
            return;
        };
        let mut closed = std::mem::take(&mut self.closed);
        self.windower(model).close_due(now, &mut closed);
        self.closed = closed;
        self.score_closed(model, out);
    }
}
