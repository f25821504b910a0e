//! Modbus/TCP messages and open code points.
//!
//! Every code point keeps its raw value: names are looked up, never required, so unknown,
//! reserved and user-defined functions still reach the events. The message types borrow from
//! the frame they were parsed from.

use crate::event::ModbusTable;

/// The MBAP header (Modbus Application Protocol header) that starts every Modbus/TCP ADU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mbap {
    /// Transaction identifier, echoed by the server.
    pub transaction_id: u16,
    /// Protocol identifier, 0 for Modbus.
    pub protocol_id: u16,
    /// Number of following bytes (unit id + PDU).
    pub length: u16,
    /// Unit (slave) identifier.
    pub unit_id: u8,
}

/// Length of the MBAP header, unit id included.
pub const MBAP_LEN: usize = 7;
/// Smallest MBAP length the specification allows (unit id + function code).
pub const MIN_SPEC_LENGTH: u16 = 2;
/// Largest MBAP length the specification allows (unit id + 253-byte PDU).
pub const MAX_SPEC_LENGTH: u16 = 254;
/// Largest MBAP length still framed (and flagged `length_out_of_range`) when in sync.
///
/// UMAS and some gateways send a few bytes more than 254; anything larger than this is taken
/// as garbage and resynchronised over.
pub const MAX_FRAMED_LENGTH: u16 = 1024;

/// Protocol violations, as a small bit set (no allocation per frame).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Violations(u32);

macro_rules! violations {
    ($($(#[$doc:meta])* $name:ident = $bit:expr, $text:literal;)*) => {
        impl Violations {
            $($(#[$doc])* pub const $name: Violations = Violations(1 << $bit);)*
            /// Every flag with its stable snake_case name, in bit order.
            pub const ALL: &'static [(Violations, &'static str)] = &[$((Violations::$name, $text)),*];
        }
    };
}

violations! {
    /// MBAP protocol identifier is not 0.
    PROTOCOL_ID_NONZERO = 0, "protocol_id_nonzero";
    /// MBAP length outside 2..=254.
    LENGTH_OUT_OF_RANGE = 1, "length_out_of_range";
    /// The PDU is shorter or longer than its function (or its own byte count) requires.
    LENGTH_MISMATCH = 2, "length_mismatch";
    /// A quantity of coils or registers is 0 or above the function's maximum.
    QUANTITY_OUT_OF_RANGE = 3, "quantity_out_of_range";
    /// A byte count disagrees with the quantity it describes.
    BYTE_COUNT_MISMATCH = 4, "byte_count_mismatch";
    /// A single-coil value other than 0x0000 or 0xFF00.
    INVALID_COIL_VALUE = 5, "invalid_coil_value";
    /// An exception code that does not exist, or that this function cannot return.
    INVALID_EXCEPTION_CODE = 6, "invalid_exception_code";
    /// Start address plus quantity runs past address 65535.
    ADDRESS_OVERFLOW = 7, "address_overflow";
    /// A response whose function code is not the request's.
    RESPONSE_FUNCTION_MISMATCH = 8, "response_function_mismatch";
    /// A read response whose byte count does not match the requested quantity.
    RESPONSE_BYTE_COUNT_MISMATCH = 9, "response_byte_count_mismatch";
    /// A write response (or diagnostic) that does not echo the request.
    RESPONSE_ECHO_MISMATCH = 10, "response_echo_mismatch";
    /// A file record reference type other than 6.
    INVALID_REFERENCE_TYPE = 11, "invalid_reference_type";
    /// A FIFO count above 31.
    FIFO_COUNT_OUT_OF_RANGE = 12, "fifo_count_out_of_range";
    /// A Read Device Identification code outside 1..=4, or a malformed object list.
    INVALID_DEVICE_ID_CODE = 13, "invalid_device_id_code";
    /// An exception (function code with the high bit set) sent by the client.
    EXCEPTION_IN_REQUEST = 14, "exception_in_request";
    /// A request reused the transaction id of a request still pending.
    TRANSACTION_ID_REUSED = 15, "transaction_id_reused";
    /// More requests pending than the per-flow cap; the oldest were dropped.
    PENDING_REQUEST_FLOOD = 16, "pending_request_flood";
    /// The frame ends after the unit id: there is no function code (MBAP length 1).
    MISSING_FUNCTION_CODE = 17, "missing_function_code";
    /// A response matched to the only pending request of its unit and function although its
    /// transaction id differs.
    RESPONSE_TRANSACTION_ID_MISMATCH = 18, "response_transaction_id_mismatch";
}

impl Violations {
    /// No violation.
    pub const NONE: Violations = Violations(0);

    /// True when no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True when every flag of `other` is set.
    pub fn contains(self, other: Violations) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: Violations) {
        self.0 |= other.0;
    }

    /// The names of the flags set, in bit order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Violations::ALL
            .iter()
            .filter(move |(v, _)| self.contains(*v))
            .map(|(_, n)| *n)
    }
}

impl std::ops::BitOr for Violations {
    type Output = Violations;
    fn bitor(self, rhs: Violations) -> Violations {
        Violations(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Violations {
    fn bitor_assign(&mut self, rhs: Violations) {
        self.0 |= rhs.0;
    }
}

/// Where a function code sits in the Modbus code space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FunctionCategory {
    /// Defined by the Modbus specification.
    Public,
    /// 65–72 and 100–110, left to vendors' own use.
    UserDefined,
    /// Reserved by the specification (legacy products).
    Reserved,
    /// Not assigned by the specification.
    Unassigned,
    /// A documented vendor protocol on a reserved code (Schneider UMAS on 90).
    Vendor,
}

impl FunctionCategory {
    /// The category name used in events.
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionCategory::Public => "public",
            FunctionCategory::UserDefined => "user_defined",
            FunctionCategory::Reserved => "reserved",
            FunctionCategory::Unassigned => "unassigned",
            FunctionCategory::Vendor => "vendor",
        }
    }
}

/// Schneider Electric UMAS rides on function code 90.
pub const FC_UMAS: u8 = 90;

/// Name of a function code (the high exception bit ignored).
pub fn function_name(fc: u8) -> &'static str {
    match fc & 0x7f {
        1 => "read_coils",
        2 => "read_discrete_inputs",
        3 => "read_holding_registers",
        4 => "read_input_registers",
        5 => "write_single_coil",
        6 => "write_single_register",
        7 => "read_exception_status",
        8 => "diagnostics",
        11 => "get_comm_event_counter",
        12 => "get_comm_event_log",
        15 => "write_multiple_coils",
        16 => "write_multiple_registers",
        17 => "report_server_id",
        20 => "read_file_record",
        21 => "write_file_record",
        22 => "mask_write_register",
        23 => "read_write_multiple_registers",
        24 => "read_fifo_queue",
        43 => "encapsulated_interface_transport",
        FC_UMAS => "umas",
        other => match function_category(other) {
            FunctionCategory::UserDefined => "user_defined_function",
            FunctionCategory::Reserved => "reserved_function",
            _ => "unassigned_function",
        },
    }
}

/// Category of a function code (the high exception bit ignored).
pub fn function_category(fc: u8) -> FunctionCategory {
    match fc & 0x7f {
        1..=8 | 11 | 12 | 15 | 16 | 17 | 20..=24 | 43 => FunctionCategory::Public,
        65..=72 | 100..=110 => FunctionCategory::UserDefined,
        FC_UMAS => FunctionCategory::Vendor,
        9 | 10 | 13 | 14 | 41 | 42 | 91 | 125..=127 => FunctionCategory::Reserved,
        _ => FunctionCategory::Unassigned,
    }
}

/// True for function codes a real client plausibly sends: public, user-defined, or UMAS.
pub fn is_plausible_function(fc: u8) -> bool {
    matches!(
        function_category(fc),
        FunctionCategory::Public | FunctionCategory::UserDefined | FunctionCategory::Vendor
    )
}

/// Name of an exception code, `None` for codes the specification does not define.
pub fn exception_name(code: u8) -> Option<&'static str> {
    Some(match code {
        1 => "illegal_function",
        2 => "illegal_data_address",
        3 => "illegal_data_value",
        4 => "server_device_failure",
        5 => "acknowledge",
        6 => "server_device_busy",
        8 => "memory_parity_error",
        10 => "gateway_path_unavailable",
        11 => "gateway_target_device_failed_to_respond",
        _ => return None,
    })
}

/// True when function `fc` may answer with exception `code` (8 only for file records).
pub fn exception_possible(fc: u8, code: u8) -> bool {
    match code {
        8 => matches!(fc & 0x7f, 20 | 21),
        c => exception_name(c).is_some(),
    }
}

/// Name of an FC 8 diagnostic sub-function.
pub fn diagnostic_name(sub: u16) -> Option<&'static str> {
    Some(match sub {
        0 => "return_query_data",
        1 => "restart_communications_option",
        2 => "return_diagnostic_register",
        3 => "change_ascii_input_delimiter",
        4 => "force_listen_only_mode",
        10 => "clear_counters_and_diagnostic_register",
        11 => "return_bus_message_count",
        12 => "return_bus_communication_error_count",
        13 => "return_bus_exception_error_count",
        14 => "return_server_message_count",
        15 => "return_server_no_response_count",
        16 => "return_server_nak_count",
        17 => "return_server_busy_count",
        18 => "return_bus_character_overrun_count",
        20 => "clear_overrun_counter_and_flag",
        _ => return None,
    })
}

/// Name of an FC 8 sub-function; the reserved ones (5–9, 19, 21 and up) by that category.
pub fn diagnostic_label(sub: u16) -> &'static str {
    diagnostic_name(sub).unwrap_or("reserved_diagnostic")
}

/// MEI type of FC 43 for CANopen general reference.
pub const MEI_CANOPEN: u8 = 13;
/// MEI type of FC 43 for Read Device Identification.
pub const MEI_READ_DEVICE_ID: u8 = 14;

/// Name of an FC 43 MEI type.
pub fn mei_name(mei: u8) -> Option<&'static str> {
    match mei {
        MEI_CANOPEN => Some("canopen_general_reference"),
        MEI_READ_DEVICE_ID => Some("read_device_identification"),
        _ => None,
    }
}

/// Name of an FC 43 MEI type; the reserved ones (all but 13 and 14) by that category.
pub fn mei_label(mei: u8) -> &'static str {
    mei_name(mei).unwrap_or("reserved_mei_type")
}

/// Fact name of a Read Device Identification object (ids 0–6 are standard).
pub fn device_object_name(id: u8) -> Option<&'static str> {
    Some(match id {
        0 => "vendor_name",
        1 => "product_code",
        2 => "revision",
        3 => "vendor_url",
        4 => "product_name",
        5 => "model_name",
        6 => "user_application_name",
        _ => return None,
    })
}

/// Name of a Read Device Identification access code.
pub fn device_id_code_name(code: u8) -> Option<&'static str> {
    Some(match code {
        1 => "basic_stream",
        2 => "regular_stream",
        3 => "extended_stream",
        4 => "specific_object",
        _ => return None,
    })
}

/// Name of a Schneider UMAS function code (the byte after the pairing key).
pub fn umas_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0x01 => "init_comm",
        0x02 => "read_id",
        0x03 => "read_project_info",
        0x04 => "read_plc_info",
        0x06 => "read_card_info",
        0x0A => "repeat",
        0x10 => "take_plc_reservation",
        0x11 => "release_plc_reservation",
        0x12 => "keep_alive",
        0x20 => "read_memory_block",
        0x22 => "read_variables",
        0x23 => "write_variables",
        0x24 => "read_coils_registers",
        0x25 => "write_coils_registers",
        0x30 => "initialize_upload",
        0x31 => "upload_block",
        0x32 => "end_upload",
        0x33 => "initialize_download",
        0x34 => "download_block",
        0x35 => "end_download",
        0x39 => "read_eth_master_data",
        0x40 => "start_plc",
        0x41 => "stop_plc",
        0x50 => "monitor_plc",
        0x58 => "check_plc",
        0x70 => "read_io_object",
        0x71 => "write_io_object",
        0x73 => "get_status_module",
        0xFD => "response_error",
        0xFE => "response_ok",
        _ => return None,
    })
}

/// Name of a UMAS code; codes with no published meaning as `unknown_umas_function`.
pub fn umas_label(code: u8) -> &'static str {
    umas_name(code).unwrap_or("unknown_umas_function")
}

/// What a UMAS code does to the PLC, for the event's operation kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UmasEffect {
    /// Reads information or data, or keeps the session alive.
    Read,
    /// Writes process data.
    Write,
    /// Reserves, uploads, downloads, starts or stops: changes the program or its state.
    Program,
}

/// The effect of a UMAS code; unknown codes count as `Program`.
pub fn umas_effect(code: u8) -> UmasEffect {
    match code {
        0x01..=0x04
        | 0x06
        | 0x0A
        | 0x12
        | 0x20
        | 0x22
        | 0x24
        | 0x39
        | 0x50
        | 0x58
        | 0x70
        | 0x73 => UmasEffect::Read,
        0x23 | 0x25 | 0x71 => UmasEffect::Write,
        _ => UmasEffect::Program,
    }
}

/// Table addressed by a read function (1–4).
pub fn read_table(fc: u8) -> Option<ModbusTable> {
    Some(match fc {
        1 => ModbusTable::Coil,
        2 => ModbusTable::DiscreteInput,
        3 => ModbusTable::HoldingRegister,
        4 => ModbusTable::InputRegister,
        _ => return None,
    })
}

/// Limits of the specification on quantities.
pub mod limits {
    /// Most coils or discrete inputs one read may ask for (FC 1, 2).
    pub const READ_BITS: u16 = 2000;
    /// Most registers one read may ask for (FC 3, 4).
    pub const READ_REGISTERS: u16 = 125;
    /// Most coils one write may set (FC 15).
    pub const WRITE_BITS: u16 = 1968;
    /// Most registers one write may set (FC 16).
    pub const WRITE_REGISTERS: u16 = 123;
    /// Most registers the write part of FC 23 may set.
    pub const READ_WRITE_WRITE_REGISTERS: u16 = 121;
    /// Most registers a FIFO queue returns (FC 24).
    pub const FIFO_COUNT: u16 = 31;
}

/// A Modbus request PDU, decoded as far as its function is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// FC 1–4: read `quantity` objects from `start`.
    Read {
        /// First address.
        start: u16,
        /// Number of coils, inputs or registers.
        quantity: u16,
    },
    /// FC 5 and FC 6: write one coil or register.
    WriteSingle {
        /// Address.
        address: u16,
        /// Raw 16-bit value (0xFF00 / 0x0000 for coils).
        value: u16,
    },
    /// FC 7, 11, 12, 17: no data.
    Empty,
    /// FC 8: a diagnostic sub-function and its data.
    Diagnostics {
        /// Sub-function code.
        sub: u16,
        /// Data field.
        data: &'a [u8],
    },
    /// FC 15 and FC 16: write several coils or registers.
    WriteMultiple {
        /// First address.
        start: u16,
        /// Number of coils or registers.
        quantity: u16,
        /// Declared byte count.
        byte_count: u8,
        /// Packed coils or big-endian registers.
        data: &'a [u8],
    },
    /// FC 20: read file records; `data` is a list of 7-byte sub-requests.
    ReadFileRecord {
        /// Declared byte count.
        byte_count: u8,
        /// Sub-requests.
        data: &'a [u8],
    },
    /// FC 21: write file records; `data` is a list of sub-requests with their record data.
    WriteFileRecord {
        /// Declared byte count.
        byte_count: u8,
        /// Sub-requests.
        data: &'a [u8],
    },
    /// FC 22: (current AND and_mask) OR (or_mask AND NOT and_mask).
    MaskWrite {
        /// Register address.
        address: u16,
        /// AND mask.
        and_mask: u16,
        /// OR mask.
        or_mask: u16,
    },
    /// FC 23: read registers then write registers.
    ReadWrite {
        /// First register read.
        read_start: u16,
        /// Registers read.
        read_quantity: u16,
        /// First register written.
        write_start: u16,
        /// Registers written.
        write_quantity: u16,
        /// Declared byte count of the written values.
        byte_count: u8,
        /// Written registers.
        data: &'a [u8],
    },
    /// FC 24: read the FIFO queue behind a register.
    ReadFifo {
        /// FIFO pointer address.
        pointer: u16,
    },
    /// FC 43 MEI 14: Read Device Identification.
    ReadDeviceId {
        /// Access code (1 basic, 2 regular, 3 extended, 4 one object).
        code: u8,
        /// First object id wanted.
        object_id: u8,
    },
    /// FC 43 with another MEI type (13 CANopen, reserved types): raw data kept.
    Mei {
        /// MEI type.
        mei_type: u8,
        /// Data after the MEI type.
        data: &'a [u8],
    },
    /// FC 90: Schneider UMAS.
    Umas {
        /// Session pairing key.
        pair: u8,
        /// UMAS function code.
        code: u8,
        /// UMAS data.
        data: &'a [u8],
    },
    /// Anything else (user-defined, reserved, unassigned, or too short to decode): raw data.
    Raw {
        /// Bytes after the function code.
        data: &'a [u8],
    },
}

/// A Modbus response PDU, decoded as far as its function is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response<'a> {
    /// Function code with the high bit set and an exception code.
    Exception {
        /// Exception code.
        code: u8,
    },
    /// FC 1–4 and FC 23: a byte count and packed coils or registers.
    ReadData {
        /// Declared byte count.
        byte_count: u8,
        /// The data bytes.
        data: &'a [u8],
    },
    /// FC 5, FC 6: echo of the request.
    WriteSingle {
        /// Address.
        address: u16,
        /// Value.
        value: u16,
    },
    /// FC 7: the eight exception status outputs.
    ExceptionStatus {
        /// Status byte.
        status: u8,
    },
    /// FC 8: echo of the sub-function and data.
    Diagnostics {
        /// Sub-function code.
        sub: u16,
        /// Data field.
        data: &'a [u8],
    },
    /// FC 11: status word and event counter.
    CommEventCounter {
        /// 0xFFFF when a previous command is still being processed.
        status: u16,
        /// Event counter.
        event_count: u16,
    },
    /// FC 12: status, counters and the event bytes.
    CommEventLog {
        /// Declared byte count.
        byte_count: u8,
        /// Status word.
        status: u16,
        /// Event counter.
        event_count: u16,
        /// Message counter.
        message_count: u16,
        /// Event bytes, newest first.
        events: &'a [u8],
    },
    /// FC 15, FC 16: echo of start and quantity.
    WriteMultiple {
        /// First address.
        start: u16,
        /// Quantity.
        quantity: u16,
    },
    /// FC 17: device-specific server id, run indicator, additional data.
    ReportServerId {
        /// Declared byte count.
        byte_count: u8,
        /// The data bytes.
        data: &'a [u8],
    },
    /// FC 20, FC 21: the file record data.
    FileRecord {
        /// Declared length of the response data.
        byte_count: u8,
        /// Sub-responses.
        data: &'a [u8],
    },
    /// FC 22: echo of the request.
    MaskWrite {
        /// Register address.
        address: u16,
        /// AND mask.
        and_mask: u16,
        /// OR mask.
        or_mask: u16,
    },
    /// FC 24: the queued registers.
    ReadFifo {
        /// Declared byte count (of fifo count + values).
        byte_count: u16,
        /// Number of registers queued.
        fifo_count: u16,
        /// Registers.
        data: &'a [u8],
    },
    /// FC 43 MEI 14: device identification objects.
    DeviceId(DeviceId<'a>),
    /// FC 43 with another MEI type: raw data kept.
    Mei {
        /// MEI type.
        mei_type: u8,
        /// Data after the MEI type.
        data: &'a [u8],
    },
    /// FC 90: Schneider UMAS answer.
    Umas {
        /// Session pairing key.
        pair: u8,
        /// Response status code (0xFE ok, 0xFD error).
        code: u8,
        /// UMAS data.
        data: &'a [u8],
    },
    /// Anything else: raw data.
    Raw {
        /// Bytes after the function code.
        data: &'a [u8],
    },
}

/// The body of a Read Device Identification response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceId<'a> {
    /// Access code echoed.
    pub code: u8,
    /// Conformity level of the device.
    pub conformity: u8,
    /// 0xFF when more objects follow in another transaction.
    pub more_follows: u8,
    /// Next object id to ask for.
    pub next_object_id: u8,
    /// The objects that arrived whole, walked on demand (no allocation while decoding).
    pub objects: DeviceObjects<'a>,
}

/// The object list of a Read Device Identification response: `count` objects of
/// `[id][length][value]`, already checked to lie whole within `bytes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceObjects<'a> {
    /// The bytes of the whole objects.
    pub bytes: &'a [u8],
    /// Number of whole objects in `bytes`.
    pub count: u8,
}

impl<'a> DeviceObjects<'a> {
    /// Number of objects.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// True when no object arrived whole.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The objects in wire order: (id, value bytes).
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let mut rest = self.bytes;
        std::iter::from_fn(move || {
            let (&id, tail) = rest.split_first()?;
            let (&len, tail) = tail.split_first()?;
            let (value, tail) = tail.split_at_checked(usize::from(len))?;
            rest = tail;
            Some((id, value))
        })
    }
}

/// A PDU (function code and body) with the violations found while decoding it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu<T> {
    /// Raw function code (with the exception bit, for responses).
    pub function: u8,
    /// Decoded body.
    pub body: T,
    /// What broke the specification.
    pub violations: Violations,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(1, "read_coils", "public")]
    #[case(8, "diagnostics", "public")]
    #[case(0x83, "read_holding_registers", "public")]
    #[case(43, "encapsulated_interface_transport", "public")]
    #[case(90, "umas", "vendor")]
    #[case(71, "user_defined_function", "user_defined")]
    #[case(105, "user_defined_function", "user_defined")]
    #[case(9, "reserved_function", "reserved")]
    #[case(42, "reserved_function", "reserved")]
    #[case(0, "unassigned_function", "unassigned")]
    #[case(29, "unassigned_function", "unassigned")]
    #[case(52, "unassigned_function", "unassigned")]
    fn function_names(#[case] fc: u8, #[case] name: &str, #[case] cat: &str) {
        assert_eq!(function_name(fc), name);
        assert_eq!(function_category(fc).as_str(), cat);
    }

    #[test]
    fn every_code_has_a_name_and_category() {
        for fc in 0..=255u8 {
            assert!(!function_name(fc).is_empty());
            let _ = function_category(fc).as_str();
        }
    }

    #[rstest]
    #[case(3, 1, true)]
    #[case(3, 11, true)]
    #[case(3, 0, false)]
    #[case(3, 7, false)]
    #[case(3, 9, false)]
    #[case(3, 12, false)]
    #[case(3, 8, false)]
    #[case(20, 8, true)]
    fn exception_codes(#[case] fc: u8, #[case] code: u8, #[case] ok: bool) {
        assert_eq!(exception_possible(fc, code), ok);
    }

    #[test]
    fn violation_names_unique_and_ordered() {
        let v = Violations::LENGTH_MISMATCH | Violations::PROTOCOL_ID_NONZERO;
        assert_eq!(
            v.names().collect::<Vec<_>>(),
            ["protocol_id_nonzero", "length_mismatch"]
        );
        let mut names: Vec<_> = Violations::ALL.iter().map(|(_, n)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Violations::ALL.len());
        assert!(Violations::NONE.is_empty());
    }

    #[test]
    fn umas_names_and_effects() {
        assert_eq!(umas_name(0x02), Some("read_id"));
        assert_eq!(umas_name(0x41), Some("stop_plc"));
        assert_eq!(umas_effect(0x41), UmasEffect::Program);
        assert_eq!(umas_effect(0x22), UmasEffect::Read);
        assert_eq!(umas_effect(0x23), UmasEffect::Write);
        assert_eq!(umas_effect(0x99), UmasEffect::Program);
    }

    #[rstest]
    #[case::diag_public(diagnostic_label(0), "return_query_data")]
    #[case::diag_20(diagnostic_label(20), "clear_overrun_counter_and_flag")]
    #[case::diag_reserved_5(diagnostic_label(5), "reserved_diagnostic")]
    #[case::diag_reserved_19(diagnostic_label(19), "reserved_diagnostic")]
    #[case::diag_reserved_high(diagnostic_label(0xffff), "reserved_diagnostic")]
    #[case::mei_14(mei_label(14), "read_device_identification")]
    #[case::mei_13(mei_label(13), "canopen_general_reference")]
    #[case::mei_reserved_0(mei_label(0), "reserved_mei_type")]
    #[case::mei_reserved_15(mei_label(15), "reserved_mei_type")]
    #[case::umas_known(umas_label(0x41), "stop_plc")]
    #[case::umas_unknown(umas_label(0x00), "unknown_umas_function")]
    fn sub_function_labels(#[case] got: &str, #[case] want: &str) {
        assert_eq!(got, want);
    }
}
