//! otwatch: a passive security sensor for industrial (OT) networks.
//!
//! Pipeline: [`capture`] → [`decode`] → [`flow`] (flow table, TCP reassembly) →
//! [`proto`] (Modbus/TCP, OPC UA) → [`event`] (protocol-neutral ICS events).
//! [`pipeline`] wires them together; [`stats`] holds the counters.
#![deny(unsafe_code)]

pub mod alert;
pub mod baseline;
pub mod capture;
pub mod cli;
pub mod decode;
pub mod detect;
pub mod event;
pub mod flow;
pub mod fuzzing;
pub mod pipeline;
pub mod proto;
pub mod rules;
pub mod shard;
pub mod stats;
pub mod synth;
pub mod time;
