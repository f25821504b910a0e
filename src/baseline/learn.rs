//! The learner: events in, [`Baseline`] out, in bounded memory.

use super::keys::{modbus_object_key, named_object_key, numeric, op_key, table_key, SigKey};
use super::profile::{quantile, RangeSet, Sampler, ValueAcc};
use super::{
    Asset, Baseline, BaselineError, Channel, Dropped, LearnedSpan, ObjectProfile, Operation,
    PollPattern, Volume,
};
use crate::detect::ml::{MlConfig, MlLearner};
use crate::event::{AccessDir, AppProto, IcsEvent, ModbusTable, ObjectRef, Outcome, Side, Value};
use crate::time::Timestamp;
use std::collections::{btree_map, hash_map, BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

/// Caps and thresholds of learning. Every cap hit is counted in the baseline's `dropped`.
#[derive(Clone, Debug)]
pub struct LearnConfig {
    /// Most assets tracked.
    pub max_assets: usize,
    /// Most channels tracked.
    pub max_channels: usize,
    /// Most objects profiled per channel.
    pub max_objects_per_channel: usize,
    /// Most values taken from one access (a read of 2000 coils profiles the first ones).
    pub max_values_per_access: usize,
    /// Most request signatures (polling models) per channel.
    pub max_polls_per_channel: usize,
    /// Most merged ranges per address space; beyond it neighbours are merged.
    pub max_ranges_per_space: usize,
    /// Most order transitions tracked per channel.
    pub max_transitions_per_channel: usize,
    /// Most identity facts kept per asset.
    pub max_facts_per_asset: usize,
    /// Values kept per sampler (quantiles of values and of intervals).
    pub samples: usize,
    /// Distinct values counted per object before saying "capped".
    pub distinct_cap: usize,
    /// A request is periodic only if seen at least this many times.
    pub min_poll_count: u64,
    /// ... and if its jitter (MAD) is at most this fraction of its period ...
    pub periodic_max_rel_jitter: f64,
    /// ... and 95 % of its intervals are within this fraction of its period.
    pub periodic_max_rel_p95_dev: f64,
    /// A cycle order is recorded only if each periodic request is followed by the same one at
    /// least this fraction of the time.
    pub cycle_min_share: f64,
    /// Also train the machine-learning model (stored in the baseline's `ml` field); `None`
    /// (the default) leaves it out. See [`crate::detect::ml`].
    pub ml: Option<MlConfig>,
}

impl Default for LearnConfig {
    fn default() -> Self {
        LearnConfig {
            max_assets: 4096,
            max_channels: 4096,
            max_objects_per_channel: 4096,
            max_values_per_access: 128,
            max_polls_per_channel: 256,
            max_ranges_per_space: 256,
            max_transitions_per_channel: 1024,
            max_facts_per_asset: 32,
            samples: 256,
            distinct_cap: 64,
            min_poll_count: 8,
            periodic_max_rel_jitter: 0.1,
            periodic_max_rel_p95_dev: 0.5,
            cycle_min_share: 0.95,
            ml: None,
        }
    }
}

#[derive(Debug, Default)]
struct AssetAcc {
    macs: BTreeSet<[u8; 6]>,
    roles: BTreeSet<&'static str>,
    server_ports: BTreeSet<u16>,
    facts: BTreeMap<String, BTreeSet<String>>,
    n_facts: usize,
    events: u64,
}

#[derive(Debug)]
struct ObjAcc {
    reads: u64,
    writes: u64,
    read: ValueAcc,
    written: ValueAcc,
}

#[derive(Debug)]
struct PollAcc {
    count: u64,
    last: Option<Timestamp>,
    intervals: Sampler,
    sum_us: f64,
    max_us: u64,
}

/// A tumbling-window maximum counter.
#[derive(Debug, Default)]
struct WindowMax {
    bucket: Option<i64>,
    count: u64,
    max: u64,
}

impl WindowMax {
    fn add(&mut self, ts: Timestamp, width_s: i64) {
        let b = ts.secs.div_euclid(width_s.max(1));
        if self.bucket == Some(b) {
            self.count += 1;
        } else {
            self.max = self.max.max(self.count);
            self.bucket = Some(b);
            self.count = 1;
        }
    }
    fn max(&self) -> u64 {
        self.max.max(self.count)
    }
}

#[derive(Debug)]
struct ChanAcc {
    server_ports: BTreeSet<u16>,
    unit_ids: BTreeSet<u8>,
    events: u64,
    first: Timestamp,
    last: Timestamp,
    per_10s: WindowMax,
    exceptions: u64,
    exc_per_min: WindowMax,
    operations: BTreeMap<(u32, Option<u16>), Operation>,
    read_ranges: HashMap<SpaceKey, RangeSet>,
    write_ranges: HashMap<SpaceKey, RangeSet>,
    /// Modbus objects, per (unit, table), by address.
    objects_mb: HashMap<SpaceKey, BTreeMap<u32, ObjAcc>>,
    /// Other objects, by key.
    objects_named: HashMap<String, ObjAcc>,
    /// Objects in both maps.
    n_objects: usize,
    /// Request signatures seen, interned: id -> (signature string, poll accumulator).
    polls: Vec<(String, PollAcc)>,
    /// Signature -> id in `polls`.
    sig_ids: HashMap<SigKey, u32>,
    last_sig: Option<u32>,
    /// Consecutive pairs of request signatures (by id), counted.
    transitions: HashMap<(u32, u32), u64>,
    dropped: Dropped,
}

type ChanKey = (IpAddr, IpAddr, AppProto);

/// A Modbus address space (unit, table); see [`super::keys::space_key`].
type SpaceKey = (Option<u8>, ModbusTable);

fn space_string(k: &SpaceKey) -> String {
    match k.0 {
        Some(u) => format!("u{u}/{}", table_key(k.1)),
        None => format!("u-/{}", table_key(k.1)),
    }
}

/// Learns a [`Baseline`] from events. Feed it with [`observe`](Learner::observe) in capture
/// order, then call [`finish`](Learner::finish). The same events always give the same file.
#[derive(Debug)]
pub struct Learner {
    cfg: LearnConfig,
    assets: BTreeMap<IpAddr, AssetAcc>,
    channels: BTreeMap<ChanKey, ChanAcc>,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    events: u64,
    dropped: Dropped,
    ml: Option<MlLearner>,
}

fn role(proto: AppProto, side: Side) -> &'static str {
    match (proto, side) {
        (AppProto::Modbus, Side::Client) => "modbus_client",
        (AppProto::Modbus, Side::Server) => "modbus_server",
        (AppProto::Opcua, Side::Client) => "opcua_client",
        (AppProto::Opcua, Side::Server) => "opcua_server",
    }
}

fn mac_str(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// True for outcomes that count as exceptions.
pub(crate) fn is_exception(o: &Outcome) -> bool {
    matches!(o, Outcome::Exception { .. } | Outcome::Bad { .. })
}

impl Default for Learner {
    fn default() -> Self {
        Learner::new(LearnConfig::default())
    }
}

impl Learner {
    /// A learner with these caps.
    pub fn new(cfg: LearnConfig) -> Self {
        Learner {
            ml: cfg.ml.clone().map(MlLearner::new),
            cfg,
            assets: BTreeMap::new(),
            channels: BTreeMap::new(),
            first: None,
            last: None,
            events: 0,
            dropped: Dropped::default(),
        }
    }

    /// Events learnt so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    fn asset(&mut self, ip: IpAddr) -> Option<&mut AssetAcc> {
        if !self.assets.contains_key(&ip) && self.assets.len() >= self.cfg.max_assets {
            self.dropped.assets += 1;
            return None;
        }
        Some(self.assets.entry(ip).or_default())
    }

    /// Learns from one event.
    pub fn observe(&mut self, ev: &IcsEvent) {
        if let Some(ml) = &mut self.ml {
            ml.observe(ev);
        }
        self.events += 1;
        self.first = Some(self.first.map_or(ev.ts, |f| f.min(ev.ts)));
        self.last = Some(self.last.map_or(ev.ts, |l| l.max(ev.ts)));
        let max_facts = self.cfg.max_facts_per_asset;
        let mut dropped_facts = 0;
        for (ep, side) in [(&ev.client, Side::Client), (&ev.server, Side::Server)] {
            if let Some(a) = self.asset(ep.ip) {
                a.events += 1;
                a.roles.insert(role(ev.proto, side));
                if let Some(m) = ep.mac {
                    a.macs.insert(m);
                }
                if side == Side::Server {
                    a.server_ports.insert(ep.port);
                }
                for f in ev.facts.iter().filter(|f| f.side == side) {
                    let known = a.facts.get(f.key).is_some_and(|s| s.contains(&f.value));
                    if known {
                        continue;
                    }
                    if a.n_facts >= max_facts {
                        dropped_facts += 1;
                        continue;
                    }
                    a.n_facts += 1;
                    a.facts
                        .entry(f.key.to_string())
                        .or_default()
                        .insert(f.value.clone());
                }
            }
        }
        self.dropped.facts += dropped_facts;
        let key = (ev.client.ip, ev.server.ip, ev.proto);
        if !self.channels.contains_key(&key) && self.channels.len() >= self.cfg.max_channels {
            self.dropped.channels += 1;
            return;
        }
        let cfg = &self.cfg;
        let ch = self.channels.entry(key).or_insert_with(|| ChanAcc {
            server_ports: BTreeSet::new(),
            unit_ids: BTreeSet::new(),
            events: 0,
            first: ev.ts,
            last: ev.ts,
            per_10s: WindowMax::default(),
            exceptions: 0,
            exc_per_min: WindowMax::default(),
            operations: BTreeMap::new(),
            read_ranges: HashMap::new(),
            write_ranges: HashMap::new(),
            objects_mb: HashMap::new(),
            objects_named: HashMap::new(),
            n_objects: 0,
            polls: Vec::new(),
            sig_ids: HashMap::new(),
            last_sig: None,
            transitions: HashMap::new(),
            dropped: Dropped::default(),
        });
        observe_channel(cfg, ch, ev);
    }

    /// The baseline learnt so far.
    pub fn finish(&self) -> Result<Baseline, BaselineError> {
        let (first, last) = match (self.first, self.last) {
            (Some(f), Some(l)) => (f, l),
            _ => (Timestamp::default(), Timestamp::default()),
        };
        let learned = LearnedSpan {
            first: first.to_string(),
            last: last.to_string(),
            duration_s: last.micros_since(first) as f64 / 1e6,
            events: self.events,
        };
        let assets = self
            .assets
            .iter()
            .map(|(ip, a)| Asset {
                ip: *ip,
                macs: a.macs.iter().map(|m| mac_str(*m)).collect(),
                roles: a.roles.iter().map(|r| r.to_string()).collect(),
                server_ports: a.server_ports.clone(),
                facts: a.facts.clone(),
                events: a.events,
            })
            .collect();
        let mut dropped = self.dropped.clone();
        let channels: Vec<Channel> = self
            .channels
            .iter()
            .map(|(k, c)| finish_channel(&self.cfg, k, c))
            .collect();
        for c in &channels {
            dropped.objects += c.dropped.objects;
            dropped.values += c.dropped.values;
            dropped.poll_signatures += c.dropped.poll_signatures;
            dropped.ranges_merged += c.dropped.ranges_merged;
        }
        let mut b = Baseline::from_parts(learned, assets, channels, dropped)?;
        if let Some(ml) = &self.ml {
            // A baseline without its optional model is still a baseline: say why, carry on.
            match ml.train() {
                Ok(m) => b.ml = Some(m),
                Err(e) => tracing::warn!("no ML model in the baseline: {e}"),
            }
        }
        Ok(b)
    }
}

fn observe_channel(cfg: &LearnConfig, ch: &mut ChanAcc, ev: &IcsEvent) {
    ch.events += 1;
    ch.first = ch.first.min(ev.ts);
    ch.last = ch.last.max(ev.ts);
    ch.server_ports.insert(ev.server.port);
    if let Some(u) = ev.unit_id {
        ch.unit_ids.insert(u);
    }
    ch.per_10s.add(ev.ts, 10);
    let exc = is_exception(&ev.outcome);
    if exc {
        ch.exceptions += 1;
        ch.exc_per_min.add(ev.ts, 60);
    }
    let f = &ev.function;
    let op = ch
        .operations
        .entry((f.code, f.sub))
        .or_insert_with(|| Operation {
            code: f.code,
            sub: f.sub,
            name: f.name.to_string(),
            op: op_key(ev.op).to_string(),
            count: 0,
            exceptions: 0,
        });
    op.count += 1;
    if exc {
        op.exceptions += 1;
    }
    for a in &ev.accesses {
        // Address ranges, for novelty.
        if let ObjectRef::Modbus {
            table,
            start,
            count,
        } = &a.object
        {
            let space = (ev.unit_id, *table);
            let last = start.saturating_add(count.saturating_sub(1));
            let map = match a.dir {
                AccessDir::Read => &mut ch.read_ranges,
                AccessDir::Write => &mut ch.write_ranges,
            };
            let rs = map.entry(space).or_default();
            rs.insert(*start, last, cfg.max_ranges_per_space);
        }
        // Objects and their values. Values of a failed operation are not learnt.
        let new_obj = || ObjAcc {
            reads: 0,
            writes: 0,
            read: ValueAcc::new(cfg.samples, cfg.distinct_cap),
            written: ValueAcc::new(cfg.samples, cfg.distinct_cap),
        };
        match &a.object {
            ObjectRef::Modbus {
                table,
                start,
                count,
            } => {
                let inner = ch.objects_mb.entry((ev.unit_id, *table)).or_default();
                let n = (*count as usize).min(cfg.max_values_per_access);
                for i in 0..n {
                    let addr = start.saturating_add(i as u32);
                    let o = match inner.entry(addr) {
                        btree_map::Entry::Occupied(e) => e.into_mut(),
                        btree_map::Entry::Vacant(_)
                            if ch.n_objects >= cfg.max_objects_per_channel =>
                        {
                            ch.dropped.objects += 1;
                            continue;
                        }
                        btree_map::Entry::Vacant(e) => {
                            ch.n_objects += 1;
                            e.insert(new_obj())
                        }
                    };
                    learn_value(o, a.dir, exc, a.values.get(i).as_deref());
                }
                ch.dropped.values += u64::from(*count).saturating_sub(n as u64);
            }
            other => {
                if let Some(k) = named_object_key(other) {
                    let o = match ch.objects_named.entry(k) {
                        hash_map::Entry::Occupied(e) => Some(e.into_mut()),
                        hash_map::Entry::Vacant(_)
                            if ch.n_objects >= cfg.max_objects_per_channel =>
                        {
                            ch.dropped.objects += 1;
                            None
                        }
                        hash_map::Entry::Vacant(e) => {
                            ch.n_objects += 1;
                            Some(e.insert(new_obj()))
                        }
                    };
                    if let Some(o) = o {
                        learn_value(o, a.dir, exc, a.values.first().as_deref());
                    }
                }
            }
        }
    }
    // Polling model.
    let key = SigKey::of(ev);
    let id = match ch.sig_ids.get(&key) {
        Some(id) => Some(*id),
        None if ch.polls.len() >= cfg.max_polls_per_channel => None,
        None => {
            let id = ch.polls.len() as u32;
            ch.polls.push((
                key.to_string(),
                PollAcc {
                    count: 0,
                    last: None,
                    intervals: Sampler::new(cfg.samples),
                    sum_us: 0.0,
                    max_us: 0,
                },
            ));
            ch.sig_ids.insert(key, id);
            Some(id)
        }
    };
    let Some(id) = id else {
        ch.dropped.poll_signatures += 1;
        // The order model only knows signatures it has a poll for.
        ch.last_sig = None;
        return;
    };
    if let Some((_, p)) = ch.polls.get_mut(id as usize) {
        p.count += 1;
        if let Some(prev) = p.last {
            let d = ev.ts.micros_since(prev);
            p.intervals.push(d as f64);
            p.sum_us += d as f64;
            p.max_us = p.max_us.max(d);
        }
        p.last = Some(ev.ts);
    }
    if let Some(prev) = ch.last_sig.take() {
        let t = (prev, id);
        if ch.transitions.contains_key(&t) || ch.transitions.len() < cfg.max_transitions_per_channel
        {
            *ch.transitions.entry(t).or_insert(0) += 1;
        }
    }
    ch.last_sig = Some(id);
}

fn learn_value(o: &mut ObjAcc, dir: AccessDir, exc: bool, v: Option<&Value>) {
    let x = if exc { None } else { v.and_then(numeric) };
    match dir {
        AccessDir::Read => {
            o.reads += 1;
            if let Some(x) = x {
                o.read.push(x);
            }
        }
        AccessDir::Write => {
            o.writes += 1;
            if let Some(x) = x {
                o.written.push(x);
            }
        }
    }
}

fn finish_poll(cfg: &LearnConfig, sig: &str, p: &PollAcc) -> PollPattern {
    let s = p.intervals.sorted();
    let period = quantile(&s, 0.5);
    let mut dev: Vec<f64> = s.iter().map(|x| (x - period).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let mad = quantile(&dev, 0.5);
    let p95 = quantile(&dev, 0.95);
    let n = p.count.saturating_sub(1).max(1) as f64;
    PollPattern {
        signature: sig.to_string(),
        count: p.count,
        period_ms: period / 1e3,
        mean_ms: p.sum_us / n / 1e3,
        jitter_ms: mad / 1e3,
        p95_dev_ms: p95 / 1e3,
        max_gap_ms: p.max_us as f64 / 1e3,
        periodic: p.count >= cfg.min_poll_count
            && period > 0.0
            && mad <= cfg.periodic_max_rel_jitter * period
            && p95 <= cfg.periodic_max_rel_p95_dev * period,
    }
}

/// The strict cycle of periodic requests, if each is followed by the same next one (looking
/// through one non-periodic request in between) and they form a single loop.
fn find_cycle(
    cfg: &LearnConfig,
    polls: &[PollPattern],
    transitions: &BTreeMap<(String, String), u64>,
) -> Vec<String> {
    let periodic: BTreeSet<&str> = polls
        .iter()
        .filter(|p| p.periodic)
        .map(|p| p.signature.as_str())
        .collect();
    if periodic.len() < 2 {
        return Vec::new();
    }
    let mut succ: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for ((a, b), n) in transitions {
        if !periodic.contains(a.as_str()) {
            continue;
        }
        if periodic.contains(b.as_str()) {
            *succ.entry(a).or_default().entry(b).or_insert(0) += n;
        } else {
            for ((b2, c), n2) in transitions.range((b.clone(), String::new())..) {
                if b2 != b {
                    break;
                }
                if periodic.contains(c.as_str()) {
                    *succ.entry(a).or_default().entry(c).or_insert(0) += n.min(n2);
                }
            }
        }
    }
    let mut next: BTreeMap<&str, &str> = BTreeMap::new();
    for a in &periodic {
        let Some(m) = succ.get(a) else {
            return Vec::new();
        };
        let total: u64 = m.values().sum();
        let Some((b, n)) = m.iter().max_by_key(|(_, n)| **n) else {
            return Vec::new();
        };
        if (*n as f64) < cfg.cycle_min_share * total as f64 || b == a {
            return Vec::new();
        }
        next.insert(a, b);
    }
    let Some(start) = periodic.first().copied() else {
        return Vec::new();
    };
    let mut cycle = vec![start.to_string()];
    let mut cur = start;
    for _ in 0..periodic.len() {
        let Some(n) = next.get(cur).copied() else {
            return Vec::new();
        };
        if n == start {
            break;
        }
        cycle.push(n.to_string());
        cur = n;
    }
    if cycle.len() == periodic.len() && next.get(cur).copied() == Some(start) {
        cycle
    } else {
        Vec::new()
    }
}

fn finish_channel(cfg: &LearnConfig, k: &ChanKey, c: &ChanAcc) -> Channel {
    // In signature order, as the file lists them.
    let mut order: Vec<&(String, PollAcc)> = c.polls.iter().collect();
    order.sort_by(|a, b| a.0.cmp(&b.0));
    let polls: Vec<PollPattern> = order
        .into_iter()
        .map(|(s, p)| finish_poll(cfg, s, p))
        .collect();
    let name = |id: u32| c.polls.get(id as usize).map(|(s, _)| s.clone());
    let transitions: BTreeMap<(String, String), u64> = c
        .transitions
        .iter()
        .filter_map(|((a, b), n)| Some(((name(*a)?, name(*b)?), *n)))
        .collect();
    let cycle = find_cycle(cfg, &polls, &transitions);
    let span_min = c.last.micros_since(c.first) as f64 / 60e6;
    let mut dropped = c.dropped.clone();
    dropped.ranges_merged = c
        .read_ranges
        .values()
        .chain(c.write_ranges.values())
        .map(|r| r.merged_for_cap)
        .sum();
    let ranges = |m: &HashMap<SpaceKey, RangeSet>| -> BTreeMap<String, Vec<[u32; 2]>> {
        m.iter()
            .map(|(s, r)| (space_string(s), r.pairs().to_vec()))
            .collect()
    };
    Channel {
        client: k.0,
        server: k.1,
        proto: k.2.as_str().to_string(),
        server_ports: c.server_ports.clone(),
        unit_ids: c.unit_ids.clone(),
        events: c.events,
        first_seen: c.first.to_string(),
        last_seen: c.last.to_string(),
        volume: Volume {
            per_min: if span_min > 0.0 {
                c.events as f64 / span_min
            } else {
                c.events as f64
            },
            max_per_10s: c.per_10s.max(),
            exceptions: c.exceptions,
            max_exceptions_per_min: c.exc_per_min.max(),
        },
        operations: c.operations.values().cloned().collect(),
        read_ranges: ranges(&c.read_ranges),
        write_ranges: ranges(&c.write_ranges),
        objects: c
            .objects_mb
            .iter()
            .flat_map(|(&(unit, table), m)| {
                m.iter()
                    .map(move |(addr, o)| (modbus_object_key(unit, table, *addr), o))
            })
            .chain(c.objects_named.iter().map(|(k, o)| (k.clone(), o)))
            .map(|(k, o)| {
                (
                    k,
                    ObjectProfile {
                        reads: o.reads,
                        writes: o.writes,
                        read: o.read.finish(),
                        written: o.written.finish(),
                    },
                )
            })
            .collect(),
        polls,
        cycle,
        dropped,
    }
}
