//! Tests of the OPC UA parser driven through [`StreamParser`].

use super::fixtures::*;
use super::*;
use crate::event::{AccessDir, ObjectRef};
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
    pub(super) events: crate::proto::slots::EventBuf,
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
            events: crate::proto::slots::EventBuf::new(),
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
        if data.len() >= 8 && MsgType::from_bytes(&data[..3]).is_some() {
            let size = u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
            assert!(size <= data.len(), "fixture shorter than its size");
            if size < data.len() {
                let next = &data[size..];
                assert!(
                    MsgType::from_bytes(&next[..3.min(next.len())]).is_some(),
                    "size field"
                );
            }
        }
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

/// Hex to bytes; `//` starts a comment that runs to the end of the line.
pub(super) fn unhex(s: &str) -> Vec<u8> {
    let s: String = s
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .flat_map(|l| l.chars())
        .filter(|c| c.is_ascii_hexdigit())
        .collect();
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
        total.by_type.merge(&s.by_type);
        total.services.merge(&s.services);
        for (k, v) in s.violations {
            *total.violations.entry(k).or_insert(0) += v;
        }
        total.encrypted_messages += s.encrypted_messages;
        total.transactions += s.transactions;
        total.unanswered += s.unanswered;
        total.unsolicited += s.unsolicited;
        total.resyncs += s.resyncs;
        events.extend(h.events.take());
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

use Direction::{ToClient, ToServer};

fn b(s: &str) -> Vec<u8> {
    fixtures::bytes(s)
}

#[test]
fn fixtures_have_their_declared_sizes() {
    for f in [
        HEL,
        ACK,
        OPN_REQ,
        OPN_RESP,
        READ_REQ,
        READ_RESP,
        WRITE_REQ,
        WRITE_RESP,
        CALL_REQ,
        CALL_RESP,
        ACTIVATE_REQ,
        CREATE_SESSION_REQ,
        ERR,
        GET_ENDPOINTS_REQ,
        GET_ENDPOINTS_RESP,
        CREATE_SESSION_RESP,
        ACTIVATE_RESP,
        BROWSE_REQ,
        BROWSE_RESP,
        CREATE_MONITORED_ITEMS_REQ,
        CREATE_MONITORED_ITEMS_RESP,
        PUBLISH_REQ,
        PUBLISH_RESP,
        READ_SERVER_REQ,
        READ_SERVER_RESP,
        READ_POLL_REQ,
        READ_POLL_RESP,
        OPN_ENCRYPTED_REQ,
        OPN_ENCRYPTED_RESP,
    ] {
        let v = b(f);
        let size = u32::from_le_bytes([v[4], v[5], v[6], v[7]]) as usize;
        assert_eq!(v.len(), size, "{}", String::from_utf8_lossy(&v[..3]));
    }
}

#[test]
fn empty_input_consumes_nothing() {
    let mut h = Harness::new();
    let mut tail = Vec::new();
    assert_eq!(h.feed(ToServer, &[], &mut tail), 0);
    assert!(h.events.is_empty());
    assert_eq!(h.st().messages, 0);
}

#[test]
fn hello_acknowledge_is_one_session_event() {
    let mut h = Harness::new();
    h.msg(ToServer, &b(HEL));
    h.msg(ToClient, &b(ACK));
    assert_eq!(h.events.len(), 1);
    let e = &h.events[0];
    assert_eq!(e.function.name, "Hello");
    assert_eq!(e.op, OpKind::Session);
    assert_eq!(e.outcome, Outcome::Ok);
    assert_eq!(e.latency_us, Some(1000));
    assert_eq!(e.evidence.response_packet, Some(2));
    assert!(e.details.contains(&(
        "endpoint_url",
        Value::Str("opc.tcp://localhost:4840".into())
    )));
    assert!(e
        .details
        .contains(&("receive_buffer_size", Value::Int(65535))));
    assert_eq!(h.st().messages, 2);
    assert_eq!(h.st().by_type.get("HEL"), Some(&1));
    assert_eq!(h.st().by_type.get("ACK"), Some(&1));
}

#[test]
fn error_answers_hello_with_bad_status() {
    let mut h = Harness::new();
    h.msg(ToServer, &b(HEL));
    h.msg(ToClient, &b(ERR));
    assert_eq!(
        h.events[0].outcome,
        Outcome::Bad {
            code: 0x8002_0000,
            name: "BadInternalError"
        }
    );
    // An ERR without a HEL is an event of its own.
    h.msg(ToClient, &b(ERR));
    assert_eq!(h.events.len(), 2);
    assert_eq!(h.events[1].function.name, "Error");
    assert!(matches!(h.events[1].outcome, Outcome::Bad { .. }));
}

#[test]
fn open_secure_channel_policy_none() {
    let mut h = Harness::new();
    h.msg(ToServer, &b(OPN_REQ));
    h.msg(ToClient, &b(OPN_RESP));
    assert_eq!(h.events.len(), 1);
    let e = &h.events[0];
    assert_eq!(
        (e.function.code, e.function.name),
        (446, "OpenSecureChannel")
    );
    assert!(e
        .details
        .contains(&("security_policy", Value::Str("None".into()))));
    assert!(e
        .details
        .contains(&("security_mode", Value::Str("None".into()))));
    assert!(e
        .details
        .contains(&("request_type", Value::Str("Issue".into()))));
    assert!(e
        .details
        .contains(&("requested_lifetime_ms", Value::Int(600_000))));
    assert!(e.details.contains(&("channel_id", Value::Int(3))));
    assert_eq!(h.st().services.get("OpenSecureChannelRequest"), Some(&1));
    assert_eq!(h.st().encrypted_messages, 0);
    assert_eq!(h.st().transactions, 1);
}

#[test]
fn read_transaction() {
    let mut h = Harness::new();
    h.msg(ToServer, &b(READ_REQ));
    h.msg(ToClient, &b(READ_RESP));
    assert_eq!(h.events.len(), 1);
    let e = &h.events[0];
    assert_eq!(
        (e.function.code, e.function.name, e.function.category),
        (631, "Read", "service")
    );
    assert_eq!(e.op, OpKind::Read);
    assert_eq!(e.session.as_deref(), Some("4"));
    assert_eq!(
        e.accesses[0].object,
        ObjectRef::Node {
            node_id: "ns=1;s=the.answer".into(),
            attribute: Some(13)
        }
    );
    assert!(e
        .details
        .contains(&("bad_item_status", Value::Str("BadNodeIdUnknown".into()))));
    assert_eq!(e.outcome, Outcome::Ok);
    assert!(e.violations.is_empty());
    assert_eq!(h.st().services.get("ReadResponse"), Some(&1));
}

#[test]
fn read_response_with_value() {
    let mut h = Harness::new();
    h.msg(ToServer, &b(READ_REQ));
    let resp = b("
        4d5347 46 46000000 // MSG, F, size 70
        04000000 04000000 // channel, token
        0a000000 14000000 // sequence 10, request id 20
        01 00 7a02 // ReadResponse
        cc89934f2dd1d501 15000000 00000000 00 ffffffff 000000 // header, handle 21, Good
        01000000 // 1 DataValue
        01 0b 0000000000004540 // value: Double 42.0
        ffffffff // diagnostic infos null
    ");
    h.msg(ToClient, &resp);
    assert_eq!(h.events[0].accesses[0].values, vec![Value::Float(42.0)]);
}

#[test]
fn write_transaction_keeps_values() {
    let mut h = Harness::new();
    h.msg(ToServer, &b(WRITE_REQ));
    h.msg(ToClient, &b(WRITE_RESP));
    let e = &h.events[0];
    assert_eq!(e.op, OpKind::Write);
    assert_eq!(e.accesses[0].dir, AccessDir::Write);
    assert_eq!(e.accesses[0].values, vec![Value::Int(1)]);
    assert!(e
        .details
        .contains(&("bad_item_status", Value::Str("BadNodeIdUnknown".into()))));
}

#[test]
fn call_transaction() {
    let mut h = Harness::new();
    h.msg(ToServer, &b(CALL_REQ));
    h.msg(ToClient, &b(CALL_RESP));
    let e = &h.events[0];
    assert_eq!((e.op, e.function.code), (OpKind::Call, 712));
    assert_eq!(
        e.accesses[0].object,
        ObjectRef::Node {
            node_id: "ns=1;i=62541".into(),
            attribute: None
        }
    );
    assert_eq!(
        e.accesses[0].values,
        vec![Value::Str("Hello Server".into())]
    );
    assert!(e
        .details
        .contains(&("call_object", Value::Str("i=85".into()))));
}

#[test]
fn activate_session_records_user_not_password() {
    let mut h = Harness::new();
    h.msg(ToServer, &b(ACTIVATE_REQ));
    h.close();
    let e = &h.events[0];
    assert_eq!(e.function.name, "ActivateSession");
    assert_eq!(e.outcome, Outcome::NoResponse);
    assert!(e
        .details
        .contains(&("identity_token", Value::Str("UserName".into()))));
    assert!(e
        .details
        .contains(&("user_name", Value::Str("user1".into()))));
    let json = serde_json::to_string(e).unwrap();
    assert!(!json.contains("password"), "{json}");
    assert_eq!(h.st().unanswered, 1);
}

#[test]
fn create_session_client_facts() {
    let mut h = Harness::new();
    h.msg(ToServer, &b(CREATE_SESSION_REQ));
    h.close();
    let e = &h.events[0];
    assert_eq!(e.function.name, "CreateSession");
    assert!(e.facts.contains(&AssetFact {
        side: Side::Client,
        key: "application_uri",
        value: "urn:unconfigured:application".into()
    }));
    assert!(e.details.contains(&(
        "endpoint_url",
        Value::Str("opc.tcp://localhost:4840".into())
    )));
}

#[test]
fn service_fault_is_bad_outcome() {
    let mut h = Harness::new();
    h.msg(ToServer, &b(READ_REQ));
    let fault = b("
        4d5347 46 34000000 // MSG, F, size 52
        04000000 04000000 // channel, token
        0a000000 14000000 // sequence 10, request id 20
        01 00 8d01 // type id 397 ServiceFault
        cc89934f2dd1d501 // timestamp
        15000000 // request handle 21
        00002580 // service result BadSessionIdInvalid
        00 ffffffff 000000 // diagnostics, string table, additional header
    ");
    h.msg(ToClient, &fault);
    let e = &h.events[0];
    assert_eq!(e.function.name, "Read");
    assert_eq!(
        e.outcome,
        Outcome::Bad {
            code: 0x8025_0000,
            name: "BadSessionIdInvalid"
        }
    );
    assert_eq!(h.st().services.get("ServiceFault"), Some(&1));
}

#[test]
fn request_handle_mismatch_is_a_violation() {
    let mut h = Harness::new();
    h.msg(ToServer, &b(READ_REQ));
    let mut resp = b(READ_RESP);
    resp[36] = 0x99; // request handle 21 → 0x99
    h.msg(ToClient, &resp);
    assert!(h.events[0].violations.contains(&"request_handle_mismatch"));
}

#[test]
fn requests_seen_from_the_server_side_swap_endpoints() {
    let mut h = Harness::new();
    // The flow table guessed the sides wrong: requests arrive as "to client".
    h.msg(ToClient, &b(READ_REQ));
    h.msg(ToServer, &b(READ_RESP));
    let e = &h.events[0];
    assert_eq!(e.client, h.meta.server);
    assert_eq!(e.server, h.meta.client);
    assert_eq!(h.st().transactions, 1);
}

/// Splits the Read request body into a 'C' chunk and an 'F' chunk.
fn read_in_two_chunks() -> (Vec<u8>, Vec<u8>) {
    let full = b(READ_REQ);
    let (head, body) = full.split_at(24); // header + channel + token + sequence header
    let (b1, b2) = body.split_at(40);
    let mk = |chunk: u8, seq: u8, part: &[u8]| {
        let mut v = head.to_vec();
        v[3] = chunk;
        v[16] = seq;
        let size = (24 + part.len()) as u32;
        v[4..8].copy_from_slice(&size.to_le_bytes());
        v.extend_from_slice(part);
        v
    };
    (mk(b'C', 20, b1), mk(b'F', 21, b2))
}

#[test]
fn chunks_are_reassembled() {
    let mut h = Harness::new();
    let (c, f) = read_in_two_chunks();
    h.msg(ToServer, &c);
    assert!(h.events.is_empty());
    h.msg(ToServer, &f);
    h.msg(ToClient, &b(READ_RESP));
    assert_eq!(h.events.len(), 1);
    assert_eq!(h.events[0].evidence.packet, 1);
    assert_eq!(h.st().messages, 3);
    assert_eq!(h.st().by_type.get("MSG"), Some(&3));
}

#[test]
fn abort_chunk_drops_the_message() {
    let mut h = Harness::new();
    let (c, mut a) = read_in_two_chunks();
    h.msg(ToServer, &c);
    a[3] = b'A';
    h.msg(ToServer, &a);
    h.close();
    assert!(h.events.is_empty());
    assert_eq!(h.st().aborted, 1);
}

#[test]
fn too_many_chunks_is_a_counted_limit() {
    let mut h = Harness::with_parser(OpcuaParser::with_limits(DecodeLimits {
        max_chunks_per_message: 1,
        ..DecodeLimits::default()
    }));
    let (c, f) = read_in_two_chunks();
    h.msg(ToServer, &c);
    h.msg(ToServer, &f);
    assert!(h.events.is_empty());
    assert_eq!(h.st().limit_hits, 1);
    assert_eq!(h.st().violations.get("too_many_chunks"), Some(&1));
}

#[test]
fn messages_split_across_packets_and_packed_together() {
    let mut h = Harness::new();
    let mut all = b(HEL);
    all.extend(b(READ_REQ));
    let mut tail = Vec::new();
    // Byte by byte.
    for x in &all {
        h.feed(ToServer, std::slice::from_ref(x), &mut tail);
    }
    assert!(tail.is_empty());
    assert_eq!(h.st().messages, 2);
    // All at once, twice.
    let mut two = all.clone();
    two.extend(&all);
    h.msg(ToServer, &two);
    assert_eq!(h.st().messages, 6);
}

#[test]
fn gap_then_resync() {
    let mut h = Harness::new();
    h.msg(ToServer, &b(READ_REQ));
    h.gap(ToServer, 100);
    // Garbage (the rest of a lost message), then a whole message.
    let mut data = vec![0x42; 37];
    data.extend(b(WRITE_REQ));
    h.msg(ToServer, &data);
    h.msg(ToClient, &b(WRITE_RESP));
    assert_eq!(h.st().gaps, 1);
    assert_eq!(h.st().resyncs, 1);
    assert_eq!(h.st().skipped_bytes, 37);
    assert_eq!(h.events.len(), 1);
    assert_eq!(h.events[0].function.name, "Write");
}

#[test]
fn garbage_header_resyncs_and_keeps_partial_candidates() {
    let mut h = Harness::new();
    let mut tail = Vec::new();
    let msg = b(READ_REQ);
    let mut data = b"GARBAGE!".to_vec();
    data.extend(&msg[..5]); // a header split across packets
    h.feed(ToServer, &data, &mut tail);
    assert_eq!(tail, msg[..5].to_vec());
    h.feed(ToServer, &msg[5..], &mut tail);
    assert!(tail.is_empty());
    assert_eq!(h.st().violations.get("unknown_message_type"), Some(&1));
    assert_eq!(h.st().resyncs, 1);
    assert_eq!(h.st().services.get("ReadRequest"), Some(&1));
}

#[test]
fn oversized_chunks_are_skipped() {
    let mut h = Harness::with_parser(OpcuaParser::with_limits(DecodeLimits {
        max_chunk_size: 64,
        ..DecodeLimits::default()
    }));
    assert_eq!(h.p.max_message_len(), 64);
    let mut big = b(READ_REQ); // 121 bytes > 64
    let mut tail = Vec::new();
    let rest = big.split_off(50);
    h.feed(ToServer, &big, &mut tail);
    h.feed(ToServer, &rest, &mut tail);
    h.msg(ToServer, &b(HEL));
    assert_eq!(h.st().oversized_chunks, 1);
    assert_eq!(h.st().by_type.get("HEL"), Some(&1));
    assert!(tail.is_empty());
}

#[test]
fn encrypted_channel_is_counted_not_malformed() {
    let mut h = Harness::new();
    let opn = b("
        4f504e 46 4e000000 // OPN, F, size 78
        00000000 // channel id 0
        38000000 687474703a2f2f6f7063666f756e646174696f6e2e6f72672f55412f5365637572697479506f6c6963792342617369633235365368613235 // ...#Basic256Sha25
        02000000 3082 // sender certificate (2 bytes)
        ffffffff // receiver thumbprint null
    ");
    let mut opn = opn;
    opn.extend([0xee; 78 - 76]); // encrypted body
    opn[4] = opn.len() as u8;
    h.msg(ToServer, &opn);
    let mut resp = opn.clone();
    resp[8] = 7; // channel id 7
    h.msg(ToClient, &resp);
    assert_eq!(h.events.len(), 1);
    let e = &h.events[0];
    assert!(e.details.contains(&("encrypted", Value::Bool(true))));
    assert!(e
        .details
        .contains(&("sender_certificate_len", Value::Int(2))));
    let msg = b("
        4d5347 46 28000000 // MSG, F, size 40
        07000000 01000000 // channel 7, token 1
        8f1e2d3c4b5a6978 8796a5b4c3d2e1f0 0011223344556677 // encrypted
    ");
    h.msg(ToServer, &msg);
    assert_eq!(h.st().encrypted_messages, 3);
    assert!(h.st().violations.is_empty(), "{:?}", h.st().violations);
}

#[test]
fn close_secure_channel_event() {
    let mut h = Harness::new();
    let clo = b("
        434c4f 46 39000000 // CLO, F, size 57
        04000000 04000000 // channel 4, token 4
        1c000000 1c000000 // sequence 28, request id 28
        01 00 c401 // type id 452 CloseSecureChannelRequest
        0000 0000000000000000 1d000000 00000000 ffffffff 00000000 000000 // request header
    ");
    h.msg(ToServer, &clo);
    let e = &h.events[0];
    assert_eq!(
        (e.function.code, e.function.name),
        (452, "CloseSecureChannel")
    );
    assert_eq!(e.outcome, Outcome::NotApplicable);
    assert_eq!(h.st().by_type.get("CLO"), Some(&1));
}

#[test]
fn reverse_hello_event() {
    let mut h = Harness::new();
    let rhe = b("
        524845 46 15000000 // RHE, F, size 21
        05000000 75726e3a78 // server URI urn:x
        ffffffff // endpoint URL null
    ");
    h.msg(ToClient, &rhe);
    let e = &h.events[0];
    assert_eq!(e.function.name, "ReverseHello");
    assert_eq!(e.facts[0].value, "urn:x");
    assert_eq!(e.client, h.meta.client);
}

#[test]
fn unsolicited_response_and_pending_cap() {
    let mut h = Harness::with_parser(OpcuaParser::with_limits(DecodeLimits {
        max_pending: 1,
        ..DecodeLimits::default()
    }));
    h.msg(ToClient, &b(READ_RESP));
    assert_eq!(h.events[0].outcome, Outcome::Unsolicited);
    assert_eq!(h.events[0].function.code, 631);
    h.msg(ToServer, &b(READ_REQ));
    h.msg(ToServer, &b(WRITE_REQ));
    assert_eq!(h.events.len(), 2);
    assert_eq!(h.events[1].outcome, Outcome::NoResponse);
    assert_eq!(h.st().violations.get("too_many_pending_requests"), Some(&1));
    h.close();
    assert_eq!(h.st().unanswered, 2);
}

#[test]
fn truncated_bodies_are_violations_not_crashes() {
    let full = b(READ_REQ);
    for cut in 25..full.len() {
        let mut m = full[..cut].to_vec();
        m[4..8].copy_from_slice(&(cut as u32).to_le_bytes());
        let mut h = Harness::new();
        h.msg(ToServer, &m);
        h.close();
        // Either the type id was cut (not decodable: counted as possibly encrypted, since
        // no OPN told us the policy) or the event carries a violation.
        if let Some(e) = h.events.first() {
            assert!(!e.violations.is_empty(), "cut {cut}");
        }
    }
}

fn node(id: &str, attribute: Option<u32>) -> ObjectRef {
    ObjectRef::Node {
        node_id: id.into(),
        attribute,
    }
}

fn fact(side: Side, key: &'static str, value: &str) -> AssetFact {
    AssetFact {
        side,
        key,
        value: value.into(),
    }
}

fn has(e: &IcsEvent, key: &'static str, v: Value) -> bool {
    e.details.contains(&(key, v))
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

/// Runs request/response pairs through one parser; every pair must make one clean event.
fn transactions(pairs: &[(&str, &str)]) -> Harness {
    let mut h = Harness::new();
    for (req, resp) in pairs {
        h.msg(ToServer, &b(req));
        h.msg(ToClient, &b(resp));
    }
    assert_eq!(h.events.len(), pairs.len());
    assert_eq!(h.st().transactions, pairs.len() as u64);
    for e in &h.events {
        assert!(e.violations.is_empty(), "{e:?}");
        assert!(h.st().violations.is_empty(), "{:?}", h.st().violations);
    }
    h
}

#[test]
fn get_endpoints_transaction() {
    let h = transactions(&[(GET_ENDPOINTS_REQ, GET_ENDPOINTS_RESP)]);
    let e = &h.events[0];
    assert_eq!(
        (e.function.code, e.function.name, e.op),
        (428, "GetEndpoints", OpKind::Discovery)
    );
    assert_eq!(e.outcome, Outcome::Ok);
    assert_eq!(e.evidence.response_packet, Some(2));
    assert!(has(e, "endpoint_url", s("opc.tcp://localhost:4840")));
    assert!(has(e, "endpoints", Value::Int(1)));
    assert!(has(e, "offered_security", s("None/None")));
    assert!(has(e, "offered_identity", s("Anonymous")));
    assert!(has(e, "offered_identity", s("UserName")));
    for f in [
        fact(Side::Server, "endpoint_url", "opc.tcp://localhost:4840"),
        fact(
            Side::Server,
            "application_uri",
            "urn:open62541.server.application",
        ),
        fact(Side::Server, "product_uri", "http://open62541.org"),
        fact(
            Side::Server,
            "application_name",
            "open62541-based OPC UA Application",
        ),
        fact(Side::Server, "application_type", "Server"),
    ] {
        assert!(e.facts.contains(&f), "{f:?} in {:?}", e.facts);
    }
    assert_eq!(h.st().services.get("GetEndpointsResponse"), Some(&1));
}

#[test]
fn create_and_activate_session_transactions() {
    let h = transactions(&[
        (CREATE_SESSION_REQ, CREATE_SESSION_RESP),
        (ACTIVATE_REQ, ACTIVATE_RESP),
    ]);
    let (cs, act) = (&h.events[0], &h.events[1]);
    assert_eq!((cs.function.code, cs.op), (461, OpKind::Session));
    assert!(has(
        cs,
        "session_id",
        s("ns=1;g=9b63f7a0-fd18-0a8d-5235-f3cff51fd1dd")
    ));
    assert!(has(
        cs,
        "revised_session_timeout_ms",
        Value::Float(1_200_000.0)
    ));
    assert!(has(cs, "max_request_message_size", Value::Int(0)));
    assert!(cs.facts.contains(&fact(
        Side::Client,
        "application_uri",
        "urn:unconfigured:application"
    )));
    assert!(cs.facts.contains(&fact(
        Side::Server,
        "application_uri",
        "urn:open62541.server.application"
    )));
    assert_eq!(cs.outcome, Outcome::Ok);
    assert_eq!(act.function.name, "ActivateSession");
    assert_eq!(act.outcome, Outcome::Ok);
    assert!(has(act, "user_name", s("user1")));
}

#[test]
fn browse_transaction() {
    let h = transactions(&[(BROWSE_REQ, BROWSE_RESP)]);
    let e = &h.events[0];
    assert_eq!(
        (e.function.code, e.function.name, e.op),
        (527, "Browse", OpKind::Browse)
    );
    assert_eq!(e.accesses.len(), 1);
    assert_eq!(e.accesses[0].dir, AccessDir::Read);
    assert_eq!(e.accesses[0].object, node("i=85", None));
    assert!(has(e, "references", Value::Int(4)));
    assert_eq!(e.outcome, Outcome::Ok);
    assert_eq!(e.latency_us, Some(1000));
}

#[test]
fn create_monitored_items_transaction() {
    let h = transactions(&[(CREATE_MONITORED_ITEMS_REQ, CREATE_MONITORED_ITEMS_RESP)]);
    let e = &h.events[0];
    assert_eq!(
        (e.function.code, e.function.name, e.op),
        (751, "CreateMonitoredItems", OpKind::Subscribe)
    );
    assert_eq!(e.accesses[0].object, node("ns=1;s=the.answer", Some(13)));
    assert!(has(e, "subscription_id", Value::Int(1)));
    assert!(has(e, "sampling_interval_ms", Value::Float(250.0)));
    // The node does not exist on that server: the item failed, the service did not.
    assert!(has(e, "bad_item_status", s("BadNodeIdUnknown")));
    assert_eq!(e.outcome, Outcome::Ok);
}

#[test]
fn publish_with_data_change_notification() {
    let h = transactions(&[(PUBLISH_REQ, PUBLISH_RESP)]);
    let e = &h.events[0];
    assert_eq!(
        (e.function.code, e.function.name, e.op),
        (826, "Publish", OpKind::Subscribe)
    );
    assert_eq!(e.session.as_deref(), Some("13"));
    assert!(has(e, "acknowledgements", Value::Int(0)));
    assert!(has(e, "subscription_id", Value::Int(458_500_267)));
    assert!(has(e, "notification_sequence", Value::Int(1)));
    assert_eq!(e.accesses.len(), 23);
    let item = |handle: u32| {
        let name = format!("client_handle={handle}");
        e.accesses
            .iter()
            .find(|a| a.object == ObjectRef::Other { name: name.clone() })
            .map(|a| (a.dir, a.values.to_vec()))
            .unwrap()
    };
    assert_eq!(item(6), (AccessDir::Read, vec![Value::Bool(false)]));
    assert_eq!(item(5), (AccessDir::Read, vec![Value::Int(1)]));
    assert_eq!(item(1), (AccessDir::Read, vec![Value::Int(2)]));
    assert_eq!(item(17), (AccessDir::Read, vec![Value::Int(174)]));
    assert_eq!(item(11), (AccessDir::Read, vec![Value::Int(16)]));
}

#[test]
fn read_transactions_with_values() {
    let h = transactions(&[
        (READ_SERVER_REQ, READ_SERVER_RESP),
        (READ_POLL_REQ, READ_POLL_RESP),
    ]);
    let e = &h.events[0];
    assert_eq!(e.accesses.len(), 19);
    assert_eq!(e.accesses[0].object, node("i=2255", Some(13)));
    assert_eq!(
        e.accesses[0].values,
        [
            "http://opcfoundation.org/UA/",
            "urn:00:06:71:33:05:02",
            "urn:SiemensV2toOPCUA",
            "urn:System_items",
            "http://www.softing.com/OPCUA_Toolkit",
        ]
        .map(s)
        .to_vec()
    );
    assert_eq!(e.accesses[1].object, node("i=2735", Some(13)));
    assert_eq!(e.accesses[1].values, vec![Value::Int(100)]);
    assert_eq!(e.accesses[6].values, vec![Value::Float(0.0)]);
    assert!(e.accesses[7].values.is_empty()); // status only
    assert_eq!(e.accesses[18].object, node("i=2259", Some(13)));
    assert_eq!(e.accesses[18].values, vec![Value::Int(0)]);
    assert!(has(e, "bad_item_status", s("BadNodeIdUnknown")));
    let p = &h.events[1];
    assert_eq!(
        p.accesses[0].object,
        node("ns=2;s=sps-2.DB.OPC_UA.Site_MES_doSort", Some(17))
    );
    assert_eq!(p.accesses[0].values, vec![Value::Int(3)]);
}

/// SHA-1 of the client's certificate in frame 31 (`sha1sum` of the DER bytes), which the
/// server names as receiver thumbprint in frame 33, and the other way round.
const CLIENT_CERT_SHA1: &str = "85ef235574b9ee5b514de6d99728bfc880cc7d5c";
const SERVER_CERT_SHA1: &str = "02ef7d93ab6cbb3a6f9c202307188ddf171ec991";

#[test]
fn encrypted_open_records_certificate_thumbprints() {
    let mut h = Harness::new();
    h.msg(ToServer, &b(OPN_ENCRYPTED_REQ));
    h.msg(ToClient, &b(OPN_ENCRYPTED_RESP));
    assert_eq!(h.events.len(), 1);
    let e = &h.events[0];
    assert!(has(e, "security_policy", s("Basic128Rsa15")));
    assert!(has(e, "sender_certificate_len", Value::Int(993)));
    assert!(has(e, "sender_certificate_len", Value::Int(997)));
    assert!(has(e, "sender_certificate_sha1", s(CLIENT_CERT_SHA1)));
    assert!(has(e, "sender_certificate_sha1", s(SERVER_CERT_SHA1)));
    assert!(has(e, "receiver_thumbprint", s(SERVER_CERT_SHA1)));
    assert!(has(e, "receiver_thumbprint", s(CLIENT_CERT_SHA1)));
    assert!(e
        .facts
        .contains(&fact(Side::Client, "certificate_sha1", CLIENT_CERT_SHA1)));
    assert!(e
        .facts
        .contains(&fact(Side::Server, "certificate_sha1", SERVER_CERT_SHA1)));
    // Each thumbprint matches the certificate the peer sent.
    assert!(e.violations.is_empty(), "{:?}", e.violations);
    assert_eq!(h.st().encrypted_messages, 2);
}

#[test]
fn receiver_thumbprint_mismatch_is_a_violation() {
    let mut h = Harness::new();
    let mut req = b(OPN_ENCRYPTED_REQ);
    // Offset of the certificate: header 8, channel 4, policy 4 + 56, length 4; change a byte
    // of its serial number.
    let cert_at = 8 + 4 + 4 + 56 + 4;
    assert_eq!(req[cert_at..cert_at + 2], [0x30, 0x82]);
    req[cert_at + 20] ^= 0xff;
    h.msg(ToServer, &req);
    h.msg(ToClient, &b(OPN_ENCRYPTED_RESP));
    let e = &h.events[0];
    assert!(!has(e, "sender_certificate_sha1", s(CLIENT_CERT_SHA1)));
    assert_eq!(e.violations, vec!["receiver_thumbprint_mismatch"]);
    assert_eq!(
        h.st().violations.get("receiver_thumbprint_mismatch"),
        Some(&1)
    );
}

/// Splits a policy-None OPN into chunks of at most `piece` body bytes, each repeating the
/// security and sequence headers (79 bytes with a None policy and null certificates).
fn opn_in_chunks(fixture: &str, piece: usize) -> Vec<Vec<u8>> {
    let full = b(fixture);
    let (head, body) = full.split_at(79);
    let parts: Vec<&[u8]> = body.chunks(piece).collect();
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let mut v = head.to_vec();
            v[3] = if i + 1 == parts.len() { b'F' } else { b'C' };
            v[71] = i as u8 + 1; // sequence number
            let size = (79 + part.len()) as u32;
            v[4..8].copy_from_slice(&size.to_le_bytes());
            v.extend_from_slice(part);
            v
        })
        .collect()
}

#[test]
fn chunked_open_secure_channel_is_reassembled() {
    let mut h = Harness::new();
    let chunks = opn_in_chunks(OPN_REQ, 20);
    assert_eq!(chunks.len(), 3);
    for c in &chunks {
        assert!(h.events.is_empty());
        h.msg(ToServer, c);
    }
    h.msg(ToClient, &b(OPN_RESP));
    assert_eq!(h.events.len(), 1);
    let e = &h.events[0];
    assert_eq!((e.function.code, e.outcome.clone()), (446, Outcome::Ok));
    assert_eq!(e.evidence.packet, 1); // the first chunk
    assert!(has(e, "requested_lifetime_ms", Value::Int(600_000)));
    assert!(has(e, "channel_id", Value::Int(3)));
    assert_eq!(h.st().by_type.get("OPN"), Some(&4));
    assert_eq!(
        h.st().violations.get("chunked_open_secure_channel"),
        Some(&2)
    );
    assert_eq!(h.st().transactions, 1);
}

#[test]
fn chunked_open_secure_channel_abort_and_limits() {
    // Abort: the message is dropped.
    let mut h = Harness::new();
    let mut chunks = opn_in_chunks(OPN_REQ, 20);
    chunks[2][3] = b'A';
    for c in &chunks {
        h.msg(ToServer, c);
    }
    h.close();
    assert!(h.events.is_empty());
    assert_eq!(h.st().aborted, 1);
    // More chunks than allowed: counted and dropped.
    let mut h = Harness::with_parser(OpcuaParser::with_limits(DecodeLimits {
        max_chunks_per_message: 2,
        ..DecodeLimits::default()
    }));
    for c in &opn_in_chunks(OPN_REQ, 20) {
        h.msg(ToServer, c);
    }
    h.close();
    assert!(h.events.is_empty());
    assert_eq!(h.st().violations.get("too_many_chunks"), Some(&1));
    // A gap loses the partial OPN.
    let mut h = Harness::new();
    let chunks = opn_in_chunks(OPN_REQ, 20);
    h.msg(ToServer, &chunks[0]);
    h.gap(ToServer, 10);
    assert_eq!(
        h.st().violations.get("partial_message_lost_in_gap"),
        Some(&1)
    );
}

#[test]
fn chunked_encrypted_open_makes_one_event() {
    let mut h = Harness::new();
    let mut c = b(OPN_ENCRYPTED_REQ);
    c[3] = b'C';
    h.msg(ToServer, &c);
    assert!(h.events.is_empty());
    h.msg(ToServer, &b(OPN_ENCRYPTED_REQ));
    h.msg(ToClient, &b(OPN_ENCRYPTED_RESP));
    assert_eq!(h.events.len(), 1);
    assert_eq!(h.st().encrypted_messages, 3);
    assert_eq!(h.st().unanswered, 0);
}

#[test]
fn undecodable_response_header_does_not_claim_success() {
    // Cut the Read response inside its ResponseHeader (after the request handle).
    let full = b(READ_RESP);
    // Bytes 28..36 timestamp, 36..40 request handle, 40..44 service result.
    for cut in [28 + 4, 28 + 8, 28 + 8 + 4 + 2] {
        let mut h = Harness::new();
        h.msg(ToServer, &b(READ_REQ));
        let mut m = full[..cut].to_vec();
        m[4..8].copy_from_slice(&(cut as u32).to_le_bytes());
        h.msg(ToClient, &m);
        let e = &h.events[0];
        assert_eq!(
            e.outcome,
            Outcome::Bad {
                code: 0x8007_0000,
                name: "BadDecodingError"
            },
            "cut {cut}"
        );
        assert!(has(e, "service_result", Value::Opaque("undecodable")));
        assert_eq!(e.violations, vec!["truncated_body"]);
    }
    // Cut after the service result (in the diagnostics, or in the body): the server's Good
    // result stands, with the violation.
    for cut in [44, full.len() - 4] {
        let mut h = Harness::new();
        h.msg(ToServer, &b(READ_REQ));
        let mut m = full[..cut].to_vec();
        m[4..8].copy_from_slice(&(cut as u32).to_le_bytes());
        h.msg(ToClient, &m);
        let e = &h.events[0];
        assert_eq!(e.outcome, Outcome::Ok);
        assert!(!has(e, "service_result", Value::Opaque("undecodable")));
        assert_eq!(e.violations, vec!["truncated_body"]);
    }
}

/// Every real pair, with its response cut at every byte after the type id: one event, with a
/// violation, and success only when the service result (bytes 40..44) was read.
#[rstest::rstest]
#[case(GET_ENDPOINTS_REQ, GET_ENDPOINTS_RESP)]
#[case(CREATE_SESSION_REQ, CREATE_SESSION_RESP)]
#[case(ACTIVATE_REQ, ACTIVATE_RESP)]
#[case(BROWSE_REQ, BROWSE_RESP)]
#[case(CREATE_MONITORED_ITEMS_REQ, CREATE_MONITORED_ITEMS_RESP)]
#[case(PUBLISH_REQ, PUBLISH_RESP)]
#[case(READ_SERVER_REQ, READ_SERVER_RESP)]
#[case(READ_POLL_REQ, READ_POLL_RESP)]
fn truncated_responses_at_every_field(#[case] req: &str, #[case] resp: &str) {
    let full = b(resp);
    for cut in 28..full.len() {
        let mut h = Harness::new();
        h.msg(ToServer, &b(req));
        let mut m = full[..cut].to_vec();
        m[4..8].copy_from_slice(&(cut as u32).to_le_bytes());
        h.msg(ToClient, &m);
        assert_eq!(h.events.len(), 1, "cut {cut}");
        let e = &h.events[0];
        assert!(!e.violations.is_empty(), "cut {cut}");
        if cut < 44 {
            assert_eq!(e.outcome, UNDECODABLE, "cut {cut}");
        } else {
            assert_eq!(e.outcome, Outcome::Ok, "cut {cut}");
        }
    }
}

/// Every real request cut at every byte after the type id: an event with a violation.
#[rstest::rstest]
#[case(GET_ENDPOINTS_REQ)]
#[case(BROWSE_REQ)]
#[case(CREATE_MONITORED_ITEMS_REQ)]
#[case(PUBLISH_REQ)]
#[case(READ_SERVER_REQ)]
#[case(READ_POLL_REQ)]
fn truncated_requests_at_every_field(#[case] req: &str) {
    let full = b(req);
    for cut in 28..full.len() {
        let mut h = Harness::new();
        let mut m = full[..cut].to_vec();
        m[4..8].copy_from_slice(&(cut as u32).to_le_bytes());
        h.msg(ToServer, &m);
        h.close();
        assert_eq!(h.events.len(), 1, "cut {cut}");
        assert!(!h.events[0].violations.is_empty(), "cut {cut}");
    }
}

#[test]
fn error_with_truncated_reason_keeps_its_status() {
    // The status was read, so it is the outcome; the reason is a violation.
    let mut h = Harness::new();
    h.msg(ToServer, &b(HEL));
    let mut err = b(ERR);
    err[12..16].copy_from_slice(&[5, 0, 0, 0]); // reason of 5 bytes, none present
    h.msg(ToClient, &err);
    assert_eq!(
        h.events[0].outcome,
        Outcome::Bad {
            code: 0x8002_0000,
            name: "BadInternalError"
        }
    );
    assert_eq!(h.events[0].violations, vec!["truncated_body"]);
}

#[test]
fn probe_entry_point() {
    assert_eq!(probe(&b(HEL)), Probe::Match);
    assert_eq!(probe(b"\x00\x01\x00\x00"), Probe::NoMatch);
}

proptest::proptest! {
    #[test]
    fn parse_never_panics(
        chunks in proptest::collection::vec(
            (proptest::bool::ANY, proptest::collection::vec(proptest::num::u8::ANY, 0..200)),
            0..8,
        ),
        prefix in 0usize..4,
        chunk_type in proptest::sample::select(vec![b'F', b'C', b'A']),
    ) {
        let mut h = Harness::new();
        let mut tails = [Vec::new(), Vec::new()];
        for (i, (to_server, mut data)) in chunks.into_iter().enumerate() {
            // Start with a real message whose body after `keep` bytes is replaced by the
            // random bytes, so that the fuzz reaches the decoders (MSG body, OPN sequence
            // header and body, encrypted OPN certificate).
            let base = match prefix {
                1 => Some((READ_REQ, 24)),
                2 => Some((OPN_REQ, 79)),
                3 => Some((OPN_ENCRYPTED_REQ, 80)),
                _ => None,
            };
            if let (Some((fixture, keep)), 0 | 1) = (base, i) {
                let mut m = b(fixture);
                m[3] = chunk_type;
                let n = data.len().min(m.len() - keep);
                m[keep..keep + n].copy_from_slice(&data[..n]);
                data = m;
            }
            let dir = if to_server { ToServer } else { ToClient };
            let t = &mut tails[dir.index()];
            h.feed(dir, &data, t);
            if i == 3 {
                h.gap(dir, 10);
                t.clear();
            }
        }
        h.close();
    }
}

#[test]
fn kept_session_text_follows_the_channel_id() {
    let mut p = OpcuaParser::new();
    assert_eq!(p.session(), None);
    for id in [7, 7, 12345, 0, 0, u32::MAX, 7] {
        p.channel.id = Some(id);
        assert_eq!(p.session(), Some(id.to_string()));
        assert_eq!(p.session(), Some(id.to_string()));
    }
    p.channel.id = None;
    assert_eq!(p.session(), None);
}

/// `msg` with its chunk size field set to its length.
fn sized(mut msg: Vec<u8>) -> Vec<u8> {
    let n = u32::try_from(msg.len()).unwrap().to_le_bytes();
    msg[4..8].copy_from_slice(&n);
    msg
}

/// The events and counters of `msgs` through one flow, with the Publish path that decodes a
/// response into its request's record (`general_only` false) or without it.
fn publish_run(msgs: &[(Direction, &[u8])], general_only: bool) -> (Vec<IcsEvent>, String) {
    publish_run_with(msgs, general_only, DecodeLimits::default())
}

/// [`publish_run`] with these decode limits.
fn publish_run_with(
    msgs: &[(Direction, &[u8])],
    general_only: bool,
    limits: DecodeLimits,
) -> (Vec<IcsEvent>, String) {
    let mut p = OpcuaParser::with_limits(limits);
    p.general_only = general_only;
    let mut h = Harness::with_parser(p);
    for (dir, m) in msgs {
        let mut tail = Vec::new();
        h.feed(*dir, m, &mut tail);
    }
    h.close();
    (h.events.take(), format!("{:?}", h.stats))
}

/// The Publish path gives the events and counters of the general one: the fixtures, with
/// acknowledgements and bad results, every truncation of the response, every byte of both
/// messages changed, two transactions in flight, a Publish response to a Read request and
/// one without a request.
#[test]
fn publish_into_request_matches_general_merge() {
    let req = b(PUBLISH_REQ);
    let resp = b(PUBLISH_RESP);
    // Two acknowledgements; results Good, BadNodeIdUnknown twice and BadTimeout.
    let mut acked = req[..req.len() - 4].to_vec();
    acked.extend_from_slice(&[2, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0]);
    let acked = sized(acked);
    let mut bad = resp[..resp.len() - 8].to_vec();
    for code in [0u32, 0x8034_0000, 0x8034_0000, 0x800a_0000] {
        if code == 0 {
            bad.extend_from_slice(&4u32.to_le_bytes());
        }
        bad.extend_from_slice(&code.to_le_bytes());
    }
    bad.extend_from_slice(&[0xff; 4]);
    let bad = sized(bad);
    let read = b(READ_POLL_REQ);
    let mut read_32 = read.clone();
    read_32[20..24].copy_from_slice(&32u32.to_le_bytes()); // request id 32, as the Publish
    let mut cases: Vec<Vec<(Direction, Vec<u8>)>> = vec![
        vec![(ToServer, req.clone()), (ToClient, resp.clone())],
        vec![(ToServer, acked.clone()), (ToClient, bad.clone())],
        vec![(ToServer, read_32), (ToClient, resp.clone())],
        vec![(ToClient, resp.clone())],
    ];
    let mut second = acked.clone();
    second[20..24].copy_from_slice(&33u32.to_le_bytes());
    let mut second_resp = bad.clone();
    second_resp[20..24].copy_from_slice(&33u32.to_le_bytes());
    cases.push(vec![
        (ToServer, req.clone()),
        (ToServer, second),
        (ToClient, second_resp),
        (ToClient, resp.clone()),
    ]);
    for (rq, rs) in [(&req, &resp), (&acked, &bad)] {
        for n in 8..rs.len() {
            cases.push(vec![
                (ToServer, rq.clone()),
                (ToClient, sized(rs[..n].to_vec())),
            ]);
        }
        for i in 8..rs.len() {
            for v in [0x00, 0xff, 0x7f, 0x01, 0x80] {
                let mut m = rs.clone();
                m[i] = v;
                cases.push(vec![(ToServer, rq.clone()), (ToClient, m)]);
            }
        }
        for i in 8..rq.len() {
            for v in [0x00, 0xff, 0x01] {
                let mut m = rq.clone();
                m[i] = v;
                cases.push(vec![(ToServer, m), (ToClient, rs.clone())]);
            }
        }
    }
    let mut direct = 0;
    for case in &cases {
        let msgs: Vec<(Direction, &[u8])> = case.iter().map(|(d, m)| (*d, &m[..])).collect();
        let fast = publish_run(&msgs, false);
        let general = publish_run(&msgs, true);
        assert_eq!(fast, general, "{case:?}");
        direct += fast
            .0
            .iter()
            .filter(|e| e.function.name == "Publish" && e.latency_us.is_some())
            .count();
    }
    assert!(direct > 1000, "{direct}");
}

/// `msg` (a MSG chunk) split into a 'C' chunk of the first `n` body bytes and the final chunk.
fn split_chunk(msg: &[u8], n: usize) -> Vec<u8> {
    let head = &msg[8..24]; // channel, token, sequence header
    let body = &msg[24..];
    let n = n.min(body.len());
    let mut c = b"MSGC\0\0\0\0".to_vec();
    c.extend_from_slice(head);
    c.extend_from_slice(&body[..n]);
    let mut f = b"MSGF\0\0\0\0".to_vec();
    f.extend_from_slice(head);
    f.extend_from_slice(&body[n..]);
    let mut out = sized(c);
    out.extend(sized(f));
    out
}

/// A Publish request waits in its own record and its response is emitted in one step; the
/// events and counters are those of the general path whatever comes between the two (a
/// second request, with the same id or another, a Read, a channel that changes, the end of
/// the flow, a ServiceFault, a response with another id, chunked messages), whatever the
/// pending cap (0 and 1 included) and the other limits, every byte of the request changed.
#[test]
fn publish_wait_matches_general_path() {
    let req = b(PUBLISH_REQ);
    let resp = b(PUBLISH_RESP);
    let with_id = |m: &[u8], id: u32| {
        let mut m = m.to_vec();
        m[20..24].copy_from_slice(&id.to_le_bytes());
        m
    };
    let read = with_id(&b(READ_POLL_REQ), 40);
    let read_resp = with_id(&b(READ_POLL_RESP), 40);
    // A ServiceFault with BadTimeout to request 32.
    let mut fault = resp[..52].to_vec();
    fault[26..28].copy_from_slice(&397u16.to_le_bytes());
    fault[40..44].copy_from_slice(&0x800a_0000u32.to_le_bytes());
    let fault = sized(fault);
    let mut other_handle = resp.clone();
    other_handle[36..40].copy_from_slice(&7u32.to_le_bytes());
    let (opn, opn_resp) = (b(OPN_REQ), b(OPN_RESP));
    let cases: Vec<Vec<(Direction, Vec<u8>)>> = vec![
        vec![(ToServer, req.clone())],
        vec![(ToServer, req.clone()), (ToClient, resp.clone())],
        vec![
            (ToServer, req.clone()),
            (ToServer, req.clone()),
            (ToClient, resp.clone()),
        ],
        vec![
            (ToServer, req.clone()),
            (ToServer, read.clone()),
            (ToClient, read_resp.clone()),
            (ToClient, resp.clone()),
        ],
        vec![
            (ToServer, req.clone()),
            (ToServer, read.clone()),
            (ToClient, resp.clone()),
            (ToClient, read_resp.clone()),
        ],
        vec![
            (ToServer, req.clone()),
            (ToClient, with_id(&resp, 33)),
            (ToClient, resp.clone()),
        ],
        vec![
            (ToServer, req.clone()),
            (ToClient, fault.clone()),
            (ToClient, resp.clone()),
        ],
        vec![(ToServer, req.clone()), (ToClient, other_handle.clone())],
        vec![
            (ToServer, req.clone()),
            (ToServer, opn.clone()),
            (ToClient, opn_resp.clone()),
            (ToClient, resp.clone()),
        ],
        vec![(ToClient, resp.clone()), (ToServer, req.clone())],
        vec![
            (ToServer, req.clone()),
            (ToClient, resp.clone()),
            (ToClient, resp.clone()),
        ],
        vec![
            (ToServer, req.clone()),
            (ToClient, resp.clone()),
            (ToServer, with_id(&req, 33)),
            (ToClient, with_id(&resp, 33)),
            (ToServer, with_id(&req, 34)),
        ],
        vec![
            (ToServer, split_chunk(&req, 5)),
            (ToClient, split_chunk(&resp, 100)),
        ],
        vec![(ToServer, req.clone()), (ToClient, split_chunk(&resp, 3))],
        vec![
            (ToServer, opn.clone()),
            (ToClient, opn_resp.clone()),
            (ToServer, req.clone()),
        ],
    ];
    let mut all = cases.clone();
    for i in 8..req.len() {
        for v in [0x00, 0xff, 0x01, 0x80] {
            let mut m = req.clone();
            m[i] = v;
            all.push(vec![(ToServer, m.clone()), (ToClient, resp.clone())]);
            all.push(vec![
                (ToServer, m),
                (ToServer, read.clone()),
                (ToClient, resp.clone()),
            ]);
        }
    }
    for n in 8..req.len() {
        all.push(vec![
            (ToServer, sized(req[..n].to_vec())),
            (ToClient, resp.clone()),
        ]);
    }
    let limits = [
        DecodeLimits::default(),
        DecodeLimits {
            max_pending: 1,
            ..DecodeLimits::default()
        },
        DecodeLimits {
            max_pending: 0,
            ..DecodeLimits::default()
        },
        DecodeLimits {
            max_accesses_kept: 3,
            max_depth: 1,
            ..DecodeLimits::default()
        },
        DecodeLimits {
            max_message_size: 200,
            ..DecodeLimits::default()
        },
    ];
    for (li, lim) in limits.iter().enumerate() {
        for case in &all {
            let msgs: Vec<(Direction, &[u8])> = case.iter().map(|(d, m)| (*d, &m[..])).collect();
            let fast = publish_run_with(&msgs, false, lim.clone());
            let general = publish_run_with(&msgs, true, lim.clone());
            assert_eq!(fast, general, "limits {li} {case:?}");
        }
    }
    // The request does wait in its own record, and leaves it for its response.
    let mut h = Harness::new();
    h.msg(ToServer, &req);
    assert!(h.p.wait.is_some() && h.p.pending.is_empty());
    h.msg(ToClient, &resp);
    assert!(h.p.wait.is_none() && h.p.pending.is_empty());
    assert_eq!(h.events.len(), 1);
    assert_eq!(h.events[0].accesses.len(), 23);
    assert_eq!(h.events[0].session.as_deref(), Some("13"));
    h.msg(ToServer, &req);
    h.msg(ToServer, &read);
    assert!(h.p.wait.is_none() && h.p.pending.len() == 2);
}

/// The events and counters of `msgs` through one flow, each message fed in two packets cut
/// at `cut` (tails kept per direction, as the stream driver keeps them), through the
/// one-step paths (`general_only` false) or the general ones only.
fn conversation_run(
    msgs: &[(Direction, Vec<u8>)],
    general_only: bool,
    limits: &DecodeLimits,
    cut: usize,
) -> (Vec<IcsEvent>, String) {
    let mut p = OpcuaParser::with_limits(limits.clone());
    p.general_only = general_only;
    let mut h = Harness::with_parser(p);
    let mut tails = [Vec::new(), Vec::new()];
    for (dir, m) in msgs {
        let (a, b) = m.split_at(cut.min(m.len()));
        for part in [a, b] {
            if !part.is_empty() {
                h.feed(*dir, part, &mut tails[dir.index()]);
            }
        }
    }
    h.close();
    (h.events.take(), format!("{:?}", h.stats))
}

/// `m` (a MSG or OPN chunk) with its channel id set to `channel`.
fn on_channel(mut m: Vec<u8>, channel: u32) -> Vec<u8> {
    m[8..12].copy_from_slice(&channel.to_le_bytes());
    m
}

/// The first `n` body bytes of the MSG chunk `m` as a 'C' chunk, and the rest as its final.
fn chunk_pair(m: &[u8], n: usize) -> (Vec<u8>, Vec<u8>) {
    let both = split_chunk(m, n);
    let first = u32::from_le_bytes([both[4], both[5], both[6], both[7]]) as usize;
    (both[..first].to_vec(), both[first..].to_vec())
}

/// The one-step chunk path (`common_msg`) gives the events and counters of the general one:
/// conversations of the fixtures on one channel, on the channel an OPN opened, on a channel
/// opened with encryption, with a message being reassembled in between; every byte of the
/// chunk headers changed; messages cut across packets; size, message, pending and chunk
/// caps that make it fall back.
#[test]
fn common_msg_matches_general_path() {
    let pairs = [
        (READ_REQ, READ_RESP),
        (WRITE_REQ, WRITE_RESP),
        (CALL_REQ, CALL_RESP),
        (BROWSE_REQ, BROWSE_RESP),
        (CREATE_MONITORED_ITEMS_REQ, CREATE_MONITORED_ITEMS_RESP),
        (PUBLISH_REQ, PUBLISH_RESP),
        (READ_POLL_REQ, READ_POLL_RESP),
        (GET_ENDPOINTS_REQ, GET_ENDPOINTS_RESP),
        (CREATE_SESSION_REQ, CREATE_SESSION_RESP),
        (ACTIVATE_REQ, ACTIVATE_RESP),
        (READ_SERVER_REQ, READ_SERVER_RESP),
    ];
    let on = |channel: u32| -> Vec<(Direction, Vec<u8>)> {
        pairs
            .iter()
            .flat_map(|(q, r)| {
                [
                    (ToServer, on_channel(b(q), channel)),
                    (ToClient, on_channel(b(r), channel)),
                ]
            })
            .collect()
    };
    let plain: Vec<(Direction, Vec<u8>)> = pairs
        .iter()
        .flat_map(|(q, r)| [(ToServer, b(q)), (ToClient, b(r))])
        .collect();
    let mut opened = vec![
        (ToServer, b(HEL)),
        (ToClient, b(ACK)),
        (ToServer, b(OPN_REQ)),
        (ToClient, b(OPN_RESP)),
    ];
    opened.extend(on(3));
    let mut encrypted = vec![
        (ToServer, b(OPN_ENCRYPTED_REQ)),
        (ToClient, b(OPN_ENCRYPTED_RESP)),
    ];
    encrypted.extend(on(2));
    // A Read reassembled from two chunks while other messages pass.
    let mut interleaved = on(4);
    let (c, f) = chunk_pair(&on_channel(b(READ_REQ), 4), 9);
    interleaved.insert(2, (ToServer, c));
    interleaved.insert(5, (ToServer, f));
    let conversations = [on(4), plain, opened, encrypted, interleaved];
    let limits = [
        DecodeLimits::default(),
        DecodeLimits {
            max_message_size: 90,
            ..DecodeLimits::default()
        },
        DecodeLimits {
            max_chunk_size: 120,
            ..DecodeLimits::default()
        },
        DecodeLimits {
            max_declared_chunk_size: 150,
            ..DecodeLimits::default()
        },
        DecodeLimits {
            max_pending: 1,
            max_accesses_kept: 2,
            ..DecodeLimits::default()
        },
    ];
    let mut runs = 0;
    for conv in &conversations {
        for lim in &limits {
            for cut in [usize::MAX, 3, 8, 20, 24, 40] {
                let fast = conversation_run(conv, false, lim, cut);
                let general = conversation_run(conv, true, lim, cut);
                assert_eq!(fast, general, "{lim:?} cut {cut} {conv:?}");
                runs += 1;
            }
        }
        // Every byte of every chunk header (type, chunk type, size, channel, token,
        // sequence header) changed.
        for i in 0..conv.len() {
            for j in 0..24 {
                for v in [0x00, 0xff, 0x01, b'C', b'A', b'M'] {
                    let mut changed = conv.clone();
                    if j >= changed[i].1.len() {
                        continue;
                    }
                    changed[i].1[j] = v;
                    let lim = DecodeLimits::default();
                    let fast = conversation_run(&changed, false, &lim, usize::MAX);
                    let general = conversation_run(&changed, true, &lim, usize::MAX);
                    assert_eq!(fast, general, "message {i} byte {j} = {v}");
                    runs += 1;
                }
            }
        }
    }
    assert!(runs > 5000, "{runs}");
    // The common chunks do take the one-step path: all but the first, which names the
    // channel.
    let mut h = Harness::new();
    for (dir, m) in on(4) {
        h.msg(dir, &m);
    }
    assert_eq!(h.events.len(), pairs.len());
    assert_eq!(h.p.common_taken, 2 * pairs.len() - 1);
}
