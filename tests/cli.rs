//! The `otwatch` binary as a user meets it: exit codes, one-line errors, output formats,
//! determinism.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn otwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_otwatch"))
        .args(args)
        .env_remove("OTWATCH_LOG")
        .output()
        .expect("run otwatch")
}

fn shared(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/pcaps")
        .join(rel);
    assert!(p.exists(), "missing shared capture {}", p.display());
    p.to_string_lossy().into_owned()
}

fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("otwatch-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

const MODBUS_SMALL: &str = "zeek__zeek/testing__btest__Traces__modbus__modbusSmall.pcap";

#[test]
fn missing_file_is_one_line_exit_2() {
    let out = otwatch(&["stats", "/nonexistent/capture.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/capture.pcap"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn not_a_capture_is_one_line_exit_2() {
    let p = tmp("notes.txt", b"this is not a capture, just some text\n");
    let out = otwatch(&["inspect", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("notes.txt") && err.contains("not a pcap or pcapng"),
        "{err}"
    );
}

#[test]
fn a_bad_file_among_good_ones_fails_before_output() {
    let p = tmp("empty.pcap", b"");
    let out = otwatch(&["inspect", &shared(MODBUS_SMALL), p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no partial output before the error");
}

#[test]
fn usage_errors_exit_2_and_help_works() {
    assert_eq!(otwatch(&["inspect"]).status.code(), Some(2));
    assert_eq!(otwatch(&["frobnicate"]).status.code(), Some(2));
    for cmd in [
        &["--help"][..],
        &["inspect", "--help"],
        &["stats", "--help"],
    ] {
        let out = otwatch(cmd);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"));
    }
}

#[test]
fn stats_json_counts_packets() {
    let out = otwatch(&["stats", "--json", &shared(MODBUS_SMALL)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["packets"], 166);
    assert_eq!(v["files"][0]["packets"], 166);
    assert_eq!(v["link_types"]["ethernet"], 166);
    assert!(v["modbus"]["pdus"].is_u64());
    assert!(v["opcua"]["messages"].is_u64());
    assert!(v["flows"]["created"].as_u64().unwrap() >= 1);
}

#[test]
fn stats_text_is_key_value_lines() {
    let out = otwatch(&["stats", &shared(MODBUS_SMALL)]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l == "packets 166"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("modbus.pdus ")),
        "{text}"
    );
}

#[test]
fn inspect_is_deterministic_and_json_lines() {
    let a = otwatch(&["inspect", &shared(MODBUS_SMALL)]);
    let b = otwatch(&["inspect", &shared(MODBUS_SMALL)]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout, "same input, same output");
    for line in String::from_utf8_lossy(&a.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            v["ts"].is_string() && v["evidence"]["packet"].is_u64(),
            "{line}"
        );
    }
    let t = otwatch(&["inspect", "--format", "table", &shared(MODBUS_SMALL)]);
    assert!(t.status.success());
    assert!(String::from_utf8_lossy(&t.stdout).starts_with("TIME "));
}

#[test]
fn learn_then_detect_writes_alert_lines() {
    let dir = std::env::temp_dir().join(format!("otwatch-cli-learn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("plant.baseline.json");
    let plant = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/modbus_plant.pcap");
    let attack = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/modbus_attack.pcapng");
    let out = otwatch(&[
        "learn",
        "-o",
        base.to_str().unwrap(),
        plant.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b: serde_json::Value = serde_json::from_slice(&std::fs::read(&base).unwrap()).unwrap();
    assert_eq!(b["kind"], "otwatch-baseline");
    assert_eq!(b["version"], 1);
    assert!(b["assets"].as_array().unwrap().len() >= 4);

    let alerts = dir.join("alerts.jsonl");
    let run = |extra: &[&str]| {
        let mut args = vec!["detect", "--baseline", base.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(attack.to_str().unwrap());
        otwatch(&args)
    };
    let out = run(&["--output", alerts.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&alerts).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    for a in &lines {
        assert_eq!(a["event_type"], "alert");
        assert!(a["otwatch"]["explanation"].as_str().unwrap().len() > 20);
        assert!(a["community_id"].as_str().unwrap().starts_with("1:"));
    }
    // The attacker is named.
    assert!(text.contains("127.0.0.66"));
    // Same input, same output.
    let again = run(&[]);
    assert_eq!(again.stdout, text.as_bytes());
}

#[test]
fn bad_baseline_is_one_line_exit_2() {
    let p = tmp(
        "bad.baseline.json",
        b"{\"kind\": \"otwatch-baseline\", \"version\": 99}",
    );
    let out = otwatch(&[
        "detect",
        "--baseline",
        p.to_str().unwrap(),
        &shared(MODBUS_SMALL),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("version 99"), "{err}");
}

#[test]
fn audit_prints_a_summary_for_a_person() {
    let plant = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/modbus_plant.pcap");
    let out = otwatch(&["audit", "--learn-for", "20s", plant.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Assets (",
        "Channels (",
        "Alerts: ",
        "127.0.0.10",
        "vendor_name: Acme Process Controls",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert_eq!(
        otwatch(&["audit", "--learn-for", "soon", plant.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn learn_with_ml_on_too_short_a_capture_says_so() {
    let dir = std::env::temp_dir().join(format!("otwatch-cli-ml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("ml.baseline.json");
    let plant = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/modbus_plant.pcap");
    let out = otwatch(&[
        "learn",
        "--ml",
        "-o",
        base.to_str().unwrap(),
        plant.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 35 s of traffic is far less than the 30 ten-second windows a model needs: the baseline is
    // written without one, and the operator is told why.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("too few complete windows"), "{err}");
    let b: serde_json::Value = serde_json::from_slice(&std::fs::read(&base).unwrap()).unwrap();
    assert!(b.get("ml").is_none());
    let out = otwatch(&[
        "detect",
        "--baseline",
        base.to_str().unwrap(),
        plant.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn threads_give_the_same_inspect_and_stats_output() {
    let plant = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pcaps/modbus_plant.pcap")
        .display()
        .to_string();
    for cmd in [["inspect", "--format", "json"], ["stats", "--json", "-v"]] {
        let one = otwatch(&[cmd[0], cmd[1], cmd[2], "--threads", "1", &plant]);
        assert!(one.status.success());
        assert!(one.stdout.len() > 1000, "{cmd:?} prints something");
        for n in ["2", "3"] {
            let many = otwatch(&[cmd[0], cmd[1], cmd[2], "--threads", n, &plant]);
            assert!(many.status.success());
            assert!(
                one.stdout == many.stdout,
                "{cmd:?} differs with {n} threads"
            );
        }
    }
}
