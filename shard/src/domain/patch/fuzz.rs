//! Property tests for PUT/PATCH bodies (`cargo test fuzz_`;
//! `PROPTEST_CASES` sets how many cases run): JSON Patch (RFC 6902) on
//! `/data` and `/permissions`, merge-patch (RFC 7396), plain merge and the
//! `permissions` parser.

use super::*;
use proptest::prelude::*;

/// Keys biased toward the ones that mean something to a JSON pointer.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(vec![
            "a", "b", "c", "0", "1", "-", "", "~", "/", "~0", "~1", "a/b", "a~b", "id",
            "data", "permissions", "read", "write",
        ])
        .prop_map(str::to_owned),
        1 => "[a-c0-9~/\\-]{0,4}",
        1 => any::<String>(),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        key().prop_map(Value::from),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::vec((key(), json()), 0..6).prop_map(|kv| kv.into_iter().collect())
}

/// One reference token: keys, indices (huge, leading zero, negative, `-`)
/// and escapes (valid and not).
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => key().prop_map(|k| k.replace('~', "~0").replace('/', "~1")),
        2 => proptest::sample::select(vec![
            "0", "1", "2", "5", "-", "01", "-1", "+1", "1e3", "4294967296",
            "18446744073709551615", "18446744073709551616", "99999999999999999999999",
            "~", "~2", "~~", "~01", "~10",
        ])
        .prop_map(str::to_owned),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => key(),
    ]
}

/// A pointer under `/data` most of the time; also the other roots a body
/// may name, right and wrong.
fn path() -> impl Strategy<Value = String> {
    let under_data = proptest::collection::vec(token(), 0..4)
        .prop_map(|t| t.iter().fold("/data".to_owned(), |p, t| p + "/" + t));
    let perm = proptest::sample::select(vec![
        "read",
        "write",
        "collection:create",
        "group:create",
        "record:create",
        "delete",
        "",
        "read~1x",
        "wr~0ite",
    ]);
    let principal = prop_oneof![
        proptest::sample::select(vec![
            "system.Everyone",
            "system.Authenticated",
            "account:alice",
            "",
            "/buckets/b/groups/g",
            "~1buckets~1b",
            "a/b/c",
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ];
    let permissions = (perm, proptest::option::of(principal)).prop_map(|(p, who)| match who {
        Some(who) => format!("/permissions/{p}/{who}"),
        None => format!("/permissions/{p}"),
    });
    prop_oneof![
        8 => under_data,
        3 => permissions,
        1 => proptest::sample::select(vec![
            "", "/", "data", "/datax", "/data/", "/permissions", "/permissions/", "/id", "#/data",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn op_name() -> impl Strategy<Value = Value> {
    prop_oneof![
        30 => proptest::sample::select(vec!["test", "add", "remove", "replace", "move", "copy"])
            .prop_map(Value::from),
        1 => proptest::sample::select(vec!["ADD", "delete", "", "get", "_get"]).prop_map(Value::from),
        1 => leaf(),
    ]
}

/// Every JSON pointer into `v`, escaped, under `prefix`.
fn pointers(prefix: &str, v: &Value, out: &mut Vec<String>) {
    out.push(prefix.to_owned());
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let k = k.replace('~', "~0").replace('/', "~1");
                pointers(&format!("{prefix}/{k}"), v, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                pointers(&format!("{prefix}/{i}"), v, out);
            }
        }
        _ => {}
    }
}

/// A path that names something in the document (so that operations
/// succeed often enough to reach deep), a new child of it, or anything.
fn path_into(existing: Vec<String>) -> impl Strategy<Value = String> {
    let child =
        (proptest::sample::select(existing.clone()), token()).prop_map(|(p, t)| format!("{p}/{t}"));
    prop_oneof![
        4 => proptest::sample::select(existing),
        3 => child,
        3 => path(),
    ]
}

/// One operation: mostly well formed, sometimes missing or extra members,
/// sometimes a `from` that is a prefix of `path` (a move into its own child).
fn operation(existing: Vec<String>) -> impl Strategy<Value = Value> {
    let well_formed = (
        op_name(),
        path_into(existing.clone()),
        proptest::option::weighted(0.8, path_into(existing)),
        proptest::option::weighted(0.9, json()),
        proptest::bool::weighted(0.2),
        token(),
    )
        .prop_map(|(op, path, from, value, into_own_child, child)| {
            let mut m = Map::new();
            m.insert("op".into(), op);
            let (path, from) = if into_own_child {
                (format!("{path}/{child}"), Some(path))
            } else {
                (path, from)
            };
            m.insert("path".into(), Value::from(path));
            if let Some(from) = from {
                m.insert("from".into(), Value::from(from));
            }
            if let Some(value) = value {
                m.insert("value".into(), value);
            }
            Value::Object(m)
        });
    prop_oneof![
        30 => well_formed,
        1 => object().prop_map(Value::Object),
        1 => json(),
    ]
}

/// A document and a list of operations on it.
fn data_and_operations() -> impl Strategy<Value = (Map<String, Value>, Value)> {
    object().prop_flat_map(|data| {
        let mut existing = Vec::new();
        pointers("/data", &Value::Object(data.clone()), &mut existing);
        let ops = prop_oneof![
            12 => proptest::collection::vec(operation(existing), 0..5).prop_map(Value::Array),
            1 => json(),
        ];
        (Just(data), ops)
    })
}

fn principals() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        proptest::sample::select(vec![
            "system.Everyone",
            "system.Authenticated",
            "account:alice",
            "account:bob",
            "/buckets/b/groups/g",
        ])
        .prop_map(str::to_owned),
        1..4,
    )
    .prop_map(|mut v| {
        v.sort();
        v.dedup();
        v
    })
}

/// A stored ACL: known permissions, sorted, unique and non-empty lists.
fn acl(kind: Kind) -> impl Strategy<Value = Acl> {
    let perms = kind.permissions();
    proptest::collection::vec((proptest::sample::select(perms), principals()), 0..4).prop_map(
        |entries| {
            let mut acl = Acl::new();
            for (perm, list) in entries {
                acl.insert(perm.to_owned(), list);
            }
            acl
        },
    )
}

fn kind_and_acl() -> impl Strategy<Value = (Kind, Acl)> {
    (0..Kind::ALL.len()).prop_flat_map(|k| (Just(Kind::ALL[k]), acl(Kind::ALL[k])))
}

/// The ACL as stored: known permissions only, each with a sorted, unique,
/// non-empty list.
fn well_formed_acl(kind: Kind, acl: &Acl) -> Result<(), TestCaseError> {
    let Ok(Value::Object(m)) = serde_json::to_value(acl) else {
        return Err(TestCaseError::fail("an ACL prints as a JSON object"));
    };
    for (perm, list) in &m {
        prop_assert!(kind.permissions().contains(&perm.as_str()), "{}", perm);
        let list: Vec<String> = serde_json::from_value(list.clone()).unwrap_or_default();
        prop_assert!(!list.is_empty(), "empty list for {}", perm);
        prop_assert!(list.windows(2).all(|w| w[0] < w[1]), "{:?}", list);
    }
    Ok(())
}

fn a_400(e: &KintoError) -> Result<(), TestCaseError> {
    prop_assert_eq!(e.kind.spec().http_status, 400, "{:?}", e);
    prop_assert!(!e.message.as_deref().unwrap_or_default().is_empty());
    Ok(())
}

/// RFC 7396 §2's `MergePatch(Target, Patch)`, on whole values.
fn rfc7396(target: Value, patch: Value) -> Value {
    let Value::Object(patch) = patch else {
        return patch;
    };
    let mut target = match target {
        Value::Object(t) => t,
        _ => Map::new(),
    };
    for (name, value) in patch {
        if value.is_null() {
            target.remove(&name);
        } else {
            let old = target.remove(&name).unwrap_or(Value::Null);
            target.insert(name, rfc7396(old, value));
        }
    }
    Value::Object(target)
}

proptest! {
    #[test]
    fn fuzz_json_patch_never_panics_and_keeps_the_acl_well_formed(
        (kind, acl) in kind_and_acl(),
        (data, ops) in data_and_operations(),
    ) {
        let (mut d, mut a) = (data.clone(), acl.clone());
        match json_patch(kind, &mut d, &mut a, &ops) {
            Ok(()) => {
                well_formed_acl(kind, &a)?;
                // Only `test` operations (or none): nothing changes.
                let only_tests = ops.as_array().is_some_and(|ops| {
                    ops.iter().all(|o| o.get("op").and_then(Value::as_str) == Some("test"))
                });
                if only_tests {
                    prop_assert_eq!(&d, &data);
                    prop_assert_eq!(&a, &acl);
                }
            }
            Err(e) => a_400(&e)?,
        }
    }

    #[test]
    fn fuzz_json_patch_on_data_keeps_it_an_object(
        data in object(),
        op in proptest::sample::select(vec!["add", "replace", "remove", "test", "move", "copy"]),
        value in json(),
        from in proptest::option::of(path()),
    ) {
        let mut o = Map::new();
        o.insert("op".into(), Value::from(op));
        o.insert("path".into(), Value::from("/data"));
        o.insert("value".into(), value.clone());
        if let Some(from) = from {
            o.insert("from".into(), Value::from(from));
        }
        let ops = Value::Array(vec![Value::Object(o)]);
        let mut d = data.clone();
        match json_patch(Kind::Record, &mut d, &mut Acl::new(), &ops) {
            Ok(()) => match op {
                "add" | "replace" => prop_assert_eq!(Value::Object(d), value),
                "test" => prop_assert_eq!(Value::Object(d), value),
                _ => {}
            },
            Err(e) => {
                a_400(&e)?;
                if matches!(op, "add" | "replace") {
                    prop_assert!(!value.is_object());
                }
            }
        }
    }

    #[test]
    fn fuzz_merge_patch_is_rfc7396_and_idempotent(data in object(), change in object()) {
        let mut once = data.clone();
        merge_patch_data(&mut once, change.clone());
        prop_assert_eq!(
            Value::Object(once.clone()),
            rfc7396(Value::Object(data), Value::Object(change.clone()))
        );
        let mut twice = once.clone();
        merge_patch_data(&mut twice, change);
        prop_assert_eq!(twice, once);
    }

    #[test]
    fn fuzz_merge_is_shallow_and_idempotent(data in object(), change in object()) {
        let mut once = data.clone();
        merge_data(&mut once, change.clone());
        for (k, v) in &change {
            prop_assert_eq!(once.get(k), Some(v));
        }
        for (k, v) in &data {
            if !change.contains_key(k) {
                prop_assert_eq!(once.get(k), Some(v));
            }
        }
        prop_assert_eq!(once.len(), data.keys().chain(change.keys()).collect::<std::collections::HashSet<_>>().len());
        let mut twice = once.clone();
        merge_data(&mut twice, change);
        prop_assert_eq!(twice, once);
    }

    #[test]
    fn fuzz_permissions_never_panic_and_stay_well_formed(
        (kind, acl) in kind_and_acl(),
        body in prop_oneof![
            4 => proptest::collection::vec(
                (
                    prop_oneof![
                        4 => proptest::sample::select(vec![
                            "read", "write", "collection:create", "group:create",
                            "record:create",
                        ]).prop_map(str::to_owned),
                        1 => key(),
                    ],
                    prop_oneof![
                        4 => proptest::collection::vec(
                            prop_oneof![
                                4 => proptest::sample::select(vec![
                                    "system.Everyone", "account:alice", "account:alice", "",
                                ]).prop_map(Value::from),
                                1 => leaf(),
                            ],
                            0..5,
                        ).prop_map(Value::Array),
                        1 => Just(Value::Null),
                        1 => json(),
                    ],
                ),
                0..5,
            ).prop_map(|kv| Value::Object(kv.into_iter().collect())),
            1 => json(),
        ],
    ) {
        match parse_permissions(kind, &body) {
            Err(e) => a_400(&e)?,
            Ok(change) => {
                for (perm, _) in &change {
                    prop_assert!(kind.permissions().contains(&perm.as_str()));
                }
                well_formed_acl(kind, &replace_acl(change.clone()))?;
                let mut merged = acl.clone();
                merge_acl(&mut merged, change.clone());
                well_formed_acl(kind, &merged)?;
                let mut once = acl.clone();
                merge_patch_acl(&mut once, change.clone());
                well_formed_acl(kind, &once)?;
                let mut twice = once.clone();
                merge_patch_acl(&mut twice, change);
                prop_assert_eq!(twice, once);
            }
        }
    }
}
