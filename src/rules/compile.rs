//! Validation and compilation of `[rule.match]` into a [`NativeMatch`]: addresses as numeric
//! intervals, names resolved to codes, values as numeric predicates.

use super::parse::{items, Items, RawMatch, Scalar};
use super::Diag;
use crate::event::{AccessDir, AppProto, IcsEvent, ModbusTable, ObjectRef, OpKind, Outcome, Value};
use crate::proto::modbus::types::{exception_name, function_name};
use crate::proto::opcua::services::{self, MsgKind};
use crate::proto::opcua::status;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Sorted, merged inclusive intervals of `T`, with their overall bounds kept inline so that
/// most values are rejected without touching the list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Intervals<T: Ord + Copy> {
    bounds: Option<(T, T)>,
    single: bool,
    list: Vec<(T, T)>,
}

impl<T: Ord + Copy> Intervals<T> {
    fn new(mut v: Vec<(T, T)>) -> Self {
        v.sort();
        let mut out: Vec<(T, T)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match out.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        let bounds = match (out.first(), out.last()) {
            (Some(f), Some(l)) => Some((f.0, l.1)),
            _ => None,
        };
        Intervals {
            bounds,
            single: out.len() == 1,
            list: out,
        }
    }

    /// True when `x` is in some interval.
    #[inline]
    pub(crate) fn contains(&self, x: T) -> bool {
        match self.bounds {
            Some((lo, hi)) if lo <= x && x <= hi => {
                if self.single {
                    return true;
                }
                let i = self.list.partition_point(|&(_, b)| b < x);
                self.list.get(i).is_some_and(|&(a, _)| a <= x)
            }
            _ => false,
        }
    }

    /// True when `[lo, hi]` overlaps some interval.
    #[inline]
    pub(crate) fn overlaps(&self, lo: T, hi: T) -> bool {
        match self.bounds {
            Some((blo, bhi)) if lo <= bhi && blo <= hi => {
                if self.single {
                    return true;
                }
                let i = self.list.partition_point(|&(_, b)| b < lo);
                self.list.get(i).is_some_and(|&(a, _)| a <= hi)
            }
            _ => false,
        }
    }
}

/// An address list: in some positive interval (or any, when there are only negated items)
/// and in no negated one.
#[derive(Clone, Debug, Default)]
pub(crate) struct AddrSet {
    pos: Intervals<u128>,
    any_pos: bool,
    neg: Intervals<u128>,
}

impl AddrSet {
    fn contains(&self, ip: IpAddr) -> bool {
        let x = ip_num(ip);
        (self.any_pos || self.pos.contains(x)) && !self.neg.contains(x)
    }
}

/// An address as a number (IPv4 as its IPv4-mapped IPv6 form).
pub(crate) fn ip_num(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Parses an address, CIDR block or dash range into an interval.
pub(crate) fn parse_addr(s: &str) -> Result<(u128, u128), String> {
    let s = s.trim();
    if let Some((a, b)) = s.split_once('-') {
        let a: IpAddr = a.trim().parse().map_err(|_| format!("bad address {a:?}"))?;
        let b: IpAddr = b.trim().parse().map_err(|_| format!("bad address {b:?}"))?;
        if a.is_ipv4() != b.is_ipv4() {
            return Err(format!("range {s:?} mixes IPv4 and IPv6"));
        }
        let (a, b) = (ip_num(a), ip_num(b));
        if b < a {
            return Err(format!("range {s:?} ends below its start"));
        }
        return Ok((a, b));
    }
    if let Some((a, p)) = s.split_once('/') {
        let ip: IpAddr = a.trim().parse().map_err(|_| format!("bad address {a:?}"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let p: u32 = p
            .trim()
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("bad prefix length in {s:?} (0-{max})"))?;
        let bits = p + (128 - max);
        let host = u128::MAX.checked_shr(bits).unwrap_or(0);
        let base = ip_num(ip) & !host;
        return Ok((base, base | host));
    }
    let ip: IpAddr = s.parse().map_err(|_| format!("bad address {s:?}"))?;
    Ok((ip_num(ip), ip_num(ip)))
}

/// A numeric predicate on values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Pred {
    Eq(f64),
    Ne(f64),
    Gt(f64),
    Ge(f64),
    Lt(f64),
    Le(f64),
    Range(f64, f64),
}

impl Pred {
    fn holds(self, x: f64) -> bool {
        match self {
            Pred::Eq(n) => x == n,
            Pred::Ne(n) => x != n,
            Pred::Gt(n) => x > n,
            Pred::Ge(n) => x >= n,
            Pred::Lt(n) => x < n,
            Pred::Le(n) => x <= n,
            Pred::Range(a, b) => a <= x && x <= b,
        }
    }
}

fn value_num(v: &Value) -> Option<f64> {
    match v {
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::Int(i) => Some(*i as f64),
        Value::UInt(u) => Some(*u as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// What one access must be (all given parts on the same access).
#[derive(Clone, Debug, Default)]
pub(crate) struct AccessMatch {
    dir: Option<AccessDir>,
    tables: u8,
    address: Option<Intervals<u32>>,
    values: Vec<Pred>,
    nodes: Vec<String>,
    node_prefixes: Vec<String>,
    namespaces: Option<Intervals<u32>>,
    attributes: Option<Intervals<u32>>,
}

fn table_bit(t: ModbusTable) -> u8 {
    1 << (t as u8)
}

fn namespace_of(node_id: &str) -> u32 {
    node_id
        .strip_prefix("ns=")
        .and_then(|r| r.split(';').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

impl AccessMatch {
    fn matches(&self, ev: &IcsEvent) -> bool {
        ev.accesses.iter().any(|a| {
            if self.dir.is_some_and(|d| d != a.dir) {
                return false;
            }
            match &a.object {
                ObjectRef::Modbus {
                    table,
                    start,
                    count,
                } => {
                    if !self.nodes.is_empty()
                        || !self.node_prefixes.is_empty()
                        || self.namespaces.is_some()
                        || self.attributes.is_some()
                    {
                        return false;
                    }
                    if self.tables != 0 && self.tables & table_bit(*table) == 0 {
                        return false;
                    }
                    let last = start.saturating_add(count.saturating_sub(1));
                    if let Some(addr) = &self.address {
                        if !addr.overlaps(*start, last) {
                            return false;
                        }
                    }
                    if self.values.is_empty() {
                        return true;
                    }
                    a.values.iter().enumerate().any(|(i, v)| {
                        let at = u32::try_from(i)
                            .ok()
                            .and_then(|i| start.checked_add(i))
                            .unwrap_or(u32::MAX);
                        self.address.as_ref().is_none_or(|r| r.contains(at))
                            && value_num(&v).is_some_and(|x| self.values.iter().any(|p| p.holds(x)))
                    })
                }
                ObjectRef::Node { node_id, attribute } => {
                    if self.tables != 0 || self.address.is_some() {
                        return false;
                    }
                    if !self.nodes.is_empty() && !self.nodes.iter().any(|n| n == node_id) {
                        return false;
                    }
                    if !self.node_prefixes.is_empty()
                        && !self
                            .node_prefixes
                            .iter()
                            .any(|p| node_id.starts_with(p.as_str()))
                    {
                        return false;
                    }
                    if let Some(ns) = &self.namespaces {
                        if !ns.contains(namespace_of(node_id)) {
                            return false;
                        }
                    }
                    if let Some(at) = &self.attributes {
                        if !attribute.is_some_and(|x| at.contains(x)) {
                            return false;
                        }
                    }
                    self.values.is_empty()
                        || a.values.iter().any(|v| {
                            value_num(&v).is_some_and(|x| self.values.iter().any(|p| p.holds(x)))
                        })
                }
                ObjectRef::Other { .. } => false,
            }
        })
    }
}

/// A compiled native match: every part given must hold.
#[derive(Clone, Debug)]
pub struct NativeMatch {
    pub(crate) proto: AppProto,
    src: Option<AddrSet>,
    dst: Option<AddrSet>,
    src_port: Option<Intervals<u32>>,
    dst_port: Option<Intervals<u32>>,
    ops: u16,
    outcomes: u8,
    violation_any: bool,
    violations: Vec<String>,
    unit: Option<Intervals<u32>>,
    /// Function codes (Modbus) or service request encoding ids (OPC UA); the index keys.
    pub(crate) functions: Option<Vec<u32>>,
    categories: Vec<&'static str>,
    sub_function: Option<Intervals<u32>>,
    access: Option<AccessMatch>,
    exceptions: Vec<u8>,
    security_modes: Vec<String>,
    security_policies: Vec<String>,
    identities: Vec<String>,
    status_codes: Vec<u32>,
    status_any_bad: bool,
}

fn op_bit(op: OpKind) -> u16 {
    1 << (op as u16)
}

fn outcome_bit(o: &Outcome) -> u8 {
    1 << match o {
        Outcome::Ok => 0,
        Outcome::Exception { .. } => 1,
        Outcome::Bad { .. } => 2,
        Outcome::Timeout => 3,
        Outcome::NoResponse => 4,
        Outcome::Unsolicited => 5,
        Outcome::NotApplicable => 6,
    }
}

fn detail_str<'a>(ev: &'a IcsEvent, key: &str) -> Option<&'a str> {
    ev.details.iter().find_map(|(k, v)| match v {
        Value::Str(s) if *k == key => Some(s.as_str()),
        _ => None,
    })
}

impl NativeMatch {
    /// Whether an event that ended normally (`Outcome::Ok`) can match: not when the match asks
    /// for an exception, or only for outcomes other than a normal answer.
    pub(crate) fn can_match_ok(&self) -> bool {
        self.exceptions.is_empty()
            && (self.outcomes == 0 || self.outcomes & outcome_bit(&Outcome::Ok) != 0)
    }

    /// True when the event satisfies every part of the match.
    pub(crate) fn matches(&self, ev: &IcsEvent) -> bool {
        ev.proto == self.proto
            && self
                .functions
                .as_ref()
                .is_none_or(|f| f.contains(&ev.function.code))
            && self.matches_indexed(ev)
    }

    /// The same, for an event the index already matched on protocol and function.
    #[inline]
    pub(crate) fn matches_indexed(&self, ev: &IcsEvent) -> bool {
        if self.ops != 0 && self.ops & op_bit(ev.op) == 0 {
            return false;
        }
        if self.outcomes != 0 && self.outcomes & outcome_bit(&ev.outcome) == 0 {
            return false;
        }
        if let Some(u) = &self.unit {
            if !ev.unit_id.is_some_and(|x| u.contains(u32::from(x))) {
                return false;
            }
        }
        if self
            .src_port
            .as_ref()
            .is_some_and(|p| !p.contains(u32::from(ev.client.port)))
            || self
                .dst_port
                .as_ref()
                .is_some_and(|p| !p.contains(u32::from(ev.server.port)))
            || self.src.as_ref().is_some_and(|s| !s.contains(ev.client.ip))
            || self.dst.as_ref().is_some_and(|s| !s.contains(ev.server.ip))
        {
            return false;
        }
        if self.violation_any && ev.violations.is_empty() {
            return false;
        }
        if !self.violations.is_empty()
            && !ev
                .violations
                .iter()
                .any(|v| self.violations.iter().any(|w| w == v))
        {
            return false;
        }
        if !self.categories.is_empty() && !self.categories.contains(&ev.function.category) {
            return false;
        }
        if let Some(s) = &self.sub_function {
            if !ev.function.sub.is_some_and(|x| s.contains(u32::from(x))) {
                return false;
            }
        }
        if !self.exceptions.is_empty() {
            match ev.outcome {
                Outcome::Exception { code, .. } if self.exceptions.contains(&code) => {}
                _ => return false,
            }
        }
        if !self.status_codes.is_empty() || self.status_any_bad {
            let code = match ev.outcome {
                Outcome::Bad { code, .. } => Some(code),
                Outcome::Ok => Some(0),
                _ => None,
            };
            let ok = code.is_some_and(|c| {
                (self.status_any_bad && status::is_bad(c))
                    || self.status_codes.contains(&(c & 0xffff_0000))
            });
            if !ok {
                return false;
            }
        }
        for (list, key) in [
            (&self.security_modes, "security_mode"),
            (&self.security_policies, "security_policy"),
            (&self.identities, "identity_token"),
        ] {
            if !list.is_empty() && !detail_str(ev, key).is_some_and(|d| list.iter().any(|x| x == d))
            {
                return false;
            }
        }
        if let Some(a) = &self.access {
            if !a.matches(ev) {
                return false;
            }
        }
        true
    }
}

/// Host groups, merged over every file loaded together.
pub(crate) type Groups = BTreeMap<String, Vec<(u128, u128)>>;

const MODBUS_ONLY: &[&str] = &[
    "unit",
    "function",
    "category",
    "sub_function",
    "table",
    "address",
    "exception",
];
const OPCUA_ONLY: &[&str] = &[
    "service",
    "node",
    "node_prefix",
    "namespace",
    "attribute",
    "security_mode",
    "security_policy",
    "identity",
    "status",
];

/// Parses an integer written in decimal or `0x` hex.
fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => i64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Compiles the `[rule.match]` table; pushes errors to `d` and returns `None` on any.
pub(crate) fn compile_match(
    m: &RawMatch,
    groups: &Groups,
    d: &mut Diag<'_>,
) -> Option<NativeMatch> {
    let before = d.count();
    let proto = match m.proto.get_ref().as_str() {
        "modbus" => AppProto::Modbus,
        "opcua" => AppProto::Opcua,
        other => {
            d.err(
                m.proto.span(),
                format!("unknown proto {other:?} (expected \"modbus\" or \"opcua\")"),
            );
            return None;
        }
    };
    // A key of the other protocol.
    let keyed: [(&str, &Option<Items>); 16] = [
        ("unit", &m.unit),
        ("function", &m.function),
        ("category", &m.category),
        ("sub_function", &m.sub_function),
        ("table", &m.table),
        ("address", &m.address),
        ("exception", &m.exception),
        ("service", &m.service),
        ("node", &m.node),
        ("node_prefix", &m.node_prefix),
        ("namespace", &m.namespace),
        ("attribute", &m.attribute),
        ("security_mode", &m.security_mode),
        ("security_policy", &m.security_policy),
        ("identity", &m.identity),
        ("status", &m.status),
    ];
    let foreign = match proto {
        AppProto::Modbus => OPCUA_ONLY,
        AppProto::Opcua => MODBUS_ONLY,
    };
    for (key, v) in keyed {
        if let Some(v) = v {
            if foreign.contains(&key) {
                let owner = if proto == AppProto::Modbus {
                    "opcua"
                } else {
                    "modbus"
                };
                d.err(
                    v.span(),
                    format!(
                        "\"{key}\" is a {owner} key, but this rule has proto = \"{}\"",
                        proto.as_str()
                    ),
                );
            }
        }
    }
    let mut out = NativeMatch {
        proto,
        src: m.src.as_ref().and_then(|v| addr_set(v, groups, d)),
        dst: m.dst.as_ref().and_then(|v| addr_set(v, groups, d)),
        src_port: m.src_port.as_ref().map(|v| int_ranges(v, 65535, "port", d)),
        dst_port: m.dst_port.as_ref().map(|v| int_ranges(v, 65535, "port", d)),
        ops: 0,
        outcomes: 0,
        violation_any: false,
        violations: Vec::new(),
        unit: m.unit.as_ref().map(|v| int_ranges(v, 255, "unit", d)),
        functions: None,
        categories: Vec::new(),
        sub_function: m
            .sub_function
            .as_ref()
            .map(|v| int_ranges(v, 65535, "sub-function", d)),
        access: None,
        exceptions: Vec::new(),
        security_modes: Vec::new(),
        security_policies: Vec::new(),
        identities: Vec::new(),
        status_codes: Vec::new(),
        status_any_bad: false,
    };
    if let Some(v) = &m.op {
        for (span, s) in items(v) {
            match names(s, OPS).and_then(|i| OP_KINDS.get(i)) {
                Some(op) => out.ops |= op_bit(*op),
                None => d.err(span, unknown("op", s, OPS)),
            }
        }
    }
    if let Some(v) = &m.outcome {
        for (span, s) in items(v) {
            match names(s, OUTCOMES) {
                Some(i) => out.outcomes |= 1 << i,
                None => d.err(span, unknown("outcome", s, OUTCOMES)),
            }
        }
    }
    if let Some(v) = &m.violation {
        for (span, s) in items(v) {
            match s {
                Scalar::Bool(true) => out.violation_any = true,
                Scalar::Str(n) if !n.is_empty() => out.violations.push(n.clone()),
                _ => d.err(
                    span,
                    "violation: expected a violation name or `true`".into(),
                ),
            }
        }
    }
    if let Some(v) = &m.function {
        let mut codes = Vec::new();
        for (span, s) in items(v) {
            match s {
                Scalar::Int(i) if (0..=255).contains(i) => codes.push(*i as u32),
                Scalar::Int(i) => d.err(span, format!("function code {i} is above 255")),
                Scalar::Str(n) => {
                    if let Some((a, b)) = range_of(n) {
                        if b < a || b > 255 || a < 0 {
                            d.err(span, format!("bad function code range {n:?}"));
                        } else {
                            codes.extend((a as u32)..=(b as u32));
                        }
                        continue;
                    }
                    let found: Vec<u32> = (0u8..=255)
                        .filter(|fc| function_name(*fc) == n && fc & 0x80 == 0)
                        .map(u32::from)
                        .collect();
                    if found.is_empty() {
                        d.err(span, format!("unknown Modbus function {n:?}"));
                    }
                    codes.extend(found);
                }
                _ => d.err(span, "function: expected a code or a name".into()),
            }
        }
        codes.sort_unstable();
        codes.dedup();
        out.functions = Some(codes);
    }
    if let Some(v) = &m.category {
        for (span, s) in items(v) {
            match names(s, CATEGORIES).and_then(|i| CATEGORIES.get(i)) {
                Some(c) => out.categories.push(c),
                None => d.err(span, unknown("category", s, CATEGORIES)),
            }
        }
    }
    if let Some(v) = &m.exception {
        for (span, s) in items(v) {
            let code = match s {
                Scalar::Int(i) => u8::try_from(*i)
                    .ok()
                    .filter(|c| exception_name(*c).is_some()),
                Scalar::Str(n) => (0u8..=255).find(|c| exception_name(*c) == Some(n.as_str())),
                _ => None,
            };
            match code {
                Some(c) => out.exceptions.push(c),
                None => d.err(span, format!("unknown Modbus exception {}", show(s))),
            }
        }
    }
    if let Some(v) = &m.service {
        let mut codes = Vec::new();
        for (span, s) in items(v) {
            let code = match s {
                Scalar::Int(i) => u32::try_from(*i)
                    .ok()
                    .and_then(services::lookup)
                    .filter(|e| e.kind == MsgKind::Request)
                    .map(|e| e.id),
                Scalar::Str(n) => services::ENCODINGS
                    .iter()
                    .find(|e| e.3 == MsgKind::Request && (e.1 == n || e.2 == n))
                    .map(|e| e.0),
                _ => None,
            };
            match code {
                Some(c) => codes.push(c),
                None => d.err(span, format!("unknown OPC UA service {}", show(s))),
            }
        }
        codes.sort_unstable();
        codes.dedup();
        out.functions = Some(codes);
    }
    if let Some(v) = &m.security_mode {
        out.security_modes = strings_in(v, "security_mode", SECURITY_MODES, d);
    }
    if let Some(v) = &m.identity {
        out.identities = strings_in(v, "identity", IDENTITIES, d);
    }
    if let Some(v) = &m.security_policy {
        for (span, s) in items(v) {
            match s {
                Scalar::Str(p) if !p.is_empty() => out
                    .security_policies
                    .push(p.rsplit('#').next().unwrap_or(p).to_string()),
                _ => d.err(
                    span,
                    "security_policy: expected a policy name or URI".into(),
                ),
            }
        }
    }
    if let Some(v) = &m.status {
        for (span, s) in items(v) {
            let code = match s {
                Scalar::Str(n) if n == "bad" => {
                    out.status_any_bad = true;
                    continue;
                }
                Scalar::Int(i) => u32::try_from(*i).ok().filter(|c| status::is_known(*c)),
                Scalar::Str(n) => match parse_int(n) {
                    Some(i) => u32::try_from(i).ok().filter(|c| status::is_known(*c)),
                    None => status::STATUS_CODES
                        .iter()
                        .find(|(_, name)| name == n)
                        .map(|(c, _)| *c),
                },
                _ => None,
            };
            match code {
                Some(c) => out.status_codes.push(c & 0xffff_0000),
                None => d.err(span, format!("unknown OPC UA status {}", show(s))),
            }
        }
    }
    // Parts of one access.
    let mut acc = AccessMatch::default();
    let mut any_access = false;
    if let Some(v) = &m.access {
        any_access = true;
        for (span, s) in items(v) {
            match s {
                Scalar::Str(x) if x == "read" => acc.dir = Some(AccessDir::Read),
                Scalar::Str(x) if x == "write" => acc.dir = Some(AccessDir::Write),
                _ => d.err(span, "access: expected \"read\" or \"write\"".into()),
            }
        }
    }
    if let Some(v) = &m.table {
        any_access = true;
        for (span, s) in items(v) {
            match names(s, TABLES).and_then(|i| MODBUS_TABLES.get(i)) {
                Some(t) => acc.tables |= table_bit(*t),
                None => d.err(span, unknown("table", s, TABLES)),
            }
        }
    }
    if let Some(v) = &m.address {
        any_access = true;
        acc.address = Some(int_ranges(v, 65535, "address", d));
    }
    if let Some(v) = &m.value {
        any_access = true;
        for (span, s) in items(v) {
            match pred_of(s) {
                Ok(p) => acc.values.push(p),
                Err(e) => d.err(span, e),
            }
        }
    }
    if let Some(v) = &m.node {
        any_access = true;
        acc.nodes = plain_strings(v, "node", d);
    }
    if let Some(v) = &m.node_prefix {
        any_access = true;
        acc.node_prefixes = plain_strings(v, "node_prefix", d);
    }
    if let Some(v) = &m.namespace {
        any_access = true;
        acc.namespaces = Some(int_ranges(v, 65535, "namespace", d));
    }
    if let Some(v) = &m.attribute {
        any_access = true;
        let mut spans = Vec::new();
        for (span, s) in items(v) {
            let id = match s {
                Scalar::Int(i) => u32::try_from(*i).ok().filter(|i| (1..=27).contains(i)),
                Scalar::Str(n) => ATTRIBUTES
                    .iter()
                    .position(|a| a == n)
                    .and_then(|p| u32::try_from(p + 1).ok()),
                _ => None,
            };
            match id {
                Some(i) => spans.push((i, i)),
                None => d.err(span, format!("unknown attribute {}", show(s))),
            }
        }
        acc.attributes = Some(Intervals::new(spans));
    }
    if any_access {
        out.access = Some(acc);
    }
    (d.count() == before).then_some(out)
}

fn show(s: &Scalar) -> String {
    match s {
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => f.to_string(),
        Scalar::Str(x) => format!("{x:?}"),
        Scalar::Bool(b) => b.to_string(),
    }
}

fn unknown(key: &str, s: &Scalar, allowed: &[&str]) -> String {
    format!(
        "unknown {key} {} (expected one of {})",
        show(s),
        allowed.join(", ")
    )
}

fn names(s: &Scalar, list: &[&str]) -> Option<usize> {
    match s {
        Scalar::Str(n) => list.iter().position(|x| x == n),
        _ => None,
    }
}

fn strings_in(v: &Items, key: &str, allowed: &[&str], d: &mut Diag<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for (span, s) in items(v) {
        match names(s, allowed) {
            Some(_) => out.push(show_plain(s)),
            None => d.err(span, unknown(key, s, allowed)),
        }
    }
    out
}

fn show_plain(s: &Scalar) -> String {
    match s {
        Scalar::Str(x) => x.clone(),
        other => show(other),
    }
}

fn plain_strings(v: &Items, key: &str, d: &mut Diag<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for (span, s) in items(v) {
        match s {
            Scalar::Str(x) if !x.is_empty() => out.push(x.clone()),
            _ => d.err(span, format!("{key}: expected a non-empty string")),
        }
    }
    out
}

/// `"a-b"` as two integers.
fn range_of(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.split_once('-')?;
    Some((parse_int(a)?, parse_int(b)?))
}

fn int_ranges(v: &Items, max: i64, what: &str, d: &mut Diag<'_>) -> Intervals<u32> {
    let mut out = Vec::new();
    for (span, s) in items(v) {
        let (a, b) = match s {
            Scalar::Int(i) => (*i, *i),
            Scalar::Str(x) => match range_of(x).or_else(|| parse_int(x).map(|i| (i, i))) {
                Some(r) => r,
                None => {
                    d.err(
                        span,
                        format!("{what}: expected an integer or \"a-b\", got {x:?}"),
                    );
                    continue;
                }
            },
            other => {
                d.err(
                    span,
                    format!(
                        "{what}: expected an integer or \"a-b\", got {}",
                        show(other)
                    ),
                );
                continue;
            }
        };
        if b < a {
            d.err(span, format!("{what} range {a}-{b} ends below its start"));
        } else if a < 0 || b > max {
            d.err(
                span,
                format!(
                    "{what} {} is out of range (0-{max})",
                    if a < 0 { a } else { b }
                ),
            );
        } else if let (Ok(a), Ok(b)) = (u32::try_from(a), u32::try_from(b)) {
            out.push((a, b));
        }
    }
    Intervals::new(out)
}

fn pred_of(s: &Scalar) -> Result<Pred, String> {
    let num = |x: &str| -> Result<f64, String> {
        x.trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(|| format!("value: {x:?} is not a number"))
    };
    match s {
        Scalar::Int(i) => Ok(Pred::Eq(*i as f64)),
        Scalar::Float(f) if f.is_finite() => Ok(Pred::Eq(*f)),
        Scalar::Str(x) => {
            let x = x.trim();
            for (op, mk) in [
                (">=", Pred::Ge as fn(f64) -> Pred),
                ("<=", Pred::Le),
                ("!=", Pred::Ne),
                (">", Pred::Gt),
                ("<", Pred::Lt),
            ] {
                if let Some(rest) = x.strip_prefix(op) {
                    return num(rest).map(mk);
                }
            }
            // A range `a-b`; the minus of a negative start is skipped when looking for the dash.
            let cut = x.get(1..).and_then(|r| r.find('-')).map(|i| i + 1);
            match cut {
                Some(i) => {
                    let a = num(x.get(..i).unwrap_or_default())?;
                    let b = num(x.get(i + 1..).unwrap_or_default())?;
                    if b < a {
                        Err(format!("value range {x:?} ends below its start"))
                    } else {
                        Ok(Pred::Range(a, b))
                    }
                }
                None => num(x).map(Pred::Eq),
            }
        }
        other => Err(format!(
            "value: expected a number, \"a-b\" or a comparison, got {}",
            show(other)
        )),
    }
}

fn addr_set(v: &Items, groups: &Groups, d: &mut Diag<'_>) -> Option<AddrSet> {
    let mut pos = Vec::new();
    let mut neg = Vec::new();
    let mut any_pos_item = false;
    for (span, s) in items(v) {
        let Scalar::Str(x) = s else {
            d.err(
                span,
                format!(
                    "expected an address, block, range or group name, got {}",
                    show(s)
                ),
            );
            continue;
        };
        let (negated, body) = match x.strip_prefix('!') {
            Some(b) => (true, b.trim()),
            None => (false, x.trim()),
        };
        let target = if negated { &mut neg } else { &mut pos };
        if !negated {
            any_pos_item = true;
        }
        let looks_like_addr = body.contains(['.', ':']) || body.parse::<IpAddr>().is_ok();
        if looks_like_addr {
            match parse_addr(body) {
                Ok(r) => target.push(r),
                Err(e) => d.err(span, e),
            }
        } else {
            match groups.get(body) {
                Some(g) => target.extend(g.iter().copied()),
                None => d.err(span, format!("undefined group {body:?}")),
            }
        }
    }
    Some(AddrSet {
        pos: Intervals::new(pos),
        any_pos: !any_pos_item,
        neg: Intervals::new(neg),
    })
}

/// Parses the items of one group.
pub(crate) fn group_items(v: &[toml::Spanned<String>], d: &mut Diag<'_>) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    for s in v {
        match parse_addr(s.get_ref()) {
            Ok(r) => out.push(r),
            Err(e) => d.err(s.span(), e),
        }
    }
    out
}

const OPS: &[&str] = &[
    "read",
    "write",
    "read_write",
    "diagnostic",
    "identify",
    "program",
    "call",
    "browse",
    "session",
    "subscribe",
    "discovery",
    "other",
];
const OP_KINDS: &[OpKind] = &[
    OpKind::Read,
    OpKind::Write,
    OpKind::ReadWrite,
    OpKind::Diagnostic,
    OpKind::Identify,
    OpKind::Program,
    OpKind::Call,
    OpKind::Browse,
    OpKind::Session,
    OpKind::Subscribe,
    OpKind::Discovery,
    OpKind::Other,
];
/// In the order of [`outcome_bit`].
const OUTCOMES: &[&str] = &[
    "ok",
    "exception",
    "bad",
    "timeout",
    "no_response",
    "unsolicited",
];
const CATEGORIES: &[&str] = &["public", "user_defined", "reserved", "unassigned", "vendor"];
const TABLES: &[&str] = &[
    "coil",
    "discrete_input",
    "input_register",
    "holding_register",
    "file_record",
    "fifo",
];
const MODBUS_TABLES: &[ModbusTable] = &[
    ModbusTable::Coil,
    ModbusTable::DiscreteInput,
    ModbusTable::InputRegister,
    ModbusTable::HoldingRegister,
    ModbusTable::FileRecord,
    ModbusTable::Fifo,
];
const SECURITY_MODES: &[&str] = &["None", "Sign", "SignAndEncrypt"];
const IDENTITIES: &[&str] = &["Anonymous", "UserName", "X509", "IssuedToken"];
/// OPC UA attribute names, id = position + 1 (Part 6, AttributeIds).
const ATTRIBUTES: &[&str] = &[
    "node_id",
    "node_class",
    "browse_name",
    "display_name",
    "description",
    "write_mask",
    "user_write_mask",
    "is_abstract",
    "symmetric",
    "inverse_name",
    "contains_no_loops",
    "event_notifier",
    "value",
    "data_type",
    "value_rank",
    "array_dimensions",
    "access_level",
    "user_access_level",
    "minimum_sampling_interval",
    "historizing",
    "executable",
    "user_executable",
    "data_type_definition",
    "role_permissions",
    "user_role_permissions",
    "access_restrictions",
    "access_level_ex",
];
