//! # otp-server (library)
//!
//! The configuration of the stateless-otp binary, usable from tests, fuzz
//! targets and embedders: [`settings`] layers defaults < TOML file <
//! environment < flags and validates them into the library crates' typed
//! configurations (one builder per concern); [`vars`] is the one table of
//! variables everything else — defaults, ranges, `otp-server env`, the
//! README and docs/operations.md tables — is generated from; [`app`] turns
//! settings into a running server ([`build`], [`serve`], [`run`]), which
//! the binary (`src/main.rs`: CLI, logging, signals), `check-config`
//! ([`components`]) and the in-process tests share; [`probe`] is
//! `otp-server probe` and `otp-server send-test`; [`log_writer`] is the
//! log's buffered stderr writer and [`log_format`] the cheaper
//! formatting of its lines.

pub mod app;
pub mod coalesce;
pub mod log_format;
pub mod log_writer;
pub mod probe;
pub mod settings;
pub mod vars;

pub use app::{bind, build, components, run, serve, Components, Parts};
pub use settings::{RawSettings, SettingError, Settings};
