//! tshark as an independent oracle: for every shared capture with Modbus or OPC UA traffic,
//! our message counts per function code / message type / service equal tshark's.
//!
//! The oracle runs tshark with `tcp.reassemble_out_of_order:TRUE`, because otwatch reassembles
//! out-of-order segments and tshark by default does not: where a capture lost a segment and
//! only a retransmission carries its bytes, default tshark skips the retransmission and misses
//! the messages in it. `MANIFEST.tsv` was made with tshark's defaults, so the files where that
//! matters are listed in `DEFAULT_TSHARK_DIFFERS` with that reason, and checked both ways.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use otwatch::event::AppProto;
use otwatch::pipeline::{self, PipelineConfig};
use otwatch::stats::RunStats;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

struct Row {
    file: String,
    modbus_pdus: u64,
    opcua_msgs: u64,
}

fn manifest() -> Vec<Row> {
    let text = std::fs::read_to_string(shared().join("pcaps/MANIFEST.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (f, m, o) = (col("file"), col("modbus_pdus"), col("opcua_msgs"));
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            Row {
                file: c[f].to_string(),
                modbus_pdus: c[m].parse().unwrap(),
                opcua_msgs: c[o].parse().unwrap(),
            }
        })
        .collect()
}

/// Our counters, and the server ports on which we found each protocol.
fn ours(path: &Path) -> (RunStats, BTreeSet<(AppProto, u16)>) {
    let mut files = pipeline::open_all(&[path]).unwrap();
    let mut ports = BTreeSet::new();
    let s = pipeline::run(
        PipelineConfig::default(),
        &mut files,
        &mut |e| {
            ports.insert((e.proto, e.server.port));
        },
        &mut |_, _| {},
    )
    .unwrap();
    (s, ports)
}

/// tshark "decode as" options for the ports where we found `proto` off its standard port.
fn decode_as(ports: &BTreeSet<(AppProto, u16)>, proto: AppProto) -> Vec<String> {
    let (std_port, name) = match proto {
        AppProto::Modbus => (502, "mbtcp"),
        AppProto::Opcua => (4840, "opcua"),
    };
    ports
        .iter()
        .filter(|(p, port)| *p == proto && *port != std_port)
        .flat_map(|(_, port)| ["-d".to_string(), format!("tcp.port=={port},{name}")])
        .collect()
}

/// Counts of the comma-separated values of one field over all frames matching `filter`.
fn tshark_hist(path: &Path, filter: &str, field: &str, extra: &[String]) -> BTreeMap<String, u64> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-o", "tcp.reassemble_out_of_order:TRUE"])
        .args(extra)
        .args(["-Y", filter, "-T", "fields", "-e", field])
        .output()
        .expect("tshark must be installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut h = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        for v in line.split(',').filter(|v| !v.is_empty()) {
            *h.entry(v.to_string()).or_insert(0) += 1;
        }
    }
    h
}

/// A histogram with its keys as strings, to compare with tshark's.
fn keyed<K: ToString>(m: &BTreeMap<K, u64>) -> BTreeMap<String, u64> {
    m.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Modbus function codes as tshark counts them (decoding `ports` off 502 as Modbus).
fn tshark_function_codes(path: &Path, ports: &BTreeSet<(AppProto, u16)>) -> BTreeMap<String, u64> {
    tshark_hist(
        path,
        "mbtcp",
        "modbus.func_code",
        &decode_as(ports, AppProto::Modbus),
    )
}

/// Differences between our OPC UA counts (per message type, per service) and tshark's.
fn opcua_differences(
    path: &Path,
    s: &RunStats,
    extra: &[String],
    names: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut wrong = Vec::new();
    let t = tshark_hist(path, "opcua", "opcua.transport.type", extra);
    let o = keyed(&s.proto.opcua.by_type.to_map());
    if o != t {
        wrong.push(format!(
            "{}: message types ours {o:?} tshark {t:?}",
            path.display()
        ));
    }
    // Services: tshark's numeric encoding ids, named from the specification's table.
    let ts: BTreeMap<String, u64> =
        tshark_hist(path, "opcua", "opcua.servicenodeid.numeric", extra)
            .into_iter()
            .map(|(id, n)| {
                (
                    names.get(&id).cloned().unwrap_or(format!("unknown_{id}")),
                    n,
                )
            })
            .collect();
    let os = keyed(&s.proto.opcua.services.to_map());
    if os != ts {
        wrong.push(format!(
            "{}: services ours {os:?}\n   tshark {ts:?}",
            path.display()
        ));
    }
    wrong
}

/// Files where tshark's default settings (the manifest) count fewer messages than tshark with
/// out-of-order reassembly, and than otwatch: a segment the capture lost is only seen in a
/// later retransmission, which default tshark does not dissect.
const DEFAULT_TSHARK_DIFFERS: &[(&str, u64, u64)] = &[
    // (file, manifest count, otwatch count)
    (
        "ITI__ICS-Security-Tools/pcaps__ModbusTCP__mb2.pcap",
        3578,
        3585,
    ),
    (
        "zeek__zeek/testing__btest__Traces__modbus__modbusBig.pcap",
        5548,
        5549,
    ),
    (
        "cisagov__icsnpp-opcua-binary/pcaps__opcua_with-gap.pcap",
        171,
        172,
    ),
    (
        "cisagov__icsnpp-opcua-binary/pcaps__opcua_with-gap_with-handshake.pcap",
        239,
        240,
    ),
];

/// Fuzzed captures whose TCP sequence numbers jump at random: there is no byte stream to
/// reassemble, so tshark's out-of-order mode waits forever for bytes that never come (it finds
/// 1 and 2 PDUs), its default per-segment dissection finds 17 and 4, and otwatch, which
/// resynchronises after an implausible sequence jump, finds 16 and 4. We pin our counts so a
/// change is noticed, and check that the parser resynchronised rather than stopped.
const FUZZED_SEQUENCE_NUMBERS: &[(&str, u64)] = &[
    (
        "zeek__zeek/testing__btest__Traces__modbus__fuzz-72.pcap",
        16,
    ),
    (
        "zeek__zeek/testing__btest__Traces__modbus__fuzz-1011.pcap",
        4,
    ),
];

#[test]
fn modbus_counts_equal_tshark() {
    let mut wrong = Vec::new();
    let mut checked = 0;
    for r in manifest() {
        let path = shared().join("pcaps").join(&r.file);
        let (s, ports) = ours(&path);
        let pdus = s.proto.modbus.pdus;
        if r.modbus_pdus == 0 && pdus == 0 {
            continue;
        }
        checked += 1;
        if let Some((_, n)) = FUZZED_SEQUENCE_NUMBERS.iter().find(|(f, _)| *f == r.file) {
            assert_eq!(pdus, *n, "{}", r.file);
            assert!(
                s.proto.modbus.timeouts + s.proto.modbus.unsolicited + s.proto.modbus.resyncs > 0
            );
            continue;
        }
        let expect_manifest = DEFAULT_TSHARK_DIFFERS
            .iter()
            .find(|(f, _, _)| *f == r.file)
            .map(|(_, m, o)| {
                assert_eq!(r.modbus_pdus, *m, "manifest changed for {}", r.file);
                *o
            })
            .unwrap_or(r.modbus_pdus);
        if pdus != expect_manifest {
            wrong.push(format!(
                "{}: modbus.pdus {pdus}, manifest {}",
                r.file, r.modbus_pdus
            ));
        }
        let t = tshark_function_codes(&path, &ports);
        let o = keyed(&s.proto.modbus.function_codes.to_map());
        if o != t {
            wrong.push(format!(
                "{}: function codes ours {o:?} tshark {t:?}",
                r.file
            ));
        }
    }
    assert!(checked >= 27, "only {checked} captures with Modbus");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn modbus_on_other_ports_in_our_samples() {
    // Our own sample runs Modbus on 502 and 5020: tshark needs to be told about 5020.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/modbus_plant.pcap");
    let (s, ports) = ours(&path);
    assert!(
        ports.contains(&(AppProto::Modbus, 5020)),
        "found by content on port 5020"
    );
    let t = tshark_function_codes(&path, &ports);
    let o = keyed(&s.proto.modbus.function_codes.to_map());
    assert_eq!(o, t);
    assert_eq!(s.proto.modbus.pdus, t.values().sum::<u64>());
    assert_eq!(
        s.proto.modbus.violations.len(),
        0,
        "real pymodbus traffic is clean"
    );
}

/// `<Name>_Encoding_DefaultBinary` ids → `<Name>`, from the specification's NodeIds.csv.
fn encoding_names() -> BTreeMap<String, String> {
    let csv = std::fs::read_to_string(shared().join("opcua/NodeIds.csv")).unwrap();
    csv.lines()
        .filter_map(|l| {
            let mut it = l.split(',');
            let (name, id) = (it.next()?, it.next()?);
            let base = name.strip_suffix("_Encoding_DefaultBinary")?;
            Some((id.to_string(), base.to_string()))
        })
        .collect()
}

#[test]
fn opcua_counts_equal_tshark() {
    let names = encoding_names();
    let mut wrong = Vec::new();
    let mut checked = 0;
    let mut nonstandard = 0;
    for r in manifest() {
        let path = shared().join("pcaps").join(&r.file);
        let (s, ports) = ours(&path);
        let msgs = s.proto.opcua.messages;
        if r.opcua_msgs == 0 && msgs == 0 {
            continue;
        }
        checked += 1;
        let expect_manifest = DEFAULT_TSHARK_DIFFERS
            .iter()
            .find(|(f, _, _)| *f == r.file)
            .map(|(_, m, o)| {
                assert_eq!(r.opcua_msgs, *m, "manifest changed for {}", r.file);
                *o
            })
            .unwrap_or(r.opcua_msgs);
        let extra = decode_as(&ports, AppProto::Opcua);
        if !extra.is_empty() {
            // OPC UA off port 4840, found by content: tshark decodes it only when told the
            // port (or by its heuristic, which the manifest used). Compare with tshark told.
            nonstandard += 1;
        }
        if msgs != expect_manifest {
            wrong.push(format!(
                "{}: opcua.messages {msgs}, manifest {}",
                r.file, r.opcua_msgs
            ));
        }
        wrong.extend(opcua_differences(&path, &s, &extra, &names));
    }
    assert!(checked >= 29, "only {checked} captures with OPC UA");
    assert!(
        nonstandard >= 2,
        "OPC UA off port 4840 is in at least two shared captures"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn opcua_sample_from_asyncua_equals_tshark_and_decodes_sessions() {
    // Real asyncua client and servers on 4840 and 48400 (pcaps/README.md).
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/opcua_plant.pcap");
    let mut files = pipeline::open_all(&[&path]).unwrap();
    let mut evs = Vec::new();
    let s = pipeline::run(
        PipelineConfig::default(),
        &mut files,
        &mut |e| evs.push(e.clone()),
        &mut |_, _| {},
    )
    .unwrap();
    let ports: BTreeSet<(AppProto, u16)> = evs.iter().map(|e| (e.proto, e.server.port)).collect();
    assert!(
        ports.contains(&(AppProto::Opcua, 48400)),
        "found by content on port 48400"
    );
    let extra = decode_as(&ports, AppProto::Opcua);
    let names = encoding_names();
    let wrong = opcua_differences(&path, &s, &extra, &names);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(
        s.proto.opcua.violations.is_empty(),
        "{:?}",
        s.proto.opcua.violations
    );
    // Anonymous and user-name logins, the user name but never a password.
    let detail = |e: &otwatch::event::IcsEvent, k: &str| {
        e.details
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| format!("{v:?}"))
    };
    let logins: Vec<_> = evs
        .iter()
        .filter(|e| e.function.name == "ActivateSession")
        .collect();
    assert!(logins
        .iter()
        .any(|e| detail(e, "identity_token").is_some_and(|v| v.contains("Anonymous"))));
    assert!(logins
        .iter()
        .any(|e| detail(e, "user_name").is_some_and(|v| v.contains("operator"))));
    let all = evs
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect::<String>();
    assert!(
        !all.contains("dummy-password"),
        "a password must never reach an event"
    );
    for op in [
        "read",
        "write",
        "call",
        "browse",
        "subscribe",
        "session",
        "discovery",
    ] {
        assert!(all.contains(&format!("\"op\":\"{op}\"")), "no {op} event");
    }
}
