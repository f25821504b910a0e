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

/// A counter name: a message type or the name of an encoding of the table.
#[derive(Clone, Copy)]
pub struct Name {
    rank: u16,
    text: &'static str,
}

impl Name {
    fn at(i: usize) -> Name {
        Name {
            rank: RANKS.get(i).copied().unwrap_or(u16::MAX),
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
}
