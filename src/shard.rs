//! The pipeline on several cores, with the output of one.
//!
//! `--threads N` runs N - 1 packet workers (at least one) and the calling thread, which merges
//! their events and consumes them (`inspect`, learning, detection). On two cores that is one
//! worker, which reads the captures and runs every packet through one [`Pipeline`] as a single
//! thread would (no flow hash, no packet copy, no split of the flow cap or the memory budget),
//! and the calling thread, which runs detection on its events: two busy threads, one per core.
//! With more workers, worker 0 reads the captures and hashes each packet's flow key (both
//! directions alike) to pick its worker: its own packets it runs at once, the others' it copies
//! into batches for workers 1.., each with a pipeline of its own. The parsers build events in
//! the pipeline's list, which becomes the round's answer by a swap, and nothing is synchronised
//! per packet:
//!
//! - A fast read (a repeated Modbus read answered `Ok`, most events of a polling plant) is
//!   posted whole instead: its request, answer and read data, ~130 bytes appended in order
//!   (`EventBuf::post_read`). The calling thread writes its event into one event of its own
//!   ([`EventBuf::get_with`]). An event slot written on one core and read on the other crossed
//!   twice a round (read by the calling thread, then written over by the worker), and the worker
//!   spent longer waiting for those lines than parsing: on the 3M-packet side by side (Intel
//!   Xeon VM, 114-142 ns round trip) `detect --threads 2` went from 0.55-0.58 s to 0.33 s, where
//!   one thread takes 0.44 s.
//! - Any other event (OPC UA services and Publish notifications, Modbus writes, exceptions) is
//!   posted packed into flat lists (`proto::packed`) and recycled on the worker at once; the
//!   calling thread unpacks it into its own event. A Publish event crossing in its slot (a
//!   list of accesses, each with a name and a value list, recycled on the worker after the
//!   calling thread read it) cost the worker 2.5 to 5 times its one-thread time: packing took
//!   `detect --threads 2` from 0.32 to 0.26 s on the same capture.
//! - Worker 0 takes runs of buffered records as [`Pipeline::run_file`] does.
//! - With a map ([`run_map`]: `inspect`'s JSON, `stats`), a worker maps each event where it is
//!   made and forgets it at once, as one pipeline forgets its events after each packet: only
//!   the mapped values cross. Kept to the end of the round, the events of several rounds in
//!   flight spread over hundreds of slots that the parsers then missed in the caches:
//!   `stats --threads 2` took 0.22 s where one thread takes 0.17 s (now 0.20 s), `inspect
//!   --threads 2` 2.03 s (now 1.79 s, one thread 2.37 s).
//!
//! - With several workers every event is tagged with the global index of the packet at which
//!   it was emitted, and within it by the recency stamp (idle sweep) or id (end of input) of
//!   the flow whose end produced it. Flow ids and recency stamps derive from global packet
//!   indices ([`crate::flow::FlowTable::set_packet_index`]), so they do not depend on N. A
//!   single worker's events are already in order.
//! - Worker 0 decides the idle sweeps (from the latest capture time over all packets), runs
//!   each one itself and sends it to every other worker at the same packet index.
//! - Packets travel in rounds: every `ROUND` packets (`ROUND_ONE` with a single worker)
//!   worker 0 sends each other worker one batch (possibly empty) and every worker answers
//!   with the round's events; the calling
//!   thread takes one answer per worker per round and hands the events on by reference in tag
//!   order. Batches (owned packet bytes) come back to worker 0, and answers (with their events)
//!   to their worker, which frees and recycles the events where they were allocated, one old
//!   for each new, keeping every answer that comes back until its events are reused, so steady
//!   state allocates nothing per packet and the parsers' spare vectors stay stocked; bounded
//!   channels give back-pressure. When every thread has a core, a thread that finds a
//!   channel empty (or full) tries a bounded while before it blocks (`Wait`).
//! - The calling thread may prepare its consumer (`detect` loads the baseline and the rules)
//!   while the workers start: until it is ready the workers keep their answers, up to
//!   `HOLD_PACKETS` packets' worth, instead of waiting on the queue.
//! - Counters are summed; with several workers the flow and memory peaks are recomputed over
//!   the whole run from the per-packet changes each worker reports.
//!
//! The output is byte-identical for every N. With more than one worker that holds as long as
//! no per-table limit is reached: the flow cap and the memory budget are split evenly between
//! the workers, so which flows get evicted or give up buffers under pressure can differ with N.
//!
//! Why N - 1 workers: consuming the events (detection) is a thread's worth of work of its own.
//! On the 300k-packet plant capture `detect --threads 2` counts 413 M instructions on the
//! worker and 302 M on the calling thread (baseline load 47 M included) against 669 M on one
//! thread; the former layout (N workers, the reader one of them, plus the merger: three busy
//! threads on two cores) was slower than one thread. Giving the calling thread a share of the
//! flows as well (tried with 3 of 17 and 2 of 16 hash slots) balanced no better on a capture
//! of about a hundred flows (398 M / 359 M and 357 M / 400 M), for the flow hash, the packet
//! copies and the tag merge (+42 M), and would split the caps.
//!
//! Splitting all the work by device instead (each thread the flows of its own devices and a
//! detection engine of its own, only alerts to merge) was measured outside otwatch
//! (`examples/by_device.rs`, `benches/sidebyside.sh`). The 3M-packet capture's two halves by
//! device, run as two processes at once, take 0.142-0.150 s where one thread takes 0.275-0.304 s
//! (1.94-2.03x; each half alone 0.129-0.146 s). Two threads of one process that each walk the whole
//! capture for their own devices reach 1.45x: the walk over the other half's records and the
//! pipeline's per-packet entry point cost each thread about 0.05 s. With the reader copying the
//! other half's packets to the second thread instead it is 1.2x (0.23-0.24 s): the reader is the
//! bound. A mode that did it would also have to share what spans devices to keep the output
//! identical: the engines' idle ticks (they follow event time, so each half ticks at other moments:
//! 419 of the 1,853 alerts, all the timing detector's, came out with other times), a client's scans
//! over several PLCs, assets first seen, rule counts by source and alert aggregation.

use crate::capture::{CaptureError, CaptureFile, Packet};
use crate::decode::{decode, LinkType, Transport};
use crate::event::IcsEvent;
use crate::pipeline::{self, sweep_due, Pipeline, PipelineConfig, Tag};
use crate::proto::slots::{EventBuf, Scratch};
use crate::stats::{FileStats, RunStats};
use crate::time::Timestamp;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{
    channel, sync_channel, Receiver, RecvError, Sender, SyncSender, TryRecvError, TrySendError,
};
use std::sync::Arc;

/// Packets (over all workers) per round with several workers. 1024 keeps a round's packets and
/// events in the caches (measured with three threads: 0.55-0.56 s on the 3M-packet plant capture
/// against 0.58-0.60 s with 4096 and 0.64-0.67 s with 256).
const ROUND: usize = 1024;
/// Packets per round with one worker, which sends only events. While events crossed in the
/// worker's slots, small rounds kept them in the caches between the worker that built them, the
/// calling thread that read them and the worker that rewrote them (3M-packet side by side: 0.47 s
/// with rounds of 1024, 0.39 s with 256). Posted, they cross once and larger rounds even out the
/// work of the two threads: 0.230-0.236 s with 256, 0.216-0.228 s with 1024, 0.218-0.223 s with
/// 2048, 0.246-0.249 s with 4096 (two rounds queued).
const ROUND_ONE: usize = 1024;
/// Rounds queued per worker before it waits.
const QUEUE: usize = 4;
/// Packets a worker keeps in one answer while the calling thread is not ready to merge (about
/// the time `detect` takes to load a large baseline): 32 rounds of 1024.
const HOLD_PACKETS: usize = 32 * ROUND;
/// Tries a thread makes, each a `spin_loop` hint (~60 ns here, ~0.25 ms in all, which covers
/// the wait for a round), when it finds a channel empty (or full) before it blocks, if every
/// thread has a core of its own. Blocking at once made each side wait for the other to be woken
/// (a futex wake-up, slow in a virtual machine) ~800 times a run: `detect --threads 2` on the
/// 3M-packet side by side was no faster than one thread (medians 0.59 s against 0.60 s); with
/// these tries it takes 0.42-0.49 s against 0.51-0.55 s. Yielding the core between tries was as
/// fast on an idle machine but gave the core to any other busy process (two busy loops at nice
/// 19: 0.93 s against 0.43 s spinning and 0.69 s blocking at once); spinning for milliseconds
/// stalled a thread whose peer had lost its core. With more threads than cores a thread blocks
/// at once.
const SPINS: u32 = 4096;

/// How a thread waits on a channel: a bounded spin, then blocking.
#[derive(Clone, Copy, Debug)]
struct Wait {
    tries: u32,
}

impl Wait {
    /// Tries before blocking when `threads` busy threads have a core each, else none.
    fn for_threads(threads: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Wait {
            tries: if threads <= cores { SPINS } else { 0 },
        }
    }

    /// The next message (`Err` when the sender is gone).
    fn recv<M>(self, rx: &Receiver<M>) -> Result<M, RecvError> {
        for _ in 0..self.tries {
            match rx.try_recv() {
                Ok(m) => return Ok(m),
                Err(TryRecvError::Disconnected) => return Err(RecvError),
                Err(TryRecvError::Empty) => std::hint::spin_loop(),
            }
        }
        rx.recv()
    }

    /// Sends `m` (false when the receiver is gone).
    fn send<M>(self, tx: &SyncSender<M>, mut m: M) -> bool {
        for _ in 0..self.tries {
            match tx.try_send(m) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) => {
                    m = back;
                    std::hint::spin_loop();
                }
            }
        }
        tx.send(m).is_ok()
    }
}

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
    /// Keep the round's events with the next round's (the calling thread is not ready).
    hold: bool,
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

/// Worker to merger: one round's events (in the order this worker made them) with their tags
/// (with several workers), what the map made of each (empty without one), the flow and memory
/// changes (with several workers), and the counters with the last answer. The merger hands
/// the events on by reference and sends the whole answer back, so the events are freed (and
/// their vectors recycled) on the worker that built them.
#[derive(Debug)]
struct FromWorker<T> {
    events: EventBuf,
    tags: Vec<Tag>,
    mapped: Vec<Option<T>>,
    changes: Vec<Change>,
    stats: Option<Box<RunStats>>,
}

impl<T> FromWorker<T> {
    /// Number of events of the answer: its events, or what the map made of them (mapped
    /// events are not kept, see [`Shard::took`]).
    fn len(&self) -> usize {
        self.events.len().max(self.mapped.len())
    }
}

impl<T> Default for FromWorker<T> {
    fn default() -> Self {
        FromWorker {
            events: EventBuf::new(),
            tags: Vec::new(),
            mapped: Vec::new(),
            changes: Vec::new(),
            stats: None,
        }
    }
}
/// The worker of a packet: by a symmetric hash of its flow's addresses and ports, so both
/// directions of a flow go to the same worker. Packets that belong to no flow go to worker 0.
fn shard_of(pkt: &Packet<'_>, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    if let Some((a, b)) = common_tcp_ends(pkt) {
        return worker_of(a, b, 6, 0, n);
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
    worker_of((ip.src, sp), (ip.dst, dp), proto, d.vlan.unwrap_or(0), n)
}

/// The two ends of the common frame (untagged Ethernet, IPv4 without options, not a fragment,
/// TCP), read from their fixed offsets without decoding the rest; `None` for anything else.
/// Wherever [`decode`] finds TCP in such a frame, these are its addresses and ports (the same
/// bytes); where it finds none, the packet makes no flow and any worker will do.
fn common_tcp_ends(pkt: &Packet<'_>) -> Option<((IpAddr, u16), (IpAddr, u16))> {
    if pkt.link != LinkType::Ethernet {
        return None;
    }
    let h: &[u8; 38] = pkt.data.first_chunk()?;
    let be16 = |i: usize| -> Option<u16> { Some(u16::from_be_bytes(*h.get(i..)?.first_chunk()?)) };
    let ip = |i: usize| -> Option<IpAddr> {
        let a: [u8; 4] = *h.get(i..)?.first_chunk()?;
        Some(IpAddr::V4(Ipv4Addr::from(a)))
    };
    if be16(12)? != 0x0800 || h[14] != 0x45 || h[23] != 6 || be16(20)? & 0x3fff != 0 {
        return None;
    }
    Some(((ip(26)?, be16(34)?), (ip(30)?, be16(36)?)))
}

/// The worker of a flow, of `n` (≥ 2): a fixed function (the same packet goes to the same worker in
/// every run; chosen keys could only unbalance the workers, whose own tables have random
/// seeds), symmetric in the two ends.
fn worker_of(a: (IpAddr, u16), b: (IpAddr, u16), proto: u8, vlan: u16, n: usize) -> usize {
    let fold = |ip: IpAddr| -> u64 {
        match ip {
            IpAddr::V4(v) => u64::from(u32::from(v)),
            IpAddr::V6(v) => {
                let x = u128::from(v);
                (x as u64) ^ ((x >> 64) as u64).rotate_left(17)
            }
        }
    };
    let ends = fold(a.0).wrapping_add(fold(b.0));
    let rest = (u64::from(a.1) + u64::from(b.1)) | u64::from(proto) << 17 | u64::from(vlan) << 25;
    let mut h = ends.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ rest.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    h ^= h >> 32;
    h = h.wrapping_mul(0x1656_67b1_9e37_79f9);
    h ^= h >> 29;
    // Worker 0 also reads and dispatches every packet: it gets 7 of 8n - 1 slots, the others
    // 8 each (with two workers, 47 % of the flows against 53 %).
    let slots = (8 * n as u64).saturating_sub(1).max(1);
    match (h % slots).checked_sub(7) {
        None => 0,
        Some(s) => 1 + (s / 8) as usize,
    }
}

/// What the workers make of each event for the calling thread (nothing: the event itself).
type Map<'a, T> = Option<&'a (dyn Fn(&IcsEvent) -> T + Sync)>;

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
    let mut scratch = Scratch::new();
    let run = run_inner::<(), (), Infallible>(
        cfg,
        threads,
        files,
        None,
        || Ok(()),
        &mut |(), o, i| {
            if let Some(e) = o.events.get_with(i, &mut scratch) {
                emit(e);
            }
        },
        progress,
    )?;
    match run {
        Ok((stats, ())) => Ok(stats),
        Err(never) => match never {},
    }
}

/// As [`run`], but the consumer is made by `setup` on the calling thread while the workers
/// start (with `threads` ≤ 1, before the run), and gets each event with it. An error of
/// `setup` stops the workers and is returned as it is; the consumer is returned with the
/// counters.
pub fn run_with<C, E: From<CaptureError>>(
    cfg: PipelineConfig,
    threads: usize,
    files: &mut [CaptureFile],
    setup: impl FnOnce() -> Result<C, E>,
    emit: &mut impl FnMut(&mut C, &IcsEvent),
    progress: &mut impl FnMut(usize, u64),
) -> Result<(RunStats, C), E> {
    if threads <= 1 {
        let mut c = setup()?;
        let stats = pipeline::run(cfg, files, &mut |e| emit(&mut c, e), progress)?;
        return Ok((stats, c));
    }
    let mut scratch = Scratch::new();
    run_inner::<(), C, E>(
        cfg,
        threads,
        files,
        None,
        setup,
        &mut |c, o, i| {
            if let Some(e) = o.events.get_with(i, &mut scratch) {
                emit(c, e);
            }
        },
        progress,
    )?
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
    let run = run_inner::<T, (), Infallible>(
        cfg,
        threads,
        files,
        Some(map),
        || Ok(()),
        &mut |(), o, i| {
            if let Some(t) = o.mapped.get_mut(i).and_then(Option::take) {
                emit(t);
            }
        },
        progress,
    )?;
    match run {
        Ok((stats, ())) => Ok(stats),
        Err(never) => match never {},
    }
}

/// The sharded run on `threads` - 1 workers (at least one): `map` (if any) turns each event
/// into a `T` on its worker; `setup` makes the consumer on the calling thread once the workers
/// run (its error stops them and is the inner result, before any capture error); `emit` gets
/// the consumer, each answer and the place of the next event in it, in order, on the calling
/// thread.
fn run_inner<T: Send, C, E>(
    cfg: PipelineConfig,
    threads: usize,
    files: &mut [CaptureFile],
    map: Map<'_, T>,
    setup: impl FnOnce() -> Result<C, E>,
    emit: &mut impl FnMut(&mut C, &mut FromWorker<T>, usize),
    progress: &mut impl FnMut(usize, u64),
) -> Result<Result<(RunStats, C), E>, CaptureError> {
    let n = threads.saturating_sub(1).max(1);
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
    let ready = AtomicBool::new(false);
    let wait = Wait::for_threads(threads);
    let (ret_tx, ret_rx) = channel::<Batch>();
    std::thread::scope(|s| {
        let mut to_workers = Vec::with_capacity(n);
        let mut from_workers = Vec::with_capacity(n);
        let mut give_back = Vec::with_capacity(n);
        let mut lead_ends = None;
        for k in 0..n {
            let (otx, orx) = sync_channel::<FromWorker<T>>(QUEUE);
            let (btx, brx) = channel::<FromWorker<T>>();
            from_workers.push(orx);
            give_back.push(btx);
            let wcfg = wcfg.clone();
            if k == 0 {
                lead_ends = Some((wcfg, otx, brx));
                continue;
            }
            let (tx, rx) = sync_channel::<ToWorker>(QUEUE);
            to_workers.push(tx);
            let ret = ret_tx.clone();
            s.spawn(move || follow(Shard::new(wcfg, n, names, map, otx, brx, wait), rx, ret));
        }
        drop(ret_tx);
        let (pf, pp, rd) = (&prog_file, &prog_pos, &ready);
        let reader = lead_ends.map(|(wcfg, otx, brx)| {
            s.spawn(move || {
                let me = Shard::new(wcfg, n, names, map, otx, brx, wait);
                lead(me, n, files, names, to_workers, ret_rx, pf, pp, rd)
            })
        });
        let consumer = setup();
        ready.store(true, Ordering::Relaxed);
        let merged = consumer.map(|mut c| {
            let stats = merge(
                wait,
                &from_workers,
                &give_back,
                &mut |o, i| emit(&mut c, o, i),
                &mut || {
                    progress(
                        prog_file.load(Ordering::Relaxed),
                        prog_pos.load(Ordering::Relaxed),
                    )
                },
            );
            (stats, c)
        });
        drop(from_workers);
        drop(give_back);
        let files = match reader.map(|r| r.join()) {
            Some(Ok(r)) => r,
            Some(Err(p)) => std::panic::resume_unwind(p),
            None => Ok(Vec::new()),
        };
        let (merged, c) = match merged {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let files = files?;
        let mut stats = merged.unwrap_or_default();
        stats.files = files;
        Ok(Ok((stats, c)))
    })
}

/// Answers the calling thread is through with, back on the worker that built them, kept
/// for later rounds. Their events stay in their slots (see [`crate::proto::slots`]): the
/// worker's parsers write the next rounds' events over them, so events are built and freed
/// on the worker that made them and a round allocates nothing once the slots exist.
#[derive(Debug)]
struct Spent<T> {
    /// Emptied answers, for the next rounds (the last returned is reused first).
    free: Vec<FromWorker<T>>,
}

/// Returned answers kept for reuse; more are dropped. More than can be out at once (the
/// queue, the one being merged and the one being filled).
const SPENT_LISTS: usize = 2 * QUEUE;

/// Tags an emptied answer keeps room for (one held for many rounds is cut back).
const KEEP_TAGS: usize = 4 * ROUND;

impl<T> Spent<T> {
    fn new() -> Self {
        Spent { free: Vec::new() }
    }

    /// Takes back an answer the calling thread is through with, emptied for reuse.
    fn give(&mut self, mut o: FromWorker<T>) {
        if self.free.len() >= SPENT_LISTS {
            return;
        }
        o.events.clear();
        o.tags.clear();
        o.tags.shrink_to(KEEP_TAGS);
        o.mapped.clear();
        o.changes.clear();
        o.stats = None;
        self.free.push(o);
    }

    /// An empty answer for the next round.
    fn fresh(&mut self) -> FromWorker<T> {
        self.free.pop().unwrap_or_default()
    }
}

/// One worker's pipeline and the answer it is filling (the round's events stay in the
/// pipeline until the answer is sent).
struct Shard<'a, T> {
    p: Pipeline,
    /// Several workers: events are tagged and flow changes reported.
    many: bool,
    names: &'a [Arc<str>],
    empty: Arc<str>,
    map: Map<'a, T>,
    out: FromWorker<T>,
    spent: Spent<T>,
    /// Flow count and buffer memory at the last change reported.
    flows: i64,
    mem: i64,
    tx: SyncSender<FromWorker<T>>,
    back: Receiver<FromWorker<T>>,
    wait: Wait,
}

impl<'a, T> Shard<'a, T> {
    fn new(
        cfg: PipelineConfig,
        workers: usize,
        names: &'a [Arc<str>],
        map: Map<'a, T>,
        tx: SyncSender<FromWorker<T>>,
        back: Receiver<FromWorker<T>>,
        wait: Wait,
    ) -> Self {
        let mut p = Pipeline::new(cfg);
        // Fast reads are posted whole, for the calling thread to write into memory of its
        // own, unless the events are mapped here.
        p.shard_events().set_post(map.is_none());
        Shard {
            p,
            many: workers > 1,
            names,
            empty: Arc::from(""),
            map,
            out: FromWorker::default(),
            spent: Spent::new(),
            flows: 0,
            mem: 0,
            tx,
            back,
            wait,
        }
    }

    /// The packet of global index `index`, of file `file`.
    #[inline(always)]
    fn packet(&mut self, index: u64, file: u32, pkt: &Packet<'_>) {
        let name = self.names.get(file as usize).unwrap_or(&self.empty);
        let k = self.p.shard_packet(index, name, pkt);
        if self.many {
            self.record(index, 0);
            if k > 0 {
                self.out.tags.extend(std::iter::repeat_n((index, 0), k));
            }
        }
        if k > 0 {
            self.took(k);
        }
    }

    /// The idle sweep after packet `index` (packet `number` of file `file`) at time `now`.
    fn sweep(&mut self, index: u64, now: Timestamp, file: u32, number: u64) {
        let name = self.names.get(file as usize).unwrap_or(&self.empty);
        let k = self
            .p
            .shard_sweep(index, now, name, number, &mut self.out.tags);
        if self.many {
            self.record(index, 1);
        } else {
            // One worker: its events are in order as they are, the tags are not needed.
            self.out.tags.clear();
        }
        self.took(k);
    }

    /// Notes a change of the flow count or buffer memory after packet `index` (phase 0), a
    /// sweep (1) or at the end (2).
    fn record(&mut self, index: u64, phase: u8) {
        let f = i64::try_from(self.p.flow_count()).unwrap_or(i64::MAX);
        let m = i64::try_from(self.p.flow_memory()).unwrap_or(i64::MAX);
        if f != self.flows || m != self.mem {
            self.out.changes.push(Change {
                index,
                phase,
                flows: f - self.flows,
                mem: m - self.mem,
            });
            (self.flows, self.mem) = (f, m);
        }
    }

    /// Takes note of the last `k` events made: maps them (with a map) and counts them.
    /// Mapped, they are forgotten at once, their slots written over by the next packet's
    /// events (see the module doc).
    #[inline]
    fn took(&mut self, k: usize) {
        if let Some(map) = self.map {
            let evs = self.p.shard_events();
            let from = evs.len().saturating_sub(k);
            if let Some(new) = evs.get(from..) {
                self.out.mapped.extend(new.iter().map(|e| Some(map(e))));
            }
            evs.clear();
        }
        self.p.count_events(k);
    }

    /// Ends a round: sends its answer, or keeps it when `hold`; false when the calling thread
    /// is gone.
    fn send(&mut self, hold: bool) -> bool {
        if hold {
            return true;
        }
        for o in self.back.try_iter() {
            self.spent.give(o);
        }
        let fresh = self.spent.fresh();
        let mut full = std::mem::replace(&mut self.out, fresh);
        std::mem::swap(self.p.shard_events(), &mut full.events);
        self.p.shard_events().set_post(self.map.is_none());
        self.wait.send(&self.tx, full)
    }

    /// End of input: ends every flow and sends the last answer, with the counters.
    fn finish(mut self, now: Timestamp, file: u32, last_packet: u64) {
        let name = self.names.get(file as usize).unwrap_or(&self.empty);
        let k = self
            .p
            .shard_finish(now, name, last_packet, &mut self.out.tags);
        if self.many {
            self.record(u64::MAX, 2);
        } else {
            self.out.tags.clear();
        }
        self.took(k);
        let mut out = std::mem::take(&mut self.out);
        std::mem::swap(self.p.shard_events(), &mut out.events);
        out.stats = Some(Box::new(self.p.into_stats()));
        let _ = self.wait.send(&self.tx, out);
    }
}

/// Worker 0's place in the input (packet index, capture time, sweeps, the round) and what
/// it ends a round with: the other workers' queues, the batches they return, the progress
/// position it updates and the calling thread's readiness.
struct Reader<'a> {
    index: u64,
    now: Timestamp,
    last_sweep: Option<Timestamp>,
    last_number: u64,
    in_round: usize,
    round: usize,
    /// Rounds kept in the answers so far; `holding` until the calling thread is ready or
    /// HOLD_PACKETS packets' rounds are kept, then never again.
    held: usize,
    holding: bool,
    to: Vec<SyncSender<ToWorker>>,
    ret: Receiver<Batch>,
    prog_pos: &'a AtomicU64,
    ready: &'a AtomicBool,
}

impl Reader<'_> {
    /// Packet `pkt` of file `file`: run by `me` or copied into its worker's batch, and the
    /// idle sweep when one is due. True when it ends a round.
    #[inline(always)]
    fn step<T>(
        &mut self,
        me: &mut Shard<'_, T>,
        batches: &mut [Batch],
        n: usize,
        file: u32,
        pkt: &Packet<'_>,
    ) -> bool {
        self.index += 1;
        let index = self.index;
        self.last_number = pkt.number;
        if pkt.ts > self.now {
            self.now = pkt.ts;
        }
        match shard_of(pkt, n).checked_sub(1) {
            None => me.packet(index, file, pkt),
            Some(w) => {
                if let Some(b) = batches.get_mut(w) {
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
            }
        }
        if sweep_due(&mut self.last_sweep, self.now) {
            let now = self.now;
            me.sweep(index, now, file, pkt.number);
            for b in batches {
                b.items.push(Item::Sweep {
                    index,
                    now,
                    file,
                    number: pkt.number,
                });
            }
        }
        self.in_round += 1;
        if self.in_round == self.round {
            self.in_round = 0;
            return true;
        }
        false
    }

    /// Ends a round at byte `position` of the file: progress noted, every worker's batch
    /// sent, and worker 0's answer (kept instead until the calling thread is ready, up to
    /// HOLD_PACKETS). False when a thread is gone.
    #[inline(never)]
    fn end_round<T>(
        &mut self,
        me: &mut Shard<'_, T>,
        batches: &mut [Batch],
        position: u64,
    ) -> bool {
        self.prog_pos.store(position, Ordering::Relaxed);
        self.holding = self.holding
            && self.held < HOLD_PACKETS / self.round
            && !self.ready.load(Ordering::Relaxed);
        let hold = self.holding;
        self.held += usize::from(hold);
        send_round(me.wait, batches, hold, &self.to, &self.ret) && me.send(hold)
    }
}

/// Worker 0: reads every file, runs its own packets and sends the others' to their workers
/// round by round.
#[allow(clippy::too_many_arguments)]
fn lead<T>(
    mut me: Shard<'_, T>,
    n: usize,
    files: &mut [CaptureFile],
    names: &[Arc<str>],
    to: Vec<SyncSender<ToWorker>>,
    ret: Receiver<Batch>,
    prog_file: &AtomicUsize,
    prog_pos: &AtomicU64,
    ready: &AtomicBool,
) -> Result<Vec<FileStats>, CaptureError> {
    let mut batches: Vec<Batch> = to.iter().map(|_| Batch::default()).collect();
    let mut rd = Reader {
        index: 0,
        now: Timestamp::default(),
        last_sweep: None,
        last_number: 0,
        in_round: 0,
        round: if n == 1 { ROUND_ONE } else { ROUND },
        held: 0,
        holding: true,
        to,
        ret,
        prog_pos,
        ready,
    };
    let mut out = Vec::with_capacity(files.len());
    let mut last_file = 0u32;
    for (fi, cap) in files.iter_mut().enumerate() {
        let file = u32::try_from(fi).unwrap_or(u32::MAX);
        last_file = file;
        prog_file.store(fi, Ordering::Relaxed);
        // As the single pipeline's loop: a run of buffered records (legacy pcap, or pcapng's
        // plain packet blocks) in registers, the file's layout asked once for them; anything
        // else through `next_packet`.
        macro_rules! drain {
            ($records:expr) => {{
                let mut records = $records;
                while let Some(pkt) = records.take() {
                    if rd.step(&mut me, &mut batches, n, file, &pkt)
                        && !rd.end_round(&mut me, &mut batches, records.position())
                    {
                        return Ok(out);
                    }
                }
            }};
        }
        loop {
            if let Some(records) = cap.buffered() {
                drain!(records);
            } else if let Some(records) = cap.ng_buffered() {
                drain!(records);
            }
            let Some(pkt) = cap.next_packet()? else {
                break;
            };
            if rd.step(&mut me, &mut batches, n, file, &pkt)
                && !rd.end_round(&mut me, &mut batches, cap.position())
            {
                return Ok(out);
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
    if (rd.in_round > 0 || rd.holding)
        && (!send_round(me.wait, &mut batches, false, &rd.to, &rd.ret) || !me.send(false))
    {
        return Ok(out);
    }
    for tx in &rd.to {
        let _ = tx.send(ToWorker::Finish {
            now: rd.now,
            file: last_file,
            last_packet: rd.last_number,
        });
    }
    me.finish(rd.now, last_file, rd.last_number);
    Ok(out)
}

/// Sends every other worker its batch of the round (even an empty one), refilling from
/// returned batches; `hold`: the workers keep the round's events with the next round's.
/// False when a worker is gone.
fn send_round(
    wait: Wait,
    batches: &mut [Batch],
    hold: bool,
    to: &[SyncSender<ToWorker>],
    ret: &Receiver<Batch>,
) -> bool {
    for (b, tx) in batches.iter_mut().zip(to) {
        let fresh = ret.try_recv().unwrap_or_default();
        let mut full = std::mem::replace(b, fresh);
        full.hold = hold;
        if !wait.send(tx, ToWorker::Round(full)) {
            return false;
        }
    }
    true
}

/// Workers 1..N: their pipeline over the packets worker 0 sends them.
fn follow<T>(mut me: Shard<'_, T>, rx: Receiver<ToWorker>, ret: Sender<Batch>) {
    while let Ok(msg) = me.wait.recv(&rx) {
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
                            me.packet(index, file, &pkt);
                        }
                        Item::Sweep {
                            index,
                            now,
                            file,
                            number,
                        } => me.sweep(index, now, file, number),
                    }
                }
                let hold = batch.hold;
                batch.data.clear();
                batch.items.clear();
                batch.hold = false;
                let _ = ret.send(batch);
                if !me.send(hold) {
                    return;
                }
            }
            ToWorker::Finish {
                now,
                file,
                last_packet,
            } => {
                me.finish(now, file, last_packet);
                return;
            }
        }
    }
}

/// The merger: takes one answer per worker per round, hands the events on in order and, with
/// several workers, tracks the global flow and memory peaks; each answer then goes back to its
/// worker. Returns the summed counters, or `None` when the workers stopped early (the reader
/// failed).
fn merge<T>(
    wait: Wait,
    from: &[Receiver<FromWorker<T>>],
    give_back: &[Sender<FromWorker<T>>],
    emit: &mut impl FnMut(&mut FromWorker<T>, usize),
    progress: &mut impl FnMut(),
) -> Option<RunStats> {
    if let ([rx], [back]) = (from, give_back) {
        return merge_one(wait, rx, back, emit, progress);
    }
    let mut round: Vec<FromWorker<T>> = Vec::with_capacity(from.len());
    let mut pos: Vec<usize> = vec![0; from.len()];
    let mut changes: Vec<Change> = Vec::new();
    let (mut flows, mut mem, mut flow_peak, mut mem_peak) = (0i64, 0i64, 0i64, 0i64);
    loop {
        round.clear();
        for rx in from {
            round.push(wait.recv(rx).ok()?);
        }
        progress();
        // k-way merge by tag; ties only happen within one worker, whose order is kept.
        pos.fill(0);
        loop {
            let mut best: Option<(Tag, usize)> = None;
            for (w, o) in round.iter().enumerate() {
                let Some(&t) = pos.get(w).and_then(|&i| o.tags.get(i)) else {
                    continue;
                };
                if best.is_none_or(|(b, _)| t < b) {
                    best = Some((t, w));
                }
            }
            let Some((_, w)) = best else {
                break;
            };
            if let (Some(o), Some(i)) = (round.get_mut(w), pos.get_mut(w)) {
                emit(o, *i);
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

/// The merger of a single worker: its events are in order, its counters those of the run.
fn merge_one<T>(
    wait: Wait,
    rx: &Receiver<FromWorker<T>>,
    back: &Sender<FromWorker<T>>,
    emit: &mut impl FnMut(&mut FromWorker<T>, usize),
    progress: &mut impl FnMut(),
) -> Option<RunStats> {
    loop {
        let mut o = wait.recv(rx).ok()?;
        progress();
        for i in 0..o.len() {
            emit(&mut o, i);
        }
        if let Some(s) = o.stats.take() {
            return Some(*s);
        }
        let _ = back.send(o);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::detect::testkit::write_hr;
    use crate::synth::{tcp_frame_into, TcpSpec};
    use std::net::Ipv4Addr;

    /// A wait that tries first and one that blocks at once both deliver every message in
    /// order across threads, wait on a full queue, and see a closed channel as closed.
    #[test]
    fn waits_deliver_in_order_and_see_closed_channels() {
        for wait in [
            Wait { tries: 0 },
            Wait { tries: SPINS },
            Wait::for_threads(1),
        ] {
            let (tx, rx) = sync_channel::<u32>(2);
            let sender = std::thread::spawn(move || {
                for i in 0..10_000 {
                    assert!(wait.send(&tx, i));
                }
            });
            let mut got = Vec::new();
            while let Ok(m) = wait.recv(&rx) {
                got.push(m);
            }
            sender.join().unwrap();
            assert!(got.iter().copied().eq(0..10_000));
            // The receiver gone: a send fails (on an empty queue and on a full one).
            let (tx, rx) = sync_channel::<u32>(1);
            assert!(wait.send(&tx, 1));
            drop(rx);
            assert!(!wait.send(&tx, 2));
        }
        // More threads than cores: no tries.
        assert_eq!(Wait::for_threads(usize::MAX).tries, 0);
    }

    #[test]
    fn both_directions_of_a_flow_go_to_one_worker_and_flows_spread() {
        for n in [2, 3, 4, 7] {
            let mut per = vec![0usize; n];
            for i in 0..=255u8 {
                let client = Ipv4Addr::new(10, 0, 0, i);
                let server = Ipv4Addr::new(10, 0, 1, i % 5);
                let port = 40000 + u16::from(i);
                let mut ws = Vec::new();
                for (src, dst) in [
                    ((client, port), (server, 502)),
                    ((server, 502), (client, port)),
                ] {
                    let mut f = Vec::new();
                    let spec = TcpSpec {
                        src,
                        dst,
                        seq: 1,
                        ack: 1,
                        flags: 0x18,
                    };
                    tcp_frame_into(&mut f, &spec, &[0, 1, 0, 0, 0, 6, 1, 6, 0, 4, 0, 1]);
                    let pkt = Packet {
                        ts: Timestamp::default(),
                        link: LinkType::Ethernet,
                        data: &f,
                        orig_len: f.len() as u32,
                        number: 1,
                    };
                    ws.push(shard_of(&pkt, n));
                }
                assert_eq!(ws[0], ws[1], "{n} workers, flow {i}");
                per[ws[0]] += 1;
            }
            // Every worker gets a fair share (256 flows: at least half of an even split).
            assert!(
                per.iter().all(|&c| c * n * 2 >= 256),
                "{n} workers: {per:?}"
            );
        }
        // Not a flow: worker 0.
        let pkt = Packet {
            ts: Timestamp::default(),
            link: LinkType::Ethernet,
            data: &[0u8; 10],
            orig_len: 10,
            number: 1,
        };
        assert_eq!(shard_of(&pkt, 4), 0);
    }

    /// The decoder's flow ends of a packet, if it makes a flow.
    type Ends = ((IpAddr, u16), (IpAddr, u16), u8, u16);

    fn decoded_ends(pkt: &Packet<'_>) -> Option<Ends> {
        let d = decode(pkt.link, pkt.data, pkt.orig_len);
        let ip = d.ip?;
        let (sp, dp, proto) = match d.transport {
            Transport::Tcp(t) => (t.src_port, t.dst_port, 6),
            Transport::Udp(u) => (u.src_port, u.dst_port, 17),
            Transport::Other(_) | Transport::None => return None,
        };
        Some(((ip.src, sp), (ip.dst, dp), proto, d.vlan.unwrap_or(0)))
    }

    /// Wherever the decoder makes a flow of a packet, the shortcut gives the same ends (or
    /// none).
    fn check_shortcut(pkt: &Packet<'_>) -> bool {
        let Some((a, b)) = common_tcp_ends(pkt) else {
            return false;
        };
        if let Some(d) = decoded_ends(pkt) {
            assert_eq!(d, (a, b, 6, 0), "{:02x?}", pkt.data);
        }
        true
    }

    #[test]
    fn the_common_frame_shortcut_gives_the_decoders_flow_ends() {
        // Real captures: every packet.
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut paths: Vec<_> = [
            "modbus_plant.pcap",
            "opcua_plant.pcap",
            "modbus_attack.pcapng",
        ]
        .iter()
        .map(|p| root.join("pcaps").join(p))
        .collect();
        paths.push(root.join("../shared/pcaps/ITI__ICS-Security-Tools/pcaps__ModbusTCP__mb2.pcap"));
        let mut hits = 0;
        for p in paths.iter().filter(|p| p.exists()) {
            let mut cap = CaptureFile::open(p).unwrap();
            while let Some(pkt) = cap.next_packet().unwrap() {
                hits += usize::from(check_shortcut(&pkt));
            }
        }
        assert!(hits > 1000, "{hits}");
        // A frame with every byte of its headers changed in turn, and cut at every length.
        let mut f = Vec::new();
        let spec = TcpSpec {
            src: (Ipv4Addr::new(10, 0, 0, 1), 40000),
            dst: (Ipv4Addr::new(10, 0, 1, 2), 502),
            seq: 1,
            ack: 1,
            flags: 0x18,
        };
        tcp_frame_into(&mut f, &spec, &[0, 1, 0, 0, 0, 6, 1, 6, 0, 4, 0, 1]);
        let pkt = |data: &[u8]| -> bool {
            check_shortcut(&Packet {
                ts: Timestamp::default(),
                link: LinkType::Ethernet,
                data,
                orig_len: data.len() as u32,
                number: 1,
            })
        };
        assert!(pkt(&f));
        for i in 0..54 {
            for v in [0u8, 1, 5, 6, 0x11, 0x20, 0x3f, 0x40, 0x45, 0x46, 0x81, 0xff] {
                let mut g = f.clone();
                g[i] = v;
                pkt(&g);
            }
        }
        for len in 0..f.len() {
            pkt(&f[..len]);
        }
    }

    /// Events (as text) and counters of a run of `pcap` with `threads`, through
    /// [`run_with`] with a setup that takes `setup_ms`.
    fn run_plant(pcap: &std::path::Path, threads: usize, setup_ms: u64) -> (Vec<String>, String) {
        let mut files = pipeline::open_all(&[pcap]).unwrap();
        let (stats, out) = run_with(
            PipelineConfig::default(),
            threads,
            &mut files,
            || -> Result<Vec<String>, CaptureError> {
                std::thread::sleep(std::time::Duration::from_millis(setup_ms));
                Ok(Vec::new())
            },
            &mut |out: &mut Vec<String>, e| out.push(format!("{e:?}")),
            &mut |_, _| {},
        )
        .unwrap();
        (out, stats.to_json().to_string())
    }

    /// One packet worker (two threads), several (three, four), with a consumer ready at once
    /// or only after the workers have held rounds for it (past `HOLD_PACKETS`): the events and
    /// counters of one thread. A failing setup stops the run with its error and no event.
    #[test]
    fn run_with_gives_one_threads_output_and_stops_on_a_setup_error() {
        let frames = crate::synth::modbus_plant(&crate::synth::SynthConfig {
            packets: HOLD_PACKETS + 8 * ROUND,
            ..crate::synth::SynthConfig::default()
        });
        let path = std::env::temp_dir().join(format!("otwatch-shard-{}.pcap", std::process::id()));
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        crate::synth::write_pcap(&mut w, &frames).unwrap();
        drop(w);
        let one = run_plant(&path, 1, 0);
        assert!(one.0.len() > 1000, "{}", one.0.len());
        for (threads, setup_ms) in [(2, 0), (2, 400), (3, 0), (3, 400), (4, 0)] {
            let got = run_plant(&path, threads, setup_ms);
            assert!(got == one, "{threads} threads, setup {setup_ms} ms");
        }
        for threads in [1, 2, 3] {
            let mut files = pipeline::open_all(&[&path]).unwrap();
            let mut seen = 0;
            let r = run_with(
                PipelineConfig::default(),
                threads,
                &mut files,
                || -> Result<(), anyhow::Error> { Err(anyhow::anyhow!("no baseline")) },
                &mut |(), _| seen += 1,
                &mut |_, _| {},
            );
            assert_eq!(
                r.err().map(|e| e.to_string()).as_deref(),
                Some("no baseline")
            );
            assert_eq!(seen, 0);
        }
        let _ = std::fs::remove_file(&path);
    }

    /// A mapped run gives one thread's mapped events in order for any number of threads, and
    /// a worker with a map keeps no event once it has mapped it: its list is empty after every
    /// packet, whatever the packet made (see [`Shard::took`]).
    #[test]
    fn a_mapped_run_keeps_no_event_and_gives_one_threads_output() {
        let frames = crate::synth::modbus_plant(&crate::synth::SynthConfig {
            packets: 3 * ROUND,
            ..crate::synth::SynthConfig::default()
        });
        let path =
            std::env::temp_dir().join(format!("otwatch-shard-map-{}.pcap", std::process::id()));
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        crate::synth::write_pcap(&mut w, &frames).unwrap();
        drop(w);
        let map = |e: &IcsEvent| format!("{e:?}");
        let run = |threads: usize| {
            let mut files = pipeline::open_all(&[&path]).unwrap();
            let mut out = Vec::new();
            let stats = run_map(
                PipelineConfig::default(),
                threads,
                &mut files,
                &map,
                &mut |s| out.push(s),
                &mut |_, _| {},
            )
            .unwrap();
            (out, stats.to_json().to_string())
        };
        let one = run(1);
        assert!(one.0.len() > 500, "{}", one.0.len());
        for threads in [2, 3, 4] {
            assert!(run(threads) == one, "{threads} threads");
        }

        let names: Vec<Arc<str>> = vec![Arc::from(path.to_string_lossy().as_ref())];
        let (tx, _rx) = sync_channel::<FromWorker<String>>(QUEUE);
        let (_back_tx, back) = channel::<FromWorker<String>>();
        let map: &(dyn Fn(&IcsEvent) -> String + Sync) = &map;
        let mut me = Shard::new(
            PipelineConfig::default(),
            1,
            &names,
            Some(map),
            tx,
            back,
            Wait { tries: 0 },
        );
        for (i, (ts, data)) in frames.iter().enumerate() {
            let pkt = Packet {
                ts: *ts,
                link: LinkType::Ethernet,
                data,
                orig_len: data.len() as u32,
                number: i as u64 + 1,
            };
            me.packet(i as u64 + 1, 0, &pkt);
            assert!(me.p.shard_events().is_empty(), "packet {}", i + 1);
        }
        // Every event mapped, in order: those of one thread's run but the end of input's
        // (no idle sweep here makes one).
        let mapped: Vec<&str> = me.out.mapped.iter().flatten().map(String::as_str).collect();
        assert_eq!(mapped.len(), me.out.mapped.len());
        assert!(mapped.len() + 8 > one.0.len() && mapped.len() <= one.0.len());
        assert!(mapped.iter().zip(&one.0).all(|(a, b)| a == b));
        let _ = std::fs::remove_file(&path);
    }

    fn answer(tags: std::ops::Range<u64>) -> FromWorker<()> {
        FromWorker {
            events: tags
                .clone()
                .map(|_| write_hr(0, "10.0.0.1", "10.0.0.2", 1, 4, 1))
                .collect(),
            tags: tags.map(|t| (t, 0)).collect(),
            mapped: Vec::new(),
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
    fn spent_answers_come_back_empty_with_their_slots() {
        let mut s = Spent::new();
        // Nothing returned yet: fresh answers are new.
        assert!(s.fresh().events.is_empty());
        s.give(answer(0..3));
        s.give(answer(3..5));
        // The last returned is reused first, emptied, its events kept as stale slots.
        let o = s.fresh();
        assert!(o.events.is_empty() && o.events.slots() == 2);
        assert!(o.tags.is_empty() && o.changes.is_empty() && o.stats.is_none());
        let o = s.fresh();
        assert!(o.events.is_empty() && o.events.slots() == 3);
        assert!(s.fresh().events.slots() == 0);
        // More answers than kept: the extra ones are dropped.
        for k in 0..SPENT_LISTS as u64 + 2 {
            s.give(answer(10 * k..10 * k + 2));
        }
        assert_eq!(s.free.len(), SPENT_LISTS);
    }
}
