//! Modbus transactions of one flow: requests waiting for their responses.
//!
//! A response is matched to its request in O(1) by (transaction id, unit id). Requests are
//! also kept in arrival order (a queue with lazy deletion), so that timeouts, the pending cap
//! and the end of the flow release them oldest first: the event order is deterministic.

use super::events::{apply_response, EventCx, ReqShape};
use super::types::Violations;
use crate::event::{IcsEvent, Outcome};
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

/// A request waiting for its response.
#[derive(Debug)]
pub(crate) struct Pending {
    seq: u64,
    fc: u8,
    shape: ReqShape,
    /// Boxed: an event is a few hundred bytes, and the map moves its values around.
    event: Box<IcsEvent>,
    violations: Violations,
}

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
    /// A request with the same key, now superseded.
    pub(crate) replaced: Option<(Box<IcsEvent>, Violations)>,
    /// Requests dropped to stay under the cap.
    pub(crate) dropped: u64,
    /// True when this drop starts a flood episode.
    pub(crate) flood_started: bool,
}

/// The pending requests of one flow.
#[derive(Debug, Default)]
pub(crate) struct Transactions {
    map: HashMap<TxKey, Pending, KeyHasherBuilder>,
    order: VecDeque<(TxKey, u64, Timestamp)>,
    next_seq: u64,
    flooding: bool,
}

impl Transactions {
    /// Number of requests waiting.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// False when [`Transactions::release`] without `all` would do nothing at `now`: no
    /// flood episode to settle and the oldest queued request (if any) not timed out.
    #[inline]
    pub(crate) fn release_due(&self, now: Timestamp, timeout_secs: u64) -> bool {
        self.flooding
            || self
                .order
                .front()
                .is_some_and(|(_, _, ts)| ts.plus_secs(timeout_secs) < now)
    }

    fn is_live(&self, key: &TxKey, seq: u64) -> bool {
        self.map.get(key).is_some_and(|p| p.seq == seq)
    }

    /// Adds a request; `cap` bounds the pending set (oldest dropped first). A request whose
    /// key is still pending replaces it, flagged `transaction_id_reused`.
    pub(crate) fn add(
        &mut self,
        key: TxKey,
        fc: u8,
        shape: ReqShape,
        event: Box<IcsEvent>,
        violations: Violations,
        cap: usize,
    ) -> Added {
        let mut added = Added::default();
        let seq = self.next_seq;
        self.next_seq += 1;
        let ts = event.ts;
        let mut pending = Pending {
            seq,
            fc,
            shape,
            event,
            violations,
        };
        if self.map.len() < cap.max(1) {
            // Under the cap nothing is dropped: one probe finds the key or its place.
            match self.map.entry(key) {
                Entry::Occupied(mut o) => {
                    pending.violations |= Violations::TRANSACTION_ID_REUSED;
                    let old = std::mem::replace(o.get_mut(), pending);
                    added.replaced = Some((old.event, old.violations));
                }
                Entry::Vacant(v) => {
                    v.insert(pending);
                }
            }
        } else if let Some(old) = self.map.get_mut(&key) {
            pending.violations |= Violations::TRANSACTION_ID_REUSED;
            let old = std::mem::replace(old, pending);
            added.replaced = Some((old.event, old.violations));
        } else {
            while self.map.len() >= cap.max(1) {
                let Some((k, s, _)) = self.order.pop_front() else {
                    break;
                };
                if self.is_live(&k, s) {
                    self.map.remove(&k);
                    added.dropped += 1;
                }
            }
            self.map.insert(key, pending);
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
            let map = &self.map;
            self.order
                .retain(|(k, s, _)| map.get(k).is_some_and(|p| p.seq == *s));
        }
    }

    /// Ends the flood episode once the pending set is back under half the cap.
    fn settle(&mut self, cap: usize) {
        if self.flooding && self.map.len() <= cap / 2 {
            self.flooding = false;
        }
    }

    /// Matches a response; on success fills the request's event and returns it with all
    /// violations (request, response, pair).
    pub(crate) fn answer(
        &mut self,
        key: TxKey,
        cx: &EventCx<'_>,
        resp: &super::types::Pdu<super::types::Response<'_>>,
        resp_violations: Violations,
        cap: usize,
    ) -> Option<(Box<IcsEvent>, Violations)> {
        let (mut p, mut pair) = match self.map.remove(&key) {
            Some(p) => (p, Violations::NONE),
            None => {
                // Some servers do not echo the transaction id: with one request pending for
                // this unit and function, the response is taken to be its answer.
                let (only, _) = self.map.iter().next().filter(|(k, p)| {
                    self.map.len() == 1 && k.1 == key.1 && p.fc == resp.function & 0x7f
                })?;
                let only = *only;
                let p = self.map.remove(&only)?;
                (p, Violations::RESPONSE_TRANSACTION_ID_MISMATCH)
            }
        };
        // Answered in order (the common case): its queue entry goes now, not in `release`.
        if self.order.front().is_some_and(|(_, s, _)| *s == p.seq) {
            self.order.pop_front();
        }
        self.settle(cap);
        pair |= apply_response(&mut p.event, p.fc, &p.shape, resp);
        p.event.latency_us = Some(cx.ts.micros_since(p.event.ts));
        p.event.evidence.response_packet = Some(cx.packet);
        Some((p.event, p.violations | resp_violations | pair))
    }

    /// Releases requests older than `timeout_secs` at `now` (or all, when `all`), oldest
    /// first; each comes back with its outcome set.
    pub(crate) fn release(
        &mut self,
        now: Timestamp,
        timeout_secs: u64,
        all: bool,
        cap: usize,
        mut out: impl FnMut(Release, Box<IcsEvent>, Violations),
    ) {
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
            if let Some(mut p) = self.map.remove(&k) {
                let why = if timed_out {
                    p.event.outcome = Outcome::Timeout;
                    Release::Timeout
                } else {
                    p.event.outcome = Outcome::NoResponse;
                    Release::NoResponse
                };
                out(why, p.event, p.violations);
            }
        }
        self.settle(cap);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::collections::HashSet;

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
