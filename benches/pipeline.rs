//! Decode, flow and end-to-end replay benchmarks on a large generated Modbus capture.
//!
//! `cargo bench --bench pipeline`; figures are recorded in `benches/README.md`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use otwatch::baseline::{LearnConfig, Learner};
use otwatch::capture::Packet;
use otwatch::decode::{decode, LinkType};
use otwatch::detect::{DetectConfig, Engine};
use otwatch::pipeline::{self, Pipeline, PipelineConfig};
use otwatch::synth::{modbus_plant, write_pcap, SynthConfig};
use std::hint::black_box;
use std::sync::Arc;

const PACKETS: usize = 200_000;

fn frames() -> otwatch::synth::Frames {
    modbus_plant(&SynthConfig {
        packets: PACKETS,
        ..Default::default()
    })
}

fn bench(c: &mut Criterion) {
    let frames = frames();
    let bytes: u64 = frames.iter().map(|(_, f)| f.len() as u64).sum();

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("ethernet_ipv4_tcp", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for (_, f) in &frames {
                let d = decode(LinkType::Ethernet, f, f.len() as u32);
                n += usize::from(d.error.is_none());
            }
            black_box(n)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10);
    g.throughput(Throughput::Elements(frames.len() as u64));
    let file: Arc<str> = Arc::from("synth");
    g.bench_function("decode_flow_reassembly_parse", |b| {
        b.iter_batched(
            || Pipeline::new(PipelineConfig::default()),
            |mut p| {
                let mut events = 0u64;
                for (i, (ts, f)) in frames.iter().enumerate() {
                    let pkt = Packet {
                        ts: *ts,
                        link: LinkType::Ethernet,
                        data: f,
                        orig_len: f.len() as u32,
                        number: i as u64 + 1,
                    };
                    p.process(&file, &pkt, &mut |_| events += 1);
                }
                p.finish(&file, &mut |_| events += 1);
                black_box(events)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();

    // End to end: read the pcap file from disk (warm page cache) through the whole pipeline.
    let path = std::env::temp_dir().join(format!("otwatch-bench-{}.pcap", std::process::id()));
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        write_pcap(&mut w, &frames).unwrap();
    }
    let mut g = c.benchmark_group("replay");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("pcap_file_to_events", |b| {
        b.iter(|| {
            let mut files = pipeline::open_all(std::slice::from_ref(&path)).unwrap();
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
    // The same replay with baseline learning, and with detection against a baseline learnt on
    // the same traffic: what learning and detection add to a replay.
    let baseline = {
        let mut files = pipeline::open_all(std::slice::from_ref(&path)).unwrap();
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
    g.bench_function("pcap_file_to_baseline", |b| {
        b.iter(|| {
            let mut files = pipeline::open_all(std::slice::from_ref(&path)).unwrap();
            let mut l = Learner::new(LearnConfig::default());
            pipeline::run(
                PipelineConfig::default(),
                &mut files,
                &mut |e| l.observe(e),
                &mut |_, _| {},
            )
            .unwrap();
            black_box(l.finish().unwrap().channels.len())
        })
    });
    g.bench_function("pcap_file_to_alerts", |b| {
        b.iter(|| {
            let mut files = pipeline::open_all(std::slice::from_ref(&path)).unwrap();
            let mut engine = Engine::new(Some(baseline.clone()), DetectConfig::default());
            let mut alerts = Vec::new();
            pipeline::run(
                PipelineConfig::default(),
                &mut files,
                &mut |e| engine.on_event(e, &mut alerts),
                &mut |_, _| {},
            )
            .unwrap();
            engine.finish(&mut alerts);
            black_box(alerts.len())
        })
    });
    g.finish();
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, bench);
criterion_main!(benches);
