//! Lowercase hexadecimal, for the audit pseudonyms and message ids the
//! service and delivery crates print (one table, no per-byte `format!`).

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` to `out` as lowercase hexadecimal, two digits per byte.
///
/// ```
/// let mut s = String::from("msg_");
/// otp_core::push_lower_hex(&mut s, &[0x00, 0xab, 0x7f]);
/// assert_eq!(s, "msg_00ab7f");
/// ```
pub fn push_lower_hex(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}
