//! Novelty: anything the baseline never saw. Needs a baseline (without one it is silent).
//!
//! Checks, in order, on each event: a new asset (client or server address not in the
//! baseline, reported once per address); a new channel (this client never talked to this
//! server in this protocol; the finer checks are then skipped, as everything on the channel
//! is new); a new unit id on a known channel; a new function or service on the channel; and
//! per object accessed: a read of addresses (or nodes) never read or written, a write to
//! addresses never accessed, and a write to addresses only ever read.

use super::{list_words, op_impact, ChanSlots, Detector, EventCtx};
use crate::alert::signatures::*;
use crate::alert::Alert;
use crate::baseline::{
    device_words, event_summary, fmt_value, named_object_key, object_words, space_key,
    with_space_key, Baseline, Channel, RangeSet,
};
use crate::event::{AccessDir, AppProto, IcsEvent, ObjectRef};
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

/// Novelty thresholds.
#[derive(Clone, Debug)]
pub struct NoveltyConfig {
    /// Most new addresses remembered as already reported (beyond: reported again, and the
    /// aggregator counts them).
    pub max_reported_assets: usize,
    /// Most channels whose baseline lookups are cached (beyond: looked up on every event).
    pub max_cached_channels: usize,
}

impl Default for NoveltyConfig {
    fn default() -> Self {
        NoveltyConfig {
            max_reported_assets: 4096,
            max_cached_channels: 4_096,
        }
    }
}

/// A channel (client, server, protocol) as a hash key: the addresses as numbers (IPv4 in the
/// low 32 bits) with tags for IPv6 and the protocol, compared and hashed as words (one word
/// for two IPv4 addresses). Shared by the per-channel caches of novelty, timing and scans.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ChanId {
    client: u128,
    server: u128,
    /// Bit 0: OPC UA; bit 1: the client is IPv6; bit 2: the server is IPv6.
    tags: u8,
}

fn ip_bits(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(a) => (u128::from(a.to_bits()), false),
        IpAddr::V6(a) => (a.to_bits(), true),
    }
}

fn bits_ip(bits: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(std::net::Ipv6Addr::from_bits(bits))
    } else {
        IpAddr::V4(std::net::Ipv4Addr::from_bits(bits as u32))
    }
}

impl ChanId {
    /// No channel (addresses 0, Modbus): a placeholder.
    pub(crate) const EMPTY: ChanId = ChanId {
        client: 0,
        server: 0,
        tags: 0,
    };

    /// The channel of an event.
    #[inline]
    pub(crate) fn of(ev: &IcsEvent) -> Self {
        let (client, c6) = ip_bits(ev.client.ip);
        let (server, s6) = ip_bits(ev.server.ip);
        let proto = match ev.proto {
            AppProto::Modbus => 0u8,
            AppProto::Opcua => 1,
        };
        ChanId {
            client,
            server,
            tags: proto | (u8::from(c6) << 1) | (u8::from(s6) << 2),
        }
    }

    /// The client's address.
    pub(crate) fn client(&self) -> IpAddr {
        bits_ip(self.client, self.tags & 2 != 0)
    }

    /// The server's address.
    pub(crate) fn server(&self) -> IpAddr {
        bits_ip(self.server, self.tags & 4 != 0)
    }

    /// The protocol.
    pub(crate) fn proto(&self) -> AppProto {
        if self.tags & 1 != 0 {
            AppProto::Opcua
        } else {
            AppProto::Modbus
        }
    }
}

impl Hash for ChanId {
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        if self.tags & 6 == 0 {
            h.write_u64(((self.client as u64) << 32) | self.server as u64);
        } else {
            h.write_u64(self.client as u64);
            h.write_u64((self.client >> 64) as u64);
            h.write_u64(self.server as u64);
            h.write_u64((self.server >> 64) as u64);
        }
        h.write_u8(self.tags);
    }
}

/// Identity of a loaded baseline (its address and size): per-channel caches hold indices into
/// it and are rebuilt when a detector is handed another one.
pub(crate) fn baseline_id(b: &Baseline) -> (usize, usize, usize) {
    (
        std::ptr::from_ref(b) as usize,
        b.channels.len(),
        b.assets.len(),
    )
}

/// Index in `b.channels` of the baseline channel of `key`.
pub(crate) fn channel_index(b: &Baseline, key: &ChanId) -> Option<u32> {
    let ch = b.channel(key.client(), key.server(), key.proto())?;
    let size = std::mem::size_of::<Channel>().max(1);
    let i = (std::ptr::from_ref(ch) as usize).wrapping_sub(b.channels.as_ptr() as usize) / size;
    // The index is checked against the slice, so a wrong one can only miss.
    b.channels
        .get(i)
        .is_some_and(|c| std::ptr::eq(c, ch))
        .then(|| u32::try_from(i).ok())
        .flatten()
}

/// A Modbus request in `Copy` form: unit, function and up to two accesses (direction and
/// addresses), packed in words. Everything the baseline checks of novelty and scans look at;
/// values excluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ModSig {
    /// Function code, sub-function, unit id and number of accesses.
    head: u64,
    /// Start and count of each access.
    ranges: [u64; 2],
    /// Direction and table of each access.
    kinds: u16,
}

impl ModSig {
    /// The signature of a Modbus event with at most two Modbus accesses; `None` otherwise.
    #[inline]
    pub(crate) fn of(ev: &IcsEvent) -> Option<Self> {
        if ev.proto != AppProto::Modbus || ev.accesses.len() > 2 {
            return None;
        }
        let mut ranges = [0u64; 2];
        let mut kinds = 0u16;
        for (i, (slot, a)) in ranges.iter_mut().zip(&ev.accesses).enumerate() {
            let ObjectRef::Modbus {
                table,
                start,
                count,
            } = a.object
            else {
                return None;
            };
            *slot = (u64::from(start) << 32) | u64::from(count);
            let dir = match a.dir {
                AccessDir::Read => 0u16,
                AccessDir::Write => 1,
            };
            kinds |= ((table as u16) << 1 | dir) << (i * 8);
        }
        let sub = ev.function.sub.map_or(0, |s| u64::from(s) + 1);
        let unit = ev.unit_id.map_or(0, |u| u64::from(u) + 1);
        Some(ModSig {
            head: u64::from(ev.function.code)
                | (sub << 32)
                | (unit << 49)
                | ((ev.accesses.len() as u64) << 58),
            ranges,
            kinds,
        })
    }
}

/// Most request signatures remembered per channel by [`KnownSigs`].
pub(crate) const MAX_KNOWN_SIGS: usize = 32;

/// Request signatures of one channel already found to need nothing (at most
/// [`MAX_KNOWN_SIGS`]). Looked up at the slot after the last hit first: a polling cycle hits it.
#[derive(Debug)]
pub(crate) struct KnownSigs<T> {
    sigs: Vec<T>,
    next: usize,
}

impl<T> Default for KnownSigs<T> {
    fn default() -> Self {
        KnownSigs {
            sigs: Vec::new(),
            next: 0,
        }
    }
}

impl<T: Copy + Eq> KnownSigs<T> {
    /// True when `s` is remembered.
    #[inline(always)]
    pub(crate) fn contains(&mut self, s: &T) -> bool {
        let i = match self.sigs.get(self.next) {
            Some(x) if x == s => self.next,
            _ => match self.sigs.iter().position(|x| x == s) {
                Some(i) => i,
                None => return false,
            },
        };
        self.next = if i + 1 < self.sigs.len() { i + 1 } else { 0 };
        true
    }

    /// Remembers `s`; false when the set is full (not remembered).
    pub(crate) fn insert(&mut self, s: T) -> bool {
        if self.sigs.len() >= MAX_KNOWN_SIGS {
            return false;
        }
        self.sigs.push(s);
        true
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.sigs.clear();
        self.next = 0;
    }
}

/// Most objects of one request remembered by [`KnownNamed`].
const MAX_NAMED_SIG_OBJECTS: usize = 64;
/// Most objects remembered per channel by [`KnownNamed`] (all its requests together).
const MAX_NAMED_OBJECTS: usize = 512;

/// A request in any protocol (OPC UA nodes, named objects): protocol, function, unit and every
/// accessed object with its direction, for [`KnownNamed`].
#[derive(Debug)]
struct NamedSig {
    head: u64,
    objs: Vec<(AccessDir, ObjectRef)>,
}

#[inline]
fn named_head(ev: &IcsEvent) -> u64 {
    let sub = ev.function.sub.map_or(0, |s| u64::from(s) + 1);
    let unit = ev.unit_id.map_or(0, |u| u64::from(u) + 1);
    let proto = match ev.proto {
        AppProto::Modbus => 0,
        AppProto::Opcua => 1,
    };
    u64::from(ev.function.code) | (sub << 32) | (unit << 49) | (proto << 58)
}

/// A request's head and number of accesses in one word: requests that [`NamedSig::matches`]
/// have equal keys.
#[inline]
fn named_key(head: u64, accesses: usize) -> u64 {
    head ^ (accesses as u64).rotate_left(40)
}

impl NamedSig {
    #[inline]
    fn matches(&self, head: u64, ev: &IcsEvent) -> bool {
        self.head == head
            && self.objs.len() == ev.accesses.len()
            && self
                .objs
                .iter()
                .zip(&ev.accesses)
                .all(|((d, o), a)| *d == a.dir && *o == a.object)
    }
}

/// Requests of one channel (with objects of any kind) already found to need nothing, up to
/// [`MAX_NAMED_OBJECTS`] objects in all; looked up after the last hit first.
#[derive(Debug, Default)]
pub(crate) struct KnownNamed {
    sigs: Vec<NamedSig>,
    /// [`named_key`] of each of `sigs`, scanned before any of them is compared.
    keys: Vec<u64>,
    objects: usize,
    next: usize,
}

impl KnownNamed {
    /// True when the request of `ev` is remembered.
    #[inline]
    pub(crate) fn contains(&mut self, ev: &IcsEvent) -> bool {
        self.find(ev).is_some()
    }

    /// Objects remembered (all requests together).
    pub(crate) fn objects(&self) -> usize {
        self.objects
    }

    /// The index of the request of `ev` among those remembered (in the order they were
    /// inserted), if it is remembered.
    pub(crate) fn find(&mut self, ev: &IcsEvent) -> Option<usize> {
        if self.sigs.is_empty() {
            return None;
        }
        let head = named_head(ev);
        let key = named_key(head, ev.accesses.len());
        let hit = |i: usize| {
            self.keys.get(i) == Some(&key) && self.sigs.get(i).is_some_and(|x| x.matches(head, ev))
        };
        let i = if hit(self.next) {
            self.next
        } else {
            // The requests with the same key, in order (their keys in one flat scan).
            let mut from = 0;
            loop {
                let k = self
                    .keys
                    .get(from..)
                    .and_then(|p| p.iter().position(|&x| x == key))?;
                if hit(from + k) {
                    break from + k;
                }
                from += k + 1;
            }
        };
        self.next = if i + 1 < self.sigs.len() { i + 1 } else { 0 };
        Some(i)
    }

    /// Remembers the request of `ev`; false when there is no room (not remembered).
    pub(crate) fn insert(&mut self, ev: &IcsEvent) -> bool {
        let n = ev.accesses.len();
        if n > MAX_NAMED_SIG_OBJECTS || self.objects + n > MAX_NAMED_OBJECTS {
            return false;
        }
        self.objects += n;
        self.keys.push(named_key(named_head(ev), n));
        self.sigs.push(NamedSig {
            head: named_head(ev),
            objs: ev
                .accesses
                .iter()
                .map(|a| (a.dir, a.object.clone()))
                .collect(),
        });
        true
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.sigs.clear();
        self.keys.clear();
        self.objects = 0;
        self.next = 0;
    }
}

/// Most request heads (function, unit, protocol) remembered by [`QuietParts`].
const MAX_QUIET_HEADS: usize = 64;

/// The parts of requests of one channel (with objects of any kind) already found to raise
/// nothing, for novelty: request heads (function, unit, protocol) and accessed objects with
/// their unit and direction (up to [`MAX_NAMED_OBJECTS`]). Novelty's checks of a request are
/// one check of its head (unit id, function) and one per access that depends only on the
/// access and the unit, so a request whose head and every access are remembered raises
/// nothing, whatever combination of accesses it makes (an OPC UA publish response names a
/// different subset of the subscribed items each time). Objects are looked up after the
/// last hit first: a request's accesses usually follow the order of the previous one.
#[derive(Debug, Default)]
pub(crate) struct QuietParts {
    heads: Vec<u64>,
    /// [`part_print`] of each of `objs`, scanned before any object is compared.
    prints: Vec<u64>,
    /// Unit (+1, 0: none), direction and object.
    objs: Vec<(u16, AccessDir, ObjectRef)>,
    next: usize,
}

/// A fingerprint of an access with its unit: equal accesses have equal prints (unit,
/// direction, kind of object, and for a named object its name's length and last 4 bytes; for
/// a Modbus object its table, start and count).
#[inline]
fn part_print(unit: u16, a: &crate::event::Access) -> u64 {
    let dir = match a.dir {
        AccessDir::Read => 0u64,
        AccessDir::Write => 1,
    };
    // The name's last 4 bytes (most names differ at their end: `client_handle=12`).
    let tail = |s: &str, tag: u64| {
        let b = s.as_bytes();
        let last = match b.len().checked_sub(4).and_then(|i| b.get(i..)) {
            Some(&[w, x, y, z]) => u32::from_le_bytes([w, x, y, z]),
            _ => b.iter().fold(0u32, |v, &c| v << 8 | u32::from(c)),
        };
        u64::from(last) ^ ((b.len() as u64) << 32) ^ tag
    };
    let obj = match &a.object {
        ObjectRef::Modbus {
            table,
            start,
            count,
        } => (u64::from(*start) << 32 | u64::from(*count)) ^ (*table as u64) << 61,
        ObjectRef::Node { node_id, attribute } => tail(
            node_id,
            1 << 62 | u64::from(attribute.map_or(0, |x| x.wrapping_add(1))).rotate_left(17),
        ),
        ObjectRef::Other { name } => tail(name, 1 << 63),
    };
    obj ^ u64::from(unit).rotate_left(48) ^ dir << 60
}

impl QuietParts {
    /// True when the head and every access of `ev` are remembered.
    pub(crate) fn contains(&mut self, ev: &IcsEvent) -> bool {
        if self.heads.is_empty() || !self.heads.contains(&named_head(ev)) {
            return false;
        }
        let unit = unit_tag(ev);
        ev.accesses.iter().all(|a| self.find(unit, a))
    }

    /// Finds an access (moving `next` past it).
    #[inline(always)]
    fn find(&mut self, unit: u16, a: &crate::event::Access) -> bool {
        let print = part_print(unit, a);
        let hit = |i: usize| {
            self.objs
                .get(i)
                .is_some_and(|x| x.0 == unit && x.1 == a.dir && x.2 == a.object)
        };
        let i = if self.prints.get(self.next) == Some(&print) && hit(self.next) {
            self.next
        } else {
            let mut found = None;
            let mut from = 0;
            while let Some(k) = self
                .prints
                .get(from..)
                .and_then(|p| p.iter().position(|&x| x == print))
            {
                if hit(from + k) {
                    found = Some(from + k);
                    break;
                }
                from += k + 1;
            }
            match found {
                Some(i) => i,
                None => return false,
            }
        };
        self.next = if i + 1 < self.objs.len() { i + 1 } else { 0 };
        true
    }

    /// Remembers the head and the accesses of `ev` (a request that raised nothing); false
    /// when some part could not be remembered (no room).
    pub(crate) fn insert(&mut self, ev: &IcsEvent) -> bool {
        let mut kept = true;
        let head = named_head(ev);
        if !self.heads.contains(&head) {
            if self.heads.len() < MAX_QUIET_HEADS {
                self.heads.push(head);
            } else {
                kept = false;
            }
        }
        let unit = unit_tag(ev);
        for a in &ev.accesses {
            if self.find(unit, a) {
                continue;
            }
            if self.objs.len() < MAX_NAMED_OBJECTS {
                self.prints.push(part_print(unit, a));
                self.objs.push((unit, a.dir, a.object.clone()));
            } else {
                kept = false;
            }
        }
        kept
    }
}

/// An event's unit id as a number (+1, 0: none).
fn unit_tag(ev: &IcsEvent) -> u16 {
    ev.unit_id.map_or(0, |u| u16::from(u) + 1)
}

/// What novelty found of one channel in the baseline.
#[derive(Debug)]
struct NovChan {
    /// Index of the baseline channel.
    ch: Option<u32>,
    /// Both endpoints are baseline assets.
    assets_known: bool,
    /// Modbus requests on the channel that raised nothing.
    quiet: KnownSigs<ModSig>,
    /// Parts of other requests on the channel that raised nothing.
    quiet_named: QuietParts,
    /// Whole requests that `quiet_named` found quiet, remembered while there is room: a
    /// repeated request is one key scan and one compare of its objects.
    quiet_whole: KnownNamed,
}

impl NovChan {
    fn resolve(b: &Baseline, key: &ChanId) -> Self {
        NovChan {
            ch: channel_index(b, key),
            assets_known: b.asset(key.client()).is_some() && b.asset(key.server()).is_some(),
            quiet: KnownSigs::default(),
            quiet_named: QuietParts::default(),
            quiet_whole: KnownNamed::default(),
        }
    }

    /// True when the request of `ev` (not a Modbus signature) raises nothing on the channel,
    /// as `quiet_named` says: whole requests it found quiet are remembered and found first.
    #[inline]
    fn quiet_request(&mut self, ev: &IcsEvent) -> bool {
        if self.quiet_whole.contains(ev) {
            return true;
        }
        if !self.quiet_named.contains(ev) {
            return false;
        }
        // No room: the parts keep answering.
        let _ = self.quiet_whole.insert(ev);
        true
    }
}

/// The novelty detector.
#[derive(Debug)]
pub struct Novelty {
    cfg: NoveltyConfig,
    reported_assets: BTreeSet<IpAddr>,
    /// Per channel; never iterated into the output.
    chans: ChanSlots<NovChan>,
    /// The baseline `chans` was filled from.
    base: Option<(usize, usize, usize)>,
    /// Events on channels not cached because the cache was full.
    pub channels_uncached: u64,
    /// Quiet requests not remembered because their channel's set was full.
    pub sigs_uncached: u64,
    /// Skip the checks of requests remembered as quiet (false only in tests, to compare
    /// the memo with the full checks).
    memo: bool,
    /// By request number ([`EventCtx::req`]): found quiet on a cached channel whose
    /// endpoints are known assets, with the baseline `base` (see [`Detector::idle_on`]).
    quiet_reqs: Vec<bool>,
}

impl Novelty {
    /// A novelty detector.
    pub fn new(cfg: NoveltyConfig) -> Self {
        Novelty {
            cfg,
            reported_assets: BTreeSet::new(),
            chans: ChanSlots::default(),
            base: None,
            channels_uncached: 0,
            sigs_uncached: 0,
            memo: true,
            quiet_reqs: Vec::new(),
        }
    }
}

fn proto_name(p: AppProto) -> &'static str {
    match p {
        AppProto::Modbus => "Modbus",
        AppProto::Opcua => "OPC UA",
    }
}

/// Clients of `server` that, in the baseline, accessed the space in direction `dir` (any
/// address in `[first, last]`).
fn who_accessed(
    b: &Baseline,
    ev: &IcsEvent,
    space: &str,
    first: u32,
    last: u32,
    dir: AccessDir,
) -> Vec<IpAddr> {
    b.channels_to(ev.server.ip, ev.proto)
        .into_iter()
        .filter(|c| {
            let m = match dir {
                AccessDir::Read => &c.read_ranges,
                AccessDir::Write => &c.write_ranges,
            };
            m.get(space)
                .is_some_and(|pairs| pairs.iter().any(|p| p[0] <= last && first <= p[1]))
        })
        .map(|c| c.client)
        .collect()
}

fn ranges_of(ch: &Channel, space: &str, dir: AccessDir) -> RangeSet {
    let m = match dir {
        AccessDir::Read => &ch.read_ranges,
        AccessDir::Write => &ch.write_ranges,
    };
    m.get(space)
        .map(|p| RangeSet::from_pairs(p))
        .unwrap_or_default()
}

impl Novelty {
    fn assets(
        reported_assets: &mut BTreeSet<IpAddr>,
        cfg: &NoveltyConfig,
        ev: &IcsEvent,
        b: &Baseline,
        out: &mut Vec<Alert>,
    ) {
        for (ep, peer, role) in [
            (&ev.client, &ev.server, "client"),
            (&ev.server, &ev.client, "server"),
        ] {
            if b.asset(ep.ip).is_some() || reported_assets.contains(&ep.ip) {
                continue;
            }
            if reported_assets.len() < cfg.max_reported_assets {
                reported_assets.insert(ep.ip);
            }
            let doing = if role == "client" {
                format!(
                    "sent {} to {}",
                    ev.function.name,
                    device_words(peer.ip, ev.unit_id)
                )
            } else {
                format!("answered {} from {}", ev.function.name, peer.ip)
            };
            let explanation = format!(
                "{} appeared on the network as a {} {role}: it {doing}. It is not one of the \
                 {} devices in the baseline. An unknown device speaking {} can be an \
                 attacker's laptop, an unapproved engineering station or a new device nobody \
                 registered.",
                ep.ip,
                proto_name(ev.proto),
                b.assets.len(),
                proto_name(ev.proto),
            );
            out.push(
                Alert::from_event(&NEW_ASSET, ev, explanation, event_summary(ev)).with_fact(
                    format!(
                        "{} is not among the {} baseline assets",
                        ep.ip,
                        b.assets.len()
                    ),
                    "assets",
                ),
            );
        }
    }

    fn channel(ev: &IcsEvent, b: &Baseline, out: &mut Vec<Alert>) {
        let others: Vec<IpAddr> = b
            .channels_to(ev.server.ip, ev.proto)
            .iter()
            .map(|c| c.client)
            .collect();
        let normal = if others.is_empty() {
            format!(
                "in the baseline nobody talked {} to {}",
                proto_name(ev.proto),
                ev.server.ip
            )
        } else {
            format!(
                "in the baseline only {} talked {} to it",
                list_words(&others, 5),
                proto_name(ev.proto)
            )
        };
        let (tech, sev, why) = op_impact(ev.op, ev.function.sub);
        let explanation = format!(
            "{} sent {} to {}; {normal}. A new conversation with a controller is how \
             unauthorized commands start ({why}).",
            ev.client.ip,
            ev.function.name,
            device_words(ev.server.ip, ev.unit_id),
        );
        out.push(
            Alert::from_event(&NEW_CHANNEL, ev, explanation, event_summary(ev))
                .with_fact(
                    format!(
                        "no channel {} → {} ({}) in the baseline",
                        ev.client.ip,
                        ev.server.ip,
                        ev.proto.as_str()
                    ),
                    "channels",
                )
                .with_severity(sev.min(2))
                .with_techniques(tech),
        );
    }

    fn objects(ev: &IcsEvent, b: &Baseline, ch: &Channel, out: &mut Vec<Alert>) {
        for a in &ev.accesses {
            match &a.object {
                ObjectRef::Modbus {
                    table,
                    start,
                    count,
                } => {
                    let first = *start;
                    let last = start.saturating_add(count.saturating_sub(1));
                    // Fast path: known addresses raise nothing, so build nothing for them.
                    let known = with_space_key(ev.unit_id, *table, |space| {
                        let covered = |m: &std::collections::BTreeMap<String, Vec<[u32; 2]>>| {
                            m.get(space)
                                .is_some_and(|p| RangeSet::pairs_cover(p, first, last))
                        };
                        match a.dir {
                            AccessDir::Read => {
                                covered(&ch.read_ranges) || covered(&ch.write_ranges)
                            }
                            AccessDir::Write => covered(&ch.write_ranges),
                        }
                    });
                    if known {
                        continue;
                    }
                    let Some(space) = space_key(ev.unit_id, &a.object) else {
                        continue;
                    };
                    let read = ranges_of(ch, &space, AccessDir::Read);
                    let write = ranges_of(ch, &space, AccessDir::Write);
                    let words = object_words(&a.object);
                    let dev = device_words(ev.server.ip, ev.unit_id);
                    let reference = format!("{}.read_ranges[{space}]", ch.ref_name());
                    match a.dir {
                        AccessDir::Read => {
                            if read.covers(first, last) || write.covers(first, last) {
                                continue;
                            }
                            let explanation = format!(
                                "{} read {words} on {dev}; in the baseline it never read \
                                 these addresses (it read {}). Reading new addresses is how \
                                 an attacker maps points and tags before acting on them.",
                                ev.client.ip,
                                ranges_words(&read),
                            );
                            out.push(
                                Alert::from_event(
                                    &NEW_OBJECT_READ,
                                    ev,
                                    explanation,
                                    event_summary(ev),
                                )
                                .with_fact(
                                    format!(
                                        "{} read only {} of {space}",
                                        ev.client.ip,
                                        ranges_words(&read)
                                    ),
                                    reference,
                                ),
                            );
                        }
                        AccessDir::Write => {
                            if write.covers(first, last) {
                                continue;
                            }
                            let value = a
                                .values
                                .first()
                                .map(|v| format!(" {}", fmt_value(&v)))
                                .unwrap_or_default();
                            let only_read =
                                (first..=last).all(|x| write.contains(x) || read.contains(x));
                            if only_read {
                                let readers =
                                    who_accessed(b, ev, &space, first, last, AccessDir::Read);
                                let explanation = format!(
                                    "{} wrote{value} to {words} on {dev}; in the baseline \
                                     these addresses were only ever read (by {}), never \
                                     written. Writing to a point that is normally only \
                                     monitored can change the process behind the operator's \
                                     back.",
                                    ev.client.ip,
                                    list_words(&readers, 5),
                                );
                                out.push(
                                    Alert::from_event(
                                        &WRITE_TO_READ_ONLY,
                                        ev,
                                        explanation,
                                        event_summary(ev),
                                    )
                                    .with_fact(
                                        format!("{words} on {dev} was read, never written"),
                                        format!("{}.write_ranges[{space}]", ch.ref_name()),
                                    ),
                                );
                            } else {
                                let explanation = format!(
                                    "{} wrote{value} to {words} on {dev}; in the baseline \
                                     nobody on this channel ever accessed these addresses \
                                     (it wrote {}). A write to an unknown address can change \
                                     a parameter or output nobody expects to move.",
                                    ev.client.ip,
                                    ranges_words(&write),
                                );
                                out.push(
                                    Alert::from_event(
                                        &NEW_OBJECT_WRITTEN,
                                        ev,
                                        explanation,
                                        event_summary(ev),
                                    )
                                    .with_fact(
                                        format!(
                                            "{} wrote only {} of {space}",
                                            ev.client.ip,
                                            ranges_words(&write)
                                        ),
                                        format!("{}.write_ranges[{space}]", ch.ref_name()),
                                    ),
                                );
                            }
                        }
                    }
                }
                other => {
                    if ch.dropped.objects > 0 {
                        // The object list is incomplete: absence proves nothing.
                        continue;
                    }
                    let Some(key) = named_object_key(other) else {
                        continue;
                    };
                    // Fast path: known objects raise nothing, so build no words for them.
                    match (ch.objects.get(&key), a.dir) {
                        (Some(_), AccessDir::Read) => continue,
                        (Some(o), AccessDir::Write) if o.writes > 0 => continue,
                        _ => {}
                    }
                    let words = object_words(other);
                    let dev = device_words(ev.server.ip, ev.unit_id);
                    let reference = format!("{}.objects[{key}]", ch.ref_name());
                    match (ch.objects.get(&key), a.dir) {
                        (None, AccessDir::Read) => {
                            let explanation = format!(
                                "{} read {words} on {dev}, which it never read in the \
                                 baseline. Reading new points is how an attacker maps the \
                                 process before acting on it.",
                                ev.client.ip
                            );
                            out.push(
                                Alert::from_event(
                                    &NEW_OBJECT_READ,
                                    ev,
                                    explanation,
                                    event_summary(ev),
                                )
                                .with_fact(
                                    format!("{key} not in the channel's objects"),
                                    reference,
                                ),
                            );
                        }
                        (None, AccessDir::Write) => {
                            let explanation = format!(
                                "{} wrote to {words} on {dev}, which it never accessed in the \
                                 baseline. A write to an unknown point can change a parameter \
                                 nobody expects to move.",
                                ev.client.ip
                            );
                            out.push(
                                Alert::from_event(
                                    &NEW_OBJECT_WRITTEN,
                                    ev,
                                    explanation,
                                    event_summary(ev),
                                )
                                .with_fact(
                                    format!("{key} not in the channel's objects"),
                                    reference,
                                ),
                            );
                        }
                        (Some(o), AccessDir::Write) if o.writes == 0 => {
                            let explanation = format!(
                                "{} wrote to {words} on {dev}; in the baseline it only read \
                                 it ({} reads, no write). Writing to a point that is normally \
                                 only monitored can change the process behind the operator's \
                                 back.",
                                ev.client.ip, o.reads
                            );
                            out.push(
                                Alert::from_event(
                                    &WRITE_TO_READ_ONLY,
                                    ev,
                                    explanation,
                                    event_summary(ev),
                                )
                                .with_fact(
                                    format!("{key}: {} reads, 0 writes", o.reads),
                                    reference,
                                ),
                            );
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// `0–9, 20–29` (at most 4 ranges).
fn ranges_words(r: &RangeSet) -> String {
    if r.pairs().is_empty() {
        return "none of them".to_string();
    }
    let parts: Vec<String> = r
        .pairs()
        .iter()
        .map(|p| {
            if p[0] == p[1] {
                p[0].to_string()
            } else {
                format!("{}–{}", p[0], p[1])
            }
        })
        .collect();
    list_words(&parts, 4)
}

impl Detector for Novelty {
    fn name(&self) -> &'static str {
        "novelty"
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("channels_uncached", self.channels_uncached),
            ("sigs_uncached", self.sigs_uncached),
        ]
    }

    fn on_event(&mut self, ev: &IcsEvent, baseline: Option<&Baseline>, out: &mut Vec<Alert>) {
        self.on_event_ctx(ev, &EventCtx::of(ev), baseline, out);
    }

    fn can_idle(&self) -> bool {
        true
    }

    fn idle_on(&self, ctx: &EventCtx) -> bool {
        // A request found quiet returns at once (see `on_event_ctx`) whatever its outcome, as
        // long as the baseline stays (an engine's does).
        self.memo
            && ctx
                .req
                .is_some_and(|r| self.quiet_reqs.get(r as usize) == Some(&true))
    }

    fn on_event_ctx(
        &mut self,
        ev: &IcsEvent,
        ctx: &EventCtx,
        baseline: Option<&Baseline>,
        out: &mut Vec<Alert>,
    ) {
        let Some(b) = baseline else {
            return;
        };
        // The common case first, in a few instructions: a request already found to raise
        // nothing on a cached channel whose endpoints are known assets (its quiet sets are
        // only filled on a baseline channel, so nothing else would be checked).
        let mut looked = false;
        if self.memo && self.base == Some(baseline_id(b)) {
            if let Some(slot) = self.chans.find(ctx).and_then(|i| self.chans.get_mut(i)) {
                if slot.assets_known {
                    let known = match &ctx.sig {
                        Some(sig) => slot.quiet.contains(sig),
                        None => slot.quiet_request(ev),
                    };
                    if known {
                        if let Some(r) = ctx.req {
                            if self.quiet_reqs.get(r as usize) != Some(&true) {
                                Novelty::mark_quiet(&mut self.quiet_reqs, r);
                            }
                        }
                        return;
                    }
                    looked = true;
                }
            }
        }
        self.event(ev, ctx, b, out, looked);
    }
}

impl Novelty {
    /// Marks request `r` quiet (see `quiet_reqs`).
    #[cold]
    fn mark_quiet(quiet: &mut Vec<bool>, r: u32) {
        let r = r as usize;
        if r >= quiet.len() {
            quiet.resize(r + 1, false);
        }
        if let Some(q) = quiet.get_mut(r) {
            *q = true;
        }
    }

    /// Every check of an event (the requests found quiet on the channel excepted; `looked`:
    /// the event's channel was found and its request is not among them).
    #[inline(never)]
    fn event(
        &mut self,
        ev: &IcsEvent,
        ctx: &EventCtx,
        b: &Baseline,
        out: &mut Vec<Alert>,
        looked: bool,
    ) {
        let id = baseline_id(b);
        if self.base != Some(id) {
            self.chans.clear();
            self.quiet_reqs.clear();
            self.base = Some(id);
        }
        let key = ctx.key;
        let mut uncached = None;
        let found = match self.chans.find(ctx) {
            Some(i) => Some(i),
            None if self.chans.len() >= self.cfg.max_cached_channels => None,
            None => self.chans.insert(ctx, NovChan::resolve(b, &key)),
        };
        let slot = match found.and_then(|i| self.chans.get_mut(i)) {
            Some(slot) => slot,
            None => {
                self.channels_uncached += 1;
                uncached.insert(NovChan::resolve(b, &key))
            }
        };
        if !slot.assets_known {
            Novelty::assets(&mut self.reported_assets, &self.cfg, ev, b, out);
        }
        let Some(ch) = slot.ch.and_then(|i| b.channels.get(i as usize)) else {
            Novelty::channel(ev, b, out);
            return;
        };
        // A request already found to raise nothing on this channel raises nothing again: the
        // checks below depend only on the baseline and on the request's signature.
        let sig = ctx.sig;
        let known = self.memo
            && !looked
            && match &sig {
                Some(sig) => slot.quiet.contains(sig),
                None => slot.quiet_request(ev),
            };
        if known {
            return;
        }
        let before = out.len();
        Novelty::request(ev, b, ch, out);
        if out.len() == before {
            let kept = match sig {
                Some(sig) => slot.quiet.insert(sig),
                None => slot.quiet_named.insert(ev),
            };
            if !kept {
                self.sigs_uncached += 1;
            }
        }
    }
}

impl Novelty {
    /// The checks of a request on a known channel: unit id, function, objects.
    fn request(ev: &IcsEvent, b: &Baseline, ch: &Channel, out: &mut Vec<Alert>) {
        if let Some(u) = ev.unit_id {
            if !ch.unit_ids.contains(&u) {
                let known: Vec<u8> = ch.unit_ids.iter().copied().collect();
                let explanation = format!(
                    "{} addressed unit {u} on {}; in the baseline it only addressed unit{} {}. \
                     A new unit id behind a gateway is a new device being reached, or a \
                     probe for one.",
                    ev.client.ip,
                    ev.server.ip,
                    if known.len() == 1 { "" } else { "s" },
                    list_words(&known, 8)
                );
                out.push(
                    Alert::from_event(&NEW_UNIT_ID, ev, explanation, event_summary(ev)).with_fact(
                        format!("unit ids {}", list_words(&known, 16)),
                        format!("{}.unit_ids", ch.ref_name()),
                    ),
                );
                return;
            }
        }
        let f = &ev.function;
        if ch.operation(f.code, f.sub).is_none() {
            let dev = device_words(ev.server.ip, ev.unit_id);
            let known: Vec<String> = ch
                .operations
                .iter()
                .map(|o| match o.sub {
                    Some(s) => format!("{} ({}/{s})", o.name, o.code),
                    None => format!("{} ({})", o.name, o.code),
                })
                .collect();
            let (tech, sev, why) = op_impact(ev.op, f.sub);
            let fname = match f.sub_name {
                Some(s) => format!("{} {s}", f.name),
                None => f.name.to_string(),
            };
            let explanation = format!(
                "{} used {fname} (function {}{}) on {dev}; in the baseline it only used {}. \
                 It matters because {why}.",
                ev.client.ip,
                f.code,
                f.sub.map(|s| format!("/{s}")).unwrap_or_default(),
                list_words(&known, 6),
            );
            out.push(
                Alert::from_event(&NEW_FUNCTION, ev, explanation, event_summary(ev))
                    .with_fact(
                        format!("functions used: {}", list_words(&known, 12)),
                        format!("{}.operations", ch.ref_name()),
                    )
                    .with_severity(sev)
                    .with_techniques(tech),
            );
        }
        Novelty::objects(ev, b, ch, out);
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
    use crate::baseline::Learner;
    use crate::detect::testkit::*;
    use crate::event::{OpKind, Outcome};

    #[test]
    fn known_named_keys_find_what_a_scan_of_the_requests_finds() {
        // Against the requests compared one by one from the first: the same answers, with
        // heads and access counts that collide, and lists that fill up and are cleared.
        let mut x = 17u64;
        let mut rnd = move |n: u64| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (x >> 33) % n.max(1)
        };
        let mut known = KnownNamed::default();
        let mut list: Vec<(u64, Vec<(AccessDir, ObjectRef)>)> = Vec::new();
        let mut hits = 0;
        for step in 0..20_000 {
            let mut ev = read_hr(step, MASTER, PLC, 1, 0, &[1]);
            ev.function.code = 3 + rnd(3) as u32;
            ev.unit_id = (rnd(4) != 0).then_some(1);
            let n = rnd(4) as usize;
            ev.accesses = (0..n)
                .map(|_| crate::event::Access {
                    dir: if rnd(5) == 0 {
                        AccessDir::Write
                    } else {
                        AccessDir::Read
                    },
                    object: match rnd(3) {
                        0 => ObjectRef::Modbus {
                            table: crate::event::ModbusTable::HoldingRegister,
                            start: rnd(3) as u32,
                            count: 1,
                        },
                        _ => ObjectRef::Node {
                            node_id: format!("ns=2;s=T{}", rnd(4)),
                            attribute: Some(13),
                        },
                    },
                    values: crate::event::Values::new(),
                })
                .collect();
            if step % 5000 == 4999 {
                known.clear();
                list.clear();
            }
            let head = named_head(&ev);
            let objs: Vec<(AccessDir, ObjectRef)> = ev
                .accesses
                .iter()
                .map(|a| (a.dir, a.object.clone()))
                .collect();
            let want = list.iter().position(|(h, o)| *h == head && *o == objs);
            // The index too (the engine numbers requests by it).
            assert_eq!(known.find(&ev), want, "step {step}");
            assert_eq!(known.contains(&ev), want.is_some(), "step {step}");
            hits += usize::from(want.is_some());
            if want.is_none() && rnd(2) == 0 && known.insert(&ev) {
                list.push((head, objs));
            }
        }
        assert!(hits > 1000, "{hits}");
    }

    #[test]
    fn quiet_whole_requests_answer_as_the_quiet_parts() {
        // Against a channel's parts alone: the same answers for requests that repeat, that
        // combine remembered parts anew, that miss a part, and once the whole requests fill
        // up (many distinct combinations) or the parts do.
        let mut x = 29u64;
        let mut rnd = move |n: u64| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (x >> 33) % n.max(1)
        };
        let mut slot = NovChan {
            ch: None,
            assets_known: true,
            quiet: KnownSigs::default(),
            quiet_named: QuietParts::default(),
            quiet_whole: KnownNamed::default(),
        };
        let mut parts = QuietParts::default();
        let (mut hits, mut whole) = (0, 0);
        for step in 0..30_000 {
            let mut ev = read_hr(step, MASTER, PLC, 1, 0, &[1]);
            ev.proto = AppProto::Opcua;
            ev.function.code = 631 + 42 * rnd(2) as u32;
            ev.unit_id = (rnd(8) == 0).then_some(1);
            let spread = if step < 15_000 { 6 } else { 700 };
            ev.accesses = (0..1 + rnd(5))
                .map(|_| crate::event::Access {
                    dir: if rnd(6) == 0 {
                        AccessDir::Write
                    } else {
                        AccessDir::Read
                    },
                    object: ObjectRef::Node {
                        node_id: format!("ns=2;s=T{}", rnd(spread)),
                        attribute: Some(13),
                    },
                    values: crate::event::Values::new(),
                })
                .collect();
            let want = parts.contains(&ev);
            let had = slot.quiet_whole.contains(&ev);
            assert_eq!(slot.quiet_request(&ev), want, "step {step}");
            hits += usize::from(want);
            whole += usize::from(had);
            if !want && rnd(3) == 0 {
                assert_eq!(slot.quiet_named.insert(&ev), parts.insert(&ev));
            }
        }
        assert!(hits > 3000 && whole > 1000, "{hits} {whole}");
        assert!(slot.quiet_whole.objects >= MAX_NAMED_OBJECTS - MAX_NAMED_SIG_OBJECTS);
    }

    fn learnt() -> Baseline {
        let mut l = Learner::default();
        for i in 0..50 {
            let t = i * 1000;
            l.observe(&read_hr(t, MASTER, PLC, 1, 0, &[500, 1, 2, 3]));
            l.observe(&read_coils(t + 10, MASTER, PLC, 1, 0, &[true, false]));
            if i % 10 == 0 {
                l.observe(&write_hr(t + 20, MASTER, PLC, 1, 0, 500 + i));
            }
        }
        l.finish().unwrap()
    }

    fn run(ev: &IcsEvent) -> Vec<Alert> {
        let b = learnt();
        let mut d = Novelty::new(NoveltyConfig::default());
        let mut out = Vec::new();
        d.on_event(ev, Some(&b), &mut out);
        out
    }

    fn kinds(a: &[Alert]) -> Vec<&'static str> {
        a.iter().map(|x| x.otwatch.kind).collect()
    }

    #[test]
    fn known_traffic_is_silent() {
        assert!(run(&read_hr(99_000, MASTER, PLC, 1, 1, &[1, 2])).is_empty());
        assert!(run(&write_hr(99_000, MASTER, PLC, 1, 0, 510)).is_empty());
        let mut d = Novelty::new(NoveltyConfig::default());
        let mut out = Vec::new();
        d.on_event(&read_hr(0, ROGUE, PLC, 1, 0, &[1]), None, &mut out);
        assert!(out.is_empty(), "no baseline, no novelty");
    }

    #[test]
    fn requests_found_quiet_go_idle_and_skipping_them_changes_no_alert() {
        // As the engine does: numbered requests, Ok events of requests the detector is idle
        // on skipped. Known requests, new ones, exceptions, a client that is no asset (its
        // requests never go idle), a new channel, and some requests without a number.
        let b = learnt();
        let mut evs = Vec::new();
        for i in 0..60i64 {
            let t = 100_000 + i * 1000;
            evs.push(read_hr(t, MASTER, PLC, 1, 0, &[1, 2, 3, 4]));
            let mut c = read_coils(t + 10, MASTER, PLC, 1, 0, &[true, false]);
            if i % 7 == 3 {
                c.outcome = exception(2);
            }
            evs.push(c);
            evs.push(read_hr(t + 20, MASTER, PLC, 1, 100 + (i as u32 % 3), &[1]));
            evs.push(read_hr(t + 30, ROGUE, PLC, 1, 0, &[1, 2, 3, 4]));
            evs.push(write_hr(t + 40, MASTER, PLC, 1 + (i as u8 % 2), 0, 7));
            evs.push(read_hr(t + 50, PLC, MASTER, 1, 0, &[1]));
        }
        let run = |numbered: bool| {
            let mut d = Novelty::new(NoveltyConfig::default());
            let mut reqs: Vec<(ChanId, ModSig)> = Vec::new();
            let mut idle: Vec<bool> = Vec::new();
            let mut out = Vec::new();
            let mut skipped = 0;
            for e in &evs {
                let mut ctx = EventCtx::of(e);
                ctx.req = ctx.sig.filter(|_| numbered).and_then(|s| {
                    let k = (ctx.key, s);
                    let rank = reqs.iter().position(|x| *x == k).unwrap_or_else(|| {
                        reqs.push(k);
                        reqs.len() - 1
                    });
                    // Every fourth request has no number.
                    (rank % 4 != 3).then(|| u32::try_from(rank).unwrap())
                });
                let ok = matches!(e.outcome, Outcome::Ok);
                if let (true, Some(r)) = (ok, ctx.req) {
                    if idle.get(r as usize) == Some(&true) {
                        skipped += 1;
                        continue;
                    }
                }
                d.on_event_ctx(e, &ctx, Some(&b), &mut out);
                if let (true, Some(r)) = (ok, ctx.req) {
                    if d.idle_on(&ctx) {
                        let r = r as usize;
                        if idle.len() <= r {
                            idle.resize(r + 1, false);
                        }
                        idle[r] = true;
                    }
                }
            }
            let alerts: Vec<_> = out
                .iter()
                .map(|a| (a.otwatch.kind, a.otwatch.explanation.clone()))
                .collect();
            (alerts, skipped, d)
        };
        let (plain, none, _) = run(false);
        let (skipping, skipped, d) = run(true);
        assert_eq!(none, 0);
        assert!(skipped > 100, "{skipped}");
        assert_eq!(plain, skipping);
        let kinds: Vec<&str> = plain.iter().map(|a| a.0).collect();
        for kind in ["new_asset", "new_channel", "new_unit_id", "new_object_read"] {
            assert!(kinds.contains(&kind), "{kind}: {kinds:?}");
        }
        // The rogue client's known request never went idle (its assets are not known), the
        // master's did; with another baseline nothing is idle until found quiet again.
        let ctx_of = |e: &IcsEvent, r: u32| EventCtx {
            req: Some(r),
            ..EventCtx::of(e)
        };
        let mut d = d;
        let master = read_hr(0, MASTER, PLC, 1, 0, &[1, 2, 3, 4]);
        let rogue = read_hr(0, ROGUE, PLC, 1, 0, &[1, 2, 3, 4]);
        let mut out = Vec::new();
        let (m, g) = (ctx_of(&master, 7_000), ctx_of(&rogue, 7_001));
        for _ in 0..2 {
            d.on_event_ctx(&master, &m, Some(&b), &mut out);
            d.on_event_ctx(&rogue, &g, Some(&b), &mut out);
        }
        assert!(d.idle_on(&m));
        assert!(!d.idle_on(&g));
        let other = learnt();
        d.on_event_ctx(&rogue, &g, Some(&other), &mut out);
        assert!(!d.idle_on(&m));
        d.memo = false;
        d.on_event_ctx(&master, &m, Some(&other), &mut out);
        d.on_event_ctx(&master, &m, Some(&other), &mut out);
        assert!(!d.idle_on(&m), "no memo, never idle");
    }

    #[test]
    fn new_asset_and_channel() {
        let a = run(&write_hr(99_000, ROGUE, PLC, 1, 0, 9999));
        assert_eq!(kinds(&a), ["new_asset", "new_channel"]);
        assert!(a[0].otwatch.explanation.starts_with("10.0.0.66 appeared"));
        assert!(a[1]
            .otwatch
            .explanation
            .contains("only 10.0.0.1 talked Modbus"));
        assert_eq!(a[1].alert.metadata.mitre_attack_ics, ["T0855", "T0836"]);
    }

    #[test]
    fn new_unit_function_and_ranges() {
        let a = run(&read_hr(99_000, MASTER, PLC, 7, 0, &[1]));
        assert_eq!(kinds(&a), ["new_unit_id"]);
        assert!(a[0].otwatch.explanation.contains("only addressed unit 1"));

        let diag = modbus(
            99_000,
            MASTER,
            PLC,
            1,
            8,
            "diagnostics",
            OpKind::Diagnostic,
            vec![],
            Outcome::Ok,
        );
        let a = run(&diag);
        assert_eq!(kinds(&a), ["new_function"]);
        assert!(a[0].otwatch.explanation.contains("only used read_coils (1), read_holding_registers (3) and write_single_register (6)"), "{}", a[0].otwatch.explanation);

        let a = run(&read_hr(99_000, MASTER, PLC, 1, 100, &[1, 2]));
        assert_eq!(kinds(&a), ["new_object_read"]);
        assert!(a[0]
            .otwatch
            .explanation
            .contains("holding registers 100–101"));
        assert!(
            a[0].otwatch.explanation.contains("(it read 0–3)"),
            "{}",
            a[0].otwatch.explanation
        );

        let a = run(&write_hr(99_000, MASTER, PLC, 1, 2, 7));
        assert_eq!(kinds(&a), ["write_to_read_only"]);
        assert!(a[0]
            .otwatch
            .explanation
            .contains("only ever read (by 10.0.0.1)"));
        assert_eq!(a[0].alert.severity, 1);

        let a = run(&write_hr(99_000, MASTER, PLC, 1, 50, 7));
        assert_eq!(kinds(&a), ["new_object_written"]);

        let a = run(&write_coil(99_000, MASTER, PLC, 1, 1, true));
        assert_eq!(kinds(&a), ["new_function", "write_to_read_only"]);
    }

    #[test]
    fn quiet_parts_change_no_alert() {
        // Requests naming random subsets of known and unknown nodes and handles, with known
        // and unknown functions, reads and writes, and Modbus requests of three accesses
        // (no signature) with known and unknown units: the same alerts with the memo of
        // quiet parts as with the full checks of every request, also once the memo is full.
        use crate::event::{Access, AccessDir, AppProto, ObjectRef, Value};
        let objs = |k: u64| -> ObjectRef {
            match k {
                0..=3 => ObjectRef::Node {
                    node_id: format!("ns=2;s=N{k}"),
                    attribute: Some(13),
                },
                4 => ObjectRef::Node {
                    node_id: "ns=2;s=N0".into(),
                    attribute: None,
                },
                _ => ObjectRef::Other {
                    name: format!("client_handle={}", k - 5),
                },
            }
        };
        let ua = |ms: i64, code: u32, accs: Vec<(AccessDir, ObjectRef)>| {
            let mut e = read_hr(ms, MASTER, PLC, 1, 0, &[]);
            e.proto = AppProto::Opcua;
            e.unit_id = None;
            e.server.port = 4840;
            e.function.code = code;
            e.accesses = accs
                .into_iter()
                .map(|(dir, object)| Access {
                    dir,
                    object,
                    values: vec![Value::Float(1.5)].into(),
                })
                .collect();
            e
        };
        let mut l = Learner::default();
        for i in 0..20 {
            let reads = (0..4)
                .chain(5..9)
                .map(|k| (AccessDir::Read, objs(k)))
                .collect();
            l.observe(&ua(i * 1000, 631, reads));
            l.observe(&ua(i * 1000 + 5, 673, vec![(AccessDir::Write, objs(2))]));
        }
        for i in 0..20 {
            l.observe(&read_hr(i * 1000, MASTER, PLC, 1, 0, &[1, 2, 3, 4]));
        }
        let b = l.finish().unwrap();
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let mut evs = Vec::new();
        for i in 0..3000 {
            let t = 100_000 + i * 100;
            if next(6) == 0 {
                let mut e = read_hr(t, MASTER, PLC, 1 + next(2) as u8 * 6, 0, &[1]);
                let a = e.accesses[0].clone();
                let start = next(8) as u32;
                let mut b = a.clone();
                b.object = ObjectRef::Modbus {
                    table: crate::event::ModbusTable::HoldingRegister,
                    start,
                    count: 1,
                };
                e.accesses = vec![a.clone(), b, a];
                evs.push(e);
                continue;
            }
            let code = [631, 631, 631, 673, 999][next(5) as usize];
            let n = next(7);
            let accs = (0..n)
                .map(|_| {
                    let dir = if next(5) == 0 {
                        AccessDir::Write
                    } else {
                        AccessDir::Read
                    };
                    // Mostly known objects (0..=8), sometimes unknown ones (9..).
                    let k = if next(10) == 0 { 9 + next(80) } else { next(9) };
                    (dir, objs(k))
                })
                .collect();
            evs.push(ua(t, code, accs));
        }
        let run = |memo: bool| {
            let mut d = Novelty::new(NoveltyConfig::default());
            d.memo = memo;
            let mut out = Vec::new();
            for e in &evs {
                d.on_event(e, Some(&b), &mut out);
            }
            out.iter()
                .map(|a| (a.otwatch.kind, a.otwatch.explanation.clone()))
                .collect::<Vec<_>>()
        };
        let with = run(true);
        assert_eq!(with, run(false));
        let kinds: Vec<&str> = with.iter().map(|a| a.0).collect();
        for kind in ["new_object_read", "write_to_read_only", "new_function"] {
            assert!(kinds.contains(&kind), "{kind}: {kinds:?}");
        }
        // The memo fills up (distinct handles, units and blocks), and then still gives the
        // same alerts.
        let mut q = QuietParts::default();
        for k in 0..(MAX_NAMED_OBJECTS as u64 + 10) {
            let e = ua(0, 631, vec![(AccessDir::Read, objs(5 + k))]);
            assert_eq!(q.insert(&e), k < MAX_NAMED_OBJECTS as u64);
            assert_eq!(q.contains(&e), k < MAX_NAMED_OBJECTS as u64);
        }
    }

    #[test]
    fn opcua_nodes() {
        use crate::event::{Access, AccessDir, AppProto, ObjectRef, Value};
        let node = |ms: i64, dir: AccessDir, id: &str| {
            let mut e = read_hr(ms, MASTER, PLC, 1, 0, &[]);
            e.proto = AppProto::Opcua;
            e.unit_id = None;
            e.server.port = 4840;
            e.function.code = if dir == AccessDir::Read { 631 } else { 673 };
            e.function.name = if dir == AccessDir::Read {
                "ReadRequest"
            } else {
                "WriteRequest"
            };
            e.op = if dir == AccessDir::Read {
                OpKind::Read
            } else {
                OpKind::Write
            };
            e.accesses = vec![Access {
                dir,
                object: ObjectRef::Node {
                    node_id: id.into(),
                    attribute: Some(13),
                },
                values: vec![Value::Float(1.5)].into(),
            }];
            e
        };
        let mut l = Learner::default();
        for i in 0..20 {
            l.observe(&node(i * 1000, AccessDir::Read, "ns=2;s=Tank.Level"));
        }
        l.observe(&node(30_000, AccessDir::Write, "ns=2;s=Valve.Cmd"));
        let b = l.finish().unwrap();
        let mut d = Novelty::new(NoveltyConfig::default());
        let mut out = Vec::new();
        d.on_event(
            &node(99_000, AccessDir::Read, "ns=2;s=Tank.Level"),
            Some(&b),
            &mut out,
        );
        assert!(out.is_empty());
        d.on_event(
            &node(99_000, AccessDir::Write, "ns=2;s=Tank.Level"),
            Some(&b),
            &mut out,
        );
        d.on_event(
            &node(99_000, AccessDir::Read, "ns=2;s=Secret"),
            Some(&b),
            &mut out,
        );
        assert_eq!(kinds(&out), ["write_to_read_only", "new_object_read"]);
        assert!(out[0].otwatch.explanation.contains("wrote to node ns=2;s=Tank.Level on 10.0.1.1; in the baseline it only read it (20 reads, no write)"), "{}", out[0].otwatch.explanation);
        assert_eq!(
            out[0].alert.signature,
            "OTWATCH OPCUA Write to an object only ever read"
        );
    }

    #[test]
    fn cached_requests_follow_the_baseline_in_use() {
        // Quiet under one baseline, cached; then another baseline (where the same request is
        // new) is handed to the same detector: the cache must not answer for it.
        let known = learnt();
        let mut l = Learner::default();
        for i in 0..50 {
            l.observe(&read_coils(i * 1000, MASTER, PLC, 1, 0, &[true]));
        }
        let other = l.finish().unwrap();
        let req = read_hr(99_000, MASTER, PLC, 1, 0, &[1]);
        let mut d = Novelty::new(NoveltyConfig::default());
        let mut out = Vec::new();
        for _ in 0..3 {
            d.on_event(&req, Some(&known), &mut out);
        }
        assert!(out.is_empty());
        d.on_event(&req, Some(&other), &mut out);
        assert_eq!(kinds(&out), ["new_function", "new_object_read"]);
        // And back: quiet again, and a request that raised is never cached as quiet.
        out.clear();
        let new_block = read_hr(99_000, MASTER, PLC, 1, 100, &[1]);
        for _ in 0..3 {
            d.on_event(&req, Some(&known), &mut out);
            d.on_event(&new_block, Some(&known), &mut out);
        }
        assert_eq!(kinds(&out), ["new_object_read"; 3]);
    }

    #[test]
    fn full_channel_cache_still_checks_everything() {
        let b = learnt();
        let cfg = NoveltyConfig {
            max_cached_channels: 1,
            ..NoveltyConfig::default()
        };
        let mut d = Novelty::new(cfg);
        let mut out = Vec::new();
        // The rogue's channel takes the only slot; the master's is looked up every time.
        d.on_event(&read_hr(1, ROGUE, PLC, 1, 0, &[1]), Some(&b), &mut out);
        for i in 0..3 {
            d.on_event(&read_hr(2 + i, MASTER, PLC, 1, 0, &[1]), Some(&b), &mut out);
            d.on_event(
                &read_hr(2 + i, MASTER, PLC, 1, 100, &[1]),
                Some(&b),
                &mut out,
            );
        }
        d.on_event(&read_hr(9, ROGUE, PLC, 1, 0, &[1]), Some(&b), &mut out);
        assert_eq!(
            kinds(&out),
            [
                "new_asset",
                "new_channel",
                "new_object_read",
                "new_object_read",
                "new_object_read",
                "new_channel"
            ]
        );
        assert_eq!(d.channels_uncached, 6);
    }

    #[test]
    fn known_sigs_hint_and_cap() {
        let mut k = KnownSigs::default();
        for i in 0..MAX_KNOWN_SIGS as u32 {
            assert!(!k.contains(&i));
            assert!(k.insert(i));
        }
        assert!(!k.insert(999), "full");
        assert!(!k.contains(&999));
        // A cycle hits the hint; any order still finds everything.
        for i in (0..MAX_KNOWN_SIGS as u32).chain([5, 3, 31, 0]) {
            assert!(k.contains(&i));
        }
        k.clear();
        assert!(!k.contains(&0));
    }

    #[test]
    fn modbus_signatures_tell_requests_apart() {
        let a = read_hr(0, MASTER, PLC, 1, 0, &[1, 2]);
        let sig = |e: &IcsEvent| ModSig::of(e).unwrap();
        assert_eq!(sig(&a), sig(&read_hr(5, MASTER, PLC, 1, 0, &[7, 8])));
        assert_ne!(sig(&a), sig(&read_hr(0, MASTER, PLC, 2, 0, &[1, 2])));
        assert_ne!(sig(&a), sig(&read_hr(0, MASTER, PLC, 1, 1, &[1, 2])));
        assert_ne!(sig(&a), sig(&read_hr(0, MASTER, PLC, 1, 0, &[1])));
        assert_ne!(sig(&a), sig(&read_ir(0, MASTER, PLC, 1, 0, &[1, 2])));
        assert_ne!(
            sig(&write_hr(0, MASTER, PLC, 1, 0, 1)),
            sig(&read_hr(0, MASTER, PLC, 1, 0, &[1]))
        );
        let mut b = a.clone();
        b.proto = AppProto::Opcua;
        assert!(ModSig::of(&b).is_none());
    }

    #[test]
    fn channel_ids_round_trip() {
        let mut e = read_hr(0, MASTER, PLC, 1, 0, &[1]);
        let k = ChanId::of(&e);
        assert_eq!(
            (k.client(), k.server(), k.proto()),
            (ip(MASTER), ip(PLC), AppProto::Modbus)
        );
        e.client.ip = "fe80::1".parse().unwrap();
        e.proto = AppProto::Opcua;
        let k6 = ChanId::of(&e);
        assert_eq!(
            (k6.client(), k6.server(), k6.proto()),
            (e.client.ip, ip(PLC), AppProto::Opcua)
        );
        assert_ne!(k, k6);
        // An IPv4 address and the IPv6 address with the same low bits are different keys.
        e.client.ip = "::10.0.0.1".parse().unwrap();
        e.proto = AppProto::Modbus;
        assert_ne!(ChanId::of(&e), k);
    }

    #[test]
    fn new_asset_reported_once() {
        let b = learnt();
        let mut d = Novelty::new(NoveltyConfig::default());
        let mut out = Vec::new();
        d.on_event(&read_hr(1, ROGUE, PLC, 1, 0, &[1]), Some(&b), &mut out);
        d.on_event(&read_hr(2, ROGUE, PLC, 1, 0, &[1]), Some(&b), &mut out);
        assert_eq!(kinds(&out), ["new_asset", "new_channel", "new_channel"]);
    }
}
