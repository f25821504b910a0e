//! Detectors on threads of their own, with the output of one thread.
//!
//! [`Pool`] splits an engine's detectors into groups of about equal cost, one thread per group.
//! The calling thread moves events into a batch ([`super::Engine::on_event_owned`]; borrowed
//! events are cloned), decides the tick schedule (it is a function of event times only) and sends each
//! full batch to every group. A group runs its detectors over the batch exactly as
//! [`super::Engine::on_event`] would, and returns the raised alerts tagged (event in the batch,
//! tick or event, detector's place in the engine). The calling thread merges the groups' lists
//! by that tag, which is the order one thread raises them in, and feeds the aggregator as the
//! engine does: tick alerts, then the expiry of aggregation windows, then event alerts. So the
//! output is the same as without threads; it only comes out one batch later.
//!
//! One batch is in flight while the next is filled; an answered batch's events are dropped on
//! the calling thread. Detectors share nothing (each has its own
//! state; the baseline is read-only behind an `Arc`), which is what makes this exact.

use super::aggregate::Aggregator;
use super::Detector;
use crate::alert::Alert;
use crate::baseline::Baseline;
use crate::event::IcsEvent;
use crate::time::Timestamp;
use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Events per batch.
const BATCH: usize = 512;

/// Relative per-event cost of the standard detectors, for grouping (callgrind on generated
/// plant traffic, after the detectors' fast paths: values 59 M, timing 54 M with its ticks,
/// rules 17 M, novelty 16 M, scans 15 M per 100k packets); unknown detectors count as 1.
fn weight(name: &str) -> u32 {
    match name {
        "violations" => 0,
        "values" | "timing" => 4,
        "ml" => 2,
        _ => 1,
    }
}

/// A batch of events, with the tick due before each (the latest capture time then).
#[derive(Debug, Default)]
struct Batch {
    events: Vec<IcsEvent>,
    ticks: Vec<Option<Timestamp>>,
}

/// Phase of an alert within its event: the tick before it, or the event itself.
const TICK: u8 = 0;
const EVENT: u8 = 1;
/// Event index of the alerts of the final tick.
const FINAL: u32 = u32::MAX;

/// An alert tagged with its place in the one-thread order.
type Tagged = ((u32, u8, u16), Alert);

enum Job {
    Batch(Arc<Batch>),
    /// End of input: the last tick, if any event came.
    Finish(Option<Timestamp>),
}

struct Done {
    alerts: Vec<Tagged>,
    /// At the end: each detector's counters (engine position, detector, counter, value).
    counters: Vec<Counter>,
}

/// One detector counter: engine position, detector name, counter name, value.
pub(super) type Counter = (u16, &'static str, &'static str, u64);

struct Group {
    tx: SyncSender<Job>,
    rx: Receiver<Done>,
    handle: Option<JoinHandle<()>>,
}

/// The detectors of an engine on threads; see the module documentation.
pub(super) struct Pool {
    groups: Vec<Group>,
    filling: Batch,
    /// The batches sent and not yet answered, oldest first.
    in_flight: VecDeque<Arc<Batch>>,
    /// The detectors' counters, in engine order, once [`Pool::finish`] ran.
    counters: Vec<Counter>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.groups.len())
            .finish()
    }
}

fn run_group(
    mut dets: Vec<(u16, Box<dyn Detector>)>,
    baseline: Option<Arc<Baseline>>,
    rx: Receiver<Job>,
    tx: SyncSender<Done>,
) {
    let b = baseline.as_deref();
    let mut raw = Vec::new();
    for job in rx {
        let mut alerts: Vec<Tagged> = Vec::new();
        let mut take = |raw: &mut Vec<Alert>, tag: (u32, u8, u16)| {
            alerts.extend(raw.drain(..).map(|a| (tag, a)));
        };
        match job {
            Job::Batch(batch) => {
                for (i, ev) in batch.events.iter().enumerate() {
                    let i = i as u32;
                    if let Some(Some(now)) = batch.ticks.get(i as usize) {
                        for (k, d) in &mut dets {
                            d.on_tick(*now, b, &mut raw);
                            take(&mut raw, (i, TICK, *k));
                        }
                    }
                    for (k, d) in &mut dets {
                        d.on_event(ev, b, &mut raw);
                        take(&mut raw, (i, EVENT, *k));
                    }
                }
                drop(batch);
                let counters = Vec::new();
                if tx.send(Done { alerts, counters }).is_err() {
                    return;
                }
            }
            Job::Finish(now) => {
                if let Some(now) = now {
                    for (k, d) in &mut dets {
                        d.on_tick(now, b, &mut raw);
                        take(&mut raw, (FINAL, TICK, *k));
                    }
                }
                let counters = dets
                    .iter()
                    .flat_map(|(k, d)| {
                        let (k, name) = (*k, d.name());
                        d.counters().into_iter().map(move |(c, n)| (k, name, c, n))
                    })
                    .collect();
                let _ = tx.send(Done { alerts, counters });
                return;
            }
        }
    }
}

impl Pool {
    /// Starts `threads` groups (at most one per detector) for `detectors`, in engine order.
    pub(super) fn new(
        detectors: Vec<Box<dyn Detector>>,
        threads: usize,
        baseline: Option<Arc<Baseline>>,
    ) -> Self {
        let n = threads.clamp(1, detectors.len().max(1));
        // Greedy by weight, heaviest first, onto the lightest group; ties by engine order.
        let mut order: Vec<(u32, usize)> = detectors
            .iter()
            .enumerate()
            .map(|(i, d)| (weight(d.name()), i))
            .collect();
        order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut load = vec![0u32; n];
        let mut group_of = vec![0usize; detectors.len()];
        for (w, i) in order {
            let g = load
                .iter()
                .enumerate()
                .min_by_key(|&(g, l)| (*l, g))
                .map_or(0, |(g, _)| g);
            if let Some(l) = load.get_mut(g) {
                *l += w.max(1);
            }
            if let Some(slot) = group_of.get_mut(i) {
                *slot = g;
            }
        }
        let mut members: Vec<Vec<(u16, Box<dyn Detector>)>> = (0..n).map(|_| Vec::new()).collect();
        for (i, d) in detectors.into_iter().enumerate() {
            let g = group_of.get(i).copied().unwrap_or(0);
            if let Some(m) = members.get_mut(g) {
                m.push((i as u16, d));
            }
        }
        let groups = members
            .into_iter()
            .filter(|m| !m.is_empty())
            .map(|dets| {
                let (tx, job_rx) = sync_channel::<Job>(2);
                let (done_tx, rx) = sync_channel::<Done>(2);
                let b = baseline.clone();
                let handle = std::thread::Builder::new()
                    .name("otwatch-detect".into())
                    .spawn(move || run_group(dets, b, job_rx, done_tx))
                    .ok();
                Group { tx, rx, handle }
            })
            .collect();
        Pool {
            groups,
            filling: Batch::default(),
            in_flight: VecDeque::new(),
            counters: Vec::new(),
        }
    }

    /// Threads running detectors.
    pub(super) fn threads(&self) -> usize {
        self.groups.len()
    }

    /// The detectors' counters (after [`Pool::finish`]; empty before).
    pub(super) fn counters(&self) -> &[Counter] {
        &self.counters
    }

    /// Queues one event (with the tick due before it, if any); when a batch is full, sends
    /// it and merges the answer of the one before into `agg`.
    pub(super) fn push(
        &mut self,
        ev: IcsEvent,
        tick: Option<Timestamp>,
        agg: &mut Aggregator,
        raised: &mut u64,
        out: &mut Vec<Alert>,
    ) {
        self.filling.events.push(ev);
        self.filling.ticks.push(tick);
        if self.filling.events.len() >= BATCH {
            self.send();
            if self.in_flight.len() > 1 {
                self.collect(agg, raised, out);
            }
        }
    }

    /// Sends the batch being filled to every group.
    fn send(&mut self) {
        let full = std::mem::replace(
            &mut self.filling,
            Batch {
                events: Vec::with_capacity(BATCH),
                ticks: Vec::with_capacity(BATCH),
            },
        );
        let full = Arc::new(full);
        for g in &self.groups {
            if g.tx.send(Job::Batch(Arc::clone(&full))).is_err() {
                self.fail();
            }
        }
        self.in_flight.push_back(full);
    }

    /// A group's thread is gone: it panicked. Re-raises that panic here.
    fn fail(&mut self) -> ! {
        for g in &mut self.groups {
            if let Some(h) = g.handle.take() {
                if let Err(payload) = h.join() {
                    std::panic::resume_unwind(payload);
                }
            }
        }
        std::panic::resume_unwind(Box::new("a detector thread stopped"))
    }

    /// Waits for every group's answer on the oldest batch in flight and merges the alerts.
    fn collect(&mut self, agg: &mut Aggregator, raised: &mut u64, out: &mut Vec<Alert>) {
        let Some(batch) = self.in_flight.pop_front() else {
            return;
        };
        let mut lists = Vec::with_capacity(self.groups.len());
        for i in 0..self.groups.len() {
            match self.groups.get(i).map(|g| g.rx.recv()) {
                Some(Ok(d)) => lists.push(d.alerts),
                _ => self.fail(),
            }
        }
        merge(lists, &batch.ticks, agg, raised, out);
    }

    /// End of input: sends what is left, merges every answer, then the final tick.
    pub(super) fn finish(
        &mut self,
        now: Option<Timestamp>,
        agg: &mut Aggregator,
        raised: &mut u64,
        out: &mut Vec<Alert>,
    ) {
        if !self.filling.events.is_empty() {
            self.send();
        }
        while !self.in_flight.is_empty() {
            self.collect(agg, raised, out);
        }
        for g in &self.groups {
            if g.tx.send(Job::Finish(now)).is_err() {
                self.fail();
            }
        }
        let mut lists = Vec::with_capacity(self.groups.len());
        for i in 0..self.groups.len() {
            match self.groups.get(i).map(|g| g.rx.recv()) {
                Some(Ok(d)) => {
                    lists.push(d.alerts);
                    self.counters.extend(d.counters);
                }
                _ => self.fail(),
            }
        }
        self.counters.sort_by_key(|c| c.0);
        merge(lists, &[], agg, raised, out);
        for g in &mut self.groups {
            if let Some(h) = g.handle.take() {
                if let Err(payload) = h.join() {
                    std::panic::resume_unwind(payload);
                }
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the job channels ends the threads; an engine dropped before `finish` (an
        // error upstream) does not wait for them.
        for g in &mut self.groups {
            let (tx, _) = sync_channel(0);
            drop(std::mem::replace(&mut g.tx, tx));
        }
    }
}

/// Merges the groups' tagged lists (each sorted by tag) into the one-thread order and feeds
/// the aggregator: per event, the tick's alerts, then the expiry of aggregation windows at the
/// tick, then the event's alerts.
fn merge(
    lists: Vec<Vec<Tagged>>,
    ticks: &[Option<Timestamp>],
    agg: &mut Aggregator,
    raised: &mut u64,
    out: &mut Vec<Alert>,
) {
    let mut iters: Vec<std::iter::Peekable<std::vec::IntoIter<Tagged>>> = lists
        .into_iter()
        .map(|l| l.into_iter().peekable())
        .collect();
    let next = |iters: &mut Vec<std::iter::Peekable<std::vec::IntoIter<Tagged>>>| {
        let best = iters
            .iter_mut()
            .enumerate()
            .filter_map(|(g, it)| it.peek().map(|(tag, _)| (*tag, g)))
            .min()?;
        iters.get_mut(best.1).and_then(|it| it.next())
    };
    let mut pending = next(&mut iters);
    // Events with a tick: the expiry runs after that tick's alerts even when it raised none.
    for (i, tick) in ticks.iter().enumerate() {
        let i = i as u32;
        let Some(now) = tick else { continue };
        while let Some(((e, phase, _), _)) = &pending {
            if (*e, *phase) > (i, TICK) {
                break;
            }
            if let Some((_, a)) = pending.take() {
                *raised += 1;
                agg.push(a, out);
            }
            pending = next(&mut iters);
        }
        agg.flush_expired(*now, out);
    }
    while let Some((_, a)) = pending.take() {
        *raised += 1;
        agg.push(a, out);
        pending = next(&mut iters);
    }
}
