//! Real Suricata as the oracle for otwatch's Suricata rule support (`src/rules/suricata.rs`).
//!
//! For each capture, Suricata runs `tests/data/suricata/modbus.rules` with the configuration
//! next to it and writes its alerts and flows to eve.json; otwatch runs the same capture through
//! its pipeline and matches the same rules on its Modbus events. Per sid, the number of alerts
//! must be equal.
//!
//! Only connections Suricata parsed as Modbus (`app_proto: modbus` in its flow records) are
//! compared. Suricata takes no connection it did not see open (no `stream.midstream`), and its
//! protocol detection gives up on a connection whose first message has a function code its
//! parser does not name (UMAS FC 90, fuzzed codes) or a malformed field; otwatch parses all of
//! them. Those events are counted and printed, not compared.
//!
//! Where the counts differ for a principled reason, the difference is pinned in `PINS` with the
//! reason: those are the places where otwatch keeps the documented meaning of the keyword and
//! Suricata 7.0.10's implementation does something else (see the module documentation of
//! `otwatch::rules::suricata`). A pin must hold exactly, so a change on either side shows.
//!
//! Rules with a threshold are compared separately: Suricata's alerts against a simulation of
//! its threshold over otwatch's matches, in capture time.
//!
//! Suricata must be installed (`.ci/run` installs it). Outside CI, `OTWATCH_SKIP_SURICATA=1`
//! skips this test when it is not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use otwatch::event::{AppProto, IcsEvent, Outcome};
use otwatch::pipeline::{self, PipelineConfig};
use otwatch::rules::suricata::{
    parse_rules, SuricataRule, SuricataThreshold, ThresholdTrack, ThresholdType,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn data() -> PathBuf {
    root().join("tests/data/suricata")
}

/// The captures: the shared ones Suricata parses as Modbus, and the project's own.
const CAPTURES: &[&str] = &[
    "../shared/pcaps/EmreEkin__ICS-Pcaps/MODBUS__FC1-permit.pcap",
    "../shared/pcaps/EmreEkin__ICS-Pcaps/MODBUS__crash.pcap",
    "../shared/pcaps/EmreEkin__ICS-Pcaps/MODBUS__modbus-encapsulated-transport.pcap",
    "../shared/pcaps/EmreEkin__ICS-Pcaps/MODBUS__modbus-mask-write-register.pcap",
    "../shared/pcaps/EmreEkin__ICS-Pcaps/MODBUS__modbus-read-write-multiple-registers.pcap",
    "../shared/pcaps/ITI__ICS-Security-Tools/pcaps__ModbusTCP__ModbusTCP.pcap",
    "../shared/pcaps/ITI__ICS-Security-Tools/pcaps__ModbusTCP__mb2.pcap",
    "../shared/pcaps/ITI__ICS-Security-Tools/pcaps__ModbusTCP__modbus_test_data_part1.pcap",
    "../shared/pcaps/OISF__suricata-verify/tests__modbus__modbus.pcap",
    "../shared/pcaps/cisagov__icsnpp-modbus/testing__traces__modbus_example.pcap",
    "../shared/pcaps/zeek__zeek/testing__btest__Traces__modbus__modbus-and-non-modbus-p502.pcap",
    "../shared/pcaps/zeek__zeek/testing__btest__Traces__modbus__modbusSmall.pcap",
    "pcaps/modbus_plant.pcap",
    "pcaps/modbus_attack.pcapng",
    "pcaps/eval/attacks.pcapng",
    // Made by make_unsolicited.py: responses nobody asked for, matched on the response.
    "tests/data/suricata/unsolicited.pcap",
];

/// Suricata 7.0.10 adds 1 to a 16-bit wire address and wraps: a single write at wire address
/// 65535 is at rule address 0 for it (a multiple write there has no address at all). otwatch
/// puts it at 65536, above any `address >N`. The captures probe that address.
const WRAP: &str = "wire address 65535: Suricata wraps it to rule address 0";
/// On FC 23, Suricata compares `access read …, address` with the range written; otwatch with
/// the range read.
const FC23: &str = "FC 23: Suricata checks a read address against the write range";
/// On FC 15, Suricata reads a coil's value from the wrong byte and bit, and finds none when the
/// request carries one data byte; otwatch compares the coil at the address.
const COILS: &str = "FC 15 coil value: Suricata reads the wrong bit (none for one data byte)";
/// `function N` for a code Suricata's parser does not name matches every code it does not
/// name (the capture scans all 127 codes: 102 are unnamed); otwatch matches code N.
const UNNAMED: &str = "function N, N unnamed by Suricata's parser: Suricata matches all unnamed";

/// Differences (ours minus Suricata's) that have a reason: (capture suffix, sid, difference,
/// reason). Each is one of the deliberate differences of `otwatch::rules::suricata`.
const PINS: &[(&str, u32, i64, &str)] = &[
    ("MODBUS__crash.pcap", 1325, 1, WRAP),
    ("modbus-read-write-multiple-registers.pcap", 1310, 1, FC23),
    ("modbus-read-write-multiple-registers.pcap", 1311, -1, FC23),
    ("modbus_example.pcap", 1311, 2, FC23),
    ("modbus_example.pcap", 1316, -1, FC23),
    ("modbus_example.pcap", 1336, 1, COILS),
    ("modbus_example.pcap", 1337, 1, COILS),
    ("modbusSmall.pcap", 1337, 4, COILS),
    ("modbus_plant.pcap", 1311, 1, FC23),
    ("modbus_plant.pcap", 1316, 1, FC23),
    ("modbus_attack.pcapng", 1042, -101, UNNAMED),
    ("modbus_attack.pcapng", 1090, -101, UNNAMED),
    ("modbus_attack.pcapng", 1310, 1, FC23),
    ("modbus_attack.pcapng", 1325, 6, WRAP),
    ("eval/attacks.pcapng", 1042, -101, UNNAMED),
    ("eval/attacks.pcapng", 1090, -101, UNNAMED),
    ("eval/attacks.pcapng", 1310, 1, FC23),
    ("eval/attacks.pcapng", 1325, 6, WRAP),
];

type FlowKey = (IpAddr, u16, IpAddr, u16);

/// What Suricata found in one capture.
struct SuricataRun {
    /// Alerts per sid, and per sid and flow.
    alerts: BTreeMap<u32, u64>,
    by_flow: BTreeMap<(u32, FlowKey), u64>,
    /// Connections parsed as Modbus (client, client port, server, server port).
    modbus_flows: BTreeSet<FlowKey>,
    /// Lines of the rule file Suricata could not load.
    rejected_lines: BTreeSet<usize>,
}

/// The suricata binary, or None when the test may be skipped.
fn suricata() -> Option<&'static str> {
    let ok = Command::new("suricata")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some("suricata");
    }
    let ci = std::env::var_os("CI").is_some();
    let skip = std::env::var("OTWATCH_SKIP_SURICATA").as_deref() == Ok("1");
    if !ci && skip {
        eprintln!("suricata not found: skipped (OTWATCH_SKIP_SURICATA=1)");
        return None;
    }
    panic!(
        "suricata is not installed: this test needs it as its oracle (.ci/run installs it; \
         `apt-get install -t bookworm-backports suricata`). Outside CI, set \
         OTWATCH_SKIP_SURICATA=1 to skip it."
    );
}

fn run_suricata(bin: &str, capture: &Path, n: usize) -> SuricataRun {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("suricata-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(bin)
        .args(["--runmode", "single", "-k", "none", "-c"])
        .arg(data().join("suricata.yaml"))
        .arg("-r")
        .arg(capture)
        .arg("-S")
        .arg(data().join("modbus.rules"))
        .arg("-l")
        .arg(&dir)
        .output()
        .expect("run suricata");
    let log =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "suricata failed on {}: {log}",
        capture.display()
    );
    let rejected_lines = log
        .lines()
        .filter(|l| l.contains("error parsing signature"))
        .filter_map(|l| l.rsplit("at line ").next()?.trim().parse().ok())
        .collect();
    let eve = std::fs::read_to_string(dir.join("eve.json")).unwrap_or_default();
    let mut flows: BTreeMap<u64, FlowKey> = BTreeMap::new();
    let mut modbus_flows = BTreeSet::new();
    let mut alert_flows: Vec<(u32, u64)> = Vec::new();
    for line in eve.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let fid = v["flow_id"].as_u64().unwrap_or(0);
        match v["event_type"].as_str() {
            Some("flow") if v["proto"].as_str() == Some("TCP") => {
                let key: FlowKey = (
                    v["src_ip"].as_str().unwrap().parse().unwrap(),
                    v["src_port"].as_u64().unwrap() as u16,
                    v["dest_ip"].as_str().unwrap().parse().unwrap(),
                    v["dest_port"].as_u64().unwrap() as u16,
                );
                flows.insert(fid, key);
                if v["app_proto"].as_str() == Some("modbus") {
                    modbus_flows.insert(key);
                }
            }
            Some("alert") => {
                alert_flows.push((v["alert"]["signature_id"].as_u64().unwrap() as u32, fid));
            }
            _ => {}
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mut alerts = BTreeMap::new();
    let mut by_flow = BTreeMap::new();
    for (sid, fid) in alert_flows {
        *alerts.entry(sid).or_insert(0) += 1;
        let key = *flows
            .get(&fid)
            .expect("every alert's flow has a flow record");
        *by_flow.entry((sid, key)).or_insert(0) += 1;
    }
    SuricataRun {
        alerts,
        by_flow,
        modbus_flows,
        rejected_lines,
    }
}

fn flow_key(e: &IcsEvent) -> FlowKey {
    (e.client.ip, e.client.port, e.server.ip, e.server.port)
}

/// otwatch's Modbus events of one capture.
fn events(capture: &Path) -> Vec<IcsEvent> {
    let mut files = pipeline::open_all(&[capture]).unwrap();
    let mut out = Vec::new();
    pipeline::run(
        PipelineConfig::default(),
        &mut files,
        &mut |e| {
            if e.proto == AppProto::Modbus {
                out.push(e.clone());
            }
        },
        &mut |_, _| {},
    )
    .unwrap();
    out
}

/// Suricata's threshold over one rule's matches, in time order per tracked key.
fn thresholded(t: &SuricataThreshold, matches: &[&IcsEvent]) -> u64 {
    let mut by_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for e in matches {
        let key = match t.track {
            ThresholdTrack::BySrc => e.client.ip.to_string(),
            ThresholdTrack::ByDst => e.server.ip.to_string(),
            ThresholdTrack::ByRule => String::new(),
            ThresholdTrack::ByBoth => format!("{}>{}", e.client.ip, e.server.ip),
        };
        by_key.entry(key).or_default().push(e.ts.as_micros());
    }
    let window = i64::from(t.seconds) * 1_000_000;
    let n = u64::from(t.count);
    let mut alerts = 0;
    for ts in by_key.values_mut() {
        ts.sort_unstable();
        let (mut start, mut count) = (None::<i64>, 0u64);
        for &now in ts.iter() {
            let inside = start.is_some_and(|s| now - s < window);
            if !inside {
                start = Some(now);
                count = 0;
            }
            count += 1;
            alerts += match t.kind {
                ThresholdType::Limit => u64::from(count <= n),
                ThresholdType::Threshold if count >= n => {
                    count = 0;
                    1
                }
                ThresholdType::Threshold => 0,
                ThresholdType::Both => u64::from(count == n),
            };
        }
    }
    alerts
}

fn load() -> (Vec<SuricataRule>, BTreeMap<usize, String>) {
    let text = std::fs::read_to_string(data().join("modbus.rules")).unwrap();
    let (rules, errors) = parse_rules(&text);
    let errors = errors.into_iter().map(|e| (e.line, e.reason)).collect();
    (rules, errors)
}

#[test]
fn the_rule_file_loads_as_documented() {
    let (rules, errors) = load();
    // Every rule numbered 9xxx fails, with a reason; every other loads.
    let text = std::fs::read_to_string(data().join("modbus.rules")).unwrap();
    let bad_lines: BTreeSet<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with('#') && l.contains("sid:9"))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(
        errors.keys().copied().collect::<BTreeSet<_>>(),
        bad_lines,
        "{errors:#?}"
    );
    assert!(rules.iter().all(|r| r.sid < 9000));
    assert!(rules.len() >= 80, "{} rules loaded", rules.len());
    for (line, reason) in &errors {
        eprintln!("modbus.rules:{line}: {reason}");
    }
}

#[test]
fn suricata_and_otwatch_raise_the_same_alerts() {
    let Some(bin) = suricata() else { return };
    let (rules, our_errors) = load();
    let mut total: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    let mut wrong = Vec::new();
    let mut pins_seen = BTreeSet::new();
    for (n, rel) in CAPTURES.iter().enumerate() {
        let path = root().join(rel);
        let s = run_suricata(bin, &path, n);
        // Suricata refuses a subset of what otwatch refuses (the rest are keywords otwatch
        // cannot honour: they load in Suricata).
        for l in &s.rejected_lines {
            assert!(
                our_errors.contains_key(l),
                "line {l}: Suricata rejects it, otwatch loads it"
            );
        }
        let evs = events(&path);
        let (compared, skipped): (Vec<&IcsEvent>, Vec<&IcsEvent>) = evs
            .iter()
            .partition(|e| s.modbus_flows.contains(&flow_key(e)));
        let unsolicited = compared
            .iter()
            .filter(|e| e.outcome == Outcome::Unsolicited)
            .count();
        eprintln!(
            "{rel}: {} events ({unsolicited} unsolicited responses) on {} Modbus connections \
             of Suricata's; {} events elsewhere",
            compared.len(),
            s.modbus_flows.len(),
            skipped.len()
        );
        for r in &rules {
            let matched: Vec<&IcsEvent> =
                compared.iter().copied().filter(|e| r.matches(e)).collect();
            let ours = match &r.threshold {
                Some(t) => thresholded(t, &matched),
                None => matched.len() as u64,
            };
            let theirs = s.alerts.get(&r.sid).copied().unwrap_or(0);
            let t = total.entry(r.sid).or_insert((0, 0));
            t.0 += ours;
            t.1 += theirs;
            let diff = ours as i64 - theirs as i64;
            let pin = PINS
                .iter()
                .find(|(f, sid, _, _)| rel.ends_with(f) && *sid == r.sid);
            if let Some(p) = pin {
                pins_seen.insert((p.0, p.1));
            }
            let expected = pin.map_or(0, |p| p.2);
            if diff != expected {
                let mut per_flow: BTreeMap<FlowKey, (u64, u64)> = BTreeMap::new();
                for e in &matched {
                    per_flow.entry(flow_key(e)).or_default().0 += 1;
                }
                for ((sid, key), c) in &s.by_flow {
                    if *sid == r.sid {
                        per_flow.entry(*key).or_default().1 += c;
                    }
                }
                wrong.push(format!(
                    "{rel}: sid {} ({}): ours {ours}, Suricata {theirs} (pinned difference \
                     {expected}{}); per flow (ours, Suricata): {per_flow:?}",
                    r.sid,
                    r.msg,
                    pin.map_or(String::new(), |p| format!(": {}", p.3))
                ));
            }
        }
        // Suricata alerts only on rules otwatch loads, or on the 9xxx rules otwatch refuses
        // (the payload-keyword ones that Suricata can run).
        for sid in s.alerts.keys() {
            assert!(
                rules.iter().any(|r| r.sid == *sid) || (9000..10000).contains(sid),
                "{rel}: Suricata alerted on sid {sid}, which is not in the rule file"
            );
        }
    }
    eprintln!("sid      ours  suricata");
    for (sid, (o, t)) in &total {
        eprintln!("{sid:<6} {o:>6} {t:>9}");
    }
    for (f, sid, _, _) in PINS {
        assert!(
            pins_seen.contains(&(*f, *sid)),
            "pin for {f} sid {sid} names no compared capture or rule"
        );
    }
    assert!(
        wrong.is_empty(),
        "{} differences:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // The comparison must not be empty: most rules alert somewhere.
    let alerting = total.values().filter(|(_, t)| *t > 0).count();
    assert!(alerting >= 50, "only {alerting} rules alerted anywhere");
}
