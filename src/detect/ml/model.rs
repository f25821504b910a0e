//! The anomaly model behind one small trait; linfa and ndarray stay in this file.

use super::MlError;
use linfa::traits::Fit;
use linfa::DatasetBase;
use linfa_clustering::KMeans;
use linfa_nn::distance::L2Dist;
use ndarray::Array2;
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;
use serde::{Deserialize, Serialize};

/// How a model is fitted.
#[derive(Clone, Debug, PartialEq)]
pub struct FitParams {
    /// Most clusters.
    pub max_k: usize,
    /// Rows per cluster (`k = rows / rows_per_cluster`, within 1..=`max_k`).
    pub rows_per_cluster: usize,
    /// Seed of the random initialisation.
    pub seed: u64,
    /// Restarts.
    pub n_runs: usize,
    /// Clusters with fewer rows than this share (and at least 2) are dropped after fitting.
    pub min_cluster_share: f64,
}

/// An anomaly model on scaled feature vectors: `fit` returns a model, `score` scores.
pub trait AnomalyModel: Sized {
    /// Fits on rows of equal length; the same rows and params always give the same model.
    fn fit(rows: &[Vec<f64>], params: &FitParams) -> Result<Self, MlError>;
    /// Anomaly score of one row: 0 for a perfectly normal row, larger is more unusual.
    fn score(&self, x: &[f64]) -> f64;
    /// The normal point `x` is measured against (same length as `x`).
    fn reference(&self, x: &[f64]) -> Vec<f64>;
}

/// k-means (linfa-clustering, k-means++ initialisation): the score is the Euclidean distance
/// to the nearest kept centroid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KMeansModel {
    /// Clusters.
    pub k: usize,
    /// Training rows nearest to each centroid.
    pub sizes: Vec<u64>,
    /// Which centroids score (false: too few training rows, dropped).
    pub kept: Vec<bool>,
    /// linfa's model (centroids, cluster sizes, inertia), in its serde form.
    pub kmeans: KMeans<f64, L2Dist>,
}

fn dist2(a: &[f64], b: impl Iterator<Item = f64>) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Number of distinct rows (exact bit patterns).
fn distinct_rows(rows: &[Vec<f64>]) -> usize {
    let mut keys: Vec<Vec<u64>> = rows
        .iter()
        .map(|r| r.iter().map(|x| x.to_bits()).collect())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.len()
}

impl KMeansModel {
    /// Index of the nearest kept centroid and the squared distance to it.
    fn nearest(&self, x: &[f64]) -> Option<(usize, f64)> {
        self.nearest_of(x, true)
    }

    fn nearest_of(&self, x: &[f64], only_kept: bool) -> Option<(usize, f64)> {
        self.kmeans
            .centroids()
            .rows()
            .into_iter()
            .map(|c| dist2(x, c.iter().copied()))
            .enumerate()
            .filter(|(i, _)| !only_kept || self.kept.get(*i).copied().unwrap_or(false))
            .fold(None, |best: Option<(usize, f64)>, (i, d)| match best {
                Some((_, bd)) if bd <= d => best,
                _ => Some((i, d)),
            })
    }

    /// The centroids, one `Vec` per cluster.
    pub fn centroids(&self) -> Vec<Vec<f64>> {
        self.kmeans
            .centroids()
            .rows()
            .into_iter()
            .map(|r| r.to_vec())
            .collect()
    }

    /// Checks a stored model: `k` centroids of `d` finite features.
    pub fn validate(&self, d: usize) -> Result<(), MlError> {
        let c = self.kmeans.centroids();
        if c.nrows() != self.k || c.nrows() == 0 || c.ncols() != d {
            return Err(MlError::Invalid(format!(
                "k-means model has {} centroids of {} features, expected {} of {d}",
                c.nrows(),
                c.ncols(),
                self.k
            )));
        }
        if self.kept.len() != self.k || self.sizes.len() != self.k || !self.kept.contains(&true) {
            return Err(MlError::Invalid(format!(
                "k-means model needs {} sizes and {} kept flags, one of them true",
                self.k, self.k
            )));
        }
        if c.iter().any(|x| !x.is_finite()) {
            return Err(MlError::Invalid("k-means centroid is not finite".into()));
        }
        Ok(())
    }
}

impl AnomalyModel for KMeansModel {
    fn fit(rows: &[Vec<f64>], params: &FitParams) -> Result<Self, MlError> {
        let d = rows.first().map_or(0, Vec::len);
        if rows.is_empty() || d == 0 || rows.iter().any(|r| r.len() != d) {
            return Err(MlError::Fit("rows are empty or of unequal length".into()));
        }
        if rows.iter().flatten().any(|x| !x.is_finite()) {
            return Err(MlError::Fit("a feature is not a finite number".into()));
        }
        let k = (rows.len() / params.rows_per_cluster.max(1))
            .clamp(1, params.max_k.max(1))
            .min(distinct_rows(rows));
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        let records = Array2::from_shape_vec((rows.len(), d), flat)
            .map_err(|e| MlError::Fit(e.to_string()))?;
        let data = DatasetBase::from(records);
        let rng = Xoshiro256Plus::seed_from_u64(params.seed);
        let kmeans = KMeans::params_with_rng(k, rng)
            .n_runs(params.n_runs.max(1))
            .max_n_iterations(200)
            .tolerance(1e-6)
            .fit(&data)
            .map_err(|e| MlError::Fit(e.to_string()))?;
        let mut m = KMeansModel {
            k,
            sizes: vec![0; k],
            kept: vec![true; k],
            kmeans,
        };
        for r in rows {
            if let Some(n) = m.nearest_of(r, false).and_then(|(i, _)| m.sizes.get_mut(i)) {
                *n += 1;
            }
        }
        let share = if params.min_cluster_share.is_finite() {
            params.min_cluster_share.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let min_rows = ((rows.len() as f64 * share).ceil() as u64).max(2);
        let biggest = m.sizes.iter().copied().max().unwrap_or(0);
        m.kept = m
            .sizes
            .iter()
            .map(|&n| n >= min_rows || n == biggest)
            .collect();
        Ok(m)
    }

    fn score(&self, x: &[f64]) -> f64 {
        self.nearest(x).map_or(f64::INFINITY, |(_, d2)| d2.sqrt())
    }

    fn reference(&self, x: &[f64]) -> Vec<f64> {
        match self.nearest(x) {
            Some((i, _)) => self
                .kmeans
                .centroids()
                .rows()
                .into_iter()
                .nth(i)
                .map(|r| r.to_vec())
                .unwrap_or_else(|| vec![0.0; x.len()]),
            None => vec![0.0; x.len()],
        }
    }
}
