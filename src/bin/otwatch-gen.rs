//! `otwatch-gen`: writes a large, realistic, deterministic plant capture (Modbus/TCP and OPC UA)
//! for benchmarks and scale tests. See `otwatch::synth::plant`.

use anyhow::Context;
use clap::Parser;
use otwatch::synth::plant::{generate, PlantConfig};
use std::io::BufWriter;
use std::path::PathBuf;

/// Generates a deterministic plant capture (pcap).
#[derive(Parser, Debug)]
#[command(name = "otwatch-gen", version)]
struct Args {
    /// Output pcap path.
    output: PathBuf,
    /// Seed: the same seed and options always give the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop polling after about this many packets (open connections are then closed).
    #[arg(long, default_value_t = 1_000_000)]
    packets: u64,
    /// Stop polling after this much capture time (e.g. 90s, 15m, 2h); overrides --packets
    /// unless both are given, then the first limit reached wins.
    #[arg(long)]
    duration: Option<String>,
    /// Number of PLCs (every fifth one is also an OPC UA server).
    #[arg(long, default_value_t = 40)]
    plcs: u16,
    /// Number of masters (roles cycle HMI, historian, engineering station).
    #[arg(long, default_value_t = 3)]
    masters: u16,
    /// Target share of OPC UA packets, 0–0.9.
    #[arg(long, default_value_t = 0.15)]
    opcua_share: f64,
    /// Probability that a Modbus response segment is missing from the capture.
    #[arg(long, default_value_t = 0.0002)]
    loss: f64,
    /// Probability that a Modbus request is split in two segments captured swapped.
    #[arg(long, default_value_t = 0.0002)]
    reorder: f64,
    /// Capture start, seconds since the epoch.
    #[arg(long, default_value_t = 1_700_000_000)]
    start: i64,
}

fn duration_us(s: &str) -> anyhow::Result<i64> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1e6),
        Some((i, 'm')) => (&s[..i], 60e6),
        Some((i, 'h')) => (&s[..i], 3600e6),
        _ => (s, 1e6),
    };
    let v: f64 = num.parse().with_context(|| format!("bad duration {s:?}"))?;
    anyhow::ensure!(v > 0.0 && v.is_finite(), "bad duration {s:?}");
    Ok((v * mult) as i64)
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let duration = a.duration.as_deref().map(duration_us).transpose()?;
    let cfg = PlantConfig {
        seed: a.seed,
        packets: if duration.is_some() && a.packets == 1_000_000 {
            u64::MAX
        } else {
            a.packets
        },
        duration_us: duration,
        plcs: a.plcs,
        masters: a.masters,
        opcua_share: a.opcua_share,
        loss: a.loss,
        reorder: a.reorder,
        start_secs: a.start,
    };
    let f = std::fs::File::create(&a.output)
        .with_context(|| format!("creating {}", a.output.display()))?;
    let s = generate(&cfg, BufWriter::with_capacity(1 << 20, f))?;
    eprintln!(
        "{}: {} packets, {} bytes, {:.1} s; modbus {} packets ({} ADUs), opcua {} packets ({} messages, {:.1} %); {} connections, {} lost segments, {} reordered",
        a.output.display(),
        s.packets,
        s.bytes,
        s.span_us as f64 / 1e6,
        s.modbus_packets,
        s.modbus_adus,
        s.opcua_packets,
        s.opcua_messages,
        100.0 * s.opcua_packets as f64 / s.packets.max(1) as f64,
        s.connections,
        s.lost_segments,
        s.reordered,
    );
    Ok(())
}
