//! The baseline: what normal looks like on this plant's network, learnt from events.
//!
//! A [`Learner`] consumes [`IcsEvent`](crate::event::IcsEvent)s and
//! [`finish`](Learner::finish)es into a [`Baseline`], a JSON file (pretty-printed, sorted,
//! versioned) an engineer can read, review and edit:
//!
//! - `assets`: every address seen, with MACs, roles (`modbus_client`, `modbus_server`,
//!   `opcua_client`, `opcua_server`), server ports and identity facts;
//! - `channels`: every client → server conversation per protocol (one polling model per
//!   HMI–PLC channel, after Goldenberg and Wool 2013), with its unit ids, operations,
//!   address ranges read and written, per-object value profiles, polling patterns (period,
//!   jitter, cycle order) and volumes;
//! - `dropped`: what the learner's memory caps left out, so a reviewer knows where the model
//!   is incomplete;
//! - `ml` (optional): the machine-learning model ([`MlModel`]: scaler, k-means centroids,
//!   threshold), present when learning ran with [`LearnConfig::ml`] set. A file without it
//!   reads as before, so the version stays 1.
//!
//! [`Baseline::load`] and [`Baseline::from_json`] check the `kind` and `version` first, so a
//! baseline of another version or another file gives a clear [`BaselineError`].

mod keys;
mod learn;
mod load;
mod profile;

pub use keys::*;
pub use learn::{LearnConfig, Learner};
pub use profile::{quantile, RangeSet, Sampler, ValueAcc, ValueProfile, COUNTER_MIN_RISES};

use crate::detect::ml::MlModel;
use crate::event::AppProto;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

/// Version of the baseline file format this otwatch reads and writes.
pub const BASELINE_VERSION: u32 = 1;
/// The `kind` field of a baseline file.
pub const BASELINE_KIND: &str = "otwatch-baseline";

/// Why a baseline could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BaselineError {
    /// The file could not be read or written.
    #[error("cannot access baseline {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The text is not JSON.
    #[error("baseline is not valid JSON at line {line}, column {column}: {msg}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the JSON parser said.
        msg: String,
    },
    /// The JSON is not an otwatch baseline.
    #[error("not an otwatch baseline: \"kind\" is {found}, expected \"otwatch-baseline\"")]
    Kind {
        /// The kind found (JSON text), or `missing`.
        found: String,
    },
    /// The baseline is of another version.
    #[error("baseline version {found}, this otwatch reads version {expected}")]
    Version {
        /// The version found (JSON text), or `missing`.
        found: String,
        /// [`BASELINE_VERSION`].
        expected: u32,
    },
    /// A field is missing or has the wrong type.
    #[error("baseline has a bad field: {0}")]
    Field(String),
    /// The content is inconsistent (duplicates, unknown protocol).
    #[error("invalid baseline: {0}")]
    Invalid(String),
}

/// The whole baseline file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Always [`BASELINE_KIND`].
    pub kind: String,
    /// Always [`BASELINE_VERSION`].
    pub version: u32,
    /// What the baseline was learnt from.
    pub learned: LearnedSpan,
    /// Every device seen, by address.
    pub assets: Vec<Asset>,
    /// Every client → server conversation, by client, server and protocol.
    pub channels: Vec<Channel>,
    /// What the learner's caps left out (globally).
    pub dropped: Dropped,
    /// The machine-learning model, when one was trained (see [`crate::detect::ml`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ml: Option<MlModel>,
    #[serde(skip)]
    index: Index,
}

/// Lookup tables rebuilt after loading.
#[derive(Clone, Debug, Default, PartialEq)]
struct Index {
    assets: BTreeMap<IpAddr, usize>,
    channels: BTreeMap<(IpAddr, IpAddr, AppProto), usize>,
    by_server: BTreeMap<(IpAddr, AppProto), Vec<usize>>,
}

/// The span of traffic a baseline was learnt from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LearnedSpan {
    /// Capture time of the first event (RFC 3339).
    pub first: String,
    /// Capture time of the last event (RFC 3339).
    pub last: String,
    /// Seconds between them.
    pub duration_s: f64,
    /// Events learnt from.
    pub events: u64,
}

/// One device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    /// Its address.
    pub ip: IpAddr,
    /// Hardware addresses seen with it.
    #[serde(default)]
    pub macs: BTreeSet<String>,
    /// Roles: `modbus_client`, `modbus_server`, `opcua_client`, `opcua_server`.
    #[serde(default)]
    pub roles: BTreeSet<String>,
    /// Ports it served on.
    #[serde(default)]
    pub server_ports: BTreeSet<u16>,
    /// Identity facts (vendor, product code, application URI), each with the values seen.
    #[serde(default)]
    pub facts: BTreeMap<String, BTreeSet<String>>,
    /// Events it took part in.
    #[serde(default)]
    pub events: u64,
}

/// One operation (function or service) seen on a channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// Raw code: Modbus function code, OPC UA encoding id.
    pub code: u32,
    /// Sub-function, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<u16>,
    /// Name from the specification.
    pub name: String,
    /// Kind: `read`, `write`, `diagnostic`, …
    pub op: String,
    /// Times seen.
    pub count: u64,
    /// Times answered with an exception or bad status.
    #[serde(default)]
    pub exceptions: u64,
}

/// What was seen of one object (a register, a coil, a node) on a channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectProfile {
    /// Times read.
    pub reads: u64,
    /// Times written.
    pub writes: u64,
    /// Profile of the values read (from responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<ValueProfile>,
    /// Profile of the values written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<ValueProfile>,
}

/// One periodic (or not) request of a channel's polling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PollPattern {
    /// Request signature (see [`request_signature`]).
    pub signature: String,
    /// Times seen.
    pub count: u64,
    /// Median time between two requests, milliseconds.
    pub period_ms: f64,
    /// Mean time between two requests, milliseconds.
    pub mean_ms: f64,
    /// Jitter: median absolute deviation from the period, milliseconds.
    pub jitter_ms: f64,
    /// 95th percentile of the absolute deviation from the period, milliseconds.
    pub p95_dev_ms: f64,
    /// Longest time between two requests, milliseconds.
    pub max_gap_ms: f64,
    /// True when the request repeats with a stable period.
    pub periodic: bool,
}

/// Volumes of a channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    /// Mean requests per minute over the learning span.
    pub per_min: f64,
    /// Most requests in one 10-second window.
    pub max_per_10s: u64,
    /// Exception or bad-status responses.
    pub exceptions: u64,
    /// Most exception responses in one 60-second window.
    pub max_exceptions_per_min: u64,
}

/// What a learner's caps left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// Assets beyond the cap.
    #[serde(default)]
    pub assets: u64,
    /// Channels beyond the cap (their events were not learnt).
    #[serde(default)]
    pub channels: u64,
    /// Objects beyond the per-channel cap (their values were not profiled).
    #[serde(default)]
    pub objects: u64,
    /// Values beyond the per-access cap.
    #[serde(default)]
    pub values: u64,
    /// Poll signatures beyond the per-channel cap.
    #[serde(default)]
    pub poll_signatures: u64,
    /// Address ranges merged with a neighbour to stay within the cap.
    #[serde(default)]
    pub ranges_merged: u64,
    /// Facts beyond the per-asset cap.
    #[serde(default)]
    pub facts: u64,
}

/// One client → server conversation in one protocol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// The client (HMI, SCADA, engineering station).
    pub client: IpAddr,
    /// The server (PLC, RTU, OPC UA server).
    pub server: IpAddr,
    /// `modbus` or `opcua`.
    pub proto: String,
    /// Server ports used.
    #[serde(default)]
    pub server_ports: BTreeSet<u16>,
    /// Modbus unit ids addressed.
    #[serde(default)]
    pub unit_ids: BTreeSet<u8>,
    /// Requests seen.
    pub events: u64,
    /// First request (RFC 3339).
    pub first_seen: String,
    /// Last request (RFC 3339).
    pub last_seen: String,
    /// Volumes.
    pub volume: Volume,
    /// Functions and services used.
    #[serde(default)]
    pub operations: Vec<Operation>,
    /// Address ranges read, per space (`u1/holding_register`), as inclusive `[first, last]`.
    #[serde(default)]
    pub read_ranges: BTreeMap<String, Vec<[u32; 2]>>,
    /// Address ranges written, per space.
    #[serde(default)]
    pub write_ranges: BTreeMap<String, Vec<[u32; 2]>>,
    /// Per object (`u1/holding_register/40`, `node/ns=2;s=Tank.Level`): counts and values.
    #[serde(default)]
    pub objects: BTreeMap<String, ObjectProfile>,
    /// Polling: one entry per request signature.
    #[serde(default)]
    pub polls: Vec<PollPattern>,
    /// The order of the periodic requests within one cycle, when it is strict (empty if not).
    #[serde(default)]
    pub cycle: Vec<String>,
    /// What the caps left out on this channel.
    #[serde(default)]
    pub dropped: Dropped,
}

impl Channel {
    /// Where this channel is in the file, for `baseline_ref`: `channels[10.0.0.7>10.0.0.20 modbus]`.
    pub fn ref_name(&self) -> String {
        format!("channels[{}>{} {}]", self.client, self.server, self.proto)
    }

    /// The operation with this code and sub-function.
    pub fn operation(&self, code: u32, sub: Option<u16>) -> Option<&Operation> {
        self.operations
            .iter()
            .find(|o| o.code == code && o.sub == sub)
    }

    /// The polling pattern of a request signature.
    pub fn poll(&self, signature: &str) -> Option<&PollPattern> {
        self.polls.iter().find(|p| p.signature == signature)
    }
}

impl Baseline {
    /// Reads and checks a baseline file.
    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let text = std::fs::read_to_string(path).map_err(|e| BaselineError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        Baseline::from_json(&text)
    }

    /// Parses and checks a baseline from JSON text: kind and version first, then fields, then
    /// consistency.
    pub fn from_json(text: &str) -> Result<Baseline, BaselineError> {
        // The direct reader takes the files `learn` writes; it leaves anything else (and
        // every error) to serde_json, which then gives the value or the error.
        match load::parse(text) {
            Some(b) => b.checked(),
            None => Baseline::from_json_serde(text),
        }
    }

    /// [`Baseline::from_json`] with serde_json alone (the reference of the direct reader).
    fn from_json_serde(text: &str) -> Result<Baseline, BaselineError> {
        // One typed pass in the normal case (no `serde_json::Value` tree). When it fails, a
        // second pass reads only the header, so that a file of another kind or version is
        // reported as such rather than as a bad field.
        #[derive(Deserialize)]
        struct Header {
            kind: Option<serde_json::Value>,
            version: Option<serde_json::Value>,
        }
        let json_err = |e: serde_json::Error| BaselineError::Json {
            line: e.line(),
            column: e.column(),
            msg: e.to_string(),
        };
        // A derived struct would also accept an array: anything but an object is not a
        // baseline (invalid JSON is reported as such).
        if !text.trim_start().starts_with('{') {
            serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(json_err)?;
            return Err(BaselineError::Kind {
                found: "missing".to_string(),
            });
        }
        match serde_json::from_str::<Baseline>(text) {
            Ok(b) => b.checked(),
            Err(e) if e.is_syntax() || e.is_eof() || e.is_io() => Err(json_err(e)),
            Err(e) => {
                let h: Header = serde_json::from_str(text).map_err(json_err)?;
                check_header(h.kind, h.version)?;
                Err(BaselineError::Field(e.to_string()))
            }
        }
    }

    /// A parsed baseline checked: kind and version, then consistency (the lookup tables built).
    fn checked(mut self) -> Result<Baseline, BaselineError> {
        check_header(
            Some(serde_json::Value::from(self.kind.as_str())),
            Some(serde_json::Value::from(self.version)),
        )?;
        self.reindex()?;
        Ok(self)
    }

    /// The baseline as pretty-printed JSON (with a final newline).
    pub fn to_json_pretty(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Writes the baseline file.
    pub fn save(&self, path: &Path) -> Result<(), BaselineError> {
        std::fs::write(path, self.to_json_pretty()).map_err(|e| BaselineError::Io {
            path: path.display().to_string(),
            source: e,
        })
    }

    /// Builds the lookup tables; fails on duplicates and unknown protocols.
    fn reindex(&mut self) -> Result<(), BaselineError> {
        let mut ix = Index::default();
        for (i, a) in self.assets.iter().enumerate() {
            if ix.assets.insert(a.ip, i).is_some() {
                return Err(BaselineError::Invalid(format!(
                    "asset {} listed twice",
                    a.ip
                )));
            }
        }
        for (i, c) in self.channels.iter().enumerate() {
            let proto = match c.proto.as_str() {
                "modbus" => AppProto::Modbus,
                "opcua" => AppProto::Opcua,
                _ => {
                    return Err(BaselineError::Invalid(format!(
                        "channel {} → {} has protocol {:?}; expected \"modbus\" or \"opcua\"",
                        c.client, c.server, c.proto
                    )))
                }
            };
            let key = (c.client, c.server, proto);
            if ix.channels.insert(key, i).is_some() {
                return Err(BaselineError::Invalid(format!(
                    "channel {} → {} ({}) listed twice",
                    c.client, c.server, c.proto
                )));
            }
            ix.by_server.entry((c.server, proto)).or_default().push(i);
        }
        if let Some(m) = &self.ml {
            m.validate()
                .map_err(|e| BaselineError::Invalid(format!("ml model: {e}")))?;
        }
        self.index = ix;
        Ok(())
    }

    /// Assembles a baseline from parts (used by the learner and by tests).
    pub fn from_parts(
        learned: LearnedSpan,
        assets: Vec<Asset>,
        channels: Vec<Channel>,
        dropped: Dropped,
    ) -> Result<Baseline, BaselineError> {
        let mut b = Baseline {
            kind: BASELINE_KIND.to_string(),
            version: BASELINE_VERSION,
            learned,
            assets,
            channels,
            dropped,
            ml: None,
            index: Index::default(),
        };
        b.reindex()?;
        Ok(b)
    }

    /// The asset with this address.
    pub fn asset(&self, ip: IpAddr) -> Option<&Asset> {
        self.index.assets.get(&ip).and_then(|&i| self.assets.get(i))
    }

    /// The channel client → server in `proto`.
    pub fn channel(&self, client: IpAddr, server: IpAddr, proto: AppProto) -> Option<&Channel> {
        self.index
            .channels
            .get(&(client, server, proto))
            .and_then(|&i| self.channels.get(i))
    }

    /// Every channel served by `server` in `proto`.
    pub fn channels_to(&self, server: IpAddr, proto: AppProto) -> Vec<&Channel> {
        self.index
            .by_server
            .get(&(server, proto))
            .map(|v| v.iter().filter_map(|&i| self.channels.get(i)).collect())
            .unwrap_or_default()
    }
}

/// The `kind` and `version` of a baseline file (JSON values, `None` when missing) checked.
fn check_header(
    kind: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
) -> Result<(), BaselineError> {
    if kind.as_ref().and_then(|k| k.as_str()) != Some(BASELINE_KIND) {
        return Err(BaselineError::Kind {
            found: kind.map_or_else(|| "missing".to_string(), |k| k.to_string()),
        });
    }
    if version.as_ref().and_then(serde_json::Value::as_u64) != Some(u64::from(BASELINE_VERSION)) {
        return Err(BaselineError::Version {
            found: version.map_or_else(|| "missing".to_string(), |k| k.to_string()),
            expected: BASELINE_VERSION,
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests;
