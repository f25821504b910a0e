//! The catalog of otwatch signatures: one stable id per kind of finding, with its default
//! category, severity and ATT&CK for ICS techniques.
//!
//! Ids live in the 9 000 000 block, grouped by detector (1xx violations, 2xx novelty, 3xx
//! values, 4xx timing, 5xx scans, 6xx ml). An id never changes meaning; retired ids are not reused.

use super::attack::*;

/// Category: the traffic breaks the protocol specification.
pub const CAT_PROTOCOL_VIOLATION: &str = "Protocol violation";
/// Category: something the baseline never saw (asset, channel, function, object).
pub const CAT_BASELINE_DEVIATION: &str = "Baseline deviation";
/// Category: a process value written or read outside what was normal.
pub const CAT_PROCESS_ANOMALY: &str = "Process value anomaly";
/// Category: the periodic polling changed (stopped, period, order, volume).
pub const CAT_TIMING_ANOMALY: &str = "Timing anomaly";
/// Category: scanning and probing.
pub const CAT_RECONNAISSANCE: &str = "Reconnaissance";
/// Category: a channel behaved unlike its baseline as a whole (machine-learning score).
pub const CAT_BEHAVIOUR_ANOMALY: &str = "Behaviour anomaly";

/// Category: an operation a site rule forbids (the `rules` detector).
pub const CAT_POLICY_VIOLATION: &str = "Policy violation";

/// One kind of finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    /// Stable numeric id (`alert.signature_id`).
    pub id: u32,
    /// Stable snake_case name (`otwatch.kind`).
    pub kind: &'static str,
    /// The detector module that raises it.
    pub detector: &'static str,
    /// Short title; the alert's `signature` is `OTWATCH <PROTO> <title>`.
    pub title: &'static str,
    /// Category (`alert.category`).
    pub category: &'static str,
    /// Default severity: 1 high, 2 medium, 3 low (Suricata's convention).
    pub severity: u8,
    /// Default ATT&CK for ICS technique ids.
    pub techniques: &'static [&'static str],
}

macro_rules! sig {
    ($name:ident, $id:expr, $kind:expr, $det:expr, $title:expr, $cat:expr, $sev:expr, [$($t:expr),*]) => {
        #[doc = concat!("Signature ", stringify!($id), ": ", $title, ".")]
        pub const $name: Signature = Signature {
            id: $id,
            kind: $kind,
            detector: $det,
            title: $title,
            category: $cat,
            severity: $sev,
            techniques: &[$($t),*],
        };
    };
}

sig!(
    PROTOCOL_VIOLATION,
    9_000_101,
    "protocol_violation",
    "violations",
    "Protocol violation",
    CAT_PROTOCOL_VIOLATION,
    2,
    []
);
sig!(
    NEW_ASSET,
    9_000_201,
    "new_asset",
    "novelty",
    "New asset",
    CAT_BASELINE_DEVIATION,
    2,
    [REMOTE_SYSTEM_DISCOVERY]
);
sig!(
    NEW_CHANNEL,
    9_000_202,
    "new_channel",
    "novelty",
    "New channel",
    CAT_BASELINE_DEVIATION,
    2,
    []
);
sig!(
    NEW_UNIT_ID,
    9_000_203,
    "new_unit_id",
    "novelty",
    "New unit id",
    CAT_BASELINE_DEVIATION,
    2,
    [REMOTE_SYSTEM_DISCOVERY]
);
sig!(
    NEW_FUNCTION,
    9_000_204,
    "new_function",
    "novelty",
    "New function",
    CAT_BASELINE_DEVIATION,
    2,
    []
);
sig!(
    NEW_OBJECT_READ,
    9_000_205,
    "new_object_read",
    "novelty",
    "Read of an object never read",
    CAT_BASELINE_DEVIATION,
    3,
    [POINT_TAG_IDENTIFICATION]
);
sig!(
    NEW_OBJECT_WRITTEN,
    9_000_206,
    "new_object_written",
    "novelty",
    "Write to an object never accessed",
    CAT_BASELINE_DEVIATION,
    1,
    [MODIFY_PARAMETER, UNAUTHORIZED_COMMAND]
);
sig!(
    WRITE_TO_READ_ONLY,
    9_000_207,
    "write_to_read_only",
    "novelty",
    "Write to an object only ever read",
    CAT_BASELINE_DEVIATION,
    1,
    [MODIFY_PARAMETER, UNAUTHORIZED_COMMAND]
);
sig!(
    WRITE_OUT_OF_RANGE,
    9_000_301,
    "written_value_out_of_range",
    "values",
    "Written value out of range",
    CAT_PROCESS_ANOMALY,
    1,
    [MODIFY_PARAMETER]
);
sig!(
    READ_OUT_OF_RANGE,
    9_000_302,
    "read_value_out_of_range",
    "values",
    "Process value out of range",
    CAT_PROCESS_ANOMALY,
    2,
    [MANIPULATION_OF_VIEW]
);
sig!(
    VALUE_JUMP,
    9_000_303,
    "value_jump",
    "values",
    "Process value jump",
    CAT_PROCESS_ANOMALY,
    2,
    [MANIPULATION_OF_VIEW]
);
sig!(
    VALUE_FROZEN,
    9_000_304,
    "value_frozen",
    "values",
    "Process value frozen",
    CAT_PROCESS_ANOMALY,
    2,
    [MANIPULATION_OF_VIEW]
);
sig!(
    POLL_STOPPED,
    9_000_401,
    "poll_stopped",
    "timing",
    "Polling stopped",
    CAT_TIMING_ANOMALY,
    2,
    [DENIAL_OF_SERVICE]
);
sig!(
    POLL_PERIOD_CHANGED,
    9_000_402,
    "poll_period_changed",
    "timing",
    "Polling period changed",
    CAT_TIMING_ANOMALY,
    3,
    []
);
sig!(
    POLL_ORDER_CHANGED,
    9_000_403,
    "poll_order_changed",
    "timing",
    "Polling order changed",
    CAT_TIMING_ANOMALY,
    3,
    [UNAUTHORIZED_COMMAND]
);
sig!(
    TRAFFIC_BURST,
    9_000_404,
    "traffic_burst",
    "timing",
    "Request burst above the learned rate",
    CAT_TIMING_ANOMALY,
    2,
    [DENIAL_OF_SERVICE, BRUTE_FORCE_IO]
);
sig!(
    FUNCTION_SCAN,
    9_000_501,
    "function_code_scan",
    "scans",
    "Function code scan",
    CAT_RECONNAISSANCE,
    2,
    [REMOTE_SYSTEM_INFO_DISCOVERY]
);
sig!(
    UNIT_ID_SCAN,
    9_000_502,
    "unit_id_scan",
    "scans",
    "Unit id scan",
    CAT_RECONNAISSANCE,
    2,
    [REMOTE_SYSTEM_DISCOVERY]
);
sig!(
    ADDRESS_SWEEP,
    9_000_503,
    "address_sweep",
    "scans",
    "Address sweep",
    CAT_RECONNAISSANCE,
    2,
    [POINT_TAG_IDENTIFICATION, MONITOR_PROCESS_STATE]
);
sig!(
    EXCEPTION_BURST,
    9_000_504,
    "exception_burst",
    "scans",
    "Burst of exception responses",
    CAT_RECONNAISSANCE,
    2,
    [REMOTE_SYSTEM_INFO_DISCOVERY]
);
sig!(
    BEHAVIOUR_ANOMALY,
    9_000_601,
    "behaviour_anomaly",
    "ml",
    "Channel behaviour unlike the baseline",
    CAT_BEHAVIOUR_ANOMALY,
    3,
    []
);

/// The template of alerts of the `rules` detector: each alert replaces the id, revision,
/// signature text, severity and techniques with those of its rule (ids 9 100 000 and up are
/// the shipped pack's, other ids are a site's). Not in [`SIGNATURES`]: it has no id of its own.
pub const RULE_MATCH: Signature = Signature {
    id: 9_100_000,
    kind: "rule",
    detector: "rules",
    title: "Rule match",
    category: CAT_POLICY_VIOLATION,
    severity: 2,
    techniques: &[],
};

/// Every signature, in id order.
pub const SIGNATURES: &[Signature] = &[
    PROTOCOL_VIOLATION,
    NEW_ASSET,
    NEW_CHANNEL,
    NEW_UNIT_ID,
    NEW_FUNCTION,
    NEW_OBJECT_READ,
    NEW_OBJECT_WRITTEN,
    WRITE_TO_READ_ONLY,
    WRITE_OUT_OF_RANGE,
    READ_OUT_OF_RANGE,
    VALUE_JUMP,
    VALUE_FROZEN,
    POLL_STOPPED,
    POLL_PERIOD_CHANGED,
    POLL_ORDER_CHANGED,
    TRAFFIC_BURST,
    FUNCTION_SCAN,
    UNIT_ID_SCAN,
    ADDRESS_SWEEP,
    EXCEPTION_BURST,
    BEHAVIOUR_ANOMALY,
];

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_consistent() {
        for pair in SIGNATURES.windows(2) {
            assert!(pair[0].id < pair[1].id);
            assert_ne!(pair[0].kind, pair[1].kind);
        }
        for s in SIGNATURES {
            assert!((1..=3).contains(&s.severity), "{}", s.kind);
            for t in s.techniques {
                assert!(technique_name(t).is_some(), "{} uses unknown {t}", s.kind);
            }
            assert!(
                ["violations", "novelty", "values", "timing", "scans", "ml"].contains(&s.detector),
                "{}",
                s.kind
            );
        }
    }
}
