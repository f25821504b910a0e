//! Modbus transactions of one flow: requests waiting for their responses.
//!
//! A response is matched to its request in O(1) by (transaction id, unit id). Requests are
//! also kept in arrival order (a queue with lazy deletion), so that timeouts, the pending cap
//! and the end of the flow release them oldest first: the event order is deterministic.

use super::events::{apply_response, EventCx, ReqShape};
use super::types::Violations;
use crate::event::{IcsEvent, Outcome};
use crate::time::Timestamp;
use std::collections::{HashMap, VecDeque};

/// Key of a transaction within a flow.
pub(crate) type TxKey = (u16, u8);

/// A request waiting for its response.
#[derive(Debug)]
pub(crate) struct Pending {
    seq: u64,
    fc: u8,
    shape: ReqShape,
    event: IcsEvent,
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
    pub(crate) replaced: Option<(IcsEvent, Violations)>,
    /// Requests dropped to stay under the cap.
    pub(crate) dropped: u64,
    /// True when this drop starts a flood episode.
    pub(crate) flood_started: bool,
}

/// The pending requests of one flow.
#[derive(Debug, Default)]
pub(crate) struct Transactions {
    map: HashMap<TxKey, Pending>,
    order: VecDeque<(TxKey, u64)>,
    next_seq: u64,
    flooding: bool,
}

impl Transactions {
    /// Number of requests waiting.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether a request with this key is waiting.
    pub(crate) fn contains(&self, key: &TxKey) -> bool {
        self.map.contains_key(key)
    }

    fn is_live(&self, key: &TxKey, seq: u64) -> bool {
        self.map.get(key).is_some_and(|p| p.seq == seq)
    }

    /// Adds a request; `cap` bounds the pending set (oldest dropped first).
    pub(crate) fn add(
        &mut self,
        key: TxKey,
        fc: u8,
        shape: ReqShape,
        event: IcsEvent,
        violations: Violations,
        cap: usize,
    ) -> Added {
        let mut added = Added::default();
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(old) = self.map.remove(&key) {
            added.replaced = Some((old.event, old.violations));
        }
        while self.map.len() >= cap.max(1) {
            let Some((k, s)) = self.order.pop_front() else {
                break;
            };
            if self.is_live(&k, s) {
                self.map.remove(&k);
                added.dropped += 1;
            }
        }
        if added.dropped > 0 && !self.flooding {
            self.flooding = true;
            added.flood_started = true;
        }
        self.map.insert(
            key,
            Pending {
                seq,
                fc,
                shape,
                event,
                violations,
            },
        );
        self.order.push_back((key, seq));
        self.compact(cap);
        added
    }

    /// Drops answered entries from the order queue once it grows well past the live set.
    fn compact(&mut self, cap: usize) {
        if self.order.len() > 2 * cap.max(self.map.len()) + 64 {
            let map = &self.map;
            self.order
                .retain(|(k, s)| map.get(k).is_some_and(|p| p.seq == *s));
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
    ) -> Option<(IcsEvent, Violations)> {
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
        mut out: impl FnMut(Release, IcsEvent, Violations),
    ) {
        while let Some((k, s)) = self.order.front().copied() {
            let Some(p) = self.map.get(&k).filter(|p| p.seq == s) else {
                self.order.pop_front();
                continue;
            };
            let timed_out = p.event.ts.plus_secs(timeout_secs) < now;
            if !timed_out && !all {
                break;
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
