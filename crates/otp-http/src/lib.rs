//! otp-http: placeholder (see issues).
