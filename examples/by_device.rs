//! otwatch's work split by device, the bound of a design that would split a plant's traffic
//! between threads by device (issue #7, `benches/sidebyside.sh`, `benches/README.md`): a
//! measurement, not a mode of otwatch.
//!
//! A packet's device is the server end of its exchange: the end on port 502 (Modbus) or 4840
//! (OPC UA), else the end with the lower port. Every device's traffic (all its clients, both
//! directions) stays whole in one part, in its original order.
//!
//! - `by_device split CAPTURE OUT_PREFIX [PARTS]` writes `OUT_PREFIX0.pcap` .. (two parts by
//!   default): devices are dealt to the parts largest first, each to the part with the fewest
//!   packets so far; packets without a device go to part 0. Ethernet captures only; the parts
//!   are microsecond pcaps. Prints each part's packets and devices.
//! - `by_device threads BASELINE CAPTURE [THREADS]` starts THREADS threads (2 by default). Each
//!   maps the capture itself, walks all its records and keeps the packets of its own devices
//!   (the k-th device to appear goes to thread k mod THREADS, so that the threads agree without
//!   talking), which it runs through a pipeline and a detection engine of its own (the baseline
//!   loaded by each thread, the shipped rules). Nothing passes between the threads. Prints the
//!   wall time, and each thread's time, packets and alerts.
//! - `by_device dispatch BASELINE CAPTURE`: as `threads` with two, but only the first thread
//!   walks the capture; it copies the other thread's packets into batches of 512 for it.
//!
//! The alerts of the parts are not those of `otwatch detect` on the whole: each engine's clock
//! (its idle ticks) follows its own devices' events only, and what spans devices (a client's
//! scans over several PLCs, an asset first seen, a rule's count by source, alert aggregation)
//! is counted apart in each. A mode of otwatch would have to share those; this measures the
//! rest.
#![allow(clippy::indexing_slicing)]

use otwatch::alert::Alert;
use otwatch::baseline::Baseline;
use otwatch::capture::{CaptureFile, Packet};
use otwatch::decode::{decode, LinkType, Transport};
use otwatch::detect::{DetectConfig, Engine};
use otwatch::pipeline::{Pipeline, PipelineConfig};
use otwatch::rules::{self, detector::RulesDetector};
use otwatch::synth;
use otwatch::time::Timestamp;
use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const USAGE: &str = "usage: by_device split CAPTURE OUT_PREFIX [PARTS] | \
                     by_device threads BASELINE CAPTURE [THREADS] | by_device dispatch BASELINE CAPTURE";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((mode, rest)) if mode == "split" => split(rest),
        Some((mode, rest)) if mode == "threads" => threads(rest),
        Some((mode, [b, c])) if mode == "dispatch" => {
            let t0 = Instant::now();
            let (a, b) = dispatch(Path::new(b), Path::new(c))?;
            print_shares(t0.elapsed().as_secs_f64(), [a, b]);
            Ok(())
        }
        _ => Err(USAGE.into()),
    }
}

/// The server end of a packet's exchange, if it has one: read at fixed offsets from the common
/// frame (untagged Ethernet, IPv4 without options, TCP), else from a full decode.
#[inline]
fn device(p: &Packet<'_>) -> Option<IpAddr> {
    if let Some(h) = p.data.first_chunk::<38>() {
        if p.link == LinkType::Ethernet && h[12..14] == [8, 0] && h[14] == 0x45 && h[23] == 6 {
            let sp = u16::from_be_bytes([h[34], h[35]]);
            let dp = u16::from_be_bytes([h[36], h[37]]);
            let at = if server_end(sp, dp) { 30 } else { 26 };
            return Some(IpAddr::from([h[at], h[at + 1], h[at + 2], h[at + 3]]));
        }
    }
    device_slow(p)
}

/// True when the destination is the server end of a packet from port `sp` to port `dp`.
#[inline]
fn server_end(sp: u16, dp: u16) -> bool {
    let server_port = |p: u16| p == 502 || p == 4840;
    server_port(dp) || (!server_port(sp) && dp < sp)
}

/// [`device`] off the common frame.
#[inline(never)]
fn device_slow(p: &Packet<'_>) -> Option<IpAddr> {
    let d = decode(p.link, p.data, p.orig_len);
    let ip = d.ip?;
    let (sp, dp) = match d.transport {
        Transport::Tcp(t) => (t.src_port, t.dst_port),
        Transport::Udp(u) => (u.src_port, u.dst_port),
        Transport::Other(_) | Transport::None => return None,
    };
    Some(if server_end(sp, dp) { ip.dst } else { ip.src })
}

/// Which thread owns each device, in the order they appear: a small open-addressed table
/// (the common case, a few dozen devices, without std's SipHash per packet).
struct Owners {
    slots: Vec<Option<(IpAddr, usize)>>,
    count: usize,
    n: usize,
}

impl Owners {
    fn new(n: usize) -> Self {
        Owners {
            slots: vec![None; 1 << 16],
            count: 0,
            n,
        }
    }

    /// The owner of `d`, which goes to thread `count mod n` when first seen.
    #[inline]
    fn of(&mut self, d: IpAddr) -> usize {
        let key = match d {
            IpAddr::V4(a) => u64::from(u32::from(a)),
            IpAddr::V6(a) => {
                let x = u128::from(a);
                (x as u64) ^ ((x >> 64) as u64)
            }
        };
        let mask = self.slots.len() - 1;
        let mut i = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 48) as usize & mask;
        loop {
            match self.slots[i] {
                Some((k, o)) if k == d => return o,
                Some(_) => i = (i + 1) & mask,
                None => {
                    let o = self.count % self.n;
                    // Past half full, new devices all go to thread 0 (more than 32k devices:
                    // not a plant this measures).
                    if self.count < self.slots.len() / 2 {
                        self.slots[i] = Some((d, o));
                        self.count += 1;
                        return o;
                    }
                    return 0;
                }
            }
        }
    }
}

/// One thread's share: its time, packets and alerts.
struct Share {
    secs: f64,
    packets: u64,
    alerts: usize,
}

/// A thread's pipeline and detection engine, as `otwatch detect --threads 1` has them.
struct Unit {
    t0: Instant,
    engine: Engine,
    pipe: Pipeline,
    file: Arc<str>,
    alerts: Vec<Alert>,
    packets: u64,
}

impl Unit {
    /// Loads the baseline and the shipped rules.
    fn new(baseline: &Path, capture: &Path) -> Result<Self, String> {
        let t0 = Instant::now();
        let base = Baseline::load(baseline).map_err(|e| e.to_string())?;
        let mut engine = Engine::new(Some(base), DetectConfig::default());
        let set = rules::load(&rules::embedded_pack()).set;
        engine.add_detector(Box::new(RulesDetector::new(Arc::new(set))));
        Ok(Unit {
            t0,
            engine,
            pipe: Pipeline::new(PipelineConfig::default()),
            file: Arc::from(capture.to_string_lossy().as_ref()),
            alerts: Vec::new(),
            packets: 0,
        })
    }

    #[inline]
    fn packet(&mut self, p: &Packet<'_>) {
        self.packets += 1;
        let (engine, alerts) = (&mut self.engine, &mut self.alerts);
        self.pipe
            .process(&self.file, p, &mut |ev| engine.on_event(ev, alerts));
    }

    fn finish(mut self) -> Share {
        let (engine, alerts) = (&mut self.engine, &mut self.alerts);
        self.pipe
            .finish(&self.file, &mut |ev| engine.on_event(ev, alerts));
        self.engine.finish(&mut self.alerts);
        let share = Share {
            secs: self.t0.elapsed().as_secs_f64(),
            packets: self.packets,
            alerts: self.alerts.len(),
        };
        // As `otwatch detect`: the tables go with the process.
        std::mem::forget(self);
        share
    }
}

/// Every packet of `capture`, in order, as the pipeline's own loop takes them: runs of
/// buffered records, anything else one by one.
fn walk(capture: &Path, mut f: impl FnMut(&Packet<'_>)) -> Result<(), String> {
    let mut cap = CaptureFile::open(capture).map_err(|e| e.to_string())?;
    loop {
        if let Some(mut records) = cap.buffered() {
            while let Some(p) = records.take() {
                f(&p);
            }
        }
        let Some(p) = cap.next_packet().map_err(|e| e.to_string())? else {
            return Ok(());
        };
        f(&p);
    }
}

/// `threads`: thread `me` of `n` walks the whole capture and keeps its own devices' packets.
fn shard(baseline: &Path, capture: &Path, me: usize, n: usize) -> Result<Share, String> {
    let mut unit = Unit::new(baseline, capture)?;
    let mut owners = Owners::new(n);
    walk(capture, |p| {
        if device(p).map_or(0, |d| owners.of(d)) == me {
            unit.packet(p);
        }
    })?;
    Ok(unit.finish())
}

/// Packets copied for the other thread of `dispatch`: each one's time, link, wire length,
/// number and range in `data`.
#[derive(Default)]
struct Batch {
    items: Vec<(Timestamp, LinkType, u32, u64, usize, usize)>,
    data: Vec<u8>,
}

/// Packets per batch of `dispatch`.
const BATCH: usize = 512;

/// `dispatch`: the reader keeps its own devices' packets and copies the others' into batches
/// for the second thread; batches come back empty to be refilled.
fn dispatch(baseline: &Path, capture: &Path) -> Result<(Share, Share), String> {
    let (to, from) = std::sync::mpsc::sync_channel::<Batch>(8);
    let (back, returned) = std::sync::mpsc::channel::<Batch>();
    std::thread::scope(|s| {
        let other = s.spawn(move || -> Result<Share, String> {
            let mut unit = Unit::new(baseline, capture)?;
            while let Ok(mut b) = from.recv() {
                for &(ts, link, orig_len, number, start, end) in &b.items {
                    let data = b.data.get(start..end).unwrap_or_default();
                    unit.packet(&Packet {
                        ts,
                        link,
                        data,
                        orig_len,
                        number,
                    });
                }
                b.items.clear();
                b.data.clear();
                let _ = back.send(b);
            }
            Ok(unit.finish())
        });
        let mine = (|| -> Result<Share, String> {
            let mut unit = Unit::new(baseline, capture)?;
            let mut owners = Owners::new(2);
            let mut batch = Batch::default();
            let mut gone = false;
            walk(capture, |p| {
                if device(p).map_or(0, |d| owners.of(d)) == 0 {
                    unit.packet(p);
                    return;
                }
                // The other thread gone (its error is reported at the end): nothing to copy.
                if gone {
                    return;
                }
                let start = batch.data.len();
                batch.data.extend_from_slice(p.data);
                let end = batch.data.len();
                batch
                    .items
                    .push((p.ts, p.link, p.orig_len, p.number, start, end));
                if batch.items.len() == BATCH {
                    let fresh = returned.try_recv().unwrap_or_default();
                    gone = to.send(std::mem::replace(&mut batch, fresh)).is_err();
                }
            })?;
            if !gone {
                let _ = to.send(batch);
            }
            drop(to);
            Ok(unit.finish())
        })();
        let other = other
            .join()
            .unwrap_or_else(|_| Err("thread panicked".into()));
        Ok((mine?, other?))
    })
}

/// Two paths and a count (2 when left out, at least 1).
fn two_and_count<'a>(
    args: &'a [String],
    what: &str,
) -> Result<(&'a String, &'a String, usize), Box<dyn std::error::Error>> {
    let (a, b, n) = match args {
        [a, b] => (a, b, 2usize),
        [a, b, n] => (a, b, n.parse()?),
        _ => return Err(USAGE.into()),
    };
    if n == 0 {
        return Err(format!("{what} must be at least 1").into());
    }
    Ok((a, b, n))
}

/// Prints the wall time and each thread's share.
fn print_shares(wall: f64, shares: impl IntoIterator<Item = Share>) {
    println!("wall {wall:.4} s");
    for (i, s) in shares.into_iter().enumerate() {
        println!(
            "thread {i}: {:.4} s, {} packets, {} alerts",
            s.secs, s.packets, s.alerts
        );
    }
}

fn split(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let (input, prefix, parts) = two_and_count(args, "PARTS")?;
    let path = Path::new(input);
    let mut per_device: HashMap<IpAddr, u64> = HashMap::new();
    let mut cap = CaptureFile::open(path)?;
    while let Some(p) = cap.next_packet()? {
        if p.link != LinkType::Ethernet {
            return Err(format!("{input}: packet {}: not Ethernet", p.number).into());
        }
        if let Some(dev) = device(&p) {
            *per_device.entry(dev).or_default() += 1;
        }
    }
    let mut devices: Vec<(IpAddr, u64)> = per_device.into_iter().collect();
    devices.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut load = vec![0u64; parts];
    let mut count = vec![0usize; parts];
    let mut part_of: HashMap<IpAddr, usize> = HashMap::new();
    for (dev, n) in devices {
        let (i, _) = load
            .iter()
            .enumerate()
            .min_by_key(|&(i, l)| (*l, i))
            .ok_or("no part")?;
        load[i] += n;
        count[i] += 1;
        part_of.insert(dev, i);
    }
    let mut outs = Vec::with_capacity(parts);
    for i in 0..parts {
        let mut w =
            BufWriter::with_capacity(1 << 20, std::fs::File::create(format!("{prefix}{i}.pcap"))?);
        synth::write_pcap(&mut w, &[])?;
        outs.push(w);
    }
    let mut packets = vec![0u64; parts];
    let mut cap = CaptureFile::open(path)?;
    while let Some(p) = cap.next_packet()? {
        let i = device(&p)
            .and_then(|d| part_of.get(&d).copied())
            .unwrap_or(0);
        synth::write_record(&mut outs[i], p.ts, p.data, p.orig_len)?;
        packets[i] += 1;
    }
    for (i, mut w) in outs.into_iter().enumerate() {
        w.flush()?;
        println!("part {i}: {} packets, {} devices", packets[i], count[i]);
    }
    Ok(())
}

fn threads(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let (baseline, capture, n) = two_and_count(args, "THREADS")?;
    let (baseline, capture) = (Path::new(baseline), Path::new(capture));
    let t0 = Instant::now();
    let shares: Vec<Result<Share, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|me| s.spawn(move || shard(baseline, capture, me, n)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into())))
            .collect()
    });
    let wall = t0.elapsed().as_secs_f64();
    let shares = shares.into_iter().collect::<Result<Vec<_>, _>>()?;
    print_shares(wall, shares);
    Ok(())
}
