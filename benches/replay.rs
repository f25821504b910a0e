//! End-to-end replay on a generated plant capture (`otwatch::synth::plant`, Modbus and about
//! 15 % OPC UA, with handshakes, FINs, loss and reordering): pcap file → events, and pcap file
//! → alerts with a baseline learnt on the first half of the same traffic, without and with the
//! shipped rules pack (what `otwatch detect --baseline B` runs by default).
//!
//! `cargo bench --bench replay`; figures are recorded in `benches/README.md`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use otwatch::baseline::{LearnConfig, Learner};
use otwatch::detect::{DetectConfig, Engine};
use otwatch::pipeline::{self, PipelineConfig};
use otwatch::rules::{self, detector::RulesDetector};
use otwatch::synth::plant::{generate, PlantConfig};
use std::hint::black_box;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PACKETS: u64 = 200_000;

/// The `otwatch` binary's allocator (src/main.rs), so that the replay is timed as it runs.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn write(path: &Path, cfg: &PlantConfig) -> otwatch::synth::plant::PlantSummary {
    let f = std::fs::File::create(path).unwrap();
    generate(cfg, BufWriter::new(f)).unwrap()
}

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    let full: PathBuf = dir.join(format!("otwatch-replay-{pid}.pcap"));
    let half: PathBuf = dir.join(format!("otwatch-replay-{pid}-half.pcap"));
    let cfg = PlantConfig {
        packets: PACKETS,
        ..PlantConfig::default()
    };
    let sum = write(&full, &cfg);
    // The generator is a pure function of its configuration: the first half of the capture is
    // the same configuration stopped at half the packets (up to the closing FINs).
    write(
        &half,
        &PlantConfig {
            packets: PACKETS / 2,
            ..cfg.clone()
        },
    );

    let baseline = {
        let mut files = pipeline::open_all(std::slice::from_ref(&half)).unwrap();
        let mut l = Learner::new(LearnConfig::default());
        pipeline::run(
            PipelineConfig::default(),
            &mut files,
            &mut |e| l.observe(e),
            &mut |_, _| {},
        )
        .unwrap();
        l.finish().unwrap()
    };

    let report = rules::load(&rules::embedded_pack());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let pack = Arc::new(report.set);

    for (unit, tp) in [
        ("packets", Throughput::Elements(sum.packets)),
        ("bytes", Throughput::Bytes(sum.bytes)),
    ] {
        let mut g = c.benchmark_group(format!("replay_plant_{unit}"));
        g.sample_size(10);
        g.throughput(tp);
        g.bench_function("pcap_file_to_events", |b| {
            b.iter(|| {
                let mut files = pipeline::open_all(std::slice::from_ref(&full)).unwrap();
                let s = pipeline::run(
                    PipelineConfig::default(),
                    &mut files,
                    &mut |_| {},
                    &mut |_, _| {},
                )
                .unwrap();
                black_box(s.events)
            })
        });
        // Detection with the baseline, without and with the shipped rules.
        let alerts = |rules: Option<&Arc<rules::RuleSet>>| {
            let mut files = pipeline::open_all(std::slice::from_ref(&full)).unwrap();
            let mut engine = Engine::new(Some(baseline.clone()), DetectConfig::default());
            if let Some(set) = rules {
                engine.add_detector(Box::new(RulesDetector::new(Arc::clone(set))));
            }
            let mut alerts = Vec::new();
            pipeline::run(
                PipelineConfig::default(),
                &mut files,
                &mut |e| engine.on_event(e, &mut alerts),
                &mut |_, _| {},
            )
            .unwrap();
            engine.finish(&mut alerts);
            alerts.len()
        };
        g.bench_function("pcap_file_to_alerts", |b| {
            b.iter(|| black_box(alerts(None)))
        });
        g.bench_function("pcap_file_to_alerts_with_rules", |b| {
            b.iter(|| black_box(alerts(Some(&pack))))
        });
        g.finish();
    }
    let _ = std::fs::remove_file(&full);
    let _ = std::fs::remove_file(&half);
}

criterion_group!(benches, bench);
criterion_main!(benches);
