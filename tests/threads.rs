//! `--threads N` gives the same output for every N: byte-identical `inspect` JSON lines,
//! `detect` alerts (with and without a baseline) and `stats`, on varied captures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use otwatch::cli::analyze;
use otwatch::pipeline::{self, PipelineConfig};
use otwatch::shard;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Varied captures: the project's plants and attack, large and malformed Modbus from the
/// shared set, OPC UA with gaps, and a run of two files as one capture.
fn cases() -> Vec<Vec<PathBuf>> {
    let shared = root().join("../shared/pcaps");
    let p = |s: &str| root().join("pcaps").join(s);
    let s = |s: &str| shared.join(s);
    vec![
        vec![p("modbus_plant.pcap")],
        vec![p("opcua_plant.pcap")],
        vec![p("modbus_attack.pcapng")],
        vec![s(
            "ITI__ICS-Security-Tools/pcaps__ModbusTCP__ModbusTCP.pcap",
        )],
        vec![s("ITI__ICS-Security-Tools/pcaps__ModbusTCP__mb2.pcap")],
        vec![s(
            "zeek__zeek/testing__btest__Traces__modbus__modbusBig.pcap",
        )],
        vec![s(
            "mmguero-dev__Malcolm-PCAP/pcaps__protocols__OPCUA-Binary.pcap",
        )],
        vec![s(
            "cisagov__icsnpp-opcua-binary/pcaps__opcua_with-gap_with-handshake.pcap",
        )],
        vec![s("EmreEkin__ICS-Pcaps/BacNET__BACnet-MSTP-SNAP-Mixed.pcap")],
        vec![p("modbus_plant.pcap"), p("opcua_plant.pcap")],
    ]
}

/// `inspect` output and the stats JSON of a run with `threads` workers.
fn inspect(pcaps: &[PathBuf], threads: usize) -> (Vec<u8>, String) {
    let mut files = pipeline::open_all(pcaps).unwrap();
    let mut out = Vec::new();
    let stats = shard::run(
        PipelineConfig::default(),
        threads,
        &mut files,
        &mut |e| {
            serde_json::to_writer(&mut out, e).unwrap();
            out.push(b'\n');
        },
        &mut |_, _| {},
    )
    .unwrap();
    (out, stats.to_json().to_string())
}

/// `inspect` output with the events serialised on the workers.
fn inspect_mapped(pcaps: &[PathBuf], threads: usize) -> Vec<u8> {
    let mut files = pipeline::open_all(pcaps).unwrap();
    let mut out = Vec::new();
    let map = |e: &otwatch::event::IcsEvent| {
        let mut v = serde_json::to_vec(e).unwrap();
        v.push(b'\n');
        v
    };
    shard::run_map(
        PipelineConfig::default(),
        threads,
        &mut files,
        &map,
        &mut |v: Vec<u8>| out.extend_from_slice(&v),
        &mut |_, _| {},
    )
    .unwrap();
    out
}

fn detect(pcaps: &[PathBuf], baseline: Option<&Path>, threads: usize, dir: &Path) -> Vec<u8> {
    let out = dir.join(format!("alerts-{threads}.jsonl"));
    // With the shipped rule pack, as `otwatch detect` runs by default.
    let rules = analyze::RuleChoice::new(Vec::new(), false);
    analyze::detect(pcaps, baseline, Some(&out), &rules, threads).unwrap();
    std::fs::read(&out).unwrap()
}

#[test]
fn inspect_and_stats_are_identical_for_1_2_4_threads() {
    let mut events = 0;
    for case in cases() {
        let (one, stats_one) = inspect(&case, 1);
        events += one.iter().filter(|&&b| b == b'\n').count();
        for n in [2, 4] {
            let (many, stats_many) = inspect(&case, n);
            assert!(one == many, "inspect differs with {n} threads on {case:?}");
            assert_eq!(
                stats_one, stats_many,
                "stats differ with {n} threads on {case:?}"
            );
            assert!(
                one == inspect_mapped(&case, n),
                "mapped inspect differs with {n} threads on {case:?}"
            );
        }
    }
    assert!(events > 10_000, "the cases produce events ({events})");
}

#[test]
fn detect_is_identical_for_1_2_4_threads() {
    let dir = std::env::temp_dir().join(format!("otwatch-threads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let baseline = dir.join("baseline.json");
    let plant = root().join("pcaps/modbus_plant.pcap");
    analyze::learn(std::slice::from_ref(&plant), &baseline, false, 2).unwrap();
    let attack = vec![root().join("pcaps/modbus_attack.pcapng")];
    let mut alerts = 0;
    for (pcaps, b) in [
        (attack.clone(), Some(baseline.as_path())),
        (attack, None),
        (cases()[4].clone(), None),
    ] {
        let one = detect(&pcaps, b, 1, &dir);
        alerts += one.iter().filter(|&&c| c == b'\n').count();
        for n in [2, 4] {
            assert!(
                one == detect(&pcaps, b, n, &dir),
                "detect differs with {n} threads on {pcaps:?}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(alerts > 0, "the attack capture raises alerts");
}

#[test]
fn learned_baselines_are_identical() {
    let dir = std::env::temp_dir().join(format!("otwatch-threads-learn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plant = vec![root().join("pcaps/modbus_plant.pcap")];
    let mut got = Vec::new();
    for n in [1, 2, 4] {
        let out = dir.join(format!("b{n}.json"));
        analyze::learn(&plant, &out, false, n).unwrap();
        got.push(std::fs::read(&out).unwrap());
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!got[0].is_empty());
    assert!(got[0] == got[1] && got[0] == got[2], "baselines differ");
}
