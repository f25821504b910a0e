//! The events a pipeline has completed and not yet handed out, in slots kept from round to
//! round.
//!
//! An event is ~350 bytes with a handful of vectors: building one from nothing, dropping it
//! once it was consumed and recycling its vectors cost more than the parse that made it. An
//! [`EventBuf`] keeps its events after they were handed out (`clear` only forgets how many are
//! live); the parsers then write the next events over the stale ones: [`EventBuf::push`]
//! replaces one (its vectors go to the spares of `proto::recycle`), and a parser that knows
//! its event's shape writes over a stale slot (`EventBuf::read_slot`), every field in
//! place, keeping the vectors' room (a repeated Modbus read rewrites its values where the last
//! event of the slot had its values). Consumers see only the live events, as a slice.
//!
//! A shard worker's buffer posts its events instead of writing them: a fast read's fields
//! and data go to a list written in order (`EventBuf::post_read`), any other event is packed
//! into flat lists ([`EventBuf::push`], `proto::packed`) and its vectors recycled on the
//! worker at once. The slots keep their stale events, and the thread that consumes the
//! events writes each into memory of its own ([`EventBuf::get_with`]), so the slots,
//! written and rewritten on the worker, are not read on the other core.
//!
//! The buffer is bounded between rounds: [`EventBuf::clear`] keeps at most [`KEEP_SLOTS`]
//! stale events (the rest are dropped), so a burst of events (a flood of flows
//! ending at once) does not stay in memory.

use super::modbus::PostedRead;
use super::packed::Packed;
use crate::event::{AppProto, Endpoint, Evidence, Function, IcsEvent, OpKind, Outcome};
use crate::time::Timestamp;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// Most stale events an [`EventBuf`] keeps between rounds.
pub const KEEP_SLOTS: usize = 1024;

/// Completed events, in order, in slots reused round after round (see the module doc).
#[derive(Debug, Default)]
pub struct EventBuf {
    /// Live events first (`..live`), then stale ones kept for reuse.
    slots: Vec<IcsEvent>,
    /// Number of live events.
    live: usize,
    /// Whether events are posted rather than written (a shard worker's buffer, whose events
    /// another thread consumes): see [`EventBuf::post_read`] and [`EventBuf::push`].
    post: bool,
    /// The reads posted, in order of their slots (which hold stale events meanwhile).
    posted: Vec<Posted>,
    /// The read data of `posted`, one after the other.
    raw: Vec<u8>,
    /// The capture files of `posted` (each once in a row).
    files: Vec<Arc<str>>,
    /// The first entry of `posted` not yet read by [`EventBuf::get_with`].
    next_posted: usize,
    /// The other events posted, in order of their slots.
    events: Vec<PostedEvent>,
    /// Their records.
    packed: Packed,
    /// The first entry of `events` not yet read by [`EventBuf::get_with`].
    next_event: usize,
}

/// A fast read posted by a shard worker: the read with its answer, its live slot (left
/// stale), its file in `files` and where its data is in `raw`. The read comes first, on the
/// record's first line: copied from where the parser built it in the same 16-byte pieces, its
/// loads take the stores they follow (a read at offset 12 was loaded across two stores, a
/// stall on every post).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
struct Posted {
    read: PostedRead,
    slot: u32,
    file: u32,
    start: u32,
    len: u16,
}

/// Another event posted by a shard worker: its live slot (left stale) and its record in
/// `packed`, whose files are `files` too.
#[derive(Clone, Copy, Debug)]
struct PostedEvent {
    slot: u32,
    index: u32,
}

impl Posted {
    /// Writes this read's event, values decoded from its data in `raw`, over `ev`; false
    /// when its file is not in `files` (never, as [`EventBuf::post_read`] posts them).
    #[inline(always)]
    fn write(&self, ev: &mut IcsEvent, raw: &[u8], files: &[Arc<str>]) -> bool {
        let Some(file) = files.get(self.file as usize) else {
            return false;
        };
        self.read.write_into(ev, file);
        let start = self.start as usize;
        let data = raw
            .get(start..start + usize::from(self.len))
            .unwrap_or_default();
        match ev.accesses.first_mut() {
            Some(a) => {
                modbus_values(&mut a.values, data, self.read.bits());
                true
            }
            None => false,
        }
    }
}

/// The entry of `list` (in order of `slot`) for live event `i`, if any: the one at `next`
/// (reading in order), none when `i` falls before it and after the one before, else by a
/// binary search. `next` moves past the entry found.
#[inline(always)]
fn find_posted<T>(
    list: &[T],
    next: &mut usize,
    i: usize,
    slot: impl Fn(&T) -> usize,
) -> Option<usize> {
    let before = |k: usize| list.get(k).is_some_and(|q| slot(q) < i);
    let at = match list.get(*next) {
        Some(p) if slot(p) == i => Some(*next),
        // Between the last entry read and the next one: not in this list.
        Some(p) if slot(p) > i && (*next == 0 || before(*next - 1)) => None,
        None if list.is_empty() || before(list.len() - 1) => None,
        _ => list.binary_search_by_key(&i, &slot).ok(),
    };
    if let Some(k) = at {
        *next = k + 1;
    }
    at
}

/// The events a thread that consumes a shard worker's events writes posted events into
/// ([`EventBuf::get_with`]): one for fast reads and one for the others, so that each keeps the
/// shape of the events it gets (a read's one access, a Publish's list of named items) and is
/// written over in place, not cut down and grown again at every change of kind.
#[derive(Debug)]
pub struct Scratch {
    read: IcsEvent,
    other: IcsEvent,
}

impl Scratch {
    /// Two blank events.
    pub fn new() -> Self {
        let file: Arc<str> = Arc::from("");
        Scratch {
            read: blank(&file),
            other: blank(&file),
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

/// Largest read data a buffer posts (a register read's maximum, 250 bytes).
const MAX_POSTED: usize = 256;

impl EventBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `ev` (over a stale slot when there is one, whose vectors are recycled). A
    /// posting buffer posts it packed instead (as it posts fast reads): the slot keeps
    /// its stale event and `ev`'s vectors are recycled here, where they were built.
    #[inline]
    pub fn push(&mut self, mut ev: IcsEvent) {
        if self.post && self.post_event(&mut ev) {
            return;
        }
        match self.slots.get_mut(self.live) {
            Some(slot) => {
                let mut old = std::mem::replace(slot, ev);
                super::recycle::recycle_all(std::slice::from_mut(&mut old));
            }
            None => self.slots.push(ev),
        }
        self.live += 1;
    }

    /// A read's event: `head` writes every field but the first access's values (it leaves
    /// exactly one access), then the values are decoded from the read data `data` (coils
    /// or inputs when `bits` is the quantity read, registers otherwise).
    /// ([`EventBuf::read_slot`] then [`EventBuf::commit_read`]; the parsers use those.)
    #[cfg(test)]
    pub(crate) fn fill_read(
        &mut self,
        file: &Arc<str>,
        data: &[u8],
        bits: Option<u16>,
        head: impl FnOnce(&mut IcsEvent),
    ) {
        if let Some(ev) = self.read_slot(file) {
            head(ev);
            self.commit_read(data, bits);
        }
    }

    /// A read's event (see the module doc), written in two steps by a caller that writes
    /// it in line: the slot of the next event (a stale one, or a blank one with
    /// `file`), whose every field but the first access's values the caller writes (leaving
    /// exactly one access), then [`EventBuf::commit_read`]. Nothing is live until then.
    #[inline(always)]
    pub(crate) fn read_slot(&mut self, file: &Arc<str>) -> Option<&mut IcsEvent> {
        if self.live >= self.slots.len() {
            self.slots.push(blank(file));
        }
        self.slots.get_mut(self.live)
    }

    /// Makes the event written in [`EventBuf::read_slot`] live, its values decoded from
    /// `data` (coils or inputs when `bits` is the quantity read, registers otherwise).
    #[inline(always)]
    pub(crate) fn commit_read(&mut self, data: &[u8], bits: Option<u16>) {
        let i = self.live;
        let Some(ev) = self.slots.get_mut(i) else {
            return;
        };
        self.live += 1;
        if let Some(a) = ev.accesses.first_mut() {
            modbus_values(&mut a.values, data, bits);
        }
    }

    /// Whether fast reads are to be posted ([`EventBuf::post_read`]) rather than written.
    #[inline(always)]
    pub(crate) fn posts(&self) -> bool {
        self.post
    }

    /// A fast read and its data (of the byte count it asks for), answered `Ok`, made the
    /// next live event without writing its slot: the slot keeps its stale event, and the
    /// thread that consumes the events writes the read's event into memory of its own
    /// ([`EventBuf::get_with`]). An event slot written on one core and read on the other
    /// moves across twice per round (the consumer reads it, then the worker writes over it);
    /// a posted read is ~130 bytes written in order. Data longer than a read's maximum is
    /// written at once.
    #[inline(never)]
    pub(crate) fn post_read(&mut self, read: PostedRead, file: &Arc<str>, data: &[u8]) {
        if self.live >= self.slots.len() {
            self.slots.push(blank(file));
        }
        let i = self.live;
        if data.len() <= MAX_POSTED {
            if let (Ok(slot), Ok(start), Ok(len)) = (
                u32::try_from(i),
                u32::try_from(self.raw.len()),
                u16::try_from(data.len()),
            ) {
                let file = self.file_index(file);
                self.posted.push(Posted {
                    read,
                    slot,
                    file,
                    start,
                    len,
                });
                self.raw.extend_from_slice(data);
                self.live += 1;
                return;
            }
        }
        if let Some(ev) = self.slots.get_mut(i) {
            read.write_into(ev, file);
            self.commit_read(data, read.bits());
        }
    }

    /// Posts `ev` packed as the next live event (its slot left stale) and recycles its
    /// vectors; false when it could not be packed (the caller writes it into its slot then).
    #[inline(never)]
    fn post_event(&mut self, ev: &mut IcsEvent) -> bool {
        let Ok(slot) = u32::try_from(self.live) else {
            return false;
        };
        let file = &ev.evidence.file;
        let index = self.file_index(file);
        let Some(i) = self.packed.pack(ev, index) else {
            return false;
        };
        if self.live >= self.slots.len() {
            self.slots.push(blank(file));
        }
        self.events.push(PostedEvent { slot, index: i });
        self.live += 1;
        super::recycle::recycle_all(std::slice::from_mut(ev));
        true
    }

    /// The index of `file` in `files`, where a posted event names it: the last one when it is
    /// that (a capture's events come in a row), else `file` added.
    #[inline(always)]
    fn file_index(&mut self, file: &Arc<str>) -> u32 {
        if !self.files.last().is_some_and(|f| Arc::ptr_eq(f, file)) {
            self.files.push(Arc::clone(file));
        }
        u32::try_from(self.files.len() - 1).unwrap_or(u32::MAX)
    }

    /// Makes a buffer post its events (`true`: fast reads whole, see
    /// [`EventBuf::post_read`], the others packed, see [`EventBuf::push`]) or write them.
    pub(crate) fn set_post(&mut self, post: bool) {
        self.post = post;
    }

    /// The `i`th live event: a posted one's written into `scratch` (memory of the thread that
    /// calls this), any other the slot's. Cheapest when called in order.
    #[inline]
    pub fn get_with<'a>(&'a mut self, i: usize, scratch: &'a mut Scratch) -> Option<&'a IcsEvent> {
        if i >= self.live {
            return None;
        }
        if let Some(k) = find_posted(&self.posted, &mut self.next_posted, i, |p| p.slot as usize) {
            let p = self.posted.get(k)?;
            let ev = &mut scratch.read;
            return p.write(ev, &self.raw, &self.files).then_some(&*ev);
        }
        if let Some(k) = find_posted(&self.events, &mut self.next_event, i, |e| e.slot as usize) {
            let e = self.events.get(k)?;
            let ev = &mut scratch.other;
            return self.packed.unpack(e.index, ev, &self.files).then_some(&*ev);
        }
        self.slots.get(i)
    }

    /// Writes the posted events into their slots, so the live events can be read as a slice.
    pub(crate) fn settle(&mut self) {
        for p in self.posted.drain(..) {
            if let Some(ev) = self.slots.get_mut(p.slot as usize) {
                p.write(ev, &self.raw, &self.files);
            }
        }
        for e in self.events.drain(..) {
            if let Some(ev) = self.slots.get_mut(e.slot as usize) {
                self.packed.unpack(e.index, ev, &self.files);
            }
        }
        self.forget_posted();
    }

    /// Forgets the live events (they stay as stale slots, at most [`KEEP_SLOTS`] of them).
    #[inline]
    pub fn clear(&mut self) {
        self.live = 0;
        if !self.files.is_empty() {
            self.forget_posted();
        }
        if self.slots.len() > KEEP_SLOTS {
            self.shrink();
        }
    }

    /// Forgets the events posted (a posting buffer's, once a round).
    #[inline(never)]
    fn forget_posted(&mut self) {
        self.posted.clear();
        self.raw.clear();
        self.files.clear();
        self.events.clear();
        self.packed.clear(KEEP_SLOTS);
        (self.next_posted, self.next_event) = (0, 0);
    }

    #[cold]
    fn shrink(&mut self) {
        // Dropped, not recycled: the spares are full after a burst anyway. The read data of
        // the burst (empty by now) goes too.
        self.slots.truncate(KEEP_SLOTS);
        self.slots.shrink_to(KEEP_SLOTS);
        self.posted.shrink_to(KEEP_SLOTS);
        self.events.shrink_to(KEEP_SLOTS);
        self.raw.shrink_to(KEEP_SLOTS * 32);
    }

    /// Moves the live events out, in order (the buffer keeps no stale slot of them).
    pub fn take(&mut self) -> Vec<IcsEvent> {
        self.settle();
        let mut out = std::mem::take(&mut self.slots);
        out.truncate(self.live);
        self.live = 0;
        out
    }

    /// Forgets the live events from the `n`th on (they become stale slots).
    pub fn truncate(&mut self, n: usize) {
        self.live = self.live.min(n);
        self.posted.retain(|p| (p.slot as usize) < n);
        self.events.retain(|e| (e.slot as usize) < n);
    }

    /// Number of live events (readable before the values are settled).
    #[inline]
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no event is live.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Number of events kept, live and stale.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }
}

impl Deref for EventBuf {
    type Target = [IcsEvent];

    #[inline]
    fn deref(&self) -> &[IcsEvent] {
        debug_assert!(
            self.posted.is_empty() && self.events.is_empty(),
            "events read before the posted ones were settled"
        );
        self.slots.get(..self.live).unwrap_or_default()
    }
}

impl DerefMut for EventBuf {
    #[inline]
    fn deref_mut(&mut self) -> &mut [IcsEvent] {
        debug_assert!(
            self.posted.is_empty() && self.events.is_empty(),
            "events read before the posted ones were settled"
        );
        self.slots.get_mut(..self.live).unwrap_or_default()
    }
}

impl PartialEq for EventBuf {
    /// Equal when the live events are (stale slots do not count).
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<'a> IntoIterator for &'a EventBuf {
    type Item = &'a IcsEvent;
    type IntoIter = std::slice::Iter<'a, IcsEvent>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl FromIterator<IcsEvent> for EventBuf {
    fn from_iter<I: IntoIterator<Item = IcsEvent>>(iter: I) -> Self {
        Vec::from_iter(iter).into()
    }
}

impl From<Vec<IcsEvent>> for EventBuf {
    fn from(slots: Vec<IcsEvent>) -> Self {
        let live = slots.len();
        EventBuf {
            slots,
            live,
            ..Self::default()
        }
    }
}

/// Decodes a Modbus read's data into `values` (whatever it held).
#[inline(always)]
fn modbus_values(values: &mut crate::event::Values, data: &[u8], bits: Option<u16>) {
    super::modbus::read_values(values, data, bits);
}

/// An event with nothing in it, for a new slot.
pub(crate) fn blank(file: &Arc<str>) -> IcsEvent {
    let nobody = Endpoint {
        ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port: 0,
        mac: None,
    };
    IcsEvent {
        ts: Timestamp::default(),
        proto: AppProto::Modbus,
        flow_id: 0,
        client: nobody,
        server: nobody,
        vlan: None,
        unit_id: None,
        session: None,
        op: OpKind::Other,
        function: Function::NONE,
        accesses: Vec::new(),
        outcome: Outcome::NoResponse,
        latency_us: None,
        violations: Vec::new(),
        facts: Vec::new(),
        details: Vec::new(),
        evidence: Evidence {
            file: Arc::clone(file),
            packet: 0,
            response_packet: None,
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::detect::testkit::read_hr;
    use crate::event::Value;

    /// Rounds of reads (registers, coils, data too long to post, no data) between other
    /// events, over stale slots of other shapes: a posting buffer leaves the reads' slots
    /// as they were, and gives the events a writing buffer gives, through `get_with` (in
    /// order or not) and through `settle`.
    #[test]
    fn posted_reads_read_as_written_ones() {
        let file: Arc<str> = Arc::from("f.pcap");
        let other: Arc<str> = Arc::from("g.pcap");
        let long = vec![0x12; MAX_POSTED + 2];
        let reads: [(&[u8], u8, u16); 4] = [
            (&[0, 1, 0xff, 0xfe], 3, 2),
            (&[0b1010_0101, 0b11], 1, 10),
            (&long, 4, 129),
            (&[], 3, 0),
        ];
        let fill = |b: &mut EventBuf, round: i64| {
            for (k, &(data, fc, quantity)) in reads.iter().enumerate() {
                let r = PostedRead::sample(round * 10 + k as i64, fc, 100 + k as u16, quantity);
                let f = if k == 1 { &other } else { &file };
                if b.posts() {
                    b.post_read(r, f, data);
                } else if let Some(ev) = b.read_slot(f) {
                    r.write_into(ev, f);
                    b.commit_read(data, r.bits());
                }
                if k % 2 == 0 {
                    b.push(read_hr(round, "10.0.0.3", "10.0.0.4", 2, 7, &[1, 2, 3]));
                }
            }
        };
        let mut written = EventBuf::new();
        let mut posting = EventBuf::new();
        posting.set_post(true);
        let mut scratch = Scratch::new();
        for round in 0..3 {
            fill(&mut written, round);
            fill(&mut posting, round);
            let want = written.to_vec();
            assert_eq!(posting.len(), want.len());
            // Three reads posted (not the long one), and the two other events packed.
            assert_eq!((posting.posted.len(), posting.events.len()), (3, 2));
            let before: Vec<IcsEvent> = posting.slots.clone();
            let got: Vec<IcsEvent> = (0..posting.len())
                .map(|i| posting.get_with(i, &mut scratch).unwrap().clone())
                .collect();
            assert_eq!(got, want, "round {round} in order");
            let back: Vec<IcsEvent> = (0..posting.len())
                .rev()
                .map(|i| posting.get_with(i, &mut scratch).unwrap().clone())
                .collect();
            assert_eq!(back.into_iter().rev().collect::<Vec<_>>(), want);
            assert!(posting.get_with(posting.len(), &mut scratch).is_none());
            // The posted events' slots were not written.
            assert_eq!(posting.slots, before);
            posting.settle();
            assert_eq!(posting.to_vec(), want, "round {round} settled");
            written.clear();
            posting.clear();
            assert!(posting.posted.is_empty() && posting.raw.is_empty());
            assert!(posting.events.is_empty());
            assert!(posting.packed.is_empty());
            assert!(posting.files.is_empty());
            // The next round writes over other shapes: a one-value read in every slot.
            for b in [&mut written, &mut posting] {
                for k in 0..want.len() {
                    b.push(read_hr(k as i64, "10.0.0.5", "10.0.0.6", 3, 9, &[k as i64]));
                }
                b.clear();
            }
        }
    }

    #[test]
    fn live_events_only_and_slots_kept_between_rounds() {
        let file: Arc<str> = Arc::from("f.pcap");
        let mut b = EventBuf::new();
        assert!(b.is_empty());
        b.push(read_hr(1, "10.0.0.1", "10.0.0.2", 1, 0, &[1]));
        b.push(read_hr(2, "10.0.0.1", "10.0.0.2", 1, 0, &[2]));
        assert_eq!(b.len(), 2);
        b.clear();
        assert!(b.is_empty() && b.iter().next().is_none());
        assert_eq!(b.slots(), 2);
        // `fill_read` gets the stale event of the first slot, then a blank one past the end.
        let mut seen = Vec::new();
        for _ in 0..3 {
            b.fill_read(&file, &[0, 7], None, |ev| {
                seen.push(ev.accesses.len());
                ev.flow_id = 42;
                ev.accesses.truncate(1);
                if ev.accesses.is_empty() {
                    ev.accesses = read_hr(0, "10.0.0.1", "10.0.0.2", 1, 0, &[]).accesses;
                }
            });
        }
        assert_eq!(seen, vec![1, 1, 0]);
        assert_eq!((b.len(), b.slots()), (3, 3));
        assert!(b.iter().all(|e| e.flow_id == 42));
        assert!(b.iter().all(|e| e.accesses[0].values == [Value::Int(7)]));
        // A push over a stale slot replaces its event.
        b.truncate(1);
        b.push(read_hr(3, "10.0.0.1", "10.0.0.2", 1, 0, &[3]));
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].accesses[0].values, vec![Value::Int(3)]);
        assert_eq!(b, EventBuf::from(b.to_vec()));
        let taken = b.take();
        assert_eq!(taken.len(), 2);
        assert!(b.is_empty() && b.slots() == 0);
    }

    #[test]
    fn a_burst_is_not_kept() {
        let mut b: EventBuf = (0..KEEP_SLOTS as i64 + 100)
            .map(|k| read_hr(k, "10.0.0.1", "10.0.0.2", 1, 0, &[k]))
            .collect();
        assert_eq!(b.len(), KEEP_SLOTS + 100);
        b.clear();
        assert_eq!(b.slots(), KEEP_SLOTS);
        assert!(b.is_empty());
        // A posting buffer's burst of reads is not kept either.
        b.set_post(true);
        let file: Arc<str> = Arc::from("f.pcap");
        for k in 0..KEEP_SLOTS as i64 + 100 {
            b.post_read(PostedRead::sample(k, 3, 0, 125), &file, &[0; 250]);
        }
        assert!(b.raw.len() >= 250 * KEEP_SLOTS);
        b.clear();
        assert!(b.raw.capacity() <= KEEP_SLOTS * 32 && b.posted.capacity() <= KEEP_SLOTS);
    }
}
