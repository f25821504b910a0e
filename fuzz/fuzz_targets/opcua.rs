#![no_main]
//! Fuzz target: `otwatch::fuzzing::opcua_stream`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| otwatch::fuzzing::opcua_stream(data));
