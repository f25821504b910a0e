//! Alerts: the versioned, EVE-compatible record ([`schema`]), the signature catalog
//! ([`signatures`]), the ATT&CK for ICS technique table ([`attack`]) and Community ID flow
//! hashes ([`community_id`]).
//!
//! The JSON Schema of the record is `src/alert/alert.schema.json` ([`JSON_SCHEMA`]).

pub mod attack;
pub mod community_id;
pub mod schema;
pub mod signatures;

pub use schema::{
    Alert, AlertBody, AlertEvidence, AlertMetadata, MlFeature, MlScore, OtwatchInfo, MAX_EVIDENCE,
    SCHEMA_VERSION,
};
pub use signatures::Signature;

/// The JSON Schema of the alert record.
pub const JSON_SCHEMA: &str = include_str!("alert.schema.json");
