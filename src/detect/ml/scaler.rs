//! The standard scaler: centre each feature on its training mean, divide by a floored spread.

use super::MlError;
use serde::{Deserialize, Serialize};

/// Per-feature mean and scale, fitted on the training windows.
///
/// `scale = max(std, min_scale, rel_floor × |mean|)`: a feature that never varied in training
/// (std 0) is divided by its floor instead of by zero, so perfectly regular traffic does not
/// turn tiny noise into a huge score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// Training mean of each feature.
    pub mean: Vec<f64>,
    /// Divisor of each feature (always > 0).
    pub scale: Vec<f64>,
}

impl Scaler {
    /// Fits on `rows` (each of `min_scale.len()` features). Rows of another length are ignored.
    pub fn fit(rows: &[Vec<f64>], min_scale: &[f64], rel_floor: f64) -> Scaler {
        let d = min_scale.len();
        let rows: Vec<&Vec<f64>> = rows.iter().filter(|r| r.len() == d).collect();
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0.0; d];
        for r in &rows {
            for (m, x) in mean.iter_mut().zip(r.iter()) {
                *m += x / n;
            }
        }
        let mut var = vec![0.0; d];
        for r in &rows {
            for ((v, x), m) in var.iter_mut().zip(r.iter()).zip(&mean) {
                *v += (x - m) * (x - m) / n;
            }
        }
        let rel = if rel_floor.is_finite() {
            rel_floor.max(0.0)
        } else {
            0.0
        };
        let scale = var
            .iter()
            .zip(&mean)
            .zip(min_scale)
            .map(|((v, m), floor)| {
                let s = v.max(0.0).sqrt().max(*floor).max(rel * m.abs());
                if s.is_finite() && s > 0.0 {
                    s
                } else {
                    1.0
                }
            })
            .collect();
        Scaler { mean, scale }
    }

    /// The scaled vector `(x - mean) / scale`; missing features count as the mean.
    pub fn transform(&self, x: &[f64]) -> Vec<f64> {
        self.mean
            .iter()
            .zip(&self.scale)
            .enumerate()
            .map(|(i, (m, s))| {
                let v = x.get(i).copied().unwrap_or(*m);
                (v - m) / s
            })
            .collect()
    }

    /// A scaled vector back in feature units.
    pub fn inverse(&self, z: &[f64]) -> Vec<f64> {
        self.mean
            .iter()
            .zip(&self.scale)
            .zip(z)
            .map(|((m, s), v)| v * s + m)
            .collect()
    }

    /// Checks sizes and numbers of a stored scaler.
    pub fn validate(&self, d: usize) -> Result<(), MlError> {
        if self.mean.len() != d || self.scale.len() != d {
            return Err(MlError::Invalid(format!(
                "scaler has {} means and {} scales, expected {d} of each",
                self.mean.len(),
                self.scale.len()
            )));
        }
        if self.mean.iter().any(|m| !m.is_finite())
            || self.scale.iter().any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err(MlError::Invalid(
                "scaler has a non-finite mean or a scale that is not positive".into(),
            ));
        }
        Ok(())
    }
}
