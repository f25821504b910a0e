//! Application-layer protocol parsers and the stream driver that feeds them.
//!
//! A protocol implements [`StreamParser`]: it is handed in-order bytes of one direction of a
//! TCP stream and answers how many it consumed; the [`StreamDriver`] keeps the unconsumed tail
//! (a partial message) in a bounded buffer and presents it again with the next bytes. Which
//! parser a flow gets is decided by content ([`detect`]), on any port.

pub mod modbus;
pub mod opcua;
pub(crate) mod packed;
pub(crate) mod recycle;
pub mod slots;

use crate::event::AppProto;
use crate::flow::{Direction, FlowMeta};
use crate::time::Timestamp;
use serde::Serialize;
use std::sync::Arc;

/// What a parser call may read and write besides the bytes.
#[derive(Debug)]
pub struct ParseCx<'a> {
    /// Capture time of the packet that delivered these bytes.
    pub ts: Timestamp,
    /// Capture file of that packet.
    pub file: &'a Arc<str>,
    /// 1-based packet number of that packet in its file.
    pub packet: u64,
    /// The flow: endpoints, id, VLAN.
    pub meta: &'a FlowMeta,
    /// Completed events go here, in order.
    pub events: &'a mut slots::EventBuf,
    /// Per-protocol counters.
    pub stats: &'a mut ProtoStats,
}

/// A protocol parser for one TCP flow (both directions).
pub trait StreamParser {
    /// Parses as many whole messages as `data` holds, from its start. `data` is the in-order
    /// stream of direction `dir`, beginning at a message boundary (or at an unknown position
    /// after a gap, see [`StreamParser::on_gap`]). Returns the bytes consumed: a trailing
    /// partial message is left unconsumed and presented again with more bytes. Bytes that
    /// cannot be framed must be consumed (skipped) to resynchronise.
    fn parse(&mut self, dir: Direction, data: &[u8], cx: &mut ParseCx<'_>) -> usize;

    /// `len` bytes of direction `dir` are missing; the next bytes may start anywhere.
    fn on_gap(&mut self, dir: Direction, len: u64, cx: &mut ParseCx<'_>);

    /// The flow ended: emit what is pending (unanswered requests) as events.
    fn on_close(&mut self, cx: &mut ParseCx<'_>);

    /// Largest partial message worth buffering; a longer unconsumed tail is dropped as a gap.
    fn max_message_len(&self) -> usize;
}

/// Result of looking at the first bytes of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The bytes are this protocol.
    Match,
    /// The bytes are certainly not this protocol.
    NoMatch,
    /// Too few bytes to say.
    NeedMore,
}

/// Counters of every protocol parser, printed by `otwatch stats`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProtoStats {
    /// Modbus/TCP counters.
    pub modbus: modbus::ModbusStats,
    /// OPC UA counters.
    pub opcua: opcua::OpcuaStats,
    /// Stream driver counters.
    pub stream: StreamStats,
}

/// Counters of protocol detection and stream buffering.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StreamStats {
    /// TCP flows with payload whose protocol was recognised as Modbus.
    pub detected_modbus: u64,
    /// TCP flows whose protocol was recognised as OPC UA.
    pub detected_opcua: u64,
    /// TCP flows with payload that matched no parser.
    pub undetected: u64,
    /// Partial messages dropped because they outgrew the parser's maximum message length.
    pub buffer_overflows: u64,
}

/// Bytes of each direction inspected before detection gives up.
const DETECT_LIMIT: usize = 2048;

/// A protocol's content probe.
type ProbeFn = fn(&[u8]) -> Probe;

/// Decides the protocol of a stream from its first bytes in one direction.
pub fn detect(data: &[u8]) -> Option<Result<AppProto, ()>> {
    let probes: [(AppProto, ProbeFn); 2] = [
        (AppProto::Opcua, opcua::probe),
        (AppProto::Modbus, modbus::probe),
    ];
    let mut need_more = false;
    for (proto, probe) in probes {
        match probe(data) {
            Probe::Match => return Some(Ok(proto)),
            Probe::NeedMore => need_more = true,
            Probe::NoMatch => {}
        }
    }
    if need_more && data.len() < DETECT_LIMIT {
        None
    } else {
        Some(Err(()))
    }
}

/// The parser a flow ended up with.
enum Stage {
    /// Looking at the first bytes of each direction.
    Detecting,
    /// Parsing a recognised protocol.
    Parsing(Box<dyn StreamParser + Send>),
    /// No parser recognised the stream; its bytes are ignored.
    Ignored,
}

/// Per-flow application state: detection, then a parser fed through bounded buffers.
pub struct StreamDriver {
    stage: Stage,
    /// Unconsumed tail of each direction ([to-server, to-client]).
    pending: [Vec<u8>; 2],
}

impl std::fmt::Debug for StreamDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stage = match self.stage {
            Stage::Detecting => "detecting",
            Stage::Parsing(_) => "parsing",
            Stage::Ignored => "ignored",
        };
        f.debug_struct("StreamDriver")
            .field("stage", &stage)
            .finish_non_exhaustive()
    }
}

impl Default for StreamDriver {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamDriver {
    /// A driver that has not yet seen any byte.
    pub fn new() -> Self {
        StreamDriver {
            stage: Stage::Detecting,
            pending: [Vec::new(), Vec::new()],
        }
    }

    /// The protocol recognised so far, if any.
    pub fn is_parsing(&self) -> bool {
        matches!(self.stage, Stage::Parsing(_))
    }

    /// Feeds in-order bytes of one direction.
    #[inline(always)]
    pub fn on_data(&mut self, dir: Direction, data: &[u8], cx: &mut ParseCx<'_>) {
        // The common case: a parser and no partial message held, so the bytes go straight to
        // it (as `feed` does); only a trailing partial message takes the long way.
        if let Stage::Parsing(parser) = &mut self.stage {
            if self.pending.get(dir.index()).is_some_and(Vec::is_empty) {
                let used = parser.parse(dir, data, cx);
                if used < data.len() {
                    self.keep_tail(dir, data.get(used..).unwrap_or_default(), cx);
                }
                return;
            }
        }
        self.on_data_slow(dir, data, cx);
    }

    /// What [`StreamDriver::feed`] does with the bytes a parser left unconsumed when no
    /// partial message was held: keeps them, or drops them as a gap when too long.
    #[inline(never)]
    fn keep_tail(&mut self, dir: Direction, tail: &[u8], cx: &mut ParseCx<'_>) {
        let Stage::Parsing(parser) = &mut self.stage else {
            return;
        };
        let Some(buf) = self.pending.get_mut(dir.index()) else {
            return;
        };
        if tail.len() > parser.max_message_len() {
            cx.stats.stream.buffer_overflows += 1;
            parser.on_gap(dir, tail.len() as u64, cx);
        } else {
            buf.extend_from_slice(tail);
        }
    }

    /// [`StreamDriver::on_data`] off its common case.
    #[inline(never)]
    fn on_data_slow(&mut self, dir: Direction, data: &[u8], cx: &mut ParseCx<'_>) {
        let d = dir.index();
        if let Stage::Detecting = self.stage {
            let Some(buf) = self.pending.get_mut(d) else {
                return;
            };
            let verdict = if buf.is_empty() {
                detect(data)
            } else {
                buf.extend_from_slice(data);
                detect(buf)
            };
            match verdict {
                None => {
                    if buf.is_empty() {
                        buf.extend_from_slice(data);
                    }
                    return;
                }
                Some(Err(())) => {
                    cx.stats.stream.undetected += 1;
                    self.stage = Stage::Ignored;
                    self.pending = [Vec::new(), Vec::new()];
                    return;
                }
                Some(Ok(proto)) => {
                    let parser: Box<dyn StreamParser + Send> = match proto {
                        AppProto::Modbus => {
                            cx.stats.stream.detected_modbus += 1;
                            Box::new(modbus::ModbusParser::new())
                        }
                        AppProto::Opcua => {
                            cx.stats.stream.detected_opcua += 1;
                            Box::new(opcua::OpcuaParser::new())
                        }
                    };
                    self.stage = Stage::Parsing(parser);
                    // Bytes buffered in the other direction while detecting are dropped: the
                    // parser starts on this direction's message boundary.
                    if let Some(other) = self.pending.get_mut(1 - d) {
                        if !other.is_empty() {
                            let n = other.len() as u64;
                            other.clear();
                            if let Stage::Parsing(p) = &mut self.stage {
                                p.on_gap(dir.reverse(), n, cx);
                            }
                        }
                    }
                    if let Some(buf) = self.pending.get_mut(d) {
                        if !buf.is_empty() {
                            let bytes = std::mem::take(buf);
                            self.feed(dir, &bytes, cx);
                            return;
                        }
                    }
                }
            }
        }
        self.feed(dir, data, cx);
    }

    #[inline]
    fn feed(&mut self, dir: Direction, data: &[u8], cx: &mut ParseCx<'_>) {
        let Stage::Parsing(parser) = &mut self.stage else {
            return;
        };
        let Some(buf) = self.pending.get_mut(dir.index()) else {
            return;
        };
        if buf.is_empty() {
            // Fast path: parse straight from the packet, copy only a partial tail.
            let used = parser.parse(dir, data, cx).min(data.len());
            let tail = data.get(used..).unwrap_or_default();
            // The whole packet consumed (the common case): nothing to keep.
            if !tail.is_empty() {
                self.keep_tail(dir, tail, cx);
            }
        } else {
            buf.extend_from_slice(data);
            let used = parser.parse(dir, buf, cx).min(buf.len());
            buf.drain(..used);
            if buf.len() > parser.max_message_len() {
                cx.stats.stream.buffer_overflows += 1;
                let n = buf.len() as u64;
                buf.clear();
                parser.on_gap(dir, n, cx);
            }
        }
    }

    /// Bytes of one direction are missing.
    pub fn on_gap(&mut self, dir: Direction, len: u64, cx: &mut ParseCx<'_>) {
        let Some(buf) = self.pending.get_mut(dir.index()) else {
            return;
        };
        let dropped = buf.len() as u64;
        buf.clear();
        match &mut self.stage {
            Stage::Parsing(p) => p.on_gap(dir, len + dropped, cx),
            // A gap before detection: start detecting afresh after it.
            Stage::Detecting | Stage::Ignored => {}
        }
    }

    /// Bytes held in partial-message buffers (only buffers holding data count: an empty one
    /// is bounded scratch space of at most the parser's maximum message length).
    #[inline]
    pub fn buffer_memory(&self) -> usize {
        self.pending
            .iter()
            .filter(|b| !b.is_empty())
            .map(Vec::capacity)
            .sum()
    }

    /// Drops partial messages under memory pressure, reporting them to the parser as gaps.
    pub fn drop_buffers(&mut self, cx: &mut ParseCx<'_>) {
        for dir in [Direction::ToServer, Direction::ToClient] {
            let held = self.pending.get(dir.index()).is_some_and(|b| !b.is_empty());
            if held {
                self.on_gap(dir, 0, cx);
            }
            if let Some(b) = self.pending.get_mut(dir.index()) {
                *b = Vec::new();
            }
        }
    }

    /// The flow ended.
    pub fn on_close(&mut self, cx: &mut ParseCx<'_>) {
        if let Stage::Parsing(p) = &mut self.stage {
            p.on_close(cx);
        }
        self.pending = [Vec::new(), Vec::new()];
    }
}
