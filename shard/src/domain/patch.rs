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

/// Unescapes one JSON-pointer token (`~1` → `/`, `~0` → `~`).
fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// RFC 6902 JSON patch. Ops on `/data/…` edit the data; ops on
/// `/permissions/<perm>/<principal>` add, remove or test one principal (the
/// `value` is ignored, as in Kinto).
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
    let mut data_ops = Vec::new();
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
        if let Some(rest) = path.strip_prefix("/permissions/") {
            let (perm, principal) = rest.split_once('/').unwrap_or((rest, ""));
            let perm = unescape(perm);
            if !kind.permissions().contains(&perm.as_str()) {
                return Err(patch_failed(format!("unknown permission {perm:?}")));
            }
            let principal = unescape(principal);
            let list = acl.principals_mut(&perm);
            match name {
                "add" | "replace" if !principal.is_empty() && !list.contains(&principal) => {
                    list.push(principal);
                    list.sort();
                }
                "remove" => list.retain(|p| p != &principal),
                "test" if !list.contains(&principal) => {
                    return Err(patch_failed(format!("{principal} not in {perm}")));
                }
                _ => {}
            }
            if list.is_empty() {
                acl.remove(&perm);
            }
        } else if path == "/data" || path.starts_with("/data/") {
            data_ops.push(op.clone());
        } else {
            return Err(patch_failed(format!("invalid path {path:?}")));
        }
    }
    if data_ops.is_empty() {
        return Ok(());
    }
    let ops: Vec<json_patch::PatchOperation> =
        serde_json::from_value(Value::Array(data_ops)).map_err(patch_failed)?;
    let mut doc = serde_json::json!({ "data": Value::Object(std::mem::take(data)) });
    // Not `json_patch::patch`: on a failed operation it undoes the applied
    // ones, and that undo panics (json-patch 4.2, `unreachable!`) when it
    // cannot be replayed, e.g. after a move of `/data/a` onto `/data`. The
    // caller drops a failed patch's data, so nothing needs undoing.
    let result = json_patch::patch_unsafe(&mut doc, &ops);
    match doc {
        Value::Object(mut m) => match m.remove("data") {
            Some(Value::Object(d)) => *data = d,
            _ => return Err(patch_failed("data must stay an object")),
        },
        _ => return Err(patch_failed("data must stay an object")),
    }
    result.map_err(patch_failed)
}

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
            {"op": "add", "path": "/permissions/write//buckets~1b~1groups~1g"},
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
