//! Entry points shared by the `cargo fuzz` targets in `fuzz/` and by the corpus replay test.
//!
//! Each takes arbitrary bytes and must never panic, whatever they are.

use crate::capture::Packet;
use crate::decode::LinkType;
use crate::event::Endpoint;
use crate::flow::{Direction, FlowKey, FlowMeta, SideSource};
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::proto::{ParseCx, ProtoStats, StreamParser};
use crate::time::Timestamp;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// The whole packet path: decode, flows, reassembly, detection and parsers.
///
/// Layout: byte 0 picks the link type; then records of `[len: u16 BE][dt_ms: u8][bytes]`, one
/// per packet, with a small flow cap so that eviction runs too.
pub fn packet_path(data: &[u8]) {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let link = match sel % 6 {
        0 => LinkType::Ethernet,
        1 => LinkType::Null,
        2 => LinkType::Raw,
        3 => LinkType::LinuxSll,
        4 => LinkType::LinuxSll2,
        _ => LinkType::Loop,
    };
    let mut cfg = PipelineConfig::default();
    cfg.flow.max_flows = 8;
    cfg.flow.max_buffered_bytes = 4096;
    cfg.flow.max_holes = 4;
    let mut p = Pipeline::new(cfg);
    let file: Arc<str> = Arc::from("fuzz");
    let mut ts = Timestamp::new(1_000_000, 0);
    let mut number = 0;
    let mut sink = |_: &crate::event::IcsEvent| {};
    while let [h, l, dt, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*h, *l])).min(tail.len());
        let (pkt, next) = tail.split_at(len);
        rest = next;
        number += 1;
        ts = Timestamp::from_micros(ts.as_micros() + i64::from(*dt) * 1000);
        let packet = Packet {
            ts,
            link,
            data: pkt,
            orig_len: len as u32,
            number,
        };
        p.process(&file, &packet, &mut sink);
    }
    p.finish(&file, &mut sink);
}

/// A test flow between 10.0.0.1:40000 (client) and 10.0.0.2:`port` (server).
pub fn test_meta(port: u16) -> FlowMeta {
    let client = Endpoint {
        ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        port: 40000,
        mac: None,
    };
    let server = Endpoint {
        ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        port,
        mac: None,
    };
    FlowMeta {
        id: 1,
        key: FlowKey::new((client.ip, client.port), (server.ip, server.port), 6, 0),
        client,
        server,
        side_source: SideSource::Handshake,
        first_seen: Timestamp::default(),
        last_seen: Timestamp::default(),
        packets: [0, 0],
        bytes: [0, 0],
        vlan: None,
    }
}

/// Feeds a parser as the stream driver would: the input is split into chunks whose length and
/// direction come from the bytes themselves (`[len: u8][dir: u8][bytes]`, `len` 0 = gap).
pub fn stream_parser(parser: &mut dyn StreamParser, port: u16, data: &[u8]) {
    let meta = test_meta(port);
    let file: Arc<str> = Arc::from("fuzz");
    let mut events = crate::proto::slots::EventBuf::new();
    let mut stats = ProtoStats::default();
    let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut rest = data;
    let mut ts = Timestamp::new(1_000_000, 0);
    while let [len, dir, tail @ ..] = rest {
        let d = if dir & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        ts = ts.plus_secs(u64::from(dir >> 4));
        let mut cx = ParseCx {
            ts,
            file: &file,
            packet: 0,
            meta: &meta,
            events: &mut events,
            stats: &mut stats,
        };
        let Some(buf) = pending.get_mut(d.index()) else {
            return;
        };
        if *len == 0 {
            buf.clear();
            parser.on_gap(d, 100, &mut cx);
            rest = tail;
            continue;
        }
        let n = usize::from(*len).min(tail.len());
        let (chunk, next) = tail.split_at(n);
        rest = next;
        buf.extend_from_slice(chunk);
        let used = parser.parse(d, buf, &mut cx).min(buf.len());
        buf.drain(..used);
        if buf.len() > parser.max_message_len() {
            buf.clear();
        }
        events.clear();
    }
    let mut cx = ParseCx {
        ts,
        file: &file,
        packet: 0,
        meta: &meta,
        events: &mut events,
        stats: &mut stats,
    };
    parser.on_close(&mut cx);
}

/// The Modbus parser alone.
pub fn modbus_stream(data: &[u8]) {
    stream_parser(&mut crate::proto::modbus::ModbusParser::new(), 502, data);
}

/// The OPC UA parser alone.
pub fn opcua_stream(data: &[u8]) {
    stream_parser(&mut crate::proto::opcua::OpcuaParser::new(), 4840, data);
}

/// The capture reader (pcap and pcapng, every record framing and buffer refill): the bytes
/// are written to a temporary file of this process and read to the end, or to the first
/// error, with every packet's bytes touched.
pub fn capture_file(data: &[u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "otwatch-fuzz-capture-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(mut f) = crate::capture::CaptureFile::open(&path) {
        let mut sum = 0u64;
        while let Ok(Some(p)) = f.next_packet() {
            sum = sum.wrapping_add(p.data.iter().map(|&b| u64::from(b)).sum::<u64>());
        }
        std::hint::black_box((sum, f.stats(), f.position()));
    }
    // A small read buffer against a memory map with small windows (where there is one): the
    // same packets, counters and positions.
    let plan = crate::capture::MapPlan {
        window: 1 + data.len() % 97,
        align: if data.len() % 2 == 0 { 1 } else { 4096 },
        min_len: 0,
    };
    let read = read_all(
        crate::capture::CaptureFile::open_with(&path, 64, None),
        false,
    );
    let mapped = read_all(
        crate::capture::CaptureFile::open_with(&path, 64, Some(plan)),
        false,
    );
    #[allow(clippy::panic)]
    if read != mapped {
        panic!("mapped read differs: {read:?} against {mapped:?}");
    }
    // As the pipeline reads: runs of whole records (pcap records, plain pcapng packet blocks)
    // between calls of `next_packet`, through the buffer and through the map.
    for (what, plan) in [("read", None), ("mapped", Some(plan))] {
        let runs = read_all(
            crate::capture::CaptureFile::open_with(&path, 64, plan),
            true,
        );
        #[allow(clippy::panic)]
        if runs != read {
            panic!("{what} by runs differs: {runs:?} against {read:?}");
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// What [`read_all`] saw of a capture: every packet (time, original length, bytes), the
/// counters and how reading ended, and the end position.
type Reading = (Vec<(crate::time::Timestamp, u32, Vec<u8>)>, String, u64);

/// A capture read to its end, or the open error as text; with `runs`, taking every run of
/// whole records between calls of `next_packet`, as the pipeline's loop does.
fn read_all(
    file: Result<crate::capture::CaptureFile, crate::capture::CaptureError>,
    runs: bool,
) -> Result<Reading, String> {
    let mut f = file.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let end = loop {
        if runs {
            if let Some(mut run) = f.buffered() {
                while let Some(p) = run.take() {
                    out.push((p.ts, p.orig_len, p.data.to_vec()));
                }
            } else if let Some(mut run) = f.ng_buffered() {
                while let Some(p) = run.take() {
                    out.push((p.ts, p.orig_len, p.data.to_vec()));
                }
            }
        }
        match f.next_packet() {
            Ok(Some(p)) => out.push((p.ts, p.orig_len, p.data.to_vec())),
            Ok(None) => break String::new(),
            Err(e) => break e.to_string(),
        }
    };
    Ok((out, format!("{:?} {end}", f.stats()), f.position()))
}
