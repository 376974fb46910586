#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| csra_fuzz::frame_yuyv(data));
