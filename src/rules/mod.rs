//! The native rule engine: rules that say what must never happen in a plant, written in TOML
//! (format: `rules/README.md`), checked and compiled once, then matched against every
//! [`IcsEvent`] by the [`detector::RulesDetector`].
//!
//! Loading: [`read_paths`] turns files and directories (their `*.toml` and `*.rules` files,
//! sorted by name) into [`Source`]s; [`load`] parses them all, merges `[groups]` across files,
//! validates every rule (each error with file, line and column), and compiles the rules into a
//! [`RuleSet`]: addresses as numeric intervals, names resolved to codes, values as numeric
//! predicates, and an [`index::Index`] by protocol and function code or service so that a
//! thousand rules cost little per event. [`embedded_pack`] is the shipped pack of the repository's
//! `rules/` directory, built into the binary.
//!
//! A compiled rule holds a [`Matcher`]; a second kind of rule (Suricata's `modbus:` rules)
//! slots in as one more variant.

pub mod compile;
pub mod detector;
pub mod index;
pub(crate) mod parse;
pub mod suricata;

#[cfg(test)]
mod tests;

use crate::alert::attack::TECHNIQUES;
use crate::event::{AppProto, IcsEvent};
use compile::{compile_match, group_items, Groups, NativeMatch};
use parse::{line_col, RawFile};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a rule file, with its position.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct RuleError {
    /// File name as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

/// A rule that loaded but will not run, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Where the rule is: `file:line:col` of its id.
    pub at: String,
    /// Rule id.
    pub id: u32,
    /// Why it is disabled.
    pub message: String,
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: notice: rule {} {}", self.at, self.id, self.message)
    }
}

/// The text of one rule file.
#[derive(Clone, Debug)]
pub struct Source {
    /// File name for messages.
    pub name: String,
    /// Its contents.
    pub text: String,
}

/// A rule path that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The path does not exist.
    #[error("{0}: no such file or directory")]
    NotFound(String),
    /// Another I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Collects diagnostics for one file.
pub(crate) struct Diag<'a> {
    file: &'a str,
    text: &'a str,
    errors: &'a mut Vec<RuleError>,
}

impl Diag<'_> {
    fn at(&self, span: Range<usize>) -> (usize, usize) {
        line_col(self.text, span.start)
    }

    /// Records an error at `span`.
    pub(crate) fn err(&mut self, span: Range<usize>, message: String) {
        let (line, col) = self.at(span);
        self.errors.push(RuleError {
            file: self.file.to_string(),
            line,
            col,
            message,
        });
    }

    /// Errors recorded so far (all files).
    pub(crate) fn count(&self) -> usize {
        self.errors.len()
    }
}

/// How a rule's threshold tracks its matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Track {
    /// One count per client address.
    BySrc,
    /// One count per server address.
    ByDst,
    /// One count per (client, server, protocol).
    ByChannel,
    /// One count for the whole rule (Suricata's `by_rule`).
    ByRule,
}

/// When a threshold lets an alert through (Suricata's `threshold: type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ThresholdKind {
    /// Once per window, when the `count`-th match is seen (native rules; Suricata `both`).
    #[default]
    Both,
    /// The first `count` matches of each window (Suricata `limit`).
    Limit,
    /// Every `count`-th match within a window (Suricata `threshold`).
    Every,
}

/// Alert only after `count` matches within `seconds` for one value of `track`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold {
    /// Matches needed.
    pub count: u32,
    /// Window length, capture seconds.
    pub seconds: u32,
    /// What is counted separately.
    pub track: Track,
    /// When it lets an alert through.
    pub kind: ThresholdKind,
}

/// The compiled test of a rule.
#[derive(Clone, Debug)]
// Native rules are matched inline on the hot path (no indirection); the rarer Suricata rules are
// boxed. Rules live in one Vec, so the size difference costs memory only per rule.
#[allow(clippy::large_enum_variant)]
pub enum Matcher {
    /// A native TOML rule.
    Native(NativeMatch),
    /// A Suricata rule with the `modbus:` keyword.
    Suricata(Box<suricata::SuricataRule>),
}

impl Matcher {
    /// True when the event matches.
    #[inline]
    pub fn matches(&self, ev: &IcsEvent) -> bool {
        match self {
            Matcher::Native(m) => m.matches(ev),
            Matcher::Suricata(m) => m.matches(ev),
        }
    }

    /// True when the event matches, for an event that the [`index::Index`] already chose
    /// by protocol and function.
    #[inline]
    pub fn matches_indexed(&self, ev: &IcsEvent) -> bool {
        match self {
            Matcher::Native(m) => m.matches_indexed(ev),
            Matcher::Suricata(m) => m.matches(ev),
        }
    }

    /// The protocol the rule applies to.
    pub fn proto(&self) -> AppProto {
        match self {
            Matcher::Native(m) => m.proto,
            Matcher::Suricata(_) => AppProto::Modbus,
        }
    }

    /// Whether an event that ended normally can match (for the index; Suricata rules: always).
    pub fn can_match_ok(&self) -> bool {
        match self {
            Matcher::Native(m) => m.can_match_ok(),
            Matcher::Suricata(_) => true,
        }
    }

    /// Function codes (Modbus) or request encoding ids (OPC UA) the rule is limited to, for
    /// the index (built once at load); `None` for any.
    pub fn function_keys(&self) -> Option<Vec<u32>> {
        match self {
            Matcher::Native(m) => m.functions.clone(),
            Matcher::Suricata(m) => m.function_code().map(|f| vec![u32::from(f)]),
        }
    }
}

/// One loaded rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Rule id (`alert.signature_id`).
    pub id: u32,
    /// Revision.
    pub rev: u32,
    /// Title.
    pub title: String,
    /// `OTWATCH <PROTO> <title>`.
    pub signature: String,
    /// 1 high, 2 medium, 3 low.
    pub severity: u8,
    /// ATT&CK for ICS technique ids, from otwatch's table.
    pub techniques: Vec<&'static str>,
    /// Why it matters, in plain words.
    pub description: String,
    /// Optional threshold.
    pub threshold: Option<Threshold>,
    /// The compiled test.
    pub matcher: Matcher,
    /// `file:line:col` of the rule's id.
    pub origin: String,
}

/// Every enabled rule, sorted by id, with its index.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    /// Enabled rules, by id.
    pub rules: Vec<Rule>,
    /// The index over `rules`.
    pub index: index::Index,
    /// Rules that loaded but are disabled.
    pub disabled: usize,
}

impl RuleSet {
    /// True when no rule is enabled.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// The result of loading rule files.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// The rules (only those without errors).
    pub set: RuleSet,
    /// Every error.
    pub errors: Vec<RuleError>,
    /// One notice per disabled rule.
    pub notices: Vec<Notice>,
    /// Files read.
    pub files: usize,
}

/// Files of a path: the file itself, or a directory's `*.toml` and `*.rules`, sorted by name.
pub fn read_paths(paths: &[PathBuf]) -> Result<Vec<Source>, ReadError> {
    let io = |p: &Path, source| ReadError::Io {
        path: p.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    for p in paths {
        if !p.exists() {
            return Err(ReadError::NotFound(p.display().to_string()));
        }
        let mut files = Vec::new();
        if p.is_dir() {
            for entry in std::fs::read_dir(p).map_err(|e| io(p, e))? {
                let f = entry.map_err(|e| io(p, e))?.path();
                let ext = f.extension().and_then(|e| e.to_str());
                if f.is_file() && matches!(ext, Some("toml" | "rules")) {
                    files.push(f);
                }
            }
            files.sort();
        } else {
            files.push(p.clone());
        }
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| io(&f, e))?;
            out.push(Source {
                name: f.display().to_string(),
                text,
            });
        }
    }
    Ok(out)
}

include!(concat!(env!("OUT_DIR"), "/rules_pack.rs"));

/// The shipped rule pack (`rules/*.toml` of the repository at build time), in name order.
pub fn embedded_pack() -> Vec<Source> {
    PACK.iter()
        .map(|(name, text)| Source {
            name: (*name).to_string(),
            text: (*text).to_string(),
        })
        .collect()
}

fn severity_of(s: &str) -> Option<u8> {
    match s {
        "high" => Some(1),
        "medium" => Some(2),
        "low" => Some(3),
        _ => None,
    }
}

fn proto_tag(p: AppProto) -> &'static str {
    match p {
        AppProto::Modbus => "MODBUS",
        AppProto::Opcua => "OPCUA",
    }
}

/// Parses, validates and compiles rule files loaded together.
pub fn load(sources: &[Source]) -> LoadReport {
    let mut errors = Vec::new();
    let mut parsed: Vec<(&Source, RawFile)> = Vec::new();
    let mut suricata_rules: Vec<(&Source, suricata::SuricataRule)> = Vec::new();
    let mut notices = Vec::new();
    for src in sources {
        if src.name.ends_with(".rules") {
            let (loaded, failed) = suricata::parse_rules(&src.text);
            for f in failed {
                notices.push(Notice {
                    at: format!("{}:{}:1", src.name, f.line),
                    id: f.sid.unwrap_or(0),
                    message: format!("Suricata rule not loaded: {}", f.reason),
                });
            }
            suricata_rules.extend(loaded.into_iter().map(|r| (src, r)));
            continue;
        }
        match toml::from_str::<RawFile>(&src.text) {
            Ok(f) => parsed.push((src, f)),
            Err(e) => {
                let (line, col) = line_col(&src.text, e.span().map_or(0, |s| s.start));
                errors.push(RuleError {
                    file: src.name.clone(),
                    line,
                    col,
                    message: e.message().trim().replace('`', "\"").to_string(),
                });
            }
        }
    }
    // Groups: the union over every file.
    let mut groups: Groups = BTreeMap::new();
    for (src, f) in &parsed {
        let mut d = Diag {
            file: &src.name,
            text: &src.text,
            errors: &mut errors,
        };
        for (name, items) in &f.groups {
            let ranges = group_items(items.get_ref(), &mut d);
            groups.entry(name.clone()).or_default().extend(ranges);
        }
    }
    let mut rules: Vec<Rule> = Vec::new();
    let mut seen: BTreeMap<u32, String> = BTreeMap::new();
    let mut disabled = 0;
    for (src, f) in &parsed {
        let mut d = Diag {
            file: &src.name,
            text: &src.text,
            errors: &mut errors,
        };
        for raw in &f.rule {
            let before = d.count();
            let id = *raw.id.get_ref();
            let (line, col) = d.at(raw.id.span());
            let origin = format!("{}:{line}:{col}", src.name);
            if let Some(first) = seen.get(&id) {
                d.err(
                    raw.id.span(),
                    format!("duplicate rule id {id} (first defined at {first})"),
                );
            } else {
                seen.insert(id, origin.clone());
            }
            let severity = severity_of(raw.severity.get_ref()).unwrap_or_else(|| {
                d.err(
                    raw.severity.span(),
                    format!(
                        "unknown severity {:?} (expected \"high\", \"medium\" or \"low\")",
                        raw.severity.get_ref()
                    ),
                );
                3
            });
            let mut techniques = Vec::new();
            for t in &raw.attack {
                match TECHNIQUES.iter().find(|x| x.id == t.get_ref()) {
                    Some(x) => techniques.push(x.id),
                    None => d.err(
                        t.span(),
                        format!("unknown ATT&CK for ICS technique {:?}", t.get_ref()),
                    ),
                }
            }
            let mut empty_required = Vec::new();
            for g in &raw.requires {
                match groups.get(g.get_ref()) {
                    None => d.err(g.span(), format!("undefined group {:?}", g.get_ref())),
                    Some(v) if v.is_empty() => empty_required.push(g.get_ref().clone()),
                    Some(_) => {}
                }
            }
            let threshold = raw.threshold.as_ref().and_then(|t| {
                let t = t.get_ref();
                let mut ok = true;
                for (v, what) in [(&t.count, "count"), (&t.seconds, "seconds")] {
                    if *v.get_ref() == 0 {
                        d.err(v.span(), format!("threshold {what} must be at least 1"));
                        ok = false;
                    }
                }
                let track = match t.track.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
                    None | Some(("by_src", _)) => Track::BySrc,
                    Some(("by_dst", _)) => Track::ByDst,
                    Some(("by_channel", _)) => Track::ByChannel,
                    Some((other, span)) => {
                        d.err(
                            span,
                            format!(
                                "unknown track {other:?} (expected \"by_src\", \"by_dst\" or \"by_channel\")"
                            ),
                        );
                        ok = false;
                        Track::BySrc
                    }
                };
                ok.then_some(Threshold {
                    count: *t.count.get_ref(),
                    seconds: *t.seconds.get_ref(),
                    track,
                    kind: ThresholdKind::Both,
                })
            });
            let matcher = compile_match(&raw.matcher, &groups, &mut d);
            if d.count() != before {
                continue;
            }
            let Some(m) = matcher else { continue };
            let off = if raw.enabled == Some(false) {
                Some("is disabled (enabled = false)".to_string())
            } else if !empty_required.is_empty() {
                Some(format!(
                    "is disabled until group{} {} {} named (requires)",
                    if empty_required.len() > 1 { "s" } else { "" },
                    empty_required.join(", "),
                    if empty_required.len() > 1 {
                        "are"
                    } else {
                        "is"
                    },
                ))
            } else {
                None
            };
            if let Some(message) = off {
                notices.push(Notice {
                    at: origin,
                    id,
                    message: format!("{:?} {message}", raw.title),
                });
                disabled += 1;
                continue;
            }
            rules.push(Rule {
                id,
                rev: raw.rev,
                title: raw.title.clone(),
                signature: format!("OTWATCH {} {}", proto_tag(m.proto), raw.title.trim()),
                severity,
                techniques,
                description: raw
                    .description
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                threshold,
                matcher: Matcher::Native(m),
                origin,
            });
        }
    }
    for (src, r) in suricata_rules {
        let origin = format!("{}:{}:1", src.name, r.line);
        if let Some(first) = seen.get(&r.sid) {
            errors.push(RuleError {
                file: src.name.clone(),
                line: r.line,
                col: 1,
                message: format!("duplicate rule id {} (first defined at {first})", r.sid),
            });
            continue;
        }
        seen.insert(r.sid, origin.clone());
        let threshold = r.threshold.map(|t| Threshold {
            count: t.count.max(1),
            seconds: t.seconds.max(1),
            track: match t.track {
                suricata::ThresholdTrack::BySrc => Track::BySrc,
                suricata::ThresholdTrack::ByDst => Track::ByDst,
                suricata::ThresholdTrack::ByBoth => Track::ByChannel,
                suricata::ThresholdTrack::ByRule => Track::ByRule,
            },
            kind: match t.kind {
                suricata::ThresholdType::Both => ThresholdKind::Both,
                suricata::ThresholdType::Limit => ThresholdKind::Limit,
                suricata::ThresholdType::Threshold => ThresholdKind::Every,
            },
        });
        let severity = r
            .priority
            .unwrap_or_else(|| suricata::classtype_priority(r.classtype.as_deref()))
            .clamp(1, 3);
        let description = match &r.classtype {
            Some(c) => format!("Suricata rule {} ({c}) from {origin}.", r.sid),
            None => format!("Suricata rule {} from {origin}.", r.sid),
        };
        rules.push(Rule {
            id: r.sid,
            rev: r.rev,
            title: r.msg.clone(),
            // As Suricata writes it: the rule's msg.
            signature: r.msg.clone(),
            severity,
            techniques: Vec::new(),
            description,
            threshold,
            matcher: Matcher::Suricata(Box::new(r)),
            origin,
        });
    }
    rules.sort_by_key(|r| r.id);
    let index = index::Index::build(&rules);
    LoadReport {
        set: RuleSet {
            rules,
            index,
            disabled,
        },
        errors,
        notices,
        files: sources.len(),
    }
}
