//! The Firefox Accounts policy, as kinto-fxa (through PyFxA) verifies
//! tokens: a JWT access token (header `typ` `at+jwt`, RS256) against the
//! keys at `<oauth_uri>/v1/jwks`; any other token at `POST
//! <oauth_uri>/v1/verify`. The token must grant `required_scope` (FxA scope
//! matching). The user is FxA's uid, `fxa:<uid>` once prefixed.

use super::jwks::Jwks;
use super::jwt::{self, Expect};
use super::provider::{Answer, Http};
use super::scope::scope_matches;
use super::token_cache::Verified;
use crate::identity_config::{FxaConfig, IdentityConfig};
use jsonwebtoken::Algorithm;
use kinto_proto::KintoError;
use serde::Deserialize;
use serde_json::Value;

pub struct Fxa {
    pub cfg: FxaConfig,
    jwks: Jwks,
    leeway: u64,
}

/// `/v1/verify`'s answer.
#[derive(Deserialize)]
struct Verification {
    user: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    scope: Vec<String>,
}

impl Fxa {
    pub fn new(cfg: FxaConfig, identity: &IdentityConfig) -> Self {
        let jwks = Jwks::new(
            format!("{}/v1/jwks", cfg.oauth_uri),
            identity.jwks_min_refresh_seconds,
        );
        Fxa {
            cfg,
            jwks,
            leeway: identity.leeway_seconds,
        }
    }

    pub async fn verify(&self, http: &Http, token: &str) -> Result<Option<Verified>, KintoError> {
        let (user, client_id, scopes, exp) = if jwt::is_jwt(token) {
            let expect = Expect {
                algorithms: &[Algorithm::RS256],
                issuer: None,
                audience: None,
                typ: &["at+jwt", "application/at+jwt"],
                leeway_seconds: self.leeway,
            };
            let Some(c) = jwt::verify(&self.jwks, http, token, &expect).await? else {
                return Ok(None);
            };
            let text = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
            let Some(user) = text("sub") else {
                return Ok(None);
            };
            let scopes = text("scope")
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            let exp = c.get("exp").and_then(Value::as_u64);
            (user, text("client_id"), scopes, exp)
        } else {
            let url = format!("{}/v1/verify", self.cfg.oauth_uri);
            let body = serde_json::json!({ "token": token });
            match http.post_json::<Verification>(&url, &body).await? {
                Answer::Ok(v) => (v.user, v.client_id, v.scope, None),
                Answer::Refused => return Ok(None),
            }
        };
        if user.is_empty() || !scope_matches(&scopes, &self.cfg.required_scope) {
            tracing::debug!("FxA token refused: no user or missing scope");
            return Ok(None);
        }
        Ok(Some(Verified {
            user,
            client_id,
            expires_at: exp,
        }))
    }
}
