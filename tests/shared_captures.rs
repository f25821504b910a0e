//! Every public capture in `../shared/pcaps` through the whole pipeline: no panic, no error,
//! and the packet count tshark found (`MANIFEST.tsv`) for each file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use otwatch::capture::CaptureFile;
use otwatch::pipeline::{self, PipelineConfig};
use std::path::{Path, PathBuf};
use std::process::Command;

struct Row {
    path: PathBuf,
    packets: u64,
}

fn manifest() -> Vec<Row> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps");
    let text = std::fs::read_to_string(root.join("MANIFEST.tsv")).expect("read MANIFEST.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (file, packets) = (col("file"), col("packets"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Row {
                path: root.join(f[file]),
                packets: f[packets].parse().unwrap(),
            }
        })
        .collect()
}

#[test]
fn every_shared_capture_runs_and_counts_packets() {
    let rows = manifest();
    assert_eq!(rows.len(), 489, "the manifest lists 489 captures");
    let mut wrong = Vec::new();
    for r in &rows {
        let mut files = match pipeline::open_all(std::slice::from_ref(&r.path)) {
            Ok(f) => f,
            Err(e) => {
                wrong.push(format!("{e}"));
                continue;
            }
        };
        match pipeline::run(
            PipelineConfig::default(),
            &mut files,
            &mut |_| {},
            &mut |_, _| {},
        ) {
            Ok(s) if s.packets == r.packets => {}
            Ok(s) => wrong.push(format!(
                "{}: {} packets, manifest says {}",
                r.path.display(),
                s.packets,
                r.packets
            )),
            Err(e) => wrong.push(format!("{e}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} captures disagree:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
}

#[test]
fn stats_json_agrees_with_the_manifest_in_one_run() {
    let rows = manifest();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_otwatch"));
    cmd.arg("stats").arg("--json");
    for r in &rows {
        cmd.arg(&r.path);
    }
    let out = cmd.output().expect("run otwatch");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), rows.len());
    let total: u64 = rows.iter().map(|r| r.packets).sum();
    assert_eq!(v["packets"].as_u64(), Some(total));
    for (f, r) in files.iter().zip(&rows) {
        assert_eq!(
            f["packets"].as_u64(),
            Some(r.packets),
            "{}",
            r.path.display()
        );
    }
}

#[test]
fn captures_open_as_streams() {
    // Opening does not read the file: a reader exists before any packet is read.
    let rows = manifest();
    let biggest = rows
        .iter()
        .max_by_key(|r| std::fs::metadata(&r.path).map(|m| m.len()).unwrap_or(0))
        .unwrap();
    let mut cap = CaptureFile::open(&biggest.path).unwrap();
    assert!(cap.position() < 1024 * 1024, "open must not slurp the file");
    let mut n = 0;
    while cap.next_packet().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, biggest.packets);
}

#[test]
fn evidence_always_names_a_real_packet() {
    // fuzz-72 ends with requests held behind a reassembly hole, flushed only at the end of the
    // capture: their evidence must still point into the file (packets are numbered from 1).
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/pcaps/zeek__zeek/testing__btest__Traces__modbus__fuzz-72.pcap");
    let mut files = pipeline::open_all(&[&path]).unwrap();
    let mut evidence = Vec::new();
    let s = pipeline::run(
        PipelineConfig::default(),
        &mut files,
        &mut |e| evidence.push((e.evidence.packet, e.evidence.response_packet)),
        &mut |_, _| {},
    )
    .unwrap();
    assert!(!evidence.is_empty());
    for (req, rsp) in evidence {
        assert!((1..=s.packets).contains(&req), "request packet {req}");
        if let Some(r) = rsp {
            assert!((1..=s.packets).contains(&r), "response packet {r}");
        }
    }
}
