//! Tests of the capture reader on hand-built files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::*;
use proptest::prelude::*;
use rstest::rstest;
use std::sync::atomic::{AtomicUsize, Ordering};

// ---------------------------------------------------------------------------------------------
// Temp files
// ---------------------------------------------------------------------------------------------

/// A file under the temp dir with a unique name, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(bytes: &[u8]) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "otwatch-capture-test-{}-{n}.bin",
            std::process::id()
        ));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A packet copied out of the reader's buffer.
#[derive(Debug, PartialEq, Eq)]
struct Owned {
    ts: Timestamp,
    link: LinkType,
    data: Vec<u8>,
    orig_len: u32,
    number: u64,
}

/// Reads a whole capture: packets, stats, final position.
fn read_bytes(bytes: &[u8]) -> (Vec<Owned>, CaptureStats, u64) {
    let file = TempFile::new(bytes);
    let mut cap = CaptureFile::open(&file.0).unwrap();
    let mut out = Vec::new();
    while let Some(p) = cap.next_packet().unwrap() {
        out.push(Owned {
            ts: p.ts,
            link: p.link,
            data: p.data.to_vec(),
            orig_len: p.orig_len,
            number: p.number,
        });
    }
    // Further calls keep saying "end".
    assert!(cap.next_packet().unwrap().is_none());
    (out, cap.stats().clone(), cap.position())
}

fn open_err(bytes: &[u8]) -> CaptureError {
    let file = TempFile::new(bytes);
    CaptureFile::open(&file.0).unwrap_err()
}

// ---------------------------------------------------------------------------------------------
// Fixture builders (every field commented)
// ---------------------------------------------------------------------------------------------

fn u16b(v: u16, be: bool) -> [u8; 2] {
    if be {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

fn u32b(v: u32, be: bool) -> [u8; 4] {
    if be {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

/// A legacy pcap file header.
fn pcap_header(be: bool, nanos: bool, dlt: u32) -> Vec<u8> {
    let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    let mut h = Vec::new();
    h.extend(u32b(magic, be)); // magic number (byte order and resolution)
    h.extend(u16b(2, be)); // version major
    h.extend(u16b(4, be)); // version minor
    h.extend(u32b(0, be)); // thiszone
    h.extend(u32b(0, be)); // sigfigs
    h.extend(u32b(65535, be)); // snaplen
    h.extend(u32b(dlt, be)); // network (link type)
    h
}

/// A legacy pcap record.
fn pcap_record(be: bool, secs: u32, frac: u32, data: &[u8], orig_len: u32) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend(u32b(secs, be)); // ts_sec
    r.extend(u32b(frac, be)); // ts_usec or ts_nsec
    r.extend(u32b(data.len() as u32, be)); // incl_len (captured)
    r.extend(u32b(orig_len, be)); // orig_len (on the wire)
    r.extend_from_slice(data); // packet bytes
    r
}

/// A pcapng block: type, total length, body padded to 32 bits, total length again.
fn ng_block(be: bool, block_type: u32, body: &[u8]) -> Vec<u8> {
    let pad = (4 - body.len() % 4) % 4;
    let total = (12 + body.len() + pad) as u32;
    let mut b = Vec::new();
    b.extend(u32b(block_type, be)); // block type
    b.extend(u32b(total, be)); // block total length
    b.extend_from_slice(body); // block body
    b.extend(std::iter::repeat_n(0, pad)); // padding to 32 bits
    b.extend(u32b(total, be)); // block total length, repeated
    b
}

/// A pcapng option: code, length, value padded to 32 bits.
fn ng_option(be: bool, code: u16, value: &[u8]) -> Vec<u8> {
    let mut o = Vec::new();
    o.extend(u16b(code, be)); // option code
    o.extend(u16b(value.len() as u16, be)); // option length
    o.extend_from_slice(value); // option value
    o.extend(std::iter::repeat_n(0, (4 - value.len() % 4) % 4)); // padding
    o
}

/// The end-of-options marker.
fn ng_end_of_options() -> Vec<u8> {
    vec![0, 0, 0, 0] // opt_endofopt: code 0, length 0
}

/// A Section Header Block.
fn shb(be: bool) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(u32b(0x1a2b_3c4d, be)); // byte-order magic
    body.extend(u16b(1, be)); // major version
    body.extend(u16b(0, be)); // minor version
    body.extend_from_slice(&[0xff; 8]); // section length: -1 (unspecified)
    ng_block(be, 0x0a0d_0d0a, &body)
}

/// An Interface Description Block with the given options (already encoded).
fn idb(be: bool, linktype: u16, snaplen: u32, options: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(u16b(linktype, be)); // link type
    body.extend(u16b(0, be)); // reserved
    body.extend(u32b(snaplen, be)); // snaplen
    body.extend_from_slice(options); // options
    ng_block(be, 1, &body)
}

/// An Enhanced Packet Block.
fn epb(be: bool, if_id: u32, ts: u64, data: &[u8], orig_len: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(u32b(if_id, be)); // interface id
    body.extend(u32b((ts >> 32) as u32, be)); // timestamp, upper 32 bits
    body.extend(u32b(ts as u32, be)); // timestamp, lower 32 bits
    body.extend(u32b(data.len() as u32, be)); // captured packet length
    body.extend(u32b(orig_len, be)); // original packet length
    body.extend_from_slice(data); // packet data
    body.extend(std::iter::repeat_n(0, (4 - data.len() % 4) % 4)); // padding
    ng_block(be, 6, &body)
}

/// A Simple Packet Block.
fn spb(be: bool, data: &[u8], orig_len: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(u32b(orig_len, be)); // original packet length
    body.extend_from_slice(data); // packet data (ng_block pads)
    ng_block(be, 3, &body)
}

/// An obsolete Packet Block (type 2).
fn obsolete_pb(be: bool, if_id: u16, ts: u64, data: &[u8], orig_len: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(u16b(if_id, be)); // interface id
    body.extend(u16b(0, be)); // drops count
    body.extend(u32b((ts >> 32) as u32, be)); // timestamp, upper 32 bits
    body.extend(u32b(ts as u32, be)); // timestamp, lower 32 bits
    body.extend(u32b(data.len() as u32, be)); // captured length
    body.extend(u32b(orig_len, be)); // original length
    body.extend_from_slice(data); // packet data (ng_block pads)
    ng_block(be, 2, &body)
}

/// An Interface Statistics Block (skipped by the reader).
fn isb(be: bool, if_id: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(u32b(if_id, be)); // interface id
    body.extend(u32b(0, be)); // timestamp, upper 32 bits
    body.extend(u32b(0, be)); // timestamp, lower 32 bits
    ng_block(be, 5, &body)
}

/// A Name Resolution Block with only the end record (skipped by the reader).
fn nrb(be: bool) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(u16b(0, be)); // record type: nrb_record_end
    body.extend(u16b(0, be)); // record length
    ng_block(be, 4, &body)
}

const FRAME_A: &[u8] = &[0xaa; 60];
const FRAME_B: &[u8] = &[0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb];

// ---------------------------------------------------------------------------------------------
// pcap
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::le_micro(false, false)]
#[case::be_micro(true, false)]
#[case::le_nano(false, true)]
#[case::be_nano(true, true)]
fn pcap_byte_orders_and_resolutions(#[case] be: bool, #[case] nanos: bool) {
    let mut f = pcap_header(be, nanos, 113);
    f.extend(pcap_record(be, 1_445_508_000, 123_456, FRAME_A, 1514));
    f.extend(pcap_record(be, 1_445_508_001, 999_999, FRAME_B, 7));
    let (pkts, stats, pos) = read_bytes(&f);
    let frac = |v: u32| if nanos { v } else { v * 1000 };
    assert_eq!(
        pkts,
        vec![
            Owned {
                ts: Timestamp::new(1_445_508_000, frac(123_456)),
                link: LinkType::LinuxSll,
                data: FRAME_A.to_vec(),
                orig_len: 1514,
                number: 1,
            },
            Owned {
                ts: Timestamp::new(1_445_508_001, frac(999_999)),
                link: LinkType::LinuxSll,
                data: FRAME_B.to_vec(),
                orig_len: 7,
                number: 2,
            },
        ]
    );
    assert_eq!(
        stats,
        CaptureStats {
            packets: 2,
            ..CaptureStats::default()
        }
    );
    assert_eq!(pos, f.len() as u64);
}

#[test]
fn pcap_header_only_is_an_empty_capture() {
    let (pkts, stats, pos) = read_bytes(&pcap_header(false, false, 1));
    assert!(pkts.is_empty());
    assert_eq!(stats, CaptureStats::default());
    assert_eq!(pos, 24);
}

#[test]
fn modified_pcap() {
    let mut f = Vec::new();
    f.extend(0xa1b2_cd34u32.to_le_bytes()); // magic: modified pcap, little-endian
    f.extend(2u16.to_le_bytes()); // version major
    f.extend(4u16.to_le_bytes()); // version minor
    f.extend(0u32.to_le_bytes()); // thiszone
    f.extend(0u32.to_le_bytes()); // sigfigs
    f.extend(65535u32.to_le_bytes()); // snaplen
    f.extend(1u32.to_le_bytes()); // network: Ethernet
    f.extend(7u32.to_le_bytes()); // ts_sec
    f.extend(5u32.to_le_bytes()); // ts_usec
    f.extend((FRAME_B.len() as u32).to_le_bytes()); // incl_len
    f.extend(64u32.to_le_bytes()); // orig_len
    f.extend(3u32.to_le_bytes()); // ifindex
    f.extend(0x0800u16.to_le_bytes()); // protocol
    f.push(0); // pkt_type
    f.push(0); // padding
    f.extend_from_slice(FRAME_B); // packet bytes
    let (pkts, stats, _) = read_bytes(&f);
    assert_eq!(pkts.len(), 1);
    assert_eq!(pkts[0].data, FRAME_B);
    assert_eq!(pkts[0].orig_len, 64);
    assert_eq!(pkts[0].ts, Timestamp::new(7, 5000));
    assert!(!stats.truncated && !stats.corrupt);
}

#[test]
fn pcap_truncated_at_every_byte_of_the_last_record() {
    let mut f = pcap_header(false, false, 1);
    f.extend(pcap_record(false, 1, 0, FRAME_A, 60));
    let good_end = f.len();
    f.extend(pcap_record(false, 2, 0, FRAME_B, 7));
    for cut in good_end + 1..f.len() {
        let (pkts, stats, pos) = read_bytes(&f[..cut]);
        assert_eq!(pkts.len(), 1, "cut at {cut}");
        assert!(stats.truncated && !stats.corrupt, "cut at {cut}: {stats:?}");
        assert_eq!(stats.stopped_at, Some(good_end as u64), "cut at {cut}");
        assert_eq!(pos, good_end as u64);
    }
}

#[test]
fn pcap_impossible_caplen_is_corrupt() {
    let mut f = pcap_header(false, false, 1);
    f.extend(pcap_record(false, 1, 0, FRAME_A, 60));
    let good_end = f.len();
    f.extend(1u32.to_le_bytes()); // ts_sec
    f.extend(0u32.to_le_bytes()); // ts_usec
    f.extend(0xffff_fff0u32.to_le_bytes()); // incl_len: far beyond MAX_BLOCK_LEN
    f.extend(60u32.to_le_bytes()); // orig_len
    f.extend_from_slice(FRAME_A); // some bytes
    let (pkts, stats, _) = read_bytes(&f);
    assert_eq!(pkts.len(), 1);
    assert!(stats.corrupt && !stats.truncated);
    assert_eq!(stats.stopped_at, Some(good_end as u64));
}

#[test]
fn pcap_record_larger_than_the_initial_buffer() {
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let mut f = pcap_header(false, false, 1);
    f.extend(pcap_record(false, 1, 0, FRAME_A, 60));
    f.extend(pcap_record(false, 2, 0, &big, 200_000));
    f.extend(pcap_record(false, 3, 0, FRAME_B, 7));
    let (pkts, stats, pos) = read_bytes(&f);
    assert_eq!(pkts.len(), 3);
    assert_eq!(pkts[1].data, big);
    assert_eq!(pkts[2].data, FRAME_B);
    assert_eq!(stats.packets, 3);
    assert_eq!(pos, f.len() as u64);
}

#[test]
fn many_records_cross_buffer_refills() {
    let mut f = pcap_header(true, false, 0);
    for i in 0..5000u32 {
        let data: Vec<u8> = (0..(i % 97) as u8).collect();
        f.extend(pcap_record(true, i, 0, &data, i % 97));
    }
    let (pkts, stats, pos) = read_bytes(&f);
    assert_eq!(pkts.len(), 5000);
    assert!(pkts
        .iter()
        .enumerate()
        .all(|(i, p)| p.number == i as u64 + 1
            && p.data.len() == i % 97
            && p.link == LinkType::Null));
    assert_eq!(stats.packets, 5000);
    assert_eq!(pos, f.len() as u64);
}

/// Records handed out are consumed from the reader's buffer lazily, several at a time: the
/// position still moves by exactly one record per packet, across refills.
#[test]
fn position_moves_by_one_record_per_packet() {
    let mut f = pcap_header(false, false, 1);
    let mut ends = Vec::new();
    for i in 0..3000u32 {
        let data: Vec<u8> = (0..(i % 131) as u8).collect();
        f.extend(pcap_record(false, i, i * 677 % 1_100_000, &data, i % 131));
        ends.push(f.len() as u64);
    }
    let file = TempFile::new(&f);
    let mut cap = CaptureFile::open(&file.0).unwrap();
    let mut n = 0usize;
    while let Some(p) = cap.next_packet().unwrap() {
        let i = n as u32;
        let frac = i * 677 % 1_100_000;
        assert_eq!(
            p.ts,
            Timestamp::new(
                i64::from(i) + i64::from(frac / 1_000_000),
                frac % 1_000_000 * 1000
            )
        );
        assert_eq!(p.data.len(), (i % 131) as usize);
        assert_eq!(p.number, u64::from(i) + 1);
        assert_eq!(cap.position(), ends[n]);
        n += 1;
    }
    assert_eq!(n, 3000);
    assert_eq!(cap.position(), f.len() as u64);
}

// ---------------------------------------------------------------------------------------------
// The legacy reader's buffer against an independent reader
// ---------------------------------------------------------------------------------------------

/// Reads a whole capture with a legacy pcap buffer of `buffer` bytes: packets, stats, and the
/// position after each packet and at the end.
fn read_with_buffer(bytes: &[u8], buffer: usize) -> (Vec<Owned>, CaptureStats, Vec<u64>) {
    read_with(bytes, buffer, None)
}

/// [`read_with_buffer`], the file mapped by `plan` when it is `Some`.
fn read_with(
    bytes: &[u8],
    buffer: usize,
    plan: Option<mapped::MapPlan>,
) -> (Vec<Owned>, CaptureStats, Vec<u64>) {
    let file = TempFile::new(bytes);
    let mut cap = CaptureFile::open_with(&file.0, buffer, plan).unwrap();
    let mut out = Vec::new();
    let mut positions = Vec::new();
    while let Some(p) = cap.next_packet().unwrap() {
        out.push(Owned {
            ts: p.ts,
            link: p.link,
            data: p.data.to_vec(),
            orig_len: p.orig_len,
            number: p.number,
        });
        positions.push(cap.position());
    }
    assert!(cap.next_packet().unwrap().is_none());
    positions.push(cap.position());
    (out, cap.stats().clone(), positions)
}

/// [`read_with_buffer`] as the pipeline's run loop reads: runs of buffered records through
/// [`CaptureFile::buffered`], each run ended by one [`CaptureFile::next_packet`] (which
/// refills), with the count and position read from the run while it lasts.
fn read_runs_with_buffer(bytes: &[u8], buffer: usize) -> (Vec<Owned>, CaptureStats, Vec<u64>) {
    read_runs_with(bytes, buffer, None)
}

/// [`read_runs_with_buffer`], the file mapped by `plan` when it is `Some`.
fn read_runs_with(
    bytes: &[u8],
    buffer: usize,
    plan: Option<mapped::MapPlan>,
) -> (Vec<Owned>, CaptureStats, Vec<u64>) {
    let file = TempFile::new(bytes);
    let mut cap = CaptureFile::open_with(&file.0, buffer, plan).unwrap();
    let mut out = Vec::new();
    let mut positions = Vec::new();
    let own = |p: &Packet<'_>| Owned {
        ts: p.ts,
        link: p.link,
        data: p.data.to_vec(),
        orig_len: p.orig_len,
        number: p.number,
    };
    loop {
        if let Some(mut run) = cap.buffered() {
            while let Some(p) = run.take() {
                let p = own(&p);
                assert_eq!(run.packets(), p.number);
                out.push(p);
                positions.push(run.position());
            }
        } else if let Some(mut run) = cap.ng_buffered() {
            while let Some(p) = run.take() {
                let p = own(&p);
                assert_eq!(run.packets(), p.number);
                out.push(p);
                positions.push(run.position());
            }
        }
        let Some(p) = cap.next_packet().unwrap() else {
            break;
        };
        out.push(own(&p));
        positions.push(cap.position());
    }
    assert!(cap.next_packet().unwrap().is_none());
    positions.push(cap.position());
    (out, cap.stats().clone(), positions)
}

/// The packets of a legacy pcap as pcap-parser's own streaming reader (what this module used
/// before it framed records itself) sees them, all in one buffer: time, captured bytes and
/// original length, and whether the file ends inside a record.
fn oracle(bytes: &[u8], nanos: bool) -> (Vec<(Timestamp, Vec<u8>, u32)>, bool) {
    use pcap_parser::traits::PcapReaderIterator;
    use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError};
    let mut reader = LegacyPcapReader::new(bytes.len().max(1 << 16), bytes).unwrap();
    let mut out = Vec::new();
    let mut consumed = 0;
    loop {
        match reader.next() {
            Ok((n, block)) => {
                if let PcapBlockOwned::Legacy(b) = block {
                    let ts = timestamps::from_pcap(b.ts_sec, b.ts_usec, nanos);
                    out.push((ts, b.data.to_vec(), b.origlen));
                }
                consumed += n;
                reader.consume(n);
            }
            Err(PcapError::Incomplete(_)) => {
                if reader.reader_exhausted() {
                    return (out, consumed < bytes.len());
                }
                reader.refill().unwrap();
            }
            Err(_) => return (out, consumed < bytes.len()),
        }
    }
}

/// Every buffer size, from one too small for a record header on, reads the same packets,
/// stats and positions as the default one, which reads what pcap-parser reads, for both byte
/// orders and resolutions, records cut by a snaplen, and a file cut anywhere.
#[test]
fn legacy_buffer_sizes_agree_with_each_other_and_pcap_parser() {
    for (be, nanos) in [(false, false), (true, false), (false, true), (true, true)] {
        let mut f = pcap_header(be, nanos, 1);
        for i in 0..60u32 {
            let data: Vec<u8> = (0..(i * 7 % 83) as u8).collect();
            // Every third record is cut by a snaplen; fractions of a second or more carry.
            let orig = data.len() as u32 + if i % 3 == 0 { 40 } else { 0 };
            f.extend(pcap_record(
                be,
                1000 + i,
                i * 48_611 % 1_200_000,
                &data,
                orig,
            ));
        }
        for cut in [f.len(), f.len() - 1, f.len() - 30, 24 + 17, 24 + 3] {
            let bytes = &f[..cut];
            let whole = read_with_buffer(bytes, pcap::PCAP_BUFFER_LEN);
            let (want, cut_short) = oracle(bytes, nanos);
            let got: Vec<_> = whole
                .0
                .iter()
                .map(|p| (p.ts, p.data.clone(), p.orig_len))
                .collect();
            assert_eq!(got, want, "be {be} nanos {nanos} cut {cut}");
            assert_eq!(whole.1.truncated, cut_short, "cut {cut}");
            for plan in small_plans() {
                assert_eq!(
                    read_with(bytes, 16, Some(plan)),
                    whole,
                    "be {be} nanos {nanos} cut {cut} {plan:?}"
                );
                assert_eq!(
                    read_runs_with(bytes, 16, Some(plan)),
                    whole,
                    "runs: be {be} nanos {nanos} cut {cut} {plan:?}"
                );
            }
            for buffer in [1, 16, 17, 40, 100, 250, 4096, pcap::PCAP_BUFFER_LEN] {
                assert_eq!(
                    read_with_buffer(bytes, buffer),
                    whole,
                    "be {be} nanos {nanos} cut {cut} buffer {buffer}"
                );
                assert_eq!(
                    read_runs_with_buffer(bytes, buffer),
                    whole,
                    "runs: be {be} nanos {nanos} cut {cut} buffer {buffer}"
                );
            }
        }
    }
}

/// At the end (clean, truncated or corrupt) the buffer is given back and the position and
/// stats stay as they were.
#[test]
fn legacy_buffer_is_released_at_the_end() {
    let mut f = pcap_header(false, false, 1);
    f.extend(pcap_record(false, 1, 0, FRAME_A, 60));
    let good_end = f.len() as u64;
    f.extend(pcap_record(false, 2, 0, FRAME_B, 7));
    for (cut, end) in [(f.len(), f.len() as u64), (f.len() - 2, good_end)] {
        let file = TempFile::new(&f[..cut]);
        let mut cap = CaptureFile::open(&file.0).unwrap();
        while cap.next_packet().unwrap().is_some() {}
        let Layout::Pcap(p) = &cap.layout else {
            panic!("not legacy pcap");
        };
        assert_eq!(p.capacity(), 0);
        assert_eq!(cap.position(), end);
        let stats = cap.stats().clone();
        assert!(cap.next_packet().unwrap().is_none());
        assert_eq!(cap.position(), end);
        assert_eq!(cap.stats(), &stats);
    }
}

/// A corrupt record length stops every buffer size at the same record and offset, as does a
/// record that grows a small buffer.
#[test]
fn legacy_corrupt_and_growing_records_agree_for_every_buffer() {
    let mut f = pcap_header(true, false, 1);
    f.extend(pcap_record(true, 1, 0, FRAME_A, 60));
    f.extend(pcap_record(true, 2, 0, &[7u8; 5000], 5000));
    f.extend(pcap_record(true, 3, 0, FRAME_B, 7));
    let good_end = f.len() as u64;
    f.extend(1u32.to_be_bytes());
    f.extend(0u32.to_be_bytes());
    f.extend(0x0100_0000u32.to_be_bytes()); // one past the largest acceptable record
    f.extend(60u32.to_be_bytes());
    f.extend_from_slice(FRAME_A);
    let whole = read_with_buffer(&f, pcap::PCAP_BUFFER_LEN);
    assert_eq!(whole.0.len(), 3);
    assert!(whole.1.corrupt && !whole.1.truncated);
    assert_eq!(whole.1.stopped_at, Some(good_end));
    for buffer in [1, 16, 64, 1000, pcap::PCAP_BUFFER_LEN] {
        assert_eq!(read_with_buffer(&f, buffer), whole, "buffer {buffer}");
        assert_eq!(
            read_runs_with_buffer(&f, buffer),
            whole,
            "runs: buffer {buffer}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// pcapng
// ---------------------------------------------------------------------------------------------

/// A section with two interfaces (Ethernet with default microseconds; raw IP with
/// nanoseconds and a 100 s offset), packets on both, an SPB, a packet on an undeclared
/// interface, and statistics and name resolution blocks.
fn two_interface_section(be: bool) -> Vec<u8> {
    let mut f = shb(be);
    f.extend(idb(be, 1, 65535, &[])); // if 0: Ethernet, no options
    let offset: [u8; 8] = if be {
        100i64.to_be_bytes()
    } else {
        100i64.to_le_bytes()
    };
    let mut opts = ng_option(be, 9, &[9]); // if_tsresol: 10^-9 s
    opts.extend(ng_option(be, 14, &offset)); // if_tsoffset: +100 s, section byte order
    opts.extend(ng_end_of_options());
    f.extend(idb(be, 101, 65535, &opts)); // if 1: raw IP, ns, +100 s
    f.extend(epb(be, 0, 1_000_000_123_456, FRAME_A, 60)); // 1_000_000.123456 s
    f.extend(nrb(be));
    f.extend(epb(be, 1, 5_000_000_001, FRAME_B, 1500)); // 5.000000001 s + 100
    f.extend(epb(be, 7, 1, FRAME_B, 7)); // undeclared interface
    f.extend(spb(be, FRAME_B, 7)); // interface 0, no timestamp
    f.extend(isb(be, 0));
    f
}

#[rstest]
#[case::little_endian(false)]
#[case::big_endian(true)]
fn pcapng_two_interfaces(#[case] be: bool) {
    let f = two_interface_section(be);
    let (pkts, stats, pos) = read_bytes(&f);
    assert_eq!(
        pkts,
        vec![
            Owned {
                ts: Timestamp::new(1_000_000, 123_456_000),
                link: LinkType::Ethernet,
                data: FRAME_A.to_vec(),
                orig_len: 60,
                number: 1,
            },
            Owned {
                ts: Timestamp::new(105, 1),
                link: LinkType::Raw,
                data: FRAME_B.to_vec(),
                orig_len: 1500,
                number: 2,
            },
            Owned {
                // SPB: interface 0, timestamp of the previous packet.
                ts: Timestamp::new(105, 1),
                link: LinkType::Ethernet,
                data: FRAME_B.to_vec(),
                orig_len: 7,
                number: 3,
            },
        ]
    );
    assert_eq!(
        stats,
        CaptureStats {
            packets: 3,
            skipped_blocks: 2, // NRB and ISB
            unknown_interface: 1,
            ..CaptureStats::default()
        }
    );
    assert_eq!(pos, f.len() as u64);
    // A pcapng file has no buffered runs: the run loop reads it through next_packet alone.
    assert_eq!(read_runs_with_buffer(&f, 4096), read_with_buffer(&f, 4096));
}

#[test]
fn pcapng_sections_reset_interfaces_and_may_switch_byte_order() {
    let mut f = shb(true);
    f.extend(idb(true, 1, 0, &[]));
    f.extend(epb(true, 0, 1_000_000, FRAME_A, 60));
    // Second section, little-endian, with its own interface 0 (Linux SLL2, 2^-10 s units).
    f.extend(shb(false));
    let mut opts = ng_option(false, 9, &[0x80 | 10]); // if_tsresol: 2^-10
    opts.extend(ng_end_of_options());
    f.extend(idb(false, 276, 0, &opts));
    f.extend(epb(false, 0, 3 * 1024 + 512, FRAME_B, 7)); // 3.5 s
    f.extend(epb(false, 1, 0, FRAME_B, 7)); // interface 1 belongs to no section now
    let (pkts, stats, _) = read_bytes(&f);
    assert_eq!(pkts.len(), 2);
    assert_eq!(pkts[0].link, LinkType::Ethernet);
    assert_eq!(pkts[0].ts, Timestamp::new(1, 0));
    assert_eq!(pkts[1].link, LinkType::LinuxSll2);
    assert_eq!(pkts[1].ts, Timestamp::new(3, 500_000_000));
    assert_eq!(pkts[1].number, 2);
    assert_eq!(stats.unknown_interface, 1);
    assert!(!stats.corrupt && !stats.truncated);
}

#[test]
fn pcapng_spb_cut_by_snaplen_and_before_any_idb() {
    let mut f = shb(false);
    f.extend(spb(false, FRAME_B, 7)); // no interface yet
    f.extend(idb(false, 1, 4, &[])); // snaplen 4
    f.extend(spb(false, &FRAME_B[..4], 1514)); // captured 4 of 1514
    let (pkts, stats, _) = read_bytes(&f);
    assert_eq!(stats.unknown_interface, 1);
    assert_eq!(pkts.len(), 1);
    assert_eq!(pkts[0].data, &FRAME_B[..4]);
    assert_eq!(pkts[0].orig_len, 1514);
    assert_eq!(pkts[0].ts, Timestamp::default());
}

#[rstest]
#[case(false)]
#[case(true)]
fn pcapng_obsolete_packet_block(#[case] be: bool) {
    let mut f = shb(be);
    f.extend(idb(be, 0, 0, &[]));
    f.extend(obsolete_pb(be, 0, 2_500_000, FRAME_B, 9));
    f.extend(obsolete_pb(be, 3, 0, FRAME_B, 9)); // undeclared interface
    let (pkts, stats, _) = read_bytes(&f);
    assert_eq!(
        pkts,
        vec![Owned {
            ts: Timestamp::new(2, 500_000_000),
            link: LinkType::Null,
            data: FRAME_B.to_vec(),
            orig_len: 9,
            number: 1,
        }]
    );
    assert_eq!(stats.unknown_interface, 1);
}

#[test]
fn pcapng_truncated_at_every_byte_of_the_last_block() {
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, &[]));
    f.extend(epb(false, 0, 1, FRAME_A, 60));
    let good_end = f.len();
    f.extend(epb(false, 0, 2, FRAME_B, 7));
    for cut in good_end + 1..f.len() {
        let (pkts, stats, _) = read_bytes(&f[..cut]);
        assert_eq!(pkts.len(), 1, "cut at {cut}");
        assert!(stats.truncated && !stats.corrupt, "cut at {cut}: {stats:?}");
        assert_eq!(stats.stopped_at, Some(good_end as u64));
    }
}

#[test]
fn pcapng_malformed_blocks_in_the_middle_are_corrupt() {
    let mut head = shb(false);
    head.extend(idb(false, 1, 0, &[]));
    head.extend(epb(false, 0, 1, FRAME_A, 60));
    let good_end = head.len() as u64;
    let tail = epb(false, 0, 2, FRAME_B, 7);

    // Block length not a multiple of 4.
    let mut bad = tail.clone();
    bad[4] = 41;
    // Block length below the minimum.
    let mut tiny = tail.clone();
    tiny[4..8].copy_from_slice(&8u32.to_le_bytes());
    // Block length beyond the cap.
    let mut huge = tail.clone();
    huge[4..8].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    // Trailing length disagrees with the leading one.
    let mut trailer = tail.clone();
    let n = trailer.len();
    trailer[n - 4..].copy_from_slice(&12u32.to_le_bytes());
    // Captured length larger than the block: a whole block, malformed (not truncated).
    let mut caplen = tail.clone();
    caplen[20..24].copy_from_slice(&500u32.to_le_bytes());
    // A section header with a bad byte-order magic.
    let mut bom = shb(false);
    bom[8..12].copy_from_slice(&[1, 2, 3, 4]);

    for (name, block) in [
        ("unaligned", bad),
        ("tiny", tiny),
        ("huge", huge),
        ("trailer", trailer),
        ("caplen", caplen),
        ("bom", bom),
    ] {
        let mut f = head.clone();
        f.extend(&block);
        f.extend(epb(false, 0, 3, FRAME_A, 60)); // never reached
        let (pkts, stats, _) = read_bytes(&f);
        assert_eq!(pkts.len(), 1, "{name}");
        assert!(stats.corrupt && !stats.truncated, "{name}: {stats:?}");
        assert_eq!(stats.stopped_at, Some(good_end), "{name}");
    }
}

#[test]
fn pcapng_large_section_header_and_block() {
    // A section header with a 100 KB comment (larger than the initial buffer).
    let comment = vec![b'x'; 100_000];
    // Two comments (an option length is 16 bits).
    let mut body = Vec::new();
    body.extend(u32b(0x1a2b_3c4d, false)); // byte-order magic
    body.extend(u16b(1, false)); // major version
    body.extend(u16b(0, false)); // minor version
    body.extend_from_slice(&[0xff; 8]); // section length: unspecified
    body.extend(ng_option(false, 1, &comment[..50_000])); // opt_comment
    body.extend(ng_option(false, 1, &comment[50_000..])); // opt_comment
    body.extend(ng_end_of_options());
    let mut f = ng_block(false, 0x0a0d_0d0a, &body);
    f.extend(idb(false, 1, 0, &[]));
    let big = vec![0x55; 300_000];
    f.extend(epb(false, 0, 1, &big, 300_000));
    f.extend(epb(false, 0, 2, FRAME_B, 7));
    let (pkts, stats, pos) = read_bytes(&f);
    assert_eq!(pkts.len(), 2);
    assert_eq!(pkts[0].data.len(), 300_000);
    assert_eq!(pkts[1].data, FRAME_B);
    assert_eq!(stats.packets, 2);
    assert_eq!(pos, f.len() as u64);
}

// ---------------------------------------------------------------------------------------------
// Not a capture, I/O errors
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::empty(b"", "empty file")]
#[case::text(b"hello, this is not a capture\n", "text file")]
#[case::short(b"\xd4\xc3\xb2", "too short")]
#[case::header_cut(b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00", "pcap file header")]
#[case::shb_cut(
    b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a\x01\x00",
    "section header block"
)]
fn not_a_capture(#[case] bytes: &[u8], #[case] reason: &str) {
    match open_err(bytes) {
        CaptureError::NotACapture { path, reason: r } => {
            assert!(r.contains(reason), "{r:?} lacks {reason:?}");
            assert!(path.to_string_lossy().contains("otwatch-capture-test"));
        }
        e => panic!("unexpected {e:?}"),
    }
}

#[test]
fn section_header_with_an_overlong_option_is_tolerated() {
    // pcap-parser stops reading options at one that overruns the block; the block's own
    // length still frames the next block, so the file reads on.
    let mut body = Vec::new();
    body.extend(u32b(0x1a2b_3c4d, false)); // byte-order magic
    body.extend(u16b(1, false)); // major version
    body.extend(u16b(0, false)); // minor version
    body.extend_from_slice(&[0xff; 8]); // section length: unspecified
    body.extend(u16b(1, false)); // option code: opt_comment
    body.extend(u16b(200, false)); // option length: beyond the block
    let mut f = ng_block(false, 0x0a0d_0d0a, &body);
    f.extend(idb(false, 1, 0, &[]));
    f.extend(epb(false, 0, 1, FRAME_B, 7));
    let (pkts, stats, _) = read_bytes(&f);
    assert_eq!(pkts.len(), 1);
    assert!(!stats.corrupt && !stats.truncated);
}

#[test]
fn missing_file_is_io_naming_the_path() {
    let path = std::env::temp_dir().join("otwatch-capture-test-does-not-exist.pcap");
    let err = CaptureFile::open(&path).unwrap_err();
    assert!(
        matches!(err, CaptureError::Io { ref path, .. } if path.ends_with("otwatch-capture-test-does-not-exist.pcap"))
    );
    assert!(err
        .to_string()
        .contains("otwatch-capture-test-does-not-exist.pcap"));
}

#[test]
fn directory_is_io() {
    let err = CaptureFile::open(&std::env::temp_dir()).unwrap_err();
    assert!(matches!(err, CaptureError::Io { .. }), "{err:?}");
}

#[test]
fn accessors() {
    let mut f = pcap_header(false, true, 1);
    f.extend(pcap_record(false, 1, 2, FRAME_A, 60));
    let file = TempFile::new(&f);
    let mut cap = CaptureFile::open(&file.0).unwrap();
    assert_eq!(cap.path(), file.0.as_path());
    assert_eq!(cap.format(), CaptureFormat::Pcap { nanosecond: true });
    assert_eq!(cap.position(), 24);
    let p = cap.next_packet().unwrap().unwrap();
    assert_eq!(p.number, 1);
    assert_eq!(cap.position(), f.len() as u64);
    assert!(format!("{cap:?}").contains("CaptureFile"));
}

// ---------------------------------------------------------------------------------------------
// Framing and obsolete packet block helpers
// ---------------------------------------------------------------------------------------------

#[test]
fn framing_needs_header_bytes_first() {
    let pcap = |data: &[u8]| pcap::framing(data, false, 16);
    assert_eq!(pcap(&[]), Framing::NeedHeader(16));
    assert_eq!(pcap(&[0; 15]), Framing::NeedHeader(16));
    assert_eq!(pcap(&[0; 16]), Framing::Record(16));
    assert_eq!(pcap::framing(&[0; 20], false, 24), Framing::NeedHeader(24));
    assert_eq!(pcap::framing(&[0; 24], false, 24), Framing::Record(24));
    let mut huge = [0u8; 16];
    huge[8..12].copy_from_slice(&0x0100_0000u32.to_be_bytes());
    assert_eq!(pcap::framing(&huge, true, 16), Framing::Invalid);
    assert_eq!(pcap::framing(&huge, false, 16), Framing::Record(17));
    let ng = |data: &[u8]| ng_framing(data, false);
    assert_eq!(ng(&[6, 0, 0]), Framing::NeedHeader(8));
    assert_eq!(ng(&[6, 0, 0, 0, 32, 0, 0, 0]), Framing::Record(32));
    assert_eq!(
        ng(&[0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 28]),
        Framing::NeedHeader(12)
    );
    assert_eq!(
        ng(&[0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 28, 0x1a, 0x2b, 0x3c, 0x4d]),
        Framing::Record(28)
    );
}

#[test]
fn obsolete_packet_parse_rejects_short_bodies() {
    let body = [0u8; 19];
    assert_eq!(ObsoletePacket::parse(&body, false), None);
    let mut body = vec![0u8; 24];
    body[12] = 5; // caplen 5 > 4 bytes of room
    assert_eq!(ObsoletePacket::parse(&body, false), None);
    body[12] = 4;
    assert_eq!(
        ObsoletePacket::parse(&body, false),
        Some(ObsoletePacket {
            if_id: 0,
            ts: 0,
            caplen: 4,
            orig_len: 0
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------------------------

/// Reads without asserting anything but termination and consistency.
fn read_any(bytes: &[u8]) {
    let file = TempFile::new(bytes);
    let Ok(mut cap) = CaptureFile::open(&file.0) else {
        return;
    };
    let mut n = 0u64;
    while let Some(p) = cap.next_packet().unwrap() {
        n += 1;
        assert_eq!(p.number, n);
        assert!(cap.position() <= bytes.len() as u64);
    }
    let stats = cap.stats();
    assert_eq!(stats.packets, n);
    assert!(!(stats.truncated && stats.corrupt));
    assert_eq!(stats.stopped_at.is_some(), stats.truncated || stats.corrupt);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn pcap_with_random_tail(be in any::<bool>(), nanos in any::<bool>(),
                             tail in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut f = pcap_header(be, nanos, 1);
        f.extend(tail);
        read_any(&f);
    }

    /// Random records, some with an impossible length, read alike through any buffer size.
    #[test]
    fn pcap_random_records_any_buffer(be in any::<bool>(), nanos in any::<bool>(),
                                      recs in proptest::collection::vec((0usize..300, any::<u32>(), any::<bool>()), 0..12),
                                      cut in any::<usize>(), buffer in 1usize..600) {
        let mut f = pcap_header(be, nanos, 1);
        for (len, frac, bad) in recs {
            let mut r = pcap_record(be, 5, frac, &vec![0xa5; len], len as u32 + 3);
            if bad && len % 5 == 0 {
                r[8..12].copy_from_slice(&u32b(0x7fff_0000, be));
            }
            f.extend(r);
        }
        f.truncate(24 + cut % (f.len() - 23));
        let whole = read_with_buffer(&f, pcap::PCAP_BUFFER_LEN);
        prop_assert_eq!(&read_with_buffer(&f, buffer), &whole);
        prop_assert_eq!(&read_runs_with_buffer(&f, buffer), &whole);
        // The same through a map whose window is `buffer` bytes, edges on 1 or 4096 bytes.
        let plan = mapped::MapPlan { window: buffer, align: if be { 1 } else { 4096 }, min_len: 0 };
        prop_assert_eq!(&read_with(&f, 16, Some(plan)), &whole);
        prop_assert_eq!(read_runs_with(&f, 16, Some(plan)), whole);
    }

    #[test]
    fn pcapng_with_mutations(be in any::<bool>(),
                             edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
                             cut in any::<usize>()) {
        let mut f = two_interface_section(be);
        f.extend(obsolete_pb(be, 1, 9, FRAME_A, 60));
        let len = f.len();
        for (at, v) in edits {
            f[at % len] = v;
        }
        f.truncate(cut % (len + 1));
        read_any(&f);
    }

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        read_any(&bytes);
    }

    /// pcapng sections (both byte orders, every kind of packet block, skipped blocks, packets
    /// of every size), mutated and cut anywhere, read alike through any buffer size and
    /// through maps of small windows: packets, stats, positions, or the same open error.
    #[test]
    fn pcapng_any_buffer_and_map(be in any::<bool>(),
                                 sizes in proptest::collection::vec(0usize..300, 0..10),
                                 edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
                                 cut in any::<usize>(), buffer in 1usize..600) {
        let mut f = ng_sections(be, &sizes, true);
        let len = f.len();
        for (at, v) in edits {
            f[at % len] = v;
        }
        f.truncate(cut % (len + 1));
        let whole = try_read_with(&f, pcap::PCAP_BUFFER_LEN, None);
        prop_assert_eq!(&try_read_with(&f, buffer, None), &whole);
        let plan = mapped::MapPlan { window: buffer, align: if be { 1 } else { 4096 }, min_len: 0 };
        prop_assert_eq!(&try_read_with(&f, 16, Some(plan)), &whole);
        // Runs of plain packet blocks, as the pipeline reads: the same.
        if let Ok(whole) = whole {
            prop_assert_eq!(&read_runs_with(&f, buffer, None), &whole);
            prop_assert_eq!(read_runs_with(&f, 16, Some(plan)), whole);
        }
    }
}

/// Two pcapng sections, the second in the other byte order: [`two_interface_section`], then
/// packets of `sizes` bytes in Enhanced, Simple and (with `obsolete`, else Enhanced) obsolete
/// Packet Blocks, with statistics between them.
fn ng_sections(be: bool, sizes: &[usize], obsolete: bool) -> Vec<u8> {
    let mut f = two_interface_section(be);
    f.extend(shb(!be));
    f.extend(idb(!be, 1, 0, &[]));
    for (i, &n) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..n).map(|k| (k + i) as u8).collect();
        let orig = n as u32 + (i as u32 % 3);
        // Two Enhanced Packet Blocks in a row, then a Simple one: the second is taken in a
        // run, and the Simple one after it has its time.
        match i % 5 {
            2 => f.extend(spb(!be, &data, orig)),
            3 if obsolete => f.extend(obsolete_pb(!be, 0, i as u64, &data, orig)),
            0 | 1 | 3 => f.extend(epb(!be, 0, i as u64 * 1_000_003, &data, orig)),
            _ => f.extend(isb(!be, 0)),
        }
    }
    f
}

/// [`read_with`], or the open error's text.
fn try_read_with(
    bytes: &[u8],
    buffer: usize,
    plan: Option<mapped::MapPlan>,
) -> Result<(Vec<Owned>, CaptureStats, Vec<u64>), String> {
    let file = TempFile::new(bytes);
    if let Err(e) = CaptureFile::open_with(&file.0, buffer, plan) {
        return Err(e.to_string().replace(&file.0.display().to_string(), "FILE"));
    }
    Ok(read_with(bytes, buffer, plan))
}

/// The packets of a pcapng file as pcap-parser's own streaming reader (what this module used
/// before it framed blocks over its own buffer) sees them: the captured bytes and original
/// length of every Enhanced and Simple Packet Block on a described interface.
fn ng_oracle(bytes: &[u8]) -> Vec<(Vec<u8>, u32)> {
    use pcap_parser::traits::PcapReaderIterator;
    use pcap_parser::{PcapBlockOwned, PcapError, PcapNGReader};
    let mut reader = PcapNGReader::new(bytes.len().max(1 << 16), bytes).unwrap();
    let mut out = Vec::new();
    let mut interfaces = 0usize;
    loop {
        match reader.next() {
            Ok((n, block)) => {
                match block {
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => interfaces = 0,
                    PcapBlockOwned::NG(Block::InterfaceDescription(_)) => interfaces += 1,
                    PcapBlockOwned::NG(Block::EnhancedPacket(b))
                        if (b.if_id as usize) < interfaces =>
                    {
                        out.push((b.data[..b.caplen as usize].to_vec(), b.origlen));
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(b)) if interfaces > 0 => {
                        out.push((
                            b.data[..(b.origlen as usize).min(b.data.len())].to_vec(),
                            b.origlen,
                        ));
                    }
                    _ => {}
                }
                reader.consume(n);
            }
            Err(PcapError::Incomplete(_)) => {
                if reader.reader_exhausted() {
                    return out;
                }
                reader.refill().unwrap();
            }
            Err(_) => return out,
        }
    }
}

/// Sections of every kind of block pcap-parser's streaming reader knows, in both byte orders,
/// give the packets it gives, read through the buffer or through a map; cut anywhere in the
/// last block, the same packets and a truncation there.
#[test]
fn pcapng_agrees_with_pcap_parsers_reader() {
    for be in [false, true] {
        let sizes: Vec<usize> = (0..40).map(|i| i * 37 % 290).collect();
        let f = ng_sections(be, &sizes, false);
        let (pkts, stats, _) = read_bytes(&f);
        assert!(!stats.truncated && !stats.corrupt, "{stats:?}");
        assert_eq!(pkts.len(), 3 + 32, "be {be}");
        let got: Vec<_> = pkts.iter().map(|p| (p.data.clone(), p.orig_len)).collect();
        assert_eq!(got, ng_oracle(&f), "be {be}");
        for plan in small_plans() {
            assert_eq!(read_with(&f, 16, Some(plan)).0, pkts, "be {be} {plan:?}");
            assert_eq!(
                read_runs_with(&f, 16, Some(plan)).0,
                pkts,
                "be {be} {plan:?}"
            );
        }
        assert_eq!(read_runs_with(&f, 100, None).0, pkts, "be {be}");
        let last = f.len() - isb(!be, 0).len();
        for cut in [f.len() - 1, last + 1, last + 11] {
            let (cut_pkts, cut_stats, _) = read_bytes(&f[..cut]);
            assert_eq!(cut_pkts, pkts, "be {be} cut {cut}");
            assert!(cut_stats.truncated, "be {be} cut {cut}");
            assert_eq!(cut_stats.stopped_at, Some(last as u64));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Memory-mapped legacy pcap
// ---------------------------------------------------------------------------------------------

/// Map plans small enough that a test file takes many windows: windows of one byte, of a
/// prime number of bytes, and of a page on page edges.
fn small_plans() -> [mapped::MapPlan; 3] {
    [(1, 1), (17, 1), (4096, 4096)].map(|(window, align)| mapped::MapPlan {
        window,
        align,
        min_len: 0,
    })
}

/// A capture of `n` records of `len` bytes each (record `i` filled with `i`).
fn records_file(n: u32, len: usize) -> Vec<u8> {
    let mut f = pcap_header(false, false, 1);
    for i in 0..n {
        f.extend(pcap_record(
            false,
            100 + i,
            i,
            &vec![i as u8; len],
            len as u32,
        ));
    }
    f
}

/// Whether `cap` reads its records from a map.
fn is_mapped(cap: &CaptureFile) -> bool {
    match &cap.layout {
        Layout::Pcap(p) => p.is_mapped(),
        Layout::PcapNg(ng) => ng.w.is_mapped(),
    }
}

/// The default plan maps a file of 1 MB or more and reads a smaller one; both give the packets
/// a plain read gives.
#[test]
fn default_plan_maps_large_files_only() {
    let ng = |n: usize| {
        let mut f = shb(false);
        f.extend(idb(false, 1, 0, &[]));
        for i in 0..n {
            f.extend(epb(false, 0, i as u64, &vec![i as u8; 1000], 1000));
        }
        f
    };
    let files = [
        (records_file(10, 1000), false),
        (records_file(1100, 1000), true),
        (ng(10), false),
        (ng(1100), true),
    ];
    for (bytes, mapped_expected) in files {
        let n = bytes.len();
        let file = TempFile::new(&bytes);
        let mut cap =
            CaptureFile::open_with(&file.0, pcap::PCAP_BUFFER_LEN, Some(mapped::DEFAULT_PLAN))
                .unwrap();
        assert!(cap.next_packet().unwrap().is_some());
        assert_eq!(
            is_mapped(&cap),
            mapped_expected && cfg!(target_os = "linux")
        );
        drop(cap);
        assert_eq!(
            read_with(&bytes, 4096, Some(mapped::DEFAULT_PLAN)),
            read_with_buffer(&bytes, 4096),
            "{n} bytes"
        );
    }
}

/// Records appended after the map was made are read at its end, as plain reads would read
/// them.
#[test]
fn bytes_appended_after_the_map_are_read() {
    let bytes = records_file(40, 300);
    let more = records_file(50, 300);
    let file = TempFile::new(&bytes);
    for plan in small_plans() {
        std::fs::write(&file.0, &bytes).unwrap();
        let mut cap = CaptureFile::open_with(&file.0, 64, Some(plan)).unwrap();
        let mut got = Vec::new();
        for _ in 0..10 {
            got.push(cap.next_packet().unwrap().unwrap().data.to_vec());
        }
        assert_eq!(is_mapped(&cap), cfg!(target_os = "linux"));
        // Ten more records, written after the 24-byte header of the longer file.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file.0)
            .unwrap();
        std::io::Write::write_all(&mut f, &more[bytes.len()..]).unwrap();
        while let Some(p) = cap.next_packet().unwrap() {
            got.push(p.data.to_vec());
        }
        let want: Vec<Vec<u8>> = (0..50u32).map(|i| vec![i as u8; 300]).collect();
        assert_eq!(got, want, "{plan:?}");
        assert!(!cap.stats().truncated);
        assert_eq!(cap.position(), more.len() as u64);
    }
}

/// A file cut short ahead of the resident window is read to its new end, as plain reads would
/// read it: the records before the cut, then a truncated record.
#[test]
fn a_file_cut_ahead_of_the_window_ends_as_truncated() {
    let bytes = records_file(64, 1000);
    let cut = 24 + 40 * 1016 + 500;
    let file = TempFile::new(&bytes);
    let plan = mapped::MapPlan {
        window: 4096,
        align: 4096,
        min_len: 0,
    };
    let mut cap = CaptureFile::open_with(&file.0, 64, Some(plan)).unwrap();
    let mut n = 0u32;
    assert!(cap.next_packet().unwrap().is_some());
    n += 1;
    assert_eq!(is_mapped(&cap), cfg!(target_os = "linux"));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file.0)
        .unwrap()
        .set_len(cut as u64)
        .unwrap();
    // The window resident before the cut (up to offset 8192) is read from the map; from
    // there on the populate fails and reads take over.
    while let Some(p) = cap.next_packet().unwrap() {
        assert_eq!(p.data, vec![n as u8; 1000].as_slice());
        n += 1;
    }
    assert_eq!(n, 40);
    assert!(cap.stats().truncated);
    assert_eq!(cap.position(), 24 + 40 * 1016);
}

/// A file that shrinks under the resident window makes the process print one line naming the
/// file and the offset and exit with code 2 (run in a child process: the test binary itself).
#[cfg(target_os = "linux")]
#[test]
fn a_file_cut_under_the_map_is_a_one_line_error() {
    const CHILD: &str = "OTWATCH_TEST_SIGBUS_FILE";
    if let Some(path) = std::env::var_os(CHILD) {
        let path = PathBuf::from(path);
        let plan = mapped::MapPlan {
            window: 1 << 20,
            align: 4096,
            min_len: 0,
        };
        let mut cap = CaptureFile::open_with(&path, 64, Some(plan)).unwrap();
        assert!(cap.next_packet().unwrap().is_some());
        assert!(is_mapped(&cap));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(24)
            .unwrap();
        // The next record's header is on the second page, which the cut took away.
        let _ = cap.next_packet();
        panic!("read past the cut without a SIGBUS");
    }
    let file = TempFile::new(&records_file(8, 5000));
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "capture::tests::a_file_cut_under_the_map_is_a_one_line_error",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, &file.0)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let want = format!(
        "otwatch: error: {}: the file shrank while it was being read (at byte 5040)\n",
        file.0.display()
    );
    assert!(stderr.ends_with(&want), "stderr: {stderr}");
}

// ---------------------------------------------------------------------------------------------
// The plain Enhanced Packet Block path against pcap-parser
// ---------------------------------------------------------------------------------------------

/// An Enhanced Packet Block from its parts, in either byte order: `len` and `trailer` as the
/// leading and trailing lengths (the real length when `None`), `options` raw after the data.
#[allow(clippy::too_many_arguments)]
fn epb_block(
    be: bool,
    block_type: u32,
    if_id: u32,
    ts: u64,
    caplen: u32,
    origlen: u32,
    data_room: usize,
    options: &[u8],
    len: Option<u32>,
    trailer: Option<u32>,
) -> Vec<u8> {
    let w = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let real = (32 + data_room + options.len()) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(&w(block_type));
    b.extend_from_slice(&w(len.unwrap_or(real)));
    b.extend_from_slice(&w(if_id));
    b.extend_from_slice(&w((ts >> 32) as u32));
    b.extend_from_slice(&w(ts as u32));
    b.extend_from_slice(&w(caplen));
    b.extend_from_slice(&w(origlen));
    b.extend((0..data_room).map(|i| i as u8));
    b.extend_from_slice(options);
    b.extend_from_slice(&w(trailer.unwrap_or(real)));
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever bytes a block holds, `plain_epb` takes it only when pcap-parser parses it as
    /// an Enhanced Packet Block without options, and then finds the packet the slow path
    /// finds (same bytes, time, interface, lengths).
    #[test]
    fn the_plain_epb_path_takes_only_what_pcap_parser_takes_alike(
        be in any::<bool>(),
        odd_type in prop::option::of(any::<u32>()),
        if_id in 0u32..3,
        ts in any::<u64>(),
        caplen in 0u32..80,
        room_delta in -8i32..12,
        options in prop::sample::select(vec![vec![], vec![0, 0, 0, 0], vec![1, 0, 4, 0, b'a', b'b', b'c', b'd', 0, 0, 0, 0]]),
        len_field in prop::option::of(0u32..200),
        trailer in prop::option::of(0u32..200),
        resolution in prop::sample::select(vec![1u64, 1_000, 1_000_000, 1_000_000_000, 1 << 20, 1 << 40]),
    ) {
        let room = usize::try_from((i64::from(caplen) + 3) / 4 * 4 + i64::from(room_delta)).unwrap_or(0);
        let block_type = odd_type.unwrap_or(EPB_TYPE);
        let block = epb_block(be, block_type, if_id, ts, caplen, caplen + 7, room, &options, len_field, trailer);
        let interfaces = vec![
            Interface { link: LinkType::Ethernet, units_per_sec: resolution, offset_secs: -3, snaplen: 0 },
            Interface { link: LinkType::Raw, units_per_sec: 1_000_000, offset_secs: 0, snaplen: 0 },
        ];
        let len = block.len();
        let fast = plain_epb(&block, len, be, &interfaces);
        let parsed = if be {
            pcap_parser::pcapng::parse_enhancedpacketblock_be(&block)
        } else {
            pcap_parser::pcapng::parse_enhancedpacketblock_le(&block)
        };
        if let Some(found) = &fast {
            let (rest, epb) = parsed.expect("pcap-parser takes a block the plain path takes");
            prop_assert!(rest.is_empty());
            prop_assert!(epb.options.is_empty());
            let iface = &interfaces[epb.if_id as usize];
            let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
            prop_assert_eq!(found.record_len, len);
            prop_assert_eq!(found.len, epb.caplen as usize);
            prop_assert_eq!(&block[found.start..found.start + found.len], &epb.data[..epb.caplen as usize]);
            prop_assert_eq!(found.orig_len, epb.origlen);
            prop_assert_eq!(found.link, iface.link);
            prop_assert_eq!(found.ts, timestamps::from_units(raw, iface.units_per_sec, iface.offset_secs));
        }
        // And it takes every block that is one: no bytes after the padded data, both lengths
        // right, an interface it knows. (Declining is always safe: pcap-parser then reads it.)
        let padded = (caplen as usize).div_ceil(4) * 4;
        let plain = block_type == EPB_TYPE
            && room + options.len() == padded
            && len_field.is_none_or(|l| l as usize == len)
            && trailer.is_none_or(|t| t as usize == len)
            && (if_id as usize) < interfaces.len();
        prop_assert_eq!(fast.is_some(), plain);
    }

    /// The timestamp conversion's shortcuts for common resolutions give the 128-bit result.
    #[test]
    fn units_convert_as_the_wide_formula(raw in any::<u64>(), which in 0usize..6, offset in -5i64..5) {
        let units = [1u64, 1_000, 1_000_000, 1_000_000_000, 18_446_744_073, u64::MAX][which];
        let secs = i64::try_from(raw / units).unwrap_or(i64::MAX).saturating_add(offset);
        let nanos = u128::from(raw % units) * 1_000_000_000 / u128::from(units);
        prop_assert_eq!(
            timestamps::from_units(raw, units, offset),
            Timestamp::new(secs, u32::try_from(nanos).unwrap())
        );
    }
}
