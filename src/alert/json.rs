//! The alert record as one line of JSON, written by hand: the bytes `serde_json` writes for the
//! derived `Serialize` of [`Alert`] (field order, skipped fields, string escapes, numbers), without
//! its per-byte escape loop and per-field calls: in an alert flood every line is written. Strings
//! are scanned eight bytes at a time for the bytes that need an escape (`"`, `\`, controls) and
//! copied in runs; capture times of the same second reuse the date and time of day already
//! printed. Floating-point fields (ML alerts only) are written by `serde_json` itself. Tests check
//! the bytes against `serde_json` over many alerts.

use super::schema::{Alert, AlertEvidence};
use super::{push_ip, push_u64};
use crate::event::AppProto;
use crate::time::Timestamp;

/// Writes alert lines, remembering the date and time of day of the last capture second printed.
#[derive(Debug, Default)]
pub struct AlertWriter {
    /// The second whose `YYYY-MM-DDTHH:MM:SS.` is in `prefix`, when `prefix` is filled.
    secs: Option<i64>,
    prefix: String,
}

impl AlertWriter {
    /// A writer with nothing remembered.
    pub fn new() -> Self {
        AlertWriter::default()
    }

    /// Appends `a` as one line of JSON (no newline) to `out`: the bytes of
    /// `serde_json::to_string(a)`.
    pub fn write(&mut self, a: &Alert, out: &mut String) {
        out.push_str("{\"timestamp\":");
        self.ts(a.timestamp, out);
        if let Some(id) = a.flow_id {
            out.push_str(",\"flow_id\":");
            push_u64(out, id);
        }
        out.push_str(",\"event_type\":");
        push_str(out, a.event_type);
        out.push_str(",\"src_ip\":\"");
        push_ip(out, a.src_ip);
        out.push_str("\",\"src_port\":");
        push_u64(out, u64::from(a.src_port));
        out.push_str(",\"dest_ip\":\"");
        push_ip(out, a.dest_ip);
        out.push_str("\",\"dest_port\":");
        push_u64(out, u64::from(a.dest_port));
        out.push_str(",\"proto\":");
        push_str(out, a.proto);
        out.push_str(match a.app_proto {
            AppProto::Modbus => ",\"app_proto\":\"modbus\",\"community_id\":",
            AppProto::Opcua => ",\"app_proto\":\"opcua\",\"community_id\":",
        });
        push_str(out, &a.community_id);
        let b = &a.alert;
        out.push_str(",\"alert\":{\"action\":");
        push_str(out, b.action);
        out.push_str(",\"gid\":");
        push_u64(out, u64::from(b.gid));
        out.push_str(",\"signature_id\":");
        push_u64(out, u64::from(b.signature_id));
        out.push_str(",\"rev\":");
        push_u64(out, u64::from(b.rev));
        out.push_str(",\"signature\":");
        push_str(out, &b.signature);
        out.push_str(",\"category\":");
        push_str(out, b.category);
        out.push_str(",\"severity\":");
        push_u64(out, u64::from(b.severity));
        out.push_str(",\"metadata\":{\"mitre_attack_ics\":[");
        for (i, t) in b.metadata.mitre_attack_ics.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_str(out, t);
        }
        let o = &a.otwatch;
        out.push_str("]}},\"otwatch\":{\"schema_version\":");
        push_u64(out, u64::from(o.schema_version));
        out.push_str(",\"detector\":");
        push_str(out, o.detector);
        out.push_str(",\"kind\":");
        push_str(out, o.kind);
        out.push_str(",\"explanation\":");
        push_str(out, &o.explanation);
        if let Some(u) = o.unit_id {
            out.push_str(",\"unit_id\":");
            push_u64(out, u64::from(u));
        }
        if let Some(f) = &o.baseline_fact {
            out.push_str(",\"baseline_fact\":");
            push_str(out, f);
        }
        if let Some(r) = &o.baseline_ref {
            out.push_str(",\"baseline_ref\":");
            push_str(out, r);
        }
        if o.score.is_some() {
            out.push_str(",\"score\":");
            push_serde(out, &o.score);
        }
        if o.ml.is_some() {
            out.push_str(",\"ml\":");
            push_serde(out, &o.ml);
        }
        if !o.evidence.is_empty() {
            out.push_str(",\"evidence\":[");
            for (i, e) in o.evidence.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                self.evidence(e, out);
            }
            out.push(']');
        }
        out.push_str(",\"count\":");
        push_u64(out, o.count);
        out.push_str(",\"first_seen\":");
        self.ts(o.first_seen, out);
        out.push_str(",\"last_seen\":");
        self.ts(o.last_seen, out);
        out.push_str(if o.aggregated {
            ",\"aggregated\":true}}"
        } else {
            ",\"aggregated\":false}}"
        });
    }

    fn evidence(&mut self, e: &AlertEvidence, out: &mut String) {
        out.push_str("{\"ts\":");
        self.ts(e.ts, out);
        out.push_str(",\"file\":");
        push_str(out, &e.file);
        out.push_str(",\"packet\":");
        push_u64(out, e.packet);
        if let Some(p) = e.response_packet {
            out.push_str(",\"response_packet\":");
            push_u64(out, p);
        }
        out.push_str(",\"summary\":");
        push_str(out, &e.summary);
        out.push('}');
    }

    /// A capture time as a JSON string: `Timestamp`'s text (see [`Timestamp::push_rfc3339`]);
    /// for the second printed last, its date and time of day are copied and only the fraction
    /// is written.
    fn ts(&mut self, t: Timestamp, out: &mut String) {
        out.push('"');
        if self.secs == Some(t.secs) && t.nanos < 1_000_000_000 {
            out.push_str(&self.prefix);
            push_fraction(out, t.nanos);
            out.push('"');
            return;
        }
        let at = out.len();
        t.push_rfc3339(out);
        // Remember the second when the text has the usual form (a four-digit year).
        self.secs = None;
        if let Some(p) = out.get(at..at + 20) {
            // A four-digit year: only the year's first character can be `-`.
            let b = p.as_bytes();
            if b.get(19) == Some(&b'.') && b.get(4) == Some(&b'-') && t.nanos < 1_000_000_000 {
                self.prefix.clear();
                self.prefix.push_str(p);
                self.secs = Some(t.secs);
            }
        }
        out.push('"');
    }
}

/// The fraction and `Z` after `YYYY-MM-DDTHH:MM:SS.`: six digits of microseconds when the
/// nanoseconds are whole microseconds, else nine digits (`nanos` below 10^9).
#[inline]
fn push_fraction(out: &mut String, nanos: u32) {
    let mut buf = *b"000000000Z";
    let (mut v, n) = if nanos % 1000 == 0 {
        (nanos / 1000, 6)
    } else {
        (nanos, 9)
    };
    let mut i = n;
    while i > 0 {
        i -= 1;
        if let Some(b) = buf.get_mut(i) {
            *b = b'0' + (v % 10) as u8;
        }
        v /= 10;
    }
    if let Some(b) = buf.get_mut(n) {
        *b = b'Z';
    }
    if let Some(s) = buf.get(..=n).and_then(|b| std::str::from_utf8(b).ok()) {
        out.push_str(s);
    }
}

/// A value written by `serde_json` itself (the floating-point fields).
#[cold]
fn push_serde<T: serde::Serialize>(out: &mut String, v: &T) {
    // Plain structs of numbers and strings: writing to a String cannot fail.
    if let Ok(s) = serde_json::to_string(v) {
        out.push_str(&s);
    }
}

/// Whether a byte of `w` is below 0x20, `"` or `\` (the bytes JSON strings escape).
#[inline]
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A zero byte in `v`: (v - ONES) & !v & HIGH is non-zero exactly when one exists.
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    // A byte below 0x20 (bytes of 0x80 and above never count: `& !w`).
    let low = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    (low | zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')))) != 0
}

/// The escape `serde_json` writes for byte `c`, if it needs one.
#[inline]
fn escape(c: u8) -> Option<&'static str> {
    const CONTROL: [&str; 32] = [
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b", "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f", "\\u0010", "\\u0011",
        "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019",
        "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    ];
    match c {
        b'"' => Some("\\\""),
        b'\\' => Some("\\\\"),
        0..=0x1f => CONTROL.get(usize::from(c)).copied(),
        _ => None,
    }
}

/// `s` as a JSON string (quoted and escaped as `serde_json` does).
pub fn push_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let b = s.as_bytes();
    // Start of the run not yet copied; the scan position.
    let (mut run, mut i) = (0, 0);
    while i < b.len() {
        if let Some(w) = b.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            if !word_needs_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let c = b.get(i).copied().unwrap_or(0);
        if let Some(e) = escape(c) {
            // `i` is at an ASCII byte, so both ends of the run are character boundaries.
            out.push_str(s.get(run..i).unwrap_or(""));
            out.push_str(e);
            run = i + 1;
        }
        i += 1;
    }
    out.push_str(s.get(run..).unwrap_or(""));
    out.push('"');
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::alert::schema::{MlFeature, MlScore};
    use crate::alert::signatures::SIGNATURES;
    use crate::event::Endpoint;
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::sync::Arc;

    fn serde_line(a: &Alert) -> String {
        serde_json::to_string(a).unwrap()
    }

    fn hand_line(w: &mut AlertWriter, a: &Alert) -> String {
        let mut s = String::from("junk before");
        w.write(a, &mut s);
        s.split_off("junk before".len())
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "a \"quoted\" \\ back".into(),
            "tab\there\nnew\rline\u{8}\u{c}\u{0}\u{1f}\u{7f}".into(),
            "non-ASCII → é ✓ 😀 470–530".into(),
            "0123456789abcdef\"0123456789abcdef\\".into(),
        ];
        for c in 0u8..=0x7f {
            for at in 0..17 {
                let mut s = "x".repeat(at);
                s.push(char::from(c));
                s.push_str("yyyyyyyyy");
                cases.push(s);
            }
        }
        for s in cases {
            let mut out = String::new();
            push_str(&mut out, &s);
            assert_eq!(out, serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn word_check_is_the_byte_check() {
        let needs = |c: u8| c < 0x20 || c == b'"' || c == b'\\';
        for c in 0..=255u8 {
            for pos in 0..8 {
                for fill in [b'a', 0x80, 0xff, b'!', b'#', 0x5b, 0x5d, 0x1f + 1] {
                    let mut w = [fill; 8];
                    w[pos] = c;
                    let want = w.iter().any(|&b| needs(b));
                    assert_eq!(word_needs_escape(u64::from_le_bytes(w)), want, "{w:?}");
                }
            }
        }
    }

    #[test]
    fn numbers_are_itoa() {
        for v in [
            0u64,
            1,
            9,
            10,
            99,
            100,
            12345,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut s = String::new();
            push_u64(&mut s, v);
            assert_eq!(s, v.to_string());
        }
    }

    fn ts_strategy() -> impl Strategy<Value = Timestamp> {
        prop_oneof![
            (1_600_000_000i64..1_600_000_010, 0u32..1_000_000_000)
                .prop_map(|(s, n)| Timestamp { secs: s, nanos: n }),
            (1_600_000_000i64..1_600_000_003, 0u32..1_000_000).prop_map(|(s, n)| Timestamp {
                secs: s,
                nanos: n * 1000
            }),
            (-1_000_000_000_000i64..1_000_000_000_000, any::<u32>())
                .prop_map(|(s, n)| Timestamp { secs: s, nanos: n }),
            (-100_000_000_000i64..300_000_000_000, 0u32..2_000_000_000)
                .prop_map(|(s, n)| Timestamp { secs: s, nanos: n }),
        ]
    }

    fn ip_strategy() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
            any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        ]
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ -~]{0,80}",
            "\\PC{0,40}",
            any::<String>(),
            proptest::collection::vec(
                prop_oneof![
                    Just('a'),
                    Just('"'),
                    Just('\\'),
                    Just('é'),
                    Just('\u{7f}'),
                    (0u8..0x20).prop_map(char::from)
                ],
                0..30
            )
            .prop_map(String::from_iter),
        ]
    }

    prop_compose! {
        fn evidence()(ts in ts_strategy(), file in text(), packet in any::<u64>(),
                      resp in proptest::option::of(any::<u64>()), summary in text())
                      -> AlertEvidence {
            AlertEvidence { ts, file: Arc::from(file.as_str()), packet, response_packet: resp, summary }
        }
    }

    prop_compose! {
        fn alert()(sig in 0..SIGNATURES.len(), ts in ts_strategy(), first in ts_strategy(),
                   last in ts_strategy(), src in ip_strategy(), dst in ip_strategy(),
                   ports in any::<(u16, u16)>(), opcua in any::<bool>(), expl in text(),
                   flow in proptest::option::of(any::<u64>()), unit in proptest::option::of(any::<u8>()),
                   fact in proptest::option::of(text()), reference in proptest::option::of(text()),
                   detail in proptest::option::of(text()),
                   score in proptest::option::of(prop_oneof![any::<f64>(), Just(f64::NAN), Just(0.909)]),
                   ml in any::<bool>(), evidence in proptest::collection::vec(evidence(), 0..4),
                   count in any::<u64>(), aggregated in any::<bool>(), severity in 0u8..5,
                   techniques in proptest::collection::vec(prop_oneof![Just("T0836"), Just("a\"b")], 0..3))
                   -> Alert {
            let client = Endpoint { ip: src, port: ports.0, mac: None };
            let server = Endpoint { ip: dst, port: ports.1, mac: None };
            let proto = if opcua { AppProto::Opcua } else { AppProto::Modbus };
            let mut a = Alert::new(&SIGNATURES[sig], ts, &client, &server, proto, expl);
            if let Some(d) = detail {
                a = a.with_signature_detail(&d);
            }
            if let (Some(f), Some(r)) = (fact.clone(), reference.clone()) {
                a = a.with_fact(f, r);
            } else {
                a.otwatch.baseline_fact = fact;
                a.otwatch.baseline_ref = reference;
            }
            a.flow_id = flow;
            a.otwatch.unit_id = unit;
            a.otwatch.score = score;
            a.alert.severity = severity;
            a.otwatch.count = count;
            a.otwatch.aggregated = aggregated;
            a.otwatch.first_seen = first;
            a.otwatch.last_seen = last;
            a.otwatch.evidence = evidence;
            if !techniques.is_empty() {
                a.alert.metadata.mitre_attack_ics = techniques;
            }
            if ml {
                a.otwatch.ml = Some(MlScore {
                    score: 40.5,
                    threshold: f64::INFINITY,
                    window_start: first,
                    window_end: last,
                    features: vec![MlFeature { name: "exceptions", value: 1e300, normal: -0.0, share: 0.1 }],
                });
            }
            a
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(600))]
        #[test]
        fn alert_lines_are_the_serde_json_bytes(alerts in proptest::collection::vec(alert(), 1..6)) {
            // One writer over several alerts: its remembered second carries over.
            let mut w = AlertWriter::new();
            for a in &alerts {
                prop_assert_eq!(hand_line(&mut w, a), serde_line(a));
            }
        }

        #[test]
        fn capture_times_are_display(ts in proptest::collection::vec(ts_strategy(), 1..20)) {
            let mut w = AlertWriter::new();
            for t in ts {
                let mut s = String::new();
                w.ts(t, &mut s);
                prop_assert_eq!(s, format!("\"{t}\""));
            }
        }
    }

    #[test]
    fn every_signature_line_is_the_serde_json_bytes() {
        let client = Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)),
            port: 40000,
            mac: None,
        };
        let server = Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 20)),
            port: 502,
            mac: None,
        };
        let mut w = AlertWriter::new();
        for sig in SIGNATURES {
            let a = Alert::new(
                sig,
                Timestamp::new(1_700_001_800, 250_000_000),
                &client,
                &server,
                AppProto::Modbus,
                "why".into(),
            );
            assert_eq!(hand_line(&mut w, &a), serde_line(&a));
        }
    }
}
