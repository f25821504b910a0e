//! The recent read requests of one flow, recognised by their bytes.
//!
//! A polling master repeats a few reads (FC 1–4) over and over. The first time a read passes
//! the checks of the read fast path, the eight bytes of its ADU after the transaction and
//! protocol ids (length, unit id, function code, start and quantity) are kept here. The
//! framing loop then recognises the next request like it with one compare per entry, before
//! any header is decoded, and derives everything else from those bytes (table, start,
//! quantity, the response's byte count). An entry is its key alone (nothing of a request's
//! time or transaction is kept), so it cannot go stale: the only risk is a key that says
//! less than the bytes, which the tests check.

/// Entries per flow (a flow cycling more polls than this refills entries in turn).
pub(crate) const RECENT_ENTRIES: usize = 4;

/// The key of a read request: ADU bytes 4..12 (length 6, unit id, function, start,
/// quantity) as one big-endian word. Never 0 (the length's low byte is 6).
#[inline(always)]
pub(crate) fn key_of(adu_4_12: [u8; 8]) -> u64 {
    u64::from_be_bytes(adu_4_12)
}

/// The key of a read request from its header fields and body.
#[inline(always)]
pub(crate) fn key_from(unit: u8, fc: u8, start: u16, quantity: u16) -> u64 {
    let [a, b] = start.to_be_bytes();
    let [c, d] = quantity.to_be_bytes();
    key_of([0, 6, unit, fc, a, b, c, d])
}

/// The first eight bytes of the ADU that answers a read with transaction id `tid`, unit
/// `unit`, function `fc` and `byte_count` data bytes (transaction id, protocol id 0, length,
/// unit id, function code) as one big-endian word.
#[inline(always)]
pub(crate) fn response_head(tid: u16, unit: u8, fc: u8, byte_count: u8) -> u64 {
    let [t0, t1] = tid.to_be_bytes();
    let [l0, l1] = (u16::from(byte_count) + 3).to_be_bytes();
    u64::from_be_bytes([t0, t1, 0, 0, l0, l1, unit, fc])
}

/// The recent read requests of one flow: their keys only (32 bytes in the parser), since
/// everything the fast path derives from a request (table, start, quantity, the response's
/// byte count) is a function of its key's bytes, which the caller holds. The entry a new
/// request replaces (round robin) is kept by the caller, next to its other small fields.
#[derive(Clone, Debug, Default)]
pub(crate) struct Recent {
    /// Keys ([`key_of`]); 0 for an empty entry.
    keys: [u64; RECENT_ENTRIES],
    /// Tests only: entries replaced while full.
    #[cfg(test)]
    pub(crate) replaced: u64,
}

impl Recent {
    /// Whether the request of key `key` (never 0) passed the fast path's checks before.
    #[inline(always)]
    pub(crate) fn contains(&self, key: u64) -> bool {
        self.keys.contains(&key)
    }

    /// Remembers request `key` (not yet known) in entry `next` (round robin, advanced),
    /// replacing what it held.
    #[inline]
    pub(crate) fn insert(&mut self, next: &mut u8, key: u64) {
        let i = usize::from(*next) % RECENT_ENTRIES;
        if let Some(k) = self.keys.get_mut(i) {
            #[cfg(test)]
            if *k != 0 {
                self.replaced += 1;
            }
            *k = key;
        }
        *next = u8::try_from((i + 1) % RECENT_ENTRIES).unwrap_or(0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// The keys and heads are the ADU's bytes: every field of the request counts.
    #[test]
    fn keys_and_heads_are_the_bytes() {
        assert_eq!(
            key_from(7, 3, 0x0102, 0x0304),
            key_of([0, 6, 7, 3, 1, 2, 3, 4])
        );
        let k = key_from(7, 3, 0x0102, 0x0304);
        for other in [
            key_from(8, 3, 0x0102, 0x0304),
            key_from(7, 4, 0x0102, 0x0304),
            key_from(7, 3, 0x0103, 0x0304),
            key_from(7, 3, 0x0102, 0x0305),
            key_from(7, 3, 0x0202, 0x0304),
            key_from(7, 3, 0x0102, 0x0404),
        ] {
            assert_ne!(k, other);
        }
        assert_eq!(
            response_head(0xabcd, 9, 4, 250),
            u64::from_be_bytes([0xab, 0xcd, 0, 0, 0, 253, 9, 4])
        );
    }

    /// Found by key only; a full table replaces its entries in turn (counted).
    #[test]
    fn entries_replaced_in_turn() {
        let (mut r, mut next) = (Recent::default(), 0u8);
        let keys: Vec<u64> = (1..=6u16).map(|q| key_from(1, 3, 1, q)).collect();
        for k in &keys {
            assert!(!r.contains(*k));
            r.insert(&mut next, *k);
            assert!(r.contains(*k));
        }
        assert_eq!(r.replaced, 2);
        assert!(!r.contains(keys[0]));
        assert!(!r.contains(keys[1]));
        for k in &keys[2..] {
            assert!(r.contains(*k));
        }
    }
}
