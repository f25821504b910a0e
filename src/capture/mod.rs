//! Packet sources: pcap and pcapng files, streamed in constant memory.
//!
//! A [`CaptureFile`] hands out one [`Packet`] at a time, borrowing its bytes from an internal
//! buffer that is reused for the next packet (a lending iterator). Live capture will implement
//! the same shape.

use crate::decode::LinkType;
use crate::time::Timestamp;
use std::path::{Path, PathBuf};
use thiserror::Error;

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

/// A pcap or pcapng file, read as a stream.
#[derive(Debug)]
pub struct CaptureFile {
    path: PathBuf,
    stats: CaptureStats,
}

impl CaptureFile {
    /// Opens a capture, checking that it is pcap or pcapng (by magic number, not name).
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        Err(CaptureError::NotACapture {
            path: path.to_path_buf(),
            reason: "not implemented".into(),
        })
    }

    /// The next packet, `Ok(None)` at the end of the file (including after a truncated or
    /// corrupt record, which [`CaptureFile::stats`] then reports).
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        Ok(None)
    }

    /// What the reader has met so far.
    pub fn stats(&self) -> &CaptureStats {
        &self.stats
    }

    /// Bytes of the file consumed so far (for progress display).
    pub fn position(&self) -> u64 {
        0
    }

    /// Path as given to [`CaptureFile::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }
}
