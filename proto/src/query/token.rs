//! Pagination tokens, shaped as Kinto's: base64 of
//! `{"last_object": {...}, "offset": n, "nonce": "pagination-token-<uuid4>"}`.

use base64::Engine;
use serde_json::{json, Map, Value};

/// The token is not one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidToken;

pub fn encode_token(last_object: &Map<String, Value>, offset: u64) -> String {
    let body = json!({
        "last_object": last_object,
        "offset": offset,
        "nonce": format!("pagination-token-{}", uuid::Uuid::new_v4()),
    });
    base64::engine::general_purpose::URL_SAFE.encode(body.to_string())
}

/// The `last_object` and `offset` of a token.
pub fn decode_token(token: &str) -> Result<(Map<String, Value>, u64), InvalidToken> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let raw = URL_SAFE
        .decode(token)
        .or_else(|_| URL_SAFE_NO_PAD.decode(token))
        .or_else(|_| STANDARD.decode(token))
        .map_err(|_| InvalidToken)?;
    let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(&raw) else {
        return Err(InvalidToken);
    };
    let offset = m.get("offset").and_then(Value::as_u64).unwrap_or(0);
    match m.remove("last_object") {
        Some(Value::Object(last)) => Ok((last, offset)),
        _ => Err(InvalidToken),
    }
}
