//! OPC UA parser throughput on a realistic client/server conversation built from real messages.
//!
//! `cargo bench --bench opcua`. The conversation is one connection: HEL/ACK, OPN, CreateSession,
//! ActivateSession, then a steady state of polling Reads (with values and with bad item
//! statuses), Publish responses carrying a 23-item DataChangeNotification, and now and then a
//! large Read, a Browse and a CreateMonitoredItems. The messages are the byte fixtures of
//! `otwatch::proto::opcua::fixtures` (real captures), with the secure channel and token ids of
//! every MSG set to those the OPN opened, so that the whole stream is one consistent channel.
//! Each message is handed to `StreamParser::parse` on its own, as one packet would be.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use otwatch::flow::Direction::{self, ToClient, ToServer};
use otwatch::fuzzing::test_meta;
use otwatch::proto::opcua::fixtures::{self as fx, bytes};
use otwatch::proto::opcua::OpcuaParser;
use otwatch::proto::{ParseCx, ProtoStats, StreamParser};
use otwatch::time::Timestamp;
use std::hint::black_box;
use std::sync::Arc;

/// Steady-state cycles per conversation.
const CYCLES: usize = 50;

/// Channel and token ids granted by the OPN response fixture.
const CHANNEL: u32 = 3;
const TOKEN: u32 = 3;

/// A fixture's bytes, as a MSG of the conversation's channel.
fn msg(fixture: &str) -> Vec<u8> {
    let mut m = bytes(fixture);
    assert_eq!(&m[..3], b"MSG");
    m[8..12].copy_from_slice(&CHANNEL.to_le_bytes());
    m[12..16].copy_from_slice(&TOKEN.to_le_bytes());
    m
}

fn conversation() -> Vec<(Direction, Vec<u8>)> {
    let mut c = vec![
        (ToServer, bytes(fx::HEL)),
        (ToClient, bytes(fx::ACK)),
        (ToServer, bytes(fx::OPN_REQ)),
        (ToClient, bytes(fx::OPN_RESP)),
        (ToServer, msg(fx::CREATE_SESSION_REQ)),
        (ToClient, msg(fx::CREATE_SESSION_RESP)),
        (ToServer, msg(fx::ACTIVATE_REQ)),
        (ToClient, msg(fx::ACTIVATE_RESP)),
        (ToServer, msg(fx::CREATE_MONITORED_ITEMS_REQ)),
        (ToClient, msg(fx::CREATE_MONITORED_ITEMS_RESP)),
    ];
    for i in 0..CYCLES {
        c.push((ToServer, msg(fx::READ_POLL_REQ)));
        c.push((ToClient, msg(fx::READ_POLL_RESP)));
        c.push((ToServer, msg(fx::PUBLISH_REQ)));
        c.push((ToClient, msg(fx::PUBLISH_RESP)));
        c.push((ToServer, msg(fx::READ_REQ)));
        c.push((ToClient, msg(fx::READ_RESP)));
        if i % 10 == 0 {
            c.push((ToServer, msg(fx::READ_SERVER_REQ)));
            c.push((ToClient, msg(fx::READ_SERVER_RESP)));
            c.push((ToServer, msg(fx::BROWSE_REQ)));
            c.push((ToClient, msg(fx::BROWSE_RESP)));
        }
    }
    c
}

/// Parses the whole conversation with a fresh parser; returns the number of events.
fn run(conv: &[(Direction, Vec<u8>)], stats: &mut ProtoStats) -> usize {
    let meta = test_meta(4840);
    let file: Arc<str> = Arc::from("bench");
    let mut events = otwatch::proto::slots::EventBuf::new();
    let mut parser = OpcuaParser::new();
    let mut n = 0;
    for (i, (dir, m)) in conv.iter().enumerate() {
        let mut cx = ParseCx {
            ts: Timestamp::new(1_700_000_000, i as u32 * 1000),
            file: &file,
            packet: i as u64 + 1,
            meta: &meta,
            events: &mut events,
            stats,
        };
        let used = parser.parse(*dir, m, &mut cx);
        debug_assert_eq!(used, m.len());
        n += events.len();
        events.clear();
    }
    n
}

fn bench(c: &mut Criterion) {
    let conv = conversation();
    let messages = conv.len() as u64;
    let bytes: usize = conv.iter().map(|(_, m)| m.len()).sum();
    // The conversation must be clean: one event per pair, no violations.
    let mut stats = ProtoStats::default();
    let events = run(&conv, &mut stats);
    assert_eq!(events, conv.len() / 2, "{:?}", stats.opcua);
    assert!(stats.opcua.violations.is_empty(), "{:?}", stats.opcua);
    eprintln!(
        "opcua conversation: {messages} messages, {bytes} bytes, {events} events, {:.0} bytes/message",
        bytes as f64 / messages as f64
    );

    let mut g = c.benchmark_group("opcua");
    g.throughput(Throughput::Elements(messages));
    g.bench_function("parse_conversation", |b| {
        let mut stats = ProtoStats::default();
        b.iter(|| black_box(run(black_box(&conv), &mut stats)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
