//! CORS as Kinto does it: `Access-Control-Allow-Origin` when the request has
//! an allowed `Origin`, exposed headers on every response, and preflights.

use super::message::{KRequest, KResponse};
use super::routes::Route;
use crate::config::GatewayConfig;
use axum::http::{Method, StatusCode};
use kinto_proto::KintoError;
use serde_json::{json, Value};

/// fnmatch-style `*` wildcard match.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.starts_with(head)
                && (0..=text.len() - head.len()).any(|i| {
                    text.is_char_boundary(head.len() + i) && glob(tail, &text[head.len() + i..])
                })
        }
    }
}

fn allowed_origin(cfg: &GatewayConfig, origin: &str) -> Option<String> {
    if cfg.cors_origins.iter().any(|o| o == "*") {
        return Some("*".into());
    }
    cfg.cors_origins
        .iter()
        .any(|p| glob(p, origin))
        .then(|| origin.to_owned())
}

/// `Access-Control-Allow-Origin` on every response to an allowed origin, and
/// the headers the endpoint exposes, except on preflights and 405s (Kinto
/// answers those outside its services).
pub fn decorate(cfg: &GatewayConfig, req: &KRequest, route: Option<&Route>, resp: &mut KResponse) {
    if let Some(origin) = req.header("origin") {
        if let Some(allow) = allowed_origin(cfg, origin) {
            resp.set("access-control-allow-origin", allow);
        }
    }
    if req.method == Method::OPTIONS || resp.status == StatusCode::METHOD_NOT_ALLOWED {
        return;
    }
    let exposed = match route {
        Some(r) => r.exposed_headers(req.method.as_str()),
        None => Route::Hello.exposed_headers("GET"),
    };
    resp.set("access-control-expose-headers", exposed.join(", "));
}

/// The methods `route` answers given the configuration (a read-only server
/// has no write methods at all).
pub fn methods(cfg: &GatewayConfig, route: &Route) -> Vec<&'static str> {
    route
        .methods()
        .iter()
        .copied()
        .filter(|m| !cfg.readonly || matches!(*m, "GET" | "HEAD" | "OPTIONS"))
        .collect()
}

/// `OPTIONS`: a preflight, answered for the endpoint's own methods. Any
/// requested header is allowed, besides those the endpoint exposes.
pub fn preflight(
    cfg: &GatewayConfig,
    req: &KRequest,
    route: &Route,
) -> Result<KResponse, KintoError> {
    let origin = req.header("origin");
    let method = req.header("access-control-request-method");
    let mut missing = Vec::new();
    if method.is_none() {
        missing.push("Access-Control-Request-Method");
    }
    if origin.is_none() {
        missing.push("Origin");
    }
    let (Some(_), Some(method)) = (origin, method) else {
        let mut e = KintoError::invalid("header", Some(missing[0]), "this header is mandatory");
        if let (Some(second), Some(Value::Array(details))) = (missing.get(1), e.details.as_mut()) {
            details.push(json!({"location": "header", "name": second, "description": "this header is mandatory"}));
        }
        return Err(e);
    };
    let methods = methods(cfg, route);
    if !methods.contains(&method) {
        return Err(KintoError::invalid(
            "header",
            Some("Access-Control-Request-Method"),
            "Method not allowed",
        ));
    }
    let mut allow: Vec<String> = route
        .all_exposed_headers()
        .iter()
        .map(|h| h.to_string())
        .collect();
    for h in req
        .header("access-control-request-headers")
        .unwrap_or_default()
        .split(',')
    {
        let h = h.trim();
        if !h.is_empty() && !allow.iter().any(|a| a.eq_ignore_ascii_case(h)) {
            allow.push(h.to_owned());
        }
    }
    let mut resp = KResponse::json(200, Value::Null);
    resp.set("access-control-allow-methods", methods.join(","));
    resp.set("access-control-allow-headers", allow.join(","));
    resp.set(
        "access-control-max-age",
        cfg.cors_max_age_seconds.to_string(),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_matches_like_fnmatch() {
        assert!(glob("*", "http://a"));
        assert!(glob("http://*.example.com", "http://x.example.com"));
        assert!(!glob("http://*.example.com", "http://example.org"));
        assert!(glob("http://a", "http://a"));
    }
}
