//! Legacy pcap records, read straight from a buffer of this module's own.
//!
//! The reader keeps one large buffer of file bytes and hands out each record as a borrowed
//! slice of it: the record header's four words are read with one bounds check, and the buffer
//! is refilled (what is left of the last record moved to its front, then one read to fill it)
//! only when the next record is not wholly in it, so the cost of the refill is shared by the
//! hundreds of records a buffer holds. A record larger than the buffer grows it (up to
//! [`MAX_BLOCK_LEN`]); a record declaring more is corruption, and a file ending inside a record
//! is truncation, both reported at the record's first byte as before.
//!
//! On Linux a file of 1 MB or more is read through a memory map instead ([`super::mapped`]):
//! the same offsets, the buffer being the map and a refill making the next window resident, no
//! bytes copied. The stream leaves the map for the buffer, at the same offset, whenever the map
//! cannot go on (see there).

use super::mapped::{MapPlan, Mapped};
use super::{timestamps, Framing, MAX_BLOCK_LEN};
use crate::decode::LinkType;
use crate::time::Timestamp;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::PathBuf;

/// Size of the read buffer of a legacy pcap file: large enough that refills are rare (a few
/// hundred records each), small enough to stay in the second-level cache.
pub(super) const PCAP_BUFFER_LEN: usize = 256 * 1024;

/// What bringing the next record into the buffer found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refill {
    /// The whole next record is in the buffer.
    Ready,
    /// Clean end of file.
    End,
    /// The file ends inside the record.
    Truncated,
    /// The record's length is impossible.
    Corrupt,
}

/// Frames the legacy record at the front of `data`: its whole length, or how many bytes are
/// needed to read it, or [`Framing::Invalid`] when it declares more than [`MAX_BLOCK_LEN`].
pub(super) fn framing(data: &[u8], big_endian: bool, record_header: usize) -> Framing {
    let Some(h) = data.first_chunk::<16>() else {
        return Framing::NeedHeader(record_header);
    };
    if data.len() < record_header {
        return Framing::NeedHeader(record_header);
    }
    let [_, _, caplen, _] = words(h, big_endian);
    match usize::try_from(caplen)
        .ok()
        .and_then(|c| c.checked_add(record_header))
    {
        Some(total) if total <= MAX_BLOCK_LEN => Framing::Record(total),
        _ => Framing::Invalid,
    }
}

/// The four 32-bit words of a record header (seconds, fraction, captured and original
/// length), in the file's byte order, read as one 16-byte load.
#[inline(always)]
fn words(h: &[u8; 16], big_endian: bool) -> [u32; 4] {
    let x = u128::from_le_bytes(*h);
    let w = |i: u32| -> u32 { (x >> (32 * i)) as u32 };
    let v = [w(0), w(1), w(2), w(3)];
    // One test of the byte order for the whole header, not one per word.
    if big_endian {
        v.map(u32::swap_bytes)
    } else {
        v
    }
}

/// A capture file's bytes from some offset on, read into a buffer of this module's own or,
/// on Linux, taken from a memory map of the file ([`super::mapped`]): `pos..end` of
/// [`Window::slice`] is what is not handed out yet. The legacy pcap reader and the pcapng
/// reader both frame their records over it.
#[derive(Debug)]
pub(super) struct Window {
    file: File,
    /// File bytes `base..base + end`; `pos..end` is not handed out yet.
    buf: Vec<u8>,
    /// The file's map, when the bytes come from it instead of `buf` (then `base` is 0 and
    /// `..end` is resident).
    map: Option<Mapped>,
    /// How to map the file at the first refill (`None`: read it, or the map was tried).
    plan: Option<(MapPlan, PathBuf)>,
    pos: usize,
    end: usize,
    /// File offset of `buf[0]`.
    base: u64,
    /// A read returned fewer bytes than asked: the file has no more.
    eof: bool,
}

impl Window {
    /// The bytes of `file` from offset `start` on, whose first bytes (`prefix`, already read,
    /// at least `start` of them) are put in a buffer of `buffer_len` bytes (or more) first.
    /// With `plan`, the first refill maps the file (named `path` in the error a shrinking
    /// file gives) instead of reading it, if it can.
    pub(super) fn new(
        file: File,
        plan: Option<(MapPlan, PathBuf)>,
        prefix: &[u8],
        buffer_len: usize,
        start: usize,
    ) -> Self {
        let mut buf = vec![0u8; buffer_len.max(prefix.len())];
        if let Some(dst) = buf.get_mut(..prefix.len()) {
            dst.copy_from_slice(prefix);
        }
        Window {
            file,
            buf,
            map: None,
            plan,
            pos: start.min(prefix.len()),
            end: prefix.len(),
            base: 0,
            eof: false,
        }
    }

    /// The bytes `pos` and `end` index: the map's, or the buffer's.
    #[inline(always)]
    pub(super) fn slice(&self) -> &[u8] {
        match &self.map {
            Some(m) => m.bytes(),
            None => &self.buf,
        }
    }

    /// The bytes not handed out yet (`pos..end`).
    #[inline(always)]
    pub(super) fn rest(&self) -> &[u8] {
        self.slice().get(self.pos..self.end).unwrap_or_default()
    }

    /// The bytes up to `end`, and the position in them, for a run of records taken without
    /// going back to the window.
    #[inline(always)]
    pub(super) fn parts(&mut self) -> (&[u8], &mut usize) {
        let bytes: &[u8] = match &self.map {
            Some(m) => m.bytes(),
            None => &self.buf,
        };
        (bytes.get(..self.end).unwrap_or_default(), &mut self.pos)
    }

    /// Whether the bytes come from a map of the file.
    pub(super) fn is_mapped(&self) -> bool {
        self.map.is_some()
    }

    /// Asks for the bytes a page ahead of `pos` ([`prefetch_ahead`]).
    #[inline(always)]
    pub(super) fn prefetch_ahead(&self) {
        prefetch_ahead(self.slice(), self.pos);
    }

    /// Offset of the next byte not handed out yet in [`Window::slice`].
    #[inline(always)]
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    /// Hands out the next `n` bytes (at most what [`Window::rest`] holds).
    #[inline(always)]
    pub(super) fn consume(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.end.max(self.pos));
    }

    /// Current buffer size.
    pub(super) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// File offset of the slice's first byte.
    #[inline(always)]
    pub(super) fn base(&self) -> u64 {
        self.base
    }

    /// File offset of `pos`.
    pub(super) fn position(&self) -> u64 {
        self.base.saturating_add(self.pos as u64)
    }

    /// Bytes of [`Window::slice`] in `range` (empty for a range outside it).
    #[inline(always)]
    pub(super) fn bytes(&self, range: Range<usize>) -> &[u8] {
        self.slice().get(range).unwrap_or_default()
    }

    /// Gives the buffer back once reading has stopped (many files may be open at once); the
    /// position stays where it was.
    pub(super) fn release(&mut self) {
        self.base = self.position();
        self.pos = 0;
        self.end = 0;
        self.buf = Vec::new();
        self.map = None;
        self.plan = None;
        self.eof = true;
    }

    /// Brings the next record, as `framing` frames the bytes at `pos`, wholly into the window
    /// (moving what is left to the front of the buffer, growing it for a record larger than
    /// it, reading to fill it, or making more of the map resident), or says why it cannot.
    /// An I/O error is returned as is.
    pub(super) fn refill(&mut self, framing: impl Fn(&[u8]) -> Framing) -> io::Result<Refill> {
        loop {
            let rest = self.rest();
            let have = rest.len();
            let want = match framing(rest) {
                Framing::Invalid => return Ok(Refill::Corrupt),
                Framing::Record(len) if have >= len => return Ok(Refill::Ready),
                Framing::Record(len) | Framing::NeedHeader(len) => len,
            };
            if let Some((plan, path)) = self.plan.take() {
                // First refill: nothing was compacted yet (`base` is 0), so `pos` and `end`
                // are file offsets and index the map as they indexed the buffer.
                if self.base == 0 && !self.eof {
                    self.map = Mapped::open(&self.file, &path, plan);
                    if self.map.is_some() {
                        self.buf = Vec::new();
                    }
                }
            }
            if let Some(map) = &mut self.map {
                let len = map.bytes().len();
                // The file's length now: shorter than the map when it was cut since (reads
                // take over, so the bytes past the cut are not read as the zeros the map
                // would show), longer when bytes were appended (read at the end).
                let now = self.file.metadata()?.len();
                if self.end < len && now >= len as u64 {
                    // `want` bytes from `pos` (at most MAX_BLOCK_LEN past it).
                    let need = (self.pos + want).saturating_sub(self.end);
                    match map.extend(self.end, need, self.pos) {
                        Some(end) => self.end = end,
                        None => self.leave_map(want, now)?,
                    }
                    continue;
                }
                if now != len as u64 {
                    self.leave_map(want, now)?;
                    continue;
                }
                self.eof = true;
            }
            if self.eof {
                return Ok(if have == 0 {
                    Refill::End
                } else {
                    Refill::Truncated
                });
            }
            // Keep the unread bytes, at the front.
            self.buf.copy_within(self.pos..self.end, 0);
            self.base = self.base.saturating_add(self.pos as u64);
            self.pos = 0;
            self.end = have;
            if want > self.buf.len() {
                // `want` is at most MAX_BLOCK_LEN (checked by `framing`).
                let grown = want
                    .checked_next_power_of_two()
                    .unwrap_or(want)
                    .min(MAX_BLOCK_LEN)
                    .max(want);
                self.buf.resize(grown, 0);
            }
            let room = self.buf.get_mut(self.end..).unwrap_or(&mut []);
            let asked = room.len();
            let got = read_full(&mut self.file, room)?;
            self.end += got;
            if got < asked {
                self.eof = true;
            }
        }
    }

    /// Goes on from the map's `pos..end` with reads: those bytes (no further than the file's
    /// length `now`) copied into a new buffer with room for `want`, the file read from there
    /// on, the map dropped.
    #[cold]
    fn leave_map(&mut self, want: usize, now: u64) -> io::Result<()> {
        let Some(map) = self.map.take() else {
            return Ok(());
        };
        let now = usize::try_from(now).unwrap_or(usize::MAX);
        self.end = self.end.min(now.max(self.pos));
        let rest = map.bytes().get(self.pos..self.end).unwrap_or_default();
        let mut buf = vec![0u8; PCAP_BUFFER_LEN.max(want).max(rest.len())];
        if let Some(dst) = buf.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        self.file.seek(SeekFrom::Start(self.end as u64))?;
        self.base = self.pos as u64;
        self.end -= self.pos;
        self.pos = 0;
        self.buf = buf;
        Ok(())
    }
}

/// A legacy pcap file's records, from the first record header on.
#[derive(Debug)]
pub(super) struct PcapStream {
    w: Window,
    big_endian: bool,
    nanos: bool,
    record_header: usize,
    /// `record_header` (16 or 24), as the record reader adds it.
    head_len: u32,
    link: LinkType,
}

impl PcapStream {
    /// A stream over `file`, whose first bytes (`prefix`, already read, at least the 24-byte
    /// file header) are put in the buffer first; records start at offset 24. With `plan`, the
    /// first refill maps the file (named `path` in the error a shrinking file gives) instead of
    /// reading it, if it can.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        file: File,
        plan: Option<(MapPlan, PathBuf)>,
        prefix: &[u8],
        buffer_len: usize,
        big_endian: bool,
        nanos: bool,
        record_header: usize,
        link: LinkType,
    ) -> Self {
        PcapStream {
            w: Window::new(file, plan, prefix, buffer_len, 24),
            big_endian,
            nanos,
            record_header,
            head_len: u32::try_from(record_header).unwrap_or(u32::MAX),
            link,
        }
    }

    /// Whether the records come from a map of the file.
    pub(super) fn is_mapped(&self) -> bool {
        self.w.is_mapped()
    }

    /// Link type of every record.
    #[inline]
    pub(super) fn link(&self) -> LinkType {
        self.link
    }

    /// Current buffer size.
    pub(super) fn capacity(&self) -> usize {
        self.w.capacity()
    }

    /// File offset just past the last record handed out (or of the record that stopped the
    /// reading).
    pub(super) fn position(&self) -> u64 {
        self.w.position()
    }

    /// [`Run::take`] giving where the captured bytes are (for [`PcapStream::bytes`]),
    /// for a caller that must not hold a borrow of the stream.
    #[inline(always)]
    pub(super) fn take_range(&mut self) -> Option<(Timestamp, u32, Range<usize>)> {
        let rest = self.w.rest();
        let (ts, orig_len, total) = self.record(rest)?;
        if rest.len() < total {
            return None;
        }
        let start = self.w.pos;
        self.w.consume(total);
        Some((ts, orig_len, start + self.head_len as usize..self.w.pos))
    }

    /// [`record`] with this file's format.
    #[inline(always)]
    fn record(&self, rest: &[u8]) -> Option<(Timestamp, u32, usize)> {
        record(rest, self.format())
    }

    /// The record format: byte order, resolution, header length.
    #[inline(always)]
    fn format(&self) -> Format {
        Format {
            big_endian: self.big_endian,
            nanos: self.nanos,
            head_len: self.head_len,
        }
    }

    /// The records wholly in the buffer (or the resident part of the map) from `pos` on, to
    /// take one by one without going back to the stream.
    #[inline(always)]
    pub(super) fn run(&mut self) -> Run<'_> {
        let format = self.format();
        let base = self.w.base;
        let (bytes, pos) = self.w.parts();
        Run {
            bytes,
            pos,
            base,
            format,
        }
    }

    /// Bytes of the buffer that [`PcapStream::take_range`] pointed at (empty for any other
    /// range).
    #[inline(always)]
    pub(super) fn bytes(&self, range: Range<usize>) -> &[u8] {
        self.w.bytes(range)
    }

    /// Gives the buffer back once reading has stopped (many files may be open at once); the
    /// position stays where it was.
    pub(super) fn release(&mut self) {
        self.w.release();
    }

    /// Brings the next record wholly into the buffer (see [`Window::refill`]), or says why
    /// it cannot. An I/O error is returned as is.
    pub(super) fn refill(&mut self) -> io::Result<Refill> {
        let (big_endian, record_header) = (self.big_endian, self.record_header);
        self.w
            .refill(|rest| framing(rest, big_endian, record_header))
    }
}

/// What reading a record header needs of the file header.
#[derive(Clone, Copy, Debug)]
struct Format {
    big_endian: bool,
    nanos: bool,
    /// The record header's length (16 or 24).
    head_len: u32,
}

/// The time, original length and whole length (header included, at most [`MAX_BLOCK_LEN`])
/// of the record whose header starts `rest`, the unread bytes.
#[inline(always)]
fn record(rest: &[u8], f: Format) -> Option<(Timestamp, u32, usize)> {
    let h: &[u8; 16] = rest.first_chunk()?;
    let [secs, frac, caplen, orig_len] = words(h, f.big_endian);
    // Both terms are below 2^32: no overflow.
    let total = u64::from(caplen) + u64::from(f.head_len);
    if total > MAX_BLOCK_LEN as u64 {
        return None;
    }
    let ts = timestamps::from_pcap(secs, frac, f.nanos);
    // At most MAX_BLOCK_LEN: fits.
    Some((ts, orig_len, total as usize))
}

/// How far ahead of the record it takes a reader prefetches the file's bytes: a page. The
/// hardware prefetchers follow a sequential read within a 4 KB page but not into the next one,
/// so without a hint the first record of every page waited for memory (and the TLB); two lines
/// (128 bytes, more than a common record) are asked for per record taken, so the lines the
/// records skip over are covered too. 3M-packet side by side, `dist`, 16 interleaved pairs:
/// `detect --threads 1` 19 ms (5 %) faster, `--threads 2` 9 ms; one line 1 KB ahead gave
/// 7 ms, one line 8 KB ahead 8 ms.
const PREFETCH_AHEAD: usize = 4096;

/// Asks for `bytes` [`PREFETCH_AHEAD`] past `at`, the offset of the record being taken: two
/// lines (nothing past the end of `bytes`).
#[inline(always)]
pub(super) fn prefetch_ahead(bytes: &[u8], at: usize) {
    super::mapped::prefetch(bytes, at + PREFETCH_AHEAD);
    super::mapped::prefetch(bytes, at + PREFETCH_AHEAD + 64);
}

/// A stream's buffered records ([`PcapStream::run`]): its bytes up to `end`, borrowed once for
/// the whole run, and its position, moved as records are taken.
#[derive(Debug)]
pub(super) struct Run<'a> {
    bytes: &'a [u8],
    pos: &'a mut usize,
    base: u64,
    format: Format,
}

impl<'a> Run<'a> {
    /// Takes the next record when all of it is in the run (and its length is acceptable):
    /// its time, original length and captured bytes. `None` otherwise, having changed nothing.
    #[inline(always)]
    pub(super) fn take(&mut self) -> Option<(Timestamp, u32, &'a [u8])> {
        let rest = self.bytes.get(*self.pos..)?;
        let (ts, orig_len, total) = record(rest, self.format)?;
        let data = rest.get(self.format.head_len as usize..total)?;
        prefetch_ahead(self.bytes, *self.pos);
        *self.pos += total;
        Some((ts, orig_len, data))
    }

    /// File offset just past the last record taken.
    pub(super) fn position(&self) -> u64 {
        self.base.saturating_add(*self.pos as u64)
    }
}

/// Reads until `buf` is full or the file ends; the count read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..) {
        if rest.is_empty() {
            break;
        }
        match file.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
