//! otp-service: placeholder (see issues).
