//! Kinto's query model: filters, sorting, keyset pagination and `_fields`.
//!
//! Shards evaluate it on their objects; gateways use the same ordering to
//! merge pages from several shards. Objects are JSON objects as Kinto shows
//! them (`id` and `last_modified` are ordinary fields; tombstones are
//! `{id, last_modified, deleted: true}`).

mod order;
mod token;

pub use order::{compare_objects, compare_values, is_after, keyset_of, sort_by_keys, MetaKeyset};
pub use token::{
    decode_token, encode_token, encode_token_with_nonce, new_nonce, token_nonce, valid_timestamp,
    InvalidToken,
};

use serde_json::{Map, Value};
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Not,
    Lt,
    Gt,
    Min,
    Max,
    In,
    Exclude,
    Like,
    Has,
    Contains,
    ContainsAny,
}

impl Op {
    /// Every operator, for tests that try each.
    pub const ALL: [Op; 12] = [
        Op::Eq,
        Op::Not,
        Op::Lt,
        Op::Gt,
        Op::Min,
        Op::Max,
        Op::In,
        Op::Exclude,
        Op::Like,
        Op::Has,
        Op::Contains,
        Op::ContainsAny,
    ];
}

/// One `[op_]field=value` filter. For `In`, `Exclude`, `Contains` and
/// `ContainsAny` the value is an array; for `Has` a boolean.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub field: String,
    pub op: Op,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub field: String,
    pub descending: bool,
}

/// Kinto's nested lookup (`find_nested_value`): the whole dotted name as a
/// key first, then the longest key prefix that exists, recursively. A prefix
/// that exists but is not an object ends the search (`None`): shorter
/// prefixes are not tried, as in Kinto.
///
/// Nothing is allocated: prefixes are slices of `field` cut at its dots.
/// The gateway bounds paths to `MAX_FIELD_BYTES` and `MAX_FIELD_DEPTH`
/// (see `crate::limits`), and each level costs at most one probe per dot or
/// one pass over the object's keys, whichever is fewer (`longest_prefix`).
pub fn lookup<'a>(obj: &'a Value, field: &str) -> Option<&'a Value> {
    let mut obj = obj;
    let mut field = field;
    loop {
        let map = obj.as_object()?;
        if let Some(v) = map.get(field) {
            return Some(v);
        }
        let (sub, rest) = longest_prefix(map, field)?;
        if !sub.is_object() {
            return None;
        }
        obj = sub;
        field = rest;
    }
}

/// The value under the longest key of `map` that is `field` cut just before
/// one of its dots, and what follows that dot.
///
/// Probing `map` once per dot hashes up to the whole path each time, so a
/// deep path through small objects would cost depth² × length in all. When
/// the path has more dots than `map` has keys, testing each key as a prefix
/// of `field` is cheaper, and finds the same key: two keys that are both
/// prefixes of `field` with the same length are the same key.
fn longest_prefix<'a, 'f>(
    map: &'a Map<String, Value>,
    field: &'f str,
) -> Option<(&'a Value, &'f str)> {
    let dots = field
        .bytes()
        .filter(|&b| b == b'.')
        .take(map.len() + 1)
        .count();
    if dots <= map.len() {
        field
            .rmatch_indices('.')
            .find_map(|(dot, _)| map.get(&field[..dot]).map(|v| (v, &field[dot + 1..])))
    } else {
        map.iter()
            .filter(|(k, _)| {
                field.as_bytes().get(k.len()) == Some(&b'.') && field.starts_with(k.as_str())
            })
            .max_by_key(|(k, _)| k.len())
            .map(|(k, v)| (v, &field[k.len() + 1..]))
    }
}

/// JSON equality as Kinto's backends see it: numbers by value (`1 == 1.0`).
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => compare_values(a, b) == Ordering::Equal,
        _ => a == b,
    }
}

/// Text of a scalar for `like_` (strings as they are, others as JSON).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Case-insensitive match with `*` as the only wildcard; a pattern without
/// `*` matches anywhere in the text (`*pattern*`).
///
/// The pattern is cut at its `*`s into literal pieces. The first piece must
/// start the text and the last must end it (unless the pattern starts or
/// ends with `*`); the pieces between are found left to right, each at its
/// leftmost occurrence after the previous one. Taking the leftmost
/// occurrence is never wrong: if any match puts a piece later, moving it to
/// its leftmost occurrence still leaves room for every piece after it, and
/// the `*`s around it absorb the difference. So there is no backtracking,
/// and each piece is searched for once (`str::find` is linear); patterns are
/// bounded by `MAX_PATTERN_CHARS`.
/// Searching bytes is the same as searching characters in UTF-8: a valid
/// string only occurs in another at character boundaries.
fn like(pattern: &str, text: &str) -> bool {
    let pattern = pattern.to_lowercase();
    let text = text.to_lowercase();
    let mut pieces = pattern.split('*');
    let Some(first) = pieces.next() else {
        return false;
    };
    let Some(last) = pieces.next_back() else {
        // No `*` at all: a substring match.
        return text.contains(first);
    };
    // The prefix and the suffix must not overlap (`ab*ba` is not `aba`).
    let Some(middle) = text
        .strip_prefix(first)
        .and_then(|rest| rest.strip_suffix(last))
    else {
        return false;
    };
    let mut rest = middle;
    for piece in pieces {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

fn items(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn matches_one(obj: &Value, f: &Filter) -> bool {
    matches_found(lookup(obj, &f.field), f)
}

/// Whether `f` holds of a row in which [`lookup`] of `f.field` found
/// `found`: for a caller that looked the field up itself (the shard reads
/// it from a row's printed text, without building the row).
pub fn matches_found(found: Option<&Value>, f: &Filter) -> bool {
    match f.op {
        Op::Eq => found.is_some_and(|v| equal(v, &f.value)),
        Op::Not => found.is_none_or(|v| !equal(v, &f.value)),
        Op::Lt => found.is_some_and(|v| compare_values(v, &f.value) == Ordering::Less),
        Op::Gt => found.is_some_and(|v| compare_values(v, &f.value) == Ordering::Greater),
        Op::Min => found.is_some_and(|v| compare_values(v, &f.value) != Ordering::Less),
        Op::Max => found.is_some_and(|v| compare_values(v, &f.value) != Ordering::Greater),
        Op::In => found.is_some_and(|v| items(&f.value).iter().any(|x| equal(v, x))),
        Op::Exclude => found.is_none_or(|v| !items(&f.value).iter().any(|x| equal(v, x))),
        Op::Like => match (found, &f.value) {
            (Some(v), Value::String(p)) if !v.is_null() => like(p, &text(v)),
            _ => false,
        },
        Op::Has => found.is_some() == f.value.as_bool().unwrap_or(false),
        Op::Contains => match found {
            Some(Value::Array(a)) => items(&f.value)
                .iter()
                .all(|x| a.iter().any(|y| equal(x, y))),
            _ => false,
        },
        Op::ContainsAny => match found {
            Some(Value::Array(a)) => items(&f.value)
                .iter()
                .any(|x| a.iter().any(|y| equal(x, y))),
            _ => false,
        },
    }
}

/// True when the object satisfies every filter (they are ANDed).
pub fn matches(obj: &Value, filters: &[Filter]) -> bool {
    filters.iter().all(|f| matches_one(obj, f))
}

/// [`matches`] as Kinto filters the entries of `/permissions`: in memory
/// whatever its storage backend, where a `has_` filter replaces the result of
/// the filters before it instead of joining it (`?in_bucket_id=b&has_deleted=false`
/// lists the root entry). The gateway and the shards filter alike.
pub fn matches_in_order(obj: &Value, filters: &[Filter]) -> bool {
    filters.iter().fold(true, |so_far, f| {
        let this = matches_one(obj, f);
        if f.op == Op::Has {
            this
        } else {
            so_far && this
        }
    })
}

/// `_fields`: the listed (dotted) fields as partial sub-objects; `id`,
/// `last_modified` and `deleted` are always kept.
///
/// Each field costs one [`lookup`] and one walk down its dotted parts, which
/// allocates only the keys it adds to the result.
pub fn project(obj: &Value, fields: &[String]) -> Value {
    let Some(map) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    for keep in ["id", "last_modified", "deleted"] {
        if let Some(v) = map.get(keep) {
            out.insert(keep.into(), v.clone());
        }
    }
    for field in fields {
        let Some(v) = lookup(obj, field) else {
            continue;
        };
        if map.contains_key(field) {
            out.insert(field.clone(), v.clone());
        } else {
            insert_path(&mut out, field, v.clone());
        }
    }
    Value::Object(out)
}

/// Sets the dotted `path` in `map`, creating sub-objects on the way (and
/// replacing what is not an object).
fn insert_path(map: &mut Map<String, Value>, path: &str, value: Value) {
    let mut map = map;
    let mut path = path;
    while let Some((first, rest)) = path.split_once('.') {
        if !map.get(first).is_some_and(Value::is_object) {
            map.insert(first.to_owned(), Value::Object(Map::new()));
        }
        let Some(Value::Object(sub)) = map.get_mut(first) else {
            return;
        };
        map = sub;
        path = rest;
    }
    map.insert(path.to_owned(), value);
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
