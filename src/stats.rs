//! Counters of a run, printed by `otwatch stats`.
//!
//! Every limit hit and every drop in the pipeline ends up here, so that nothing is lost
//! silently. The JSON form is stable (maps are sorted); the text form is the same tree
//! flattened into dotted keys (`modbus.pdus 102`).

use crate::capture::CaptureStats;
use crate::decode::{DecodeErrorKind, LinkType};
use crate::flow::FlowStats;
use crate::proto::ProtoStats;
use serde::Serialize;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

/// Per-file facts: packets read and how the file ended.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FileStats {
    /// Path as given.
    pub path: String,
    /// Packets read from it.
    pub packets: u64,
    /// The file ended inside a record.
    pub truncated: bool,
    /// Reading stopped at a malformed block.
    pub corrupt: bool,
    /// Where reading stopped early, as a byte offset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<u64>,
    /// pcapng blocks without packets that were skipped.
    pub skipped_blocks: u64,
    /// Packets on an undeclared pcapng interface (skipped).
    pub unknown_interface: u64,
}

impl FileStats {
    /// Builds the per-file record from a reader's counters.
    pub fn from_capture(path: &str, c: &CaptureStats) -> Self {
        FileStats {
            path: path.to_string(),
            packets: c.packets,
            truncated: c.truncated,
            corrupt: c.corrupt,
            stopped_at: c.stopped_at,
            skipped_blocks: c.skipped_blocks,
            unknown_interface: c.unknown_interface,
        }
    }
}

/// Counters of the decode stage.
#[derive(Clone, Debug, Default)]
pub struct DecodeStats {
    /// Packets per link type.
    pub link_types: BTreeMap<LinkType, u64>,
    /// Packets whose decoding stopped early, by reason.
    pub errors: BTreeMap<DecodeErrorKind, u64>,
    /// IPv4 packets.
    pub ipv4: u64,
    /// IPv6 packets.
    pub ipv6: u64,
    /// Frames carrying something other than IP (ARP, LLDP, PROFINET, GOOSE, …).
    pub non_ip: u64,
    /// IP fragments (not reassembled).
    pub fragments: u64,
    /// TCP segments.
    pub tcp: u64,
    /// UDP datagrams.
    pub udp: u64,
    /// Other IP protocols (ICMP, …).
    pub other_ip: u64,
    /// Packets cut by the capture's snaplen (captured length below wire length).
    pub snaplen_cut: u64,
}

/// Everything a run counted.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    /// One record per input file, in order.
    pub files: Vec<FileStats>,
    /// Packets read.
    pub packets: u64,
    /// Captured bytes read.
    pub bytes: u64,
    /// Decode counters.
    pub decode: DecodeStats,
    /// Flow and reassembly counters.
    pub flows: FlowStats,
    /// Protocol parser counters.
    pub proto: ProtoStats,
    /// ICS events produced.
    pub events: u64,
}

fn add_map<K: Ord + Clone>(a: &mut BTreeMap<K, u64>, b: &BTreeMap<K, u64>) {
    for (k, v) in b {
        *a.entry(k.clone()).or_insert(0) += v;
    }
}

impl RunStats {
    /// Adds the counters of another part of the same run (a shard worker's). `files` and the
    /// flow peak are not summed: the caller sets them for the whole run.
    pub(crate) fn merge(&mut self, o: &RunStats) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.events += o.events;
        let (d, e) = (&mut self.decode, &o.decode);
        add_map(&mut d.link_types, &e.link_types);
        add_map(&mut d.errors, &e.errors);
        d.ipv4 += e.ipv4;
        d.ipv6 += e.ipv6;
        d.non_ip += e.non_ip;
        d.fragments += e.fragments;
        d.tcp += e.tcp;
        d.udp += e.udp;
        d.other_ip += e.other_ip;
        d.snaplen_cut += e.snaplen_cut;
        let (f, g) = (&mut self.flows, &o.flows);
        f.created += g.created;
        f.timed_out += g.timed_out;
        f.evicted += g.evicted;
        f.ended_at_eof += g.ended_at_eof;
        f.reassembly_gaps += g.reassembly_gaps;
        f.reassembly_gap_bytes += g.reassembly_gap_bytes;
        f.retransmissions += g.retransmissions;
        f.overlaps += g.overlaps;
        f.overlap_mismatches += g.overlap_mismatches;
        f.reassembly_cap_hits += g.reassembly_cap_hits;
        f.out_of_order += g.out_of_order;
        f.closed += g.closed;
        f.syn_conflicts += g.syn_conflicts;
        f.out_of_window += g.out_of_window;
        f.budget_drops += g.budget_drops;
        f.budget_drop_bytes += g.budget_drop_bytes;
        f.memory_peak += g.memory_peak;
        let (s, t) = (&mut self.proto.stream, &o.proto.stream);
        s.detected_modbus += t.detected_modbus;
        s.detected_opcua += t.detected_opcua;
        s.undetected += t.undetected;
        s.buffer_overflows += t.buffer_overflows;
        let (m, n) = (&mut self.proto.modbus, &o.proto.modbus);
        m.pdus += n.pdus;
        m.requests += n.requests;
        m.responses += n.responses;
        m.function_codes.merge(&n.function_codes);
        m.exceptions += n.exceptions;
        add_map(&mut m.exception_codes, &n.exception_codes);
        add_map(&mut m.violations, &n.violations);
        m.transactions += n.transactions;
        m.unanswered += n.unanswered;
        m.timeouts += n.timeouts;
        m.unsolicited += n.unsolicited;
        m.pending_dropped += n.pending_dropped;
        m.floods += n.floods;
        m.resyncs += n.resyncs;
        m.resync_skipped_bytes += n.resync_skipped_bytes;
        m.gaps += n.gaps;
        m.swapped_flows += n.swapped_flows;
        let (u, v) = (&mut self.proto.opcua, &o.proto.opcua);
        u.messages += v.messages;
        u.by_type.merge(&v.by_type);
        u.services.merge(&v.services);
        u.encrypted_messages += v.encrypted_messages;
        add_map(&mut u.violations, &v.violations);
        u.limit_hits += v.limit_hits;
        u.aborted += v.aborted;
        u.resyncs += v.resyncs;
        u.gaps += v.gaps;
        u.skipped_bytes += v.skipped_bytes;
        u.oversized_chunks += v.oversized_chunks;
        u.transactions += v.transactions;
        u.unanswered += v.unanswered;
        u.unsolicited += v.unsolicited;
        u.unknown_services += v.unknown_services;
    }

    /// The stable JSON tree printed by `otwatch stats --json`.
    pub fn to_json(&self) -> Json {
        let d = &self.decode;
        let f = &self.flows;
        let link_types: BTreeMap<String, u64> =
            d.link_types.iter().map(|(k, v)| (k.name(), *v)).collect();
        let errors: BTreeMap<&str, u64> = d.errors.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let decode_errors: u64 = d.errors.values().sum();
        json!({
            "files": self.files,
            "packets": self.packets,
            "bytes": self.bytes,
            "link_types": link_types,
            "decode": {
                "errors": decode_errors,
                "errors_by_reason": errors,
                "ipv4": d.ipv4,
                "ipv6": d.ipv6,
                "non_ip": d.non_ip,
                "fragments": d.fragments,
                "tcp": d.tcp,
                "udp": d.udp,
                "other_ip": d.other_ip,
                "snaplen_cut": d.snaplen_cut,
            },
            "flows": {
                "created": f.created,
                "timed_out": f.timed_out,
                "evicted": f.evicted,
                "ended_at_eof": f.ended_at_eof,
                "closed": f.closed,
                "peak": f.peak,
                "syn_conflicts": f.syn_conflicts,
            },
            "reassembly": {
                "gaps": f.reassembly_gaps,
                "gap_bytes": f.reassembly_gap_bytes,
                "out_of_order": f.out_of_order,
                "retransmissions": f.retransmissions,
                "overlaps": f.overlaps,
                "overlap_mismatches": f.overlap_mismatches,
                "cap_hits": f.reassembly_cap_hits,
                "out_of_window": f.out_of_window,
            },
            "memory": {
                "budget_drops": f.budget_drops,
                "budget_drop_bytes": f.budget_drop_bytes,
                "peak_bytes": f.memory_peak,
            },
            "stream": self.proto.stream,
            "modbus": self.proto.modbus,
            "opcua": self.proto.opcua,
            "events": self.events,
        })
    }

    /// The same tree as `key value` lines with dotted keys, for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        flatten("", &self.to_json(), &mut out);
        out
    }
}

fn flatten(prefix: &str, v: &Json, out: &mut String) {
    use std::fmt::Write;
    match v {
        Json::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Json::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}.{i}"), v, out);
            }
        }
        Json::String(s) => {
            let _ = writeln!(out, "{prefix} {s}");
        }
        other => {
            let _ = writeln!(out, "{prefix} {other}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_flattened_json() {
        let mut s = RunStats {
            packets: 3,
            bytes: 180,
            ..Default::default()
        };
        s.decode.link_types.insert(LinkType::Ethernet, 3);
        s.decode.errors.insert(DecodeErrorKind::TcpTruncated, 1);
        let t = s.to_text();
        assert!(t.contains("\npackets 3\n"), "{t}");
        assert!(t.contains("link_types.ethernet 3\n"), "{t}");
        assert!(
            t.contains("decode.errors_by_reason.tcp_truncated 1\n"),
            "{t}"
        );
        assert!(t.contains("modbus.pdus 0\n"), "{t}");
        assert_eq!(s.to_json()["decode"]["errors"], 1);
    }
}
