//! A bare read-only walk over a pcap's records with pcap-parser (the reader otwatch uses): reads
//! every record and sums captured lengths. The upper bound for any tool reading the same file.
//!
//! `cargo run --release --example walk -- CAPTURE.pcap` prints `records bytes seconds`.
#![allow(clippy::indexing_slicing)]

use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError};
use std::fs::File;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: walk CAPTURE.pcap")?;
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
