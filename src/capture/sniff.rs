//! Recognising a capture file by its first bytes, before any streaming reader is built.
//!
//! Pure functions over a prefix of the file: no I/O. The reasons returned as `Err` end up in
//! [`super::CaptureError::NotACapture`].

use crate::decode::LinkType;

/// Number of leading bytes [`sniff`] needs at most to decide (the pcap file header).
pub(super) const SNIFF_LEN: usize = 24;

/// Size of a legacy pcap file header.
const PCAP_HEADER_LEN: usize = 24;

/// The pcapng Section Header Block type (the same in both byte orders).
const SHB_TYPE: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// The pcapng byte-order magic, as a little-endian writer stores it.
const BOM_LE: [u8; 4] = [0x4d, 0x3c, 0x2b, 0x1a];

/// The pcapng byte-order magic, as a big-endian writer stores it.
const BOM_BE: [u8; 4] = [0x1a, 0x2b, 0x3c, 0x4d];

/// Smallest valid Section Header Block: header, BOM, versions, section length, trailer.
const SHB_MIN_LEN: u32 = 28;

/// Mask of the link type in a pcap header's link type field (the upper bits carry FCS info).
const PCAP_LINKTYPE_MASK: u32 = 0x03FF_FFFF;

/// What the first bytes say the file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sniffed {
    /// Legacy pcap.
    Pcap {
        /// Fields are big-endian.
        big_endian: bool,
        /// Record timestamps carry nanoseconds instead of microseconds.
        nanos: bool,
        /// Kuznetzov's "modified pcap" (24-byte record headers).
        modified: bool,
        /// The link type of every record.
        link: LinkType,
    },
    /// pcapng; the first Section Header Block is `shb_len` bytes long.
    PcapNg {
        /// Declared length of the first Section Header Block.
        shb_len: u32,
    },
}

/// Reads a `u32` at `at` in the given byte order.
fn u32_at(bytes: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(raw)
    } else {
        u32::from_le_bytes(raw)
    })
}

/// True when the bytes look like text (to give a friendlier reason).
fn looks_like_text(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace())
}

/// Decides from the first [`SNIFF_LEN`] bytes (or the whole file if shorter) whether this is a
/// capture we can read, and how. `max_block` bounds the first pcapng block.
pub(super) fn sniff(prefix: &[u8], max_block: usize) -> Result<Sniffed, String> {
    let Some(magic) = prefix.get(..4) else {
        return Err(if prefix.is_empty() {
            "empty file".to_owned()
        } else {
            format!("file too short for a magic number ({} bytes)", prefix.len())
        });
    };
    // Legacy pcap magics, as the bytes appear in the file.
    let pcap = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => Some((false, false, false)),
        [0xa1, 0xb2, 0xc3, 0xd4] => Some((true, false, false)),
        [0x4d, 0x3c, 0xb2, 0xa1] => Some((false, true, false)),
        [0xa1, 0xb2, 0x3c, 0x4d] => Some((true, true, false)),
        [0x34, 0xcd, 0xb2, 0xa1] => Some((false, false, true)),
        [0xa1, 0xb2, 0xcd, 0x34] => {
            return Err("big-endian modified pcap (magic a1b2cd34) is not supported".to_owned())
        }
        _ => None,
    };
    if let Some((big_endian, nanos, modified)) = pcap {
        if prefix.len() < PCAP_HEADER_LEN {
            return Err(format!(
                "file ends inside the pcap file header ({} of {PCAP_HEADER_LEN} bytes)",
                prefix.len()
            ));
        }
        let network = u32_at(prefix, 20, big_endian).unwrap_or(0) & PCAP_LINKTYPE_MASK;
        return Ok(Sniffed::Pcap {
            big_endian,
            nanos,
            modified,
            link: LinkType::from_dlt(network),
        });
    }
    if magic == SHB_TYPE {
        let Some(bom) = prefix.get(8..12) else {
            return Err(format!(
                "file ends inside the pcapng section header ({} bytes)",
                prefix.len()
            ));
        };
        let big_endian = if bom == BOM_LE {
            false
        } else if bom == BOM_BE {
            true
        } else {
            return Err("pcapng section header has an invalid byte-order magic".to_owned());
        };
        let shb_len = u32_at(prefix, 4, big_endian).unwrap_or(0);
        let too_big = usize::try_from(shb_len).map_or(true, |l| l > max_block);
        if shb_len < SHB_MIN_LEN || shb_len % 4 != 0 || too_big {
            return Err(format!(
                "pcapng section header has an invalid length ({shb_len})"
            ));
        }
        return Ok(Sniffed::PcapNg { shb_len });
    }
    let hex: String = magic.iter().map(|b| format!("{b:02x}")).collect();
    if looks_like_text(prefix) {
        Err(format!(
            "unknown magic number {hex}: looks like a text file"
        ))
    } else {
        Err(format!("unknown magic number {hex}"))
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use rstest::rstest;

    const MAX: usize = 1 << 24;

    /// A little-endian microsecond pcap header with link type `dlt`.
    fn pcap_header_le(dlt: u32) -> Vec<u8> {
        let mut h = vec![0xd4, 0xc3, 0xb2, 0xa1]; // magic, LE, microseconds
        h.extend_from_slice(&2u16.to_le_bytes()); // version major
        h.extend_from_slice(&4u16.to_le_bytes()); // version minor
        h.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
        h.extend_from_slice(&dlt.to_le_bytes()); // network
        h
    }

    #[rstest]
    #[case(&[], "empty file")]
    #[case(&[0xd4, 0xc3], "too short for a magic")]
    #[case(b"GET / HTTP/1.1\r\nHost: x\r\n", "looks like a text file")]
    #[case(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0], "unknown magic number deadbeef")]
    #[case(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0], "inside the pcap file header (8 of 24")]
    #[case(&[0xa1, 0xb2, 0xcd, 0x34], "big-endian modified")]
    #[case(&[0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0], "inside the pcapng section header")]
    #[case(&[0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 1, 2, 3, 4], "invalid byte-order")]
    #[case(&[0x0a, 0x0d, 0x0d, 0x0a, 27, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a], "invalid length (27)")]
    #[case(&[0x0a, 0x0d, 0x0d, 0x0a, 12, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a], "invalid length (12)")]
    #[case(&[0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0x7f, 0x4d, 0x3c, 0x2b, 0x1a], "invalid length")]
    fn rejects(#[case] bytes: &[u8], #[case] reason: &str) {
        let err = sniff(bytes, MAX).unwrap_err();
        assert!(err.contains(reason), "{err:?} lacks {reason:?}");
    }

    #[test]
    fn pcap_variants() {
        let le = pcap_header_le(1);
        assert_eq!(
            sniff(&le, MAX),
            Ok(Sniffed::Pcap {
                big_endian: false,
                nanos: false,
                modified: false,
                link: LinkType::Ethernet
            })
        );
        // Big-endian nanosecond header, link type 113 with FCS bits set above bit 25.
        let mut be = vec![0xa1, 0xb2, 0x3c, 0x4d]; // magic, BE, nanoseconds
        be.extend_from_slice(&[0, 2, 0, 4]); // versions 2.4
        be.extend_from_slice(&[0; 8]); // thiszone, sigfigs
        be.extend_from_slice(&[0, 0, 0xff, 0xff]); // snaplen
        be.extend_from_slice(&(113u32 | 0x1000_0000).to_be_bytes()); // network + FCS length bits
        assert_eq!(
            sniff(&be, MAX),
            Ok(Sniffed::Pcap {
                big_endian: true,
                nanos: true,
                modified: false,
                link: LinkType::LinuxSll
            })
        );
    }

    #[test]
    fn pcapng_both_orders() {
        let le = [0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a];
        assert_eq!(sniff(&le, MAX), Ok(Sniffed::PcapNg { shb_len: 28 }));
        let be = [0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 32, 0x1a, 0x2b, 0x3c, 0x4d];
        assert_eq!(sniff(&be, MAX), Ok(Sniffed::PcapNg { shb_len: 32 }));
        // Longer than the cap: refused.
        assert!(sniff(&be, 16).is_err());
    }
}
