//! Kinto's querystring on plural endpoints → the query model, with Kinto's
//! validation errors (kinto-api §4): values are JSON when they parse as
//! JSON, `in_`/`exclude_` split on commas, `_since`/`_before`/`_to` become
//! `last_modified` filters, unknown `_x` parameters are ignored.

use coerce::{colander_int, colander_string, native, valid_timestamp, Coerced};
use kinto_proto::limits::{
    check_field_path, MAX_FIELDS, MAX_FILTERS, MAX_PATTERN_CHARS, MAX_SORT_KEYS,
};
use kinto_proto::query::{decode_token, Filter, Op, SortKey};
use serde_json::{Map, Value};

/// A 400 on the querystring: `"<name> in querystring: <description>"`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryError {
    pub name: Option<String>,
    pub description: String,
    /// Further typed parameters in error, listed in `details` after this
    /// one as Kinto lists colander's errors.
    pub more: Vec<(String, String)>,
}

fn err(name: &str, description: impl Into<String>) -> QueryError {
    QueryError {
        name: Some(name.to_owned()),
        description: description.into(),
        ..Default::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListParams {
    pub filters: Vec<Filter>,
    /// As requested, then `-last_modified` and `id` as tie-breakers so the
    /// order is total (keyset pagination needs that).
    pub sort: Vec<SortKey>,
    pub fields: Option<Vec<String>>,
    /// `_limit`; `None` when absent or 0.
    pub limit: Option<u64>,
    pub token: Option<Map<String, Value>>,
    pub token_offset: u64,
    /// The `_token`'s nonce, and (DELETE) the nonce of the `Next-Page` token:
    /// the shard keeps DELETE nonces so that each token works once.
    pub token_nonce: Option<String>,
    pub next_nonce: Option<String>,
    /// A filter targets `last_modified`: tombstones are listed too.
    pub has_timestamp_filter: bool,
    /// `_to` was used: answer with a soft-eol `Alert`.
    pub deprecated_to: bool,
}

/// The parameters `PluralQuerySchema` types (colander), checked first.
const TYPED: [&str; 7] = [
    "_limit",
    "_since",
    "_to",
    "_before",
    "last_modified",
    "id",
    "_token",
];

/// Prefixes in Kinto's order (`contains_any_` before `contains_`).
const OPS: [(&str, Op); 12] = [
    ("contains_any_", Op::ContainsAny),
    ("contains_", Op::Contains),
    ("min_", Op::Min),
    ("max_", Op::Max),
    ("lt_", Op::Lt),
    ("gt_", Op::Gt),
    ("not_", Op::Not),
    ("in_", Op::In),
    ("exclude_", Op::Exclude),
    ("like_", Op::Like),
    ("has_", Op::Has),
    ("eq_", Op::Eq),
];

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn invalid_value(param: &str) -> QueryError {
    err(param, format!("Invalid value for {param}"))
}

/// A `last_modified` filter's value as Kinto checks it
/// (`is_valid_timestamp`); a fractional bound is rounded so that it keeps
/// its meaning over the stored integers.
fn timestamp_value(param: &str, op: Op, v: &Value, now_ms: u64) -> Result<Value, QueryError> {
    let ts = valid_timestamp(v, now_ms).ok_or_else(|| invalid_value(param))?;
    let fractional = v.as_f64().is_some_and(|f| v.is_f64() && f.fract() != 0.0);
    Ok(Value::from(match op {
        Op::Lt | Op::Min if fractional => ts + 1,
        _ => ts,
    }))
}

fn valid_field(f: &str) -> bool {
    !f.is_empty()
        && f.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
}

/// One `[op_]field=value` parameter.
/// Whether `prefix` is an operator prefix of a filter name (`min_`…).
pub(super) fn is_filter_prefix(prefix: &str) -> bool {
    OPS.iter().any(|(p, _)| *p == prefix)
}

fn filter(param: &str, raw: &str, now_ms: u64) -> Result<Filter, QueryError> {
    let (op, field) = OPS
        .iter()
        .find_map(|(prefix, op)| param.strip_prefix(prefix).map(|f| (*op, f)))
        .unwrap_or((Op::Eq, param));
    if !valid_field(field) {
        return Err(QueryError {
            name: None,
            description: format!("Unknown filter field '{param}'"),
            ..Default::default()
        });
    }
    check_field_path(field).map_err(|why| err(param, why))?;
    if op == Op::Like && raw.chars().count() > MAX_PATTERN_CHARS {
        return Err(err(
            param,
            format!("pattern is longer than {MAX_PATTERN_CHARS} characters"),
        ));
    }
    // Kinto's checks, in its order (`_extract_filters`).
    let parsed = match op {
        Op::In | Op::Exclude => Value::Array(raw.split(',').map(native).collect()),
        Op::Contains | Op::ContainsAny => match native(raw) {
            a @ Value::Array(_) => a,
            other => Value::Array(vec![other]),
        },
        _ => native(raw),
    };
    if op == Op::Like && !parsed.is_string() {
        return Err(invalid_value(param));
    }
    if matches!(op, Op::In | Op::Exclude) {
        let items = parsed.as_array().map(Vec::as_slice).unwrap_or_default();
        // (Python's booleans are integers.)
        let ints = items
            .iter()
            .all(|v| v.is_i64() || v.is_u64() || v.is_boolean());
        let strings = items.iter().all(Value::is_string);
        if (field == "id" && !strings) || (field == "last_modified" && !ints) {
            return Err(invalid_value(param));
        }
    }
    let value = match (field, op) {
        ("last_modified", Op::Has) => {
            timestamp_value(param, op, &parsed, now_ms)?;
            Value::Bool(truthy(&parsed))
        }
        ("last_modified", _) => timestamp_value(param, op, &parsed, now_ms)?,
        ("id", Op::Contains | Op::ContainsAny) => {
            return Err(err(param, format!("Field '{field}' is not an array")))
        }
        (_, Op::Has) => Value::Bool(truthy(&parsed)),
        ("id", Op::In | Op::Exclude) => parsed,
        ("id", _) => Value::String(match parsed {
            Value::String(s) => s,
            other => other.to_string(),
        }),
        _ => parsed,
    };
    Ok(Filter {
        field: field.to_owned(),
        op,
        value,
    })
}

pub(super) fn sort_keys(raw: &str) -> Result<Vec<SortKey>, QueryError> {
    let mut keys = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (descending, field) = match part.strip_prefix('-') {
            Some(f) => (true, f),
            None => (false, part.strip_prefix('+').unwrap_or(part)),
        };
        if !valid_field(field) {
            return Err(QueryError {
                name: None,
                description: format!("Unknown sort field '{field}'"),
                ..Default::default()
            });
        }
        check_field_path(field).map_err(|why| err("_sort", why))?;
        if keys.len() == MAX_SORT_KEYS {
            return Err(err(
                "_sort",
                format!("more than {MAX_SORT_KEYS} sort fields"),
            ));
        }
        keys.push(SortKey {
            field: field.to_owned(),
            descending,
        });
    }
    Ok(keys)
}

fn field_list(raw: &str) -> Result<Vec<String>, QueryError> {
    let fields: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    if fields.len() > MAX_FIELDS {
        return Err(err("_fields", format!("more than {MAX_FIELDS} fields")));
    }
    for f in &fields {
        check_field_path(f).map_err(|why| err("_fields", why))?;
    }
    Ok(fields)
}

fn check_known(field: &str, param: &str, known: Option<&[&str]>) -> Result<(), QueryError> {
    let root = field.split('.').next().unwrap_or(field);
    match known {
        Some(k) if !k.contains(&root) => Err(QueryError {
            name: Some(param.to_owned()),
            description: format!("Unknown filter field '{param}'"),
            ..Default::default()
        }),
        _ => Ok(()),
    }
}

/// One parameter that `PluralQuerySchema` types (colander).
fn typed_param<'a>(
    key: &'a str,
    raw: &str,
    ints: &mut std::collections::HashMap<&'a str, Result<Coerced, Value>>,
    token: &mut Option<String>,
) -> Result<(), QueryError> {
    match key {
        "id" => {
            let value = match colander_string(key, raw).map_err(|d| err(key, d))? {
                Ok(s) => Value::String(s),
                // A value colander drops stays, and matches no id.
                Err(v) => v,
            };
            ints.insert(key, Err(value));
        }
        "_token" => {
            if let Ok(t) = colander_string(key, raw).map_err(|d| err(key, d))? {
                *token = Some(t).filter(|t| !t.is_empty());
            }
        }
        _ => {
            let v = colander_int(raw).map_err(|d| err(key, d))?;
            ints.insert(key, Ok(v));
        }
    }
    Ok(())
}

/// Parses the querystring of a plural `GET`/`HEAD`/`DELETE`.
/// `known_fields`: `None` for schemaless resources, else the fields a
/// filter or sort may name.
pub fn parse_list_query(
    pairs: &[(String, String)],
    now_ms: u64,
    known_fields: Option<&[&str]>,
) -> Result<ListParams, QueryError> {
    let mut p = ListParams::default();
    let mut seen = std::collections::HashSet::new();
    for (key, raw) in pairs {
        if !seen.insert(key.as_str()) {
            return Err(err(key, "Parameter is given more than once"));
        }
        if key.contains('\0') || raw.contains('\0') {
            return Err(err(key, "Invalid character 0x00"));
        }
    }
    // Kinto's schema types these before it reads any filter, and reports
    // its errors by name.
    let mut typed: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(k, _)| TYPED.contains(&k.as_str()))
        .collect();
    typed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut ints = std::collections::HashMap::new();
    let mut token = None;
    let mut errors: Vec<QueryError> = Vec::new();
    for (key, raw) in typed {
        if let Err(e) = typed_param(key.as_str(), raw, &mut ints, &mut token) {
            errors.push(e);
        }
    }
    if let Some(mut first) = errors.first().cloned() {
        first.more = errors[1..]
            .iter()
            .map(|e| (e.name.clone().unwrap_or_default(), e.description.clone()))
            .collect();
        return Err(first);
    }
    for (key, raw) in pairs {
        match (key.as_str(), ints.remove(key.as_str())) {
            ("_limit", Some(Ok(Coerced::Int(n)))) => p.limit = Some(n).filter(|n| *n > 0),
            ("_sort", _) => p.sort = sort_keys(raw)?,
            ("_fields", _) => p.fields = Some(field_list(raw)?),
            ("_since" | "_before" | "_to", Some(Ok(v))) => {
                let ts = match v {
                    Coerced::Int(n) => Some(
                        valid_timestamp(&Value::from(n), now_ms)
                            .ok_or_else(|| invalid_value(key))?,
                    ),
                    Coerced::Dropped(Value::Null) => None,
                    Coerced::Dropped(_) => return Err(invalid_value(key)),
                };
                p.deprecated_to |= key == "_to";
                // `null` is no bound on Kinto's memory backend for `_since`
                // (every object, tombstones too), and nothing for the others.
                let (op, value) = match (key == "_since", ts) {
                    (true, Some(ts)) => (Op::Gt, ts),
                    (true, None) => (Op::Min, 0),
                    (false, Some(ts)) => (Op::Lt, ts),
                    (false, None) => (Op::Lt, 0),
                };
                p.filters.push(Filter {
                    field: "last_modified".into(),
                    op,
                    value: Value::from(value),
                });
            }
            ("last_modified", Some(Ok(v))) => {
                let value = match v {
                    Coerced::Int(n) => Value::from(n),
                    Coerced::Dropped(v) => v,
                };
                let ts = valid_timestamp(&value, now_ms).ok_or_else(|| invalid_value(key))?;
                p.filters.push(Filter {
                    field: "last_modified".into(),
                    op: Op::Eq,
                    value: Value::from(ts),
                });
            }
            ("id", Some(Err(value))) => {
                check_known("id", key, known_fields)?;
                p.filters.push(Filter {
                    field: "id".into(),
                    op: Op::Eq,
                    value,
                })
            }
            (k, _) if k.starts_with('_') => {}
            (k, _) => {
                let f = filter(k, raw, now_ms)?;
                check_known(&f.field, k, known_fields)?;
                if p.filters.len() == MAX_FILTERS {
                    return Err(err(k, format!("more than {MAX_FILTERS} filters")));
                }
                p.filters.push(f);
            }
        }
    }
    for k in &p.sort {
        check_known(&k.field, &k.field, known_fields)?;
    }
    if !p.sort.iter().any(|k| k.field == "last_modified") {
        p.sort.push(SortKey {
            field: "last_modified".into(),
            descending: true,
        });
    }
    if let Some(t) = token {
        // Kinto checks the token against its sort, without our `id`; a
        // resource without `last_modified` (permissions) does not sort on it.
        let timestamped = known_fields.is_none_or(|k| k.contains(&"last_modified"));
        let sort: Vec<SortKey> = p
            .sort
            .iter()
            .filter(|k| timestamped || k.field != "last_modified")
            .cloned()
            .collect();
        let (last, offset) = decode_token(&t, &sort, now_ms).map_err(|_| QueryError {
            name: None,
            description: "_token has invalid content".into(),
            ..Default::default()
        })?;
        p.token = Some(last);
        p.token_offset = offset;
        p.token_nonce = kinto_proto::query::token_nonce(&t);
    }
    if !p.sort.iter().any(|k| k.field == "id") {
        p.sort.push(SortKey {
            field: "id".into(),
            descending: false,
        });
    }
    p.has_timestamp_filter = p.filters.iter().any(|f| f.field == "last_modified");
    Ok(p)
}

/// Object endpoints only read `_fields`.
pub fn parse_fields(pairs: &[(String, String)]) -> Result<Option<Vec<String>>, QueryError> {
    pairs
        .iter()
        .find(|(k, _)| k == "_fields")
        .map(|(_, v)| field_list(v))
        .transpose()
}

mod coerce;
#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
