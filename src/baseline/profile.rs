//! Bounded, deterministic accumulators used while learning: a systematic sampler for
//! quantiles, value profiles, and merged address-range sets.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A deterministic bounded sample of a stream: keeps every `stride`-th value, and when full
/// drops every other kept value and doubles the stride. The kept values are spread evenly over
/// the whole stream, so quantiles of the sample approximate quantiles of the stream, and the
/// same stream always keeps the same values.
#[derive(Clone, Debug)]
pub struct Sampler {
    cap: usize,
    stride: u64,
    seen: u64,
    samples: Vec<f64>,
}

impl Sampler {
    /// A sampler keeping at most `cap` values (at least 2).
    pub fn new(cap: usize) -> Self {
        Sampler {
            cap: cap.max(2),
            stride: 1,
            seen: 0,
            samples: Vec::new(),
        }
    }

    /// Offers one value.
    pub fn push(&mut self, v: f64) {
        if self.seen % self.stride == 0 {
            self.samples.push(v);
            if self.samples.len() >= self.cap {
                let mut i = 0usize;
                self.samples.retain(|_| {
                    let keep = i % 2 == 0;
                    i += 1;
                    keep
                });
                self.stride = self.stride.saturating_mul(2);
            }
        }
        self.seen += 1;
    }

    /// The kept values, sorted.
    pub fn sorted(&self) -> Vec<f64> {
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        s
    }
}

/// The `q` quantile (0..=1) of sorted values, nearest rank; 0 when empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = (q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(idx).copied().unwrap_or(0.0)
}

/// What the values of one object looked like while learning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValueProfile {
    /// Number of numeric values seen.
    pub count: u64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// 5th percentile.
    pub p05: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Largest absolute change between two consecutive values.
    pub max_step: f64,
    /// Number of distinct values (up to the learner's cap).
    pub distinct: u32,
    /// True when there were more distinct values than the cap.
    pub distinct_capped: bool,
    /// True when every value was the same.
    pub constant: bool,
    /// Longest run of consecutive identical values.
    pub max_same_run: u64,
    /// True for a counter: the value went up at least [`COUNTER_MIN_RISES`] times and never
    /// down (pump starts, operating hours, totalisers). A counter is expected to leave its
    /// learnt range upwards; only a value below it, or a jump, is unusual.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub monotonic: bool,
}

/// Rises needed, with no fall, for a value to be learnt as a counter.
pub const COUNTER_MIN_RISES: u64 = 3;

/// Accumulates a [`ValueProfile`].
#[derive(Clone, Debug)]
pub struct ValueAcc {
    count: u64,
    min: f64,
    max: f64,
    last: Option<f64>,
    max_step: f64,
    distinct: BTreeSet<u64>,
    distinct_cap: usize,
    distinct_capped: bool,
    run: u64,
    max_run: u64,
    rises: u64,
    falls: u64,
    sampler: Sampler,
}

impl ValueAcc {
    /// An empty accumulator.
    pub fn new(samples: usize, distinct_cap: usize) -> Self {
        ValueAcc {
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            last: None,
            max_step: 0.0,
            distinct: BTreeSet::new(),
            distinct_cap,
            distinct_capped: false,
            run: 0,
            max_run: 0,
            rises: 0,
            falls: 0,
            sampler: Sampler::new(samples),
        }
    }

    /// Adds one value (non-finite values are ignored).
    pub fn push(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        self.count += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        match self.last {
            Some(l) if l == v => self.run += 1,
            Some(l) => {
                self.max_step = self.max_step.max((v - l).abs());
                self.run = 1;
                if v > l {
                    self.rises += 1;
                } else {
                    self.falls += 1;
                }
            }
            None => self.run = 1,
        }
        self.max_run = self.max_run.max(self.run);
        self.last = Some(v);
        if !self.distinct_capped && !self.distinct.contains(&v.to_bits()) {
            if self.distinct.len() >= self.distinct_cap {
                self.distinct_capped = true;
            } else {
                self.distinct.insert(v.to_bits());
            }
        }
        self.sampler.push(v);
    }

    /// The profile, or `None` when no value was seen.
    pub fn finish(&self) -> Option<ValueProfile> {
        if self.count == 0 {
            return None;
        }
        let s = self.sampler.sorted();
        Some(ValueProfile {
            count: self.count,
            min: self.min,
            max: self.max,
            p05: quantile(&s, 0.05),
            p50: quantile(&s, 0.5),
            p95: quantile(&s, 0.95),
            max_step: self.max_step,
            distinct: u32::try_from(self.distinct.len()).unwrap_or(u32::MAX),
            distinct_capped: self.distinct_capped,
            constant: self.min == self.max,
            max_same_run: self.max_run,
            monotonic: self.falls == 0 && self.rises >= COUNTER_MIN_RISES,
        })
    }
}

/// A set of address ranges, kept as sorted, merged, inclusive `[first, last]` pairs; at most
/// `cap` pairs: beyond that the two closest neighbours are merged (the set only grows, so a
/// detector using it can miss a novelty but never invents one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: Vec<[u32; 2]>,
    /// Times neighbours were merged because of the cap.
    pub merged_for_cap: u64,
}

impl RangeSet {
    /// From stored pairs (as in a baseline file); pairs are normalised and merged.
    pub fn from_pairs(pairs: &[[u32; 2]]) -> Self {
        let mut s = RangeSet::default();
        for p in pairs {
            s.insert(p[0].min(p[1]), p[0].max(p[1]), usize::MAX);
        }
        s
    }

    /// The pairs.
    pub fn pairs(&self) -> &[[u32; 2]] {
        &self.ranges
    }

    /// Adds `[first, last]`, merging with overlapping or adjacent ranges.
    pub fn insert(&mut self, first: u32, last: u32, cap: usize) {
        // Already covered: merging would rebuild the same set.
        if first <= last && self.ranges.len() <= cap.max(1) && self.covers(first, last) {
            return;
        }
        let (mut lo, mut hi) = (first, last);
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        let mut placed = false;
        for &[a, b] in &self.ranges {
            if b.saturating_add(1) < lo {
                out.push([a, b]);
            } else if hi.saturating_add(1) < a {
                if !placed {
                    out.push([lo, hi]);
                    placed = true;
                }
                out.push([a, b]);
            } else {
                lo = lo.min(a);
                hi = hi.max(b);
            }
        }
        if !placed {
            out.push([lo, hi]);
        }
        self.ranges = out;
        while self.ranges.len() > cap.max(1) {
            self.merge_closest();
        }
    }

    fn merge_closest(&mut self) {
        let best = self
            .ranges
            .windows(2)
            .enumerate()
            .min_by_key(|(_, w)| match w {
                [a, b] => b[0].saturating_sub(a[1]),
                _ => u32::MAX,
            })
            .map(|(i, _)| i);
        if let Some(i) = best {
            if let (Some(a), Some(b)) = (self.ranges.get(i).copied(), self.ranges.get(i + 1)) {
                let merged = [a[0], b[1].max(a[1])];
                self.ranges.splice(i..i + 2, [merged]);
                self.merged_for_cap += 1;
            }
        }
    }

    /// True when every address in `[first, last]` is in the set.
    pub fn covers(&self, first: u32, last: u32) -> bool {
        self.ranges.iter().any(|&[a, b]| a <= first && last <= b)
    }

    /// `RangeSet::from_pairs(pairs).covers(first, last)`, without building the set when the
    /// pairs are already normalised and merged (as the learner writes them).
    pub fn pairs_cover(pairs: &[[u32; 2]], first: u32, last: u32) -> bool {
        let normal = pairs.iter().all(|&[a, b]| a <= b)
            && pairs
                .windows(2)
                .all(|w| matches!(w, [a, b] if a[1].saturating_add(1) < b[0]));
        if normal {
            pairs.iter().any(|&[a, b]| a <= first && last <= b)
        } else {
            RangeSet::from_pairs(pairs).covers(first, last)
        }
    }

    /// True when `addr` is in the set.
    pub fn contains(&self, addr: u32) -> bool {
        self.covers(addr, addr)
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
    use proptest::prelude::*;

    #[test]
    fn sampler_is_bounded_and_spread() {
        let mut s = Sampler::new(64);
        for i in 0..10_000 {
            s.push(f64::from(i));
        }
        let v = s.sorted();
        assert!(v.len() < 64);
        assert!(v.len() >= 32);
        let med = quantile(&v, 0.5);
        assert!((4000.0..6000.0).contains(&med), "{med}");
        assert_eq!(quantile(&[], 0.5), 0.0);
    }

    #[test]
    fn value_profile() {
        let mut a = ValueAcc::new(256, 3);
        for v in [500.0, 500.0, 510.0, 470.0, 530.0, 530.0, 530.0] {
            a.push(v);
        }
        a.push(f64::NAN);
        let p = a.finish().unwrap();
        assert_eq!(p.count, 7);
        assert_eq!((p.min, p.max), (470.0, 530.0));
        assert_eq!(p.max_step, 60.0);
        assert_eq!(p.distinct, 3);
        assert!(p.distinct_capped);
        assert!(!p.constant);
        assert_eq!(p.max_same_run, 3);
        assert!(ValueAcc::new(8, 8).finish().is_none());
    }

    #[test]
    fn ranges_merge_and_cover() {
        let mut r = RangeSet::default();
        r.insert(10, 19, 8);
        r.insert(0, 9, 8);
        r.insert(30, 39, 8);
        assert_eq!(r.pairs(), &[[0, 19], [30, 39]]);
        assert!(r.covers(5, 15));
        assert!(!r.covers(15, 25));
        r.insert(20, 29, 8);
        assert_eq!(r.pairs(), &[[0, 39]]);
        let mut c = RangeSet::default();
        for i in 0..10u32 {
            c.insert(i * 100, i * 100 + 1, 3);
        }
        assert_eq!(c.pairs().len(), 3);
        assert!(c.merged_for_cap > 0);
        assert!(c.contains(0) && c.contains(901));
    }

    proptest! {
        #[test]
        fn rangeset_covers_everything_inserted(
            items in proptest::collection::vec((0u32..1000, 0u32..20), 1..50),
            cap in 1usize..8,
        ) {
            let mut r = RangeSet::default();
            for (s, n) in &items {
                r.insert(*s, s + n, cap);
            }
            for (s, n) in &items {
                prop_assert!(r.covers(*s, s + n));
            }
            prop_assert!(r.pairs().len() <= cap);
            for w in r.pairs().windows(2) {
                prop_assert!(w[0][1] + 1 < w[1][0]);
            }
        }
    }
}
