//! The window featuriser: events in, one feature vector per channel and window out.
//!
//! A channel is (client address, server address, protocol). Windows are fixed, aligned on the
//! epoch: window `i` covers capture time `[i × w, (i + 1) × w)`. A window closes when an event
//! of its channel falls in a later window, or when [`Windower::close_due`] is called with a time
//! at or past its end. Events carry no byte counts, so the values read and written stand for
//! the volume of data moved.

use crate::alert::{AlertEvidence, MAX_EVIDENCE};
use crate::baseline::{access_keys, event_summary};
use crate::event::{AccessDir, AppProto, Endpoint, IcsEvent, OpKind, Outcome};
use crate::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// One feature: its stable name, what it means, how to say it and its scale floor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Feature {
    /// Stable snake_case name (in the baseline's `ml.features`).
    pub name: &'static str,
    /// What it measures.
    pub doc: &'static str,
    /// Words after the value in an explanation: `12` + ` exception or bad-status responses`.
    pub words: &'static str,
    /// The same words after the value 1.
    pub one: &'static str,
    /// Smallest scale of this feature (its unit of surprise), in the feature's own units.
    pub min_scale: f64,
}

macro_rules! features {
    ($($ix:ident = $name:literal, $words:literal, $one:literal, $floor:literal, $doc:literal;)*) => {
        /// Every feature, in vector order.
        pub const FEATURES: &[Feature] = &[
            $(Feature { name: $name, doc: $doc, words: $words, one: $one, min_scale: $floor },)*
        ];
        #[allow(non_camel_case_types, clippy::upper_case_acronyms, dead_code)]
        #[derive(Clone, Copy)]
        #[repr(usize)]
        enum Ix { $($ix,)* }
    };
}

features! {
    REQUESTS = "requests", " requests", " request", 1.0, "Operations (requests) in the window: the request rate.";
    OP_READ = "op_read", " read operations", " read operation", 1.0, "Operations of kind read.";
    OP_WRITE = "op_write", " write operations", " write operation", 1.0, "Operations of kind write.";
    OP_READ_WRITE = "op_read_write", " read-write operations", " read-write operation", 1.0, "Operations of kind read_write (Modbus FC 23).";
    OP_DIAGNOSTIC = "op_diagnostic", " diagnostic operations", " diagnostic operation", 1.0, "Operations of kind diagnostic.";
    OP_IDENTIFY = "op_identify", " identification requests", " identification request", 1.0, "Operations of kind identify.";
    OP_PROGRAM = "op_program", " programming operations", " programming operation", 1.0, "Operations of kind program.";
    OP_CALL = "op_call", " method calls", " method call", 1.0, "Operations of kind call.";
    OP_BROWSE = "op_browse", " browse operations", " browse operation", 1.0, "Operations of kind browse.";
    OP_SESSION = "op_session", " session operations", " session operation", 1.0, "Operations of kind session.";
    OP_SUBSCRIBE = "op_subscribe", " subscription operations", " subscription operation", 1.0, "Operations of kind subscribe.";
    OP_DISCOVERY = "op_discovery", " discovery requests", " discovery request", 1.0, "Operations of kind discovery.";
    OP_OTHER = "op_other", " other or unknown operations", " other or unknown operation", 1.0, "Operations of kind other.";
    DISTINCT_FUNCTIONS = "distinct_functions", " distinct function codes or services", " distinct function code or service", 1.0, "Distinct (function code, sub-function) pairs.";
    DISTINCT_UNITS = "distinct_units", " distinct unit ids", " distinct unit id", 1.0, "Distinct Modbus unit ids.";
    DISTINCT_OBJECTS = "distinct_objects", " distinct objects", " distinct object", 1.0, "Distinct objects addressed (one per Modbus address, one per OPC UA node).";
    EXCEPTIONS = "exceptions", " exception or bad-status responses", " exception or bad-status response", 1.0, "Responses that were a Modbus exception or a bad OPC UA status.";
    NO_RESPONSE = "no_response", " unanswered requests", " unanswered request", 1.0, "Requests that timed out or got no response.";
    VIOLATIONS = "violations", " protocol violations", " protocol violation", 1.0, "Protocol violations reported by the parsers.";
    VALUES_READ = "values_read", " values read", " value read", 1.0, "Values read (the volume of data moved to the client).";
    VALUES_WRITTEN = "values_written", " values written", " value written", 1.0, "Values written (the volume of data moved to the server).";
    NEW_VALUES = "new_values", " values outside their learned range", " value outside its learned range", 1.0, "Numeric values read or written outside the range learnt for that object (training: outside the range seen so far; unknown objects count too).";
    GAP_MEAN_MS = "interarrival_mean_ms", " ms mean time between requests", " ms mean time between requests", 1.0, "Mean time between consecutive requests of the channel, milliseconds (the window length when there is no gap).";
    GAP_STD_MS = "interarrival_std_ms", " ms spread of the time between requests", " ms spread of the time between requests", 1.0, "Standard deviation of the time between requests, milliseconds (0 with fewer than two gaps).";
    LATENCY_MEAN_MS = "latency_mean_ms", " ms mean response time", " ms mean response time", 1.0, "Mean request-to-response time, milliseconds (0 when no response was timed).";
}

/// Number of features.
pub const N_FEATURES: usize = FEATURES.len();

fn op_ix(op: OpKind) -> Ix {
    match op {
        OpKind::Read => Ix::OP_READ,
        OpKind::Write => Ix::OP_WRITE,
        OpKind::ReadWrite => Ix::OP_READ_WRITE,
        OpKind::Diagnostic => Ix::OP_DIAGNOSTIC,
        OpKind::Identify => Ix::OP_IDENTIFY,
        OpKind::Program => Ix::OP_PROGRAM,
        OpKind::Call => Ix::OP_CALL,
        OpKind::Browse => Ix::OP_BROWSE,
        OpKind::Session => Ix::OP_SESSION,
        OpKind::Subscribe => Ix::OP_SUBSCRIBE,
        OpKind::Discovery => Ix::OP_DISCOVERY,
        OpKind::Other => Ix::OP_OTHER,
    }
}

/// A channel: client, server, protocol.
pub type ChanKey = (IpAddr, IpAddr, AppProto);

/// A closed window of one channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// The channel.
    pub key: ChanKey,
    /// Start of the window.
    pub start: Timestamp,
    /// End of the window (exclusive).
    pub end: Timestamp,
    /// Capture time of its last event.
    pub last_ts: Timestamp,
    /// The feature vector, in [`FEATURES`] order.
    pub features: Vec<f64>,
    /// True when the window began before the first event seen (the capture started inside it).
    pub partial: bool,
    /// Client endpoint of its last event.
    pub client: Endpoint,
    /// Server endpoint of its last event.
    pub server: Endpoint,
    /// The unit id, when all its events addressed the same one.
    pub unit_id: Option<u8>,
    /// Some of its events, notable ones first (exceptions, violations, unanswered, new values,
    /// anything but reads), at most [`MAX_EVIDENCE`]; empty unless evidence is kept.
    pub evidence: Vec<AlertEvidence>,
}

/// Mean and variance, one value at a time (Welford).
#[derive(Clone, Debug, Default)]
struct Welford {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Welford {
    fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }
    fn std(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            (self.m2 / self.n as f64).max(0.0).sqrt()
        }
    }
}

#[derive(Clone, Debug)]
struct Acc {
    index: i64,
    counts: [u64; N_FEATURES],
    functions: BTreeSet<(u32, Option<u16>)>,
    units: BTreeSet<u8>,
    objects: BTreeSet<String>,
    gaps: Welford,
    latency_sum_us: f64,
    latency_n: u64,
    last_ts: Timestamp,
    client: Endpoint,
    server: Endpoint,
    notable: Vec<AlertEvidence>,
    plain: Vec<AlertEvidence>,
}

#[derive(Clone, Debug, Default)]
struct ChanState {
    last_req: Option<Timestamp>,
    acc: Option<Acc>,
}

/// Groups events into per-channel windows and turns each into a feature vector.
#[derive(Clone, Debug)]
pub struct Windower {
    window_us: i64,
    max_channels: usize,
    max_distinct: usize,
    max_values_per_access: usize,
    keep_evidence: bool,
    first: Option<Timestamp>,
    now_index: Option<i64>,
    chans: BTreeMap<ChanKey, ChanState>,
    /// Events not windowed because the channel cap was reached.
    pub dropped_events: u64,
}

fn bump(c: &mut [u64; N_FEATURES], ix: Ix, by: u64) {
    if let Some(x) = c.get_mut(ix as usize) {
        *x = x.saturating_add(by);
    }
}

impl Windower {
    /// A windower of `window_s` seconds (at least 1) with these caps; `keep_evidence` keeps a
    /// few events per window for alerts.
    pub fn new(
        window_s: u64,
        max_channels: usize,
        max_distinct: usize,
        max_values_per_access: usize,
        keep_evidence: bool,
    ) -> Self {
        let w = i64::try_from(window_s.clamp(1, super::MAX_WINDOW_S)).unwrap_or(10);
        Windower {
            window_us: w * 1_000_000,
            max_channels,
            max_distinct,
            max_values_per_access,
            keep_evidence,
            first: None,
            now_index: None,
            chans: BTreeMap::new(),
            dropped_events: 0,
        }
    }

    /// Window length, seconds.
    pub fn window_s(&self) -> u64 {
        u64::try_from(self.window_us / 1_000_000).unwrap_or(1)
    }

    fn index_of(&self, ts: Timestamp) -> i64 {
        ts.as_micros().div_euclid(self.window_us)
    }

    /// Adds one event; `new_values` is how many of its values were outside their learned range.
    /// Windows it closes (its channel's previous window, and any window that ended before it)
    /// are appended to `out`.
    pub fn push(&mut self, ev: &IcsEvent, new_values: u64, out: &mut Vec<Window>) {
        self.first = Some(self.first.map_or(ev.ts, |f| f.min(ev.ts)));
        let idx = self.index_of(ev.ts);
        self.close_due_index(idx, out);
        let key = (ev.client.ip, ev.server.ip, ev.proto);
        if !self.chans.contains_key(&key) && self.chans.len() >= self.max_channels {
            self.dropped_events += 1;
            return;
        }
        let (window_us, first) = (self.window_us, self.first);
        let (max_distinct, max_vals, keep) = (
            self.max_distinct,
            self.max_values_per_access,
            self.keep_evidence,
        );
        let st = self.chans.entry(key).or_default();
        if st.acc.as_ref().is_some_and(|a| a.index < idx) {
            if let Some(a) = st.acc.take() {
                out.push(finish(key, a, window_us, first));
            }
        }
        let acc = st.acc.get_or_insert_with(|| Acc {
            index: idx,
            counts: [0; N_FEATURES],
            functions: BTreeSet::new(),
            units: BTreeSet::new(),
            objects: BTreeSet::new(),
            gaps: Welford::default(),
            latency_sum_us: 0.0,
            latency_n: 0,
            last_ts: ev.ts,
            client: ev.client,
            server: ev.server,
            notable: Vec::new(),
            plain: Vec::new(),
        });
        if let Some(prev) = st.last_req {
            if ev.ts >= prev {
                acc.gaps.push(ev.ts.micros_since(prev) as f64 / 1000.0);
            }
        }
        st.last_req = Some(st.last_req.map_or(ev.ts, |p| p.max(ev.ts)));
        add_event(acc, ev, new_values, max_distinct, max_vals, keep);
    }

    /// Closes the windows before window `idx`, once per new `idx` (events come in time order,
    /// so scanning every channel on every event is not needed).
    fn close_due_index(&mut self, idx: i64, out: &mut Vec<Window>) {
        if self.now_index.is_some_and(|n| n >= idx) {
            return;
        }
        self.now_index = Some(idx);
        self.close_before(idx, out);
    }

    fn close_before(&mut self, idx: i64, out: &mut Vec<Window>) {
        let (window_us, first) = (self.window_us, self.first);
        for (key, st) in &mut self.chans {
            if st.acc.as_ref().is_some_and(|a| a.index < idx) {
                if let Some(a) = st.acc.take() {
                    out.push(finish(*key, a, window_us, first));
                }
            }
        }
    }

    /// Closes every window that ended at or before `now` (capture time), appending them to
    /// `out` in channel order. Windows still open (the current ones) stay open.
    pub fn close_due(&mut self, now: Timestamp, out: &mut Vec<Window>) {
        let idx = self.index_of(now);
        self.now_index = Some(self.now_index.map_or(idx, |n| n.max(idx)));
        self.close_before(idx, out);
    }
}

fn add_event(
    acc: &mut Acc,
    ev: &IcsEvent,
    new_values: u64,
    max_distinct: usize,
    max_vals: usize,
    keep: bool,
) {
    let c = &mut acc.counts;
    bump(c, Ix::REQUESTS, 1);
    bump(c, op_ix(ev.op), 1);
    if acc.functions.len() < max_distinct {
        acc.functions.insert((ev.function.code, ev.function.sub));
    }
    if let Some(u) = ev.unit_id {
        acc.units.insert(u);
    }
    for a in &ev.accesses {
        let n = a.values.len() as u64;
        match a.dir {
            AccessDir::Read => bump(c, Ix::VALUES_READ, n),
            AccessDir::Write => bump(c, Ix::VALUES_WRITTEN, n),
        }
        if acc.objects.len() < max_distinct {
            for (k, _) in access_keys(ev.unit_id, &a.object, &a.values, max_vals) {
                if acc.objects.len() >= max_distinct {
                    break;
                }
                acc.objects.insert(k);
            }
        }
    }
    let exception = matches!(ev.outcome, Outcome::Exception { .. } | Outcome::Bad { .. });
    let unanswered = matches!(ev.outcome, Outcome::Timeout | Outcome::NoResponse);
    if exception {
        bump(c, Ix::EXCEPTIONS, 1);
    }
    if unanswered {
        bump(c, Ix::NO_RESPONSE, 1);
    }
    bump(c, Ix::VIOLATIONS, ev.violations.len() as u64);
    bump(c, Ix::NEW_VALUES, new_values);
    if let Some(l) = ev.latency_us {
        acc.latency_sum_us += l as f64;
        acc.latency_n += 1;
    }
    acc.last_ts = acc.last_ts.max(ev.ts);
    acc.client = ev.client;
    acc.server = ev.server;
    if keep {
        let notable = exception
            || unanswered
            || !ev.violations.is_empty()
            || new_values > 0
            || ev.op != OpKind::Read;
        let list = if notable {
            &mut acc.notable
        } else {
            &mut acc.plain
        };
        if list.len() < MAX_EVIDENCE {
            list.push(AlertEvidence::from_event(ev, event_summary(ev)));
        }
    }
}

fn finish(key: ChanKey, a: Acc, window_us: i64, first: Option<Timestamp>) -> Window {
    let start = Timestamp::from_micros(a.index.saturating_mul(window_us));
    let end = Timestamp::from_micros(a.index.saturating_add(1).saturating_mul(window_us));
    let mut f: Vec<f64> = a.counts.iter().map(|&n| n as f64).collect();
    let mut set = |ix: Ix, v: f64| {
        if let Some(x) = f.get_mut(ix as usize) {
            *x = v;
        }
    };
    set(Ix::DISTINCT_FUNCTIONS, a.functions.len() as f64);
    set(Ix::DISTINCT_UNITS, a.units.len() as f64);
    set(Ix::DISTINCT_OBJECTS, a.objects.len() as f64);
    let (gap_mean, gap_std) = if a.gaps.n == 0 {
        (window_us as f64 / 1000.0, 0.0)
    } else {
        (a.gaps.mean, a.gaps.std())
    };
    set(Ix::GAP_MEAN_MS, gap_mean);
    set(Ix::GAP_STD_MS, gap_std);
    let lat = if a.latency_n == 0 {
        0.0
    } else {
        a.latency_sum_us / a.latency_n as f64 / 1000.0
    };
    set(Ix::LATENCY_MEAN_MS, lat);
    let unit_id = match (a.units.len(), a.units.first()) {
        (1, Some(u)) => Some(*u),
        _ => None,
    };
    let mut evidence = a.notable;
    evidence.extend(a.plain);
    evidence.truncate(MAX_EVIDENCE);
    Window {
        key,
        start,
        end,
        last_ts: a.last_ts,
        features: f,
        partial: first.is_none_or(|t| start < t),
        client: a.client,
        server: a.server,
        unit_id,
        evidence,
    }
}
