//! Aggregation of repeated alerts, so that a condition that lasts does not flood the SIEM.
//!
//! Policy. Two alerts are repeats when they have the same signature id and signature text, the
//! same source and destination address and the same application protocol (one kind of finding
//! on one channel). The first alert of an episode is emitted at once. Repeats within the next
//! `window` (capture time) are counted, not emitted; when the window closes, one summary is
//! emitted (`otwatch.aggregated = true`, `count` = repeats in the window, `first_seen` and
//! `last_seen` of those repeats, the first [`MAX_EVIDENCE`] of their events as evidence, and
//! the last repeat's explanation). If repeats went on, the next window opens at once and ends
//! with its own summary; a window without repeats ends the episode, and the next occurrence is
//! again a first alert. A condition that lasts an hour with a 5-minute window gives one first
//! alert and at most twelve summaries. Windows close on the capture clock (the next event or
//! tick past the window) and at [`Aggregator::finish`]; summaries closed at once come out in
//! the order of their keys (signature id, signature, source, destination, protocol).
//!
//! At most [`MAX_EPISODES`] episodes are open. An alert of a new key when that many are open
//! first closes the least recently updated episode that has had no repeat yet, or when every
//! open episode has had one, the least recently updated of all, as its window would have
//! closed (its summary, when it had repeats, comes out just before the new alert), counted in
//! [`Aggregator::episodes_closed_early`]: in a flood of distinct findings every alert is still
//! emitted or summarised, and memory stays bounded. Closing the episodes without repeats first
//! keeps the ones that aggregate something when the flood's keys come round in a cycle longer
//! than the table (there, the least recently updated episode is always the next one to come
//! back, and closing it would aggregate nothing).
//!
//! Words. A raw alert may come with its words left to write (the values detector's
//! read-out-of-range alerts, the timing detector's poll-stopped and burst alerts, see
//! [`Alert::resolve`]): they are written for the alerts that
//! come out (first alerts, and a summary's last repeat when the summary is made), not for the
//! repeats that a later one replaces.
//!
//! Lookup. In an alert flood every raw alert passes here, so a repeat is found without
//! building or cloning its key: first the episode of the last hit is compared field by field,
//! then a seeded 64-bit fingerprint of the key finds the episodes to compare in a hash index
//! (a chain per fingerprint, so that a collision only costs a compare). Episodes live in a
//! flat list, also linked in two lists (no repeat yet, repeated) in the order of their last
//! update; the index and the lists are rebuilt when windows close (once per window, not per
//! alert).

use crate::alert::schema::MAX_EVIDENCE;
use crate::alert::{Alert, AlertEvidence};
use crate::event::AppProto;
use crate::flow::hash::KeyHashBuilder;
use crate::time::Timestamp;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

/// No episode (end of a chain or of the update order, no last hit).
const NONE: u32 = u32::MAX;

/// Most open episodes (keys with a window open). Beyond, an alert of a new key closes the
/// least recently updated episode first (counted in [`Aggregator::episodes_closed_early`]). A
/// plant has a few hundred channels with a few findings each open at once; an episode with
/// repeats holds the last one (without its evidence, about 1 KB) and the first
/// [`MAX_EVIDENCE`] events of its window (about 1 KB), so 4,096 of them stay under 10 MB even
/// when 100,000 channels are all new.
pub const MAX_EPISODES: usize = 4_096;

/// What makes two alerts repeats (see the module documentation).
#[derive(Debug)]
struct Key {
    sig_id: u32,
    signature: Box<str>,
    src: IpAddr,
    dst: IpAddr,
    proto: AppProto,
}

impl Key {
    fn of(a: &Alert) -> Key {
        Key {
            sig_id: a.alert.signature_id,
            signature: a.alert.signature.as_str().into(),
            src: a.src_ip,
            dst: a.dest_ip,
            proto: a.app_proto,
        }
    }

    /// Whether `a` has this key (the cheap fields first).
    #[inline]
    fn matches(&self, a: &Alert) -> bool {
        self.sig_id == a.alert.signature_id
            && self.src == a.src_ip
            && self.dst == a.dest_ip
            && self.proto == a.app_proto
            && *self.signature == *a.alert.signature
    }
}

/// The order summaries closed at once come out in: an alert's key, as a tuple
/// (signature id, signature, source, destination, protocol) orders.
fn key_order(a: &Alert, b: &Alert) -> Ordering {
    (
        a.alert.signature_id,
        &a.alert.signature,
        a.src_ip,
        a.dest_ip,
        a.app_proto,
    )
        .cmp(&(
            b.alert.signature_id,
            &b.alert.signature,
            b.src_ip,
            b.dest_ip,
            b.app_proto,
        ))
}

#[derive(Debug)]
struct Episode {
    key: Key,
    /// The key's fingerprint.
    fp: u64,
    /// The next episode with the same fingerprint, or [`NONE`].
    next: u32,
    /// The episodes of its list updated just before and just after this one, or [`NONE`].
    older: u32,
    newer: u32,
    /// It has had a repeat (in this window or an earlier one): in the second list.
    busy: bool,
    /// When it was last updated (the aggregator's count of updates then).
    stamp: u64,
    window_end: Timestamp,
    repeats: u64,
    first: Timestamp,
    /// The last repeat of the window, without its evidence (its summary carries the
    /// episode's); boxed, so that an episode without repeats stays small.
    last: Option<Box<Alert>>,
    evidence: Vec<AlertEvidence>,
}

/// Aggregates repeats; see the module documentation for the policy.
#[derive(Debug)]
pub struct Aggregator {
    window_s: u64,
    /// The open episodes, in no particular order.
    episodes: Vec<Episode>,
    /// Fingerprint → the first episode of its chain.
    index: HashMap<u64, u32, KeyHashBuilder>,
    /// Seeded fingerprints (an attacker cannot choose keys that collide).
    fp_hasher: KeyHashBuilder,
    /// Fingerprints are masked with this (all ones; zero in tests, to make every key collide).
    fp_mask: u64,
    /// The episode of the last hit, or [`NONE`].
    memo: u32,
    /// The least and the most recently updated episodes of each list (episodes without a
    /// repeat yet, then the others), or [`NONE`].
    oldest: [u32; 2],
    newest: [u32; 2],
    /// Updates so far (the next episode's stamp).
    stamps: u64,
    /// The earliest window end of the open episodes: until then nothing can expire, so a push
    /// does not walk the episodes.
    next_end: Option<Timestamp>,
    /// Alerts suppressed as repeats so far.
    pub suppressed: u64,
    /// Most open episodes ([`MAX_EPISODES`]; smaller in tests).
    max_episodes: usize,
    /// Episodes closed before their window ended, to make room for a new key because
    /// `max_episodes` were open (their summaries came out early; no alert is lost).
    pub episodes_closed_early: u64,
}

impl Aggregator {
    /// An aggregator with a window of `window_s` capture seconds (0 disables aggregation).
    pub fn new(window_s: u64) -> Self {
        Aggregator {
            window_s,
            episodes: Vec::new(),
            index: HashMap::default(),
            fp_hasher: KeyHashBuilder::random(),
            fp_mask: u64::MAX,
            memo: NONE,
            oldest: [NONE; 2],
            newest: [NONE; 2],
            stamps: 0,
            next_end: None,
            suppressed: 0,
            max_episodes: MAX_EPISODES,
            episodes_closed_early: 0,
        }
    }

    /// The fingerprint of `a`'s key.
    fn fingerprint(&self, a: &Alert) -> u64 {
        let mut h = self.fp_hasher.build_hasher();
        let ip = |h: &mut crate::flow::hash::KeyHasher, ip: IpAddr| match ip {
            IpAddr::V4(v4) => h.write_u64(u64::from(v4.to_bits()) | (1 << 32)),
            IpAddr::V6(v6) => {
                let b = v6.to_bits();
                h.write_u64(b as u64);
                h.write_u64((b >> 64) as u64);
            }
        };
        h.write_u64(u64::from(a.alert.signature_id) | ((a.app_proto as u64) << 32));
        ip(&mut h, a.src_ip);
        ip(&mut h, a.dest_ip);
        h.write(a.alert.signature.as_bytes());
        h.finish() & self.fp_mask
    }

    /// The open episode of `a`'s key: its place, or the key's fingerprint when there is none.
    #[inline]
    fn find(&mut self, a: &Alert) -> Result<usize, u64> {
        let m = self.memo as usize;
        if self.episodes.get(m).is_some_and(|e| e.key.matches(a)) {
            return Ok(m);
        }
        let fp = self.fingerprint(a);
        let mut i = self.index.get(&fp).copied().unwrap_or(NONE);
        while let Some(e) = self.episodes.get(i as usize) {
            if e.fp == fp && e.key.matches(a) {
                self.memo = i;
                return Ok(i as usize);
            }
            i = e.next;
        }
        Err(fp)
    }

    /// Takes episode `i` out of its list.
    fn unlink(&mut self, i: u32) {
        let Some(e) = self.episodes.get(i as usize) else {
            return;
        };
        let (older, newer, l) = (e.older, e.newer, usize::from(e.busy));
        match self.episodes.get_mut(older as usize) {
            Some(o) => o.newer = newer,
            None => {
                if let Some(x) = self.oldest.get_mut(l) {
                    *x = newer;
                }
            }
        }
        match self.episodes.get_mut(newer as usize) {
            Some(n) => n.older = older,
            None => {
                if let Some(x) = self.newest.get_mut(l) {
                    *x = older;
                }
            }
        }
    }

    /// Puts episode `i` (in no list) at the newest end of its list, with a new stamp.
    fn link_newest(&mut self, i: u32) {
        let stamp = self.stamps;
        self.stamps += 1;
        self.link_newest_at(i, stamp);
    }

    /// Puts episode `i` (in no list) at the newest end of its list with the stamp `stamp`.
    fn link_newest_at(&mut self, i: u32, stamp: u64) {
        let Some(e) = self.episodes.get_mut(i as usize) else {
            return;
        };
        let l = usize::from(e.busy);
        let prev = self.newest.get(l).copied().unwrap_or(NONE);
        e.older = prev;
        e.newer = NONE;
        e.stamp = stamp;
        match self.episodes.get_mut(prev as usize) {
            Some(p) => p.newer = i,
            None => {
                if let Some(x) = self.oldest.get_mut(l) {
                    *x = i;
                }
            }
        }
        if let Some(x) = self.newest.get_mut(l) {
            *x = i;
        }
    }

    /// Marks episode `i` as the most recently updated, in the list of repeated ones.
    #[inline]
    fn touch(&mut self, i: u32) {
        if self.newest[1] == i {
            // Already the newest repeated one (a run of repeats of one key): a new stamp.
            if let Some(e) = self.episodes.get_mut(i as usize) {
                e.stamp = self.stamps;
                self.stamps += 1;
            }
            return;
        }
        self.unlink(i);
        if let Some(e) = self.episodes.get_mut(i as usize) {
            e.busy = true;
        }
        self.link_newest(i);
    }

    /// Adds an episode to the list, the index (at the head of its chain) and the update order
    /// (newest).
    fn insert(&mut self, mut ep: Episode) {
        let Ok(i) = u32::try_from(self.episodes.len()) else {
            // Four billion open episodes: not reachable in memory.
            return;
        };
        if i == NONE {
            return;
        }
        ep.next = self.index.insert(ep.fp, i).unwrap_or(NONE);
        self.episodes.push(ep);
        self.link_newest(i);
    }

    /// Closes the least recently updated episode without repeats, else the least recently
    /// updated one, as its window would close (its summary, if any, to `out`), and puts `ep`
    /// in its place.
    #[cold]
    fn replace_oldest(&mut self, mut ep: Episode, out: &mut Vec<Alert>) {
        let i = match self.oldest {
            [NONE, i] => i,
            [i, _] => i,
        };
        let Some(old) = self.episodes.get(i as usize) else {
            self.insert(ep);
            return;
        };
        // Out of its fingerprint chain.
        let (fp, next) = (old.fp, old.next);
        match self.index.get(&fp).copied() {
            Some(h) if h == i => {
                if next == NONE {
                    self.index.remove(&fp);
                } else {
                    self.index.insert(fp, next);
                }
            }
            Some(mut j) => {
                while let Some(e) = self.episodes.get_mut(j as usize) {
                    if e.next == i {
                        e.next = next;
                        break;
                    }
                    j = e.next;
                }
            }
            None => {}
        }
        self.unlink(i);
        if self.memo == i {
            self.memo = NONE;
        }
        self.episodes_closed_early += 1;
        ep.next = self.index.insert(ep.fp, i).unwrap_or(NONE);
        let Some(slot) = self.episodes.get_mut(i as usize) else {
            return;
        };
        let mut old = std::mem::replace(slot, ep);
        if let Some(s) = Self::summary(&mut old) {
            out.push(s);
        }
        self.link_newest(i);
    }

    /// Rebuilds the index and the update order from the list (after episodes were removed).
    fn reindex(&mut self) {
        self.index.clear();
        self.memo = NONE;
        for (i, ep) in self.episodes.iter_mut().enumerate() {
            let i = i as u32;
            ep.next = self.index.insert(ep.fp, i).unwrap_or(NONE);
        }
        let mut order: Vec<(u64, u32)> = self
            .episodes
            .iter()
            .enumerate()
            .map(|(i, e)| (e.stamp, i as u32))
            .collect();
        order.sort_unstable();
        self.oldest = [NONE; 2];
        self.newest = [NONE; 2];
        for (stamp, i) in order {
            self.link_newest_at(i, stamp);
        }
    }

    fn summary(ep: &mut Episode) -> Option<Alert> {
        let mut a = *ep.last.take()?;
        // Its words, left to write while it could still be replaced by a later repeat.
        a.resolve();
        let n = ep.repeats;
        a.otwatch.count = n;
        a.otwatch.first_seen = ep.first;
        a.otwatch.last_seen = a.timestamp;
        a.otwatch.aggregated = true;
        a.otwatch.evidence = std::mem::take(&mut ep.evidence);
        a.flow_id = None;
        a.otwatch.explanation = format!(
            "Repeated {n} more time{} from {} to {}. Last occurrence: {}",
            if n == 1 { "" } else { "s" },
            ep.first,
            a.timestamp,
            a.otwatch.explanation
        );
        Some(a)
    }

    /// Closes the windows that ended before `now`, emitting their summaries.
    pub fn flush_expired(&mut self, now: Timestamp, out: &mut Vec<Alert>) {
        match self.next_end {
            Some(end) if end <= now => {}
            _ => return,
        }
        self.close(now, out);
    }

    #[cold]
    fn close(&mut self, now: Timestamp, out: &mut Vec<Alert>) {
        let mut summaries = Vec::new();
        let mut removed = false;
        let window_s = self.window_s;
        self.episodes.retain_mut(|ep| {
            if ep.window_end > now {
                return true;
            }
            let end = ep.window_end;
            let had_repeats = ep.repeats > 0;
            if let Some(s) = Self::summary(ep) {
                summaries.push(s);
            }
            if had_repeats {
                // The condition went on: keep counting in a fresh window.
                ep.window_end = end.plus_secs(window_s);
                ep.repeats = 0;
                ep.first = end;
                ep.last = None;
                ep.evidence = Vec::new();
                true
            } else {
                removed = true;
                false
            }
        });
        if removed {
            self.reindex();
        }
        summaries.sort_by(key_order);
        out.append(&mut summaries);
        self.next_end = self.episodes.iter().map(|e| e.window_end).min();
    }

    /// Takes one raw alert: emits it if it starts an episode, counts it otherwise.
    pub fn push(&mut self, mut alert: Alert, out: &mut Vec<Alert>) {
        if self.window_s == 0 {
            alert.resolve();
            out.push(alert);
            return;
        }
        self.flush_expired(alert.timestamp, out);
        match self.find(&alert) {
            Ok(i) => {
                self.touch(i as u32);
                let Some(ep) = self.episodes.get_mut(i) else {
                    return;
                };
                self.suppressed += 1;
                if ep.repeats == 0 {
                    ep.first = alert.timestamp;
                }
                ep.repeats += alert.otwatch.count.max(1);
                if ep.evidence.len() < MAX_EVIDENCE {
                    // Its summaries, if they were left to write (the rest of its words is
                    // written only if it is the last repeat when the summary is made).
                    alert.resolve_evidence();
                    // The stored alert's own evidence is replaced by the episode's in its
                    // summary: move it there instead of copying.
                    if ep.evidence.capacity() == 0 {
                        ep.evidence.reserve_exact(MAX_EVIDENCE);
                    }
                    for e in alert.otwatch.evidence.drain(..) {
                        if ep.evidence.len() < MAX_EVIDENCE {
                            ep.evidence.push(e);
                        }
                    }
                }
                // What is left of it is not needed.
                alert.otwatch.evidence = Vec::new();
                match &mut ep.last {
                    Some(last) => **last = alert,
                    None => ep.last = Some(Box::new(alert)),
                }
            }
            Err(fp) => {
                let window_end = alert.timestamp.plus_secs(self.window_s);
                self.next_end = Some(self.next_end.map_or(window_end, |e| e.min(window_end)));
                let ep = Episode {
                    key: Key::of(&alert),
                    fp,
                    next: NONE,
                    older: NONE,
                    newer: NONE,
                    busy: false,
                    stamp: 0,
                    window_end,
                    repeats: 0,
                    first: alert.timestamp,
                    last: None,
                    evidence: Vec::new(),
                };
                if self.episodes.len() >= self.max_episodes {
                    self.replace_oldest(ep, out);
                } else {
                    self.insert(ep);
                }
                alert.resolve();
                out.push(alert);
            }
        }
    }

    /// Emits the summaries of every open window (end of input).
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        let mut eps = std::mem::take(&mut self.episodes);
        self.index.clear();
        self.memo = NONE;
        self.oldest = [NONE; 2];
        self.newest = [NONE; 2];
        self.next_end = None;
        let mut summaries: Vec<Alert> = eps.iter_mut().filter_map(Self::summary).collect();
        summaries.sort_by(key_order);
        out.append(&mut summaries);
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
    use crate::alert::signatures::{NEW_FUNCTION, WRITE_OUT_OF_RANGE};
    use crate::detect::testkit::*;
    use proptest::prelude::*;

    fn raw(sec: i64, write: bool, client: &str) -> Alert {
        let ev = write_hr(sec * 1000, client, PLC, 1, 4, 9999);
        let sig = if write {
            &WRITE_OUT_OF_RANGE
        } else {
            &NEW_FUNCTION
        };
        Alert::from_event(sig, &ev, "x".into(), "y".into())
    }

    #[test]
    fn first_then_summary_per_window() {
        let mut agg = Aggregator::new(300);
        let mut out = Vec::new();
        for s in 0..700 {
            agg.push(raw(s, true, MASTER), &mut out);
        }
        agg.finish(&mut out);
        let counts: Vec<(u64, bool)> = out
            .iter()
            .map(|a| (a.otwatch.count, a.otwatch.aggregated))
            .collect();
        assert_eq!(counts, [(1, false), (299, true), (300, true), (100, true)]);
        assert_eq!(out[1].otwatch.first_seen, ts_ms(1000));
        assert_eq!(out[1].otwatch.last_seen, ts_ms(299_000));
        assert_eq!(agg.suppressed, 699);
    }

    #[test]
    fn quiet_window_ends_the_episode() {
        let mut agg = Aggregator::new(60);
        let mut out = Vec::new();
        agg.push(raw(0, true, MASTER), &mut out);
        agg.push(raw(500, true, MASTER), &mut out);
        agg.finish(&mut out);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|a| !a.otwatch.aggregated));
    }

    #[test]
    fn summaries_close_at_the_earliest_window_end_of_any_episode() {
        // Two episodes whose windows end at 60 s and 90 s; the one ending first must close at
        // the first alert past 60 s, even though the other was opened later.
        let mut agg = Aggregator::new(60);
        let mut out = Vec::new();
        agg.push(raw(0, true, MASTER), &mut out);
        agg.push(raw(30, false, ROGUE), &mut out);
        agg.push(raw(10, true, MASTER), &mut out);
        agg.push(raw(40, false, ROGUE), &mut out);
        assert_eq!(out.len(), 2);
        agg.push(raw(61, false, "10.0.0.9"), &mut out);
        // The MASTER summary (window 0..60) is out before the third first alert.
        assert_eq!(out.len(), 4, "{out:?}");
        assert!(out[2].otwatch.aggregated);
        assert_eq!(out[2].src_ip.to_string(), MASTER);
        assert!(!out[3].otwatch.aggregated);
        agg.push(raw(91, false, "10.0.0.9"), &mut out);
        // ROGUE's window (30..90) closed too.
        assert!(out[4].otwatch.aggregated, "{out:?}");
        assert_eq!(out[4].src_ip.to_string(), ROGUE);
    }

    #[test]
    fn a_flood_of_distinct_keys_stays_within_the_episode_cap() {
        // 50 clients each repeat one finding in turn: with room for 8 episodes, the ninth key
        // closes the least recently updated episode early, which then has had no repeat (no
        // summary); every alert is still emitted, none twice.
        let mut agg = Aggregator::new(300);
        agg.max_episodes = 8;
        let mut out = Vec::new();
        for rep in 0..3 {
            for c in 0..50 {
                agg.push(raw(rep, true, &format!("10.1.0.{c}")), &mut out);
                assert!(agg.episodes.len() <= 8);
            }
        }
        assert_eq!(agg.episodes.len(), 8);
        assert_eq!(agg.episodes_closed_early, 150 - 8);
        assert_eq!(agg.suppressed, 0);
        assert_eq!(out.len(), 150);
        agg.finish(&mut out);
        assert_eq!(out.len(), 150);
        // Under the cap nothing is closed early.
        let mut agg = Aggregator::new(300);
        let mut out = Vec::new();
        for c in 0..50 {
            agg.push(raw(0, true, &format!("10.1.0.{c}")), &mut out);
        }
        assert_eq!((agg.episodes.len(), agg.episodes_closed_early), (50, 0));
    }

    #[test]
    fn a_flood_of_bursts_past_the_cap_emits_each_first_alert_and_an_early_summary() {
        // 50 clients, each with a burst of 10 repeats of one finding, one after the other:
        // with room for 8 episodes, each key gives its first alert and one summary of its 9
        // repeats (42 of them closed early, just before the first alert that needed the
        // room); the lines stay two per key, not one per alert.
        let mut agg = Aggregator::new(300);
        agg.max_episodes = 8;
        let mut out = Vec::new();
        for c in 0..50 {
            for rep in 0..10 {
                agg.push(raw(c * 10 + rep, true, &format!("10.1.0.{c}")), &mut out);
            }
        }
        assert_eq!(agg.episodes_closed_early, 42);
        agg.finish(&mut out);
        assert_eq!(out.len(), 100);
        assert_eq!(agg.suppressed, 50 * 9);
        let total: u64 = out.iter().map(|a| a.otwatch.count).sum();
        assert_eq!(total, 500);
        for c in 0..50 {
            let src = format!("10.1.0.{c}");
            let mine: Vec<&Alert> = out.iter().filter(|a| a.src_ip.to_string() == src).collect();
            assert_eq!(mine.len(), 2, "{src}");
            assert!(!mine[0].otwatch.aggregated);
            assert!(mine[1].otwatch.aggregated);
            assert_eq!(mine[1].otwatch.count, 9);
            assert_eq!(mine[1].otwatch.evidence.len(), MAX_EVIDENCE);
        }
        // The early summaries come out just before the first alert that closed them: the
        // summary of key c before the first alert of key c + 8.
        let pos = |src: &str, agg: bool| {
            out.iter()
                .position(|a| a.src_ip.to_string() == src && a.otwatch.aggregated == agg)
                .unwrap()
        };
        for c in 0..42 {
            let s = pos(&format!("10.1.0.{c}"), true);
            assert_eq!(s + 1, pos(&format!("10.1.0.{}", c + 8), false));
        }
    }

    #[test]
    fn the_least_recently_updated_episode_is_closed_first() {
        // Keys 0..4 open and repeat; key 0 repeats last, so key 1 is the oldest when key 4
        // comes.
        let mut agg = Aggregator::new(300);
        agg.max_episodes = 4;
        let mut out = Vec::new();
        for c in 0..4 {
            agg.push(raw(c, true, &format!("10.1.0.{c}")), &mut out);
            agg.push(raw(c, true, &format!("10.1.0.{c}")), &mut out);
        }
        agg.push(raw(5, true, "10.1.0.0"), &mut out);
        agg.push(raw(6, true, "10.1.0.4"), &mut out);
        assert_eq!(agg.episodes_closed_early, 1);
        let n = out.len();
        assert!(out[n - 2].otwatch.aggregated);
        assert_eq!(out[n - 2].src_ip.to_string(), "10.1.0.1");
        assert_eq!(out[n - 1].src_ip.to_string(), "10.1.0.4");
        // Key 1 is gone: its next alert is a first alert again. An episode without repeats
        // goes first: key 4's (no summary), not key 2's.
        agg.push(raw(7, true, "10.1.0.1"), &mut out);
        assert_eq!(agg.episodes_closed_early, 2);
        assert_eq!(out.len(), n + 1);
        assert!(!out[n].otwatch.aggregated);
        assert_eq!(out[n].src_ip.to_string(), "10.1.0.1");
        agg.push(raw(8, true, "10.1.0.2"), &mut out);
        assert_eq!(out.len(), n + 1, "key 2 is still open");
        // At the end: the summaries of keys 0, 2 and 3 (key 1's new episode had no repeat).
        agg.finish(&mut out);
        let summaries: Vec<String> = out[n + 1..].iter().map(|a| a.src_ip.to_string()).collect();
        assert_eq!(summaries, ["10.1.0.0", "10.1.0.2", "10.1.0.3"]);
    }

    #[test]
    fn repeating_keys_stay_open_through_a_cycle_of_one_off_keys() {
        // Four keys come twice every round; between rounds, ten keys seen once each pass
        // through a table of eight: they close one another, not the repeating keys (which the
        // least recently updated rule alone would close: they are older), and those aggregate
        // throughout (one first alert each, one summary each at the end).
        let mut agg = Aggregator::new(3600);
        agg.max_episodes = 8;
        let mut out = Vec::new();
        let mut once = 0;
        for round in 0..20 {
            for c in 0..4 {
                agg.push(raw(round, true, &format!("10.1.0.{c}")), &mut out);
                agg.push(raw(round, true, &format!("10.1.0.{c}")), &mut out);
            }
            for _ in 0..10 {
                agg.push(
                    raw(round, true, &format!("10.2.{}.{}", once / 200, once % 200)),
                    &mut out,
                );
                once += 1;
            }
        }
        agg.finish(&mut out);
        for c in 0..4 {
            let src = format!("10.1.0.{c}");
            let mine: Vec<(u64, bool)> = out
                .iter()
                .filter(|a| a.src_ip.to_string() == src)
                .map(|a| (a.otwatch.count, a.otwatch.aggregated))
                .collect();
            assert_eq!(mine, [(1, false), (39, true)], "{src}");
        }
        assert_eq!(out.len(), 4 * 2 + 200);
        assert_eq!(agg.episodes_closed_early, 196);
    }

    #[test]
    fn a_stored_repeat_keeps_no_evidence_of_its_own() {
        // The summary's evidence is the episode's: the last repeat's own is not kept.
        let mut agg = Aggregator::new(300);
        let mut out = Vec::new();
        for s in 0..10 {
            agg.push(raw(s, true, MASTER), &mut out);
        }
        let ep = &agg.episodes[0];
        assert!(ep.last.as_ref().unwrap().otwatch.evidence.is_empty());
        assert_eq!(ep.evidence.len(), MAX_EVIDENCE);
        assert_eq!(ep.evidence.capacity(), MAX_EVIDENCE);
    }

    /// The aggregator as it was first written (a `BTreeMap` by the owned key, cloned per
    /// alert): the reference the fast lookup is tested against.
    struct Slow {
        window_s: u64,
        episodes: std::collections::BTreeMap<SlowKey, SlowEpisode>,
        next_end: Option<Timestamp>,
        suppressed: u64,
        /// Most open episodes, the update count and the early closes.
        max: usize,
        stamps: u64,
        closed_early: u64,
    }

    type SlowKey = (u32, String, IpAddr, IpAddr, AppProto);

    struct SlowEpisode {
        stamp: u64,
        busy: bool,
        window_end: Timestamp,
        repeats: u64,
        first: Timestamp,
        last: Option<Alert>,
        evidence: Vec<crate::alert::AlertEvidence>,
    }

    impl Slow {
        fn new(window_s: u64) -> Self {
            Slow {
                window_s,
                episodes: Default::default(),
                next_end: None,
                suppressed: 0,
                max: usize::MAX,
                stamps: 0,
                closed_early: 0,
            }
        }

        fn summary(ep: SlowEpisode) -> Option<Alert> {
            let mut a = ep.last?;
            let n = ep.repeats;
            a.otwatch.count = n;
            a.otwatch.first_seen = ep.first;
            a.otwatch.last_seen = a.timestamp;
            a.otwatch.aggregated = true;
            a.otwatch.evidence = ep.evidence;
            a.flow_id = None;
            a.otwatch.explanation = format!(
                "Repeated {n} more time{} from {} to {}. Last occurrence: {}",
                if n == 1 { "" } else { "s" },
                ep.first,
                a.timestamp,
                a.otwatch.explanation
            );
            Some(a)
        }

        fn flush_expired(&mut self, now: Timestamp, out: &mut Vec<Alert>) {
            match self.next_end {
                Some(end) if end <= now => {}
                _ => return,
            }
            let expired: Vec<SlowKey> = self
                .episodes
                .iter()
                .filter(|(_, e)| e.window_end <= now)
                .map(|(k, _)| k.clone())
                .collect();
            for k in expired {
                let ep = self.episodes.remove(&k).unwrap();
                let end = ep.window_end;
                let stamp = ep.stamp;
                let had_repeats = ep.repeats > 0;
                if let Some(s) = Self::summary(ep) {
                    out.push(s);
                }
                if had_repeats {
                    self.episodes.insert(
                        k,
                        SlowEpisode {
                            stamp,
                            busy: true,
                            window_end: end.plus_secs(self.window_s),
                            repeats: 0,
                            first: end,
                            last: None,
                            evidence: Vec::new(),
                        },
                    );
                }
            }
            self.next_end = self.episodes.values().map(|e| e.window_end).min();
        }

        fn push(&mut self, alert: Alert, out: &mut Vec<Alert>) {
            if self.window_s == 0 {
                out.push(alert);
                return;
            }
            self.flush_expired(alert.timestamp, out);
            let key = (
                alert.alert.signature_id,
                alert.alert.signature.clone(),
                alert.src_ip,
                alert.dest_ip,
                alert.app_proto,
            );
            self.stamps += 1;
            let stamp = self.stamps;
            match self.episodes.get_mut(&key) {
                Some(ep) => {
                    ep.stamp = stamp;
                    ep.busy = true;
                    self.suppressed += 1;
                    if ep.repeats == 0 {
                        ep.first = alert.timestamp;
                    }
                    ep.repeats += alert.otwatch.count.max(1);
                    for e in &alert.otwatch.evidence {
                        if ep.evidence.len() < MAX_EVIDENCE {
                            ep.evidence.push(e.clone());
                        }
                    }
                    ep.last = Some(alert);
                }
                None => {
                    if self.episodes.len() >= self.max {
                        // Full: the least recently updated episode without repeats ends
                        // now, else the least recently updated one.
                        let oldest = self
                            .episodes
                            .iter()
                            .min_by_key(|(_, e)| (e.busy, e.stamp))
                            .map(|(k, _)| k.clone())
                            .unwrap();
                        let ep = self.episodes.remove(&oldest).unwrap();
                        if let Some(s) = Self::summary(ep) {
                            out.push(s);
                        }
                        self.closed_early += 1;
                    }
                    let window_end = alert.timestamp.plus_secs(self.window_s);
                    self.next_end = Some(self.next_end.map_or(window_end, |e| e.min(window_end)));
                    self.episodes.insert(
                        key,
                        SlowEpisode {
                            stamp,
                            busy: false,
                            window_end,
                            repeats: 0,
                            first: alert.timestamp,
                            last: None,
                            evidence: Vec::new(),
                        },
                    );
                    out.push(alert);
                }
            }
        }

        fn finish(&mut self, out: &mut Vec<Alert>) {
            let eps = std::mem::take(&mut self.episodes);
            self.next_end = None;
            for (_, ep) in eps {
                if let Some(s) = Self::summary(ep) {
                    out.push(s);
                }
            }
        }
    }

    /// A varied raw alert: signature (with or without a detail, which only the text tells
    /// apart), client (IPv4 or IPv6), protocol, count and evidence items.
    fn varied(sec: i64, sig: u8, client: u8, proto: bool, count: u64, extra: u8) -> Alert {
        let c = ["10.0.0.7", "10.0.0.66", "10.0.0.9", "fe80::1", "100.0.0.1"];
        let ev = write_hr(sec * 1000, c[client as usize % c.len()], PLC, 1, 4, 9999);
        let s = match sig % 3 {
            0 => &WRITE_OUT_OF_RANGE,
            _ => &NEW_FUNCTION,
        };
        let mut a = Alert::from_event(s, &ev, format!("x{sec}"), format!("y{sec}"));
        if sig % 3 == 2 {
            a = a.with_signature_detail("detail");
        }
        if proto {
            a.app_proto = AppProto::Opcua;
        }
        a.otwatch.count = count;
        for i in 0..extra {
            let e = a.otwatch.evidence[0].clone();
            a.otwatch.evidence.push(AlertEvidence {
                packet: e.packet + u64::from(i) + 1,
                ..e
            });
        }
        a
    }

    use crate::alert::AlertEvidence;
    use crate::detect::values::test_read_alert;

    proptest! {
        #[test]
        fn same_output_as_the_btree_reference(
            items in proptest::collection::vec(
                (0i64..3000, 0u8..3, 0u8..5, any::<bool>(), 0u64..3, 0u8..7), 0..300),
            window in 0u64..400,
            sorted in any::<bool>(),
            collide in any::<bool>(),
            cap in 0usize..8,
        ) {
            let mut items = items;
            if sorted {
                items.sort_by_key(|i| i.0);
            }
            let mut fast = Aggregator::new(window);
            if collide {
                // Every key has the same fingerprint: the chains and the full compare decide.
                fast.fp_mask = 0;
            }
            let mut slow = Slow::new(window);
            if cap > 0 {
                // Room for a few episodes only (the 30 keys overflow it): the oldest close
                // early.
                fast.max_episodes = cap;
                slow.max = cap;
            }
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for (i, (s, sig, c, p, n, x)) in items.iter().enumerate() {
                let al = varied(*s, *sig, *c, *p, *n, *x);
                if i % 17 == 16 {
                    // A tick past some windows, with no alert.
                    fast.flush_expired(al.timestamp, &mut a);
                    slow.flush_expired(al.timestamp, &mut b);
                }
                fast.push(al.clone(), &mut a);
                slow.push(al, &mut b);
                prop_assert_eq!(&a, &b);
            }
            fast.finish(&mut a);
            slow.finish(&mut b);
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(fast.suppressed, slow.suppressed);
            prop_assert_eq!(fast.episodes_closed_early, slow.closed_early);
        }

        #[test]
        fn deferred_read_words_give_the_eager_output(
            items in proptest::collection::vec(
                (0i64..3000, 0u8..4, 0u8..5, 0u32..3, 0u8..6), 0..300),
            window in 0u64..400,
            sorted in any::<bool>(),
            collide in any::<bool>(),
            cap in 0usize..8,
        ) {
            // Read-out-of-range alerts with their words deferred (as the engine's values
            // detector raises them), among other alerts, against the same alerts with their
            // words written at once: the same output, every repeat folded without its words,
            // through windows closing, the episode cap and the end of input.
            let mut items = items;
            if sorted {
                items.sort_by_key(|i| i.0);
            }
            let mut lazy = Aggregator::new(window);
            let mut eager = Aggregator::new(window);
            if collide {
                lazy.fp_mask = 0;
                eager.fp_mask = 0;
            }
            if cap > 0 {
                lazy.max_episodes = cap;
                eager.max_episodes = cap;
            }
            let c = ["10.0.0.7", "10.0.0.66", "10.0.0.9", "fe80::1", "100.0.0.1"];
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for (i, (s, kind, cl, addr, x)) in items.iter().enumerate() {
                let (d, e) = if *kind == 3 {
                    let al = varied(*s, *x, *cl, false, 1, 0);
                    (al.clone(), al)
                } else {
                    let ev = read_hr(*s * 1000, c[*cl as usize], PLC, 1, *addr, &[9, 8]);
                    let named = (*kind == 2).then_some("node/ns=2;s=Tank");
                    let x = f64::from(*x) * 1000.5 + 100.0;
                    let mk = |eager| {
                        test_read_alert(&ev, *addr, named, 0.0, 50.0, 7, x, eager).unwrap()
                    };
                    (mk(false), mk(true))
                };
                if i % 17 == 16 {
                    lazy.flush_expired(d.timestamp, &mut a);
                    eager.flush_expired(e.timestamp, &mut b);
                }
                lazy.push(d, &mut a);
                eager.push(e, &mut b);
                prop_assert_eq!(&a, &b);
            }
            lazy.finish(&mut a);
            eager.finish(&mut b);
            prop_assert_eq!(&a, &b);
            prop_assert!(a.iter().all(|x| x.deferred.is_none()));
            prop_assert_eq!(lazy.suppressed, eager.suppressed);
            prop_assert_eq!(lazy.episodes_closed_early, eager.episodes_closed_early);
        }

        #[test]
        fn window_zero_writes_deferred_words(n in 1usize..5) {
            let ev = read_hr(1000, MASTER, PLC, 1, 40, &[9]);
            let mut agg = Aggregator::new(0);
            let mut out = Vec::new();
            for _ in 0..n {
                let d = test_read_alert(&ev, 40, None, 0.0, 5.0, 3, 9.0, false).unwrap();
                agg.push(d, &mut out);
            }
            let e = test_read_alert(&ev, 40, None, 0.0, 5.0, 3, 9.0, true).unwrap();
            prop_assert_eq!(out, vec![e; n]);
        }

        #[test]
        fn counts_add_up_and_order_is_stable(
            items in proptest::collection::vec((0i64..2000, any::<bool>(), 0usize..3), 0..200),
            window in 0u64..400,
        ) {
            let clients = [MASTER, ROGUE, "10.0.0.9"];
            let mut items = items;
            items.sort_by_key(|i| i.0);
            let run = || {
                let mut agg = Aggregator::new(window);
                let mut out = Vec::new();
                for (s, w, c) in &items {
                    agg.push(raw(*s, *w, clients[*c]), &mut out);
                }
                agg.finish(&mut out);
                out
            };
            let out = run();
            let total: u64 = out.iter().map(|a| a.otwatch.count).sum();
            prop_assert_eq!(total, items.len() as u64);
            prop_assert_eq!(out, run());
        }
    }
}
