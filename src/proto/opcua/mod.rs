//! OPC UA binary: UA TCP transport, secure channels, services and events.

use crate::flow::Direction;
use crate::proto::{ParseCx, Probe, StreamParser};
use serde::Serialize;

/// OPC UA counters for `otwatch stats`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OpcuaStats {
    /// Messages (chunks) framed.
    pub messages: u64,
}

/// Says whether the first bytes of a stream are Modbus/TCP.
pub fn probe(data: &[u8]) -> Probe {
    let _ = data;
    Probe::NoMatch
}

/// The OPC UA parser of one flow.
#[derive(Debug, Default)]
pub struct OpcuaParser {}

impl OpcuaParser {
    /// A parser for a new flow.
    pub fn new() -> Self {
        OpcuaParser {}
    }
}

impl StreamParser for OpcuaParser {
    fn parse(&mut self, _dir: Direction, data: &[u8], _cx: &mut ParseCx<'_>) -> usize {
        data.len()
    }
    fn on_gap(&mut self, _dir: Direction, _len: u64, _cx: &mut ParseCx<'_>) {}
    fn on_close(&mut self, _cx: &mut ParseCx<'_>) {}
    fn max_message_len(&self) -> usize {
        65536
    }
}
