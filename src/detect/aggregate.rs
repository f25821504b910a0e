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
//! tick past the window) and at [`Aggregator::finish`].

use crate::alert::schema::MAX_EVIDENCE;
use crate::alert::Alert;
use crate::event::AppProto;
use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::net::IpAddr;

type Key = (u32, String, IpAddr, IpAddr, AppProto);

#[derive(Debug)]
struct Episode {
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
    episodes: BTreeMap<Key, Episode>,
    /// The earliest window end of the open episodes: until then nothing can expire, so a push
    /// does not walk the episodes.
    next_end: Option<Timestamp>,
    /// Alerts suppressed as repeats so far.
    pub suppressed: u64,
}

impl Aggregator {
    /// An aggregator with a window of `window_s` capture seconds (0 disables aggregation).
    pub fn new(window_s: u64) -> Self {
        Aggregator {
            window_s,
            episodes: BTreeMap::new(),
            next_end: None,
            suppressed: 0,
        }
    }

    fn summary(ep: Episode) -> Option<Alert> {
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

    /// Closes the windows that ended before `now`, emitting their summaries.
    pub fn flush_expired(&mut self, now: Timestamp, out: &mut Vec<Alert>) {
        match self.next_end {
            Some(end) if end <= now => {}
            _ => return,
        }
        let expired: Vec<Key> = self
            .episodes
            .iter()
            .filter(|(_, e)| e.window_end <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            let Some(ep) = self.episodes.remove(&k) else {
                continue;
            };
            let end = ep.window_end;
            let had_repeats = ep.repeats > 0;
            if let Some(s) = Self::summary(ep) {
                out.push(s);
            }
            if had_repeats {
                // The condition went on: keep counting in a fresh window.
                self.episodes.insert(
                    k,
                    Episode {
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

    /// Takes one raw alert: emits it if it starts an episode, counts it otherwise.
    pub fn push(&mut self, alert: Alert, out: &mut Vec<Alert>) {
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
                    Episode {
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

    /// Emits the summaries of every open window (end of input).
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        let eps = std::mem::take(&mut self.episodes);
        self.next_end = None;
        for (_, ep) in eps {
            if let Some(s) = Self::summary(ep) {
                out.push(s);
            }
        }
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

    proptest! {
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
