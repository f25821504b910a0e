#![no_main]
//! Fuzz target: `otwatch::fuzzing::capture_file`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| otwatch::fuzzing::capture_file(data));
