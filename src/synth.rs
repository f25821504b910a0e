//! Deterministic synthetic plant traffic, for benchmarks and scale tests.
//!
//! [`modbus_plant`] builds Ethernet/IPv4/TCP frames of Modbus masters polling PLCs at their own
//! periods (handshake, read holding registers, read coils, occasional setpoint writes with
//! evolving values), in time order; [`write_pcap`] stores them as a classic pcap. The same
//! [`SynthConfig`] always gives the same bytes.
//!
//! This module reads no input from the wire or a file: its indexing is into fixed-size arrays
//! with constant offsets, so the indexing lint is relaxed here only.
#![allow(clippy::indexing_slicing)]

pub mod plant;

use crate::time::Timestamp;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};
use std::net::Ipv4Addr;

/// Shape of the generated plant.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    /// Seed of the pseudo-random generator.
    pub seed: u64,
    /// Number of PLCs (Modbus servers), 10.0.1.x.
    pub plcs: u16,
    /// Number of masters (HMI/SCADA clients), 10.0.0.x; each polls every PLC.
    pub masters: u16,
    /// Stop after this many packets.
    pub packets: usize,
    /// Capture start, seconds since the epoch.
    pub start_secs: i64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 1,
            plcs: 20,
            masters: 3,
            packets: 100_000,
            start_secs: 1_700_000_000,
        }
    }
}

/// A small xorshift generator: deterministic, fast, not cryptographic.
#[derive(Clone, Debug)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// One master↔PLC TCP connection and its polling state.
#[derive(Clone, Debug)]
struct Conn {
    master: Ipv4Addr,
    plc: Ipv4Addr,
    sport: u16,
    /// Next sequence number of each side ([master, plc]).
    seq: [u32; 2],
    tid: u16,
    period_us: i64,
    step: u32,
    established: bool,
    setpoint: i32,
}

/// Generated frames, in capture order: (timestamp, Ethernet frame).
pub type Frames = Vec<(Timestamp, Vec<u8>)>;

/// Generates Modbus/TCP polling traffic as Ethernet frames.
pub fn modbus_plant(cfg: &SynthConfig) -> Frames {
    let mut rng = Rng(cfg.seed.max(1));
    let mut conns = Vec::new();
    for m in 0..cfg.masters {
        for p in 0..cfg.plcs {
            let period_ms = [100, 200, 250, 500, 1000][(rng.below(5)) as usize % 5];
            conns.push(Conn {
                master: Ipv4Addr::new(10, 0, 0, (10 + m % 200) as u8),
                plc: Ipv4Addr::new(10, 0, 1 + (p / 250) as u8, (1 + p % 250) as u8),
                sport: 40_000 + (m * 1000 + p) % 25_000,
                seq: [rng.next() as u32, rng.next() as u32],
                tid: 0,
                period_us: period_ms * 1000,
                step: 0,
                established: false,
                setpoint: 500,
            });
        }
    }
    let start = cfg.start_secs * 1_000_000;
    let mut heap: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
    for i in 0..conns.len() {
        heap.push(Reverse((start + rng.below(100_000) as i64, i)));
    }
    let mut out: Frames = Vec::with_capacity(cfg.packets);
    while out.len() < cfg.packets {
        let Some(Reverse((t, i))) = heap.pop() else {
            break;
        };
        let Some(c) = conns.get_mut(i) else { break };
        let rtt = 300 + rng.below(1500) as i64;
        if !c.established {
            // Three-way handshake.
            let syn = tcp_frame(c, 0, 0x02, &[]);
            c.seq[0] = c.seq[0].wrapping_add(1);
            let synack = tcp_frame(c, 1, 0x12, &[]);
            c.seq[1] = c.seq[1].wrapping_add(1);
            let ack = tcp_frame(c, 0, 0x10, &[]);
            out.push((Timestamp::from_micros(t), syn));
            out.push((Timestamp::from_micros(t + rtt), synack));
            out.push((Timestamp::from_micros(t + rtt + 50), ack));
            c.established = true;
        } else {
            c.tid = c.tid.wrapping_add(1);
            c.step += 1;
            let (req, rsp) = exchange(c, &mut rng);
            let q = tcp_frame(c, 0, 0x18, &req);
            c.seq[0] = c.seq[0].wrapping_add(req.len() as u32);
            let r = tcp_frame(c, 1, 0x18, &rsp);
            c.seq[1] = c.seq[1].wrapping_add(rsp.len() as u32);
            out.push((Timestamp::from_micros(t), q));
            out.push((Timestamp::from_micros(t + rtt), r));
            if c.step % 4 == 0 {
                let ack = tcp_frame(c, 0, 0x10, &[]);
                out.push((Timestamp::from_micros(t + rtt + 40), ack));
            }
        }
        let jitter = rng.below(2000) as i64;
        heap.push(Reverse((t + c.period_us + jitter, i)));
    }
    out.truncate(cfg.packets);
    out.sort_by_key(|(ts, _)| *ts);
    out
}

/// One Modbus request and its response (MBAP included), evolving with the connection's step.
fn exchange(c: &mut Conn, rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
    let unit = 1u8;
    let mut pdu_req = Vec::new();
    let mut pdu_rsp = Vec::new();
    match c.step % 10 {
        9 => {
            // Write single register: a setpoint drifting in 470..=530.
            c.setpoint = (c.setpoint + rng.below(11) as i32 - 5).clamp(470, 530);
            let v = c.setpoint as u16;
            pdu_req.extend_from_slice(&[6, 0, 40]);
            pdu_req.extend_from_slice(&v.to_be_bytes());
            pdu_rsp.clone_from(&pdu_req);
        }
        3 | 7 => {
            // Read 16 coils at 0.
            pdu_req.extend_from_slice(&[1, 0, 0, 0, 16]);
            pdu_rsp.extend_from_slice(&[1, 2, (c.step & 0xff) as u8, 0x0f]);
        }
        _ => {
            // Read 10 holding registers at 0: a slowly moving process.
            pdu_req.extend_from_slice(&[3, 0, 0, 0, 10]);
            pdu_rsp.extend_from_slice(&[3, 20]);
            for k in 0..10u32 {
                let v = 1000 + ((c.step / 5 + k * 37) % 200) as u16;
                pdu_rsp.extend_from_slice(&v.to_be_bytes());
            }
        }
    }
    (mbap(c.tid, unit, &pdu_req), mbap(c.tid, unit, &pdu_rsp))
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

fn mac_of(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x00, o[0], o[1], o[2], o[3]]
}

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for c in chunks {
        let mut it = c.chunks_exact(2);
        for w in &mut it {
            sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [b] = it.remainder() {
            sum += u32::from(*b) << 8;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet/IPv4/TCP frame from side `from` (0 master, 1 PLC) with valid checksums.
fn tcp_frame(c: &Conn, from: usize, flags: u8, payload: &[u8]) -> Vec<u8> {
    let (src, dst, sp, dp) = if from == 0 {
        (c.master, c.plc, c.sport, 502)
    } else {
        (c.plc, c.master, 502, c.sport)
    };
    let seq = c.seq[from];
    let ack = if flags & 0x10 != 0 {
        c.seq[1 - from]
    } else {
        0
    };
    let mut f = Vec::with_capacity(54 + payload.len());
    let seg = TcpSpec {
        src: (src, sp),
        dst: (dst, dp),
        seq,
        ack,
        flags,
    };
    tcp_frame_into(&mut f, &seg, payload);
    f
}

/// Addresses, sequence numbers and flags of a synthetic TCP segment.
#[derive(Clone, Copy, Debug)]
pub struct TcpSpec {
    /// Sender address and port.
    pub src: (Ipv4Addr, u16),
    /// Receiver address and port.
    pub dst: (Ipv4Addr, u16),
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (sent when `flags` has ACK, 0x10).
    pub ack: u32,
    /// TCP flags byte (0x02 SYN, 0x10 ACK, 0x18 PSH|ACK, …).
    pub flags: u8,
}

/// Appends an Ethernet/IPv4/TCP frame (valid checksums) carrying `payload` to `f`.
pub fn tcp_frame_into(f: &mut Vec<u8>, s: &TcpSpec, payload: &[u8]) {
    let ((src, sp), (dst, dp)) = (s.src, s.dst);
    f.extend_from_slice(&mac_of(dst));
    f.extend_from_slice(&mac_of(src));
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 20 + payload.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let ck = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&sp.to_be_bytes());
    tcp[2..4].copy_from_slice(&dp.to_be_bytes());
    tcp[4..8].copy_from_slice(&s.seq.to_be_bytes());
    let ack = if s.flags & 0x10 != 0 { s.ack } else { 0 };
    tcp[8..12].copy_from_slice(&ack.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = s.flags;
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&dst.octets());
    pseudo[9] = 6;
    pseudo[10..12].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    let ck = checksum(&[&pseudo, &tcp, payload]);
    tcp[16..18].copy_from_slice(&ck.to_be_bytes());
    f.extend_from_slice(&tcp);
    f.extend_from_slice(payload);
}

/// A SYN from a random-looking client (172.16.0.0/12) to a random-looking server
/// (192.168.0.0/16, port ≥ 1024), all taken from the bits of `r`: one packet of a connect()
/// flood.
pub fn flood_syn(r: u64) -> TcpSpec {
    TcpSpec {
        src: (
            Ipv4Addr::from(0xac10_0000 | (r as u32 & 0xfffff)),
            (r >> 20) as u16,
        ),
        dst: (
            Ipv4Addr::from(0xc0a8_0000 | ((r >> 36) as u32 & 0xffff)),
            (r >> 52) as u16 | 1024,
        ),
        seq: (r >> 8) as u32,
        ack: 0,
        flags: 0x02,
    }
}

/// Writes frames as a little-endian microsecond pcap with Ethernet link type.
pub fn write_pcap(w: &mut impl Write, frames: &[(Timestamp, Vec<u8>)]) -> io::Result<()> {
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&0i32.to_le_bytes())?;
    w.write_all(&0u32.to_le_bytes())?;
    w.write_all(&65535u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;
    for (ts, f) in frames {
        let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
        write_record(w, *ts, f, len)?;
    }
    Ok(())
}

/// Writes one record of the pcap [`write_pcap`] writes: `data` as captured (its time in
/// microseconds), `orig_len` its length on the wire.
pub fn write_record(
    w: &mut impl Write,
    ts: Timestamp,
    data: &[u8],
    orig_len: u32,
) -> io::Result<()> {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    w.write_all(&(ts.secs as u32).to_le_bytes())?;
    w.write_all(&(ts.nanos / 1000).to_le_bytes())?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(&orig_len.to_le_bytes())?;
    w.write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_time_ordered() {
        let cfg = SynthConfig {
            packets: 2000,
            ..Default::default()
        };
        let a = modbus_plant(&cfg);
        let b = modbus_plant(&cfg);
        assert_eq!(a, b);
        assert_eq!(a.len(), 2000);
        assert!(a.windows(2).all(|w| w[0].0 <= w[1].0));
        let c = modbus_plant(&SynthConfig { seed: 2, ..cfg });
        assert_ne!(a, c);
    }

    #[test]
    fn ip_checksum_verifies() {
        let cfg = SynthConfig {
            packets: 10,
            ..Default::default()
        };
        for (_, f) in modbus_plant(&cfg) {
            assert_eq!(checksum(&[&f[14..34]]), 0, "IPv4 header checksum");
        }
    }
}
