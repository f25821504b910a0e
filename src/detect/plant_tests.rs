//! A synthetic plant: 3 masters polling 5 PLCs with jitter for a simulated hour. The baseline
//! is learnt on the first 20 minutes; detection on the rest must give zero alerts, and each
//! injected attack must be detected with the right signature and a correct explanation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::testkit::*;
use super::{DetectConfig, Engine};
use crate::alert::Alert;
use crate::baseline::{Baseline, Learner};
use crate::event::{IcsEvent, OpKind, Outcome, Value};
use std::collections::BTreeSet;
use std::sync::OnceLock;

const MASTERS: [&str; 3] = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
const PLCS: [&str; 5] = ["10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.4", "10.0.1.5"];
const MIN: i64 = 60_000;
const LEARN_END: i64 = 20 * MIN;
const ATTACK_AT: i64 = 40 * MIN;
/// Attack runs start detecting here (10 minutes of normal traffic before the attack).
const WARM_UP: i64 = 30 * MIN;
const ATTACK_END: i64 = 45 * MIN;
const HOUR: i64 = 60 * MIN;

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
    /// Uniform in lo..=hi.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % u64::try_from(hi - lo + 1).unwrap()) as i64
    }
}

/// What the generator changes for an attack (from `ATTACK_AT` on).
#[derive(Clone, Copy, Default)]
struct Twist {
    /// PLC whose input registers freeze.
    freeze_plc: Option<usize>,
    /// (master, plc) that stops polling.
    stop: Option<(usize, usize)>,
    /// (master, plc) that polls twice as fast.
    fast: Option<(usize, usize)>,
    /// (master, plc) whose cycle order changes.
    reorder: Option<(usize, usize)>,
}

impl Twist {
    fn is_none(&self) -> bool {
        self.freeze_plc.is_none()
            && self.stop.is_none()
            && self.fast.is_none()
            && self.reorder.is_none()
    }
}

fn ir_value(p: usize, k: usize, t_ms: i64, rng: &mut Rng) -> i64 {
    let period_s = 600.0 + 60.0 * k as f64;
    let phase = 2.0 * std::f64::consts::PI * (t_ms as f64 / 1000.0) / period_s;
    1000 + 100 * k as i64 + 10 * p as i64 + (50.0 * phase.sin()).round() as i64 + rng.range(-2, 2)
}

/// The plant's traffic from `from` to `to` ms, in time order.
fn plant(from: i64, to: i64, twist: Twist) -> Vec<IcsEvent> {
    let mut evs: Vec<(i64, usize, u32, IcsEvent)> = Vec::new();
    let mut setpoint = [500i64; 5];
    let mut frozen: [Option<Vec<i64>>; 5] = Default::default();
    // Setpoint writes by master 0, generated first so reads see them.
    let mut writes: Vec<(i64, usize, i64)> = Vec::new();
    let mut per_plc: [Vec<(i64, i64)>; 5] = Default::default();
    let mut wr = Rng(0x5eed_0001);
    for (p, _) in PLCS.iter().enumerate() {
        let mut t = 5_000 + p as i64 * 3_000;
        while t < to {
            let v = wr.range(470, 530);
            writes.push((t, p, v));
            t += wr.range(20_000, 60_000);
        }
    }
    writes.sort_unstable();
    for (t, p, v) in &writes {
        per_plc[*p].push((*t, *v));
    }
    for (t, p, v) in &writes {
        if *t >= from && *t < to {
            evs.push((*t, 99, 0, write_hr(*t, MASTERS[0], PLCS[*p], 1, 4, *v)));
        }
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (m, master) in MASTERS.iter().enumerate() {
        for (p, plc) in PLCS.iter().enumerate() {
            let ch = m * 5 + p;
            let period = 1000 + 100 * ((m + 2 * p) % 5) as i64;
            let mut nominal = 37 * ch as i64;
            let mut seq = 0u32;
            while nominal < to {
                let attacked = nominal >= ATTACK_AT;
                if attacked && twist.stop == Some((m, p)) {
                    break;
                }
                let jitter = rng.range(-period / 20, period / 20);
                let t = nominal + jitter;
                let step = if attacked && twist.fast == Some((m, p)) {
                    period / 2
                } else {
                    period
                };
                nominal += step;
                let (dt1, dt2) = (rng.range(8, 12), rng.range(16, 24));
                // Values as the PLC would answer at time t.
                let w = &per_plc[p];
                let i = w.partition_point(|(wt, _)| *wt < t);
                let sp = if i == 0 { setpoint[p] } else { w[i - 1].1 };
                setpoint[p] = sp;
                let hr = [100 + p as i64, 200, 300, 0, sp, 1, 2, 3, 4, 5];
                let coils: Vec<bool> = (0..16)
                    .map(|k| {
                        if k < 4 {
                            (t / (60_000 * (k + 1))) % 2 == 1
                        } else {
                            k % 3 == 0
                        }
                    })
                    .collect();
                let mut ir: Vec<i64> = (0..8).map(|k| ir_value(p, k, t, &mut rng)).collect();
                if attacked && twist.freeze_plc == Some(p) {
                    ir = frozen[p].get_or_insert_with(|| ir.clone()).clone();
                }
                if t < from {
                    continue;
                }
                let reorder = attacked && twist.reorder == Some((m, p));
                let (t_coil, t_ir) = if reorder {
                    (t + dt2, t + dt1)
                } else {
                    (t + dt1, t + dt2)
                };
                evs.push((t, ch, seq, read_hr(t, master, plc, 1, 0, &hr)));
                evs.push((
                    t_coil,
                    ch,
                    seq + 1,
                    read_coils(t_coil, master, plc, 1, 0, &coils),
                ));
                evs.push((t_ir, ch, seq + 2, read_ir(t_ir, master, plc, 1, 0, &ir)));
                seq += 3;
            }
        }
    }
    evs.retain(|(t, ..)| *t >= from && *t < to);
    evs.sort_by_key(|(t, ch, seq, _)| (*t, *ch, *seq));
    evs.into_iter().map(|(.., e)| e).collect()
}

fn baseline() -> &'static Baseline {
    static B: OnceLock<Baseline> = OnceLock::new();
    B.get_or_init(|| {
        let mut l = Learner::default();
        for e in plant(0, LEARN_END, Twist::default()) {
            l.observe(&e);
        }
        l.finish().unwrap()
    })
}

fn detect(evs: &[IcsEvent]) -> Vec<Alert> {
    let mut e = Engine::new(Some(baseline().clone()), DetectConfig::default());
    let mut out = Vec::new();
    for ev in evs {
        e.on_event(ev, &mut out);
    }
    e.finish(&mut out);
    out
}

/// Normal traffic of the detection window around the attack, with `extra` events merged in.
fn with_attack(twist: Twist, extra: Vec<IcsEvent>) -> Vec<IcsEvent> {
    static NORMAL: OnceLock<Vec<IcsEvent>> = OnceLock::new();
    let mut evs = if twist.is_none() {
        NORMAL
            .get_or_init(|| plant(WARM_UP, ATTACK_END, Twist::default()))
            .clone()
    } else {
        plant(WARM_UP, ATTACK_END, twist)
    };
    evs.extend(extra);
    evs.sort_by_key(|e| e.ts);
    evs
}

fn kinds(a: &[Alert]) -> BTreeSet<&'static str> {
    a.iter().map(|x| x.otwatch.kind).collect()
}

fn explain(a: &[Alert], kind: &str) -> String {
    a.iter()
        .find(|x| x.otwatch.kind == kind && !x.otwatch.aggregated)
        .map(|x| x.otwatch.explanation.clone())
        .unwrap_or_else(|| panic!("no {kind} alert in {:#?}", kinds(a)))
}

fn check(alerts: &[Alert], expected: &[&str], allowed_extra: &[&str]) {
    let got = kinds(alerts);
    for k in expected {
        assert!(got.contains(k), "missing {k}; got {got:?}");
    }
    for k in &got {
        assert!(
            expected.contains(k) || allowed_extra.contains(k),
            "unexpected {k}: {}",
            explain(alerts, k)
        );
    }
}

#[test]
fn baseline_models_the_plant() {
    let b = baseline();
    assert_eq!(b.assets.len(), 8);
    assert_eq!(b.channels.len(), 15);
    for ch in &b.channels {
        let periodic = ch.polls.iter().filter(|p| p.periodic).count();
        assert_eq!(periodic, 3, "{} {:?}", ch.ref_name(), ch.polls);
        assert_eq!(ch.cycle.len(), 3, "{}", ch.ref_name());
        assert_eq!(b.dropped, crate::baseline::Dropped::default());
    }
    let ch = b
        .channel(
            ip("10.0.0.1"),
            ip("10.0.1.2"),
            crate::event::AppProto::Modbus,
        )
        .unwrap();
    let w = ch.objects["u1/holding_register/4"]
        .written
        .as_ref()
        .unwrap();
    assert!(w.min >= 470.0 && w.max <= 530.0 && w.count >= 20, "{w:?}");
}

#[test]
fn steady_plant_gives_zero_alerts() {
    let evs = plant(LEARN_END, HOUR, Twist::default());
    assert!(evs.len() > 80_000, "{}", evs.len());
    let alerts = detect(&evs);
    assert!(
        alerts.is_empty(),
        "{} false alarms, first: {}",
        alerts.len(),
        alerts[0].to_json_line()
    );
}

#[test]
fn rogue_setpoint_write() {
    let a = detect(&with_attack(
        Twist::default(),
        vec![write_hr(ATTACK_AT + 1, ROGUE, PLCS[1], 1, 4, 9999)],
    ));
    check(
        &a,
        &["new_asset", "new_channel", "written_value_out_of_range"],
        &[],
    );
    let e = explain(&a, "written_value_out_of_range");
    assert!(
        e.starts_with("10.0.0.66 wrote 9999 to holding register 4 on 10.0.1.2 unit 1; in the baseline only 10.0.0.1 wrote it, with values 4"),
        "{e}"
    );
    let alert = a
        .iter()
        .find(|x| x.otwatch.kind == "written_value_out_of_range")
        .unwrap();
    assert_eq!(alert.alert.severity, 1);
    assert_eq!(alert.alert.metadata.mitre_attack_ics, ["T0836"]);
    assert!(alert
        .otwatch
        .baseline_ref
        .as_deref()
        .unwrap()
        .starts_with("channels[10.0.0.1>10.0.1.2 modbus].objects[u1/holding_register/4]"));
}

#[test]
fn known_master_writes_9999() {
    let a = detect(&with_attack(
        Twist::default(),
        vec![write_hr(ATTACK_AT + 1, MASTERS[0], PLCS[2], 1, 4, 9999)],
    ));
    check(&a, &["written_value_out_of_range"], &[]);
    assert!(explain(&a, "written_value_out_of_range").contains("10.0.0.1 itself wrote it"));
}

#[test]
fn novelty_attacks() {
    let m = MASTERS[1];
    let p = PLCS[0];
    let a = detect(&with_attack(
        Twist::default(),
        vec![write_coil(ATTACK_AT, m, p, 1, 3, true)],
    ));
    check(&a, &["new_function", "write_to_read_only"], &[]);
    assert!(explain(&a, "write_to_read_only").starts_with("10.0.0.2 wrote ON (1) to coil 3 on 10.0.1.1 unit 1; in the baseline these addresses were only ever read (by 10.0.0.1, 10.0.0.2 and 10.0.0.3)"));

    let diag = modbus(
        ATTACK_AT,
        m,
        p,
        1,
        8,
        "diagnostics",
        OpKind::Diagnostic,
        vec![],
        Outcome::Ok,
    );
    let a = detect(&with_attack(Twist::default(), vec![diag]));
    check(&a, &["new_function"], &[]);

    let a = detect(&with_attack(
        Twist::default(),
        vec![read_hr(ATTACK_AT, m, p, 7, 0, &[1])],
    ));
    check(&a, &["new_unit_id"], &[]);

    let a = detect(&with_attack(
        Twist::default(),
        vec![read_hr(ATTACK_AT, m, p, 1, 1000, &[0; 10])],
    ));
    check(&a, &["new_object_read"], &[]);
    assert!(explain(&a, "new_object_read")
        .contains("read holding registers 1000–1009 on 10.0.1.1 unit 1"));
}

#[test]
fn process_value_attacks() {
    let a = detect(&with_attack(
        Twist {
            freeze_plc: Some(2),
            ..Twist::default()
        },
        vec![],
    ));
    check(&a, &["value_frozen"], &[]);
    assert!(explain(&a, "value_frozen").starts_with("input register "));

    let mut spike = read_ir(
        ATTACK_AT,
        MASTERS[1],
        PLCS[3],
        1,
        0,
        &[5000, 1100, 1200, 1300, 1400, 1500, 1600, 1700],
    );
    spike.accesses[0].values.list_mut()[1] = Value::Int(1100 + 30);
    let a = detect(&with_attack(Twist::default(), vec![spike]));
    check(&a, &["read_value_out_of_range"], &["value_jump"]);
    assert!(explain(&a, "read_value_out_of_range")
        .starts_with("input register 0 on 10.0.1.4 unit 1 read 5000 (by 10.0.0.2)"));
}

#[test]
fn timing_attacks() {
    let a = detect(&with_attack(
        Twist {
            stop: Some((1, 3)),
            ..Twist::default()
        },
        vec![],
    ));
    check(&a, &["poll_stopped"], &[]);
    assert!(explain(&a, "poll_stopped").starts_with("10.0.0.2 stopped polling 10.0.1.4 unit 1"));

    let a = detect(&with_attack(
        Twist {
            fast: Some((2, 4)),
            ..Twist::default()
        },
        vec![],
    ));
    check(&a, &["poll_period_changed"], &[]);
    assert!(explain(&a, "poll_period_changed").starts_with("10.0.0.3 now polls 10.0.1.5 unit 1"));

    let a = detect(&with_attack(
        Twist {
            reorder: Some((0, 0)),
            ..Twist::default()
        },
        vec![],
    ));
    check(&a, &["poll_order_changed"], &[]);

    let burst: Vec<IcsEvent> = (0..300)
        .map(|i| {
            read_hr(
                ATTACK_AT + i * 10,
                MASTERS[0],
                PLCS[0],
                1,
                0,
                &[100, 200, 300, 0, 500, 1, 2, 3, 4, 5],
            )
        })
        .collect();
    let a = detect(&with_attack(Twist::default(), burst));
    check(
        &a,
        &["traffic_burst"],
        &["poll_period_changed", "poll_order_changed"],
    );
}

#[test]
fn scan_attacks() {
    let t = ATTACK_AT;
    let fc: Vec<IcsEvent> = (1..=20)
        .map(|c| {
            modbus(
                t + i64::from(c) * 50,
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
    let a = detect(&with_attack(Twist::default(), fc));
    check(
        &a,
        &["function_code_scan"],
        &["new_asset", "new_channel", "exception_burst"],
    );

    let units: Vec<IcsEvent> = (1..=30)
        .map(|u| read_hr(t + i64::from(u) * 50, ROGUE, PLCS[1], u, 0, &[101]))
        .collect();
    let a = detect(&with_attack(Twist::default(), units));
    check(&a, &["unit_id_scan"], &["new_asset", "new_channel"]);

    let hr = [101, 200, 300, 0, 500, 1, 2, 3, 4, 5];
    let sweep: Vec<IcsEvent> = (0..300)
        .map(|r| {
            read_hr(
                t + i64::from(r) * 20,
                ROGUE,
                PLCS[1],
                1,
                r,
                &[hr.get(r as usize).copied().unwrap_or(0)],
            )
        })
        .collect();
    let a = detect(&with_attack(Twist::default(), sweep));
    check(&a, &["address_sweep"], &["new_asset", "new_channel"]);

    let exc: Vec<IcsEvent> = (0..30)
        .map(|i| {
            let mut e = read_hr(t + i * 500, MASTERS[0], PLCS[0], 1, 0, &[]);
            e.outcome = exception(2);
            e
        })
        .collect();
    let a = detect(&with_attack(Twist::default(), exc));
    check(
        &a,
        &["exception_burst"],
        &["poll_order_changed", "poll_period_changed"],
    );

    let mut bad = read_hr(
        t,
        MASTERS[0],
        PLCS[0],
        1,
        0,
        &[100, 200, 300, 0, 500, 1, 2, 3, 4, 5],
    );
    bad.violations = vec!["length_mismatch"];
    let a = detect(&with_attack(Twist::default(), vec![bad]));
    check(&a, &["protocol_violation"], &["poll_order_changed"]);
}

#[test]
fn repeats_are_aggregated_and_output_is_deterministic() {
    let spam: Vec<IcsEvent> = (0..600)
        .map(|i| {
            write_hr(
                ATTACK_AT + i * 1000 - 10 * MIN,
                MASTERS[0],
                PLCS[2],
                1,
                4,
                9999,
            )
        })
        .collect();
    let evs = with_attack(Twist::default(), spam);
    let a = detect(&evs);
    let hits: Vec<&Alert> = a
        .iter()
        .filter(|x| x.otwatch.kind == "written_value_out_of_range")
        .collect();
    assert!(!hits[0].otwatch.aggregated);
    assert_eq!(hits[0].otwatch.count, 1);
    let total: u64 = hits.iter().map(|h| h.otwatch.count).sum();
    assert_eq!(total, 600);
    assert!(hits.len() <= 4, "{}", hits.len());
    assert!(hits[1].otwatch.aggregated);
    assert_eq!(hits[1].otwatch.evidence.len(), 5);
    assert!(
        hits[1]
            .otwatch
            .explanation
            .starts_with("Repeated 299 more times from "),
        "{}",
        hits[1].otwatch.explanation
    );
    let again = detect(&evs);
    let l1: Vec<String> = a.iter().map(Alert::to_json_line).collect();
    let l2: Vec<String> = again.iter().map(Alert::to_json_line).collect();
    assert_eq!(l1, l2);
}

#[test]
fn detectors_on_threads_give_the_same_alerts_in_the_same_order() {
    // Attacks of every family at once: tick-driven (a poll stops), value, novelty and
    // repeated alerts (aggregated), over many batches of events.
    let mut extra: Vec<IcsEvent> = (0..400)
        .map(|i| write_hr(ATTACK_AT + i * 1000, MASTERS[0], PLCS[2], 1, 4, 9999))
        .collect();
    extra.push(write_coil(ATTACK_AT, MASTERS[1], PLCS[0], 1, 3, true));
    extra.push(read_hr(ATTACK_AT, MASTERS[1], PLCS[0], 7, 0, &[1]));
    // One event that several detectors alert on (novelty and values): their alerts must keep
    // the engine's detector order.
    extra.push(write_hr(ATTACK_AT + 500, MASTERS[2], PLCS[4], 1, 4, 9999));
    extra.push(write_hr(ATTACK_AT + 700, "10.0.0.66", PLCS[4], 1, 4, 9999));
    let evs = with_attack(
        Twist {
            freeze_plc: Some(3),
            stop: Some((1, 1)),
            ..Twist::default()
        },
        extra,
    );
    assert!(evs.len() > 3 * 512, "{}", evs.len());
    let lines = |a: Vec<Alert>| a.iter().map(Alert::to_json_line).collect::<Vec<_>>();
    let one = lines(detect(&evs));
    let kinds: BTreeSet<String> = one
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["otwatch"]["kind"].as_str().map(str::to_string))
        .collect();
    for k in [
        "poll_stopped",
        "written_value_out_of_range",
        "new_unit_id",
        "value_frozen",
    ] {
        assert!(kinds.contains(k), "{k} missing from {kinds:?}");
    }
    let per_event = |a: &[String], packet: &str| {
        a.iter()
            .filter(|l| l.contains(packet))
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["otwatch"]["detector"].as_str().map(str::to_string))
            .collect::<Vec<_>>()
    };
    let rogue = per_event(&one, "\"src_ip\":\"10.0.0.66\"");
    assert!(rogue.len() >= 2, "{rogue:?}");
    let counters = {
        let mut e = Engine::new(Some(baseline().clone()), DetectConfig::default());
        let mut out = Vec::new();
        for ev in &evs {
            e.on_event(ev, &mut out);
        }
        e.finish(&mut out);
        e.counters()
    };
    assert!(counters.iter().any(|(k, _)| k == "values.states_dropped"));
    assert!(counters.iter().any(|(k, n)| k == "raised" && *n > 0));
    for threads in [2, 3, 7] {
        let mut e =
            Engine::new(Some(baseline().clone()), DetectConfig::default()).parallel(threads);
        let mut out = Vec::new();
        for ev in &evs {
            e.on_event(ev, &mut out);
        }
        e.finish(&mut out);
        assert_eq!(e.counters(), counters, "{threads} threads");
        let got = lines(out);
        let first_diff = got.iter().zip(&one).position(|(a, b)| a != b);
        assert!(
            got.len() == one.len() && first_diff.is_none(),
            "{threads} threads: {} vs {} alerts, first difference at {first_diff:?}",
            got.len(),
            one.len()
        );
    }
}
