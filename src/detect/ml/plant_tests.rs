//! A synthetic plant for the ML detector: 3 masters polling 4 PLCs with jitter, setpoint
//! writes, drifting process values and varying response times. The model is learnt on the
//! first 30 minutes; the next 30 minutes of normal traffic must give no ML alert, and each
//! injected attack must give one whose leading feature is the right one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::MlConfig;
use crate::alert::Alert;
use crate::baseline::{Baseline, LearnConfig, Learner};
use crate::detect::testkit::*;
use crate::detect::{DetectConfig, Engine};
use crate::event::{IcsEvent, OpKind};
use std::sync::OnceLock;

const MASTERS: [&str; 3] = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
const PLCS: [&str; 4] = ["10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.4"];
const MIN: i64 = 60_000;
const LEARN_END: i64 = 30 * MIN;
const HOLD_OUT_END: i64 = 60 * MIN;
/// Attack runs: 5 minutes of normal traffic, the attack at minute 35, then 5 more minutes.
const RUN_START: i64 = 30 * MIN;
const ATTACK_AT: i64 = 35 * MIN + 500;
const RUN_END: i64 = 40 * MIN;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % u64::try_from(hi - lo + 1).unwrap()) as i64
    }
}

/// The plant's traffic in `[from, to)` ms, in time order (the same for any `from`).
fn plant(from: i64, to: i64) -> Vec<IcsEvent> {
    let mut evs: Vec<IcsEvent> = Vec::new();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for (m, master) in MASTERS.iter().enumerate() {
        for (p, plc) in PLCS.iter().enumerate() {
            let period = 1000 + 100 * ((m + 2 * p) % 5) as i64;
            let mut nominal = 53 * (m * 4 + p) as i64;
            let mut next_write = 7_000 + 1_000 * p as i64;
            while nominal < to {
                let t = nominal + rng.range(-period / 20, period / 20);
                nominal += period;
                let lat = rng.range(900, 2500) as u64;
                let phase = (t as f64 / 1000.0) / (500.0 + 50.0 * p as f64);
                let level = 1000 + (40.0 * (phase * std::f64::consts::TAU).sin()) as i64;
                let ir: Vec<i64> = (0..8).map(|k| level + k + rng.range(-2, 2)).collect();
                let hr = [100 + p as i64, 200, 300, 0, 500, 1, 2, 3, 4, 5];
                let coils: Vec<bool> = (0..16).map(|k| (t / (30_000 * (k + 1))) % 2 == 1).collect();
                let mut cycle = vec![
                    read_hr(t, master, plc, 1, 0, &hr),
                    read_coils(t + 10, master, plc, 1, 0, &coils),
                    read_ir(t + 20, master, plc, 1, 0, &ir),
                ];
                if m == 0 && t >= next_write {
                    cycle.push(write_hr(t + 30, master, plc, 1, 4, rng.range(470, 530)));
                    next_write = t + rng.range(20_000, 60_000);
                }
                for mut e in cycle {
                    e.latency_us = Some(lat);
                    if e.ts >= ts_ms(from) && e.ts < ts_ms(to) {
                        evs.push(e);
                    }
                }
            }
        }
    }
    evs.sort_by_key(|e| e.ts);
    evs
}

fn baseline() -> &'static Baseline {
    static B: OnceLock<Baseline> = OnceLock::new();
    B.get_or_init(|| {
        let mut l = Learner::new(LearnConfig {
            ml: Some(MlConfig::default()),
            ..LearnConfig::default()
        });
        for e in plant(0, LEARN_END) {
            l.observe(&e);
        }
        l.finish().unwrap()
    })
}

/// The ML alerts of the engine (all detectors on) over `evs`.
fn ml_alerts(evs: &[IcsEvent]) -> Vec<Alert> {
    let mut engine = Engine::new(Some(baseline().clone()), DetectConfig::default());
    let mut out = Vec::new();
    for e in evs {
        engine.on_event(e, &mut out);
    }
    engine.finish(&mut out);
    out.retain(|a| a.otwatch.detector == "ml" && !a.otwatch.aggregated);
    out
}

fn with_attack(extra: Vec<IcsEvent>) -> Vec<IcsEvent> {
    static NORMAL: OnceLock<Vec<IcsEvent>> = OnceLock::new();
    let mut evs = NORMAL.get_or_init(|| plant(RUN_START, RUN_END)).clone();
    evs.extend(extra);
    evs.sort_by_key(|e| e.ts);
    evs
}

fn top_features(a: &Alert) -> Vec<&'static str> {
    a.otwatch
        .ml
        .as_ref()
        .unwrap()
        .features
        .iter()
        .map(|f| f.name)
        .collect()
}

/// Exactly one ML alert, on the attacker's channel, in the attack's window.
fn one_alert(alerts: &[Alert], client: &str, server: &str) -> Alert {
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = alerts[0].clone();
    assert_eq!(a.src_ip, ip(client));
    assert_eq!(a.dest_ip, ip(server));
    let s = a.otwatch.ml.as_ref().unwrap();
    assert_eq!(s.window_start, ts_ms(35 * MIN));
    assert!(s.score > s.threshold);
    a
}

#[test]
fn model_is_learnt_from_the_plant() {
    let m = baseline().ml.as_ref().unwrap();
    // 12 channels × (180 windows − the partial first − the open last − 6 warm-up).
    assert_eq!(m.training.channels, 12);
    assert_eq!(m.training.windows, 12 * 172);
    assert_eq!(m.training.k, 8);
    assert!(m.threshold >= 4.0 && m.threshold < 20.0, "{m:#?}");
    assert!(m.threshold >= m.threshold_rule.quantile_score * 1.5);
}

#[test]
fn held_out_normal_traffic_gives_no_ml_alert() {
    let evs = plant(LEARN_END, HOLD_OUT_END);
    assert!(evs.len() > 50_000, "{}", evs.len());
    let mut engine = Engine::new(Some(baseline().clone()), DetectConfig::default());
    let mut out = Vec::new();
    for e in &evs {
        engine.on_event(e, &mut out);
    }
    engine.finish(&mut out);
    let ml: Vec<&Alert> = out.iter().filter(|a| a.otwatch.detector == "ml").collect();
    assert!(ml.is_empty(), "{}", ml[0].to_json_line());
}

#[test]
fn exception_burst_is_explained_by_exceptions() {
    let burst: Vec<IcsEvent> = (0..25)
        .map(|i| {
            let mut e = read_hr(ATTACK_AT + i * 300, MASTERS[1], PLCS[2], 1, 900, &[]);
            e.outcome = exception(2);
            e
        })
        .collect();
    let a = ml_alerts(&with_attack(burst));
    let a = one_alert(&a, MASTERS[1], PLCS[2]);
    assert_eq!(top_features(&a)[0], "exceptions");
    assert!(
        a.otwatch
            .explanation
            .contains(": 25 exception or bad-status responses (normally 0)"),
        "{}",
        a.otwatch.explanation
    );
    assert_eq!(a.alert.metadata.mitre_attack_ics, ["T0888"]);
}

#[test]
fn request_flood_is_explained_by_requests() {
    let flood: Vec<IcsEvent> = (0..1500)
        .map(|i| read_hr(ATTACK_AT + i * 5, MASTERS[2], PLCS[0], 1, 0, &[100]))
        .collect();
    let a = ml_alerts(&with_attack(flood));
    let a = one_alert(&a, MASTERS[2], PLCS[0]);
    let top = top_features(&a);
    assert!(["requests", "op_read"].contains(&top[0]), "{top:?}");
    // Read operations equal requests here: said once.
    assert!(
        !(top.contains(&"op_read") && top.contains(&"requests")),
        "{top:?}"
    );
    assert_eq!(a.alert.metadata.mitre_attack_ics, ["T0814"]);
}

#[test]
fn write_burst_is_explained_by_writes() {
    let writes: Vec<IcsEvent> = (0..40)
        .map(|i| write_hr(ATTACK_AT + i * 200, MASTERS[0], PLCS[3], 1, 4, 480 + i % 40))
        .collect();
    let a = ml_alerts(&with_attack(writes));
    let a = one_alert(&a, MASTERS[0], PLCS[3]);
    assert_eq!(top_features(&a)[0], "op_write");
    assert_eq!(a.alert.metadata.mitre_attack_ics, ["T0855", "T0836"]);
}

#[test]
fn rogue_scans_are_flagged() {
    // Function code scan from an unknown host: every probe answered with an exception.
    let scan: Vec<IcsEvent> = (1..=30u32)
        .map(|c| {
            modbus(
                ATTACK_AT + i64::from(c) * 100,
                ROGUE,
                PLCS[1],
                1,
                c,
                "probe",
                OpKind::Other,
                vec![],
                exception(1),
            )
        })
        .collect();
    let a = ml_alerts(&with_attack(scan));
    let a = one_alert(&a, ROGUE, PLCS[1]);
    let top = top_features(&a);
    assert!(top.contains(&"distinct_functions"), "{top:?}");
    assert!(top.contains(&"exceptions"), "{top:?}");

    // Address sweep: 200 single-register reads of addresses never read.
    let sweep: Vec<IcsEvent> = (0..200u32)
        .map(|r| {
            read_hr(
                ATTACK_AT + i64::from(r) * 40,
                ROGUE,
                PLCS[1],
                1,
                100 + r,
                &[0],
            )
        })
        .collect();
    let a = ml_alerts(&with_attack(sweep));
    let a = one_alert(&a, ROGUE, PLCS[1]);
    let top = top_features(&a);
    assert!(top.contains(&"distinct_objects"), "{top:?}");
}

#[test]
fn detection_is_deterministic() {
    let burst: Vec<IcsEvent> = (0..25)
        .map(|i| {
            let mut e = read_hr(ATTACK_AT + i * 300, MASTERS[1], PLCS[2], 1, 900, &[]);
            e.outcome = exception(2);
            e
        })
        .collect();
    let evs = with_attack(burst);
    let a: Vec<String> = ml_alerts(&evs).iter().map(Alert::to_json_line).collect();
    let b: Vec<String> = ml_alerts(&evs).iter().map(Alert::to_json_line).collect();
    assert_eq!(a, b);
    assert_eq!(a.len(), 1);
}

#[test]
fn held_out_scores_stay_well_below_the_threshold() {
    use crate::detect::Detector;
    let m = baseline().ml.as_ref().unwrap();
    let mut d = super::MlDetector::new(super::MlDetectConfig::default());
    let mut out = Vec::new();
    for e in plant(LEARN_END, HOLD_OUT_END) {
        d.on_event(&e, Some(baseline()), &mut out);
    }
    d.on_tick(ts_ms(HOLD_OUT_END), Some(baseline()), &mut out);
    assert!(out.is_empty());
    // 12 channels × 180 windows, less the partial first (the tick at the end closes the last).
    assert_eq!(d.scored, 12 * 179);
    assert!(
        d.max_score < 0.8 * m.threshold,
        "max held-out score {} vs threshold {}",
        d.max_score,
        m.threshold
    );
}
