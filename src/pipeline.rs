//! The wiring: capture → decode → flows → protocol parsers → events.
//!
//! [`Pipeline`] is plain synchronous code: one call per packet, no allocation on the common
//! path beyond what parsers keep, no logging per packet. Events come out through a callback in
//! the order the transactions complete, so the same input always gives the same output.

use crate::capture::{CaptureError, CaptureFile, Packet};
use crate::decode::{decode, Transport};
use crate::event::{Endpoint, IcsEvent};
use crate::flow::{Chunk, Direction, EndReason, Flow, FlowConfig, FlowL4, FlowMeta, FlowPacket};
use crate::flow::{FlowSink, FlowTable};
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
    events: Vec<IcsEvent>,
    /// Capture time of the last idle-flow sweep.
    last_sweep: Option<Timestamp>,
    /// Latest capture time seen (captures are not always in time order).
    now: Timestamp,
    /// Number of the last packet processed, in its file. Data that reassembly flushes at the end
    /// of the capture (held back behind a hole) is credited to it: evidence always names a real
    /// packet, never packet 0.
    last_packet: u64,
}

/// Routes flow-table output into the per-flow protocol drivers.
struct Sink<'a> {
    ts: Timestamp,
    file: &'a Arc<str>,
    packet: u64,
    events: &'a mut Vec<IcsEvent>,
    proto: &'a mut ProtoStats,
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
    fn on_chunk(&mut self, meta: &FlowMeta, app: &mut StreamDriver, dir: Direction, c: Chunk<'_>) {
        let mut cx = self.cx(meta);
        match c {
            Chunk::Data(d) => app.on_data(dir, d, &mut cx),
            Chunk::Gap(n) => app.on_gap(dir, n, &mut cx),
            Chunk::Fin | Chunk::Rst => {}
        }
    }

    fn on_datagram(&mut self, _: &FlowMeta, _: &mut StreamDriver, _: Direction, _: &[u8]) {}

    fn on_end(&mut self, mut flow: Flow<StreamDriver>, _reason: EndReason) {
        let mut cx = self.cx(&flow.meta);
        flow.app.on_close(&mut cx);
    }
}

/// How often (capture seconds) idle flows are swept.
const SWEEP_INTERVAL_SECS: i64 = 1;

impl Pipeline {
    /// A pipeline with empty state.
    pub fn new(cfg: PipelineConfig) -> Self {
        Pipeline {
            flows: FlowTable::new(cfg.flow),
            stats: RunStats::default(),
            events: Vec::new(),
            last_sweep: None,
            now: Timestamp::default(),
            last_packet: 0,
        }
    }

    /// Counters so far (flow counters are complete after [`Pipeline::finish`]).
    pub fn stats(&self) -> &RunStats {
        &self.stats
    }

    /// Runs one packet through decode, flows and parsers. Events completed by it are passed
    /// to `emit`.
    pub fn process(&mut self, file: &Arc<str>, pkt: &Packet<'_>, emit: &mut impl FnMut(&IcsEvent)) {
        self.stats.packets += 1;
        self.last_packet = pkt.number;
        self.stats.bytes += pkt.data.len() as u64;
        if pkt.ts > self.now {
            self.now = pkt.ts;
        }
        let d = decode(pkt.link, pkt.data, pkt.orig_len);
        let ds = &mut self.stats.decode;
        *ds.link_types.entry(pkt.link).or_insert(0) += 1;
        if (pkt.data.len() as u64) < u64::from(pkt.orig_len) {
            ds.snaplen_cut += 1;
        }
        if let Some(e) = d.error {
            *ds.errors.entry(e.kind).or_insert(0) += 1;
        }
        let mut sink = Sink {
            ts: pkt.ts,
            file,
            packet: pkt.number,
            events: &mut self.events,
            proto: &mut self.stats.proto,
        };
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
                    self.flows.process(&fp, StreamDriver::new, &mut sink);
                }
            }
        }
        let due = match self.last_sweep {
            None => true,
            Some(t) => self.now.secs - t.secs >= SWEEP_INTERVAL_SECS,
        };
        if due {
            self.last_sweep = Some(self.now);
            sink.ts = self.now;
            self.flows.expire(self.now, &mut sink);
        }
        self.flush_events(emit);
    }

    fn flush_events(&mut self, emit: &mut impl FnMut(&IcsEvent)) {
        self.stats.events += self.events.len() as u64;
        for e in self.events.drain(..) {
            emit(&e);
        }
    }

    /// Ends every flow (end of input), emitting what their parsers still hold.
    pub fn finish(&mut self, file: &Arc<str>, emit: &mut impl FnMut(&IcsEvent)) {
        let mut sink = Sink {
            ts: self.now,
            file,
            packet: self.last_packet,
            events: &mut self.events,
            proto: &mut self.stats.proto,
        };
        self.flows.drain(&mut sink);
        self.stats.flows = self.flows.stats().clone();
        self.flush_events(emit);
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
        let mut n: u64 = 0;
        while let Some(pkt) = cap.next_packet()? {
            self.process(&name, &pkt, emit);
            n += 1;
            if n % 4096 == 0 {
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
