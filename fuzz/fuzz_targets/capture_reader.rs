#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pcapidx_capture::fuzzing::check_reader(data));
