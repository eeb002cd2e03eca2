//! JWT access tokens verified locally against a provider's keys.
//!
//! Only asymmetric algorithms are accepted: `none` is not an algorithm
//! `jsonwebtoken` parses, and HMAC is refused before any key is looked at,
//! so a token "signed" with a provider's public key as an HMAC secret is
//! refused. A key must be of the header's algorithm family (and of its
//! exact algorithm when the key says one).

use super::jwks::Jwks;
use super::provider::Http;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use kinto_proto::KintoError;
use serde_json::{Map, Value};

pub const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// What a token must satisfy besides its signature and `exp`/`nbf`.
pub struct Expect<'a> {
    pub algorithms: &'a [Algorithm],
    pub issuer: Option<&'a str>,
    pub audience: Option<&'a str>,
    /// Accepted `typ` header values (case-insensitive); empty: any.
    pub typ: &'a [&'a str],
    pub leeway_seconds: u64,
}

/// Three base64url parts whose header parses: a JWT (any other token is
/// opaque, for the provider to judge).
pub fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && decode_header(token).is_ok()
}

/// The token's unverified `iss`, to tell which provider it claims to be from.
pub fn claimed_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// The claims of a valid token; `Ok(None)` for any invalid one; `Err` only
/// when the keys cannot be fetched.
pub async fn verify(
    jwks: &Jwks,
    http: &Http,
    token: &str,
    expect: &Expect<'_>,
) -> Result<Option<Map<String, Value>>, KintoError> {
    let Ok(header) = decode_header(token) else {
        return Ok(None);
    };
    if !expect.algorithms.contains(&header.alg) {
        tracing::debug!(alg = ?header.alg, "JWT refused: algorithm not allowed");
        return Ok(None);
    }
    if !expect.typ.is_empty() {
        let typ = header.typ.as_deref().unwrap_or("");
        if !expect.typ.iter().any(|t| t.eq_ignore_ascii_case(typ)) {
            tracing::debug!("JWT refused: typ");
            return Ok(None);
        }
    }
    let set = jwks.keys(http, header.kid.as_deref()).await?;
    let candidates: Vec<_> = match header.kid.as_deref() {
        Some(kid) => set.find(kid).into_iter().collect(),
        None => set.keys.iter().collect(),
    };
    let mut validation = Validation::new(header.alg);
    validation.leeway = expect.leeway_seconds;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp"]);
    if let Some(iss) = expect.issuer {
        validation.set_issuer(&[iss]);
    }
    match expect.audience {
        Some(aud) => validation.set_audience(&[aud]),
        None => validation.validate_aud = false,
    }
    for jwk in candidates {
        let key_alg = jwk.common.key_algorithm.map(|a| format!("{a:?}"));
        if key_alg.is_some_and(|a| a != format!("{:?}", header.alg)) {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        match decode::<Map<String, Value>>(token, &key, &validation) {
            Ok(data) => return Ok(Some(data.claims)),
            Err(e) => tracing::debug!(error = ?e.kind(), "JWT refused"),
        }
    }
    Ok(None)
}
