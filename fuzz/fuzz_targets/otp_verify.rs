//! cargo-fuzz target `otp_verify`: see `otp_fuzz::targets::otp_verify`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    otp_fuzz::targets::otp_verify(data);
});
