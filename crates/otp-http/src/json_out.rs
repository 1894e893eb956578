//! The JSON answers of the sign-in and refresh routes, written field by
//! field into one buffer.
//!
//! They carry two tokens of a few hundred bytes each, which serde_json
//! scans byte by byte for characters to escape. A token this service
//! signs is base64url and dots, so the scan finds nothing: here a string
//! is checked 32 bytes at a time and copied as is when nothing in it
//! needs escaping, and written by serde_json otherwise. The bytes are
//! those serde_json writes for the wire types
//! ([`OtpVerifyResponse`](otp_core::wire::OtpVerifyResponse),
//! [`RefreshResponse`](otp_core::wire::RefreshResponse)): same fields, same
//! order (the tests compare both).

use actix_web::web::Bytes;
use otp_core::wire::messages;

/// The body of `POST /api/v1/otp/verify`'s 200 (the bytes of
/// [`OtpVerifyResponse`](otp_core::wire::OtpVerifyResponse)); `refresh`
/// is the session's refresh token and its lifetime, absent with sessions
/// off.
pub(crate) fn verify_answer(
    access: &str,
    expires_in: u64,
    remaining: u32,
    refresh: Option<(&str, u64)>,
) -> Bytes {
    let refresh_len = refresh.map_or(0, |(token, _)| token.len());
    let mut body = JsonObject::with_capacity(192 + access.len() + refresh_len)
        .bool("success", true)
        .str("message", messages::OTP_VERIFIED)
        .str("access_token", access)
        .str("token_type", "bearer")
        .u64("expires_in", expires_in)
        .u64("rate_limit_remaining", remaining.into());
    if let Some((token, ttl)) = refresh {
        body = body
            .str("refresh_token", token)
            .u64("refresh_expires_in", ttl);
    }
    body.finish()
}

/// The body of `POST /api/v1/token/refresh`'s 200 (the bytes of
/// [`RefreshResponse`](otp_core::wire::RefreshResponse)).
pub(crate) fn refresh_answer(
    access: &str,
    expires_in: u64,
    refresh: &str,
    refresh_expires_in: u64,
) -> Bytes {
    JsonObject::with_capacity(128 + access.len() + refresh.len())
        .bool("success", true)
        .str("access_token", access)
        .str("token_type", "bearer")
        .u64("expires_in", expires_in)
        .str("refresh_token", refresh)
        .u64("refresh_expires_in", refresh_expires_in)
        .finish()
}

/// A JSON object being written.
struct JsonObject {
    buf: Vec<u8>,
    empty: bool,
}

/// Whether `s` can be written between quotes as is: no control
/// character, quote, backslash or DEL (serde_json escapes the first three;
/// DEL is kept out to stay on the plain-ASCII side), and only ASCII.
fn plain(s: &str) -> bool {
    let ok = |b: u8| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\';
    // no early exit inside a chunk: the compiler vectorizes the fold
    s.as_bytes()
        .chunks(32)
        .all(|c| c.iter().fold(true, |all, &b| all & ok(b)))
}

impl JsonObject {
    /// An object expected to take about `capacity` bytes.
    fn with_capacity(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        buf.push(b'{');
        JsonObject { buf, empty: true }
    }

    fn key(&mut self, name: &'static str) {
        debug_assert!(plain(name));
        if !self.empty {
            self.buf.push(b',');
        }
        self.empty = false;
        self.buf.push(b'"');
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    /// Adds a string field.
    fn str(mut self, name: &'static str, value: &str) -> Self {
        self.key(name);
        if plain(value) {
            self.buf.push(b'"');
            self.buf.extend_from_slice(value.as_bytes());
            self.buf.push(b'"');
        } else {
            // writing into a Vec cannot fail
            let _ = serde_json::to_writer(&mut self.buf, value);
        }
        self
    }

    /// Adds a number field.
    fn u64(mut self, name: &'static str, value: u64) -> Self {
        self.key(name);
        let _ = serde_json::to_writer(&mut self.buf, &value);
        self
    }

    /// Adds a boolean field.
    fn bool(mut self, name: &'static str, value: bool) -> Self {
        self.key(name);
        self.buf
            .extend_from_slice(if value { b"true" } else { b"false" });
        self
    }

    /// The object's bytes.
    fn finish(mut self) -> Bytes {
        self.buf.push(b'}');
        Bytes::from(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use otp_core::wire::{OtpVerifyResponse, RefreshResponse};

    use super::*;

    #[test]
    fn the_bytes_are_serde_jsons_for_plain_and_escaped_strings() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU-_x";
        let odd = [
            "ort1_AAAA",
            "",
            "a\"b",
            "back\\slash",
            "line\nbreak\t\u{1}",
            "del\u{7f}",
            "é ünïcödé ✓",
            &"x".repeat(31),
            &format!("{}\"", "y".repeat(32)),
        ];
        for other in odd {
            let want = serde_json::to_vec(&RefreshResponse {
                success: true,
                access_token: jwt.into(),
                token_type: "bearer".into(),
                expires_in: 900,
                refresh_token: other.into(),
                refresh_expires_in: u64::MAX,
            })
            .unwrap();
            assert_eq!(refresh_answer(jwt, 900, other, u64::MAX), want, "{other:?}");
        }
    }

    #[test]
    fn the_verify_answer_matches_with_and_without_a_session() {
        for session in [Some(("ort1_abc".to_owned(), 86_400)), None] {
            let want = serde_json::to_vec(&OtpVerifyResponse {
                success: true,
                message: "OTP verified successfully.".into(),
                access_token: "h.p.s".into(),
                token_type: "bearer".into(),
                expires_in: 3600,
                rate_limit_remaining: 4,
                refresh_token: session.as_ref().map(|s| s.0.clone()),
                refresh_expires_in: session.as_ref().map(|s| s.1),
            })
            .unwrap();
            let got = verify_answer(
                "h.p.s",
                3600,
                4,
                session.as_ref().map(|(t, ttl)| (t.as_str(), *ttl)),
            );
            assert_eq!(got, want);
        }
    }

    #[test]
    fn plain_refuses_every_character_serde_json_escapes() {
        for b in 0u8..0x80 {
            let s = (b as char).to_string();
            let escaped = serde_json::to_string(&s).unwrap() != format!("\"{s}\"");
            if escaped {
                assert!(!plain(&s), "{b:#x}");
            }
        }
    }
}
