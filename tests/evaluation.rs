//! Evaluation on the labelled scenarios of `pcaps/eval/` (made by `pcaps/scripts/make_eval.sh`
//! with pymodbus and asyncua on loopback): learn on `train.pcap`, count false alerts on
//! `normal.pcap` and the hour of `soak.pcap` (other runs of the same normal plant), and score
//! `attacks.pcapng` against `attacks.labels.tsv`. Detection runs as `otwatch detect` does by
//! default, with the shipped rule pack, plus the plant's site file `pcaps/eval/site.toml`.
//! Run with `cargo test --test evaluation -- --nocapture` for the table.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use otwatch::alert::Alert;
use otwatch::baseline::{Baseline, LearnConfig, Learner};
use otwatch::detect::{DetectConfig, Engine};
use otwatch::pipeline::{open_all, run, PipelineConfig};
use otwatch::rules::detector::RulesDetector;
use otwatch::rules::{self, RuleSet};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Slack around a label window, microseconds.
const SLACK_US: i64 = 2_000_000;
/// The target: at most this many false alerts per hour of normal traffic.
const MAX_FA_PER_HOUR: f64 = 1.0;

fn eval_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("pcaps/eval")
        .join(name)
}

/// Capture span (first to last event) in microseconds, with the events.
fn learn(path: &PathBuf) -> Baseline {
    let mut files = open_all(&[path]).unwrap();
    let mut learner = Learner::new(LearnConfig::default());
    run(
        PipelineConfig::default(),
        &mut files,
        &mut |ev| learner.observe(ev),
        &mut |_, _| {},
    )
    .unwrap();
    learner.finish().unwrap()
}

/// The shipped pack and the eval plant's site file.
fn rule_set() -> Arc<RuleSet> {
    let mut sources = rules::embedded_pack();
    sources.extend(rules::read_paths(&[eval_file("site.toml")]).unwrap());
    let report = rules::load(&sources);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    Arc::new(report.set)
}

/// Alerts of a detection run and the capture span (first to last event, µs).
fn detect(baseline: &Baseline, path: &PathBuf) -> (Vec<Alert>, i64) {
    let mut files = open_all(&[path]).unwrap();
    let mut engine = Engine::new(Some(baseline.clone()), DetectConfig::default());
    engine.add_detector(Box::new(RulesDetector::new(rule_set())));
    let mut alerts = Vec::new();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    run(
        PipelineConfig::default(),
        &mut files,
        &mut |ev| {
            let t = ev.ts.as_micros();
            first = first.min(t);
            last = last.max(t);
            engine.on_event(ev, &mut alerts);
        },
        &mut |_, _| {},
    )
    .unwrap();
    engine.finish(&mut alerts);
    (alerts, last.saturating_sub(first).max(1))
}

/// Microseconds since the epoch of `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
fn parse_rfc3339(s: &str) -> i64 {
    let (date, time) = s.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let frac_us: i64 = format!("{frac:0<6}")[..6].parse().unwrap();
    // Days from civil (proleptic Gregorian), H. Hinnant's algorithm.
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]) * 1_000_000) + frac_us
}

#[derive(Debug)]
struct Label {
    start: i64,
    end: i64,
    name: String,
    ip: IpAddr,
}

fn labels() -> Vec<Label> {
    let text = std::fs::read_to_string(eval_file("attacks.labels.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Label {
                start: parse_rfc3339(f[0]),
                end: parse_rfc3339(f[1]),
                name: f[2].to_string(),
                ip: f[3].parse().unwrap(),
            }
        })
        .collect()
}

fn overlaps(a: &Alert, l: &Label) -> bool {
    let (first, last) = (
        a.otwatch.first_seen.as_micros(),
        a.otwatch.last_seen.as_micros(),
    );
    first <= l.end + SLACK_US && last >= l.start - SLACK_US
}

fn involves(a: &Alert, ip: IpAddr) -> bool {
    a.src_ip == ip || a.dest_ip == ip
}

fn describe(a: &Alert) -> String {
    format!(
        "{} {} -> {} x{} [{}]: {}",
        a.timestamp, a.src_ip, a.dest_ip, a.otwatch.count, a.alert.signature, a.otwatch.explanation
    )
}

fn check_explanations(alerts: &[Alert], problems: &mut Vec<String>) {
    for a in alerts {
        let e = &a.otwatch.explanation;
        if e.trim().is_empty() || !e.contains(&a.src_ip.to_string()) {
            problems.push(format!(
                "explanation does not name the source: {}",
                describe(a)
            ));
        }
    }
}

#[test]
fn labelled_scenarios() {
    let train = eval_file("train.pcap");
    if !train.exists() {
        panic!(
            "missing {}: run pcaps/scripts/make_eval.sh",
            train.display()
        );
    }
    let t0 = std::time::Instant::now();
    let baseline = learn(&train);
    let mut problems = Vec::new();

    // Normal traffic: every alert is a false alert.
    let (normal_alerts, normal_us) = detect(&baseline, &eval_file("normal.pcap"));
    let normal_h = normal_us as f64 / 3.6e9;
    let fa_normal = normal_alerts.len() as f64 / normal_h;
    check_explanations(&normal_alerts, &mut problems);

    // An hour of normal traffic.
    let (soak_alerts, soak_us) = detect(&baseline, &eval_file("soak.pcap"));
    let soak_h = soak_us as f64 / 3.6e9;
    check_explanations(&soak_alerts, &mut problems);

    // Attacks: score against the labels.
    let labels = labels();
    let (attack_alerts, attack_us) = detect(&baseline, &eval_file("attacks.pcapng"));
    check_explanations(&attack_alerts, &mut problems);
    let mut rows = Vec::new();
    for l in &labels {
        let sigs: BTreeSet<String> = attack_alerts
            .iter()
            .filter(|a| overlaps(a, l) && involves(a, l.ip))
            .map(|a| {
                let sig = a.alert.signature.trim_start_matches("OTWATCH ").to_string();
                if a.otwatch.aggregated {
                    format!("{sig} (summary)")
                } else {
                    sig
                }
            })
            .collect();
        if sigs.is_empty() {
            problems.push(format!("attack {} not detected", l.name));
        }
        rows.push((l, sigs));
    }
    let false_in_attacks: Vec<&Alert> = attack_alerts
        .iter()
        .filter(|a| !labels.iter().any(|l| overlaps(a, l)))
        .collect();
    // Normal time of the attack capture: its span less the label windows.
    let labelled_us: i64 = labels.iter().map(|l| l.end - l.start).sum();
    let attack_normal_h = (attack_us - labelled_us).max(1) as f64 / 3.6e9;

    println!(
        "\n== otwatch evaluation (pcaps/eval, learnt on train.pcap, {:.1} min) ==",
        baseline_minutes(&train)
    );
    println!("| attack | window | actor | detected | by (alert signatures) |");
    println!("| --- | --- | --- | --- | --- |");
    for (l, sigs) in &rows {
        println!(
            "| `{}` | {:.1} s | {} | {} | {} |",
            l.name,
            (l.end - l.start) as f64 / 1e6,
            l.ip,
            if sigs.is_empty() { "**no**" } else { "yes" },
            sigs.iter().cloned().collect::<Vec<_>>().join("; ")
        );
    }
    let detected = rows.iter().filter(|(_, s)| !s.is_empty()).count();
    println!("\nattacks detected: {detected}/{}", rows.len());
    println!(
        "normal.pcap: {} alerts in {:.1} min = {:.2} false alerts per hour",
        normal_alerts.len(),
        normal_us as f64 / 6e7,
        fa_normal
    );
    println!(
        "attacks.pcapng: {} alerts, {} outside every label window ({:.1} min of unlabelled time = {:.2} per hour)",
        attack_alerts.len(),
        false_in_attacks.len(),
        attack_normal_h * 60.0,
        false_in_attacks.len() as f64 / attack_normal_h
    );
    println!(
        "soak.pcap: {} alerts in {:.1} min = {:.2} false alerts per hour",
        soak_alerts.len(),
        soak_us as f64 / 6e7,
        soak_alerts.len() as f64 / soak_h
    );
    for a in &normal_alerts {
        println!("  false (normal.pcap): {}", describe(a));
    }
    for a in &soak_alerts {
        println!("  false (soak.pcap): {}", describe(a));
    }
    for a in &false_in_attacks {
        println!("  false (attacks.pcapng): {}", describe(a));
    }
    println!("(evaluation took {:.1} s)", t0.elapsed().as_secs_f64());
    let fa_total = (normal_alerts.len() + soak_alerts.len() + false_in_attacks.len()) as f64
        / (normal_h + soak_h + attack_normal_h);
    println!("false alerts per hour over all normal time: {fa_total:.2}");
    if fa_normal > MAX_FA_PER_HOUR {
        problems.push(format!(
            "{fa_normal:.2} false alerts per hour on normal.pcap"
        ));
    }
    let fa_soak = soak_alerts.len() as f64 / soak_h;
    if fa_soak > MAX_FA_PER_HOUR {
        problems.push(format!("{fa_soak:.2} false alerts per hour on soak.pcap"));
    }
    if fa_total > MAX_FA_PER_HOUR {
        problems.push(format!(
            "{fa_total:.2} false alerts per hour over all normal time"
        ));
    }
    assert!(
        problems.is_empty(),
        "evaluation failed:\n{}",
        problems.join("\n")
    );
}

fn baseline_minutes(path: &PathBuf) -> f64 {
    let mut files = open_all(&[path]).unwrap();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    run(
        PipelineConfig::default(),
        &mut files,
        &mut |ev| {
            first = first.min(ev.ts.as_micros());
            last = last.max(ev.ts.as_micros());
        },
        &mut |_, _| {},
    )
    .unwrap();
    (last - first) as f64 / 6e7
}
