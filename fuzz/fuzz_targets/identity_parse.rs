//! cargo-fuzz target `identity_parse`: see `otp_fuzz::targets::identity_parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    otp_fuzz::targets::identity_parse(data);
});
