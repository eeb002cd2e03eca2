//! Request headers Kinto validates: preconditions, content type, accept.

use super::message::KRequest;
use kinto_proto::pb::{precondition, Precondition};
use kinto_proto::{ErrorKind, KintoError};

/// `If-Match` / `If-None-Match`: `"<digits>"` or `*`, anything else is 400.
/// `name` is spelled as Kinto names the header in its message
/// (`If-Match in header: …`); the lookup ignores case.
pub fn precondition(req: &KRequest, name: &str) -> Result<Option<Precondition>, KintoError> {
    let Some(raw) = req.headers.get(name.to_ascii_lowercase().as_str()) else {
        return Ok(None);
    };
    let v = raw.to_str().unwrap_or_default().trim();
    let value = if v == "*" {
        precondition::Value::Any(true)
    } else {
        let digits = v
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
        match digits.and_then(|d| d.parse::<u64>().ok()) {
            Some(ts) => precondition::Value::Timestamp(ts),
            None => {
                return Err(KintoError::invalid(
                    "header",
                    Some(name),
                    "The value should be integer between double quotes.",
                ))
            }
        }
    };
    Ok(Some(Precondition { value: Some(value) }))
}

/// `Accept` must allow JSON.
pub fn check_accept(req: &KRequest) -> Result<(), KintoError> {
    let Some(accept) = req.header("accept") else {
        return Ok(());
    };
    let ok = accept.split(',').any(|part| {
        let media = part.split(';').next().unwrap_or_default().trim();
        matches!(media, "application/json" | "application/*" | "*/*" | "")
    });
    if ok {
        Ok(())
    } else {
        Err(KintoError::new(ErrorKind::NotAcceptable)
            .with_message("Accept header should be one of ['application/json']"))
    }
}

/// The media type of the body, if a `Content-Type` was sent.
pub fn content_type(req: &KRequest) -> Option<String> {
    req.header("content-type").map(|c| {
        c.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    })
}

/// 415 unless the body's type is one of `allowed` (or absent).
pub fn check_content_type(req: &KRequest, allowed: &[&str]) -> Result<(), KintoError> {
    match content_type(req) {
        None => Ok(()),
        Some(t) if allowed.contains(&t.as_str()) => Ok(()),
        Some(_) => {
            let list = allowed
                .iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(", ");
            let message = format!("Content-Type header should be one of [{list}]");
            Err(KintoError::new(ErrorKind::UnsupportedMediaType)
                .with_message(message.clone())
                .with_details(serde_json::json!([{
                    "location": "header",
                    "name": "Content-Type",
                    "description": message,
                }])))
        }
    }
}
