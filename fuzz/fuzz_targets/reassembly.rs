#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pcapidx_stream::fuzzing::check_reassembly(data));
