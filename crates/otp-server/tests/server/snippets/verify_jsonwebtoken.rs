use jsonwebtoken::{decode, decode_header, jwk::JwkSet, Algorithm, DecodingKey, Validation};

/// `jwks`: GET {OTP_URL}/.well-known/jwks.json, cached; refetch on an unknown kid.
/// `audience`: the TOKEN_AUDIENCE the otp-server issues tokens for (default "api").
pub fn verify(
    token: &str,
    jwks: &JwkSet,
    audience: &str,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let kid = decode_header(token)?.kid.ok_or("token has no kid")?;
    let jwk = jwks.find(&kid).ok_or("unknown kid: refetch the JWKS")?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&["stateless-otp"]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
    let data = decode::<serde_json::Value>(token, &DecodingKey::from_jwk(jwk)?, &validation)?;
    Ok(data.claims) // data.claims["sub"] is the signed-in identity
}
