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
    compare_missing_last(a, b, descending, compare_values)
}

/// A missing field after everything ascending, before everything descending.
fn compare_missing_last<A, B>(
    a: Option<A>,
    b: Option<B>,
    descending: bool,
    compare: impl FnOnce(A, B) -> Ordering,
) -> Ordering {
    let o = match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => compare(x, y),
    };
    if descending {
        o.reverse()
    } else {
        o
    }
}

/// Order of two objects under the sort keys. To sort many rows, use
/// [`sort_by_keys`], which looks each row's fields up only once.
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

/// A keyset ([`is_after`]'s `last`) for rows whose sort keys are only `id`
/// and `last_modified`: each key looked up once, each row compared without
/// building it as JSON (a page of a sync compares every row it walks).
pub struct MetaKeyset<'a> {
    keys: Vec<(MetaField, bool, Option<&'a Value>)>,
}

#[derive(Clone, Copy)]
enum MetaField {
    Id,
    Modified,
    /// Any other field: missing from such a row.
    Other,
}

impl<'a> MetaKeyset<'a> {
    pub fn new(sort: &[SortKey], last: &'a Map<String, Value>) -> Self {
        let keys = (sort.iter())
            .map(|k| {
                let field = match k.field.as_str() {
                    "id" => MetaField::Id,
                    "last_modified" => MetaField::Modified,
                    _ => MetaField::Other,
                };
                (field, k.descending, last.get(&k.field))
            })
            .collect();
        MetaKeyset { keys }
    }

    /// Does the row `id`, `last_modified` come strictly after the keyset?
    pub fn is_after(&self, id: &str, last_modified: u64) -> bool {
        (self.keys.iter())
            .map(|&(field, descending, theirs)| {
                let mine = match field {
                    MetaField::Id => Some(Meta::Id(id)),
                    MetaField::Modified => Some(Meta::Modified(last_modified)),
                    MetaField::Other => None,
                };
                compare_missing_last(mine, theirs, descending, Meta::compare)
            })
            .find(|o| *o != Ordering::Equal)
            == Some(Ordering::Greater)
    }
}

/// A row's `id` or `last_modified`, as [`compare_values`] would see it.
#[derive(Clone, Copy)]
enum Meta<'a> {
    Id(&'a str),
    Modified(u64),
}

impl Meta<'_> {
    fn compare(self, other: &Value) -> Ordering {
        match (self, other) {
            (Meta::Id(a), Value::String(b)) => a.cmp(b.as_str()),
            (Meta::Modified(a), Value::Number(b)) => compare_numbers(&a.into(), b),
            (Meta::Id(_), v) => rank(&Value::String(String::new())).cmp(&rank(v)),
            (Meta::Modified(_), v) => rank(&Value::from(0)).cmp(&rank(v)),
        }
    }
}

/// A sort-field value prepared for comparisons: what [`compare_values`]
/// would compute on every comparison (an object's JSON text) is computed
/// once, when the key is made.
enum Key<'a> {
    Null,
    String(&'a str),
    Number(&'a serde_json::Number),
    Bool(bool),
    Array(Vec<Key<'a>>),
    Object(String),
}

impl<'a> Key<'a> {
    fn of(v: &'a Value) -> Self {
        match v {
            Value::Null => Key::Null,
            Value::String(s) => Key::String(s),
            Value::Number(n) => Key::Number(n),
            Value::Bool(b) => Key::Bool(*b),
            Value::Array(a) => Key::Array(a.iter().map(Key::of).collect()),
            Value::Object(_) => Key::Object(v.to_string()),
        }
    }

    /// The same `rank` as the value it was made from.
    fn rank(&self) -> u8 {
        match self {
            Key::Null => 0,
            Key::String(_) => 1,
            Key::Number(_) => 2,
            Key::Bool(_) => 3,
            Key::Array(_) => 4,
            Key::Object(_) => 5,
        }
    }

    /// `compare_values` on the values the keys were made from.
    fn compare(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Key::String(x), Key::String(y)) => x.cmp(y),
            (Key::Number(x), Key::Number(y)) => compare_numbers(x, y),
            (Key::Bool(x), Key::Bool(y)) => x.cmp(y),
            (Key::Array(x), Key::Array(y)) => x
                .iter()
                .zip(y)
                .map(|(p, q)| p.compare(q))
                .find(|o| *o != Ordering::Equal)
                .unwrap_or_else(|| x.len().cmp(&y.len())),
            (Key::Object(x), Key::Object(y)) => x.cmp(y),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// Sorts `rows` as `rows.sort_by(|a, b| compare_objects(json(a), json(b),
/// sort))` would (a stable sort), where `json` gives the JSON object of a
/// row. Both sorts give one and the same order because [`compare_values`]
/// is a total order (except between integers beyond 2^53 and floats, which
/// it compares as `f64`).
///
/// The sort fields of each row are looked up and prepared once, before
/// sorting, rather than on every comparison: the sort then costs one
/// [`lookup`] per row and sort key, plus `m log m` comparisons of prepared
/// keys, with no allocation per comparison.
pub fn sort_by_keys<T>(rows: &mut [T], sort: &[SortKey], json: impl Fn(&T) -> &Value) {
    if sort.is_empty() || rows.len() < 2 {
        return;
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    {
        // Row i's keys are keys[i * width..][..width].
        let width = sort.len();
        let keys: Vec<Option<Key<'_>>> = rows
            .iter()
            .flat_map(|row| {
                let obj = json(row);
                sort.iter().map(move |k| lookup(obj, &k.field).map(Key::of))
            })
            .collect();
        // Stable, like sort_by on the rows: ties keep their index order.
        order.sort_by(|&i, &j| {
            let (a, b) = (&keys[i * width..][..width], &keys[j * width..][..width]);
            sort.iter()
                .zip(a.iter().zip(b))
                .map(|(k, (x, y))| {
                    compare_missing_last(x.as_ref(), y.as_ref(), k.descending, Key::compare)
                })
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        });
    }
    permute(rows, &mut order);
}

/// Rearranges `rows` so that position `p` holds what was at `order[p]`,
/// following each cycle of the permutation with swaps (`order` is used up).
fn permute<T>(rows: &mut [T], order: &mut [usize]) {
    for start in 0..rows.len() {
        let mut at = start;
        while order[at] != start {
            let from = order[at];
            rows.swap(at, from);
            order[at] = at;
            at = from;
        }
        order[at] = at;
    }
}
