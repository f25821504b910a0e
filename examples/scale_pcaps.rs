//! Writes the captures of the scale measurements in `benches/README.md`.
//!
//! - `concurrent OUT [PACKETS]`: 100,020 Modbus connections (60 masters × 1667 PLCs), all
//!   established and polled, interleaved in time order.
//! - `flood OUT`: 1,000,000 SYNs from random addresses and ports around a small Modbus plant
//!   (50 SYNs per plant packet).
//! - `big OUT [PACKETS]`: a long capture of 10 masters polling 50 PLCs (500 connections).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use otwatch::synth::{self, SynthConfig};
use otwatch::time::Timestamp;
use std::io::Write;

fn header(w: &mut impl Write) -> std::io::Result<()> {
    synth::write_pcap(w, &[])
}

fn record(w: &mut impl Write, ts: Timestamp, f: &[u8]) -> std::io::Result<()> {
    synth::write_record(w, ts, f, f.len() as u32)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, out) = (args[0].as_str(), &args[1]);
    let n: Option<usize> = args.get(2).map(|s| s.parse().unwrap());
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    header(&mut w)?;
    match mode {
        "concurrent" => {
            let frames = synth::modbus_plant(&SynthConfig {
                masters: 60,
                plcs: 1667,
                packets: n.unwrap_or(1_000_000),
                ..SynthConfig::default()
            });
            for (ts, f) in &frames {
                record(&mut w, *ts, f)?;
            }
        }
        "big" => {
            let frames = synth::modbus_plant(&SynthConfig {
                masters: 10,
                plcs: 50,
                packets: n.unwrap_or(3_000_000),
                ..SynthConfig::default()
            });
            for (ts, f) in &frames {
                record(&mut w, *ts, f)?;
            }
        }
        "flood" => {
            let plant = synth::modbus_plant(&SynthConfig {
                plcs: 4,
                masters: 2,
                packets: 20_000,
                ..SynthConfig::default()
            });
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            let mut buf = Vec::with_capacity(64);
            for (ts, f) in &plant {
                for _ in 0..50 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let r = x;
                    let seg = synth::flood_syn(r);
                    buf.clear();
                    synth::tcp_frame_into(&mut buf, &seg, &[]);
                    record(&mut w, *ts, &buf)?;
                }
                record(&mut w, *ts, f)?;
            }
        }
        other => panic!("unknown mode {other}"),
    }
    w.flush()
}
