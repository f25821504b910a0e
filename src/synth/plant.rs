//! A realistic, large, deterministic plant capture, streamed to a pcap writer.
//!
//! [`generate`] simulates a plant network: PLCs (10.0.1.x) serving Modbus/TCP on 502, every
//! fifth one also an OPC UA server on 4840, and masters (10.0.0.x) in three roles:
//!
//! - HMI: polls every PLC at its own period (200 ms–1 s): FC 3 reads of 10 holding registers,
//!   FC 1 reads of 16 coils, now and then an operator setpoint (FC 6); and holds an OPC UA
//!   session with every OPC UA server (Publish cycles with data changes, some Reads and Writes).
//! - historian: polls every PLC slowly (1–5 s, FC 3 of 40 registers and FC 4 of 20 input
//!   registers) and subscribes to every OPC UA server like the HMI.
//! - engineering station: connects to one PLC now and then, reads, writes a block of registers
//!   (FC 16) and a setpoint (FC 6), reads back, closes (FIN) and comes back later elsewhere.
//!
//! Process values evolve (slow triangle ramps plus noise). OPC UA sessions go through HEL/ACK,
//! OPN (security None), CreateSession, ActivateSession (anonymous), Read, CreateSubscription,
//! CreateMonitoredItems, Publish cycles, then CloseSession, CLO and FIN, and reconnect later.
//! The Publish interval is set so that OPC UA makes about [`PlantConfig::opcua_share`] of the
//! packets. Every TCP connection starts with a handshake. Loss (a Modbus response segment
//! missing from the capture) and reordering (a Modbus request sent as two segments, captured
//! in swapped order) are injected at the given rates. Frames are written in time order; the
//! same configuration always gives the same bytes.
//!
//! Offsets into the fixed-size header arrays are constants, so the indexing lint is relaxed
//! here as in the parent module.
#![allow(clippy::indexing_slicing)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};
use std::net::Ipv4Addr;

use super::Rng;

/// Shape of the generated plant capture.
#[derive(Clone, Debug)]
pub struct PlantConfig {
    /// Seed of the pseudo-random generator.
    pub seed: u64,
    /// Stop polling once this many packets are written (open connections are then closed).
    pub packets: u64,
    /// Stop polling after this much capture time, in microseconds (when set).
    pub duration_us: Option<i64>,
    /// Number of PLCs; every fifth one is also an OPC UA server.
    pub plcs: u16,
    /// Number of masters; roles cycle HMI, historian, engineering station, HMI, …
    pub masters: u16,
    /// Target share of OPC UA packets among all packets, 0.0–0.9.
    pub opcua_share: f64,
    /// Probability that a Modbus response segment is missing from the capture.
    pub loss: f64,
    /// Probability that a Modbus request is sent as two segments captured in swapped order.
    pub reorder: f64,
    /// Capture start, seconds since the epoch.
    pub start_secs: i64,
}

impl Default for PlantConfig {
    fn default() -> Self {
        PlantConfig {
            seed: 1,
            packets: 100_000,
            duration_us: None,
            plcs: 40,
            masters: 3,
            opcua_share: 0.15,
            loss: 0.0002,
            reorder: 0.0002,
            start_secs: 1_700_000_000,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlantSummary {
    /// Packets written.
    pub packets: u64,
    /// Bytes written, pcap headers included.
    pub bytes: u64,
    /// Packets carrying Modbus payload.
    pub modbus_packets: u64,
    /// Packets carrying OPC UA payload.
    pub opcua_packets: u64,
    /// Modbus ADUs in the capture (requests and responses, lost ones excluded).
    pub modbus_adus: u64,
    /// OPC UA messages in the capture.
    pub opcua_messages: u64,
    /// TCP connections opened (handshakes).
    pub connections: u64,
    /// Segments left out of the capture.
    pub lost_segments: u64,
    /// Segment pairs captured in swapped order.
    pub reordered: u64,
    /// Capture time covered, microseconds.
    pub span_us: i64,
}

const MODBUS_PORT: u16 = 502;
const OPCUA_PORT: u16 = 4840;
/// 100 ns ticks between 1601-01-01 and 1970-01-01 (OPC UA DateTime epoch).
const UA_EPOCH: i64 = 116_444_736_000_000_000;
const POLICY_NONE: &str = "http://opcfoundation.org/UA/SecurityPolicy#None";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Hmi,
    Historian,
    Engineering,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Modbus,
    OpcUa,
}

/// A PLC's process: registers that ramp slowly, setpoints written by masters.
#[derive(Clone, Debug)]
struct Plc {
    ip: Ipv4Addr,
    setpoints: [u16; 8],
    block: [u16; 4],
}

impl Plc {
    /// Register `k` at time `t_us`: a triangle ramp of its own period and amplitude, plus noise.
    fn register(&self, k: u32, t_us: i64, rng: &mut Rng) -> u16 {
        let o = u32::from(self.ip.octets()[3]);
        let base = 400 + (k * 37 + o * 11) % 400;
        let amp = 20 + (k * 13 + o) % 150;
        let period_s = 60 + i64::from((k * 97 + o * 7) % 600);
        let phase = (t_us / 1_000_000 + i64::from(o) * 17) % period_s;
        let half = period_s / 2;
        let tri = if phase < half {
            phase
        } else {
            period_s - phase
        };
        let ramp = (tri * i64::from(amp) / half.max(1)) as u32;
        (base + ramp + rng.below(4) as u32) as u16
    }
}

/// OPC UA session state of a connection.
#[derive(Clone, Debug, Default)]
struct Ua {
    channel: u32,
    token: u32,
    seq: [u32; 2],
    req_id: u32,
    handle: u32,
    auth: [u8; 16],
    sub_id: u32,
    notif_seq: u32,
    publishes_left: u32,
    outstanding: Option<u32>,
    nodes: u32,
}

#[derive(Clone, Debug)]
struct Conn {
    role: Role,
    proto: Proto,
    client: Ipv4Addr,
    plc: usize,
    sport: u16,
    seq: [u32; 2],
    open: bool,
    /// Step within the current connection's life.
    step: u32,
    tid: u16,
    period_us: i64,
    ua: Ua,
}

/// Frames waiting to be written in time order: (time µs, sequence) → frame.
struct Out<W: Write> {
    w: W,
    pending: BinaryHeap<Reverse<(i64, u64, usize)>>,
    slots: Vec<Vec<u8>>,
    free: Vec<usize>,
    counter: u64,
    sum: PlantSummary,
    first_us: Option<i64>,
    last_us: i64,
}

#[derive(Clone, Copy)]
enum Payload {
    None,
    Modbus,
    OpcUa,
}

impl<W: Write> Out<W> {
    fn push(&mut self, t: i64, frame_fn: impl FnOnce(&mut Vec<u8>), kind: Payload) {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Vec::with_capacity(256));
                self.slots.len() - 1
            }
        };
        let buf = &mut self.slots[slot];
        buf.clear();
        frame_fn(buf);
        match kind {
            Payload::None => {}
            Payload::Modbus => self.sum.modbus_packets += 1,
            Payload::OpcUa => self.sum.opcua_packets += 1,
        }
        self.counter += 1;
        self.pending.push(Reverse((t, self.counter, slot)));
    }

    /// Writes every pending frame up to time `until` (all when `None`).
    fn flush(&mut self, until: Option<i64>) -> io::Result<()> {
        while let Some(Reverse((t, _, slot))) = self.pending.peek().copied() {
            if until.is_some_and(|u| t > u) {
                break;
            }
            self.pending.pop();
            let f = &self.slots[slot];
            let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
            let mut rec = [0u8; 16];
            rec[0..4].copy_from_slice(&((t / 1_000_000) as u32).to_le_bytes());
            rec[4..8].copy_from_slice(&((t % 1_000_000) as u32).to_le_bytes());
            rec[8..12].copy_from_slice(&len.to_le_bytes());
            rec[12..16].copy_from_slice(&len.to_le_bytes());
            self.w.write_all(&rec)?;
            self.w.write_all(f)?;
            self.sum.packets += 1;
            self.sum.bytes += 16 + u64::from(len);
            self.first_us.get_or_insert(t);
            self.last_us = t;
            self.free.push(slot);
        }
        Ok(())
    }

    fn written_or_pending(&self) -> u64 {
        self.sum.packets + self.pending.len() as u64
    }
}

/// Generates the plant capture described by `cfg` as a classic little-endian microsecond pcap
/// (Ethernet) into `w`, streaming; returns what was written.
pub fn generate(cfg: &PlantConfig, w: impl Write) -> io::Result<PlantSummary> {
    let mut g = Gen::new(cfg);
    let mut out = Out {
        w,
        pending: BinaryHeap::new(),
        slots: Vec::new(),
        free: Vec::new(),
        counter: 0,
        sum: PlantSummary::default(),
        first_us: None,
        last_us: 0,
    };
    // The header alone.
    super::write_pcap(&mut out.w, &[])?;
    out.sum.bytes = 24;
    let start = cfg.start_secs * 1_000_000;
    let end = cfg.duration_us.map(|d| start + d);
    let mut last_t = start;
    while let Some(Reverse((t, i))) = g.sched.pop() {
        if out.written_or_pending() >= cfg.packets || end.is_some_and(|e| t > e) {
            break;
        }
        out.flush(Some(t))?;
        last_t = t;
        if let Some(next) = g.step(i, t, &mut out) {
            g.sched.push(Reverse((next, i)));
        }
    }
    // Close every open connection, in connection order.
    let mut t = last_t + 1000;
    for i in 0..g.conns.len() {
        if g.conns[i].open {
            t += 200;
            g.close(i, t, &mut out);
        }
    }
    out.flush(None)?;
    out.w.flush()?;
    let mut sum = out.sum;
    sum.connections = g.connections;
    sum.lost_segments = g.lost;
    sum.reordered = g.reordered;
    sum.modbus_adus = g.modbus_adus;
    sum.opcua_messages = g.ua_messages;
    sum.span_us = out.last_us - out.first_us.unwrap_or(out.last_us);
    Ok(sum)
}

struct Gen {
    rng: Rng,
    plcs: Vec<Plc>,
    conns: Vec<Conn>,
    sched: BinaryHeap<Reverse<(i64, usize)>>,
    next_port: u16,
    next_channel: u32,
    publish_us: i64,
    loss: u64,
    reorder: u64,
    connections: u64,
    lost: u64,
    reordered: u64,
    modbus_adus: u64,
    ua_messages: u64,
}

/// Probability in parts per million.
fn ppm(p: f64) -> u64 {
    (p.clamp(0.0, 1.0) * 1e6) as u64
}

impl Gen {
    fn new(cfg: &PlantConfig) -> Gen {
        let rng = Rng(cfg.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).max(1));
        let plcs: Vec<Plc> = (0..cfg.plcs.max(1))
            .map(|p| Plc {
                ip: Ipv4Addr::new(10, 0, 1 + (p / 250) as u8, (1 + p % 250) as u8),
                setpoints: [500; 8],
                block: [0; 4],
            })
            .collect();
        let mut g = Gen {
            rng,
            plcs,
            conns: Vec::new(),
            sched: BinaryHeap::new(),
            next_port: 40_000,
            next_channel: 1,
            publish_us: 1_000_000,
            loss: ppm(cfg.loss),
            reorder: ppm(cfg.reorder),
            connections: 0,
            lost: 0,
            reordered: 0,
            modbus_adus: 0,
            ua_messages: 0,
        };
        let start = cfg.start_secs * 1_000_000;
        // Modbus packets per second, to size the OPC UA Publish interval.
        let mut modbus_pps = 0.0f64;
        let mut ua_conns = 0u32;
        for m in 0..cfg.masters.max(1) {
            let role = match m % 3 {
                0 => Role::Hmi,
                1 => Role::Historian,
                _ => Role::Engineering,
            };
            let client = Ipv4Addr::new(10, 0, 0, (10 + m % 240) as u8);
            if role == Role::Engineering {
                let plc = g.rng.below(g.plcs.len() as u64) as usize;
                g.add_conn(role, Proto::Modbus, client, plc, 150_000, start);
                continue;
            }
            for p in 0..g.plcs.len() {
                let period_ms: i64 = match role {
                    Role::Hmi => [200, 250, 500, 1000][g.rng.below(4) as usize],
                    _ => [1000, 2000, 5000][g.rng.below(3) as usize],
                };
                modbus_pps += 2.25 * 1000.0 / period_ms as f64;
                g.add_conn(role, Proto::Modbus, client, p, period_ms * 1000, start);
                if p % 5 == 0 && cfg.opcua_share > 0.0 {
                    g.add_conn(role, Proto::OpcUa, client, p, 0, start);
                    ua_conns += 1;
                }
            }
        }
        if ua_conns > 0 {
            let share = cfg.opcua_share.clamp(0.0, 0.9);
            let ua_pps = modbus_pps * share / (1.0 - share);
            // A Publish cycle is a request and its response (ACK-only segments are not OPC UA
            // packets); Reads, Writes and session churn add about 5 % on top.
            let per_conn = ua_pps / f64::from(ua_conns) / (2.0 * 1.05);
            g.publish_us = ((1e6 / per_conn.max(1e-3)) as i64).clamp(20_000, 600_000_000);
        }
        g
    }

    fn add_conn(
        &mut self,
        role: Role,
        proto: Proto,
        client: Ipv4Addr,
        plc: usize,
        period_us: i64,
        start: i64,
    ) {
        let sport = self.port();
        let i = self.conns.len();
        self.conns.push(Conn {
            role,
            proto,
            client,
            plc,
            sport,
            seq: [0, 0],
            open: false,
            step: 0,
            tid: 0,
            period_us,
            ua: Ua::default(),
        });
        let first = start + self.rng.below(1_000_000) as i64;
        self.sched.push(Reverse((first, i)));
    }

    fn port(&mut self) -> u16 {
        let p = self.next_port;
        self.next_port = if p >= 60_999 { 40_000 } else { p + 1 };
        p
    }

    fn rtt(&mut self) -> i64 {
        300 + self.rng.below(1500) as i64
    }

    /// Runs connection `i`'s next step at time `t`; returns when it next runs.
    fn step<W: Write>(&mut self, i: usize, t: i64, out: &mut Out<W>) -> Option<i64> {
        if !self.conns[i].open {
            self.handshake(i, t, out);
            return Some(t + 2_000 + self.rng.below(3_000) as i64);
        }
        match self.conns[i].proto {
            Proto::Modbus => self.modbus_step(i, t, out),
            Proto::OpcUa => self.ua_step(i, t, out),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn frame<W: Write>(
        &self,
        out: &mut Out<W>,
        i: usize,
        from: usize,
        flags: u8,
        payload: &[u8],
        t: i64,
        kind: Payload,
    ) {
        let c = &self.conns[i];
        let dport = match c.proto {
            Proto::Modbus => MODBUS_PORT,
            Proto::OpcUa => OPCUA_PORT,
        };
        let server = self.plcs[c.plc].ip;
        let (src, dst, sp, dp) = if from == 0 {
            (c.client, server, c.sport, dport)
        } else {
            (server, c.client, dport, c.sport)
        };
        let seq = c.seq[from];
        let ack = if flags & 0x10 != 0 {
            c.seq[1 - from]
        } else {
            0
        };
        out.push(
            t,
            |f| tcp_frame(f, src, dst, sp, dp, seq, ack, flags, payload),
            kind,
        );
    }

    fn handshake<W: Write>(&mut self, i: usize, t: i64, out: &mut Out<W>) {
        let isn = [self.rng.next() as u32, self.rng.next() as u32];
        let rtt = self.rtt();
        self.conns[i].seq = isn;
        self.frame(out, i, 0, 0x02, &[], t, Payload::None);
        self.conns[i].seq[0] = isn[0].wrapping_add(1);
        self.frame(out, i, 1, 0x12, &[], t + rtt, Payload::None);
        self.conns[i].seq[1] = isn[1].wrapping_add(1);
        self.frame(out, i, 0, 0x10, &[], t + rtt + 40, Payload::None);
        let c = &mut self.conns[i];
        c.open = true;
        c.step = 0;
        self.connections += 1;
    }

    /// FIN from the client, FIN from the server, last ACK.
    fn close<W: Write>(&mut self, i: usize, t: i64, out: &mut Out<W>) {
        let rtt = self.rtt();
        self.frame(out, i, 0, 0x11, &[], t, Payload::None);
        self.conns[i].seq[0] = self.conns[i].seq[0].wrapping_add(1);
        self.frame(out, i, 1, 0x11, &[], t + rtt, Payload::None);
        self.conns[i].seq[1] = self.conns[i].seq[1].wrapping_add(1);
        self.frame(out, i, 0, 0x10, &[], t + rtt + 40, Payload::None);
        self.conns[i].open = false;
    }

    /// A request from the client at `t` and its response after a round trip; the client ACKs
    /// every fourth response on its own. Returns the response time.
    fn exchange<W: Write>(
        &mut self,
        i: usize,
        t: i64,
        req: &[u8],
        rsp: &[u8],
        kind: Payload,
        out: &mut Out<W>,
    ) -> i64 {
        let rtt = self.rtt();
        let modbus = matches!(kind, Payload::Modbus);
        if modbus && req.len() > 8 && self.rng.below(1_000_000) < self.reorder {
            // Two segments, the second captured first.
            let (a, b) = req.split_at(6);
            let s0 = self.conns[i].seq[0];
            self.conns[i].seq[0] = s0.wrapping_add(a.len() as u32);
            self.frame(out, i, 0, 0x18, b, t, kind);
            self.conns[i].seq[0] = s0;
            self.frame(out, i, 0, 0x10, a, t + 30, kind);
            self.reordered += 1;
        } else {
            self.frame(out, i, 0, 0x18, req, t, kind);
        }
        self.conns[i].seq[0] = self.conns[i].seq[0].wrapping_add(req.len() as u32);
        if modbus && self.rng.below(1_000_000) < self.loss {
            self.lost += 1;
            self.modbus_adus -= 1;
        } else {
            self.frame(out, i, 1, 0x18, rsp, t + rtt, kind);
        }
        self.conns[i].seq[1] = self.conns[i].seq[1].wrapping_add(rsp.len() as u32);
        self.conns[i].step += 1;
        if self.conns[i].step % 4 == 0 {
            self.frame(out, i, 0, 0x10, &[], t + rtt + 40, Payload::None);
        }
        t + rtt
    }

    fn modbus_step<W: Write>(&mut self, i: usize, t: i64, out: &mut Out<W>) -> Option<i64> {
        let c = &mut self.conns[i];
        c.tid = c.tid.wrapping_add(1);
        let (tid, step, role, p) = (c.tid, c.step, c.role, c.plc);
        let mut req = Vec::with_capacity(32);
        let mut rsp = Vec::with_capacity(96);
        let unit = 1u8;
        let mut next = t + self.conns[i].period_us + self.rng.below(2_000) as i64;
        match role {
            Role::Hmi => match step % 10 {
                3 | 7 => {
                    req.extend_from_slice(&[1, 0, 0, 0, 16]);
                    let bits = (t / 7_000_000) as u16 ^ (p as u16).wrapping_mul(0x9d);
                    rsp.extend_from_slice(&[1, 2]);
                    rsp.extend_from_slice(&bits.to_le_bytes());
                }
                9 if self.rng.below(20) == 0 => {
                    // An operator nudges a setpoint.
                    let k = self.rng.below(8) as usize;
                    let sp = &mut self.plcs[p].setpoints[k];
                    *sp = (i32::from(*sp) + self.rng.below(21) as i32 - 10).clamp(400, 600) as u16;
                    req.extend_from_slice(&[6, 0, 40 + k as u8]);
                    req.extend_from_slice(&sp.to_be_bytes());
                    rsp.clone_from(&req);
                }
                _ => self.read_regs(p, 3, 0, 10, t, &mut req, &mut rsp),
            },
            Role::Historian => {
                if step % 2 == 0 {
                    self.read_regs(p, 3, 0, 40, t, &mut req, &mut rsp);
                } else {
                    self.read_regs(p, 4, 100, 20, t, &mut req, &mut rsp);
                }
            }
            Role::Engineering => {
                next = t + 100_000 + self.rng.below(200_000) as i64;
                match step {
                    0 | 3 => self.read_regs(p, 3, 200, 4, t, &mut req, &mut rsp),
                    1 => {
                        let plc = &mut self.plcs[p];
                        for (k, v) in plc.block.iter_mut().enumerate() {
                            *v = v.wrapping_add(1 + k as u16);
                        }
                        req.extend_from_slice(&[16, 0, 200, 0, 4, 8]);
                        for v in plc.block {
                            req.extend_from_slice(&v.to_be_bytes());
                        }
                        rsp.extend_from_slice(&[16, 0, 200, 0, 4]);
                    }
                    2 => {
                        let sp = &mut self.plcs[p].setpoints[0];
                        *sp = 450 + self.rng.below(100) as u16;
                        req.extend_from_slice(&[6, 0, 40]);
                        req.extend_from_slice(&sp.to_be_bytes());
                        rsp.clone_from(&req);
                    }
                    _ => {
                        // Done: close, come back later to another PLC.
                        self.close(i, t, out);
                        let plc = self.rng.below(self.plcs.len() as u64) as usize;
                        let port = self.port();
                        let c = &mut self.conns[i];
                        c.plc = plc;
                        c.sport = port;
                        return Some(t + 30_000_000 + self.rng.below(90_000_000) as i64);
                    }
                }
            }
        }
        let req = mbap(tid, unit, &req);
        let rsp = mbap(tid, unit, &rsp);
        self.modbus_adus += 2;
        self.exchange(i, t, &req, &rsp, Payload::Modbus, out);
        Some(next)
    }

    #[allow(clippy::too_many_arguments)]
    fn read_regs(
        &mut self,
        p: usize,
        fc: u8,
        addr: u16,
        n: u16,
        t: i64,
        req: &mut Vec<u8>,
        rsp: &mut Vec<u8>,
    ) {
        req.push(fc);
        req.extend_from_slice(&addr.to_be_bytes());
        req.extend_from_slice(&n.to_be_bytes());
        rsp.extend_from_slice(&[fc, (n * 2) as u8]);
        for k in 0..u32::from(n) {
            let v = match u32::from(addr) + k {
                a @ 40..=47 if fc == 3 => self.plcs[p].setpoints[(a - 40) as usize],
                a @ 200..=203 if fc == 3 => self.plcs[p].block[(a - 200) as usize],
                a => self.plcs[p].register(a, t, &mut self.rng),
            };
            rsp.extend_from_slice(&v.to_be_bytes());
        }
    }

    /// Sends one OPC UA request/response pair on connection `i`.
    fn ua_pair<W: Write>(
        &mut self,
        i: usize,
        t: i64,
        req: &[u8],
        rsp: &[u8],
        out: &mut Out<W>,
    ) -> i64 {
        self.ua_messages += 2;
        self.exchange(i, t, req, rsp, Payload::OpcUa, out)
    }

    fn ua_step<W: Write>(&mut self, i: usize, t: i64, out: &mut Out<W>) -> Option<i64> {
        let step = self.conns[i].step;
        let p = self.conns[i].plc;
        let soon = t + 2_500 + self.rng.below(4_000) as i64;
        let ts = t;
        match step {
            0 => {
                let url = format!("opc.tcp://{}:4840", self.plcs[p].ip);
                let hel = ua_hel(&url);
                let ack = ua_ack();
                self.ua_pair(i, t, &hel, &ack, out);
                Some(soon)
            }
            1 => {
                let ch = self.next_channel;
                self.next_channel = self.next_channel.wrapping_add(1).max(1);
                let ua = &mut self.conns[i].ua;
                *ua = Ua {
                    channel: ch,
                    token: 1,
                    seq: [2, 2],
                    req_id: 1,
                    handle: 1,
                    auth: [0; 16],
                    sub_id: 0,
                    notif_seq: 0,
                    publishes_left: 0,
                    outstanding: None,
                    nodes: 6 + (p as u32 % 10),
                };
                let req = ua_opn_req(ts);
                let rsp = ua_opn_rsp(ch, 1, ts);
                self.ua_pair(i, t, &req, &rsp, out);
                Some(soon)
            }
            _ => {
                let phase = step - 2;
                let (req, rsp, next) = self.ua_service(i, phase, t)?;
                self.ua_pair(i, t, &req, &rsp, out);
                if let Some(n) = next {
                    return Some(n);
                }
                // Session over: CLO, FIN, reconnect later.
                let ua = &mut self.conns[i].ua;
                let (ch, tok, seq, rid) = (ua.channel, ua.token, ua.seq[0], ua.req_id);
                let mut body = Enc::new();
                body.node4(452);
                body.req_header(None, ts, 0);
                let clo = ua_msg(b"CLO", ch, tok, seq, rid, &body.0);
                let t2 = t + 5_000;
                self.frame(out, i, 0, 0x18, &clo, t2, Payload::OpcUa);
                self.ua_messages += 1;
                self.conns[i].seq[0] = self.conns[i].seq[0].wrapping_add(clo.len() as u32);
                self.close(i, t2 + 1_000, out);
                let port = self.port();
                self.conns[i].sport = port;
                Some(t + 5_000_000 + self.rng.below(25_000_000) as i64)
            }
        }
    }

    /// The session's request and response at `phase` (0 = CreateSession), and when the
    /// connection runs next (`None` once the session is closed).
    fn ua_service(
        &mut self,
        i: usize,
        phase: u32,
        t: i64,
    ) -> Option<(Vec<u8>, Vec<u8>, Option<i64>)> {
        let soon = t + 2_500 + self.rng.below(4_000) as i64;
        let jitter = self.rng.below(self.publish_us as u64 / 20 + 1) as i64;
        let publish_next = t + self.publish_us + jitter;
        let p = self.conns[i].plc;
        let role = self.conns[i].role;
        let noise = self.rng.next();
        let write_now = self.rng.below(60) == 0;
        let read_now = self.rng.below(25) == 0;
        let lifetime = 100 + self.rng.below(900) as u32;
        let plc = self.plcs[p].clone();
        let ua = &mut self.conns[i].ua;
        let handle = ua.handle;
        ua.handle = ua.handle.wrapping_add(1);
        let rid = ua.req_id.wrapping_add(1);
        ua.req_id = rid;
        let ts = t;
        let rts = t + 700;
        let mut q = Enc::new();
        let mut r = Enc::new();
        let auth = ua.auth;
        let mut next = Some(soon);
        match phase {
            0 => {
                // CreateSession.
                q.node4(461);
                q.req_header(None, ts, handle);
                q.string(Some(match role {
                    Role::Hmi => "urn:plant:hmi",
                    _ => "urn:plant:historian",
                }));
                q.string(None);
                q.u8(0x02);
                q.string(Some("plant client"));
                q.u32(1);
                q.string(None);
                q.string(None);
                q.i32(-1);
                q.string(None);
                q.string(Some(&format!("opc.tcp://{}:4840", plc.ip)));
                q.string(Some("session"));
                q.bytes(&noise.to_le_bytes().repeat(4));
                q.i32(-1);
                q.f64(1_200_000.0);
                q.u32(0x7fff_ffff);
                let mut auth = [0u8; 16];
                auth[..8].copy_from_slice(&noise.to_be_bytes());
                auth[8..12].copy_from_slice(&ua.channel.to_le_bytes());
                auth[12] = 0x4a;
                ua.auth = auth;
                r.node4(464);
                r.resp_header(rts, handle, 0);
                r.guid_node(
                    1,
                    &[
                        auth[15], 0x11, 0x22, 0x33, auth[3], 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                    ],
                );
                r.guid_node(1, &auth);
                r.f64(1_200_000.0);
                r.bytes(&noise.rotate_left(7).to_le_bytes().repeat(4));
                r.i32(-1); // server certificate
                r.i32(0); // server endpoints
                r.i32(-1); // software certificates
                r.string(None); // signature algorithm
                r.i32(-1); // signature
                r.u32(0x0100_0000);
            }
            1 => {
                // ActivateSession, anonymous.
                q.node4(467);
                q.req_header(Some(&auth), ts, handle);
                q.string(None);
                q.i32(-1);
                q.i32(-1);
                q.i32(1);
                q.string(Some("en"));
                let mut tok = Enc::new();
                tok.string(Some("anonymous"));
                q.node4(321);
                q.u8(1);
                q.bytes(&tok.0);
                q.string(None);
                q.i32(-1);
                r.node4(470);
                r.resp_header(rts, handle, 0);
                r.bytes(&noise.rotate_left(13).to_le_bytes().repeat(4));
                r.i32(-1);
                r.i32(-1);
            }
            2 => {
                // Read the server status and namespace array.
                q.node4(631);
                q.req_header(Some(&auth), ts, handle);
                q.f64(0.0);
                q.u32(2);
                q.i32(2);
                for id in [2259u16, 2255] {
                    q.node4(id);
                    q.u32(13);
                    q.string(None);
                    q.u16(0);
                    q.string(None);
                }
                r.node4(634);
                r.resp_header(rts, handle, 0);
                r.i32(2);
                r.u8(0x01);
                r.u8(0x06);
                r.i32(0); // state Running
                r.u8(0x01);
                r.u8(0x0c | 0x80);
                r.i32(2);
                r.string(Some("http://opcfoundation.org/UA/"));
                r.string(Some("urn:plant:plc"));
                r.i32(-1);
            }
            3 => {
                q.node4(787);
                q.req_header(Some(&auth), ts, handle);
                q.f64(self.publish_us as f64 / 1000.0);
                q.u32(10_000);
                q.u32(10);
                q.u32(0);
                q.u8(1);
                q.u8(0);
                ua.sub_id = 1000 + ua.channel;
                r.node4(790);
                r.resp_header(rts, handle, 0);
                r.u32(ua.sub_id);
                r.f64(self.publish_us as f64 / 1000.0);
                r.u32(10_000);
                r.u32(10);
            }
            4 => {
                q.node4(751);
                q.req_header(Some(&auth), ts, handle);
                q.u32(ua.sub_id);
                q.u32(2);
                q.i32(ua.nodes as i32);
                r.node4(754);
                r.resp_header(rts, handle, 0);
                r.i32(ua.nodes as i32);
                for k in 0..ua.nodes {
                    q.string_node(2, &tag(p, k));
                    q.u32(13);
                    q.string(None);
                    q.u16(0);
                    q.string(None);
                    q.u32(2);
                    q.u32(k + 1);
                    q.f64(250.0);
                    q.node2(0);
                    q.u8(0);
                    q.u32(1);
                    q.u8(1);
                    r.u32(0);
                    r.u32(k + 1);
                    r.f64(250.0);
                    r.u32(1);
                    r.node2(0);
                    r.u8(0);
                }
                r.i32(-1);
                ua.publishes_left = lifetime;
                // The first Publish request waits at the server.
                ua.outstanding = None;
                next = Some(t + 2_000);
            }
            _ if ua.publishes_left == 0 => {
                q.node4(473);
                q.req_header(Some(&auth), ts, handle);
                q.u8(1);
                r.node4(476);
                r.resp_header(rts, handle, 0);
                next = None;
            }
            _ if read_now && ua.outstanding.is_some() => {
                // An operator screen reads a few tags.
                let n = 3u32;
                q.node4(631);
                q.req_header(Some(&auth), ts, handle);
                q.f64(0.0);
                q.u32(0);
                q.i32(n as i32);
                r.node4(634);
                r.resp_header(rts, handle, 0);
                r.i32(n as i32);
                for k in 0..n {
                    q.string_node(2, &tag(p, k));
                    q.u32(13);
                    q.string(None);
                    q.u16(0);
                    q.string(None);
                    r.u8(0x05);
                    r.u8(0x0b);
                    r.f64(tag_value(&plc, k, t, noise));
                    r.i64(UA_EPOCH + t * 10);
                }
                r.i32(-1);
                next = Some(t + 50_000 + self.rng.below(self.publish_us as u64 / 2 + 1) as i64);
            }
            _ if write_now && role == Role::Hmi && ua.outstanding.is_some() => {
                q.node4(673);
                q.req_header(Some(&auth), ts, handle);
                q.i32(1);
                q.string_node(2, &format!("PLC{p}.Setpoint"));
                q.u32(13);
                q.string(None);
                q.u8(0x01);
                q.u8(0x0b);
                q.f64(f64::from(plc.setpoints[0]) / 10.0);
                r.node4(676);
                r.resp_header(rts, handle, 0);
                r.i32(1);
                r.u32(0);
                r.i32(-1);
                next = Some(t + 50_000 + self.rng.below(self.publish_us as u64 / 2 + 1) as i64);
            }
            _ => {
                // The server answers the outstanding Publish with data changes; the client
                // sends the next Publish acknowledging it.
                ua.publishes_left -= 1;
                let prev_ack = ua.notif_seq;
                ua.notif_seq += 1;
                q.node4(826);
                q.req_header(Some(&auth), ts, handle);
                if prev_ack == 0 {
                    q.i32(-1);
                } else {
                    q.i32(1);
                    q.u32(ua.sub_id);
                    q.u32(prev_ack);
                }
                let changes = 1 + (noise % u64::from(ua.nodes)) as u32;
                let mut dcn = Enc::new();
                dcn.i32(changes as i32);
                for k in 0..changes {
                    dcn.u32(k + 1);
                    dcn.u8(0x0d);
                    dcn.u8(0x0b);
                    dcn.f64(tag_value(&plc, k, t, noise >> (k % 32)));
                    dcn.i64(UA_EPOCH + (t - 300) * 10);
                    dcn.i64(UA_EPOCH + (t - 200) * 10);
                }
                dcn.i32(-1);
                r.node4(829);
                r.resp_header(rts, handle, 0);
                r.u32(ua.sub_id);
                r.i32(1);
                r.u32(ua.notif_seq);
                r.u8(0);
                r.u32(ua.notif_seq);
                r.i64(UA_EPOCH + rts * 10);
                r.i32(1);
                r.node4(811);
                r.u8(1);
                r.bytes(&dcn.0);
                r.i32(-1);
                r.i32(-1);
                ua.outstanding = Some(handle);
                next = Some(publish_next);
            }
        }
        // Both directions: the server's response gets the next server sequence number and
        // the request's id.
        let (ch, tok) = (ua.channel, ua.token);
        let req = ua_msg(b"MSG", ch, tok, ua.seq[0], rid, &q.0);
        let rsp = ua_msg(b"MSG", ch, tok, ua.seq[1], rid, &r.0);
        ua.seq[0] = ua.seq[0].wrapping_add(1);
        ua.seq[1] = ua.seq[1].wrapping_add(1);
        Some((req, rsp, next))
    }
}

fn tag(p: usize, k: u32) -> String {
    const NAMES: [&str; 8] = [
        "Level", "Flow", "Pressure", "Temp", "Valve", "Pump", "Speed", "Power",
    ];
    format!("PLC{p}.{}{}", NAMES[(k % 8) as usize], k / 8)
}

fn tag_value(plc: &Plc, k: u32, t: i64, noise: u64) -> f64 {
    let mut r = Rng(noise | 1);
    f64::from(plc.register(k, t, &mut r)) / 10.0
}

/// Little-endian OPC UA binary encoder.
struct Enc(Vec<u8>);

impl Enc {
    fn new() -> Enc {
        Enc(Vec::with_capacity(128))
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.bytes(s.as_bytes()),
            None => self.i32(-1),
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    /// Two-byte node id (namespace 0, id < 256).
    fn node2(&mut self, id: u8) {
        self.0.extend_from_slice(&[0x00, id]);
    }
    /// Four-byte node id, namespace 0.
    fn node4(&mut self, id: u16) {
        self.u8(0x01);
        self.u8(0);
        self.u16(id);
    }
    fn string_node(&mut self, ns: u16, s: &str) {
        self.u8(0x03);
        self.u16(ns);
        self.string(Some(s));
    }
    fn guid_node(&mut self, ns: u16, g: &[u8; 16]) {
        self.u8(0x04);
        self.u16(ns);
        self.0.extend_from_slice(g);
    }
    fn req_header(&mut self, auth: Option<&[u8; 16]>, t: i64, handle: u32) {
        match auth {
            Some(g) => self.guid_node(1, g),
            None => self.node2(0),
        }
        self.i64(UA_EPOCH + t * 10);
        self.u32(handle);
        self.u32(0);
        self.string(None);
        self.u32(10_000);
        self.node2(0);
        self.u8(0);
    }
    fn resp_header(&mut self, t: i64, handle: u32, status: u32) {
        self.i64(UA_EPOCH + t * 10);
        self.u32(handle);
        self.u32(status);
        self.u8(0);
        self.i32(-1);
        self.node2(0);
        self.u8(0);
    }
}

fn ua_hel(url: &str) -> Vec<u8> {
    let mut e = Enc::new();
    e.0.extend_from_slice(b"HELF\0\0\0\0");
    e.u32(0);
    e.u32(65_535);
    e.u32(65_535);
    e.u32(0);
    e.u32(0);
    e.string(Some(url));
    let n = e.0.len() as u32;
    e.0[4..8].copy_from_slice(&n.to_le_bytes());
    e.0
}

fn ua_ack() -> Vec<u8> {
    let mut e = Enc::new();
    e.0.extend_from_slice(b"ACKF");
    e.u32(28);
    e.u32(0);
    e.u32(65_535);
    e.u32(65_535);
    e.u32(0);
    e.u32(0);
    e.0
}

fn ua_opn(channel: u32, body: &[u8]) -> Vec<u8> {
    let mut e = Enc::new();
    e.0.extend_from_slice(b"OPNF\0\0\0\0");
    e.u32(channel);
    e.string(Some(POLICY_NONE));
    e.i32(-1);
    e.i32(-1);
    e.u32(1);
    e.u32(1);
    e.0.extend_from_slice(body);
    let n = e.0.len() as u32;
    e.0[4..8].copy_from_slice(&n.to_le_bytes());
    e.0
}

fn ua_opn_req(t: i64) -> Vec<u8> {
    let mut b = Enc::new();
    b.node4(446);
    b.req_header(None, t, 0);
    b.u32(0);
    b.u32(0);
    b.u32(1);
    b.i32(-1);
    b.u32(600_000);
    ua_opn(0, &b.0)
}

fn ua_opn_rsp(channel: u32, token: u32, t: i64) -> Vec<u8> {
    let mut b = Enc::new();
    b.node4(449);
    b.resp_header(t + 500, 0, 0);
    b.u32(0);
    b.u32(channel);
    b.u32(token);
    b.i64(UA_EPOCH + t * 10);
    b.u32(600_000);
    b.i32(-1);
    ua_opn(channel, &b.0)
}

fn ua_msg(kind: &[u8; 3], channel: u32, token: u32, seq: u32, rid: u32, body: &[u8]) -> Vec<u8> {
    let mut e = Enc(Vec::with_capacity(24 + body.len()));
    e.0.extend_from_slice(kind);
    e.u8(b'F');
    e.u32((24 + body.len()) as u32);
    e.u32(channel);
    e.u32(token);
    e.u32(seq);
    e.u32(rid);
    e.0.extend_from_slice(body);
    e.0
}

fn mbap(tid: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(7 + pdu.len());
    v.extend_from_slice(&tid.to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes());
    v.push(unit);
    v.extend_from_slice(pdu);
    v
}

/// Appends an Ethernet/IPv4/TCP frame with valid checksums to `f`.
#[allow(clippy::too_many_arguments)]
fn tcp_frame(
    f: &mut Vec<u8>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sp: u16,
    dp: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) {
    let spec = super::TcpSpec {
        src: (src, sp),
        dst: (dst, dp),
        seq,
        ack,
        flags,
    };
    super::tcp_frame_into(f, &spec, payload);
}
