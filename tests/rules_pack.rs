//! The shipped rule pack (`rules/*.toml`) against captures made with real stacks: every rule
//! fires on the capture made for it (`pcaps/rules/`), no other pack rule fires there, and the
//! evaluation plant's normal traffic raises none (`pcaps/rules/expect.tsv`).
//!
//! Each capture runs as `otwatch detect --rules rules/ --rules SITE CAPTURE`, where SITE is
//! the `site.toml` beside the capture (the groups of its hosts).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const EXPECT: &str = "pcaps/rules/expect.tsv";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Rule ids of the shipped pack, from the `id = N` lines of `rules/*.toml`.
fn pack_ids() -> BTreeSet<u32> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut ids = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("id = ") else {
                continue;
            };
            let num = rest.split('#').next().unwrap().trim();
            let id: u32 = num
                .parse()
                .unwrap_or_else(|e| panic!("{}: bad id line {line:?}: {e}", f.display()));
            assert!(
                (9_100_000..=9_199_999).contains(&id),
                "{}: id {id} outside the pack's range",
                f.display()
            );
            assert!(ids.insert(id), "{}: duplicate id {id}", f.display());
        }
    }
    ids
}

/// Expectations per capture: rule id and least number of alerts; an empty map (`*` and 0 in
/// the file) means no pack rule may fire.
fn expectations() -> BTreeMap<String, BTreeMap<u32, usize>> {
    let text = std::fs::read_to_string(root().join(EXPECT)).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("capture\trule_id\tmin_alerts"),
        "{EXPECT}: header"
    );
    let mut out: BTreeMap<String, BTreeMap<u32, usize>> = BTreeMap::new();
    for (n, line) in lines.enumerate() {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 3, "{EXPECT}:{}: {line:?}", n + 2);
        let rules = out.entry(cols[0].to_string()).or_default();
        if cols[1] == "*" {
            assert_eq!(cols[2], "0", "{EXPECT}:{}: `*` takes 0", n + 2);
            continue;
        }
        let id: u32 = cols[1].parse().unwrap();
        let min: usize = cols[2].parse().unwrap();
        assert!(
            min >= 1,
            "{EXPECT}:{}: min_alerts of a rule is at least 1",
            n + 2
        );
        assert!(
            rules.insert(id, min).is_none(),
            "{EXPECT}:{}: {id} twice",
            n + 2
        );
    }
    out
}

/// Alerts of the rules detector in `capture`, counted by signature id.
fn rule_alerts(capture: &str) -> BTreeMap<u32, usize> {
    let site = Path::new(capture).with_file_name("site.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_otwatch"))
        .current_dir(root())
        .env_remove("OTWATCH_LOG")
        .args(["detect", "--rules", "rules/", "--rules"])
        .arg(&site)
        .arg(capture)
        .output()
        .expect("run otwatch");
    assert!(
        out.status.success(),
        "otwatch detect on {capture} (site {}): {}\n{}",
        site.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut counts = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let a: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{capture}: not a JSON line ({e}): {line}"));
        if a["otwatch"]["detector"] != "rules" {
            continue;
        }
        let id = a["alert"]["signature_id"]
            .as_u64()
            .unwrap_or_else(|| panic!("{capture}: alert without signature_id: {line}"));
        *counts.entry(u32::try_from(id).unwrap()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn every_pack_rule_has_a_capture_that_fires_it() {
    let ids = pack_ids();
    assert!(!ids.is_empty(), "no rule ids found in rules/*.toml");
    let expect = expectations();
    let fired: BTreeSet<u32> = expect
        .values()
        .flat_map(|rules| rules.keys().copied())
        .collect();
    let untested: Vec<u32> = ids.difference(&fired).copied().collect();
    assert!(untested.is_empty(), "rules with no capture: {untested:?}");
    let unknown: Vec<u32> = fired.difference(&ids).copied().collect();
    assert!(
        unknown.is_empty(),
        "{EXPECT} names rules not in the pack: {unknown:?}"
    );
    for capture in expect.keys() {
        let p = root().join(capture);
        assert!(p.is_file(), "missing capture {capture}");
        assert!(
            p.with_file_name("site.toml").is_file(),
            "no site.toml beside {capture}"
        );
    }
}

#[test]
fn pack_rules_fire_where_expected_and_nowhere_else() {
    let mut failures = Vec::new();
    for (capture, want) in expectations() {
        let got = rule_alerts(&capture);
        for (id, min) in &want {
            let n = got.get(id).copied().unwrap_or(0);
            if n < *min {
                failures.push(format!(
                    "{capture}: rule {id} raised {n} alerts, want >= {min}"
                ));
            }
        }
        for (id, n) in &got {
            if !want.contains_key(id) {
                failures.push(format!("{capture}: rule {id} raised {n} alerts, want none"));
            }
        }
        eprintln!("{capture}: {got:?}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
