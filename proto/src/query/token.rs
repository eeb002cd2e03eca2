//! Pagination tokens, shaped as Kinto's: standard base64 of
//! `{"last_object": {...}, "offset": n, "nonce": "pagination-token-<uuid4>"}`,
//! read and checked as Kinto reads them (`_extract_pagination_rules_from_token`).

use super::SortKey;
use base64::Engine;
use serde_json::{json, Map, Value};

/// The token is not one Kinto would accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidToken;

pub fn encode_token(last_object: &Map<String, Value>, offset: u64) -> String {
    encode_token_with_nonce(last_object, offset, &new_nonce())
}

/// A fresh nonce, as Kinto makes them.
pub fn new_nonce() -> String {
    format!("pagination-token-{}", uuid::Uuid::new_v4())
}

/// A token whose nonce was chosen beforehand (a DELETE's, which the shard
/// keeps so that the token works once).
pub fn encode_token_with_nonce(
    last_object: &Map<String, Value>,
    offset: u64,
    nonce: &str,
) -> String {
    let body = json!({
        "last_object": last_object,
        "offset": offset,
        "nonce": nonce,
    });
    base64::engine::general_purpose::STANDARD.encode(body.to_string())
}

/// The nonce of a token [`decode_token`] accepted: its text, or the JSON of
/// any other value (which no shard issued, so a DELETE refuses it).
pub fn token_nonce(token: &str) -> Option<String> {
    let raw = python_b64decode(token)?;
    match serde_json::from_slice::<Value>(&raw).ok()?.get("nonce")? {
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Python's `b64decode` (not strict): characters outside the alphabet are
/// skipped, decoding stops at complete padding, and a partial quantum is an
/// error.
pub(super) fn python_b64decode(token: &str) -> Option<Vec<u8>> {
    use base64::engine::{
        general_purpose::GeneralPurposeConfig, DecodePaddingMode, GeneralPurpose,
    };
    let (mut data, mut pads, mut done) = (String::new(), 0, false);
    for c in token.chars() {
        let quad = data.len() % 4;
        if c == '=' {
            // Pads count only once two characters of a quantum are in.
            if quad >= 2 {
                pads += 1;
                if quad + pads >= 4 {
                    done = true;
                    break;
                }
            }
        } else if c.is_ascii_alphanumeric() || c == '+' || c == '/' {
            data.push(c);
            pads = 0;
        }
    }
    if !done && data.len() % 4 != 0 {
        return None;
    }
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    engine.decode(data).ok()
}

/// Kinto's `is_valid_timestamp`: an integer (floats truncate; not a
/// boolean), or text of digits optionally in double quotes, with
/// 0 ≤ v < now + 24h. Tokens and querystring values both use it.
pub fn valid_timestamp(v: &Value, now_ms: u64) -> Option<u64> {
    let n = match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f > -1.0).map(|f| f.trunc() as u64))?,
        Value::String(s) => {
            let inner = s
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or(s);
            if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            inner.parse().ok()?
        }
        _ => return None,
    };
    (n < now_ms.saturating_add(24 * 3600 * 1000)).then_some(n)
}

/// The `last_object` and `offset` of a token, checked against Kinto's sort
/// (`sort` includes `last_modified`): `offset` a non-negative integer, a
/// `nonce`, `last_modified` a valid timestamp (made an integer here), other
/// sort values neither arrays, objects nor text with NUL.
pub fn decode_token(
    token: &str,
    sort: &[SortKey],
    now_ms: u64,
) -> Result<(Map<String, Value>, u64), InvalidToken> {
    let raw = python_b64decode(token).ok_or(InvalidToken)?;
    let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(&raw) else {
        return Err(InvalidToken);
    };
    let Some(Value::Object(mut last)) = m.remove("last_object") else {
        return Err(InvalidToken);
    };
    if !m.contains_key("nonce") {
        return Err(InvalidToken);
    }
    let offset = m
        .get("offset")
        .and_then(Value::as_u64)
        .ok_or(InvalidToken)?;
    for key in sort {
        match (key.field.as_str(), last.get_mut(&key.field)) {
            ("last_modified", None) => return Err(InvalidToken),
            ("last_modified", Some(v)) => {
                *v = Value::from(valid_timestamp(v, now_ms).ok_or(InvalidToken)?)
            }
            (_, None) => {}
            (_, Some(Value::Array(_) | Value::Object(_))) => return Err(InvalidToken),
            (_, Some(Value::String(s))) if s.contains('\0') => return Err(InvalidToken),
            _ => {}
        }
    }
    Ok((last, offset))
}
