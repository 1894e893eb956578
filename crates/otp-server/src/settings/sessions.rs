//! The sessions concern (SPEC §10): `SESSIONS`, `REFRESH_TOKEN_TTL`,
//! `SESSION_MAX_LIFETIME`, `REFRESH_REUSE_GRACE_SECONDS` into
//! [`SessionConfig`]. Defaults and ranges come from the variable table,
//! which takes them from `otp-service`.

use std::time::Duration;

use otp_service::SessionConfig;

use super::{err, Notes, RawSettings, SettingError};

/// Reads the sessions concern. `SESSIONS` is `on` or `off` (also `true` /
/// `false`). A refresh-token lifetime longer than the session's maximum
/// is valid (tokens are capped at the maximum) and noted as a warning.
pub fn build(raw: &RawSettings, notes: &mut Notes) -> Result<SessionConfig, SettingError> {
    let enabled = match raw.get("SESSIONS").map(str::to_ascii_lowercase).as_deref() {
        None | Some("on" | "true") => true,
        Some("off" | "false") => false,
        Some(other) => {
            return Err(err(
                "SESSIONS",
                format!("expected on or off, got '{other}'"),
            ))
        }
    };
    let refresh_ttl: u64 = raw.num("REFRESH_TOKEN_TTL")?;
    let max_lifetime: u64 = raw.num("SESSION_MAX_LIFETIME")?;
    if enabled && refresh_ttl > max_lifetime {
        notes.warnings.push(format!(
            "REFRESH_TOKEN_TTL ({refresh_ttl} s) is longer than SESSION_MAX_LIFETIME ({max_lifetime} s): refresh tokens end at the session's maximum"
        ));
    }
    Ok(SessionConfig {
        enabled,
        refresh_ttl: Duration::from_secs(refresh_ttl),
        max_lifetime: Duration::from_secs(max_lifetime),
        reuse_grace: Duration::from_secs(raw.num("REFRESH_REUSE_GRACE_SECONDS")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(vars: &[(&str, &str)]) -> RawSettings {
        let env = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        RawSettings::load(None, env).unwrap()
    }

    #[test]
    fn sessions_settings_parse_and_bad_values_name_the_variable() {
        let mut notes = Notes::default();
        let d = build(&raw(&[]), &mut notes).unwrap();
        assert_eq!(d, SessionConfig::default());
        let c = build(
            &raw(&[
                ("SESSIONS", "OFF"),
                ("REFRESH_TOKEN_TTL", "3600"),
                ("SESSION_MAX_LIFETIME", "86400"),
                ("REFRESH_REUSE_GRACE_SECONDS", "0"),
            ]),
            &mut notes,
        )
        .unwrap();
        assert!(!c.enabled);
        assert_eq!(c.refresh_ttl, Duration::from_secs(3600));
        assert_eq!(c.max_lifetime, Duration::from_secs(86_400));
        assert_eq!(c.reuse_grace, Duration::ZERO);
        let e = build(&raw(&[("SESSIONS", "maybe")]), &mut notes).unwrap_err();
        assert_eq!(e.variable, "SESSIONS");
        for (var, bad) in [
            ("REFRESH_TOKEN_TTL", "0"),
            ("SESSION_MAX_LIFETIME", "x"),
            ("REFRESH_REUSE_GRACE_SECONDS", "301"),
        ] {
            let e = build(&raw(&[(var, bad)]), &mut notes).unwrap_err();
            assert_eq!(e.variable, var, "{bad}");
        }
        assert!(notes.warnings.is_empty());
        build(
            &raw(&[
                ("REFRESH_TOKEN_TTL", "7200"),
                ("SESSION_MAX_LIFETIME", "3600"),
            ]),
            &mut notes,
        )
        .unwrap();
        assert_eq!(notes.warnings.len(), 1, "{:?}", notes.warnings);
    }
}
