//! OPC UA built-in types (Part 6, binary encoding) and the bounded [`Reader`] that decodes them.
//!
//! Decoders borrow from the message (`&'a [u8]`); strings stay bytes until an event needs text.
//! Every declared length is checked against the remaining input and the [`DecodeLimits`] before
//! use, and nesting (Variant, ExtensionObject, DataValue, DiagnosticInfo) is depth-bounded.

use super::limits::DecodeLimits;
use super::status;
use crate::event::Value;
use crate::proto::recycle;
use crate::time::Timestamp;
use std::fmt;

/// Why a value could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a value.
    #[error("truncated at offset {at}")]
    Truncated {
        /// Offset of the value that did not fit.
        at: usize,
    },
    /// A declared length or nesting depth exceeded a [`DecodeLimits`] cap.
    #[error("limit exceeded: {0}")]
    Limit(&'static str),
    /// A value that the encoding does not allow (unknown encoding byte, negative length).
    #[error("invalid encoding: {0}")]
    Invalid(&'static str),
}

impl DecodeError {
    /// Stable snake_case name of this error, for violation lists and counters.
    pub fn violation(&self) -> &'static str {
        match self {
            DecodeError::Truncated { .. } => "truncated_body",
            DecodeError::Limit(name) | DecodeError::Invalid(name) => name,
        }
    }

    /// True for a cap of [`DecodeLimits`] (as opposed to malformed input).
    pub fn is_limit(&self) -> bool {
        matches!(self, DecodeError::Limit(_))
    }
}

/// Result of a decoder.
pub type DResult<T> = Result<T, DecodeError>;

/// Offset between 1601-01-01 and 1970-01-01 in 100 ns ticks.
const EPOCH_DIFF_TICKS: i64 = 116_444_736_000_000_000;

/// Converts an OPC UA DateTime (100 ns ticks since 1601) to a timestamp; `None` for the null
/// value 0 and for the "end of time" value `i64::MAX`.
pub fn datetime_to_ts(ticks: i64) -> Option<Timestamp> {
    if ticks <= 0 || ticks == i64::MAX {
        return None;
    }
    let unix = ticks.checked_sub(EPOCH_DIFF_TICKS)?;
    let secs = unix.div_euclid(10_000_000);
    // rem_euclid is in 0..10_000_000, so the product fits in u32.
    let nanos = u32::try_from(unix.rem_euclid(10_000_000) * 100).unwrap_or(0);
    Some(Timestamp::new(secs, nanos))
}

/// Text of a UA String, lossily converted from UTF-8; `None` for the null string.
pub fn text(s: Option<&[u8]>) -> Option<String> {
    s.map(|b| String::from_utf8_lossy(b).into_owned())
}

/// Appends the decimal digits of `n`: what `write!(out, "{n}")` appends, without the
/// formatting machinery (this runs for every session id, client handle and numeric NodeId).
pub fn push_decimal(out: &mut String, n: u32) {
    if n < 10 {
        // `n` is one digit.
        out.push(char::from(b'0' + n as u8));
        return;
    }
    let mut digits = [0u8; 10];
    let mut len = 0;
    let mut rest = n;
    for d in digits.iter_mut() {
        // `rest % 10` is below 10.
        *d = b'0' + (rest % 10) as u8;
        len += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for &d in digits.get(..len).unwrap_or_default().iter().rev() {
        out.push(char::from(d));
    }
}

/// The decimal text of `n` (as `n.to_string()`).
pub fn decimal(n: u32) -> String {
    let mut s = String::with_capacity(10);
    push_decimal(&mut s, n);
    s
}

/// Standard base64 (with padding), for opaque NodeIds.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |i: u32| char::from(*ALPHABET.get((i & 63) as usize).unwrap_or(&b'A'));
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for group in data.chunks(3) {
        let b = |i: usize| u32::from(group.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sym(n >> 18));
        out.push(sym(n >> 12));
        out.push(if group.len() > 1 { sym(n >> 6) } else { '=' });
        out.push(if group.len() > 2 { sym(n) } else { '=' });
    }
    out
}

/// Lower-case hex of some bytes.
pub fn hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(data.len().saturating_mul(2));
    for b in data {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

/// A Guid in its 16 wire bytes (Data1..3 little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guid(pub [u8; 16]);

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = &self.0;
        let [a0, a1, a2, a3, b0, b1, c0, c1, rest @ ..] = *g;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-",
            u32::from_le_bytes([a0, a1, a2, a3]),
            u16::from_le_bytes([b0, b1]),
            u16::from_le_bytes([c0, c1])
        )?;
        let [d0, d1, e @ ..] = rest;
        write!(f, "{d0:02x}{d1:02x}-")?;
        e.iter().try_for_each(|x| write!(f, "{x:02x}"))
    }
}

/// The identifier part of a NodeId.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identifier<'a> {
    /// Numeric (`i=`).
    Numeric(u32),
    /// String (`s=`); `None` for the null string.
    String(Option<&'a [u8]>),
    /// Guid (`g=`).
    Guid(Guid),
    /// Opaque ByteString (`b=`).
    Opaque(Option<&'a [u8]>),
}

/// A NodeId: namespace index and identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeId<'a> {
    /// Namespace index.
    pub ns: u16,
    /// Identifier.
    pub id: Identifier<'a>,
}

impl NodeId<'_> {
    /// The numeric identifier when this is a namespace-0 numeric NodeId.
    pub fn ns0_numeric(&self) -> Option<u32> {
        match (self.ns, self.id) {
            (0, Identifier::Numeric(n)) => Some(n),
            _ => None,
        }
    }

    /// True for the null NodeId (`i=0`).
    pub fn is_null(&self) -> bool {
        self.ns0_numeric() == Some(0)
    }

    /// The text of this NodeId, as `to_string()` gives it; numeric ones (the common case) are
    /// written without the formatting machinery.
    pub fn to_text(&self) -> String {
        let (tag, text) = match self.id {
            Identifier::Numeric(_) => ("i=", None),
            Identifier::String(t) => ("s=", Some(String::from_utf8_lossy(t.unwrap_or_default()))),
            _ => return self.to_string(),
        };
        // A recycled string (an object name of a finished event) when there is one.
        let mut s = recycle::name("");
        s.reserve(16 + text.as_ref().map_or(0, |t| t.len()));
        if self.ns != 0 {
            s.push_str("ns=");
            push_decimal(&mut s, u32::from(self.ns));
            s.push(';');
        }
        s.push_str(tag);
        match (self.id, text) {
            (Identifier::Numeric(n), _) => push_decimal(&mut s, n),
            (_, Some(t)) => s.push_str(&t),
            _ => {}
        }
        s
    }
}

fn fmt_identifier(f: &mut fmt::Formatter<'_>, id: &Identifier<'_>) -> fmt::Result {
    match id {
        Identifier::Numeric(n) => write!(f, "i={n}"),
        Identifier::String(s) => write!(f, "s={}", String::from_utf8_lossy(s.unwrap_or_default())),
        Identifier::Guid(g) => write!(f, "g={g}"),
        Identifier::Opaque(b) => write!(f, "b={}", base64(b.unwrap_or_default())),
    }
}

impl fmt::Display for NodeId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ns != 0 {
            write!(f, "ns={};", self.ns)?;
        }
        fmt_identifier(f, &self.id)
    }
}

/// An ExpandedNodeId: a NodeId with an optional namespace URI and server index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpandedNodeId<'a> {
    /// The NodeId.
    pub node: NodeId<'a>,
    /// Namespace URI, replacing the index when present.
    pub namespace_uri: Option<&'a [u8]>,
    /// Server index, when present.
    pub server_index: Option<u32>,
}

impl fmt::Display for ExpandedNodeId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.server_index {
            write!(f, "svr={s};")?;
        }
        match self.namespace_uri {
            Some(uri) => {
                write!(f, "nsu={};", String::from_utf8_lossy(uri))?;
                fmt_identifier(f, &self.node.id)
            }
            None => self.node.fmt(f),
        }
    }
}

/// A LocalizedText: optional locale and text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalizedText<'a> {
    /// Locale, e.g. `en-US`.
    pub locale: Option<&'a [u8]>,
    /// The text.
    pub text: Option<&'a [u8]>,
}

/// A QualifiedName: namespace index and name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QualifiedName<'a> {
    /// Namespace index.
    pub ns: u16,
    /// Name.
    pub name: Option<&'a [u8]>,
}

/// Body of an ExtensionObject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtBody<'a> {
    /// No body.
    None,
    /// Binary-encoded body.
    Binary(&'a [u8]),
    /// XML-encoded body.
    Xml(&'a [u8]),
}

/// An ExtensionObject: the encoding id of a structure and its still-encoded body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtensionObject<'a> {
    /// Encoding NodeId of the body's type.
    pub type_id: ExpandedNodeId<'a>,
    /// The body.
    pub body: ExtBody<'a>,
}

impl ExtensionObject<'_> {
    /// The namespace-0 numeric type id, if it is one.
    pub fn ns0_type(&self) -> Option<u32> {
        if self.type_id.namespace_uri.is_none() {
            self.type_id.node.ns0_numeric()
        } else {
            None
        }
    }
}

/// A DiagnosticInfo, without its inner DiagnosticInfo (which is decoded and bounded, not kept).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiagnosticInfo<'a> {
    /// Index of the symbolic id in the string table.
    pub symbolic_id: Option<i32>,
    /// Index of the namespace URI in the string table.
    pub namespace_uri: Option<i32>,
    /// Index of the locale in the string table.
    pub locale: Option<i32>,
    /// Index of the localized text in the string table.
    pub localized_text: Option<i32>,
    /// Additional vendor information.
    pub additional_info: Option<&'a [u8]>,
    /// Inner status code.
    pub inner_status: Option<u32>,
    /// Nesting depth of inner DiagnosticInfos below this one.
    pub inner_depth: usize,
}

/// A decoded Variant: its built-in type, whether it was an array, and its values (capped).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Variant {
    /// Built-in type id (0 = empty).
    pub type_id: u8,
    /// True when the Variant held an array.
    pub is_array: bool,
    /// Number of elements on the wire (1 for a scalar, 0 when empty).
    pub len: usize,
    /// Values, at most [`DecodeLimits::max_values_kept`] of them.
    pub values: Vec<Value>,
}

/// A DataValue: value, status and timestamps, each optional.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataValue {
    /// The value.
    pub value: Option<Variant>,
    /// Status code (absent means Good).
    pub status: Option<u32>,
    /// Source timestamp.
    pub source_ts: Option<i64>,
    /// Server timestamp.
    pub server_ts: Option<i64>,
}

/// Name of a built-in type id.
pub fn builtin_name(t: u8) -> &'static str {
    match t {
        0 => "Null",
        1 => "Boolean",
        2 => "SByte",
        3 => "Byte",
        4 => "Int16",
        5 => "UInt16",
        6 => "Int32",
        7 => "UInt32",
        8 => "Int64",
        9 => "UInt64",
        10 => "Float",
        11 => "Double",
        12 => "String",
        13 => "DateTime",
        14 => "Guid",
        15 => "ByteString",
        16 => "XmlElement",
        17 => "NodeId",
        18 => "ExpandedNodeId",
        19 => "StatusCode",
        20 => "QualifiedName",
        21 => "LocalizedText",
        22 => "ExtensionObject",
        23 => "DataValue",
        24 => "Variant",
        25 => "DiagnosticInfo",
        _ => "Unknown",
    }
}

/// Smallest encoded size of one value of a built-in type (for array length checks).
fn min_size(t: u8) -> usize {
    match t {
        1..=3 => 1,
        4 | 5 => 2,
        6 | 7 | 10 | 12 | 15 | 16 | 19 => 4,
        8 | 9 | 11 | 13 => 8,
        14 => 16,
        17 | 18 => 2,
        20 => 6,
        22 => 3,
        _ => 1,
    }
}

/// Encoded size of the fixed-size scalar types (Boolean to Double, 1..=11); 0 for the others.
fn fixed_size(t: u8) -> usize {
    match t {
        1..=3 => 1,
        4 | 5 => 2,
        6 | 7 | 10 => 4,
        8 | 9 | 11 => 8,
        _ => 0,
    }
}

/// The value of a fixed-size scalar of type `t` (1..=11) from its `fixed_size(t)` bytes.
#[inline(always)]
fn fixed_value(t: u8, bytes: &[u8]) -> Value {
    // The fixed sizes as whole moves (a copy loop became a call to memcpy).
    let b = match *bytes {
        [a0, a1, a2, a3, a4, a5, a6, a7] => [a0, a1, a2, a3, a4, a5, a6, a7],
        [a0, a1, a2, a3] => [a0, a1, a2, a3, 0, 0, 0, 0],
        [a0, a1] => [a0, a1, 0, 0, 0, 0, 0, 0],
        [a0] => [a0, 0, 0, 0, 0, 0, 0, 0],
        _ => {
            let mut b = [0u8; 8];
            for (d, s) in b.iter_mut().zip(bytes) {
                *d = *s;
            }
            b
        }
    };
    let [b0, b1, b2, b3, ..] = b;
    match t {
        1 => Value::Bool(b0 != 0),
        2 => Value::Int(i64::from(b0 as i8)),
        3 => Value::Int(i64::from(b0)),
        4 => Value::Int(i64::from(i16::from_le_bytes([b0, b1]))),
        5 => Value::Int(i64::from(u16::from_le_bytes([b0, b1]))),
        6 => Value::Int(i64::from(i32::from_le_bytes([b0, b1, b2, b3]))),
        7 => Value::Int(i64::from(u32::from_le_bytes([b0, b1, b2, b3]))),
        8 => Value::Int(i64::from_le_bytes(b)),
        9 => {
            let v = u64::from_le_bytes(b);
            i64::try_from(v).map_or(Value::UInt(v), Value::Int)
        }
        10 => Value::Float(f64::from(f32::from_le_bytes([b0, b1, b2, b3]))),
        _ => Value::Float(f64::from_le_bytes(b)),
    }
}

/// Bytes a DataValue holds after its value for each mask (bits 0..5): status 4, source
/// timestamp 8, server timestamp 8, and 2 for each picoseconds field.
const DATA_VALUE_EXTRA: [u8; 64] = data_value_extra();

#[allow(clippy::indexing_slicing)] // compile time only: `mask` is below 64
const fn data_value_extra() -> [u8; 64] {
    const FIELDS: [(usize, u8); 5] = [(0x02, 4), (0x04, 8), (0x10, 2), (0x08, 8), (0x20, 2)];
    let mut out = [0u8; 64];
    let mut mask = 0;
    while mask < 64 {
        let mut f = 0;
        while f < FIELDS.len() {
            if mask & FIELDS[f].0 != 0 {
                out[mask] += FIELDS[f].1;
            }
            f += 1;
        }
        mask += 1;
    }
    out
}

/// Largest ByteString kept whole as a value; longer ones become `Opaque`.
const MAX_BYTES_VALUE: usize = 1024;

/// A cursor over one message body that decodes built-in types within [`DecodeLimits`].
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    limits: &'a DecodeLimits,
    depth: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8], limits: &'a DecodeLimits) -> Self {
        Reader {
            buf,
            pos: 0,
            limits,
            depth: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &'a DecodeLimits {
        self.limits
    }

    /// Bytes consumed so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The unread rest of the input.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize) -> DResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError::Truncated { at: self.pos })?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated { at: self.pos })?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> DResult<[u8; N]> {
        match self.buf.get(self.pos..).and_then(|s| s.first_chunk::<N>()) {
            Some(a) => {
                self.pos += N;
                Ok(*a)
            }
            None => Err(DecodeError::Truncated { at: self.pos }),
        }
    }

    /// A Byte.
    pub fn u8(&mut self) -> DResult<u8> {
        Ok(u8::from_le_bytes(self.array()?))
    }
    /// A UInt16.
    pub fn u16(&mut self) -> DResult<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    /// A UInt32.
    pub fn u32(&mut self) -> DResult<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    /// An Int32.
    pub fn i32(&mut self) -> DResult<i32> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    /// An Int64.
    pub fn i64(&mut self) -> DResult<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    /// A UInt64.
    pub fn u64(&mut self) -> DResult<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// A Double.
    pub fn f64(&mut self) -> DResult<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }
    /// A Boolean (any non-zero byte is true).
    pub fn bool(&mut self) -> DResult<bool> {
        Ok(self.u8()? != 0)
    }
    /// A DateTime, raw ticks.
    pub fn datetime(&mut self) -> DResult<i64> {
        self.i64()
    }
    /// A StatusCode.
    pub fn status_code(&mut self) -> DResult<u32> {
        self.u32()
    }
    /// A Guid.
    pub fn guid(&mut self) -> DResult<Guid> {
        Ok(Guid(self.array()?))
    }

    fn sized(&mut self, cap: usize, what: &'static str) -> DResult<Option<&'a [u8]>> {
        let at = self.pos;
        let n = self.i32()?;
        if n < 0 {
            return if n == -1 {
                Ok(None)
            } else {
                Err(DecodeError::Invalid("negative_length"))
            };
        }
        let n = usize::try_from(n).map_err(|_| DecodeError::Invalid("negative_length"))?;
        if n > cap {
            return Err(DecodeError::Limit(what));
        }
        if n > self.remaining() {
            return Err(DecodeError::Truncated { at });
        }
        self.take(n).map(Some)
    }

    /// A String (bytes, not checked for UTF-8); `None` for the null string.
    pub fn string(&mut self) -> DResult<Option<&'a [u8]>> {
        self.sized(self.limits.max_string_len, "string_too_long")
    }

    /// A ByteString; `None` for the null ByteString.
    pub fn bytestring(&mut self) -> DResult<Option<&'a [u8]>> {
        self.sized(self.limits.max_bytestring_len, "bytestring_too_long")
    }

    /// An array length (0 for the null array), checked against the cap and against the bytes
    /// left assuming each element takes at least `min_elem` bytes.
    pub fn array_len(&mut self, min_elem: usize) -> DResult<usize> {
        let at = self.pos;
        let n = self.i32()?;
        if n < -1 {
            return Err(DecodeError::Invalid("negative_length"));
        }
        let n = usize::try_from(n).unwrap_or(0);
        if n > self.limits.max_array_len {
            return Err(DecodeError::Limit("array_too_long"));
        }
        if n.saturating_mul(min_elem.max(1)) > self.remaining() {
            return Err(DecodeError::Truncated { at });
        }
        Ok(n)
    }

    /// True when one more nesting level is allowed (what [`Reader::nested`] checks).
    pub fn can_nest(&self) -> bool {
        self.depth < self.limits.max_depth
    }

    /// Runs `f` one nesting level deeper, failing when the depth cap is reached.
    pub fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> DResult<T>) -> DResult<T> {
        if self.depth >= self.limits.max_depth {
            return Err(DecodeError::Limit("nesting_too_deep"));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn node_id_with(&mut self, enc: u8) -> DResult<NodeId<'a>> {
        Ok(match enc & 0x0f {
            0 => NodeId {
                ns: 0,
                id: Identifier::Numeric(u32::from(self.u8()?)),
            },
            1 => {
                let ns = u16::from(self.u8()?);
                NodeId {
                    ns,
                    id: Identifier::Numeric(u32::from(self.u16()?)),
                }
            }
            2 => {
                let ns = self.u16()?;
                NodeId {
                    ns,
                    id: Identifier::Numeric(self.u32()?),
                }
            }
            3 => {
                let ns = self.u16()?;
                NodeId {
                    ns,
                    id: Identifier::String(self.string()?),
                }
            }
            4 => {
                let ns = self.u16()?;
                NodeId {
                    ns,
                    id: Identifier::Guid(self.guid()?),
                }
            }
            5 => {
                let ns = self.u16()?;
                NodeId {
                    ns,
                    id: Identifier::Opaque(self.bytestring()?),
                }
            }
            _ => return Err(DecodeError::Invalid("node_id_encoding")),
        })
    }

    /// A NodeId.
    pub fn node_id(&mut self) -> DResult<NodeId<'a>> {
        if let Some(id) = self.short_numeric() {
            return Ok(id);
        }
        self.node_id_general()
    }

    /// The two-byte and four-byte numeric NodeId forms (most NodeIds on the wire), read in
    /// one step; `None` (the reader untouched) for any other bytes. The general decoders
    /// give the same for these forms (tested).
    fn short_numeric(&mut self) -> Option<NodeId<'a>> {
        match *self.rest() {
            [0x00, id, ..] => {
                self.pos += 2;
                Some(NodeId {
                    ns: 0,
                    id: Identifier::Numeric(u32::from(id)),
                })
            }
            [0x01, ns, lo, hi, ..] => {
                self.pos += 4;
                Some(NodeId {
                    ns: u16::from(ns),
                    id: Identifier::Numeric(u32::from(u16::from_le_bytes([lo, hi]))),
                })
            }
            _ => None,
        }
    }

    fn node_id_general(&mut self) -> DResult<NodeId<'a>> {
        let enc = self.u8()?;
        if enc & 0xf0 != 0 {
            return Err(DecodeError::Invalid("node_id_encoding"));
        }
        self.node_id_with(enc)
    }

    /// An ExpandedNodeId.
    pub fn expanded_node_id(&mut self) -> DResult<ExpandedNodeId<'a>> {
        if let Some(node) = self.short_numeric() {
            // Encoding bytes 0x00 and 0x01: no namespace URI, no server index.
            return Ok(ExpandedNodeId {
                node,
                namespace_uri: None,
                server_index: None,
            });
        }
        self.expanded_node_id_general()
    }

    fn expanded_node_id_general(&mut self) -> DResult<ExpandedNodeId<'a>> {
        let enc = self.u8()?;
        if enc & 0x30 != 0 {
            return Err(DecodeError::Invalid("node_id_encoding"));
        }
        let node = self.node_id_with(enc)?;
        let namespace_uri = if enc & 0x80 != 0 {
            self.string()?
        } else {
            None
        };
        let server_index = if enc & 0x40 != 0 {
            Some(self.u32()?)
        } else {
            None
        };
        Ok(ExpandedNodeId {
            node,
            namespace_uri,
            server_index,
        })
    }

    /// An ExpandedNodeId read as [`Reader::expanded_node_id`] reads it, reduced to its
    /// numeric identifier when it is a namespace-0 numeric NodeId without namespace URI (an
    /// encoding id); `None` for any other. The two-byte and four-byte forms that service
    /// messages use are read in one step.
    #[inline]
    pub fn encoding_id(&mut self) -> DResult<Option<u32>> {
        // The namespace-0 forms of every service message, here rather than through
        // `expanded_node_id` (a call per message; the same result, tested).
        match *self.rest() {
            [0x01, 0x00, lo, hi, ..] => {
                self.pos += 4;
                return Ok(Some(u32::from(u16::from_le_bytes([lo, hi]))));
            }
            [0x00, id, ..] => {
                self.pos += 2;
                return Ok(Some(u32::from(id)));
            }
            _ => {}
        }
        let id = self.expanded_node_id()?;
        Ok(if id.namespace_uri.is_none() {
            id.node.ns0_numeric()
        } else {
            None
        })
    }

    /// A LocalizedText.
    pub fn localized_text(&mut self) -> DResult<LocalizedText<'a>> {
        let mask = self.u8()?;
        let locale = if mask & 0x01 != 0 {
            self.string()?
        } else {
            None
        };
        let text = if mask & 0x02 != 0 {
            self.string()?
        } else {
            None
        };
        Ok(LocalizedText { locale, text })
    }

    /// A QualifiedName.
    pub fn qualified_name(&mut self) -> DResult<QualifiedName<'a>> {
        let ns = self.u16()?;
        Ok(QualifiedName {
            ns,
            name: self.string()?,
        })
    }

    /// The body of an ExtensionObject of type `i=<ty>` in namespace 0 when it has the usual
    /// shape: four-byte NodeId, binary body of a length within the cap and the input, one
    /// nesting level allowed. The same body as `nested(extension_object)` reads (tested);
    /// `None` (nothing read) for any other shape or a failure, left to that general read.
    #[inline]
    pub fn four_byte_binary_ext(&mut self, ty: u32) -> Option<&'a [u8]> {
        if !self.can_nest() {
            return None;
        }
        let rest = self.rest();
        let [0x01, 0x00, lo, hi, 0x01, l0, l1, l2, l3] = *rest.first_chunk::<9>()? else {
            return None;
        };
        if u32::from(u16::from_le_bytes([lo, hi])) != ty {
            return None;
        }
        let len = usize::try_from(i32::from_le_bytes([l0, l1, l2, l3])).ok()?;
        if len > self.limits.max_bytestring_len {
            return None;
        }
        let body = rest.get(9..9usize.checked_add(len)?)?;
        self.pos += 9 + len;
        Some(body)
    }

    /// An ExtensionObject, its body left encoded.
    pub fn extension_object(&mut self) -> DResult<ExtensionObject<'a>> {
        let type_id = self.expanded_node_id()?;
        let body = match self.u8()? {
            0 => ExtBody::None,
            1 => ExtBody::Binary(self.bytestring()?.unwrap_or_default()),
            2 => ExtBody::Xml(self.string()?.unwrap_or_default()),
            _ => return Err(DecodeError::Invalid("extension_object_encoding")),
        };
        Ok(ExtensionObject { type_id, body })
    }

    /// A DiagnosticInfo; inner DiagnosticInfos are decoded (depth-bounded) but not kept.
    pub fn diagnostic_info(&mut self) -> DResult<DiagnosticInfo<'a>> {
        self.nested(|r| {
            let mask = r.u8()?;
            let mut d = DiagnosticInfo::default();
            let opt_i32 = |r: &mut Self, bit: u8| -> DResult<Option<i32>> {
                if mask & bit != 0 {
                    r.i32().map(Some)
                } else {
                    Ok(None)
                }
            };
            d.symbolic_id = opt_i32(r, 0x01)?;
            d.namespace_uri = opt_i32(r, 0x02)?;
            d.locale = opt_i32(r, 0x08)?;
            d.localized_text = opt_i32(r, 0x04)?;
            if mask & 0x10 != 0 {
                d.additional_info = r.string()?;
            }
            if mask & 0x20 != 0 {
                d.inner_status = Some(r.status_code()?);
            }
            if mask & 0x40 != 0 {
                let inner = r.diagnostic_info()?;
                d.inner_depth = inner.inner_depth + 1;
            }
            Ok(d)
        })
    }

    /// An array of DiagnosticInfo (decoded and dropped).
    pub fn skip_diagnostic_infos(&mut self) -> DResult<()> {
        let n = self.array_len(1)?;
        for _ in 0..n {
            self.diagnostic_info()?;
        }
        Ok(())
    }

    /// One value of built-in type `t`, appended to `out` while it holds fewer than `keep`.
    fn builtin_value(&mut self, t: u8, out: &mut Vec<Value>, keep: usize) -> DResult<()> {
        let v = match t {
            1..=11 => fixed_value(t, self.take(fixed_size(t))?),
            12 | 16 => match self.string()? {
                Some(s) => Value::Str(String::from_utf8_lossy(s).into_owned()),
                None => Value::Opaque("null"),
            },
            13 => match datetime_to_ts(self.datetime()?) {
                Some(ts) => Value::Str(ts.to_string()),
                None => Value::Opaque("null"),
            },
            14 => Value::Str(self.guid()?.to_string()),
            15 => match self.bytestring()? {
                Some(b) if b.len() <= MAX_BYTES_VALUE => Value::Bytes(b.to_vec()),
                Some(_) => Value::Opaque("ByteString"),
                None => Value::Opaque("null"),
            },
            17 => Value::Str(self.node_id()?.to_text()),
            18 => Value::Str(self.expanded_node_id()?.to_string()),
            19 => {
                let c = self.status_code()?;
                Value::Str(status::name(c).to_string())
            }
            20 => {
                let q = self.qualified_name()?;
                let name = String::from_utf8_lossy(q.name.unwrap_or_default()).into_owned();
                Value::Str(if q.ns == 0 {
                    name
                } else {
                    format!("{}:{name}", q.ns)
                })
            }
            21 => match self.localized_text()?.text {
                Some(s) => Value::Str(String::from_utf8_lossy(s).into_owned()),
                None => Value::Opaque("null"),
            },
            22 => {
                self.nested(|r| r.extension_object())?;
                Value::Opaque("ExtensionObject")
            }
            23 => {
                let (values, _) = self.nested(|r| r.data_value_values())?;
                for v in values {
                    if out.len() < keep {
                        out.push(v);
                    }
                }
                return Ok(());
            }
            24 => {
                for v in self.variant_values()? {
                    if out.len() < keep {
                        out.push(v);
                    }
                }
                return Ok(());
            }
            25 => {
                self.diagnostic_info()?;
                Value::Opaque("DiagnosticInfo")
            }
            _ => return Err(DecodeError::Invalid("variant_type")),
        };
        if out.len() < keep {
            out.push(v);
        }
        Ok(())
    }

    /// A Variant: scalars and arrays of every built-in type, values capped.
    pub fn variant(&mut self) -> DResult<Variant> {
        self.nested(|r| {
            let enc = r.u8()?;
            let t = enc & 0x3f;
            let keep = r.limits.max_values_kept;
            let mut var = Variant {
                type_id: t,
                is_array: enc & 0x80 != 0,
                ..Variant::default()
            };
            if t == 0 {
                return Ok(var);
            }
            if t > 25 {
                return Err(DecodeError::Invalid("variant_type"));
            }
            if var.is_array {
                let n = r.array_len(min_size(t))?;
                var.len = n;
                var.values = recycle::values(n.min(keep));
                for _ in 0..n {
                    r.builtin_value(t, &mut var.values, keep)?;
                }
                if enc & 0x40 != 0 {
                    let dims = r.array_len(4)?;
                    for _ in 0..dims {
                        r.i32()?;
                    }
                }
            } else {
                var.len = 1;
                var.values = recycle::values(1);
                r.builtin_value(t, &mut var.values, keep)?;
            }
            Ok(var)
        })
    }

    /// The values of a Variant, read as [`Reader::variant`] reads it (same checks, same
    /// errors) without the rest of the [`Variant`].
    pub fn variant_values(&mut self) -> DResult<Vec<Value>> {
        self.nested(|r| {
            let enc = r.u8()?;
            let t = enc & 0x3f;
            if t == 0 {
                return Ok(Vec::new());
            }
            if t > 25 {
                return Err(DecodeError::Invalid("variant_type"));
            }
            let keep = r.limits.max_values_kept;
            if enc & 0x80 != 0 {
                let n = r.array_len(min_size(t))?;
                let mut values = recycle::values(n.min(keep));
                for _ in 0..n {
                    r.builtin_value(t, &mut values, keep)?;
                }
                if enc & 0x40 != 0 {
                    let dims = r.array_len(4)?;
                    for _ in 0..dims {
                        r.i32()?;
                    }
                }
                Ok(values)
            } else {
                let mut values = recycle::values(1);
                r.builtin_value(t, &mut values, keep)?;
                Ok(values)
            }
        })
    }

    /// The common DataValue in one step: a fixed-size scalar value, with or without status
    /// and timestamps, whole in the input and within the depth and value caps. `None` (the
    /// reader untouched) for anything else, which [`Reader::data_value_values`] then reads
    /// the general way; what both ways give is the same (tested).
    fn fixed_scalar_data_value(&mut self) -> Option<(Vec<Value>, Option<u32>)> {
        let [mask, enc] = *self.rest().first_chunk::<2>()?;
        let t = enc & 0x3f;
        let size = fixed_size(t);
        if mask & 0x01 == 0
            || enc & 0x80 != 0
            || size == 0
            || self.depth >= self.limits.max_depth
            || self.limits.max_values_kept == 0
        {
            return None;
        }
        let total = 2
            + size
            + usize::from(
                DATA_VALUE_EXTRA
                    .get(usize::from(mask & 0x3f))
                    .copied()
                    .unwrap_or(0),
            );
        let body = self.rest().get(2..total)?;
        let (value, after) = body.split_at_checked(size)?;
        let status = if mask & 0x02 != 0 {
            Some(u32::from_le_bytes(*after.first_chunk::<4>()?))
        } else {
            None
        };
        let mut values = recycle::values(1);
        values.push(fixed_value(t, value));
        self.pos += total;
        Some((values, status))
    }

    /// A MonitoredItemNotification whose DataValue is the common one (see
    /// `fixed_scalar_data_value`), in one step: its client handle and value, the reader moved
    /// past it. What `u32()` then `nested(|r| r.data_value_values())` would read (tested);
    /// `None`, the reader untouched, for anything else.
    #[inline]
    pub fn fixed_monitored_item(&mut self) -> Option<(u32, Value)> {
        if !self.fixed_items_allowed() {
            return None;
        }
        self.fixed_monitored_item_allowed()
    }

    /// Whether [`Reader::fixed_monitored_item`] may read an item at this depth and within
    /// these limits: one level deeper (the DataValue is nested) within the depth cap, and
    /// values kept. The same for every item of a list (a list's items are read at its depth).
    pub fn fixed_items_allowed(&self) -> bool {
        self.depth.saturating_add(1) < self.limits.max_depth && self.limits.max_values_kept > 0
    }

    /// [`Reader::fixed_monitored_item`] once [`Reader::fixed_items_allowed`] said yes.
    #[inline]
    pub fn fixed_monitored_item_allowed(&mut self) -> Option<(u32, Value)> {
        let rest = self.rest();
        let [h0, h1, h2, h3, mask, enc] = *rest.first_chunk::<6>()?;
        let t = enc & 0x3f;
        let size = fixed_size(t);
        if mask & 0x01 == 0 || enc & 0x80 != 0 || size == 0 {
            return None;
        }
        let extra = DATA_VALUE_EXTRA
            .get(usize::from(mask & 0x3f))
            .copied()
            .unwrap_or(0);
        let total = 6 + size + usize::from(extra);
        if rest.len() < total {
            return None;
        }
        let value = fixed_value(t, rest.get(6..6 + size)?);
        self.pos += total;
        Some((u32::from_le_bytes([h0, h1, h2, h3]), value))
    }

    /// The values and status of a DataValue (what events keep), read as
    /// [`Reader::data_value`] reads it (same checks, same errors); no value reads as none.
    pub fn data_value_values(&mut self) -> DResult<(Vec<Value>, Option<u32>)> {
        if let Some(common) = self.fixed_scalar_data_value() {
            return Ok(common);
        }
        let mask = self.u8()?;
        let values = if mask & 0x01 != 0 {
            self.variant_values()?
        } else {
            Vec::new()
        };
        let status = if mask & 0x02 != 0 {
            Some(self.status_code()?)
        } else {
            None
        };
        // Timestamps and picoseconds, in wire order.
        if mask & 0x04 != 0 {
            self.array::<8>()?;
        }
        if mask & 0x10 != 0 {
            self.array::<2>()?;
        }
        if mask & 0x08 != 0 {
            self.array::<8>()?;
        }
        if mask & 0x20 != 0 {
            self.array::<2>()?;
        }
        Ok((values, status))
    }

    /// A DataValue.
    pub fn data_value(&mut self) -> DResult<DataValue> {
        let mask = self.u8()?;
        let mut dv = DataValue::default();
        if mask & 0x01 != 0 {
            dv.value = Some(self.variant()?);
        }
        if mask & 0x02 != 0 {
            dv.status = Some(self.status_code()?);
        }
        if mask & 0x04 != 0 {
            dv.source_ts = Some(self.datetime()?);
        }
        if mask & 0x10 != 0 {
            self.u16()?;
        }
        if mask & 0x08 != 0 {
            dv.server_ts = Some(self.datetime()?);
        }
        if mask & 0x20 != 0 {
            self.u16()?;
        }
        Ok(dv)
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
    use proptest::prelude::*;
    use rstest::rstest;

    fn lim() -> DecodeLimits {
        DecodeLimits::default()
    }

    #[rstest]
    // two-byte: encoding 0x00, id 0x55
    #[case(&[0x00, 0x55], "i=85")]
    // four-byte: encoding 0x01, ns 1, id 0xf44d
    #[case(&[0x01, 0x01, 0x4d, 0xf4], "ns=1;i=62541")]
    // numeric: encoding 0x02, ns 2 (u16), id 2258 (u32)
    #[case(&[0x02, 0x02, 0x00, 0xd2, 0x08, 0x00, 0x00], "ns=2;i=2258")]
    // numeric in ns 0
    #[case(&[0x02, 0x00, 0x00, 0xd2, 0x08, 0x00, 0x00], "i=2258")]
    // string: encoding 0x03, ns 2, length 10, "Tank.Level"
    #[case(&[0x03, 0x02, 0x00, 0x0a, 0, 0, 0, b'T', b'a', b'n', b'k', b'.', b'L', b'e', b'v', b'e', b'l'], "ns=2;s=Tank.Level")]
    // guid: encoding 0x04, ns 1, data1 LE, data2 LE, data3 LE, data4
    #[case(&[0x04, 0x01, 0x00, 0x78, 0x56, 0x34, 0x12, 0x34, 0x12, 0x78, 0x56, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08], "ns=1;g=12345678-1234-5678-0102-030405060708")]
    // opaque: encoding 0x05, ns 1, length 3, bytes "abc"
    #[case(&[0x05, 0x01, 0x00, 0x03, 0, 0, 0, b'a', b'b', b'c'], "ns=1;b=YWJj")]
    fn node_ids(#[case] bytes: &[u8], #[case] want: &str) {
        let l = lim();
        let mut r = Reader::new(bytes, &l);
        assert_eq!(r.node_id().unwrap().to_string(), want);
        assert_eq!(r.remaining(), 0);
        // Truncated at every position.
        for cut in 0..bytes.len() {
            let mut r = Reader::new(&bytes[..cut], &l);
            assert!(
                matches!(r.node_id(), Err(DecodeError::Truncated { .. })),
                "cut {cut}"
            );
        }
    }

    #[rstest]
    #[case(&[0x06, 0x00], "node_id_encoding")] // encoding 6 does not exist
    #[case(&[0x40, 0x00], "node_id_encoding")] // expanded-only flag in a NodeId
    fn node_id_invalid(#[case] bytes: &[u8], #[case] why: &'static str) {
        let l = lim();
        assert_eq!(
            Reader::new(bytes, &l).node_id(),
            Err(DecodeError::Invalid(why))
        );
    }

    #[test]
    fn expanded_node_id_with_uri_and_server() {
        let bytes = [
            0xc1, // four-byte + namespace URI (0x80) + server index (0x40)
            0x00, // ns 0
            0x77, 0x02, // id 631
            0x03, 0, 0, 0, b'u', b'r', b'n', // namespace URI "urn"
            0x05, 0, 0, 0, // server index 5
        ];
        let l = lim();
        let e = Reader::new(&bytes, &l).expanded_node_id().unwrap();
        assert_eq!(e.to_string(), "svr=5;nsu=urn;i=631");
        assert_eq!(e.server_index, Some(5));
    }

    #[rstest]
    #[case(&[0xff, 0xff, 0xff, 0xff], Ok(None))] // length -1: null
    #[case(&[0, 0, 0, 0], Ok(Some(&b""[..])))] // length 0: empty
    #[case(&[2, 0, 0, 0, b'h', b'i'], Ok(Some(&b"hi"[..])))] // length 2, "hi"
    #[case(&[3, 0, 0, 0, b'h', b'i'], Err(DecodeError::Truncated { at: 0 }))] // 3 declared, 2 present
    #[case(&[0xfe, 0xff, 0xff, 0xff], Err(DecodeError::Invalid("negative_length")))] // -2
    #[case(&[0xff, 0xff, 0xff, 0x7f], Err(DecodeError::Limit("string_too_long")))] // 2^31-1
    #[case(&[0, 0], Err(DecodeError::Truncated { at: 0 }))] // length cut
    fn strings(#[case] bytes: &[u8], #[case] want: DResult<Option<&[u8]>>) {
        let l = lim();
        assert_eq!(Reader::new(bytes, &l).string(), want);
    }

    #[test]
    fn bytestring_limit_is_separate() {
        let l = DecodeLimits {
            max_bytestring_len: 2,
            ..lim()
        };
        let bytes = [3, 0, 0, 0, 1, 2, 3]; // length 3, three bytes
        assert_eq!(Reader::new(&bytes, &l).string(), Ok(Some(&[1u8, 2, 3][..])));
        assert_eq!(
            Reader::new(&bytes, &l).bytestring(),
            Err(DecodeError::Limit("bytestring_too_long"))
        );
    }

    #[test]
    fn array_lengths_checked_before_allocation() {
        let l = DecodeLimits {
            max_array_len: 10,
            ..lim()
        };
        // 11 elements: over the cap.
        assert_eq!(
            Reader::new(&[11, 0, 0, 0], &l).array_len(1),
            Err(DecodeError::Limit("array_too_long"))
        );
        // 10 elements of at least 4 bytes, with 8 bytes left: truncated.
        assert!(matches!(
            Reader::new(&[10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &l).array_len(4),
            Err(DecodeError::Truncated { .. })
        ));
        // -1 is the null array.
        assert_eq!(Reader::new(&[0xff; 4], &l).array_len(1), Ok(0));
        // A Variant array of 2^31-1 Int64 in 10 bytes: refused without allocating.
        let bomb = [0x88, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0];
        assert_eq!(
            Reader::new(&bomb, &lim()).variant(),
            Err(DecodeError::Limit("array_too_long"))
        );
    }

    #[rstest]
    #[case(&[0x01, 0x01], Value::Bool(true))] // Boolean true
    #[case(&[0x02, 0xff], Value::Int(-1))] // SByte -1
    #[case(&[0x03, 0xff], Value::Int(255))] // Byte 255
    #[case(&[0x04, 0xfe, 0xff], Value::Int(-2))] // Int16 -2
    #[case(&[0x05, 0xfe, 0xff], Value::Int(65534))] // UInt16
    #[case(&[0x06, 0x2a, 0, 0, 0], Value::Int(42))] // Int32 42
    #[case(&[0x07, 0xff, 0xff, 0xff, 0xff], Value::Int(4_294_967_295))] // UInt32 max
    #[case(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], Value::Int(-1))] // Int64 -1
    #[case(&[0x09, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], Value::UInt(u64::MAX))] // UInt64 max
    #[case(&[0x0a, 0x00, 0x00, 0xc0, 0x3f], Value::Float(1.5))] // Float 1.5
    #[case(&[0x0b, 0, 0, 0, 0, 0, 0, 0x04, 0x40], Value::Float(2.5))] // Double 2.5
    #[case(&[0x0c, 2, 0, 0, 0, b'o', b'k'], Value::Str("ok".into()))] // String "ok"
    // DateTime 2015-10-22T10:00:00Z = (1445508000 s + 11644473600 s) × 10^7 ticks
    #[case(&[0x0d, 0x00, 0x10, 0xd8, 0x69, 0xb0, 0x0c, 0xd1, 0x01], Value::Str("2015-10-22T10:00:00.000000Z".into()))]
    #[case(&[0x0f, 2, 0, 0, 0, 0xde, 0xad], Value::Bytes(vec![0xde, 0xad]))] // ByteString
    #[case(&[0x11, 0x00, 0x55], Value::Str("i=85".into()))] // NodeId
    #[case(&[0x13, 0, 0, 0x34, 0x80], Value::Str("BadNodeIdUnknown".into()))] // StatusCode
    #[case(&[0x14, 2, 0, 1, 0, 0, 0, b'x'], Value::Str("2:x".into()))] // QualifiedName ns 2 "x"
    #[case(&[0x15, 0x02, 1, 0, 0, 0, b't'], Value::Str("t".into()))] // LocalizedText text only
    // ExtensionObject: type i=1, encoding 0 (no body)
    #[case(&[0x16, 0x00, 0x01, 0x00], Value::Opaque("ExtensionObject"))]
    // DataValue: mask 0x01 value, Variant Int32 7
    #[case(&[0x17, 0x01, 0x06, 7, 0, 0, 0], Value::Int(7))]
    // Variant in Variant: Boolean false
    #[case(&[0x18, 0x01, 0x00], Value::Bool(false))]
    // DiagnosticInfo with no fields
    #[case(&[0x19, 0x00], Value::Opaque("DiagnosticInfo"))]
    fn variant_scalars(#[case] bytes: &[u8], #[case] want: Value) {
        let l = lim();
        let mut r = Reader::new(bytes, &l);
        let v = r.variant().unwrap();
        assert_eq!(v.values, vec![want]);
        assert!(!v.is_array);
        assert_eq!(r.remaining(), 0);
        for cut in 1..bytes.len() {
            assert!(
                Reader::new(&bytes[..cut], &l).variant().is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn variant_arrays_and_matrix() {
        let bytes = [
            0xc6, // Int32 | array (0x80) | dimensions (0x40)
            4, 0, 0, 0, // 4 elements
            1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, // 1, 2, 3, 4
            2, 0, 0, 0, // 2 dimensions
            2, 0, 0, 0, 2, 0, 0, 0, // 2 × 2
        ];
        let l = lim();
        let mut r = Reader::new(&bytes, &l);
        let v = r.variant().unwrap();
        assert_eq!(
            v.values,
            vec![Value::Int(1), Value::Int(2), Value::Int(3), Value::Int(4)]
        );
        assert!(v.is_array && v.len == 4 && r.remaining() == 0);
        // Values beyond the kept cap are decoded and dropped.
        let small = DecodeLimits {
            max_values_kept: 2,
            ..lim()
        };
        let v = Reader::new(&bytes, &small).variant().unwrap();
        assert_eq!(v.values.len(), 2);
        assert_eq!(v.len, 4);
        // Empty variant and bad type.
        assert_eq!(Reader::new(&[0x00], &l).variant().unwrap().values, vec![]);
        assert_eq!(
            Reader::new(&[0x1a], &l).variant(),
            Err(DecodeError::Invalid("variant_type"))
        );
    }

    #[test]
    fn nesting_bombs_are_bounded() {
        let l = lim();
        // 1000 nested Variants (type 24) then Boolean: stops at max_depth.
        let mut bomb = vec![0x18; 1000];
        bomb.extend_from_slice(&[0x01, 0x01]);
        assert_eq!(
            Reader::new(&bomb, &l).variant(),
            Err(DecodeError::Limit("nesting_too_deep"))
        );
        // Nesting within the limit decodes.
        let mut ok = vec![0x18; 5];
        ok.extend_from_slice(&[0x01, 0x01]);
        assert_eq!(
            Reader::new(&ok, &l).variant().unwrap().values,
            vec![Value::Bool(true)]
        );
        // 1000 nested DiagnosticInfos (mask 0x40: inner diagnostic info).
        let bomb = vec![0x40; 1000];
        assert_eq!(
            Reader::new(&bomb, &l).diagnostic_info(),
            Err(DecodeError::Limit("nesting_too_deep"))
        );
        // 1000 nested DataValues inside Variants (0x17 DataValue, mask 0x01 value).
        let bomb: Vec<u8> = std::iter::repeat_n([0x17, 0x01], 1000).flatten().collect();
        assert_eq!(
            Reader::new(&bomb, &l).variant(),
            Err(DecodeError::Limit("nesting_too_deep"))
        );
    }

    #[test]
    fn diagnostic_info_fields() {
        let bytes = [
            0x7f, // every field
            1, 0, 0, 0, // symbolic id 1
            2, 0, 0, 0, // namespace URI 2
            3, 0, 0, 0, // locale 3
            4, 0, 0, 0, // localized text 4
            1, 0, 0, 0, b'!', // additional info "!"
            0, 0, 0x34, 0x80, // inner status BadNodeIdUnknown
            0x20, 0, 0, 0x35, 0x80, // inner diagnostic info: inner status only
        ];
        let l = lim();
        let mut r = Reader::new(&bytes, &l);
        let d = r.diagnostic_info().unwrap();
        assert_eq!(d.symbolic_id, Some(1));
        assert_eq!(d.namespace_uri, Some(2));
        assert_eq!(d.locale, Some(3));
        assert_eq!(d.localized_text, Some(4));
        assert_eq!(d.additional_info, Some(&b"!"[..]));
        assert_eq!(d.inner_status, Some(0x8034_0000));
        assert_eq!(d.inner_depth, 1);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn data_value_fields() {
        let bytes = [
            0x3f, // value, status, source ts, server ts, both picoseconds
            0x01, 0x01, // Variant Boolean true
            0, 0, 0x34, 0x80, // status BadNodeIdUnknown
            1, 0, 0, 0, 0, 0, 0, 0, // source timestamp 1
            9, 0, // source picoseconds
            2, 0, 0, 0, 0, 0, 0, 0, // server timestamp 2
            9, 0, // server picoseconds
        ];
        let l = lim();
        let mut r = Reader::new(&bytes, &l);
        let dv = r.data_value().unwrap();
        assert_eq!(dv.value.unwrap().values, vec![Value::Bool(true)]);
        assert_eq!(dv.status, Some(0x8034_0000));
        assert_eq!((dv.source_ts, dv.server_ts), (Some(1), Some(2)));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn extension_object_bodies() {
        let l = lim();
        let bin = [0x01, 0x00, 0x41, 0x01, 0x01, 2, 0, 0, 0, 0xaa, 0xbb]; // i=321, binary, 2 bytes
        let eo = Reader::new(&bin, &l).extension_object().unwrap();
        assert_eq!(eo.ns0_type(), Some(321));
        assert_eq!(eo.body, ExtBody::Binary(&[0xaa, 0xbb]));
        let xml = [0x00, 0x01, 0x02, 1, 0, 0, 0, b'<']; // i=1, xml, "<"
        assert_eq!(
            Reader::new(&xml, &l).extension_object().unwrap().body,
            ExtBody::Xml(b"<")
        );
        let bad = [0x00, 0x01, 0x03]; // encoding 3 does not exist
        assert_eq!(
            Reader::new(&bad, &l).extension_object(),
            Err(DecodeError::Invalid("extension_object_encoding"))
        );
    }

    #[test]
    fn localized_text_and_qualified_name() {
        let l = lim();
        let lt = [0x03, 2, 0, 0, 0, b'e', b'n', 1, 0, 0, 0, b'x']; // locale "en", text "x"
        let t = Reader::new(&lt, &l).localized_text().unwrap();
        assert_eq!((t.locale, t.text), (Some(&b"en"[..]), Some(&b"x"[..])));
        let qn = [1, 0, 0xff, 0xff, 0xff, 0xff]; // ns 1, null name
        let q = Reader::new(&qn, &l).qualified_name().unwrap();
        assert_eq!((q.ns, q.name), (1, None));
    }

    #[test]
    fn helpers() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(hex(&[0, 0xab]), "00ab");
        assert_eq!(datetime_to_ts(0), None);
        assert_eq!(datetime_to_ts(i64::MAX), None);
        assert_eq!(datetime_to_ts(EPOCH_DIFF_TICKS), Some(Timestamp::new(0, 0)));
        assert_eq!(builtin_name(24), "Variant");
        assert_eq!(
            DecodeError::Truncated { at: 3 }.violation(),
            "truncated_body"
        );
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let l = DecodeLimits { max_depth: 8, ..DecodeLimits::default() };
            let _ = Reader::new(&bytes, &l).variant();
            let _ = Reader::new(&bytes, &l).data_value();
            let _ = Reader::new(&bytes, &l).diagnostic_info();
            let _ = Reader::new(&bytes, &l).extension_object();
            let _ = Reader::new(&bytes, &l).expanded_node_id();
            let _ = Reader::new(&bytes, &l).localized_text();
        }

        /// The lean decoders read what the full ones read: same values, status, errors and
        /// bytes consumed, at every depth cap (0 and 1 make the nesting checks fail).
        #[test]
        fn lean_decoders_match_full_ones(
            bytes in proptest::collection::vec(any::<u8>(), 0..96),
            depth in 0usize..4,
            keep in 0usize..4,
        ) {
            let l = DecodeLimits { max_depth: depth, max_values_kept: keep, ..DecodeLimits::default() };
            let mut full = Reader::new(&bytes, &l);
            let mut lean = Reader::new(&bytes, &l);
            // Compared as text: a NaN value is never equal to itself.
            prop_assert_eq!(format!("{:?}", full.variant().map(|v| v.values)), format!("{:?}", lean.variant_values()));
            prop_assert_eq!(full.pos(), lean.pos());
            let mut full = Reader::new(&bytes, &l);
            let mut lean = Reader::new(&bytes, &l);
            prop_assert_eq!(
                format!("{:?}", full.data_value().map(|d| (d.value.map(|v| v.values).unwrap_or_default(), d.status))),
                format!("{:?}", lean.data_value_values())
            );
            prop_assert_eq!(full.pos(), lean.pos());
        }

        /// The one-step NodeId forms read what the general decoders read.
        #[test]
        fn short_node_ids_match_general_decoders(bytes in proptest::collection::vec(prop_oneof![0u8..3, any::<u8>()], 0..8)) {
            let l = lim();
            let (mut a, mut b) = (Reader::new(&bytes, &l), Reader::new(&bytes, &l));
            prop_assert_eq!(a.node_id(), b.node_id_general());
            prop_assert_eq!(a.pos(), b.pos());
            let (mut a, mut b) = (Reader::new(&bytes, &l), Reader::new(&bytes, &l));
            prop_assert_eq!(a.expanded_node_id(), b.expanded_node_id_general());
            prop_assert_eq!(a.pos(), b.pos());
        }

        /// The one-step encoding id reads what the ExpandedNodeId decoder reads.
        #[test]
        fn encoding_id_matches_expanded_node_id(bytes in proptest::collection::vec(prop_oneof![0u8..3, any::<u8>()], 0..12)) {
            let l = lim();
            let mut full = Reader::new(&bytes, &l);
            let mut lean = Reader::new(&bytes, &l);
            let want = full.expanded_node_id().map(|id| {
                if id.namespace_uri.is_none() { id.node.ns0_numeric() } else { None }
            });
            prop_assert_eq!(lean.encoding_id(), want);
            prop_assert_eq!(full.pos(), lean.pos());
        }

        /// Numeric and string NodeIds and numbers are written as `Display` writes them.
        #[test]
        fn fast_text_matches_display(
            ns in prop_oneof![Just(0u16), any::<u16>()],
            n in any::<u32>(),
            text in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12)),
        ) {
            prop_assert_eq!(decimal(n), n.to_string());
            let id = NodeId { ns, id: Identifier::Numeric(n) };
            prop_assert_eq!(id.to_text(), id.to_string());
            let id = NodeId { ns, id: Identifier::String(text.as_deref()) };
            prop_assert_eq!(id.to_text(), id.to_string());
            let id = NodeId { ns, id: Identifier::Opaque(text.as_deref()) };
            prop_assert_eq!(id.to_text(), id.to_string());
        }
    }

    proptest! {
        /// DataValues of the shape the one-step path reads (a fixed-size scalar, any mask),
        /// whole or cut anywhere, at small depth and value caps: the same as the full decoder.
        #[test]
        fn common_data_values_match_full_decoder(
            mask in any::<u8>(),
            enc in prop_oneof![0u8..=12, any::<u8>()],
            payload in proptest::collection::vec(any::<u8>(), 0..40),
            cut in 0usize..48,
            depth in 0usize..3,
            keep in 0usize..2,
        ) {
            let l = DecodeLimits { max_depth: depth, max_values_kept: keep, ..DecodeLimits::default() };
            let mut bytes = vec![mask | 0x01, enc];
            bytes.extend(&payload);
            bytes.truncate(cut.max(1));
            for nested in [false, true] {
                let mut full = Reader::new(&bytes, &l);
                let mut lean = Reader::new(&bytes, &l);
                if nested {
                    full.depth = 1;
                    lean.depth = 1;
                }
                let want = full
                    .data_value()
                    .map(|d| (d.value.map(|v| v.values).unwrap_or_default(), d.status));
                // Compared as text: a NaN value is never equal to itself.
                prop_assert_eq!(format!("{:?}", lean.data_value_values()), format!("{want:?}"));
                prop_assert_eq!(full.pos(), lean.pos());
            }
        }
    }

    /// Every fixed-size type converts as the Part 6 encoding says (sign, width, range).
    #[test]
    fn fixed_size_scalars() {
        let l = lim();
        let cases: &[(&[u8], Value)] = &[
            (&[0x01, 2], Value::Bool(true)),
            (&[0x01, 0], Value::Bool(false)),
            (&[0x02, 0xff], Value::Int(-1)),
            (&[0x03, 0xff], Value::Int(255)),
            (&[0x04, 0xff, 0xff], Value::Int(-1)),
            (&[0x05, 0xff, 0xff], Value::Int(65535)),
            (&[0x06, 0xfe, 0xff, 0xff, 0xff], Value::Int(-2)),
            (&[0x07, 0xff, 0xff, 0xff, 0xff], Value::Int(4_294_967_295)),
            (
                &[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                Value::Int(-1),
            ),
            (
                &[0x09, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                Value::UInt(u64::MAX),
            ),
            (&[0x09, 7, 0, 0, 0, 0, 0, 0, 0], Value::Int(7)),
            (&[0x0a, 0, 0, 0xc0, 0x3f], Value::Float(1.5)),
            (&[0x0b, 0, 0, 0, 0, 0, 0, 0x04, 0xc0], Value::Float(-2.5)),
        ];
        for (bytes, want) in cases {
            let v = Reader::new(bytes, &l).variant().unwrap();
            assert_eq!(v.values, vec![want.clone()], "{bytes:?}");
            let mut dv = vec![0x01];
            dv.extend(*bytes);
            let (values, status) = Reader::new(&dv, &l).data_value_values().unwrap();
            assert_eq!((values, status), (vec![want.clone()], None));
        }
    }

    /// Variants whose bytes are common values (scalars, arrays of every type, nested
    /// DataValues) give the same values through both decoders.
    #[test]
    fn lean_decoders_on_valid_values() {
        let l = lim();
        let cases: &[&[u8]] = &[
            &[0x0b, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f],       // Double 1.0
            &[0x01, 1],                                  // Boolean true
            &[0x86, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0], // Int32[2]
            &[0xc6, 1, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0], // with dimensions
            &[0x17, 0x03, 0x03, 5, 0, 0, 0, 0, 0, 0x80], // DataValue(Byte 5, Bad status)
            &[0x18, 0x0c, 2, 0, 0, 0, b'h', b'i'],       // Variant(String "hi")
            &[0x00],                                     // empty
        ];
        for bytes in cases {
            let full = Reader::new(bytes, &l).variant().unwrap().values;
            assert_eq!(Reader::new(bytes, &l).variant_values().unwrap(), full);
            assert!(!full.is_empty() || bytes == &[0x00]);
        }
        let dv = [
            0x0f, 0x0a, 0, 0, 0x80, 0x3f, 0, 0, 0x80, 0x80, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5,
            6, 7, 8,
        ];
        let full = Reader::new(&dv, &l).data_value().unwrap();
        let (values, status) = Reader::new(&dv, &l).data_value_values().unwrap();
        assert_eq!(values, full.value.unwrap().values);
        assert_eq!(status, full.status);
        assert_eq!(status, Some(0x8080_0000));
    }
}
