#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pcapidx_positions::fuzzing::check_chunk(data));
