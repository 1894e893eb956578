//! The fixed secrets of the tests. They are test values only: a test that
//! proves a secret never reaches a log line searches for exactly these.

/// The OTP key: 32 bytes of `Z` (0x5a).
pub const OTP_KEY: [u8; 32] = [b'Z'; 32];

/// [`OTP_KEY`] as base64url without padding (what `OTP_SECRET_KEY` takes).
pub const OTP_KEY_B64: &str = "WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo";

/// The HS256 JWT secret (40 bytes, above the 32-byte minimum).
pub const JWT_SECRET: &str = "test-jwt-secret-test-jwt-secret-test-jwt";

/// The key that hashes identities into store keys (`RATE_LIMIT_HASH_KEY`).
pub const HASH_KEY: [u8; 32] = [9; 32];

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn the_base64_key_is_the_byte_key() {
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(OTP_KEY_B64)
            .unwrap();
        assert_eq!(decoded, OTP_KEY);
    }

    #[test]
    fn secrets_are_long_enough() {
        assert!(JWT_SECRET.len() >= 32);
        assert!(HASH_KEY.len() >= 32);
    }
}
