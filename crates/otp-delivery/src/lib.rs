//! otp-delivery: placeholder (see issues).
