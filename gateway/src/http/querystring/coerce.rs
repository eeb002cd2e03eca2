//! How Kinto turns querystring text into values, step for step, so that the
//! same input gets the same value or the same 400 (kinto-api §4.1): JSON
//! parsing (`native_value`), colander's `Integer` and `String` for the
//! parameters `PluralQuerySchema` types, and `is_valid_timestamp`.

use kinto_proto::python::py_str;
use serde_json::Value;

/// Kinto's `native_value`: JSON if it parses, else the raw string.
pub(super) fn native(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

/// `QueryField`: JSON-parsed, except that booleans stay text (so integer
/// fields refuse `true`).
pub(super) fn query_field(raw: &str) -> Value {
    match native(raw) {
        Value::Bool(_) => Value::String(raw.to_owned()),
        v => v,
    }
}

/// Python's falsy values that colander takes as "no value" (`0` is kept).
fn dropped(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(_) => false,
    }
}

fn py_int_text(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let digits: String = digits.chars().filter(|c| *c != '_').collect();
    // Beyond i128 the value is out of every range anyway: saturate.
    let n = digits.parse::<i128>().unwrap_or(i128::MAX);
    Some(if neg { -n } else { n })
}

/// Python's `int(value)` of a JSON value (floats truncate).
fn py_int(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| n.as_f64().map(|f| f.trunc() as i128)),
        Value::String(s) => py_int_text(s),
        _ => None,
    }
}

/// The largest value `positive_big_integer` accepts.
const MAX_BIG: i128 = 1 << 63;

/// What colander's `Integer` with `positive_big_integer` made of a
/// parameter: a number, or nothing (the raw value stays, as in Kinto).
pub(super) enum Coerced {
    Int(u64),
    Dropped(Value),
}

/// colander's `Integer` (0 ≤ v ≤ 2^63) on a querystring value.
pub(super) fn colander_int(raw: &str) -> Result<Coerced, String> {
    let v = query_field(raw);
    if dropped(&v) {
        return Ok(Coerced::Dropped(native(raw)));
    }
    let n = py_int(&v).ok_or_else(|| format!("\"{}\" is not a number", py_str(&v)))?;
    let shown = || match &v {
        Value::Number(x) if x.is_f64() && n.unsigned_abs() >= 1 << 100 => {
            format!("{:.0}", x.as_f64().unwrap_or_default().trunc())
        }
        _ => n.to_string(),
    };
    if n < 0 {
        return Err(format!("{} is less than minimum value 0", shown()));
    }
    if n > MAX_BIG {
        return Err(format!(
            "{} is greater than maximum value {MAX_BIG}",
            shown()
        ));
    }
    Ok(Coerced::Int(n as u64))
}

/// colander's `String` on `id` and `_token`: `Ok(None)` when dropped
/// (the JSON value then stays, `Ok(Some)` with a text.
pub(super) fn colander_string(name: &str, raw: &str) -> Result<Result<String, Value>, String> {
    match query_field(raw) {
        Value::String(s) => Ok(Ok(s)),
        v if dropped(&v) => Ok(Err(v)),
        v => Err(format!("{} is not a string: {{'{name}': ''}}", py_str(&v))),
    }
}

/// Kinto's `is_valid_timestamp` (one definition, shared with tokens).
pub(super) fn valid_timestamp(v: &Value, now_ms: u64) -> Option<u64> {
    kinto_proto::query::valid_timestamp(v, now_ms)
}
