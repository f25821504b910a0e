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
//! The buffer is bounded between rounds: [`EventBuf::clear`] keeps at most [`KEEP_SLOTS`]
//! stale events (the rest are dropped), so a burst of events (a flood of flows
//! ending at once) does not stay in memory.

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
    /// Whether read values are left to [`EventBuf::settle`] (a shard worker's buffer, whose
    /// events another thread consumes).
    defer: bool,
    /// Value lists still to write, in order.
    due: Vec<Due>,
    /// The read data of `due`, one after the other.
    raw: Vec<u8>,
}

/// A read's value list left to [`EventBuf::settle`]: the slot, where its data is in `raw`,
/// and how to read it.
#[derive(Clone, Copy, Debug)]
struct Due {
    slot: u32,
    start: u32,
    len: u16,
    /// Coils or inputs: the quantity read; registers: `None`.
    bits: Option<u16>,
}

/// Largest read data a buffer defers (a register read's maximum, 250 bytes).
const MAX_DEFERRED: usize = 256;

impl EventBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `ev` (over a stale slot when there is one, whose vectors are recycled).
    #[inline]
    pub fn push(&mut self, ev: IcsEvent) {
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
    /// or inputs when `bits` is the quantity read, registers otherwise): now, or, in a
    /// buffer that defers, by [`EventBuf::settle`] on the thread that consumes the events.
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
    /// `data` (coils or inputs when `bits` is the quantity read, registers otherwise): now,
    /// or, in a buffer that defers, by [`EventBuf::settle`] on the thread that consumes the
    /// events.
    #[inline(always)]
    pub(crate) fn commit_read(&mut self, data: &[u8], bits: Option<u16>) {
        let i = self.live;
        let Some(ev) = self.slots.get_mut(i) else {
            return;
        };
        self.live += 1;
        if self.defer && data.len() <= MAX_DEFERRED {
            if let (Ok(slot), Ok(start), Ok(len)) = (
                u32::try_from(i),
                u32::try_from(self.raw.len()),
                u16::try_from(data.len()),
            ) {
                self.due.push(Due {
                    slot,
                    start,
                    len,
                    bits,
                });
                self.raw.extend_from_slice(data);
                return;
            }
        }
        if let Some(a) = ev.accesses.first_mut() {
            modbus_values(&mut a.values, data, bits);
        }
    }

    /// Makes a buffer leave read values to [`EventBuf::settle`] (`true`) or write them at
    /// once.
    pub(crate) fn set_defer(&mut self, defer: bool) {
        self.defer = defer;
    }

    /// Writes the read values left by [`EventBuf::commit_read`]: the consuming thread calls
    /// this before it reads the events.
    pub(crate) fn settle(&mut self) {
        for d in self.due.drain(..) {
            let start = d.start as usize;
            let data = self
                .raw
                .get(start..start + usize::from(d.len))
                .unwrap_or_default();
            let ev = self.slots.get_mut(d.slot as usize);
            if let Some(a) = ev.and_then(|ev| ev.accesses.first_mut()) {
                modbus_values(&mut a.values, data, d.bits);
            }
        }
        self.raw.clear();
    }

    /// Forgets the live events (they stay as stale slots, at most [`KEEP_SLOTS`] of them).
    #[inline]
    pub fn clear(&mut self) {
        self.live = 0;
        if !self.due.is_empty() {
            self.due.clear();
            self.raw.clear();
        }
        if self.slots.len() > KEEP_SLOTS {
            self.shrink();
        }
    }

    #[cold]
    fn shrink(&mut self) {
        // Dropped, not recycled: the spares are full after a burst anyway. The read data of
        // the burst (empty by now) goes too.
        self.slots.truncate(KEEP_SLOTS);
        self.slots.shrink_to(KEEP_SLOTS);
        self.due.shrink_to(KEEP_SLOTS);
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
        self.due.retain(|d| (d.slot as usize) < n);
    }

    /// Number of live events (readable before the values are settled).
    #[inline]
    pub fn len(&self) -> usize {
        self.live
    }

    /// The last live event (the one just pushed: its values are written).
    #[inline]
    pub fn last_mut(&mut self) -> Option<&mut IcsEvent> {
        let i = self.live.checked_sub(1)?;
        self.slots.get_mut(i)
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
            self.due.is_empty(),
            "events read before their values were settled"
        );
        self.slots.get(..self.live).unwrap_or_default()
    }
}

impl DerefMut for EventBuf {
    #[inline]
    fn deref_mut(&mut self) -> &mut [IcsEvent] {
        debug_assert!(
            self.due.is_empty(),
            "events read before their values were settled"
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
fn blank(file: &Arc<str>) -> IcsEvent {
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

    /// A deferring buffer leaves read values to `settle` (registers and coils, from the
    /// data as it was), and gives the same events as one that writes them at once; data
    /// too long to defer is written at once.
    #[test]
    fn deferred_values_settle_to_the_same_events() {
        let file: Arc<str> = Arc::from("f.pcap");
        let long = vec![0x12; MAX_DEFERRED + 2];
        let reads: [(&[u8], Option<u16>); 4] = [
            (&[0, 1, 0xff, 0xfe], None),
            (&[0b1010_0101, 0b11], Some(10)),
            (&long, None),
            (&[], None),
        ];
        let run = |defer: bool| {
            let mut b = EventBuf::new();
            b.set_defer(defer);
            for round in 0..3 {
                for (data, bits) in reads {
                    b.fill_read(&file, data, bits, |ev| {
                        *ev = read_hr(round, "10.0.0.1", "10.0.0.2", 1, 0, &[9, 9, 9]);
                    });
                }
                assert_eq!(b.due.len(), if defer { 3 } else { 0 });
                b.settle();
                let out = b.to_vec();
                b.clear();
                assert!(b.due.is_empty() && b.raw.is_empty());
                if round == 2 {
                    return out;
                }
            }
            Vec::new()
        };
        let (now, later) = (run(false), run(true));
        assert_eq!(now, later);
        assert_eq!(
            now[0].accesses[0].values,
            [Value::Int(1), Value::Int(0xfffe)]
        );
        assert_eq!(now[1].accesses[0].values.len(), 10);
        assert_eq!(now[2].accesses[0].values.len(), 125);
        assert!(now[3].accesses[0].values.is_empty());
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
        // A deferring buffer's burst of read data is not kept either.
        b.set_defer(true);
        let file: Arc<str> = Arc::from("f.pcap");
        for k in 0..KEEP_SLOTS as i64 + 100 {
            b.fill_read(&file, &[0; 250], None, |ev| {
                *ev = read_hr(k, "10.0.0.1", "10.0.0.2", 1, 0, &[k]);
            });
        }
        assert!(b.raw.len() >= 250 * KEEP_SLOTS);
        b.clear();
        assert!(b.raw.capacity() <= KEEP_SLOTS * 32 && b.due.capacity() <= KEEP_SLOTS);
    }
}
