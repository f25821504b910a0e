//! `otwatch rules check` and rules in `detect` and `audit`, on the shipped captures and the
//! rule files of `tests/data/rules/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

fn otwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_otwatch"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("OTWATCH_LOG")
        .output()
        .expect("run otwatch")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const GOOD: &str = "tests/data/rules/good";

/// Alerts of the rules detector: signature id → (count of records, total occurrences).
fn rule_alerts(stdout: &[u8]) -> BTreeMap<u64, (usize, u64)> {
    let mut m = BTreeMap::new();
    for l in text(stdout).lines() {
        let a: serde_json::Value = serde_json::from_str(l).unwrap();
        if a["otwatch"]["detector"] == "rules" {
            assert_eq!(a["otwatch"]["kind"], "rule");
            assert_eq!(a["alert"]["category"], "Policy violation");
            let e = m
                .entry(a["alert"]["signature_id"].as_u64().unwrap())
                .or_insert((0, 0));
            e.0 += 1;
            e.1 += a["otwatch"]["count"].as_u64().unwrap();
        }
    }
    m
}

#[test]
fn check_good_dir_exits_0_with_notices_and_summary() {
    let out = otwatch(&["rules", "check", GOOD]);
    let s = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{s}{}", text(&out.stderr));
    assert!(
        s.contains("tests/data/rules/good/20-opcua.toml:32:6: notice: rule 2003 "),
        "{s}"
    );
    assert_eq!(
        s.lines().last(),
        Some("2 files: 6 rules loaded (5 enabled, 1 disabled), 0 errors")
    );
}

#[test]
fn check_bad_file_exits_1_with_positions() {
    let out = otwatch(&["rules", "check", "tests/data/rules/bad"]);
    assert_eq!(out.status.code(), Some(1));
    let s = text(&out.stdout);
    let lines: Vec<&str> = s.lines().collect();
    assert!(
        lines[0].starts_with("tests/data/rules/bad/bad.toml:10:1: unknown field \"adress\""),
        "{s}"
    );
    assert_eq!(
        lines[1],
        "tests/data/rules/bad/unit.toml:10:12: unit 300 is out of range (0-255)"
    );
    assert_eq!(
        lines[2],
        "2 files: 0 rules loaded (0 enabled, 0 disabled), 2 errors"
    );
    // A path that does not exist: exit 2.
    let out = otwatch(&["rules", "check", "tests/data/rules/nothing-here"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no such file"));
}

#[test]
fn detect_with_rules_and_no_baseline_fires_on_the_attack_capture() {
    let out = otwatch(&["detect", "--rules", GOOD, "pcaps/modbus_attack.pcapng"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = rule_alerts(&out.stdout);
    // Writes from the attacker, its FC 8 diagnostics, and the function-code scan's burst.
    for id in [1001, 1002, 1003] {
        assert!(got.contains_key(&id), "rule {id} did not fire: {got:?}");
    }
    assert!(!got.contains_key(&2001));
    // Same input, same output.
    let again = otwatch(&["detect", "--rules", GOOD, "pcaps/modbus_attack.pcapng"]);
    assert_eq!(again.stdout, out.stdout);
    // No baseline: no novelty alerts.
    assert!(!text(&out.stdout).contains("\"detector\":\"novelty\""));
}

#[test]
fn detect_with_rules_fires_on_opcua_sessions() {
    let out = otwatch(&["detect", "--rules", GOOD, "pcaps/opcua_plant.pcap"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = rule_alerts(&out.stdout);
    assert!(got.contains_key(&2001), "{got:?}");
    assert!(got.contains_key(&2002), "{got:?}");
    assert!(!got.contains_key(&2003), "a disabled rule fired");
    let s = text(&out.stdout);
    assert!(s.contains("sent OpenSecureChannel to 127.0.0.10 (security mode None, policy None)"));
}

#[test]
fn no_rules_and_bad_rules() {
    let out = otwatch(&["detect", "--no-rules", "pcaps/modbus_attack.pcapng"]);
    assert!(out.status.success());
    assert!(rule_alerts(&out.stdout).is_empty());
    let out = otwatch(&[
        "detect",
        "--rules",
        "tests/data/rules/bad/unit.toml",
        "pcaps/modbus_attack.pcapng",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("unit.toml:10:12: unit 300"));
    let out = otwatch(&[
        "detect",
        "--rules",
        "tests/data/rules/nothing-here",
        "pcaps/modbus_attack.pcapng",
    ]);
    assert_eq!(out.status.code(), Some(2));
    // The shipped pack loads by default.
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules").is_dir());
    let out = otwatch(&["detect", "pcaps/modbus_attack.pcapng"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn audit_counts_rules() {
    let out = otwatch(&[
        "audit",
        "--learn-for",
        "20s",
        "--rules",
        GOOD,
        "pcaps/modbus_plant.pcap",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("  rules     5 enabled, 1 disabled, "), "{s}");
}

/// Suricata rules run through the engine like native ones: per sid, the occurrences in
/// `detect`'s alerts (aggregated records summed) equal the events the rule matches directly.
#[test]
fn detect_with_suricata_rules_counts_every_matching_transaction() {
    use otwatch::pipeline::{open_all, run, PipelineConfig};
    use otwatch::rules::suricata::parse_rules;
    let rules_path = "tests/data/suricata/modbus.rules";
    let capture = "pcaps/modbus_attack.pcapng";
    let out = otwatch(&["detect", "--rules", rules_path, capture]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Suricata rules not loaded"),
        "{}",
        text(&out.stderr)
    );
    let got = rule_alerts(&out.stdout);

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (rules, _) = parse_rules(&std::fs::read_to_string(root.join(rules_path)).unwrap());
    let mut want: BTreeMap<u64, u64> = BTreeMap::new();
    let mut thresholded: BTreeMap<u64, u64> = BTreeMap::new();
    let mut files = open_all(&[root.join(capture)]).unwrap();
    run(
        PipelineConfig::default(),
        &mut files,
        &mut |ev| {
            for r in rules.iter().filter(|r| r.matches(ev)) {
                let m = match r.threshold {
                    None => &mut want,
                    Some(_) => &mut thresholded,
                };
                *m.entry(u64::from(r.sid)).or_insert(0) += 1;
            }
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert!(want.len() > 10, "{want:?}");
    for (sid, n) in &want {
        assert_eq!(got.get(sid).map(|g| g.1), Some(*n), "sid {sid}");
    }
    // Threshold rules fire less often than they match (`limit 2` per source: twice per
    // client; `threshold 50` on 24 matches: never).
    assert!(!thresholded.is_empty());
    let mut any = false;
    for (sid, n) in &thresholded {
        let fired = got.get(sid).map_or(0, |g| g.1);
        assert!(fired < *n, "sid {sid}: {fired} alerts of {n} matches");
        any |= fired > 0;
    }
    assert!(any, "{thresholded:?} {got:?}");
}
