//! Cost per event of the rules detector with 10 and 1000 generated rules (and 1000 rules that
//! name no function, the index's worst case), on the Modbus events of `otwatch::synth`'s plant.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use otwatch::capture::Packet;
use otwatch::decode::LinkType;
use otwatch::detect::Detector;
use otwatch::event::IcsEvent;
use otwatch::pipeline::{Pipeline, PipelineConfig};
use otwatch::rules::detector::RulesDetector;
use otwatch::rules::{load, Source};
use otwatch::synth::{modbus_plant, SynthConfig};
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;

fn events() -> Vec<IcsEvent> {
    let frames = modbus_plant(&SynthConfig {
        packets: 40_000,
        ..Default::default()
    });
    let file: Arc<str> = Arc::from("synth");
    let mut p = Pipeline::new(PipelineConfig::default());
    let mut out = Vec::new();
    for (i, (ts, f)) in frames.iter().enumerate() {
        let pkt = Packet {
            ts: *ts,
            link: LinkType::Ethernet,
            data: f,
            orig_len: f.len() as u32,
            number: i as u64 + 1,
        };
        p.process(&file, &pkt, &mut |e| out.push(e.clone()));
    }
    p.finish(&file, &mut |e| out.push(e.clone()));
    out
}

/// `n` rules over many function codes, addresses, hosts and OPC UA services; with
/// `wildcard`, none names a function (every Modbus rule is a candidate for every event).
fn rules(n: u32, wildcard: bool) -> String {
    let mut s = String::from("[groups]\neng = [\"10.0.0.0/24\", \"10.9.0.1-10.9.0.20\"]\n");
    for i in 0..n {
        let fc = [1, 2, 3, 4, 5, 6, 15, 16, 8, 23, 43, 90][i as usize % 12];
        let func = if wildcard {
            String::new()
        } else {
            format!("function = [{fc}]\n")
        };
        let body = match i % 5 {
            0 => format!(
                "proto = \"modbus\"\n{func}src = [\"192.168.{}.{}\"]\n",
                i / 256,
                i % 256
            ),
            1 => format!(
                "proto = \"modbus\"\n{func}address = \"{}-{}\"\nvalue = \"> 60000\"\n",
                i * 7,
                i * 7 + 3
            ),
            2 => format!(
                "proto = \"modbus\"\n{func}unit = {}\ndst = [\"!eng\"]\nsrc = [\"10.{}.0.0/16\"]\n",
                i % 200 + 50,
                i % 250
            ),
            3 => format!("proto = \"modbus\"\n{func}dst_port = {}\n", 1000 + i),
            _ => format!(
                "proto = \"opcua\"\nservice = [\"Write\"]\nnode_prefix = \"ns=2;s=Area{i}\"\n"
            ),
        };
        let _ = write!(
            s,
            "[[rule]]\nid = {}\nrev = 1\ntitle = \"Generated {i}\"\nseverity = \"low\"\ndescription = \"d\"\n[rule.match]\n{body}\n",
            1_000_000 + i
        );
    }
    s
}

fn bench(c: &mut Criterion) {
    let evs = events();
    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(evs.len() as u64));
    for (name, n, wildcard) in [
        ("10_rules", 10, false),
        ("1000_rules", 1000, false),
        ("1000_rules_no_function", 1000, true),
    ] {
        let report = load(&[Source {
            name: "gen.toml".into(),
            text: rules(n, wildcard),
        }]);
        assert!(report.errors.is_empty(), "{:?}", report.errors.first());
        let set = Arc::new(report.set);
        let mut probe = RulesDetector::new(Arc::clone(&set));
        let mut fired = Vec::new();
        for e in &evs {
            probe.on_event(e, None, &mut fired);
        }
        eprintln!("{name}: {} events, {} alerts", evs.len(), fired.len());
        g.bench_function(name, |b| {
            let mut d = RulesDetector::new(Arc::clone(&set));
            let mut out = Vec::new();
            b.iter(|| {
                for e in &evs {
                    d.on_event(e, None, &mut out);
                }
                let n = out.len();
                out.clear();
                black_box(n)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
