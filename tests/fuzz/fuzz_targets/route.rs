//! libFuzzer entry for `zhifu::fuzzing::target_route`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zhifu::fuzzing::target_route(data));
