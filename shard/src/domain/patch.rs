//! How a request body changes an object: PUT's replacement and PATCH's three
//! flavours (Kinto docs §6.2–6.3), for `data` and for `permissions`.

use super::resource::Kind;
use crate::storage::Acl;
use kinto_proto::KintoError;
use serde_json::{Map, Value};

/// Permissions from a request body: permission → principals, `None` when
/// the body says `null` (merge: ignore; merge-patch: remove).
pub type AclChange = Vec<(String, Option<Vec<String>>)>;

fn body_error(name: &str, description: impl Into<String>) -> KintoError {
    KintoError::invalid("body", Some(name), description)
}

/// Validates a body's `permissions` against the kind's permission names.
pub fn parse_permissions(kind: Kind, value: &Value) -> Result<AclChange, KintoError> {
    let Value::Object(map) = value else {
        return Err(body_error(
            "permissions",
            format!("{value} is not a mapping type"),
        ));
    };
    let known = kind.permissions();
    let mut out = Vec::with_capacity(map.len());
    for (perm, principals) in map {
        if !known.contains(&perm.as_str()) {
            return Err(body_error(
                "permissions",
                format!("\"{perm}\" is not one of {}", known.join(", ")),
            ));
        }
        let list = match principals {
            Value::Null => None,
            Value::Array(items) => Some(
                items
                    .iter()
                    .map(|p| match p {
                        Value::String(s) => Ok(s.clone()),
                        other => Err(body_error(
                            &format!("permissions.{perm}"),
                            format!("{other} is not a string"),
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            other => {
                return Err(body_error(
                    &format!("permissions.{perm}"),
                    format!("{other} is not iterable"),
                ))
            }
        };
        out.push((perm.clone(), list));
    }
    Ok(out)
}

fn set(acl: &mut Acl, perm: &str, mut principals: Vec<String>) {
    principals.sort();
    principals.dedup();
    if principals.is_empty() {
        acl.remove(perm);
    } else {
        acl.insert(perm.to_owned(), principals);
    }
}

/// PUT: the listed permissions replace the whole ACL.
pub fn replace_acl(change: AclChange) -> Acl {
    let mut acl = Acl::new();
    for (perm, list) in change {
        set(&mut acl, &perm, list.unwrap_or_default());
    }
    acl
}

/// PATCH `application/json`: listed permissions replaced, `null` ignored.
pub fn merge_acl(acl: &mut Acl, change: AclChange) {
    for (perm, list) in change {
        if let Some(list) = list {
            set(acl, &perm, list);
        }
    }
}

/// PATCH `application/merge-patch+json`: listed lists replace, `null` removes.
pub fn merge_patch_acl(acl: &mut Acl, change: AclChange) {
    for (perm, list) in change {
        set(acl, &perm, list.unwrap_or_default());
    }
}

/// Adds the writer of a create or update to the object's `write` ACE, as
/// Kinto does with `explicit_permissions` on.
pub fn add_writer(acl: &mut Acl, user_id: Option<&str>) {
    if let Some(user) = user_id {
        let list = acl.principals_mut("write");
        if !list.iter().any(|p| p == user) {
            list.push(user.to_owned());
            list.sort();
        }
    }
}

/// PATCH `application/json`: top-level keys replaced, `null` stored.
pub fn merge_data(data: &mut Map<String, Value>, change: Map<String, Value>) {
    for (k, v) in change {
        data.insert(k, v);
    }
}

/// RFC 7396 merge patch: recursive, `null` removes.
pub fn merge_patch_data(data: &mut Map<String, Value>, change: Map<String, Value>) {
    for (k, v) in change {
        match v {
            Value::Null => {
                data.remove(&k);
            }
            Value::Object(sub) => {
                let entry = data.entry(k).or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                if let Value::Object(target) = entry {
                    merge_patch_data(target, sub);
                }
            }
            other => {
                data.insert(k, other);
            }
        }
    }
}

const OPS: [&str; 6] = ["test", "add", "remove", "replace", "move", "copy"];

fn patch_failed(reason: impl std::fmt::Display) -> KintoError {
    KintoError::invalid(
        "body",
        None,
        format!("JSON Patch operation failed: {reason}"),
    )
}

/// Does this pointer reach into the permissions?
fn on_permissions(pointer: &str) -> bool {
    pointer == "/permissions" || pointer.starts_with("/permissions/")
}

/// The ACL as Kinto patches it: each permission a `{principal: principal}`
/// map, `read` and `write` always present (so that `add` finds a parent).
fn acl_document(acl: &Acl) -> Value {
    let mut perms = Map::new();
    for perm in ["read", "write"] {
        perms.insert(perm.into(), Value::Object(Map::new()));
    }
    for perm in acl.names() {
        let principals = acl.get(perm).map(Vec::as_slice).unwrap_or_default();
        let map = principals
            .iter()
            .map(|p| (p.clone(), Value::String(p.clone())))
            .collect();
        perms.insert(perm.to_owned(), Value::Object(map));
    }
    Value::Object(perms)
}

/// Writes the patched permissions back as Kinto stores them: a permission
/// left in the document is replaced by its keys (a map), items (a list) or
/// characters (a string), emptied when empty; a removed one is unchanged.
fn apply_acl_document(kind: Kind, acl: &mut Acl, doc: Option<Value>) -> Result<(), KintoError> {
    let Some(Value::Object(perms)) = doc else {
        return Err(patch_failed("permissions must stay an object"));
    };
    for (perm, value) in perms {
        let principals: Vec<String> = match value {
            Value::Object(m) => m.into_iter().map(|(k, _)| k).collect(),
            Value::Array(items) => items
                .into_iter()
                .map(|p| match p {
                    Value::String(s) => Ok(s),
                    other => Err(patch_failed(format!(
                        "{other} is not a principal (permissions.{perm})"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Value::String(s) => s.chars().map(String::from).collect(),
            other => {
                return Err(patch_failed(format!(
                    "{other} is not iterable (permissions.{perm})"
                )))
            }
        };
        if !kind.permissions().contains(&perm.as_str()) {
            if principals.is_empty() {
                continue;
            }
            return Err(patch_failed(format!("unknown permission {perm:?}")));
        }
        set(acl, &perm, principals);
    }
    Ok(())
}

/// RFC 6902 JSON patch over `{"data": …, "permissions": …}`, as Kinto's
/// `apply_json_patch` does: permissions are `{principal: principal}` maps,
/// and an operation on `/permissions/read/<p>` or `/permissions/write/<p>`
/// gets the last path segment as its `value`. Operations that touch the
/// permissions follow Python's `jsonpatch` (and its messages); the others
/// go through the `json-patch` crate.
///
/// On an error `data` and `acl` are left half patched: the caller drops
/// them (it patches copies).
pub fn json_patch(
    kind: Kind,
    data: &mut Map<String, Value>,
    acl: &mut Acl,
    ops: &Value,
) -> Result<(), KintoError> {
    let Value::Array(ops) = ops else {
        return Err(body_error(
            "body",
            "JSON Patch body must be a list of operations",
        ));
    };
    let mut checked = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let Value::Object(m) = op else {
            return Err(body_error(
                &i.to_string(),
                format!("{op} is not a mapping type"),
            ));
        };
        if let Some(k) = m
            .keys()
            .find(|k| !["op", "path", "from", "value"].contains(&k.as_str()))
        {
            return Err(body_error(
                &i.to_string(),
                format!("Unrecognized key {k:?}"),
            ));
        }
        let name = m.get("op").and_then(Value::as_str).unwrap_or_default();
        if !OPS.contains(&name) {
            return Err(body_error(&format!("{i}.op"), "Required op"));
        }
        let Some(path) = m.get("path").and_then(Value::as_str) else {
            return Err(body_error(&format!("{i}.path"), "Required"));
        };
        let mut m = m.clone();
        if path.starts_with("/permissions/read/") || path.starts_with("/permissions/write/") {
            let last = path.rsplit('/').next().unwrap_or_default().to_owned();
            m.insert("value".into(), Value::String(last));
        }
        checked.push(m);
    }
    let mut doc = serde_json::json!({
        "data": Value::Object(std::mem::take(data)),
        "permissions": acl_document(acl),
    });
    let mut result = Ok(());
    for m in checked {
        let path = m.get("path").and_then(Value::as_str).unwrap_or_default();
        let from = m.get("from").and_then(Value::as_str).unwrap_or_default();
        result = if on_permissions(path) || on_permissions(from) {
            python_jsonpatch::apply(&mut doc, &m).map_err(patch_failed)
        } else {
            apply_with_crate(&mut doc, Value::Object(m))
        };
        if result.is_err() {
            break;
        }
    }
    let Value::Object(mut doc) = doc else {
        return Err(patch_failed("data must stay an object"));
    };
    match doc.remove("data") {
        Some(Value::Object(d)) => *data = d,
        _ => return Err(patch_failed("data must stay an object")),
    }
    result?;
    apply_acl_document(kind, acl, doc.remove("permissions"))
}

/// One operation through the `json-patch` crate. Not `json_patch::patch`:
/// on a failed operation it undoes the applied ones, and that undo panics
/// (json-patch 4.2, `unreachable!`) when it cannot be replayed, e.g. after a
/// move of `/data/a` onto `/data`. The caller drops a failed patch's data,
/// so nothing needs undoing.
fn apply_with_crate(doc: &mut Value, op: Value) -> Result<(), KintoError> {
    let op: json_patch::PatchOperation = serde_json::from_value(op).map_err(patch_failed)?;
    json_patch::patch_unsafe(doc, &[op]).map_err(patch_failed)
}

mod python_jsonpatch;

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn merge_is_shallow_and_keeps_nulls() {
        let mut d = map(json!({"a": {"x": 1, "y": 2}, "b": 1}));
        merge_data(&mut d, map(json!({"a": {"x": 3}, "b": null})));
        assert_eq!(Value::Object(d), json!({"a": {"x": 3}, "b": null}));
    }

    #[test]
    fn merge_patch_is_recursive_and_removes_nulls() {
        let mut d = map(json!({"a": {"x": 1, "y": 2}, "b": 1}));
        merge_patch_data(&mut d, map(json!({"a": {"x": 3, "y": null}, "b": null})));
        assert_eq!(Value::Object(d), json!({"a": {"x": 3}}));
    }

    #[test]
    fn json_patch_edits_data_and_permissions() {
        let mut d = map(json!({"a": 1}));
        let mut acl = Acl::new();
        let ops = json!([
            {"op": "add", "path": "/data/b", "value": 2},
            {"op": "remove", "path": "/data/a"},
            {"op": "add", "path": "/permissions/read/system.Everyone"},
            {"op": "add", "path": "/permissions/write/~1buckets~1b~1groups~1g"},
        ]);
        json_patch(Kind::Record, &mut d, &mut acl, &ops).expect("valid patch");
        assert_eq!(Value::Object(d), json!({"b": 2}));
        assert_eq!(
            acl.get("read").cloned().unwrap_or_default(),
            vec!["system.Everyone".to_string()]
        );
        assert!(acl.get("write").expect("write")[0].contains("groups"));
    }

    #[test]
    fn failing_test_op_is_a_400() {
        let mut d = map(json!({"a": 1}));
        let ops = json!([{"op": "test", "path": "/data/a", "value": 2}]);
        let e = json_patch(Kind::Record, &mut d, &mut Acl::new(), &ops).expect_err("must fail");
        assert_eq!(e.kind.spec().http_status, 400);
        assert_eq!(Value::Object(d), json!({"a": 1}));
    }

    #[test]
    fn a_failed_patch_after_a_move_onto_data_is_a_400_not_a_panic() {
        // Found by fuzz_json_patch_never_panics_and_keeps_the_acl_well_formed:
        // json_patch::patch's undo of the move panicked.
        let mut d = map(json!({"a": "b"}));
        let ops = json!([
            {"op": "move", "from": "/data/a", "path": "/data"},
            {"op": "test", "path": "/data", "value": 1},
        ]);
        let e = json_patch(Kind::Record, &mut d, &mut Acl::new(), &ops).expect_err("must fail");
        assert_eq!(e.kind.spec().http_status, 400);
        let ops = json!([
            {"op": "add", "path": "/data/x", "value": {"y": 1}},
            {"op": "move", "from": "/data/x", "path": "/data/x/y/z"},
        ]);
        let e = json_patch(Kind::Record, &mut map(json!({})), &mut Acl::new(), &ops)
            .expect_err("a move into its own child must fail");
        assert_eq!(e.kind.spec().http_status, 400);
    }

    #[test]
    fn unknown_permission_is_rejected() {
        let e = parse_permissions(Kind::Bucket, &json!({"delete": []})).expect_err("must fail");
        assert!(e
            .message
            .unwrap_or_default()
            .contains("\"delete\" is not one of"));
    }
}
