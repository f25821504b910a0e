#![no_main]
//! Fuzz target: `otwatch::fuzzing::modbus_stream`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| otwatch::fuzzing::modbus_stream(data));
