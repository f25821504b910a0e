//! Events packed into flat lists, to cross from a shard worker to the thread that consumes
//! them.
//!
//! A shard worker posts the events that are not fast reads (OPC UA services, Publish
//! notifications, Modbus writes and exceptions, releases) packed (see [`crate::proto::slots`]):
//! an event's fixed fields go to one record, its accesses, values, names, violations, facts
//! and details to lists shared by the round's events, all appended in order. The event itself
//! is recycled on the worker at once, so its vectors stay in that core's caches, and the
//! consumer writes the event back ([`Packed::unpack`]) into memory of its own, reusing that
//! event's vectors. An event built on one core, read on the other and then recycled and
//! rewritten by the first moved most of its cache lines across the cores twice (a Publish
//! event is a list of accesses, each with a name and a value list); packed, it is a few runs
//! of lines written in order.
//!
//! Packing keeps everything the event holds, down to the form of its values (a Modbus
//! access's compact registers or bits stay compact): [`Packed::unpack`] gives an event equal
//! to the one packed, field by field.

use crate::event::{
    Access, AccessDir, AppProto, AssetFact, Endpoint, Function, IcsEvent, ModbusTable, ObjectRef,
    OpKind, Outcome, Side, Value, Values,
};
use crate::time::Timestamp;
use std::sync::Arc;

/// Where a run of entries is in one of the lists: first entry and count.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// The span of the entries of a list from `start` to its length `end`; `None` past
    /// `u32` (the round's lists are cleared long before).
    #[inline]
    fn of(start: usize, end: usize) -> Option<Span> {
        Some(Span {
            start: u32::try_from(start).ok()?,
            len: u32::try_from(end.checked_sub(start)?).ok()?,
        })
    }

    #[inline]
    fn range(self) -> std::ops::Range<usize> {
        let start = self.start as usize;
        start..start + self.len as usize
    }
}

/// A [`Value`] with its text or bytes in the lists.
#[derive(Clone, Copy, Debug)]
enum PValue {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Span),
    Bytes(Span),
    Opaque(&'static str),
}

/// An [`ObjectRef`] with its name in the text.
#[derive(Clone, Copy, Debug)]
enum PObject {
    Modbus {
        table: ModbusTable,
        start: u32,
        count: u32,
    },
    Node {
        node_id: Span,
        attribute: Option<u32>,
    },
    Other {
        name: Span,
    },
}

/// An access's [`Values`], in their form: a run of values, or of compact registers or bits.
#[derive(Clone, Copy, Debug)]
enum PValues {
    List(Span),
    Words(Span),
    Bits(Span),
}

#[derive(Clone, Copy, Debug)]
struct PAccess {
    dir: AccessDir,
    object: PObject,
    values: PValues,
}

#[derive(Clone, Copy, Debug)]
struct PFact {
    side: Side,
    key: &'static str,
    value: Span,
}

/// An event's fixed fields, its file (an index into the caller's list of files) and where
/// its lists are.
#[derive(Clone, Debug)]
struct Head {
    ts: Timestamp,
    proto: AppProto,
    flow_id: u64,
    client: Endpoint,
    server: Endpoint,
    vlan: Option<u16>,
    unit_id: Option<u8>,
    op: OpKind,
    function: Function,
    outcome: Outcome,
    latency_us: Option<u64>,
    file: u32,
    packet: u64,
    response_packet: Option<u64>,
    session: Option<Span>,
    accesses: Span,
    violations: Span,
    facts: Span,
    details: Span,
}

/// Events packed in order (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct Packed {
    heads: Vec<Head>,
    accesses: Vec<PAccess>,
    values: Vec<PValue>,
    words: Vec<u16>,
    /// Strings: object names, sessions, fact values, text values.
    text: String,
    /// Bytes values.
    bytes: Vec<u8>,
    violations: Vec<&'static str>,
    facts: Vec<PFact>,
    details: Vec<(&'static str, PValue)>,
}

/// The lengths of a [`Packed`]'s lists, to take back a packing that could not finish.
struct Mark([usize; 9]);

impl Packed {
    /// Packs `ev`, whose file is `file` in the caller's list of files; the index of its
    /// record, or `None` (nothing packed) when a list would pass `u32` entries.
    pub(crate) fn pack(&mut self, ev: &IcsEvent, file: u32) -> Option<u32> {
        let mark = self.mark();
        let packed = self.try_pack(ev, file);
        if packed.is_none() {
            self.rewind(mark);
        }
        packed
    }

    fn try_pack(&mut self, ev: &IcsEvent, file: u32) -> Option<u32> {
        let index = u32::try_from(self.heads.len()).ok()?;
        let session = match &ev.session {
            Some(s) => Some(self.str(s)?),
            None => None,
        };
        let start = self.accesses.len();
        for a in &ev.accesses {
            let object = match &a.object {
                ObjectRef::Modbus {
                    table,
                    start,
                    count,
                } => PObject::Modbus {
                    table: *table,
                    start: *start,
                    count: *count,
                },
                ObjectRef::Node { node_id, attribute } => PObject::Node {
                    node_id: self.str(node_id)?,
                    attribute: *attribute,
                },
                ObjectRef::Other { name } => PObject::Other {
                    name: self.str(name)?,
                },
            };
            let values = self.pack_values(&a.values)?;
            self.accesses.push(PAccess {
                dir: a.dir,
                object,
                values,
            });
        }
        let accesses = Span::of(start, self.accesses.len())?;
        let start = self.violations.len();
        self.violations.extend_from_slice(&ev.violations);
        let violations = Span::of(start, self.violations.len())?;
        let start = self.facts.len();
        for f in &ev.facts {
            let value = self.str(&f.value)?;
            self.facts.push(PFact {
                side: f.side,
                key: f.key,
                value,
            });
        }
        let facts = Span::of(start, self.facts.len())?;
        let start = self.details.len();
        for (k, v) in &ev.details {
            let v = self.value(v)?;
            self.details.push((k, v));
        }
        let details = Span::of(start, self.details.len())?;
        self.heads.push(Head {
            ts: ev.ts,
            proto: ev.proto,
            flow_id: ev.flow_id,
            client: ev.client,
            server: ev.server,
            vlan: ev.vlan,
            unit_id: ev.unit_id,
            op: ev.op,
            function: ev.function.clone(),
            outcome: ev.outcome.clone(),
            latency_us: ev.latency_us,
            file,
            packet: ev.evidence.packet,
            response_packet: ev.evidence.response_packet,
            session,
            accesses,
            violations,
            facts,
            details,
        });
        Some(index)
    }

    #[inline]
    fn str(&mut self, s: &str) -> Option<Span> {
        let start = self.text.len();
        self.text.push_str(s);
        Span::of(start, self.text.len())
    }

    #[inline]
    fn pack_values(&mut self, v: &Values) -> Option<PValues> {
        if let Some(ws) = v.compact() {
            let start = self.words.len();
            self.words.extend_from_slice(ws);
            let span = Span::of(start, self.words.len())?;
            return Some(if v.is_bits() {
                PValues::Bits(span)
            } else {
                PValues::Words(span)
            });
        }
        let start = self.values.len();
        for x in v.as_list().unwrap_or_default() {
            let x = self.value(x)?;
            self.values.push(x);
        }
        Some(PValues::List(Span::of(start, self.values.len())?))
    }

    #[inline]
    fn value(&mut self, v: &Value) -> Option<PValue> {
        Some(match v {
            Value::Bool(b) => PValue::Bool(*b),
            Value::Int(i) => PValue::Int(*i),
            Value::UInt(u) => PValue::UInt(*u),
            Value::Float(f) => PValue::Float(*f),
            Value::Str(s) => PValue::Str(self.str(s)?),
            Value::Bytes(b) => {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(b);
                PValue::Bytes(Span::of(start, self.bytes.len())?)
            }
            Value::Opaque(o) => PValue::Opaque(o),
        })
    }

    /// Whether every list is empty.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.mark().0 == [0; 9]
    }

    fn mark(&self) -> Mark {
        Mark([
            self.heads.len(),
            self.accesses.len(),
            self.values.len(),
            self.words.len(),
            self.text.len(),
            self.bytes.len(),
            self.violations.len(),
            self.facts.len(),
            self.details.len(),
        ])
    }

    #[cold]
    fn rewind(&mut self, Mark(m): Mark) {
        let [heads, accesses, values, words, text, bytes, violations, facts, details] = m;
        self.heads.truncate(heads);
        self.accesses.truncate(accesses);
        self.values.truncate(values);
        self.words.truncate(words);
        self.text.truncate(text);
        self.bytes.truncate(bytes);
        self.violations.truncate(violations);
        self.facts.truncate(facts);
        self.details.truncate(details);
    }

    /// Writes event `i` over `ev` (any event: every field is set, its vectors and strings
    /// keep their room where they are reused); false when there is no such event or its file
    /// is not in `files` (never, for an index [`Packed::pack`] gave with the files it was
    /// given).
    pub(crate) fn unpack(&self, i: u32, ev: &mut IcsEvent, files: &[Arc<str>]) -> bool {
        let Some(h) = self.heads.get(i as usize) else {
            return false;
        };
        let Some(file) = files.get(h.file as usize) else {
            return false;
        };
        ev.ts = h.ts;
        ev.proto = h.proto;
        ev.flow_id = h.flow_id;
        ev.client = h.client;
        ev.server = h.server;
        ev.vlan = h.vlan;
        ev.unit_id = h.unit_id;
        ev.op = h.op;
        ev.function.clone_from(&h.function);
        ev.outcome.clone_from(&h.outcome);
        ev.latency_us = h.latency_us;
        if !Arc::ptr_eq(&ev.evidence.file, file) {
            ev.evidence.file = Arc::clone(file);
        }
        ev.evidence.packet = h.packet;
        ev.evidence.response_packet = h.response_packet;
        match h.session {
            Some(s) => {
                let text = self.text_of(s);
                match &mut ev.session {
                    Some(old) => {
                        old.clear();
                        old.push_str(text);
                    }
                    None => ev.session = Some(super::recycle::name(text)),
                }
            }
            None => super::recycle::drop_session(ev),
        }
        let list = self.accesses.get(h.accesses.range()).unwrap_or_default();
        ev.accesses.truncate(list.len());
        for (k, pa) in list.iter().enumerate() {
            match ev.accesses.get_mut(k) {
                Some(a) => {
                    a.dir = pa.dir;
                    self.object_into(&mut a.object, pa.object);
                    self.values_into(&mut a.values, pa.values);
                }
                None => {
                    let mut values = Values::new();
                    self.values_into(&mut values, pa.values);
                    ev.accesses.push(Access {
                        dir: pa.dir,
                        object: self.object(pa.object),
                        values,
                    });
                }
            }
        }
        ev.violations.clear();
        ev.violations.extend_from_slice(
            self.violations
                .get(h.violations.range())
                .unwrap_or_default(),
        );
        ev.facts.clear();
        ev.facts.extend(
            self.facts
                .get(h.facts.range())
                .unwrap_or_default()
                .iter()
                .map(|f| AssetFact {
                    side: f.side,
                    key: f.key,
                    value: self.text_of(f.value).to_owned(),
                }),
        );
        ev.details.clear();
        ev.details.extend(
            self.details
                .get(h.details.range())
                .unwrap_or_default()
                .iter()
                .map(|&(k, v)| (k, self.value_of(v))),
        );
        true
    }

    #[inline]
    fn text_of(&self, s: Span) -> &str {
        self.text.get(s.range()).unwrap_or_default()
    }

    fn value_of(&self, v: PValue) -> Value {
        match v {
            PValue::Bool(b) => Value::Bool(b),
            PValue::Int(i) => Value::Int(i),
            PValue::UInt(u) => Value::UInt(u),
            PValue::Float(f) => Value::Float(f),
            PValue::Str(s) => Value::Str(self.text_of(s).to_owned()),
            PValue::Bytes(s) => {
                Value::Bytes(self.bytes.get(s.range()).unwrap_or_default().to_vec())
            }
            PValue::Opaque(o) => Value::Opaque(o),
        }
    }

    fn object(&self, o: PObject) -> ObjectRef {
        match o {
            PObject::Modbus {
                table,
                start,
                count,
            } => ObjectRef::Modbus {
                table,
                start,
                count,
            },
            PObject::Node { node_id, attribute } => ObjectRef::Node {
                node_id: super::recycle::name(self.text_of(node_id)),
                attribute,
            },
            PObject::Other { name } => ObjectRef::Other {
                name: super::recycle::name(self.text_of(name)),
            },
        }
    }

    /// Writes `o` over `obj`, reusing its string when both name one.
    #[inline]
    fn object_into(&self, obj: &mut ObjectRef, o: PObject) {
        match (obj, o) {
            (ObjectRef::Other { name }, PObject::Other { name: s }) => {
                name.clear();
                name.push_str(self.text_of(s));
            }
            (
                ObjectRef::Node { node_id, attribute },
                PObject::Node {
                    node_id: s,
                    attribute: at,
                },
            ) => {
                node_id.clear();
                node_id.push_str(self.text_of(s));
                *attribute = at;
            }
            (obj, o) => *obj = self.object(o),
        }
    }

    #[inline]
    fn values_into(&self, values: &mut Values, v: PValues) {
        match v {
            PValues::Words(s) | PValues::Bits(s) => values.set_compact(
                self.words.get(s.range()).unwrap_or_default(),
                matches!(v, PValues::Bits(_)),
            ),
            PValues::List(s) => {
                let list = values.cleared_list();
                for &x in self.values.get(s.range()).unwrap_or_default() {
                    list.push(self.value_of(x));
                }
            }
        }
    }

    /// Forgets every event packed; the lists keep their room, up to `room` events' worth (`room`
    /// records, accesses and values, eight words and 32 bytes of text an event).
    #[inline]
    pub(crate) fn clear(&mut self, room: usize) {
        if self.heads.is_empty() {
            return;
        }
        self.heads.clear();
        self.accesses.clear();
        self.values.clear();
        self.words.clear();
        self.text.clear();
        self.bytes.clear();
        self.violations.clear();
        self.facts.clear();
        self.details.clear();
        if self.heads.capacity() > room
            || self.accesses.capacity() > room
            || self.values.capacity() > room
            || self.words.capacity() > room * 8
            || self.text.capacity() > room * 32
            || self.bytes.capacity() > room * 8
        {
            self.shrink(room);
        }
    }

    #[cold]
    fn shrink(&mut self, room: usize) {
        self.heads.shrink_to(room);
        self.accesses.shrink_to(room);
        self.values.shrink_to(room);
        self.words.shrink_to(room * 8);
        self.text.shrink_to(room * 32);
        self.bytes.shrink_to(room * 8);
        self.violations.shrink_to(room);
        self.facts.shrink_to(room);
        self.details.shrink_to(room);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::detect::testkit::{read_coils, read_hr, write_hr};
    use crate::proto::slots::blank;
    use crate::synth::Rng;

    fn value(r: &mut Rng) -> Value {
        match r.below(8) {
            0 => Value::Bool(r.below(2) == 1),
            1 => Value::Int(r.next() as i64),
            2 => Value::UInt(r.next()),
            3 => Value::Float(f64::from_bits(r.next() & !(0x7ff << 52))),
            4 => Value::Float(-0.0),
            5 => Value::Str("é".repeat(r.below(4) as usize)),
            6 => Value::Bytes((0..r.below(5)).map(|_| r.next() as u8).collect()),
            _ => Value::Opaque("ExtensionObject"),
        }
    }

    fn values(r: &mut Rng) -> Values {
        let mut v = Values::new();
        let n = r.below(5) as usize;
        match r.below(3) {
            0 => v.set_registers(&vec![0xa5; 2 * n], n),
            1 => v.set_bits(&[0b1011_0110, 1], n * 2),
            _ => {
                for _ in 0..n {
                    v.push(value(r));
                }
            }
        }
        v
    }

    fn object(r: &mut Rng) -> ObjectRef {
        match r.below(3) {
            0 => ObjectRef::Modbus {
                table: ModbusTable::HoldingRegister,
                start: r.below(1000) as u32,
                count: r.below(125) as u32,
            },
            1 => ObjectRef::Node {
                node_id: format!("ns=2;s=Tank{}", r.below(100)),
                attribute: (r.below(2) == 1).then_some(13),
            },
            _ => ObjectRef::Other {
                name: format!("client_handle={}", r.below(1 << 20)),
            },
        }
    }

    /// An event of any shape: every field set from `r`, lists of 0 to a few entries.
    fn varied(r: &mut Rng, files: &[Arc<str>]) -> IcsEvent {
        let mut ev = match r.below(3) {
            0 => read_hr(
                r.below(1 << 30) as i64,
                "10.0.0.1",
                "10.0.0.2",
                1,
                7,
                &[1, 2],
            ),
            1 => read_coils(5, "10.0.0.3", "10.0.0.4", 2, 9, &[true, false, true]),
            _ => write_hr(9, "fe80::1", "10.0.0.6", 3, 40, -5),
        };
        ev.proto = if r.below(2) == 0 {
            AppProto::Modbus
        } else {
            AppProto::Opcua
        };
        ev.flow_id = r.next();
        ev.vlan = (r.below(2) == 1).then_some(r.below(4096) as u16);
        ev.unit_id = (r.below(2) == 1).then_some(r.below(256) as u8);
        ev.session = (r.below(2) == 1).then(|| format!("ns=1;i={}", r.below(1000)));
        ev.op = [
            OpKind::Read,
            OpKind::Write,
            OpKind::Subscribe,
            OpKind::Other,
        ][r.below(4) as usize];
        ev.function = Function {
            code: r.below(1000) as u32,
            name: "Publish",
            category: "service",
            sub: (r.below(2) == 1).then_some(r.below(100) as u16),
            sub_name: (r.below(2) == 1).then_some("sub"),
        };
        ev.accesses = (0..r.below(5))
            .map(|_| Access {
                dir: if r.below(2) == 0 {
                    AccessDir::Read
                } else {
                    AccessDir::Write
                },
                object: object(r),
                values: values(r),
            })
            .collect();
        ev.outcome = match r.below(7) {
            0 => Outcome::Ok,
            1 => Outcome::Exception {
                code: 2,
                name: "IllegalDataAddress",
            },
            2 => Outcome::Bad {
                code: 0x8034_0000,
                name: "BadNodeIdUnknown",
            },
            3 => Outcome::Timeout,
            4 => Outcome::NoResponse,
            5 => Outcome::Unsolicited,
            _ => Outcome::NotApplicable,
        };
        ev.latency_us = (r.below(2) == 1).then_some(r.next());
        ev.violations =
            ["length_mismatch", "unknown_function", "bad_crc"][..r.below(4) as usize].to_vec();
        ev.facts = (0..r.below(3))
            .map(|k| AssetFact {
                side: if k == 0 { Side::Client } else { Side::Server },
                key: "application_uri",
                value: format!("urn:plc:{}", r.below(10)),
            })
            .collect();
        ev.details = (0..r.below(4)).map(|_| ("detail", value(r))).collect();
        ev.evidence.file = Arc::clone(&files[r.below(files.len() as u64) as usize]);
        ev.evidence.packet = r.next();
        ev.evidence.response_packet = (r.below(2) == 1).then_some(r.next());
        ev
    }

    /// `got` is `want` field by field, with the same JSON and the same form of values.
    fn same(got: &IcsEvent, want: &IcsEvent) {
        assert_eq!(got, want);
        assert_eq!(
            serde_json::to_string(got).unwrap(),
            serde_json::to_string(want).unwrap()
        );
        assert!(Arc::ptr_eq(&got.evidence.file, &want.evidence.file));
        for (a, b) in got.accesses.iter().zip(&want.accesses) {
            assert_eq!(a.values.compact(), b.values.compact());
            assert_eq!(a.values.is_bits(), b.values.is_bits());
        }
    }

    /// Rounds of events of every shape, packed in order and unpacked over one event (which
    /// held the event before, or another): each comes back as it was, in order or not.
    #[test]
    fn unpacked_events_are_the_packed_ones() {
        let files: Vec<Arc<str>> = vec![Arc::from("a.pcap"), Arc::from("b.pcapng")];
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        let mut p = Packed::default();
        let mut scratch = blank(&files[0]);
        for round in 0..40 {
            let evs: Vec<IcsEvent> = (0..20).map(|_| varied(&mut r, &files)).collect();
            let index: Vec<u32> = evs
                .iter()
                .map(|e| {
                    let f = files.iter().position(|f| Arc::ptr_eq(f, &e.evidence.file));
                    p.pack(e, f.unwrap() as u32).unwrap()
                })
                .collect();
            for (i, e) in index.iter().zip(&evs) {
                assert!(p.unpack(*i, &mut scratch, &files));
                same(&scratch, e);
            }
            for (i, e) in index.iter().zip(&evs).rev() {
                assert!(p.unpack(*i, &mut scratch, &files));
                same(&scratch, e);
            }
            // A fresh event too, and no event past the last or with a file not given.
            let mut fresh = blank(&files[1]);
            assert!(p.unpack(index[3], &mut fresh, &files));
            same(&fresh, &evs[3]);
            assert!(!p.unpack(index[19] + 1, &mut fresh, &files));
            assert!(!p.unpack(index[0], &mut fresh, &[]));
            if round % 3 == 2 {
                p.clear(8);
                assert!(p.heads.is_empty() && p.text.is_empty() && p.words.is_empty());
                assert!(p.heads.capacity() <= 8 && p.text.capacity() <= 8 * 32);
            }
        }
    }

    /// A packing taken back leaves the lists as they were: the events packed before still
    /// unpack, the next one gets the next index.
    #[test]
    fn rewound_packing_leaves_the_earlier_events() {
        let files: Vec<Arc<str>> = vec![Arc::from("a.pcap")];
        let mut r = Rng(7);
        let mut p = Packed::default();
        let first = varied(&mut r, &files);
        let i = p.pack(&first, 0).unwrap();
        let mark = p.mark();
        let lengths = mark.0;
        p.try_pack(&varied(&mut r, &files), 0).unwrap();
        p.rewind(mark);
        assert_eq!(p.mark().0, lengths);
        let mut ev = blank(&files[0]);
        assert!(p.unpack(i, &mut ev, &files));
        same(&ev, &first);
        assert_eq!(p.pack(&first, 0), Some(i + 1));
    }
}
