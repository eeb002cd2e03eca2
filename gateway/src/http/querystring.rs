//! Kinto's querystring on plural endpoints → the query model, with Kinto's
//! validation errors (kinto-api §4): values are JSON when they parse as
//! JSON, `in_`/`exclude_` split on commas, `_since`/`_before`/`_to` become
//! `last_modified` filters, unknown `_x` parameters are ignored.

use kinto_proto::limits::{
    check_field_path, MAX_FIELDS, MAX_FILTERS, MAX_PATTERN_CHARS, MAX_SORT_KEYS,
};
use kinto_proto::query::{decode_token, Filter, Op, SortKey};
use serde_json::{Map, Value};

/// A 400 on the querystring: `"<name> in querystring: <description>"`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryError {
    pub name: Option<String>,
    pub description: String,
}

fn err(name: &str, description: impl Into<String>) -> QueryError {
    QueryError {
        name: Some(name.to_owned()),
        description: description.into(),
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
    /// A filter targets `last_modified`: tombstones are listed too.
    pub has_timestamp_filter: bool,
    /// `_to` was used: answer with a soft-eol `Alert`.
    pub deprecated_to: bool,
}

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

/// Kinto's `native_value`: JSON if it parses, else the raw string.
fn native(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

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

/// A timestamp value: integer, optionally quoted like an ETag, below
/// now + 24h (Kinto ≥ 25.0.3).
fn timestamp(param: &str, raw: &str, now_ms: u64) -> Result<u64, QueryError> {
    let v = raw.trim_matches('"');
    let ts: u64 = v
        .parse()
        .map_err(|_| err(param, format!("\"{raw}\" is not a number")))?;
    if ts >= now_ms + 24 * 3600 * 1000 {
        return Err(err(param, format!("Invalid value for {param}")));
    }
    Ok(ts)
}

fn valid_field(f: &str) -> bool {
    !f.is_empty()
        && f.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
}

/// One `[op_]field=value` parameter.
fn filter(param: &str, raw: &str, now_ms: u64) -> Result<Filter, QueryError> {
    let (op, field) = OPS
        .iter()
        .find_map(|(prefix, op)| param.strip_prefix(prefix).map(|f| (*op, f)))
        .unwrap_or((Op::Eq, param));
    if !valid_field(field) {
        return Err(QueryError {
            name: None,
            description: format!("Unknown filter field '{param}'"),
        });
    }
    check_field_path(field).map_err(|why| err(param, why))?;
    if op == Op::Like && raw.chars().count() > MAX_PATTERN_CHARS {
        return Err(err(
            param,
            format!("pattern is longer than {MAX_PATTERN_CHARS} characters"),
        ));
    }
    let value = match op {
        Op::In | Op::Exclude => Value::Array(raw.split(',').map(native).collect()),
        Op::Contains | Op::ContainsAny => {
            if field == "id" || field == "last_modified" {
                return Err(err(param, format!("Field '{field}' is not an array")));
            }
            match native(raw) {
                a @ Value::Array(_) => a,
                other => Value::Array(vec![other]),
            }
        }
        Op::Has => Value::Bool(truthy(&native(raw))),
        _ => native(raw),
    };
    let value = match (field, op) {
        ("last_modified", Op::Has) => value,
        ("last_modified", Op::In | Op::Exclude) => Value::Array(
            raw.split(',')
                .map(|v| timestamp(param, v, now_ms).map(Value::from))
                .collect::<Result<_, _>>()?,
        ),
        ("last_modified", _) => Value::from(timestamp(param, raw, now_ms)?),
        ("id", Op::Eq) if !value.is_string() => {
            return Err(err(param, format!("{value} is not a string")))
        }
        ("id", Op::In | Op::Exclude) => {
            let items = value.as_array().cloned().unwrap_or_default();
            if items.iter().any(|v| !v.is_string()) {
                return Err(err(param, format!("{raw} is not a list of strings")));
            }
            Value::Array(items)
        }
        ("id", Op::Has) => value,
        ("id", _) => Value::String(match value {
            Value::String(s) => s,
            other => other.to_string(),
        }),
        _ => value,
    };
    if op == Op::Like && !value.is_string() {
        return Err(err(param, format!("{value} is not a string")));
    }
    Ok(Filter {
        field: field.to_owned(),
        op,
        value,
    })
}

fn sort_keys(raw: &str) -> Result<Vec<SortKey>, QueryError> {
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
        }),
        _ => Ok(()),
    }
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
        match key.as_str() {
            "_limit" => {
                let n: i128 = raw
                    .parse()
                    .map_err(|_| err("_limit", format!("\"{raw}\" is not a number")))?;
                if n < 0 {
                    return Err(err("_limit", format!("{n} is less than minimum value 0")));
                }
                p.limit = u64::try_from(n).ok().filter(|n| *n > 0);
            }
            "_sort" => p.sort = sort_keys(raw)?,
            "_fields" => p.fields = Some(field_list(raw)?),
            "_token" => {
                if !raw.is_empty() {
                    let (last, offset) = decode_token(raw)
                        .map_err(|_| err("_token", "_token has invalid content"))?;
                    p.token = Some(last);
                    p.token_offset = offset;
                }
            }
            "_since" | "_before" | "_to" => {
                if raw == "null" || raw.is_empty() {
                    continue;
                }
                let ts = timestamp(key, raw, now_ms)?;
                let op = if key == "_since" { Op::Gt } else { Op::Lt };
                p.deprecated_to |= key == "_to";
                p.filters.push(Filter {
                    field: "last_modified".into(),
                    op,
                    value: Value::from(ts),
                });
            }
            k if k.starts_with('_') => {}
            k => {
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
    if p.sort.is_empty() {
        p.sort.push(SortKey {
            field: "last_modified".into(),
            descending: true,
        });
    }
    if !p.sort.iter().any(|k| k.field == "last_modified") {
        p.sort.push(SortKey {
            field: "last_modified".into(),
            descending: true,
        });
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

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
