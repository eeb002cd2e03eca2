//! CORS as Kinto does it: `Access-Control-Allow-Origin` when the request has
//! an allowed `Origin`, exposed headers on every response, and preflights.

use super::message::{KRequest, KResponse};
use crate::config::GatewayConfig;
use kinto_proto::KintoError;

const EXPOSED: &str = "Alert, Backoff, Cache-Control, Content-Length, Content-Type, ETag, Expires, Last-Modified, Next-Page, Pragma, Retry-After, Total-Objects, Total-Records";

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

/// Headers every response carries.
pub fn decorate(cfg: &GatewayConfig, req: &KRequest, resp: &mut KResponse) {
    resp.set("access-control-expose-headers", EXPOSED);
    if let Some(origin) = req.header("origin") {
        if let Some(allow) = allowed_origin(cfg, origin) {
            resp.set("access-control-allow-origin", allow);
        }
    }
}

/// `OPTIONS`: a preflight. Every requested header is accepted.
pub fn preflight(cfg: &GatewayConfig, req: &KRequest) -> Result<KResponse, KintoError> {
    let origin = req.header("origin");
    let method = req.header("access-control-request-method");
    let (Some(_), Some(method)) = (origin, method) else {
        let missing = if origin.is_none() {
            "Origin"
        } else {
            "Access-Control-Request-Method"
        };
        return Err(KintoError::invalid(
            "header",
            Some(missing),
            "this header is mandatory",
        ));
    };
    let methods = if cfg.readonly {
        "GET,HEAD,OPTIONS"
    } else {
        "DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT"
    };
    if !methods.split(',').any(|m| m.eq_ignore_ascii_case(method)) {
        return Err(KintoError::invalid(
            "header",
            Some("Access-Control-Request-Method"),
            "Method not allowed",
        ));
    }
    let mut resp = KResponse::json(200, serde_json::Value::Null);
    resp.set("access-control-allow-methods", methods);
    let requested = req
        .header("access-control-request-headers")
        .unwrap_or_default();
    let mut allow = String::from("Authorization, Content-Type, If-Match, If-None-Match");
    if !requested.is_empty() {
        allow.push_str(", ");
        allow.push_str(requested);
    }
    resp.set("access-control-allow-headers", allow);
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
