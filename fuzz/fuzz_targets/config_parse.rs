//! cargo-fuzz target `config_parse`: see `otp_fuzz::targets::config_parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    otp_fuzz::targets::config_parse(data);
});
