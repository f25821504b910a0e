//! Reads every capture in the shared corpus (`../shared/pcaps/MANIFEST.tsv`) and checks the
//! packet count and the first packet's link type against tshark's, as recorded in the manifest.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use otwatch::capture::CaptureFile;
use otwatch::decode::LinkType;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps")
}

/// The link type tshark names in the manifest's `linktype` column. `None` for `per-packet`
/// (a pcapng file whose interfaces have different link types).
fn expected_link(name: &str) -> Option<LinkType> {
    match name {
        "ether" => Some(LinkType::Ethernet),
        "null" => Some(LinkType::Null),
        "linux-sll" => Some(LinkType::LinuxSll),
        "linux-sll2" => Some(LinkType::LinuxSll2),
        "raw" | "rawip" => Some(LinkType::Raw),
        // IEEE 802.15.4 with FCS (LINKTYPE_IEEE802_15_4_WITHFCS).
        "wpan" => Some(LinkType::Other(195)),
        "per-packet" => None,
        other => panic!("manifest link type {other:?} not mapped in this test"),
    }
}

/// What reading one file produced.
struct Seen {
    packets: u64,
    first_link: Option<LinkType>,
    links: BTreeSet<LinkType>,
    truncated: bool,
    corrupt: bool,
    bytes: u64,
}

fn read(path: &Path) -> Result<Seen, String> {
    let mut cap = CaptureFile::open(path).map_err(|e| e.to_string())?;
    let mut first_link = None;
    let mut links = BTreeSet::new();
    let mut last_number = 0;
    while let Some(p) = cap.next_packet().map_err(|e| e.to_string())? {
        first_link.get_or_insert(p.link);
        links.insert(p.link);
        if p.number != last_number + 1 {
            return Err(format!("packet number {} after {last_number}", p.number));
        }
        last_number = p.number;
    }
    let stats = cap.stats();
    Ok(Seen {
        packets: stats.packets,
        first_link,
        links,
        truncated: stats.truncated,
        corrupt: stats.corrupt,
        bytes: cap.position(),
    })
}

#[test]
fn every_manifest_capture_matches_tshark() {
    let dir = corpus();
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv"))
        .expect("../shared/pcaps/MANIFEST.tsv (the shared capture corpus)");
    let mut lines = manifest.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (c_file, c_packets, c_link, c_notes) =
        (col("file"), col("packets"), col("linktype"), col("notes"));

    let started = Instant::now();
    let mut problems = Vec::new();
    let mut files = 0;
    let mut total_packets = 0;
    let mut total_bytes = 0;
    let mut truncated = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let row: Vec<&str> = line.split('\t').collect();
        let file = row[c_file];
        let want_packets: u64 = row[c_packets].parse().unwrap();
        let want_link = expected_link(row[c_link]);
        let notes = row.get(c_notes).copied().unwrap_or("");
        files += 1;

        let path = dir.join(file);
        let seen = match std::panic::catch_unwind(|| read(&path)) {
            Ok(Ok(seen)) => seen,
            Ok(Err(e)) => {
                problems.push(format!("{file}: {e}"));
                continue;
            }
            Err(_) => {
                problems.push(format!("{file}: panicked"));
                continue;
            }
        };
        total_packets += seen.packets;
        total_bytes += seen.bytes;
        if seen.truncated {
            truncated.push(file.to_owned());
        }

        // tshark counts complete records only: a truncated last record is in neither count,
        // so no exception is needed for it. A corrupt block, though, should never occur here.
        if seen.corrupt {
            problems.push(format!("{file}: reader reports a corrupt block"));
        }
        if seen.truncated != notes.contains("TRUNCATED") {
            problems.push(format!(
                "{file}: truncated={} but the manifest notes say {notes:?}",
                seen.truncated
            ));
        }
        if seen.packets != want_packets {
            problems.push(format!(
                "{file}: {} packets, tshark counts {want_packets}",
                seen.packets
            ));
        }
        match want_link {
            Some(link) => {
                if want_packets > 0 && seen.first_link != Some(link) {
                    problems.push(format!(
                        "{file}: first packet link {:?}, tshark says {}",
                        seen.first_link, row[c_link]
                    ));
                }
            }
            None => {
                if seen.links.len() < 2 {
                    problems.push(format!(
                        "{file}: manifest says per-packet link types, reader saw {:?}",
                        seen.links
                    ));
                }
            }
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "read {files} files, {total_packets} packets, {total_bytes} bytes in {elapsed:?}; \
         truncated: {truncated:?}"
    );
    assert!(files > 0, "empty manifest");
    assert!(
        problems.is_empty(),
        "{} of {files} captures disagree with the manifest:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
