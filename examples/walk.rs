//! A bare read-only walk over a pcap's records: reads every record, touches its last byte and
//! sums captured lengths. The upper bound for any tool reading the same file.
//!
//! `cargo run --release --example walk -- CAPTURE.pcap` walks with pcap-parser (plain reads into
//! its buffer); `walk --otwatch CAPTURE.pcap` walks with otwatch's own reader (on Linux, a
//! memory map of the file, as `otwatch detect` reads it). Either prints
//! `records bytes seconds checksum`.
#![allow(clippy::indexing_slicing)]

use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError};
use std::fs::File;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (own, path) = match args.as_slice() {
        [flag, path] if flag == "--otwatch" => (true, path.clone()),
        [path] => (false, path.clone()),
        _ => return Err("usage: walk [--otwatch] CAPTURE.pcap".into()),
    };
    if own {
        return walk_otwatch(&path);
    }
    let t0 = Instant::now();
    let mut reader = LegacyPcapReader::new(1 << 20, File::open(&path)?)?;
    let (mut records, mut bytes, mut checksum) = (0u64, 0u64, 0u64);
    loop {
        let consumed = match reader.next() {
            Ok((offset, block)) => {
                if let PcapBlockOwned::Legacy(b) = block {
                    records += 1;
                    bytes += u64::from(b.caplen);
                    // Touch the data so the walk reads it, as a parser would.
                    checksum =
                        checksum.wrapping_add(u64::from(b.data.last().copied().unwrap_or(0)));
                }
                Some(offset)
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => None,
            Err(e) => return Err(format!("{path}: {e:?}").into()),
        };
        match consumed {
            Some(offset) => reader.consume(offset),
            None => reader.refill().map_err(|e| format!("{path}: {e:?}"))?,
        }
    }
    println!(
        "{records} {bytes} {:.6} {checksum}",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The walk through otwatch's capture reader.
fn walk_otwatch(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let t0 = Instant::now();
    let mut cap = otwatch::capture::CaptureFile::open(std::path::Path::new(path))?;
    let (mut records, mut bytes, mut checksum) = (0u64, 0u64, 0u64);
    while let Some(p) = cap.next_packet()? {
        records += 1;
        bytes += p.data.len() as u64;
        checksum = checksum.wrapping_add(u64::from(p.data.last().copied().unwrap_or(0)));
    }
    println!(
        "{records} {bytes} {:.6} {checksum}",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
