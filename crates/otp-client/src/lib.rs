//! otp-client: placeholder (see issues).
