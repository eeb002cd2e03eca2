//! Request bodies: JSON parsing and Kinto's envelope `{data, permissions}`.

use kinto_proto::python::py_repr;
use kinto_proto::{ErrorKind, KintoError};
use serde_json::Value;

/// A parsed write body's parts.
#[derive(Debug, Default)]
pub struct Envelope<'a> {
    pub data: Option<&'a Value>,
    pub permissions: Option<&'a Value>,
}

/// `{key: value, …}` in this order, the values moved in (`json!` would
/// copy them: it serialises its arguments).
pub fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// Parses a JSON body; an empty body is `None`. serde_json refuses nesting
/// deeper than 128 levels, which bounds the parser's stack.
pub fn parse_json(body: &[u8]) -> Result<Option<Value>, KintoError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let text = std::str::from_utf8(body).map_err(|e| invalid_json(&utf8_error(body, e)))?;
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| invalid_json(&e.to_string()))
}

/// Kinto's answer to a body it cannot parse: the message is the parser's,
/// and `details` also says the body is required (its schema's second error).
fn invalid_json(cause: &str) -> KintoError {
    let description = format!("Invalid JSON: {cause}");
    KintoError::new(ErrorKind::InvalidParameters)
        .with_message(description.clone())
        .with_details(serde_json::json!([
            {"location": "body", "name": "", "description": description},
            {"location": "body", "name": "", "description": "Required"},
        ]))
}

/// Python's wording for a body that is not UTF-8, as Kinto reports it.
fn utf8_error(body: &[u8], e: std::str::Utf8Error) -> String {
    let at = e.valid_up_to();
    let byte = body.get(at).copied().unwrap_or_default();
    let reason = match (byte, e.error_len()) {
        (0x80..=0xc1 | 0xf5..=0xff, _) => "invalid start byte",
        (_, None) => "unexpected end of data",
        _ => "invalid continuation byte",
    };
    format!("'utf-8' codec can't decode byte 0x{byte:02x} in position {at}: {reason}")
}

/// Splits `{data, permissions}`; other keys and non-objects are 400s.
pub fn envelope(body: Option<&Value>) -> Result<Envelope<'_>, KintoError> {
    let Some(body) = body else {
        return Ok(Envelope::default());
    };
    let Value::Object(m) = body else {
        return Err(KintoError::invalid(
            "body",
            None,
            format!("\"{}\" is not a mapping type", py_repr(body)),
        ));
    };
    if m.keys().any(|k| k != "data" && k != "permissions") {
        let extra: serde_json::Map<String, Value> = m
            .iter()
            .filter(|(k, _)| *k != "data" && *k != "permissions")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        return Err(KintoError::invalid(
            "body",
            None,
            format!(
                "Unrecognized keys in mapping: \"{}\"",
                py_repr(&Value::Object(extra))
            ),
        ));
    }
    let (data, permissions) = (m.get("data"), m.get("permissions"));
    if let Some(d) = data {
        if !d.is_object() {
            return Err(KintoError::invalid(
                "body",
                Some("data"),
                format!("\"{}\" is not a mapping type", py_repr(d)),
            ));
        }
    }
    if let Some(p) = permissions {
        if !p.is_object() {
            return Err(KintoError::invalid(
                "body",
                Some("permissions"),
                format!("\"{}\" is not a mapping type", py_repr(p)),
            ));
        }
    }
    Ok(Envelope { data, permissions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_rejects_unknown_keys() {
        let e = envelope(Some(&json!({"data": {}, "x": 1}))).expect_err("must fail");
        assert_eq!(
            e.message.as_deref(),
            Some("body: Unrecognized keys in mapping: \"{'x': 1}\"")
        );
        assert!(envelope(Some(&json!({"data": [1]}))).is_err());
        assert!(envelope(None).is_ok());
    }

    #[test]
    fn object_is_json_in_order() {
        let o = object([("b", json!([1])), ("a", Value::Null)]);
        assert_eq!(o, json!({"b": [1], "a": null}));
        assert_eq!(o.to_string(), r#"{"b":[1],"a":null}"#);
    }

    #[test]
    fn deep_json_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert!(parse_json(deep.as_bytes()).is_err());
    }
}
