//! A collection's `cache_expires`: Kinto's colander `Int` field, coerced as
//! Python's `int()` coerces on every write, and read back on record reads by
//! anonymous callers so the gateway can send `Cache-Control`/`Expires`.

use crate::storage::StoredObject;
use kinto_proto::{ErrorKind, KintoError};
use serde_json::{Map, Value};

const FIELD: &str = "cache_expires";

/// Coerces `data.cache_expires` as colander's `Int` does: `null`, `""`, `[]`
/// and `{}` drop the field, booleans and numbers become integers (floats
/// truncated), strings are parsed as Python's `int()` parses them; anything
/// else is 400 naming `name` (`data.cache_expires` for PUT/POST, where Kinto
/// validates the body, `cache_expires` for PATCH, where it validates the merge).
pub fn coerce(data: &mut Map<String, Value>, name: &str) -> Result<(), KintoError> {
    let Some(value) = data.get(FIELD) else {
        return Ok(());
    };
    let empty = match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if empty {
        data.remove(FIELD);
        return Ok(());
    }
    let coerced = match value {
        Value::Bool(b) => Some(Value::from(i64::from(*b))),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(value.clone()),
        Value::Number(n) => n.as_f64().map(|f| float_to_int(f.trunc())),
        Value::String(s) => python_int(s),
        _ => None,
    };
    match coerced {
        Some(v) => {
            data.insert(FIELD.into(), v);
            Ok(())
        }
        None => {
            let description = format!("\"{}\" is not a number", python_str(value));
            Err(KintoError::new(ErrorKind::InvalidParameters)
                .with_message(format!("{name} in body: {description}"))
                .with_details(serde_json::json!([{
                    "location": "body",
                    "name": name,
                    "description": description,
                }])))
        }
    }
}

/// The value a record read by an anonymous caller is cached for: Kinto's
/// `max(-1, cache_expires)` (no `record_cache_expires_seconds` setting here).
pub fn of(collection: Option<&StoredObject>) -> Option<i64> {
    let v = collection?.data.get(FIELD)?;
    let n = v.as_i64().or_else(|| {
        v.as_f64()
            .map(|f| f.trunc().clamp(-1.0, i64::MAX as f64) as i64)
    })?;
    Some(n.max(-1))
}

fn float_to_int(f: f64) -> Value {
    if f.abs() < 9.2e18 {
        Value::from(f as i64)
    } else {
        Value::from(f)
    }
}

/// Python's `int(str)`: surrounding whitespace, an optional sign, decimal
/// digits with single underscores between them (ASCII digits only here).
fn python_int(s: &str) -> Option<Value> {
    let t = s.trim();
    let (negative, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return None;
    }
    let plain: String = digits.chars().filter(|c| *c != '_').collect();
    let magnitude: f64 = plain.parse().ok()?;
    match plain.parse::<i64>() {
        Ok(n) => Some(Value::from(if negative { -n } else { n })),
        Err(_) => Some(float_to_int(if negative { -magnitude } else { magnitude })),
    }
}

/// `str()` of the JSON value as Python holds it (for colander's message).
fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

fn python_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(python_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(o) => {
            let items: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("'{k}': {}", python_repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(v: Value) -> Result<Option<Value>, KintoError> {
        let mut m = Map::new();
        m.insert(FIELD.into(), v);
        coerce(&mut m, "data.cache_expires")?;
        Ok(m.get(FIELD).cloned())
    }

    #[test]
    fn coerces_as_colander_int() {
        for (input, out) in [
            (json!(60), Some(json!(60))),
            (json!("60"), Some(json!(60))),
            (json!(" -3 "), Some(json!(-3))),
            (json!("+4"), Some(json!(4))),
            (json!("1_000"), Some(json!(1000))),
            (json!(1.5), Some(json!(1))),
            (json!(true), Some(json!(1))),
            (json!(false), Some(json!(0))),
            (json!(null), None),
            (json!(""), None),
            (json!([]), None),
            (json!({}), None),
        ] {
            assert_eq!(run(input.clone()).ok(), Some(out), "{input}");
        }
    }

    #[test]
    fn refuses_what_int_refuses() {
        for (input, shown) in [
            (json!("abc"), "abc"),
            (json!("1.5"), "1.5"),
            (json!("0x10"), "0x10"),
            (json!("1__0"), "1__0"),
            (json!([1]), "[1]"),
            (json!({"a": 1}), "{'a': 1}"),
        ] {
            let e = run(input).err().map(|e| e.to_json());
            let text = String::from_utf8(e.unwrap_or_default()).unwrap_or_default();
            assert!(
                text.contains(&format!("\\\"{shown}\\\" is not a number")),
                "{text}"
            );
        }
    }
}
