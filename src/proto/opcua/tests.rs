//! Tests of the OPC UA parser driven through [`StreamParser`].

use super::*;
use crate::flow::{FlowKey, FlowMeta, SideSource};
use crate::proto::ProtoStats;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

pub(super) fn meta(client_port: u16, server_port: u16) -> FlowMeta {
    let c = Endpoint {
        ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        port: client_port,
        mac: None,
    };
    let s = Endpoint {
        ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        port: server_port,
        mac: None,
    };
    FlowMeta {
        id: 1,
        key: FlowKey::new((c.ip, c.port), (s.ip, s.port), 6, 0),
        client: c,
        server: s,
        side_source: SideSource::Port,
        first_seen: Timestamp::default(),
        last_seen: Timestamp::default(),
        packets: [0, 0],
        bytes: [0, 0],
        vlan: None,
    }
}

/// A harness: one parser, its flow, stats and events.
pub(super) struct Harness {
    pub(super) p: OpcuaParser,
    pub(super) meta: FlowMeta,
    pub(super) stats: ProtoStats,
    pub(super) events: Vec<IcsEvent>,
    pub(super) file: Arc<str>,
    pub(super) packet: u64,
    pub(super) ts: Timestamp,
}

impl Harness {
    pub(super) fn new() -> Self {
        Self::with_parser(OpcuaParser::new())
    }

    pub(super) fn with_parser(p: OpcuaParser) -> Self {
        Harness {
            p,
            meta: meta(50000, 4840),
            stats: ProtoStats::default(),
            events: Vec::new(),
            file: Arc::from("test.pcap"),
            packet: 0,
            ts: Timestamp::new(1_700_000_000, 0),
        }
    }

    /// Feeds one packet's payload, as the stream driver would (keeping the unconsumed tail).
    pub(super) fn feed(&mut self, dir: Direction, data: &[u8], tail: &mut Vec<u8>) -> usize {
        self.packet += 1;
        self.ts = self.ts.plus_secs(0);
        self.ts = Timestamp::new(self.ts.secs, self.ts.nanos + 1_000_000);
        tail.extend_from_slice(data);
        let mut cx = ParseCx {
            ts: self.ts,
            file: &self.file,
            packet: self.packet,
            meta: &self.meta,
            events: &mut self.events,
            stats: &mut self.stats,
        };
        let used = self.p.parse(dir, tail, &mut cx);
        assert!(used <= tail.len());
        tail.drain(..used);
        used
    }

    /// Feeds one whole message (no tail expected).
    pub(super) fn msg(&mut self, dir: Direction, data: &[u8]) {
        let mut tail = Vec::new();
        let used = self.feed(dir, data, &mut tail);
        assert_eq!(used, data.len(), "whole message consumed");
    }

    pub(super) fn gap(&mut self, dir: Direction, len: u64) {
        let mut cx = ParseCx {
            ts: self.ts,
            file: &self.file,
            packet: self.packet,
            meta: &self.meta,
            events: &mut self.events,
            stats: &mut self.stats,
        };
        self.p.on_gap(dir, len, &mut cx);
    }

    pub(super) fn close(&mut self) {
        let mut cx = ParseCx {
            ts: self.ts,
            file: &self.file,
            packet: self.packet,
            meta: &self.meta,
            events: &mut self.events,
            stats: &mut self.stats,
        };
        self.p.on_close(&mut cx);
    }

    pub(super) fn st(&self) -> &OpcuaStats {
        &self.stats.opcua
    }
}

pub(super) fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Development harness: `OPCUA_TSV=file.tsv cargo test dev_tsv -- --ignored --nocapture`,
/// with the TSV from `tshark -T fields -e frame.number -e tcp.stream -e tcp.srcport
/// -e tcp.dstport -e tcp.flags.syn -e tcp.payload -Y tcp.len>0`.
#[test]
#[ignore]
fn dev_tsv() {
    let path = std::env::var("OPCUA_TSV").unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let mut flows: std::collections::BTreeMap<u64, (Harness, u16, [Vec<u8>; 2])> =
        Default::default();
    let mut total = OpcuaStats::default();
    let mut events = Vec::new();
    let mut push = |h: &mut Harness| {
        h.close();
        let s = h.st().clone();
        total.messages += s.messages;
        for (k, v) in s.by_type {
            *total.by_type.entry(k).or_insert(0) += v;
        }
        for (k, v) in s.services {
            *total.services.entry(k).or_insert(0) += v;
        }
        for (k, v) in s.violations {
            *total.violations.entry(k).or_insert(0) += v;
        }
        total.encrypted_messages += s.encrypted_messages;
        total.transactions += s.transactions;
        total.unanswered += s.unanswered;
        total.unsolicited += s.unsolicited;
        total.resyncs += s.resyncs;
        events.append(&mut h.events);
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 6 {
            continue;
        }
        let frame: u64 = f[0].parse().unwrap();
        let stream: u64 = f[1].parse().unwrap();
        let (sp, dp): (u16, u16) = (f[2].parse().unwrap(), f[3].parse().unwrap());
        let e = flows.entry(stream).or_insert_with(|| {
            let server = if [4840, 48010, 12001].contains(&sp) {
                sp
            } else {
                dp
            };
            let mut h = Harness::new();
            h.meta = meta(if server == sp { dp } else { sp }, server);
            (h, server, [Vec::new(), Vec::new()])
        });
        let dir = if dp == e.1 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        e.0.packet = frame - 1;
        let data = unhex(f[5]);
        let mut tail = std::mem::take(&mut e.2[dir.index()]);
        e.0.feed(dir, &data, &mut tail);
        e.2[dir.index()] = tail;
    }
    for (_, (mut h, _, _)) in flows {
        push(&mut h);
    }
    println!("{}", serde_json::to_string_pretty(&total).unwrap());
    for e in events.iter().take(
        std::env::var("OPCUA_EVENTS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    ) {
        println!("{}", serde_json::to_string(e).unwrap());
    }
}
