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
