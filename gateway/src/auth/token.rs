//! The token policies of a gateway (each OpenID Connect provider, FxA),
//! their shared HTTP client and verdict cache, and their hello capabilities.

use super::fxa::Fxa;
use super::oidc::Oidc;
use super::provider::Http;
use super::token_cache::TokenCache;
use crate::identity_config::IdentityConfig;
use kinto_proto::KintoError;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub struct Tokens {
    pub oidc: BTreeMap<String, Oidc>,
    pub fxa: Option<Fxa>,
    pub http: Http,
    cache: TokenCache,
    /// The login flow's pending states: `(provider, state)` → callback and
    /// deadline (each provider has its own `state_ttl_seconds`).
    states: moka::sync::Cache<(String, String), (String, Instant)>,
}

/// Bounds the pending logins one gateway remembers.
const MAX_PENDING_LOGINS: u64 = 100_000;

/// The token of `Bearer <token>` (scheme case-insensitive, as Kinto).
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl Tokens {
    pub fn new(cfg: &IdentityConfig) -> Result<Self, String> {
        Ok(Tokens {
            oidc: cfg
                .oidc
                .iter()
                .map(|(name, c)| (name.clone(), Oidc::new(c.clone(), cfg)))
                .collect(),
            fxa: cfg.fxa.clone().map(|c| Fxa::new(c, cfg)),
            http: Http::new(cfg.provider_timeout_seconds)?,
            cache: TokenCache::new(cfg.token_cache_ttl_seconds, cfg.negative_ttl_seconds),
            states: moka::sync::Cache::builder()
                .max_capacity(MAX_PENDING_LOGINS)
                .time_to_live(Duration::from_secs(
                    cfg.oidc
                        .values()
                        .map(|c| c.state_ttl_seconds)
                        .max()
                        .unwrap_or(0),
                ))
                .build(),
        })
    }

    pub fn put_state(&self, provider: &str, state: &str, callback: String, ttl_seconds: u64) {
        let deadline = Instant::now() + Duration::from_secs(ttl_seconds);
        self.states.insert(
            (provider.to_owned(), state.to_owned()),
            (callback, deadline),
        );
    }

    /// The callback of a pending login, which it ends (a state is used once).
    pub fn take_state(&self, provider: &str, state: &str) -> Option<String> {
        let (callback, deadline) = self
            .states
            .remove(&(provider.to_owned(), state.to_owned()))?;
        (Instant::now() < deadline).then_some(callback)
    }

    /// `(user id, app)` when policy `name` accepts `token`; `Err` (503) when
    /// its provider cannot say.
    pub async fn verify(
        &self,
        name: &str,
        token: &str,
    ) -> Result<Option<(String, Option<String>)>, KintoError> {
        use futures::future::Either;
        let (ttl, apps, check) = if name == "fxa" {
            let Some(fxa) = &self.fxa else {
                return Ok(None);
            };
            let check = Either::Left(fxa.verify(&self.http, token));
            (fxa.cfg.cache_ttl_seconds, &fxa.cfg.apps, check)
        } else {
            let Some(oidc) = self.oidc.get(name) else {
                return Ok(None);
            };
            // A JWT from another issuer is not this provider's to judge
            // (nor to fail with 503 when this provider is down).
            if !oidc.may_have_issued(token) {
                return Ok(None);
            }
            let check = Either::Right(oidc.verify(&self.http, token));
            (oidc.cfg.verification_ttl_seconds, &oidc.cfg.apps, check)
        };
        let verified = self.cache.verdict(name, token, ttl, check).await?;
        Ok(verified
            .as_ref()
            .and_then(|v| super::apps::scoped(apps, v))
            .map(|(user, app)| (format!("{name}:{user}"), app)))
    }
}

/// `capabilities.openid` and `capabilities.fxa` of the hello view, as
/// Kinto's plugin and kinto-fxa describe them. A provider whose discovery
/// cannot be fetched now is listed with its configured issuer only.
pub async fn capabilities(tokens: &Tokens, policies: &[String]) -> Map<String, Value> {
    let mut caps = Map::new();
    let mut providers = Vec::new();
    for name in policies {
        let Some(oidc) = tokens.oidc.get(name) else {
            continue;
        };
        let discovery = oidc.discovery(&tokens.http).await.ok();
        providers.push(json!({
            "name": name,
            "issuer": discovery.map_or(oidc.cfg.issuer.as_str(), |d| d.issuer.as_str()),
            "auth_path": format!("/openid/{name}/login"),
            "client_id": oidc.cfg.client_id,
            "audience": oidc.cfg.audience,
            "header_type": "Bearer",
            "userinfo_endpoint": discovery.map(|d| d.userinfo_endpoint.as_str()),
        }));
    }
    if !providers.is_empty() {
        caps.insert(
            "openid".into(),
            json!({
                "description": "OpenID connect support.",
                "url": "http://kinto.readthedocs.io/en/stable/api/1.x/authentication.html",
                "providers": providers,
            }),
        );
    }
    if let Some(fxa) = &tokens.fxa {
        caps.insert(
            "fxa".into(),
            json!({
                "description": "Firefox Accounts integration",
                "url": "https://github.com/mozilla-services/kinto-fxa",
                "oauth_uri": format!("{}/v1", fxa.cfg.oauth_uri),
                "required_scope": fxa.cfg.required_scope,
            }),
        );
    }
    caps
}
