//! Keyed hashing of identities, IPs and other limiter keys.
//!
//! Stores keep `HMAC-SHA256(hash_key, domain || 0x00 || key)` truncated to 16
//! bytes instead of the key itself, so neither a memory dump nor a Redis
//! `SCAN` reveals who asked for codes, and nobody without the hash key can
//! aim collisions at one shard or slot.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The secret key of the keyed hash. Zeroized on drop, redacted in `Debug`.
///
/// Every replica sharing one Redis must use the same key (otherwise they
/// compute different Redis keys and do not share limits). At least 16 random
/// bytes are recommended; an empty key is accepted but makes the hash a plain
/// (unkeyed) SHA-256 variant.
#[derive(Clone)]
pub struct HashKey(Zeroizing<Vec<u8>>);

impl HashKey {
    /// Wraps `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        HashKey(Zeroizing::new(bytes))
    }

    /// A random key for one process: 32 bytes derived with SipHash from the
    /// standard library's per-thread random seed (128 bits from the operating
    /// system). Fine for the memory backend, which shares nothing; Redis
    /// needs a configured key shared by all replicas.
    pub fn random() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut out = Vec::with_capacity(32);
        for i in 0u64..4 {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(i);
            out.extend_from_slice(&h.finish().to_le_bytes());
        }
        HashKey::new(out)
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HashKey(<{} bytes redacted>)", self.0.len())
    }
}

impl From<Vec<u8>> for HashKey {
    fn from(v: Vec<u8>) -> Self {
        HashKey::new(v)
    }
}

impl From<&[u8]> for HashKey {
    fn from(v: &[u8]) -> Self {
        HashKey::new(v.to_vec())
    }
}

/// A keyed hasher with the HMAC key schedule done once (cloning the keyed
/// state saves two SHA-256 compressions per hash).
#[derive(Clone)]
pub(crate) struct KeyHasher {
    keyed: Hmac<Sha256>,
}

impl KeyHasher {
    pub(crate) fn new(key: &HashKey) -> Self {
        // HMAC accepts keys of any length (long keys are hashed first), so
        // `new_from_slice` has no failure case for it.
        #[allow(clippy::expect_used)]
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(key.expose())
            .expect("HMAC-SHA256 accepts keys of every length");
        KeyHasher { keyed }
    }

    /// 16-byte keyed hash of `key` in the namespace `domain`.
    pub(crate) fn hash(&self, domain: &[u8], key: &[u8]) -> [u8; 16] {
        let mut m = self.keyed.clone();
        m.update(domain);
        m.update(&[0]);
        m.update(key);
        let full = m.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// The keyed hash of `key` in `domain` as 32 lowercase hex characters.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn hash_hex(&self, domain: &[u8], key: &[u8]) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let h = self.hash(domain, key);
        let mut s = String::with_capacity(32);
        for b in h {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_keyed_and_domain_separated() {
        let a = KeyHasher::new(&HashKey::from(&b"key-a"[..]));
        let b = KeyHasher::new(&HashKey::from(&b"key-b"[..]));
        assert_ne!(a.hash(b"rl", b"alice"), b.hash(b"rl", b"alice"));
        assert_ne!(a.hash(b"rl", b"alice"), a.hash(b"uc", b"alice"));
        assert_eq!(a.hash(b"rl", b"alice"), a.hash(b"rl", b"alice"));
        let hex = a.hash_hex(b"rl", b"alice");
        assert_eq!(hex.len(), 32);
        assert!(hex.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn debug_redacts() {
        let k = HashKey::from(&b"super-secret"[..]);
        let s = format!("{k:?}");
        assert!(!s.contains("super"), "{s}");
    }
}
