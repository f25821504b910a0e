//! A direct reader of baseline files: the JSON `learn` writes (pretty-printed or compact, or
//! edited by hand within the same grammar) parsed straight into a [`Baseline`], without serde's
//! per-token calls (a 2 MB baseline is mostly indentation and numbers of value profiles).
//!
//! It reads a subset of what the derived `Deserialize` reads, and gives the same value for
//! it. On anything else it gives `None`, and [`Baseline::from_json`] reads the text again with
//! serde_json, whose value or error is the answer: a string with an escape or a control
//! character, a field it does not know or finds twice, a struct written as an array, a number
//! of the wrong form or out of range, a missing required field, any JSON error. The `ml` model
//! is found as a JSON container and read by serde_json (its derived `Deserialize`) on its own.

use super::{
    Asset, Baseline, Channel, Dropped, Index, LearnedSpan, ObjectProfile, Operation, PollPattern,
    ValueProfile, Volume,
};
use crate::detect::ml::MlModel;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// The baseline in `text`, or `None` when serde_json must read it (see the module comment).
pub(super) fn parse(text: &str) -> Option<Baseline> {
    let mut r = Reader {
        text,
        s: text.as_bytes(),
        i: 0,
        last_run: (0, 0, 0),
        objects_hint: 0,
    };
    let b = r.baseline()?;
    r.ws();
    (r.i == r.s.len()).then_some(b)
}

/// Powers of ten exactly representable in an `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Powers of ten as integers, up to the 15 digits of an exactly read `f64`.
const POW10_INT: [u64; 16] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
];

/// Most places reserved for a channel's objects before reading them.
const MAX_OBJECTS_HINT: usize = 1024;

/// Eight spaces, as one little-endian word (indentation is skipped a word at a time).
const SPACES: u64 = u64::from_le_bytes(*b"        ");
/// A one in every byte of a word.
const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte of a word.
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Stores `v` in an empty `slot`; `None` when the field was already seen (serde's "duplicate
/// field" error).
fn once<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

/// A cursor over the text.
struct Reader<'a> {
    text: &'a str,
    s: &'a [u8],
    i: usize,
    /// Objects of the last channel read (at most [`MAX_OBJECTS_HINT`]).
    objects_hint: usize,
    /// The last run of whitespace of 2 to 16 bytes: its bytes (little-endian), the mask of
    /// its length, its length (mask 0 and length 0: none yet).
    last_run: (u128, u128, usize),
}

impl<'a> Reader<'a> {
    /// The eight bytes at `at`, as one little-endian word.
    #[inline]
    fn word(&self, at: usize) -> Option<u64> {
        self.s
            .get(at..)?
            .first_chunk::<8>()
            .map(|w| u64::from_le_bytes(*w))
    }

    /// Skips JSON whitespace (space, tab, line feed, carriage return).
    #[inline(always)]
    fn ws(&mut self) {
        if self.s.get(self.i).is_some_and(|&c| c > b' ') {
            return;
        }
        // The previous run again (see `ws_run`), in line.
        let (run, mask, len) = self.last_run;
        if let Some(w) = self.s.get(self.i..).and_then(|r| r.first_chunk::<16>()) {
            if (u128::from_le_bytes(*w) ^ run) & mask == 0
                && self.s.get(self.i + len).is_some_and(|&c| c > b' ')
            {
                self.i += len;
                return;
            }
        }
        self.ws_run();
    }

    /// [`Reader::ws`] at whitespace that is not the previous run again: spaces are skipped a
    /// word at a time, and the run is remembered when it is 2 to 16 bytes (a pretty-printed
    /// line starts as the one before it: a line break and the same indentation).
    #[inline(never)]
    fn ws_run(&mut self) {
        let s = self.s;
        let start = self.i;
        let mut i = start;
        loop {
            match s.get(i) {
                Some(b'\n' | b'\r' | b'\t') => i += 1,
                Some(b' ') => {
                    i += 1;
                    loop {
                        if let Some(w) = s.get(i..).and_then(|r| r.first_chunk::<8>()) {
                            let x = u64::from_le_bytes(*w) ^ SPACES;
                            if x == 0 {
                                i += 8;
                                continue;
                            }
                            i += (x.trailing_zeros() / 8) as usize;
                        } else {
                            while s.get(i) == Some(&b' ') {
                                i += 1;
                            }
                        }
                        break;
                    }
                }
                _ => break,
            }
        }
        self.i = i;
        let len = i - start;
        if (2..=16).contains(&len) {
            if let Some(w) = s.get(start..).and_then(|r| r.first_chunk::<16>()) {
                let mask = u128::MAX >> (128 - 8 * len);
                self.last_run = (u128::from_le_bytes(*w) & mask, mask, len);
            }
        }
    }

    /// The next byte after whitespace, not consumed.
    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    /// Consumes `c` after whitespace.
    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? == c {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// Consumes `c` after whitespace when it is there.
    #[inline(always)]
    fn eat_if(&mut self, c: u8) -> bool {
        let there = self.peek() == Some(c);
        if there {
            self.i += 1;
        }
        there
    }

    /// Consumes `word` after whitespace when it is there.
    #[inline(always)]
    fn eat_word(&mut self, word: &[u8]) -> bool {
        self.ws();
        let there = self.s.get(self.i..).is_some_and(|r| r.starts_with(word));
        if there {
            self.i += word.len();
        }
        there
    }

    /// Consumes `"name":` (whitespace around allowed) when it is next.
    #[inline(always)]
    fn key_is(&mut self, name: &[u8]) -> Option<()> {
        self.ws();
        let at = self.i;
        let end = at.checked_add(name.len())?.checked_add(2)?;
        match self.s.get(at..end)? {
            [b'"', mid @ .., b'"'] if mid == name => {}
            _ => return None,
        }
        self.i = end;
        self.colon()
    }

    /// Consumes the colon after a key: `": "` as the pretty printer writes it, else any
    /// whitespace around it.
    #[inline(always)]
    fn colon(&mut self) -> Option<()> {
        if self.s.get(self.i..).and_then(|r| r.first_chunk::<2>()) == Some(b": ") {
            self.i += 2;
            return Some(());
        }
        self.eat(b':')
    }

    /// Reads with `ordered` (the fields in the order `learn` writes them); from the same place
    /// with `any` (fields in any order) when that fails.
    #[inline]
    fn either<T>(
        &mut self,
        ordered: impl FnOnce(&mut Self) -> Option<T>,
        any: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<T> {
        let at = self.i;
        if let Some(v) = ordered(self) {
            return Some(v);
        }
        self.i = at;
        any(self)
    }

    /// A string without escapes or control characters.
    #[inline]
    fn str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            // A word at a time up to the first quote, backslash or control character.
            if let Some(w) = self.word(self.i) {
                let q = w ^ (ONES * u64::from(b'"'));
                let b = w ^ (ONES * u64::from(b'\\'));
                let stop = (q.wrapping_sub(ONES) & !q)
                    | (b.wrapping_sub(ONES) & !b)
                    | (w.wrapping_sub(ONES * 0x20) & !w);
                let stop = stop & HIGHS;
                if stop == 0 {
                    self.i += 8;
                    continue;
                }
                self.i += (stop.trailing_zeros() / 8) as usize;
            }
            match *self.s.get(self.i)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        let out = self.text.get(start..self.i)?;
        self.i += 1;
        Some(out)
    }

    /// A string field's value.
    fn string(&mut self) -> Option<String> {
        self.str().map(str::to_string)
    }

    /// The digits at the cursor: how many, and their value (exact up to 19 digits).
    #[inline(always)]
    fn digits(&mut self) -> (usize, u64) {
        let rest = self.s.get(self.i..).unwrap_or_default();
        let mut n: u64 = 0;
        let mut len = 0usize;
        for &c in rest {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            n = n.wrapping_mul(10).wrapping_add(u64::from(d));
            len += 1;
        }
        self.i += len;
        (len, n)
    }

    /// An unsigned integer: digits only (a fraction, an exponent, a sign, a leading zero or
    /// more than 19 digits is left to serde_json).
    #[inline(always)]
    fn u64(&mut self) -> Option<u64> {
        self.ws();
        let start = self.i;
        let (len, n) = self.digits();
        if len == 0 || len > 19 || (len > 1 && self.s.get(start) == Some(&b'0')) {
            return None;
        }
        if matches!(self.s.get(self.i), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(n)
    }

    #[inline(always)]
    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.u64()?).ok()
    }

    #[inline(always)]
    fn u16(&mut self) -> Option<u16> {
        u16::try_from(self.u64()?).ok()
    }

    #[inline(always)]
    fn u8(&mut self) -> Option<u8> {
        u8::try_from(self.u64()?).ok()
    }

    /// A number read as `f64`, rounded as serde_json (with `float_roundtrip`) rounds it:
    /// exactly, by one division when there are at most 15 digits and no exponent (Clinger's
    /// fast path: both operands exact), else by the standard library's correctly rounded
    /// parser. Out of range is left to serde_json (its error).
    #[inline(always)]
    fn f64(&mut self) -> Option<f64> {
        self.ws();
        let neg = self.s.get(self.i) == Some(&b'-');
        if neg {
            self.i += 1;
        }
        let start = self.i;
        let (int_len, int) = self.digits();
        if int_len == 0 || (int_len > 1 && self.s.get(start) == Some(&b'0')) {
            return None;
        }
        // `843.0`, as whole values are written: the integer, exact up to 15 digits.
        if int_len <= 15 {
            if let Some([b'.', b'0', next]) =
                self.s.get(self.i..).and_then(|r| r.first_chunk::<3>())
            {
                if !next.is_ascii_digit() && !matches!(next, b'e' | b'E') {
                    self.i += 2;
                    let v = int as i64 as f64;
                    return Some(if neg { -v } else { v });
                }
            }
        }
        self.f64_rest(neg, start, int_len, int)
    }

    /// [`Reader::f64`] after the integer digits.
    #[inline(never)]
    fn f64_rest(&mut self, neg: bool, start: usize, int_len: usize, int: u64) -> Option<f64> {
        let mut mant = int;
        let mut frac = 0usize;
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            let (len, f) = self.digits();
            if len == 0 {
                return None;
            }
            frac = len;
            // Exact whenever it is used (at most 15 digits in all).
            mant = POW10_INT
                .get(len)
                .map_or(0, |&p| mant.wrapping_mul(p).wrapping_add(f));
        }
        let mut exact = int_len + frac <= 15;
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            let (exp_len, _) = self.digits();
            if !(1..=4).contains(&exp_len) {
                return None;
            }
            exact = false;
        }
        let v = match POW10.get(frac) {
            // Below 10^15: exact as i64 and as f64.
            Some(&p) if exact => mant as i64 as f64 / p,
            _ => {
                let digits = self.text.get(start..self.i)?;
                digits.parse::<f64>().ok().filter(|v| v.is_finite())?
            }
        };
        Some(if neg { -v } else { v })
    }

    #[inline(always)]
    fn bool(&mut self) -> Option<bool> {
        if self.eat_word(b"true") {
            Some(true)
        } else if self.eat_word(b"false") {
            Some(false)
        } else {
            None
        }
    }

    fn ip(&mut self) -> Option<IpAddr> {
        self.str()?.parse().ok()
    }

    /// Reads an object, calling `field` with each key with the cursor at its value.
    #[inline]
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.eat_if(b'}') {
            return Some(());
        }
        loop {
            let key = self.str()?;
            self.colon()?;
            field(self, key)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Reads an array, calling `item` with the cursor at each element.
    #[inline]
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.eat_if(b']') {
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn vec<T>(&mut self, mut read: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let mut v = Vec::new();
        self.array(|r| {
            v.push(read(r)?);
            Some(())
        })?;
        Some(v)
    }

    fn set<T: Ord>(&mut self, read: impl FnMut(&mut Self) -> Option<T>) -> Option<BTreeSet<T>> {
        Some(self.vec(read)?.into_iter().collect())
    }

    /// A map with string keys. As serde builds it, by inserting each pair in turn (a repeated
    /// key keeps its last value); built in one go when the keys are in strictly increasing order,
    /// as `learn` writes them.
    fn map<T>(&mut self, read: impl FnMut(&mut Self) -> Option<T>) -> Option<BTreeMap<String, T>> {
        self.map_with(0, read)
    }

    /// [`Reader::map`], its pairs gathered in a list of `cap` places at first.
    fn map_with<T>(
        &mut self,
        cap: usize,
        mut read: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<BTreeMap<String, T>> {
        let mut items: Vec<(String, T)> = Vec::with_capacity(cap);
        let mut sorted = true;
        self.object(|r, key| {
            if items.last().is_some_and(|(last, _)| key <= last.as_str()) {
                sorted = false;
            }
            let v = read(r)?;
            items.push((key.to_string(), v));
            Some(())
        })?;
        if sorted {
            return Some(items.into_iter().collect());
        }
        let mut m = BTreeMap::new();
        for (k, v) in items {
            m.insert(k, v);
        }
        Some(m)
    }

    /// `[first, last]`.
    fn pair(&mut self) -> Option<[u32; 2]> {
        self.eat(b'[')?;
        let a = self.u32()?;
        self.eat(b',')?;
        let b = self.u32()?;
        self.eat(b']')?;
        Some([a, b])
    }

    /// An object or array as text: its extent, found by counting brackets outside strings
    /// (the text is then read by serde_json, which checks it).
    fn container(&mut self) -> Option<&'a str> {
        self.ws();
        let start = self.i;
        if !matches!(self.s.get(self.i), Some(b'{' | b'[')) {
            return None;
        }
        let mut depth = 0usize;
        while let Some(&c) = self.s.get(self.i) {
            self.i += 1;
            match c {
                b'"' => loop {
                    match *self.s.get(self.i)? {
                        b'\\' => self.i += 2,
                        b'"' => {
                            self.i += 1;
                            break;
                        }
                        _ => self.i += 1,
                    }
                },
                b'{' | b'[' => {
                    depth += 1;
                    // Well inside serde_json's recursion limit wherever the text sits.
                    if depth > 64 {
                        return None;
                    }
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return self.text.get(start..self.i);
                    }
                }
                _ => {}
            }
        }
        None
    }

    fn baseline(&mut self) -> Option<Baseline> {
        let (mut kind, mut version, mut learned, mut assets) = (None, None, None, None);
        let (mut channels, mut dropped, mut ml) = (None, None, None);
        self.object(|r, key| match key {
            "kind" => once(&mut kind, r.string()?),
            "version" => once(&mut version, r.u32()?),
            "learned" => once(&mut learned, r.learned()?),
            "assets" => once(&mut assets, r.vec(Self::asset)?),
            "channels" => once(&mut channels, r.vec(Self::channel)?),
            "dropped" => once(&mut dropped, r.dropped()?),
            "ml" => {
                let m = if r.eat_word(b"null") {
                    None
                } else {
                    Some(serde_json::from_str::<MlModel>(r.container()?).ok()?)
                };
                once(&mut ml, m)
            }
            _ => None,
        })?;
        Some(Baseline {
            kind: kind?,
            version: version?,
            learned: learned?,
            assets: assets?,
            channels: channels?,
            dropped: dropped?,
            ml: ml.flatten(),
            index: Index::default(),
        })
    }

    fn learned(&mut self) -> Option<LearnedSpan> {
        let (mut first, mut last, mut duration_s, mut events) = (None, None, None, None);
        self.object(|r, key| match key {
            "first" => once(&mut first, r.string()?),
            "last" => once(&mut last, r.string()?),
            "duration_s" => once(&mut duration_s, r.f64()?),
            "events" => once(&mut events, r.u64()?),
            _ => None,
        })?;
        Some(LearnedSpan {
            first: first?,
            last: last?,
            duration_s: duration_s?,
            events: events?,
        })
    }

    fn asset(&mut self) -> Option<Asset> {
        let (mut ip, mut macs, mut roles, mut server_ports) = (None, None, None, None);
        let (mut facts, mut events) = (None, None);
        self.object(|r, key| match key {
            "ip" => once(&mut ip, r.ip()?),
            "macs" => once(&mut macs, r.set(Self::string)?),
            "roles" => once(&mut roles, r.set(Self::string)?),
            "server_ports" => once(&mut server_ports, r.set(Self::u16)?),
            "facts" => once(&mut facts, r.map(|r| r.set(Self::string))?),
            "events" => once(&mut events, r.u64()?),
            _ => None,
        })?;
        Some(Asset {
            ip: ip?,
            macs: macs.unwrap_or_default(),
            roles: roles.unwrap_or_default(),
            server_ports: server_ports.unwrap_or_default(),
            facts: facts.unwrap_or_default(),
            events: events.unwrap_or_default(),
        })
    }

    fn operation(&mut self) -> Option<Operation> {
        let (mut code, mut sub, mut name, mut op) = (None, None, None, None);
        let (mut count, mut exceptions) = (None, None);
        self.object(|r, key| match key {
            "code" => once(&mut code, r.u32()?),
            "sub" => {
                let v = if r.eat_word(b"null") {
                    None
                } else {
                    Some(r.u16()?)
                };
                once(&mut sub, v)
            }
            "name" => once(&mut name, r.string()?),
            "op" => once(&mut op, r.string()?),
            "count" => once(&mut count, r.u64()?),
            "exceptions" => once(&mut exceptions, r.u64()?),
            _ => None,
        })?;
        Some(Operation {
            code: code?,
            sub: sub.flatten(),
            name: name?,
            op: op?,
            count: count?,
            exceptions: exceptions.unwrap_or_default(),
        })
    }

    fn volume(&mut self) -> Option<Volume> {
        let (mut per_min, mut max_per_10s) = (None, None);
        let (mut exceptions, mut max_exceptions_per_min) = (None, None);
        self.object(|r, key| match key {
            "per_min" => once(&mut per_min, r.f64()?),
            "max_per_10s" => once(&mut max_per_10s, r.u64()?),
            "exceptions" => once(&mut exceptions, r.u64()?),
            "max_exceptions_per_min" => once(&mut max_exceptions_per_min, r.u64()?),
            _ => None,
        })?;
        Some(Volume {
            per_min: per_min?,
            max_per_10s: max_per_10s?,
            exceptions: exceptions?,
            max_exceptions_per_min: max_exceptions_per_min?,
        })
    }

    fn dropped(&mut self) -> Option<Dropped> {
        let (mut assets, mut channels, mut objects, mut values) = (None, None, None, None);
        let (mut poll_signatures, mut ranges_merged, mut facts) = (None, None, None);
        self.object(|r, key| match key {
            "assets" => once(&mut assets, r.u64()?),
            "channels" => once(&mut channels, r.u64()?),
            "objects" => once(&mut objects, r.u64()?),
            "values" => once(&mut values, r.u64()?),
            "poll_signatures" => once(&mut poll_signatures, r.u64()?),
            "ranges_merged" => once(&mut ranges_merged, r.u64()?),
            "facts" => once(&mut facts, r.u64()?),
            _ => None,
        })?;
        Some(Dropped {
            assets: assets.unwrap_or_default(),
            channels: channels.unwrap_or_default(),
            objects: objects.unwrap_or_default(),
            values: values.unwrap_or_default(),
            poll_signatures: poll_signatures.unwrap_or_default(),
            ranges_merged: ranges_merged.unwrap_or_default(),
            facts: facts.unwrap_or_default(),
        })
    }

    fn channel(&mut self) -> Option<Channel> {
        let (mut client, mut server, mut proto, mut server_ports) = (None, None, None, None);
        let (mut unit_ids, mut events, mut first_seen, mut last_seen) = (None, None, None, None);
        let (mut volume, mut operations, mut read_ranges) = (None, None, None);
        let (mut write_ranges, mut objects, mut polls) = (None, None, None);
        let (mut cycle, mut dropped) = (None, None);
        self.object(|r, key| match key {
            "client" => once(&mut client, r.ip()?),
            "server" => once(&mut server, r.ip()?),
            "proto" => once(&mut proto, r.string()?),
            "server_ports" => once(&mut server_ports, r.set(Self::u16)?),
            "unit_ids" => once(&mut unit_ids, r.set(Self::u8)?),
            "events" => once(&mut events, r.u64()?),
            "first_seen" => once(&mut first_seen, r.string()?),
            "last_seen" => once(&mut last_seen, r.string()?),
            "volume" => once(&mut volume, r.volume()?),
            "operations" => once(&mut operations, r.vec(Self::operation)?),
            "read_ranges" => once(&mut read_ranges, r.map(|r| r.vec(Self::pair))?),
            "write_ranges" => once(&mut write_ranges, r.map(|r| r.vec(Self::pair))?),
            "objects" => {
                // As many places as the channel before had objects: channels of a plant are
                // alike, and the list then seldom grows.
                let m = r.map_with(r.objects_hint, Self::object_profile)?;
                r.objects_hint = m.len().min(MAX_OBJECTS_HINT);
                once(&mut objects, m)
            }
            "polls" => once(&mut polls, r.vec(Self::poll)?),
            "cycle" => once(&mut cycle, r.vec(Self::string)?),
            "dropped" => once(&mut dropped, r.dropped()?),
            _ => None,
        })?;
        Some(Channel {
            client: client?,
            server: server?,
            proto: proto?,
            server_ports: server_ports.unwrap_or_default(),
            unit_ids: unit_ids.unwrap_or_default(),
            events: events?,
            first_seen: first_seen?,
            last_seen: last_seen?,
            volume: volume?,
            operations: operations.unwrap_or_default(),
            read_ranges: read_ranges.unwrap_or_default(),
            write_ranges: write_ranges.unwrap_or_default(),
            objects: objects.unwrap_or_default(),
            polls: polls.unwrap_or_default(),
            cycle: cycle.unwrap_or_default(),
            dropped: dropped.unwrap_or_default(),
        })
    }

    /// An object profile.
    fn object_profile(&mut self) -> Option<ObjectProfile> {
        self.either(Self::object_profile_ordered, Self::object_profile_any)
    }

    /// `{"reads", "writes"[, "read"][, "written"]}` in this order.
    fn object_profile_ordered(&mut self) -> Option<ObjectProfile> {
        self.eat(b'{')?;
        self.key_is(b"reads")?;
        let reads = self.u64()?;
        self.eat(b',')?;
        self.key_is(b"writes")?;
        let writes = self.u64()?;
        let (mut read, mut written) = (None, None);
        if self.eat_if(b',') {
            if self.key_is(b"read").is_some() {
                read = self.value_profile_or_null()?;
                if self.eat_if(b',') {
                    self.key_is(b"written")?;
                    written = self.value_profile_or_null()?;
                }
            } else {
                self.key_is(b"written")?;
                written = self.value_profile_or_null()?;
            }
        }
        self.eat(b'}')?;
        Some(ObjectProfile {
            reads,
            writes,
            read,
            written,
        })
    }

    /// A value profile.
    fn value_profile(&mut self) -> Option<ValueProfile> {
        self.either(Self::value_profile_ordered, Self::value_profile_any)
    }

    /// A value profile's fields in the order `learn` writes them (`monotonic` only when true).
    fn value_profile_ordered(&mut self) -> Option<ValueProfile> {
        self.eat(b'{')?;
        self.key_is(b"count")?;
        let count = self.u64()?;
        self.eat(b',')?;
        self.key_is(b"min")?;
        let min = self.f64()?;
        self.eat(b',')?;
        self.key_is(b"max")?;
        let max = self.f64()?;
        self.eat(b',')?;
        self.key_is(b"p05")?;
        let p05 = self.f64()?;
        self.eat(b',')?;
        self.key_is(b"p50")?;
        let p50 = self.f64()?;
        self.eat(b',')?;
        self.key_is(b"p95")?;
        let p95 = self.f64()?;
        self.eat(b',')?;
        self.key_is(b"max_step")?;
        let max_step = self.f64()?;
        self.eat(b',')?;
        self.key_is(b"distinct")?;
        let distinct = self.u32()?;
        self.eat(b',')?;
        self.key_is(b"distinct_capped")?;
        let distinct_capped = self.bool()?;
        self.eat(b',')?;
        self.key_is(b"constant")?;
        let constant = self.bool()?;
        self.eat(b',')?;
        self.key_is(b"max_same_run")?;
        let max_same_run = self.u64()?;
        let mut monotonic = false;
        if self.eat_if(b',') {
            self.key_is(b"monotonic")?;
            monotonic = self.bool()?;
        }
        self.eat(b'}')?;
        Some(ValueProfile {
            count,
            min,
            max,
            p05,
            p50,
            p95,
            max_step,
            distinct,
            distinct_capped,
            constant,
            max_same_run,
            monotonic,
        })
    }

    /// A polling pattern.
    fn poll(&mut self) -> Option<PollPattern> {
        self.either(Self::poll_ordered, Self::poll_any)
    }

    /// A polling pattern's fields in the order `learn` writes them.
    fn poll_ordered(&mut self) -> Option<PollPattern> {
        self.eat(b'{')?;
        self.key_is(b"signature")?;
        let signature = self.string()?;
        self.eat(b',')?;
        self.key_is(b"count")?;
        let count = self.u64()?;
        self.eat(b',')?;
        self.key_is(b"period_ms")?;
        let period_ms = self.f64()?;
        self.eat(b',')?;
        self.key_is(b"mean_ms")?;
        let mean_ms = self.f64()?;
        self.eat(b',')?;
        self.key_is(b"jitter_ms")?;
        let jitter_ms = self.f64()?;
        self.eat(b',')?;
        self.key_is(b"p95_dev_ms")?;
        let p95_dev_ms = self.f64()?;
        self.eat(b',')?;
        self.key_is(b"max_gap_ms")?;
        let max_gap_ms = self.f64()?;
        self.eat(b',')?;
        self.key_is(b"periodic")?;
        let periodic = self.bool()?;
        self.eat(b'}')?;
        Some(PollPattern {
            signature,
            count,
            period_ms,
            mean_ms,
            jitter_ms,
            p95_dev_ms,
            max_gap_ms,
            periodic,
        })
    }

    fn object_profile_any(&mut self) -> Option<ObjectProfile> {
        let (mut reads, mut writes, mut read, mut written) = (None, None, None, None);
        self.object(|r, key| match key {
            "reads" => once(&mut reads, r.u64()?),
            "writes" => once(&mut writes, r.u64()?),
            "read" => once(&mut read, r.value_profile_or_null()?),
            "written" => once(&mut written, r.value_profile_or_null()?),
            _ => None,
        })?;
        Some(ObjectProfile {
            reads: reads?,
            writes: writes?,
            read: read.flatten(),
            written: written.flatten(),
        })
    }

    fn value_profile_or_null(&mut self) -> Option<Option<ValueProfile>> {
        if self.eat_word(b"null") {
            Some(None)
        } else {
            self.value_profile().map(Some)
        }
    }

    fn value_profile_any(&mut self) -> Option<ValueProfile> {
        let (mut count, mut min, mut max, mut p05) = (None, None, None, None);
        let (mut p50, mut p95, mut max_step, mut distinct) = (None, None, None, None);
        let (mut distinct_capped, mut constant) = (None, None);
        let (mut max_same_run, mut monotonic) = (None, None);
        self.object(|r, key| match key {
            "count" => once(&mut count, r.u64()?),
            "min" => once(&mut min, r.f64()?),
            "max" => once(&mut max, r.f64()?),
            "p05" => once(&mut p05, r.f64()?),
            "p50" => once(&mut p50, r.f64()?),
            "p95" => once(&mut p95, r.f64()?),
            "max_step" => once(&mut max_step, r.f64()?),
            "distinct" => once(&mut distinct, r.u32()?),
            "distinct_capped" => once(&mut distinct_capped, r.bool()?),
            "constant" => once(&mut constant, r.bool()?),
            "max_same_run" => once(&mut max_same_run, r.u64()?),
            "monotonic" => once(&mut monotonic, r.bool()?),
            _ => None,
        })?;
        Some(ValueProfile {
            count: count?,
            min: min?,
            max: max?,
            p05: p05?,
            p50: p50?,
            p95: p95?,
            max_step: max_step?,
            distinct: distinct?,
            distinct_capped: distinct_capped?,
            constant: constant?,
            max_same_run: max_same_run?,
            monotonic: monotonic.unwrap_or_default(),
        })
    }

    fn poll_any(&mut self) -> Option<PollPattern> {
        let (mut signature, mut count, mut period_ms, mut mean_ms) = (None, None, None, None);
        let (mut jitter_ms, mut p95_dev_ms, mut max_gap_ms) = (None, None, None);
        let mut periodic = None;
        self.object(|r, key| match key {
            "signature" => once(&mut signature, r.string()?),
            "count" => once(&mut count, r.u64()?),
            "period_ms" => once(&mut period_ms, r.f64()?),
            "mean_ms" => once(&mut mean_ms, r.f64()?),
            "jitter_ms" => once(&mut jitter_ms, r.f64()?),
            "p95_dev_ms" => once(&mut p95_dev_ms, r.f64()?),
            "max_gap_ms" => once(&mut max_gap_ms, r.f64()?),
            "periodic" => once(&mut periodic, r.bool()?),
            _ => None,
        })?;
        Some(PollPattern {
            signature: signature?,
            count: count?,
            period_ms: period_ms?,
            mean_ms: mean_ms?,
            jitter_ms: jitter_ms?,
            p95_dev_ms: p95_dev_ms?,
            max_gap_ms: max_gap_ms?,
            periodic: periodic?,
        })
    }
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
    use crate::baseline::{BaselineError, LearnConfig, Learner};
    use crate::detect::ml::MlConfig;
    use crate::pipeline::{open_all, run, PipelineConfig};
    use proptest::prelude::*;
    use std::path::PathBuf;
    use std::sync::OnceLock;

    /// A baseline learnt from captures of the repository.
    fn learn(files: &[&str], ml: bool) -> Baseline {
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|f| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(f))
            .collect();
        let mut files = open_all(&paths).unwrap();
        let mut l = Learner::new(LearnConfig {
            ml: ml.then(MlConfig::default),
            ..LearnConfig::default()
        });
        run(
            PipelineConfig::default(),
            &mut files,
            &mut |e| l.observe(e),
            &mut |_, _| {},
        )
        .unwrap();
        l.finish().unwrap()
    }

    /// The texts of learnt baselines (pretty-printed, as `learn` writes them), learnt once.
    fn learnt() -> &'static [String] {
        static TEXTS: OnceLock<Vec<String>> = OnceLock::new();
        TEXTS.get_or_init(|| {
            let plant = learn(&["pcaps/modbus_plant.pcap"], false);
            let opcua = learn(&["pcaps/opcua_plant.pcap"], false);
            let both = learn(
                &["pcaps/modbus_plant.pcap", "pcaps/opcua_plant.pcap"],
                false,
            );
            let eval = learn(&["pcaps/eval/train.pcap"], true);
            assert!(eval.ml.is_some(), "the eval capture trains a model");
            assert!(plant.channels.iter().any(|c| !c.objects.is_empty()));
            assert!(opcua.channels.iter().any(|c| c.proto == "opcua"));
            let empty = Learner::default().finish().unwrap();
            [plant, opcua, both, eval, empty]
                .iter()
                .map(Baseline::to_json_pretty)
                .collect()
        })
    }

    /// What loading gives, in a comparable form: the value as pretty JSON (every float bit for
    /// bit, as ryu writes the shortest round trip) with its lookups, or the error.
    fn outcome(r: Result<Baseline, BaselineError>) -> Result<String, String> {
        match r {
            Ok(b) => Ok(format!("{}{:?}", b.to_json_pretty(), b.index)),
            Err(e) => Err(format!("{e} / {e:?}")),
        }
    }

    /// The direct reader gives nothing or what serde gives; `from_json` gives what serde alone
    /// gives, value or error.
    fn check_same(text: &str) {
        if let Some(b) = parse(text) {
            let want = serde_json::from_str::<Baseline>(text).unwrap_or_else(|e| {
                panic!("direct reader accepted what serde refuses ({e}): {text}")
            });
            assert_eq!(b, want);
            assert_eq!(b.to_json_pretty(), want.to_json_pretty());
        }
        assert_eq!(
            outcome(Baseline::from_json(text)),
            outcome(Baseline::from_json_serde(text)),
            "{text}"
        );
    }

    /// Leading whitespace of every line as tabs and line ends as CRLF (strings unchanged).
    fn reindented(text: &str) -> String {
        text.lines()
            .map(|l| {
                let body = l.trim_start_matches(' ');
                format!("{}{body}\r\n", "\t".repeat((l.len() - body.len()) / 2))
            })
            .collect()
    }

    #[test]
    fn direct_reader_equals_serde_on_learnt_baselines() {
        for text in learnt() {
            let want = serde_json::from_str::<Baseline>(text).unwrap();
            let b = parse(text).expect("the direct reader reads what learn writes");
            assert_eq!(b, want);
            assert_eq!(&b.to_json_pretty(), text);
            let compact = serde_json::to_string(&want).unwrap();
            assert_eq!(parse(&compact).expect("compact"), want);
            assert_eq!(parse(&reindented(text)).expect("tabs and CRLF"), want);
            for t in [text.as_str(), &compact, &reindented(text)] {
                check_same(t);
            }
            let loaded = Baseline::from_json(text).unwrap();
            assert_eq!(loaded, Baseline::from_json_serde(text).unwrap());
        }
    }

    #[test]
    fn edits_within_the_grammar_read_the_same() {
        let text = &learnt()[0];
        // Fields in another order, unknown fields, escapes, nulls for options, repeated map
        // keys, a struct as an array: the direct reader reads some, leaves the others to serde.
        let edits: &[(&str, &str)] = &[
            ("\"reads\": ", "\"writes\": 0, \"reads\": "),
            ("\"count\": ", "\"constant\": true, \"count\": "),
            ("\"kind\": ", "\"index\": 1, \"kind\": "),
            ("\"reads\": ", "\"x\": 1, \"reads\": "),
            ("\"signature\": ", "\"count\": 1, \"signature\": "),
            ("\"p05\": ", "\"monotonic\": false, \"p05\": "),
            (
                "\"max_same_run\": ",
                "\"monotonic\": true, \"max_same_run\": ",
            ),
            (
                "\"writes\": 0",
                "\"writes\": 0, \"read\": null, \"written\": null",
            ),
            ("\"writes\": 0", "\"writes\": 0, \"written\": null"),
            ("\"proto\": \"modbus\"", "\"proto\": \"mod\\u0062us\""),
            ("\"proto\": \"modbus\"", "\"pr\\u006fto\": \"modbus\""),
            ("\"proto\": \"modbus\"", "\"proto\": \"opcua\""),
            ("\"proto\": \"modbus\"", "\"proto\": \"dnp3\""),
            ("\"ml\"", "\"ml\""),
            ("\"dropped\": {", "\"ml\": null, \"dropped\": {"),
            ("\"dropped\": {", "\"ml\": 5, \"dropped\": {"),
            ("\"dropped\": {", "\"ml\": {}, \"dropped\": {"),
            ("\"dropped\": {", "\"ml\": [\"]\"], \"dropped\": {"),
            (
                "\"dropped\": {",
                "\"dropped\": {\"assets\": 1}, \"dropped\": {",
            ),
            ("\"unit_ids\": [", "\"unit_ids\": [1, 1, "),
            ("\"unit_ids\": [", "\"unit_ids\": [256, "),
            ("\"server_ports\": [", "\"server_ports\": [65536, "),
            ("\"roles\": [", "\"roles\": [\"zz\", \"a\", \"zz\", "),
            (
                "\"facts\": {",
                "\"facts\": {\"b\": [], \"a\": [\"x\"], \"b\": [\"y\"], ",
            ),
            (
                "\"read_ranges\": {",
                "\"read_ranges\": {\"z\": [[1, 2]], \"a\": [[2, 1]], \"z\": [], ",
            ),
            (
                "\"read_ranges\": {",
                "\"read_ranges\": {\"a\": [[1, 2, 3]], ",
            ),
            ("\"read_ranges\": {", "\"read_ranges\": {\"a\": [[1]], "),
            (
                "\"objects\": {",
                "\"objects\": {\"zz\": {\"reads\": 1, \"writes\": 2}, ",
            ),
            (
                "\"objects\": {",
                "\"objects\": {\"u1/coil/0\": {\"reads\": 1, \"writes\": 2}, ",
            ),
            (
                "\"learned\": {",
                "\"learned\": [\"a\", \"b\", 1.0, 2], \"x\": {",
            ),
            ("\"volume\": {", "\"volume\": null, \"v\": {"),
            ("\"sub\": ", "\"sub\": null, \"x\": "),
            ("\"code\": 3,", "\"code\": 3, \"sub\": 7,"),
            ("\"code\": 3,", "\"code\": 3, \"sub\": null,"),
            ("\"code\": 3,", "\"code\": 3.0,"),
            ("\"code\": 3,", "\"code\": 03,"),
            ("\"code\": 3,", "\"code\": -3,"),
            ("\"code\": 3,", "\"code\": 4294967296,"),
            ("\"events\": ", "\"events\": 18446744073709551615, \"e\": "),
            ("\"events\": ", "\"events\": 18446744073709551616, \"e\": "),
            ("\"version\": 1", "\"version\": 1.0"),
            ("\"version\": 1", "\"version\": 2"),
            ("\"version\": 1", "\"version\": \"1\""),
            ("\"kind\": \"otwatch-baseline\"", "\"kind\": \"other\""),
            ("\"kind\": \"otwatch-baseline\"", "\"kind\": null"),
            ("\"constant\": true", "\"constant\": 1"),
            ("\"constant\": true", "\"constant\": True"),
            ("\"periodic\": true", "\"periodic\": nul"),
            ("\"ip\": \"", "\"ip\": \"x"),
            ("\"client\": \"", "\"client\": \"::ffff:"),
            ("\"first\": \"", "\"first\": \"\\t"),
            ("\"first\": \"", "\"first\": \"\t"),
            ("\"first\": \"", "\"first\": \"é"),
            ("\"assets\": [", "\"assets\": [,"),
            ("\"assets\": [", "\"assets\": 7, \"x\": ["),
            ("{", "\u{feff}{"),
            ("{", " \u{a0}{"),
            ("{", "{\"kind\": 1,"),
        ];
        let mut n = 0;
        for (from, to) in edits {
            if !text.contains(from) {
                continue;
            }
            for count in [1, usize::MAX] {
                let t = if count == 1 {
                    text.replacen(from, to, 1)
                } else {
                    text.replace(from, to)
                };
                check_same(&t);
                check_same(&format!("{t}  \n"));
                check_same(&format!("{t}x"));
                n += 1;
            }
        }
        assert!(n > 80, "{n}");
    }

    #[test]
    fn numbers_read_as_serde_reads_them() {
        let mut tokens: Vec<String> = [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "1",
            "-1",
            "843.0",
            "17.25",
            "0.1",
            "0.3",
            "2.5e-7",
            "1e20",
            "1E20",
            "1e+20",
            "1e-20",
            "5e-324",
            "1e-400",
            "-1e-400",
            "1e308",
            "1.8e308",
            "1e400",
            "0e9999",
            "1e99999",
            "9007199254740993",
            "9007199254740993.0",
            "123456789012345.6",
            "1234567890123456.7",
            "0.000000000000000000000000001",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "179769313486231570000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000000000000000000000\
             00000000000000000000000000000000000000000000000000000000000000000000000000000000000",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "1e+",
            "+1",
            "--1",
            "0x10",
            "1.e5",
            "NaN",
            "inf",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            if f.is_finite() {
                tokens.push(serde_json::to_string(&f).unwrap());
                tokens.push(format!("{f:e}"));
            }
            let small = (x % 1_000_000) as f64 / [1.0, 10.0, 100.0, 1000.0][i % 4];
            tokens.push(serde_json::to_string(&small).unwrap());
            tokens.push(format!("{}.{}", x % 100_000, x % 1000));
            tokens.push(format!(
                "{}e{}",
                x % 10_000_000_000_000_000,
                (x >> 40) % 700
            ));
            tokens.push(format!("{}.{}e-{}", x % 1_000_000, x % 97, (x >> 40) % 340));
        }
        for tok in &tokens {
            let mut r = Reader {
                text: tok,
                s: tok.as_bytes(),
                i: 0,
                last_run: (0, 0, 0),
                objects_hint: 0,
            };
            let mine = r.f64().filter(|_| r.i == tok.len());
            let theirs = serde_json::from_str::<f64>(tok).ok();
            if let Some(v) = mine {
                let w = theirs.unwrap_or_else(|| panic!("{tok}: serde refuses, read {v}"));
                assert_eq!(v.to_bits(), w.to_bits(), "{tok}");
            }
            let mut r = Reader {
                text: tok,
                s: tok.as_bytes(),
                i: 0,
                last_run: (0, 0, 0),
                objects_hint: 0,
            };
            if let Some(v) = r.u64().filter(|_| r.i == tok.len()) {
                assert_eq!(serde_json::from_str::<u64>(tok).ok(), Some(v), "{tok}");
            }
        }
    }

    /// `Baseline::load` as it was: the file read as a string, then `from_json`.
    fn load_as_before(path: &std::path::Path) -> Result<Baseline, BaselineError> {
        let text = std::fs::read_to_string(path).map_err(|e| BaselineError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        Baseline::from_json_serde(&text)
    }

    #[test]
    fn files_load_as_before_utf8_errors_included() {
        let text = &learnt()[0];
        let at = text.find("\"proto\": \"").unwrap() + 10;
        let free = text.find("\"first\": \"").unwrap() + 10;
        let mut cases: Vec<Vec<u8>> = vec![
            text.as_bytes().to_vec(),
            text.replacen("\"version\": 1", "\"version\": 2", 1)
                .into_bytes(),
            b"{\"kind\": 1}".to_vec(),
            Vec::new(),
        ];
        // Bytes that are not UTF-8, in a string, a key, outside strings and in a model.
        for bad in [
            &b"\xff"[..],
            b"\xc3",
            b"\xe2\x82",
            b"\xed\xa0\x80",
            b"\xc3\xa9",
        ] {
            for pos in [free, at, at + 3, 1, text.len() - 2] {
                let mut b = text.as_bytes().to_vec();
                b.splice(pos..pos, bad.iter().copied());
                cases.push(b);
            }
        }
        let ml = &learnt()[3];
        let at = ml.find("\"algorithm\": \"").unwrap() + 14;
        let mut b = ml.as_bytes().to_vec();
        b.splice(at..at, *b"\xff");
        cases.push(b);
        let path =
            std::env::temp_dir().join(format!("otwatch-baseline-load-{}.json", std::process::id()));
        let mut n_ok = 0;
        for bytes in &cases {
            std::fs::write(&path, bytes).unwrap();
            let got = outcome(Baseline::load(&path));
            n_ok += usize::from(got.is_ok());
            assert_eq!(got, outcome(load_as_before(&path)));
            if let Ok(t) = std::str::from_utf8(bytes) {
                assert_eq!(got, outcome(Baseline::from_json(t)));
            } else {
                assert!(got
                    .unwrap_err()
                    .contains("stream did not contain valid UTF-8"));
            }
        }
        std::fs::remove_file(&path).unwrap();
        assert_eq!(n_ok, 2, "the file, and é in a string read as it is");
        let missing = std::env::temp_dir().join("otwatch-baseline-load-missing/b.json");
        assert_eq!(
            outcome(Baseline::load(&missing)),
            outcome(load_as_before(&missing))
        );
    }

    /// One edit of a baseline text: deletes, inserts or replaces characters, repeats or swaps
    /// lines.
    fn mutate(text: &str, op: u8, at: usize, pick: usize) -> String {
        const INSERTS: &[&str] = &[
            "\"",
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "0",
            "-",
            ".",
            "e",
            "\\",
            " ",
            "\n",
            "\t",
            "x",
            "n",
            "null",
            "1e400",
            "-0",
            "01",
            "é",
            "\"\\u0041\"",
            "\u{1}",
            "true",
            "[]",
            "{}",
        ];
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let (pos, _) = chars[at % chars.len()];
        let ins = INSERTS[pick % INSERTS.len()];
        let mut lines: Vec<&str> = text.lines().collect();
        let li = at % lines.len();
        match op % 6 {
            0 => {
                let end = pos + text[pos..].chars().next().map_or(0, char::len_utf8);
                format!("{}{}", &text[..pos], &text[end..])
            }
            1 => format!("{}{ins}{}", &text[..pos], &text[pos..]),
            2 => {
                let end = pos + text[pos..].chars().next().map_or(0, char::len_utf8);
                format!("{}{ins}{}", &text[..pos], &text[end..])
            }
            3 => {
                let l = lines[li];
                lines.insert(li, l);
                lines.join("\n")
            }
            4 => {
                let lj = pick % lines.len();
                lines.swap(li, lj);
                lines.join("\n")
            }
            _ => text[..pos].to_string(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]
        #[test]
        fn mutated_baselines_load_as_serde_loads_them(
            which in 0usize..3,
            compact in any::<bool>(),
            edits in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 1..4),
        ) {
            // The smaller baselines: a mutation is a few bytes of a few kilobytes.
            let pretty = &learnt()[[1, 3, 4][which]];
            let mut text = if compact {
                serde_json::to_string(&serde_json::from_str::<Baseline>(pretty).unwrap()).unwrap()
            } else {
                pretty.clone()
            };
            for (op, at, pick) in edits {
                text = mutate(&text, op, at, pick);
                if text.is_empty() {
                    break;
                }
            }
            check_same(&text);
        }
    }
}
