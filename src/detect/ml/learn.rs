//! Training: events in, an [`MlModel`] out.

use super::features::{ChanKey, Windower, FEATURES};
use super::model::{AnomalyModel, FitParams, KMeansModel};
use super::scaler::Scaler;
use super::{MlConfig, MlError, MlModel, ThresholdRule, TrainingSummary};
use crate::baseline::{access_keys, numeric, quantile};
use crate::event::{AccessDir, IcsEvent};
use std::collections::BTreeMap;

/// Value range (min, max) per (object key, written?).
type ObjRanges = BTreeMap<(String, bool), (f64, f64)>;

/// Learned value ranges per channel and object, grown as training goes.
#[derive(Clone, Debug, Default)]
struct Ranges {
    chans: BTreeMap<ChanKey, ObjRanges>,
}

/// Learns an [`MlModel`] from events in capture order: [`observe`](MlLearner::observe) each,
/// then [`train`](MlLearner::train). Memory is bounded by the caps of [`MlConfig`].
#[derive(Clone, Debug)]
pub struct MlLearner {
    cfg: MlConfig,
    windower: Windower,
    ranges: Ranges,
    rows: Vec<Vec<f64>>,
    channels: BTreeMap<ChanKey, u64>,
    /// Complete windows seen.
    windows: u64,
    /// Only every `stride`-th complete window is kept (doubles when `rows` is full).
    stride: u64,
    closed: Vec<super::features::Window>,
}

impl Default for MlLearner {
    fn default() -> Self {
        MlLearner::new(MlConfig::default())
    }
}

impl MlLearner {
    /// A learner with these settings.
    pub fn new(cfg: MlConfig) -> Self {
        let windower = Windower::new(
            cfg.window_s,
            cfg.max_channels,
            cfg.max_distinct,
            cfg.max_values_per_access,
            false,
        );
        MlLearner {
            cfg,
            windower,
            ranges: Ranges::default(),
            rows: Vec::new(),
            channels: BTreeMap::new(),
            windows: 0,
            stride: 1,
            closed: Vec::new(),
        }
    }

    /// Complete windows seen so far.
    pub fn windows(&self) -> u64 {
        self.windows
    }

    /// Counts the values of `ev` outside the range seen so far for their object (and grows
    /// the ranges).
    fn new_values(&mut self, ev: &IcsEvent) -> u64 {
        let key = (ev.client.ip, ev.server.ip, ev.proto);
        if !self.ranges.chans.contains_key(&key) && self.ranges.chans.len() >= self.cfg.max_channels
        {
            return 0;
        }
        let cap = self.cfg.max_objects_per_channel;
        let objs = self.ranges.chans.entry(key).or_default();
        let mut n = 0;
        for a in &ev.accesses {
            let write = a.dir == AccessDir::Write;
            for (k, v) in access_keys(
                ev.unit_id,
                &a.object,
                &a.values,
                self.cfg.max_values_per_access,
            ) {
                let Some(x) = v.as_deref().and_then(numeric) else {
                    continue;
                };
                let obj_key = (k, write);
                match objs.get_mut(&obj_key) {
                    Some((lo, hi)) => {
                        if x < *lo || x > *hi {
                            n += 1;
                            *lo = lo.min(x);
                            *hi = hi.max(x);
                        }
                    }
                    None => {
                        n += 1;
                        if objs.len() < cap {
                            objs.insert(obj_key, (x, x));
                        }
                    }
                }
            }
        }
        n
    }

    fn take_closed(&mut self) {
        for w in std::mem::take(&mut self.closed) {
            if w.partial {
                continue;
            }
            let seen = self.channels.entry(w.key).or_insert(0);
            *seen += 1;
            if *seen <= self.cfg.warmup_windows {
                continue;
            }
            self.windows += 1;
            if self.windows % self.stride != 0 {
                continue;
            }
            self.rows.push(w.features);
            if self.rows.len() >= self.cfg.max_train_windows.max(2) {
                // Keep every other row and sample half as often from now on.
                let mut i = 0usize;
                self.rows.retain(|_| {
                    i += 1;
                    i % 2 == 0
                });
                self.stride = self.stride.saturating_mul(2);
            }
        }
    }

    /// Learns from one event.
    pub fn observe(&mut self, ev: &IcsEvent) {
        let nv = self.new_values(ev);
        let mut closed = std::mem::take(&mut self.closed);
        self.windower.push(ev, nv, &mut closed);
        self.closed = closed;
        self.take_closed();
    }

    /// Trains the model on the complete windows seen so far (the windows still open are not
    /// complete and are left out).
    pub fn train(&self) -> Result<MlModel, MlError> {
        let need = self.cfg.min_windows.max(2);
        if self.rows.len() < need {
            return Err(MlError::TooFewWindows {
                have: self.rows.len(),
                need,
            });
        }
        let floors: Vec<f64> = FEATURES.iter().map(|f| f.min_scale).collect();
        let scaler = Scaler::fit(&self.rows, &floors, self.cfg.rel_scale_floor);
        let scaled: Vec<Vec<f64>> = self.rows.iter().map(|r| scaler.transform(r)).collect();
        let params = FitParams {
            max_k: self.cfg.max_k,
            rows_per_cluster: self.cfg.windows_per_cluster,
            seed: self.cfg.seed,
            n_runs: self.cfg.n_runs,
            min_cluster_share: self.cfg.min_cluster_share,
        };
        let model = KMeansModel::fit(&scaled, &params)?;
        let mut scores: Vec<f64> = scaled.iter().map(|x| model.score(x)).collect();
        scores.sort_by(f64::total_cmp);
        let q = self.cfg.quantile.clamp(0.0, 1.0);
        let quantile_score = quantile(&scores, q);
        let max_score = scores.last().copied().unwrap_or(0.0);
        let threshold = (quantile_score * self.cfg.margin).max(self.cfg.min_threshold);
        let m = MlModel {
            algorithm: "kmeans".into(),
            window_s: self.windower.window_s(),
            features: FEATURES.iter().map(|f| f.name.to_string()).collect(),
            scaler,
            threshold,
            threshold_rule: ThresholdRule {
                quantile: q,
                quantile_score,
                margin: self.cfg.margin,
                floor: self.cfg.min_threshold,
                max_score,
            },
            training: TrainingSummary {
                windows: self.windows,
                used: self.rows.len() as u64,
                channels: self.channels.len() as u64,
                k: model.k,
                seed: self.cfg.seed,
                dropped_events: self.windower.dropped_events,
            },
            model,
        };
        m.validate()?;
        Ok(m)
    }
}
