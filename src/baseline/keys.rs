//! Names of things, shared by the learner and the detectors: object keys, address spaces,
//! request signatures, and words for plant engineers.

use crate::event::{IcsEvent, ModbusTable, ObjectRef, OpKind, Value, Values};
use std::borrow::Cow;

/// snake_case name of a Modbus table, as in the baseline file.
pub fn table_key(t: ModbusTable) -> &'static str {
    match t {
        ModbusTable::Coil => "coil",
        ModbusTable::DiscreteInput => "discrete_input",
        ModbusTable::InputRegister => "input_register",
        ModbusTable::HoldingRegister => "holding_register",
        ModbusTable::FileRecord => "file_record",
        ModbusTable::Fifo => "fifo",
    }
}

/// Plain words for a Modbus table: `holding register`.
pub fn table_words(t: ModbusTable) -> &'static str {
    match t {
        ModbusTable::Coil => "coil",
        ModbusTable::DiscreteInput => "discrete input",
        ModbusTable::InputRegister => "input register",
        ModbusTable::HoldingRegister => "holding register",
        ModbusTable::FileRecord => "file record",
        ModbusTable::Fifo => "FIFO queue",
    }
}

/// snake_case name of an operation kind, as in the baseline file.
pub fn op_key(op: OpKind) -> &'static str {
    match op {
        OpKind::Read => "read",
        OpKind::Write => "write",
        OpKind::ReadWrite => "read_write",
        OpKind::Diagnostic => "diagnostic",
        OpKind::Identify => "identify",
        OpKind::Program => "program",
        OpKind::Call => "call",
        OpKind::Browse => "browse",
        OpKind::Session => "session",
        OpKind::Subscribe => "subscribe",
        OpKind::Discovery => "discovery",
        OpKind::Other => "other",
    }
}

/// Unit part of a key: `u1`, or `u-` when the protocol has no unit id.
fn unit_part(unit: Option<u8>) -> String {
    match unit {
        Some(u) => format!("u{u}"),
        None => "u-".to_string(),
    }
}

/// Address space of a Modbus object: `u1/holding_register`. `None` for other objects.
pub fn space_key(unit: Option<u8>, obj: &ObjectRef) -> Option<String> {
    match obj {
        ObjectRef::Modbus { table, .. } => {
            Some(format!("{}/{}", unit_part(unit), table_key(*table)))
        }
        _ => None,
    }
}

/// Calls `f` with the address-space key of a Modbus (unit, table), `u1/holding_register`, as
/// [`space_key`] writes it but formatted on the stack (for per-event lookups).
pub fn with_space_key<R>(unit: Option<u8>, table: ModbusTable, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 32];
    let mut len = 0usize;
    let mut push = |bytes: &[u8]| {
        for b in bytes {
            if let Some(d) = buf.get_mut(len) {
                *d = *b;
                len += 1;
            }
        }
    };
    push(b"u");
    match unit {
        Some(u) => {
            let digits = [u / 100, (u / 10) % 10, u % 10].map(|d| b'0' + d);
            let skip = if u >= 100 {
                0
            } else if u >= 10 {
                1
            } else {
                2
            };
            push(digits.get(skip..).unwrap_or_default());
        }
        None => push(b"-"),
    }
    push(b"/");
    push(table_key(table).as_bytes());
    f(buf
        .get(..len)
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or_default())
}

/// Key of one Modbus address: `u1/holding_register/40`.
pub fn modbus_object_key(unit: Option<u8>, table: ModbusTable, addr: u32) -> String {
    format!("{}/{}/{addr}", unit_part(unit), table_key(table))
}

/// Key of a non-Modbus object: `node/ns=2;s=Tank.Level` (with `#<attr>` for attributes
/// other than Value), or `other/<name>`.
pub fn named_object_key(obj: &ObjectRef) -> Option<String> {
    match obj {
        ObjectRef::Node { node_id, attribute } => Some(match attribute {
            Some(a) if *a != 13 => format!("node/{node_id}#{a}"),
            _ => format!("node/{node_id}"),
        }),
        ObjectRef::Other { name } => Some(format!("other/{name}")),
        ObjectRef::Modbus { .. } => None,
    }
}

/// Writes the key of a non-Modbus object into `buf` (cleared first), as [`named_object_key`]
/// gives it, reusing its allocation; `false` (and `buf` empty) for a Modbus object.
pub fn write_named_object_key(obj: &ObjectRef, buf: &mut String) -> bool {
    use std::fmt::Write;
    buf.clear();
    match obj {
        ObjectRef::Node { node_id, attribute } => {
            buf.push_str("node/");
            buf.push_str(node_id);
            if let Some(a) = attribute.filter(|a| *a != 13) {
                let _ = write!(buf, "#{a}");
            }
            true
        }
        ObjectRef::Other { name } => {
            buf.push_str("other/");
            buf.push_str(name);
            true
        }
        ObjectRef::Modbus { .. } => false,
    }
}

/// The object keys an access touches, paired with the value at each (by position), at most
/// `cap` of them. Modbus ranges expand to one key per address.
pub fn access_keys<'a>(
    unit: Option<u8>,
    obj: &ObjectRef,
    values: &'a Values,
    cap: usize,
) -> Vec<(String, Option<Cow<'a, Value>>)> {
    match obj {
        ObjectRef::Modbus {
            table,
            start,
            count,
        } => {
            let n = (*count as usize).min(cap);
            (0..n)
                .map(|i| {
                    let addr = start.saturating_add(i as u32);
                    (modbus_object_key(unit, *table, addr), values.get(i))
                })
                .collect()
        }
        other => named_object_key(other)
            .map(|k| vec![(k, values.first())])
            .unwrap_or_default(),
    }
}

/// A typed object key: the same identity as the string keys of [`access_keys`], without
/// building a string (for hot lookups; [`ObjKey::to_key_string`] gives the file's key).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjKey {
    /// One Modbus address.
    Modbus {
        /// Unit id.
        unit: Option<u8>,
        /// Table.
        table: ModbusTable,
        /// Address.
        addr: u32,
    },
    /// A non-Modbus object, by its string key.
    Named(String),
}

impl ObjKey {
    /// The key as written in a baseline file (`u1/holding_register/40`, `node/…`).
    pub fn to_key_string(&self) -> String {
        match self {
            ObjKey::Modbus { unit, table, addr } => modbus_object_key(*unit, *table, *addr),
            ObjKey::Named(s) => s.clone(),
        }
    }

    /// Writes the key into `buf` (cleared first), reusing its allocation.
    pub fn write_key(&self, buf: &mut String) {
        buf.clear();
        match self {
            ObjKey::Modbus { unit, table, addr } => {
                buf.push('u');
                match unit {
                    Some(u) => push_decimal(buf, u64::from(*u)),
                    None => buf.push('-'),
                }
                buf.push('/');
                buf.push_str(table_key(*table));
                buf.push('/');
                push_decimal(buf, u64::from(*addr));
            }
            ObjKey::Named(s) => buf.push_str(s),
        }
    }
}

/// Appends `n` in decimal, as `{n}` formats it, without the formatting machinery.
pub(crate) fn push_decimal(buf: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    for d in digits.iter_mut() {
        *d = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for d in digits.iter().take(len).rev() {
        buf.push(char::from(*d));
    }
}

/// A value as a number, for profiles: booleans are 0/1; strings and bytes have none.
#[inline]
pub fn numeric(v: &Value) -> Option<f64> {
    // Only a float can be infinite or NaN: every integer converts to a finite number.
    match v {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Int(i) => Some(*i as f64),
        Value::UInt(u) => Some(*u as f64),
        Value::Float(f) => f.is_finite().then_some(*f),
        Value::Str(_) | Value::Bytes(_) | Value::Opaque(_) => None,
    }
}

/// The request signature of a polling model: function, unit and first object, e.g.
/// `fc3 u1 holding_register 0+10` or `ReadRequest node ns=2;s=Tank.Level +3`.
pub fn request_signature(ev: &IcsEvent) -> String {
    SigKey::of(ev).to_string()
}

/// A typed request signature: the identity of [`request_signature`] without building a string
/// (for per-event lookups); its `Display` is the signature string of the baseline file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SigKey {
    proto: crate::event::AppProto,
    code: u32,
    name: &'static str,
    sub: Option<u16>,
    unit: Option<u8>,
    obj: SigObj,
}

/// The first object of a [`SigKey`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum SigObj {
    None,
    Modbus {
        table: ModbusTable,
        start: u32,
        count: u32,
    },
    /// A named object's key and how many more accesses followed it.
    Named {
        key: String,
        more: usize,
    },
}

impl SigKey {
    /// The signature of an event's request.
    pub fn of(ev: &IcsEvent) -> SigKey {
        let obj = match ev.accesses.first().map(|a| &a.object) {
            Some(ObjectRef::Modbus {
                table,
                start,
                count,
            }) => SigObj::Modbus {
                table: *table,
                start: *start,
                count: *count,
            },
            Some(o) => SigObj::Named {
                key: named_object_key(o).unwrap_or_default(),
                more: ev.accesses.len().saturating_sub(1),
            },
            None => SigObj::None,
        };
        SigKey {
            proto: ev.proto,
            code: ev.function.code,
            name: ev.function.name,
            sub: ev.function.sub,
            unit: ev.unit_id,
            obj,
        }
    }
}

impl std::fmt::Display for SigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.proto, self.sub) {
            (crate::event::AppProto::Modbus, Some(s)) => write!(f, "fc{}/{s}", self.code)?,
            (crate::event::AppProto::Modbus, None) => write!(f, "fc{}", self.code)?,
            (crate::event::AppProto::Opcua, _) => f.write_str(self.name)?,
        }
        if let Some(u) = self.unit {
            write!(f, " u{u}")?;
        }
        match &self.obj {
            SigObj::None => Ok(()),
            SigObj::Modbus {
                table,
                start,
                count,
            } => write!(f, " {} {start}+{count}", table_key(*table)),
            SigObj::Named { key, more: 0 } => write!(f, " {key}"),
            SigObj::Named { key, more } => write!(f, " {key} +{more}"),
        }
    }
}

/// A number in plain form: integers without a decimal point, others with up to 3 decimals.
pub fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        let s = format!("{x:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A value in plain form, for explanations.
pub fn fmt_value(v: &Value) -> String {
    match v {
        Value::Bool(b) => if *b { "ON (1)" } else { "OFF (0)" }.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => fmt_num(*f),
        Value::Str(s) => format!("{s:?}"),
        Value::Bytes(b) => format!("{} bytes", b.len()),
        Value::Opaque(t) => format!("a {t} value"),
    }
}

/// An object in plain words: `holding registers 40–49`, `node ns=2;s=Tank.Level`.
pub fn object_words(obj: &ObjectRef) -> String {
    match obj {
        ObjectRef::Modbus {
            table,
            start,
            count,
        } => {
            let t = table_words(*table);
            let last = start.saturating_add(count.saturating_sub(1));
            if *count <= 1 {
                format!("{t} {start}")
            } else {
                format!("{t}s {start}–{last}")
            }
        }
        ObjectRef::Node { node_id, .. } => format!("node {node_id}"),
        ObjectRef::Other { name } => name.clone(),
    }
}

/// An object key back in plain words: `u1/holding_register/40` → `holding register 40`.
pub fn key_words(key: &str) -> String {
    let mut parts = key.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("node"), Some(rest), None) => format!("node {rest}"),
        (Some("node"), Some(a), Some(b)) => format!("node {a}/{b}"),
        (Some("other"), Some(rest), _) => rest.to_string(),
        (Some(_unit), Some(table), Some(addr)) => format!("{} {addr}", table.replace('_', " ")),
        _ => key.to_string(),
    }
}

/// The device in words: `10.0.0.20 unit 1` or `10.0.0.20`.
pub fn device_words(ip: std::net::IpAddr, unit: Option<u8>) -> String {
    match unit {
        Some(u) => format!("{ip} unit {u}"),
        None => ip.to_string(),
    }
}

/// A short summary of an event for alert evidence:
/// `write_single_register (fc 6) holding register 40 = 9999 → ok`.
pub fn event_summary(ev: &IcsEvent) -> String {
    let f = &ev.function;
    // One buffer, written in place (numbers, Modbus objects and outcomes without `format!`):
    // this runs for every raw alert, and a flood of them is when the sensor must keep up.
    let mut s = String::with_capacity(96);
    s.push_str(f.name);
    if ev.proto == crate::event::AppProto::Modbus {
        s.push_str(" (fc ");
        push_decimal(&mut s, u64::from(f.code));
        s.push(')');
    }
    if let Some(sub) = f.sub_name {
        s.push(' ');
        s.push_str(sub);
    }
    for a in ev.accesses.iter().take(3) {
        s.push(' ');
        push_object_words(&mut s, &a.object);
        if !a.values.is_empty() {
            s.push_str(" = ");
            for (i, v) in a.values.iter().take(4).enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                push_value(&mut s, &v);
            }
            if a.values.len() > 4 {
                s.push_str(", …");
            }
        }
    }
    if ev.accesses.len() > 3 {
        s.push_str(" …");
    }
    s.push_str(" → ");
    match &ev.outcome {
        crate::event::Outcome::Ok => s.push_str("ok"),
        crate::event::Outcome::Exception { code, name } => {
            s.push_str("exception ");
            push_decimal(&mut s, u64::from(*code));
            s.push(' ');
            s.push_str(name);
        }
        crate::event::Outcome::Bad { name, .. } => {
            s.push_str("bad status ");
            s.push_str(name);
        }
        crate::event::Outcome::Timeout => s.push_str("no response (timeout)"),
        crate::event::Outcome::NoResponse => s.push_str("no response"),
        crate::event::Outcome::Unsolicited => s.push_str("unsolicited response"),
        crate::event::Outcome::NotApplicable => s.push_str("one-way"),
    }
    s
}

/// Appends [`object_words`] of `obj` to `s`.
fn push_object_words(s: &mut String, obj: &ObjectRef) {
    match obj {
        ObjectRef::Modbus {
            table,
            start,
            count,
        } => {
            s.push_str(table_words(*table));
            if *count <= 1 {
                s.push(' ');
                push_decimal(s, u64::from(*start));
            } else {
                s.push_str("s ");
                push_decimal(s, u64::from(*start));
                s.push('–');
                push_decimal(s, u64::from(start.saturating_add(count.saturating_sub(1))));
            }
        }
        ObjectRef::Node { node_id, .. } => {
            s.push_str("node ");
            s.push_str(node_id);
        }
        ObjectRef::Other { name } => s.push_str(name),
    }
}

/// Appends [`fmt_value`] of `v` to `s`.
fn push_value(s: &mut String, v: &Value) {
    match v {
        Value::Bool(b) => s.push_str(if *b { "ON (1)" } else { "OFF (0)" }),
        Value::Int(i) => {
            if *i < 0 {
                s.push('-');
            }
            push_decimal(s, i.unsigned_abs());
        }
        Value::UInt(u) => push_decimal(s, *u),
        _ => s.push_str(&fmt_value(v)),
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

    /// `event_summary` as it was written with `format!` (the reference of the in-place one).
    fn event_summary_fmt(ev: &IcsEvent) -> String {
        use std::fmt::Write as _;
        let f = &ev.function;
        let mut s = String::with_capacity(96);
        s.push_str(f.name);
        if ev.proto == crate::event::AppProto::Modbus {
            let _ = write!(s, " (fc {})", f.code);
        }
        if let Some(sub) = f.sub_name {
            s.push(' ');
            s.push_str(sub);
        }
        for a in ev.accesses.iter().take(3) {
            s.push(' ');
            s.push_str(&object_words(&a.object));
            if !a.values.is_empty() {
                s.push_str(" = ");
                for (i, v) in a.values.iter().take(4).enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    s.push_str(&fmt_value(&v));
                }
                if a.values.len() > 4 {
                    s.push_str(", …");
                }
            }
        }
        if ev.accesses.len() > 3 {
            s.push_str(" …");
        }
        s.push_str(" → ");
        match &ev.outcome {
            crate::event::Outcome::Ok => s.push_str("ok"),
            crate::event::Outcome::Exception { code, name } => {
                let _ = write!(s, "exception {code} {name}");
            }
            crate::event::Outcome::Bad { name, .. } => {
                s.push_str("bad status ");
                s.push_str(name);
            }
            crate::event::Outcome::Timeout => s.push_str("no response (timeout)"),
            crate::event::Outcome::NoResponse => s.push_str("no response"),
            crate::event::Outcome::Unsolicited => s.push_str("unsolicited response"),
            crate::event::Outcome::NotApplicable => s.push_str("one-way"),
        }
        s
    }

    #[test]
    fn event_summary_equals_the_format_one() {
        use crate::event::{Access, AccessDir, AppProto, Outcome};
        let base = crate::detect::testkit::read_hr(1000, "10.0.0.1", "10.0.0.2", 1, 0, &[1]);
        let values = [
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(0),
            Value::Int(-1),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::UInt(0),
            Value::UInt(u64::MAX),
            Value::UInt(1234567),
            Value::Float(1.5),
            Value::Float(-0.0),
            Value::Float(f64::NAN),
            Value::Float(1e20),
            Value::Str("a \"b\"".into()),
            Value::Bytes(vec![1, 2, 3]),
            Value::Opaque("Variant"),
        ];
        let objects = [
            ObjectRef::Modbus {
                table: ModbusTable::Coil,
                start: 0,
                count: 0,
            },
            ObjectRef::Modbus {
                table: ModbusTable::HoldingRegister,
                start: 40,
                count: 1,
            },
            ObjectRef::Modbus {
                table: ModbusTable::InputRegister,
                start: u32::MAX,
                count: 10,
            },
            ObjectRef::Modbus {
                table: ModbusTable::Fifo,
                start: 7,
                count: u32::MAX,
            },
            ObjectRef::Node {
                node_id: "ns=2;s=Tank.Level".into(),
                attribute: Some(13),
            },
            ObjectRef::Other { name: "x".into() },
        ];
        let outcomes = [
            Outcome::Ok,
            Outcome::Exception {
                code: 2,
                name: "illegal data address",
            },
            Outcome::Bad {
                code: 0x8000_0000,
                name: "BadUnexpectedError",
            },
            Outcome::Timeout,
            Outcome::NoResponse,
            Outcome::Unsolicited,
            Outcome::NotApplicable,
        ];
        let mut n = 0;
        for (k, outcome) in outcomes.iter().enumerate() {
            for proto in [AppProto::Modbus, AppProto::Opcua] {
                for accesses in 0..6usize {
                    let mut ev = base.clone();
                    ev.proto = proto;
                    ev.function.code = k as u32 * 1000;
                    ev.function.sub_name = (accesses % 2 == 1).then_some("sub");
                    ev.outcome = outcome.clone();
                    ev.accesses = (0..accesses)
                        .map(|i| Access {
                            dir: AccessDir::Read,
                            object: objects[(i + k) % objects.len()].clone(),
                            values: values
                                .iter()
                                .cycle()
                                .skip(i * 3 + k)
                                .take((i * 2 + k) % 7)
                                .cloned()
                                .collect(),
                        })
                        .collect();
                    assert_eq!(event_summary(&ev), event_summary_fmt(&ev));
                    n += 1;
                }
            }
        }
        for v in &values {
            for o in &objects {
                let mut ev = base.clone();
                ev.accesses = vec![Access {
                    dir: AccessDir::Write,
                    object: o.clone(),
                    values: vec![v.clone()].into(),
                }];
                assert_eq!(event_summary(&ev), event_summary_fmt(&ev));
                n += 1;
            }
        }
        assert!(n > 100);
    }

    #[test]
    fn stack_space_key_equals_space_key() {
        let tables = [
            ModbusTable::Coil,
            ModbusTable::DiscreteInput,
            ModbusTable::InputRegister,
            ModbusTable::HoldingRegister,
            ModbusTable::FileRecord,
            ModbusTable::Fifo,
        ];
        for unit in [
            None,
            Some(0),
            Some(9),
            Some(10),
            Some(99),
            Some(100),
            Some(255),
        ] {
            for table in tables {
                let obj = ObjectRef::Modbus {
                    table,
                    start: 0,
                    count: 1,
                };
                let want = space_key(unit, &obj).unwrap();
                with_space_key(unit, table, |k| assert_eq!(k, want));
            }
        }
    }

    #[test]
    fn keys_and_words() {
        let o = ObjectRef::Modbus {
            table: ModbusTable::HoldingRegister,
            start: 40,
            count: 3,
        };
        assert_eq!(space_key(Some(1), &o).unwrap(), "u1/holding_register");
        let vals = Values::from(vec![Value::Int(1), Value::Int(2)]);
        let k = access_keys(Some(1), &o, &vals, 2);
        assert_eq!(k.len(), 2);
        assert_eq!(k[1].0, "u1/holding_register/41");
        assert_eq!(k[1].1.as_deref(), Some(&Value::Int(2)));
        assert_eq!(object_words(&o), "holding registers 40–42");
        assert_eq!(key_words("u1/holding_register/40"), "holding register 40");
        assert_eq!(key_words("node/ns=2;s=A/B"), "node ns=2;s=A/B");
        let n = ObjectRef::Node {
            node_id: "ns=2;s=T".into(),
            attribute: Some(13),
        };
        assert_eq!(named_object_key(&n).unwrap(), "node/ns=2;s=T");
        let mut buf = String::new();
        for unit in [None, Some(0), Some(7), Some(10), Some(255)] {
            for addr in [0, 9, 10, 99, 65_535, 1_000_000, u32::MAX] {
                let key = ObjKey::Modbus {
                    unit,
                    table: ModbusTable::InputRegister,
                    addr,
                };
                key.write_key(&mut buf);
                assert_eq!(buf, key.to_key_string());
                assert_eq!(buf, format!("{}/input_register/{addr}", unit_part(unit)));
            }
        }
        let mut buf = String::from("stale");
        for obj in [
            n.clone(),
            ObjectRef::Node {
                node_id: "ns=2;s=T".into(),
                attribute: Some(4),
            },
            ObjectRef::Node {
                node_id: "i=2258".into(),
                attribute: None,
            },
            ObjectRef::Other {
                name: "file x".into(),
            },
        ] {
            assert!(write_named_object_key(&obj, &mut buf));
            assert_eq!(Some(buf.clone()), named_object_key(&obj));
        }
        assert!(!write_named_object_key(&o, &mut buf));
        assert!(buf.is_empty());
        assert_eq!(fmt_num(470.0), "470");
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(numeric(&Value::Float(f64::NAN)), None);
        assert_eq!(numeric(&Value::Bool(true)), Some(1.0));
    }
}
