//! The wiring: capture → decode → flows → protocol parsers → events.
//!
//! [`Pipeline`] is plain synchronous code: one call per packet, no allocation on the common
//! path beyond what parsers keep, no logging per packet. Events come out through a callback in
//! the order the transactions complete, so the same input always gives the same output.

use crate::capture::{CaptureError, CaptureFile, Packet};
use crate::decode::{common_frame, decode, LinkType, Transport};
use crate::event::{Endpoint, IcsEvent};
use crate::flow::{Chunk, Direction, EndReason, Flow, FlowConfig, FlowL4, FlowMeta, FlowPacket};
use crate::flow::{FlowSink, FlowTable, Lane};
use crate::proto::slots::EventBuf;
use crate::proto::{ParseCx, ProtoStats, StreamDriver};
use crate::stats::{FileStats, RunStats};
use crate::time::Timestamp;
use std::path::Path;
use std::sync::Arc;

/// Settings of a pipeline run.
#[derive(Clone, Debug, Default)]
pub struct PipelineConfig {
    /// Flow table and reassembly limits.
    pub flow: FlowConfig,
}

/// One sensor pipeline: a flow table with a protocol driver per flow, and the run's counters.
#[derive(Debug)]
pub struct Pipeline {
    flows: FlowTable<StreamDriver>,
    stats: RunStats,
    events: EventBuf,
    /// Capture time of the last idle-flow sweep.
    last_sweep: Option<Timestamp>,
    /// Latest capture time seen (captures are not always in time order).
    now: Timestamp,
    /// Number of the last packet processed, in its file. Data that reassembly flushes at the end
    /// of the capture (held back behind a hole) is credited to it: evidence always names a real
    /// packet, never packet 0.
    last_packet: u64,
    /// Global index (1-based, over all files) of the last packet handled.
    index: u64,
    /// Flows ended since the last flush: (events queued before it, recency stamp, flow id).
    ending: Vec<(usize, u64, u64)>,
    /// Packets of the current run of one link type, not yet added to
    /// `stats.decode.link_types` (a map update per packet cost more than the rest of the
    /// packet's bookkeeping).
    link_run: Option<(LinkType, u64)>,
    /// Common frames (Ethernet, IPv4, TCP) not yet added to `stats.decode.ipv4` and `.tcp`
    /// (one count per packet instead of two). Like `link_run`, added when the counters are
    /// handed out.
    common: u64,
    /// Test switch: every frame takes the general decode path.
    #[cfg(test)]
    no_fast: bool,
    /// Test switch: no packet takes the flow table's lane.
    #[cfg(test)]
    no_lane: bool,
}

/// The place of an event in the order a single pipeline emits events: the global index of
/// the packet at which it was emitted (`u64::MAX` at the end of input), then an order among
/// events emitted at the same index (0 for the packet's own, then flows ended by the idle
/// sweep in recency order, or flows ended at the end in id order).
pub(crate) type Tag = (u64, u64);

/// Routes flow-table output into the per-flow protocol drivers.
struct Sink<'a> {
    ts: Timestamp,
    file: &'a Arc<str>,
    packet: u64,
    events: &'a mut EventBuf,
    proto: &'a mut ProtoStats,
    ending: &'a mut Vec<(usize, u64, u64)>,
}

impl Sink<'_> {
    fn cx<'b>(&'b mut self, meta: &'b FlowMeta) -> ParseCx<'b> {
        ParseCx {
            ts: self.ts,
            file: self.file,
            packet: self.packet,
            meta,
            events: self.events,
            stats: self.proto,
        }
    }
}

impl FlowSink<StreamDriver> for Sink<'_> {
    #[inline(always)]
    fn on_chunk(&mut self, meta: &FlowMeta, app: &mut StreamDriver, dir: Direction, c: Chunk<'_>) {
        let mut cx = self.cx(meta);
        match c {
            Chunk::Data(d) => app.on_data(dir, d, &mut cx),
            Chunk::Gap(n) => app.on_gap(dir, n, &mut cx),
            Chunk::Fin | Chunk::Rst => {}
        }
    }

    fn on_datagram(&mut self, _: &FlowMeta, _: &mut StreamDriver, _: Direction, _: &[u8]) {}

    #[inline]
    fn app_memory(&self, app: &StreamDriver) -> usize {
        app.buffer_memory()
    }

    fn on_budget_drop(&mut self, meta: &FlowMeta, app: &mut StreamDriver) {
        let mut cx = self.cx(meta);
        app.drop_buffers(&mut cx);
    }

    fn on_ending(&mut self, meta: &FlowMeta, stamp: u64) {
        self.ending.push((self.events.len(), stamp, meta.id));
    }

    fn on_end(&mut self, mut flow: Flow<StreamDriver>, _reason: EndReason) {
        let mut cx = self.cx(&flow.meta);
        flow.app.on_close(&mut cx);
    }
}

/// How often (capture seconds) idle flows are swept.
const SWEEP_INTERVAL_SECS: i64 = 1;

/// Whether the idle sweep runs after a packet, given the latest capture time `now`; records
/// it when it does.
pub(crate) fn sweep_due(last_sweep: &mut Option<Timestamp>, now: Timestamp) -> bool {
    let due = match *last_sweep {
        None => true,
        Some(t) => now.secs - t.secs >= SWEEP_INTERVAL_SECS,
    };
    if due {
        *last_sweep = Some(now);
    }
    due
}

impl Pipeline {
    /// A pipeline with empty state.
    pub fn new(cfg: PipelineConfig) -> Self {
        Pipeline {
            flows: FlowTable::new(cfg.flow),
            stats: RunStats::default(),
            events: EventBuf::new(),
            last_sweep: None,
            now: Timestamp::default(),
            last_packet: 0,
            index: 0,
            ending: Vec::new(),
            link_run: None,
            common: 0,
            #[cfg(test)]
            no_fast: false,
            #[cfg(test)]
            no_lane: false,
        }
    }

    /// Counters so far (the packet, link type, IPv4 and TCP counts and the flow counters are
    /// complete after [`Pipeline::finish`]).
    pub fn stats(&self) -> &RunStats {
        &self.stats
    }

    /// Runs one packet through decode, flows and parsers. Events completed by it are passed
    /// to `emit`.
    pub fn process(&mut self, file: &Arc<str>, pkt: &Packet<'_>, emit: &mut impl FnMut(&IcsEvent)) {
        self.process_inline(file, pkt, emit);
    }

    /// [`Pipeline::process`], inlined into the run loop.
    #[inline(always)]
    fn process_inline(
        &mut self,
        file: &Arc<str>,
        pkt: &Packet<'_>,
        emit: &mut impl FnMut(&IcsEvent),
    ) {
        self.index += 1;
        self.handle(self.index, file, pkt);
        // `sweep_due` can only change its answer when the latest time enters another second
        // (after its first call it is false until then), so it is asked only then, out of line.
        if pkt.ts.secs > self.now.secs || self.last_sweep.is_none() {
            self.new_second(file, pkt.ts, pkt.number);
        } else if pkt.ts.secs == self.now.secs && pkt.ts.nanos > self.now.nanos {
            // `pkt.ts > self.now` within the second.
            self.now.nanos = pkt.ts.nanos;
        }
        self.flush_events(emit);
    }

    /// After a packet of time `ts` (packet `number` of `file`) that starts another second of the
    /// latest time, or before the first sweep: the latest time, and the idle sweep if due.
    #[inline(never)]
    fn new_second(&mut self, file: &Arc<str>, ts: Timestamp, number: u64) {
        if ts > self.now {
            self.now = ts;
        }
        if sweep_due(&mut self.last_sweep, self.now) {
            self.sweep(self.now, file, number);
        }
    }

    /// [`Pipeline::process`] out of line, for the packets the run loop's fast read skipped.
    #[inline(never)]
    fn process_cold(
        &mut self,
        file: &Arc<str>,
        pkt: &Packet<'_>,
        emit: &mut impl FnMut(&IcsEvent),
    ) {
        self.process_inline(file, pkt, emit);
    }

    /// Decodes one packet and runs it through its flow (no idle sweep, events stay queued).
    #[inline(always)]
    fn handle(&mut self, index: u64, file: &Arc<str>, pkt: &Packet<'_>) {
        // Counted in its link type run (`stats.packets` is the sum of the runs).
        self.last_packet = pkt.number;
        match &mut self.link_run {
            Some((link, n)) if *link == pkt.link => *n += 1,
            _ => self.new_link_run(pkt.link),
        }
        self.stats.bytes += pkt.data.len() as u64;
        if (pkt.data.len() as u64) < u64::from(pkt.orig_len) {
            self.stats.decode.snaplen_cut += 1;
        }
        // The common frame goes straight to its flow; the same counters and flow packet as
        // the general path below gives it (tested).
        #[cfg(test)]
        let on = !self.no_fast;
        #[cfg(not(test))]
        let on = true;
        let fast = if on && pkt.link == LinkType::Ethernet {
            common_frame(pkt.data, pkt.orig_len)
        } else {
            None
        };
        let Some(cf) = &fast else {
            // Handed on as its fields: a copy of the whole packet for the call would keep it
            // in memory on the common path too.
            self.general_parts(
                index,
                file,
                pkt.ts,
                pkt.link,
                pkt.data,
                pkt.orig_len,
                pkt.number,
            );
            return;
        };
        self.common += 1;
        #[cfg(test)]
        let lane = !self.no_lane;
        #[cfg(not(test))]
        let lane = true;
        if lane {
            // The sink is only used for the chunk here (the rest is out of line, with a sink
            // of its own): it need not be built in memory.
            let mut sink = Sink {
                ts: pkt.ts,
                file,
                packet: pkt.number,
                events: &mut self.events,
                proto: &mut self.stats.proto,
                ending: &mut self.ending,
            };
            match self.flows.lane(index, pkt.ts, cf, &mut sink) {
                Lane::Done => return,
                Lane::Settle(idx) => {
                    self.lane_settle(idx, file, pkt.ts, pkt.number);
                    return;
                }
                Lane::Declined => {}
            }
        }
        self.handle_common(index, file, pkt.ts, pkt.data, pkt.orig_len, pkt.number);
    }

    /// The memory accounting of a lane packet whose flow's buffers changed (or with the total
    /// over the budget).
    #[inline(never)]
    fn lane_settle(&mut self, idx: u32, file: &Arc<str>, ts: Timestamp, packet: u64) {
        let mut sink = Sink {
            ts,
            file,
            packet,
            events: &mut self.events,
            proto: &mut self.stats.proto,
            ending: &mut self.ending,
        };
        self.flows.lane_settle(idx, &mut sink);
    }

    /// Starts a run of packets of another link type, adding the previous run to the counters.
    #[cold]
    #[inline(never)]
    fn new_link_run(&mut self, link: LinkType) {
        if let Some((prev, n)) = self.link_run.replace((link, 1)) {
            self.stats.packets += n;
            *self.stats.decode.link_types.entry(prev).or_insert(0) += n;
        }
    }

    /// A common frame (already counted) that its flow's lane declined: the general flow path.
    /// (The frame is checked again here: its view is not kept from the common path.)
    #[inline(never)]
    fn handle_common(
        &mut self,
        index: u64,
        file: &Arc<str>,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
        number: u64,
    ) {
        let Some(cf) = common_frame(data, orig_len) else {
            return;
        };
        let mut sink = Sink {
            ts,
            file,
            packet: number,
            events: &mut self.events,
            proto: &mut self.stats.proto,
            ending: &mut self.ending,
        };
        let fp = FlowPacket::of_common(ts, &cf);
        self.flows.set_packet_index(index);
        self.flows.process(&fp, StreamDriver::new, &mut sink);
    }

    /// [`Pipeline::handle_general`] of the packet with these fields.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn general_parts(
        &mut self,
        index: u64,
        file: &Arc<str>,
        ts: Timestamp,
        link: LinkType,
        data: &[u8],
        orig_len: u32,
        number: u64,
    ) {
        let pkt = Packet {
            ts,
            link,
            data,
            orig_len,
            number,
        };
        self.handle_general(index, file, pkt);
    }

    /// A frame other than the common one: decoded layer by layer, then through its flow.
    #[inline(always)]
    fn handle_general(&mut self, index: u64, file: &Arc<str>, pkt: Packet<'_>) {
        let ds = &mut self.stats.decode;
        let mut sink = Sink {
            ts: pkt.ts,
            file,
            packet: pkt.number,
            events: &mut self.events,
            proto: &mut self.stats.proto,
            ending: &mut self.ending,
        };
        let d = decode(pkt.link, pkt.data, pkt.orig_len);
        if let Some(e) = d.error {
            *ds.errors.entry(e.kind).or_insert(0) += 1;
        }
        match d.ip {
            None => {
                if d.error.is_none() {
                    ds.non_ip += 1;
                }
            }
            Some(ip) => {
                if ip.src.is_ipv4() {
                    ds.ipv4 += 1;
                } else {
                    ds.ipv6 += 1;
                }
                if ip.fragment {
                    ds.fragments += 1;
                }
                let (src_port, dst_port, l4) = match d.transport {
                    Transport::Tcp(t) => {
                        ds.tcp += 1;
                        (t.src_port, t.dst_port, Some(FlowL4::Tcp(t)))
                    }
                    Transport::Udp(u) => {
                        ds.udp += 1;
                        (u.src_port, u.dst_port, Some(FlowL4::Udp(u.payload)))
                    }
                    Transport::Other(_) => {
                        ds.other_ip += 1;
                        (0, 0, None)
                    }
                    Transport::None => (0, 0, None),
                };
                if let Some(l4) = l4 {
                    let fp = FlowPacket {
                        ts: pkt.ts,
                        src: Endpoint {
                            ip: ip.src,
                            port: src_port,
                            mac: d.src_mac,
                        },
                        dst: Endpoint {
                            ip: ip.dst,
                            port: dst_port,
                            mac: d.dst_mac,
                        },
                        vlan: d.vlan,
                        l4,
                    };
                    self.flows.set_packet_index(index);
                    self.flows.process(&fp, StreamDriver::new, &mut sink);
                }
            }
        }
    }

    /// Ends the flows idle at capture time `now`.
    fn sweep(&mut self, now: Timestamp, file: &Arc<str>, packet: u64) {
        let mut sink = Sink {
            ts: now,
            file,
            packet,
            events: &mut self.events,
            proto: &mut self.stats.proto,
            ending: &mut self.ending,
        };
        self.flows.expire(now, &mut sink);
    }

    /// Shard worker: handles the packet of global index `index` (no sweep). Its events stay
    /// queued ([`Pipeline::shard_events`]); returns how many it made.
    #[inline(always)]
    pub(crate) fn shard_packet(&mut self, index: u64, file: &Arc<str>, pkt: &Packet<'_>) -> usize {
        let before = self.events.len();
        self.handle(index, file, pkt);
        self.ending.clear();
        self.events.len().saturating_sub(before)
    }

    /// Shard worker: the idle sweep that a single pipeline runs after packet `index`, at
    /// global capture time `now`. `file` and `packet` name that packet. Its events stay
    /// queued, their tags go to `tags`; returns how many it made.
    pub(crate) fn shard_sweep(
        &mut self,
        index: u64,
        now: Timestamp,
        file: &Arc<str>,
        packet: u64,
        tags: &mut Vec<Tag>,
    ) -> usize {
        self.now = now;
        let before = self.events.len();
        self.sweep(now, file, packet);
        self.tag_ended(before, index, false, tags)
    }

    /// Shard worker: the events queued (by the packets, sweeps and end since the worker last
    /// took them), for the worker to take or swap out.
    pub(crate) fn shard_events(&mut self) -> &mut EventBuf {
        &mut self.events
    }

    /// Tags the events queued since `before` by the flow whose end produced them: by recency
    /// stamp (sweep) or by flow id (end of input). Returns how many there are.
    fn tag_ended(&mut self, before: usize, at: u64, by_id: bool, tags: &mut Vec<Tag>) -> usize {
        let mut marks = self.ending.drain(..).peekable();
        let mut sub = 0;
        for i in before..self.events.len() {
            while let Some(&(pos, stamp, id)) = marks.peek() {
                if pos > i {
                    break;
                }
                sub = if by_id { id } else { stamp };
                marks.next();
            }
            tags.push((at, sub));
        }
        self.events.len().saturating_sub(before)
    }

    /// Shard worker: ends every flow at the end of input, as [`Pipeline::finish`] does; events
    /// and tags as [`Pipeline::shard_sweep`].
    pub(crate) fn shard_finish(
        &mut self,
        now: Timestamp,
        file: &Arc<str>,
        last_packet: u64,
        tags: &mut Vec<Tag>,
    ) -> usize {
        self.now = now;
        self.last_packet = last_packet;
        let before = self.events.len();
        self.finish_flows(file);
        self.tag_ended(before, u64::MAX, true, tags)
    }

    /// Flows currently held.
    pub(crate) fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Buffer bytes currently held by the flows.
    pub(crate) fn flow_memory(&self) -> usize {
        self.flows.memory()
    }

    /// Counts events handed out by a shard worker.
    pub(crate) fn count_events(&mut self, n: usize) {
        self.stats.events += n as u64;
    }

    /// Hands the queued events to `emit`. In line: most packets complete no event, and an
    /// out-of-line call with nothing to do cost them about 15 instructions (call, saved
    /// registers) for the one check.
    #[inline(always)]
    fn flush_events(&mut self, emit: &mut impl FnMut(&IcsEvent)) {
        self.ending.clear();
        if !self.events.is_empty() {
            self.flush_queued(emit);
        }
    }

    /// [`Pipeline::flush_events`] with events queued.
    #[inline(never)]
    fn flush_queued(&mut self, emit: &mut impl FnMut(&IcsEvent)) {
        self.stats.events += self.events.len() as u64;
        // In place, not drained: moving each event out of the vector cost two copies of it.
        for e in self.events.iter() {
            emit(e);
        }
        // The events stay as stale slots, overwritten by the next ones.
        self.events.clear();
    }

    /// Ends every flow (end of input), emitting what their parsers still hold.
    pub fn finish(&mut self, file: &Arc<str>, emit: &mut impl FnMut(&IcsEvent)) {
        self.finish_flows(file);
        self.flush_events(emit);
    }

    /// Adds the packets of the current link type run and the common frames not yet counted to
    /// the counters.
    fn fold_link_run(&mut self) {
        if let Some((link, n)) = self.link_run.take() {
            self.stats.packets += n;
            *self.stats.decode.link_types.entry(link).or_insert(0) += n;
        }
        let ds = &mut self.stats.decode;
        ds.ipv4 += self.common;
        ds.tcp += self.common;
        self.common = 0;
    }

    fn finish_flows(&mut self, file: &Arc<str>) {
        self.fold_link_run();
        let mut sink = Sink {
            ts: self.now,
            file,
            packet: self.last_packet,
            events: &mut self.events,
            proto: &mut self.stats.proto,
            ending: &mut self.ending,
        };
        self.flows.drain(&mut sink);
        self.stats.flows = self.flows.stats().clone();
    }

    /// Takes the counters (after [`Pipeline::shard_finish`]).
    pub(crate) fn into_stats(mut self) -> RunStats {
        self.fold_link_run();
        self.stats
    }

    /// Reads one opened capture to its end through the pipeline. `progress` is told the byte
    /// position now and then.
    pub fn run_file(
        &mut self,
        cap: &mut CaptureFile,
        emit: &mut impl FnMut(&IcsEvent),
        progress: &mut impl FnMut(u64),
    ) -> Result<(), CaptureError> {
        let name: Arc<str> = Arc::from(cap.path().to_string_lossy().as_ref());
        // The buffered records in registers, inlined, the file's layout asked once for a run of
        // them (legacy pcap records, or pcapng's plain packet blocks); anything else out of line.
        macro_rules! drain {
            ($records:expr) => {{
                let mut records = $records;
                while let Some(pkt) = records.take() {
                    self.process_inline(&name, &pkt, emit);
                    // Every 4096 packets of the file, by the capture's own count (no counter
                    // of its own kept in a register through the loop).
                    if records.packets() % 4096 == 0 {
                        progress(records.position());
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
            self.process_cold(&name, &pkt, emit);
            if cap.stats().packets % 4096 == 0 {
                progress(cap.position());
            }
        }
        progress(cap.position());
        let fs = FileStats::from_capture(&name, cap.stats());
        if fs.truncated || fs.corrupt {
            tracing::warn!(
                file = %name,
                offset = fs.stopped_at.unwrap_or(0),
                truncated = fs.truncated,
                "Capture ends in an incomplete or malformed record; processed up to there."
            );
        }
        self.stats.files.push(fs);
        Ok(())
    }
}

/// Opens every file first, so that a bad file is reported before any output is written.
pub fn open_all(paths: &[impl AsRef<Path>]) -> Result<Vec<CaptureFile>, CaptureError> {
    paths
        .iter()
        .map(|p| CaptureFile::open(p.as_ref()))
        .collect()
}

/// Runs files through one pipeline, in order, as one continuous capture. Returns the counters.
pub fn run(
    cfg: PipelineConfig,
    files: &mut [CaptureFile],
    emit: &mut impl FnMut(&IcsEvent),
    progress: &mut impl FnMut(usize, u64),
) -> Result<RunStats, CaptureError> {
    let mut p = Pipeline::new(cfg);
    let mut last: Arc<str> = Arc::from("");
    for (i, cap) in files.iter_mut().enumerate() {
        last = Arc::from(cap.path().to_string_lossy().as_ref());
        p.run_file(cap, emit, &mut |pos| progress(i, pos))?;
    }
    p.finish(&last, emit);
    Ok(p.stats.clone())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::synth::{modbus_plant, SynthConfig};

    /// Events (as text) and counters of a run over `frames`, with or without the fast path.
    fn run_frames(frames: &[(Timestamp, Vec<u8>)], no_fast: bool) -> (Vec<String>, String) {
        run_frames_with(frames, no_fast, false, PipelineConfig::default())
    }

    /// As `run_frames`, choosing the one-step decode and the flow table's lane apart.
    fn run_frames_with(
        frames: &[(Timestamp, Vec<u8>)],
        no_fast: bool,
        no_lane: bool,
        cfg: PipelineConfig,
    ) -> (Vec<String>, String) {
        let mut p = Pipeline::new(cfg);
        p.no_fast = no_fast;
        p.no_lane = no_lane;
        let file: Arc<str> = Arc::from("t.pcap");
        let mut out = Vec::new();
        for (i, (ts, f)) in frames.iter().enumerate() {
            let pkt = Packet {
                ts: *ts,
                link: LinkType::Ethernet,
                data: f,
                orig_len: f.len() as u32 + (i % 3 == 0) as u32 * 7,
                number: i as u64 + 1,
            };
            p.process(&file, &pkt, &mut |e| out.push(format!("{e:?}")));
        }
        p.finish(&file, &mut |e| out.push(format!("{e:?}")));
        let stats = format!("{:?} {:?}", p.stats(), p.flows.stats());
        (out, stats)
    }

    /// Frames of a Modbus plant, some changed so that the one-step decoder must decline them
    /// (VLAN tag, IPv6 EtherType, IP options, fragments, UDP and other protocols, cut frames).
    fn plant_with_odd_frames() -> Vec<(Timestamp, Vec<u8>)> {
        let cfg = SynthConfig {
            packets: 4_000,
            ..SynthConfig::default()
        };
        let mut frames = modbus_plant(&cfg);
        for (i, (_, f)) in frames.iter_mut().enumerate() {
            match i % 23 {
                1 => {
                    // 802.1Q tag.
                    f.splice(12..12, [0x81, 0x00, 0x00, 0x07]);
                }
                2 => f[12..14].copy_from_slice(&[0x86, 0xdd]),
                3 => {
                    // Four bytes of IP options (NOPs).
                    f.splice(34..34, [1, 1, 1, 1]);
                    f[14] = 0x46;
                    let tl = u16::from_be_bytes([f[16], f[17]]) + 4;
                    f[16..18].copy_from_slice(&tl.to_be_bytes());
                }
                4 => f[20] |= 0x20,
                5 => f[21] = 1,
                6 => f[23] = 17,
                7 => f[23] = 1,
                8 => f.truncate(40),
                9 => f.truncate(f.len().saturating_sub(3)),
                10 => f[46] = 0x40,
                11 => f[16..18].copy_from_slice(&[0, 0]),
                _ => {}
            }
        }
        frames
    }

    /// The latest time is the largest packet time whatever the order (backwards in time, within
    /// the second, across seconds, negative), and the sweep runs once per second of it.
    #[test]
    fn latest_time_and_sweeps_follow_the_largest_time() {
        let frames = modbus_plant(&SynthConfig {
            packets: 40,
            ..SynthConfig::default()
        });
        let times = [
            (-5, 7),
            (-5, 3),
            (-6, 900),
            (-5, 8),
            (0, 0),
            (2, 500),
            (2, 400),
            (1, 999),
            (2, 501),
            (2, 501),
            (5, 0),
            (4, 999_999_999),
        ];
        let mut p = Pipeline::new(PipelineConfig::default());
        let file: Arc<str> = Arc::from("t.pcap");
        let mut max: Option<Timestamp> = None;
        let mut sweeps = 0;
        for (i, &(secs, nanos)) in times.iter().enumerate() {
            let ts = Timestamp { secs, nanos };
            let f = &frames[i].1;
            let pkt = Packet {
                ts,
                link: LinkType::Ethernet,
                data: f,
                orig_len: f.len() as u32,
                number: i as u64 + 1,
            };
            let before = p.last_sweep;
            p.process(&file, &pkt, &mut |_| {});
            max = Some(max.map_or(ts, |m| m.max(ts)));
            // As the latest time was tracked before: the maximum, but starting from zero.
            let want = max.unwrap().max(Timestamp::default());
            assert_eq!(p.now, want, "packet {i}");
            if p.last_sweep != before {
                sweeps += 1;
                assert_eq!(p.last_sweep, Some(p.now));
            }
        }
        // The first packet (at the starting time, zero), then seconds 2 and 5.
        assert_eq!(sweeps, 3);
    }

    /// The one-step path of the common frame gives the same events and counters as the
    /// general decode path, on a plant's traffic with frames it must decline mixed in.
    #[test]
    fn fast_path_matches_general_path() {
        let plain = modbus_plant(&SynthConfig {
            packets: 2_000,
            ..SynthConfig::default()
        });
        let (ev, st) = run_frames(&plain, false);
        assert!(ev.len() > 100, "{}", ev.len());
        assert_eq!((ev, st), run_frames(&plain, true));
        let odd = plant_with_odd_frames();
        let (ev, st) = run_frames(&odd, false);
        assert!(!ev.is_empty());
        assert_eq!((ev, st.clone()), run_frames(&odd, true));
        for c in ["errors: {}", "fragments: 0", "udp: 0", "other_ip: 0"] {
            assert!(!st.contains(c), "{c} in {st}");
        }
    }

    /// The flow table's lane gives the same events and counters as the general flow path, on
    /// a plant's traffic, with odd frames mixed in, and with a memory budget so small that
    /// flows give up their buffers.
    #[test]
    fn lane_matches_general_flow_path() {
        let plain = modbus_plant(&SynthConfig {
            packets: 3_000,
            ..SynthConfig::default()
        });
        let odd = plant_with_odd_frames();
        let tight = PipelineConfig {
            flow: FlowConfig {
                memory_budget_bytes: 600,
                max_flows: 3,
                ..FlowConfig::default()
            },
        };
        for frames in [&plain, &odd] {
            for cfg in [PipelineConfig::default(), tight.clone()] {
                let lane = run_frames_with(frames, false, false, cfg.clone());
                assert!(!lane.0.is_empty());
                assert_eq!(lane, run_frames_with(frames, false, true, cfg));
            }
        }
    }
}
