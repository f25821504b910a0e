//! Bidirectional flows and TCP stream reassembly.
//!
//! [`FlowTable`] maps packets to [`Flow`]s (5-tuple plus VLAN), decides which side is the
//! client, expires idle flows in capture time and evicts flows when full, counting every
//! eviction. Each TCP flow has one [`reassembly::Reassembler`] per direction that turns
//! segments into in-order [`Chunk`]s for the protocol parsers. `S` is the per-flow state the
//! caller keeps (the application-layer parser); this module knows nothing about protocols.

pub mod reassembly;

use crate::decode::TcpSegment;
use crate::event::Endpoint;
use crate::time::Timestamp;
use std::net::IpAddr;

/// Direction of a packet within its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From client to server.
    ToServer = 0,
    /// From server to client.
    ToClient = 1,
}

impl Direction {
    /// The other direction.
    pub fn reverse(self) -> Self {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }

    /// 0 for to-server, 1 for to-client: an index into per-direction arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A piece of one direction's byte stream, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// Contiguous stream bytes following the previous chunk.
    Data(&'a [u8]),
    /// This many stream bytes are missing (lost, never captured, or dropped by a cap). The
    /// parser must resynchronise after it.
    Gap(u64),
    /// The sender closed its side (FIN), after all data before it was delivered.
    Fin,
    /// The connection was reset.
    Rst,
}

/// How the client and server sides of a flow were decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SideSource {
    /// From the SYN / SYN-ACK handshake.
    Handshake,
    /// From a well-known server port, or the lower port.
    Port,
    /// Set by a protocol parser from the content (e.g. who sends Modbus requests).
    Content,
}

/// Why a flow left the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// No packet for the idle timeout (capture time).
    IdleTimeout,
    /// Evicted to make room under the flow cap.
    Evicted,
    /// Closed by FIN in both directions or RST, then timed out (shorter timeout).
    Closed,
    /// The capture ended.
    EndOfCapture,
}

/// Limits and timeouts of the flow table and reassembly. Every limit hit is counted.
#[derive(Clone, Debug)]
pub struct FlowConfig {
    /// Maximum number of flows held at once.
    pub max_flows: usize,
    /// Idle timeout for established TCP flows, seconds of capture time.
    pub tcp_idle_timeout_secs: u64,
    /// Idle timeout for closed (FIN/RST) or never-established TCP flows and for UDP flows.
    pub short_idle_timeout_secs: u64,
    /// Out-of-order bytes buffered per direction before a gap is forced.
    pub max_buffered_bytes: usize,
    /// Holes (out-of-order runs) per direction before a gap is forced.
    pub max_holes: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_flows: 100_000,
            tcp_idle_timeout_secs: 600,
            short_idle_timeout_secs: 30,
            max_buffered_bytes: 256 * 1024,
            max_holes: 32,
        }
    }
}

/// A canonical flow key: the same for both directions of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// The lower (address, port) of the two endpoints.
    pub lo: (IpAddr, u16),
    /// The higher (address, port).
    pub hi: (IpAddr, u16),
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    /// Outer VLAN id, 0 when untagged.
    pub vlan: u16,
}

impl FlowKey {
    /// Builds the canonical key for a packet from `src` to `dst`.
    pub fn new(src: (IpAddr, u16), dst: (IpAddr, u16), proto: u8, vlan: u16) -> Self {
        if src <= dst {
            FlowKey {
                lo: src,
                hi: dst,
                proto,
                vlan,
            }
        } else {
            FlowKey {
                lo: dst,
                hi: src,
                proto,
                vlan,
            }
        }
    }
}

/// Counters of the flow table and reassembly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Flows created.
    pub created: u64,
    /// Flows ended by idle timeout.
    pub timed_out: u64,
    /// Flows evicted under the cap.
    pub evicted: u64,
    /// Flows ended by the end of the capture.
    pub ended_at_eof: u64,
    /// Most flows held at once.
    pub peak: u64,
    /// Gaps delivered to parsers (count).
    pub reassembly_gaps: u64,
    /// Bytes declared missing in those gaps.
    pub reassembly_gap_bytes: u64,
    /// Segments entirely covering already-delivered or buffered data (retransmissions).
    pub retransmissions: u64,
    /// Segments partly overlapping known data.
    pub overlaps: u64,
    /// Overlaps whose bytes differ from the data kept (first data wins).
    pub overlap_mismatches: u64,
    /// Gaps forced because the out-of-order buffer or hole cap was reached.
    pub reassembly_cap_hits: u64,
    /// Segments that arrived out of order and were buffered.
    pub out_of_order: u64,
}

/// What the table knows about a flow, apart from the caller's state.
#[derive(Clone, Debug)]
pub struct FlowMeta {
    /// Run-unique id, in order of creation.
    pub id: u64,
    /// Canonical key.
    pub key: FlowKey,
    /// Client side (initiator).
    pub client: Endpoint,
    /// Server side.
    pub server: Endpoint,
    /// How the sides were decided.
    pub side_source: SideSource,
    /// First packet time.
    pub first_seen: Timestamp,
    /// Last packet time.
    pub last_seen: Timestamp,
    /// Packets per direction ([to-server, to-client]).
    pub packets: [u64; 2],
    /// Payload bytes per direction.
    pub bytes: [u64; 2],
    /// Outer VLAN id, when tagged.
    pub vlan: Option<u16>,
}

/// One bidirectional conversation: metadata, TCP state and the caller's state.
#[derive(Debug)]
pub struct Flow<S> {
    /// Addresses, sides, times and counters.
    pub meta: FlowMeta,
    /// The caller's per-flow state.
    pub app: S,
}

/// Receives what the flow table produces: stream chunks and ended flows.
pub trait FlowSink<S> {
    /// In-order bytes, gaps and closes of one direction of a TCP flow.
    fn on_chunk(&mut self, meta: &FlowMeta, app: &mut S, dir: Direction, chunk: Chunk<'_>);
    /// A UDP datagram.
    fn on_datagram(&mut self, meta: &FlowMeta, app: &mut S, dir: Direction, payload: &[u8]);
    /// A flow left the table. All its buffered data was delivered before this call.
    fn on_end(&mut self, flow: Flow<S>, reason: EndReason);
}

/// The packet fields the flow table needs.
#[derive(Clone, Copy, Debug)]
pub struct FlowPacket<'a> {
    /// Capture time.
    pub ts: Timestamp,
    /// Sender.
    pub src: Endpoint,
    /// Receiver.
    pub dst: Endpoint,
    /// Outer VLAN id.
    pub vlan: Option<u16>,
    /// The transport payload and header.
    pub l4: FlowL4<'a>,
}

/// Transport layer of a [`FlowPacket`].
#[derive(Clone, Copy, Debug)]
pub enum FlowL4<'a> {
    /// A TCP segment.
    Tcp(TcpSegment<'a>),
    /// A UDP payload.
    Udp(&'a [u8]),
}

/// The flow table: bounded, expiring in capture time, evicting least recently seen first.
#[derive(Debug)]
pub struct FlowTable<S> {
    cfg: FlowConfig,
    stats: FlowStats,
    flows: Vec<Flow<S>>,
}

impl<S> FlowTable<S> {
    /// An empty table with these limits.
    pub fn new(cfg: FlowConfig) -> Self {
        FlowTable {
            cfg,
            stats: FlowStats::default(),
            flows: Vec::new(),
        }
    }

    /// Flows currently held.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// True when no flow is held.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Counters so far.
    pub fn stats(&self) -> &FlowStats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &FlowConfig {
        &self.cfg
    }

    /// Handles one TCP or UDP packet: finds or creates its flow (`new_state` builds the
    /// caller's state for a new flow), runs reassembly, and passes chunks, datagrams and any
    /// flows evicted to make room to `sink`.
    pub fn process(
        &mut self,
        pkt: &FlowPacket<'_>,
        new_state: impl FnOnce() -> S,
        sink: &mut impl FlowSink<S>,
    ) {
        let _ = (pkt, new_state, sink);
    }

    /// Ends every flow idle for longer than its timeout at capture time `now`.
    pub fn expire(&mut self, now: Timestamp, sink: &mut impl FlowSink<S>) {
        let _ = (now, sink);
    }

    /// Ends every flow (end of capture), delivering buffered data first.
    pub fn drain(&mut self, sink: &mut impl FlowSink<S>) {
        let _ = sink;
    }
}
