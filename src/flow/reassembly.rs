//! Per-direction TCP reassembly with bounded buffering.
//!
//! A [`Reassembler`] turns the segments of one direction into an in-order sequence of
//! [`Chunk`]s. The stream is addressed by a 64-bit *stream offset* (0 = first byte after the
//! SYN, or the first byte seen when the capture started mid-stream); 32-bit sequence numbers
//! are mapped onto it with wrapping arithmetic relative to the next expected byte, so
//! wraparound needs no special case.
//!
//! * In-order bytes are delivered straight from the packet (`Chunk::Data(&payload[..])`): no
//!   copy, no allocation.
//! * Out-of-order bytes are copied into a ring indexed by stream offset (allocated on the first
//!   out-of-order segment, freed when it empties, at most `max_buffered_bytes` of sequence
//!   space beyond the next expected byte, rounded up to a power of two). Which ranges of the
//!   ring hold data is a short sorted list with at most `max_holes` entries (each filled range
//!   follows one hole).
//! * Overlaps are resolved one way: **first data wins**. Bytes already delivered (while they
//!   are still retained, see below) or buffered are kept; only new bytes beyond them are used.
//!   A segment entirely made of known bytes is a retransmission; one partly made of them is an
//!   overlap; either one whose known bytes differ from the kept ones is an overlap mismatch.
//! * To compare retransmissions with bytes already delivered, the last `max_retained_bytes`
//!   delivered bytes are kept until the peer acknowledges them.
//! * A [`Chunk::Gap`] is delivered when a cap is hit (the first hole is given up), when the
//!   peer acknowledges bytes that were never seen (the capture lost them), when a
//!   snaplen-cut segment is missing its tail, and when the flow ends with data still buffered.
//!   Every byte of the stream is accounted for exactly once, as data or as gap.

use super::{Chunk, FlowConfig, FlowStats};

/// Limits of one [`Reassembler`], taken from [`FlowConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Sequence space beyond the next expected byte that out-of-order data may occupy.
    pub max_buffered_bytes: usize,
    /// Filled ranges (each after a hole) held at once.
    pub max_holes: usize,
    /// Delivered, unacknowledged bytes kept to compare retransmissions against.
    pub max_retained_bytes: usize,
    /// How far beyond the next expected byte a segment may start before it is taken as out
    /// of window and ignored (until the peer's ACK or persistence confirms it).
    pub max_seq_jump: usize,
}

impl From<&FlowConfig> for ReassemblyLimits {
    fn from(cfg: &FlowConfig) -> Self {
        ReassemblyLimits {
            max_buffered_bytes: cfg.max_buffered_bytes,
            max_holes: cfg.max_holes,
            max_retained_bytes: cfg.max_retained_bytes,
            max_seq_jump: cfg.max_seq_jump_bytes,
        }
    }
}

/// What a [`Reassembler::syn`] call found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynKind {
    /// The first SYN of this direction: the stream starts at its sequence number + 1.
    New,
    /// The same SYN again.
    Retransmission,
    /// A SYN with another sequence number on a direction already started; ignored.
    Conflict,
}

/// The direction has a base sequence number.
const F_INIT: u8 = 1;
/// The base came from a SYN.
const F_SYN: u8 = 2;
/// `Chunk::Fin` was delivered.
const F_FIN_DONE: u8 = 4;
/// `Chunk::Rst` was delivered.
const F_RST_DONE: u8 = 8;
/// `kept_len` of a direction whose retained bytes are in the cold part's heap window, not
/// inline.
const HEAP: u8 = u8::MAX;
/// No FIN seen.
const NO_FIN: u64 = u64::MAX;
/// Retained bytes held in the reassembler itself (a Modbus request, a short response), before
/// they go to a heap window: the reassembler stays 64 bytes with no allocation of its own.
const INLINE: usize = 29;
/// Smallest ring allocated for out-of-order data.
const MIN_RING: usize = 2048;
/// Out-of-window segments in a row after which the stream is taken to really continue there
/// (a capture that lost more than the window and shows no ACKs to resynchronise on).
const FAR_TOLERANCE: u8 = 4;

/// Copies `src` (at most [`INLINE`] bytes; a longer one copies nothing) to the front of `dst`
/// with two overlapping fixed-size moves of its size class instead of a call to `memcpy`
/// (every lane segment retains its bytes: a call and the library's dispatch cost more than
/// the copy).
#[inline(always)]
fn copy_short(dst: &mut [u8; INLINE], src: &[u8]) {
    let n = src.len();
    if n > INLINE {
        return;
    }
    if n >= 16 {
        move_pair::<16>(dst, src);
    } else if n >= 8 {
        move_pair::<8>(dst, src);
    } else if n >= 4 {
        move_pair::<4>(dst, src);
    } else if n > 0 {
        // 1 to 3 bytes: the first, the middle and the last (some the same).
        for i in [0, n / 2, n - 1] {
            if let (Some(d), Some(s)) = (dst.get_mut(i), src.get(i)) {
                *d = *s;
            }
        }
    }
}

/// [`copy_short`] of `src` whose length `n` is between `K` and `2K` (and at most [`INLINE`]):
/// its first `K` bytes, then its last `K` (overlapping them).
#[inline(always)]
fn move_pair<const K: usize>(dst: &mut [u8; INLINE], src: &[u8]) {
    let n = src.len();
    let (Some(head), Some(tail)) = (src.first_chunk::<K>(), src.last_chunk::<K>()) else {
        return;
    };
    if let Some(d) = dst.first_chunk_mut::<K>() {
        *d = *head;
    }
    if let Some(d) = dst.get_mut(n - K..n).and_then(|d| d.first_chunk_mut::<K>()) {
        *d = *tail;
    }
}

/// Reassembly state of one direction of a TCP flow.
///
/// Small while nothing is buffered: the ring and the range list are empty `Vec`s, and the
/// retained bytes stay within `max_retained_bytes`.
#[derive(Clone, Debug)]
pub struct Reassembler {
    /// Sequence number of stream offset 0.
    base: u32,
    /// ISN of the SYN, when `F_SYN`.
    isn: u32,
    /// `F_*` bits.
    flags: u8,
    /// Stream offset of the next byte to deliver: everything before it was delivered as data
    /// or gap.
    offset: u64,
    /// Highest stream offset known to exist (end of the furthest segment seen, declared
    /// length included), never beyond the FIN.
    max_end: u64,
    /// Out-of-window segments in a row.
    far_hits: u8,
    /// How many of `kept` hold retained bytes (unless it is `HEAP`).
    kept_len: u8,
    /// The last delivered bytes, ending at `offset`, not yet acknowledged by the peer, when
    /// they fit here (`kept_len` not `HEAP`); else they are in the cold part's `recent`.
    kept: [u8; INLINE],
    /// What only a direction that saw a FIN, out-of-order data or an out-of-window segment, or
    /// retained more than `INLINE` bytes at once, holds; `None` (one word) for the others.
    cold: Option<Box<Cold>>,
}

/// The part of a [`Reassembler`] that most directions never need, allocated on first use.
#[derive(Clone, Debug)]
struct Cold {
    /// Stream offset of the FIN, or `NO_FIN`.
    fin_at: u64,
    /// End of the furthest out-of-window segment seen: lets an ACK resynchronise past it.
    far_end: u64,
    /// Out-of-order bytes; stream offset `x` lives at `x & (ring.len() - 1)`.
    ring: Vec<u8>,
    /// Filled ranges `[start, end)` of the ring: sorted, disjoint, not adjacent, all starting
    /// after `offset`.
    ranges: Vec<(u64, u64)>,
    /// The retained bytes when they outgrew `kept` (`kept_len` is `HEAP`); its allocation is kept for
    /// the next time.
    recent: Retained,
}

impl Cold {
    /// No FIN, nothing out of window, nothing buffered.
    fn new() -> Self {
        Cold {
            fin_at: NO_FIN,
            far_end: 0,
            ring: Vec::new(),
            ranges: Vec::new(),
            recent: Retained::default(),
        }
    }
}

/// The last delivered bytes of a direction: `buf[start..]`, a window that slides forward over
/// one buffer (moved back to its front only when the buffer is full), so that keeping a
/// segment's bytes is one copy and dropping acknowledged bytes moves nothing.
#[derive(Clone, Debug, Default)]
struct Retained {
    buf: Vec<u8>,
    start: usize,
}

impl Retained {
    /// Bytes held.
    #[inline]
    fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Bytes allocated.
    fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Forgets everything (keeps the allocation).
    #[inline]
    fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
    }

    /// Forgets the first `n` bytes (all of them when `n` is larger).
    fn drop_front(&mut self, n: usize) {
        if n >= self.len() {
            self.clear();
        } else {
            self.start += n;
        }
    }

    /// The bytes held, oldest first.
    fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    /// Appends `data`, then keeps only the last `keep` bytes (`keep` > 0).
    #[inline]
    fn push(&mut self, data: &[u8], keep: usize) {
        if self.buf.is_empty() && data.len() < keep {
            // Nothing held (the peer acknowledged it all): the bytes are all there is to keep.
            self.start = 0;
            self.buf.extend_from_slice(data);
            return;
        }
        if data.len() >= keep {
            self.clear();
            let tail = data.get(data.len() - keep..).unwrap_or_default();
            self.buf.extend_from_slice(tail);
            return;
        }
        // data.len() < keep, so the excess is at most what is held.
        let excess = (self.len() + data.len()).saturating_sub(keep);
        self.start += excess;
        if self.start > 0 && self.buf.len() + data.len() > self.buf.capacity() {
            // Full: move the window to the front instead of growing.
            let len = self.len();
            self.buf.copy_within(self.start.., 0);
            self.buf.truncate(len);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new()
    }
}

/// Per-segment findings, turned into counters once per segment.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    /// Some bytes were already known.
    covered: bool,
    /// Some bytes were new.
    fresh: bool,
    /// Some known bytes differed.
    mismatch: bool,
}

/// The two slices of `ring` holding stream offsets `[abs, abs + len)`.
fn ring_slices(ring: &[u8], abs: u64, len: usize) -> (&[u8], &[u8]) {
    let cap = ring.len();
    if cap == 0 || len == 0 {
        return (&[], &[]);
    }
    // cap is a power of two; truncating abs keeps its low bits, which is all the mask needs.
    let pos = (abs as usize) & (cap - 1);
    let first = len.min(cap - pos);
    let a = ring.get(pos..pos + first).unwrap_or_default();
    let b = ring.get(..len - first).unwrap_or_default();
    (a, b)
}

/// Copies `data` into `ring` at stream offset `abs`.
fn ring_write(ring: &mut [u8], abs: u64, data: &[u8]) {
    let cap = ring.len();
    if cap == 0 || data.is_empty() {
        return;
    }
    let pos = (abs as usize) & (cap - 1);
    let first = data.len().min(cap - pos);
    let (a, b) = data.split_at(first);
    if let Some(dst) = ring.get_mut(pos..pos + first) {
        dst.copy_from_slice(a);
    }
    if let Some(dst) = ring.get_mut(..b.len()) {
        dst.copy_from_slice(b);
    }
}

/// True if `ring` holds exactly `data` at stream offset `abs`.
fn ring_eq(ring: &[u8], abs: u64, data: &[u8]) -> bool {
    let (a, b) = ring_slices(ring, abs, data.len());
    match data.split_at_checked(a.len()) {
        Some((d1, d2)) => a == d1 && b == d2,
        None => false,
    }
}

impl Reassembler {
    /// A direction that has seen nothing.
    pub fn new() -> Self {
        Reassembler {
            base: 0,
            isn: 0,
            flags: 0,
            offset: 0,
            max_end: 0,
            far_hits: 0,
            kept_len: 0,
            kept: [0; INLINE],
            cold: None,
        }
    }

    /// Delivers `data` and remembers up to `keep` of the last delivered bytes.
    #[inline]
    fn emit_data<E: FnMut(Chunk<'_>)>(&mut self, keep: usize, data: &[u8], emit: &mut E) {
        if data.is_empty() {
            return;
        }
        self.retain_fast(data, keep);
        emit(Chunk::Data(data));
    }

    /// [`Reassembler::retain`] when `keep` > 0, with the common case in line: nothing
    /// retained (the peer acknowledged it all) and `data` fits inline whole.
    #[inline(always)]
    fn retain_fast(&mut self, data: &[u8], keep: usize) {
        let n = data.len();
        if self.kept_len == 0 && n <= INLINE && n <= keep {
            copy_short(&mut self.kept, data);
            self.kept_len = n as u8;
        } else if keep > 0 {
            self.retain(data, keep);
        }
    }

    /// Retained bytes held.
    #[inline]
    fn kept_count(&self) -> usize {
        if self.kept_len == HEAP {
            self.cold.as_ref().map_or(0, |c| c.recent.len())
        } else {
            usize::from(self.kept_len)
        }
    }

    /// The retained bytes, oldest first.
    fn kept_bytes(&self) -> &[u8] {
        if self.kept_len == HEAP {
            self.cold.as_ref().map_or(&[], |c| c.recent.bytes())
        } else {
            self.kept
                .get(..usize::from(self.kept_len))
                .unwrap_or_default()
        }
    }

    /// Heap bytes allocated for retained bytes.
    fn kept_capacity(&self) -> usize {
        self.cold.as_ref().map_or(0, |c| c.recent.capacity())
    }

    /// Forgets the retained bytes. A direction whose bytes went to the heap window once stays
    /// there (it sends segments too long for `kept`; the window keeps its allocation).
    #[inline]
    fn kept_clear(&mut self) {
        if self.kept_len == HEAP {
            if let Some(c) = self.cold.as_deref_mut() {
                c.recent.clear();
            }
        } else {
            self.kept_len = 0;
        }
    }

    /// Forgets the first `n` retained bytes (all of them when `n` is larger).
    fn kept_drop_front(&mut self, n: usize) {
        if self.kept_len == HEAP {
            if let Some(c) = self.cold.as_deref_mut() {
                c.recent.drop_front(n);
            }
            return;
        }
        let held = usize::from(self.kept_len);
        if n >= held {
            self.kept_len = 0;
        } else {
            self.kept.copy_within(n..held, 0);
            self.kept_len = (held - n) as u8;
        }
    }

    /// Appends `data` to the retained bytes, then keeps only the last `keep` (> 0): inline
    /// while they fit, else in the cold part's heap window.
    #[inline(never)]
    fn retain(&mut self, data: &[u8], keep: usize) {
        if self.kept_len != HEAP {
            let held = usize::from(self.kept_len);
            let n = (held + data.len()).min(keep);
            if n <= INLINE {
                if data.len() >= n {
                    let tail = data.get(data.len() - n..).unwrap_or_default();
                    if let Some(dst) = self.kept.get_mut(..n) {
                        dst.copy_from_slice(tail);
                    }
                } else {
                    // k of the held bytes stay in front of the new ones (k <= held).
                    let k = n - data.len();
                    self.kept.copy_within(held - k..held, 0);
                    if let Some(dst) = self.kept.get_mut(k..n) {
                        dst.copy_from_slice(data);
                    }
                }
                self.kept_len = n as u8;
                return;
            }
            self.kept_to_heap();
        }
        if let Some(c) = self.cold.as_deref_mut() {
            c.recent.push(data, keep);
        }
    }

    /// Moves the inline retained bytes to the heap window (they outgrow `INLINE`).
    #[cold]
    #[inline(never)]
    fn kept_to_heap(&mut self) {
        let held = usize::from(self.kept_len);
        let bytes = self.kept;
        self.kept_len = HEAP;
        let c = self.cold_mut();
        c.recent.clear();
        c.recent
            .buf
            .extend_from_slice(bytes.get(..held).unwrap_or_default());
    }

    /// The filled ranges of the ring.
    #[inline]
    fn ranges(&self) -> &[(u64, u64)] {
        match &self.cold {
            Some(c) => &c.ranges,
            None => &[],
        }
    }

    /// The ring of out-of-order bytes (empty when none is allocated).
    #[inline]
    fn ring(&self) -> &[u8] {
        match &self.cold {
            Some(c) => &c.ring,
            None => &[],
        }
    }

    /// Stream offset of the FIN, or `NO_FIN`.
    #[inline]
    fn fin_at(&self) -> u64 {
        self.cold.as_ref().map_or(NO_FIN, |c| c.fin_at)
    }

    /// End of the furthest out-of-window segment seen.
    #[inline]
    fn far_end(&self) -> u64 {
        self.cold.as_ref().map_or(0, |c| c.far_end)
    }

    /// The cold part, allocated when first needed.
    #[inline]
    fn cold_mut(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(|| Box::new(Cold::new()))
    }

    /// No FIN seen and nothing buffered: what the in-order fast paths require.
    #[inline(always)]
    fn plain(&self) -> bool {
        match &self.cold {
            None => true,
            Some(c) => c.fin_at == NO_FIN && c.ranges.is_empty(),
        }
    }

    /// Bytes allocated for the ring and the range list.
    #[inline]
    fn cold_capacity(&self) -> usize {
        self.cold.as_ref().map_or(0, |c| {
            c.ring.capacity() + c.ranges.capacity() * std::mem::size_of::<(u64, u64)>()
        })
    }

    /// Frees the cold part when it holds nothing that matters any more: no FIN, no buffer,
    /// and an out-of-window end no further than the furthest byte seen (which only grows, so
    /// the ACK resynchronisation that takes the larger of the two is unchanged).
    fn shed_cold(&mut self) {
        if self.cold.as_ref().is_some_and(|c| {
            c.fin_at == NO_FIN
                && self.kept_len != HEAP
                && c.recent.capacity() == 0
                && c.far_end <= self.max_end
                && c.ring.capacity() == 0
                && c.ranges.capacity() == 0
        }) {
            self.cold = None;
        }
    }

    /// True once the stream start is known (from a SYN or the first data).
    pub fn is_initialized(&self) -> bool {
        self.flags & F_INIT != 0
    }

    /// The ISN, when the stream started with a SYN.
    pub fn isn(&self) -> Option<u32> {
        (self.flags & F_SYN != 0).then_some(self.isn)
    }

    /// Stream bytes accounted for so far (delivered as data or gap).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Out-of-order bytes held.
    pub fn buffered_bytes(&self) -> u64 {
        self.ranges().iter().map(|&(s, e)| e - s).sum()
    }

    /// Holes currently waiting to be filled.
    pub fn holes(&self) -> usize {
        self.ranges().len()
    }

    /// Bytes of memory held by buffers (ring and retained bytes).
    pub fn memory(&self) -> usize {
        self.cold_capacity() + self.kept_capacity()
    }

    /// Bytes held for out-of-order data (the ring and the range list), for the memory budget.
    pub fn buffer_memory(&self) -> usize {
        self.cold_capacity()
    }

    /// Gives up the holes under memory pressure: delivers the buffered data with gaps for the
    /// holes (as [`Reassembler::flush`]) and frees the buffers.
    pub fn give_up_buffers<E: FnMut(Chunk<'_>)>(
        &mut self,
        lim: &ReassemblyLimits,
        stats: &mut FlowStats,
        emit: &mut E,
    ) {
        if self.ranges().is_empty() && self.ring().is_empty() {
            if let Some(c) = self.cold.as_deref_mut() {
                c.ranges = Vec::new();
            }
            self.shed_cold();
            return;
        }
        self.flush(lim, stats, emit);
        if self.ranges().is_empty() {
            if let Some(c) = self.cold.as_deref_mut() {
                c.ranges = Vec::new();
                c.ring = Vec::new();
            }
            self.shed_cold();
        }
    }

    /// True once `Chunk::Fin` was delivered.
    pub fn fin_delivered(&self) -> bool {
        self.flags & F_FIN_DONE != 0
    }

    fn init(&mut self, base: u32) {
        self.base = base;
        self.flags |= F_INIT;
    }

    /// Stream offset of `seq`, taken within ±2³¹ of the next expected byte.
    fn abs(&self, seq: u32) -> i128 {
        let cur = self.base.wrapping_add(self.offset as u32);
        i128::from(self.offset) + i128::from(seq.wrapping_sub(cur) as i32)
    }

    /// A SYN (or the SYN of a SYN-ACK) with sequence number `seq`.
    pub fn syn(&mut self, seq: u32) -> SynKind {
        if !self.is_initialized() {
            self.init(seq.wrapping_add(1));
            self.isn = seq;
            self.flags |= F_SYN;
            SynKind::New
        } else if self.flags & F_SYN != 0 && self.isn == seq {
            SynKind::Retransmission
        } else {
            SynKind::Conflict
        }
    }

    /// A segment: `payload` is what the capture holds of its `declared_len` bytes (the rest
    /// is a gap), `seq` the sequence number of its first byte (after the SYN, for a SYN that
    /// carries data), `fin` its FIN flag.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn segment<E: FnMut(Chunk<'_>)>(
        &mut self,
        seq: u32,
        payload: &[u8],
        declared_len: u32,
        fin: bool,
        lim: &ReassemblyLimits,
        stats: &mut FlowStats,
        emit: &mut E,
    ) {
        // Fast path, the common case: the next expected bytes, all captured, no FIN, nothing
        // buffered. Delivered straight from the packet, with the same effects as below.
        if self.flags & F_INIT != 0
            && !fin
            && self.plain()
            && !payload.is_empty()
            && u64::from(declared_len) <= payload.len() as u64
            && seq == self.base.wrapping_add(self.offset as u32)
        {
            self.far_hits = 0;
            let end = self.offset + payload.len() as u64;
            if end > self.max_end {
                self.max_end = end;
            }
            self.emit_data(lim.max_retained_bytes, payload, emit);
            self.offset = end;
            return;
        }
        self.segment_slow(seq, payload, declared_len, fin, lim, stats, emit);
    }

    /// The next expected sequence number (meaningful once initialised).
    #[inline]
    fn expected(&self) -> u32 {
        self.base.wrapping_add(self.offset as u32)
    }

    /// True when an ACK of `ack` for this direction's bytes changes nothing but the retained
    /// bytes (see [`Reassembler::lane_ack`]): the direction has not started, or `ack` is
    /// exactly its next expected byte.
    #[inline]
    pub(crate) fn lane_ack_ok(&self, ack: u32) -> bool {
        self.flags & F_INIT == 0 || ack == self.expected()
    }

    /// [`Reassembler::ack`] of an ACK for which [`Reassembler::lane_ack_ok`] holds.
    #[inline]
    pub(crate) fn lane_ack(&mut self) {
        // Before the direction started nothing is retained, so clearing changes nothing.
        self.kept_clear();
    }

    /// True when a segment without SYN, FIN or RST is one [`Reassembler::lane_segment`]
    /// handles as [`Reassembler::segment`] would: payload that is the next expected bytes,
    /// all captured, with nothing buffered and no FIN seen; or no payload at all, at the
    /// next expected byte (or before the direction started).
    #[inline(always)]
    pub(crate) fn lane_ok(&self, seq: u32, payload: &[u8], declared_len: u32) -> bool {
        if payload.is_empty() {
            declared_len == 0
                && (self.flags & F_INIT == 0 || (seq == self.expected() && self.fin_at() == NO_FIN))
        } else {
            self.flags & F_INIT != 0
                && self.plain()
                && u64::from(declared_len) <= payload.len() as u64
                && seq == self.expected()
        }
    }

    /// [`Reassembler::segment`] of a segment for which [`Reassembler::lane_ok`] holds (no
    /// FIN): returns the payload to deliver (empty when there is none), having kept up to
    /// `keep` of its last bytes as retained.
    #[inline(always)]
    pub(crate) fn lane_segment<'p>(&mut self, payload: &'p [u8], keep: usize) -> &'p [u8] {
        if payload.is_empty() {
            // segment_slow of an empty segment at the next byte: only the furthest byte seen
            // may move up to it.
            if self.flags & F_INIT != 0 && self.offset > self.max_end {
                self.max_end = self.offset;
            }
            return payload;
        }
        self.far_hits = 0;
        let end = self.offset + payload.len() as u64;
        if end > self.max_end {
            self.max_end = end;
        }
        self.retain_fast(payload, keep);
        self.offset = end;
        payload
    }

    /// [`Reassembler::segment`] off its fast path.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn segment_slow<E: FnMut(Chunk<'_>)>(
        &mut self,
        seq: u32,
        payload: &[u8],
        declared_len: u32,
        fin: bool,
        lim: &ReassemblyLimits,
        stats: &mut FlowStats,
        emit: &mut E,
    ) {
        let declared = u64::from(declared_len).max(payload.len() as u64);
        if !self.is_initialized() {
            if declared == 0 && !fin {
                return;
            }
            self.init(seq);
        }
        let start = self.abs(seq);
        let mut cap_end = start + payload.len() as i128;
        let mut decl_end = start + i128::from(declared);
        let off = i128::from(self.offset);
        if declared > 0 || fin {
            if start > off + lim.max_seq_jump as i128 && self.far_hits < FAR_TOLERANCE {
                // Out of window: a forged or misplaced segment must not make the stream skip
                // ahead over data still to come. An ACK beyond it, or more such segments in a
                // row, show that the stream really continues there.
                self.far_hits += 1;
                let far = u64::try_from(decl_end).unwrap_or(0);
                if far > self.far_end() {
                    self.cold_mut().far_end = far;
                }
                stats.out_of_window += 1;
                return;
            }
            self.far_hits = 0;
        }
        if fin && self.fin_at() == NO_FIN && decl_end >= off && decl_end >= i128::from(self.max_end)
        {
            self.cold_mut().fin_at = u64::try_from(decl_end).unwrap_or(NO_FIN - 1);
        }
        let fin_at = self.fin_at();
        if fin_at != NO_FIN {
            let limit = i128::from(fin_at);
            cap_end = cap_end.min(limit);
            decl_end = decl_end.min(limit);
        }
        if decl_end > i128::from(self.max_end) {
            self.max_end = u64::try_from(decl_end).unwrap_or(self.max_end);
        }
        let mut seen = Seen::default();
        if cap_end > start {
            let n = usize::try_from(cap_end - start).unwrap_or(0);
            let bytes = payload.get(..n).unwrap_or_default();
            self.data(start, bytes, lim, stats, emit, &mut seen);
        }
        // A snaplen-cut tail right after what was delivered: those bytes will never come.
        if decl_end > cap_end && cap_end <= i128::from(self.offset) {
            let target = u64::try_from(decl_end).unwrap_or(0);
            self.skip_to(target, lim, stats, emit);
        }
        if seen.covered {
            if seen.fresh {
                stats.overlaps += 1;
            } else {
                stats.retransmissions += 1;
            }
        }
        if seen.mismatch {
            stats.overlap_mismatches += 1;
        }
        self.check_fin(emit);
    }

    /// The peer acknowledged everything before `ack`. Bytes before it that were never seen
    /// (up to the furthest byte seen) are given up as a gap.
    #[inline]
    pub fn ack<E: FnMut(Chunk<'_>)>(
        &mut self,
        ack: u32,
        lim: &ReassemblyLimits,
        stats: &mut FlowStats,
        emit: &mut E,
    ) {
        if !self.is_initialized() {
            return;
        }
        if ack == self.base.wrapping_add(self.offset as u32) {
            // Everything delivered is acknowledged, nothing beyond it: the common case.
            self.kept_clear();
            return;
        }
        self.ack_slow(ack, lim, stats, emit);
    }

    /// [`Reassembler::ack`] of an ACK that is not exactly the next expected byte.
    #[inline(never)]
    fn ack_slow<E: FnMut(Chunk<'_>)>(
        &mut self,
        ack: u32,
        lim: &ReassemblyLimits,
        stats: &mut FlowStats,
        emit: &mut E,
    ) {
        let a = self.abs(ack);
        let off = i128::from(self.offset);
        let recent_start = off - self.kept_count() as i128;
        if a > recent_start {
            let n = usize::try_from(a - recent_start).unwrap_or(usize::MAX);
            self.kept_drop_front(n);
        }
        let target = a.min(i128::from(self.max_end.max(self.far_end())));
        if target > off {
            self.skip_to(u64::try_from(target).unwrap_or(0), lim, stats, emit);
            self.check_fin(emit);
        }
    }

    /// Delivers everything held: buffered data with gaps for the holes, a gap for the tail
    /// that was announced but never seen, then the FIN if there was one.
    pub fn flush<E: FnMut(Chunk<'_>)>(
        &mut self,
        lim: &ReassemblyLimits,
        stats: &mut FlowStats,
        emit: &mut E,
    ) {
        if !self.is_initialized() {
            return;
        }
        let end = self.max_end.max(self.ranges().last().map_or(0, |r| r.1));
        self.skip_to(end, lim, stats, emit);
        self.check_fin(emit);
    }

    /// A RST from this direction: flushes, then delivers `Chunk::Rst` (once).
    pub fn rst<E: FnMut(Chunk<'_>)>(
        &mut self,
        lim: &ReassemblyLimits,
        stats: &mut FlowStats,
        emit: &mut E,
    ) {
        self.flush(lim, stats, emit);
        if self.flags & F_RST_DONE == 0 {
            self.flags |= F_RST_DONE;
            emit(Chunk::Rst);
        }
    }

    fn check_fin<E: FnMut(Chunk<'_>)>(&mut self, emit: &mut E) {
        let fin_at = self.fin_at();
        if fin_at != NO_FIN && self.offset >= fin_at && self.flags & F_FIN_DONE == 0 {
            self.flags |= F_FIN_DONE;
            emit(Chunk::Fin);
        }
    }

    /// Handles the captured bytes of a segment starting at stream offset `start`.
    fn data<E: FnMut(Chunk<'_>)>(
        &mut self,
        start: i128,
        bytes: &[u8],
        lim: &ReassemblyLimits,
        stats: &mut FlowStats,
        emit: &mut E,
        seen: &mut Seen,
    ) {
        let end = start + bytes.len() as i128;
        let mut capped = false;
        loop {
            let off = i128::from(self.offset);
            if end <= off {
                self.compare_old(start, bytes, seen);
                return;
            }
            if start > off {
                let s = u64::try_from(start).unwrap_or(0);
                if let Some(fresh) = self.try_insert(s, bytes, lim, seen) {
                    if fresh {
                        stats.out_of_order += 1;
                    }
                    return;
                }
                if !capped {
                    capped = true;
                    stats.reassembly_cap_hits += 1;
                }
                // Give up the first hole (or, with nothing buffered, the hole before this
                // segment) and try again.
                let target = self.ranges().first().map_or(s, |r| r.0);
                self.skip_to(target, lim, stats, emit);
                continue;
            }
            let k = usize::try_from(off - start).unwrap_or(0);
            let Some((old, new)) = bytes.split_at_checked(k) else {
                return;
            };
            if !old.is_empty() {
                self.compare_old(start, old, seen);
            }
            self.deliver_in_order(new, lim, emit, seen);
            return;
        }
    }

    /// Compares bytes before `offset` with the retained delivered bytes.
    fn compare_old(&self, start: i128, bytes: &[u8], seen: &mut Seen) {
        seen.covered = true;
        let off = i128::from(self.offset);
        let end = (start + bytes.len() as i128).min(off);
        let rs = off - self.kept_count() as i128;
        let lo = start.max(rs);
        if lo >= end {
            return;
        }
        let (Ok(i), Ok(j), Ok(p)) = (
            usize::try_from(lo - rs),
            usize::try_from(end - rs),
            usize::try_from(lo - start),
        ) else {
            return;
        };
        let Some(mine) = bytes.get(p..p + (j - i)) else {
            return;
        };
        if self.kept_bytes().get(i..j) != Some(mine) {
            seen.mismatch = true;
        }
    }

    /// Delivers `new`, which starts at `offset`, interleaving buffered ranges it overlaps
    /// (their bytes win), then whatever buffered data became contiguous.
    fn deliver_in_order<E: FnMut(Chunk<'_>)>(
        &mut self,
        new: &[u8],
        lim: &ReassemblyLimits,
        emit: &mut E,
        seen: &mut Seen,
    ) {
        let mut rest = new;
        while !rest.is_empty() {
            match self.ranges().first().copied() {
                Some((s, e)) if s <= self.offset => {
                    let n = usize::try_from(e - self.offset)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    let (ov, tail) = rest.split_at(n);
                    seen.covered = true;
                    if !ring_eq(self.ring(), self.offset, ov) {
                        seen.mismatch = true;
                    }
                    self.deliver_first_range(lim, emit);
                    rest = tail;
                }
                next => {
                    let n = next.map_or(rest.len(), |(s, _)| {
                        usize::try_from(s - self.offset)
                            .unwrap_or(usize::MAX)
                            .min(rest.len())
                    });
                    let (now, tail) = rest.split_at(n);
                    seen.fresh = true;
                    self.emit_data(lim.max_retained_bytes, now, emit);
                    self.offset += n as u64;
                    rest = tail;
                }
            }
        }
        self.deliver_ready(lim, emit);
    }

    /// Delivers the first buffered range (which must start at `offset`) from the ring.
    fn deliver_first_range<E: FnMut(Chunk<'_>)>(&mut self, lim: &ReassemblyLimits, emit: &mut E) {
        let Some(&(s, e)) = self.ranges().first() else {
            return;
        };
        debug_assert_eq!(s, self.offset);
        let len = usize::try_from(e - s).unwrap_or(0);
        // The ring is taken out while its bytes are delivered (retaining them may use the
        // cold part), then put back.
        let ring = self
            .cold
            .as_deref_mut()
            .map(|c| std::mem::take(&mut c.ring))
            .unwrap_or_default();
        let (a, b) = ring_slices(&ring, s, len);
        self.emit_data(lim.max_retained_bytes, a, emit);
        self.emit_data(lim.max_retained_bytes, b, emit);
        self.offset = e;
        if let Some(c) = self.cold.as_deref_mut() {
            c.ring = ring;
            c.ranges.remove(0);
            if c.ranges.is_empty() {
                // The hole is filled: the buffers go, and with them, unless the direction
                // still needs it, the cold part, which every later segment would otherwise
                // look into ([`Reassembler::plain`]).
                c.ring = Vec::new();
                c.ranges = Vec::new();
                self.shed_cold();
            }
        }
    }

    /// Delivers buffered ranges while they start at `offset`.
    fn deliver_ready<E: FnMut(Chunk<'_>)>(&mut self, lim: &ReassemblyLimits, emit: &mut E) {
        while self.ranges().first().is_some_and(|r| r.0 <= self.offset) {
            self.deliver_first_range(lim, emit);
        }
    }

    /// Accounts for every byte up to `target`: buffered ranges as data, the rest as gaps; then
    /// delivers what became contiguous.
    fn skip_to<E: FnMut(Chunk<'_>)>(
        &mut self,
        target: u64,
        lim: &ReassemblyLimits,
        stats: &mut FlowStats,
        emit: &mut E,
    ) {
        while self.offset < target {
            match self.ranges().first().copied() {
                Some((s, _)) if s <= self.offset => self.deliver_first_range(lim, emit),
                next => {
                    let stop = next.map_or(target, |(s, _)| s.min(target));
                    let n = stop - self.offset;
                    stats.reassembly_gaps += 1;
                    stats.reassembly_gap_bytes += n;
                    self.kept_clear();
                    self.offset = stop;
                    emit(Chunk::Gap(n));
                }
            }
        }
        self.deliver_ready(lim, emit);
    }

    /// Buffers an out-of-order segment starting at `start` (> `offset`). Returns whether it
    /// brought new bytes, or `None`, changing nothing, when they would break a cap.
    fn try_insert(
        &mut self,
        start: u64,
        bytes: &[u8],
        lim: &ReassemblyLimits,
        seen: &mut Seen,
    ) -> Option<bool> {
        let end = start + bytes.len() as u64;
        let ranges = self.ranges();
        let i0 = ranges.partition_point(|r| r.1 < start);
        let i1 = ranges.partition_point(|r| r.0 <= end);
        let touching = ranges.get(i0..i1).unwrap_or_default();
        let mut fresh = 0u64;
        let mut pos = start;
        for &(s, e) in touching {
            if s > pos {
                fresh += s - pos;
            }
            pos = pos.max(e);
        }
        if pos < end {
            fresh += end - pos;
        }
        if fresh > 0 {
            let holes = ranges.len() - touching.len() + 1;
            let last = ranges.last().map_or(0, |r| r.1);
            let span = end.max(last) - self.offset;
            if holes > lim.max_holes || span > lim.max_buffered_bytes as u64 {
                return None;
            }
            self.grow_ring(usize::try_from(span).unwrap_or(usize::MAX));
        }
        // Compare the known parts, write the new ones.
        let c = self.cold_mut();
        let mut pos = start;
        for i in i0..i1 {
            let Some(&(s, e)) = c.ranges.get(i) else {
                break;
            };
            if s > pos {
                let piece = Self::sub(bytes, start, pos, s);
                ring_write(&mut c.ring, pos, piece);
            }
            let (lo, hi) = (s.max(start), e.min(end));
            if lo < hi {
                seen.covered = true;
                if !ring_eq(&c.ring, lo, Self::sub(bytes, start, lo, hi)) {
                    seen.mismatch = true;
                }
            }
            pos = pos.max(e);
        }
        if pos < end {
            ring_write(&mut c.ring, pos, Self::sub(bytes, start, pos, end));
        }
        if fresh > 0 {
            seen.fresh = true;
            let (ns, ne) = match (c.ranges.get(i0), i1.checked_sub(1)) {
                (Some(first), Some(l)) if i1 > i0 => (
                    first.0.min(start),
                    c.ranges.get(l).map_or(end, |r| r.1.max(end)),
                ),
                _ => (start, end),
            };
            c.ranges.splice(i0..i1, [(ns, ne)]);
        }
        Some(fresh > 0)
    }

    /// The bytes of `bytes` (which start at stream offset `start`) between offsets `lo` and
    /// `hi`.
    fn sub(bytes: &[u8], start: u64, lo: u64, hi: u64) -> &[u8] {
        let a = usize::try_from(lo - start).unwrap_or(usize::MAX);
        let b = usize::try_from(hi - start).unwrap_or(usize::MAX);
        bytes.get(a..b).unwrap_or_default()
    }

    /// Makes the ring hold at least `span` bytes beyond `offset`, keeping its contents.
    fn grow_ring(&mut self, span: usize) {
        let c = self.cold_mut();
        if c.ring.len() >= span {
            return;
        }
        let cap = span.max(MIN_RING).next_power_of_two();
        let old = std::mem::replace(&mut c.ring, vec![0; cap]);
        for &(s, e) in &c.ranges {
            let len = usize::try_from(e - s).unwrap_or(0);
            let (a, b) = ring_slices(&old, s, len);
            ring_write(&mut c.ring, s, a);
            ring_write(&mut c.ring, s + a.len() as u64, b);
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
    use proptest::prelude::*;

    /// `copy_short` gives what `copy_from_slice` gives for every length up to `INLINE`, leaves
    /// the bytes after the copy alone, and copies nothing of a longer slice.
    #[test]
    fn copy_short_is_copy_from_slice() {
        let src: Vec<u8> = (1..=40u8).collect();
        for n in 0..=INLINE + 3 {
            let mut fast = [0xee; INLINE];
            let mut slow = [0xee; INLINE];
            copy_short(&mut fast, &src[..n]);
            if n <= INLINE {
                slow[..n].copy_from_slice(&src[..n]);
            }
            assert_eq!(fast, slow, "length {n}");
        }
    }

    /// One delivered chunk, owned.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Ev {
        Data(Vec<u8>),
        Gap(u64),
        Fin,
        Rst,
    }

    /// Records chunks, merging adjacent data.
    #[derive(Default)]
    struct Out(Vec<Ev>);

    impl Out {
        fn push(&mut self, c: Chunk<'_>) {
            match c {
                Chunk::Data(d) => {
                    assert!(!d.is_empty(), "empty data chunk");
                    if let Some(Ev::Data(v)) = self.0.last_mut() {
                        v.extend_from_slice(d);
                    } else {
                        self.0.push(Ev::Data(d.to_vec()));
                    }
                }
                Chunk::Gap(n) => {
                    assert!(n > 0, "empty gap");
                    self.0.push(Ev::Gap(n));
                }
                Chunk::Fin => self.0.push(Ev::Fin),
                Chunk::Rst => self.0.push(Ev::Rst),
            }
        }
    }

    fn lim(buf: usize, holes: usize) -> ReassemblyLimits {
        ReassemblyLimits {
            max_buffered_bytes: buf,
            max_holes: holes,
            max_retained_bytes: 4096,
            max_seq_jump: 1 << 20,
        }
    }

    /// A reassembler, its limits, counters and output.
    struct T {
        r: Reassembler,
        lim: ReassemblyLimits,
        st: FlowStats,
        out: Out,
    }

    impl T {
        fn new(lim: ReassemblyLimits) -> Self {
            T {
                r: Reassembler::new(),
                lim,
                st: FlowStats::default(),
                out: Out::default(),
            }
        }
        fn syn(&mut self, isn: u32) {
            assert_eq!(self.r.syn(isn), SynKind::New);
        }
        fn seg(&mut self, seq: u32, data: &[u8]) {
            self.seg_full(seq, data, data.len() as u32, false);
        }
        fn seg_full(&mut self, seq: u32, data: &[u8], declared: u32, fin: bool) {
            let out = &mut self.out;
            self.r.segment(
                seq,
                data,
                declared,
                fin,
                &self.lim,
                &mut self.st,
                &mut |c| out.push(c),
            );
        }
        fn ack(&mut self, ack: u32) {
            let out = &mut self.out;
            self.r
                .ack(ack, &self.lim, &mut self.st, &mut |c| out.push(c));
        }
        fn flush(&mut self) {
            let out = &mut self.out;
            self.r.flush(&self.lim, &mut self.st, &mut |c| out.push(c));
        }
        fn rst(&mut self) {
            let out = &mut self.out;
            self.r.rst(&self.lim, &mut self.st, &mut |c| out.push(c));
        }
        fn take(&mut self) -> Vec<Ev> {
            std::mem::take(&mut self.out.0)
        }
    }

    fn d(b: &[u8]) -> Ev {
        Ev::Data(b.to_vec())
    }

    #[test]
    fn in_order_is_delivered_at_once_without_buffering() {
        let mut t = T::new(lim(1000, 4));
        t.syn(100);
        t.seg(101, b"abc");
        assert_eq!(t.take(), vec![d(b"abc")]);
        t.seg(104, b"de");
        assert_eq!(t.take(), vec![d(b"de")]);
        assert_eq!(t.r.offset(), 5);
        assert_eq!(t.r.buffered_bytes(), 0);
        assert_eq!(t.r.cold.as_ref().map_or(0, |c| c.ring.capacity()), 0);
        assert_eq!(t.st, FlowStats::default());
    }

    #[test]
    fn zero_copy_in_order_chunk_points_into_the_packet() {
        let mut r = Reassembler::new();
        let mut st = FlowStats::default();
        let pkt = b"hello".to_vec();
        let mut ptr = None;
        r.syn(0);
        r.segment(1, &pkt, 5, false, &lim(10, 1), &mut st, &mut |c| {
            if let Chunk::Data(x) = c {
                ptr = Some(x.as_ptr());
            }
        });
        assert_eq!(ptr, Some(pkt.as_ptr()));
    }

    #[test]
    fn out_of_order_is_buffered_then_released() {
        let mut t = T::new(lim(1000, 4));
        t.syn(0);
        t.seg(4, b"def");
        t.seg(7, b"g");
        assert_eq!(t.take(), vec![]);
        assert_eq!((t.r.holes(), t.r.buffered_bytes()), (1, 4));
        t.seg(1, b"abc");
        assert_eq!(t.take(), vec![d(b"abcdefg")]);
        assert_eq!(t.st.out_of_order, 2);
        assert_eq!(t.r.holes(), 0);
        assert_eq!(
            t.r.cold.as_ref().map_or(0, |c| c.ring.capacity()),
            0,
            "ring freed when empty"
        );
        assert!(
            t.r.cold.is_none(),
            "the cold part goes once the hole is filled: later segments take the plain path"
        );
        assert!(t.r.plain());
    }

    #[test]
    fn a_filled_hole_keeps_the_cold_part_that_still_holds_something() {
        // Retained bytes beyond `INLINE` live in the cold part: it stays, the buffers go.
        let mut t = T::new(lim(1000, 4));
        t.syn(0);
        t.seg(41, b"z");
        t.seg(1, &[b'a'; 40]);
        let mut want = vec![b'a'; 40];
        want.push(b'z');
        assert_eq!(t.take(), vec![d(&want)]);
        let c =
            t.r.cold
                .as_ref()
                .expect("retained bytes in the heap window");
        assert_eq!((c.ring.capacity(), c.ranges.capacity()), (0, 0));
        assert_eq!(t.r.kept_bytes(), &want[..]);
        // A FIN seen before the hole is filled stays too.
        let mut t = T::new(lim(1000, 4));
        t.syn(0);
        t.seg_full(4, b"d", 1, true);
        t.seg(1, b"abc");
        assert!(t.r.cold.is_some(), "the FIN is in the cold part");
        assert!(!t.r.plain());
    }

    #[test]
    fn mid_stream_starts_at_first_payload() {
        let mut t = T::new(lim(1000, 4));
        t.seg(5000, b""); // pure ACK: does not start the stream
        assert!(!t.r.is_initialized());
        t.seg(7000, b"xy");
        t.seg(6990, b"0123456789"); // before the start: old, dropped
        assert_eq!(t.take(), vec![d(b"xy")]);
        assert_eq!(t.st.retransmissions, 1);
    }

    #[test]
    fn retransmission_and_overlap_first_data_wins() {
        let mut t = T::new(lim(1000, 4));
        t.syn(0);
        t.seg(1, b"abcd");
        t.seg(1, b"abcd"); // same bytes again
        assert_eq!(t.st.retransmissions, 1);
        assert_eq!(t.st.overlap_mismatches, 0);
        t.seg(3, b"XXef"); // overlaps "cd" with other bytes, adds "ef"
        assert_eq!(t.take(), vec![d(b"abcdef")]);
        assert_eq!((t.st.overlaps, t.st.overlap_mismatches), (1, 1));
        // Buffered data wins over a later in-order copy.
        t.seg(9, b"ij");
        t.seg(7, b"ghIJk");
        assert_eq!(t.take(), vec![d(b"ghijk")]);
        assert_eq!((t.st.overlaps, t.st.overlap_mismatches), (2, 2));
    }

    #[test]
    fn ack_beyond_a_hole_gives_it_up() {
        let mut t = T::new(lim(1000, 4));
        t.syn(0);
        t.seg(1, b"0123456789");
        t.seg(21, b"klmnopqrst"); // 11..21 lost by the capture
        t.ack(11); // acks only what we have: nothing to do
        assert_eq!(t.take(), vec![d(b"0123456789")]);
        t.ack(31);
        assert_eq!(t.take(), vec![Ev::Gap(10), d(b"klmnopqrst")]);
        assert_eq!((t.st.reassembly_gaps, t.st.reassembly_gap_bytes), (1, 10));
        // An ACK beyond anything seen makes no gap: the bytes may still come.
        t.ack(1000);
        assert_eq!(t.take(), vec![]);
        t.seg(31, b"u");
        assert_eq!(t.take(), vec![d(b"u")]);
    }

    #[test]
    fn hole_cap_forces_a_gap_and_continues() {
        let mut t = T::new(lim(1000, 2));
        t.syn(0);
        t.seg(3, b"c"); // hole 1..3
        t.seg(5, b"e"); // hole 4..5
        assert_eq!(t.take(), vec![]);
        t.seg(7, b"g"); // a third hole: give up the first
        assert_eq!(t.take(), vec![Ev::Gap(2), d(b"c")]);
        assert_eq!(t.st.reassembly_cap_hits, 1);
        assert_eq!(t.r.holes(), 2);
        t.seg(4, b"d");
        t.seg(6, b"f");
        assert_eq!(t.take(), vec![d(b"defg")]);
    }

    #[test]
    fn buffer_cap_forces_a_gap_and_delivers_the_segment() {
        let mut t = T::new(lim(8, 4));
        t.syn(0);
        t.seg(11, b"0123456789"); // needs 20 bytes of span: over the cap, nothing buffered
        assert_eq!(t.take(), vec![Ev::Gap(10), d(b"0123456789")]);
        assert_eq!(t.st.reassembly_cap_hits, 1);
        t.seg(23, b"xy"); // span 4: fits
        assert_eq!(t.take(), vec![]);
        t.seg(30, b"z"); // span 11: over; give up the first hole, then "z" fits
        assert_eq!(t.take(), vec![Ev::Gap(2), d(b"xy")]);
        assert_eq!(t.r.buffered_bytes(), 1);
        t.flush();
        assert_eq!(t.take(), vec![Ev::Gap(5), d(b"z")]);
        assert_eq!(t.st.reassembly_gaps, 3);
        assert_eq!(t.st.reassembly_gap_bytes, 17);
    }

    #[test]
    fn zero_caps_never_buffer() {
        let mut t = T::new(lim(0, 0));
        t.syn(0);
        t.seg(3, b"c");
        assert_eq!(t.take(), vec![Ev::Gap(2), d(b"c")]);
        assert_eq!(t.r.memory(), t.r.kept_capacity());
    }

    #[test]
    fn snaplen_cut_segment_delivers_bytes_then_gap() {
        let mut t = T::new(lim(1000, 4));
        t.syn(0);
        t.seg_full(1, b"abcd", 100, false);
        assert_eq!(t.take(), vec![d(b"abcd"), Ev::Gap(96)]);
        t.seg(101, b"next");
        assert_eq!(t.take(), vec![d(b"next")]);
        // A cut segment out of order leaves a hole that the flush turns into a gap.
        t.seg_full(110, b"zz", 10, false);
        t.seg(105, b"v");
        t.flush();
        assert_eq!(t.take(), vec![d(b"v"), Ev::Gap(4), d(b"zz"), Ev::Gap(8)]);
        // With a header-only capture the whole segment is a gap.
        t.seg_full(120, b"", 5, false);
        assert_eq!(t.take(), vec![Ev::Gap(5)]);
    }

    #[test]
    fn fin_after_all_data_before_it() {
        let mut t = T::new(lim(1000, 4));
        t.syn(0);
        t.seg_full(4, b"def", 3, true); // FIN arrives first, out of order
        assert_eq!(t.take(), vec![]);
        t.seg(1, b"abc");
        assert_eq!(t.take(), vec![d(b"abcdef"), Ev::Fin]);
        t.seg_full(7, b"", 0, true); // retransmitted FIN
        t.seg(7, b"late"); // data after the FIN is ignored
        t.flush();
        assert_eq!(t.take(), vec![]);
    }

    #[test]
    fn flush_gives_holes_as_gaps_then_fin() {
        let mut t = T::new(lim(1000, 4));
        t.syn(0);
        t.seg(3, b"cd");
        t.seg_full(9, b"i", 1, true);
        t.flush();
        assert_eq!(
            t.take(),
            vec![Ev::Gap(2), d(b"cd"), Ev::Gap(4), d(b"i"), Ev::Fin]
        );
    }

    #[test]
    fn rst_flushes_then_resets_once() {
        let mut t = T::new(lim(1000, 4));
        t.syn(0);
        t.seg(3, b"cd");
        t.rst();
        t.rst();
        assert_eq!(t.take(), vec![Ev::Gap(2), d(b"cd"), Ev::Rst]);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut t = T::new(lim(1000, 4));
        t.syn(u32::MAX - 2); // stream starts at MAX - 1
        t.seg(2, b"ef"); // wrapped, out of order
        t.seg(u32::MAX - 1, b"ab");
        t.seg(0, b"cd");
        assert_eq!(t.take(), vec![d(b"abcdef")]);
        t.ack(4);
        assert_eq!(t.r.kept_count(), 0);
        t.seg(4, b"g");
        assert_eq!(t.take(), vec![d(b"g")]);
    }

    #[test]
    fn far_segment_is_out_of_window_until_acked_or_repeated() {
        let mut t = T::new(lim(1000, 4));
        t.syn(0);
        t.seg(1, b"ab");
        t.seg(1 << 30, b"forged"); // a GiB ahead: ignored
        assert_eq!(t.st.out_of_window, 1);
        t.seg(3, b"cd");
        assert_eq!(t.take(), vec![d(b"abcd")]);
        // The capture lost 2 MiB; the peer's ACK shows the stream continues after it (the
        // ignored segment itself is part of the gap).
        let far = 5 + (2 << 20);
        t.seg(far, b"xy");
        assert_eq!(t.take(), vec![]);
        t.ack(far + 2);
        assert_eq!(t.take(), vec![Ev::Gap((2 << 20) + 2)]);
        t.seg(far + 2, b"z");
        assert_eq!(t.take(), vec![d(b"z")]);
        // Without ACKs, a run of far segments is believed.
        let far2 = far + 3 + (4 << 20);
        for i in 0..FAR_TOLERANCE {
            t.seg(far2 + u32::from(i), &[i]);
        }
        assert_eq!(t.take(), vec![]);
        t.seg(far2 + 4, b"w");
        assert_eq!(t.take(), vec![Ev::Gap((4 << 20) + 4), d(b"w")]);
        assert_eq!(t.st.out_of_window, 6);
    }

    #[test]
    fn syn_retransmission_and_conflict() {
        let mut r = Reassembler::new();
        assert_eq!(r.syn(7), SynKind::New);
        assert_eq!(r.syn(7), SynKind::Retransmission);
        assert_eq!(r.syn(9), SynKind::Conflict);
        assert_eq!(r.isn(), Some(7));
    }

    #[test]
    fn retransmission_of_acked_bytes_is_not_compared() {
        let mut t = T::new(lim(1000, 4));
        t.syn(0);
        t.seg(1, b"abcd");
        t.ack(5);
        t.seg(1, b"XXXX");
        assert_eq!(t.st.retransmissions, 1);
        assert_eq!(t.st.overlap_mismatches, 0);
    }

    #[test]
    fn ring_grows_keeping_contents() {
        let mut t = T::new(lim(1 << 20, 8));
        t.syn(0);
        t.seg(101, &[7u8; 100]);
        let small = t.r.ring().len();
        t.seg(10_001, &[9u8; 100]);
        assert!(t.r.ring().len() > small);
        t.seg(1, &[1u8; 100]);
        t.flush();
        let out = t.take();
        assert_eq!(
            out,
            vec![
                Ev::Data([vec![1u8; 100], vec![7u8; 100]].concat()),
                Ev::Gap(9800),
                Ev::Data(vec![9u8; 100])
            ]
        );
    }

    // ---- property tests ----

    /// One thing that happens to the reassembler.
    #[derive(Clone, Debug)]
    enum Op {
        /// A segment: stream offset, length, bytes flipped (xor mask applied to every byte),
        /// bytes captured (snaplen).
        Seg {
            at: usize,
            len: usize,
            xor: u8,
            captured: usize,
        },
        /// The FIN at the end of the stream.
        Fin,
        /// The peer acknowledges up to this stream offset.
        Ack(usize),
    }

    /// A stream, a random cut into segments, extra overlapping re-sends and duplicates.
    fn scenario(max_len: usize) -> impl Strategy<Value = (Vec<u8>, u32, Vec<(usize, usize)>)> {
        (
            prop::collection::vec(any::<u8>(), 1..max_len),
            prop_oneof![any::<u32>(), (u32::MAX - 3000)..=u32::MAX],
        )
            .prop_flat_map(|(data, isn)| {
                let n = data.len();
                (
                    Just(data),
                    Just(isn),
                    prop::collection::vec(1..n.max(2), 0..20),
                    prop::collection::vec((0..n, 1..200usize), 0..12),
                )
            })
            .prop_map(|(data, isn, mut cuts, extra)| {
                let n = data.len();
                cuts.push(0);
                cuts.push(n);
                cuts.sort_unstable();
                cuts.dedup();
                let mut segs: Vec<(usize, usize)> =
                    cuts.windows(2).map(|w| (w[0], w[1] - w[0])).collect();
                for (at, len) in extra {
                    segs.push((at, len.min(n - at)));
                }
                (data, isn, segs)
            })
    }

    /// Feeds `ops` to a fresh reassembler (after a SYN), then flushes.
    fn feed(data: &[u8], isn: u32, ops: &[Op], lim: ReassemblyLimits) -> (Vec<Ev>, FlowStats) {
        let mut t = T::new(lim);
        t.syn(isn);
        let base = isn.wrapping_add(1);
        for op in ops {
            match *op {
                Op::Seg {
                    at,
                    len,
                    xor,
                    captured,
                } => {
                    let bytes: Vec<u8> = data[at..at + len].iter().map(|b| b ^ xor).collect();
                    let cap = captured.min(len);
                    t.seg_full(
                        base.wrapping_add(at as u32),
                        &bytes[..cap],
                        len as u32,
                        false,
                    );
                }
                Op::Fin => t.seg_full(base.wrapping_add(data.len() as u32), b"", 0, true),
                Op::Ack(a) => t.ack(base.wrapping_add(a as u32)),
            }
        }
        t.flush();
        (t.take(), t.st)
    }

    /// Checks that data and gaps account for `data` exactly, data bytes matching, then a FIN.
    fn check_accounting(data: &[u8], out: &[Ev], st: &FlowStats) -> Result<(), TestCaseError> {
        let mut pos = 0usize;
        let (mut gaps, mut gap_bytes) = (0u64, 0u64);
        for (i, ev) in out.iter().enumerate() {
            match ev {
                Ev::Data(b) => {
                    prop_assert!(pos + b.len() <= data.len(), "data beyond the end");
                    prop_assert_eq!(&data[pos..pos + b.len()], &b[..], "bytes at {}", pos);
                    pos += b.len();
                }
                Ev::Gap(n) => {
                    gaps += 1;
                    gap_bytes += n;
                    pos += *n as usize;
                    prop_assert!(pos <= data.len(), "gap beyond the end");
                }
                Ev::Fin => prop_assert_eq!(i, out.len() - 1, "FIN not last"),
                Ev::Rst => prop_assert!(false, "unexpected RST"),
            }
        }
        prop_assert_eq!(pos, data.len());
        prop_assert_eq!(out.last(), Some(&Ev::Fin));
        prop_assert_eq!(gaps, st.reassembly_gaps);
        prop_assert_eq!(gap_bytes, st.reassembly_gap_bytes);
        Ok(())
    }

    fn big() -> ReassemblyLimits {
        ReassemblyLimits {
            max_buffered_bytes: 1 << 20,
            max_holes: 1 << 16,
            max_retained_bytes: 1 << 20,
            max_seq_jump: 1 << 20,
        }
    }

    /// An operation on the retained bytes (see `retained_inline_equals_model`).
    #[derive(Clone, Debug)]
    enum KeptOp {
        Push(usize),
        Clear,
        DropFront(usize),
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The retained bytes, inline or in the heap window and moving between them, are
        /// always the last `keep` bytes pushed since the last clear, less those dropped: as a
        /// plain vector gives them.
        #[test]
        fn retained_inline_equals_model(
            ops in proptest::collection::vec(
                prop_oneof![
                    4 => (0..70usize).prop_map(KeptOp::Push),
                    1 => Just(KeptOp::Clear),
                    1 => (0..40usize).prop_map(KeptOp::DropFront),
                ],
                0..60,
            ),
            keep in proptest::sample::select(vec![1usize, 5, 28, 29, 30, 31, 64, 2048]),
        ) {
            let mut r = Reassembler::new();
            let mut model: Vec<u8> = Vec::new();
            let mut next = 0u8;
            for op in ops {
                match op {
                    KeptOp::Push(n) => {
                        let data: Vec<u8> = (0..n)
                            .map(|_| {
                                next = next.wrapping_add(1);
                                next
                            })
                            .collect();
                        if n > 0 {
                            r.retain(&data, keep);
                            model.extend_from_slice(&data);
                            let excess = model.len().saturating_sub(keep);
                            model.drain(..excess);
                        }
                    }
                    KeptOp::Clear => {
                        r.kept_clear();
                        model.clear();
                    }
                    KeptOp::DropFront(n) => {
                        r.kept_drop_front(n);
                        model.drain(..n.min(model.len()));
                    }
                }
                prop_assert_eq!(r.kept_bytes(), &model[..]);
                prop_assert_eq!(r.kept_count(), model.len());
            }
        }

        /// Any order, duplication and same-byte overlap of segments that together cover the
        /// stream gives back exactly the stream, with no gap.
        #[test]
        fn any_order_gives_the_stream(
            (data, isn, segs) in scenario(3000),
            dups in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
            seed in any::<u64>(),
        ) {
            let mut ops: Vec<Op> = segs
                .iter()
                .map(|&(at, len)| Op::Seg { at, len, xor: 0, captured: len })
                .collect();
            for i in dups {
                let o = ops[i.index(ops.len())].clone();
                ops.push(o);
            }
            ops.push(Op::Fin);
            shuffle(&mut ops, seed);
            let (out, st) = feed(&data, isn, &ops, big());
            prop_assert_eq!(out, vec![Ev::Data(data.clone()), Ev::Fin]);
            prop_assert_eq!(st.reassembly_gaps, 0);
            prop_assert_eq!(st.reassembly_cap_hits, 0);
            prop_assert_eq!(st.overlap_mismatches, 0);
        }

        /// With drops, snaplen cuts, random ACKs and small caps, data and gaps still account
        /// for every byte exactly once, and every data byte is the original one.
        #[test]
        fn every_byte_is_data_or_gap(
            (data, isn, segs) in scenario(2000),
            keep in prop::collection::vec(any::<bool>(), 40),
            cut in prop::collection::vec(prop_oneof![Just(usize::MAX), 0..50usize], 40),
            acks in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
            buf in 0..1500usize,
            holes in 0..6usize,
            retain in 0..64usize,
            jump in prop_oneof![Just(1usize << 20), 0..600usize],
            seed in any::<u64>(),
        ) {
            let mut ops: Vec<Op> = segs
                .iter()
                .enumerate()
                .filter(|(i, _)| keep[i % keep.len()])
                .map(|(i, &(at, len))| Op::Seg { at, len, xor: 0, captured: cut[i % cut.len()] })
                .collect();
            for a in acks {
                ops.push(Op::Ack(a.index(data.len() + 1)));
            }
            ops.push(Op::Fin);
            shuffle(&mut ops, seed);
            // An out-of-window FIN is ignored: the peer's final ACK resynchronises, then the
            // FIN is retransmitted.
            ops.push(Op::Ack(data.len()));
            ops.push(Op::Fin);
            let lim = ReassemblyLimits {
                max_buffered_bytes: buf,
                max_holes: holes,
                max_retained_bytes: retain,
                max_seq_jump: jump,
            };
            let (out, st) = feed(&data, isn, &ops, lim);
            check_accounting(&data, &out, &st)?;
        }

        /// Overlapping copies with different bytes never change what was delivered from the
        /// first-arriving copy, and each one that differs is counted.
        #[test]
        fn first_copy_wins_and_mismatches_are_counted(
            (data, isn, segs) in scenario(1500),
            xors in prop::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 40),
            seed in any::<u64>(),
        ) {
            let mut ops: Vec<Op> = segs
                .iter()
                .enumerate()
                .map(|(i, &(at, len))| Op::Seg { at, len, xor: xors[i % xors.len()], captured: len })
                .collect();
            shuffle(&mut ops, seed);
            ops.push(Op::Fin);
            // The model: first-arriving byte at each offset, and per-segment findings.
            let mut known: Vec<Option<u8>> = vec![None; data.len()];
            let (mut mism, mut retrans, mut overl) = (0u64, 0u64, 0u64);
            for op in &ops {
                if let Op::Seg { at, len, xor, .. } = *op {
                    let (mut cov, mut fresh, mut diff) = (false, false, false);
                    for (k, slot) in known[at..at + len].iter_mut().enumerate() {
                        let b = data[at + k] ^ xor;
                        match slot {
                            Some(old) => { cov = true; diff |= *old != b; }
                            None => { fresh = true; *slot = Some(b); }
                        }
                    }
                    mism += u64::from(diff);
                    retrans += u64::from(cov && !fresh);
                    overl += u64::from(cov && fresh);
                }
            }
            let expect: Vec<u8> = known.iter().map(|b| b.unwrap()).collect();
            let (out, st) = feed(&data, isn, &ops, big());
            prop_assert_eq!(out, vec![Ev::Data(expect), Ev::Fin]);
            prop_assert_eq!(st.overlap_mismatches, mism);
            prop_assert_eq!(st.retransmissions, retrans);
            prop_assert_eq!(st.overlaps, overl);
        }
    }

    /// A deterministic Fisher-Yates shuffle (xorshift) so failing cases shrink by seed.
    fn shuffle<T>(v: &mut [T], seed: u64) {
        let mut s = seed | 1;
        for i in (1..v.len()).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let j = (s % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }

    /// Feeds `ops` like [`feed`], through the public fast paths or (with `slow`) always
    /// through the general code, recording every chunk as delivered (not merged). Also returns
    /// the stream offset and the retained bytes at the end, before the flush.
    fn feed_exact(
        data: &[u8],
        isn: u32,
        ops: &[Op],
        lim: ReassemblyLimits,
        slow: bool,
    ) -> (Vec<Ev>, FlowStats, u64, Vec<u8>) {
        let mut r = Reassembler::new();
        let mut st = FlowStats::default();
        let mut out: Vec<Ev> = Vec::new();
        let mut emit = |c: Chunk<'_>| {
            out.push(match c {
                Chunk::Data(d) => Ev::Data(d.to_vec()),
                Chunk::Gap(n) => Ev::Gap(n),
                Chunk::Fin => Ev::Fin,
                Chunk::Rst => Ev::Rst,
            })
        };
        assert_eq!(r.syn(isn), SynKind::New);
        let base = isn.wrapping_add(1);
        for op in ops {
            match *op {
                Op::Seg {
                    at,
                    len,
                    xor,
                    captured,
                } => {
                    let bytes: Vec<u8> = data[at..at + len].iter().map(|b| b ^ xor).collect();
                    let cap = captured.min(len);
                    let seq = base.wrapping_add(at as u32);
                    let p = &bytes[..cap];
                    if slow {
                        r.segment_slow(seq, p, len as u32, false, &lim, &mut st, &mut emit);
                    } else {
                        r.segment(seq, p, len as u32, false, &lim, &mut st, &mut emit);
                    }
                }
                Op::Fin => {
                    let seq = base.wrapping_add(data.len() as u32);
                    r.segment(seq, b"", 0, true, &lim, &mut st, &mut emit);
                }
                Op::Ack(a) => {
                    let ack = base.wrapping_add(a as u32);
                    if slow {
                        if r.is_initialized() {
                            r.ack_slow(ack, &lim, &mut st, &mut emit);
                        }
                    } else {
                        r.ack(ack, &lim, &mut st, &mut emit);
                    }
                }
            }
        }
        let (offset, kept) = (r.offset(), r.kept_bytes().to_vec());
        r.flush(&lim, &mut st, &mut emit);
        (out, st, offset, kept)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The in-order fast paths of `segment` and `ack` give exactly what the general code
        /// gives (same chunks, same counters, same offset and retained bytes), in order or
        /// not, with retransmissions, overlaps, mismatching copies, drops, snaplen cuts, ACKs
        /// and small caps (the cases that make the fast path fall back).
        #[test]
        fn fast_paths_agree_with_the_general_code(
            (data, isn, segs) in scenario(2000),
            keep in prop::collection::vec(prop_oneof![3 => Just(true), 1 => Just(false)], 40),
            cut in prop::collection::vec(prop_oneof![4 => Just(usize::MAX), 1 => 0..50usize], 40),
            xors in prop::collection::vec(prop_oneof![4 => Just(0u8), 1 => any::<u8>()], 40),
            acks in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
            in_order in any::<bool>(),
            buf in prop_oneof![Just(1usize << 20), 0..1500usize],
            holes in 0..6usize,
            retain in prop_oneof![Just(2048usize), 0..64usize],
            seed in any::<u64>(),
        ) {
            let mut ops: Vec<Op> = segs
                .iter()
                .enumerate()
                .filter(|(i, _)| keep[i % keep.len()])
                .map(|(i, &(at, len))| Op::Seg {
                    at,
                    len,
                    xor: xors[i % xors.len()],
                    captured: cut[i % cut.len()],
                })
                .collect();
            for a in acks {
                ops.push(Op::Ack(a.index(data.len() + 1)));
            }
            if in_order {
                // Mostly the fast path: segments by stream offset, ACKs where they fall.
                ops.sort_by_key(|o| match *o {
                    Op::Seg { at, .. } => (at, 0),
                    Op::Ack(a) => (a, 1),
                    Op::Fin => (usize::MAX, 2),
                });
            } else {
                shuffle(&mut ops, seed);
            }
            ops.push(Op::Fin);
            let lim = ReassemblyLimits {
                max_buffered_bytes: buf,
                max_holes: holes,
                max_retained_bytes: retain,
                max_seq_jump: 1 << 20,
            };
            let fast = feed_exact(&data, isn, &ops, lim, false);
            let slow = feed_exact(&data, isn, &ops, lim, true);
            prop_assert_eq!(fast, slow);
        }

        /// The retained bytes behave as a bounded queue of the last bytes delivered.
        #[test]
        fn retained_bytes_are_the_last_delivered(
            steps in prop::collection::vec(
                prop_oneof![
                    (1..300usize).prop_map(Some),
                    Just(None),
                ],
                0..60,
            ),
            drops in prop::collection::vec(0..400usize, 60),
            keep in 1..700usize,
        ) {
            let mut r = Retained::default();
            let mut model: std::collections::VecDeque<u8> = Default::default();
            let mut next = 0u8;
            for (i, step) in steps.iter().enumerate() {
                match *step {
                    Some(n) => {
                        let data: Vec<u8> = (0..n)
                            .map(|_| {
                                next = next.wrapping_add(1);
                                next
                            })
                            .collect();
                        r.push(&data, keep);
                        model.extend(&data);
                        while model.len() > keep {
                            model.pop_front();
                        }
                    }
                    None => {
                        let n = drops[i];
                        r.drop_front(n);
                        model.drain(..n.min(model.len()));
                    }
                }
                prop_assert_eq!(r.len(), model.len());
                prop_assert_eq!(r.bytes(), &model.iter().copied().collect::<Vec<u8>>()[..]);
                prop_assert!(r.capacity() <= 4 * keep.max(300));
            }
        }
    }
}
