//! An OpenID Connect policy (Kinto's `kinto.plugins.openid`). Its provider's
//! discovery document is fetched on first use, not at start-up, so the
//! gateway starts while the provider is down (requests with tokens get 503
//! until it answers).
//!
//! * With an `audience`, a JWT access token is verified locally (keys from
//!   `jwks_uri`; signature, `iss`, `aud`, `exp`, `nbf`), and its
//!   `userid_field` claim is the user.
//! * Otherwise (an opaque token, or no audience configured) the userinfo
//!   endpoint decides, as in Kinto, and its `userid_field` is the user.
//!
//! With `required_scopes`, a JWT must carry them in its `scope` (or `scp`)
//! claim, and an opaque token is first checked at the provider's token
//! introspection endpoint (RFC 7662), since userinfo does not say what a
//! token was granted; a provider without one refuses every opaque token
//! rather than let an unscoped one through.
//!
//! Discovery is read with reqwest and serde rather than the `openidconnect`
//! crate: five fields of the document are used, and that crate would bring
//! its own HTTP and crypto stacks besides the ones the gateway already has.

use super::jwks::Jwks;
use super::jwt::{self, Expect};
use super::provider::{unavailable, Answer, Http};
use super::token_cache::Verified;
use crate::identity_config::{IdentityConfig, OidcConfig};
use kinto_proto::KintoError;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

#[derive(Debug, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
}

/// What RFC 7662 introspection says of a token (the fields we read).
#[derive(Debug, Deserialize)]
struct Introspection {
    #[serde(default)]
    active: bool,
    #[serde(default)]
    scope: String,
}

pub struct Oidc {
    pub cfg: OidcConfig,
    discovery: OnceCell<Discovery>,
    jwks: OnceCell<Jwks>,
    leeway: u64,
    min_refresh: u64,
}

impl Oidc {
    pub fn new(cfg: OidcConfig, identity: &IdentityConfig) -> Self {
        Oidc {
            cfg,
            discovery: OnceCell::new(),
            jwks: OnceCell::new(),
            leeway: identity.leeway_seconds,
            min_refresh: identity.jwks_min_refresh_seconds,
        }
    }

    /// The provider's discovery document (a failure is retried next time).
    pub async fn discovery(&self, http: &Http) -> Result<&Discovery, KintoError> {
        self.discovery
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/openid-configuration", self.cfg.issuer);
                match http.get::<Discovery>(&url, None).await? {
                    Answer::Ok(d) => Ok(d),
                    Answer::Refused => Err(unavailable(&url, &"discovery refused")),
                }
            })
            .await
    }

    /// Could this JWT be ours? Its `iss` (checked on verification) says.
    pub fn may_have_issued(&self, token: &str) -> bool {
        if self.cfg.audience.is_empty() || !jwt::is_jwt(token) {
            return true;
        }
        jwt::claimed_issuer(token).is_some_and(|iss| iss.trim_end_matches('/') == self.cfg.issuer)
    }

    pub async fn verify(&self, http: &Http, token: &str) -> Result<Option<Verified>, KintoError> {
        let discovery = self.discovery(http).await?;
        let claims = if !self.cfg.audience.is_empty() && jwt::is_jwt(token) {
            let jwks = self
                .jwks
                .get_or_init(|| async { Jwks::new(discovery.jwks_uri.clone(), self.min_refresh) })
                .await;
            let expect = Expect {
                algorithms: jwt::ASYMMETRIC,
                issuer: Some(&discovery.issuer),
                audience: Some(&self.cfg.audience),
                typ: &[],
                leeway_seconds: self.leeway,
            };
            jwt::verify(jwks, http, token, &expect)
                .await?
                .filter(|c| self.has_required_scopes(&granted_scopes(c)))
        } else if !self
            .introspected_scopes_suffice(http, discovery, token)
            .await?
        {
            None
        } else {
            match http
                .get::<Map<String, Value>>(&discovery.userinfo_endpoint, Some(token))
                .await?
            {
                Answer::Ok(profile) => Some(profile),
                Answer::Refused => None,
            }
        };
        Ok(claims.and_then(|c| self.verified(&c)))
    }

    fn has_required_scopes(&self, granted: &[&str]) -> bool {
        let ok = self
            .cfg
            .required_scopes
            .iter()
            .all(|r| granted.contains(&r.as_str()));
        if !ok {
            tracing::debug!("OpenID token refused: a required scope is missing");
        }
        ok
    }

    /// Does an opaque token have the required scopes? Always yes when none
    /// is required (no call is made then).
    async fn introspected_scopes_suffice(
        &self,
        http: &Http,
        discovery: &Discovery,
        token: &str,
    ) -> Result<bool, KintoError> {
        if self.cfg.required_scopes.is_empty() {
            return Ok(true);
        }
        let Some(url) = &discovery.introspection_endpoint else {
            tracing::debug!("OpenID opaque token refused: scopes required, no introspection");
            return Ok(false);
        };
        let form = [
            ("token", token),
            ("client_id", self.cfg.client_id.as_str()),
            ("client_secret", self.cfg.client_secret.as_str()),
        ];
        Ok(match http.post_form::<Introspection>(url, &form).await? {
            Answer::Ok(i) => {
                i.active
                    && self.has_required_scopes(&i.scope.split_whitespace().collect::<Vec<_>>())
            }
            Answer::Refused => false,
        })
    }

    fn verified(&self, claims: &Map<String, Value>) -> Option<Verified> {
        let user = claims.get(&self.cfg.userid_field)?.as_str()?;
        if user.is_empty() {
            return None;
        }
        let client_id = ["client_id", "azp"]
            .iter()
            .find_map(|k| claims.get(*k).and_then(Value::as_str))
            .map(str::to_owned);
        Some(Verified {
            user: user.to_owned(),
            client_id,
            expires_at: claims.get("exp").and_then(Value::as_u64),
        })
    }
}

/// The scopes a JWT access token was granted: RFC 9068's `scope` string, or
/// the `scp` array some providers use.
fn granted_scopes(claims: &Map<String, Value>) -> Vec<&str> {
    match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => s.split_whitespace().collect(),
        (_, Some(Value::Array(a))) => a.iter().filter_map(Value::as_str).collect(),
        (_, Some(Value::String(s))) => s.split_whitespace().collect(),
        _ => Vec::new(),
    }
}
