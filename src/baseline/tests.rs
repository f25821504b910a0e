use super::*;
use crate::detect::testkit::*;

fn small() -> Baseline {
    let mut l = Learner::default();
    for i in 0..30i64 {
        let t = i * 1000;
        l.observe(&read_hr(t, MASTER, PLC, 1, 0, &[500, 1]));
        l.observe(&read_coils(t + 10, MASTER, PLC, 1, 0, &[true, false]));
        if i % 10 == 0 {
            l.observe(&write_hr(t + 20, MASTER, PLC, 1, 0, 470 + i));
        }
    }
    l.finish().unwrap()
}

#[test]
fn learns_assets_channels_and_models() {
    let b = small();
    assert_eq!(b.version, BASELINE_VERSION);
    assert_eq!(b.kind, BASELINE_KIND);
    assert_eq!(b.learned.events, 63);
    assert_eq!(b.assets.len(), 2);
    let m = b.asset(ip(MASTER)).unwrap();
    assert!(m.roles.contains("modbus_client"));
    let p = b.asset(ip(PLC)).unwrap();
    assert!(p.roles.contains("modbus_server"));
    assert!(p.server_ports.contains(&502));
    let ch = b
        .channel(ip(MASTER), ip(PLC), crate::event::AppProto::Modbus)
        .unwrap();
    assert_eq!(ch.unit_ids.iter().copied().collect::<Vec<_>>(), [1]);
    let codes: Vec<u32> = ch.operations.iter().map(|o| o.code).collect();
    assert_eq!(codes, [1, 3, 6]);
    assert_eq!(ch.read_ranges["u1/holding_register"], [[0, 1]]);
    assert_eq!(ch.write_ranges["u1/holding_register"], [[0, 0]]);
    let hr0 = &ch.objects["u1/holding_register/0"];
    assert_eq!((hr0.reads, hr0.writes), (30, 3));
    let w = hr0.written.as_ref().unwrap();
    assert_eq!((w.min, w.max), (470.0, 490.0));
    assert!(hr0.read.as_ref().unwrap().constant);
    let poll = ch.poll("fc3 u1 holding_register 0+2").unwrap();
    assert!(poll.periodic);
    assert_eq!(poll.period_ms, 1000.0);
    assert!(!ch.poll("fc6 u1 holding_register 0+1").unwrap().periodic);
    assert_eq!(ch.cycle, ["fc1 u1 coil 0+2", "fc3 u1 holding_register 0+2"]);
    assert_eq!(ch.volume.max_per_10s, 21);
}

#[test]
fn round_trips_through_json_and_is_deterministic() {
    let b = small();
    let text = b.to_json_pretty();
    assert!(text.starts_with("{\n  \"kind\": \"otwatch-baseline\",\n  \"version\": 1,"));
    let back = Baseline::from_json(&text).unwrap();
    assert_eq!(back, b);
    assert_eq!(back.to_json_pretty(), text);
    assert_eq!(small().to_json_pretty(), text);
}

#[test]
fn load_errors_say_what_is_wrong() {
    let text = small().to_json_pretty();
    let v3 = text.replacen("\"version\": 1", "\"version\": 3", 1);
    let e = Baseline::from_json(&v3).unwrap_err();
    assert_eq!(
        e.to_string(),
        "baseline version 3, this otwatch reads version 1"
    );

    let corrupt = text.replacen("\"assets\": [", "\"assets\": [,", 1);
    let e = Baseline::from_json(&corrupt).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("baseline is not valid JSON at line "),
        "{msg}"
    );
    assert!(matches!(e, BaselineError::Json { line, .. } if line > 3));

    let e = Baseline::from_json("{\"kind\": \"pcap\", \"version\": 1}").unwrap_err();
    assert!(e.to_string().contains("not an otwatch baseline"));
    let e = Baseline::from_json("{\"kind\": \"otwatch-baseline\"}").unwrap_err();
    assert_eq!(
        e.to_string(),
        "baseline version missing, this otwatch reads version 1"
    );
    let e = Baseline::from_json("{\"kind\": \"otwatch-baseline\", \"version\": 1}").unwrap_err();
    assert!(e.to_string().contains("missing field"), "{e}");
    let e = Baseline::from_json("").unwrap_err();
    assert!(matches!(e, BaselineError::Json { .. }));
    // Valid JSON that is not an object is not a baseline.
    for not_object in ["[1, 2]", "\"otwatch-baseline\"", "42", "null", "[]"] {
        let e = Baseline::from_json(not_object).unwrap_err();
        assert!(
            matches!(&e, BaselineError::Kind { found } if found == "missing"),
            "{not_object}: {e}"
        );
    }
    // A field of the wrong type is named with its position in the file.
    let bad = text.replacen("\"assets\": [", "\"assets\": 7, \"x\": [", 1);
    let e = Baseline::from_json(&bad).unwrap_err();
    assert!(matches!(e, BaselineError::Field(_)), "{e}");
    assert!(e.to_string().contains(" line "), "{e}");

    let dup = {
        let mut b = small();
        b.channels.push(b.channels[0].clone());
        serde_json::to_string(&b).unwrap()
    };
    let e = Baseline::from_json(&dup).unwrap_err();
    assert!(e.to_string().contains("listed twice"), "{e}");

    let e = Baseline::load(std::path::Path::new("/nonexistent/otwatch.baseline.json")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot access baseline /nonexistent/"),
        "{e}"
    );
}

#[test]
fn caps_are_counted() {
    let cfg = LearnConfig {
        max_assets: 2,
        max_channels: 1,
        max_objects_per_channel: 3,
        max_polls_per_channel: 1,
        ..LearnConfig::default()
    };
    let mut l = Learner::new(cfg);
    l.observe(&read_hr(0, MASTER, PLC, 1, 0, &[1, 2, 3, 4, 5]));
    l.observe(&read_hr(10, MASTER, PLC, 1, 100, &[1]));
    l.observe(&read_hr(20, ROGUE, PLC, 1, 0, &[1]));
    let b = l.finish().unwrap();
    assert_eq!(b.assets.len(), 2);
    assert_eq!(b.dropped.assets, 1);
    assert_eq!(b.dropped.channels, 1);
    assert_eq!(b.dropped.objects, 3);
    assert_eq!(b.dropped.poll_signatures, 1);
    assert_eq!(b.channels[0].objects.len(), 3);
}

#[test]
fn empty_learner_gives_empty_baseline() {
    let b = Learner::default().finish().unwrap();
    assert!(b.assets.is_empty() && b.channels.is_empty());
    assert!(Baseline::from_json(&b.to_json_pretty()).is_ok());
}
