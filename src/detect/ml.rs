//! Machine-learning detector: an extra anomaly score per channel and time window.
//!
//! The deterministic detectors say precisely what broke a rule; this one says "this channel,
//! in these ten seconds, looked unlike anything in the training data" and names the features
//! that drove the score. It is an extra score, not the base: its threshold is set so that
//! steady periodic polling gives no alert (see the plant tests in `ml/tests.rs`).
//!
//! # How it works
//! 1. **Windows** ([`features`]). Events are grouped per channel (client, server, protocol)
//!    into fixed capture-time windows (`window_s`, 10 s by default, aligned on the epoch).
//!    Each window becomes a vector of [`FEATURES`] (counts per operation kind, distinct
//!    functions, units and objects, exceptions, unanswered requests, violations, values read
//!    and written, values outside their learned range, inter-arrival mean and spread, mean
//!    latency). Windows that began before the first event seen (the capture started inside
//!    them) and the last, still open windows are partial and are neither learnt nor scored.
//! 2. **Scaling** ([`scaler::Scaler`]). Each feature is centred on its training mean and
//!    divided by `max(std, absolute floor, 0.1 × |mean|)`, so a feature that never varied in
//!    training (a perfectly regular plant) does not turn a one-request wobble into a huge score.
//! 3. **Model** ([`model::AnomalyModel`], implemented by [`model::KMeansModel`] with linfa's
//!    k-means). `k = clamp(windows / 10, 1, 8)` (at most the number of distinct windows);
//!    k-means++ initialisation from a fixed seed, so the same training data always gives the
//!    same model. Clusters holding fewer than 0.5 % of the training windows (and at least 2)
//!    are dropped, so a rare odd window in the training data does not become "normal". The
//!    score of a window is its Euclidean distance to the nearest kept centroid in scaled
//!    space. The first minute (6 windows) of each channel is not trained on: every object's
//!    first value is new there.
//! 4. **Threshold**: `max(p99.5 of the training scores × 1.5, 4.0)` (all in [`MlConfig`]).
//!    A window scoring above it raises [`BEHAVIOUR_ANOMALY`](crate::alert::signatures::BEHAVIOUR_ANOMALY),
//!    whose explanation names the three features that contributed most (squared scaled
//!    deviation from the nearest centroid) with their values and the centroid's ("normally").
//!
//! # Where it plugs in
//! - Learning: [`LearnConfig::ml`](crate::baseline::LearnConfig) set to `Some(MlConfig)` makes
//!   the baseline [`Learner`](crate::baseline::Learner) feed an [`MlLearner`] and store the
//!   trained [`MlModel`] in the baseline's optional `ml` field (baseline version stays 1; a file
//!   without `ml` is read as before). The default is `None`: `otwatch learn` turns it on
//!   with its `--ml` flag. [`MlLearner`] can also be used on its own.
//! - Detection: [`Engine::new`](crate::detect::Engine::new) adds an [`MlDetector`] when the
//!   baseline has a model and [`DetectConfig::ml`](crate::detect::DetectConfig) is enabled.
//!
//! linfa and ndarray types stay inside [`model`]; the rest of otwatch sees plain `f64` slices.

pub mod detector;
pub mod features;
pub mod learn;
pub mod model;
pub mod scaler;

#[cfg(test)]
mod plant_tests;
#[cfg(test)]
mod tests;

pub use detector::{MlDetectConfig, MlDetector};
pub use features::{Feature, FEATURES, N_FEATURES};
pub use learn::MlLearner;
pub use model::{AnomalyModel, KMeansModel};
pub use scaler::Scaler;

use serde::{Deserialize, Serialize};

/// Why a model could not be trained or loaded.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum MlError {
    /// Too few complete windows to learn from.
    #[error("too few complete windows to train the ML model: {have}, need at least {need}")]
    TooFewWindows {
        /// Windows available.
        have: usize,
        /// [`MlConfig::min_windows`].
        need: usize,
    },
    /// The model library failed.
    #[error("model fitting failed: {0}")]
    Fit(String),
    /// A stored model does not fit this otwatch (other features, wrong sizes, bad numbers).
    #[error("{0}")]
    Invalid(String),
}

/// Training settings. Everything that decides the model is here, so a baseline is reproducible.
#[derive(Clone, Debug, PartialEq)]
pub struct MlConfig {
    /// Window length, capture seconds (1..=3600).
    pub window_s: u64,
    /// Most clusters.
    pub max_k: usize,
    /// Training windows per cluster: `k = windows / windows_per_cluster`, within 1..=`max_k`.
    pub windows_per_cluster: usize,
    /// Fewest complete windows to train a model on.
    pub min_windows: usize,
    /// The first complete windows of each channel are not trained on (every object's first
    /// value is new, so they would teach that many new values are normal).
    pub warmup_windows: u64,
    /// A cluster with fewer training windows than this share of them (and at least 2) is
    /// dropped after fitting: rare training windows do not become a normal profile.
    pub min_cluster_share: f64,
    /// Most windows kept for training; beyond it every other window is dropped (and the
    /// sampling stride doubles), so memory stays bounded on long captures.
    pub max_train_windows: usize,
    /// Quantile of the training scores the threshold starts from.
    pub quantile: f64,
    /// The threshold is the quantile times this margin ...
    pub margin: f64,
    /// ... and never below this (scaled units: a count feature moves one unit per event).
    pub min_threshold: f64,
    /// Relative floor of the scale: a feature's scale is at least this fraction of its mean.
    pub rel_scale_floor: f64,
    /// Seed of the k-means initialisation.
    pub seed: u64,
    /// k-means restarts (the run with the lowest inertia wins).
    pub n_runs: usize,
    /// Most channels tracked at once; events of further channels are not learnt.
    pub max_channels: usize,
    /// Most objects per channel whose learned value range is tracked.
    pub max_objects_per_channel: usize,
    /// Most values taken from one access (as the baseline learner).
    pub max_values_per_access: usize,
    /// Most distinct functions, units or objects counted in one window (counts saturate).
    pub max_distinct: usize,
}

impl Default for MlConfig {
    fn default() -> Self {
        MlConfig {
            window_s: 10,
            max_k: 8,
            windows_per_cluster: 10,
            min_windows: 30,
            warmup_windows: 6,
            min_cluster_share: 0.005,
            max_train_windows: 50_000,
            quantile: 0.995,
            margin: 1.5,
            min_threshold: 4.0,
            rel_scale_floor: 0.1,
            seed: 0x07a7_c4ed,
            n_runs: 4,
            max_channels: 4096,
            max_objects_per_channel: 4096,
            max_values_per_access: 128,
            max_distinct: 1024,
        }
    }
}

/// How the threshold was set from the training scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdRule {
    /// Quantile of the training scores used.
    pub quantile: f64,
    /// That quantile's score.
    pub quantile_score: f64,
    /// Margin it was multiplied by.
    pub margin: f64,
    /// Lower bound of the threshold.
    pub floor: f64,
    /// Highest training score.
    pub max_score: f64,
}

/// What the model was trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Complete windows seen (after each channel's warm-up).
    pub windows: u64,
    /// Windows the model was fitted on (after sampling down to `max_train_windows`).
    pub used: u64,
    /// Channels they came from.
    pub channels: u64,
    /// Clusters.
    pub k: usize,
    /// Seed of the initialisation.
    pub seed: u64,
    /// Events not learnt because the channel cap was reached.
    pub dropped_events: u64,
}

/// A trained model as stored in the baseline's `ml` field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlModel {
    /// Always `kmeans`.
    pub algorithm: String,
    /// Window length, capture seconds.
    pub window_s: u64,
    /// Feature names, in vector order (must equal [`FEATURES`]).
    pub features: Vec<String>,
    /// The scaler fitted on the training windows.
    pub scaler: Scaler,
    /// The clustering model, in scaled space.
    pub model: KMeansModel,
    /// Scores above this raise an alert.
    pub threshold: f64,
    /// How `threshold` was chosen.
    pub threshold_rule: ThresholdRule,
    /// What the model was trained on.
    pub training: TrainingSummary,
}

/// Longest window accepted in a stored model, seconds.
pub const MAX_WINDOW_S: u64 = 3600;

impl MlModel {
    /// Checks that a stored model fits this otwatch: same features, consistent sizes, finite
    /// numbers, a sensible window.
    pub fn validate(&self) -> Result<(), MlError> {
        if self.algorithm != "kmeans" {
            return Err(MlError::Invalid(format!(
                "algorithm {:?}, this otwatch knows \"kmeans\"",
                self.algorithm
            )));
        }
        if self.window_s == 0 || self.window_s > MAX_WINDOW_S {
            return Err(MlError::Invalid(format!(
                "window_s {} is outside 1..={MAX_WINDOW_S}",
                self.window_s
            )));
        }
        let names: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
        if self
            .features
            .iter()
            .map(String::as_str)
            .ne(names.iter().copied())
        {
            return Err(MlError::Invalid(
                "the model was trained on other features than this otwatch computes; learn the baseline again".into(),
            ));
        }
        self.scaler.validate(N_FEATURES)?;
        self.model.validate(N_FEATURES)?;
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err(MlError::Invalid(format!(
                "threshold {} is not a positive number",
                self.threshold
            )));
        }
        Ok(())
    }

    /// Scores one raw feature vector: (score, scaled vector, scaled nearest normal point).
    pub fn score(&self, raw: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
        let x = self.scaler.transform(raw);
        let s = self.model.score(&x);
        let r = self.model.reference(&x);
        (s, x, r)
    }
}
