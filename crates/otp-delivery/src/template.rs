//! Message templates.
//!
//! - [`TextTemplate`]: plain text with `{otp}` and `{minutes}` (SMTP subject
//!   and bodies, the Twilio SMS body). The HTML part of an email renders the
//!   same way with each value HTML-escaped ([`TextTemplate::render_html`]).
//! - [`JsonTemplate`]: a JSON document with placeholders, for the webhook.
//!   A placeholder standing where a JSON value goes (`{"to": {identity}}`) is
//!   replaced by a complete JSON value (a quoted, escaped string or a number);
//!   a placeholder inside a JSON string (`"text": "Code {otp}"`) is replaced
//!   by the JSON-escaped characters of the value. Values are never spliced as
//!   raw text, so an identity with quotes, backslashes or `</script>` still
//!   yields valid JSON. Templates are checked at construction by rendering
//!   hostile sample values and parsing the result.

use crate::error::ConfigError;
use crate::message::OtpMessage;

/// Values a template can refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    Otp,
    Minutes,
    Identity,
    TtlSeconds,
    ExpiresAt,
    Kind,
}

impl Placeholder {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "otp" => Self::Otp,
            "minutes" => Self::Minutes,
            "identity" => Self::Identity,
            "ttl_seconds" => Self::TtlSeconds,
            "expires_at" => Self::ExpiresAt,
            "kind" => Self::Kind,
            _ => return None,
        })
    }
}

/// Template pieces: literal text and placeholders, found once at construction.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    /// `quoted`: true when the placeholder sits inside a JSON string literal.
    Value {
        what: Placeholder,
        quoted: bool,
    },
}

/// Finds `{name}` at the start of `s` for a known name; returns it and its length.
fn placeholder_at(s: &str, allowed: &[Placeholder]) -> Option<(Placeholder, usize)> {
    let rest = s.strip_prefix('{')?;
    let end = rest.find('}')?;
    let p = Placeholder::from_name(&rest[..end])?;
    allowed.contains(&p).then_some((p, end + 2))
}

/// A plain-text template with `{otp}` and `{minutes}`; other braces are literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextTemplate {
    pieces: Vec<Piece>,
}

const TEXT_PLACEHOLDERS: &[Placeholder] = &[Placeholder::Otp, Placeholder::Minutes];

impl TextTemplate {
    /// Parses `source`. With `require_otp`, a template without `{otp}` is an
    /// error (a body that does not carry the code is a misconfiguration).
    /// With `single_line`, control characters (CR, LF, …) are an error: used
    /// for mail subjects so no header can be injected. `field` names the
    /// setting in errors.
    pub fn parse(
        source: &str,
        field: &'static str,
        require_otp: bool,
        single_line: bool,
    ) -> Result<Self, ConfigError> {
        if single_line && source.chars().any(char::is_control) {
            return Err(ConfigError::new(
                field,
                "must be a single line without control characters (CR/LF would inject mail headers)",
            ));
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < source.len() {
            let rest = &source[i..];
            if let Some((what, len)) = placeholder_at(rest, TEXT_PLACEHOLDERS) {
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Value {
                    what,
                    quoted: false,
                });
                i += len;
            } else {
                let c = rest.chars().next().unwrap_or_default();
                literal.push(c);
                i += c.len_utf8();
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        if require_otp
            && !pieces.iter().any(|p| {
                matches!(
                    p,
                    Piece::Value {
                        what: Placeholder::Otp,
                        ..
                    }
                )
            })
        {
            return Err(ConfigError::new(
                field,
                "must contain the {otp} placeholder",
            ));
        }
        Ok(TextTemplate { pieces })
    }

    /// Renders with the message's values as they are.
    pub fn render(&self, message: &OtpMessage) -> String {
        self.render_with(message, false)
    }

    /// Renders for an HTML document: literal text is taken as HTML (the
    /// template author's markup), values are HTML-escaped.
    pub fn render_html(&self, message: &OtpMessage) -> String {
        self.render_with(message, true)
    }

    fn render_with(&self, message: &OtpMessage, html: bool) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Value { what, .. } => {
                    let value = text_value(*what, message);
                    if html {
                        out.push_str(&html_escape(&value));
                    } else {
                        out.push_str(&value);
                    }
                }
            }
        }
        out
    }
}

fn text_value(what: Placeholder, m: &OtpMessage) -> String {
    match what {
        Placeholder::Otp => m.code().as_str().to_owned(),
        Placeholder::Minutes => m.minutes().to_string(),
        Placeholder::Identity => m.identity().as_str().to_owned(),
        Placeholder::TtlSeconds => m.ttl_seconds().to_string(),
        Placeholder::ExpiresAt => m.expires_at().to_string(),
        Placeholder::Kind => m.kind().as_str().to_owned(),
    }
}

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML text and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A webhook payload template (`WEBHOOK_TEMPLATE`); see the module docs for
/// the placeholder rules. Placeholders: `{identity}`, `{otp}`,
/// `{ttl_seconds}`, `{expires_at}` (unix seconds), `{minutes}`, `{kind}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonTemplate {
    pieces: Vec<Piece>,
}

const JSON_PLACEHOLDERS: &[Placeholder] = &[
    Placeholder::Otp,
    Placeholder::Minutes,
    Placeholder::Identity,
    Placeholder::TtlSeconds,
    Placeholder::ExpiresAt,
    Placeholder::Kind,
];

impl JsonTemplate {
    /// Parses `source` and checks that it renders to valid JSON even for
    /// hostile identities. Errors name `webhook.template`.
    pub fn parse(source: &str) -> Result<Self, ConfigError> {
        const VAR: &str = "webhook.template";
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut in_string = false;
        let mut escaped = false;
        let mut i = 0;
        while i < source.len() {
            let rest = &source[i..];
            if !escaped {
                if let Some((what, len)) = placeholder_at(rest, JSON_PLACEHOLDERS) {
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Value {
                        what,
                        quoted: in_string,
                    });
                    i += len;
                    continue;
                }
            }
            let c = rest.chars().next().unwrap_or_default();
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                }
            } else if c == '"' {
                in_string = true;
            }
            literal.push(c);
            i += c.len_utf8();
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        if !pieces.iter().any(|p| {
            matches!(
                p,
                Piece::Value {
                    what: Placeholder::Otp,
                    ..
                }
            )
        }) {
            return Err(ConfigError::new(VAR, "must contain the {otp} placeholder"));
        }
        let template = JsonTemplate { pieces };
        // Render hostile samples of every kind: the output must parse.
        for identity in [
            "o'brien+{x}/`|~@example.com",
            "+14155550100",
            "x\"},{\"y\":\"\\u0000\u{2028}z",
        ] {
            let id = otp_core::Identity::parse(identity)
                .map_err(|e| ConfigError::new(VAR, format!("internal sample identity: {e}")))?;
            let code = otp_core::OtpCode::parse("012345")
                .map_err(|e| ConfigError::new(VAR, format!("internal sample code: {e}")))?;
            let sample = OtpMessage::new(id, code, 300, 1_800_000_000);
            let rendered = template.render(&sample);
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&rendered) {
                return Err(ConfigError::new(
                    VAR,
                    format!("is not valid JSON once placeholders are replaced ({e})"),
                ));
            }
        }
        Ok(template)
    }

    /// Renders the payload for `message`.
    pub fn render(&self, message: &OtpMessage) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Value { what, quoted } => {
                    let json = json_value(*what, message);
                    if *quoted {
                        // Inside a string: the escaped characters without the quotes.
                        match json {
                            serde_json::Value::String(ref s) => {
                                let q = serde_json::Value::String(s.clone()).to_string();
                                out.push_str(&q[1..q.len() - 1]);
                            }
                            other => out.push_str(&other.to_string()),
                        }
                    } else {
                        out.push_str(&json.to_string());
                    }
                }
            }
        }
        out
    }
}

fn json_value(what: Placeholder, m: &OtpMessage) -> serde_json::Value {
    match what {
        Placeholder::Otp => m.code().as_str().into(),
        Placeholder::Identity => m.identity().as_str().into(),
        Placeholder::Kind => m.kind().as_str().into(),
        Placeholder::Minutes => m.minutes().into(),
        Placeholder::TtlSeconds => m.ttl_seconds().into(),
        Placeholder::ExpiresAt => m.expires_at().into(),
    }
}

/// The default webhook body: `{"identity","otp","ttl_seconds","expires_at"}`.
#[cfg(any(feature = "webhook", test))]
pub(crate) fn default_json_body(m: &OtpMessage) -> String {
    serde_json::json!({
        "identity": m.identity().as_str(),
        "otp": m.code().as_str(),
        "ttl_seconds": m.ttl_seconds(),
        "expires_at": m.expires_at(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use otp_core::Identity;
    use otp_core::OtpCode;

    fn msg(identity: &str) -> OtpMessage {
        OtpMessage::new(
            Identity::parse(identity).unwrap(),
            OtpCode::parse("987654").unwrap(),
            300,
            1_800_000_000,
        )
    }

    #[test]
    fn text_template_replaces_known_placeholders_only() {
        let t = TextTemplate::parse("Code {otp} for {minutes} min {other} {", "X", true, false)
            .unwrap();
        assert_eq!(t.render(&msg("u")), "Code 987654 for 5 min {other} {");
    }

    #[test]
    fn text_template_requires_otp_when_asked() {
        let e = TextTemplate::parse("no code", "smtp.body_template", true, false).unwrap_err();
        assert_eq!(e.field, "smtp.body_template");
        assert!(TextTemplate::parse("Your code", "smtp.subject_template", false, true).is_ok());
    }

    #[test]
    fn subject_template_with_crlf_is_rejected() {
        let e = TextTemplate::parse(
            "Hi\r\nBcc: evil@example.com",
            "smtp.subject_template",
            false,
            true,
        )
        .unwrap_err();
        assert_eq!(e.field, "smtp.subject_template");
    }

    #[test]
    fn html_render_escapes_values_not_markup() {
        assert_eq!(
            html_escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let t = TextTemplate::parse("<b>{otp}</b>", "X", true, false).unwrap();
        assert_eq!(t.render_html(&msg("u")), "<b>987654</b>");
    }

    #[test]
    fn json_template_whole_values_and_in_string_values() {
        let t = JsonTemplate::parse(
            r#"{"to": {identity}, "text": "Code {otp}, valid {minutes} min for {identity}", "ttl": {ttl_seconds}, "exp": {expires_at}, "k": {kind}, "c": {otp}}"#,
        )
        .unwrap();
        let hostile = "a\"b\\c</script>é\u{2603}";
        let out = t.render(&msg(hostile));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["to"], hostile);
        assert_eq!(v["text"], format!("Code 987654, valid 5 min for {hostile}"));
        assert_eq!(v["ttl"], 300);
        assert_eq!(v["exp"], 1_800_000_000u64);
        assert_eq!(v["k"], "opaque");
        assert_eq!(v["c"], "987654");
    }

    #[test]
    fn json_template_escaped_quote_does_not_end_string() {
        let t = JsonTemplate::parse(r#"{"t": "say \"{otp}\" {identity}"}"#).unwrap();
        let v: serde_json::Value = serde_json::from_str(&t.render(&msg("q\"uote"))).unwrap();
        assert_eq!(v["t"], "say \"987654\" q\"uote");
    }

    #[test]
    fn json_template_rejects_invalid_json_and_missing_otp() {
        let e = JsonTemplate::parse(r#"{"a": {otp}"#).unwrap_err();
        assert_eq!(e.field, "webhook.template");
        assert!(e.reason.contains("not valid JSON"), "{e}");
        let e = JsonTemplate::parse(r#"{"a": {identity}}"#).unwrap_err();
        assert!(e.reason.contains("{otp}"));
        // an unknown placeholder outside a string is not JSON
        assert!(JsonTemplate::parse(r#"{"a": {otp}, "b": {nope}}"#).is_err());
    }

    #[test]
    fn default_body_has_the_four_fields() {
        let v: serde_json::Value = serde_json::from_str(&default_json_body(&msg("a\"b"))).unwrap();
        assert_eq!(v["identity"], "a\"b");
        assert_eq!(v["otp"], "987654");
        assert_eq!(v["ttl_seconds"], 300);
        assert_eq!(v["expires_at"], 1_800_000_000u64);
        assert_eq!(v.as_object().unwrap().len(), 4);
    }
}
