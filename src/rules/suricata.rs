//! Suricata rules with the `modbus:` keyword, matched against otwatch's Modbus events.
//!
//! [`parse_rules`] reads a Suricata rule file and returns the rules otwatch can honour and,
//! for every other rule, a [`SuricataLoadError`] with its line and the reason. Nothing is
//! skipped silently: a rule without `modbus:`, or with a payload keyword (`content`, `pcre`,
//! …), is an error, because otwatch matches parsed Modbus transactions, not bytes.
//!
//! # Semantics
//!
//! A rule matches one [`IcsEvent`] of protocol Modbus, i.e. one transaction, as Suricata
//! matches one Modbus transaction: the header's source is the client, its destination the
//! server (`<>` allows both), and every `modbus:` keyword of the rule must match.
//!
//! - `function N` matches function code N; `function N, subfunction S` matches the FC 8
//!   diagnostic sub-function S (any other function never matches a sub-function).
//! - `function [!]assigned|unassigned|public|user|reserved|all` uses Suricata's categories:
//!   every function code Suricata's parser knows (1–24, 43) is *assigned*, except FC 8 with
//!   a sub-function outside 0–4 and 10–21 and FC 43 with an MEI type other than 13 or 14,
//!   which are *reserved*. Other codes: 9–14, 41–42, 90–91 and 125–127 reserved, 65–72 and
//!   100–110 user, the rest up to 127 unassigned; `public` is assigned or unassigned.
//! - `access read|write [discretes|coils|input|holding][, address R[, value R]]`: the
//!   function's access (FC 1–4 read their table, FC 5/15 write coils, FC 6/16/22 write
//!   holding registers, FC 23 reads and writes holding registers). **Addresses are 1-based**,
//!   as in Suricata: the wire (PDU) address 0 is rule address 1. An address range matches
//!   when it intersects the objects the transaction touches. `value` needs an exact address
//!   and a write, and compares the value written at that address.
//! - `unit R[, function …|access …]` matches the unit id.
//! - Ranges: `N` (equal), `<N`, `>N` (strict) and `A<>B` (strictly between).
//!
//! A transaction with no request (a response nobody asked for) is matched on its response,
//! as Suricata 7 does: its function, unit, the echoed write address and, for single writes,
//! the echoed value.
//!
//! The action is recorded, not enforced: in Suricata a matching `drop` or `reject` rule ends
//! inspection of the rest of the connection and `pass` silences it, while otwatch matches every
//! transaction on its own.
//!
//! # Where otwatch deliberately differs from Suricata 7.0.10
//!
//! Each is a defect of Suricata's implementation, not its documented meaning, and
//! `tests/suricata_rules.rs` pins each one that the test captures exercise:
//!
//! - `function N` for a code Suricata's parser does not name (not 1–24 or 43) matches every
//!   such unnamed code in Suricata (`function 90` matches FC 65); otwatch matches code N.
//! - `access write coils, address A, value V` on FC 15: Suricata reads the wrong byte and
//!   bit of the coil data (and never matches when the request carries one data byte);
//!   otwatch compares the coil at A.
//! - `access read …, address R` on FC 23: Suricata compares the *write* range; otwatch
//!   compares the range that was read.
//! - Suricata computes 1-based addresses in 16 bits, so wire address 65535 becomes rule
//!   address 0; otwatch does not wrap (that object has no rule address).
//! - Suricata stores `>0` and `<0`, `0<>B`, `A<>65535` in a way that changes their meaning
//!   (`value >0` matches 0); otwatch keeps the written meaning.
//!
//! Load-time differences: otwatch rejects `value` with read access (Suricata accepts it when
//! a table is named, but a read carries no written value), `function !N` and function names
//! (Suricata rejects them too), and every keyword it cannot honour.

use crate::event::{AccessDir, AppProto, IcsEvent, ModbusTable, ObjectRef, Outcome, Value};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Most bytes of one rule, continuation lines included; longer rules are load errors.
const MAX_RULE_LEN: usize = 64 * 1024;
/// Deepest nesting of address or port lists.
const MAX_LIST_DEPTH: usize = 8;

/// Why a rule did not load.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct SuricataLoadError {
    /// 1-based line of the rule's first line in the file.
    pub line: usize,
    /// The rule's `sid`, when it could be read.
    pub sid: Option<u32>,
    /// What is wrong, in words.
    pub reason: String,
}

/// What a rule asks Suricata to do when it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleAction {
    /// `alert`.
    Alert,
    /// `pass`: stop inspecting the traffic.
    Pass,
    /// `drop` (inline mode).
    Drop,
    /// `reject`, `rejectsrc`, `rejectdst` or `rejectboth`.
    Reject,
}

/// Which counter a threshold keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThresholdType {
    /// `limit`: at most `count` alerts per `seconds`.
    Limit,
    /// `threshold`: one alert for every `count` matches within `seconds`.
    Threshold,
    /// `both`: one alert per `seconds`, once `count` matches were seen within them.
    Both,
}

/// What a threshold counts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThresholdTrack {
    /// Per source address (the client).
    BySrc,
    /// Per destination address (the server).
    ByDst,
    /// Per rule.
    ByRule,
    /// Per source and destination pair.
    ByBoth,
}

/// A rule's `threshold:` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuricataThreshold {
    /// `type`.
    pub kind: ThresholdType,
    /// `track`.
    pub track: ThresholdTrack,
    /// `count`.
    pub count: u32,
    /// `seconds`.
    pub seconds: u32,
}

/// One loaded rule.
#[derive(Clone, Debug, PartialEq)]
pub struct SuricataRule {
    /// Signature id.
    pub sid: u32,
    /// Revision (0 when absent).
    pub rev: u32,
    /// `msg`, unescaped.
    pub msg: String,
    /// `classtype`.
    pub classtype: Option<String>,
    /// `priority`.
    pub priority: Option<u8>,
    /// 1-based line of the rule's first line in the file.
    pub line: usize,
    /// The action.
    pub action: RuleAction,
    /// `threshold`.
    pub threshold: Option<SuricataThreshold>,
    /// What otwatch reads differently from Suricata here (variables taken as `any`, …).
    pub notes: Vec<String>,
    header: Header,
    modbus: Vec<ModbusMatch>,
}

impl SuricataRule {
    /// Whether the rule matches this event (Modbus events only; others never match).
    pub fn matches(&self, ev: &IcsEvent) -> bool {
        ev.proto == AppProto::Modbus
            && self.header.matches(ev)
            && self.modbus.iter().all(|m| m.matches(ev))
    }

    /// The function code every match has, when the rule names one (for indexing rules).
    pub fn function_code(&self) -> Option<u8> {
        self.modbus.iter().find_map(|m| match m.what {
            What::Function { code, .. } => Some(code),
            _ => None,
        })
    }
}

/// The default priority of a Suricata classtype, as Suricata's stock `classification.config`
/// gives it (1 high … 4 lowest); 3 for a classtype it does not list or none.
pub fn classtype_priority(classtype: Option<&str>) -> u8 {
    match classtype.unwrap_or("") {
        "attempted-user"
        | "unsuccessful-user"
        | "successful-user"
        | "attempted-admin"
        | "successful-admin"
        | "shellcode-detect"
        | "trojan-activity"
        | "web-application-attack"
        | "inappropriate-content"
        | "policy-violation"
        | "targeted-activity"
        | "exploit-kit"
        | "domain-c2"
        | "credential-theft"
        | "command-and-control" => 1,
        "bad-unknown"
        | "attempted-recon"
        | "successful-recon-limited"
        | "successful-recon-largescale"
        | "attempted-dos"
        | "successful-dos"
        | "rpc-portmap-decode"
        | "suspicious-filename-detect"
        | "suspicious-login"
        | "system-call-detect"
        | "unusual-client-port-connection"
        | "denial-of-service"
        | "non-standard-protocol"
        | "web-application-activity"
        | "misc-attack"
        | "default-login-attempt"
        | "external-ip-check"
        | "social-engineering"
        | "coin-mining" => 2,
        "tcp-connection" => 4,
        _ => 3,
    }
}

/// Parses a rule file: the rules otwatch can honour, and an error for every other rule.
///
/// Blank lines and `#` comments are skipped; a line ending in `\` continues on the next.
pub fn parse_rules(text: &str) -> (Vec<SuricataRule>, Vec<SuricataLoadError>) {
    let mut rules: Vec<SuricataRule> = Vec::new();
    let mut errors = Vec::new();
    let mut sids = BTreeSet::new();
    // The rule being read: its first line, its text so far, and whether it grew too long.
    let mut pending: Option<(usize, String, bool)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i.saturating_add(1);
        let t = raw.trim();
        let (start, mut buf, mut too_long) = match pending.take() {
            Some(p) => p,
            None if t.is_empty() || t.starts_with('#') => continue,
            None => (n, String::new(), false),
        };
        let (piece, more) = match t.strip_suffix('\\') {
            Some(p) => (p, true),
            None => (t, false),
        };
        if buf.len().saturating_add(piece.len()) > MAX_RULE_LEN {
            too_long = true;
        }
        if !too_long {
            buf.push_str(piece);
        }
        if more {
            pending = Some((start, buf, too_long));
        } else if too_long {
            errors.push(err(start, None, "rule longer than 64 KiB"));
        } else {
            finish(start, &buf, &mut rules, &mut errors, &mut sids);
        }
    }
    match pending {
        Some((start, _, true)) => errors.push(err(start, None, "rule longer than 64 KiB")),
        Some((start, buf, false)) => finish(start, &buf, &mut rules, &mut errors, &mut sids),
        None => {}
    }
    (rules, errors)
}

fn finish(
    line: usize,
    text: &str,
    rules: &mut Vec<SuricataRule>,
    errors: &mut Vec<SuricataLoadError>,
    sids: &mut BTreeSet<u32>,
) {
    match parse_rule(line, text) {
        Ok(r) => {
            if sids.insert(r.sid) {
                rules.push(r);
            } else {
                errors.push(err(
                    line,
                    Some(r.sid),
                    format!("duplicate sid {}: an earlier rule has it", r.sid),
                ));
            }
        }
        Err(e) => errors.push(e),
    }
}

fn err(line: usize, sid: Option<u32>, reason: impl Into<String>) -> SuricataLoadError {
    SuricataLoadError {
        line,
        sid,
        reason: reason.into(),
    }
}

/// Keywords that inspect payload bytes or buffers otwatch does not keep.
const PAYLOAD_KEYWORDS: &[&str] = &[
    "content",
    "uricontent",
    "pcre",
    "byte_test",
    "byte_jump",
    "byte_extract",
    "byte_math",
    "isdataat",
    "dsize",
    "depth",
    "offset",
    "distance",
    "within",
    "nocase",
    "rawbytes",
    "fast_pattern",
    "bsize",
    "base64_decode",
    "base64_data",
    "startswith",
    "endswith",
    "pkt_data",
    "file_data",
    "file.data",
    "entropy",
];

fn parse_rule(line: usize, text: &str) -> Result<SuricataRule, SuricataLoadError> {
    let open = text
        .find('(')
        .ok_or_else(|| err(line, None, "no option list `( … )`"))?;
    let head = text.get(..open).unwrap_or_default();
    let rest = text.get(open.saturating_add(1)..).unwrap_or_default();
    let close = rest
        .rfind(')')
        .ok_or_else(|| err(line, None, "option list not closed with `)`"))?;
    if !rest
        .get(close.saturating_add(1)..)
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        return Err(err(line, None, "text after the closing `)`"));
    }
    let opts_text = rest.get(..close).unwrap_or_default();
    let opts = split_options(opts_text).map_err(|r| err(line, None, r))?;
    // The sid first, so that every later error can name it.
    let mut sid = None;
    for (k, v) in &opts {
        if k == "sid" {
            sid = Some(
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| err(line, None, format!("sid `{}` is not a number", v.trim())))?,
            );
        }
    }
    let sid = sid.ok_or_else(|| err(line, None, "no sid"))?;
    let e = |r: String| err(line, Some(sid), r);
    let mut notes = Vec::new();
    let (action, header) = parse_header(head, &mut notes).map_err(e)?;
    let mut rule = SuricataRule {
        sid,
        rev: 0,
        msg: String::new(),
        classtype: None,
        priority: None,
        line,
        action,
        threshold: None,
        notes,
        header,
        modbus: Vec::new(),
    };
    for (k, v) in &opts {
        apply_option(&mut rule, k, v).map_err(e)?;
    }
    if rule.modbus.is_empty() {
        return Err(e(
            "no `modbus:` keyword: otwatch matches Suricata rules on parsed Modbus transactions only"
                .to_string(),
        ));
    }
    Ok(rule)
}

fn apply_option(rule: &mut SuricataRule, key: &str, value: &str) -> Result<(), String> {
    let v = value.trim();
    match key {
        "sid" => {}
        "msg" => rule.msg = unquote(v)?,
        "rev" => {
            rule.rev = v
                .parse()
                .map_err(|_| format!("rev `{v}` is not a number"))?;
        }
        "classtype" => rule.classtype = Some(v.to_string()),
        "priority" => {
            rule.priority = Some(
                v.parse()
                    .map_err(|_| format!("priority `{v}` is not a number 0–255"))?,
            );
        }
        "reference" | "metadata" | "gid" | "target" => {}
        "flow" => {
            for part in v.split(',').map(str::trim) {
                match part {
                    "to_server" | "from_client" | "established" => {}
                    other => {
                        return Err(format!(
                            "flow `{other}` not supported: otwatch matches Modbus requests, \
                             which flow to the server on established connections"
                        ))
                    }
                }
            }
            rule.notes.push(
                "flow: accepted; otwatch events are transactions, matched once each".to_string(),
            );
        }
        "threshold" => {
            if rule.threshold.is_some() {
                return Err("more than one threshold".to_string());
            }
            rule.threshold = Some(parse_threshold(v)?);
        }
        "modbus" => {
            if v.starts_with('"') {
                return Err("`modbus:` takes no quotes".to_string());
            }
            rule.modbus.push(parse_modbus(v)?);
        }
        k if PAYLOAD_KEYWORDS.contains(&k) => {
            return Err(format!(
                "keyword `{k}` not supported: otwatch matches parsed Modbus events, not bytes"
            ))
        }
        k => return Err(format!("keyword `{k}` not supported")),
    }
    Ok(())
}

/// Splits `k: v; k; …` at unquoted, unescaped semicolons.
fn split_options(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ';' if !quoted => {
                push_option(&mut out, &cur)?;
                cur.clear();
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted string".to_string());
    }
    if !cur.trim().is_empty() {
        return Err(format!("option `{}` not ended with `;`", cur.trim()));
    }
    Ok(out)
}

fn push_option(out: &mut Vec<(String, String)>, opt: &str) -> Result<(), String> {
    let opt = opt.trim();
    if opt.is_empty() {
        return Err("empty option".to_string());
    }
    let (k, v) = match opt.split_once(':') {
        Some((k, v)) => (k.trim(), v.trim()),
        None => (opt, ""),
    };
    if k.is_empty()
        || !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(format!("bad option name `{k}`"));
    }
    out.push((k.to_string(), v.to_string()));
    Ok(())
}

fn unquote(v: &str) -> Result<String, String> {
    let inner = match v.strip_prefix('"') {
        Some(s) => s
            .strip_suffix('"')
            .ok_or_else(|| "msg: unterminated quoted string".to_string())?,
        None => v,
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn parse_threshold(v: &str) -> Result<SuricataThreshold, String> {
    let (mut kind, mut track, mut count, mut seconds) = (None, None, None, None);
    for part in v.split(',') {
        let mut w = part.split_whitespace();
        let (Some(k), Some(val), None) = (w.next(), w.next(), w.next()) else {
            return Err(format!("threshold: bad part `{}`", part.trim()));
        };
        let num = || {
            val.parse::<u32>()
                .map_err(|_| format!("threshold: {k} `{val}` is not a number"))
        };
        match k {
            "type" => {
                kind = Some(match val {
                    "limit" => ThresholdType::Limit,
                    "threshold" => ThresholdType::Threshold,
                    "both" => ThresholdType::Both,
                    o => return Err(format!("threshold: unknown type `{o}`")),
                });
            }
            "track" => {
                track = Some(match val {
                    "by_src" => ThresholdTrack::BySrc,
                    "by_dst" => ThresholdTrack::ByDst,
                    "by_rule" => ThresholdTrack::ByRule,
                    "by_both" => ThresholdTrack::ByBoth,
                    o => return Err(format!("threshold: unknown track `{o}`")),
                });
            }
            "count" => count = Some(num()?),
            "seconds" => seconds = Some(num()?),
            o => return Err(format!("threshold: unknown setting `{o}`")),
        }
    }
    match (kind, track, count, seconds) {
        (Some(kind), Some(track), Some(count), Some(seconds)) if count > 0 => {
            Ok(SuricataThreshold {
                kind,
                track,
                count,
                seconds,
            })
        }
        (_, _, Some(0), _) => Err("threshold: count must be at least 1".to_string()),
        _ => Err("threshold needs type, track, count and seconds".to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// Header: action, protocol, addresses, ports.

#[derive(Clone, Debug, PartialEq)]
struct Header {
    src: AddrSpec,
    src_port: PortSpec,
    dst: AddrSpec,
    dst_port: PortSpec,
    both_ways: bool,
}

impl Header {
    fn matches(&self, ev: &IcsEvent) -> bool {
        let fwd = |a: &AddrSpec, ap: &PortSpec, b: &AddrSpec, bp: &PortSpec| {
            a.matches(ev.client.ip)
                && ap.matches(ev.client.port)
                && b.matches(ev.server.ip)
                && bp.matches(ev.server.port)
        };
        fwd(&self.src, &self.src_port, &self.dst, &self.dst_port)
            || (self.both_ways && fwd(&self.dst, &self.dst_port, &self.src, &self.src_port))
    }
}

/// A header address or port field: `any`, one network or port range, a negation, or a list.
#[derive(Clone, Debug, PartialEq)]
enum Spec<T> {
    Any,
    Leaf(T),
    Not(Box<Spec<T>>),
    List(Vec<Spec<T>>),
}

/// An address field: networks as (address, prefix length).
type AddrSpec = Spec<(IpAddr, u8)>;
/// A port field: inclusive port ranges.
type PortSpec = Spec<(u16, u16)>;

/// What one leaf of a [`Spec`] matches.
trait SpecLeaf<V> {
    fn hit(&self, v: V) -> bool;
}

impl SpecLeaf<IpAddr> for (IpAddr, u8) {
    fn hit(&self, ip: IpAddr) -> bool {
        in_net(ip, self.0, self.1)
    }
}

impl SpecLeaf<u16> for (u16, u16) {
    fn hit(&self, port: u16) -> bool {
        (self.0..=self.1).contains(&port)
    }
}

impl<T> Spec<T> {
    fn matches<V: Copy>(&self, v: V) -> bool
    where
        T: SpecLeaf<V>,
    {
        match self {
            Spec::Any => true,
            Spec::Leaf(l) => l.hit(v),
            Spec::Not(a) => !a.matches(v),
            Spec::List(items) => {
                // Suricata: a list matches what any positive item matches and no negated one
                // does; a list of only negations matches everything else.
                let mut pos = items.iter().filter(|i| !matches!(i, Spec::Not(_)));
                let any_pos = pos.clone().next().is_some();
                let ok = !any_pos || pos.any(|i| i.matches(v));
                ok && items
                    .iter()
                    .filter(|i| matches!(i, Spec::Not(_)))
                    .all(|i| i.matches(v))
            }
        }
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(bits.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(bits.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

fn parse_header(head: &str, notes: &mut Vec<String>) -> Result<(RuleAction, Header), String> {
    let words = header_words(head)?;
    let [action, proto, src, sp, dir, dst, dp] = words.as_slice() else {
        return Err(format!(
            "header must be `action proto src sport -> dst dport`, found {} parts",
            words.len()
        ));
    };
    let action = match action.as_str() {
        "alert" => RuleAction::Alert,
        "pass" => RuleAction::Pass,
        "drop" => RuleAction::Drop,
        "reject" | "rejectsrc" | "rejectdst" | "rejectboth" => RuleAction::Reject,
        o => return Err(format!("unknown action `{o}`")),
    };
    match proto.as_str() {
        "modbus" | "tcp" | "tcp-pkt" | "tcp-stream" => {}
        o => {
            return Err(format!(
                "protocol `{o}` not supported: otwatch matches Suricata rules on Modbus only"
            ))
        }
    }
    let both_ways = match dir.as_str() {
        "->" => false,
        "<>" => true,
        o => return Err(format!("direction `{o}` is not `->` or `<>`")),
    };
    let header = Header {
        src: parse_addr(src, notes)?,
        src_port: parse_port(sp, notes)?,
        dst: parse_addr(dst, notes)?,
        dst_port: parse_port(dp, notes)?,
        both_ways,
    };
    Ok((action, header))
}

/// Splits the header at whitespace outside brackets.
fn header_words(head: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in head.chars() {
        match c {
            '[' => {
                depth = depth.saturating_add(1);
                cur.push(c);
            }
            ']' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| "unbalanced `]` in header".to_string())?;
                cur.push(c);
            }
            c if c.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c if c.is_whitespace() => {}
            c => cur.push(c),
        }
    }
    if depth != 0 {
        return Err("unbalanced `[` in header".to_string());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

/// Splits a `[a, b, [c, d]]` list body at top-level commas.
fn list_items(body: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    for (i, c) in body.char_indices() {
        match c {
            '[' => depth = depth.saturating_add(1),
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(body.get(start..i).unwrap_or_default());
                start = i.saturating_add(1);
            }
            _ => {}
        }
    }
    items.push(body.get(start..).unwrap_or_default());
    items
}

fn variable_note(notes: &mut Vec<String>, var: &str) {
    let n = format!("variable `{var}` taken as `any`");
    if !notes.contains(&n) {
        notes.push(n);
    }
}

/// Parses a header field (`what` is "address" or "port"): `any`, `$VAR` (taken as `any`, with
/// a note), `!x`, `[x, y, …]`, or one leaf parsed by `leaf`.
fn parse_spec<T>(
    s: &str,
    depth: usize,
    notes: &mut Vec<String>,
    what: &str,
    leaf: &dyn Fn(&str) -> Result<T, String>,
) -> Result<Spec<T>, String> {
    if depth > MAX_LIST_DEPTH {
        return Err(format!("{what} lists nested too deep"));
    }
    let s = s.trim();
    let deeper = depth.saturating_add(1);
    if let Some(rest) = s.strip_prefix('!') {
        return Ok(Spec::Not(Box::new(parse_spec(
            rest, deeper, notes, what, leaf,
        )?)));
    }
    if let Some(body) = s.strip_prefix('[').and_then(|b| b.strip_suffix(']')) {
        let items = list_items(body)
            .into_iter()
            .map(|i| parse_spec(i, deeper, notes, what, leaf))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Spec::List(items));
    }
    if s == "any" {
        return Ok(Spec::Any);
    }
    if let Some(var) = s.strip_prefix('$') {
        if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad {what} variable `{s}`"));
        }
        variable_note(notes, s);
        return Ok(Spec::Any);
    }
    leaf(s).map(Spec::Leaf)
}

fn parse_addr(s: &str, notes: &mut Vec<String>) -> Result<AddrSpec, String> {
    parse_spec(s, 0, notes, "address", &|s| {
        let (ip, bits) = match s.split_once('/') {
            Some((ip, bits)) => (ip, Some(bits)),
            None => (s, None),
        };
        let ip: IpAddr = ip.parse().map_err(|_| format!("bad address `{s}`"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => match b.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("bad prefix length in `{s}`")),
            },
        };
        Ok((ip, bits))
    })
}

fn parse_port(s: &str, notes: &mut Vec<String>) -> Result<PortSpec, String> {
    parse_spec(s, 0, notes, "port", &|s| {
        let num = |t: &str| t.parse::<u16>().map_err(|_| format!("bad port `{s}`"));
        match s.split_once(':') {
            Some((a, b)) => {
                let lo = if a.is_empty() { 0 } else { num(a)? };
                let hi = if b.is_empty() { u16::MAX } else { num(b)? };
                if lo > hi {
                    return Err(format!("port range `{s}` is empty"));
                }
                Ok((lo, hi))
            }
            None => {
                let p = num(s)?;
                Ok((p, p))
            }
        }
    })
}

// ---------------------------------------------------------------------------------------
// The `modbus:` keyword.

/// A numeric condition: `N`, `<N`, `>N` or `A<>B`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NumRange {
    Eq(u16),
    Lt(u16),
    Gt(u16),
    Between(u16, u16),
}

impl NumRange {
    fn contains(self, v: u32) -> bool {
        match self {
            NumRange::Eq(n) => v == u32::from(n),
            NumRange::Lt(n) => v < u32::from(n),
            NumRange::Gt(n) => v > u32::from(n),
            NumRange::Between(a, b) => u32::from(a) < v && v < u32::from(b),
        }
    }

    /// Whether some value in `lo..=hi` is in the range.
    fn intersects(self, lo: u32, hi: u32) -> bool {
        if lo > hi {
            return false;
        }
        match self {
            NumRange::Eq(n) => (lo..=hi).contains(&u32::from(n)),
            NumRange::Lt(n) => lo < u32::from(n),
            NumRange::Gt(n) => hi > u32::from(n),
            NumRange::Between(a, b) => {
                let (a1, b1) = (u32::from(a).saturating_add(1), u32::from(b));
                lo.max(a1) < hi.saturating_add(1).min(b1)
            }
        }
    }
}

fn parse_range(s: &str) -> Result<NumRange, String> {
    let num = |t: &str| {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("`{s}` is not a number or range"));
        }
        t.parse::<u16>()
            .map_err(|_| format!("`{t}` is out of range 0–65535"))
    };
    if let Some((a, b)) = s.split_once("<>") {
        return Ok(NumRange::Between(num(a)?, num(b)?));
    }
    if let Some(n) = s.strip_prefix('<') {
        return Ok(NumRange::Lt(num(n)?));
    }
    if let Some(n) = s.strip_prefix('>') {
        return Ok(NumRange::Gt(num(n)?));
    }
    Ok(NumRange::Eq(num(s)?))
}

/// Suricata's function categories, as bits.
const CAT_ASSIGNED: u8 = 1;
const CAT_UNASSIGNED: u8 = 2;
const CAT_USER: u8 = 4;
const CAT_RESERVED: u8 = 8;
const CAT_ALL: u8 = CAT_ASSIGNED | CAT_UNASSIGNED | CAT_USER | CAT_RESERVED;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    Discretes,
    Coils,
    Input,
    Holding,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum What {
    Any,
    Function {
        code: u8,
        sub: Option<u16>,
    },
    Category(u8),
    Access {
        write: bool,
        table: Option<Table>,
        address: Option<NumRange>,
        value: Option<NumRange>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ModbusMatch {
    unit: Option<NumRange>,
    what: What,
}

fn parse_modbus(v: &str) -> Result<ModbusMatch, String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let first = parts.first().copied().unwrap_or_default();
    let mut words = first.split_whitespace();
    match words.next() {
        Some("unit") => {
            let r = words
                .next()
                .ok_or_else(|| "modbus: `unit` needs a value".to_string())?;
            if words.next().is_some() {
                return Err(format!("modbus: bad unit `{first}`"));
            }
            let unit = Some(parse_range(r).map_err(|e| format!("modbus: unit {e}"))?);
            let rest = parts.get(1..).unwrap_or_default();
            let what = if rest.is_empty() {
                What::Any
            } else {
                parse_what(rest)?
            };
            Ok(ModbusMatch { unit, what })
        }
        Some(_) => Ok(ModbusMatch {
            unit: None,
            what: parse_what(&parts)?,
        }),
        None => Err("modbus: empty value".to_string()),
    }
}

fn parse_what(parts: &[&str]) -> Result<What, String> {
    let first = parts.first().copied().unwrap_or_default();
    let mut words = first.split_whitespace();
    match words.next() {
        Some("function") => {
            let w = words
                .next()
                .ok_or_else(|| "modbus: `function` needs a value".to_string())?;
            if words.next().is_some() {
                return Err(format!("modbus: bad function `{first}`"));
            }
            parse_function(w, parts.get(1..).unwrap_or_default())
        }
        Some("access") => parse_access(words.collect(), parts.get(1..).unwrap_or_default()),
        Some(o) => Err(format!(
            "modbus: unknown setting `{o}` (expected unit, function or access)"
        )),
        None => Err("modbus: empty setting".to_string()),
    }
}

fn parse_function(w: &str, rest: &[&str]) -> Result<What, String> {
    if w.bytes().all(|b| b.is_ascii_digit()) {
        let code = match w.parse::<u8>() {
            Ok(0) => return Err("modbus: function 0 is not a function code".to_string()),
            Ok(c) => c,
            Err(_) => return Err(format!("modbus: function {w} is out of range 1–255")),
        };
        let sub = match rest {
            [] => None,
            [s] => {
                let mut sw = s.split_whitespace();
                match (sw.next(), sw.next(), sw.next()) {
                    (Some("subfunction"), Some(n), None)
                        if n.bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        Some(n.parse::<u16>().map_err(|_| {
                            format!("modbus: subfunction {n} is out of range 0–65535")
                        })?)
                    }
                    _ => return Err(format!("modbus: expected `subfunction N`, found `{s}`")),
                }
            }
            _ => return Err("modbus: too many settings after function".to_string()),
        };
        return Ok(What::Function { code, sub });
    }
    if !rest.is_empty() {
        return Err("modbus: a function category takes no subfunction".to_string());
    }
    let (neg, name) = match w.strip_prefix('!') {
        Some(n) => (true, n),
        None => (false, w),
    };
    let bits = match name {
        "assigned" => CAT_ASSIGNED,
        "unassigned" => CAT_UNASSIGNED,
        "public" => CAT_ASSIGNED | CAT_UNASSIGNED,
        "user" => CAT_USER,
        "reserved" => CAT_RESERVED,
        "all" => CAT_ALL,
        o if neg && o.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(format!(
                "modbus: `function !{o}` is not Suricata syntax (negation takes a category)"
            ))
        }
        o => {
            return Err(format!(
                "modbus: unknown function `{o}` (a number, or assigned, unassigned, public, \
                 user, reserved, all)"
            ))
        }
    };
    Ok(What::Category(if neg { !bits & CAT_ALL } else { bits }))
}

fn parse_access(words: Vec<&str>, rest: &[&str]) -> Result<What, String> {
    let (write, table) = match words.as_slice() {
        [rw] => (parse_rw(rw)?, None),
        [rw, t] => (parse_rw(rw)?, Some(*t)),
        _ => return Err("modbus: expected `access read|write [table]`".to_string()),
    };
    let table = match table {
        None => None,
        Some("coils") => Some(Table::Coils),
        Some("holding") => Some(Table::Holding),
        Some("discretes") if !write => Some(Table::Discretes),
        Some("input") if !write => Some(Table::Input),
        Some(t @ ("discretes" | "input")) => return Err(format!("modbus: `{t}` can only be read")),
        Some(o) => return Err(format!("modbus: unknown table `{o}`")),
    };
    let setting = |s: &str, name: &str| -> Result<NumRange, String> {
        let mut w = s.split_whitespace();
        match (w.next(), w.next(), w.next()) {
            (Some(k), Some(r), None) if k == name => {
                parse_range(r).map_err(|e| format!("modbus: {name} {e}"))
            }
            _ => Err(format!("modbus: expected `{name} N`, found `{s}`")),
        }
    };
    let (address, value) = match rest {
        [] => (None, None),
        [a] => (Some(setting(a, "address")?), None),
        [a, v] => (Some(setting(a, "address")?), Some(setting(v, "value")?)),
        _ => return Err("modbus: too many settings after access".to_string()),
    };
    if value.is_some() {
        if !write {
            return Err("modbus: `value` only works with write access".to_string());
        }
        if !matches!(address, Some(NumRange::Eq(_))) {
            return Err("modbus: `value` needs one exact address, not a range".to_string());
        }
    }
    Ok(What::Access {
        write,
        table,
        address,
        value,
    })
}

fn parse_rw(w: &str) -> Result<bool, String> {
    match w {
        "read" => Ok(false),
        "write" => Ok(true),
        o => Err(format!("modbus: access `{o}` is not read or write")),
    }
}

impl ModbusMatch {
    fn matches(&self, ev: &IcsEvent) -> bool {
        let Ok(fc) = u8::try_from(ev.function.code) else {
            return false;
        };
        if let Some(u) = self.unit {
            match ev.unit_id {
                Some(id) if u.contains(u32::from(id)) => {}
                _ => return false,
            }
        }
        match self.what {
            What::Any => true,
            What::Function { code, sub } => {
                code == fc
                    && match sub {
                        None => true,
                        Some(s) => fc == 8 && ev.function.sub == Some(s),
                    }
            }
            What::Category(bits) => category(fc, ev.function.sub) & bits != 0,
            What::Access {
                write,
                table,
                address,
                value,
            } => access_matches(ev, fc, write, table, address, value),
        }
    }
}

/// Suricata's category of a function code (with its sub-function for FC 8 and FC 43).
fn category(fc: u8, sub: Option<u16>) -> u8 {
    match fc {
        8 => match sub {
            Some(0..=4 | 10..=21) => CAT_ASSIGNED,
            Some(_) => CAT_RESERVED,
            None => 0,
        },
        43 => match sub {
            Some(13 | 14) => CAT_ASSIGNED,
            Some(_) => CAT_RESERVED,
            None => 0,
        },
        1..=24 => CAT_ASSIGNED,
        41 | 42 | 90 | 91 | 125..=127 => CAT_RESERVED,
        65..=72 | 100..=110 => CAT_USER,
        25..=127 => CAT_UNASSIGNED,
        _ => 0,
    }
}

/// The tables a function reads and writes, as Suricata classifies it.
fn function_access(fc: u8) -> (Option<Table>, Option<Table>) {
    match fc {
        1 => (Some(Table::Coils), None),
        2 => (Some(Table::Discretes), None),
        3 => (Some(Table::Holding), None),
        4 => (Some(Table::Input), None),
        5 | 15 => (None, Some(Table::Coils)),
        6 | 16 | 22 => (None, Some(Table::Holding)),
        23 => (Some(Table::Holding), Some(Table::Holding)),
        _ => (None, None),
    }
}

fn table_of(t: ModbusTable) -> Option<Table> {
    match t {
        ModbusTable::Coil => Some(Table::Coils),
        ModbusTable::DiscreteInput => Some(Table::Discretes),
        ModbusTable::InputRegister => Some(Table::Input),
        ModbusTable::HoldingRegister => Some(Table::Holding),
        ModbusTable::FileRecord | ModbusTable::Fifo => None,
    }
}

fn access_matches(
    ev: &IcsEvent,
    fc: u8,
    write: bool,
    table: Option<Table>,
    address: Option<NumRange>,
    value: Option<NumRange>,
) -> bool {
    let (reads, writes) = function_access(fc);
    let Some(t) = (if write { writes } else { reads }) else {
        return false;
    };
    if table.is_some_and(|want| want != t) {
        return false;
    }
    let Some(address) = address else {
        return true;
    };
    let unsolicited = ev.outcome == Outcome::Unsolicited;
    if unsolicited && !write {
        // A read response carries no address.
        return false;
    }
    let dir = if write {
        AccessDir::Write
    } else {
        AccessDir::Read
    };
    ev.accesses.iter().any(|a| {
        let ObjectRef::Modbus {
            table: at,
            start,
            count,
        } = a.object
        else {
            return false;
        };
        if a.dir != dir || table_of(at) != Some(t) {
            return false;
        }
        // Rule addresses are 1-based: wire address 0 is rule address 1. A response echoes
        // one address only.
        let first = u64::from(start).saturating_add(1);
        let count = if unsolicited { 1 } else { u64::from(count) };
        if count == 0 {
            return false;
        }
        let last = first.saturating_add(count).saturating_sub(1);
        let (Ok(lo), Ok(hi)) = (u32::try_from(first), u32::try_from(last)) else {
            return false;
        };
        if !address.intersects(lo, hi) {
            return false;
        }
        let Some(value) = value else {
            return true;
        };
        let NumRange::Eq(at_addr) = address else {
            return false;
        };
        let Some(idx) = u64::from(at_addr)
            .checked_sub(first)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return false;
        };
        if unsolicited && !matches!(fc, 5 | 6) {
            // A multiple-write response echoes the quantity, not values.
            return false;
        }
        match a.values.get(idx).as_deref() {
            Some(Value::Bool(b)) => value.contains(u32::from(*b)),
            Some(Value::Int(n)) => u32::try_from(*n).is_ok_and(|n| value.contains(n)),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Access, Endpoint, Evidence, Function, OpKind};
    use crate::time::Timestamp;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn ev(fc: u8, sub: Option<u16>, unit: u8, accesses: Vec<Access>) -> IcsEvent {
        IcsEvent {
            ts: Timestamp::default(),
            proto: AppProto::Modbus,
            flow_id: 1,
            client: Endpoint {
                ip: "10.0.0.5".parse().unwrap(),
                port: 40000,
                mac: None,
            },
            server: Endpoint {
                ip: "10.0.0.9".parse().unwrap(),
                port: 502,
                mac: None,
            },
            vlan: None,
            unit_id: Some(unit),
            session: None,
            op: OpKind::Other,
            function: Function {
                code: u32::from(fc),
                name: "x",
                category: "public",
                sub,
                sub_name: None,
            },
            accesses,
            outcome: Outcome::Ok,
            latency_us: None,
            violations: Vec::new(),
            facts: Vec::new(),
            details: Vec::new(),
            evidence: Evidence {
                file: Arc::from("t"),
                packet: 1,
                response_packet: None,
            },
        }
    }

    fn acc(
        dir: AccessDir,
        table: ModbusTable,
        start: u32,
        count: u32,
        values: Vec<Value>,
    ) -> Access {
        Access {
            dir,
            object: ObjectRef::Modbus {
                table,
                start,
                count,
            },
            values: crate::detect::testkit::as_parsed(table, values),
        }
    }

    fn rule(opt: &str) -> SuricataRule {
        let text = format!("alert modbus any any -> any any (msg:\"t\"; {opt} sid:1;)");
        let (r, e) = parse_rules(&text);
        assert!(e.is_empty(), "{e:?}");
        r.into_iter().next().unwrap()
    }

    #[test]
    fn header_options_and_continuation() {
        let text = "# comment\n\nalert modbus [10.0.0.0/8,!10.0.0.7] any -> $MODBUS_SERVER \\\n  [502,5020] (msg:\"a \\\"b\\\"; c\"; modbus: function 3; classtype:bad-unknown; \\\n rev:4; sid:7; priority:2; metadata: x y; reference:url,example.com;)\n";
        let (r, e) = parse_rules(text);
        assert!(e.is_empty(), "{e:?}");
        let r = &r[0];
        assert_eq!((r.sid, r.rev, r.line), (7, 4, 3));
        assert_eq!(r.msg, "a \"b\"; c");
        assert_eq!(r.classtype.as_deref(), Some("bad-unknown"));
        assert_eq!(r.priority, Some(2));
        assert_eq!(r.function_code(), Some(3));
        assert!(r.notes.iter().any(|n| n.contains("$MODBUS_SERVER")));
        let mut e3 = ev(3, None, 1, vec![]);
        assert!(r.matches(&e3));
        e3.client.ip = "10.0.0.7".parse().unwrap();
        assert!(!r.matches(&e3), "negated address");
        e3.client.ip = "192.168.0.1".parse().unwrap();
        assert!(!r.matches(&e3), "outside the CIDR");
    }

    #[test]
    fn load_errors_name_line_and_reason() {
        let text = "alert modbus any any -> any any (msg:\"x\"; content:\"|00|\"; modbus: function 3; sid:1;)\n\
                    alert modbus any any -> any any (msg:\"y\"; sid:2;)\n\
                    alert modbus any any -> any any (msg:\"z\"; modbus: function !3; sid:3;)\n\
                    alert modbus any any -> any any (msg:\"w\"; modbus: function 3; sid:3;)\n\
                    alert modbus any any -> any any (msg:\"d\"; modbus: function 4; sid:3;)\n";
        let (r, e) = parse_rules(text);
        assert_eq!(r.len(), 1);
        assert_eq!(e.len(), 4, "{e:?}");
        assert_eq!((e[0].line, e[0].sid), (1, Some(1)));
        assert!(e[0].reason.contains("`content`"));
        assert!(e[1].reason.contains("no `modbus:`"));
        assert!(e[2].reason.contains("!3"));
        assert!(e[3].reason.contains("duplicate sid"));
    }

    #[test]
    fn functions_subfunctions_categories() {
        let r = rule("modbus: function 8, subfunction 4;");
        assert!(r.matches(&ev(8, Some(4), 1, vec![])));
        assert!(!r.matches(&ev(8, Some(1), 1, vec![])));
        assert!(!rule("modbus: function 43, subfunction 14;").matches(&ev(
            43,
            Some(14),
            1,
            vec![]
        )));
        assert!(rule("modbus: function 90;").matches(&ev(90, None, 1, vec![])));
        assert!(!rule("modbus: function 90;").matches(&ev(65, None, 1, vec![])));
        let user = rule("modbus: function user;");
        assert!(user.matches(&ev(65, None, 1, vec![])));
        assert!(user.matches(&ev(100, None, 1, vec![])));
        assert!(!user.matches(&ev(90, None, 1, vec![])));
        let reserved = rule("modbus: function reserved;");
        assert!(reserved.matches(&ev(90, None, 1, vec![])));
        assert!(reserved.matches(&ev(8, Some(7), 1, vec![])));
        assert!(
            !reserved.matches(&ev(9, None, 1, vec![])),
            "known to Suricata: assigned"
        );
        let not_assigned = rule("modbus: function !assigned;");
        assert!(not_assigned.matches(&ev(42, None, 1, vec![])));
        assert!(!not_assigned.matches(&ev(3, None, 1, vec![])));
        assert!(!rule("modbus: function !all;").matches(&ev(3, None, 1, vec![])));
        let unit = rule("modbus: unit 10<>20, function public;");
        assert!(unit.matches(&ev(3, None, 11, vec![])));
        assert!(!unit.matches(&ev(3, None, 10, vec![])));
        assert!(!unit.matches(&ev(65, None, 11, vec![])));
    }

    #[test]
    fn access_addresses_are_one_based() {
        use AccessDir::*;
        use ModbusTable::*;
        let read = ev(3, None, 1, vec![acc(Read, HoldingRegister, 9, 2, vec![])]);
        assert!(rule("modbus: access read holding, address 10;").matches(&read));
        assert!(rule("modbus: access read holding, address 11;").matches(&read));
        assert!(!rule("modbus: access read holding, address 9;").matches(&read));
        assert!(!rule("modbus: access read holding, address 12;").matches(&read));
        assert!(!rule("modbus: access read coils;").matches(&read));
        assert!(!rule("modbus: access write;").matches(&read));
        assert!(rule("modbus: access read, address >10;").matches(&read));
        assert!(!rule("modbus: access read, address >11;").matches(&read));
        assert!(rule("modbus: access read, address <11;").matches(&read));
        assert!(!rule("modbus: access read, address <10;").matches(&read));
        assert!(rule("modbus: access read, address 9<>11;").matches(&read));
        assert!(!rule("modbus: access read, address 11<>20;").matches(&read));
        let w = ev(
            16,
            None,
            1,
            vec![acc(
                Write,
                HoldingRegister,
                99,
                3,
                vec![Value::Int(7), Value::Int(300), Value::Int(9)],
            )],
        );
        assert!(rule("modbus: access write holding, address 101, value 300;").matches(&w));
        assert!(rule("modbus: access write holding, address 101, value >299;").matches(&w));
        assert!(!rule("modbus: access write holding, address 101, value >300;").matches(&w));
        assert!(!rule("modbus: access write holding, address 100, value 300;").matches(&w));
        let coils = ev(
            15,
            None,
            1,
            vec![acc(
                Write,
                Coil,
                0,
                3,
                vec![Value::Bool(false), Value::Bool(true), Value::Bool(false)],
            )],
        );
        assert!(rule("modbus: access write coils, address 2, value 1;").matches(&coils));
        assert!(rule("modbus: access write coils, address 3, value 0;").matches(&coils));
        assert!(!rule("modbus: access write coils, address 4, value 0;").matches(&coils));
    }

    #[test]
    fn unsolicited_responses_match_on_the_echo() {
        use AccessDir::*;
        let mut e = ev(
            6,
            None,
            7,
            vec![acc(
                Write,
                ModbusTable::HoldingRegister,
                41,
                1,
                vec![Value::Int(300)],
            )],
        );
        e.outcome = Outcome::Unsolicited;
        assert!(rule("modbus: access write holding, address 42, value 300;").matches(&e));
        assert!(rule("modbus: unit 7, function 6;").matches(&e));
        let mut m = ev(
            16,
            None,
            7,
            vec![acc(Write, ModbusTable::HoldingRegister, 9, 4, vec![])],
        );
        m.outcome = Outcome::Unsolicited;
        // A multiple-write response echoes its start address only, and no values.
        assert!(rule("modbus: access write holding, address 10;").matches(&m));
        assert!(!rule("modbus: access write holding, address 11;").matches(&m));
        let mut r = ev(
            3,
            None,
            7,
            vec![acc(Read, ModbusTable::HoldingRegister, 9, 4, vec![])],
        );
        r.outcome = Outcome::Unsolicited;
        assert!(!rule("modbus: access read holding, address 10;").matches(&r));
        assert!(rule("modbus: access read holding;").matches(&r));
    }

    #[test]
    fn headers_ipv6_ports_and_both_ways() {
        let mut e = ev(3, None, 1, vec![]);
        e.client.ip = "2001:db8::5".parse().unwrap();
        e.server.ip = "2001:db8::9".parse().unwrap();
        let text = "alert modbus [2001:db8::/64,!2001:db8::7] [1024:] <> any 502 (msg:\"v6\"; modbus: function 3; sid:1;)\n\
                    alert modbus any 502 -> any any (msg:\"wrong way\"; modbus: function 3; sid:2;)\n\
                    alert modbus any any <> any 502 (msg:\"both\"; modbus: function 3; sid:3;)\n\
                    alert modbus any any -> any [!502,5020] (msg:\"not 502\"; modbus: function 3; sid:4;)\n";
        let (r, errs) = parse_rules(text);
        assert!(errs.is_empty(), "{errs:?}");
        let hits: Vec<u32> = r.iter().filter(|r| r.matches(&e)).map(|r| r.sid).collect();
        assert_eq!(hits, vec![1, 3]);
        e.client.ip = "10.0.0.5".parse().unwrap();
        assert!(!r[0].matches(&e), "IPv4 client is not in an IPv6 network");
    }

    #[test]
    fn bad_modbus_values_are_errors() {
        for opt in [
            "modbus: access write input;",
            "modbus: access read, address 1, value 1;",
            "modbus: access write holding, address 1<>5, value 3;",
            "modbus: access write holding, value 3;",
            "modbus: function 0;",
            "modbus: function 300;",
            "modbus: function read_coils;",
            "modbus: Function 3;",
            "modbus: \"function 3\";",
            "modbus: unit 70000;",
            "modbus: function 8, subfunction 70000;",
            "modbus: function user, subfunction 1;",
            "modbus: access write holding, address 5<>;",
        ] {
            let text = format!("alert modbus any any -> any any (msg:\"t\"; {opt} sid:1;)");
            let (r, e) = parse_rules(&text);
            assert!(r.is_empty() && e.len() == 1, "{opt} should not load");
        }
    }

    #[test]
    fn thresholds_parse() {
        let r =
            rule("modbus: function 5; threshold: type both, track by_dst, count 3, seconds 60;");
        assert_eq!(
            r.threshold,
            Some(SuricataThreshold {
                kind: ThresholdType::Both,
                track: ThresholdTrack::ByDst,
                count: 3,
                seconds: 60
            })
        );
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in ".{0,400}") {
            let (rules, _) = parse_rules(&s);
            let e = ev(3, None, 1, vec![]);
            for r in &rules {
                let _ = r.matches(&e);
            }
        }

        #[test]
        fn rule_shaped_text_never_panics(
            head in "(alert|drop|x) (modbus|tcp|udp) [!\\[\\]$a-z0-9./,]{1,12} [!\\[\\]0-9:,a-z]{1,8} (->|<>|<-) [!\\[\\]$a-z0-9./,]{1,12} [!\\[\\]0-9:,a-z]{1,8}",
            opts in "((msg|sid|modbus|threshold|flow|content|rev)[:]?[ a-z0-9,<>!\"\\\\]{0,30};){0,6}",
        ) {
            let text = format!("{head} ({opts})");
            let (rules, _) = parse_rules(&text);
            let e = ev(16, None, 1, vec![]);
            for r in &rules {
                let _ = r.matches(&e);
                let _ = r.function_code();
            }
        }
    }
}
