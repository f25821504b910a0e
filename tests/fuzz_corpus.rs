//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the same entry points
//! the fuzz targets use, so that every crash ever found stays fixed under plain `cargo test`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    let mut n = 0;
    for p in entries.iter().filter(|p| p.is_file()) {
        let data = std::fs::read(p).unwrap_or_default();
        f(&data);
        n += 1;
    }
    n
}

#[test]
fn packet_path_corpus() {
    assert!(replay("packet_path", otwatch::fuzzing::packet_path) > 0);
}

#[test]
fn modbus_corpus() {
    assert!(replay("modbus", otwatch::fuzzing::modbus_stream) > 0);
}

#[test]
fn opcua_corpus() {
    assert!(replay("opcua", otwatch::fuzzing::opcua_stream) > 0);
}

#[test]
fn capture_file_corpus() {
    assert!(replay("capture_file", otwatch::fuzzing::capture_file) > 0);
}

/// The capture seeds with bytes changed and cut at deterministic places (record lengths,
/// header words and block types among them): the reader must stop or go on, never panic.
#[test]
fn capture_file_mutations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/capture_file");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut runs = 0;
    for name in ["seed-pcap", "seed-pcapng"] {
        let seed = std::fs::read(dir.join(name)).unwrap();
        for _ in 0..150 {
            let mut d = seed.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() % d.len() as u64) as usize;
                d[i] = next() as u8;
            }
            if next() % 3 == 0 {
                d.truncate((next() % d.len() as u64) as usize);
            }
            otwatch::fuzzing::capture_file(&d);
            runs += 1;
        }
    }
    assert_eq!(runs, 300);
}

/// Writes the packet-path seed made from the synthetic plant (`cargo test -- --ignored`).
#[test]
#[ignore = "regenerates a committed seed file"]
fn write_packet_path_seed() {
    use otwatch::synth::{modbus_plant, SynthConfig};
    let frames = modbus_plant(&SynthConfig {
        plcs: 2,
        masters: 1,
        packets: 60,
        ..Default::default()
    });
    let mut seed = vec![0u8]; // link type: Ethernet
    let mut last = frames[0].0;
    for (ts, f) in &frames {
        let dt_ms = (ts.micros_since(last) / 1000).min(255) as u8;
        last = *ts;
        seed.extend_from_slice(&(f.len() as u16).to_be_bytes());
        seed.push(dt_ms);
        seed.extend_from_slice(f);
    }
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus/packet_path/synth_modbus");
    std::fs::write(p, seed).unwrap();
}
