//! Baseline learning and scoring alone, on events held in memory: the events of a generated
//! plant capture (`otwatch::synth::plant`, Modbus with ~15 % OPC UA) are collected once, and
//! the benches run `Learner::observe` and `Engine::on_event` over them, so that the cost per
//! event of learning and of detection (baseline scoring, with and without the shipped rules)
//! is measured apart from capture, decoding, reassembly and parsing.
//!
//! `cargo bench --bench detect`; figures are recorded in `benches/README.md`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use otwatch::baseline::{LearnConfig, Learner};
use otwatch::detect::{DetectConfig, Engine};
use otwatch::event::IcsEvent;
use otwatch::pipeline::{self, PipelineConfig};
use otwatch::rules::{self, detector::RulesDetector};
use otwatch::synth::plant::{generate, PlantConfig};
use std::hint::black_box;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

/// Packets of the capture whose events are scored (the baseline is learnt on a capture of
/// another seed, twice as long, so that slow process-value cycles are covered).
const PACKETS: u64 = 100_000;

fn events_of(path: &Path, cfg: &PlantConfig) -> Vec<IcsEvent> {
    let f = std::fs::File::create(path).unwrap();
    generate(cfg, BufWriter::new(f)).unwrap();
    let mut files = pipeline::open_all(&[path.to_path_buf()]).unwrap();
    let mut evs = Vec::new();
    pipeline::run(
        PipelineConfig::default(),
        &mut files,
        &mut |e| evs.push(e.clone()),
        &mut |_, _| {},
    )
    .unwrap();
    let _ = std::fs::remove_file(path);
    evs
}

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    let cfg = PlantConfig {
        packets: PACKETS,
        opcua_share: 0.05,
        loss: 0.0,
        ..PlantConfig::default()
    };
    let scored = events_of(&dir.join(format!("otwatch-detect-{pid}.pcap")), &cfg);
    let learnt = events_of(
        &dir.join(format!("otwatch-detect-{pid}-learn.pcap")),
        &PlantConfig {
            seed: cfg.seed + 1,
            packets: PACKETS * 2,
            ..cfg.clone()
        },
    );
    let learn = |evs: &[IcsEvent]| {
        let mut l = Learner::new(LearnConfig::default());
        for e in evs {
            l.observe(e);
        }
        l.finish().unwrap()
    };
    let baseline = learn(&learnt);
    let report = rules::load(&rules::embedded_pack());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let pack = Arc::new(report.set);

    let mut g = c.benchmark_group("detect");
    g.sample_size(10);
    g.throughput(Throughput::Elements(scored.len() as u64));
    g.bench_function("learn", |b| b.iter(|| black_box(learn(&scored))));
    let score = |rules: bool| {
        let mut engine = Engine::new(Some(baseline.clone()), DetectConfig::default());
        if rules {
            engine.add_detector(Box::new(RulesDetector::new(Arc::clone(&pack))));
        }
        let mut alerts = Vec::new();
        for e in &scored {
            engine.on_event(e, &mut alerts);
        }
        engine.finish(&mut alerts);
        alerts.len()
    };
    g.bench_function("score", |b| b.iter(|| black_box(score(false))));
    g.bench_function("score_with_rules", |b| b.iter(|| black_box(score(true))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
