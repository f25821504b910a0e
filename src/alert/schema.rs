//! The alert record, version [`SCHEMA_VERSION`]: one JSON object per line.
//!
//! The top level follows Suricata's EVE alert record, so that a SIEM which reads `eve.json`
//! reads otwatch's alerts unchanged: `timestamp`, `event_type` (`"alert"`), the five-tuple as
//! `src_ip`/`src_port`/`dest_ip`/`dest_port`/`proto`, `app_proto`, `community_id` and the
//! `alert` object (`signature_id`, `signature`, `category`, `severity`, `metadata`). The source
//! is always the side that initiated the operation (the Modbus or OPC UA client), the
//! destination the server. otwatch's own facts are in the `otwatch` object: what happened in
//! plain words, the evidence (capture file and packet numbers), the baseline fact that was
//! violated, the detector, and the aggregation counters.
//!
//! Field order is the declaration order below; there are no maps, so the same alert always
//! prints the same bytes. `src/alert/alert.schema.json` is the JSON Schema of this record and
//! a test checks the two agree. Any change to a field's name, type or meaning bumps
//! [`SCHEMA_VERSION`].

use super::community_id::{community_id_v1, IPPROTO_TCP};
use super::signatures::Signature;
use crate::event::{AppProto, Endpoint, IcsEvent};
use crate::time::Timestamp;
use serde::Serialize;
use std::net::IpAddr;
use std::sync::Arc;

/// Version of the alert record (`otwatch.schema_version`).
pub const SCHEMA_VERSION: u32 = 1;

/// Most evidence items kept in one alert (the first ones; `otwatch.count` says how many).
pub const MAX_EVIDENCE: usize = 5;

/// One alert, EVE-compatible at the top level.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    /// Capture time of the (last) event that raised the alert, RFC 3339 UTC. Never the wall
    /// clock: for absence alerts (a poll that stopped) it is the capture time at which the
    /// absence was noticed.
    pub timestamp: Timestamp,
    /// otwatch's flow id of the evidence's connection (unique within one run), when one event
    /// raised the alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<u64>,
    /// Always `"alert"`.
    pub event_type: &'static str,
    /// Address of the initiating side (client, scanner).
    pub src_ip: IpAddr,
    /// Port of the initiating side.
    pub src_port: u16,
    /// Address of the served side (PLC, OPC UA server).
    pub dest_ip: IpAddr,
    /// Port of the served side.
    pub dest_port: u16,
    /// Transport protocol, `"TCP"` (as Suricata writes it).
    pub proto: &'static str,
    /// Application protocol: `modbus` or `opcua`.
    pub app_proto: AppProto,
    /// Community ID v1 of the connection (seed 0).
    pub community_id: String,
    /// The EVE `alert` object.
    pub alert: AlertBody,
    /// otwatch's own facts.
    pub otwatch: OtwatchInfo,
    /// The words of a raw alert not written yet (explanation, baseline fact and reference,
    /// and for a poll-stopped alert its evidence's summary): what they need, written by
    /// [`Alert::resolve`] (the aggregator does so only for the alerts it emits, and writes
    /// the summaries of the evidence it keeps of a repeat). Never set on an alert that leaves
    /// the engine.
    #[serde(skip)]
    pub(crate) deferred: Option<Box<crate::detect::Words>>,
}

/// The EVE `alert` object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertBody {
    /// Always `"allowed"`: otwatch is passive and blocks nothing.
    pub action: &'static str,
    /// Generator id, always 1.
    pub gid: u32,
    /// Stable signature id (see [`super::signatures::SIGNATURES`]).
    pub signature_id: u32,
    /// Signature revision.
    pub rev: u32,
    /// `OTWATCH <PROTO> <title>`, e.g. `OTWATCH MODBUS Written value out of range`.
    pub signature: String,
    /// Category, e.g. `Baseline deviation`, `Reconnaissance`.
    pub category: &'static str,
    /// 1 (high) to 3 (low).
    pub severity: u8,
    /// Metadata lists, as Suricata writes rule metadata.
    pub metadata: AlertMetadata,
}

/// The EVE `alert.metadata` object: every value is a list of strings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertMetadata {
    /// MITRE ATT&CK for ICS technique ids (see [`super::attack::TECHNIQUES`]).
    pub mitre_attack_ics: Vec<&'static str>,
}

/// otwatch's own part of an alert.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OtwatchInfo {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The detector that raised it: `violations`, `novelty`, `values`, `timing`, `scans`, `ml`,
    /// `rules`.
    pub detector: &'static str,
    /// Stable snake_case kind of finding (the signature's `kind`).
    pub kind: &'static str,
    /// Who did what to which device, what was normal and why it matters, in plain words.
    pub explanation: String,
    /// Modbus unit id addressed, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_id: Option<u8>,
    /// The baseline fact that was violated, in words (absent for baseline-free detectors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_fact: Option<String>,
    /// Where that fact is in the baseline file, e.g. `channels[10.0.0.7>10.0.0.20 modbus].objects[u1/holding_register/40].written`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_ref: Option<String>,
    /// Anomaly score in 0..1, for detectors that score (machine learning); absent otherwise.
    /// For the `ml` detector it is `raw / (raw + threshold)`: above 0.5 means above threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The model's own numbers, for alerts of the `ml` detector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ml: Option<MlScore>,
    /// The events behind the alert (at most [`MAX_EVIDENCE`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<AlertEvidence>,
    /// How many occurrences this record stands for (1 for a first alert).
    pub count: u64,
    /// Capture time of the first occurrence.
    pub first_seen: Timestamp,
    /// Capture time of the last occurrence.
    pub last_seen: Timestamp,
    /// True for a summary of repeats of an alert already emitted (see [`crate::detect::aggregate`]).
    pub aggregated: bool,
}

/// The numbers behind an alert of the machine-learning detector.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MlScore {
    /// Raw anomaly score (distance to the nearest normal cluster, in scaled units).
    pub score: f64,
    /// The threshold it exceeded.
    pub threshold: f64,
    /// Start of the scored window (capture time).
    pub window_start: Timestamp,
    /// End of the scored window (exclusive).
    pub window_end: Timestamp,
    /// The features that drove the score, largest contribution first.
    pub features: Vec<MlFeature>,
}

/// One feature behind an ML alert.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MlFeature {
    /// Feature name (see `otwatch::detect::ml::FEATURES`).
    pub name: &'static str,
    /// Its value in the window.
    pub value: f64,
    /// Its value at the nearest normal cluster.
    pub normal: f64,
    /// Its share of the squared score (0..1).
    pub share: f64,
}

/// One event behind an alert.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertEvidence {
    /// Capture time of the event.
    pub ts: Timestamp,
    /// Capture file.
    pub file: Arc<str>,
    /// Packet number (1-based) of the request.
    pub packet: u64,
    /// Packet number of the response, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_packet: Option<u64>,
    /// The operation in a few words, e.g. `write_single_register (fc 6) holding register 40 = 9999`.
    pub summary: String,
}

impl AlertEvidence {
    /// Evidence from one event, with a summary line.
    pub fn from_event(ev: &IcsEvent, summary: String) -> Self {
        AlertEvidence {
            ts: ev.ts,
            file: ev.evidence.file.clone(),
            packet: ev.evidence.packet,
            response_packet: ev.evidence.response_packet,
            summary,
        }
    }
}

/// Upper-case protocol tag used in signature strings.
fn proto_tag(p: AppProto) -> &'static str {
    match p {
        AppProto::Modbus => "MODBUS",
        AppProto::Opcua => "OPCUA",
    }
}

/// `OTWATCH <PROTO> <title>` (as `format!` wrote it, without its machinery: this runs for every
/// alert).
fn signature_text(p: AppProto, sig: &Signature) -> String {
    let tag = proto_tag(p);
    let mut s = String::with_capacity(9 + tag.len() + sig.title.len());
    s.push_str("OTWATCH ");
    s.push_str(tag);
    s.push(' ');
    s.push_str(sig.title);
    s
}

impl Alert {
    /// A new alert of `sig` on the connection `client` → `server`, at capture time `ts`.
    pub fn new(
        sig: &Signature,
        ts: Timestamp,
        client: &Endpoint,
        server: &Endpoint,
        app_proto: AppProto,
        explanation: String,
    ) -> Self {
        let cid = community_id_v1(
            0,
            client.ip,
            server.ip,
            IPPROTO_TCP,
            client.port,
            server.port,
        );
        Alert::with_parts(
            sig,
            ts,
            client,
            server,
            app_proto,
            explanation,
            cid,
            sig.techniques.to_vec(),
        )
    }

    /// [`Alert::new`] with its Community ID and technique ids given.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn with_parts(
        sig: &Signature,
        ts: Timestamp,
        client: &Endpoint,
        server: &Endpoint,
        app_proto: AppProto,
        explanation: String,
        community_id: String,
        techniques: Vec<&'static str>,
    ) -> Self {
        Alert {
            timestamp: ts,
            flow_id: None,
            event_type: "alert",
            src_ip: client.ip,
            src_port: client.port,
            dest_ip: server.ip,
            dest_port: server.port,
            proto: "TCP",
            app_proto,
            community_id,
            alert: AlertBody {
                action: "allowed",
                gid: 1,
                signature_id: sig.id,
                rev: 1,
                signature: signature_text(app_proto, sig),
                category: sig.category,
                severity: sig.severity,
                metadata: AlertMetadata {
                    mitre_attack_ics: techniques,
                },
            },
            otwatch: OtwatchInfo {
                schema_version: SCHEMA_VERSION,
                detector: sig.detector,
                kind: sig.kind,
                explanation,
                unit_id: None,
                baseline_fact: None,
                baseline_ref: None,
                score: None,
                ml: None,
                evidence: Vec::new(),
                count: 1,
                first_seen: ts,
                last_seen: ts,
                aggregated: false,
            },
            deferred: None,
        }
    }

    /// A new alert of `sig` raised by one event; the event is its evidence.
    pub fn from_event(
        sig: &Signature,
        ev: &IcsEvent,
        explanation: String,
        summary: String,
    ) -> Self {
        let mut a = Alert::new(sig, ev.ts, &ev.client, &ev.server, ev.proto, explanation);
        a.flow_id = Some(ev.flow_id);
        a.otwatch.unit_id = ev.unit_id;
        a.otwatch
            .evidence
            .push(AlertEvidence::from_event(ev, summary));
        a
    }

    /// [`Alert::from_event`] without words (empty explanation), Community ID or technique
    /// ids, left to [`Alert::resolve`] with the record `deferred`, which writes them.
    pub(crate) fn from_event_deferred(
        sig: &Signature,
        ev: &IcsEvent,
        summary: String,
        deferred: Box<crate::detect::Words>,
    ) -> Self {
        let mut a = Alert::with_parts(
            sig,
            ev.ts,
            &ev.client,
            &ev.server,
            ev.proto,
            String::new(),
            String::new(),
            Vec::new(),
        );
        a.flow_id = Some(ev.flow_id);
        a.otwatch.unit_id = ev.unit_id;
        a.otwatch
            .evidence
            .push(AlertEvidence::from_event(ev, summary));
        a.deferred = Some(deferred);
        a
    }

    /// [`Alert::new`] without words (empty explanation), Community ID or technique ids, left
    /// to [`Alert::resolve`] with the record `deferred`, which writes them.
    #[inline]
    pub(crate) fn new_deferred(
        sig: &Signature,
        ts: Timestamp,
        client: &Endpoint,
        server: &Endpoint,
        app_proto: AppProto,
        deferred: Box<crate::detect::Words>,
    ) -> Self {
        let mut a = Alert::with_parts(
            sig,
            ts,
            client,
            server,
            app_proto,
            String::new(),
            String::new(),
            Vec::new(),
        );
        a.deferred = Some(deferred);
        a
    }

    /// The Community ID of the alert's connection (as [`Alert::new`] writes it).
    pub(crate) fn connection_id(&self) -> String {
        community_id_v1(
            0,
            self.src_ip,
            self.dest_ip,
            IPPROTO_TCP,
            self.src_port,
            self.dest_port,
        )
    }

    /// Writes the words left to write (see its field `deferred`), if any.
    #[inline]
    pub fn resolve(&mut self) {
        if let Some(mut d) = self.deferred.take() {
            d.fill_evidence(&mut self.otwatch.evidence);
            d.fill(self);
        }
    }

    /// Writes the summaries of its evidence left to write (see its field `deferred`), if
    /// any, and only those: for whoever keeps the evidence without the rest of the alert.
    #[inline]
    pub(crate) fn resolve_evidence(&mut self) {
        if let Some(d) = self.deferred.as_mut() {
            d.fill_evidence(&mut self.otwatch.evidence);
        }
    }

    /// Adds the violated baseline fact and where it is in the baseline file.
    pub fn with_fact(mut self, fact: impl Into<String>, reference: impl Into<String>) -> Self {
        self.otwatch.baseline_fact = Some(fact.into());
        self.otwatch.baseline_ref = Some(reference.into());
        self
    }

    /// Replaces the severity (1..=3; other values are clamped).
    pub fn with_severity(mut self, severity: u8) -> Self {
        self.alert.severity = severity.clamp(1, 3);
        self
    }

    /// Replaces the ATT&CK technique ids.
    pub fn with_techniques(mut self, techniques: Vec<&'static str>) -> Self {
        self.alert.metadata.mitre_attack_ics = techniques;
        self
    }

    /// Appends `: detail` to the signature string (e.g. the violation's name).
    pub fn with_signature_detail(mut self, detail: &str) -> Self {
        self.alert.signature.push_str(": ");
        self.alert.signature.push_str(detail);
        self
    }

    /// The alert as one line of JSON (no trailing newline).
    /// The bytes `serde_json::to_string` writes for it (a non-finite score becomes null),
    /// written by hand ([`super::json`]).
    pub fn to_json_line(&self) -> String {
        let mut s = String::with_capacity(1024);
        super::json::AlertWriter::new().write(self, &mut s);
        s
    }
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
    use crate::alert::signatures;
    use crate::event::*;
    use serde_json::Value as J;
    use std::net::Ipv4Addr;

    #[test]
    fn signature_text_is_the_format() {
        for sig in signatures::SIGNATURES {
            for p in [AppProto::Modbus, AppProto::Opcua] {
                assert_eq!(
                    signature_text(p, sig),
                    format!("OTWATCH {} {}", proto_tag(p), sig.title)
                );
            }
        }
    }

    fn write_event() -> IcsEvent {
        IcsEvent {
            ts: Timestamp::new(1_700_001_800, 250_000_000),
            proto: AppProto::Modbus,
            flow_id: 42,
            client: Endpoint {
                ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)),
                port: 40000,
                mac: None,
            },
            server: Endpoint {
                ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 20)),
                port: 502,
                mac: None,
            },
            vlan: None,
            unit_id: Some(1),
            session: None,
            op: OpKind::Write,
            function: Function {
                code: 6,
                name: "write_single_register",
                category: "public",
                sub: None,
                sub_name: None,
            },
            accesses: vec![Access {
                dir: AccessDir::Write,
                object: ObjectRef::Modbus {
                    table: ModbusTable::HoldingRegister,
                    start: 40,
                    count: 1,
                },
                values: vec![Value::Int(9999)].into(),
            }],
            outcome: Outcome::Ok,
            latency_us: Some(900),
            violations: vec![],
            facts: vec![],
            details: vec![],
            evidence: Evidence {
                file: Arc::from("plant.pcap"),
                packet: 1234,
                response_packet: Some(1235),
            },
        }
    }

    /// The alert of the issue's example, as the values detector builds it.
    pub(crate) fn snapshot_alert() -> Alert {
        let ev = write_event();
        Alert::from_event(
            &signatures::WRITE_OUT_OF_RANGE,
            &ev,
            "10.0.0.5 wrote 9999 to holding register 40 on 10.0.0.20 unit 1; in the baseline only 10.0.0.7 wrote it, with values 470–530. A setpoint far outside its normal range can damage equipment or spoil the product.".into(),
            "write_single_register (fc 6) holding register 40 = 9999".into(),
        )
        .with_fact(
            "10.0.0.7 wrote holding register 40 on 10.0.0.20 unit 1 with values 470–530 (120 writes)",
            "channels[10.0.0.7>10.0.0.20 modbus].objects[u1/holding_register/40].written",
        )
    }

    #[test]
    fn snapshot_one_alert_line() {
        let line = snapshot_alert().to_json_line();
        let want = r#"{"timestamp":"2023-11-14T22:43:20.250000Z","flow_id":42,"event_type":"alert","src_ip":"10.0.0.5","src_port":40000,"dest_ip":"10.0.0.20","dest_port":502,"proto":"TCP","app_proto":"modbus","community_id":"1:1ggnYz+/dhfQD059lRQorDt5egk=","alert":{"action":"allowed","gid":1,"signature_id":9000301,"rev":1,"signature":"OTWATCH MODBUS Written value out of range","category":"Process value anomaly","severity":1,"metadata":{"mitre_attack_ics":["T0836"]}},"otwatch":{"schema_version":1,"detector":"values","kind":"written_value_out_of_range","explanation":"10.0.0.5 wrote 9999 to holding register 40 on 10.0.0.20 unit 1; in the baseline only 10.0.0.7 wrote it, with values 470–530. A setpoint far outside its normal range can damage equipment or spoil the product.","unit_id":1,"baseline_fact":"10.0.0.7 wrote holding register 40 on 10.0.0.20 unit 1 with values 470–530 (120 writes)","baseline_ref":"channels[10.0.0.7>10.0.0.20 modbus].objects[u1/holding_register/40].written","evidence":[{"ts":"2023-11-14T22:43:20.250000Z","file":"plant.pcap","packet":1234,"response_packet":1235,"summary":"write_single_register (fc 6) holding register 40 = 9999"}],"count":1,"first_seen":"2023-11-14T22:43:20.250000Z","last_seen":"2023-11-14T22:43:20.250000Z","aggregated":false}}"#;
        assert_eq!(line, want);
    }

    /// An alert of the ML detector, with its score and features.
    fn ml_alert() -> Alert {
        let ev = write_event();
        let mut a = Alert::new(
            &signatures::BEHAVIOUR_ANOMALY,
            ev.ts,
            &ev.client,
            &ev.server,
            AppProto::Modbus,
            "The channel 10.0.0.5 → 10.0.0.20 (modbus) behaved unlike anything in the baseline in the 10 s from 2023-11-14T22:43:20.000000Z to 2023-11-14T22:43:30.000000Z: 40 exception or bad-status responses (normally 0); anomaly score 40, threshold 4.".into(),
        )
        .with_techniques(vec!["T0888"]);
        a.otwatch.score = Some(0.909);
        a.otwatch.ml = Some(MlScore {
            score: 40.0,
            threshold: 4.0,
            window_start: Timestamp::new(1_700_001_800, 0),
            window_end: Timestamp::new(1_700_001_810, 0),
            features: vec![MlFeature {
                name: "exceptions",
                value: 40.0,
                normal: 0.0,
                share: 1.0,
            }],
        });
        a
    }

    #[test]
    fn snapshot_ml_alert_line() {
        let line = ml_alert().to_json_line();
        let want = r#"{"timestamp":"2023-11-14T22:43:20.250000Z","event_type":"alert","src_ip":"10.0.0.5","src_port":40000,"dest_ip":"10.0.0.20","dest_port":502,"proto":"TCP","app_proto":"modbus","community_id":"1:1ggnYz+/dhfQD059lRQorDt5egk=","alert":{"action":"allowed","gid":1,"signature_id":9000601,"rev":1,"signature":"OTWATCH MODBUS Channel behaviour unlike the baseline","category":"Behaviour anomaly","severity":3,"metadata":{"mitre_attack_ics":["T0888"]}},"otwatch":{"schema_version":1,"detector":"ml","kind":"behaviour_anomaly","explanation":"The channel 10.0.0.5 → 10.0.0.20 (modbus) behaved unlike anything in the baseline in the 10 s from 2023-11-14T22:43:20.000000Z to 2023-11-14T22:43:30.000000Z: 40 exception or bad-status responses (normally 0); anomaly score 40, threshold 4.","score":0.909,"ml":{"score":40.0,"threshold":4.0,"window_start":"2023-11-14T22:43:20.000000Z","window_end":"2023-11-14T22:43:30.000000Z","features":[{"name":"exceptions","value":40.0,"normal":0.0,"share":1.0}]},"count":1,"first_seen":"2023-11-14T22:43:20.250000Z","last_seen":"2023-11-14T22:43:20.250000Z","aggregated":false}}"#;
        assert_eq!(line, want);
        let v: J = serde_json::from_str(&line).unwrap();
        let mut errs = Vec::new();
        check(&schema(), &v, "$", &mut errs);
        assert!(errs.is_empty(), "{errs:#?}");
        // The schema checks the ml object too.
        let mut bad = v.clone();
        bad["otwatch"]["ml"]["features"][0]["share"] = J::from(2);
        let mut errs = Vec::new();
        check(&schema(), &bad, "$", &mut errs);
        assert!(!errs.is_empty());
        let mut bad = v;
        bad["otwatch"]["ml"]
            .as_object_mut()
            .unwrap()
            .remove("threshold");
        let mut errs = Vec::new();
        check(&schema(), &bad, "$", &mut errs);
        assert!(!errs.is_empty());
    }

    #[test]
    fn every_signature_category_is_in_the_schema() {
        let s = schema();
        let cats = s["properties"]["alert"]["properties"]["category"]["enum"]
            .as_array()
            .unwrap()
            .clone();
        for sig in signatures::SIGNATURES {
            assert!(cats.contains(&J::from(sig.category)), "{}", sig.category);
        }
        let dets = s["properties"]["otwatch"]["properties"]["detector"]["enum"]
            .as_array()
            .unwrap()
            .clone();
        for sig in signatures::SIGNATURES {
            assert!(dets.contains(&J::from(sig.detector)), "{}", sig.detector);
        }
    }

    #[test]
    fn community_id_matches_both_directions() {
        let a = snapshot_alert();
        assert_eq!(
            a.community_id,
            community_id_v1(0, a.dest_ip, a.src_ip, IPPROTO_TCP, a.dest_port, a.src_port)
        );
    }

    // ---- A small structural JSON Schema check: type, required, properties,
    // additionalProperties: false, items, enum, const, minimum, maximum. ----

    fn type_ok(t: &str, v: &J) -> bool {
        match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            other => panic!("schema uses unsupported type {other}"),
        }
    }

    fn check(schema: &J, v: &J, path: &str, errs: &mut Vec<String>) {
        if let Some(t) = schema.get("type") {
            let ok = match t {
                J::String(s) => type_ok(s, v),
                J::Array(ts) => ts.iter().any(|t| type_ok(t.as_str().unwrap(), v)),
                _ => panic!("bad type in schema at {path}"),
            };
            if !ok {
                errs.push(format!("{path}: expected type {t}, got {v}"));
                return;
            }
        }
        if let Some(c) = schema.get("const") {
            if c != v {
                errs.push(format!("{path}: expected {c}, got {v}"));
            }
        }
        if let Some(J::Array(e)) = schema.get("enum") {
            if !e.contains(v) {
                errs.push(format!("{path}: {v} not in enum"));
            }
        }
        if let (Some(min), Some(n)) = (schema.get("minimum").and_then(J::as_f64), v.as_f64()) {
            if n < min {
                errs.push(format!("{path}: {n} < {min}"));
            }
        }
        if let (Some(max), Some(n)) = (schema.get("maximum").and_then(J::as_f64), v.as_f64()) {
            if n > max {
                errs.push(format!("{path}: {n} > {max}"));
            }
        }
        if let Some(obj) = v.as_object() {
            let props = schema.get("properties").and_then(J::as_object);
            if let Some(J::Array(req)) = schema.get("required") {
                for r in req {
                    let r = r.as_str().unwrap();
                    if !obj.contains_key(r) {
                        errs.push(format!("{path}: missing required {r}"));
                    }
                }
            }
            for (k, val) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => check(s, val, &format!("{path}.{k}"), errs),
                    None => {
                        if schema.get("additionalProperties") == Some(&J::Bool(false)) {
                            errs.push(format!("{path}: unexpected key {k}"));
                        }
                    }
                }
            }
        }
        if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
            for (i, it) in arr.iter().enumerate() {
                check(items, it, &format!("{path}[{i}]"), errs);
            }
        }
    }

    fn schema() -> J {
        serde_json::from_str(include_str!("alert.schema.json")).unwrap()
    }

    #[test]
    fn snapshot_validates_against_json_schema() {
        let v: J = serde_json::from_str(&snapshot_alert().to_json_line()).unwrap();
        let mut errs = Vec::new();
        check(&schema(), &v, "$", &mut errs);
        assert!(errs.is_empty(), "{errs:#?}");
    }

    #[test]
    fn rule_alert_validates_against_json_schema() {
        use crate::detect::Detector;
        let text = "[[rule]]\nid = 9100101\nrev = 4\ntitle = \"Any write\"\nseverity = \"high\"\n\
                    attack = [\"T0855\"]\ndescription = \"Why.\"\n[rule.match]\nproto = \"modbus\"\n\
                    op = [\"write\"]\n";
        let r = crate::rules::load(&[crate::rules::Source {
            name: "t.toml".into(),
            text: text.into(),
        }]);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let mut d = crate::rules::detector::RulesDetector::new(Arc::new(r.set));
        let mut out = Vec::new();
        d.on_event(&write_event(), None, &mut out);
        assert_eq!(out.len(), 1);
        let v: J = serde_json::from_str(&out[0].to_json_line()).unwrap();
        assert_eq!(v["alert"]["signature_id"], 9_100_101);
        assert_eq!(v["alert"]["rev"], 4);
        assert_eq!(v["otwatch"]["detector"], "rules");
        let mut errs = Vec::new();
        check(&schema(), &v, "$", &mut errs);
        assert!(errs.is_empty(), "{errs:#?}");
    }

    #[test]
    fn schema_rejects_broken_alerts() {
        let good: J = serde_json::from_str(&snapshot_alert().to_json_line()).unwrap();
        let mut cases = Vec::new();
        let mut v = good.clone();
        v.as_object_mut().unwrap().remove("community_id");
        cases.push(v);
        let mut v = good.clone();
        v["alert"]["severity"] = J::from(4);
        cases.push(v);
        let mut v = good.clone();
        v["event_type"] = J::from("flow");
        cases.push(v);
        let mut v = good.clone();
        v["otwatch"]["count"] = J::from("one");
        cases.push(v);
        let mut v = good.clone();
        v["otwatch"]["surprise"] = J::from(1);
        cases.push(v);
        let mut v = good;
        v["alert"]["metadata"]["mitre_attack_ics"] = J::from(vec![1, 2]);
        cases.push(v);
        for (i, c) in cases.iter().enumerate() {
            let mut errs = Vec::new();
            check(&schema(), c, "$", &mut errs);
            assert!(!errs.is_empty(), "case {i} should fail");
        }
    }

    #[test]
    fn schema_documents_every_field_and_version() {
        let s = schema();
        assert_eq!(
            s["properties"]["otwatch"]["properties"]["schema_version"]["const"],
            J::from(SCHEMA_VERSION)
        );
        // Every property in the schema has a description.
        fn walk(s: &J, path: &str) {
            if let Some(p) = s.get("properties").and_then(J::as_object) {
                for (k, v) in p {
                    assert!(
                        v.get("description").is_some(),
                        "{path}.{k} lacks description"
                    );
                    walk(v, &format!("{path}.{k}"));
                }
            }
            if let Some(i) = s.get("items") {
                walk(i, &format!("{path}[]"));
            }
        }
        walk(&s, "$");
    }
}
