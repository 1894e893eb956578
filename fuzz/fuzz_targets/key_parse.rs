//! cargo-fuzz target `key_parse`: see `otp_fuzz::targets::key_parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    otp_fuzz::targets::key_parse(data);
});
