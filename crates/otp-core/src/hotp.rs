//! hotp (in progress)
