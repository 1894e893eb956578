//! Raw settings: the effective text of every known variable, layered from
//! the table's defaults < TOML file < environment < CLI flags, with the
//! typed readers every builder uses (one integer reader that checks the
//! table's range, one boolean parser for every flag, one list splitter).

use std::collections::BTreeMap;
use std::path::Path;

use super::{err, SettingError};
use crate::vars::{self, VARS};

/// Raw settings: the effective text value of every known variable.
#[derive(Debug, Clone, Default)]
pub struct RawSettings {
    values: BTreeMap<&'static str, String>,
    /// Where each value came from (`default`, `file`, `env`, `flag`,
    /// `secret file`).
    sources: BTreeMap<&'static str, &'static str>,
    /// `<NAME>_FILE` of a secret: its path, by secret name.
    secret_files: BTreeMap<&'static str, String>,
}

impl RawSettings {
    /// Layers the sources. `file` is the optional TOML file (keys are the
    /// variable names, upper or lower case); `env` is the process environment.
    pub fn load(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Self, SettingError> {
        let mut raw = RawSettings::default();
        for v in VARS {
            if let Some(d) = v.default_text() {
                raw.set(v.name, d, "default");
            }
        }
        if let Some(path) = file {
            raw.load_file(path)?;
        }
        for (key, value) in env {
            if let Some(name) = secret_file_of(&key) {
                raw.secret_files.insert(name, value);
            } else if let Some(name) = canonical(&key) {
                if key.eq_ignore_ascii_case(name) || vars::ALIASES.iter().any(|(a, _)| a == &key) {
                    raw.set(name, value, "env");
                }
            }
        }
        raw.read_secret_files()?;
        Ok(raw)
    }

    /// Reads every `<NAME>_FILE` (Docker and Kubernetes secrets, systemd
    /// credentials): the content is the secret, byte for byte, minus
    /// exactly one trailing newline (`\n` or `\r\n`). Setting both a secret
    /// and its file is an error, whichever layers they come from.
    fn read_secret_files(&mut self) -> Result<(), SettingError> {
        for (name, path) in std::mem::take(&mut self.secret_files) {
            let file_var = format!("{name}_FILE");
            if path.trim().is_empty() {
                continue;
            }
            if self.get(name).is_some() {
                return Err(err(
                    name,
                    format!("both {name} and {file_var} are set; set only one of them"),
                ));
            }
            let bytes = read_bounded(&path)
                .map_err(|e| err(&file_var, format!("cannot read {path}: {e}")))?;
            if bytes.len() > MAX_SECRET_FILE_BYTES {
                return Err(err(
                    &file_var,
                    format!("{path} is larger than {MAX_SECRET_FILE_BYTES} bytes, not a secret"),
                ));
            }
            let mut text = String::from_utf8(bytes)
                .map_err(|_| err(&file_var, format!("{path} is not UTF-8 text")))?;
            if text.ends_with('\n') {
                text.pop();
                if text.ends_with('\r') {
                    text.pop();
                }
            }
            if text.is_empty() {
                return Err(err(&file_var, format!("{path} is empty")));
            }
            self.set(name, text, "secret file");
        }
        Ok(())
    }

    fn load_file(&mut self, path: &Path) -> Result<(), SettingError> {
        let cfg = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .build()
            .map_err(|e| err("--config", format!("cannot read {}: {e}", path.display())))?;
        let table: BTreeMap<String, config::Value> = cfg
            .try_deserialize()
            .map_err(|e| err("--config", format!("{}: {e}", path.display())))?;
        for (key, value) in table {
            if let Some(name) = secret_file_of(&key) {
                let path = value.into_string().map_err(|e| {
                    err(
                        &format!("{name}_FILE"),
                        format!("in {}: expected a path ({e})", path.display()),
                    )
                })?;
                self.secret_files.insert(name, path);
                continue;
            }
            let name = canonical(&key).ok_or_else(|| {
                err(
                    "--config",
                    format!("unknown setting '{key}' in {}", path.display()),
                )
            })?;
            // Lists (TRUSTED_PROXIES, CORS_ORIGINS, previous keys…) may be
            // TOML arrays; they mean the same as the comma-separated form.
            let text = match value.kind {
                config::ValueKind::Array(items) => items
                    .into_iter()
                    .map(config::Value::into_string)
                    .collect::<Result<Vec<_>, _>>()
                    .map(|v| v.join(",")),
                _ => value.into_string(),
            }
            .map_err(|e| {
                err(
                    name,
                    format!(
                        "in {}: expected a string, number, boolean or list of them ({e})",
                        path.display()
                    ),
                )
            })?;
            self.set(name, text, "file");
        }
        Ok(())
    }

    /// Sets a value (CLI flags call this last).
    pub fn set(&mut self, name: &'static str, value: String, source: &'static str) {
        self.values.insert(name, value);
        self.sources.insert(name, source);
    }

    /// The value of `name`; empty strings count as unset. Values are
    /// trimmed, except secrets, which are used byte for byte as given (a
    /// `JWT_SECRET` ending in a space signs with that space, as the Python
    /// service did).
    pub fn get(&self, name: &str) -> Option<&str> {
        let value = self.values.get(name)?.as_str();
        let secret = vars::find(name).is_some_and(|v| v.secret);
        let value = if secret { value } else { value.trim() };
        (!value.is_empty()).then_some(value)
    }

    /// Where the value of `name` came from (`default`, `file`, `env`,
    /// `flag`), if it has one.
    pub fn source(&self, name: &str) -> Option<&'static str> {
        self.sources.get(name).copied()
    }

    /// Every known variable with its effective value (secrets redacted) and
    /// source, for `check-config`.
    pub fn redacted(&self) -> Vec<(&'static str, String, &'static str)> {
        VARS.iter()
            .map(|v| {
                let value = match self.get(v.name) {
                    None => "(unset)".to_owned(),
                    Some(_) if v.secret => "<redacted>".to_owned(),
                    Some(x) => x.to_owned(),
                };
                (v.name, value, self.source(v.name).unwrap_or("-"))
            })
            .collect()
    }

    /// `name` parsed with `FromStr`; the error says `expected {what}`.
    pub(crate) fn parse<T: std::str::FromStr>(
        &self,
        name: &str,
        what: &str,
    ) -> Result<Option<T>, SettingError> {
        match self.get(name) {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| err(name, format!("expected {what}, got '{s}'"))),
        }
    }

    /// An integer in `min..=max`, if set.
    pub(crate) fn num_in<T: TryFrom<u64>>(
        &self,
        name: &str,
        min: u64,
        max: u64,
    ) -> Result<Option<T>, SettingError> {
        let what = format!("an integer between {min} and {max}");
        let Some(v) = self.parse::<u64>(name, &what)? else {
            return Ok(None);
        };
        if v < min || v > max {
            return Err(err(name, format!("expected {what}, got {v}")));
        }
        T::try_from(v)
            .map(Some)
            .map_err(|_| err(name, format!("expected {what}, got {v}")))
    }

    /// An integer variable with a default and a range in the table.
    pub(crate) fn num<T: TryFrom<u64>>(&self, name: &str) -> Result<T, SettingError> {
        let (min, max) = table_range(name);
        self.num_in(name, min, max)?.ok_or_else(|| {
            err(
                name,
                format!("must be set (an integer between {min} and {max})"),
            )
        })
    }

    /// An integer variable without a default (`None` when unset).
    pub(crate) fn num_opt<T: TryFrom<u64>>(&self, name: &str) -> Result<Option<T>, SettingError> {
        let (min, max) = table_range(name);
        self.num_in(name, min, max)
    }

    /// The one boolean parser: `true`/`false`, `1`/`0`, `yes`/`no`,
    /// `on`/`off`, any case; `None` when unset.
    pub(crate) fn bool_opt(&self, name: &str) -> Result<Option<bool>, SettingError> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(None),
            Some(v) => parse_bool(v)
                .map(Some)
                .ok_or_else(|| err(name, format!("expected true or false, got '{v}'"))),
        }
    }

    /// A boolean variable with a default in the table.
    pub(crate) fn flag(&self, name: &str) -> Result<bool, SettingError> {
        self.bool_opt(name)?
            .ok_or_else(|| err(name, "must be set (true or false)"))
    }

    /// One of `choices` (case-insensitive); the error lists them.
    pub(crate) fn choice<T: Copy>(
        &self,
        name: &str,
        choices: &[(&str, T)],
        expected: &str,
    ) -> Result<Option<T>, SettingError> {
        let Some(v) = self.get(name).map(str::to_ascii_lowercase) else {
            return Ok(None);
        };
        choices
            .iter()
            .find(|(c, _)| *c == v)
            .map(|(_, t)| Some(*t))
            .ok_or_else(|| err(name, format!("expected {expected}, got '{v}'")))
    }

    /// A comma-separated list (entries trimmed, empty entries dropped).
    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The value as an owned string.
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }
}

/// `true`/`1`/`yes`/`on` and `false`/`0`/`no`/`off` (lower case).
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn table_range(name: &str) -> (u64, u64) {
    // Every integer variable has a range in the table; a missing one is a
    // programming error the defaults test (`settings::tests`) catches.
    vars::find(name)
        .and_then(|v| v.range)
        .unwrap_or((0, u64::MAX))
}

/// Largest secret file read (a key or password is far smaller; a path to
/// a device like /dev/zero must not read forever).
pub const MAX_SECRET_FILE_BYTES: usize = 64 * 1024;

/// At most `MAX_SECRET_FILE_BYTES + 1` bytes of `path`.
fn read_bounded(path: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_SECRET_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The secret whose file `key` names (`JWT_SECRET_FILE` → `JWT_SECRET`).
fn secret_file_of(key: &str) -> Option<&'static str> {
    let base = key.get(..key.len().checked_sub(5)?)?;
    if !key[base.len()..].eq_ignore_ascii_case("_FILE") {
        return None;
    }
    vars::find(base).filter(|v| v.secret).map(|v| v.name)
}

fn canonical(key: &str) -> Option<&'static str> {
    if let Some((_, to)) = vars::ALIASES
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(key))
    {
        return vars::find(to).map(|v| v.name);
    }
    vars::find(key).map(|v| v.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_file(tag: &str, content: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("otp-raw-{tag}-{}", std::process::id()));
        std::fs::write(&p, content).unwrap();
        p
    }

    fn load(pairs: &[(&str, &str)]) -> Result<RawSettings, SettingError> {
        RawSettings::load(
            None,
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn a_secret_file_loses_exactly_one_trailing_newline() {
        for (content, want) in [
            (&b"s3cret\n"[..], "s3cret"),
            (b"s3cret\n\n", "s3cret\n"),
            (b"s3cret\r\n", "s3cret"),
            (b"s3cret", "s3cret"),
            (b" s3cret \n", " s3cret "),
        ] {
            let p = secret_file("nl", content);
            let raw = load(&[("JWT_SECRET_FILE", p.to_str().unwrap())]).unwrap();
            assert_eq!(raw.get("JWT_SECRET"), Some(want), "{content:?}");
            assert_eq!(raw.source("JWT_SECRET"), Some("secret file"));
            std::fs::remove_file(p).unwrap();
        }
    }

    #[test]
    fn a_secret_and_its_file_together_are_one_clear_error() {
        let p = secret_file("both", b"from-file\n");
        let e = load(&[
            ("SMTP_PASSWORD", "inline"),
            ("SMTP_PASSWORD_FILE", p.to_str().unwrap()),
        ])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "SMTP_PASSWORD: both SMTP_PASSWORD and SMTP_PASSWORD_FILE are set; set only one of them"
        );
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn an_unreadable_or_empty_secret_file_names_the_file_variable() {
        let e = load(&[("OTP_SECRET_KEY_FILE", "/nonexistent/otp-key")]).unwrap_err();
        assert_eq!(e.variable, "OTP_SECRET_KEY_FILE");
        assert!(e.reason.contains("/nonexistent/otp-key"), "{e}");
        let p = secret_file("empty", b"\n");
        let e = load(&[("WEBHOOK_SECRET_FILE", p.to_str().unwrap())]).unwrap_err();
        assert_eq!(e.variable, "WEBHOOK_SECRET_FILE");
        assert!(e.reason.ends_with("is empty"), "{e}");
        std::fs::remove_file(p).unwrap();
        // A device or a huge file is refused, not read forever.
        let e = load(&[("JWT_SECRET_FILE", "/dev/zero")]).unwrap_err();
        assert_eq!(e.variable, "JWT_SECRET_FILE");
        assert!(e.reason.contains("larger than 65536 bytes"), "{e}");
        // Only secrets have a _FILE form.
        let raw = load(&[("OTP_DIGITS_FILE", "/x")]).unwrap();
        assert_eq!(raw.get("OTP_DIGITS"), Some("6"));
    }

    #[test]
    fn secret_files_may_be_named_in_the_toml_file() {
        let secret = secret_file("toml-secret", b"toml-jwt-secret\n");
        let toml = secret_file(
            "toml",
            format!("jwt_secret_file = {:?}\n", secret.to_str().unwrap()).as_bytes(),
        );
        let toml_path = toml.with_extension("toml");
        std::fs::rename(&toml, &toml_path).unwrap();
        let raw = RawSettings::load(Some(&toml_path), std::iter::empty()).unwrap();
        assert_eq!(raw.get("JWT_SECRET"), Some("toml-jwt-secret"));
        std::fs::remove_file(secret).unwrap();
        std::fs::remove_file(toml_path).unwrap();
    }
}
