//! Modbus transactions of one flow: requests waiting for their responses.
//!
//! A response is matched to its request in O(1) by (transaction id, unit id). Requests are
//! also kept in arrival order (a queue with lazy deletion), so that timeouts, the pending cap
//! and the end of the flow release them oldest first: the event order is deterministic.

use super::events::{ReqEvent, ReqShape};
use super::types::Violations;
use crate::time::Timestamp;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher, RandomState};

/// Key of a transaction within a flow.
pub(crate) type TxKey = (u16, u8);

/// Hashes a [`TxKey`] with one multiply, keyed per flow from [`RandomState`].
///
/// The key (24 bits) is attacker-chosen but the map holds at most the pending cap; the secret
/// seed keeps bucket collisions from being chosen in advance. SipHash cost a fifth of the
/// transaction layer's time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyHasherBuilder {
    seed: u64,
}

impl Default for KeyHasherBuilder {
    fn default() -> Self {
        KeyHasherBuilder {
            seed: RandomState::new().hash_one(0x4d42_u64) | 1,
        }
    }
}

impl BuildHasher for KeyHasherBuilder {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher {
            seed: self.seed,
            acc: 0,
        }
    }
}

/// The hasher of [`KeyHasherBuilder`]: bytes shifted into an accumulator, one folded multiply.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyHasher {
    seed: u64,
    acc: u64,
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u8(*b);
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.acc = self.acc.rotate_left(8) ^ u64::from(n);
    }
    fn write_u16(&mut self, n: u16) {
        self.acc = self.acc.rotate_left(16) ^ u64::from(n);
    }
    fn finish(&self) -> u64 {
        let m = u128::from(self.acc ^ self.seed) * u128::from(0x9E37_79B9_7F4A_7C15_u64);
        (m as u64) ^ ((m >> 64) as u64)
    }
}

/// A request waiting for its response, in a slot of [`Transactions`] that is reused by later
/// requests: a request is written into its slot field by field and its event is moved out of
/// it field by field, with no copy of a whole record.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    seq: u64,
    /// Raw function code of the request.
    pub(crate) fc: u8,
    /// The request fields its response is checked against.
    pub(crate) shape: ReqShape,
    /// The request's part of its event.
    pub(crate) req: ReqEvent,
    /// Violations of the request.
    pub(crate) violations: Violations,
}

/// Index of a [`Pending`] slot.
pub(crate) type Slot = u32;

/// Why a pending request left without a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Release {
    /// Older than the timeout.
    Timeout,
    /// The flow ended, or a newer request reused its key.
    NoResponse,
}

/// What adding a request did to the pending set.
#[derive(Debug, Default)]
pub(crate) struct Added {
    /// The slot of a request with the same key, now superseded: the caller emits it and
    /// then [`Transactions::free`]s it.
    pub(crate) replaced: Option<Slot>,
    /// Requests dropped to stay under the cap.
    pub(crate) dropped: u64,
    /// True when this drop starts a flood episode.
    pub(crate) flood_started: bool,
}

/// The only pending request, held outside the map and the queue.
#[derive(Clone, Copy, Debug)]
struct One {
    key: TxKey,
    slot: Slot,
    seq: u64,
    ts: Timestamp,
}

/// The pending requests of one flow.
///
/// Most flows alternate request and response: then the one pending request is kept in
/// `one`, with no hashing and no queue. `one` is set only while `map` and `order` are both
/// empty, and stands for the state they would have (the key in the map, its entry alone in
/// the queue); any operation that needs more first spills it there ([`Transactions::spill`]).
#[derive(Debug, Default)]
pub(crate) struct Transactions {
    /// The single pending request, when there is exactly one and nothing else is queued.
    one: Option<One>,
    /// Pending requests by key: their slots.
    map: HashMap<TxKey, Slot, KeyHasherBuilder>,
    /// Request slots, live or free (at most as many as requests were ever pending at once,
    /// plus the one being added).
    slots: Vec<Pending>,
    /// Slots not in use.
    free: Vec<Slot>,
    order: VecDeque<(TxKey, u64, Timestamp)>,
    next_seq: u64,
    flooding: bool,
    /// Tests only: never use `one` (the reference the fast path is checked against).
    #[cfg(test)]
    no_one: bool,
}

impl Transactions {
    /// Number of requests waiting.
    pub(crate) fn len(&self) -> usize {
        self.map.len() + usize::from(self.one.is_some())
    }

    /// True when no request is pending or queued and no flood episode is open (and the
    /// single-request fast path is on): then [`Transactions::add`] only keeps the new
    /// request, replacing and dropping none, and an answer or a release settles nothing.
    #[inline]
    pub(crate) fn idle(&self) -> bool {
        #[cfg(test)]
        if self.no_one {
            return false;
        }
        self.one.is_none() && self.map.is_empty() && self.order.is_empty() && !self.flooding
    }

    /// [`Transactions::add`] when [`Transactions::idle`]: the request in `slot` becomes the
    /// single pending one (nothing replaced, dropped or flooding).
    #[inline]
    pub(crate) fn add_idle(&mut self, key: TxKey, slot: Slot) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(p) = self.slots.get_mut(slot as usize) {
            p.seq = seq;
            let ts = p.req.ts;
            self.one = Some(One { key, slot, seq, ts });
        }
    }

    /// Moves the single pending request into the map and the queue.
    fn spill(&mut self) {
        if let Some(o) = self.one.take() {
            self.map.insert(o.key, o.slot);
            self.order.push_back((o.key, o.seq, o.ts));
        }
    }

    /// False when [`Transactions::release`] without `all` would do nothing at `now`: no
    /// flood episode to settle and the oldest queued request (if any) not timed out.
    #[inline]
    pub(crate) fn release_due(&self, now: Timestamp, timeout_secs: u64) -> bool {
        self.flooding
            || self.one.is_some_and(|o| o.ts.plus_secs(timeout_secs) < now)
            || self
                .order
                .front()
                .is_some_and(|(_, _, ts)| ts.plus_secs(timeout_secs) < now)
    }

    fn seq_of(&self, slot: Slot) -> Option<u64> {
        self.slots.get(slot as usize).map(|p| p.seq)
    }

    fn is_live(&self, key: &TxKey, seq: u64) -> bool {
        self.map
            .get(key)
            .is_some_and(|s| self.seq_of(*s) == Some(seq))
    }

    /// A slot for a new request, to be filled through [`Transactions::slot_mut`] and then
    /// [`Transactions::add`]ed. Its event part holds what a previous request left (empty
    /// vectors and the like): the filler overwrites every field.
    #[inline]
    pub(crate) fn alloc(&mut self) -> Slot {
        match self.free.pop() {
            Some(s) => s,
            None => self.alloc_new(),
        }
    }

    /// [`Transactions::alloc`] when no slot is free: a new one.
    #[cold]
    #[inline(never)]
    fn alloc_new(&mut self) -> Slot {
        if self.slots.capacity() == 0 {
            // Most flows never have two requests pending: room for one slot, not the four a
            // first push would reserve (100k polled flows: 40 MB less peak memory).
            self.slots.reserve_exact(1);
        }
        self.slots.push(Pending::default());
        Slot::try_from(self.slots.len() - 1).unwrap_or(Slot::MAX)
    }

    /// The request in `slot`.
    pub(crate) fn slot_mut(&mut self, slot: Slot) -> Option<&mut Pending> {
        self.slots.get_mut(slot as usize)
    }

    /// Returns a slot whose request has been emitted (its event took its vectors and file)
    /// for reuse.
    pub(crate) fn free(&mut self, slot: Slot) {
        self.free.push(slot);
    }

    /// Returns the slot of a request dropped without an event for reuse, emptied.
    fn discard(&mut self, slot: Slot) {
        if let Some(p) = self.slots.get_mut(slot as usize) {
            p.req.file = None;
            p.req.accesses = Vec::new();
            p.req.details = Vec::new();
            self.free.push(slot);
        }
    }

    /// Adds the request filled into `slot` (from [`Transactions::alloc`]) under `key`;
    /// `cap` bounds the pending set (oldest dropped first). A request whose key is still
    /// pending replaces it, flagged `transaction_id_reused`.
    pub(crate) fn add(&mut self, key: TxKey, slot: Slot, cap: usize) -> Added {
        let mut added = Added::default();
        let seq = self.next_seq;
        self.next_seq += 1;
        let Some(p) = self.slots.get_mut(slot as usize) else {
            return added;
        };
        p.seq = seq;
        let ts = p.req.ts;
        let reused = |slots: &mut Vec<Pending>| {
            if let Some(p) = slots.get_mut(slot as usize) {
                p.violations |= Violations::TRANSACTION_ID_REUSED;
            }
        };
        #[cfg(test)]
        let fast = !self.no_one;
        #[cfg(not(test))]
        let fast = true;
        if fast && self.one.is_none() && self.map.is_empty() && self.order.is_empty() {
            // Nothing pending or queued: the general path below would only insert the key
            // and queue it (nothing to replace or drop, no compaction).
            self.one = Some(One { key, slot, seq, ts });
            return added;
        }
        self.spill();
        if self.map.len() < cap.max(1) {
            // Under the cap nothing is dropped: one probe finds the key or its place.
            match self.map.entry(key) {
                Entry::Occupied(mut o) => {
                    reused(&mut self.slots);
                    added.replaced = Some(std::mem::replace(o.get_mut(), slot));
                }
                Entry::Vacant(v) => {
                    v.insert(slot);
                }
            }
        } else if let Some(old) = self.map.get_mut(&key) {
            reused(&mut self.slots);
            added.replaced = Some(std::mem::replace(old, slot));
        } else {
            while self.map.len() >= cap.max(1) {
                let Some((k, s, _)) = self.order.pop_front() else {
                    break;
                };
                if self.is_live(&k, s) {
                    if let Some(old) = self.map.remove(&k) {
                        self.discard(old);
                    }
                    added.dropped += 1;
                }
            }
            self.map.insert(key, slot);
        }
        if added.dropped > 0 && !self.flooding {
            self.flooding = true;
            added.flood_started = true;
        }
        self.order.push_back((key, seq, ts));
        self.compact(cap);
        added
    }

    /// Drops answered entries from the order queue once it grows well past the live set.
    fn compact(&mut self, cap: usize) {
        if self.order.len() > 2 * cap.max(self.map.len()) + 64 {
            let (map, slots) = (&self.map, &self.slots);
            self.order.retain(|(k, s, _)| {
                map.get(k)
                    .is_some_and(|i| slots.get(*i as usize).is_some_and(|p| p.seq == *s))
            });
        }
    }

    /// Ends the flood episode once the pending set is back under half the cap.
    fn settle(&mut self, cap: usize) {
        if self.flooding && self.map.len() <= cap / 2 {
            self.flooding = false;
        }
    }

    /// Matches a response (raw function code `resp_fc`): takes its request out of the
    /// pending set and returns its slot (for the caller to emit, then
    /// [`Transactions::free`]), with the violation the match itself reveals.
    pub(crate) fn answer(
        &mut self,
        key: TxKey,
        resp_fc: u8,
        cap: usize,
    ) -> Option<(Slot, Violations)> {
        if let Some(o) = self.one {
            // As below with the key alone in the map and its entry alone in the queue.
            let pair = if o.key == key {
                Violations::NONE
            } else if o.key.1 == key.1
                && self
                    .slots
                    .get(o.slot as usize)
                    .is_some_and(|p| p.fc == resp_fc & 0x7f)
            {
                Violations::RESPONSE_TRANSACTION_ID_MISMATCH
            } else {
                return None;
            };
            self.one = None;
            self.settle(cap);
            return Some((o.slot, pair));
        }
        let (slot, pair) = match self.map.remove(&key) {
            Some(s) => (s, Violations::NONE),
            None => {
                // Some servers do not echo the transaction id: with one request pending for
                // this unit and function, the response is taken to be its answer.
                let slots = &self.slots;
                let (only, _) = self.map.iter().next().filter(|(k, s)| {
                    self.map.len() == 1
                        && k.1 == key.1
                        && slots
                            .get(**s as usize)
                            .is_some_and(|p| p.fc == resp_fc & 0x7f)
                })?;
                let only = *only;
                let s = self.map.remove(&only)?;
                (s, Violations::RESPONSE_TRANSACTION_ID_MISMATCH)
            }
        };
        // Answered in order (the common case): its queue entry goes now, not in `release`.
        let seq = self.seq_of(slot);
        if self.order.front().is_some_and(|(_, s, _)| Some(*s) == seq) {
            self.order.pop_front();
        }
        self.settle(cap);
        Some((slot, pair))
    }

    /// Releases requests older than `timeout_secs` at `now` (or all, when `all`), oldest
    /// first; each is handed out with why it left, then its slot is freed.
    pub(crate) fn release(
        &mut self,
        now: Timestamp,
        timeout_secs: u64,
        all: bool,
        cap: usize,
        mut out: impl FnMut(Release, &mut Pending),
    ) {
        if let Some(o) = self.one {
            let timed_out = o.ts.plus_secs(timeout_secs) < now;
            if timed_out || all {
                self.one = None;
                let why = if timed_out {
                    Release::Timeout
                } else {
                    Release::NoResponse
                };
                if let Some(p) = self.slots.get_mut(o.slot as usize) {
                    out(why, p);
                }
                self.free(o.slot);
            }
        }
        while let Some((k, s, ts)) = self.order.front().copied() {
            // Requests are queued in arrival order: when the oldest entry is not yet due,
            // nothing is, and no lookup is needed to know it (a capture out of time order
            // only delays a timeout).
            let timed_out = ts.plus_secs(timeout_secs) < now;
            if !timed_out && !all {
                break;
            }
            if !self.is_live(&k, s) {
                self.order.pop_front();
                continue;
            }
            self.order.pop_front();
            if let Some(slot) = self.map.remove(&k) {
                let why = if timed_out {
                    Release::Timeout
                } else {
                    Release::NoResponse
                };
                if let Some(p) = self.slots.get_mut(slot as usize) {
                    out(why, p);
                }
                self.free(slot);
            }
        }
        self.settle(cap);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[derive(Clone, Debug)]
    enum Op {
        /// A request: key (small space, so keys collide), function, seconds later.
        Add(u16, u8, u8, u8),
        /// A response: key, function.
        Answer(u16, u8, u8),
        /// Timeouts at seconds later, or the end of the flow.
        Release(u8, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u16..4, 0u8..2, 1u8..4, 0u8..4).prop_map(|(t, u, f, d)| Op::Add(t, u, f, d)),
            (0u16..4, 0u8..2, 1u8..4).prop_map(|(t, u, f)| Op::Answer(t, u, f)),
            (0u8..15, any::<bool>()).prop_map(|(d, a)| Op::Release(d, a)),
        ]
    }

    /// What an operation hands back, requests named by their (unique) time and function.
    fn run(ops: &[Op], cap: usize, no_one: bool) -> Vec<String> {
        let mut t = Transactions {
            no_one,
            ..Transactions::default()
        };
        let mut now = 0i64;
        let name = |t: &Transactions, s: Slot| {
            let p = &t.slots[s as usize];
            format!(
                "{}/{}/{:?}",
                p.req.ts.micros_since(Timestamp::default()),
                p.fc,
                p.violations
            )
        };
        let mut out = Vec::new();
        for op in ops {
            match *op {
                Op::Add(tid, unit, fc, d) => {
                    now += i64::from(d) * 1_000_000 + 1;
                    let slot = t.alloc();
                    let p = t.slot_mut(slot).unwrap();
                    p.req.ts = Timestamp::from_micros(now);
                    p.fc = fc;
                    p.violations = Violations::NONE;
                    let a = t.add((tid, unit), slot, cap);
                    let replaced = a.replaced.map(|s| {
                        let n = name(&t, s);
                        t.free(s);
                        n
                    });
                    out.push(format!(
                        "add {replaced:?} {} {}",
                        a.dropped, a.flood_started
                    ));
                }
                Op::Answer(tid, unit, fc) => {
                    let r = t.answer((tid, unit), fc, cap).map(|(s, v)| {
                        let n = name(&t, s);
                        t.free(s);
                        format!("{n} {v:?}")
                    });
                    out.push(format!("answer {r:?}"));
                }
                Op::Release(d, all) => {
                    let at = Timestamp::from_micros(now + i64::from(d) * 1_000_000);
                    let mut got = Vec::new();
                    t.release(at, 10, all, cap, |why, p| {
                        got.push(format!(
                            "{why:?} {}",
                            p.req.ts.micros_since(Timestamp::default())
                        ));
                    });
                    out.push(format!("release {got:?}"));
                }
            }
            out.push(format!(
                "len {} due {} flooding {}",
                t.len(),
                t.release_due(Timestamp::from_micros(now + 10_500_000), 10),
                t.flooding
            ));
        }
        out
    }

    proptest! {
        /// The single pending request kept outside the map and queue changes nothing: every
        /// answer, release, replacement, drop and flood is the same as without it.
        #[test]
        fn one_pending_fast_path_is_invisible(
            ops in proptest::collection::vec(op(), 0..40),
            cap in prop_oneof![Just(1usize), Just(2), Just(3), Just(500)],
        ) {
            prop_assert_eq!(run(&ops, cap, false), run(&ops, cap, true));
        }
    }

    /// A flow that never has two requests pending keeps room for one slot only (its memory
    /// stays with it while the flow lives); a second pending request grows the list.
    #[test]
    fn one_slot_of_room_until_a_second_is_needed() {
        let mut t = Transactions::default();
        let a = t.alloc();
        assert_eq!(t.slots.capacity(), 1);
        t.free(a);
        assert_eq!(t.alloc(), a);
        assert_eq!(t.slots.capacity(), 1);
        let b = t.alloc();
        assert_ne!(a, b);
        assert!(t.slots.capacity() >= 2);
    }

    /// Equal keys hash alike; distinct keys (both fields matter) do not collide, and the
    /// low bits that pick a bucket vary even when only the transaction id does.
    #[test]
    fn key_hasher_spreads_keys() {
        let b = KeyHasherBuilder::default();
        assert_eq!(b.hash_one((7u16, 1u8)), b.hash_one((7u16, 1u8)));
        assert_ne!(b.hash_one((1u16, 2u8)), b.hash_one((2u16, 1u8)));
        let mut seen = HashSet::new();
        for tid in (0..=u16::MAX).step_by(97) {
            for unit in [0u8, 1, 2, 255] {
                assert!(seen.insert(b.hash_one((tid, unit))));
            }
        }
        let buckets: HashSet<u64> = (0..64u16).map(|t| b.hash_one((t, 1u8)) & 15).collect();
        assert!(buckets.len() >= 8, "{buckets:?}");
    }
}
