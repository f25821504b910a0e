#![no_main]
//! Fuzz target: `otwatch::fuzzing::packet_path`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| otwatch::fuzzing::packet_path(data));
