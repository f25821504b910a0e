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

impl RunStats {
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
