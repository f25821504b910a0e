//! Packet sources: pcap and pcapng files, streamed in constant memory.
//!
//! A [`CaptureFile`] hands out one [`Packet`] at a time, borrowing its bytes from an internal
//! buffer that is reused for the next packet (a lending iterator). Live capture will implement
//! the same shape.
//!
//! Reading is built on `pcap-parser`'s streaming readers (a circular buffer over the file).
//! This module frames each record itself before asking the reader to parse it: it reads the
//! record's declared length, checks it against [`MAX_BLOCK_LEN`], makes sure the whole record
//! is in the buffer (refilling, and growing the buffer only for a record larger than it), and
//! only then parses. So a record that the file cuts short is told apart from a malformed one:
//! the first sets [`CaptureStats::truncated`], the second [`CaptureStats::corrupt`].
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

mod sniff;
mod timestamps;

use crate::decode::LinkType;
use crate::time::Timestamp;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{
    Block, InterfaceDescriptionBlock, LegacyPcapReader, OptionCode, PcapBlockOwned, PcapError,
    PcapNGReader,
};
use sniff::{sniff, Sniffed, SNIFF_LEN};
use std::fmt;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// Initial size of the read buffer.
pub const INITIAL_BUFFER_LEN: usize = 64 * 1024;

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

/// Where an I/O error met inside the streaming reader is kept until [`CaptureFile`] reports it
/// (the reader itself only says "read error").
type IoSlot = Arc<Mutex<Option<io::Error>>>;

/// The file as the streaming reader sees it: the sniffed prefix, then the rest of the file.
/// Each `read` fills the buffer completely unless the file ends, so a short read means EOF.
struct Source {
    inner: io::Chain<Cursor<Vec<u8>>, File>,
    error: IoSlot,
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while let Some(rest) = buf.get_mut(filled..) {
            if rest.is_empty() {
                break;
            }
            match self.inner.read(rest) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let kind = e.kind();
                    if let Ok(mut slot) = self.error.lock() {
                        *slot = Some(e);
                    }
                    return Err(io::Error::from(kind));
                }
            }
        }
        Ok(filled)
    }
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

/// Format-specific state.
#[derive(Debug)]
enum Layout {
    Pcap {
        big_endian: bool,
        nanos: bool,
        record_header: usize,
        link: LinkType,
    },
    PcapNg {
        /// Byte order of the current section.
        big_endian: bool,
        /// Interfaces of the current section, by id.
        interfaces: Vec<Interface>,
    },
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

/// The header of a legacy pcap record that is wholly at the front of the buffer.
struct PcapRecord {
    /// Length of the record, header included.
    end: usize,
    secs: u32,
    frac: u32,
    orig_len: u32,
}

/// The legacy pcap record at the front of `data`, when all of it is there and its length is
/// acceptable (as [`Layout::framing`] decides); `None` otherwise.
fn pcap_record(data: &[u8], big_endian: bool, record_header: usize) -> Option<PcapRecord> {
    let caplen = usize::try_from(u32_at(data, 8, big_endian)?).ok()?;
    let end = caplen.checked_add(record_header)?;
    if data.len() < record_header || end > MAX_BLOCK_LEN || data.len() < end {
        return None;
    }
    Some(PcapRecord {
        end,
        secs: u32_at(data, 0, big_endian)?,
        frac: u32_at(data, 4, big_endian)?,
        orig_len: u32_at(data, 12, big_endian)?,
    })
}

impl Layout {
    /// Frames the record at the front of `data` (no parsing beyond its length).
    fn framing(&self, data: &[u8]) -> Framing {
        match self {
            Layout::Pcap {
                big_endian,
                record_header,
                ..
            } => {
                let Some(caplen) = u32_at(data, 8, *big_endian) else {
                    return Framing::NeedHeader(*record_header);
                };
                if data.len() < *record_header {
                    return Framing::NeedHeader(*record_header);
                }
                match usize::try_from(caplen)
                    .ok()
                    .and_then(|c| c.checked_add(*record_header))
                {
                    Some(total) if total <= MAX_BLOCK_LEN => Framing::Record(total),
                    _ => Framing::Invalid,
                }
            }
            Layout::PcapNg { big_endian, .. } => {
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
                    *big_endian
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
        }
    }
}

/// Outcome of bringing the next record into the buffer.
enum Fill {
    /// The whole record, this long, is at the front of the buffer.
    Ready(usize),
    /// Clean end of file.
    End,
    /// The file ends inside the record.
    Truncated,
    /// The record's header is impossible.
    Corrupt,
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
    reader: Box<dyn PcapReaderIterator + Send>,
    io_error: IoSlot,
    layout: Layout,
    /// Current buffer size.
    capacity: usize,
    /// Bytes of the records handed out and not yet consumed from the reader's buffer (the
    /// last one, or for legacy pcap all those handed out since the buffer was last refilled).
    pending: usize,
    /// Timestamp of the last packet handed out (for Simple Packet Blocks).
    last_ts: Timestamp,
    /// End of file, truncation, corruption or I/O error reached.
    done: bool,
}

impl fmt::Debug for CaptureFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureFile")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("stats", &self.stats)
            .field("position", &self.position())
            .field("capacity", &self.capacity)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl CaptureFile {
    /// Opens a capture, checking that it is pcap or pcapng (by magic number, not name).
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
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
        let io_error = IoSlot::default();
        let source = Source {
            inner: Cursor::new(prefix).chain(file),
            error: Arc::clone(&io_error),
        };
        // Turns an error of the reader's first fill into ours.
        let setup_err = |e: PcapError<&[u8]>, what: &str| match e {
            PcapError::ReadError => {
                let source = io_error
                    .lock()
                    .ok()
                    .and_then(|mut slot| slot.take())
                    .unwrap_or_else(|| io::Error::other("read error"));
                io_err(source)
            }
            PcapError::Incomplete(_) | PcapError::UnexpectedEof | PcapError::Eof => {
                not_capture(format!("file ends inside the {what}"))
            }
            _ => not_capture(format!("malformed {what}")),
        };
        let (reader, layout, format, capacity): (Box<dyn PcapReaderIterator + Send>, _, _, _) =
            match sniffed {
                Sniffed::Pcap {
                    big_endian,
                    nanos,
                    modified,
                    link,
                } => {
                    let mut reader = LegacyPcapReader::new(INITIAL_BUFFER_LEN, source)
                        .map_err(|e| setup_err(e, "pcap file header"))?;
                    // The first `next` hands out the file header, already checked by `sniff`.
                    let header_len = match reader.next() {
                        Ok((n, PcapBlockOwned::LegacyHeader(_))) => n,
                        _ => return Err(not_capture("malformed pcap file header".to_owned())),
                    };
                    reader.consume(header_len);
                    let layout = Layout::Pcap {
                        big_endian,
                        nanos,
                        record_header: if modified { 24 } else { 16 },
                        link,
                    };
                    let format = CaptureFormat::Pcap { nanosecond: nanos };
                    (Box::new(reader), layout, format, INITIAL_BUFFER_LEN)
                }
                Sniffed::PcapNg { shb_len } => {
                    // The reader checks the first section header within its first fill, so
                    // the buffer must hold it whole. `sniff` bounded it by MAX_BLOCK_LEN, a
                    // power of two, so the rounded capacity stays within the cap.
                    let capacity = usize::try_from(shb_len)
                        .unwrap_or(MAX_BLOCK_LEN)
                        .max(INITIAL_BUFFER_LEN)
                        .next_power_of_two()
                        .min(MAX_BLOCK_LEN);
                    let reader = PcapNGReader::new(capacity, source)
                        .map_err(|e| setup_err(e, "pcapng section header block"))?;
                    let layout = Layout::PcapNg {
                        big_endian: false,
                        interfaces: Vec::new(),
                    };
                    (Box::new(reader), layout, CaptureFormat::PcapNg, capacity)
                }
            };
        Ok(CaptureFile {
            path: path.to_path_buf(),
            stats: CaptureStats::default(),
            format,
            reader,
            io_error,
            layout,
            capacity,
            pending: 0,
            last_ts: Timestamp::default(),
            done: false,
        })
    }

    /// Takes the legacy pcap record that starts `at` bytes into the buffer when all of it is
    /// there (what `fill`, `examine` and the range check do for it, with one look at the
    /// buffer): counts it, and returns its time, link type, original length and where its
    /// bytes are. `None` for other formats, or when the record is not wholly buffered.
    #[inline]
    fn take_pcap_record(&mut self, at: usize) -> Option<(Timestamp, LinkType, u32, Range<usize>)> {
        let Layout::Pcap {
            big_endian,
            nanos,
            record_header,
            link,
        } = self.layout
        else {
            return None;
        };
        let r = pcap_record(self.reader.data().get(at..)?, big_endian, record_header)?;
        let end = at + r.end;
        self.pending = end;
        self.stats.packets += 1;
        let ts = timestamps::from_pcap(r.secs, r.frac, nanos);
        self.last_ts = ts;
        Some((ts, link, r.orig_len, at + record_header..end))
    }

    /// The packet whose bytes are `range` of the buffer, numbered as the last one counted.
    #[inline]
    fn packet_at(
        &self,
        ts: Timestamp,
        link: LinkType,
        orig_len: u32,
        range: Range<usize>,
    ) -> Option<Packet<'_>> {
        let number = self.stats.packets;
        self.reader.data().get(range).map(|data| Packet {
            ts,
            link,
            data,
            orig_len,
            number,
        })
    }

    /// The next packet, `Ok(None)` at the end of the file (including after a truncated or
    /// corrupt record, which [`CaptureFile::stats`] then reports).
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        // Fast path: the next legacy record is wholly in the buffer, after the records handed
        // out before it, which are consumed only when the buffer must be refilled (`pending`
        // counts them all).
        if !self.done {
            if let Some((ts, link, orig_len, range)) = self.take_pcap_record(self.pending) {
                return Ok(self.packet_at(ts, link, orig_len, range));
            }
        }
        if self.pending > 0 {
            self.reader.consume_noshift(self.pending);
            self.pending = 0;
        }
        if self.done {
            return Ok(None);
        }
        // The same, now at the front of the buffer.
        if let Some((ts, link, orig_len, range)) = self.take_pcap_record(0) {
            return Ok(self.packet_at(ts, link, orig_len, range));
        }
        let found = loop {
            let len = match self.fill()? {
                Fill::Ready(len) => len,
                Fill::End => {
                    self.done = true;
                    return Ok(None);
                }
                Fill::Truncated => {
                    self.stop(true);
                    return Ok(None);
                }
                Fill::Corrupt => {
                    self.stop(false);
                    return Ok(None);
                }
            };
            match self.examine(len) {
                Step::Packet(found) => break found,
                Step::Skip(n) => self.reader.consume_noshift(n),
                Step::Corrupt => {
                    self.stop(false);
                    return Ok(None);
                }
            }
        };
        let range = found.start..found.start.saturating_add(found.len);
        if self.reader.data().get(range.clone()).is_none() {
            self.stop(false);
            return Ok(None);
        }
        self.pending = found.record_len;
        self.stats.packets += 1;
        self.last_ts = found.ts;
        Ok(self.packet_at(found.ts, found.link, found.orig_len, range))
    }

    /// What the reader has met so far.
    pub fn stats(&self) -> &CaptureStats {
        &self.stats
    }

    /// Bytes of the file consumed so far (for progress display), including the packet handed
    /// out last.
    pub fn position(&self) -> u64 {
        let consumed = self.reader.consumed().saturating_add(self.pending);
        u64::try_from(consumed).unwrap_or(u64::MAX)
    }

    /// Path as given to [`CaptureFile::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The container format.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Stops reading: marks the file truncated (or corrupt) at the current offset.
    fn stop(&mut self, truncated: bool) {
        if truncated {
            self.stats.truncated = true;
        } else {
            self.stats.corrupt = true;
        }
        self.stats.stopped_at = Some(self.position());
        self.done = true;
    }

    /// The I/O error the reader met, naming the file.
    fn io_error(&mut self) -> CaptureError {
        self.done = true;
        let source = self
            .io_error
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .unwrap_or_else(|| io::Error::other("read error"));
        CaptureError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Brings the next whole record to the front of the buffer.
    fn fill(&mut self) -> Result<Fill, CaptureError> {
        loop {
            let data = self.reader.data();
            let have = data.len();
            let want = match self.layout.framing(data) {
                Framing::Invalid => return Ok(Fill::Corrupt),
                Framing::Record(len) if have >= len => return Ok(Fill::Ready(len)),
                Framing::Record(len) | Framing::NeedHeader(len) => len,
            };
            if self.reader.reader_exhausted() {
                return Ok(if have == 0 {
                    Fill::End
                } else {
                    Fill::Truncated
                });
            }
            if want > self.capacity {
                // `want` is at most MAX_BLOCK_LEN (checked by `framing`).
                let grown = want
                    .checked_next_power_of_two()
                    .unwrap_or(want)
                    .min(MAX_BLOCK_LEN)
                    .max(want);
                self.reader.grow(grown);
                self.capacity = grown;
            }
            if self.reader.refill().is_err() {
                return Err(self.io_error());
            }
        }
    }

    /// Parses the complete record of `len` bytes at the front of the buffer.
    fn examine(&mut self, len: usize) -> Step {
        if let Layout::Pcap {
            big_endian,
            nanos,
            record_header,
            link,
        } = self.layout
        {
            // A legacy record is a fixed header and the bytes `framing` measured: read the
            // header here (as pcap-parser's frame parser would) instead of a dynamic call
            // into the reader that re-parses it.
            let data = self.reader.data();
            let (Some(secs), Some(frac), Some(orig_len)) = (
                u32_at(data, 0, big_endian),
                u32_at(data, 4, big_endian),
                u32_at(data, 12, big_endian),
            ) else {
                return Step::Corrupt;
            };
            let Some(caplen) = len.checked_sub(record_header) else {
                return Step::Corrupt;
            };
            return Step::Packet(Found {
                record_len: len,
                start: record_header,
                len: caplen,
                ts: timestamps::from_pcap(secs, frac, nanos),
                link,
                orig_len,
            });
        }
        let (consumed, block) = match self.reader.next() {
            Ok(ok) => ok,
            Err(_) => return Step::Corrupt,
        };
        if consumed != len {
            // pcap-parser and our framing disagree about the record's extent.
            return Step::Corrupt;
        }
        match (&mut self.layout, block) {
            (
                Layout::Pcap {
                    nanos,
                    record_header,
                    link,
                    ..
                },
                PcapBlockOwned::Legacy(b),
            ) => Step::Packet(Found {
                record_len: len,
                start: *record_header,
                len: b.data.len(),
                ts: timestamps::from_pcap(b.ts_sec, b.ts_usec, *nanos),
                link: *link,
                orig_len: b.origlen,
            }),
            (
                Layout::PcapNg {
                    big_endian,
                    interfaces,
                },
                PcapBlockOwned::NG(block),
            ) => match block {
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
                    Step::Packet(Found {
                        record_len: len,
                        start: EPB_DATA_OFFSET,
                        len: caplen,
                        ts: timestamps::from_units(raw, iface.units_per_sec, iface.offset_secs),
                        link: iface.link,
                        orig_len: epb.origlen,
                    })
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
                            Step::Packet(Found {
                                record_len: len,
                                start: EPB_DATA_OFFSET,
                                len: pb.caplen,
                                ts: timestamps::from_units(
                                    pb.ts,
                                    iface.units_per_sec,
                                    iface.offset_secs,
                                ),
                                link: iface.link,
                                orig_len: pb.orig_len,
                            })
                        }
                    }
                }
                _ => {
                    self.stats.skipped_blocks += 1;
                    Step::Skip(len)
                }
            },
            // A pcap header in the middle of the stream, or pcapng in a pcap file: impossible.
            _ => Step::Corrupt,
        }
    }
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
