//! Ordering of JSON values and objects, as Kinto's PostgreSQL backend does
//! it (and its memory backend emulates): `null < string < number < boolean
//! < array < object`, and a missing field after everything ascending
//! (`NULLS LAST`), before everything descending.

use super::{lookup, SortKey};
use serde_json::{Map, Value};
use std::cmp::Ordering;

fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::String(_) => 1,
        Value::Number(_) => 2,
        Value::Bool(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Ordering {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x.cmp(&y);
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x.cmp(&y);
    }
    let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
    x.partial_cmp(&y).unwrap_or(Ordering::Equal)
}

/// Total order on JSON values.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => x
            .iter()
            .zip(y)
            .map(|(p, q)| compare_values(p, q))
            .find(|o| *o != Ordering::Equal)
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        (Value::Object(_), Value::Object(_)) => a.to_string().cmp(&b.to_string()),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn compare_present(a: Option<&Value>, b: Option<&Value>, descending: bool) -> Ordering {
    let o = match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => compare_values(x, y),
    };
    if descending {
        o.reverse()
    } else {
        o
    }
}

/// Order of two objects under the sort keys.
pub fn compare_objects(a: &Value, b: &Value, sort: &[SortKey]) -> Ordering {
    sort.iter()
        .map(|k| compare_present(lookup(a, &k.field), lookup(b, &k.field), k.descending))
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// The sort-field values of a row (missing fields left out), which is all a
/// pagination token needs to resume after it.
pub fn keyset_of(obj: &Value, sort: &[SortKey]) -> Map<String, Value> {
    sort.iter()
        .filter_map(|k| lookup(obj, &k.field).map(|v| (k.field.clone(), v.clone())))
        .collect()
}

/// Keyset pagination: does `obj` come strictly after the row whose keyset
/// is `last`? Stable under concurrent inserts, unlike an offset.
pub fn is_after(obj: &Value, sort: &[SortKey], last: &Map<String, Value>) -> bool {
    sort.iter()
        .map(|k| compare_present(lookup(obj, &k.field), last.get(&k.field), k.descending))
        .find(|o| *o != Ordering::Equal)
        == Some(Ordering::Greater)
}
