//! Synthetic events for detector tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::event::*;
use crate::time::Timestamp;
use std::net::IpAddr;
use std::sync::Arc;

/// A master (HMI).
pub(crate) const MASTER: &str = "10.0.0.1";
/// A PLC.
pub(crate) const PLC: &str = "10.0.1.1";
/// An attacker.
pub(crate) const ROGUE: &str = "10.0.0.66";
/// Capture start of synthetic traffic.
pub(crate) const T0: i64 = 1_700_000_000;

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(crate) fn ts_ms(ms: i64) -> Timestamp {
    Timestamp::from_micros(T0 * 1_000_000 + ms * 1000)
}

fn port_of(client: &str) -> u16 {
    40000 + u16::from(ip(client).to_string().bytes().last().unwrap_or(b'0'))
}

/// A Modbus event with everything spelled out.
#[allow(clippy::too_many_arguments)]
pub(crate) fn modbus(
    ms: i64,
    client: &str,
    server: &str,
    unit: u8,
    fc: u32,
    name: &'static str,
    op: OpKind,
    accesses: Vec<Access>,
    outcome: Outcome,
) -> IcsEvent {
    IcsEvent {
        ts: ts_ms(ms),
        proto: AppProto::Modbus,
        flow_id: 1,
        client: Endpoint {
            ip: ip(client),
            port: port_of(client),
            mac: None,
        },
        server: Endpoint {
            ip: ip(server),
            port: 502,
            mac: None,
        },
        vlan: None,
        unit_id: Some(unit),
        session: None,
        op,
        function: Function {
            code: fc,
            name,
            category: "public",
            sub: None,
            sub_name: None,
        },
        accesses,
        outcome,
        latency_us: Some(1500),
        violations: vec![],
        facts: vec![],
        details: vec![],
        evidence: Evidence {
            file: Arc::from("synthetic.pcap"),
            packet: u64::try_from(ms).unwrap_or(0) + 1,
            response_packet: Some(u64::try_from(ms).unwrap_or(0) + 2),
        },
    }
}

fn acc(dir: AccessDir, table: ModbusTable, start: u32, count: u32, values: Vec<Value>) -> Access {
    Access {
        dir,
        object: ObjectRef::Modbus {
            table,
            start,
            count,
        },
        values: as_parsed(table, values),
    }
}

/// `values` in the form the Modbus parser gives them: registers and bits kept compact
/// (when every value is one), so that the detectors' tests take the paths real reads take.
pub(crate) fn as_parsed(table: ModbusTable, values: Vec<Value>) -> Values {
    let words: Option<Vec<u16>> = values
        .iter()
        .map(|v| match (table, v) {
            (ModbusTable::HoldingRegister | ModbusTable::InputRegister, Value::Int(x)) => {
                u16::try_from(*x).ok()
            }
            (ModbusTable::Coil | ModbusTable::DiscreteInput, Value::Bool(b)) => Some(u16::from(*b)),
            _ => None,
        })
        .collect();
    let mut out = Values::from(values);
    match (words, table) {
        (Some(w), ModbusTable::Coil | ModbusTable::DiscreteInput) => {
            let mut packed = vec![0u8; w.len().div_ceil(8)];
            for (i, b) in w.iter().enumerate() {
                packed[i / 8] |= (*b as u8) << (i % 8);
            }
            out.set_bits(&packed, w.len());
        }
        (Some(w), _) => {
            let bytes: Vec<u8> = w.iter().flat_map(|x| x.to_be_bytes()).collect();
            out.set_registers(&bytes, w.len());
        }
        (None, _) => {}
    }
    out
}

pub(crate) fn ints(v: &[i64]) -> Vec<Value> {
    v.iter().map(|x| Value::Int(*x)).collect()
}

/// FC 3 read of holding registers `start..start+values.len()`.
pub(crate) fn read_hr(ms: i64, c: &str, s: &str, unit: u8, start: u32, values: &[i64]) -> IcsEvent {
    let n = values.len() as u32;
    modbus(
        ms,
        c,
        s,
        unit,
        3,
        "read_holding_registers",
        OpKind::Read,
        vec![acc(
            AccessDir::Read,
            ModbusTable::HoldingRegister,
            start,
            n,
            ints(values),
        )],
        Outcome::Ok,
    )
}

/// FC 4 read of input registers.
pub(crate) fn read_ir(ms: i64, c: &str, s: &str, unit: u8, start: u32, values: &[i64]) -> IcsEvent {
    let n = values.len() as u32;
    modbus(
        ms,
        c,
        s,
        unit,
        4,
        "read_input_registers",
        OpKind::Read,
        vec![acc(
            AccessDir::Read,
            ModbusTable::InputRegister,
            start,
            n,
            ints(values),
        )],
        Outcome::Ok,
    )
}

/// FC 1 read of coils.
pub(crate) fn read_coils(
    ms: i64,
    c: &str,
    s: &str,
    unit: u8,
    start: u32,
    bits: &[bool],
) -> IcsEvent {
    modbus(
        ms,
        c,
        s,
        unit,
        1,
        "read_coils",
        OpKind::Read,
        vec![acc(
            AccessDir::Read,
            ModbusTable::Coil,
            start,
            bits.len() as u32,
            bits.iter().map(|b| Value::Bool(*b)).collect(),
        )],
        Outcome::Ok,
    )
}

/// FC 6 write of one holding register.
pub(crate) fn write_hr(ms: i64, c: &str, s: &str, unit: u8, addr: u32, value: i64) -> IcsEvent {
    modbus(
        ms,
        c,
        s,
        unit,
        6,
        "write_single_register",
        OpKind::Write,
        vec![acc(
            AccessDir::Write,
            ModbusTable::HoldingRegister,
            addr,
            1,
            ints(&[value]),
        )],
        Outcome::Ok,
    )
}

/// FC 5 write of one coil.
pub(crate) fn write_coil(ms: i64, c: &str, s: &str, unit: u8, addr: u32, on: bool) -> IcsEvent {
    modbus(
        ms,
        c,
        s,
        unit,
        5,
        "write_single_coil",
        OpKind::Write,
        vec![acc(
            AccessDir::Write,
            ModbusTable::Coil,
            addr,
            1,
            vec![Value::Bool(on)],
        )],
        Outcome::Ok,
    )
}

/// An exception outcome.
pub(crate) fn exception(code: u8) -> Outcome {
    let name = match code {
        1 => "illegal_function",
        2 => "illegal_data_address",
        _ => "other",
    };
    Outcome::Exception { code, name }
}
