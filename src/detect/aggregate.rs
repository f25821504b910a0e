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
//! Lookup. In an alert flood every raw alert passes here, so a repeat is found without
//! building or cloning its key: first the episode of the last hit is compared field by field,
//! then a seeded 64-bit fingerprint of the key finds the episodes to compare in a hash index
//! (a chain per fingerprint, so that a collision only costs a compare). Episodes live in a
//! flat list; the index is rebuilt when windows close (once per window, not per alert).

use crate::alert::schema::MAX_EVIDENCE;
use crate::alert::Alert;
use crate::event::AppProto;
use crate::flow::hash::KeyHashBuilder;
use crate::time::Timestamp;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

/// No episode (end of a chain, no last hit).
const NONE: u32 = u32::MAX;

/// Most open episodes (keys with a window open). Beyond, an alert of a new key is emitted as
/// it comes, without an episode (counted in [`Aggregator::episodes_dropped`]). A plant has a
/// few hundred channels with a few findings each open at once; an episode holds up to one
/// alert (its last repeat, about 1-2 KB), so 16,384 of them stay under 32 MB even when
/// 100,000 channels are all new.
pub const MAX_EPISODES: usize = 16_384;

/// What makes two alerts repeats (see the module documentation).
#[derive(Debug)]
struct Key {
    sig_id: u32,
    signature: String,
    src: IpAddr,
    dst: IpAddr,
    proto: AppProto,
}

impl Key {
    fn of(a: &Alert) -> Key {
        Key {
            sig_id: a.alert.signature_id,
            signature: a.alert.signature.clone(),
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
            && self.signature == a.alert.signature
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
    window_end: Timestamp,
    repeats: u64,
    first: Timestamp,
    last: Option<Alert>,
    evidence: Vec<crate::alert::AlertEvidence>,
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
    /// The earliest window end of the open episodes: until then nothing can expire, so a push
    /// does not walk the episodes.
    next_end: Option<Timestamp>,
    /// Alerts suppressed as repeats so far.
    pub suppressed: u64,
    /// Most open episodes ([`MAX_EPISODES`]; smaller in tests).
    max_episodes: usize,
    /// Alerts of a new key emitted without an episode because `max_episodes` were open (their
    /// repeats are not aggregated).
    pub episodes_dropped: u64,
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
            next_end: None,
            suppressed: 0,
            max_episodes: MAX_EPISODES,
            episodes_dropped: 0,
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

    /// Adds an episode to the list and the index (at the head of its chain).
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
    }

    /// Rebuilds the index from the list (after episodes were removed).
    fn reindex(&mut self) {
        self.index.clear();
        self.memo = NONE;
        for (i, ep) in self.episodes.iter_mut().enumerate() {
            let i = i as u32;
            ep.next = self.index.insert(ep.fp, i).unwrap_or(NONE);
        }
    }

    fn summary(ep: &mut Episode) -> Option<Alert> {
        let mut a = ep.last.take()?;
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
            out.push(alert);
            return;
        }
        self.flush_expired(alert.timestamp, out);
        match self.find(&alert) {
            Ok(i) => {
                let Some(ep) = self.episodes.get_mut(i) else {
                    return;
                };
                self.suppressed += 1;
                if ep.repeats == 0 {
                    ep.first = alert.timestamp;
                }
                ep.repeats += alert.otwatch.count.max(1);
                if ep.evidence.len() < MAX_EVIDENCE {
                    // The stored alert's own evidence is replaced by the episode's in its
                    // summary: move it there instead of copying.
                    for e in alert.otwatch.evidence.drain(..) {
                        if ep.evidence.len() < MAX_EVIDENCE {
                            ep.evidence.push(e);
                        }
                    }
                }
                ep.last = Some(alert);
            }
            Err(_) if self.episodes.len() >= self.max_episodes => {
                // Full: the alert goes out as it is, and its repeats too until room is made.
                self.episodes_dropped += 1;
                out.push(alert);
            }
            Err(fp) => {
                let window_end = alert.timestamp.plus_secs(self.window_s);
                self.next_end = Some(self.next_end.map_or(window_end, |e| e.min(window_end)));
                self.insert(Episode {
                    key: Key::of(&alert),
                    fp,
                    next: NONE,
                    window_end,
                    repeats: 0,
                    first: alert.timestamp,
                    last: None,
                    evidence: Vec::new(),
                });
                out.push(alert);
            }
        }
    }

    /// Emits the summaries of every open window (end of input).
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        let mut eps = std::mem::take(&mut self.episodes);
        self.index.clear();
        self.memo = NONE;
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
        // 50 clients each repeat one finding: with room for 8 episodes, the first 8 keys are
        // aggregated, the other 42 open none (their alerts go out as they come, counted).
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
        assert_eq!(agg.episodes_dropped, 42 * 3);
        assert_eq!(agg.suppressed, 8 * 2);
        assert_eq!(out.len(), 8 + 42 * 3);
        agg.finish(&mut out);
        assert_eq!(out.iter().filter(|a| a.otwatch.aggregated).count(), 8);
        // Under the cap nothing is refused.
        let mut agg = Aggregator::new(300);
        let mut out = Vec::new();
        for c in 0..50 {
            agg.push(raw(0, true, &format!("10.1.0.{c}")), &mut out);
        }
        assert_eq!((agg.episodes.len(), agg.episodes_dropped), (50, 0));
    }

    /// The aggregator as it was first written (a `BTreeMap` by the owned key, cloned per
    /// alert): the reference the fast lookup is tested against.
    struct Slow {
        window_s: u64,
        episodes: std::collections::BTreeMap<SlowKey, SlowEpisode>,
        next_end: Option<Timestamp>,
        suppressed: u64,
    }

    type SlowKey = (u32, String, IpAddr, IpAddr, AppProto);

    struct SlowEpisode {
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
                let had_repeats = ep.repeats > 0;
                if let Some(s) = Self::summary(ep) {
                    out.push(s);
                }
                if had_repeats {
                    self.episodes.insert(
                        k,
                        SlowEpisode {
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
            match self.episodes.get_mut(&key) {
                Some(ep) => {
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
                    let window_end = alert.timestamp.plus_secs(self.window_s);
                    self.next_end = Some(self.next_end.map_or(window_end, |e| e.min(window_end)));
                    self.episodes.insert(
                        key,
                        SlowEpisode {
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

    proptest! {
        #[test]
        fn same_output_as_the_btree_reference(
            items in proptest::collection::vec(
                (0i64..3000, 0u8..3, 0u8..5, any::<bool>(), 0u64..3, 0u8..7), 0..300),
            window in 0u64..400,
            sorted in any::<bool>(),
            collide in any::<bool>(),
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
