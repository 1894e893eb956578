//! cargo-fuzz target `wire_json`: see `otp_fuzz::targets::wire_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    otp_fuzz::targets::wire_json(data);
});
