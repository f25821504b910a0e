//! Turning Modbus requests and responses into protocol-neutral [`IcsEvent`]s.
//!
//! A request builds the event (function, operation kind, accesses with written values) and a
//! [`ReqShape`], the few request fields its response is checked against. The response then
//! fills in the outcome, read values, facts and details, and adds the violations that only
//! the pair reveals.

use super::parser::{bit_bytes, object_text, read_file_subrequests, read_file_subresponses};
use super::parser::{write_file_records, FileRecord};
use super::types::{
    device_id_code_name, device_object_name, diagnostic_label, exception_name, function_category,
    function_name, mei_label, read_table, umas_effect, umas_label, Mbap, Pdu, Request, Response,
    UmasEffect, Violations, FC_UMAS, MEI_READ_DEVICE_ID,
};
use crate::event::{
    Access, AccessDir, AppProto, AssetFact, Endpoint, Evidence, Function, IcsEvent, ModbusTable,
    ObjectRef, OpKind, Outcome, Side, Value, Values,
};
use crate::flow::FlowMeta;
use crate::proto::recycle;
use crate::time::Timestamp;
use std::sync::Arc;

/// Most coil values kept per access (the FC 1 maximum).
pub(crate) const MAX_BIT_VALUES: usize = 2000;
/// Most register values kept per access (the FC 3 maximum).
pub(crate) const MAX_REGISTER_VALUES: usize = 125;
/// Most raw bytes kept in an event's details.
pub(crate) const MAX_RAW_DETAIL: usize = 256;

/// The flow and packet an event is built in.
#[derive(Clone, Debug)]
pub(crate) struct EventCx<'a> {
    pub(crate) ts: Timestamp,
    pub(crate) file: &'a Arc<str>,
    pub(crate) packet: u64,
    /// The flow (id, endpoints as the flow table has them, VLAN).
    pub(crate) meta: &'a FlowMeta,
    /// Whether the Modbus client is the flow table's server side.
    pub(crate) swapped: bool,
}

impl EventCx<'_> {
    /// The Modbus client and server.
    #[inline]
    fn sides(&self) -> (Endpoint, Endpoint) {
        if self.swapped {
            (self.meta.server, self.meta.client)
        } else {
            (self.meta.client, self.meta.server)
        }
    }
}

/// The request fields a response is checked against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum ReqShape {
    /// FC 1–4.
    Read { fc: u8, quantity: u16 },
    /// FC 5, 6.
    WriteSingle { address: u16, value: u16 },
    /// FC 15, 16.
    WriteMultiple { start: u16, quantity: u16 },
    /// FC 23 (read quantity).
    ReadWrite { quantity: u16 },
    /// FC 8.
    Diagnostics { sub: u16 },
    /// FC 22.
    MaskWrite {
        address: u16,
        and_mask: u16,
        or_mask: u16,
    },
    /// FC 20.
    ReadFile,
    /// FC 21.
    WriteFile { byte_count: u8 },
    /// FC 24.
    ReadFifo,
    /// Anything else.
    #[default]
    Other,
}

/// A function descriptor for code `fc` with an optional sub-function.
pub(crate) fn function(fc: u8, sub: Option<u16>, sub_name: Option<&'static str>) -> Function {
    Function {
        code: u32::from(fc),
        name: function_name(fc),
        category: function_category(fc).as_str(),
        sub,
        sub_name,
    }
}

/// The part of a request's event known when the request is seen, kept in its slot while
/// the request waits for its response; the event is built from it once, in the output.
#[derive(Debug)]
pub(crate) struct ReqEvent {
    /// Capture time of the request.
    pub(crate) ts: Timestamp,
    /// Packet number of the request.
    pub(crate) packet: u64,
    /// Capture file of the request (`None` only in a free slot).
    pub(crate) file: Option<Arc<str>>,
    /// Unit id.
    pub(crate) unit: Option<u8>,
    /// Operation kind.
    pub(crate) op: OpKind,
    /// Function.
    pub(crate) function: Function,
    /// Accesses (with written values); unused while `read` is set.
    pub(crate) accesses: Vec<Access>,
    /// The one access of a read (FC 1–4), built only when the event is: set instead of
    /// `accesses`.
    pub(crate) read: Option<ReadAccess>,
    /// Details of the request.
    pub(crate) details: Vec<(&'static str, Value)>,
}

/// The object of a read request (FC 1–4), kept in its slot until its event is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReadAccess {
    /// Table read.
    pub(crate) table: ModbusTable,
    /// First address.
    pub(crate) start: u16,
    /// Quantity asked for.
    pub(crate) quantity: u16,
}

impl Default for ReqEvent {
    fn default() -> Self {
        ReqEvent {
            ts: Timestamp::default(),
            packet: 0,
            file: None,
            unit: None,
            op: OpKind::Other,
            function: function(0, None, None),
            accesses: Vec::new(),
            read: None,
            details: Vec::new(),
        }
    }
}

impl ReqEvent {
    /// The event of this request in flow `cx` (whose packet and time are not used), with
    /// `outcome` and no response yet; its vectors are moved out.
    #[inline]
    pub(crate) fn take_event(&mut self, cx: &EventCx<'_>, outcome: Outcome) -> IcsEvent {
        let accesses = match self.read.take() {
            Some(r) => recycle::read_list(AccessDir::Read, r.object()),
            None => std::mem::take(&mut self.accesses),
        };
        self.event(cx, outcome, accesses, false)
    }

    #[inline(always)]
    fn event(
        &mut self,
        cx: &EventCx<'_>,
        outcome: Outcome,
        accesses: Vec<Access>,
        answered: bool,
    ) -> IcsEvent {
        let (client, server) = cx.sides();
        IcsEvent {
            ts: self.ts,
            proto: AppProto::Modbus,
            flow_id: cx.meta.id,
            client,
            server,
            vlan: cx.meta.vlan,
            unit_id: self.unit,
            session: None,
            op: self.op,
            function: self.function.clone(),
            accesses,
            outcome,
            latency_us: answered.then(|| super::latency_us(cx.ts, self.ts)),
            violations: Vec::new(),
            facts: Vec::new(),
            details: std::mem::take(&mut self.details),
            evidence: Evidence {
                file: self.file.take().unwrap_or_else(|| Arc::clone(cx.file)),
                packet: self.packet,
                response_packet: answered.then_some(cx.packet),
            },
        }
    }
}

impl ReadAccess {
    /// The object read.
    #[inline]
    fn object(self) -> ObjectRef {
        modbus(self.table, u32::from(self.start), u32::from(self.quantity))
    }
}

/// The descriptors of the read functions (FC 1–4), as [`function`] gives them: a read
/// takes a copy instead of comparing the one its slot holds (a flow alternating polls of
/// two functions looked the names up on every other request).
static READ_FUNCTIONS: [Function; 4] = [
    read_fn(1, "read_coils"),
    read_fn(2, "read_discrete_inputs"),
    read_fn(3, "read_holding_registers"),
    read_fn(4, "read_input_registers"),
];

const fn read_fn(code: u32, name: &'static str) -> Function {
    Function {
        code,
        name,
        category: "public",
        sub: None,
        sub_name: None,
    }
}

/// Makes `f` the descriptor of code `fc` without a sub-function (as [`function`]), looking
/// the names up only when it describes another code.
#[inline]
fn set_function(f: &mut Function, fc: u8) {
    if f.code != u32::from(fc) || f.sub.is_some() || f.sub_name.is_some() {
        *f = function(fc, None, None);
    }
}

/// An event with no accesses, outcome `NoResponse`, evidence at this packet.
pub(crate) fn base_event(cx: &EventCx<'_>, unit: Option<u8>, op: OpKind, f: Function) -> IcsEvent {
    let (client, server) = cx.sides();
    IcsEvent {
        ts: cx.ts,
        proto: AppProto::Modbus,
        flow_id: cx.meta.id,
        client,
        server,
        vlan: cx.meta.vlan,
        unit_id: unit,
        session: None,
        op,
        function: f,
        accesses: Vec::new(),
        outcome: Outcome::NoResponse,
        latency_us: None,
        violations: Vec::new(),
        facts: Vec::new(),
        details: Vec::new(),
        evidence: Evidence {
            file: Arc::clone(cx.file),
            packet: cx.packet,
            response_packet: None,
        },
    }
}

fn modbus(table: ModbusTable, start: u32, count: u32) -> ObjectRef {
    ObjectRef::Modbus {
        table,
        start,
        count,
    }
}

/// Coils packed LSB-first, at most `n` and at most [`MAX_BIT_VALUES`].
pub(crate) fn bits(data: &[u8], n: usize) -> Values {
    let mut out = recycle::compact_values();
    fill_bits(&mut out, data, n);
    out
}

/// [`bits`] into `out`, whatever it held (its room kept).
#[inline]
fn fill_bits(out: &mut Values, data: &[u8], n: usize) {
    out.set_bits(data, n.min(MAX_BIT_VALUES));
}

/// The values of a read's data into `out`, whatever it held (its room kept): `bits` coils
/// or inputs ([`fill_bits`]), or registers when `None` ([`fill_registers`]).
#[inline(always)]
pub(crate) fn read_values(out: &mut Values, data: &[u8], bits: Option<u16>) {
    match bits {
        Some(n) => fill_bits(out, data, usize::from(n)),
        None => fill_registers(out, data),
    }
}

/// Big-endian registers, at most [`MAX_REGISTER_VALUES`].
pub(crate) fn registers(data: &[u8]) -> Values {
    let mut out = recycle::compact_values();
    fill_registers(&mut out, data);
    out
}

/// [`registers`] into `out`, whatever it held (its room kept).
#[inline(always)]
fn fill_registers(out: &mut Values, data: &[u8]) {
    out.set_registers(data, MAX_REGISTER_VALUES);
}

fn raw(data: &[u8]) -> Value {
    Value::Bytes(data.get(..MAX_RAW_DETAIL).unwrap_or(data).to_vec())
}

fn int(v: impl Into<i64>) -> Value {
    Value::Int(v.into())
}

fn file_ref(r: &FileRecord<'_>) -> u32 {
    u32::from(r.file) << 16 | u32::from(r.record)
}

/// Writes the event part of a request into `ev` (every field) and returns the shape its
/// response is checked against.
pub(crate) fn request_event(
    ev: &mut ReqEvent,
    cx: &EventCx<'_>,
    h: &Mbap,
    req: &Pdu<Request<'_>>,
) -> ReqShape {
    let fc = req.function;
    let unit = Some(h.unit_id);
    if let (Request::Read { start, quantity }, Some(table)) = (&req.body, read_table(fc)) {
        // The common read: written straight into the slot, as the general path below would,
        // but its access only when its event is built (with a spare list's room for the
        // response's values).
        write_read(ev, cx, unit, fc, table, *start, *quantity);
        return ReqShape::Read {
            fc,
            quantity: *quantity,
        };
    }
    request_event_general(ev, cx, h, req)
}

/// Writes a read request (FC 1–4, table `table`) into `ev`, as [`request_event`] does.
#[inline(always)]
pub(crate) fn write_read(
    ev: &mut ReqEvent,
    cx: &EventCx<'_>,
    unit: Option<u8>,
    fc: u8,
    table: ModbusTable,
    start: u16,
    quantity: u16,
) {
    let read = ReadAccess {
        table,
        start,
        quantity,
    };
    write_read_at(ev, cx.ts, cx.packet, Arc::clone(cx.file), unit, fc, read);
}

/// [`write_read`] of a request seen at `ts` in packet `packet` of `file`.
#[inline(always)]
fn write_read_at(
    ev: &mut ReqEvent,
    ts: Timestamp,
    packet: u64,
    file: Arc<str>,
    unit: Option<u8>,
    fc: u8,
    read: ReadAccess,
) {
    ev.ts = ts;
    ev.packet = packet;
    ev.file = Some(file);
    ev.unit = unit;
    ev.op = OpKind::Read;
    match READ_FUNCTIONS.get(usize::from(fc).wrapping_sub(1)) {
        Some(f) => ev.function = f.clone(),
        None => set_function(&mut ev.function, fc),
    }
    if ev.accesses.capacity() != 0 {
        // Not moved out (a slot dropped without an event): not used while `read` is set.
        ev.accesses = Vec::new();
    }
    ev.read = Some(read);
    if !ev.details.is_empty() {
        ev.details.clear();
    }
}

/// A read request (FC 1–4) taken by the read fast path while nothing else is pending:
/// everything its event needs (48 bytes, where a general slot takes 200), held in the parser
/// itself until its response, a timeout or the end of the flow. It passed every check of the
/// fast path (no violation, quantity within limits, a read function), so its response is
/// checked against its fields alone.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FastRead {
    /// Packet number of the request.
    pub(crate) packet: u64,
    /// Capture time of the request: seconds.
    pub(crate) secs: i64,
    /// Capture time of the request: nanoseconds.
    pub(crate) nanos: u32,
    /// Transaction id.
    pub(crate) tid: u16,
    /// First address read.
    pub(crate) start: u16,
    /// Quantity asked for.
    pub(crate) quantity: u16,
    /// Unit id.
    pub(crate) unit: u8,
    /// Function code (1–4).
    pub(crate) fc: u8,
    /// Table read (the function's).
    pub(crate) table: ModbusTable,
}

impl FastRead {
    /// How [`read_values`] reads this read's data: the quantity of coils or inputs, `None`
    /// for registers.
    #[inline(always)]
    pub(crate) fn bits(&self) -> Option<u16> {
        (self.fc <= 2).then_some(self.quantity)
    }

    /// Capture time of the request.
    #[inline(always)]
    pub(crate) fn ts(&self) -> Timestamp {
        Timestamp {
            secs: self.secs,
            nanos: self.nanos,
        }
    }

    /// The byte count of its response's data.
    #[inline(always)]
    pub(crate) fn byte_count(&self) -> usize {
        if self.fc <= 2 {
            bit_bytes(self.quantity)
        } else {
            usize::from(self.quantity) * 2
        }
    }

    /// The object read.
    #[inline(always)]
    fn read(&self) -> ReadAccess {
        ReadAccess {
            table: self.table,
            start: self.start,
            quantity: self.quantity,
        }
    }

    /// Writes this request into a general slot's event part, as [`request_event`] does when
    /// the request is seen (its time, packet and file its own).
    /// `file` is the request's capture file (the parser's `fast_file`).
    pub(crate) fn write_into(self, ev: &mut ReqEvent, file: &Arc<str>) {
        let (ts, read) = (self.ts(), self.read());
        let file = Arc::clone(file);
        write_read_at(ev, ts, self.packet, file, Some(self.unit), self.fc, read);
    }

    /// The event of this request left without a response (`outcome`), as
    /// [`ReqEvent::take_event`] gives it from a slot [`FastRead::write_into`] filled.
    /// `file` is the request's capture file.
    pub(crate) fn into_event(
        self,
        cx: &EventCx<'_>,
        outcome: Outcome,
        file: &Arc<str>,
    ) -> IcsEvent {
        let accesses = recycle::read_list(AccessDir::Read, self.read().object());
        self.event(cx, outcome, accesses, file)
    }

    /// The event of this request answered `Ok` with read data of the byte count its quantity
    /// asks for, written over `ev` (a stale event of any shape, see [`crate::proto::slots`])
    /// but for the values, which the caller decodes into the one access's list
    /// ([`read_values`] with [`FastRead::bits`]): [`FastRead::write_into`],
    /// [`ReqEvent::take_event`] then [`apply_response`] in one go, with its latency and
    /// response packet (`cx`'s). Every other field is set; the vectors keep their room (a
    /// stale read's access is rewritten in place, its value list left for the values), and
    /// the evidence's file is left as it is when it is already the request's capture file
    /// `file` (no reference count touched).
    #[inline(always)]
    pub(crate) fn read_into(&self, ev: &mut IcsEvent, cx: &EventCx<'_>, file: &Arc<str>) {
        let (client, server) = cx.sides();
        let latency_us = super::latency_us(cx.ts, self.ts());
        self.fill(
            ev,
            cx.meta.id,
            client,
            server,
            cx.meta.vlan,
            latency_us,
            cx.packet,
            file,
        );
    }

    /// What this read's event takes from its response, at `cx`, and from its flow.
    #[inline(always)]
    fn answer(&self, cx: &EventCx<'_>) -> Answer {
        let (client, server) = cx.sides();
        Answer {
            flow_id: cx.meta.id,
            client,
            server,
            vlan: cx.meta.vlan,
            latency_us: super::latency_us(cx.ts, self.ts()),
            response_packet: cx.packet,
        }
    }

    /// This read and its answer as a shard worker posts them to the thread that consumes
    /// its events ([`PostedRead::write_into`] then writes the event [`FastRead::read_into`]
    /// would have written).
    #[inline(always)]
    pub(crate) fn posted(&self, cx: &EventCx<'_>) -> PostedRead {
        PostedRead {
            read: *self,
            answer: self.answer(cx),
        }
    }

    /// [`FastRead::read_into`] with the answer's fields given (as values: the one-thread
    /// path writes them straight from the flow, with no [`Answer`] in between).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &self,
        ev: &mut IcsEvent,
        flow_id: u64,
        client: Endpoint,
        server: Endpoint,
        vlan: Option<u16>,
        latency_us: u64,
        response_packet: u64,
        file: &Arc<str>,
    ) {
        let ts = self.ts();
        ev.ts = ts;
        ev.proto = AppProto::Modbus;
        ev.flow_id = flow_id;
        ev.client = client;
        ev.server = server;
        ev.vlan = vlan;
        ev.unit_id = Some(self.unit);
        if ev.session.is_some() {
            recycle::drop_session(ev);
        }
        ev.op = OpKind::Read;
        match READ_FUNCTIONS.get(usize::from(self.fc).wrapping_sub(1)) {
            Some(f) => ev.function = f.clone(),
            None => ev.function = function(self.fc, None, None),
        }
        let read = self.read();
        match ev.accesses.as_mut_slice() {
            [a] => {
                a.dir = AccessDir::Read;
                match &mut a.object {
                    // A stale read's object (most slots): its fields written over, with no
                    // call to drop the old object as an assignment of a new one makes.
                    ObjectRef::Modbus {
                        table,
                        start,
                        count,
                    } => {
                        *table = read.table;
                        *start = u32::from(read.start);
                        *count = u32::from(read.quantity);
                    }
                    o => *o = read.object(),
                }
            }
            _ => recycle::keep_first(&mut ev.accesses, AccessDir::Read, read.object()),
        }
        ev.outcome = Outcome::Ok;
        ev.latency_us = Some(latency_us);
        ev.violations.clear();
        if !ev.facts.is_empty() {
            ev.facts.clear();
        }
        if !ev.details.is_empty() {
            ev.details.clear();
        }
        if !Arc::ptr_eq(file, &ev.evidence.file) {
            ev.evidence.file = Arc::clone(file);
        }
        ev.evidence.packet = self.packet;
        ev.evidence.response_packet = Some(response_packet);
    }

    /// The event of this request left without a response (`outcome`).
    #[inline(always)]
    fn event(
        &self,
        cx: &EventCx<'_>,
        outcome: Outcome,
        accesses: Vec<Access>,
        file: &Arc<str>,
    ) -> IcsEvent {
        let (client, server) = cx.sides();
        let ts = self.ts();
        let function = match READ_FUNCTIONS.get(usize::from(self.fc).wrapping_sub(1)) {
            Some(f) => f.clone(),
            None => function(self.fc, None, None),
        };
        IcsEvent {
            ts,
            proto: AppProto::Modbus,
            flow_id: cx.meta.id,
            client,
            server,
            vlan: cx.meta.vlan,
            unit_id: Some(self.unit),
            session: None,
            op: OpKind::Read,
            function,
            accesses,
            outcome,
            latency_us: None,
            violations: Vec::new(),
            facts: Vec::new(),
            details: Vec::new(),
            evidence: Evidence {
                file: Arc::clone(file),
                packet: self.packet,
                response_packet: None,
            },
        }
    }
}

/// [`request_event`] for any request (the reference for its fast path).
fn request_event_general(
    ev: &mut ReqEvent,
    cx: &EventCx<'_>,
    h: &Mbap,
    req: &Pdu<Request<'_>>,
) -> ReqShape {
    let fc = req.function;
    let unit = Some(h.unit_id);
    let mut shape = ReqShape::Other;
    let mut accesses = recycle::accesses();
    let mut details: Vec<(&'static str, Value)> = Vec::new();
    let mut sub = None;
    let mut sub_name = None;
    let op = match (&req.body, fc) {
        (_, f) if f & 0x80 != 0 => OpKind::Other,
        (Request::Read { start, quantity }, 1..=4) => {
            if let Some(table) = read_table(fc) {
                accesses.push(Access {
                    dir: AccessDir::Read,
                    object: modbus(table, u32::from(*start), u32::from(*quantity)),
                    values: Values::new(),
                });
            }
            shape = ReqShape::Read {
                fc,
                quantity: *quantity,
            };
            OpKind::Read
        }
        (Request::WriteSingle { address, value }, 5 | 6) => {
            let (table, v) = if fc == 5 {
                (ModbusTable::Coil, Value::Bool(*value == 0xFF00))
            } else {
                (ModbusTable::HoldingRegister, int(*value))
            };
            accesses.push(Access {
                dir: AccessDir::Write,
                object: modbus(table, u32::from(*address), 1),
                values: vec![v].into(),
            });
            shape = ReqShape::WriteSingle {
                address: *address,
                value: *value,
            };
            OpKind::Write
        }
        (
            Request::WriteMultiple {
                start,
                quantity,
                data,
                ..
            },
            15 | 16,
        ) => {
            let (table, values) = if fc == 15 {
                (ModbusTable::Coil, bits(data, usize::from(*quantity)))
            } else {
                (ModbusTable::HoldingRegister, registers(data))
            };
            accesses.push(Access {
                dir: AccessDir::Write,
                object: modbus(table, u32::from(*start), u32::from(*quantity)),
                values,
            });
            shape = ReqShape::WriteMultiple {
                start: *start,
                quantity: *quantity,
            };
            OpKind::Write
        }
        (Request::Empty, 17) => OpKind::Identify,
        (Request::Empty, _) => OpKind::Diagnostic,
        (Request::Diagnostics { sub: s, data }, _) => {
            sub = Some(*s);
            sub_name = Some(diagnostic_label(*s));
            if !data.is_empty() {
                details.push(("diagnostic_data", diag_value(data)));
            }
            shape = ReqShape::Diagnostics { sub: *s };
            OpKind::Diagnostic
        }
        (Request::ReadFileRecord { data, .. }, _) => {
            for (_, file, record, len) in read_file_subrequests(data) {
                accesses.push(Access {
                    dir: AccessDir::Read,
                    object: modbus(
                        ModbusTable::FileRecord,
                        u32::from(file) << 16 | u32::from(record),
                        u32::from(len),
                    ),
                    values: Values::new(),
                });
            }
            shape = ReqShape::ReadFile;
            OpKind::Read
        }
        (Request::WriteFileRecord { byte_count, data }, _) => {
            for r in write_file_records(data) {
                accesses.push(Access {
                    dir: AccessDir::Write,
                    object: modbus(
                        ModbusTable::FileRecord,
                        file_ref(&r),
                        u32::try_from(r.data.len() / 2).unwrap_or(u32::MAX),
                    ),
                    values: registers(r.data),
                });
            }
            shape = ReqShape::WriteFile {
                byte_count: *byte_count,
            };
            OpKind::Write
        }
        (
            Request::MaskWrite {
                address,
                and_mask,
                or_mask,
            },
            _,
        ) => {
            accesses.push(Access {
                dir: AccessDir::Write,
                object: modbus(ModbusTable::HoldingRegister, u32::from(*address), 1),
                values: Values::new(),
            });
            details.push(("and_mask", int(*and_mask)));
            details.push(("or_mask", int(*or_mask)));
            shape = ReqShape::MaskWrite {
                address: *address,
                and_mask: *and_mask,
                or_mask: *or_mask,
            };
            OpKind::Write
        }
        (
            Request::ReadWrite {
                read_start,
                read_quantity,
                write_start,
                write_quantity,
                data,
                ..
            },
            _,
        ) => {
            accesses.push(Access {
                dir: AccessDir::Read,
                object: modbus(
                    ModbusTable::HoldingRegister,
                    u32::from(*read_start),
                    u32::from(*read_quantity),
                ),
                values: Values::new(),
            });
            accesses.push(Access {
                dir: AccessDir::Write,
                object: modbus(
                    ModbusTable::HoldingRegister,
                    u32::from(*write_start),
                    u32::from(*write_quantity),
                ),
                values: registers(data),
            });
            shape = ReqShape::ReadWrite {
                quantity: *read_quantity,
            };
            OpKind::ReadWrite
        }
        (Request::ReadFifo { pointer }, _) => {
            accesses.push(Access {
                dir: AccessDir::Read,
                object: modbus(ModbusTable::Fifo, u32::from(*pointer), 0),
                values: Values::new(),
            });
            shape = ReqShape::ReadFifo;
            OpKind::Read
        }
        (Request::ReadDeviceId { code, object_id }, _) => {
            sub = Some(u16::from(MEI_READ_DEVICE_ID));
            sub_name = Some(mei_label(MEI_READ_DEVICE_ID));
            details.push((
                "read_device_id_code",
                match device_id_code_name(*code) {
                    Some(n) => Value::Str(n.to_string()),
                    None => int(*code),
                },
            ));
            details.push(("object_id", int(*object_id)));
            OpKind::Identify
        }
        (Request::Mei { mei_type, data }, _) => {
            sub = Some(u16::from(*mei_type));
            sub_name = Some(mei_label(*mei_type));
            if !data.is_empty() {
                details.push(("mei_data", raw(data)));
            }
            OpKind::Other
        }
        (Request::Umas { pair, code, data }, _) => {
            sub = Some(u16::from(*code));
            sub_name = Some(umas_label(*code));
            details.push(("umas_pair", int(*pair)));
            if !data.is_empty() {
                details.push(("umas_data", raw(data)));
            }
            match umas_effect(*code) {
                UmasEffect::Read => OpKind::Read,
                UmasEffect::Write => OpKind::Write,
                UmasEffect::Program => OpKind::Program,
            }
        }
        (Request::Raw { data }, _) => {
            if !data.is_empty() {
                details.push(("data", raw(data)));
            }
            match fc {
                FC_UMAS => OpKind::Program,
                _ => OpKind::Other,
            }
        }
        // A body that does not belong to its function cannot come out of the parser.
        _ => OpKind::Other,
    };
    ev.ts = cx.ts;
    ev.packet = cx.packet;
    ev.file = Some(Arc::clone(cx.file));
    ev.unit = unit;
    ev.op = op;
    ev.function = function(fc & 0x7f, sub, sub_name);
    ev.accesses = accesses;
    ev.read = None;
    ev.details = details;
    shape
}

fn diag_value(data: &[u8]) -> Value {
    match data {
        [hi, lo] => int(u16::from_be_bytes([*hi, *lo])),
        _ => raw(data),
    }
}

/// Fills a request's event from its response; returns the violations of the pair.
pub(crate) fn apply_response(
    ev: &mut IcsEvent,
    req_fc: u8,
    shape: &ReqShape,
    resp: &Pdu<Response<'_>>,
) -> Violations {
    let mut v = Violations::NONE;
    if resp.function & 0x7f != req_fc {
        v |= Violations::RESPONSE_FUNCTION_MISMATCH;
    }
    ev.outcome = Outcome::Ok;
    if let Response::Exception { code } = resp.body {
        ev.outcome = exception_outcome(code);
        return v;
    }
    if !v.is_empty() {
        response_details(ev, resp);
        return v;
    }
    match (&resp.body, shape) {
        (Response::ReadData { byte_count, data }, ReqShape::Read { fc, quantity }) => {
            let expected = if *fc <= 2 {
                bit_bytes(*quantity)
            } else {
                usize::from(*quantity) * 2
            };
            if usize::from(*byte_count) != expected {
                v |= Violations::RESPONSE_BYTE_COUNT_MISMATCH;
            }
            fill_read(ev, *fc, *quantity, data);
        }
        (Response::ReadData { byte_count, data }, ReqShape::ReadWrite { quantity }) => {
            if usize::from(*byte_count) != usize::from(*quantity) * 2 {
                v |= Violations::RESPONSE_BYTE_COUNT_MISMATCH;
            }
            set_values(ev, 0, registers(data));
        }
        (
            Response::WriteSingle { address, value },
            ReqShape::WriteSingle {
                address: a,
                value: b,
            },
        )
        | (
            Response::WriteMultiple {
                start: address,
                quantity: value,
            },
            ReqShape::WriteMultiple {
                start: a,
                quantity: b,
            },
        ) => {
            if (address, value) != (a, b) {
                v |= Violations::RESPONSE_ECHO_MISMATCH;
            }
        }
        (
            Response::MaskWrite {
                address,
                and_mask,
                or_mask,
            },
            ReqShape::MaskWrite {
                address: a,
                and_mask: m,
                or_mask: o,
            },
        ) => {
            if (address, and_mask, or_mask) != (a, m, o) {
                v |= Violations::RESPONSE_ECHO_MISMATCH;
            }
        }
        (Response::Diagnostics { sub, data }, ReqShape::Diagnostics { sub: s }) => {
            if sub != s {
                v |= Violations::RESPONSE_ECHO_MISMATCH;
            }
            if !data.is_empty() {
                ev.details.push(("diagnostic_result", diag_value(data)));
            }
        }
        (Response::FileRecord { data, .. }, ReqShape::ReadFile) => {
            for (k, (_, rec)) in read_file_subresponses(data).enumerate() {
                set_values(ev, k, registers(rec));
            }
        }
        (Response::FileRecord { byte_count, .. }, ReqShape::WriteFile { byte_count: b }) => {
            if byte_count != b {
                v |= Violations::RESPONSE_ECHO_MISMATCH;
            }
        }
        (
            Response::ReadFifo {
                fifo_count, data, ..
            },
            ReqShape::ReadFifo,
        ) => {
            if let Some(Access {
                object: ObjectRef::Modbus { count, .. },
                values,
                ..
            }) = ev.accesses.first_mut()
            {
                *count = u32::from(*fifo_count);
                *values = registers(data);
            }
        }
        _ => response_details(ev, resp),
    }
    v
}

/// Writes the values of read data (FC 1–4 asking for `quantity`) into the (empty) value
/// list of the event's first access.
#[inline]
pub(crate) fn fill_read(ev: &mut IcsEvent, fc: u8, quantity: u16, data: &[u8]) {
    if let Some(a) = ev.accesses.first_mut() {
        if fc <= 2 {
            fill_bits(&mut a.values, data, usize::from(quantity));
        } else {
            fill_registers(&mut a.values, data);
        }
    }
}

#[inline]
fn set_values(ev: &mut IcsEvent, k: usize, values: Values) {
    if let Some(a) = ev.accesses.get_mut(k) {
        a.values = values;
    }
}

/// Outcome of an exception response.
pub(crate) fn exception_outcome(code: u8) -> Outcome {
    Outcome::Exception {
        code,
        name: exception_name(code).unwrap_or("unknown_exception"),
    }
}

fn fact(ev: &mut IcsEvent, key: &'static str, value: String) {
    ev.facts.push(AssetFact {
        side: Side::Server,
        key,
        value,
    });
}

/// Details and facts carried by responses that answer no particular request field.
fn response_details(ev: &mut IcsEvent, resp: &Pdu<Response<'_>>) {
    match &resp.body {
        Response::ExceptionStatus { status } => ev.details.push(("exception_status", int(*status))),
        Response::CommEventCounter {
            status,
            event_count,
        } => {
            ev.details.push(("status", int(*status)));
            ev.details.push(("event_count", int(*event_count)));
        }
        Response::CommEventLog {
            status,
            event_count,
            message_count,
            events,
            ..
        } => {
            ev.details.push(("status", int(*status)));
            ev.details.push(("event_count", int(*event_count)));
            ev.details.push(("message_count", int(*message_count)));
            ev.details.push(("events", raw(events)));
        }
        Response::ReportServerId { data, .. } => {
            ev.details.push(("server_id_data", raw(data)));
            if let Some(id) = data.first() {
                fact(ev, "server_id", format!("0x{id:02x}"));
            }
            match data.get(1) {
                Some(0xFF) => fact(ev, "run_indicator", "on".to_string()),
                Some(0x00) => fact(ev, "run_indicator", "off".to_string()),
                _ => {}
            }
            if let Some(extra) = data.get(2..) {
                let text = object_text(extra);
                if !text.is_empty() && text.chars().all(|c| !c.is_control()) {
                    fact(ev, "server_id_additional", text);
                }
            }
        }
        Response::DeviceId(d) => {
            ev.details.push(("conformity_level", int(d.conformity)));
            if d.more_follows == 0xFF {
                ev.details.push(("next_object_id", int(d.next_object_id)));
            }
            for (id, value) in d.objects.iter() {
                let text = object_text(value);
                match device_object_name(id) {
                    Some(key) => fact(ev, key, text),
                    None if id >= 0x80 => fact(ev, "private_object", format!("0x{id:02x}={text}")),
                    None => fact(ev, "reserved_object", format!("0x{id:02x}={text}")),
                }
            }
        }
        Response::Umas { code, data, .. } => {
            let status = match code {
                0xFE => Value::Str("ok".to_string()),
                0xFD => Value::Str("error".to_string()),
                c => int(*c),
            };
            ev.details.push(("umas_status", status));
            if !data.is_empty() {
                ev.details.push(("umas_response_data", raw(data)));
            }
        }
        Response::Mei { data, .. } | Response::Raw { data } if !data.is_empty() => {
            ev.details.push(("response_data", raw(data)));
        }
        _ => {}
    }
}

/// The event of a response that matched no request.
pub(crate) fn unsolicited_event(cx: &EventCx<'_>, h: &Mbap, resp: &Pdu<Response<'_>>) -> IcsEvent {
    let fc = resp.function & 0x7f;
    let (sub, sub_name) = match &resp.body {
        Response::Diagnostics { sub, .. } => (Some(*sub), Some(diagnostic_label(*sub))),
        Response::DeviceId(_) => (
            Some(u16::from(MEI_READ_DEVICE_ID)),
            Some(mei_label(MEI_READ_DEVICE_ID)),
        ),
        Response::Mei { mei_type, .. } => (Some(u16::from(*mei_type)), Some(mei_label(*mei_type))),
        _ => (None, None),
    };
    let op = match fc {
        1..=4 | 20 | 24 => OpKind::Read,
        5 | 6 | 15 | 16 | 21 | 22 => OpKind::Write,
        23 => OpKind::ReadWrite,
        7 | 8 | 11 | 12 => OpKind::Diagnostic,
        17 => OpKind::Identify,
        43 if sub == Some(u16::from(MEI_READ_DEVICE_ID)) => OpKind::Identify,
        FC_UMAS => OpKind::Program,
        _ => OpKind::Other,
    };
    let mut ev = base_event(cx, Some(h.unit_id), op, function(fc, sub, sub_name));
    ev.outcome = Outcome::Unsolicited;
    match &resp.body {
        Response::Exception { .. } => {}
        Response::WriteSingle { address, value } => {
            let (table, v) = if fc == 5 {
                (ModbusTable::Coil, Value::Bool(*value == 0xFF00))
            } else {
                (ModbusTable::HoldingRegister, int(*value))
            };
            ev.accesses.push(Access {
                dir: AccessDir::Write,
                object: modbus(table, u32::from(*address), 1),
                values: vec![v].into(),
            });
        }
        Response::WriteMultiple { start, quantity } => {
            let table = if fc == 15 {
                ModbusTable::Coil
            } else {
                ModbusTable::HoldingRegister
            };
            ev.accesses.push(Access {
                dir: AccessDir::Write,
                object: modbus(table, u32::from(*start), u32::from(*quantity)),
                values: Values::new(),
            });
        }
        Response::ReadData { data, .. } => ev.details.push(("response_data", raw(data))),
        _ => response_details(&mut ev, resp),
    }
    if let Response::Exception { code } = resp.body {
        ev.details.push((
            "exception",
            Value::Str(exception_outcome_name(code).to_string()),
        ));
    }
    ev
}

fn exception_outcome_name(code: u8) -> &'static str {
    exception_name(code).unwrap_or("unknown_exception")
}

/// What a fast read's event takes from its response and its flow (the rest is the read's).
#[derive(Clone, Copy, Debug)]
struct Answer {
    flow_id: u64,
    client: Endpoint,
    server: Endpoint,
    vlan: Option<u16>,
    latency_us: u64,
    response_packet: u64,
}

/// A fast read answered `Ok`, posted whole by a shard worker (see [`crate::proto::slots`]):
/// the calling thread writes its event into memory of its own, so the worker's event slots
/// never cross between the cores.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PostedRead {
    read: FastRead,
    answer: Answer,
}

impl PostedRead {
    /// Writes the event [`FastRead::read_into`] writes (every field but the one access's
    /// values: [`read_values`] with [`PostedRead::bits`]).
    #[inline(always)]
    pub(crate) fn write_into(&self, ev: &mut IcsEvent, file: &Arc<str>) {
        let a = &self.answer;
        self.read.fill(
            ev,
            a.flow_id,
            a.client,
            a.server,
            a.vlan,
            a.latency_us,
            a.response_packet,
            file,
        );
    }

    /// How the read's data is decoded (see [`FastRead::bits`]).
    #[inline(always)]
    pub(crate) fn bits(&self) -> Option<u16> {
        self.read.bits()
    }

    /// A read of `quantity` objects from `start` with function `fc` (1–4) at second `k`,
    /// by 10.0.0.1:40000 from 10.0.0.2:502, for tests.
    #[cfg(test)]
    pub(crate) fn sample(k: i64, fc: u8, start: u16, quantity: u16) -> PostedRead {
        let end = |ip: [u8; 4], port| Endpoint {
            ip: std::net::IpAddr::from(ip),
            port,
            mac: None,
        };
        PostedRead {
            read: FastRead {
                packet: 2 * k as u64 + 1,
                secs: k,
                nanos: 5,
                tid: k as u16,
                start,
                quantity,
                unit: 1,
                fc,
                table: read_table(fc).unwrap_or(ModbusTable::HoldingRegister),
            },
            answer: Answer {
                flow_id: 7,
                client: end([10, 0, 0, 1], 40000),
                server: end([10, 0, 0, 2], 502),
                vlan: None,
                latency_us: 300,
                response_packet: 2 * k as u64 + 2,
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::flow::{FlowKey, SideSource};
    use crate::proto::modbus::parser::parse_request;
    use std::net::{IpAddr, Ipv4Addr};

    /// The read functions' copies are what [`function`] gives, and a read written over a
    /// slot holding any other function (with a sub-function) takes its own.
    #[test]
    fn read_functions_are_the_lookup() {
        for fc in 1..=4u8 {
            assert_eq!(
                READ_FUNCTIONS[usize::from(fc) - 1],
                function(fc, None, None)
            );
        }
        let m = meta();
        let file: Arc<str> = Arc::from("f");
        let cx = EventCx {
            ts: Timestamp::default(),
            file: &file,
            packet: 1,
            meta: &m,
            swapped: false,
        };
        let mut ev = ReqEvent {
            function: function(8, Some(1), Some("x")),
            ..ReqEvent::default()
        };
        for fc in [3u8, 1, 4, 2, 3] {
            write_read(&mut ev, &cx, Some(1), fc, ModbusTable::Coil, 0, 1);
            assert_eq!(ev.function, function(fc, None, None));
        }
    }

    fn meta() -> FlowMeta {
        let ep = |h, port| Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, h)),
            port,
            mac: None,
        };
        let (c, s) = (ep(5, 40000), ep(20, 502));
        FlowMeta {
            id: 3,
            key: FlowKey::new((c.ip, c.port), (s.ip, s.port), 6, 0),
            client: c,
            server: s,
            side_source: SideSource::Handshake,
            first_seen: Timestamp::default(),
            last_seen: Timestamp::default(),
            packets: [0, 0],
            bytes: [0, 0],
            vlan: Some(7),
        }
    }

    /// Filling a value list that held other values gives what a fresh decode gives, and
    /// both give the plain definition (LSB-first coils, big-endian registers, capped).
    #[test]
    fn fill_into_used_lists_matches_fresh_decode() {
        let data: Vec<u8> = (0..=255).map(|b: u8| b.wrapping_mul(37)).collect();
        for len in [0, 1, 2, 3, 9, 250, 256] {
            let d = &data[..len];
            let plain_regs: Vec<Value> = d
                .chunks_exact(2)
                .take(MAX_REGISTER_VALUES)
                .map(|c| Value::Int(i64::from(c[0]) << 8 | i64::from(c[1])))
                .collect();
            assert_eq!(registers(d), plain_regs);
            for n in [0, 1, 7, 8, 9, 2000, 5000] {
                let plain_bits: Vec<Value> = (0..n.min(MAX_BIT_VALUES).min(len * 8))
                    .map(|i| Value::Bool(d[i / 8] >> (i % 8) & 1 == 1))
                    .collect();
                assert_eq!(bits(d, n), plain_bits);
            }
            let mut v = Values::from(vec![Value::Str("old".into()), Value::Int(3)]);
            fill_registers(&mut v, d);
            assert_eq!(v, registers(d));
            assert_eq!(v, plain_regs);
            // Over compact values of the other kind, and of the same kind.
            for n in [0, 1, 9, 2000] {
                let mut v = bits(&data, 40);
                fill_bits(&mut v, d, n);
                assert_eq!(v, bits(d, n));
                fill_registers(&mut v, d);
                assert_eq!(v, plain_regs);
                fill_registers(&mut v, &data[..len / 2]);
                assert_eq!(v, registers(&data[..len / 2]));
                fill_bits(&mut v, d, n);
                assert_eq!(v.to_vec(), bits(d, n).to_vec());
            }
            // Longer and shorter lists of registers, coils and other values, in any order.
            let mixed = [
                Value::Int(-1),
                Value::Bool(true),
                Value::Bytes(vec![1]),
                Value::Float(0.5),
                Value::Int(9),
            ];
            for k in [0, 1, 4, 5, 130, 300] {
                let old: Vec<Value> = mixed.iter().cycle().take(k).cloned().collect();
                let mut v = Values::from(old.clone());
                fill_registers(&mut v, d);
                assert_eq!(v, registers(d));
                for n in [0, 1, 7, 8, 9, 2000] {
                    let mut v = Values::from(old.clone());
                    fill_bits(&mut v, d, n);
                    assert_eq!(v, bits(d, n));
                }
            }
            for n in [0, 1, 7, 8, 9, 2000, 5000] {
                let mut v = Values::from(vec![Value::Bool(true); 3]);
                fill_bits(&mut v, d, n);
                assert_eq!(v, bits(d, n));
            }
        }
    }

    /// The register fill (values overwritten in place, the missing ones added, the extra
    /// ones dropped) gives the plain decode, over lists of any length holding registers or
    /// other values.
    #[test]
    fn fill_registers_any_lengths() {
        let data: Vec<u8> = (0..=80u8)
            .map(|b| b.wrapping_mul(151).wrapping_add(7))
            .collect();
        for len in 0..=data.len() {
            let d = &data[..len];
            let plain: Vec<Value> = d
                .chunks_exact(2)
                .map(|c| Value::Int(i64::from(c[0]) << 8 | i64::from(c[1])))
                .collect();
            for k in 0..=45usize {
                for other in [false, true] {
                    let mut v: Values = (0..k)
                        .map(|i| match (other, i % 3) {
                            (true, 1) => Value::Str("s".into()),
                            (true, 2) => Value::Bool(true),
                            _ => Value::Int(-(i as i64)),
                        })
                        .collect();
                    fill_registers(&mut v, d);
                    assert_eq!(v, plain, "len {len} k {k} other {other}");
                }
            }
        }
    }

    /// The fast path for reads fills a slot exactly as the general path does, whatever the
    /// slot held before (another function, a sub-function, details).
    #[test]
    fn read_fast_path_matches_general_path() {
        let (meta, file) = (meta(), Arc::<str>::from("t.pcap"));
        let cx = EventCx {
            ts: Timestamp::new(1000, 5),
            file: &file,
            packet: 9,
            meta: &meta,
            swapped: false,
        };
        let h = Mbap {
            transaction_id: 1,
            protocol_id: 0,
            length: 6,
            unit_id: 4,
        };
        let olds = [
            ReqEvent::default(),
            ReqEvent {
                function: function(3, None, None),
                ..ReqEvent::default()
            },
            ReqEvent {
                function: function(3, Some(1), Some("x")),
                details: vec![("d", Value::Int(1))],
                ..ReqEvent::default()
            },
        ];
        for fc in 1..=4u8 {
            for body in [[0u8, 0, 0, 1], [0xff, 0xff, 0, 2], [0, 10, 0x07, 0xd1]] {
                let req = parse_request(fc, &body);
                for old in &olds {
                    let mut fast = ReqEvent {
                        function: old.function.clone(),
                        details: old.details.clone(),
                        ..ReqEvent::default()
                    };
                    let mut general = ReqEvent {
                        function: old.function.clone(),
                        details: old.details.clone(),
                        ..ReqEvent::default()
                    };
                    let s1 = request_event(&mut fast, &cx, &h, &req);
                    // A slot whose accesses were not moved out (they are dropped) ends the same.
                    let mut held = ReqEvent {
                        function: old.function.clone(),
                        details: old.details.clone(),
                        accesses: vec![Access {
                            dir: AccessDir::Write,
                            object: ObjectRef::Other { name: "x".into() },
                            values: vec![Value::Str("old".into())].into(),
                        }],
                        ..ReqEvent::default()
                    };
                    assert_eq!(request_event(&mut held, &cx, &h, &req), s1);
                    assert_eq!(
                        held.take_event(&cx, Outcome::NoResponse),
                        fast.take_event(&cx, Outcome::NoResponse)
                    );
                    let s1 = request_event(&mut fast, &cx, &h, &req);
                    let s2 = request_event_general(&mut general, &cx, &h, &req);
                    assert_eq!(s1, s2);
                    let e1 = fast.take_event(&cx, Outcome::NoResponse);
                    let e2 = general.take_event(&cx, Outcome::NoResponse);
                    assert_eq!(e1, e2, "fc {fc} body {body:?}");
                }
            }
        }
    }
}
