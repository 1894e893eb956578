//! otp-ratelimit: placeholder (see issues).
