//! The events a pipeline has completed and not yet handed out, in slots kept from round to
//! round.
//!
//! An event is ~350 bytes with a handful of vectors: building one from nothing, dropping it
//! once it was consumed and recycling its vectors cost more than the parse that made it. An
//! [`EventBuf`] keeps its events after they were handed out (`clear` only forgets how many are
//! live); the parsers then write the next events over the stale ones: [`EventBuf::push`]
//! replaces one (its vectors go to the spares of `proto::recycle`), and a parser that knows
//! its event's shape writes over a stale slot with `EventBuf::fill`, every field in
//! place, keeping the vectors' room (a repeated Modbus read rewrites its values where the last
//! event of the slot had its values). Consumers see only the live events, as a slice.
//!
//! The buffer is bounded between rounds: [`EventBuf::clear`] keeps at most [`KEEP_SLOTS`]
//! stale events (the rest are recycled and dropped), so a burst of events (a flood of flows
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
}

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

    /// Appends an event written by `fill`, which gets a stale slot's event as the last round
    /// left it (any protocol, any content) or a blank one, and must set every field (vectors
    /// emptied or refilled).
    #[inline(always)]
    pub(crate) fn fill(&mut self, file: &Arc<str>, fill: impl FnOnce(&mut IcsEvent)) {
        if self.live >= self.slots.len() {
            self.slots.push(blank(file));
        }
        if let Some(ev) = self.slots.get_mut(self.live) {
            fill(ev);
            self.live += 1;
        }
    }

    /// Forgets the live events (they stay as stale slots, at most [`KEEP_SLOTS`] of them).
    #[inline]
    pub fn clear(&mut self) {
        self.live = 0;
        if self.slots.len() > KEEP_SLOTS {
            self.shrink();
        }
    }

    #[cold]
    fn shrink(&mut self) {
        if let Some(extra) = self.slots.get_mut(KEEP_SLOTS..) {
            super::recycle::recycle_all(extra);
        }
        self.slots.truncate(KEEP_SLOTS);
        self.slots.shrink_to(KEEP_SLOTS);
    }

    /// Moves the live events out, in order (the buffer keeps no stale slot of them).
    pub fn take(&mut self) -> Vec<IcsEvent> {
        let mut out = std::mem::take(&mut self.slots);
        out.truncate(self.live);
        self.live = 0;
        out
    }

    /// Forgets the live events from the `n`th on (they become stale slots).
    pub fn truncate(&mut self, n: usize) {
        self.live = self.live.min(n);
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
        self.slots.get(..self.live).unwrap_or_default()
    }
}

impl DerefMut for EventBuf {
    #[inline]
    fn deref_mut(&mut self) -> &mut [IcsEvent] {
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
        EventBuf { slots, live }
    }
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
        function: Function {
            code: 0,
            name: "",
            category: "",
            sub: None,
            sub_name: None,
        },
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
        // `fill` gets the stale event of the first slot, then a blank one past the end.
        let mut seen = Vec::new();
        for _ in 0..3 {
            b.fill(&file, |ev| {
                seen.push(ev.accesses.len());
                ev.flow_id = 42;
            });
        }
        assert_eq!(seen, vec![1, 1, 0]);
        assert_eq!((b.len(), b.slots()), (3, 3));
        assert!(b.iter().all(|e| e.flow_id == 42));
        // A push over a stale slot replaces its event.
        b.truncate(1);
        b.push(read_hr(3, "10.0.0.1", "10.0.0.2", 1, 0, &[3]));
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].accesses[0].values, vec![crate::event::Value::Int(3)]);
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
    }
}
