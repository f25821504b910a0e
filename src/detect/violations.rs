//! Protocol violations reported by the parsers: no baseline needed.
//!
//! Each name in [`IcsEvent::violations`] raises one alert with the signature
//! `OTWATCH <PROTO> Protocol violation: <name>`, so repeats of one violation on one channel
//! aggregate together and different violations stay apart.

use super::{Detector, EventKind};
use crate::alert::signatures::PROTOCOL_VIOLATION;
use crate::alert::Alert;
use crate::baseline::{device_words, event_summary, Baseline};
use crate::event::{AppProto, IcsEvent};

/// The protocol-violation detector.
#[derive(Debug, Default)]
pub struct Violations;

fn proto_words(p: AppProto) -> &'static str {
    match p {
        AppProto::Modbus => "Modbus/TCP",
        AppProto::Opcua => "OPC UA",
    }
}

impl Detector for Violations {
    fn name(&self) -> &'static str {
        "violations"
    }

    fn acts_on(&self, kind: &EventKind) -> bool {
        kind.violations
    }

    fn on_event(&mut self, ev: &IcsEvent, _b: Option<&Baseline>, out: &mut Vec<Alert>) {
        for v in &ev.violations {
            let explanation = format!(
                "The {} exchange between {} and {} broke the {} specification: {}. \
                 Healthy masters and PLCs do not send malformed messages; they can crash \
                 fragile devices, hide an exploit, or come from a broken or unknown tool.",
                ev.function.name,
                ev.client.ip,
                device_words(ev.server.ip, ev.unit_id),
                proto_words(ev.proto),
                v.replace('_', " ")
            );
            out.push(
                Alert::from_event(&PROTOCOL_VIOLATION, ev, explanation, event_summary(ev))
                    .with_signature_detail(v),
            );
        }
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
    use crate::detect::testkit::*;

    #[test]
    fn one_alert_per_violation_name() {
        let mut ev = read_hr(0, MASTER, PLC, 1, 0, &[1, 2]);
        ev.violations = vec!["length_mismatch", "unit_id_broadcast_read"];
        let mut out = Vec::new();
        Violations.on_event(&ev, None, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].alert.signature,
            "OTWATCH MODBUS Protocol violation: length_mismatch"
        );
        assert!(out[0].otwatch.explanation.contains("length mismatch"));
        assert!(out[0].otwatch.explanation.contains("10.0.0.1"));
        assert_eq!(out[0].otwatch.evidence[0].packet, ev.evidence.packet);
    }

    #[test]
    fn clean_event_raises_nothing() {
        let ev = read_hr(0, MASTER, PLC, 1, 0, &[1, 2]);
        let mut out = Vec::new();
        Violations.on_event(&ev, None, &mut out);
        assert!(out.is_empty());
    }
}
