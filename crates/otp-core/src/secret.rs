//! Secret byte strings that zeroize on drop and never print (SPEC §3.5).

use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Secret key material: wiped from memory on drop, redacted in `Debug`.
///
/// ```
/// use otp_core::SecretBytes;
/// let s = SecretBytes::new(b"super secret key material".to_vec());
/// assert_eq!(format!("{s:?}"), "SecretBytes([REDACTED; 25 bytes])");
/// assert_eq!(s.expose().len(), 25);
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps `bytes`; the vector is zeroized when the secret is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }

    /// The raw bytes. Keep the borrow short and never log it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Returns true if and only if the secret holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(v: Vec<u8>) -> Self {
        SecretBytes(v)
    }
}

impl From<&[u8]> for SecretBytes {
    fn from(v: &[u8]) -> Self {
        SecretBytes(v.to_vec())
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([REDACTED; {} bytes])", self.0.len())
    }
}
