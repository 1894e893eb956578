//! Keyed hashing of identities, IPs and other limiter keys.
//!
//! Stores keep a 16-byte keyed hash of `domain || 0x00 || key` instead of
//! the key itself, so neither a memory dump nor a Redis `SCAN` reveals who
//! asked for codes, and nobody without the hash key can aim collisions at
//! one shard or slot:
//!
//! - Redis ([`KeyHasher`]): `HMAC-SHA256(hash_key, …)` truncated to 16
//!   bytes. These names leave the process and are shared by every replica,
//!   so they are part of the versioned key layout (docs/store.md).
//! - memory ([`SipKey`]): SipHash-2-4 with its 128-bit output, keyed with
//!   16 bytes derived once from the hash key by the HMAC above. The names
//!   never leave the process (a restart forgets them), so nothing else has
//!   to compute them; SipHash is a keyed PRF made for exactly this job
//!   (hash-flooding-resistant table keys) and costs a few hundred
//!   instructions per key instead of two SHA-256 compressions (issue 17).

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

    /// The SipHash key of a memory store under this hash key: the first
    /// 16 bytes of the keyed hash of the empty key in a domain of its own
    /// (no limiter key is ever hashed in it).
    pub(crate) fn sip_key(&self) -> SipKey {
        SipKey::from_bytes(self.hash(b"stateless-otp/memory-siphash-key/v1", b""))
    }

    /// The keyed hash of `key` in `domain` as 32 lowercase hex characters.
    #[cfg(test)]
    pub(crate) fn hash_hex(&self, domain: &[u8], key: &[u8]) -> String {
        let mut s = String::with_capacity(32);
        self.push_hash_hex(&mut s, domain, key);
        s
    }

    /// Appends the keyed hash of `key` in `domain` to `out` as 32
    /// lowercase hex characters (Redis key names are built in one buffer).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn push_hash_hex(&self, out: &mut String, domain: &[u8], key: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.reserve(32);
        for b in self.hash(domain, key) {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// A SipHash-2-4 key (the memory store's keyed hash; see the module docs).
/// Redacted in `Debug`.
#[derive(Clone, Copy)]
pub(crate) struct SipKey {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for SipKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SipKey(<redacted>)")
    }
}

impl SipKey {
    /// The key of 16 bytes (two little-endian words, as the reference
    /// implementation reads them).
    fn from_bytes(k: [u8; 16]) -> Self {
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(&k[..8]);
        k1.copy_from_slice(&k[8..]);
        SipKey {
            k0: u64::from_le_bytes(k0),
            k1: u64::from_le_bytes(k1),
        }
    }

    /// 16-byte keyed hash of `key` in the namespace `domain`: SipHash-2-4
    /// (128-bit output) of `domain || 0x00 || key`.
    pub(crate) fn hash(&self, domain: &[u8], key: &[u8]) -> [u8; 16] {
        let mut s = Sip128::new(self);
        let n = domain.len() + 1 + key.len();
        if n <= SHORT_MESSAGE {
            // One contiguous message (nearly every key): whole words from
            // the start, no byte-by-byte filling at the pieces' seams.
            let mut buf = [0u8; SHORT_MESSAGE];
            buf[..domain.len()].copy_from_slice(domain);
            buf[domain.len() + 1..n].copy_from_slice(key);
            s.update(&buf[..n]);
        } else {
            s.update(domain);
            s.update(&[0]);
            s.update(key);
        }
        s.finish()
    }
}

/// Messages up to this many bytes are hashed from one stack buffer (a
/// session's key, the longest frequent one, is 82 bytes at most).
const SHORT_MESSAGE: usize = 96;

/// The state of one SipHash-2-4-128 computation (the reference algorithm
/// of Aumasson and Bernstein, fed in pieces).
struct Sip128 {
    v: [u64; 4],
    /// Bytes not yet compressed (little-endian, `ntail` of them).
    tail: u64,
    ntail: usize,
    /// Bytes fed so far (only its low byte enters the last block).
    len: usize,
}

impl Sip128 {
    fn new(k: &SipKey) -> Self {
        Sip128 {
            v: [
                0x736f_6d65_7073_6575 ^ k.k0,
                // 0xee: the 128-bit output variant.
                0x646f_7261_6e64_6f6d ^ k.k1 ^ 0xee,
                0x6c79_6765_6e65_7261 ^ k.k0,
                0x7465_6462_7974_6573 ^ k.k1,
            ],
            tail: 0,
            ntail: 0,
            len: 0,
        }
    }

    #[inline(always)]
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }

    #[inline(always)]
    fn compress(&mut self, m: u64) {
        self.v[3] ^= m;
        Self::round(&mut self.v);
        Self::round(&mut self.v);
        self.v[0] ^= m;
    }

    fn update(&mut self, mut bytes: &[u8]) {
        self.len = self.len.wrapping_add(bytes.len());
        if self.ntail > 0 {
            while self.ntail < 8 {
                let Some((&b, rest)) = bytes.split_first() else {
                    return;
                };
                self.tail |= u64::from(b) << (8 * self.ntail);
                self.ntail += 1;
                bytes = rest;
            }
            let m = self.tail;
            self.compress(m);
            self.tail = 0;
            self.ntail = 0;
        }
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.compress(u64::from_le_bytes(w));
        }
        for (i, &b) in chunks.remainder().iter().enumerate() {
            self.tail |= u64::from(b) << (8 * i);
        }
        self.ntail = chunks.remainder().len();
    }

    fn finish(mut self) -> [u8; 16] {
        let b = ((self.len as u64) << 56) | self.tail;
        self.compress(b);
        self.v[2] ^= 0xee;
        for _ in 0..4 {
            Self::round(&mut self.v);
        }
        let lo = self.v[0] ^ self.v[1] ^ self.v[2] ^ self.v[3];
        self.v[1] ^= 0xdd;
        for _ in 0..4 {
            Self::round(&mut self.v);
        }
        let hi = self.v[0] ^ self.v[1] ^ self.v[2] ^ self.v[3];
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&lo.to_le_bytes());
        out[8..].copy_from_slice(&hi.to_le_bytes());
        out
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

    /// The reference vectors of SipHash-2-4 with 128-bit output
    /// (`vectors_sip128` of github.com/veorq/SipHash): key 00 01 … 0f,
    /// message 00 01 … (n − 1).
    #[test]
    fn siphash_128_matches_the_reference_vectors() {
        let key = SipKey::from_bytes(std::array::from_fn(|i| i as u8));
        let msg: Vec<u8> = (0u8..64).collect();
        let vectors: [(usize, &str); 8] = [
            (0, "a3817f04ba25a8e66df67214c7550293"),
            (1, "da87c1d86b99af44347659119b22fc45"),
            (7, "a1f1ebbed8dbc153c0b84aa61ff08239"),
            (8, "3b62a9ba6258f5610f83e264f31497b4"),
            (9, "264499060ad9baabc47f8b02bb6d71ed"),
            (15, "5493e99933b0a8117e08ec0f97cfc3d9"),
            (16, "6ee2a4ca67b054bbfd3315bf85230577"),
            (63, "5150d1772f50834a503e069a973fbd7c"),
        ];
        let hex = |b: [u8; 16]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        for (n, want) in vectors {
            let mut s = Sip128::new(&key);
            s.update(&msg[..n]);
            assert_eq!(hex(s.finish()), want, "length {n}");
            // Fed in pieces of every split, the same output.
            for split in 0..n {
                let mut s = Sip128::new(&key);
                s.update(&msg[..split / 2]);
                s.update(&msg[split / 2..split]);
                s.update(&msg[split..n]);
                assert_eq!(hex(s.finish()), want, "length {n} split at {split}");
            }
        }
    }

    #[test]
    fn short_and_long_keys_hash_as_the_same_message() {
        let k = SipKey::from_bytes([7; 16]);
        let key: Vec<u8> = (0..200u8).collect();
        for n in 0..key.len() {
            let mut s = Sip128::new(&k);
            s.update(b"dom");
            s.update(&[0]);
            s.update(&key[..n]);
            assert_eq!(k.hash(b"dom", &key[..n]), s.finish(), "key length {n}");
        }
    }

    #[test]
    fn sip_hash_is_keyed_and_domain_separated() {
        let a = KeyHasher::new(&HashKey::from(&b"key-a"[..])).sip_key();
        let b = KeyHasher::new(&HashKey::from(&b"key-b"[..])).sip_key();
        assert_ne!(a.hash(b"k", b"alice"), b.hash(b"k", b"alice"));
        assert_ne!(a.hash(b"k", b"alice"), a.hash(b"s", b"alice"));
        // The separator keeps ("k", "xalice") apart from ("kx", "alice").
        assert_ne!(a.hash(b"k", b"xalice"), a.hash(b"kx", b"alice"));
        assert_eq!(a.hash(b"k", b"alice"), a.hash(b"k", b"alice"));
        assert_eq!(format!("{a:?}"), "SipKey(<redacted>)");
    }

    #[test]
    fn debug_redacts() {
        let k = HashKey::from(&b"super-secret"[..]);
        let s = format!("{k:?}");
        assert!(!s.contains("super"), "{s}");
    }
}
