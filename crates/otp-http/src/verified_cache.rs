//! A small bounded cache of recently verified access tokens for the
//! forward-auth route (`GET /api/v1/token/verify`, SPEC §9, §11).
//!
//! A proxy asks about the same token for every request a signed-in browser
//! makes (each page, script and image), so the same few hundred bytes are
//! verified again and again. An entry keeps the answer for one valid token:
//! its response body and subject, and the interval of unix seconds in which
//! the token verifies (`[max(nbf, iat) − leeway, exp + leeway)`, the claim
//! checks of otp-core). A hit is served only while `now` lies in that
//! interval, so the cache never accepts a token the full check would refuse
//! at that moment, and an entry never outlives the token's `exp`; an entry
//! found outside it is dropped.
//!
//! - Keyed by the whole token: the slot comes from a keyed hash (SipHash with
//!   a per-process random key, so nobody can aim tokens at one slot) of the
//!   token's last 32 bytes — its signature, unpredictable for every token
//!   that can be stored — and a hit requires the stored token to equal the
//!   presented one (constant-time comparison), so a collision can only cost
//!   a miss.
//! - Only tokens that passed the full check are stored; a refused token
//!   never touches the cache.
//! - Bounded: [`SLOTS`] direct-mapped slots, each at most one token
//!   ([`otp_core::MAX_TOKEN_BYTES`]) and its answer; a new token replaces
//!   whatever its slot held. One lock per slot.
//! - Per [`HttpState`](crate::HttpState), i.e. per key set: a token valid
//!   under one service's keys is never answered from another's cache.
//! - Access tokens are store-free (SPEC §10): logout does not end one before
//!   its `exp`, with or without this cache.

use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::web::Bytes;

/// Number of slots.
pub(crate) const SLOTS: usize = 256;

/// Trailing bytes of a token its slot is chosen by (an HS256 signature is
/// 43 characters, an EdDSA one 86).
const TAIL: usize = 32;

/// What the route answers for a valid token.
#[derive(Clone)]
pub(crate) struct Answer {
    /// The JSON body.
    pub(crate) body: Bytes,
    /// The headers of the 200 (see [`Answer::new`]), built once per token:
    /// a response takes a clone of the map instead of inserting each.
    pub(crate) headers: HeaderMap,
}

static X_AUTH_SUBJECT: HeaderName = HeaderName::from_static("x-auth-subject");
static REMOTE_USER: HeaderName = HeaderName::from_static("remote-user");
static NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
static JSON: HeaderValue = HeaderValue::from_static("application/json");

impl Answer {
    /// The answer with `body`: `X-Auth-Subject` and `Remote-User` carrying
    /// `subject` (when it is a valid header value), `Cache-Control:
    /// no-store`, `Content-Type: application/json`.
    pub(crate) fn new(body: Bytes, subject: &str) -> Answer {
        let mut headers = HeaderMap::with_capacity(5);
        // `sub` is a normalized identity (no control characters), so it is
        // a valid header value; obs-text bytes of non-ASCII ids are allowed.
        if let Ok(sub) = HeaderValue::from_bytes(subject.as_bytes()) {
            headers.insert(X_AUTH_SUBJECT.clone(), sub.clone());
            headers.insert(REMOTE_USER.clone(), sub);
        }
        headers.insert(header::CACHE_CONTROL, NO_STORE.clone());
        headers.insert(header::CONTENT_TYPE, JSON.clone());
        Answer { body, headers }
    }
}

struct Entry {
    token: Box<str>,
    /// First unix second at which the token verifies.
    from: u64,
    /// First unix second at which it no longer does (`exp + leeway`).
    until: u64,
    answer: Answer,
}

/// The cache (see the module docs).
pub(crate) struct VerifiedCache {
    hasher: RandomState,
    slots: Box<[Mutex<Option<Entry>>]>,
}

impl std::fmt::Debug for VerifiedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never the tokens
        f.debug_struct("VerifiedCache")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Default for VerifiedCache {
    fn default() -> Self {
        VerifiedCache {
            hasher: RandomState::new(),
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }
}

impl VerifiedCache {
    fn slot(&self, token: &str) -> &Mutex<Option<Entry>> {
        // The last bytes of a JWS are its signature: unpredictable for every
        // token that can be stored (only valid ones are), so hashing them
        // spreads tokens as well as hashing the whole text, at a tenth of
        // the cost. Any other token only ever misses.
        let tail = &token.as_bytes()[token.len().saturating_sub(TAIL)..];
        let i = self.hasher.hash_one(tail) as usize % self.slots.len();
        &self.slots[i]
    }

    /// The answer for `token` if it was stored and verifies at `now`.
    pub(crate) fn get(&self, token: &str, now: u64) -> Option<Answer> {
        let mut slot = self.slot(token).lock().unwrap_or_else(|e| e.into_inner());
        let entry = slot.as_ref()?;
        if !constant_time_eq(entry.token.as_bytes(), token.as_bytes()) {
            return None;
        }
        if now < entry.from || now >= entry.until {
            *slot = None;
            return None;
        }
        Some(entry.answer.clone())
    }

    /// Stores the answer for a token that verifies for the unix seconds
    /// `from..until` (and was checked at a moment inside them).
    pub(crate) fn put(&self, token: &str, from: u64, until: u64, answer: Answer) {
        if from >= until || token.len() > otp_core::MAX_TOKEN_BYTES {
            return;
        }
        let entry = Entry {
            token: token.into(),
            from,
            until,
            answer,
        };
        *self.slot(token).lock().unwrap_or_else(|e| e.into_inner()) = Some(entry);
    }
}

/// Equality of two byte strings in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &'static str) -> Answer {
        Answer::new(Bytes::from_static(body.as_bytes()), "alice")
    }

    #[test]
    fn a_hit_needs_the_same_token_and_a_moment_inside_its_validity() {
        let c = VerifiedCache::default();
        c.put("a.b.c", 100, 200, answer("A"));
        assert_eq!(c.get("a.b.c", 100).unwrap().body, "A");
        assert_eq!(c.get("a.b.c", 199).unwrap().body, "A");
        assert!(c.get("a.b.d", 150).is_none(), "another token");
        assert!(c.get("a.b.", 150).is_none(), "a prefix");
        // before nbf/iat (a clock stepped back): no hit, and the entry goes
        assert!(c.get("a.b.c", 99).is_none());
        assert!(c.get("a.b.c", 150).is_none(), "dropped on the miss");
    }

    #[test]
    fn an_entry_never_outlives_exp() {
        let c = VerifiedCache::default();
        c.put("a.b.c", 100, 200, answer("A"));
        assert!(c.get("a.b.c", 200).is_none(), "exp itself is expired");
        assert!(c.get("a.b.c", 150).is_none(), "and the entry is gone");
        c.put("x.y.z", 100, 100, answer("X"));
        assert!(c.get("x.y.z", 100).is_none(), "empty validity: not stored");
    }

    #[test]
    fn the_cache_is_bounded_by_its_slots() {
        let c = VerifiedCache::default();
        let tokens: Vec<String> = (0..10 * SLOTS).map(|i| format!("t.{i}.s")).collect();
        for t in &tokens {
            c.put(t, 0, 10, answer("A"));
        }
        let held = tokens.iter().filter(|t| c.get(t, 5).is_some()).count();
        assert!(held <= SLOTS, "{held} entries held");
        assert!(held > 0);
        // the last token stored is always held
        assert!(c.get(tokens.last().unwrap(), 5).is_some());
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
