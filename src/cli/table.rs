//! The readable table form of `otwatch inspect --format table`.

use crate::event::{AccessDir, IcsEvent, ObjectRef, Outcome, Value};
use std::fmt::Write;

/// Most values shown per row; the rest is summarised as `…(+N)`.
const MAX_VALUES: usize = 6;

/// Formats events as fixed-width rows.
#[derive(Debug, Default)]
pub(crate) struct Table {
    buf: String,
}

impl Table {
    pub(crate) fn new() -> Self {
        Table::default()
    }

    /// The header line.
    pub(crate) fn header() -> String {
        format!(
            "{:<27} {:<6} {:<44} {:<5} {:<10} {:<28} {:<34} {}",
            "TIME", "PROTO", "CLIENT -> SERVER", "UNIT", "OP", "FUNCTION", "OBJECTS", "RESULT"
        )
    }

    /// One event as one line.
    pub(crate) fn row(&mut self, e: &IcsEvent) -> &str {
        self.buf.clear();
        let peers = format!(
            "{}:{} -> {}:{}",
            e.client.ip, e.client.port, e.server.ip, e.server.port
        );
        let unit = e
            .unit_id
            .map(|u| u.to_string())
            .unwrap_or_else(|| "-".into());
        let op = serde_json::to_value(e.op)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut func = e.function.name.to_string();
        if let Some(s) = e.function.sub_name {
            let _ = write!(func, "/{s}");
        }
        let mut objects = String::new();
        for a in &e.accesses {
            if !objects.is_empty() {
                objects.push(' ');
            }
            let arrow = match a.dir {
                AccessDir::Read => "r:",
                AccessDir::Write => "w:",
            };
            objects.push_str(arrow);
            match &a.object {
                ObjectRef::Modbus {
                    table,
                    start,
                    count,
                } => {
                    let t = match table {
                        crate::event::ModbusTable::Coil => "co",
                        crate::event::ModbusTable::DiscreteInput => "di",
                        crate::event::ModbusTable::InputRegister => "ir",
                        crate::event::ModbusTable::HoldingRegister => "hr",
                        crate::event::ModbusTable::FileRecord => "file",
                        crate::event::ModbusTable::Fifo => "fifo",
                    };
                    let _ = write!(objects, "{t}[{start}..+{count}]");
                }
                ObjectRef::Node { node_id, attribute } => {
                    objects.push_str(node_id);
                    if let Some(at) = attribute {
                        let _ = write!(objects, "#{at}");
                    }
                }
                ObjectRef::Other { name } => objects.push_str(name),
            }
            if !a.values.is_empty() {
                objects.push('=');
                for (i, v) in a.values.iter().take(MAX_VALUES).enumerate() {
                    if i > 0 {
                        objects.push(',');
                    }
                    match &*v {
                        Value::Bool(b) => objects.push(if *b { '1' } else { '0' }),
                        Value::Int(n) => {
                            let _ = write!(objects, "{n}");
                        }
                        Value::UInt(n) => {
                            let _ = write!(objects, "{n}");
                        }
                        Value::Float(x) => {
                            let _ = write!(objects, "{x}");
                        }
                        Value::Str(s) => {
                            let _ = write!(objects, "{s:?}");
                        }
                        Value::Bytes(b) => {
                            let _ = write!(objects, "<{} bytes>", b.len());
                        }
                        Value::Opaque(t) => objects.push_str(t),
                    }
                }
                if a.values.len() > MAX_VALUES {
                    let _ = write!(objects, "…(+{})", a.values.len() - MAX_VALUES);
                }
            }
        }
        if objects.is_empty() {
            objects.push('-');
        }
        let mut result = match &e.outcome {
            Outcome::Ok => "ok".to_string(),
            Outcome::Exception { name, .. } => format!("exception {name}"),
            Outcome::Bad { name, .. } => (*name).to_string(),
            Outcome::Timeout => "timeout".into(),
            Outcome::NoResponse => "no response".into(),
            Outcome::Unsolicited => "unsolicited".into(),
            Outcome::NotApplicable => "-".into(),
        };
        if let Some(l) = e.latency_us {
            let _ = write!(result, " {:.1}ms", l as f64 / 1000.0);
        }
        if !e.violations.is_empty() {
            let _ = write!(result, " !{}", e.violations.join(","));
        }
        let _ = write!(
            self.buf,
            "{:<27} {:<6} {:<44} {:<5} {:<10} {:<28} {:<34} {}",
            e.ts.to_string(),
            e.proto.as_str(),
            peers,
            unit,
            op,
            func,
            objects,
            result
        );
        &self.buf
    }
}
