//! The plant capture generator (`otwatch::synth::plant`, binary `otwatch-gen`): deterministic,
//! parsed by otwatch without violations, OPC UA share within bounds, exactly the injected gaps.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use otwatch::pipeline::{self, PipelineConfig};
use otwatch::synth::plant::{generate, PlantConfig, PlantSummary};

fn cfg(seed: u64) -> PlantConfig {
    PlantConfig {
        seed,
        packets: 40_000,
        plcs: 20,
        masters: 3,
        opcua_share: 0.15,
        loss: 0.001,
        reorder: 0.001,
        ..PlantConfig::default()
    }
}

fn bytes(c: &PlantConfig) -> (Vec<u8>, PlantSummary) {
    let mut v = Vec::new();
    let s = generate(c, &mut v).unwrap();
    (v, s)
}

#[test]
fn same_seed_same_bytes() {
    let (a, sa) = bytes(&cfg(7));
    let (b, sb) = bytes(&cfg(7));
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    assert_eq!(sa.bytes, a.len() as u64);
    let (c, _) = bytes(&cfg(8));
    assert_ne!(a, c);
    // About the requested number of packets: open connections are closed after the limit.
    assert!(
        sa.packets >= 40_000 && sa.packets < 40_000 + 3 * 200,
        "{sa:?}"
    );
}

#[test]
fn duration_limits_capture_time() {
    let c = PlantConfig {
        packets: u64::MAX,
        duration_us: Some(20_000_000),
        ..cfg(3)
    };
    let (_, s) = bytes(&c);
    assert!(s.span_us <= 20_000_000 + 100_000, "{s:?}");
    assert!(s.span_us >= 19_000_000, "{s:?}");
}

#[test]
fn otwatch_parses_it_cleanly_with_the_injected_gaps() {
    let c = cfg(11);
    let (data, s) = bytes(&c);
    let path = std::env::temp_dir().join(format!("otwatch-gen-test-{}.pcap", std::process::id()));
    std::fs::write(&path, &data).unwrap();
    let mut files = pipeline::open_all(std::slice::from_ref(&path)).unwrap();
    let st = pipeline::run(
        PipelineConfig::default(),
        &mut files,
        &mut |_| {},
        &mut |_, _| {},
    )
    .unwrap();
    let _ = std::fs::remove_file(&path);

    assert_eq!(st.packets, s.packets);
    assert!(st.decode.errors.is_empty(), "{:?}", st.decode.errors);
    let mb = &st.proto.modbus;
    let ua = &st.proto.opcua;
    assert!(mb.violations.is_empty(), "{:?}", mb.violations);
    assert!(ua.violations.is_empty(), "{:?}", ua.violations);
    assert_eq!(mb.pdus, s.modbus_adus);
    assert_eq!(ua.messages, s.opcua_messages);
    assert_eq!(ua.unknown_services, 0);
    assert!(ua.services.contains_key("PublishResponse"));
    assert!(ua.services.contains_key("CreateMonitoredItemsRequest"));

    // OPC UA share of packets near the 15 % asked for.
    let share = s.opcua_packets as f64 / s.packets as f64;
    assert!((0.10..=0.20).contains(&share), "share {share}");

    // Every lost segment is one reassembly gap, reordering makes none.
    assert!(s.lost_segments > 0 && s.reordered > 0, "{s:?}");
    assert_eq!(st.flows.reassembly_gaps, s.lost_segments);
    assert!(st.flows.out_of_order >= s.reordered);
    assert_eq!(ua.gaps, 0);
    // A lost response leaves its request unanswered.
    assert_eq!(mb.requests - mb.responses, s.lost_segments);
}
