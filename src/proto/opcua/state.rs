//! Per-flow OPC UA state: chunk reassembly per request id and open transactions.

use super::limits::DecodeLimits;
use super::services::Decoded;
use crate::event::OpKind;
use crate::time::Timestamp;
use std::borrow::Cow;

/// A message being reassembled from 'C' chunks.
#[derive(Debug)]
struct Partial {
    request_id: u32,
    body: Vec<u8>,
    chunks: usize,
    /// Over a limit: swallow chunks until the final or abort chunk.
    discard: bool,
    ts: Timestamp,
    packet: u64,
}

/// What a chunk did to its message.
#[derive(Debug, PartialEq, Eq)]
pub enum ChunkResult<'a> {
    /// The message is complete: its body, and the time and packet of its first chunk.
    Complete(Cow<'a, [u8]>, Timestamp, u64),
    /// More chunks are expected.
    Pending,
    /// An abort chunk dropped the message.
    Aborted,
    /// A limit was hit; the message is dropped (named violation).
    Limit(&'static str),
    /// A final chunk ended a message that had already been dropped over a limit.
    Discarded,
}

/// Chunk reassembly of one direction, bounded by [`DecodeLimits`].
#[derive(Debug, Default)]
pub struct Reassembler {
    partials: Vec<Partial>,
}

impl Reassembler {
    /// Messages being reassembled.
    pub fn len(&self) -> usize {
        self.partials.len()
    }

    /// True when no message is being reassembled.
    pub fn is_empty(&self) -> bool {
        self.partials.is_empty()
    }

    /// Drops every partial message (after a gap); returns how many.
    pub fn clear(&mut self) -> usize {
        let n = self.partials.len();
        self.partials.clear();
        n
    }

    /// Adds the body of one MSG chunk (after its sequence header).
    pub fn push<'a>(
        &mut self,
        chunk_type: u8,
        request_id: u32,
        body: &'a [u8],
        ts: Timestamp,
        packet: u64,
        limits: &DecodeLimits,
    ) -> ChunkResult<'a> {
        let idx = self
            .partials
            .iter()
            .position(|p| p.request_id == request_id);
        match chunk_type {
            b'A' => {
                if let Some(i) = idx {
                    self.partials.remove(i);
                }
                ChunkResult::Aborted
            }
            b'F' => {
                let Some(i) = idx else {
                    if body.len() > limits.max_message_size {
                        return ChunkResult::Limit("message_too_large");
                    }
                    return ChunkResult::Complete(Cow::Borrowed(body), ts, packet);
                };
                let p = self.partials.remove(i);
                if p.discard {
                    return ChunkResult::Discarded;
                }
                if p.chunks >= limits.max_chunks_per_message {
                    return ChunkResult::Limit("too_many_chunks");
                }
                if p.body.len().saturating_add(body.len()) > limits.max_message_size {
                    return ChunkResult::Limit("message_too_large");
                }
                let mut all = p.body;
                all.extend_from_slice(body);
                ChunkResult::Complete(Cow::Owned(all), p.ts, p.packet)
            }
            _ => {
                let i = match idx {
                    Some(i) => i,
                    None => {
                        let mut evicted = false;
                        if self.partials.len() >= limits.max_partial_messages {
                            self.partials.remove(0);
                            evicted = true;
                        }
                        self.partials.push(Partial {
                            request_id,
                            body: Vec::new(),
                            chunks: 0,
                            discard: false,
                            ts,
                            packet,
                        });
                        if evicted {
                            // Still accept this chunk; report the eviction.
                            if let Some(p) = self.partials.last_mut() {
                                p.chunks = 1;
                                p.body.extend_from_slice(body);
                            }
                            return ChunkResult::Limit("too_many_partial_messages");
                        }
                        self.partials.len().saturating_sub(1)
                    }
                };
                let Some(p) = self.partials.get_mut(i) else {
                    return ChunkResult::Pending;
                };
                if p.discard {
                    return ChunkResult::Pending;
                }
                if p.chunks.saturating_add(1) >= limits.max_chunks_per_message {
                    p.discard = true;
                    p.body = Vec::new();
                    return ChunkResult::Limit("too_many_chunks");
                }
                if p.body.len().saturating_add(body.len()) > limits.max_message_size {
                    p.discard = true;
                    p.body = Vec::new();
                    return ChunkResult::Limit("message_too_large");
                }
                p.chunks += 1;
                p.body.extend_from_slice(body);
                ChunkResult::Pending
            }
        }
    }
}

/// A request waiting for its response.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Capture time of the request (its first chunk).
    pub ts: Timestamp,
    /// Packet of the request.
    pub packet: u64,
    /// Function code: request encoding id (0 for transport messages).
    pub code: u32,
    /// Service or message name.
    pub name: &'static str,
    /// Function category (`service`, `transport`).
    pub category: &'static str,
    /// Operation kind.
    pub op: OpKind,
    /// Request handle from the RequestHeader.
    pub request_handle: Option<u32>,
    /// What the request body said.
    pub decoded: Decoded,
    /// Violations seen in the request.
    pub violations: Vec<&'static str>,
    /// Secure channel id, as text.
    pub session: Option<String>,
}

/// Requests awaiting their response, by request id: a vector kept sorted by id, which is what
/// a flow holds (one or a few requests, ids mostly increasing) cheaper than a map, with the
/// same order (`pop_first` takes the lowest id, `into_values` is in id order).
#[derive(Debug, Default)]
pub struct PendingTable {
    items: Vec<(u32, Pending)>,
}

impl PendingTable {
    /// Requests waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when no request is waiting.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn find(&self, id: u32) -> Result<usize, usize> {
        // Ids mostly increase: the last one is checked first.
        match self.items.last() {
            None => Err(0),
            Some((last, _)) if *last < id => Err(self.items.len()),
            Some((last, _)) if *last == id => Ok(self.items.len() - 1),
            Some(_) => self.items.binary_search_by_key(&id, |(k, _)| *k),
        }
    }

    /// Adds a request; returns the one it replaces (same request id).
    pub fn insert(&mut self, id: u32, p: Pending) -> Option<Pending> {
        match self.find(id) {
            Ok(i) => self
                .items
                .get_mut(i)
                .map(|slot| std::mem::replace(&mut slot.1, p)),
            Err(i) if i == self.items.len() => {
                // The usual case: the highest id yet goes last.
                self.items.push((id, p));
                None
            }
            Err(i) => {
                self.items.insert(i, (id, p));
                None
            }
        }
    }

    /// Takes the request with this id.
    pub fn remove(&mut self, id: u32) -> Option<Pending> {
        let i = self.find(id).ok()?;
        if i + 1 == self.items.len() {
            // The usual case: the last request is answered.
            return self.items.pop().map(|(_, p)| p);
        }
        Some(self.items.remove(i).1)
    }

    /// Takes the request with the lowest id.
    pub fn pop_first(&mut self) -> Option<(u32, Pending)> {
        if self.items.is_empty() {
            None
        } else {
            Some(self.items.remove(0))
        }
    }

    /// Takes every request, in id order.
    pub fn take_all(&mut self) -> Vec<Pending> {
        std::mem::take(&mut self.items)
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }
}

/// What a response contributes to its transaction's event.
#[derive(Debug, Clone)]
pub struct Response {
    /// Capture time of the response.
    pub ts: Timestamp,
    /// Packet of the response.
    pub packet: u64,
    /// Service result or error status.
    pub status: Option<u32>,
    /// Request handle echoed.
    pub request_handle: Option<u32>,
    /// What the response body said.
    pub decoded: Decoded,
    /// Violations seen in the response.
    pub violations: Vec<&'static str>,
    /// The response arrived but its status (ResponseHeader, ACK or ERR body) could not be
    /// decoded: the event must not claim success.
    pub undecodable: bool,
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

    fn lim() -> DecodeLimits {
        DecodeLimits {
            max_chunks_per_message: 3,
            max_message_size: 10,
            max_partial_messages: 2,
            ..DecodeLimits::default()
        }
    }

    fn pending(packet: u64) -> Pending {
        Pending {
            ts: Timestamp::default(),
            packet,
            code: 0,
            name: "Read",
            category: "service",
            op: OpKind::Read,
            request_handle: None,
            decoded: Decoded::default(),
            violations: Vec::new(),
            session: None,
        }
    }

    proptest::proptest! {
        /// The pending table behaves as the map it replaced, whatever the order of ids.
        #[test]
        fn pending_table_is_a_map(ops in proptest::collection::vec((0u8..4, 0u32..12), 0..64)) {
            let mut t = PendingTable::default();
            let mut m = std::collections::BTreeMap::new();
            for (n, (op, id)) in ops.into_iter().enumerate() {
                let n = n as u64;
                match op {
                    0 | 1 => proptest::prop_assert_eq!(
                        t.insert(id, pending(n)).map(|p| p.packet),
                        m.insert(id, pending(n)).map(|p| p.packet)
                    ),
                    2 => proptest::prop_assert_eq!(
                        t.remove(id).map(|p| p.packet),
                        m.remove(&id).map(|p| p.packet)
                    ),
                    _ => proptest::prop_assert_eq!(
                        t.pop_first().map(|(k, p)| (k, p.packet)),
                        m.pop_first().map(|(k, p)| (k, p.packet))
                    ),
                }
                proptest::prop_assert_eq!(t.len(), m.len());
            }
            let all: Vec<u64> = t.take_all().into_iter().map(|p| p.packet).collect();
            let want: Vec<u64> = m.into_values().map(|p| p.packet).collect();
            proptest::prop_assert_eq!(all, want);
            proptest::prop_assert!(t.is_empty());
        }
    }

    #[test]
    fn final_alone_borrows() {
        let mut r = Reassembler::default();
        let ts = Timestamp::new(1, 0);
        match r.push(b'F', 7, b"abc", ts, 3, &lim()) {
            ChunkResult::Complete(Cow::Borrowed(b), t, p) => {
                assert_eq!((b, t, p), (&b"abc"[..], ts, 3));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn chunks_concatenate_and_abort() {
        let l = lim();
        let mut r = Reassembler::default();
        let t0 = Timestamp::new(1, 0);
        let t1 = Timestamp::new(2, 0);
        assert_eq!(r.push(b'C', 7, b"ab", t0, 1, &l), ChunkResult::Pending);
        assert_eq!(r.push(b'C', 8, b"xx", t0, 1, &l), ChunkResult::Pending);
        assert_eq!(r.push(b'A', 8, b"", t1, 2, &l), ChunkResult::Aborted);
        assert_eq!(
            r.push(b'F', 7, b"cd", t1, 2, &l),
            ChunkResult::Complete(Cow::Owned(b"abcd".to_vec()), t0, 1)
        );
        assert!(r.is_empty());
    }

    #[test]
    fn limits_are_enforced() {
        let l = lim();
        let mut r = Reassembler::default();
        let t = Timestamp::default();
        assert_eq!(r.push(b'C', 1, b"a", t, 1, &l), ChunkResult::Pending);
        assert_eq!(r.push(b'C', 1, b"b", t, 1, &l), ChunkResult::Pending);
        assert_eq!(
            r.push(b'C', 1, b"c", t, 1, &l),
            ChunkResult::Limit("too_many_chunks")
        );
        assert_eq!(r.push(b'C', 1, b"d", t, 1, &l), ChunkResult::Pending);
        assert_eq!(r.push(b'F', 1, b"e", t, 1, &l), ChunkResult::Discarded);
        assert_eq!(
            r.push(b'C', 2, b"0123456789", t, 1, &l),
            ChunkResult::Pending
        );
        assert_eq!(
            r.push(b'C', 2, b"x", t, 1, &l),
            ChunkResult::Limit("message_too_large")
        );
        assert_eq!(r.push(b'F', 2, b"x", t, 1, &l), ChunkResult::Discarded);
        assert_eq!(
            r.push(b'F', 3, &[0; 11], t, 1, &l),
            ChunkResult::Limit("message_too_large")
        );
        assert_eq!(r.push(b'C', 4, b"a", t, 1, &l), ChunkResult::Pending);
        assert_eq!(r.push(b'C', 5, b"a", t, 1, &l), ChunkResult::Pending);
        assert_eq!(
            r.push(b'C', 6, b"a", t, 1, &l),
            ChunkResult::Limit("too_many_partial_messages")
        );
        assert_eq!(r.len(), 2);
        assert_eq!(r.clear(), 2);
    }
}
