//! Bidirectional flows and TCP stream reassembly.
//!
//! [`FlowTable`] maps packets to [`Flow`]s (5-tuple plus VLAN), decides which side is the
//! client, expires idle flows in capture time and evicts flows when full, counting every
//! eviction. Each TCP flow has one [`reassembly::Reassembler`] per direction that turns
//! segments into in-order [`Chunk`]s for the protocol parsers. `S` is the per-flow state the
//! caller keeps (the application-layer parser); this module knows nothing about protocols.

pub(crate) mod hash;
pub mod reassembly;

use crate::decode::{CommonFrame, TcpFlags, TcpSegment};
use crate::event::Endpoint;
use crate::time::Timestamp;
use hash::KeyHashBuilder;
use reassembly::{Reassembler, ReassemblyLimits, SynKind};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

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
    /// Delivered bytes kept per direction until the peer acknowledges them, to detect
    /// retransmissions that differ from what was delivered (`overlap_mismatches`). 0 disables.
    pub max_retained_bytes: usize,
    /// Segments starting further than this beyond the next expected byte are out of window
    /// and ignored (counted), until the peer's ACK or a run of them confirms the jump.
    pub max_seq_jump_bytes: usize,
    /// Bytes of out-of-order reassembly buffers and parser buffers held by all flows of the
    /// table together. Above it, the least recently seen flows holding buffers give them up
    /// (holes become gaps), counted in `budget_drops`.
    pub memory_budget_bytes: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_flows: 100_000,
            tcp_idle_timeout_secs: 600,
            short_idle_timeout_secs: 30,
            max_buffered_bytes: 256 * 1024,
            max_holes: 32,
            max_retained_bytes: 2048,
            max_seq_jump_bytes: 1 << 20,
            memory_budget_bytes: 64 << 20,
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

/// An address as a number (IPv4 in the low 32 bits) and whether it is IPv6.
#[inline]
fn addr_bits(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(a) => (u128::from(a.to_bits()), false),
        IpAddr::V6(a) => (a.to_bits(), true),
    }
}

/// A [`FlowKey`] as the table's map key, in plain words: both addresses as numbers, then the
/// ports, the two address families, the protocol and the VLAN in one word. Built straight from
/// a packet's endpoints (no [`FlowKey`] per packet), compared in five word comparisons, hashed
/// as two words for IPv4. Equal exactly when the [`FlowKey`]s are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MapKey {
    lo: u128,
    hi: u128,
    /// lo port << 48 | hi port << 32 | hi is IPv6 << 25 | lo is IPv6 << 24 | proto << 16 | vlan.
    rest: u64,
}

impl MapKey {
    /// The key of a packet from `src` to `dst`, and whether `src` is its lower endpoint
    /// (as [`FlowKey::new`] orders them).
    #[inline]
    fn of_packet(src: (IpAddr, u16), dst: (IpAddr, u16), proto: u8, vlan: u16) -> (Self, bool) {
        let (sa, s6) = addr_bits(src.0);
        let (da, d6) = addr_bits(dst.0);
        let src_lo = (s6, sa, src.1) <= (d6, da, dst.1);
        let ((la, l6, lp), (ha, h6, hp)) = if src_lo {
            ((sa, s6, src.1), (da, d6, dst.1))
        } else {
            ((da, d6, dst.1), (sa, s6, src.1))
        };
        let key = MapKey {
            lo: la,
            hi: ha,
            rest: u64::from(lp) << 48
                | u64::from(hp) << 32
                | u64::from(h6) << 25
                | u64::from(l6) << 24
                | u64::from(proto) << 16
                | u64::from(vlan),
        };
        (key, src_lo)
    }

    /// The key of a canonical [`FlowKey`].
    fn of(key: &FlowKey) -> Self {
        MapKey::of_packet(key.lo, key.hi, key.proto, key.vlan).0
    }
}

impl std::hash::Hash for MapKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        if self.rest & (3 << 24) == 0 {
            state.write_u64((self.lo as u64) << 32 | (self.hi as u64 & 0xffff_ffff));
        } else {
            state.write_u64((self.lo >> 64) as u64);
            state.write_u64(self.lo as u64);
            state.write_u64((self.hi >> 64) as u64);
            state.write_u64(self.hi as u64);
        }
        state.write_u64(self.rest);
    }
}

/// The key of an IPv4 flow in [`Index`]: both addresses in one word (lower << 32 | higher),
/// then [`MapKey::rest`]. 16 bytes instead of [`MapKey`]'s 48.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct V4Key {
    addrs: u64,
    rest: u64,
}

impl std::hash::Hash for V4Key {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.addrs);
        state.write_u64(self.rest);
    }
}

/// The table's map from keys to slots, IPv4 flows (nearly all) in a map of small keys, the
/// others in a map of full [`MapKey`]s: 24 bytes a bucket instead of 64 for the common case.
#[derive(Debug)]
struct Index {
    v4: HashMap<V4Key, u32, KeyHashBuilder>,
    other: HashMap<MapKey, u32, KeyHashBuilder>,
}

impl Index {
    /// Empty maps hashing with `hasher`'s seeds.
    fn new(hasher: KeyHashBuilder) -> Self {
        Index {
            v4: HashMap::with_hasher(hasher.clone()),
            other: HashMap::with_hasher(hasher),
        }
    }

    /// The small key of an IPv4 flow's key.
    #[inline]
    fn v4(k: &MapKey) -> Option<V4Key> {
        (k.rest & (3 << 24) == 0).then_some(V4Key {
            addrs: (k.lo as u64) << 32 | (k.hi as u64 & 0xffff_ffff),
            rest: k.rest,
        })
    }

    /// The slot of a key.
    #[inline]
    fn get(&self, k: &MapKey) -> Option<u32> {
        match Self::v4(k) {
            Some(v) => self.v4.get(&v).copied(),
            None => self.other.get(k).copied(),
        }
    }

    /// Maps a key (not held) to a slot.
    fn insert(&mut self, k: MapKey, idx: u32) {
        match Self::v4(&k) {
            Some(v) => self.v4.insert(v, idx),
            None => self.other.insert(k, idx),
        };
    }

    /// Forgets a key.
    fn remove(&mut self, k: &MapKey) {
        match Self::v4(k) {
            Some(v) => self.v4.remove(&v),
            None => self.other.remove(k),
        };
    }
}

/// Places in the table's cache of recent flows.
const CACHE_PLACES: usize = 256;

/// The place of a key in the cache of recent flows: a multiplicative hash of its words.
#[inline]
fn cache_place(k: &MapKey) -> usize {
    let x = (k.lo as u64)
        ^ ((k.lo >> 64) as u64)
        ^ (k.hi as u64).rotate_left(32)
        ^ ((k.hi >> 64) as u64)
        ^ k.rest;
    // The top 8 bits of the product: a place below CACHE_PLACES.
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize
}

/// Places in the table's lane of steady TCP flows (a power of two).
const LANE_PLACES: usize = 4096;

/// An untagged IPv4 TCP flow in the lane: its 4-tuple as the packets of one direction carry
/// it, and where the flow is. The other direction's packets carry the same words with sender
/// and receiver swapped ([`lane_swap`]) and find the same entry, at the same place: a flow's
/// two directions share one entry (one cache line, where two entries missed apart).
#[derive(Clone, Copy, Debug)]
struct LaneEntry {
    /// Sender and receiver address, as [`lane_words`] makes them (the wire bytes).
    addrs: u64,
    /// Sender and receiver port, likewise.
    ports: u32,
    /// Slot << 1 | index of the direction of these words; `NIL` when empty.
    tag: u32,
}

impl LaneEntry {
    /// No flow: words no packet of a held flow carries (0.0.0.0:0 both ways; one that does
    /// only finds the `NIL` tag and takes the general path).
    const EMPTY: LaneEntry = LaneEntry {
        addrs: 0,
        ports: 0,
        tag: NIL,
    };
}

/// The place of an IPv4 4-tuple in the lane, the same for both directions: a hash of the
/// addresses' and the ports' exclusive or, which swapping sender and receiver keeps.
#[inline]
fn lane_place(addrs: u64, ports: u32) -> usize {
    let x = (addrs ^ addrs.rotate_left(32)) ^ u64::from(ports ^ ports.rotate_left(16));
    // The top 12 bits of the product: a place below LANE_PLACES.
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52) as usize
}

/// The lane's words of the other direction: sender and receiver swapped.
#[inline]
fn lane_swap(addrs: u64, ports: u32) -> (u64, u32) {
    (addrs.rotate_left(32), ports.rotate_left(16))
}

/// The lane's words of a packet from `src` to `dst`, as [`CommonFrame::wire_words`] reads them
/// from its headers.
#[inline]
fn lane_words(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> (u64, u32) {
    let ([a0, a1, a2, a3], [b0, b1, b2, b3]) = (src.0.octets(), dst.0.octets());
    let ([p0, p1], [q0, q1]) = (src.1.to_be_bytes(), dst.1.to_be_bytes());
    (
        u64::from_le_bytes([a0, a1, a2, a3, b0, b1, b2, b3]),
        u32::from_le_bytes([p0, p1, q0, q1]),
    )
}

/// The sender and receiver of the lane's words (the inverse of [`lane_words`]).
#[inline]
fn lane_ends(addrs: u64, ports: u32) -> ((Ipv4Addr, u16), (Ipv4Addr, u16)) {
    let [a0, a1, a2, a3, b0, b1, b2, b3] = addrs.to_le_bytes();
    let [p0, p1, q0, q1] = ports.to_le_bytes();
    (
        (Ipv4Addr::new(a0, a1, a2, a3), u16::from_be_bytes([p0, p1])),
        (Ipv4Addr::new(b0, b1, b2, b3), u16::from_be_bytes([q0, q1])),
    )
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
    /// Flows ended after FIN both ways or RST (short timeout, or a new SYN reusing the key).
    pub closed: u64,
    /// SYNs with a new sequence number on a direction already started, ignored.
    pub syn_conflicts: u64,
    /// Segments starting too far beyond the next expected byte, ignored.
    pub out_of_window: u64,
    /// Times a flow's buffered data was given up because the memory budget was exceeded.
    pub budget_drops: u64,
    /// Buffer bytes released by those drops.
    pub budget_drop_bytes: u64,
    /// Most buffer memory (reassembly and parser buffers) held at once, bytes, after
    /// enforcing the budget (with several workers: the sum of each worker's peak).
    pub memory_peak: u64,
}

/// What the table knows about a flow, apart from the caller's state.
///
/// In this order (160 bytes, no more than the compiler's own order): the fields no packet of
/// a steady flow reads come first, in the first 64 bytes, and the ones every packet or event
/// reads (times, counters, endpoints, id) last, next to the caller's state and the TCP state
/// that follow in [`Flow`], so that a packet touches fewer cache lines of its flow.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct FlowMeta {
    /// Canonical key.
    pub key: FlowKey,
    /// How the sides were decided.
    pub side_source: SideSource,
    /// First packet time.
    pub first_seen: Timestamp,
    /// Run-unique id, in order of creation.
    pub id: u64,
    /// Last packet time.
    pub last_seen: Timestamp,
    /// Packets per direction ([to-server, to-client]).
    /// (4 bytes each, wrapping: a flow's state is the table's largest cost at scale).
    pub packets: [u32; 2],
    /// Payload bytes per direction.
    /// (saturating at `u32::MAX`; only whether it is zero matters to the table).
    pub bytes: [u32; 2],
    /// Client side (initiator).
    pub client: Endpoint,
    /// Server side.
    pub server: Endpoint,
    /// Outer VLAN id, when tagged.
    pub vlan: Option<u16>,
}

/// One bidirectional conversation: metadata, TCP state and the caller's state.
///
/// In this order, the metadata's rarely read fields at the start (see [`FlowMeta`]) and the
/// packet path's fields in one run after them.
#[derive(Debug)]
#[repr(C)]
pub struct Flow<S> {
    /// Addresses, sides, times and counters.
    pub meta: FlowMeta,
    /// The caller's per-flow state.
    pub app: S,
    /// TCP handshake/close state and reassembly (unused for UDP).
    pub tcp: TcpState,
}

/// Receives what the flow table produces: stream chunks and ended flows.
pub trait FlowSink<S> {
    /// In-order bytes, gaps and closes of one direction of a TCP flow.
    fn on_chunk(&mut self, meta: &FlowMeta, app: &mut S, dir: Direction, chunk: Chunk<'_>);
    /// A UDP datagram.
    fn on_datagram(&mut self, meta: &FlowMeta, app: &mut S, dir: Direction, payload: &[u8]);
    /// A flow left the table. All its buffered data was delivered before this call.
    fn on_end(&mut self, flow: Flow<S>, reason: EndReason);
    /// A flow is about to end (called before its buffered data is flushed). `stamp` is its
    /// position in the table's recency order (larger is more recent).
    fn on_ending(&mut self, _meta: &FlowMeta, _stamp: u64) {}
    /// Bytes of memory the caller's state of a flow holds in buffers, for the memory budget.
    fn app_memory(&self, _app: &S) -> usize {
        0
    }
    /// The memory budget is exceeded: drop what the caller's state of this flow buffers
    /// (reporting gaps to its parser). Called after the flow's reassembly buffers were given up.
    fn on_budget_drop(&mut self, _meta: &FlowMeta, _app: &mut S) {}
}

/// What [`FlowTable::lane`] did with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Not a lane packet: nothing changed, the caller hands it to [`FlowTable::process`].
    Declined,
    /// Handled, the flow's buffers as they were.
    Done,
    /// Handled up to the memory accounting of the flow in this slot, which the caller makes
    /// with [`FlowTable::lane_settle`].
    Settle(u32),
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

impl<'a> FlowPacket<'a> {
    /// The flow packet of a common Ethernet/IPv4/TCP frame captured at `ts`.
    pub fn of_common(ts: Timestamp, cf: &CommonFrame<'a>) -> Self {
        let f = cf.fields();
        FlowPacket {
            ts,
            src: Endpoint {
                ip: IpAddr::V4(f.src),
                port: f.tcp.src_port,
                mac: Some(f.src_mac),
            },
            dst: Endpoint {
                ip: IpAddr::V4(f.dst),
                port: f.tcp.dst_port,
                mac: Some(f.dst_mac),
            },
            vlan: None,
            l4: FlowL4::Tcp(f.tcp),
        }
    }
}

/// Transport layer of a [`FlowPacket`].
#[derive(Clone, Copy, Debug)]
pub enum FlowL4<'a> {
    /// A TCP segment.
    Tcp(TcpSegment<'a>),
    /// A UDP payload.
    Udp(&'a [u8]),
}

/// Ports on which the server of an ICS or common service listens, used to pick the server of a
/// flow whose handshake was not seen.
pub const SERVER_PORTS: &[u16] = &[
    502,   // Modbus/TCP
    4840,  // OPC UA binary
    4843,  // OPC UA over TLS
    102,   // ISO-TSAP: S7comm, IEC 61850 MMS
    20000, // DNP3
    44818, // EtherNet/IP explicit
    2222,  // EtherNet/IP implicit
    2404,  // IEC 60870-5-104
    47808, // BACnet/IP
    1911,  // Niagara Fox
    4911,  // Niagara Fox TLS
    789,   // Red Lion Crimson
    48010, // Red Lion Crimson v3
    1962,  // PCWorx
    9600,  // OMRON FINS
    18245, // GE SRTP
    5094,  // HART-IP
    34962, // PROFINET RT unicast
    34963, // PROFINET RT multicast
    34964, // PROFINET context manager
    80, 443, 22, 23, 53, 123, 161, 445,
];

/// TCP progress bits of a flow.
mod tcpf {
    /// The client's SYN was seen.
    pub(super) const SYN: u16 = 1;
    /// The server's SYN-ACK was seen.
    pub(super) const SYN_ACK: u16 = 2;
    /// The client acknowledged the SYN-ACK.
    pub(super) const ESTABLISHED: u16 = 4;
    /// FIN from the client.
    pub(super) const FIN_TO_SERVER: u16 = 8;
    /// FIN from the server.
    pub(super) const FIN_TO_CLIENT: u16 = 16;
    /// RST from either side.
    pub(super) const RST: u16 = 32;
    /// Payload from the client.
    pub(super) const DATA_TO_SERVER: u16 = 64;
    /// Payload from the server.
    pub(super) const DATA_TO_CLIENT: u16 = 128;
    /// Both endpoints' hardware addresses are known (an address, once known, stays): the lane
    /// need not look at them (they lie on another cache line than its other fields).
    pub(super) const MACS: u16 = 256;
}

/// TCP state of a flow: handshake and close progress, and one reassembler per direction.
#[derive(Clone, Debug, Default)]
pub struct TcpState {
    flags: u16,
    rx: [Reassembler; 2],
}

impl TcpState {
    /// The reassembler of one direction.
    pub fn reassembler(&self, dir: Direction) -> &Reassembler {
        match dir {
            Direction::ToServer => &self.rx[0],
            Direction::ToClient => &self.rx[1],
        }
    }

    fn rx_mut(&mut self, dir: Direction) -> &mut Reassembler {
        match dir {
            Direction::ToServer => &mut self.rx[0],
            Direction::ToClient => &mut self.rx[1],
        }
    }

    fn has(&self, f: u16) -> bool {
        self.flags & f == f
    }

    /// True once the handshake completed, or, without a handshake, once payload was seen
    /// (capture started mid-connection), or payload was seen both ways.
    pub fn established(&self) -> bool {
        self.has(tcpf::ESTABLISHED)
            || self.has(tcpf::DATA_TO_SERVER | tcpf::DATA_TO_CLIENT)
            || (self.flags & (tcpf::SYN | tcpf::SYN_ACK) == 0
                && self.flags & (tcpf::DATA_TO_SERVER | tcpf::DATA_TO_CLIENT) != 0)
    }

    /// True after FIN in both directions or a RST.
    pub fn closed(&self) -> bool {
        self.has(tcpf::RST) || self.has(tcpf::FIN_TO_SERVER | tcpf::FIN_TO_CLIENT)
    }

    /// True after a FIN in either direction or a RST.
    pub fn finishing(&self) -> bool {
        self.flags & (tcpf::RST | tcpf::FIN_TO_SERVER | tcpf::FIN_TO_CLIENT) != 0
    }
}

/// No slot.
const NIL: u32 = u32::MAX;
/// LRU lists: bit 1 = confirmed (payload both ways, not closed), bit 0 = long timeout.
const LISTS: usize = 4;
/// Confirmed-list bit.
const CONFIRMED: usize = 2;
/// Long-timeout-list bit.
const LONG: usize = 1;

/// A slab entry: a flow (or a free entry) and its LRU links, after the flow (whose rarely
/// read fields come first), so that a packet's fields of its slot lie in one run.
#[derive(Debug)]
#[repr(C)]
struct Slot<S> {
    flow: Option<Flow<S>>,
    /// The client is the lower endpoint of the flow's key (or both endpoints are alike).
    client_lo: bool,
    /// Towards the head (more recent); free list: unused.
    prev: u32,
    /// Towards the tail (less recent); free list: next free slot.
    next: u32,
    /// Which LRU list.
    list: u8,
    /// Table clock at the last touch: orders flows across lists.
    stamp: u64,
    /// Buffer bytes the flow holds (as last accounted); non-zero puts it on the memory list.
    mem: usize,
    /// Memory list links (towards the more / less recent flow holding buffers).
    mprev: u32,
    mnext: u32,
}

/// Head (most recent) and tail (least recent) of one LRU list.
#[derive(Clone, Copy, Debug)]
struct Ends {
    head: u32,
    tail: u32,
}

/// The flow table: bounded, expiring in capture time, evicting least recently seen first.
///
/// Flows live in a slab (a `Vec` with a free list) indexed from a `HashMap` keyed by the
/// canonical [`FlowKey`] with a per-table seeded hasher. Each flow is on one of four intrusive
/// doubly-linked LRU lists: {unconfirmed, confirmed} × {short, long timeout}, where confirmed
/// means payload was seen in both directions and the flow is not closed. Lookup, touch,
/// creation and eviction are O(1); `expire` is O(1 + flows ended); `drain` sorts by flow id.
/// The output never depends on hash order: flows end in LRU order (expire, evict) or id order
/// (drain).
#[derive(Debug)]
pub struct FlowTable<S> {
    cfg: FlowConfig,
    lim: ReassemblyLimits,
    stats: FlowStats,
    map: Index,
    slots: Vec<Slot<S>>,
    free: u32,
    lists: [Ends; LISTS],
    len: usize,
    max: usize,
    next_id: u64,
    clock: u64,
    /// Global packet index of the packet being handled, when the caller numbers packets: flow
    /// ids and recency stamps then derive from it, so they do not depend on how packets are
    /// spread over several tables.
    pkt_index: Option<u64>,
    /// Buffer bytes held by all flows.
    mem: usize,
    /// Flows holding buffers, most recently touched first.
    mem_list: Ends,
    /// Keys and slots of recently seen flows, at a place chosen by a cheap hash of the key
    /// ([`cache_place`]): a hit spares the map lookup (a miss, or a collision, only costs it).
    /// A slot of `NIL` is empty; an entry is cleared when its flow leaves.
    cache: Vec<(MapKey, u32)>,
    /// The lane ([`FlowTable::process_lane`]): 4-tuples of untagged IPv4 TCP flows (one entry
    /// for both directions) and their slots, at a place chosen by [`lane_place`]. An entry is
    /// cleared when its flow leaves; a miss costs a map lookup.
    lane: Box<[LaneEntry; LANE_PLACES]>,
    /// The short and long idle timeouts as [`Timestamp::plus_secs`] adds them, for the lane.
    lane_timeouts: [i64; 2],
}

impl<S> FlowTable<S> {
    /// An empty table with these limits.
    pub fn new(cfg: FlowConfig) -> Self {
        Self::with_hasher(cfg, KeyHashBuilder::random())
    }

    fn with_hasher(cfg: FlowConfig, hasher: KeyHashBuilder) -> Self {
        // Below `NIL >> 1`: no slot is the one an empty lane entry's tag names.
        let max = cfg.max_flows.clamp(1, (NIL >> 1) as usize);
        let lane_timeouts = [cfg.short_idle_timeout_secs, cfg.tcp_idle_timeout_secs]
            .map(|t| i64::try_from(t).unwrap_or(i64::MAX));
        FlowTable {
            lane_timeouts,
            lim: ReassemblyLimits::from(&cfg),
            cfg,
            stats: FlowStats::default(),
            map: Index::new(hasher),
            slots: Vec::new(),
            free: NIL,
            lists: [Ends {
                head: NIL,
                tail: NIL,
            }; LISTS],
            len: 0,
            max,
            next_id: 1,
            clock: 0,
            pkt_index: None,
            mem: 0,
            mem_list: Ends {
                head: NIL,
                tail: NIL,
            },
            cache: vec![
                (
                    MapKey {
                        lo: 0,
                        hi: 0,
                        rest: 0,
                    },
                    NIL,
                );
                CACHE_PLACES
            ],
            lane: Box::new([LaneEntry::EMPTY; LANE_PLACES]),
        }
    }

    /// Flows currently held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no flow is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Counters so far.
    pub fn stats(&self) -> &FlowStats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &FlowConfig {
        &self.cfg
    }

    /// Numbers the next packet handed to [`FlowTable::process`] with its global index (1-based,
    /// increasing): a flow created by it gets this index as id, and recency stamps follow the
    /// index, so that several tables fed with parts of one capture order flows alike.
    pub fn set_packet_index(&mut self, index: u64) {
        self.pkt_index = Some(index);
        self.clock = self.clock.max(index.saturating_mul(2));
    }

    /// The flow of a key, if held.
    pub fn get(&self, key: &FlowKey) -> Option<&Flow<S>> {
        let idx = self.map.get(&MapKey::of(key))?;
        self.slot(idx)?.flow.as_ref()
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
        let proto = match pkt.l4 {
            FlowL4::Tcp(_) => 6,
            FlowL4::Udp(_) => 17,
        };
        let src = (pkt.src.ip, pkt.src.port);
        let dst = (pkt.dst.ip, pkt.dst.port);
        let vlan = pkt.vlan.unwrap_or(0);
        let (mk, src_lo) = MapKey::of_packet(src, dst, proto, vlan);
        let place = cache_place(&mk);
        let mut found = match self.cache.get(place) {
            Some(&(k, idx)) if idx != NIL && k == mk => Some(idx),
            _ => self.map.get(&mk),
        };
        if let Some(idx) = found {
            if let Some(reason) = self.stale(idx, pkt, src_lo) {
                self.end(idx, reason, sink);
                found = None;
            }
        }
        let idx = match found {
            Some(idx) => idx,
            None => self.create(pkt, mk, src_lo, new_state, sink),
        };
        if let Some(e) = self.cache.get_mut(place) {
            *e = (mk, idx);
        }
        let lim = self.lim;
        let Some(slot) = self.slots.get_mut(idx as usize) else {
            return;
        };
        let dir = if src_lo == slot.client_lo {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let Some(flow) = slot.flow.as_mut() else {
            return;
        };
        let meta = &mut flow.meta;
        if pkt.ts > meta.last_seen {
            meta.last_seen = pkt.ts;
        }
        let len = match pkt.l4 {
            FlowL4::Tcp(seg) => u64::from(seg.payload_len).max(seg.payload.len() as u64),
            FlowL4::Udp(p) => p.len() as u64,
        };
        let [p0, p1] = &mut meta.packets;
        let [b0, b1] = &mut meta.bytes;
        let (me, peer, p, b) = match dir {
            Direction::ToServer => (&mut meta.client, &mut meta.server, p0, b0),
            Direction::ToClient => (&mut meta.server, &mut meta.client, p1, b1),
        };
        *p = p.wrapping_add(1);
        *b = b.saturating_add(u32::try_from(len).unwrap_or(u32::MAX));
        if me.mac.is_none() {
            me.mac = pkt.src.mac;
        }
        if peer.mac.is_none() {
            peer.mac = pkt.dst.mac;
        }
        match pkt.l4 {
            FlowL4::Tcp(seg) => tcp_segment(flow, dir, &seg, &lim, &mut self.stats, sink),
            FlowL4::Udp(payload) => {
                sink.on_datagram(&flow.meta, &mut flow.app, dir, payload);
            }
        }
        self.touch(idx);
        self.account(idx, sink);
        self.enforce_budget(sink);
    }

    /// The lane of steady TCP flows: handles the untagged IPv4 TCP segment `f` of global packet
    /// index `index` (as [`FlowTable::set_packet_index`]) and capture time `ts` with the same
    /// effects as [`FlowTable::process`], when its flow is held and not idle past its timeout,
    /// the segment has ACK but no SYN, FIN or RST, its ACK is exactly the peer's next byte (or
    /// the peer has not started) and its payload is the next expected bytes, all captured, with
    /// nothing buffered (or it has none, at the next byte). Returns false, having changed
    /// nothing, for any other packet: the caller then hands it to `process`.
    #[inline]
    pub fn process_lane(
        &mut self,
        index: u64,
        ts: Timestamp,
        f: &CommonFrame<'_>,
        sink: &mut impl FlowSink<S>,
    ) -> bool {
        match self.lane(index, ts, f, sink) {
            Lane::Declined => false,
            Lane::Done => true,
            Lane::Settle(idx) => {
                self.lane_settle(idx, sink);
                true
            }
        }
    }

    /// [`FlowTable::process_lane`] up to the memory accounting: when the packet's flow holds
    /// other buffers than before or the total is over the budget, answers
    /// [`Lane::Settle`], and the caller must call [`FlowTable::lane_settle`] with that flow
    /// (`sink` is only used for the chunk and the parser's memory, so that the caller's sink
    /// need not live in memory on the common path).
    #[inline(always)]
    pub fn lane(
        &mut self,
        index: u64,
        ts: Timestamp,
        f: &CommonFrame<'_>,
        sink: &mut impl FlowSink<S>,
    ) -> Lane {
        let fl = f.flags();
        if fl & (TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST | TcpFlags::ACK) != TcpFlags::ACK {
            return Lane::Declined;
        }
        let (addrs, ports) = f.wire_words();
        let place = lane_place(addrs, ports);
        let (back_addrs, back_ports) = lane_swap(addrs, ports);
        // An empty entry's tag is `NIL` (flipped or not, slot `NIL >> 1`, which no table
        // holds): a packet with its words (all zero) goes on to `lane_hit`, which declines it.
        let tag = match self.lane.get(place) {
            Some(e) if e.addrs == addrs && e.ports == ports => e.tag,
            // Filled by the other direction: the other direction index.
            Some(e) if e.addrs == back_addrs && e.ports == back_ports => e.tag ^ 1,
            _ => match self.lane_fill(place, addrs, ports) {
                Some(t) => t,
                None => return Lane::Declined,
            },
        };
        // One copy of the rest per direction, the direction's choices made at compile time.
        if tag & 1 == 0 {
            self.lane_hit::<true>(tag >> 1, index, ts, f, sink)
        } else {
            self.lane_hit::<false>(tag >> 1, index, ts, f, sink)
        }
    }

    /// The memory accounting of a lane packet that [`FlowTable::lane`] left to the caller
    /// ([`Lane::Settle`]): what `process` does after the segment.
    #[inline(never)]
    pub fn lane_settle(&mut self, idx: u32, sink: &mut impl FlowSink<S>) {
        self.account(idx, sink);
        self.enforce_budget(sink);
    }

    /// [`FlowTable::lane`] once the packet's flow is found: the flow in slot `idx`, the packet
    /// travelling to the server when `TO_SERVER`.
    #[inline(always)]
    fn lane_hit<const TO_SERVER: bool>(
        &mut self,
        idx: u32,
        index: u64,
        ts: Timestamp,
        f: &CommonFrame<'_>,
        sink: &mut impl FlowSink<S>,
    ) -> Lane {
        let to_server = TO_SERVER;
        let [short_t, long_t] = self.lane_timeouts;
        let keep = self.lim.max_retained_bytes;
        let Some(slot) = self.slots.get_mut(idx as usize) else {
            return Lane::Declined;
        };
        let list = usize::from(slot.list);
        let timeout = if list & LONG != 0 { long_t } else { short_t };
        let held = slot.mem;
        let Some(flow) = slot.flow.as_mut() else {
            return Lane::Declined;
        };
        let last = flow.meta.last_seen;
        // `last_seen.plus_secs(timeout) < ts`, the timeout already a saturated i64 (never
        // negative): an add that overflows (never on real times) takes the branch that
        // `plus_secs` saturates, instead of a saturating add's selects on every packet.
        let idle = match last.secs.checked_add(timeout) {
            Some(at) => at < ts.secs || (at == ts.secs && last.nanos < ts.nanos),
            None => ts.secs == i64::MAX && last.nanos < ts.nanos,
        };
        if idle {
            return Lane::Declined;
        }
        let Flow { meta, tcp, .. } = flow;
        let [rx_s, rx_c] = &mut tcp.rx;
        let (rx, back) = if to_server {
            (rx_s, rx_c)
        } else {
            (rx_c, rx_s)
        };
        let payload = f.payload;
        if !back.lane_ack_ok(f.ack()) || !rx.lane_ok(f.seq(), payload, f.payload_len) {
            return Lane::Declined;
        }
        // From here on the packet is the lane's: the same steps as `process`. (Its index only
        // matters to a flow it would create, which a lane packet never does.)
        // `ts > last`, seconds first (the derived order computes an `Ordering` first).
        if ts.secs > last.secs || (ts.secs == last.secs && ts.nanos > last.nanos) {
            meta.last_seen = ts;
        }
        let len = payload.len() as u64;
        let [p0, p1] = &mut meta.packets;
        let [b0, b1] = &mut meta.bytes;
        let (me, peer, p, b, dir, data_bit) = if to_server {
            (
                &mut meta.client,
                &mut meta.server,
                p0,
                b0,
                Direction::ToServer,
                tcpf::DATA_TO_SERVER,
            )
        } else {
            (
                &mut meta.server,
                &mut meta.client,
                p1,
                b1,
                Direction::ToClient,
                tcpf::DATA_TO_CLIENT,
            )
        };
        *p = p.wrapping_add(1);
        *b = b.saturating_add(u32::try_from(len).unwrap_or(u32::MAX));
        if tcp.flags & tcpf::MACS == 0 {
            if me.mac.is_none() {
                me.mac = Some(f.src_mac());
            }
            if peer.mac.is_none() {
                peer.mac = Some(f.dst_mac());
            }
            tcp.flags |= tcpf::MACS;
        }
        back.lane_ack();
        if to_server && tcp.flags & tcpf::SYN_ACK != 0 {
            tcp.flags |= tcpf::ESTABLISHED;
        }
        let data = rx.lane_segment(payload, keep);
        if !data.is_empty() {
            tcp.flags |= data_bit;
        }
        // The recency move before the parser runs (it sees neither the lists nor the clock):
        // less is live across its call.
        let floor = index.saturating_mul(2);
        if floor > self.clock {
            self.clock = floor;
        }
        if list == CONFIRMED | LONG {
            // Confirmed and long before the packet, and the lane neither closes a flow nor
            // takes back payload or progress bits: it stays on that list (what `touch` finds).
            self.touch_on(idx, CONFIRMED | LONG);
        } else {
            self.touch(idx);
        }
        let Some(Flow { meta, app, tcp }) = self
            .slots
            .get_mut(idx as usize)
            .and_then(|s| s.flow.as_mut())
        else {
            return Lane::Done;
        };
        if !data.is_empty() {
            sink.on_chunk(meta, app, dir, Chunk::Data(data));
        }
        // With the flow holding what it held and the total within the budget (it did not
        // change), `account` would only move the flow to the front of the memory list (if it
        // holds anything) and `enforce_budget` would change nothing.
        if held == 0 {
            // Held nothing, so its reassembly buffers were empty, and the lane fills none.
            if sink.app_memory(app) == 0 && self.mem <= self.cfg.memory_budget_bytes {
                return Lane::Done;
            }
        } else if tcp.rx[0].buffer_memory() + tcp.rx[1].buffer_memory() + sink.app_memory(app)
            == held
            && self.mem <= self.cfg.memory_budget_bytes
        {
            self.mem_to_front(idx);
            return Lane::Done;
        }
        Lane::Settle(idx)
    }

    /// Finds the flow of a lane packet (its words as [`lane_words`] makes them) through the map and puts it in the lane at `place`; returns its
    /// lane tag.
    #[inline(never)]
    fn lane_fill(&mut self, place: usize, addrs: u64, ports: u32) -> Option<u32> {
        let ((src, sp), (dst, dp)) = lane_ends(addrs, ports);
        let (mk, src_lo) = MapKey::of_packet((IpAddr::V4(src), sp), (IpAddr::V4(dst), dp), 6, 0);
        let idx = self.map.get(&mk)?;
        if idx >= (NIL >> 1) {
            return None;
        }
        let slot = self.slot(idx)?;
        let to_server = src_lo == slot.client_lo;
        let tag = idx << 1 | u32::from(!to_server);
        if let Some(e) = self.lane.get_mut(place) {
            *e = LaneEntry { addrs, ports, tag };
        }
        Some(tag)
    }

    /// Clears the lane entry of the flow in slot `idx`, whose key is `key`.
    fn lane_clear(&mut self, idx: u32, key: &FlowKey) {
        let (IpAddr::V4(a), IpAddr::V4(b)) = (key.lo.0, key.hi.0) else {
            return;
        };
        if key.proto != 6 || key.vlan != 0 {
            return;
        }
        // Either direction's words give the flow's place.
        let (addrs, ports) = lane_words((a, key.lo.1), (b, key.hi.1));
        if let Some(e) = self.lane.get_mut(lane_place(addrs, ports)) {
            if e.tag != NIL && e.tag >> 1 == idx {
                *e = LaneEntry::EMPTY;
            }
        }
    }

    /// Makes room for and inserts the new flow of a packet whose key `mk` is not held.
    #[inline(never)]
    fn create(
        &mut self,
        pkt: &FlowPacket<'_>,
        mk: MapKey,
        src_lo: bool,
        new_state: impl FnOnce() -> S,
        sink: &mut impl FlowSink<S>,
    ) -> u32 {
        if self.len >= self.max {
            self.expire(pkt.ts, sink);
        }
        while self.len >= self.max {
            if !self.evict_one(sink) {
                break;
            }
        }
        let proto = match pkt.l4 {
            FlowL4::Tcp(_) => 6,
            FlowL4::Udp(_) => 17,
        };
        let src = (pkt.src.ip, pkt.src.port);
        let dst = (pkt.dst.ip, pkt.dst.port);
        let key = FlowKey::new(src, dst, proto, pkt.vlan.unwrap_or(0));
        let (flow, src_is_client) = self.new_flow(key, pkt, new_state());
        // With both endpoints alike every packet goes to the server.
        let client_lo = src == dst || src_is_client == src_lo;
        self.insert(mk, flow, client_lo)
    }

    /// Ends every flow idle for longer than its timeout at capture time `now`.
    pub fn expire(&mut self, now: Timestamp, sink: &mut impl FlowSink<S>) {
        loop {
            let mut best: Option<(u64, u32)> = None;
            for (l, ends) in self.lists.iter().enumerate() {
                let t = ends.tail;
                let Some(slot) = self.slots.get(t as usize) else {
                    continue;
                };
                let Some(flow) = &slot.flow else {
                    continue;
                };
                let timeout = if l & LONG != 0 {
                    self.cfg.tcp_idle_timeout_secs
                } else {
                    self.cfg.short_idle_timeout_secs
                };
                if flow.meta.last_seen.plus_secs(timeout) < now
                    && best.is_none_or(|(st, _)| slot.stamp < st)
                {
                    best = Some((slot.stamp, t));
                }
            }
            let Some((_, idx)) = best else {
                return;
            };
            let reason = self.idle_reason(idx);
            self.end(idx, reason, sink);
        }
    }

    /// Ends every flow (end of capture), delivering buffered data first, in order of flow id.
    pub fn drain(&mut self, sink: &mut impl FlowSink<S>) {
        // Slot numbers only (4 bytes a flow, allocated once): this runs with every flow held.
        let mut all: Vec<u32> = Vec::with_capacity(self.len);
        all.extend(
            self.slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.flow.is_some())
                .map(|(i, _)| i as u32),
        );
        let id = |i: &u32| {
            self.slots
                .get(*i as usize)
                .and_then(|s| s.flow.as_ref())
                .map_or(0, |f| f.meta.id)
        };
        // Ids are unique, so the order is total (as sorting (id, slot) pairs was).
        all.sort_unstable_by_key(id);
        for idx in all {
            self.end(idx, EndReason::EndOfCapture, sink);
        }
    }

    fn slot(&self, idx: u32) -> Option<&Slot<S>> {
        self.slots.get(idx as usize)
    }

    fn slot_mut(&mut self, idx: u32) -> Option<&mut Slot<S>> {
        self.slots.get_mut(idx as usize)
    }

    /// Timeout of a flow, seconds.
    /// Timeout of a flow on LRU list `list`, seconds. A flow's list is set after each of its
    /// packets from its state (`touch`), and its state changes only with its packets, so the
    /// list's long-timeout bit is [`FlowTable::long`] of the flow.
    fn timeout(&self, list: u8) -> u64 {
        if usize::from(list) & LONG != 0 {
            self.cfg.tcp_idle_timeout_secs
        } else {
            self.cfg.short_idle_timeout_secs
        }
    }

    fn long(flow: &Flow<S>) -> bool {
        flow.meta.key.proto == 6 && flow.tcp.established() && !flow.tcp.closed()
    }

    fn confirmed(flow: &Flow<S>) -> bool {
        flow.meta.bytes[0] > 0 && flow.meta.bytes[1] > 0 && !flow.tcp.closed()
    }

    fn idle_reason(&self, idx: u32) -> EndReason {
        match self.slot(idx).and_then(|s| s.flow.as_ref()) {
            Some(f) if f.tcp.closed() => EndReason::Closed,
            _ => EndReason::IdleTimeout,
        }
    }

    /// Whether the held flow of this packet's key must end before the packet is handled: idle
    /// past its timeout, or a new connection (a new SYN) on a closed or closing one.
    fn stale(&self, idx: u32, pkt: &FlowPacket<'_>, src_lo: bool) -> Option<EndReason> {
        let slot = self.slot(idx)?;
        let flow = slot.flow.as_ref()?;
        debug_assert_eq!(usize::from(slot.list) & LONG != 0, Self::long(flow));
        if flow.meta.last_seen.plus_secs(self.timeout(slot.list)) < pkt.ts {
            return Some(if flow.tcp.closed() {
                EndReason::Closed
            } else {
                EndReason::IdleTimeout
            });
        }
        if let FlowL4::Tcp(seg) = pkt.l4 {
            if seg.flags.has(TcpFlags::SYN) && !seg.flags.has(TcpFlags::ACK) && flow.tcp.finishing()
            {
                let from_client = src_lo == slot.client_lo;
                let isn = flow.tcp.reassembler(Direction::ToServer).isn();
                if !(from_client && isn == Some(seg.seq)) {
                    return Some(EndReason::Closed);
                }
            }
        }
        None
    }

    /// A new flow for `pkt`, and whether its sender is the client.
    fn new_flow(&mut self, key: FlowKey, pkt: &FlowPacket<'_>, app: S) -> (Flow<S>, bool) {
        let (src_is_client, side_source) = match pkt.l4 {
            FlowL4::Tcp(seg) if seg.flags.has(TcpFlags::SYN) => {
                (!seg.flags.has(TcpFlags::ACK), SideSource::Handshake)
            }
            _ => (
                !port_is_server(pkt.src.port, pkt.dst.port),
                SideSource::Port,
            ),
        };
        let (client, server) = if src_is_client {
            (pkt.src, pkt.dst)
        } else {
            (pkt.dst, pkt.src)
        };
        let id = match self.pkt_index {
            Some(i) => i,
            None => {
                self.next_id += 1;
                self.next_id - 1
            }
        };
        self.stats.created += 1;
        let flow = Flow {
            meta: FlowMeta {
                id,
                key,
                client,
                server,
                side_source,
                first_seen: pkt.ts,
                last_seen: pkt.ts,
                packets: [0; 2],
                bytes: [0; 2],
                vlan: pkt.vlan,
            },
            app,
            tcp: TcpState::default(),
        };
        (flow, src_is_client)
    }

    /// Puts a flow in a slot, the map and the head of its LRU list.
    fn insert(&mut self, key: MapKey, flow: Flow<S>, client_lo: bool) -> u32 {
        let idx = if self.free != NIL {
            let idx = self.free;
            if let Some(slot) = self.slot_mut(idx) {
                let next = slot.next;
                slot.flow = Some(flow);
                slot.client_lo = client_lo;
                self.free = next;
            }
            idx
        } else {
            self.slots.push(Slot {
                flow: Some(flow),
                client_lo,
                prev: NIL,
                next: NIL,
                list: 0,
                stamp: 0,
                mem: 0,
                mprev: NIL,
                mnext: NIL,
            });
            (self.slots.len() - 1) as u32
        };
        self.map.insert(key, idx);
        self.len += 1;
        self.stats.peak = self.stats.peak.max(self.len as u64);
        self.link_front(idx, 0);
        idx
    }

    fn link_front(&mut self, idx: u32, list: usize) {
        self.clock += 1;
        let clock = self.clock;
        let Some(ends) = self.lists.get(list).copied() else {
            return;
        };
        if let Some(slot) = self.slot_mut(idx) {
            slot.prev = NIL;
            slot.next = ends.head;
            slot.list = list as u8;
            slot.stamp = clock;
        }
        if let Some(old) = self.slot_mut(ends.head) {
            old.prev = idx;
        }
        if let Some(e) = self.lists.get_mut(list) {
            e.head = idx;
            if e.tail == NIL {
                e.tail = idx;
            }
        }
    }

    fn unlink(&mut self, idx: u32) {
        let Some(slot) = self.slot(idx) else {
            return;
        };
        let (prev, next, list) = (slot.prev, slot.next, slot.list as usize);
        match self.slot_mut(prev) {
            Some(p) => p.next = next,
            None => {
                if let Some(e) = self.lists.get_mut(list) {
                    e.head = next;
                }
            }
        }
        match self.slot_mut(next) {
            Some(n) => n.prev = prev,
            None => {
                if let Some(e) = self.lists.get_mut(list) {
                    e.tail = prev;
                }
            }
        }
    }

    /// [`FlowTable::touch`] of a flow already on list `list`, which its state still belongs to.
    #[inline(always)]
    fn touch_on(&mut self, idx: u32, list: usize) {
        self.clock += 1;
        let clock = self.clock;
        let Some(ends) = self.lists.get(list).copied() else {
            return;
        };
        if ends.head == idx {
            if let Some(slot) = self.slot_mut(idx) {
                slot.stamp = clock;
            }
            return;
        }
        // Not the head, so it has a previous flow on the list.
        let Some(slot) = self.slot_mut(idx) else {
            return;
        };
        let (prev, next) = (slot.prev, slot.next);
        slot.prev = NIL;
        slot.next = ends.head;
        slot.stamp = clock;
        if let Some(p) = self.slot_mut(prev) {
            p.next = next;
        }
        let mut tail = ends.tail;
        match self.slot_mut(next) {
            Some(n) => n.prev = prev,
            None => tail = prev,
        }
        if let Some(old) = self.slot_mut(ends.head) {
            old.prev = idx;
        }
        if let Some(e) = self.lists.get_mut(list) {
            e.head = idx;
            e.tail = tail;
        }
    }

    /// Moves a flow to the head of the list its state belongs to.
    fn touch(&mut self, idx: u32) {
        let Some(slot) = self.slot(idx) else {
            return;
        };
        let Some(flow) = slot.flow.as_ref() else {
            return;
        };
        let list = (if Self::confirmed(flow) { CONFIRMED } else { 0 })
            | (if Self::long(flow) { LONG } else { 0 });
        let at_head =
            usize::from(slot.list) == list && self.lists.get(list).is_some_and(|e| e.head == idx);
        if at_head {
            // Already first on its list: only the stamp moves (what unlink + link_front do).
            self.clock += 1;
            let clock = self.clock;
            if let Some(slot) = self.slot_mut(idx) {
                slot.stamp = clock;
            }
            return;
        }
        self.unlink(idx);
        self.link_front(idx, list);
    }

    /// Buffer bytes (reassembly out-of-order buffers and parser buffers) held by all flows.
    pub fn memory(&self) -> usize {
        self.mem
    }

    /// Re-measures the buffers of a flow after a packet, keeping the total and the memory list.
    fn account(&mut self, idx: u32, sink: &impl FlowSink<S>) {
        let Some(flow) = self.slot(idx).and_then(|s| s.flow.as_ref()) else {
            return;
        };
        let m = flow.tcp.rx[0].buffer_memory()
            + flow.tcp.rx[1].buffer_memory()
            + sink.app_memory(&flow.app);
        if m == 0 && self.slot(idx).is_some_and(|s| s.mem == 0) {
            // Held nothing and holds nothing: not on the memory list, nothing to change.
            return;
        }
        self.mem_unlink(idx);
        if let Some(slot) = self.slot_mut(idx) {
            slot.mem = m;
        }
        if m > 0 {
            self.mem_link_front(idx);
        }
    }

    /// Moves a flow on the memory list to its front (what `mem_unlink` and `mem_link_front`
    /// do for a flow whose memory did not change).
    fn mem_to_front(&mut self, idx: u32) {
        let head = self.mem_list.head;
        if head == idx {
            return;
        }
        let Some(slot) = self.slot_mut(idx) else {
            return;
        };
        let (prev, next) = (slot.mprev, slot.mnext);
        slot.mprev = NIL;
        slot.mnext = head;
        if let Some(p) = self.slot_mut(prev) {
            p.mnext = next;
        }
        match self.slot_mut(next) {
            Some(n) => n.mprev = prev,
            None => self.mem_list.tail = prev,
        }
        if let Some(old) = self.slot_mut(head) {
            old.mprev = idx;
        }
        self.mem_list.head = idx;
    }

    fn mem_unlink(&mut self, idx: u32) {
        let Some(slot) = self.slot(idx) else {
            return;
        };
        if slot.mem == 0 {
            return;
        }
        let (prev, next, m) = (slot.mprev, slot.mnext, slot.mem);
        match self.slot_mut(prev) {
            Some(p) => p.mnext = next,
            None => self.mem_list.head = next,
        }
        match self.slot_mut(next) {
            Some(n) => n.mprev = prev,
            None => self.mem_list.tail = prev,
        }
        if let Some(slot) = self.slot_mut(idx) {
            slot.mem = 0;
            slot.mprev = NIL;
            slot.mnext = NIL;
        }
        self.mem = self.mem.saturating_sub(m);
    }

    /// Links a flow whose `mem` is set and non-zero at the head of the memory list.
    fn mem_link_front(&mut self, idx: u32) {
        let head = self.mem_list.head;
        let Some(slot) = self.slot_mut(idx) else {
            return;
        };
        slot.mprev = NIL;
        slot.mnext = head;
        let m = slot.mem;
        if let Some(old) = self.slot_mut(head) {
            old.mprev = idx;
        }
        self.mem_list.head = idx;
        if self.mem_list.tail == NIL {
            self.mem_list.tail = idx;
        }
        self.mem = self.mem.saturating_add(m);
    }

    /// While over the memory budget, the least recently seen flow holding buffers gives them up:
    /// its reassembly holes become gaps (the data after them is delivered) and its parser drops
    /// partial messages.
    fn enforce_budget(&mut self, sink: &mut impl FlowSink<S>) {
        if self.mem <= self.cfg.memory_budget_bytes {
            self.stats.memory_peak = self.stats.memory_peak.max(self.mem as u64);
            return;
        }
        let mut tries = self.len;
        while self.mem > self.cfg.memory_budget_bytes && tries > 0 {
            tries -= 1;
            let idx = self.mem_list.tail;
            let Some(slot) = self.slot(idx) else {
                break;
            };
            let held = slot.mem;
            self.mem_unlink(idx);
            let lim = self.lim;
            let Some(flow) = self
                .slots
                .get_mut(idx as usize)
                .and_then(|s| s.flow.as_mut())
            else {
                break;
            };
            for dir in [Direction::ToServer, Direction::ToClient] {
                let Flow { meta, app, tcp } = &mut *flow;
                tcp.rx_mut(dir)
                    .give_up_buffers(&lim, &mut self.stats, &mut |c| {
                        sink.on_chunk(meta, app, dir, c)
                    });
            }
            sink.on_budget_drop(&flow.meta, &mut flow.app);
            self.stats.budget_drops += 1;
            self.stats.budget_drop_bytes += held as u64;
            // Whatever is left (normally nothing) is accounted again, off the list's tail.
            let m = flow.tcp.rx[0].buffer_memory()
                + flow.tcp.rx[1].buffer_memory()
                + sink.app_memory(&flow.app);
            if m > 0 {
                if let Some(slot) = self.slot_mut(idx) {
                    slot.mem = m;
                }
                self.mem_link_front(idx);
            }
        }
        self.stats.memory_peak = self.stats.memory_peak.max(self.mem as u64);
    }

    /// Takes a flow out of the table.
    fn remove(&mut self, idx: u32) -> Option<Flow<S>> {
        self.mem_unlink(idx);
        self.unlink(idx);
        let free = self.free;
        let slot = self.slot_mut(idx)?;
        let flow = slot.flow.take()?;
        slot.next = free;
        slot.prev = NIL;
        self.free = idx;
        let mk = MapKey::of(&flow.meta.key);
        if let Some(e) = self.cache.get_mut(cache_place(&mk)) {
            if e.1 == idx {
                e.1 = NIL;
            }
        }
        self.map.remove(&mk);
        self.lane_clear(idx, &flow.meta.key);
        self.len -= 1;
        Some(flow)
    }

    /// Ends a flow: flushes its reassemblers, counts, and hands it to the sink.
    fn end(&mut self, idx: u32, reason: EndReason, sink: &mut impl FlowSink<S>) {
        if let Some(slot) = self.slot(idx) {
            if let Some(f) = &slot.flow {
                sink.on_ending(&f.meta, slot.stamp);
            }
        }
        let Some(mut flow) = self.remove(idx) else {
            return;
        };
        match reason {
            EndReason::IdleTimeout => self.stats.timed_out += 1,
            EndReason::Evicted => self.stats.evicted += 1,
            EndReason::Closed => self.stats.closed += 1,
            EndReason::EndOfCapture => self.stats.ended_at_eof += 1,
        }
        if flow.meta.key.proto == 6 {
            for dir in [Direction::ToServer, Direction::ToClient] {
                let Flow { meta, app, tcp } = &mut flow;
                tcp.rx_mut(dir).flush(&self.lim, &mut self.stats, &mut |c| {
                    sink.on_chunk(meta, app, dir, c)
                });
            }
        }
        sink.on_end(flow, reason);
    }

    /// Evicts the least recently seen unconfirmed flow, or else the least recently seen flow.
    fn evict_one(&mut self, sink: &mut impl FlowSink<S>) -> bool {
        for group in [[0, LONG], [CONFIRMED, CONFIRMED | LONG]] {
            let best = group
                .iter()
                .filter_map(|&l| {
                    let t = self.lists.get(l)?.tail;
                    Some((self.slot(t)?.stamp, t))
                })
                .min();
            if let Some((_, idx)) = best {
                self.end(idx, EndReason::Evicted, sink);
                return true;
            }
        }
        false
    }
}

/// True when the source port, not the destination port, is the server's.
fn port_is_server(src: u16, dst: u16) -> bool {
    let (s, d) = (SERVER_PORTS.contains(&src), SERVER_PORTS.contains(&dst));
    match (s, d) {
        (true, false) => true,
        (false, true) | (true, true) => false,
        (false, false) => src < dst,
    }
}

/// One TCP segment of a held flow travelling in `dir`.
fn tcp_segment<S>(
    flow: &mut Flow<S>,
    dir: Direction,
    seg: &TcpSegment<'_>,
    lim: &ReassemblyLimits,
    stats: &mut FlowStats,
    sink: &mut impl FlowSink<S>,
) {
    let Flow { meta, app, tcp } = flow;
    let meta = &*meta;
    let f = seg.flags;
    // The ACK is about the other direction's bytes: deliver what it settles first.
    if f.has(TcpFlags::ACK) {
        let back = dir.reverse();
        tcp.rx_mut(back).ack(seg.ack, lim, stats, &mut |c| {
            sink.on_chunk(meta, app, back, c)
        });
    }
    let mut data_seq = seg.seq;
    if f.has(TcpFlags::SYN) {
        data_seq = seg.seq.wrapping_add(1);
        if tcp.rx_mut(dir).syn(seg.seq) == SynKind::Conflict {
            stats.syn_conflicts += 1;
        }
        tcp.flags |= match (dir, f.has(TcpFlags::ACK)) {
            (Direction::ToServer, false) => tcpf::SYN,
            (Direction::ToClient, true) => tcpf::SYN_ACK,
            _ => 0,
        };
    } else if f.has(TcpFlags::ACK) && dir == Direction::ToServer && tcp.has(tcpf::SYN_ACK) {
        tcp.flags |= tcpf::ESTABLISHED;
    }
    let (fin_bit, data_bit) = match dir {
        Direction::ToServer => (tcpf::FIN_TO_SERVER, tcpf::DATA_TO_SERVER),
        Direction::ToClient => (tcpf::FIN_TO_CLIENT, tcpf::DATA_TO_CLIENT),
    };
    if seg.payload_len > 0 || !seg.payload.is_empty() {
        tcp.flags |= data_bit;
    }
    let emit = &mut |c: Chunk<'_>| sink.on_chunk(meta, app, dir, c);
    if f.has(TcpFlags::RST) {
        tcp.flags |= tcpf::RST;
        tcp.rx_mut(dir).rst(lim, stats, emit);
        return;
    }
    let fin = f.has(TcpFlags::FIN);
    if fin {
        tcp.flags |= fin_bit;
    }
    tcp.rx_mut(dir).segment(
        data_seq,
        seg.payload,
        seg.payload_len,
        fin,
        lim,
        stats,
        emit,
    );
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
    use rstest::rstest;
    use std::net::Ipv4Addr;

    const SYN: u8 = TcpFlags::SYN;
    const ACK: u8 = TcpFlags::ACK;
    const FIN: u8 = TcpFlags::FIN;
    const RST: u8 = TcpFlags::RST;
    const PSH: u8 = TcpFlags::PSH;

    /// One delivered item, owned.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Ev {
        Data(Vec<u8>),
        Gap(u64),
        Fin,
        Rst,
    }

    /// Everything a table produced, in order.
    #[derive(Default, Debug, PartialEq, Eq)]
    struct Rec {
        /// (flow id, direction, item), data of consecutive calls merged.
        chunks: Vec<(u64, Direction, Ev)>,
        /// (flow id, direction, payload).
        datagrams: Vec<(u64, Direction, Vec<u8>)>,
        /// (flow id, reason, packets, bytes).
        ends: Vec<(u64, EndReason, [u32; 2], [u32; 2])>,
    }

    impl Rec {
        /// The items of one direction of one flow.
        fn stream(&self, id: u64, dir: Direction) -> Vec<Ev> {
            let mut out: Vec<Ev> = Vec::new();
            for (i, d, ev) in &self.chunks {
                if (*i, *d) != (id, dir) {
                    continue;
                }
                match (out.last_mut(), ev) {
                    (Some(Ev::Data(v)), Ev::Data(b)) => v.extend_from_slice(b),
                    _ => out.push(ev.clone()),
                }
            }
            out
        }
        fn end_ids(&self) -> Vec<(u64, EndReason)> {
            self.ends.iter().map(|e| (e.0, e.1)).collect()
        }
    }

    impl FlowSink<u32> for Rec {
        fn on_chunk(&mut self, meta: &FlowMeta, app: &mut u32, dir: Direction, c: Chunk<'_>) {
            *app += 1;
            let ev = match c {
                Chunk::Data(b) => Ev::Data(b.to_vec()),
                Chunk::Gap(n) => Ev::Gap(n),
                Chunk::Fin => Ev::Fin,
                Chunk::Rst => Ev::Rst,
            };
            self.chunks.push((meta.id, dir, ev));
        }
        fn on_datagram(&mut self, meta: &FlowMeta, app: &mut u32, dir: Direction, p: &[u8]) {
            *app += 1;
            self.datagrams.push((meta.id, dir, p.to_vec()));
        }
        fn on_end(&mut self, flow: Flow<u32>, reason: EndReason) {
            self.ends
                .push((flow.meta.id, reason, flow.meta.packets, flow.meta.bytes));
        }
    }

    fn ep(host: u8, port: u16) -> Endpoint {
        Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, host)),
            port,
            mac: None,
        }
    }

    fn ts(secs: i64) -> Timestamp {
        Timestamp::new(secs, 0)
    }

    fn tcp<'a>(
        t: i64,
        src: Endpoint,
        dst: Endpoint,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &'a [u8],
    ) -> FlowPacket<'a> {
        FlowPacket {
            ts: ts(t),
            src,
            dst,
            vlan: None,
            l4: FlowL4::Tcp(TcpSegment {
                src_port: src.port,
                dst_port: dst.port,
                seq,
                ack,
                flags: TcpFlags(flags),
                window: 1024,
                payload,
                payload_len: payload.len() as u32,
            }),
        }
    }

    fn udp<'a>(t: i64, src: Endpoint, dst: Endpoint, payload: &'a [u8]) -> FlowPacket<'a> {
        FlowPacket {
            ts: ts(t),
            src,
            dst,
            vlan: None,
            l4: FlowL4::Udp(payload),
        }
    }

    fn table(cfg: FlowConfig) -> FlowTable<u32> {
        FlowTable::new(cfg)
    }

    fn feed(t: &mut FlowTable<u32>, rec: &mut Rec, pkts: &[FlowPacket<'_>]) {
        for p in pkts {
            t.process(p, || 0, rec);
        }
    }

    fn key(a: Endpoint, b: Endpoint, proto: u8) -> FlowKey {
        FlowKey::new((a.ip, a.port), (b.ip, b.port), proto, 0)
    }

    /// A full Modbus-like exchange: handshake, request, response, close.
    fn session(
        t0: i64,
        c: Endpoint,
        s: Endpoint,
        isn_c: u32,
        isn_s: u32,
    ) -> Vec<FlowPacket<'static>> {
        let (c1, s1) = (isn_c.wrapping_add(1), isn_s.wrapping_add(1));
        vec![
            tcp(t0, c, s, isn_c, 0, SYN, b""),
            tcp(t0, s, c, isn_s, c1, SYN | ACK, b""),
            tcp(t0, c, s, c1, s1, ACK, b""),
            tcp(t0 + 1, c, s, c1, s1, PSH | ACK, b"req"),
            tcp(t0 + 1, s, c, s1, c1.wrapping_add(3), PSH | ACK, b"resp"),
            tcp(
                t0 + 2,
                c,
                s,
                c1.wrapping_add(3),
                s1.wrapping_add(4),
                FIN | ACK,
                b"",
            ),
            tcp(
                t0 + 2,
                s,
                c,
                s1.wrapping_add(4),
                c1.wrapping_add(4),
                FIN | ACK,
                b"",
            ),
            tcp(
                t0 + 2,
                c,
                s,
                c1.wrapping_add(4),
                s1.wrapping_add(5),
                ACK,
                b"",
            ),
        ]
    }

    #[test]
    fn handshake_decides_sides_and_streams_both_ways() {
        let (c, s) = (ep(1, 40000), ep(2, 502));
        let mut t = table(FlowConfig::default());
        let mut rec = Rec::default();
        feed(&mut t, &mut rec, &session(10, c, s, 1000, u32::MAX - 1));
        let f = t.get(&key(c, s, 6)).unwrap();
        assert_eq!(f.meta.client, c);
        assert_eq!(f.meta.server, s);
        assert_eq!(f.meta.side_source, SideSource::Handshake);
        assert_eq!(f.meta.packets, [5, 3]);
        assert_eq!(f.meta.bytes, [3, 4]);
        assert_eq!((f.meta.first_seen, f.meta.last_seen), (ts(10), ts(12)));
        assert!(f.tcp.established() && f.tcp.closed());
        assert_eq!(f.app, 4, "app state reached by every chunk");
        assert_eq!(
            rec.stream(1, Direction::ToServer),
            vec![Ev::Data(b"req".to_vec()), Ev::Fin]
        );
        assert_eq!(
            rec.stream(1, Direction::ToClient),
            vec![Ev::Data(b"resp".to_vec()), Ev::Fin]
        );
        t.drain(&mut rec);
        assert_eq!(rec.end_ids(), vec![(1, EndReason::EndOfCapture)]);
        assert_eq!(t.stats().ended_at_eof, 1);
        assert!(t.is_empty());
    }

    #[test]
    fn syn_ack_first_makes_its_sender_the_server() {
        let (c, s) = (ep(1, 40000), ep(2, 9999));
        let mut t = table(FlowConfig::default());
        let mut rec = Rec::default();
        feed(&mut t, &mut rec, &[tcp(1, s, c, 5, 101, SYN | ACK, b"")]);
        let f = t.get(&key(c, s, 6)).unwrap();
        assert_eq!((f.meta.client, f.meta.server), (c, s));
        assert_eq!(f.meta.side_source, SideSource::Handshake);
        assert_eq!(f.meta.packets, [0, 1]);
    }

    #[rstest]
    #[case::modbus_server_sends(502, 40000, true)]
    #[case::modbus_client_sends(40000, 502, false)]
    #[case::opcua_above_client_port(4840, 1025, true)]
    #[case::lower_port_wins(50000, 40000, false)]
    #[case::lower_port_is_src(40000, 50000, true)]
    #[case::tie_is_dst(47808, 47808, false)]
    #[case::both_well_known_dst(502, 102, false)]
    fn port_rule(#[case] src: u16, #[case] dst: u16, #[case] src_is_server: bool) {
        assert_eq!(port_is_server(src, dst), src_is_server);
    }

    #[test]
    fn mid_stream_sides_by_port() {
        let (plc, hmi) = (ep(2, 502), ep(1, 1024));
        let mut t = table(FlowConfig::default());
        let mut rec = Rec::default();
        // The capture starts with a response from the PLC.
        feed(
            &mut t,
            &mut rec,
            &[
                tcp(1, plc, hmi, 7000, 100, PSH | ACK, b"resp"),
                tcp(2, hmi, plc, 100, 7004, PSH | ACK, b"req"),
            ],
        );
        let f = t.get(&key(plc, hmi, 6)).unwrap();
        assert_eq!((f.meta.client, f.meta.server), (hmi, plc));
        assert_eq!(f.meta.side_source, SideSource::Port);
        assert!(f.tcp.established());
        assert_eq!(
            rec.stream(1, Direction::ToClient),
            vec![Ev::Data(b"resp".to_vec())]
        );
        assert_eq!(
            rec.stream(1, Direction::ToServer),
            vec![Ev::Data(b"req".to_vec())]
        );
    }

    #[test]
    fn udp_datagrams_and_short_timeout() {
        let (a, b) = (ep(1, 47808), ep(2, 47808));
        let mut t = table(FlowConfig::default());
        let mut rec = Rec::default();
        feed(
            &mut t,
            &mut rec,
            &[udp(0, a, b, b"who-is"), udp(1, b, a, b"i-am")],
        );
        assert_eq!(
            rec.datagrams,
            vec![
                (1, Direction::ToServer, b"who-is".to_vec()),
                (1, Direction::ToClient, b"i-am".to_vec())
            ]
        );
        t.expire(ts(31), &mut rec);
        assert_eq!(t.len(), 1, "30 s idle is not more than 30 s");
        t.expire(ts(32), &mut rec);
        assert_eq!(rec.end_ids(), vec![(1, EndReason::IdleTimeout)]);
        assert_eq!(rec.ends[0].2, [1, 1]);
        assert_eq!(t.stats().timed_out, 1);
    }

    #[test]
    fn idle_timeouts_by_state() {
        let cfg = FlowConfig {
            tcp_idle_timeout_secs: 100,
            short_idle_timeout_secs: 10,
            ..FlowConfig::default()
        };
        let mut t = table(cfg);
        let mut rec = Rec::default();
        let (c, s) = (ep(1, 40000), ep(2, 502));
        // Flow 1: established, open. Flow 2: a lone SYN. Flow 3: closed.
        let mut p = session(0, c, s, 1, 1);
        p.truncate(5);
        feed(&mut t, &mut rec, &p);
        feed(&mut t, &mut rec, &[tcp(1, ep(3, 40001), s, 9, 0, SYN, b"")]);
        feed(&mut t, &mut rec, &session(1, ep(4, 40002), s, 1, 1));
        t.expire(ts(12), &mut rec);
        assert_eq!(rec.end_ids(), vec![(2, EndReason::IdleTimeout)]);
        t.expire(ts(14), &mut rec);
        assert_eq!(
            rec.end_ids(),
            vec![(2, EndReason::IdleTimeout), (3, EndReason::Closed)]
        );
        t.expire(ts(101), &mut rec);
        assert_eq!(t.len(), 1);
        t.expire(ts(102), &mut rec);
        assert!(t.is_empty());
        assert_eq!(rec.ends[2].1, EndReason::IdleTimeout);
        assert_eq!((t.stats().timed_out, t.stats().closed), (2, 1));
    }

    #[test]
    fn a_packet_after_the_timeout_starts_a_new_flow() {
        let (a, b) = (ep(1, 5000), ep(2, 161));
        let mut t = table(FlowConfig::default());
        let mut rec = Rec::default();
        feed(
            &mut t,
            &mut rec,
            &[udp(0, a, b, b"get"), udp(100, a, b, b"get")],
        );
        assert_eq!(rec.end_ids(), vec![(1, EndReason::IdleTimeout)]);
        assert_eq!(t.get(&key(a, b, 17)).unwrap().meta.id, 2);
    }

    #[test]
    fn plant_flow_survives_a_flood_of_one_packet_flows() {
        let cfg = FlowConfig {
            max_flows: 4,
            ..FlowConfig::default()
        };
        let mut t = table(cfg);
        let mut rec = Rec::default();
        let (hmi, plc) = (ep(1, 40000), ep(2, 502));
        let mut p = session(0, hmi, plc, 1, 1);
        p.truncate(5); // handshake, request, response: confirmed
        feed(&mut t, &mut rec, &p);
        // A scan: one SYN each from many ports, all more recent than the plant flow.
        for port in 0..50u16 {
            feed(
                &mut t,
                &mut rec,
                &[tcp(5, ep(9, 1000 + port), plc, 1, 0, SYN, b"")],
            );
        }
        assert_eq!(t.len(), 4);
        assert!(t.get(&key(hmi, plc, 6)).is_some(), "plant flow kept");
        assert_eq!(t.stats().evicted, 47);
        assert_eq!(t.stats().peak, 4);
        // Evicted in LRU order: the oldest scan flows first.
        let evicted: Vec<u64> = rec.ends.iter().map(|e| e.0).collect();
        assert_eq!(evicted, (2..49).collect::<Vec<u64>>());
        assert!(rec.ends.iter().all(|e| e.1 == EndReason::Evicted));
        // With only confirmed flows left, the least recently seen one goes.
        let mut t = table(FlowConfig {
            max_flows: 2,
            ..FlowConfig::default()
        });
        let mut rec = Rec::default();
        for (i, host) in [1u8, 2, 3].into_iter().enumerate() {
            let c = ep(host, 40000);
            let mut p = session(i as i64, c, plc, 1, 1);
            p.truncate(5);
            feed(&mut t, &mut rec, &p);
        }
        assert_eq!(rec.end_ids(), vec![(1, EndReason::Evicted)]);
    }

    #[test]
    fn eviction_flushes_buffered_data_first() {
        let mut t = table(FlowConfig {
            max_flows: 1,
            ..FlowConfig::default()
        });
        let mut rec = Rec::default();
        let (c, s) = (ep(1, 40000), ep(2, 502));
        feed(
            &mut t,
            &mut rec,
            &[
                tcp(0, c, s, 0, 0, SYN, b""),
                tcp(0, c, s, 5, 0, ACK, b"late"), // bytes 1..5 missing
                udp(1, ep(3, 1), ep(4, 2), b"x"),
            ],
        );
        assert_eq!(
            rec.stream(1, Direction::ToServer),
            vec![Ev::Gap(4), Ev::Data(b"late".to_vec())]
        );
        assert_eq!(rec.end_ids(), vec![(1, EndReason::Evicted)]);
        // The chunks came before the end.
        assert_eq!(rec.chunks.len(), 2);
    }

    #[test]
    fn drain_is_by_id_and_output_does_not_depend_on_the_hash_seed() {
        let pkts: Vec<FlowPacket<'static>> = (0..200u16)
            .map(|i| {
                udp(
                    i64::from(i % 7),
                    ep((i % 13) as u8, 1000 + i),
                    ep(200, 502),
                    b"q",
                )
            })
            .chain(
                (0..200u16)
                    .rev()
                    .map(|i| udp(10, ep(200, 502), ep((i % 13) as u8, 1000 + i), b"r")),
            )
            .collect();
        let run = |seed: u64| {
            let mut t: FlowTable<u32> = FlowTable::with_hasher(
                FlowConfig {
                    max_flows: 150,
                    ..FlowConfig::default()
                },
                KeyHashBuilder::with_seeds(seed, seed.rotate_left(17) ^ 0x5555),
            );
            let mut rec = Rec::default();
            feed(&mut t, &mut rec, &pkts);
            t.expire(ts(15), &mut rec);
            t.drain(&mut rec);
            rec
        };
        let a = run(1);
        let b = run(0xdead_beef_cafe_f00d);
        assert_eq!(a, b);
        // Drain order: ascending ids.
        let tail: Vec<u64> = a
            .ends
            .iter()
            .filter(|e| e.1 == EndReason::EndOfCapture)
            .map(|e| e.0)
            .collect();
        assert!(!tail.is_empty());
        assert!(tail.windows(2).all(|w| w[0] < w[1]));
        // Random seeds too.
        let mut t1 = table(FlowConfig::default());
        let mut t2 = table(FlowConfig::default());
        let (mut r1, mut r2) = (Rec::default(), Rec::default());
        feed(&mut t1, &mut r1, &pkts);
        feed(&mut t2, &mut r2, &pkts);
        t1.drain(&mut r1);
        t2.drain(&mut r2);
        assert_eq!(r1, r2);
    }

    #[test]
    fn port_reuse_after_close_starts_a_new_flow() {
        let (c, s) = (ep(1, 40000), ep(2, 502));
        let mut t = table(FlowConfig::default());
        let mut rec = Rec::default();
        feed(&mut t, &mut rec, &session(0, c, s, 1000, 5000));
        // The same SYN again is a retransmission, not a new connection.
        feed(&mut t, &mut rec, &[tcp(3, c, s, 1000, 0, SYN, b"")]);
        assert!(rec.ends.is_empty());
        feed(&mut t, &mut rec, &session(4, c, s, 90_000, 7000));
        assert_eq!(rec.end_ids(), vec![(1, EndReason::Closed)]);
        let f = t.get(&key(c, s, 6)).unwrap();
        assert_eq!(f.meta.id, 2);
        assert_eq!(
            rec.stream(2, Direction::ToServer),
            vec![Ev::Data(b"req".to_vec()), Ev::Fin]
        );
        assert_eq!(t.stats().created, 2);
    }

    #[test]
    fn rst_delivers_a_reset() {
        let (c, s) = (ep(1, 40000), ep(2, 502));
        let mut t = table(FlowConfig::default());
        let mut rec = Rec::default();
        let mut p = session(0, c, s, 1, 1);
        p.truncate(4);
        p.push(tcp(1, s, c, 2, 5, RST | ACK, b""));
        feed(&mut t, &mut rec, &p);
        assert_eq!(
            rec.stream(1, Direction::ToServer),
            vec![Ev::Data(b"req".to_vec())]
        );
        assert_eq!(rec.stream(1, Direction::ToClient), vec![Ev::Rst]);
        assert!(t.get(&key(c, s, 6)).unwrap().tcp.closed());
    }

    #[test]
    fn snaplen_cut_segment_gives_a_gap() {
        let (c, s) = (ep(1, 40000), ep(2, 502));
        let mut t = table(FlowConfig::default());
        let mut rec = Rec::default();
        let mut cut = tcp(0, c, s, 1, 0, SYN, b"");
        feed(&mut t, &mut rec, &[cut]);
        cut = tcp(0, c, s, 2, 0, ACK, b"abc");
        if let FlowL4::Tcp(seg) = &mut cut.l4 {
            seg.payload_len = 10;
        }
        feed(&mut t, &mut rec, &[cut, tcp(0, c, s, 12, 0, ACK, b"next")]);
        assert_eq!(
            rec.stream(1, Direction::ToServer),
            vec![
                Ev::Data(b"abc".to_vec()),
                Ev::Gap(7),
                Ev::Data(b"next".to_vec())
            ]
        );
        assert_eq!(t.get(&key(c, s, 6)).unwrap().meta.bytes, [14, 0]);
        assert_eq!(t.stats().reassembly_gap_bytes, 7);
    }

    #[test]
    fn ack_from_the_peer_gives_up_a_hole() {
        let (c, s) = (ep(1, 40000), ep(2, 502));
        let mut t = table(FlowConfig::default());
        let mut rec = Rec::default();
        let mut p = session(0, c, s, 0, 0);
        p.truncate(3);
        p.push(tcp(1, c, s, 1, 1, ACK, b"aaaa"));
        // 5..9 lost by the capture
        p.push(tcp(1, c, s, 9, 1, ACK, b"cccc"));
        p.push(tcp(1, s, c, 1, 13, ACK, b"ok"));
        feed(&mut t, &mut rec, &p);
        assert_eq!(
            rec.stream(1, Direction::ToServer),
            vec![
                Ev::Data(b"aaaa".to_vec()),
                Ev::Gap(4),
                Ev::Data(b"cccc".to_vec())
            ]
        );
        // The gap came before the response that acknowledged it.
        let last = rec.chunks.last().unwrap();
        assert_eq!((last.0, last.1), (1, Direction::ToClient));
        assert_eq!(t.stats().out_of_order, 1);
    }

    #[test]
    fn cap_forces_a_gap_through_the_table() {
        let (c, s) = (ep(1, 40000), ep(2, 502));
        let mut t = table(FlowConfig {
            max_holes: 1,
            ..FlowConfig::default()
        });
        let mut rec = Rec::default();
        feed(
            &mut t,
            &mut rec,
            &[
                tcp(0, c, s, 0, 0, SYN, b""),
                tcp(0, c, s, 3, 0, ACK, b"c"),
                tcp(0, c, s, 5, 0, ACK, b"e"),
            ],
        );
        assert_eq!(
            rec.stream(1, Direction::ToServer),
            vec![Ev::Gap(2), Ev::Data(b"c".to_vec())]
        );
        assert_eq!(t.stats().reassembly_cap_hits, 1);
    }

    #[test]
    fn sequence_wraparound_through_the_table() {
        let (c, s) = (ep(1, 40000), ep(2, 4840));
        let mut t = table(FlowConfig::default());
        let mut rec = Rec::default();
        feed(&mut t, &mut rec, &session(0, c, s, u32::MAX - 1, u32::MAX));
        assert_eq!(
            rec.stream(1, Direction::ToServer),
            vec![Ev::Data(b"req".to_vec()), Ev::Fin]
        );
        assert_eq!(
            rec.stream(1, Direction::ToClient),
            vec![Ev::Data(b"resp".to_vec()), Ev::Fin]
        );
        assert_eq!(t.stats().reassembly_gaps, 0);
    }

    #[test]
    fn vlans_separate_flows() {
        let (a, b) = (ep(1, 5000), ep(2, 502));
        let mut t = table(FlowConfig::default());
        let mut rec = Rec::default();
        let mut p1 = udp(0, a, b, b"x");
        p1.vlan = Some(10);
        let p2 = udp(0, a, b, b"x");
        feed(&mut t, &mut rec, &[p1, p2]);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn slots_are_reused_and_memory_is_small() {
        let mut t = table(FlowConfig::default());
        let mut rec = Rec::default();
        for i in 0..10u16 {
            t.expire(ts(i64::from(i) * 100), &mut rec);
            feed(
                &mut t,
                &mut rec,
                &[udp(i64::from(i) * 100, ep(1, i), ep(2, 502), b"x")],
            );
        }
        assert_eq!(
            t.slots.len(),
            1,
            "each flow timed out and its slot was reused"
        );
        assert_eq!(t.stats().peak, 1);
        let slot = std::mem::size_of::<Slot<()>>();
        let flow = std::mem::size_of::<Flow<()>>();
        let rx = std::mem::size_of::<Reassembler>();
        println!("size_of: Slot<()> {slot}, Flow<()> {flow}, Reassembler {rx}");
        // 552 bytes with the `StreamDriver` before the rare reassembly state went into a box
        // and the retained bytes inline: the slab is most of the memory of 100k flows.
        assert!(slot <= 336, "{slot}");
        assert!(rx <= 64, "{rx}");
        assert!(std::mem::size_of::<FlowMeta>() <= 160);
        // The metadata a steady flow's packets and events do not read fills its first 64
        // bytes; the rest (read by them) follows, up to the flow's other parts.
        use std::mem::offset_of;
        assert!(offset_of!(FlowMeta, first_seen) + std::mem::size_of::<Timestamp>() <= 64);
        assert!(offset_of!(FlowMeta, key) + std::mem::size_of::<FlowKey>() <= 64);
        for hot in [
            offset_of!(FlowMeta, id),
            offset_of!(FlowMeta, last_seen),
            offset_of!(FlowMeta, packets),
            offset_of!(FlowMeta, bytes),
            offset_of!(FlowMeta, client),
            offset_of!(FlowMeta, server),
            offset_of!(FlowMeta, vlan),
        ] {
            assert!(hot >= 64, "{hot}");
        }
        assert_eq!(offset_of!(Flow<()>, meta), 0);
        assert_eq!(offset_of!(Slot<()>, flow), 0);
    }

    #[test]
    fn memory_budget_drops_the_least_recently_seen_buffers_first() {
        let s = ep(100, 502);
        let cfg = FlowConfig {
            memory_budget_bytes: 5000,
            ..FlowConfig::default()
        };
        let mut t = table(cfg);
        let mut rec = Rec::default();
        let data = [7u8; 1000];
        let clients = [ep(1, 40_001), ep(2, 40_002), ep(3, 40_003)];
        // Each client: handshake, then a segment after a 500-byte hole (buffered).
        for (i, c) in clients.iter().enumerate() {
            let isn = 1000 * i as u32;
            feed(
                &mut t,
                &mut rec,
                &[
                    tcp(1, *c, s, isn, 0, SYN, b""),
                    tcp(1, s, *c, 9000, isn + 1, SYN | ACK, b""),
                    tcp(1, *c, s, isn + 1, 9001, ACK, b""),
                    tcp(2, *c, s, isn + 501, 9001, PSH | ACK, &data),
                ],
            );
            assert!(t.memory() <= 5000, "{} over the budget", t.memory());
        }
        let held = |t: &FlowTable<u32>, c: Endpoint| {
            t.get(&key(c, s, 6))
                .unwrap()
                .tcp
                .reassembler(Direction::ToServer)
                .buffered_bytes()
        };
        // Two flows' buffers fit (a ring of at least 1500 bytes each), the third pushes the
        // first, least recently seen, out.
        assert!(t.stats().budget_drops >= 1, "{:?}", t.stats());
        assert_eq!(held(&t, clients[0]), 0, "the oldest gave up its buffer");
        assert_eq!(held(&t, clients[2]), 1000, "the newest keeps its buffer");
        // The dropped flow's data was delivered after a gap for the hole.
        let first = rec.stream(
            t.get(&key(clients[0], s, 6)).unwrap().meta.id,
            Direction::ToServer,
        );
        assert_eq!(first, vec![Ev::Gap(500), Ev::Data(data.to_vec())]);
    }

    /// Endpoints that differ in one field at a time, IPv4 and IPv6 with the same number among
    /// them, so that keys collide in every way but one.
    fn endpoint_pool() -> Vec<(IpAddr, u16)> {
        let mut v = Vec::new();
        for ip in [
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            IpAddr::V6(std::net::Ipv6Addr::from_bits(0x0a00_0001)),
            IpAddr::V6(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
        ] {
            for port in [502, 503, 40000] {
                v.push((ip, port));
            }
        }
        v
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// The table's key orders endpoints as `FlowKey::new` does and is equal exactly when
        /// the `FlowKey`s are.
        #[test]
        fn map_key_is_the_flow_key(
            a in 0..12usize, b in 0..12usize, c in 0..12usize, d in 0..12usize,
            p1 in proptest::sample::select(vec![6u8, 17]),
            p2 in proptest::sample::select(vec![6u8, 17]),
            v1 in proptest::sample::select(vec![0u16, 7]),
            v2 in proptest::sample::select(vec![0u16, 7]),
        ) {
            let pool = endpoint_pool();
            let (k1, lo1) = MapKey::of_packet(pool[a], pool[b], p1, v1);
            let (k2, _) = MapKey::of_packet(pool[c], pool[d], p2, v2);
            let f1 = FlowKey::new(pool[a], pool[b], p1, v1);
            let f2 = FlowKey::new(pool[c], pool[d], p2, v2);
            proptest::prop_assert_eq!(lo1, pool[a] <= pool[b]);
            proptest::prop_assert_eq!(MapKey::of(&f1), k1);
            proptest::prop_assert_eq!(k1 == k2, f1 == f2);
        }

        /// The cache of recent flows changes nothing: a table whose cache is emptied before
        /// every packet (every lookup through the map) gives the same chunks, datagrams,
        /// ends and counters, under eviction, timeouts, closes and key reuse, with IPv4, IPv6
        /// and VLANs; and each packet counts in the direction its sender's side says.
        #[test]
        fn cache_changes_nothing(
            pkts in proptest::collection::vec(
                (
                    0..12usize,
                    0..12usize,
                    proptest::sample::select(vec![None, Some(7u16)]),
                    proptest::sample::select(vec![
                        ACK, ACK, PSH | ACK, PSH | ACK, SYN, SYN | ACK, FIN | ACK, RST, 0,
                    ]),
                    0..40u32,
                    0..40u32,
                    0..6usize,
                    proptest::sample::select(vec![0i64, 0, 0, 1, 40, 700]),
                    proptest::bool::weighted(0.1),
                ),
                0..120,
            ),
            max_flows in 1..6usize,
        ) {
            let pool = endpoint_pool();
            let cfg = FlowConfig {
                max_flows,
                ..FlowConfig::default()
            };
            let seeds = || KeyHashBuilder::with_seeds(1, 2);
            let mut fast: FlowTable<u32> = FlowTable::with_hasher(cfg.clone(), seeds());
            let mut slow: FlowTable<u32> = FlowTable::with_hasher(cfg, seeds());
            let (mut rf, mut rs) = (Rec::default(), Rec::default());
            let payload = [1u8, 2, 3, 4, 5, 6];
            let mut now = 0i64;
            let mut model: HashMap<u64, [u32; 2]> = HashMap::new();
            for &(a, b, vlan, flags, seq, ack, len, dt, is_udp) in &pkts {
                now += dt;
                let (src, dst) = (pool[a], pool[b]);
                let src = Endpoint { ip: src.0, port: src.1, mac: None };
                let dst = Endpoint { ip: dst.0, port: dst.1, mac: Some([a as u8; 6]) };
                let mut p = if is_udp {
                    udp(now, src, dst, &payload[..len])
                } else {
                    tcp(now, src, dst, seq * 3, ack * 3, flags, &payload[..len])
                };
                p.vlan = vlan;
                fast.process(&p, || 0, &mut rf);
                slow.cache.iter_mut().for_each(|e| e.1 = NIL);
                slow.process(&p, || 0, &mut rs);
                let proto = if is_udp { 17 } else { 6 };
                let k = FlowKey::new((src.ip, src.port), (dst.ip, dst.port), proto, vlan.unwrap_or(0));
                let f = fast.get(&k).unwrap();
                let to_server = (src.ip, src.port) == (f.meta.client.ip, f.meta.client.port);
                let counts = model.entry(f.meta.id).or_insert([0u32; 2]);
                counts[usize::from(!to_server)] += 1;
                proptest::prop_assert_eq!(f.meta.packets, *counts);
                let g = slow.get(&k).unwrap();
                proptest::prop_assert_eq!(f.meta.packets, g.meta.packets);
            }
            fast.drain(&mut rf);
            slow.drain(&mut rs);
            proptest::prop_assert_eq!(&rf, &rs);
            proptest::prop_assert_eq!(fast.stats(), slow.stats());
        }
    }

    /// A sink that also records flow endings with their recency stamps, budget drops, and
    /// reports caller memory that comes and goes with the chunks (so that the lane's
    /// accounting shortcut meets flows whose state holds memory).
    #[derive(Default, Debug, PartialEq, Eq)]
    struct LaneRec {
        rec: Rec,
        endings: Vec<(u64, u64)>,
        drops: Vec<u64>,
    }

    impl FlowSink<u32> for LaneRec {
        fn on_chunk(&mut self, meta: &FlowMeta, app: &mut u32, dir: Direction, c: Chunk<'_>) {
            self.rec.on_chunk(meta, app, dir, c);
        }
        fn on_datagram(&mut self, meta: &FlowMeta, app: &mut u32, dir: Direction, p: &[u8]) {
            self.rec.on_datagram(meta, app, dir, p);
        }
        fn on_end(&mut self, flow: Flow<u32>, reason: EndReason) {
            self.rec.on_end(flow, reason);
        }
        fn on_ending(&mut self, meta: &FlowMeta, stamp: u64) {
            self.endings.push((meta.id, stamp));
        }
        fn app_memory(&self, app: &u32) -> usize {
            if app % 5 == 3 {
                700
            } else {
                0
            }
        }
        fn on_budget_drop(&mut self, meta: &FlowMeta, app: &mut u32) {
            *app += 1;
            self.drops.push(meta.id);
        }
    }

    /// What a lane test packet does (see `lane_equals_process`).
    #[derive(Clone, Copy, Debug)]
    enum Kind {
        Data,
        PureAck,
        Retrans,
        Ahead,
        OldAck,
        Syn,
        SynAck,
        Fin,
        Rst,
        NoAck,
        Cut,
    }

    /// Builds the bytes of a lane test frame (Ethernet, IPv4, TCP); `cut` bytes of the
    /// payload are left out of the capture. Returns the frame and its length on the wire.
    #[allow(clippy::too_many_arguments)]
    fn lane_bytes(
        c: (u32, u16),
        s: (u32, u16),
        to_server: bool,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
        cut: u32,
    ) -> (Vec<u8>, u32) {
        let ((sa, sp), (da, dp)) = if to_server { (c, s) } else { (s, c) };
        let mut f = Vec::new();
        f.extend_from_slice(&[da as u8; 6]);
        f.extend_from_slice(&[sa as u8; 6]);
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (40 + payload.len() as u32 + cut) as u16;
        f.extend_from_slice(&[
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0x40,
            0,
            64,
            6,
            0,
            0,
        ]);
        f.extend_from_slice(&sa.to_be_bytes());
        f.extend_from_slice(&da.to_be_bytes());
        f.extend_from_slice(&sp.to_be_bytes());
        f.extend_from_slice(&dp.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&ack.to_be_bytes());
        f.extend_from_slice(&[0x50, flags, 0x04, 0x00, 0, 0, 0, 0]);
        f.extend_from_slice(payload);
        let wire = f.len() as u32 + cut;
        (f, wire)
    }

    type LaneStep = (usize, bool, Kind, usize, u32, i64, bool);

    /// Runs `steps` through a table that tries the lane first and one that only uses
    /// `process`; returns both recordings and how many packets took the lane.
    fn lane_run(steps: &[LaneStep], cfg: FlowConfig, isn: [u32; 2]) -> LaneRun {
        let clients = [
            (0x0a00_0001u32, 40_000u16),
            (0x0a00_0002, 40_001),
            (0x0a00_0002, 40_002),
        ];
        let servers = [(0x0a00_0064u32, 502u16), (0x0a00_0064, 4840)];
        lane_run_between(steps, cfg, isn, clients, servers)
    }

    /// Both recordings and the lane packets of [`lane_run`].
    type LaneRun = (
        (LaneRec, FlowStats, usize),
        (LaneRec, FlowStats, usize),
        usize,
    );

    /// [`lane_run`] with these clients and servers: pair `p` is client `p % 3` and server
    /// `p / 3 % 2`.
    fn lane_run_between(
        steps: &[LaneStep],
        cfg: FlowConfig,
        isn: [u32; 2],
        clients: [(u32, u16); 3],
        servers: [(u32, u16); 2],
    ) -> LaneRun {
        let seeds = || KeyHashBuilder::with_seeds(3, 4);
        let mut lane: FlowTable<u32> = FlowTable::with_hasher(cfg.clone(), seeds());
        let mut plain: FlowTable<u32> = FlowTable::with_hasher(cfg, seeds());
        let (mut rl, mut rp) = (LaneRec::default(), LaneRec::default());
        // Next sequence number of each direction of each pair.
        let mut next = [[0u32; 2]; 6];
        for (i, n) in next.iter_mut().enumerate() {
            *n = [
                isn[0].wrapping_add(i as u32 * 1000),
                isn[1].wrapping_sub(i as u32),
            ];
        }
        let mut now = 0i64;
        let mut hits = 0;
        let mut last_sweep = 0i64;
        let bytes: Vec<u8> = (0..64u8).collect();
        for (index, &(pair, to_server, kind, len, k, dt, flip)) in steps.iter().enumerate() {
            now += dt;
            let (c, s) = (clients[pair % 3], servers[pair / 3 % 2]);
            let d = usize::from(!to_server);
            let n = &mut next[pair % 6];
            let (mut seq, mut ack) = (n[d], n[1 - d]);
            let mut flags = ACK | PSH;
            let mut len = len;
            let mut declared = None;
            match kind {
                Kind::Data => {}
                Kind::PureAck => {
                    flags = ACK;
                    len = 0;
                }
                Kind::Retrans => seq = seq.wrapping_sub(k),
                Kind::Ahead => seq = seq.wrapping_add(k),
                Kind::OldAck => ack = ack.wrapping_sub(k),
                Kind::Syn => {
                    flags = SYN;
                    seq = seq.wrapping_sub(1);
                    len = 0;
                }
                Kind::SynAck => {
                    flags = SYN | ACK;
                    seq = seq.wrapping_sub(1);
                    len = 0;
                }
                Kind::Fin => flags = FIN | ACK,
                Kind::Rst => flags = RST | ACK,
                Kind::NoAck => flags = PSH,
                Kind::Cut => declared = Some(len as u32 + k),
            }
            // Stream bytes are a function of the sequence number, unless flipped (a
            // retransmission with other bytes).
            let start = (seq as usize) % 32;
            let mut payload = bytes[start..start + len].to_vec();
            if flip {
                payload.iter_mut().for_each(|b| *b ^= 0x55);
            }
            let declared = declared.unwrap_or(len as u32);
            if matches!(
                kind,
                Kind::Data | Kind::Cut | Kind::Fin | Kind::NoAck | Kind::Ahead
            ) {
                n[d] = seq.wrapping_add(declared);
            }
            let cut = declared - len as u32;
            let (bytes_f, wire) = lane_bytes(c, s, to_server, seq, ack, flags, &payload, cut);
            let f = crate::decode::common_frame(&bytes_f, wire).unwrap();
            assert_eq!(f.payload_len, declared);
            let t = Timestamp::new(now, 0);
            let index = index as u64 + 1;
            if lane.process_lane(index, t, &f, &mut rl) {
                hits += 1;
            } else {
                lane.set_packet_index(index);
                lane.process(&FlowPacket::of_common(t, &f), || 0, &mut rl);
            }
            plain.set_packet_index(index);
            plain.process(&FlowPacket::of_common(t, &f), || 0, &mut rp);
            check_lists(&lane);
            if now > last_sweep {
                last_sweep = now;
                lane.expire(t, &mut rl);
                plain.expire(t, &mut rp);
            }
            assert_eq!(lane.memory(), plain.memory());
            assert_eq!(lane.len(), plain.len());
        }
        let (ml, mp) = (lane.memory(), plain.memory());
        lane.drain(&mut rl);
        plain.drain(&mut rp);
        let (sl, sp) = (lane.stats().clone(), plain.stats().clone());
        ((rl, sl, ml), (rp, sp, mp), hits)
    }

    /// The LRU lists: every held flow is linked on the list its state belongs to, with
    /// consistent links, each list running from the largest stamp to the smallest.
    fn check_lists<S>(t: &FlowTable<S>) {
        let mut seen = 0;
        for (l, ends) in t.lists.iter().enumerate() {
            let (mut at, mut prev, mut prev_stamp) = (ends.head, NIL, u64::MAX);
            while at != NIL {
                let slot = &t.slots[at as usize];
                let flow = slot.flow.as_ref().unwrap();
                let want = (if FlowTable::<S>::confirmed(flow) {
                    CONFIRMED
                } else {
                    0
                }) | (if FlowTable::<S>::long(flow) { LONG } else { 0 });
                assert_eq!((usize::from(slot.list), want), (l, l));
                assert!(slot.stamp < prev_stamp);
                assert_eq!(slot.prev, prev);
                (prev, prev_stamp, at) = (at, slot.stamp, slot.next);
                seen += 1;
            }
            assert_eq!(ends.tail, prev);
        }
        assert_eq!(seen, t.len());
        // The memory list: the flows holding memory, linked both ways, adding up to the total.
        let (mut at, mut prev, mut sum, mut n) = (t.mem_list.head, NIL, 0, 0);
        while at != NIL {
            let slot = &t.slots[at as usize];
            assert!(slot.mem > 0);
            assert_eq!(slot.mprev, prev);
            sum += slot.mem;
            n += 1;
            (prev, at) = (at, slot.mnext);
        }
        assert_eq!(t.mem_list.tail, prev);
        assert_eq!(sum, t.mem);
        assert_eq!(
            n,
            t.slots
                .iter()
                .filter(|s| s.flow.is_some() && s.mem > 0)
                .count()
        );
    }

    fn lane_kind() -> impl proptest::strategy::Strategy<Value = Kind> {
        proptest::sample::select(vec![
            Kind::Data,
            Kind::Data,
            Kind::Data,
            Kind::Data,
            Kind::Data,
            Kind::PureAck,
            Kind::PureAck,
            Kind::Retrans,
            Kind::Ahead,
            Kind::OldAck,
            Kind::Syn,
            Kind::SynAck,
            Kind::Fin,
            Kind::Rst,
            Kind::NoAck,
            Kind::Cut,
        ])
    }

    /// The lane's words of a 4-tuple are what the frame's headers hold, and give it back.
    #[test]
    fn lane_words_are_the_wire_words() {
        for (c, s) in [
            ((0x0a00_0001u32, 40_000u16), (0xc0a8_0164u32, 502u16)),
            ((0xffff_fffe, 1), (0x0000_0001, 65_535)),
        ] {
            let (f, wire) = lane_bytes(c, s, true, 1, 2, ACK, b"abc", 0);
            let cf = crate::decode::common_frame(&f, wire).unwrap();
            let (src, dst) = (
                (Ipv4Addr::from_bits(c.0), c.1),
                (Ipv4Addr::from_bits(s.0), s.1),
            );
            assert_eq!(lane_words(src, dst), cf.wire_words());
            assert_eq!(lane_ends(cf.wire_words().0, cf.wire_words().1), (src, dst));
            assert_ne!(lane_words(dst, src), cf.wire_words());
            // The other direction: its words swapped, at the same place.
            let (aw, pw) = lane_words(src, dst);
            assert_eq!(lane_swap(aw, pw), lane_words(dst, src));
            let (bw, bp) = lane_words(dst, src);
            assert_eq!(lane_place(aw, pw), lane_place(bw, bp));
        }
    }

    /// A plain exchange mostly takes the lane, and gives what `process` gives.
    #[test]
    fn lane_takes_steady_traffic() {
        let mut steps: Vec<LaneStep> = Vec::new();
        for i in 0..600 {
            let pair = i / 2 % 6;
            steps.push((
                pair,
                i % 2 == 0,
                Kind::Data,
                1 + i % 7,
                0,
                i64::from(i % 50 == 0),
                false,
            ));
        }
        for isn in [[1000, 2000], [u32::MAX - 30, u32::MAX - 3]] {
            let (l, p, hits) = lane_run(&steps, FlowConfig::default(), isn);
            assert_eq!(l, p);
            assert!(hits > 550, "{hits} lane packets");
        }
    }

    /// Flows whose two directions share one lane entry: two flows at the same place take it
    /// from each other, and the all-zero 4-tuple (an empty entry's words) is declined; all
    /// as `process` gives.
    #[test]
    fn lane_shares_places_as_process() {
        // 10.0.0.1 ^ 10.0.0.100 == 10.0.0.2 ^ 10.0.0.103, same ports: the same place.
        let clients = [(0x0a00_0001u32, 40_000u16), (0x0a00_0002, 40_000), (0, 0)];
        let place = |c: (u32, u16), s: (u32, u16)| {
            let (a, p) = lane_words(
                (Ipv4Addr::from_bits(c.0), c.1),
                (Ipv4Addr::from_bits(s.0), s.1),
            );
            lane_place(a, p)
        };
        let servers = [(0x0a00_0064u32, 502u16), (0x0a00_0067, 502)];
        assert_eq!(place(clients[0], servers[0]), place(clients[1], servers[1]));
        let mut steps: Vec<LaneStep> = Vec::new();
        for i in 0..900 {
            // Pairs 0 and 4 (the same place) in turns, the others now and then.
            let pair = match i % 6 {
                0 | 1 => 0,
                2 | 3 => 4,
                4 => [1, 2, 3, 5][i / 6 % 4],
                _ => [1, 2, 3, 5][(i / 6 + 2) % 4],
            };
            steps.push((
                pair,
                i % 2 == 0,
                Kind::Data,
                1 + i % 7,
                0,
                i64::from(i % 90 == 0),
                false,
            ));
        }
        for servers in [servers, [(0, 0), (0x0a00_0067, 502)]] {
            let (l, p, hits) = lane_run_between(
                &steps,
                FlowConfig::default(),
                [1000, 2000],
                clients,
                servers,
            );
            assert_eq!(l, p);
            assert!(hits > 300, "{hits} lane packets");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// The lane gives exactly what `process` gives (chunks, ends, end order and recency
        /// stamps, counters, memory), with every case that makes it decline mixed in:
        /// handshakes, retransmissions with the same or other bytes, segments ahead of a hole,
        /// old ACKs, FIN, RST, segments without ACK, snaplen-cut segments, idle timeouts,
        /// eviction under a small flow cap, a small memory budget, retained bytes on or off.
        #[test]
        fn lane_equals_process(
            steps in proptest::collection::vec(
                (
                    0..6usize,
                    proptest::bool::ANY,
                    lane_kind(),
                    0..9usize,
                    1..12u32,
                    proptest::sample::select(vec![0i64, 0, 0, 0, 1, 31, 700]),
                    proptest::bool::weighted(0.2),
                ),
                0..200,
            ),
            max_flows in 1..7usize,
            budget in proptest::sample::select(vec![1usize << 20, 3000, 0]),
            retained in proptest::sample::select(vec![2048usize, 5, 0]),
            isn in proptest::sample::select(vec![[7u32, 900], [u32::MAX - 20, u32::MAX - 2]]),
        ) {
            let cfg = FlowConfig {
                max_flows,
                memory_budget_bytes: budget,
                max_retained_bytes: retained,
                max_buffered_bytes: 64,
                max_holes: 3,
                ..FlowConfig::default()
            };
            let (l, p, _) = lane_run(&steps, cfg, isn);
            proptest::prop_assert_eq!(l, p);
        }
    }
}
