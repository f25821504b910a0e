//! Every Modbus function seen in the shared captures comes out with its name.
//!
//! Each capture `MANIFEST.tsv` credits with Modbus PDUs runs through the whole pipeline; every
//! Modbus event must name its function code exactly as `types::function_name` does, a public
//! (or vendor) code never by the category fallback, and every FC 8 diagnostic sub-function,
//! FC 43 MEI type and FC 90 UMAS code present must have a name. Two captures are checked for
//! the identity they carry (FC 43/14 device identification, FC 17 server id), and the zeek
//! capture that mixes Modbus with other traffic on port 502 must leave the rest undetected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use otwatch::event::{AppProto, IcsEvent, Outcome, Side, Value};
use otwatch::pipeline::{self, PipelineConfig};
use otwatch::proto::modbus::types::{
    diagnostic_label, diagnostic_name, function_category, function_name, mei_label, mei_name,
    umas_label, umas_name, FunctionCategory,
};
use otwatch::stats::RunStats;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps")
}

/// Captures with Modbus PDUs according to tshark: (file name, PDU count).
fn modbus_captures() -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(root().join("MANIFEST.tsv")).expect("read MANIFEST.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (file, pdus) = (col("file"), col("modbus_pdus"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .map(|f| (f[file].to_string(), f[pdus].parse::<u64>().unwrap()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Runs one capture; returns its Modbus events and the run's counters.
fn run(file: &str) -> (Vec<IcsEvent>, RunStats) {
    let mut files = pipeline::open_all(&[root().join(file)]).unwrap();
    let mut events = Vec::new();
    let stats = pipeline::run(
        PipelineConfig::default(),
        &mut files,
        &mut |e| {
            if e.proto == AppProto::Modbus {
                events.push(e.clone());
            }
        },
        &mut |_, _| {},
    )
    .unwrap();
    (events, stats)
}

/// Names a code takes when it is known only by its category.
const FALLBACKS: [&str; 3] = [
    "user_defined_function",
    "reserved_function",
    "unassigned_function",
];

/// What is wrong with the names of one event, if anything.
fn name_problems(e: &IcsEvent) -> Vec<String> {
    let f = &e.function;
    let mut out = Vec::new();
    let Ok(fc) = u8::try_from(f.code) else {
        return vec![format!("function code {} is not a byte", f.code)];
    };
    if f.name == "none" {
        // An ADU of length 1 has no function code at all.
        if !e.violations.contains(&"missing_function_code") {
            out.push("function `none` without missing_function_code".to_string());
        }
        return out;
    }
    if fc & 0x80 != 0 {
        out.push(format!("code {fc} keeps the exception bit"));
    }
    if f.name != function_name(fc) {
        out.push(format!(
            "code {fc} named {}, expected {}",
            f.name,
            function_name(fc)
        ));
    }
    if f.category != function_category(fc).as_str() {
        out.push(format!("code {fc} in category {}", f.category));
    }
    match function_category(fc) {
        FunctionCategory::Public | FunctionCategory::Vendor => {
            if FALLBACKS.contains(&f.name) || f.name.is_empty() {
                out.push(format!(
                    "public code {fc} named by its category: {}",
                    f.name
                ));
            }
        }
        FunctionCategory::UserDefined => {
            if f.name != "user_defined_function" {
                out.push(format!("user-defined code {fc} named {}", f.name));
            }
        }
        FunctionCategory::Reserved | FunctionCategory::Unassigned => {
            if !FALLBACKS.contains(&f.name) {
                out.push(format!("code {fc} named {}", f.name));
            }
        }
    }
    if matches!(fc, 8 | 43 | 90) {
        match (f.sub, f.sub_name) {
            (Some(sub), Some(n)) => {
                // The name the tables give, and a defined code never by its category.
                let (want, defined) = match fc {
                    8 => (diagnostic_label(sub), diagnostic_name(sub).is_some()),
                    43 => {
                        let mei = u8::try_from(sub).unwrap_or(0);
                        (mei_label(mei), mei_name(mei).is_some())
                    }
                    _ => {
                        let code = u8::try_from(sub).unwrap_or(0);
                        (umas_label(code), umas_name(code).is_some())
                    }
                };
                if n != want {
                    out.push(format!(
                        "code {fc} sub-function {sub} named {n}, expected {want}"
                    ));
                }
                let fallback = n.starts_with("reserved_") || n.starts_with("unknown_");
                if defined && fallback {
                    out.push(format!("code {fc} defined sub-function {sub} named {n}"));
                }
            }
            (Some(sub), None) => out.push(format!("code {fc} sub-function {sub} has no name")),
            // A body too short to hold the sub-function is flagged; a response alone (an
            // exception, a UMAS status) may not carry it.
            (None, _) if !e.violations.is_empty() || e.outcome == Outcome::Unsolicited => {}
            (None, _) => out.push(format!("code {fc} without its sub-function")),
        }
    }
    out
}

#[test]
fn every_function_in_the_shared_captures_has_its_name() {
    let captures = modbus_captures();
    assert_eq!(captures.len(), 27, "captures with Modbus in MANIFEST.tsv");
    let mut problems = Vec::new();
    // (code, name) -> events, over all captures; sub-functions likewise.
    let mut seen: BTreeMap<(u32, &'static str), u64> = BTreeMap::new();
    let mut subs: BTreeMap<(u32, u16, &'static str), u64> = BTreeMap::new();
    let mut total = 0u64;
    for (file, _) in &captures {
        let (events, stats) = run(file);
        assert!(stats.proto.modbus.pdus > 0, "{file}: no Modbus PDU framed");
        assert!(!events.is_empty(), "{file}: no Modbus event");
        total += events.len() as u64;
        for e in &events {
            for p in name_problems(e) {
                problems.push(format!("{file} packet {}: {p}", e.evidence.packet));
            }
            *seen.entry((e.function.code, e.function.name)).or_default() += 1;
            if let (Some(sub), Some(name)) = (e.function.sub, e.function.sub_name) {
                *subs.entry((e.function.code, sub, name)).or_default() += 1;
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} naming problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // The captures do exercise what this test is about.
    for (fc, name) in [
        (1, "read_coils"),
        (2, "read_discrete_inputs"),
        (3, "read_holding_registers"),
        (4, "read_input_registers"),
        (5, "write_single_coil"),
        (6, "write_single_register"),
        (8, "diagnostics"),
        (15, "write_multiple_coils"),
        (16, "write_multiple_registers"),
        (17, "report_server_id"),
        (22, "mask_write_register"),
        (23, "read_write_multiple_registers"),
        (43, "encapsulated_interface_transport"),
        (90, "umas"),
    ] {
        assert!(
            seen.contains_key(&(fc, name)),
            "no {name} (FC {fc}) in the captures; seen: {seen:?}"
        );
    }
    assert!(
        subs.keys().any(|(fc, _, _)| *fc == 8),
        "no named diagnostic sub-function: {subs:?}"
    );
    assert!(
        subs.contains_key(&(43, 14, "read_device_identification")),
        "{subs:?}"
    );
    assert!(subs.keys().any(|(fc, _, _)| *fc == 90), "{subs:?}");
    assert!(total > 10_000, "only {total} Modbus events");
}

fn fact<'a>(events: &'a [IcsEvent], key: &str) -> Option<&'a str> {
    events
        .iter()
        .flat_map(|e| &e.facts)
        .find(|f| f.key == key && f.side == Side::Server)
        .map(|f| f.value.as_str())
}

/// The FC 43/14 answer in the icsnpp capture carries the three basic objects.
#[test]
fn device_identification_gives_vendor_product_and_revision() {
    let (events, _) = run("cisagov__icsnpp-modbus/testing__traces__modbus_example.pcap");
    let ids: Vec<&IcsEvent> = events
        .iter()
        .filter(|e| e.function.code == 43 && e.function.sub == Some(14))
        .collect();
    assert_eq!(ids.len(), 1, "{ids:#?}");
    assert_eq!(ids[0].outcome, Outcome::Ok);
    assert_eq!(ids[0].function.sub_name, Some("read_device_identification"));
    assert_eq!(fact(&events, "vendor_name"), Some("Zeek Modbus Test"));
    assert_eq!(
        fact(&events, "product_code"),
        Some("Protocol Parsing is fun!")
    );
    assert_eq!(fact(&events, "revision"), Some("1.2.3.6"));
}

/// zeek's `modbus-eit.pcap` asks twice; one answer lists no object at all (with a "more
/// follows" of 0x4d), the other is an exception: an identify event each, and no made-up facts.
#[test]
fn device_identification_without_objects_gives_no_facts() {
    let (events, _) = run("zeek__zeek/testing__btest__Traces__modbus__modbus-eit.pcap");
    assert_eq!(events.len(), 2, "{events:#?}");
    for e in &events {
        assert_eq!(e.function.code, 43);
        assert_eq!(e.function.sub, Some(14));
        assert_eq!(e.function.sub_name, Some("read_device_identification"));
        assert!(e.facts.is_empty(), "{:?}", e.facts);
    }
    assert_eq!(events[0].outcome, Outcome::Ok);
    assert!(
        events[0].violations.contains(&"invalid_device_id_code"),
        "{:?}",
        events[0].violations
    );
    assert!(
        matches!(events[1].outcome, Outcome::Exception { code: 4, .. }),
        "{:?}",
        events[1].outcome
    );
}

#[test]
fn report_server_id_gives_its_facts() {
    let (events, _) = run("ITI__ICS-Security-Tools/pcaps__ModbusTCP__modbus_test_data_part1.pcap");
    let fc17: Vec<&IcsEvent> = events.iter().filter(|e| e.function.code == 17).collect();
    assert!(!fc17.is_empty(), "no FC 17 event");
    let answered: Vec<&&IcsEvent> = fc17
        .iter()
        .filter(|e| e.facts.iter().any(|f| f.key == "server_id"))
        .collect();
    assert!(!answered.is_empty(), "no server_id fact: {fc17:#?}");
    for e in answered {
        let id = e.facts.iter().find(|f| f.key == "server_id").unwrap();
        assert!(id.value.starts_with("0x") && id.value.len() == 4, "{id:?}");
        let data = e
            .details
            .iter()
            .find(|(k, _)| *k == "server_id_data")
            .map(|(_, v)| v);
        assert!(
            matches!(data, Some(Value::Bytes(b)) if !b.is_empty()),
            "server id bytes kept: {data:?}"
        );
    }
}

#[test]
fn other_traffic_on_port_502_is_not_modbus() {
    let file = "zeek__zeek/testing__btest__Traces__modbus__modbus-and-non-modbus-p502.pcap";
    let (events, stats) = run(file);
    // tshark: one Modbus conversation (12 PDUs) and six others to port 502 (scanners sending
    // HTTP, RDP cookies, SMB and the like).
    const NON_MODBUS_FLOWS: u64 = 6;
    assert_eq!(stats.proto.modbus.pdus, 12, "{:#?}", stats.proto.modbus);
    assert_eq!(
        stats.proto.stream.detected_modbus, 1,
        "{:#?}",
        stats.proto.stream
    );
    assert!(
        stats.proto.stream.undetected >= NON_MODBUS_FLOWS,
        "{:#?}",
        stats.proto.stream
    );
    let flows: std::collections::BTreeSet<u64> = events.iter().map(|e| e.flow_id).collect();
    assert_eq!(flows.len(), 1, "Modbus events from {flows:?}");
    assert!(events.iter().all(|e| e.server.port == 502));
}
