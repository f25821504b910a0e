//! Counter names of a closed set (message types, service encodings) that order as their text
//! but compare as integers.
//!
//! [`OpcuaStats`](super::OpcuaStats) counts every chunk by message type and every service
//! message by encoding name in maps printed in name order. Keyed by `&'static str`, each count
//! was a string-comparing map search (a few hundred instructions per message); a [`Name`]
//! carries its rank in the alphabetical order of every name of the set, so the map compares
//! one integer and still iterates (and prints) in the same order. It borrows as `str`, so
//! maps are still looked up by text.

use super::services::ENCODINGS;
use super::transport::MsgType;
use serde::{Serialize, Serializer};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// The message type names, in `MsgType` declaration order.
const MSG_TYPES: [&str; 7] = ["HEL", "ACK", "ERR", "RHE", "OPN", "MSG", "CLO"];

/// How many names the set holds: the message types, then the encodings.
const COUNT: usize = MSG_TYPES.len() + ENCODINGS.len();

/// The name of entry `i` of the set.
#[allow(clippy::indexing_slicing)] // compile time only: an index out of range fails the build
const fn entry(i: usize) -> &'static str {
    if i < MSG_TYPES.len() {
        MSG_TYPES[i]
    } else {
        ENCODINGS[i - MSG_TYPES.len()].1
    }
}

/// `a < b` in `str` order (bytewise, then shorter first).
#[allow(clippy::indexing_slicing)] // compile time only; indices are below both lengths
const fn less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
        i += 1;
    }
    a.len() < b.len()
}

/// The alphabetical rank of every entry of the set (names are distinct).
#[allow(clippy::indexing_slicing)] // compile time only
const fn ranks() -> [u16; COUNT] {
    let mut out = [0u16; COUNT];
    let mut i = 0;
    while i < COUNT {
        let mut below = 0u16;
        let mut j = 0;
        while j < COUNT {
            if less(entry(j), entry(i)) {
                below += 1;
            }
            j += 1;
        }
        out[i] = below;
        i += 1;
    }
    out
}

/// Ranks of the set, computed when the crate is built.
const RANKS: [u16; COUNT] = ranks();

/// The entries of the set in alphabetical order (the inverse of [`RANKS`]).
const BY_RANK: [u16; COUNT] = by_rank();

#[allow(clippy::indexing_slicing, clippy::cast_possible_truncation)] // compile time only
const fn by_rank() -> [u16; COUNT] {
    let mut out = [0u16; COUNT];
    let mut i = 0;
    while i < COUNT {
        out[RANKS[i] as usize] = i as u16;
        i += 1;
    }
    out
}

/// A counter name: a message type or the name of an encoding of the table.
#[derive(Clone, Copy)]
pub struct Name {
    rank: u16,
    /// Its place in the set (message types, then encodings).
    index: u16,
    text: &'static str,
}

impl Name {
    fn at(i: usize) -> Name {
        Name {
            rank: RANKS.get(i).copied().unwrap_or(u16::MAX),
            index: u16::try_from(i).unwrap_or(u16::MAX),
            text: entry_checked(i),
        }
    }

    /// The name of a message type (`MSG`, `OPN` …).
    pub fn msg_type(t: MsgType) -> Name {
        Name::at(t as usize)
    }

    /// The type name of entry `i` of the encoding table (`ReadRequest` …).
    pub(crate) fn encoding(i: usize) -> Name {
        Name::at(MSG_TYPES.len() + i)
    }

    /// The text of the name.
    pub fn as_str(&self) -> &'static str {
        self.text
    }
}

fn entry_checked(i: usize) -> &'static str {
    match i.checked_sub(MSG_TYPES.len()) {
        None => MSG_TYPES.get(i).copied().unwrap_or_default(),
        Some(j) => ENCODINGS.get(j).map(|e| e.1).unwrap_or_default(),
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.rank == other.rank
    }
}

impl Eq for Name {}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank.cmp(&other.rank)
    }
}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As the text hashes: `Borrow<str>` requires it.
        self.text.hash(state);
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self.text
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.text, f)
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.text)
    }
}

/// Counts by [`Name`]: one counter per name of the set in a fixed array (a count is one
/// indexed add, not a map search), read and printed as the map of the names counted at
/// least once, in name order (as a `BTreeMap<Name, u64>` of them prints).
#[derive(Clone, PartialEq, Eq)]
pub struct Counts {
    n: Box<[u64]>,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            n: vec![0; COUNT].into_boxed_slice(),
        }
    }
}

impl Counts {
    /// Adds `by` to the count of `k`.
    #[inline]
    pub fn add(&mut self, k: Name, by: u64) {
        if let Some(c) = self.n.get_mut(usize::from(k.index)) {
            *c += by;
        }
    }

    /// Adds one to the count of `k`.
    #[inline]
    pub fn count(&mut self, k: Name) {
        self.add(k, 1);
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Counts) {
        for (a, b) in self.n.iter_mut().zip(other.n.iter()) {
            *a += b;
        }
    }

    /// The count of the name `text`, when it was counted.
    pub fn get(&self, text: &str) -> Option<&u64> {
        (0..COUNT)
            .find(|&i| entry_checked(i) == text)
            .and_then(|i| self.n.get(i))
            .filter(|c| **c > 0)
    }

    /// True when the name `text` was counted.
    pub fn contains_key(&self, text: &str) -> bool {
        self.get(text).is_some()
    }

    /// The names counted and their counts, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (Name, u64)> + '_ {
        BY_RANK.iter().filter_map(|&i| {
            let i = usize::from(i);
            let c = self.n.get(i).copied().unwrap_or(0);
            (c > 0).then(|| (Name::at(i), c))
        })
    }

    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.n.iter().all(|c| *c == 0)
    }

    /// The counts as a map.
    pub fn to_map(&self) -> std::collections::BTreeMap<Name, u64> {
        self.iter().collect()
    }
}

impl fmt::Debug for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Counts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn all() -> Vec<Name> {
        (0..COUNT).map(Name::at).collect()
    }

    /// Names order, compare and hash as their texts do.
    #[test]
    fn names_order_as_their_text() {
        let names = all();
        for a in &names {
            for b in &names {
                assert_eq!(a.cmp(b), a.text.cmp(b.text), "{a} {b}");
                assert_eq!(a == b, a.text == b.text);
            }
        }
        let mut ranks: Vec<u16> = names.iter().map(|n| n.rank).collect();
        ranks.sort_unstable();
        assert_eq!(ranks, (0..COUNT as u16).collect::<Vec<_>>());
        for t in [
            MsgType::Hel,
            MsgType::Ack,
            MsgType::Err,
            MsgType::Rhe,
            MsgType::Opn,
            MsgType::Msg,
            MsgType::Clo,
        ] {
            assert_eq!(Name::msg_type(t).as_str(), t.as_str());
        }
        for (i, e) in ENCODINGS.iter().enumerate() {
            assert_eq!(Name::encoding(i).as_str(), e.1);
        }
    }

    /// A map keyed by names prints as one keyed by their texts.
    #[test]
    fn maps_print_and_look_up_as_text_keyed_ones() {
        let mut named = std::collections::BTreeMap::new();
        let mut texts = std::collections::BTreeMap::new();
        for (k, n) in all().into_iter().rev().zip(1u64..) {
            named.insert(k, n);
            texts.insert(k.as_str(), n);
        }
        assert_eq!(
            serde_json::to_string(&named).unwrap(),
            serde_json::to_string(&texts).unwrap()
        );
        assert_eq!(named.get("ReadRequest"), texts.get("ReadRequest"));
        assert_eq!(format!("{:?}", named), format!("{:?}", texts));
    }

    /// Counts print, look up and merge as the map of names they replaced.
    #[test]
    fn counts_are_the_map_they_replaced() {
        let names = all();
        let mut counts = Counts::default();
        let mut map = std::collections::BTreeMap::new();
        assert_eq!(serde_json::to_string(&counts).unwrap(), "{}");
        assert!(counts.is_empty());
        for (j, k) in names.iter().enumerate().filter(|(j, _)| j % 3 != 1) {
            for _ in 0..=j % 4 {
                counts.count(*k);
                *map.entry(*k).or_insert(0u64) += 1;
            }
        }
        let mut twice = counts.clone();
        twice.merge(&counts);
        assert_eq!(
            serde_json::to_string(&counts).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        assert_eq!(format!("{counts:?}"), format!("{map:?}"));
        assert_eq!(counts.to_map(), map);
        for k in &names {
            assert_eq!(counts.get(k.as_str()), map.get(k));
            assert_eq!(twice.get(k.as_str()).copied(), map.get(k).map(|c| 2 * c));
        }
        assert_eq!(counts.get("NoSuchName"), None);
        assert!(counts.contains_key(names[0].as_str()) && !counts.contains_key(names[1].as_str()));
    }
}
