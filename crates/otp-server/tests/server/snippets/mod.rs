//! Code that docs/ shows verbatim, compiled and run by the tests (each file
//! is checked to appear in its document byte for byte).

/// docs/verify-elsewhere.md, "Rust: `jsonwebtoken`".
pub mod verify_jsonwebtoken;
