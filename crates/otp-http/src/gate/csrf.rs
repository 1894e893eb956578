//! CSRF protection of the gate's forms (SPEC §11): a signed double submit
//! plus an origin check.
//!
//! - The browser holds a random secret in the `otp_csrf` cookie
//!   (host-only, `Path=<GATE_PATH>`, `HttpOnly`).
//! - Every form carries `csrf` = base64url(HMAC-SHA256(key, secret)), the
//!   key derived from the OTP key (`stateless-otp/gate-csrf/v1`), so a
//!   token is bound to one cookie and cannot be minted without the server
//!   key: an attacker who plants a cookie (a sibling subdomain can) still
//!   cannot produce the matching field.
//! - A POST is refused when the field is missing, does not match the
//!   cookie (foreign), or there is no cookie (unbound); and unless its
//!   `Origin` — or, without one, its `Referer` — is `GATE_URL`'s origin.
//!   A POST with neither header is refused too.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use otp_core::SecretBytes;
use subtle::ConstantTimeEq;

use actix_web::http::header;
use actix_web::HttpRequest;

/// Label of the key derivation ([`otp_core::OtpKeyRing::derive_subkey`]).
pub const CSRF_KEY_LABEL: &str = "stateless-otp/gate-csrf/v1";

/// Bytes of randomness in a CSRF secret.
const SECRET_BYTES: usize = 32;

/// Why a POST was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No `csrf` form field.
    MissingToken,
    /// No `otp_csrf` cookie to bind the field to.
    Unbound,
    /// The field belongs to another cookie (or is no token at all).
    Foreign,
    /// Neither `Origin` nor `Referer`.
    NoOrigin,
    /// `Origin` (or `Referer`) is another site.
    CrossOrigin,
}

impl Refusal {
    /// For the log (never token data).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::MissingToken => "missing csrf token",
            Refusal::Unbound => "csrf token without its cookie",
            Refusal::Foreign => "csrf token of another cookie",
            Refusal::NoOrigin => "neither Origin nor Referer",
            Refusal::CrossOrigin => "Origin or Referer of another site",
        }
    }
}

/// A new random cookie secret (base64url).
pub(crate) fn new_secret() -> String {
    match otp_core::generate_key(SECRET_BYTES) {
        Ok(bytes) => URL_SAFE_NO_PAD.encode(bytes.expose()),
        // The OS random source failed: an empty secret binds no token, so
        // every POST is refused rather than accepted with a guessable one.
        Err(_) => String::new(),
    }
}

/// Whether `secret` has the shape [`new_secret`] gives (a cookie value
/// worth keeping).
pub(crate) fn is_secret(secret: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(secret)
        .is_ok_and(|b| b.len() == SECRET_BYTES)
}

/// The form token bound to the cookie `secret`.
pub(crate) fn token_for(key: &SecretBytes, secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(mac(key, secret))
}

fn mac(key: &SecretBytes, secret: &str) -> Vec<u8> {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key.expose()).unwrap_or_else(|_| {
        <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new(&Default::default())
    });
    mac.update(b"otp_csrf\0");
    mac.update(secret.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Checks the form `token` against the cookie `secret`.
pub(crate) fn check_token(
    key: &SecretBytes,
    secret: Option<&str>,
    token: Option<&str>,
) -> Result<(), Refusal> {
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or(Refusal::MissingToken)?;
    let secret = secret.filter(|s| is_secret(s)).ok_or(Refusal::Unbound)?;
    let given = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| Refusal::Foreign)?;
    if bool::from(given.ct_eq(&mac(key, secret))) {
        Ok(())
    } else {
        Err(Refusal::Foreign)
    }
}

/// The origin (`scheme://host[:port]`, lowercase) of an absolute URL.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if scheme.is_empty() || authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{authority}").to_ascii_lowercase())
}

/// Checks that the request comes from `public_url`'s origin: its `Origin`
/// header, or without one its `Referer`.
pub(crate) fn check_origin(req: &HttpRequest, public_url: &str) -> Result<(), Refusal> {
    let expected = origin_of(public_url).ok_or(Refusal::CrossOrigin)?;
    let headers = req.headers();
    let seen = match headers.get(header::ORIGIN) {
        // `Origin: null` (sandboxed or privacy-redirected) names no site:
        // origin_of refuses it.
        Some(origin) => origin.to_str().ok().and_then(origin_of),
        None => match headers.get(header::REFERER) {
            Some(referer) => referer.to_str().ok().and_then(origin_of),
            None => return Err(Refusal::NoOrigin),
        },
    };
    match seen {
        Some(seen) if seen == expected => Ok(()),
        _ => Err(Refusal::CrossOrigin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn key() -> SecretBytes {
        SecretBytes::new(vec![7; 32])
    }

    #[test]
    fn a_token_verifies_only_with_its_own_cookie() {
        let a = new_secret();
        let b = new_secret();
        assert!(is_secret(&a));
        assert_ne!(a, b);
        let t = token_for(&key(), &a);
        assert_eq!(check_token(&key(), Some(&a), Some(&t)), Ok(()));
        assert_eq!(
            check_token(&key(), Some(&b), Some(&t)),
            Err(Refusal::Foreign)
        );
        assert_eq!(check_token(&key(), None, Some(&t)), Err(Refusal::Unbound));
        assert_eq!(
            check_token(&key(), Some(&a), None),
            Err(Refusal::MissingToken)
        );
        assert_eq!(
            check_token(&key(), Some(&a), Some("")),
            Err(Refusal::MissingToken)
        );
        let other_key = SecretBytes::new(vec![8; 32]);
        assert_eq!(
            check_token(&other_key, Some(&a), Some(&t)),
            Err(Refusal::Foreign)
        );
    }

    #[test]
    fn origin_then_referer_must_be_the_gate_origin() {
        let gate = "https://auth.example.com";
        let req = |h: &[(&str, &str)]| {
            let mut r = TestRequest::post();
            for (n, v) in h {
                r = r.insert_header((*n, *v));
            }
            r.to_http_request()
        };
        assert_eq!(
            check_origin(&req(&[("Origin", "https://auth.example.com")]), gate),
            Ok(())
        );
        assert_eq!(
            check_origin(
                &req(&[("Referer", "https://AUTH.example.com/auth/login?rd=x")]),
                gate
            ),
            Ok(())
        );
        assert_eq!(check_origin(&req(&[]), gate), Err(Refusal::NoOrigin));
        for bad in [
            &[("Origin", "https://evil.example")][..],
            &[("Origin", "null")],
            &[("Origin", "http://auth.example.com")],
            &[("Origin", "https://auth.example.com.evil.example")],
            &[("Referer", "https://evil.example/https://auth.example.com")],
            // Origin wins over a matching Referer.
            &[
                ("Origin", "https://evil.example"),
                ("Referer", "https://auth.example.com/"),
            ],
        ] {
            assert_eq!(
                check_origin(&req(bad), gate),
                Err(Refusal::CrossOrigin),
                "{bad:?}"
            );
        }
    }
}
