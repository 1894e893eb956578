//! cargo-fuzz target `token_verify`: see `otp_fuzz::targets::token_verify`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    otp_fuzz::targets::token_verify(data);
});
