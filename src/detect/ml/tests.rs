//! Unit tests: featuriser, scaler, model determinism, baseline round trip.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::features::{Window, Windower};
use super::model::FitParams;
use super::*;
use crate::baseline::{Baseline, LearnConfig, Learner};
use crate::detect::testkit::*;
use crate::event::{IcsEvent, OpKind};
use rstest::rstest;

fn ix(name: &str) -> usize {
    FEATURES.iter().position(|f| f.name == name).unwrap()
}

fn feat(w: &Window, name: &str) -> f64 {
    w.features[ix(name)]
}

fn windows(evs: &[IcsEvent], window_s: u64) -> Vec<Window> {
    let mut w = Windower::new(window_s, 16, 1024, 128, true);
    let mut out = Vec::new();
    for e in evs {
        w.push(e, 0, &mut out);
    }
    out
}

#[test]
fn feature_table_is_consistent() {
    assert_eq!(N_FEATURES, 25);
    let mut names: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), N_FEATURES);
    for f in FEATURES {
        assert!(f.min_scale > 0.0, "{}", f.name);
        assert!(f.words.starts_with(' '), "{}", f.name);
        assert!(
            f.one.starts_with(' ') && f.one.len() <= f.words.len(),
            "{}",
            f.name
        );
        assert!(!f.doc.is_empty());
    }
}

#[test]
fn featuriser_counts_one_window() {
    // Window [10 s, 20 s) of one channel, then one event at 21 s closes it.
    let mut evs = vec![
        read_hr(10_000, MASTER, PLC, 1, 0, &[1, 2, 3]),
        read_coils(10_100, MASTER, PLC, 1, 0, &[true, false]),
        write_hr(10_300, MASTER, PLC, 1, 7, 42),
        modbus(
            10_600,
            MASTER,
            PLC,
            2,
            43,
            "read_device_identification",
            OpKind::Identify,
            vec![],
            exception(1),
        ),
    ];
    evs[3].violations = vec!["length_mismatch", "bad_unit"];
    evs[3].latency_us = Some(3500);
    evs.push(read_hr(21_000, MASTER, PLC, 1, 0, &[1, 2, 3]));
    let mut ws = windows(&evs, 10);
    assert_eq!(ws.len(), 1);
    let w = ws.remove(0);
    assert_eq!(w.start, ts_ms(10_000));
    assert_eq!(w.end, ts_ms(20_000));
    assert_eq!(w.last_ts, ts_ms(10_600));
    assert!(!w.partial, "the window starts at the first event");
    assert_eq!(feat(&w, "requests"), 4.0);
    assert_eq!(feat(&w, "op_read"), 2.0);
    assert_eq!(feat(&w, "op_write"), 1.0);
    assert_eq!(feat(&w, "op_identify"), 1.0);
    assert_eq!(feat(&w, "op_other"), 0.0);
    assert_eq!(feat(&w, "distinct_functions"), 4.0);
    assert_eq!(feat(&w, "distinct_units"), 2.0);
    // hr 0,1,2 + coil 0,1 + hr 7.
    assert_eq!(feat(&w, "distinct_objects"), 6.0);
    assert_eq!(feat(&w, "exceptions"), 1.0);
    assert_eq!(feat(&w, "no_response"), 0.0);
    assert_eq!(feat(&w, "violations"), 2.0);
    assert_eq!(feat(&w, "values_read"), 5.0);
    assert_eq!(feat(&w, "values_written"), 1.0);
    // Gaps 100, 200, 300 ms.
    assert_eq!(feat(&w, "interarrival_mean_ms"), 200.0);
    assert!((feat(&w, "interarrival_std_ms") - (20_000.0f64 / 3.0).sqrt()).abs() < 1e-9);
    // Latencies 1.5, 1.5, 1.5, 3.5 ms.
    assert_eq!(feat(&w, "latency_mean_ms"), 2.0);
    assert_eq!(w.unit_id, None, "two unit ids");
    // Notable events first: the write and the exception, then the reads.
    assert_eq!(w.evidence.len(), 4);
    assert!(w.evidence[0].summary.starts_with("write_single_register"));
    assert!(w.evidence[1]
        .summary
        .starts_with("read_device_identification"));
}

#[test]
fn featuriser_single_request_and_gap_carry_over() {
    // One request per 10 s window; the gap to the previous window's request counts.
    let evs: Vec<IcsEvent> = (0..4)
        .map(|i| read_hr(i * 10_000 + 5_000, MASTER, PLC, 1, 0, &[1]))
        .collect();
    let ws = windows(&evs, 10);
    assert_eq!(ws.len(), 3);
    assert!(ws[0].partial, "the capture started inside the first window");
    assert!(!ws[1].partial);
    // First window: no gap, mean is the window length, spread 0.
    assert_eq!(feat(&ws[0], "interarrival_mean_ms"), 10_000.0);
    assert_eq!(feat(&ws[0], "interarrival_std_ms"), 0.0);
    assert_eq!(feat(&ws[1], "interarrival_mean_ms"), 10_000.0);
    assert_eq!(ws[1].unit_id, Some(1));
}

#[test]
fn featuriser_empty_input_and_close_due() {
    let mut w = Windower::new(10, 16, 1024, 128, false);
    let mut out = Vec::new();
    w.close_due(ts_ms(1_000_000), &mut out);
    assert!(out.is_empty());
    w.push(&read_hr(10_000, MASTER, PLC, 1, 0, &[1]), 3, &mut out);
    w.close_due(ts_ms(19_999), &mut out);
    assert!(out.is_empty(), "window still open");
    w.close_due(ts_ms(20_000), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(feat(&out[0], "new_values"), 3.0);
    assert!(out[0].evidence.is_empty(), "evidence not kept");
    // Nothing is left open.
    w.close_due(ts_ms(100_000), &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn featuriser_separates_channels_and_caps_them() {
    let mut w = Windower::new(10, 2, 1024, 128, false);
    let mut out = Vec::new();
    for (i, c) in ["10.0.0.1", "10.0.0.2", "10.0.0.3"].iter().enumerate() {
        w.push(&read_hr(i as i64, c, PLC, 1, 0, &[1]), 0, &mut out);
    }
    assert_eq!(w.dropped_events, 1);
    w.close_due(ts_ms(10_000), &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].key.0, ip("10.0.0.1"));
    assert_eq!(out[1].key.0, ip("10.0.0.2"));
}

#[test]
fn featuriser_caps_distinct_counts() {
    let evs: Vec<IcsEvent> = (0..50)
        .map(|i| read_hr(i * 10, MASTER, PLC, i as u8, i as u32 * 10, &[1, 2]))
        .collect();
    let mut w = Windower::new(10, 16, 8, 128, false);
    let mut out = Vec::new();
    for e in &evs {
        w.push(e, 0, &mut out);
    }
    w.close_due(ts_ms(10_000), &mut out);
    assert_eq!(
        feat(&out[0], "distinct_units"),
        50.0,
        "units are at most 256"
    );
    assert_eq!(feat(&out[0], "distinct_objects"), 8.0);
    assert_eq!(feat(&out[0], "requests"), 50.0);
}

#[test]
fn featuriser_late_event_joins_the_open_window() {
    let evs = vec![
        read_hr(10_000, MASTER, PLC, 1, 0, &[1]),
        read_hr(25_000, MASTER, PLC, 1, 0, &[1]),
        read_hr(9_000, MASTER, PLC, 1, 0, &[1]),
        read_hr(31_000, MASTER, PLC, 1, 0, &[1]),
    ];
    let ws = windows(&evs, 10);
    assert_eq!(ws.len(), 2);
    assert_eq!(feat(&ws[1], "requests"), 2.0);
    assert!(ws[1].start == ts_ms(20_000));
}

#[rstest]
#[case::constant(vec![vec![5.0, 0.0], vec![5.0, 0.0], vec![5.0, 0.0]], [5.0, 0.0], [1.0, 1.0])]
#[case::rel_floor(vec![vec![100.0, 0.0], vec![100.0, 0.0]], [100.0, 0.0], [10.0, 1.0])]
#[case::std_wins(vec![vec![0.0, 0.0], vec![40.0, 0.0]], [20.0, 0.0], [20.0, 1.0])]
fn scaler_floors_zero_variance(
    #[case] rows: Vec<Vec<f64>>,
    #[case] mean: [f64; 2],
    #[case] scale: [f64; 2],
) {
    let s = Scaler::fit(&rows, &[1.0, 1.0], 0.1);
    assert_eq!(s.mean, mean);
    assert_eq!(s.scale, scale);
    s.validate(2).unwrap();
    // The training rows themselves are near 0 and one extra count is a small step.
    let z = s.transform(&rows[0]);
    assert!(z.iter().all(|v| v.abs() <= 1.0), "{z:?}");
    let mut bumped = rows[0].clone();
    bumped[1] += 1.0;
    assert_eq!(s.transform(&bumped)[1] - z[1], 1.0);
    assert_eq!(s.inverse(&s.transform(&rows[0])), rows[0]);
}

#[test]
fn scaler_handles_empty_ragged_and_bad_input() {
    let s = Scaler::fit(&[], &[1.0, 2.0], 0.1);
    assert_eq!(s.mean, [0.0, 0.0]);
    assert_eq!(s.scale, [1.0, 2.0]);
    let s = Scaler::fit(&[vec![1.0], vec![3.0, 3.0]], &[1.0, 1.0], f64::NAN);
    assert_eq!(s.mean, [3.0, 3.0], "the short row is ignored");
    // A short vector counts as the mean where it has no value.
    assert_eq!(s.transform(&[4.0]), [1.0, 0.0]);
    let bad = Scaler {
        mean: vec![0.0],
        scale: vec![0.0],
    };
    assert!(bad.validate(1).is_err());
    assert!(s.validate(3).is_err());
}

fn blobs() -> Vec<Vec<f64>> {
    // Two tight groups and a few stragglers, deterministic.
    let mut rows = Vec::new();
    for i in 0..60 {
        let e = f64::from(i % 7) * 0.01;
        rows.push(vec![0.0 + e, 1.0 - e, 0.5]);
        rows.push(vec![10.0 - e, 5.0 + e, 0.5]);
    }
    rows
}

fn params() -> FitParams {
    FitParams {
        max_k: 8,
        rows_per_cluster: 10,
        seed: 7,
        n_runs: 3,
        min_cluster_share: 0.0,
    }
}

#[test]
fn kmeans_is_deterministic_and_scores_distance() {
    let rows = blobs();
    let a = KMeansModel::fit(&rows, &params()).unwrap();
    let b = KMeansModel::fit(&rows, &params()).unwrap();
    assert_eq!(a.k, 8);
    let (ja, jb) = (
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap(),
    );
    assert_eq!(ja, jb, "same data, same model bytes");
    let probes = [
        vec![0.0, 1.0, 0.5],
        vec![10.0, 5.0, 0.5],
        vec![50.0, -3.0, 2.0],
    ];
    for p in &probes {
        assert_eq!(a.score(p).to_bits(), b.score(p).to_bits());
    }
    assert!(a.score(&probes[0]) < 0.1);
    assert!(a.score(&probes[1]) < 0.1);
    assert!(a.score(&probes[2]) > 30.0);
    // The reference point is a centroid, and the score is the distance to it.
    let r = a.reference(&probes[2]);
    assert!(a.centroids().contains(&r));
    let d: f64 = r
        .iter()
        .zip(&probes[2])
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    assert_eq!(d.to_bits(), a.score(&probes[2]).to_bits());
    // A round trip through JSON keeps the scores bit for bit.
    let back: KMeansModel = serde_json::from_str(&ja).unwrap();
    assert_eq!(
        back.score(&probes[2]).to_bits(),
        a.score(&probes[2]).to_bits()
    );
}

#[test]
fn kmeans_k_follows_data_size_and_distinct_rows() {
    let rows = vec![vec![1.0, 2.0]; 100];
    let m = KMeansModel::fit(&rows, &params()).unwrap();
    assert_eq!(m.k, 1, "all rows identical");
    assert_eq!(m.score(&[1.0, 2.0]), 0.0);
    let rows: Vec<Vec<f64>> = (0..25).map(|i| vec![f64::from(i)]).collect();
    assert_eq!(KMeansModel::fit(&rows, &params()).unwrap().k, 2);
    assert!(KMeansModel::fit(&[], &params()).is_err());
    assert!(KMeansModel::fit(&[vec![1.0], vec![1.0, 2.0]], &params()).is_err());
    assert!(KMeansModel::fit(&[vec![f64::NAN]], &params()).is_err());
}

/// Regular polling of one channel: 3 requests every second.
fn polling(from_s: i64, to_s: i64, client: &str) -> Vec<IcsEvent> {
    let mut evs = Vec::new();
    for s in from_s..to_s {
        let t = s * 1000;
        evs.push(read_hr(t, client, PLC, 1, 0, &[100, 200, 300]));
        evs.push(read_coils(t + 10, client, PLC, 1, 0, &[true, false]));
        evs.push(read_ir(t + 20, client, PLC, 1, 0, &[1000 + s % 5]));
    }
    evs
}

fn ml_baseline(evs: &[IcsEvent]) -> Baseline {
    let mut l = Learner::new(LearnConfig {
        ml: Some(MlConfig::default()),
        ..LearnConfig::default()
    });
    for e in evs {
        l.observe(e);
    }
    l.finish().unwrap()
}

#[test]
fn learner_trains_a_model_and_baseline_round_trips() {
    let b = ml_baseline(&polling(0, 600, MASTER));
    let m = b.ml.as_ref().expect("a model");
    // 60 windows, the last one still open, the first 6 are the warm-up.
    assert_eq!(m.training.windows, 53);
    assert_eq!(m.training.channels, 1);
    assert_eq!(m.window_s, 10);
    assert_eq!(m.threshold, 4.0, "perfectly regular traffic: the floor");
    let text = b.to_json_pretty();
    assert!(text.contains("\"ml\": {\n    \"algorithm\": \"kmeans\","));
    let back = Baseline::from_json(&text).unwrap();
    assert_eq!(back, b);
    assert_eq!(back.to_json_pretty(), text);
    // Deterministic: learning again gives the same bytes.
    assert_eq!(ml_baseline(&polling(0, 600, MASTER)).to_json_pretty(), text);
    // Without the option there is no model and no `ml` key.
    let mut l = Learner::default();
    for e in polling(0, 600, MASTER) {
        l.observe(&e);
    }
    let plain = l.finish().unwrap();
    assert!(plain.ml.is_none());
    assert!(!plain.to_json_pretty().contains("\"ml\""));
}

#[test]
fn too_little_traffic_gives_no_model() {
    let mut l = MlLearner::default();
    for e in polling(0, 100, MASTER) {
        l.observe(&e);
    }
    assert_eq!(
        l.train().unwrap_err(),
        MlError::TooFewWindows { have: 3, need: 30 }
    );
    assert!(ml_baseline(&polling(0, 100, MASTER)).ml.is_none());
}

#[test]
fn learner_samples_down_beyond_the_cap() {
    let mut l = MlLearner::new(MlConfig {
        max_train_windows: 40,
        min_windows: 10,
        ..MlConfig::default()
    });
    for e in polling(0, 1000, MASTER) {
        l.observe(&e);
    }
    assert_eq!(l.windows(), 93);
    let m = l.train().unwrap();
    assert!(
        m.training.used < 40 && m.training.used >= 20,
        "{}",
        m.training.used
    );
}

#[test]
fn broken_models_are_refused_on_load() {
    let b = ml_baseline(&polling(0, 600, MASTER));
    let text = b.to_json_pretty();
    let cases = [
        ("\"window_s\": 10", "\"window_s\": 0", "window_s 0"),
        (
            "\"algorithm\": \"kmeans\"",
            "\"algorithm\": \"svm\"",
            "algorithm",
        ),
        ("\"requests\",", "\"bytes\",", "other features"),
    ];
    let k = b.ml.as_ref().unwrap().model.k;
    let k_from = format!("\"k\": {k},");
    let k_to = format!("\"k\": {},", k + 1);
    let cases = cases
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
        .chain([(k_from, k_to, "centroids")]);
    for (from, to, want) in cases {
        assert!(text.contains(&from), "{from}");
        let bad = text.replacen(&from, &to, 1);
        let e = Baseline::from_json(&bad).unwrap_err().to_string();
        assert!(e.starts_with("invalid baseline: ml model: "), "{e}");
        assert!(e.contains(want), "{e}");
    }
    // A threshold that is not a number.
    let t = format!("\"threshold\": {}", b.ml.as_ref().unwrap().threshold);
    let bad = text.replacen(&t, "\"threshold\": -1.0", 1);
    assert!(Baseline::from_json(&bad).is_err());
}

#[test]
fn detector_scores_and_explains_a_burst() {
    use crate::detect::{DetectConfig, Engine};
    let b = ml_baseline(&polling(0, 600, MASTER));
    let mut engine = Engine::new(Some(b.clone()), DetectConfig::default());
    let mut alerts = Vec::new();
    let mut evs = polling(600, 900, MASTER);
    // 40 exceptions in the window [700 s, 710 s).
    for i in 0..40 {
        let mut e = read_hr(700_000 + i * 100 + 50, MASTER, PLC, 1, 0, &[]);
        e.outcome = exception(2);
        evs.push(e);
    }
    evs.sort_by_key(|e| e.ts);
    for e in &evs {
        engine.on_event(e, &mut alerts);
    }
    engine.finish(&mut alerts);
    let ml: Vec<_> = alerts
        .iter()
        .filter(|a| a.otwatch.detector == "ml")
        .collect();
    assert_eq!(ml.len(), 1, "{ml:#?}");
    let a = ml[0];
    assert_eq!(a.otwatch.kind, "behaviour_anomaly");
    assert_eq!(a.alert.category, "Behaviour anomaly");
    let s = a.otwatch.ml.as_ref().unwrap();
    assert_eq!(s.features[0].name, "exceptions");
    assert_eq!(s.features[0].value, 40.0);
    assert_eq!(s.features[0].normal, 0.0);
    assert!(s.score > s.threshold);
    assert!(a.otwatch.score.unwrap() > 0.5 && a.otwatch.score.unwrap() < 1.0);
    assert_eq!(a.alert.metadata.mitre_attack_ics, ["T0888"]);
    let e = &a.otwatch.explanation;
    assert!(
        e.starts_with("The channel 10.0.0.1 → 10.0.1.1 (modbus) behaved unlike anything in the baseline in the 10 s from 2023-11-14T22:25:00.000000Z to 2023-11-14T22:25:10.000000Z: 40 exception or bad-status responses (normally 0), "),
        "{e}"
    );
    assert!(e.contains("; anomaly score "), "{e}");
    assert_eq!(a.otwatch.evidence.len(), 5);
    assert!(a.otwatch.evidence[0]
        .summary
        .contains("read_holding_registers"));
    assert!(format!("{engine:?}").contains("\"ml\""));
    // Switched off, the engine has no ML detector.
    let mut cfg = DetectConfig::default();
    cfg.ml.enabled = false;
    let engine = Engine::new(Some(b), cfg);
    assert!(!format!("{engine:?}").contains("\"ml\""));
}

#[test]
fn detector_without_model_does_nothing() {
    use crate::detect::Detector;
    let mut d = MlDetector::new(MlDetectConfig::default());
    let mut out = Vec::new();
    for e in polling(0, 100, MASTER) {
        d.on_event(&e, None, &mut out);
    }
    d.on_tick(ts_ms(200_000), None, &mut out);
    assert!(out.is_empty());
    assert_eq!(d.scored, 0);
}
