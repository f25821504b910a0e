#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::detector::RulesDetector;
use super::*;
use crate::alert::Alert;
use crate::detect::testkit::*;
use crate::detect::Detector;
use crate::event::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn src(name: &str, text: &str) -> Source {
    Source {
        name: name.into(),
        text: text.into(),
    }
}

fn rule_text(id: u32, matcher: &str) -> String {
    format!(
        "[[rule]]\nid = {id}\nrev = 2\ntitle = \"Test rule {id}\"\nseverity = \"high\"\n\
         attack = [\"T0836\"]\ndescription = \"\"\"\nWhy it\nmatters.\n\"\"\"\n\n[rule.match]\n{matcher}\n"
    )
}

fn load_ok(text: &str) -> RuleSet {
    let r = load(&[src("t.toml", text)]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    r.set
}

fn alerts_of(set: RuleSet, events: &[IcsEvent]) -> Vec<Alert> {
    let mut d = RulesDetector::new(Arc::new(set));
    let mut out = Vec::new();
    for e in events {
        d.on_event(e, None, &mut out);
    }
    out
}

/// True when a rule with this `[rule.match]` body fires on `ev`.
fn hits(matcher: &str, ev: &IcsEvent) -> bool {
    !alerts_of(load_ok(&rule_text(1, matcher)), std::slice::from_ref(ev)).is_empty()
}

fn errors(text: &str) -> Vec<String> {
    load(&[src("bad.toml", text)])
        .errors
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn diag(sub: u16) -> IcsEvent {
    let mut ev = modbus(
        0,
        ROGUE,
        PLC,
        1,
        8,
        "diagnostics",
        OpKind::Diagnostic,
        vec![],
        Outcome::Ok,
    );
    ev.function.sub = Some(sub);
    ev.function.sub_name = Some("force_listen_only_mode");
    ev
}

fn opcua(service: &'static str, code: u32, op: OpKind) -> IcsEvent {
    let mut ev = modbus(0, MASTER, PLC, 1, code, service, op, vec![], Outcome::Ok);
    ev.proto = AppProto::Opcua;
    ev.unit_id = None;
    ev.server.port = 4840;
    ev.function.category = "service";
    ev
}

fn opcua_write(node: &str, attribute: u32, v: Value) -> IcsEvent {
    let mut ev = opcua("Write", 673, OpKind::Write);
    ev.accesses = vec![Access {
        dir: AccessDir::Write,
        object: ObjectRef::Node {
            node_id: node.into(),
            attribute: Some(attribute),
        },
        values: vec![v].into(),
    }];
    ev
}

fn open_channel(mode: &str, policy: &str) -> IcsEvent {
    let mut ev = opcua("OpenSecureChannel", 446, OpKind::Session);
    ev.details = vec![
        ("security_policy", Value::Str(policy.into())),
        ("security_mode", Value::Str(mode.into())),
    ];
    ev
}

#[test]
fn every_match_key_matches_and_misses() {
    let w = write_hr(0, ROGUE, PLC, 3, 40, 9999);
    let r = read_hr(0, MASTER, PLC, 1, 10, &[5, 6, 7]);
    let mut exc = read_hr(0, MASTER, PLC, 1, 10, &[]);
    exc.outcome = exception(2);
    let mut viol = r.clone();
    viol.violations = vec!["length_mismatch"];
    let mut bad = opcua("Read", 631, OpKind::Read);
    bad.outcome = Outcome::Bad {
        code: 0x801F_0000,
        name: "BadUserAccessDenied",
    };
    let mut session = opcua("ActivateSession", 467, OpKind::Session);
    session.details = vec![("identity_token", Value::Str("Anonymous".into()))];
    let float = opcua_write("ns=2;s=Tank.Level", 13, Value::Float(12.5));
    let d4 = diag(4);
    let open_none = open_channel("None", "None");
    let open_sec = open_channel("SignAndEncrypt", "Basic256Sha256");
    let cases: Vec<(&str, &IcsEvent, bool)> = vec![
        ("proto = \"modbus\"", &w, true),
        ("proto = \"opcua\"", &w, false),
        ("proto = \"modbus\"\nsrc = [\"10.0.0.66\"]", &w, true),
        ("proto = \"modbus\"\nsrc = [\"10.0.0.0/30\"]", &w, false),
        ("proto = \"modbus\"\nsrc = [\"10.0.0.60-10.0.0.70\"]", &w, true),
        ("proto = \"modbus\"\nsrc = [\"!10.0.0.66\"]", &w, false),
        ("proto = \"modbus\"\nsrc = [\"!10.0.0.1\"]", &w, true),
        ("proto = \"modbus\"\ndst = \"10.0.1.0/24\"", &w, true),
        ("proto = \"modbus\"\ndst = [\"10.0.2.0/24\", \"::1\"]", &w, false),
        ("proto = \"modbus\"\ndst_port = 502", &w, true),
        ("proto = \"modbus\"\ndst_port = [\"1-501\"]", &w, false),
        ("proto = \"modbus\"\nsrc_port = \"40000-49999\"", &w, true),
        ("proto = \"modbus\"\nsrc_port = [1, 2]", &w, false),
        ("proto = \"modbus\"\nop = [\"write\", \"program\"]", &w, true),
        ("proto = \"modbus\"\nop = [\"read\"]", &w, false),
        ("proto = \"modbus\"\noutcome = [\"exception\"]", &exc, true),
        ("proto = \"modbus\"\noutcome = [\"exception\"]", &r, false),
        ("proto = \"modbus\"\nviolation = true", &viol, true),
        ("proto = \"modbus\"\nviolation = true", &r, false),
        ("proto = \"modbus\"\nviolation = [\"length_mismatch\"]", &viol, true),
        ("proto = \"modbus\"\nviolation = [\"other\"]", &viol, false),
        ("proto = \"modbus\"\nunit = 3", &w, true),
        ("proto = \"modbus\"\nunit = [\"4-10\", 1]", &w, false),
        ("proto = \"modbus\"\nfunction = [\"write_single_register\"]", &w, true),
        ("proto = \"modbus\"\nfunction = 6", &w, true),
        ("proto = \"modbus\"\nfunction = [3, \"write_multiple_registers\"]", &w, false),
        ("proto = \"modbus\"\ncategory = [\"public\"]", &w, true),
        ("proto = \"modbus\"\ncategory = [\"user_defined\"]", &w, false),
        ("proto = \"modbus\"\nsub_function = [4]", &d4, true),
        ("proto = \"modbus\"\nsub_function = \"0-3\"", &d4, false),
        ("proto = \"modbus\"\nsub_function = 4", &w, false),
        ("proto = \"modbus\"\ntable = [\"holding_register\"]", &w, true),
        ("proto = \"modbus\"\ntable = [\"coil\"]", &w, false),
        ("proto = \"modbus\"\naddress = \"30-40\"", &w, true),
        ("proto = \"modbus\"\naddress = [41, 0]", &w, false),
        ("proto = \"modbus\"\naddress = 12", &r, true),
        ("proto = \"modbus\"\naccess = \"write\"", &w, true),
        ("proto = \"modbus\"\naccess = \"write\"", &r, false),
        ("proto = \"modbus\"\nvalue = \"> 9000\"", &w, true),
        ("proto = \"modbus\"\nvalue = \"<= 9000\"", &w, false),
        ("proto = \"modbus\"\nvalue = [1, 9999]", &w, true),
        ("proto = \"modbus\"\nvalue = \"9000-9998\"", &w, false),
        ("proto = \"modbus\"\nvalue = \"!= 9999\"", &w, false),
        ("proto = \"modbus\"\nvalue = \">= 9999\"", &w, true),
        ("proto = \"modbus\"\nvalue = \"< 0\"", &w, false),
        // Values only within `address`: register 11 holds 6, register 12 holds 7.
        ("proto = \"modbus\"\naddress = 11\nvalue = 6", &r, true),
        ("proto = \"modbus\"\naddress = 11\nvalue = 7", &r, false),
        ("proto = \"modbus\"\nexception = [\"illegal_data_address\"]", &exc, true),
        ("proto = \"modbus\"\nexception = 1", &exc, false),
        ("proto = \"modbus\"\nexception = 2", &r, false),
        ("proto = \"opcua\"\nservice = [\"WriteRequest\"]", &float, true),
        ("proto = \"opcua\"\nservice = \"Write\"", &float, true),
        ("proto = \"opcua\"\nservice = 673", &float, true),
        ("proto = \"opcua\"\nservice = [\"Read\"]", &float, false),
        ("proto = \"opcua\"\nnode = \"ns=2;s=Tank.Level\"", &float, true),
        ("proto = \"opcua\"\nnode = \"ns=2;s=Tank\"", &float, false),
        ("proto = \"opcua\"\nnode_prefix = \"ns=2;s=Tank\"", &float, true),
        ("proto = \"opcua\"\nnode_prefix = [\"ns=3;\"]", &float, false),
        ("proto = \"opcua\"\nnamespace = 2", &float, true),
        ("proto = \"opcua\"\nnamespace = [0, 1]", &float, false),
        ("proto = \"opcua\"\nattribute = \"value\"", &float, true),
        ("proto = \"opcua\"\nattribute = [1, 3]", &float, false),
        ("proto = \"opcua\"\nvalue = 12.5", &float, true),
        ("proto = \"opcua\"\nvalue = \"12.6-20\"", &float, false),
        ("proto = \"opcua\"\naccess = \"read\"", &float, false),
        (
            "proto = \"opcua\"\nsecurity_mode = [\"None\"]",
            &open_none,
            true,
        ),
        (
            "proto = \"opcua\"\nsecurity_mode = [\"None\"]",
            &open_sec,
            false,
        ),
        (
            "proto = \"opcua\"\nsecurity_policy = [\"http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256\"]",
            &open_sec,
            true,
        ),
        (
            "proto = \"opcua\"\nsecurity_policy = [\"None\"]",
            &open_sec,
            false,
        ),
        ("proto = \"opcua\"\nidentity = [\"Anonymous\"]", &session, true),
        ("proto = \"opcua\"\nidentity = [\"UserName\"]", &session, false),
        ("proto = \"opcua\"\nidentity = [\"Anonymous\"]", &float, false),
        ("proto = \"opcua\"\nstatus = \"BadUserAccessDenied\"", &bad, true),
        ("proto = \"opcua\"\nstatus = \"0x801F0000\"", &bad, true),
        ("proto = \"opcua\"\nstatus = \"bad\"", &bad, true),
        ("proto = \"opcua\"\nstatus = \"bad\"", &float, false),
        ("proto = \"opcua\"\nstatus = [\"BadNodeIdUnknown\"]", &bad, false),
        ("proto = \"opcua\"\noutcome = [\"bad\"]", &bad, true),
    ];
    for (m, ev, want) in cases {
        assert_eq!(hits(m, ev), want, "{m}");
    }
}

#[test]
fn alert_carries_the_rule() {
    let set = load_ok(&rule_text(
        9_100_101,
        "proto = \"modbus\"\nsub_function = [4]",
    ));
    let a = alerts_of(set, &[diag(4)]);
    assert_eq!(a.len(), 1);
    let a = &a[0];
    assert_eq!(a.alert.signature_id, 9_100_101);
    assert_eq!(a.alert.rev, 2);
    assert_eq!(a.alert.signature, "OTWATCH MODBUS Test rule 9100101");
    assert_eq!(a.alert.category, "Policy violation");
    assert_eq!(a.alert.severity, 1);
    assert_eq!(a.alert.metadata.mitre_attack_ics, vec!["T0836"]);
    assert_eq!(a.otwatch.detector, "rules");
    assert_eq!(a.otwatch.kind, "rule");
    assert_eq!(
        a.otwatch.explanation,
        "10.0.0.66 sent diagnostics (fc 8) force_listen_only_mode to 10.0.1.1 unit 1. Why it matters."
    );
    assert_eq!(a.otwatch.evidence.len(), 1);
    assert_eq!(a.otwatch.unit_id, Some(1));
}

#[test]
fn groups_merge_across_files_and_negation_uses_them() {
    let a = src(
        "a.toml",
        &format!(
            "[groups]\neng = [\"10.0.0.7\"]\n\n{}",
            rule_text(5, "proto = \"modbus\"\nsrc = [\"!eng\"]\nop = [\"write\"]")
        ),
    );
    let b = src("b.toml", "[groups]\neng = [\"10.0.0.66\"]\n");
    let only_a = load(std::slice::from_ref(&a));
    assert!(only_a.errors.is_empty());
    let w = write_hr(0, ROGUE, PLC, 1, 40, 1);
    assert_eq!(alerts_of(only_a.set, std::slice::from_ref(&w)).len(), 1);
    // With b, 10.0.0.66 is in the group: allowed.
    let both = load(&[a, b]);
    assert!(both.errors.is_empty());
    assert!(alerts_of(both.set, &[w]).is_empty());
}

#[test]
fn requires_disables_until_the_group_is_named() {
    let pack = src(
        "groups.toml",
        &format!(
            "[groups]\neng = []\n\n[[rule]]\nid = 7\nrev = 1\ntitle = \"Write not from eng\"\n\
             severity = \"medium\"\ndescription = \"x\"\nrequires = [\"eng\"]\n\n[rule.match]\n\
             proto = \"modbus\"\nsrc = [\"!eng\"]\n\n{}",
            rule_text(8, "proto = \"modbus\"")
        ),
    );
    let r = load(std::slice::from_ref(&pack));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.set.disabled, 1);
    assert_eq!(r.set.rules.len(), 1);
    assert_eq!(r.notices.len(), 1);
    assert_eq!(
        r.notices[0].to_string(),
        "groups.toml:5:6: notice: rule 7 \"Write not from eng\" is disabled until group eng is named (requires)"
    );
    let site = src("site.toml", "[groups]\neng = [\"10.0.0.1\"]\n");
    let r = load(&[pack, site]);
    assert!(r.notices.is_empty());
    assert_eq!(r.set.rules.len(), 2);
    // enabled = false: a notice too.
    let off = rule_text(9, "proto = \"modbus\"").replace("rev = 2", "rev = 2\nenabled = false");
    let r = load(&[src("off.toml", &off)]);
    assert_eq!(r.set.rules.len(), 0);
    assert!(r.notices[0].message.contains("enabled = false"));
}

#[test]
fn thresholds_count_per_track_on_capture_time() {
    let th = |track: &str| {
        format!(
            "{}\n[rule.threshold]\ncount = 3\nseconds = 10\ntrack = \"{track}\"\n",
            rule_text(1, "proto = \"modbus\"\nop = [\"write\"]")
        )
    };
    // ROGUE writes twice to PLC and once to another PLC; MASTER twice to PLC.
    let evs = vec![
        write_hr(0, ROGUE, PLC, 1, 1, 1),
        write_hr(1000, MASTER, PLC, 1, 1, 1),
        write_hr(2000, ROGUE, "10.0.1.2", 1, 1, 1),
        write_hr(3000, MASTER, PLC, 1, 1, 1),
        write_hr(4000, ROGUE, PLC, 1, 1, 1),
    ];
    // by_src: ROGUE reaches 3 at 4 s.
    let a = alerts_of(load_ok(&th("by_src")), &evs);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].src_ip, ip(ROGUE));
    assert!(a[0]
        .otwatch
        .explanation
        .contains("(3 matching operations within 10 s from 10.0.0.66)"));
    // by_dst: the PLC reaches 3 at 3 s; once per window.
    let a = alerts_of(load_ok(&th("by_dst")), &evs);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].timestamp, ts_ms(3000));
    // by_channel: no channel reaches 3.
    assert!(alerts_of(load_ok(&th("by_channel")), &evs).is_empty());
    // Windows expire on capture time: 3 writes spread over more than 10 s never fire.
    let slow = vec![
        write_hr(0, ROGUE, PLC, 1, 1, 1),
        write_hr(6000, ROGUE, PLC, 1, 1, 1),
        write_hr(12_000, ROGUE, PLC, 1, 1, 1),
        write_hr(14_000, ROGUE, PLC, 1, 1, 1),
    ];
    assert!(alerts_of(load_ok(&th("by_src")), &slow).is_empty());
    // A new window fires again.
    let mut twice = evs.clone();
    for ms in [20_000, 21_000, 22_000] {
        twice.push(write_hr(ms, ROGUE, PLC, 1, 1, 1));
    }
    assert_eq!(alerts_of(load_ok(&th("by_src")), &twice).len(), 2);
}

#[test]
fn threshold_state_is_bounded_and_counts_drops() {
    let text = format!(
        "{}\n[rule.threshold]\ncount = 2\nseconds = 60\n",
        rule_text(1, "proto = \"modbus\"")
    );
    let mut d = RulesDetector::new(Arc::new(load_ok(&text))).with_max_tracked(2);
    let stats = d.stats();
    let mut out = Vec::new();
    for (i, c) in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.3"]
        .iter()
        .enumerate()
    {
        d.on_event(&write_hr(i as i64, c, PLC, 1, 1, 1), None, &mut out);
    }
    assert!(out.is_empty());
    assert_eq!(stats.threshold_dropped.load(Ordering::Relaxed), 2);
    assert_eq!(stats.matched.load(Ordering::Relaxed), 4);
}

#[test]
fn errors_have_exact_positions() {
    let ok_rule = rule_text(1, "proto = \"modbus\"");
    let cases: Vec<(String, &str)> = vec![
        // Syntax error.
        ("[[rule]\n".into(), "bad.toml:1:"),
        // Unknown key in the match table (line 12, the key).
        (
            rule_text(1, "proto = \"modbus\"\nadress = 3"),
            "bad.toml:14:1: unknown field \"adress\"",
        ),
        // Wrong type.
        (
            ok_rule.replace("rev = 2", "rev = \"two\""),
            "bad.toml:3:7: invalid type: string \"two\", expected u32",
        ),
        // Key of the other protocol.
        (
            rule_text(1, "proto = \"opcua\"\nunit = 1"),
            "bad.toml:14:8: \"unit\" is a modbus key",
        ),
        (
            rule_text(
                1,
                "proto = \"modbus\"\nfunction = [3, \"write_everything\"]",
            ),
            "bad.toml:14:16: unknown Modbus function \"write_everything\"",
        ),
        (
            rule_text(1, "proto = \"opcua\"\nservice = \"Frobnicate\""),
            "bad.toml:14:11: unknown OPC UA service \"Frobnicate\"",
        ),
        (
            rule_text(1, "proto = \"opcua\"\nstatus = [\"BadThing\"]"),
            "bad.toml:14:11: unknown OPC UA status \"BadThing\"",
        ),
        (
            ok_rule.replace("\"T0836\"", "\"T0999\""),
            "bad.toml:6:11: unknown ATT&CK for ICS technique \"T0999\"",
        ),
        (
            rule_text(1, "proto = \"modbus\"\naddress = \"40-30\""),
            "bad.toml:14:11: address range 40-30 ends below its start",
        ),
        (
            rule_text(1, "proto = \"modbus\"\naddress = [1, 70000]"),
            "bad.toml:14:15: address 70000 is out of range (0-65535)",
        ),
        (
            rule_text(1, "proto = \"modbus\"\nunit = 256"),
            "bad.toml:14:8: unit 256 is out of range (0-255)",
        ),
        (
            rule_text(1, "proto = \"modbus\"\nsrc = [\"10.0.0.1\", \"hmi\"]"),
            "bad.toml:14:20: undefined group \"hmi\"",
        ),
        (
            format!("{ok_rule}\n{ok_rule}"),
            "bad.toml:16:6: duplicate rule id 1 (first defined at bad.toml:2:6)",
        ),
        (
            format!("{ok_rule}\n[rule.threshold]\ncount = 0\nseconds = 5\n"),
            "bad.toml:16:9: threshold count must be at least 1",
        ),
        (
            format!("{ok_rule}\n[rule.threshold]\ncount = 2\nseconds = 0\n"),
            "bad.toml:17:11: threshold seconds must be at least 1",
        ),
        (
            ok_rule.replace("\"high\"", "\"urgent\""),
            "bad.toml:5:12: unknown severity \"urgent\"",
        ),
        (
            rule_text(1, "proto = \"modbus\"\nvalue = \"> x\""),
            "bad.toml:14:9: value: \" x\" is not a number",
        ),
    ];
    for (text, want) in cases {
        let got = errors(&text);
        assert!(
            got.iter().any(|e| e.starts_with(want)),
            "want {want:?}, got {got:?} for\n{text}"
        );
    }
    // Suricata rules otwatch cannot honour are reported with the reason, not silently skipped.
    let r = load(&[src(
        "x.rules",
        "# a comment\nalert tcp any any -> any 502 (msg:\"no modbus\"; sid:1;)\n\
         alert modbus any any -> any any (msg:\"fc 8\"; modbus: function 8; sid:2;)\n",
    )]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.notices.len(), 1);
    assert_eq!(r.notices[0].at, "x.rules:2:1");
    assert_eq!(r.notices[0].id, 1);
    assert!(r.notices[0]
        .message
        .starts_with("Suricata rule not loaded: "));
    assert_eq!(r.set.rules.len(), 1);
    assert_eq!(r.set.rules[0].id, 2);
    assert_eq!(r.set.rules[0].signature, "fc 8");
    // A sid that a native rule already uses is a duplicate.
    let r = load(&[
        src(
            "a.rules",
            "alert modbus any any -> any any (msg:\"x\"; modbus: function 8; sid:7;)",
        ),
        src("b.toml", &rule_text(7, "proto = \"modbus\"")),
    ]);
    assert!(
        r.errors
            .iter()
            .any(|e| e.message.contains("duplicate rule id 7")),
        "{:?}",
        r.errors
    );
}

#[test]
fn index_picks_function_buckets_and_wildcards_in_rule_order() {
    let mut text = String::new();
    for fc in 1..=200u32 {
        text.push_str(&rule_text(
            1000 + fc,
            &format!("proto = \"modbus\"\nfunction = {}", fc % 100 + 1),
        ));
    }
    text.push_str(&rule_text(1, "proto = \"modbus\"\nsrc = [\"10.0.0.66\"]"));
    text.push_str(&rule_text(2, "proto = \"opcua\"\nservice = \"Write\""));
    let set = load_ok(&text);
    let w = write_hr(0, ROGUE, PLC, 1, 40, 1);
    let (a, b) = set.index.candidates(&w);
    assert_eq!(a.len(), 2); // function 6: rules 1005 and 1105
    assert_eq!(b.len(), 1);
    let ids: Vec<u32> = alerts_of(set, &[w])
        .iter()
        .map(|a| a.alert.signature_id)
        .collect();
    assert_eq!(ids, vec![1, 1005, 1105]);
}

#[test]
fn rules_that_need_another_outcome_are_not_candidates_for_normal_answers() {
    let text = format!(
        "{}{}{}{}",
        rule_text(
            1,
            "proto = \"modbus\"\nexception = [\"illegal_data_address\"]"
        ),
        rule_text(
            2,
            "proto = \"modbus\"\noutcome = [\"timeout\", \"no_response\"]"
        ),
        rule_text(3, "proto = \"modbus\"\noutcome = [\"ok\", \"timeout\"]"),
        rule_text(4, "proto = \"modbus\"\nfunction = 3\nexception = [2]"),
    );
    let set = load_ok(&text);
    let ok = read_hr(0, MASTER, PLC, 1, 0, &[1]);
    let (a, b) = set.index.candidates(&ok);
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(b, &[2][..]); // only rule 3 (position 2) can match a normal answer
    let mut exc = read_hr(0, MASTER, PLC, 1, 0, &[]);
    exc.outcome = Outcome::Exception {
        code: 2,
        name: "illegal_data_address",
    };
    let (a, b) = set.index.candidates(&exc);
    assert_eq!(a, &[3][..]);
    assert_eq!(b, &[0, 1, 2][..]);
    let ids: Vec<u32> = alerts_of(set, &[ok, exc])
        .iter()
        .map(|a| a.alert.signature_id)
        .collect();
    assert_eq!(ids, vec![3, 1, 4]);
}

#[test]
fn same_events_same_alerts() {
    let text = format!(
        "{}{}",
        rule_text(3, "proto = \"modbus\"\nop = [\"write\"]"),
        rule_text(4, "proto = \"modbus\"\naddress = \"0-100\"")
    );
    let evs: Vec<IcsEvent> = (0..50)
        .map(|i| {
            write_hr(
                i * 100,
                if i % 2 == 0 { ROGUE } else { MASTER },
                PLC,
                1,
                i as u32,
                i,
            )
        })
        .collect();
    let a: Vec<String> = alerts_of(load_ok(&text), &evs)
        .iter()
        .map(Alert::to_json_line)
        .collect();
    let b: Vec<String> = alerts_of(load_ok(&text), &evs)
        .iter()
        .map(Alert::to_json_line)
        .collect();
    assert_eq!(a.len(), 100);
    assert_eq!(a, b);
}

#[test]
fn the_shipped_pack_loads_without_errors() {
    let r = load(&embedded_pack());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn addresses_parse_as_intervals() {
    use compile::parse_addr;
    let v4 = |s: &str| compile::ip_num(s.parse().unwrap());
    assert_eq!(
        parse_addr("10.0.5.0/28").unwrap(),
        (v4("10.0.5.0"), v4("10.0.5.15"))
    );
    assert_eq!(parse_addr("10.0.0.0/0").unwrap().0, v4("0.0.0.0"));
    assert_eq!(parse_addr("::1").unwrap(), (1, 1));
    assert_eq!(parse_addr("fe80::/64").unwrap().1 & 0xffff, 0xffff);
    assert!(parse_addr("10.0.0.9-10.0.0.1").is_err());
    assert!(parse_addr("10.0.0.0/33").is_err());
    assert!(parse_addr("10.0.0.1-::2").is_err());
    assert!(parse_addr("nonsense").is_err());
}

proptest::proptest! {
    #[test]
    fn any_text_loads_without_panicking(s in "\\PC{0,300}") {
        let r = load(&[src("x.toml", &s)]);
        for e in &r.errors {
            proptest::prop_assert!(e.line >= 1 && e.col >= 1);
        }
    }

    #[test]
    fn mangled_rules_load_without_panicking(at in 0usize..400, junk in "[\\[\\]=\"!0-9a-z ,.\\-/\n]{0,12}") {
        let good = format!(
            "[groups]\ng = [\"10.0.0.1/24\"]\n{}",
            rule_text(1, "proto = \"modbus\"\nsrc = [\"!g\"]\naddress = \"1-9\"\nvalue = \"> 3\"")
        );
        let cut = (0..=at.min(good.len())).rev().find(|i| good.is_char_boundary(*i)).unwrap_or(0);
        let text = format!("{}{junk}{}", &good[..cut], &good[cut..]);
        let r = load(&[src("x.toml", &text)]);
        let n = text.lines().count().max(1);
        for e in &r.errors {
            proptest::prop_assert!(e.line <= n + 1, "{e}");
        }
    }
}

#[test]
fn suricata_threshold_types_limit_every_and_both() {
    // Seven writes from one client within 60 s.
    let evs: Vec<_> = (0..7)
        .map(|i| write_hr(i * 1000, ROGUE, PLC, 1, 1, 1))
        .collect();
    let fired = |kind: &str, track: &str| {
        let text = format!(
            "alert modbus any any -> any any (msg:\"w\"; modbus: access write; \
             threshold: type {kind}, track {track}, count 3, seconds 60; sid:5;)"
        );
        let r = load(&[src("t.rules", &text)]);
        assert!(r.errors.is_empty() && r.notices.is_empty(), "{r:?}");
        alerts_of(r.set, &evs).len()
    };
    // limit: the first 3 of the window.
    assert_eq!(fired("limit", "by_src"), 3);
    // threshold: every 3rd match (3rd and 6th).
    assert_eq!(fired("threshold", "by_dst"), 2);
    // both: once per window, at the 3rd match.
    assert_eq!(fired("both", "by_rule"), 1);
    assert_eq!(fired("both", "by_both"), 1);
}
