//! The pipeline on several cores, with the output of one.
//!
//! One reader thread reads the captures and hashes each packet's flow key (both directions
//! alike) to pick one of N worker threads; each worker runs its own [`Pipeline`] up to ICS
//! events, and the calling thread merges the workers' events and hands them on (to `inspect`,
//! learning or detection) in the order a single pipeline would have produced them:
//!
//! - Every event is tagged with the global index of the packet at which it was emitted, and
//!   within it by the recency stamp (idle sweep) or id (end of input) of the flow whose end
//!   produced it. Flow ids and recency stamps derive from global packet indices
//!   ([`crate::flow::FlowTable::set_packet_index`]), so they do not depend on N.
//! - The reader decides the idle sweeps (from the latest capture time over all packets) and
//!   sends each one to every worker at the same packet index.
//! - Packets travel in rounds: every `ROUND` packets the reader sends each worker one batch
//!   (possibly empty); the calling thread takes one answer per worker per round and hands
//!   the events on by reference in tag order. Batches (owned packet bytes) come back to the
//!   reader, and answers (with their events) to their worker, which frees and recycles the
//!   events where they were allocated, one old for each new, so steady state allocates
//!   nothing per packet and the parsers' spare vectors stay stocked; bounded channels give
//!   back-pressure.
//! - Counters are summed; the flow and memory peaks are recomputed over the whole run from the
//!   per-packet changes each worker reports.
//!
//! The output is byte-identical for every N as long as no per-table limit is reached: the flow
//! cap and the memory budget are split evenly between workers, so which flows get evicted or
//! give up buffers under pressure can differ with N.

use crate::capture::{CaptureError, CaptureFile, Packet};
use crate::decode::{decode, LinkType, Transport};
use crate::event::IcsEvent;
use crate::flow::hash::KeyHashBuilder;
use crate::flow::FlowKey;
use crate::pipeline::{self, sweep_due, Pipeline, PipelineConfig, Tagged};
use crate::proto::recycle;
use crate::stats::{FileStats, RunStats};
use crate::time::Timestamp;
use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Arc;

/// Packets (over all workers) per round.
const ROUND: usize = 4096;
/// Rounds queued per worker before the reader waits.
const QUEUE: usize = 4;

/// One packet or idle sweep in a batch.
#[derive(Clone, Copy, Debug)]
enum Item {
    /// A packet whose bytes are `data[start..end]` of the batch.
    Packet {
        index: u64,
        file: u32,
        number: u64,
        ts: Timestamp,
        link: LinkType,
        orig_len: u32,
        start: usize,
        end: usize,
    },
    /// The idle sweep after packet `index` (file `file`, number `number`) at time `now`.
    Sweep {
        index: u64,
        now: Timestamp,
        file: u32,
        number: u64,
    },
}

/// A worker's share of one round: owned packet bytes and what to do with them.
#[derive(Debug, Default)]
struct Batch {
    data: Vec<u8>,
    items: Vec<Item>,
}

/// Reader to worker.
#[derive(Debug)]
enum ToWorker {
    Round(Batch),
    /// End of input: end every flow.
    Finish {
        now: Timestamp,
        file: u32,
        last_packet: u64,
    },
}

/// A change of a worker's flow count or buffer memory after a packet (phase 0), a sweep (1)
/// or at the end (2).
#[derive(Clone, Copy, Debug)]
struct Change {
    index: u64,
    phase: u8,
    flows: i64,
    mem: i64,
}

/// Worker to merger: one round's events (tagged `(at, sub)`, already mapped) and changes;
/// the counters with the last one. The merger hands the events on by reference and sends the
/// whole message back, so the events are freed (and their vectors recycled) on the worker that
/// built them.
#[derive(Debug)]
struct FromWorker<T> {
    events: Vec<(u64, u64, T)>,
    changes: Vec<Change>,
    stats: Option<Box<RunStats>>,
}

/// The worker of a packet: by a hash of its canonical flow key, so both directions of a flow
/// go to the same worker. Packets that belong to no flow go to worker 0.
fn shard_of(pkt: &Packet<'_>, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let d = decode(pkt.link, pkt.data, pkt.orig_len);
    let Some(ip) = d.ip else {
        return 0;
    };
    let (sp, dp, proto) = match d.transport {
        Transport::Tcp(t) => (t.src_port, t.dst_port, 6),
        Transport::Udp(u) => (u.src_port, u.dst_port, 17),
        Transport::Other(_) | Transport::None => return 0,
    };
    let key = FlowKey::new((ip.src, sp), (ip.dst, dp), proto, d.vlan.unwrap_or(0));
    worker_of(&key, n)
}

/// The worker of a flow key, of `n`.
fn worker_of(key: &FlowKey, n: usize) -> usize {
    // Fixed seeds: the same packet always goes to the same worker, in every run (chosen keys
    // could only unbalance the workers; each worker's own table has random seeds).
    let h = KeyHashBuilder::with_seeds(0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344).hash_one(key);
    (h % n as u64) as usize
}

/// Runs files through `threads` pipelines as one continuous capture, handing events to `emit`
/// in the order one pipeline would. With `threads` ≤ 1 this is [`pipeline::run`].
pub fn run(
    cfg: PipelineConfig,
    threads: usize,
    files: &mut [CaptureFile],
    emit: &mut impl FnMut(&IcsEvent),
    progress: &mut impl FnMut(usize, u64),
) -> Result<RunStats, CaptureError> {
    if threads <= 1 {
        return pipeline::run(cfg, files, emit, progress);
    }
    run_inner(
        cfg,
        threads,
        files,
        &|e| e,
        &|e: &mut IcsEvent| recycle::recycle_all(std::slice::from_mut(e)),
        &mut |e: &mut IcsEvent| emit(e),
        progress,
    )
}

/// As [`run`], but each event is first turned into a `T` by `map` on the worker threads (for
/// example serialised), and `emit` gets the results in order. Use it to move per-event work
/// that needs no global state off the single consuming thread.
pub fn run_map<T: Send>(
    cfg: PipelineConfig,
    threads: usize,
    files: &mut [CaptureFile],
    map: &(dyn Fn(&IcsEvent) -> T + Sync),
    emit: &mut impl FnMut(T),
    progress: &mut impl FnMut(usize, u64),
) -> Result<RunStats, CaptureError> {
    if threads <= 1 {
        return pipeline::run(cfg, files, &mut |e| emit(map(e)), progress);
    }
    run_inner(
        cfg,
        threads,
        files,
        &|mut e: IcsEvent| {
            let t = map(&e);
            recycle::recycle_all(std::slice::from_mut(&mut e));
            Some(t)
        },
        &|_: &mut Option<T>| {},
        &mut |t: &mut Option<T>| {
            if let Some(t) = t.take() {
                emit(t);
            }
        },
        progress,
    )
}

/// The sharded run: `map` turns each event into what travels to the calling thread, `emit`
/// gets those in order there, and `done` is called on the worker once the calling thread is
/// through with one (to recycle what the event holds where it was allocated).
fn run_inner<T: Send, M, D>(
    cfg: PipelineConfig,
    threads: usize,
    files: &mut [CaptureFile],
    map: &M,
    done: &D,
    emit: &mut impl FnMut(&mut T),
    progress: &mut impl FnMut(usize, u64),
) -> Result<RunStats, CaptureError>
where
    M: Fn(IcsEvent) -> T + Sync,
    D: Fn(&mut T) + Sync,
{
    let n = threads;
    let mut wcfg = cfg;
    wcfg.flow.max_flows = (wcfg.flow.max_flows / n).max(1);
    wcfg.flow.memory_budget_bytes /= n;
    let names: Vec<Arc<str>> = files
        .iter()
        .map(|f| Arc::from(f.path().to_string_lossy().as_ref()))
        .collect();
    let names = &names;
    let prog_file = AtomicUsize::new(0);
    let prog_pos = AtomicU64::new(0);
    let (ret_tx, ret_rx) = channel::<Batch>();
    std::thread::scope(|s| {
        let mut to_workers = Vec::with_capacity(n);
        let mut from_workers = Vec::with_capacity(n);
        let mut give_back = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = sync_channel::<ToWorker>(QUEUE);
            let (otx, orx) = sync_channel::<FromWorker<T>>(QUEUE);
            let (btx, brx) = channel::<FromWorker<T>>();
            to_workers.push(tx);
            from_workers.push(orx);
            give_back.push(btx);
            let ret = ret_tx.clone();
            let wcfg = wcfg.clone();
            s.spawn(move || worker(wcfg, names, map, done, rx, otx, brx, ret));
        }
        drop(ret_tx);
        let (pf, pp) = (&prog_file, &prog_pos);
        let reader = s.spawn(move || read_all(files, names, to_workers, ret_rx, pf, pp));
        let merged = merge(&from_workers, &give_back, emit, &mut || {
            progress(
                prog_file.load(Ordering::Relaxed),
                prog_pos.load(Ordering::Relaxed),
            )
        });
        drop(from_workers);
        drop(give_back);
        let files = match reader.join() {
            Ok(r) => r?,
            Err(p) => std::panic::resume_unwind(p),
        };
        let mut stats = merged.unwrap_or_default();
        stats.files = files;
        Ok(stats)
    })
}

/// The reader: reads every file, sends packets and sweeps to the workers round by round.
fn read_all(
    files: &mut [CaptureFile],
    names: &[Arc<str>],
    to: Vec<SyncSender<ToWorker>>,
    ret: Receiver<Batch>,
    prog_file: &AtomicUsize,
    prog_pos: &AtomicU64,
) -> Result<Vec<FileStats>, CaptureError> {
    let n = to.len();
    let mut batches: Vec<Batch> = (0..n).map(|_| Batch::default()).collect();
    let mut index: u64 = 0;
    let mut now = Timestamp::default();
    let mut last_sweep = None;
    let mut in_round = 0;
    let mut last_number = 0;
    let mut out = Vec::with_capacity(files.len());
    let mut last_file = 0u32;
    for (fi, cap) in files.iter_mut().enumerate() {
        let file = u32::try_from(fi).unwrap_or(u32::MAX);
        last_file = file;
        prog_file.store(fi, Ordering::Relaxed);
        while let Some(pkt) = cap.next_packet()? {
            index += 1;
            last_number = pkt.number;
            if pkt.ts > now {
                now = pkt.ts;
            }
            if let Some(b) = batches.get_mut(shard_of(&pkt, n)) {
                let start = b.data.len();
                b.data.extend_from_slice(pkt.data);
                b.items.push(Item::Packet {
                    index,
                    file,
                    number: pkt.number,
                    ts: pkt.ts,
                    link: pkt.link,
                    orig_len: pkt.orig_len,
                    start,
                    end: b.data.len(),
                });
            }
            if sweep_due(&mut last_sweep, now) {
                for b in &mut batches {
                    b.items.push(Item::Sweep {
                        index,
                        now,
                        file,
                        number: pkt.number,
                    });
                }
            }
            in_round += 1;
            if in_round == ROUND {
                in_round = 0;
                prog_pos.store(cap.position(), Ordering::Relaxed);
                if !send_round(&mut batches, &to, &ret) {
                    return Ok(out);
                }
            }
        }
        prog_pos.store(cap.position(), Ordering::Relaxed);
        let name = names.get(fi).map_or("", |s| s.as_ref());
        let fs = FileStats::from_capture(name, cap.stats());
        if fs.truncated || fs.corrupt {
            tracing::warn!(
                file = %name,
                offset = fs.stopped_at.unwrap_or(0),
                truncated = fs.truncated,
                "Capture ends in an incomplete or malformed record; processed up to there."
            );
        }
        out.push(fs);
    }
    if in_round > 0 && !send_round(&mut batches, &to, &ret) {
        return Ok(out);
    }
    for tx in &to {
        let _ = tx.send(ToWorker::Finish {
            now,
            file: last_file,
            last_packet: last_number,
        });
    }
    Ok(out)
}

/// Sends every worker its batch of the round (even an empty one), refilling from returned
/// batches. False when a worker is gone.
fn send_round(batches: &mut [Batch], to: &[SyncSender<ToWorker>], ret: &Receiver<Batch>) -> bool {
    for (b, tx) in batches.iter_mut().zip(to) {
        let fresh = ret.try_recv().unwrap_or_default();
        let full = std::mem::replace(b, fresh);
        if tx.send(ToWorker::Round(full)).is_err() {
            return false;
        }
    }
    true
}

/// Events the calling thread is through with, back on the worker that built them. They are
/// recycled as the worker builds new ones (one old event for each new one, so the parsers'
/// spare vectors stay stocked as on one thread), and their lists are reused for later rounds.
#[derive(Debug)]
struct Spent<T> {
    /// Returned event lists, oldest first; the first `cursor` events of the front one are done.
    queue: VecDeque<Vec<(u64, u64, T)>>,
    cursor: usize,
    /// Empty event lists and change lists, for the next rounds.
    lists: Vec<Vec<(u64, u64, T)>>,
    changes: Vec<Vec<Change>>,
}

/// Returned lists kept waiting to be recycled; older ones are done at once.
const SPENT_LISTS: usize = 2;

impl<T> Spent<T> {
    fn new() -> Self {
        Spent {
            queue: VecDeque::new(),
            cursor: 0,
            lists: Vec::new(),
            changes: Vec::new(),
        }
    }

    /// Takes back a round the calling thread is through with.
    fn give(&mut self, o: FromWorker<T>, done: &impl Fn(&mut T)) {
        let mut changes = o.changes;
        changes.clear();
        self.changes.push(changes);
        self.queue.push_back(o.events);
        while self.queue.len() > SPENT_LISTS {
            self.retire_front(done);
        }
    }

    /// Recycles up to `k` returned events, oldest first.
    fn recycle(&mut self, mut k: usize, done: &impl Fn(&mut T)) {
        while k > 0 {
            let Some(front) = self.queue.front_mut() else {
                return;
            };
            let end = self.cursor.saturating_add(k).min(front.len());
            if let Some(evs) = front.get_mut(self.cursor..end) {
                for e in evs {
                    done(&mut e.2);
                }
            }
            k -= end.saturating_sub(self.cursor).min(k);
            self.cursor = end;
            if self.cursor >= front.len() {
                self.retire_front(done);
            }
        }
    }

    /// Finishes the oldest returned list and keeps it, emptied, for reuse.
    fn retire_front(&mut self, done: &impl Fn(&mut T)) {
        if let Some(mut list) = self.queue.pop_front() {
            for e in list.iter_mut().skip(self.cursor) {
                done(&mut e.2);
            }
            list.clear();
            self.lists.push(list);
        }
        self.cursor = 0;
    }

    /// Empty lists for one round's events and changes.
    fn fresh(&mut self) -> (Vec<(u64, u64, T)>, Vec<Change>) {
        (
            self.lists.pop().unwrap_or_default(),
            self.changes.pop().unwrap_or_default(),
        )
    }
}

/// A worker: its own pipeline over the packets of its flows.
#[allow(clippy::too_many_arguments)]
fn worker<T>(
    cfg: PipelineConfig,
    names: &[Arc<str>],
    map: &impl Fn(IcsEvent) -> T,
    done: &impl Fn(&mut T),
    rx: Receiver<ToWorker>,
    tx: SyncSender<FromWorker<T>>,
    back: Receiver<FromWorker<T>>,
    ret: Sender<Batch>,
) {
    let mut p = Pipeline::new(cfg);
    let mut events: Vec<Tagged> = Vec::new();
    let mut spent = Spent::new();
    let empty: Arc<str> = Arc::from("");
    let name = |f: u32| names.get(f as usize).unwrap_or(&empty);
    let (mut flows, mut mem) = (0i64, 0i64);
    let mut record = |p: &Pipeline, index: u64, phase: u8, ch: &mut Vec<Change>| {
        let f = i64::try_from(p.flow_count()).unwrap_or(i64::MAX);
        let m = i64::try_from(p.flow_memory()).unwrap_or(i64::MAX);
        if f != flows || m != mem {
            ch.push(Change {
                index,
                phase,
                flows: f - flows,
                mem: m - mem,
            });
            (flows, mem) = (f, m);
        }
    };
    // Moves the events the pipeline just made to `out`, recycling as many returned ones.
    let take = |p: &mut Pipeline,
                events: &mut Vec<Tagged>,
                out: &mut Vec<(u64, u64, T)>,
                spent: &mut Spent<T>| {
        let k = events.len();
        if k > 0 {
            p.count_events(k);
            out.extend(events.drain(..).map(|t| (t.at, t.sub, map(t.ev))));
            spent.recycle(k, done);
        }
    };
    for msg in rx {
        for o in back.try_iter() {
            spent.give(o, done);
        }
        let (mut out, mut changes) = spent.fresh();
        match msg {
            ToWorker::Round(mut batch) => {
                for item in &batch.items {
                    match *item {
                        Item::Packet {
                            index,
                            file,
                            number,
                            ts,
                            link,
                            orig_len,
                            start,
                            end,
                        } => {
                            let pkt = Packet {
                                ts,
                                link,
                                data: batch.data.get(start..end).unwrap_or_default(),
                                orig_len,
                                number,
                            };
                            p.shard_packet(index, name(file), &pkt, &mut events);
                            record(&p, index, 0, &mut changes);
                        }
                        Item::Sweep {
                            index,
                            now,
                            file,
                            number,
                        } => {
                            p.shard_sweep(index, now, name(file), number, &mut events);
                            record(&p, index, 1, &mut changes);
                        }
                    }
                    take(&mut p, &mut events, &mut out, &mut spent);
                }
                batch.data.clear();
                batch.items.clear();
                let _ = ret.send(batch);
                let msg = FromWorker {
                    events: out,
                    changes,
                    stats: None,
                };
                if tx.send(msg).is_err() {
                    return;
                }
            }
            ToWorker::Finish {
                now,
                file,
                last_packet,
            } => {
                p.shard_finish(now, name(file), last_packet, &mut events);
                record(&p, u64::MAX, 2, &mut changes);
                take(&mut p, &mut events, &mut out, &mut spent);
                let msg = FromWorker {
                    events: out,
                    changes,
                    stats: Some(Box::new(p.into_stats())),
                };
                let _ = tx.send(msg);
                return;
            }
        }
    }
}

/// The merger: takes one answer per worker per round, hands the events on in tag order and
/// tracks the global flow and memory peaks; each answer then goes back to its worker. Returns
/// the summed counters, or `None` when the workers stopped early (the reader failed).
fn merge<T>(
    from: &[Receiver<FromWorker<T>>],
    give_back: &[Sender<FromWorker<T>>],
    emit: &mut impl FnMut(&mut T),
    progress: &mut impl FnMut(),
) -> Option<RunStats> {
    let mut round: Vec<FromWorker<T>> = Vec::with_capacity(from.len());
    let mut pos: Vec<usize> = vec![0; from.len()];
    let mut changes: Vec<Change> = Vec::new();
    let (mut flows, mut mem, mut flow_peak, mut mem_peak) = (0i64, 0i64, 0i64, 0i64);
    loop {
        round.clear();
        for rx in from {
            round.push(rx.recv().ok()?);
        }
        progress();
        // k-way merge by (at, sub); ties only happen within one worker, whose order is kept.
        pos.fill(0);
        loop {
            let mut best: Option<(u64, u64, usize)> = None;
            for (w, o) in round.iter().enumerate() {
                let Some(&(at, sub, _)) = pos.get(w).and_then(|&i| o.events.get(i)) else {
                    continue;
                };
                if best.is_none_or(|(a, s, _)| (at, sub) < (a, s)) {
                    best = Some((at, sub, w));
                }
            }
            let Some((_, _, w)) = best else {
                break;
            };
            if let (Some(o), Some(i)) = (round.get_mut(w), pos.get_mut(w)) {
                if let Some(e) = o.events.get_mut(*i) {
                    emit(&mut e.2);
                }
                *i += 1;
            }
        }
        changes.clear();
        for o in &round {
            changes.extend_from_slice(&o.changes);
        }
        changes.sort_by_key(|c| (c.index, c.phase));
        for c in &changes {
            flows += c.flows;
            mem += c.mem;
            if c.phase == 0 {
                flow_peak = flow_peak.max(flows);
                mem_peak = mem_peak.max(mem);
            }
        }
        if round.iter().any(|o| o.stats.is_some()) {
            let mut total = RunStats::default();
            for o in &round {
                if let Some(s) = &o.stats {
                    total.merge(s);
                }
            }
            total.flows.peak = u64::try_from(flow_peak).unwrap_or(0);
            total.flows.memory_peak = u64::try_from(mem_peak).unwrap_or(0);
            return Some(total);
        }
        for (o, b) in round.drain(..).zip(give_back) {
            let _ = b.send(o);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn round(tags: std::ops::Range<u64>) -> FromWorker<u64> {
        FromWorker {
            events: tags.map(|t| (t, 0, t)).collect(),
            changes: vec![Change {
                index: 1,
                phase: 0,
                flows: 1,
                mem: 0,
            }],
            stats: None,
        }
    }

    #[test]
    fn spent_events_are_done_once_each_in_order_and_lists_come_back_empty() {
        let seen = RefCell::new(Vec::new());
        let done = |t: &mut u64| seen.borrow_mut().push(*t);
        let mut s = Spent::new();
        // Nothing returned yet: recycling does nothing, fresh lists are new.
        s.recycle(5, &done);
        assert!(seen.borrow().is_empty());
        s.give(round(0..3), &done);
        s.give(round(3..4), &done);
        // One old event per new one, across lists.
        s.recycle(2, &done);
        assert_eq!(*seen.borrow(), vec![0, 1]);
        s.recycle(2, &done);
        assert_eq!(*seen.borrow(), vec![0, 1, 2, 3]);
        assert!(s.queue.is_empty());
        let (events, changes) = s.fresh();
        assert!(events.is_empty() && events.capacity() > 0);
        assert!(changes.is_empty());
        // More lists than kept waiting: the oldest are done at once.
        for k in 0..SPENT_LISTS as u64 + 2 {
            s.give(round(10 * k..10 * k + 2), &done);
        }
        assert_eq!(s.queue.len(), SPENT_LISTS);
        assert_eq!(seen.borrow()[4..], [0, 1, 10, 11]);
        s.recycle(usize::MAX, &done);
        assert_eq!(seen.borrow().len(), 4 + 2 * (SPENT_LISTS + 2));
    }
}
