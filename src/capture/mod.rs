//! Packet sources: pcap and pcapng files, streamed in constant memory.
//!
//! A [`CaptureFile`] hands out one [`Packet`] at a time, borrowing its bytes from an internal
//! buffer that is reused for the next packet (a lending iterator). Live capture will implement
//! the same shape.
//!
//! Legacy pcap is read by this module itself (`pcap.rs`): one large buffer, each record's
//! header read in one load and its bytes handed out as a slice of the buffer, the refill
//! amortised over the hundreds of records a buffer holds. pcapng blocks are framed over the
//! same buffer (`pcap::Window`), the common one (an Enhanced Packet Block without options) read
//! from its fixed fields, every other one parsed by `pcap-parser`'s block parsers. On Linux a
//! file of 1 MB or more, of either format, is read through a memory map instead of the buffer
//! (`mapped.rs`). Either way each record is framed before it is parsed: its declared length is
//! read, checked against [`MAX_BLOCK_LEN`], and the whole record brought into the buffer
//! (refilling, and growing the buffer only for a record larger than it). So a record that the
//! file cuts short is told apart from a malformed one: the first sets
//! [`CaptureStats::truncated`], the second [`CaptureStats::corrupt`].
//!
//! Formats:
//! - pcap: both byte orders, microsecond and nanosecond magic, and the little-endian
//!   "modified pcap" magic (`a1b2cd34`, 24-byte record headers). The header's link type
//!   (upper FCS bits masked off) applies to every record.
//! - pcapng: any number of sections, in either byte order; interfaces (IDB) are per section,
//!   each with its link type, `if_tsresol` (power of 10, or of 2 with the high bit set; default
//!   microseconds; an unrepresentable value falls back to microseconds) and `if_tsoffset`.
//!   Packets come from Enhanced Packet Blocks, Simple Packet Blocks and the obsolete Packet
//!   Block (type 2). A Simple Packet Block belongs to interface 0 and has no timestamp: it gets
//!   the timestamp of the previous packet in the file (the epoch if it is the first).
//!   Section headers and interface descriptions are bookkeeping; every other block (name
//!   resolution, statistics, secrets, custom, unknown) is skipped and counted in
//!   [`CaptureStats::skipped_blocks`]. A packet on an interface the section never described is
//!   counted in [`CaptureStats::unknown_interface`] and skipped.

mod mapped;
pub(crate) use mapped::MapPlan;
mod pcap;
mod sniff;
mod timestamps;

use crate::decode::LinkType;
use crate::time::Timestamp;
use pcap::{PcapStream, Refill, Window};
use pcap_parser::{
    parse_block_be, parse_block_le, parse_sectionheaderblock, Block, InterfaceDescriptionBlock,
    OptionCode,
};
use sniff::{sniff, Sniffed, SNIFF_LEN};
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use thiserror::Error;

/// Whether [`CaptureFile::open`] maps capture files (on Linux); see [`set_mapping`].
static MAPPING: AtomicBool = AtomicBool::new(true);

/// Whether capture files opened from now on are read through a memory map (the default, on
/// Linux, for files of 1 MB or more) or with plain reads (the CLI's `--no-mmap`, e.g. for files
/// on a network share that may go away while they are read). Output is the same either way.
pub fn set_mapping(on: bool) {
    MAPPING.store(on, Ordering::Relaxed);
}

/// Largest record (pcap record or pcapng block) the reader accepts; the buffer grows up to
/// this size for a large record, and a record declaring more is treated as corruption.
pub const MAX_BLOCK_LEN: usize = 16 * 1024 * 1024;

/// Most interfaces remembered per pcapng section; further descriptions are skipped (and
/// counted), so their packets count as [`CaptureStats::unknown_interface`].
pub const MAX_INTERFACES: usize = 1 << 16;

/// Block type of a pcapng Section Header Block (a palindrome: the same in both byte orders).
const SHB_TYPE: u32 = 0x0a0d_0d0a;

/// Block type of the obsolete pcapng Packet Block.
const OBSOLETE_PB_TYPE: u32 = 2;

/// Generic pcapng block header: type and total length.
const NG_BLOCK_HEADER_LEN: usize = 8;

/// Smallest pcapng block: type, length, trailing length.
const NG_MIN_BLOCK_LEN: usize = 12;

/// Offset of the packet bytes in an Enhanced Packet Block (and in an obsolete Packet Block).
const EPB_DATA_OFFSET: usize = 28;

/// Enhanced Packet Block type.
const EPB_TYPE: u32 = 6;

/// Offset of the packet bytes in a Simple Packet Block.
const SPB_DATA_OFFSET: usize = 12;

/// Offset of the packet bytes within the body of an obsolete Packet Block.
const PB_BODY_DATA_OFFSET: usize = 20;

/// One captured frame, borrowed from the source's buffer until the next call.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Capture timestamp.
    pub ts: Timestamp,
    /// Link type of this frame (pcapng interfaces may differ).
    pub link: LinkType,
    /// Captured bytes (possibly cut by snaplen).
    pub data: &'a [u8],
    /// Length of the frame on the wire.
    pub orig_len: u32,
    /// 1-based packet number in the file, as Wireshark numbers frames.
    pub number: u64,
}

/// The buffered records of a legacy pcap file ([`CaptureFile::buffered`]).
#[derive(Debug)]
pub struct Buffered<'a> {
    run: pcap::Run<'a>,
    link: LinkType,
    stats: &'a mut CaptureStats,
}

impl Buffered<'_> {
    /// The next record when it is wholly in the read buffer; `None` otherwise, having
    /// changed nothing. No `Result` to pass back, so that a caller's loop keeps the packet in
    /// registers.
    #[inline(always)]
    pub fn take(&mut self) -> Option<Packet<'_>> {
        let (ts, orig_len, data) = self.run.take()?;
        self.stats.packets += 1;
        Some(Packet {
            ts,
            link: self.link,
            data,
            orig_len,
            number: self.stats.packets,
        })
    }

    /// Packets of the file handed out so far.
    #[inline]
    pub fn packets(&self) -> u64 {
        self.stats.packets
    }

    /// Bytes of the file consumed so far (as [`CaptureFile::position`]).
    pub fn position(&self) -> u64 {
        self.run.position()
    }
}

/// The plain packet blocks of a pcapng file wholly in its window ([`CaptureFile::ng_buffered`]):
/// Enhanced Packet Blocks without options of a known interface, the common block, taken one
/// after the other; the first other block ends the run (and goes through
/// [`CaptureFile::next_packet`]).
#[derive(Debug)]
pub struct NgBuffered<'a> {
    bytes: &'a [u8],
    pos: &'a mut usize,
    base: u64,
    big_endian: bool,
    interfaces: &'a [Interface],
    last_ts: &'a mut Timestamp,
    stats: &'a mut CaptureStats,
}

impl NgBuffered<'_> {
    /// The next block when it is a plain Enhanced Packet Block wholly in the window; `None`
    /// otherwise, having changed nothing.
    #[inline(always)]
    pub fn take(&mut self) -> Option<Packet<'_>> {
        let at = *self.pos;
        let rest = self.bytes.get(at..)?;
        let Framing::Record(len) = ng_framing(rest, self.big_endian) else {
            return None;
        };
        let block = rest.get(..len)?;
        let found = plain_epb(block, len, self.big_endian, self.interfaces)?;
        let data = block.get(found.start..found.start.checked_add(found.len)?)?;
        pcap::prefetch_ahead(self.bytes, at);
        *self.pos = at + len;
        *self.last_ts = found.ts;
        self.stats.packets += 1;
        Some(Packet {
            ts: found.ts,
            link: found.link,
            data,
            orig_len: found.orig_len,
            number: self.stats.packets,
        })
    }

    /// Packets of the file handed out so far.
    #[inline]
    pub fn packets(&self) -> u64 {
        self.stats.packets
    }

    /// Bytes of the file consumed so far (as [`CaptureFile::position`]).
    pub fn position(&self) -> u64 {
        self.base.saturating_add(*self.pos as u64)
    }
}

/// Why a capture file could not be read. Each names the file.
#[derive(Debug, Error)]
pub enum CaptureError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a pcap or pcapng capture.
    #[error("{path}: not a pcap or pcapng capture ({reason})")]
    NotACapture {
        /// The file.
        path: PathBuf,
        /// What was wrong with the header.
        reason: String,
    },
}

/// Counters of what a file reader met besides packets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packets handed out.
    pub packets: u64,
    /// The file ended inside a record (a truncated last packet, not handed out).
    pub truncated: bool,
    /// The file had a malformed block after which reading stopped.
    pub corrupt: bool,
    /// Byte offset of the truncation or corruption, if any.
    pub stopped_at: Option<u64>,
    /// pcapng blocks skipped because they carry no packet (statistics, name resolution, …).
    pub skipped_blocks: u64,
    /// Packets on a pcapng interface id that was never described (not handed out).
    pub unknown_interface: u64,
}

/// The container format of a capture file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Legacy pcap (libpcap).
    Pcap {
        /// The file's magic announces nanosecond timestamps.
        nanosecond: bool,
    },
    /// pcapng.
    PcapNg,
}

/// A pcapng interface, as its description block declared it.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    units_per_sec: u64,
    offset_secs: i64,
    snaplen: u32,
}

impl Interface {
    /// Reads link type, snaplen, `if_tsresol` and `if_tsoffset` from an IDB. `if_tsoffset` is
    /// read in the section's byte order (pcap-parser's own field assumes little-endian).
    fn from_idb(idb: &InterfaceDescriptionBlock<'_>, big_endian: bool) -> Self {
        let mut units_per_sec = timestamps::MICROS_PER_SEC;
        let mut offset_secs = 0;
        for opt in &idb.options {
            let Ok(value) = opt.as_bytes() else { continue };
            if opt.code == OptionCode::IfTsresol {
                if let Some(&v) = value.first() {
                    units_per_sec =
                        timestamps::units_per_sec(v).unwrap_or(timestamps::MICROS_PER_SEC);
                }
            } else if opt.code == OptionCode::IfTsoffset {
                if let Some(raw) = value.get(..8).and_then(|s| <[u8; 8]>::try_from(s).ok()) {
                    offset_secs = if big_endian {
                        i64::from_be_bytes(raw)
                    } else {
                        i64::from_le_bytes(raw)
                    };
                }
            }
        }
        Interface {
            link: LinkType::from_dlt(u32::try_from(idb.linktype.0).unwrap_or(u32::MAX)),
            units_per_sec,
            offset_secs,
            snaplen: idb.snaplen,
        }
    }
}

/// The pcapng blocks and the state of the current section.
struct NgStream {
    /// The file's bytes from the next block on.
    w: Window,
    /// Byte order of the current section.
    big_endian: bool,
    /// Interfaces of the current section, by id.
    interfaces: Vec<Interface>,
}

/// Format-specific state.
enum Layout {
    Pcap(PcapStream),
    PcapNg(NgStream),
}

/// What the bytes at the front of the buffer say about the next record.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    /// At least this many bytes are needed to read the record's length.
    NeedHeader(usize),
    /// The record is this long.
    Record(usize),
    /// The header is impossible (bad length, bad byte-order magic).
    Invalid,
}

fn u32_at(bytes: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(raw)
    } else {
        u32::from_le_bytes(raw)
    })
}

/// Frames the pcapng block at the front of `data` (no parsing beyond its length), in the
/// current section's byte order unless the block starts a new section.
fn ng_framing(data: &[u8], big_endian: bool) -> Framing {
    let Some(block_type) = u32_at(data, 0, false) else {
        return Framing::NeedHeader(NG_BLOCK_HEADER_LEN);
    };
    let big_endian = if block_type == SHB_TYPE {
        // A new section announces its own byte order.
        match data.get(8..12) {
            None => return Framing::NeedHeader(12),
            Some([0x4d, 0x3c, 0x2b, 0x1a]) => false,
            Some([0x1a, 0x2b, 0x3c, 0x4d]) => true,
            Some(_) => return Framing::Invalid,
        }
    } else {
        big_endian
    };
    let Some(len) = u32_at(data, 4, big_endian) else {
        return Framing::NeedHeader(NG_BLOCK_HEADER_LEN);
    };
    match usize::try_from(len) {
        Ok(len) if len >= NG_MIN_BLOCK_LEN && len % 4 == 0 && len <= MAX_BLOCK_LEN => {
            Framing::Record(len)
        }
        _ => Framing::Invalid,
    }
}

/// The packet of the block of `len` bytes at the front of `data` when it is an Enhanced Packet
/// Block without options of a known interface (what capture tools write for every packet),
/// read from its fixed fields; `None` for anything else, which pcap-parser then parses. It
/// accepts only blocks that pcap-parser accepts too, with the same packet: the type in the
/// section's byte order, the length exactly the header, the data padded to 4 bytes and the
/// trailer, and both length fields that length (pcap-parser's checks for a block without
/// options; a property test, `the_plain_epb_path_takes_only_what_pcap_parser_takes_alike`,
/// checks both directions). Parsing every block with pcap-parser, options list included,
/// was about a quarter of `detect` on a pcapng copy of the side-by-side capture.
#[inline(always)]
fn plain_epb(data: &[u8], len: usize, big_endian: bool, interfaces: &[Interface]) -> Option<Found> {
    let block = data.get(..len)?;
    if u32_at(block, 0, big_endian)? != EPB_TYPE {
        return None;
    }
    let caplen = u32_at(block, 20, big_endian)?;
    let padded = (u64::from(caplen) + 3) & !3;
    if u64::try_from(len).ok()? != 32 + padded {
        return None;
    }
    // Both lengths (the leading one is what the framing read: `len`, checked again here).
    for at in [4, len.checked_sub(4)?] {
        if usize::try_from(u32_at(block, at, big_endian)?).ok()? != len {
            return None;
        }
    }
    let iface = interfaces.get(usize::try_from(u32_at(block, 8, big_endian)?).ok()?)?;
    let raw = (u64::from(u32_at(block, 12, big_endian)?) << 32)
        | u64::from(u32_at(block, 16, big_endian)?);
    let orig_len = u32_at(block, 24, big_endian)?;
    let caplen = usize::try_from(caplen).ok()?;
    Some(Found::in_packet_block(len, caplen, raw, orig_len, iface))
}

/// A packet found in the buffer: where its bytes are and what to report about it.
struct Found {
    record_len: usize,
    start: usize,
    len: usize,
    ts: Timestamp,
    link: LinkType,
    orig_len: u32,
}

impl Found {
    /// A packet of an (Enhanced or obsolete) Packet Block of `record_len` bytes: `len`
    /// captured bytes at [`EPB_DATA_OFFSET`], its time `raw` in units of interface `iface`.
    #[inline(always)]
    fn in_packet_block(
        record_len: usize,
        len: usize,
        raw: u64,
        orig_len: u32,
        iface: &Interface,
    ) -> Found {
        Found {
            record_len,
            start: EPB_DATA_OFFSET,
            len,
            ts: timestamps::from_units(raw, iface.units_per_sec, iface.offset_secs),
            link: iface.link,
            orig_len,
        }
    }
}

/// Outcome of parsing one complete record.
enum Step {
    Packet(Found),
    /// Not a packet for the caller: consume this many bytes and go on.
    Skip(usize),
    Corrupt,
}

/// A pcap or pcapng file, read as a stream.
pub struct CaptureFile {
    path: PathBuf,
    stats: CaptureStats,
    format: CaptureFormat,
    layout: Layout,
    /// Timestamp of the last packet handed out (for Simple Packet Blocks).
    last_ts: Timestamp,
    /// End of file, truncation, corruption or I/O error reached.
    done: bool,
}

impl fmt::Debug for CaptureFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (capacity, mapped) = match &self.layout {
            Layout::Pcap(p) => (p.capacity(), p.is_mapped()),
            Layout::PcapNg(ng) => (ng.w.capacity(), ng.w.is_mapped()),
        };
        f.debug_struct("CaptureFile")
            .field("path", &self.path)
            .field("mapped", &mapped)
            .field("format", &self.format)
            .field("stats", &self.stats)
            .field("position", &self.position())
            .field("capacity", &capacity)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl CaptureFile {
    /// Opens a capture, checking that it is pcap or pcapng (by magic number, not name). The
    /// file is read through a memory map where it can be (see [`set_mapping`]).
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let plan = MAPPING
            .load(Ordering::Relaxed)
            .then_some(mapped::DEFAULT_PLAN);
        Self::open_with(path, pcap::PCAP_BUFFER_LEN, plan)
    }

    /// As [`CaptureFile::open`], with a read buffer of `buffer` bytes at first (it grows for
    /// a record larger than it), and the file mapped by `plan` instead when it is `Some` (and
    /// the file can be).
    pub(crate) fn open_with(
        path: &Path,
        buffer: usize,
        plan: Option<mapped::MapPlan>,
    ) -> Result<Self, CaptureError> {
        let io_err = |source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        };
        let not_capture = |reason: String| CaptureError::NotACapture {
            path: path.to_path_buf(),
            reason,
        };
        let mut file = File::open(path).map_err(io_err)?;
        let mut prefix = Vec::with_capacity(SNIFF_LEN);
        (&mut file)
            .take(SNIFF_LEN as u64)
            .read_to_end(&mut prefix)
            .map_err(io_err)?;
        let sniffed = sniff(&prefix, MAX_BLOCK_LEN).map_err(not_capture)?;
        let (layout, format) = match sniffed {
            Sniffed::Pcap {
                big_endian,
                nanos,
                modified,
                link,
            } => {
                // `sniff` checked the 24-byte file header; records follow it.
                let stream = PcapStream::new(
                    file,
                    plan.map(|plan| (plan, path.to_path_buf())),
                    &prefix,
                    buffer,
                    big_endian,
                    nanos,
                    if modified { 24 } else { 16 },
                    link,
                );
                (
                    Layout::Pcap(stream),
                    CaptureFormat::Pcap { nanosecond: nanos },
                )
            }
            Sniffed::PcapNg { .. } => {
                let mut w = Window::new(
                    file,
                    plan.map(|plan| (plan, path.to_path_buf())),
                    &prefix,
                    buffer,
                    0,
                );
                // The first block must be a whole, well-formed section header.
                let ends_inside =
                    || not_capture("file ends inside the pcapng section header block".to_owned());
                let malformed = || not_capture("malformed pcapng section header block".to_owned());
                match w.refill(|rest| ng_framing(rest, false)).map_err(io_err)? {
                    Refill::Ready => {}
                    Refill::End | Refill::Truncated => return Err(ends_inside()),
                    Refill::Corrupt => return Err(malformed()),
                }
                let rest = w.rest();
                let Framing::Record(len) = ng_framing(rest, false) else {
                    return Err(malformed());
                };
                // (Whether it is exactly that long is the first block's check, as for every
                // block: a mismatch is corruption there.)
                if !matches!(rest.get(..len).map(parse_sectionheaderblock), Some(Ok(_))) {
                    return Err(malformed());
                }
                let ng = NgStream {
                    w,
                    big_endian: false,
                    interfaces: Vec::new(),
                };
                (Layout::PcapNg(ng), CaptureFormat::PcapNg)
            }
        };
        Ok(CaptureFile {
            path: path.to_path_buf(),
            stats: CaptureStats::default(),
            format,
            layout,
            last_ts: Timestamp::default(),
            done: false,
        })
    }

    /// The records of a legacy pcap file wholly in the read buffer (the common case), for a
    /// loop that takes them one after the other ([`Buffered::take`]) without asking for the
    /// file's layout each time; `None` for pcapng. When the run ends,
    /// [`CaptureFile::next_packet`] gives the next packet (or the end, or the error). Each
    /// record is counted and numbered as `next_packet` would.
    #[inline(always)]
    pub fn buffered(&mut self) -> Option<Buffered<'_>> {
        let Layout::Pcap(p) = &mut self.layout else {
            return None;
        };
        Some(Buffered {
            link: p.link(),
            run: p.run(),
            stats: &mut self.stats,
        })
    }

    /// The plain packet blocks of a pcapng file wholly in its window, for a loop that takes
    /// them one after the other ([`NgBuffered::take`]) as [`CaptureFile::buffered`] does the
    /// records of a legacy pcap file; `None` for legacy pcap, or once reading has stopped.
    #[inline(always)]
    pub fn ng_buffered(&mut self) -> Option<NgBuffered<'_>> {
        let Layout::PcapNg(ng) = &mut self.layout else {
            return None;
        };
        if self.done {
            return None;
        }
        let base = ng.w.base();
        let (bytes, pos) = ng.w.parts();
        Some(NgBuffered {
            bytes,
            pos,
            base,
            big_endian: ng.big_endian,
            interfaces: &ng.interfaces,
            last_ts: &mut self.last_ts,
            stats: &mut self.stats,
        })
    }

    /// The next packet, `Ok(None)` at the end of the file (including after a truncated or
    /// corrupt record, which [`CaptureFile::stats`] then reports).
    #[inline(always)]
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        // The common case, inlined into the caller's loop: the next legacy record is wholly in
        // the buffer. Everything else (refills, ends, pcapng) is out of line.
        let hit = match &mut self.layout {
            Layout::Pcap(p) => p.take_range(),
            Layout::PcapNg(_) => None,
        };
        if let Some((ts, orig_len, range)) = hit {
            self.stats.packets += 1;
            let (link, data) = match &self.layout {
                Layout::Pcap(p) => (p.link(), p.bytes(range)),
                Layout::PcapNg(_) => (LinkType::Other(0), &[][..]),
            };
            return Ok(Some(Packet {
                ts,
                link,
                data,
                orig_len,
                number: self.stats.packets,
            }));
        }
        self.next_packet_slow()
    }

    /// [`CaptureFile::next_packet`] when the next record is not wholly buffered, or the file
    /// is pcapng.
    #[inline(never)]
    fn next_packet_slow(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        if !matches!(self.layout, Layout::Pcap(_)) {
            return self.next_ng_packet();
        }
        let Layout::Pcap(p) = &mut self.layout else {
            return Ok(None);
        };
        loop {
            if let Some((ts, orig_len, range)) = p.take_range() {
                self.stats.packets += 1;
                return Ok(Some(Packet {
                    ts,
                    link: p.link(),
                    data: p.bytes(range),
                    orig_len,
                    number: self.stats.packets,
                }));
            }
            if self.done {
                return Ok(None);
            }
            let stopped = match p.refill() {
                Ok(pcap::Refill::Ready) => continue,
                Ok(pcap::Refill::End) => None,
                Ok(pcap::Refill::Truncated) => Some(true),
                Ok(pcap::Refill::Corrupt) => Some(false),
                Err(source) => {
                    self.done = true;
                    p.release();
                    return Err(CaptureError::Io {
                        path: self.path.clone(),
                        source,
                    });
                }
            };
            let position = p.position();
            if let Some(truncated) = stopped {
                stop_stats(&mut self.stats, truncated, position);
            }
            p.release();
            self.done = true;
            return Ok(None);
        }
    }

    /// [`CaptureFile::next_packet`] for pcapng.
    fn next_ng_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        let found = loop {
            let Layout::PcapNg(ng) = &mut self.layout else {
                return Ok(None);
            };
            let big_endian = ng.big_endian;
            let rest = ng.w.rest();
            let len = match ng_framing(rest, big_endian) {
                Framing::Record(len) if rest.len() >= len => len,
                _ => {
                    let stopped = match ng.w.refill(|rest| ng_framing(rest, big_endian)) {
                        Ok(Refill::Ready) => continue,
                        Ok(Refill::End) => None,
                        Ok(Refill::Truncated) => Some(true),
                        Ok(Refill::Corrupt) => Some(false),
                        Err(source) => {
                            ng.w.release();
                            self.done = true;
                            return Err(CaptureError::Io {
                                path: self.path.clone(),
                                source,
                            });
                        }
                    };
                    match stopped {
                        Some(truncated) => self.stop(truncated),
                        None => self.end_ng(),
                    }
                    return Ok(None);
                }
            };
            ng.w.prefetch_ahead();
            match self.examine(len) {
                Step::Packet(found) => break found,
                Step::Skip(n) => {
                    if let Layout::PcapNg(ng) = &mut self.layout {
                        ng.w.consume(n);
                    }
                }
                Step::Corrupt => {
                    self.stop(false);
                    return Ok(None);
                }
            }
        };
        // The packet's bytes lie in its block (`examine` checked them against the block).
        let at = match &self.layout {
            Layout::PcapNg(ng) => ng.w.pos(),
            Layout::Pcap(_) => return Ok(None),
        };
        let start = at.saturating_add(found.start);
        let range = start..start.saturating_add(found.len);
        if range.end > at.saturating_add(found.record_len) {
            self.stop(false);
            return Ok(None);
        }
        let Layout::PcapNg(ng) = &mut self.layout else {
            return Ok(None);
        };
        ng.w.consume(found.record_len);
        self.stats.packets += 1;
        self.last_ts = found.ts;
        Ok(Some(Packet {
            ts: found.ts,
            link: found.link,
            data: ng.w.bytes(range),
            orig_len: found.orig_len,
            number: self.stats.packets,
        }))
    }

    /// The clean end of a pcapng file: its buffer (or map) given back.
    fn end_ng(&mut self) {
        if let Layout::PcapNg(ng) = &mut self.layout {
            ng.w.release();
        }
        self.done = true;
    }

    /// What the reader has met so far.
    pub fn stats(&self) -> &CaptureStats {
        &self.stats
    }

    /// Bytes of the file consumed so far (for progress display), including the packet handed
    /// out last.
    pub fn position(&self) -> u64 {
        match &self.layout {
            Layout::Pcap(p) => p.position(),
            Layout::PcapNg(ng) => ng.w.position(),
        }
    }

    /// Path as given to [`CaptureFile::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The container format.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Stops reading: marks the file truncated (or corrupt) at the current offset, and gives
    /// the buffer (or map) of a pcapng file back.
    fn stop(&mut self, truncated: bool) {
        let position = self.position();
        stop_stats(&mut self.stats, truncated, position);
        self.end_ng();
    }

    /// Parses the complete pcapng block of `len` bytes at the front of the buffer.
    fn examine(&mut self, len: usize) -> Step {
        let Layout::PcapNg(ng) = &mut self.layout else {
            return Step::Corrupt;
        };
        let NgStream {
            w,
            big_endian,
            interfaces,
        } = ng;
        let Some(bytes) = w.rest().get(..len) else {
            return Step::Corrupt;
        };
        if let Some(found) = plain_epb(bytes, len, *big_endian, interfaces) {
            return Step::Packet(found);
        }
        // A block starting a section announces its byte order itself.
        let parse = if *big_endian {
            parse_block_be
        } else {
            parse_block_le
        };
        let block = match parse(bytes) {
            Ok(([], block)) => block,
            // pcap-parser rejects the block, or disagrees with the framing about its extent.
            _ => return Step::Corrupt,
        };
        match block {
            Block::SectionHeader(shb) => {
                *big_endian = shb.big_endian();
                interfaces.clear();
                Step::Skip(len)
            }
            Block::InterfaceDescription(idb) => {
                if interfaces.len() < MAX_INTERFACES {
                    interfaces.push(Interface::from_idb(&idb, *big_endian));
                } else {
                    self.stats.skipped_blocks += 1;
                }
                Step::Skip(len)
            }
            Block::EnhancedPacket(epb) => {
                let iface = usize::try_from(epb.if_id)
                    .ok()
                    .and_then(|id| interfaces.get(id));
                let Some(iface) = iface else {
                    self.stats.unknown_interface += 1;
                    return Step::Skip(len);
                };
                let Ok(caplen) = usize::try_from(epb.caplen) else {
                    return Step::Corrupt;
                };
                if caplen > epb.data.len() {
                    return Step::Corrupt;
                }
                let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                Step::Packet(Found::in_packet_block(len, caplen, raw, epb.origlen, iface))
            }
            Block::SimplePacket(spb) => {
                let Some(iface) = interfaces.first() else {
                    self.stats.unknown_interface += 1;
                    return Step::Skip(len);
                };
                // Captured length: the original length, cut by the interface's snaplen
                // and by the room in the block (which includes padding).
                let mut caplen = usize::try_from(spb.origlen).unwrap_or(usize::MAX);
                if iface.snaplen > 0 {
                    caplen = caplen.min(usize::try_from(iface.snaplen).unwrap_or(usize::MAX));
                }
                Step::Packet(Found {
                    record_len: len,
                    start: SPB_DATA_OFFSET,
                    len: caplen.min(spb.data.len()),
                    ts: self.last_ts,
                    link: iface.link,
                    orig_len: spb.origlen,
                })
            }
            Block::Unknown(ub) => {
                let block_type = if *big_endian {
                    ub.block_type.swap_bytes()
                } else {
                    ub.block_type
                };
                if block_type != OBSOLETE_PB_TYPE {
                    self.stats.skipped_blocks += 1;
                    return Step::Skip(len);
                }
                match ObsoletePacket::parse(ub.data, *big_endian) {
                    None => Step::Corrupt,
                    Some(pb) => {
                        let iface = interfaces.get(usize::from(pb.if_id));
                        let Some(iface) = iface else {
                            self.stats.unknown_interface += 1;
                            return Step::Skip(len);
                        };
                        Step::Packet(Found::in_packet_block(
                            len,
                            pb.caplen,
                            pb.ts,
                            pb.orig_len,
                            iface,
                        ))
                    }
                }
            }
            _ => {
                self.stats.skipped_blocks += 1;
                Step::Skip(len)
            }
        }
    }
}

/// Records the stop of reading: truncated (or corrupt) at `position`.
fn stop_stats(stats: &mut CaptureStats, truncated: bool, position: u64) {
    if truncated {
        stats.truncated = true;
    } else {
        stats.corrupt = true;
    }
    stats.stopped_at = Some(position);
}

/// The fields of an obsolete pcapng Packet Block (type 2), which pcap-parser hands out as an
/// unknown block.
#[derive(Debug, PartialEq, Eq)]
struct ObsoletePacket {
    if_id: u16,
    ts: u64,
    caplen: usize,
    orig_len: u32,
}

impl ObsoletePacket {
    /// Parses the block body (after type and length): interface id (16 bits), drops count
    /// (16 bits), timestamp high and low (32 bits each), captured and original length (32
    /// bits each), then the packet. `None` if the captured length exceeds the body.
    fn parse(body: &[u8], big_endian: bool) -> Option<Self> {
        let u16_at = |at: usize| -> Option<u16> {
            let raw: [u8; 2] = body.get(at..at + 2)?.try_into().ok()?;
            Some(if big_endian {
                u16::from_be_bytes(raw)
            } else {
                u16::from_le_bytes(raw)
            })
        };
        let if_id = u16_at(0)?;
        let ts_high = u32_at(body, 4, big_endian)?;
        let ts_low = u32_at(body, 8, big_endian)?;
        let caplen = usize::try_from(u32_at(body, 12, big_endian)?).ok()?;
        let orig_len = u32_at(body, 16, big_endian)?;
        let room = body.len().checked_sub(PB_BODY_DATA_OFFSET)?;
        if caplen > room {
            return None;
        }
        Some(ObsoletePacket {
            if_id,
            ts: (u64::from(ts_high) << 32) | u64::from(ts_low),
            caplen,
            orig_len,
        })
    }
}

#[cfg(test)]
mod tests;
