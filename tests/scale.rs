//! Bounded state under floods: a million one-packet flows around a small Modbus plant, and
//! many flows holding large out-of-order segments against the memory budget.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use otwatch::capture::Packet;
use otwatch::decode::LinkType;
use otwatch::event::IcsEvent;
use otwatch::flow::FlowConfig;
use otwatch::pipeline::{Pipeline, PipelineConfig};
use otwatch::stats::RunStats;
use otwatch::synth::{self, SynthConfig, TcpSpec};
use otwatch::time::Timestamp;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// xorshift64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// An event without what depends on packet numbering (flow id, evidence).
fn norm(e: &IcsEvent) -> serde_json::Value {
    let mut v = serde_json::to_value(e).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("flow_id");
    o.remove("evidence");
    v
}

fn feed(
    p: &mut Pipeline,
    file: &Arc<str>,
    number: &mut u64,
    ts: Timestamp,
    frame: &[u8],
    out: &mut Vec<serde_json::Value>,
) {
    *number += 1;
    let pkt = Packet {
        ts,
        link: LinkType::Ethernet,
        data: frame,
        orig_len: frame.len() as u32,
        number: *number,
    };
    p.process(file, &pkt, &mut |e| out.push(norm(e)));
}

/// Flood packets per plant packet in the flood test: 1,000,000 in all.
const FLOOD_PER_PLANT: usize = 50;
const PLANT_PACKETS: usize = 20_000;

#[test]
fn a_million_one_packet_flows_do_not_cost_the_plant_anything() {
    let plant = synth::modbus_plant(&SynthConfig {
        plcs: 4,
        masters: 2,
        packets: PLANT_PACKETS,
        ..SynthConfig::default()
    });
    let file: Arc<str> = Arc::from("flood");
    let cap = 20_000;
    let cfg = PipelineConfig {
        flow: FlowConfig {
            max_flows: cap,
            ..FlowConfig::default()
        },
    };

    // The plant alone.
    let mut reference = Vec::new();
    let mut p = Pipeline::new(cfg.clone());
    let mut number = 0;
    for (ts, f) in &plant {
        feed(&mut p, &file, &mut number, *ts, f, &mut reference);
    }
    p.finish(&file, &mut |e| reference.push(norm(e)));
    assert!(reference.len() > 1000, "the plant produces events");

    // The plant inside a flood of SYNs from random addresses and ports.
    let mut got = Vec::new();
    let mut p = Pipeline::new(cfg);
    let mut number = 0;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut buf = Vec::with_capacity(64);
    for (ts, f) in &plant {
        for _ in 0..FLOOD_PER_PLANT {
            let r = rng.next();
            let seg = synth::flood_syn(r);
            buf.clear();
            synth::tcp_frame_into(&mut buf, &seg, &[]);
            feed(&mut p, &file, &mut number, *ts, &buf, &mut got);
        }
        feed(&mut p, &file, &mut number, *ts, f, &mut got);
    }
    p.finish(&file, &mut |e| got.push(norm(e)));
    let s = &p.stats().flows;
    let flood = (PLANT_PACKETS * FLOOD_PER_PLANT) as u64;
    assert!(s.created >= flood, "{s:?}");
    assert!(s.peak <= cap as u64, "peak {} over the cap {cap}", s.peak);
    assert!(s.evicted > flood / 2, "evictions are counted: {s:?}");
    assert_eq!(
        s.created,
        s.evicted + s.timed_out + s.closed + s.ended_at_eof,
        "every flow ends once"
    );
    assert_eq!(got.len(), reference.len(), "plant events lost in the flood");
    assert!(got == reference, "plant events differ in the flood");
}

/// `flows` connections each sending out-of-order segments after holes, interleaved.
fn out_of_order_flood(budget: usize, flows: u32) -> RunStats {
    let cfg = PipelineConfig {
        flow: FlowConfig {
            memory_budget_bytes: budget,
            ..FlowConfig::default()
        },
    };
    let mut p = Pipeline::new(cfg);
    let file: Arc<str> = Arc::from("ooo");
    let mut number = 0;
    let mut sink = Vec::new();
    let ts = Timestamp::from_micros(1_700_000_000_000_000);
    let payload = vec![0x5a_u8; 1400];
    let mut buf = Vec::with_capacity(1500);
    let addr = |i: u32| {
        (
            (Ipv4Addr::from(0x0a00_0000 | i), 40_000),
            (Ipv4Addr::new(10, 255, 0, 1), 8080),
        )
    };
    let isn = |i: u32| i.wrapping_mul(2_654_435_761);
    let mut send = |p: &mut Pipeline, seg: TcpSpec, data: &[u8], n: &mut u64| {
        buf.clear();
        synth::tcp_frame_into(&mut buf, &seg, data);
        feed(p, &file, n, ts, &buf, &mut sink);
    };
    for i in 0..flows {
        let (c, s) = addr(i);
        let (ci, si) = (isn(i), isn(i) ^ 0xffff);
        let hs = [
            (c, s, ci, 0, 0x02),
            (s, c, si, ci.wrapping_add(1), 0x12),
            (c, s, ci.wrapping_add(1), si.wrapping_add(1), 0x10),
        ];
        for (src, dst, seq, ack, flags) in hs {
            let seg = TcpSpec {
                src,
                dst,
                seq,
                ack,
                flags,
            };
            send(&mut p, seg, &[], &mut number);
        }
    }
    // Four segments per flow, each after a 600-byte hole.
    for k in 0..4u32 {
        for i in 0..flows {
            let (c, s) = addr(i);
            let seg = TcpSpec {
                src: c,
                dst: s,
                seq: isn(i).wrapping_add(1 + 600 + k * 2000),
                ack: (isn(i) ^ 0xffff).wrapping_add(1),
                flags: 0x18,
            };
            send(&mut p, seg, &payload, &mut number);
        }
    }
    p.finish(&file, &mut |_| {});
    p.stats().clone()
}

#[test]
fn the_memory_budget_holds_under_an_out_of_order_flood() {
    let flows = 3000;
    let budget = 4 << 20;
    let free = out_of_order_flood(64 << 20, flows);
    assert!(
        free.flows.memory_peak > budget as u64,
        "the flood needs more than the budget: {:?}",
        free.flows
    );
    assert_eq!(free.flows.budget_drops, 0);

    let held = out_of_order_flood(budget, flows);
    let f = &held.flows;
    assert!(f.memory_peak <= budget as u64, "over the budget: {f:?}");
    assert!(f.budget_drops > 0 && f.budget_drop_bytes > 0, "{f:?}");
    assert!(f.reassembly_gaps >= free.flows.reassembly_gaps, "{f:?}");
    assert_eq!(f.created, u64::from(flows));
    assert_eq!(f.evicted, 0, "the budget drops buffers, not flows");
}
