//! Kinto's OpenID Connect login flow (`kinto.plugins.openid` views), which
//! kinto-admin uses:
//!
//! 1. `GET /openid/{provider}/login?callback=…&scope=…[&prompt=none]`: checks
//!    the scopes and the callback (allow-lists), remembers the callback
//!    under a random `state`, and sends the browser to the provider.
//! 2. `GET /openid/{provider}/token?code=…&state=…` (or `error=…`): forgets
//!    the state (single use), trades the code at the provider's token
//!    endpoint, and sends the browser to `callback` + the provider's answer
//!    in base64 (URL-quoted), as Kinto does.

use super::message::{KRequest, KResponse};
use crate::app::App;
use kinto_proto::{ErrorKind, KintoError};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What Python's `urllib.parse.quote` leaves as is (its default `safe="/"`).
const QUOTE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Kinto's trusted callbacks when none are configured: local clients.
const LOCAL_CALLBACKS: [&str; 2] = ["http://localhost:*/*", "http://127.0.0.1:*/*"];

/// `state_length` of Kinto: bytes of randomness, hex in the URL.
const STATE_BYTES: usize = 32;

fn query(req: &KRequest, name: &str) -> Option<String> {
    req.query_pairs()
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn required(req: &KRequest, name: &str) -> Result<String, KintoError> {
    query(req, name).ok_or_else(|| KintoError::invalid("querystring", Some(name), "Required"))
}

pub async fn handle(
    app: &App,
    req: &KRequest,
    provider: &str,
    token_step: bool,
) -> Result<KResponse, KintoError> {
    let Some(oidc) = app.identity.oidc.get(provider) else {
        return Err(KintoError::invalid(
            "path",
            Some("provider"),
            format!("Unknown provider '{provider}'"),
        ));
    };
    let redirect_uri = format!("{}/v1/openid/{provider}/token", app.base_url(req));
    if !token_step {
        return login(app, req, provider, oidc, &redirect_uri).await;
    }
    let state = required(req, "state")?;
    let invalid_state = || {
        KintoError::new(ErrorKind::InvalidParameters)
            .with_message("state in querystring: Invalid state")
            .with_details(serde_json::json!([{
                "location": "querystring", "name": "state",
                "description": "Invalid state", "errno": 105,
            }]))
    };
    let (code, error) = (query(req, "code"), query(req, "error"));
    if code.is_some() == error.is_some() {
        return Err(KintoError::invalid(
            "querystring",
            None,
            "Provide either 'state' and 'code', or 'error' and 'error_description', but not both.",
        ));
    }
    let callback = app
        .identity
        .take_state(provider, &state)
        .ok_or_else(invalid_state)?;
    if let Some(error) = error {
        let mut params = form_urlencoded::Serializer::new(String::new());
        params.append_pair("error", &error);
        if let Some(d) = query(req, "error_description") {
            params.append_pair("error_description", &d);
        }
        return Ok(KResponse::redirect(&format!(
            "{callback}{}",
            params.finish()
        )));
    }
    let code = code.unwrap_or_default();
    let discovery = oidc.discovery(&app.identity.http).await?;
    let form = [
        ("code", code.as_str()),
        ("client_id", oidc.cfg.client_id.as_str()),
        ("client_secret", oidc.cfg.client_secret.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("grant_type", "authorization_code"),
    ];
    let answer = app
        .identity
        .http
        .post_form_text(&discovery.token_endpoint, &form)
        .await?;
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(answer);
    let quoted = utf8_percent_encode(&encoded, QUOTE);
    Ok(KResponse::redirect(&format!("{callback}{quoted}")))
}

async fn login(
    app: &App,
    req: &KRequest,
    provider: &str,
    oidc: &crate::auth::Oidc,
    redirect_uri: &str,
) -> Result<KResponse, KintoError> {
    let callback = required(req, "callback")?;
    let scope = required(req, "scope")?;
    let prompt = query(req, "prompt");
    if prompt.as_deref().is_some_and(|p| p != "none") {
        return Err(KintoError::invalid(
            "querystring",
            Some("prompt"),
            "Invalid value",
        ));
    }
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let mut unknown: Vec<&str> = scopes
        .iter()
        .copied()
        .filter(|s| !oidc.cfg.allowed_scopes.iter().any(|a| a == s))
        .collect();
    unknown.sort_unstable();
    unknown.dedup();
    if !unknown.is_empty() {
        return Err(KintoError::invalid(
            "querystring",
            Some("scope"),
            format!("Scopes not allowed: {}", unknown.join(", ")),
        ));
    }
    let mut trusted = oidc.cfg.trusted_callback_urls.clone();
    if trusted.is_empty() {
        trusted = LOCAL_CALLBACKS.iter().map(|s| s.to_string()).collect();
        if app.config.plugin("admin") {
            trusted.push(format!("{}/v1/admin/*", app.base_url(req)));
        }
    }
    if !super::openid_callback::is_trusted(&callback, &trusted) {
        return Err(KintoError::invalid(
            "querystring",
            Some("callback"),
            "Untrusted callback URL",
        ));
    }
    if oidc.cfg.userid_field == "email" && !scopes.contains(&"email") {
        return Err(KintoError::invalid(
            "querystring",
            Some("scope"),
            format!("Provider {provider} requires 'email' scope"),
        ));
    }
    let discovery = oidc.discovery(&app.identity.http).await?;
    let state = hex::encode(rand::random::<[u8; STATE_BYTES]>());
    app.identity
        .put_state(provider, &state, callback, oidc.cfg.state_ttl_seconds);
    let mut params = form_urlencoded::Serializer::new(String::new());
    params
        .append_pair("client_id", &oidc.cfg.client_id)
        .append_pair("response_type", "code")
        .append_pair("scope", &scope)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", &state);
    if let Some(p) = &prompt {
        params.append_pair("prompt", p);
    }
    if !oidc.cfg.audience.is_empty() {
        params.append_pair("audience", &oidc.cfg.audience);
    }
    Ok(KResponse::redirect(&format!(
        "{}?{}",
        discovery.authorization_endpoint,
        params.finish()
    )))
}
