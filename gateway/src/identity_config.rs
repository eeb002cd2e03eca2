//! Settings of the token policies (OpenID Connect providers, Firefox
//! Accounts, per-app users), under Kinto's and kinto-fxa's names made flat
//! (docs/configuration.md, "Identity"): Kinto's
//! `multiauth.policy.<name>.issuer` is `multiauth_policy_<name>_issuer`,
//! kinto-fxa's `fxa-oauth.oauth_uri` is `fxa_oauth_oauth_uri`. A policy's
//! name is chosen by the deployment, so these keys cannot be fields of a
//! struct: they are read from the raw map.

use kinto_runtime::settings::RawSettings;
use serde_json::Value;
use std::collections::BTreeMap;

/// Kinto's default `verification_ttl_seconds`.
const OIDC_DEFAULT_TTL: u64 = 86_400;
/// kinto-fxa's default `fxa-oauth.cache_ttl_seconds`.
const FXA_DEFAULT_TTL: u64 = 300;
/// The most clock skew accepted on `exp` / `nbf`, whatever is configured:
/// a larger leeway would keep expired tokens alive.
pub const MAX_LEEWAY_SECONDS: u64 = 300;

/// OAuth client id → app name (Test Pilot-style per-app users).
pub type Apps = BTreeMap<String, String>;

#[derive(Debug, Clone, Default)]
pub struct IdentityConfig {
    /// OpenID Connect policies by name, in no order (`multiauth_policies`
    /// gives the order).
    pub oidc: BTreeMap<String, OidcConfig>,
    pub fxa: Option<FxaConfig>,
    /// Longest time a verified token is trusted without asking again
    /// (besides each policy's own TTL and the token's `exp`).
    pub token_cache_ttl_seconds: u64,
    /// How long a refused token is remembered as refused.
    pub negative_ttl_seconds: u64,
    /// Timeout of each call to a provider.
    pub provider_timeout_seconds: u64,
    /// Least time between two JWKS fetches caused by unknown `kid`s.
    pub jwks_min_refresh_seconds: u64,
    pub leeway_seconds: u64,
}

#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Empty: every token is checked at the userinfo endpoint, as Kinto
    /// does. Set: JWT access tokens for this audience are verified locally.
    pub audience: String,
    pub userid_field: String,
    pub verification_ttl_seconds: u64,
    /// Scopes the `/openid/<name>/login` flow may ask for.
    pub allowed_scopes: Vec<String>,
    /// Scopes every token must have been granted (none: any token of the
    /// provider will do, as in Kinto).
    pub required_scopes: Vec<String>,
    /// fnmatch patterns of the callbacks the login flow may send tokens to.
    pub trusted_callback_urls: Vec<String>,
    pub state_ttl_seconds: u64,
    pub apps: Apps,
}

#[derive(Debug, Clone)]
pub struct FxaConfig {
    pub oauth_uri: String,
    pub required_scope: String,
    pub cache_ttl_seconds: u64,
    pub apps: Apps,
}

/// Kinto's module path of the OpenID Connect policy (`…_use`).
const OIDC_POLICY: &str = "OpenIDConnectPolicy";

impl IdentityConfig {
    /// The settings of `policies` (Kinto's `multiauth.policies`).
    pub fn from_raw(raw: &RawSettings, policies: &[String]) -> Result<Self, String> {
        let flat = flatten(raw);
        let get = |k: &str| flat.get(k).cloned();
        let num = |k: &str, default: u64| -> Result<u64, String> {
            match flat.get(k) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| format!("setting {k}: {v:?} is not a number")),
            }
        };
        let mut cfg = IdentityConfig {
            token_cache_ttl_seconds: num("identity_token_cache_ttl_seconds", 3600)?,
            negative_ttl_seconds: num("identity_negative_ttl_seconds", 5)?,
            provider_timeout_seconds: num("identity_provider_timeout_seconds", 5)?.max(1),
            jwks_min_refresh_seconds: num("identity_jwks_min_refresh_seconds", 10)?,
            leeway_seconds: num("identity_leeway_seconds", 60)?.min(MAX_LEEWAY_SECONDS),
            ..Default::default()
        };
        for name in policies {
            if matches!(name.as_str(), "account" | "basicauth" | "fxa") {
                continue;
            }
            let p = format!("multiauth_policy_{name}_");
            let used = get(&format!("{p}use")).unwrap_or_default();
            if !used.ends_with(OIDC_POLICY) {
                return Err(format!(
                    "multiauth_policies: unknown policy `{name}` (an OpenID Connect policy needs \
                     multiauth_policy_{name}_use = kinto.plugins.openid.OpenIDConnectPolicy)"
                ));
            }
            let required = |k: &str| {
                get(&format!("{p}{k}"))
                    .filter(|v| !v.is_empty())
                    .ok_or(format!("setting {p}{k} is required"))
            };
            let callbacks = get(&format!("{p}trusted_callback_urls")).unwrap_or_default();
            let oidc = OidcConfig {
                issuer: required("issuer")?.trim_end_matches('/').to_owned(),
                client_id: required("client_id")?,
                client_secret: get(&format!("{p}client_secret")).unwrap_or_default(),
                audience: get(&format!("{p}audience")).unwrap_or_default(),
                userid_field: get(&format!("{p}userid_field")).unwrap_or_else(|| "sub".into()),
                verification_ttl_seconds: num(
                    &format!("{p}verification_ttl_seconds"),
                    OIDC_DEFAULT_TTL,
                )?,
                allowed_scopes: words(
                    &get(&format!("{p}allowed_scopes"))
                        .unwrap_or_else(|| "openid email profile".into()),
                ),
                required_scopes: words(&get(&format!("{p}required_scopes")).unwrap_or_default()),
                trusted_callback_urls: words(&callbacks),
                state_ttl_seconds: num(&format!("{p}state_ttl_seconds"), 3600)?,
                apps: apps(&flat, &format!("{p}clients_"))?,
            };
            cfg.oidc.insert(name.clone(), oidc);
        }
        if policies.iter().any(|p| p == "fxa") {
            let oauth_uri = get("fxa_oauth_oauth_uri")
                .filter(|v| !v.is_empty())
                .ok_or("multiauth_policies has `fxa` but fxa_oauth_oauth_uri is not set")?;
            cfg.fxa = Some(FxaConfig {
                // PyFxA appends `/v1` itself; a URI given with it works too.
                oauth_uri: oauth_uri
                    .trim_end_matches('/')
                    .trim_end_matches("/v1")
                    .to_owned(),
                required_scope: get("fxa_oauth_required_scope")
                    .filter(|v| !v.is_empty())
                    .ok_or(
                        "multiauth_policies has `fxa` but fxa_oauth_required_scope is not set",
                    )?,
                cache_ttl_seconds: num("fxa_oauth_cache_ttl_seconds", FXA_DEFAULT_TTL)?,
                apps: apps(&flat, "fxa_oauth_clients_")?,
            });
        }
        Ok(cfg)
    }
}

/// Every setting as a string under a flat key: `.` and `-` read as `_`, and
/// TOML tables (`[fxa-oauth]`, `[multiauth.policy.x]`) flattened.
fn flatten(raw: &RawSettings) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    walk(&format!("{prefix}{}_", norm(k)), v, out);
                }
            }
            Value::String(s) => {
                out.insert(prefix.trim_end_matches('_').to_owned(), s.clone());
            }
            Value::Array(items) => {
                let words: Vec<String> = items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect();
                out.insert(prefix.trim_end_matches('_').to_owned(), words.join(" "));
            }
            Value::Null => {}
            other => {
                out.insert(prefix.trim_end_matches('_').to_owned(), other.to_string());
            }
        }
    }
    fn norm(k: &str) -> String {
        k.replace(['.', '-'], "_").to_ascii_lowercase()
    }
    let mut out = BTreeMap::new();
    for (k, v) in &raw.0 {
        walk(&format!("{}_", norm(k)), v, &mut out);
    }
    out
}

fn words(s: &str) -> Vec<String> {
    s.split([' ', ',', '\n'])
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `<prefix><app>_client_id = <id>` settings, as kinto-fxa's
/// `fxa-oauth.clients.<app>.client_id`.
fn apps(flat: &BTreeMap<String, String>, prefix: &str) -> Result<Apps, String> {
    let mut apps = Apps::new();
    for (k, v) in flat.range(prefix.to_owned()..) {
        let Some(rest) = k.strip_prefix(prefix) else {
            break;
        };
        let Some(app) = rest.strip_suffix("_client_id") else {
            continue;
        };
        // The app name ends up in user ids and bucket ids.
        if app.is_empty() || !app.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("setting {k}: app names are letters and digits"));
        }
        if apps.insert(v.clone(), app.to_owned()).is_some() {
            return Err(format!("setting {k}: client id {v:?} given to two apps"));
        }
    }
    Ok(apps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawSettings {
        RawSettings::default().with_env(
            pairs
                .iter()
                .map(|(k, v)| (format!("KINTO_{}", k.to_uppercase()), v.to_string())),
        )
    }

    #[test]
    fn reads_kinto_names_flat() {
        let r = raw(&[
            (
                "multiauth_policy_idp_use",
                "kinto.plugins.openid.OpenIDConnectPolicy",
            ),
            ("multiauth_policy_idp_issuer", "http://i/"),
            ("multiauth_policy_idp_client_id", "c"),
            ("fxa_oauth_oauth_uri", "http://f/v1"),
            ("fxa_oauth_required_scope", "s"),
            ("fxa_oauth_clients_notes_client_id", "abc"),
        ]);
        let c = IdentityConfig::from_raw(&r, &["idp".into(), "fxa".into()]).expect("config");
        assert_eq!(c.oidc["idp"].issuer, "http://i");
        assert_eq!(c.oidc["idp"].userid_field, "sub");
        let fxa = c.fxa.expect("fxa");
        assert_eq!(fxa.oauth_uri, "http://f");
        assert_eq!(fxa.apps.get("abc").map(String::as_str), Some("notes"));
    }

    #[test]
    fn refuses_unknown_policies_and_bad_apps() {
        assert!(IdentityConfig::from_raw(&raw(&[]), &["nope".into()]).is_err());
        let r = raw(&[
            ("fxa_oauth_oauth_uri", "http://f"),
            ("fxa_oauth_required_scope", "s"),
            ("fxa_oauth_clients_a-b_client_id", "x"),
        ]);
        assert!(IdentityConfig::from_raw(&r, &["fxa".into()]).is_err());
    }
}
