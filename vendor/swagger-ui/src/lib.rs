//! # otp-swagger-ui
//!
//! The third-party Swagger UI assets that `otp-http` serves at `/docs`:
//! `swagger-ui-dist` (see `VERSION`) from the npm registry, unmodified, with
//! its Apache-2.0 `LICENSE` and `NOTICE`. They live in their own crate, outside
//! `crates/`, so the project's own code and this minified third-party code
//! stay apart, and so `cargo package` ships the files with the crate that
//! embeds them.
//!
//! ```
//! assert!(otp_swagger_ui::BUNDLE_JS.starts_with(b"/*!"));
//! assert!(!otp_swagger_ui::CSS.is_empty());
//! assert!(otp_swagger_ui::VERSION.starts_with("swagger-ui-dist 5."));
//! ```
#![forbid(unsafe_code)]

/// `swagger-ui-bundle.js`, served as `application/javascript`.
pub static BUNDLE_JS: &[u8] = include_bytes!("../assets/swagger-ui-bundle.js");

/// `swagger-ui.css`, served as `text/css`.
pub static CSS: &[u8] = include_bytes!("../assets/swagger-ui.css");

/// Where the assets came from (the `VERSION` file).
pub const VERSION: &str = include_str!("../VERSION");
