//! The JWT claims set: registered claims as typed fields, everything else in
//! [`Claims::extra`]. Serializes to one flat JSON object; deserializes
//! without building a `serde_json::Value` for the registered claims.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Names of the registered claims this library sets and checks. Extra claims
/// with these names are refused when issuing
/// ([`TokenError::ReservedClaim`](super::TokenError::ReservedClaim)).
///
/// `sid` and `auth_time` are set on access tokens issued for a session
/// (SPEC §10); `gen` names a session's refresh generation and is reserved
/// so that no caller-supplied claim can ever pose as one.
pub const REGISTERED_CLAIMS: [&str; 11] = [
    "sub",
    "iss",
    "aud",
    "iat",
    "nbf",
    "exp",
    "jti",
    "amr",
    "sid",
    "auth_time",
    "gen",
];

/// The `aud` claim: one string or an array of strings (RFC 7519 §4.1.3).
///
/// ```
/// use otp_core::Audience;
/// let aud: Audience = serde_json::from_str(r#"["web","api"]"#).unwrap();
/// assert!(aud.contains("api"));
/// assert!(!aud.contains("admin"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// A single audience, serialized as a JSON string.
    One(String),
    /// Several audiences, serialized as a JSON array.
    Many(Vec<String>),
}

impl Audience {
    /// Returns true if and only if `audience` is (one of) the audience(s).
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(a) => a == audience,
            Audience::Many(list) => list.iter().any(|a| a == audience),
        }
    }
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Audience::One(a) => serializer.serialize_str(a),
            Audience::Many(list) => {
                let mut seq = serializer.serialize_seq(Some(list.len()))?;
                for a in list {
                    seq.serialize_element(a)?;
                }
                seq.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AudienceVisitor;
        impl<'de> Visitor<'de> for AudienceVisitor {
            type Value = Audience;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Audience, E> {
                Ok(Audience::One(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Audience, E> {
                Ok(Audience::One(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Audience, A::Error> {
                let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
                while let Some(a) = seq.next_element::<String>()? {
                    list.push(a);
                }
                Ok(Audience::Many(list))
            }
        }
        deserializer.deserialize_any(AudienceVisitor)
    }
}

/// The claims of a verified (or about-to-be-issued) token.
///
/// Serializes to a flat JSON object: the registered claims (`iat`, `nbf`,
/// `jti`, `sid`, `auth_time` omitted when `None`, `amr` when empty), then
/// every `extra` entry
/// (entries named like a registered claim are skipped). Deserializing
/// requires `sub`, `iss`, `aud` and `exp`, accepts integral or fractional
/// NumericDates (fractions are truncated) and rejects duplicate members.
///
/// ```
/// use otp_core::{Audience, Claims};
/// let json = r#"{"sub":"alice@example.com","iss":"stateless-otp","aud":"api",
///                "iat":1700000000,"exp":1700000900,"role":"admin"}"#;
/// let claims: Claims = serde_json::from_str(json).unwrap();
/// assert_eq!(claims.aud, Audience::One("api".into()));
/// assert_eq!(claims.nbf, None);
/// assert_eq!(claims.extra["role"], "admin");
/// let back = serde_json::to_value(&claims).unwrap();
/// assert_eq!(back["role"], "admin");
/// assert_eq!(back["exp"], 1700000900);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// Subject: the normalized identity.
    pub sub: String,
    /// Issuer (`TOKEN_ISSUER`).
    pub iss: String,
    /// Audience (`TOKEN_AUDIENCE`); tokens issued here carry one string.
    pub aud: Audience,
    /// Issued at (unix seconds). Always set on tokens issued here.
    pub iat: Option<u64>,
    /// Not before (unix seconds). Always set on tokens issued here.
    pub nbf: Option<u64>,
    /// Expiry (unix seconds); required.
    pub exp: u64,
    /// Token id: 128 random bits, base64url. Always set on tokens issued here.
    pub jti: Option<String>,
    /// Authentication methods (RFC 8176): `["otp"]` on tokens issued here.
    pub amr: Vec<String>,
    /// Session id (OpenID Connect `sid`, SPEC §10): set on tokens issued
    /// for a session, absent otherwise.
    pub sid: Option<String>,
    /// When the user signed in with a code (unix seconds, OpenID Connect
    /// `auth_time`): set with `sid`; a refreshed token keeps the original.
    pub auth_time: Option<u64>,
    /// Every other claim, as given by the caller at issue time.
    pub extra: Map<String, Value>,
}

impl Serialize for Claims {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("sub", &self.sub)?;
        map.serialize_entry("iss", &self.iss)?;
        map.serialize_entry("aud", &self.aud)?;
        if let Some(iat) = self.iat {
            map.serialize_entry("iat", &iat)?;
        }
        if let Some(nbf) = self.nbf {
            map.serialize_entry("nbf", &nbf)?;
        }
        map.serialize_entry("exp", &self.exp)?;
        if let Some(jti) = &self.jti {
            map.serialize_entry("jti", jti)?;
        }
        if !self.amr.is_empty() {
            map.serialize_entry("amr", &self.amr)?;
        }
        if let Some(sid) = &self.sid {
            map.serialize_entry("sid", sid)?;
        }
        if let Some(auth_time) = self.auth_time {
            map.serialize_entry("auth_time", &auth_time)?;
        }
        for (name, value) in &self.extra {
            if !REGISTERED_CLAIMS.contains(&name.as_str()) {
                map.serialize_entry(name, value)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Claims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        RawClaims::deserialize(deserializer)?
            .into_claims()
            .map_err(de::Error::missing_field)
    }
}

/// Claims as parsed, before the required ones are known to be present.
#[derive(Debug, Default)]
pub(crate) struct RawClaims {
    sub: Option<String>,
    iss: Option<String>,
    aud: Option<Audience>,
    iat: Option<u64>,
    nbf: Option<u64>,
    exp: Option<u64>,
    jti: Option<String>,
    amr: Option<Vec<String>>,
    sid: Option<String>,
    auth_time: Option<u64>,
    extra: Map<String, Value>,
}

impl RawClaims {
    /// The claims, or the name of the first missing required claim (checked
    /// in the order `exp`, `iss`, `aud`, `sub`).
    pub(crate) fn into_claims(self) -> Result<Claims, &'static str> {
        Ok(Claims {
            exp: self.exp.ok_or("exp")?,
            iss: self.iss.ok_or("iss")?,
            aud: self.aud.ok_or("aud")?,
            sub: self.sub.ok_or("sub")?,
            iat: self.iat,
            nbf: self.nbf,
            jti: self.jti,
            amr: self.amr.unwrap_or_default(),
            sid: self.sid,
            auth_time: self.auth_time,
            extra: self.extra,
        })
    }
}

/// A claim name: registered ones are matched without allocating.
enum Field {
    Sub,
    Iss,
    Aud,
    Iat,
    Nbf,
    Exp,
    Jti,
    Amr,
    Sid,
    AuthTime,
    Other(String),
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a claim name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(match v {
                    "sub" => Field::Sub,
                    "iss" => Field::Iss,
                    "aud" => Field::Aud,
                    "iat" => Field::Iat,
                    "nbf" => Field::Nbf,
                    "exp" => Field::Exp,
                    "jti" => Field::Jti,
                    "amr" => Field::Amr,
                    "sid" => Field::Sid,
                    "auth_time" => Field::AuthTime,
                    other => Field::Other(other.to_owned()),
                })
            }
        }
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

/// A JSON NumericDate (RFC 7519 §2): a non-negative number of seconds;
/// fractions are truncated.
struct NumericDate(u64);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DateVisitor;
        impl Visitor<'_> for DateVisitor {
            type Value = NumericDate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative NumericDate")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumericDate, E> {
                Ok(NumericDate(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumericDate, E> {
                u64::try_from(v)
                    .map(NumericDate)
                    .map_err(|_| E::custom("negative NumericDate"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumericDate, E> {
                if v.is_finite() && v >= 0.0 {
                    // `as` saturates at u64::MAX and truncates the fraction.
                    Ok(NumericDate(v as u64))
                } else {
                    Err(E::custom("NumericDate out of range"))
                }
            }
        }
        deserializer.deserialize_any(DateVisitor)
    }
}

fn set_once<T, E: de::Error>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    *slot = Some(value);
    Ok(())
}

impl<'de> Deserialize<'de> for RawClaims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = RawClaims;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object of claims")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawClaims, A::Error> {
                let mut c = RawClaims::default();
                while let Some(field) = map.next_key::<Field>()? {
                    match field {
                        Field::Sub => set_once(&mut c.sub, map.next_value()?, "sub")?,
                        Field::Iss => set_once(&mut c.iss, map.next_value()?, "iss")?,
                        Field::Aud => set_once(&mut c.aud, map.next_value()?, "aud")?,
                        Field::Iat => {
                            set_once(&mut c.iat, map.next_value::<NumericDate>()?.0, "iat")?
                        }
                        Field::Nbf => {
                            set_once(&mut c.nbf, map.next_value::<NumericDate>()?.0, "nbf")?
                        }
                        Field::Exp => {
                            set_once(&mut c.exp, map.next_value::<NumericDate>()?.0, "exp")?
                        }
                        Field::Jti => set_once(&mut c.jti, map.next_value()?, "jti")?,
                        Field::Amr => set_once(&mut c.amr, map.next_value()?, "amr")?,
                        Field::Sid => set_once(&mut c.sid, map.next_value()?, "sid")?,
                        Field::AuthTime => set_once(
                            &mut c.auth_time,
                            map.next_value::<NumericDate>()?.0,
                            "auth_time",
                        )?,
                        Field::Other(name) => {
                            let value: Value = map.next_value()?;
                            if c.extra.insert(name, value).is_some() {
                                return Err(de::Error::custom("duplicate claim"));
                            }
                        }
                    }
                }
                Ok(c)
            }
        }
        deserializer.deserialize_map(RawVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Result<RawClaims, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn duplicate_registered_or_extra_claims_are_rejected() {
        assert!(raw(r#"{"sub":"a","sub":"b"}"#).is_err());
        assert!(raw(r#"{"x":1,"x":2}"#).is_err());
        assert!(raw(r#"{"sub":"a","x":1}"#).is_ok());
    }

    #[test]
    fn numeric_dates_accept_integers_and_fractions_but_not_negatives_or_strings() {
        assert_eq!(raw(r#"{"exp":10}"#).unwrap().exp, Some(10));
        assert_eq!(raw(r#"{"exp":10.9}"#).unwrap().exp, Some(10));
        assert!(raw(r#"{"exp":-1}"#).is_err());
        assert!(raw(r#"{"exp":"10"}"#).is_err());
        assert!(raw(r#"{"exp":null}"#).is_err());
    }

    #[test]
    fn arrays_are_not_claims_objects() {
        assert!(raw(r#"["a","b"]"#).is_err());
    }

    #[test]
    fn missing_required_claim_is_named() {
        let c = raw(r#"{"sub":"a","iss":"i","aud":"x"}"#).unwrap();
        assert_eq!(c.into_claims().unwrap_err(), "exp");
        let c = raw(r#"{"iss":"i","aud":"x","exp":1}"#).unwrap();
        assert_eq!(c.into_claims().unwrap_err(), "sub");
    }

    #[test]
    fn serialization_skips_extra_entries_named_like_registered_claims() {
        let mut extra = Map::new();
        extra.insert("sub".into(), Value::from("evil"));
        extra.insert("role".into(), Value::from("x"));
        let claims = Claims {
            sub: "alice".into(),
            iss: "i".into(),
            aud: Audience::Many(vec!["a".into(), "b".into()]),
            iat: None,
            nbf: None,
            exp: 5,
            jti: None,
            amr: vec![],
            sid: None,
            auth_time: None,
            extra,
        };
        let json = serde_json::to_string(&claims).unwrap();
        assert_eq!(
            json,
            r#"{"sub":"alice","iss":"i","aud":["a","b"],"exp":5,"role":"x"}"#
        );
    }
}
