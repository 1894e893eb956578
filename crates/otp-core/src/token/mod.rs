//! JSON Web Tokens (in progress)
