//! The protocol-neutral ICS event: one operation of one device on another.
//!
//! Every protocol parser turns its transactions into [`IcsEvent`]s; the baseline, the detectors
//! and the alerts consume only these. An event says who did what to which device, with which
//! objects and values, what came back and how long it took, and where in which capture file the
//! evidence is. Its JSON form (one line per event, from `otwatch inspect`) is stable: field order
//! is the declaration order and maps are sorted.

use crate::time::Timestamp;
use serde::Serialize;
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

/// Application protocols otwatch parses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppProto {
    /// Modbus/TCP (MBAP framing).
    Modbus,
    /// OPC UA binary (UA TCP transport).
    Opcua,
}

impl AppProto {
    /// The lower-case name used in JSON and in stats keys.
    pub fn as_str(self) -> &'static str {
        match self {
            AppProto::Modbus => "modbus",
            AppProto::Opcua => "opcua",
        }
    }
}

/// One side of a conversation: network address, port and, when the link layer had one, MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Endpoint {
    /// IPv4 or IPv6 address.
    pub ip: IpAddr,
    /// TCP or UDP port.
    pub port: u16,
    /// Hardware address, when the capture's link layer carries it.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_mac")]
    pub mac: Option<[u8; 6]>,
}

fn ser_mac<S: serde::Serializer>(mac: &Option<[u8; 6]>, s: S) -> Result<S::Ok, S::Error> {
    match mac {
        Some(m) => s.collect_str(&format_args!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )),
        None => s.serialize_none(),
    }
}

/// What kind of operation an event is, across protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// Reads process data (coils, registers, node attributes).
    Read,
    /// Changes process data or configuration.
    Write,
    /// Reads and writes in one operation (Modbus FC 23).
    ReadWrite,
    /// Diagnostics and maintenance (Modbus FC 8, FC 11, FC 12).
    Diagnostic,
    /// Asks a device who it is (Modbus FC 17, FC 43/14).
    Identify,
    /// Programs or controls the device's logic (UMAS, program download, start/stop).
    Program,
    /// Calls a method (OPC UA Call).
    Call,
    /// Explores the address space (OPC UA Browse, TranslateBrowsePaths).
    Browse,
    /// Opens, activates or closes a session or secure channel.
    Session,
    /// Subscriptions, monitored items and publishing.
    Subscribe,
    /// Finds servers and endpoints.
    Discovery,
    /// Anything else, including unknown and user-defined functions.
    Other,
}

/// The function or service invoked: its raw code kept beside its name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Function {
    /// Raw code on the wire: the Modbus function code, or the OPC UA encoding NodeId number.
    pub code: u32,
    /// Name from the specification, e.g. `read_holding_registers` or `ReadRequest`.
    pub name: &'static str,
    /// Category: `public`, `user_defined`, `reserved`, `unassigned`, `vendor`, `service`.
    pub category: &'static str,
    /// Sub-function (Modbus FC 8 diagnostic sub-function, FC 43 MEI type, FC 90 UMAS code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<u16>,
    /// Name of the sub-function, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_name: Option<&'static str>,
}

impl Function {
    /// No function: code 0 and empty names (a blank event slot or record, written over before use).
    pub const NONE: Function = Function {
        code: 0,
        name: "",
        category: "",
        sub: None,
        sub_name: None,
    };
}

/// The table or space of a Modbus object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModbusTable {
    /// Read-write single bits.
    Coil,
    /// Read-only single bits.
    DiscreteInput,
    /// Read-only 16-bit words.
    InputRegister,
    /// Read-write 16-bit words.
    HoldingRegister,
    /// Extended memory file records (FC 20, FC 21).
    FileRecord,
    /// A FIFO queue behind a holding register (FC 24).
    Fifo,
}

/// What an operation addressed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ObjectRef {
    /// A range of Modbus objects, zero-based protocol addresses.
    Modbus {
        /// Which table.
        table: ModbusTable,
        /// First address (0-based, as on the wire).
        start: u32,
        /// Number of objects.
        count: u32,
    },
    /// An OPC UA node, optionally one attribute of it.
    Node {
        /// NodeId in the standard string form (`ns=2;s=Tank.Level`, `i=2258`).
        node_id: String,
        /// Attribute id (13 = Value), when the service names one.
        #[serde(skip_serializing_if = "Option::is_none")]
        attribute: Option<u32>,
    },
    /// Anything else, described in words.
    Other {
        /// Free description.
        name: String,
    },
}

/// Whether an access read or wrote its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessDir {
    /// The client read the object.
    Read,
    /// The client wrote the object.
    Write,
}

/// A value read or written.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A coil or discrete input, or an OPC UA Boolean.
    Bool(bool),
    /// Any integer (registers are u16, OPC UA integers up to 64 bits).
    Int(i64),
    /// An unsigned 64-bit integer too big for `Int`.
    UInt(u64),
    /// A floating point number.
    Float(f64),
    /// A string.
    Str(String),
    /// Raw bytes, hex-encoded in JSON.
    #[serde(serialize_with = "ser_hex")]
    Bytes(Vec<u8>),
    /// A value present on the wire but not decoded (type name or reason).
    Opaque(&'static str),
}

fn ser_hex<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    struct Hex<'a>(&'a [u8]);
    impl std::fmt::Display for Hex<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
        }
    }
    s.collect_str(&Hex(b))
}

/// One object read or written, with the values that crossed the wire (in address order).
#[derive(Debug, PartialEq, Serialize)]
pub struct Access {
    /// Read or write.
    pub dir: AccessDir,
    /// The object addressed.
    pub object: ObjectRef,
    /// Values: for reads from the response, for writes from the request. Empty when unknown.
    #[serde(skip_serializing_if = "Values::is_empty")]
    pub values: Values,
}

/// The values of one access, in address order: decoded [`Value`]s, or Modbus registers and
/// bits kept compact (two bytes each) and turned into [`Value`]s only when asked one by one.
///
/// A Modbus read carries tens of registers; keeping them as words spares the parser writing,
/// and the detectors reading, a 32-byte [`Value`] per register. Both forms compare, print and
/// serialize alike: registers as [`Value::Int`], bits as [`Value::Bool`].
#[derive(Default)]
pub struct Values {
    /// The values in the list form (empty in the compact forms).
    list: Vec<Value>,
    /// The registers (or bits, as 0 and 1) in the compact forms; its room is kept while the
    /// list form is used.
    words: Vec<u16>,
    /// Which form holds the values.
    form: Form,
}

/// Which of [`Values`]' two vectors holds the values, and how words read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Form {
    /// `list`.
    #[default]
    List,
    /// `words`, each a register ([`Value::Int`]).
    Words,
    /// `words`, each a bit ([`Value::Bool`], 0 or 1).
    Bits,
}

impl Values {
    /// No values.
    pub const fn new() -> Self {
        Values {
            list: Vec::new(),
            words: Vec::new(),
            form: Form::List,
        }
    }

    /// Number of values.
    #[inline]
    pub fn len(&self) -> usize {
        match self.form {
            Form::List => self.list.len(),
            Form::Words | Form::Bits => self.words.len(),
        }
    }

    /// Whether there are no values.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i`, borrowed from the list form or made from a word.
    #[inline]
    pub fn get(&self, i: usize) -> Option<Cow<'_, Value>> {
        match self.form {
            Form::List => self.list.get(i).map(Cow::Borrowed),
            Form::Words => self.words.get(i).map(|&w| Cow::Owned(word_value(w))),
            Form::Bits => self.words.get(i).map(|&w| Cow::Owned(bit_value(w))),
        }
    }

    /// The first value.
    #[inline]
    pub fn first(&self) -> Option<Cow<'_, Value>> {
        self.get(0)
    }

    /// Makes these values a copy of the first `n` of `src`, in `src`'s form (reusing this
    /// list's room).
    pub fn copy_prefix(&mut self, src: &Values, n: usize) {
        let n = n.min(src.len());
        self.form = src.form;
        match src.form {
            Form::List => {
                self.words.clear();
                let from = src.list.get(..n).unwrap_or_default();
                self.list.truncate(n);
                let kept = self.list.len();
                for (x, y) in self.list.iter_mut().zip(from) {
                    x.clone_from(y);
                }
                self.list
                    .extend_from_slice(from.get(kept..).unwrap_or_default());
            }
            Form::Words | Form::Bits => {
                self.list.clear();
                self.words.clear();
                self.words
                    .extend_from_slice(src.words.get(..n).unwrap_or_default());
            }
        }
    }

    /// The values in order.
    #[inline]
    pub fn iter(&self) -> Iter<'_> {
        match self.form {
            Form::List => Iter::List(self.list.iter()),
            Form::Words => Iter::Words(self.words.iter()),
            Form::Bits => Iter::Bits(self.words.iter()),
        }
    }

    /// The values as numbers when they are kept compact: registers, or bits as 0 and 1
    /// ([`Values::is_bits`] tells which). `None` for the list form.
    #[inline]
    pub fn compact(&self) -> Option<&[u16]> {
        match self.form {
            Form::List => None,
            Form::Words | Form::Bits => Some(&self.words),
        }
    }

    /// Whether the values are bits kept compact.
    #[inline]
    pub fn is_bits(&self) -> bool {
        self.form == Form::Bits
    }

    /// The values when they are in the list form.
    #[inline]
    pub fn as_list(&self) -> Option<&[Value]> {
        match self.form {
            Form::List => Some(&self.list),
            Form::Words | Form::Bits => None,
        }
    }

    /// The values as a new list.
    pub fn to_vec(&self) -> Vec<Value> {
        self.iter().map(Cow::into_owned).collect()
    }

    /// The list form, for changing it (compact values are moved into it first).
    pub fn list_mut(&mut self) -> &mut Vec<Value> {
        if self.form != Form::List {
            let bits = self.form == Form::Bits;
            self.list.clear();
            self.list.extend(self.words.iter().map(|&w| {
                if bits {
                    bit_value(w)
                } else {
                    word_value(w)
                }
            }));
            self.words.clear();
            self.form = Form::List;
        }
        &mut self.list
    }

    /// Adds `v` at the end (in the list form).
    pub fn push(&mut self, v: Value) {
        self.list_mut().push(v);
    }

    /// Removes every value (the vectors keep their room).
    #[inline]
    pub fn clear(&mut self) {
        self.list.clear();
        self.words.clear();
        self.form = Form::List;
    }

    /// Keeps the first `n` values.
    pub fn truncate(&mut self, n: usize) {
        self.list.truncate(n);
        self.words.truncate(n);
    }

    /// Replaces the values with big-endian registers from `data` (two bytes each, an odd
    /// last byte ignored), at most `max` of them.
    #[inline]
    pub fn set_registers(&mut self, data: &[u8], max: usize) {
        self.list.clear();
        self.form = Form::Words;
        // Sized first, then written over: a poll's list already has its size.
        self.words.resize((data.len() / 2).min(max), 0);
        for (w, c) in self.words.iter_mut().zip(data.chunks_exact(2)) {
            if let [hi, lo] = *c {
                *w = u16::from_be_bytes([hi, lo]);
            }
        }
    }

    /// Replaces the values with `n` bits packed least significant first in `data` (fewer
    /// when `data` holds fewer).
    #[inline]
    pub fn set_bits(&mut self, data: &[u8], n: usize) {
        self.list.clear();
        self.form = Form::Bits;
        self.words.resize(n.min(data.len().saturating_mul(8)), 0);
        // Eight values per data byte, copied from the byte's row: whole rows as one fixed
        // move each (a copy of a row cut to a length not known in advance is a call), then
        // the row cut to the values left, for the last byte.
        let mut rows = self.words.chunks_exact_mut(8);
        let mut bytes = data.iter();
        // `rows` comes first: the zip stops at its end without taking one more byte.
        for (ws, &b) in (&mut rows).zip(&mut bytes) {
            if let (Ok(ws), Some(row)) =
                (<&mut [u16; 8]>::try_from(ws), BYTE_BITS.get(usize::from(b)))
            {
                *ws = *row;
            }
        }
        let tail = rows.into_remainder();
        let row = bytes
            .next()
            .and_then(|&b| BYTE_BITS.get(usize::from(b)))
            .and_then(|r| r.get(..tail.len()));
        if let Some(row) = row {
            tail.copy_from_slice(row);
        }
    }

    /// The values emptied into the list form, for filling (the vectors keep their room).
    #[inline]
    pub(crate) fn cleared_list(&mut self) -> &mut Vec<Value> {
        self.clear();
        &mut self.list
    }

    /// Replaces the values with a copy of compact ones: `words` as registers, or as bits
    /// when `bits` (the form [`Values::compact`] and [`Values::is_bits`] give back).
    #[inline]
    pub(crate) fn set_compact(&mut self, words: &[u16], bits: bool) {
        self.list.clear();
        self.words.clear();
        self.words.extend_from_slice(words);
        self.form = if bits { Form::Bits } else { Form::Words };
    }

    /// The list form's vector, emptied, for reuse elsewhere (the values are left empty).
    pub fn take_list(&mut self) -> Vec<Value> {
        let mut l = std::mem::take(&mut self.list);
        l.clear();
        self.clear();
        l
    }

    /// The compact forms' vector, emptied, for reuse elsewhere (the values are left empty).
    pub fn take_words(&mut self) -> Vec<u16> {
        let mut w = std::mem::take(&mut self.words);
        w.clear();
        self.clear();
        w
    }

    /// No values, with the room of `words` (emptied) for compact ones.
    pub fn with_words(mut words: Vec<u16>) -> Self {
        words.clear();
        Values {
            list: Vec::new(),
            words,
            form: Form::List,
        }
    }

    /// Room of the list form's vector.
    #[inline]
    pub fn list_capacity(&self) -> usize {
        self.list.capacity()
    }

    /// Room of the compact forms' vector.
    #[inline]
    pub fn words_capacity(&self) -> usize {
        self.words.capacity()
    }
}

/// The bits of each byte value as words, least significant first (a row of eight per byte:
/// [`Values::set_bits`] copies rows rather than shifting bit by bit).
#[allow(clippy::indexing_slicing)] // Evaluated at compile time, within the bounds.
static BYTE_BITS: [[u16; 8]; 256] = {
    let mut t = [[0u16; 8]; 256];
    let mut b = 0;
    while b < 256 {
        let mut k = 0;
        while k < 8 {
            t[b][k] = ((b >> k) & 1) as u16;
            k += 1;
        }
        b += 1;
    }
    t
};

/// A register as a value.
#[inline(always)]
fn word_value(w: u16) -> Value {
    Value::Int(i64::from(w))
}

/// A bit (0 or not) as a value.
#[inline(always)]
fn bit_value(w: u16) -> Value {
    Value::Bool(w != 0)
}

/// An iterator over [`Values`], each borrowed or made from a word.
pub enum Iter<'a> {
    /// Over the list form.
    List(std::slice::Iter<'a, Value>),
    /// Over registers.
    Words(std::slice::Iter<'a, u16>),
    /// Over bits.
    Bits(std::slice::Iter<'a, u16>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = Cow<'a, Value>;

    #[inline(always)]
    fn next(&mut self) -> Option<Cow<'a, Value>> {
        match self {
            Iter::List(i) => i.next().map(Cow::Borrowed),
            Iter::Words(i) => i.next().map(|&w| Cow::Owned(word_value(w))),
            Iter::Bits(i) => i.next().map(|&w| Cow::Owned(bit_value(w))),
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self {
            Iter::List(i) => i.len(),
            Iter::Words(i) | Iter::Bits(i) => i.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Values {
    type Item = Cow<'a, Value>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl From<Vec<Value>> for Values {
    fn from(list: Vec<Value>) -> Self {
        Values {
            list,
            words: Vec::new(),
            form: Form::List,
        }
    }
}

impl FromIterator<Value> for Values {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Self {
        Values::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl PartialEq for Values {
    fn eq(&self, other: &Self) -> bool {
        match (self.form, other.form) {
            (Form::List, Form::List) => self.list == other.list,
            (a, b) if a == b => self.words == other.words,
            _ => self.len() == other.len() && self.iter().eq(other.iter()),
        }
    }
}

impl PartialEq<[Value]> for Values {
    fn eq(&self, other: &[Value]) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| *a == *b)
    }
}

impl<const N: usize> PartialEq<[Value; N]> for Values {
    fn eq(&self, other: &[Value; N]) -> bool {
        *self == other[..]
    }
}

impl PartialEq<Vec<Value>> for Values {
    fn eq(&self, other: &Vec<Value>) -> bool {
        *self == other[..]
    }
}

impl PartialEq<Values> for Vec<Value> {
    fn eq(&self, other: &Values) -> bool {
        other == self
    }
}

impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Values {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl Clone for Values {
    fn clone(&self) -> Self {
        Values {
            list: self.list.clone(),
            words: self.words.clone(),
            form: self.form,
        }
    }

    fn clone_from(&mut self, src: &Self) {
        self.form = src.form;
        self.list.clone_from(&src.list);
        self.words.clone_from(&src.words);
    }
}

/// How the operation ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// A normal response.
    Ok,
    /// A Modbus exception response.
    Exception {
        /// Exception code.
        code: u8,
        /// Its name from the specification.
        name: &'static str,
    },
    /// A bad OPC UA status code.
    Bad {
        /// Raw 32-bit status code.
        code: u32,
        /// Its symbolic name.
        name: &'static str,
    },
    /// No response arrived within the transaction timeout.
    Timeout,
    /// The flow ended, or the capture ended, before a response.
    NoResponse,
    /// A response with no matching request.
    Unsolicited,
    /// A one-way message that needs no response.
    NotApplicable,
}

/// Where the evidence for an event is: capture file and 1-based packet numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// Capture file path, as given on the command line.
    pub file: Arc<str>,
    /// Packet number (1-based, in the file) of the request, or of the message itself.
    pub packet: u64,
    /// Packet number of the response, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_packet: Option<u64>,
}

/// One ICS operation, protocol-neutral.
#[derive(Debug, PartialEq, Serialize)]
pub struct IcsEvent {
    /// Capture time of the request (or of the message, for one-way messages).
    pub ts: Timestamp,
    /// Application protocol.
    pub proto: AppProto,
    /// Flow identifier, unique within one run, in order of flow creation.
    pub flow_id: u64,
    /// The side that initiated the operation (Modbus client, OPC UA client).
    pub client: Endpoint,
    /// The side that served it (Modbus server/PLC, OPC UA server).
    pub server: Endpoint,
    /// Outer VLAN id, when tagged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// Modbus unit id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_id: Option<u8>,
    /// OPC UA secure channel id, session or other protocol context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Operation kind.
    pub op: OpKind,
    /// Function or service.
    pub function: Function,
    /// Objects addressed, with values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accesses: Vec<Access>,
    /// How it ended.
    pub outcome: Outcome,
    /// Request-to-response time in microseconds (capture time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// Protocol violations seen in the request or response (stable snake_case names).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<&'static str>,
    /// Facts about the devices learnt from this operation (identity, application names).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<AssetFact>,
    /// Protocol-specific details that have no neutral field (security policy, UMAS code, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<(&'static str, Value)>,
    /// Where the packets are.
    pub evidence: Evidence,
}

// `Clone` by hand for `clone_from`: a detector that keeps "the last event" of a stream copies
// each new one over the old in place, reusing its vectors instead of allocating new ones.
impl Clone for Access {
    fn clone(&self) -> Self {
        Access {
            dir: self.dir,
            object: self.object.clone(),
            values: self.values.clone(),
        }
    }

    fn clone_from(&mut self, src: &Self) {
        self.dir = src.dir;
        self.object.clone_from(&src.object);
        self.values.clone_from(&src.values);
    }
}

impl Clone for IcsEvent {
    fn clone(&self) -> Self {
        IcsEvent {
            ts: self.ts,
            proto: self.proto,
            flow_id: self.flow_id,
            client: self.client,
            server: self.server,
            vlan: self.vlan,
            unit_id: self.unit_id,
            session: self.session.clone(),
            op: self.op,
            function: self.function.clone(),
            accesses: self.accesses.clone(),
            outcome: self.outcome.clone(),
            latency_us: self.latency_us,
            violations: self.violations.clone(),
            facts: self.facts.clone(),
            details: self.details.clone(),
            evidence: self.evidence.clone(),
        }
    }

    fn clone_from(&mut self, src: &Self) {
        self.ts = src.ts;
        self.proto = src.proto;
        self.flow_id = src.flow_id;
        self.client = src.client;
        self.server = src.server;
        self.vlan = src.vlan;
        self.unit_id = src.unit_id;
        self.session.clone_from(&src.session);
        self.op = src.op;
        self.function.clone_from(&src.function);
        self.accesses.clone_from(&src.accesses);
        self.outcome.clone_from(&src.outcome);
        self.latency_us = src.latency_us;
        self.violations.clone_from(&src.violations);
        self.facts.clone_from(&src.facts);
        self.details.clone_from(&src.details);
        self.evidence.clone_from(&src.evidence);
    }
}

/// Which side of the conversation a fact describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The client.
    Client,
    /// The server.
    Server,
}

/// A fact about a device, such as its vendor or application URI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssetFact {
    /// Which side the fact is about.
    pub side: Side,
    /// Fact name, e.g. `vendor_name`, `product_code`, `application_uri`.
    pub key: &'static str,
    /// Fact value.
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// The values of `data` decoded one by one: big-endian registers, or LSB-first bits.
    fn plain(data: &[u8], bits: Option<usize>) -> Vec<Value> {
        match bits {
            Some(n) => (0..n.min(data.len() * 8))
                .map(|i| Value::Bool(data[i / 8] >> (i % 8) & 1 == 1))
                .collect(),
            None => data
                .chunks_exact(2)
                .map(|c| Value::Int(i64::from(c[0]) << 8 | i64::from(c[1])))
                .collect(),
        }
    }

    #[test]
    fn compact_values_read_compare_and_print_as_their_list() {
        let data: Vec<u8> = (0..=60u8)
            .map(|b| b.wrapping_mul(97).wrapping_add(3))
            .collect();
        let mut v = Values::from(vec![Value::Str("old".into())]);
        for len in 0..=data.len() {
            let d = &data[..len];
            for bits in [None, Some(0), Some(1), Some(9), Some(500)] {
                match bits {
                    Some(n) => v.set_bits(d, n),
                    None => v.set_registers(d, usize::MAX),
                }
                let list = plain(d, bits);
                assert_eq!(v.is_bits(), bits.is_some());
                assert_eq!(v.len(), list.len());
                assert_eq!(v.is_empty(), list.is_empty());
                assert_eq!(v, list);
                assert_eq!(v, Values::from(list.clone()));
                assert_eq!(Values::from(list.clone()), v);
                assert_eq!(v.to_vec(), list);
                assert_eq!(v.first().as_deref(), list.first());
                assert_eq!(v.get(len).as_deref(), list.get(len));
                assert_eq!(
                    serde_json::to_string(&v).ok(),
                    serde_json::to_string(&list).ok()
                );
                assert_eq!(format!("{v:?}"), format!("{list:?}"));
                // A copy of a prefix keeps the form; the list form is the same values.
                let mut c = Values::from(vec![Value::Float(0.5); 9]);
                c.copy_prefix(&v, 4);
                assert_eq!(c, *list.get(..4.min(list.len())).unwrap_or_default());
                assert_eq!(c.compact().is_some(), v.compact().is_some());
                let mut m = v.clone();
                m.push(Value::Opaque("x"));
                assert_eq!(m.as_list().map(<[Value]>::len), Some(list.len() + 1));
                assert_eq!(m.get(list.len()).as_deref(), Some(&Value::Opaque("x")));
                m.truncate(list.len());
                assert_eq!(m, list);
            }
        }
        // At most `max` registers; an odd last byte is not one.
        v.set_registers(&[1, 2, 3, 4, 5], 1);
        assert_eq!(v, [Value::Int(0x0102)]);
        v.set_registers(&[1, 2, 3], 10);
        assert_eq!(v, [Value::Int(0x0102)]);
        assert!(v != [Value::Bool(true)]);
        v.clear();
        assert!(v.is_empty() && v.as_list() == Some(&[][..]));
    }

    proptest::proptest! {
        /// Registers and bits of any data, count and limit, decoded over values of any
        /// form and length, are the values decoded one by one.
        #[test]
        fn compact_values_are_decoded_one_by_one(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            n in 0usize..2600,
            bits in proptest::prelude::any::<bool>(),
            before in 0usize..3,
            old in 0usize..200,
        ) {
            let mut v = Values::from(vec![Value::Int(7); old]);
            match before {
                0 => {}
                1 => v.set_registers(&vec![0x5a; 2 * old], old),
                _ => v.set_bits(&vec![0xff; old], 8 * old),
            }
            if bits {
                v.set_bits(&data, n);
                proptest::prop_assert_eq!(v.to_vec(), plain(&data, Some(n)));
            } else {
                let limit = data.len().min(2 * n);
                v.set_registers(&data, n);
                proptest::prop_assert_eq!(v.to_vec(), plain(&data[..limit], None));
            }
        }
    }

    #[test]
    fn json_shape_is_stable() {
        let ev = IcsEvent {
            ts: Timestamp::new(1_445_508_000, 5_000),
            proto: AppProto::Modbus,
            flow_id: 3,
            client: Endpoint {
                ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)),
                port: 40000,
                mac: None,
            },
            server: Endpoint {
                ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 20)),
                port: 502,
                mac: Some([0, 1, 2, 3, 4, 0xab]),
            },
            vlan: None,
            unit_id: Some(1),
            session: None,
            op: OpKind::Write,
            function: Function {
                code: 6,
                name: "write_single_register",
                category: "public",
                sub: None,
                sub_name: None,
            },
            accesses: vec![Access {
                dir: AccessDir::Write,
                object: ObjectRef::Modbus {
                    table: ModbusTable::HoldingRegister,
                    start: 40,
                    count: 1,
                },
                values: vec![Value::Int(9999)].into(),
            }],
            outcome: Outcome::Ok,
            latency_us: Some(1200),
            violations: vec![],
            facts: vec![],
            details: vec![("raw", Value::Bytes(vec![0xde, 0xad]))],
            evidence: Evidence {
                file: Arc::from("a.pcap"),
                packet: 7,
                response_packet: Some(8),
            },
        };
        let j = serde_json::to_string(&ev).unwrap_or_default();
        assert_eq!(
            j,
            r#"{"ts":"2015-10-22T10:00:00.000005Z","proto":"modbus","flow_id":3,"client":{"ip":"10.0.0.5","port":40000},"server":{"ip":"10.0.0.20","port":502,"mac":"00:01:02:03:04:ab"},"unit_id":1,"op":"write","function":{"code":6,"name":"write_single_register","category":"public"},"accesses":[{"dir":"write","object":{"type":"modbus","table":"holding_register","start":40,"count":1},"values":[9999]}],"outcome":{"status":"ok"},"latency_us":1200,"details":[["raw","dead"]],"evidence":{"file":"a.pcap","packet":7,"response_packet":8}}"#
        );
    }
}
