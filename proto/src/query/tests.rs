use super::*;
use serde_json::json;

fn f(field: &str, op: Op, value: Value) -> Filter {
    Filter {
        field: field.into(),
        op,
        value,
    }
}

fn rec() -> Value {
    json!({"id": "r1", "last_modified": 10, "age": 30, "name": "Alice",
           "tags": ["x", "y"], "addr": {"city": "Paris"}, "v": null, "a.b": 1})
}

#[test]
fn lookup_follows_dots_and_literal_keys() {
    let r = rec();
    assert_eq!(lookup(&r, "addr.city"), Some(&json!("Paris")));
    assert_eq!(lookup(&r, "a.b"), Some(&json!(1)));
    assert_eq!(lookup(&r, "addr.zip"), None);
    assert_eq!(lookup(&r, "name.x"), None);
}

#[test]
fn equality_is_type_sensitive_and_null_is_not_missing() {
    let r = rec();
    assert!(matches(&r, &[f("age", Op::Eq, json!(30))]));
    assert!(matches(&r, &[f("age", Op::Eq, json!(30.0))]));
    assert!(!matches(&r, &[f("age", Op::Eq, json!("30"))]));
    assert!(matches(&r, &[f("v", Op::Eq, Value::Null)]));
    assert!(!matches(&r, &[f("missing", Op::Eq, Value::Null)]));
}

#[test]
fn comparisons_and_missing_fields() {
    let r = rec();
    assert!(matches(
        &r,
        &[f("age", Op::Min, json!(30)), f("age", Op::Max, json!(30))]
    ));
    assert!(!matches(&r, &[f("age", Op::Lt, json!(30))]));
    assert!(matches(&r, &[f("age", Op::Gt, json!(29))]));
    assert!(!matches(&r, &[f("missing", Op::Gt, json!(0))]));
    assert!(matches(&r, &[f("missing", Op::Not, json!(1))]));
    assert!(!matches(&r, &[f("age", Op::Not, json!(30))]));
}

#[test]
fn in_exclude_like_has() {
    let r = rec();
    assert!(matches(&r, &[f("age", Op::In, json!([25, 30]))]));
    assert!(!matches(&r, &[f("missing", Op::In, json!([1]))]));
    assert!(matches(&r, &[f("missing", Op::Exclude, json!([1]))]));
    assert!(!matches(&r, &[f("age", Op::Exclude, json!([30]))]));
    assert!(matches(&r, &[f("name", Op::Like, json!("lic"))]));
    assert!(matches(&r, &[f("name", Op::Like, json!("a*E"))]));
    assert!(!matches(&r, &[f("name", Op::Like, json!("a*x"))]));
    assert!(matches(&r, &[f("v", Op::Has, json!(true))]));
    assert!(matches(&r, &[f("missing", Op::Has, json!(false))]));
    assert!(!matches(&r, &[f("age", Op::Has, json!(false))]));
}

#[test]
fn contains_and_contains_any() {
    let r = rec();
    assert!(matches(&r, &[f("tags", Op::Contains, json!(["x", "y"]))]));
    assert!(!matches(&r, &[f("tags", Op::Contains, json!(["x", "z"]))]));
    assert!(matches(
        &r,
        &[f("tags", Op::ContainsAny, json!(["z", "y"]))]
    ));
    assert!(!matches(
        &r,
        &[f("name", Op::ContainsAny, json!(["Alice"]))]
    ));
}

#[test]
fn values_order_across_types() {
    let ordered = [
        json!(null),
        json!("a"),
        json!("b"),
        json!(-1),
        json!(2.5),
        json!(10),
        json!(false),
        json!(true),
        json!([1]),
        json!({"a": 1}),
    ];
    for w in ordered.windows(2) {
        assert_eq!(
            compare_values(&w[0], &w[1]),
            Ordering::Less,
            "{} < {}",
            w[0],
            w[1]
        );
    }
}

#[test]
fn sorting_puts_missing_last_ascending_and_first_descending() {
    let a = json!({"id": "a", "n": 1});
    let b = json!({"id": "b"});
    let asc = [SortKey {
        field: "n".into(),
        descending: false,
    }];
    let desc = [SortKey {
        field: "n".into(),
        descending: true,
    }];
    assert_eq!(compare_objects(&a, &b, &asc), Ordering::Less);
    assert_eq!(compare_objects(&a, &b, &desc), Ordering::Greater);
}

#[test]
fn keyset_pagination_resumes_after_the_last_row() {
    let sort = [
        SortKey {
            field: "n".into(),
            descending: true,
        },
        SortKey {
            field: "id".into(),
            descending: false,
        },
    ];
    let mut rows: Vec<Value> = (0..10)
        .map(|i| json!({"id": format!("r{i}"), "n": i % 3}))
        .collect();
    rows.push(json!({"id": "nofield"}));
    rows.sort_by(|a, b| compare_objects(a, b, &sort));
    let mut seen = Vec::new();
    let mut after: Option<Map<String, Value>> = None;
    loop {
        let page: Vec<&Value> = rows
            .iter()
            .filter(|r| after.as_ref().is_none_or(|a| is_after(r, &sort, a)))
            .take(3)
            .collect();
        if page.is_empty() {
            break;
        }
        seen.extend(page.iter().map(|r| r["id"].clone()));
        let keyset = keyset_of(page[page.len() - 1], &sort);
        let (last, _) = decode_token(&encode_token(&keyset, 0), &sort, 0).expect("round trip");
        after = Some(last);
    }
    let all: Vec<Value> = rows.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(seen, all);
}

#[test]
fn bad_tokens_are_refused() {
    use base64::Engine;
    let now = 1_700_000_000_000;
    let sort = [SortKey {
        field: "last_modified".into(),
        descending: true,
    }];
    let b64 = |v: Value| base64::engine::general_purpose::STANDARD.encode(v.to_string());
    let ok = b64(json!({"last_object": {"last_modified": "\"5\""}, "offset": 0, "nonce": 1}));
    assert_eq!(
        decode_token(&ok, &sort, now),
        Ok((
            json!({"last_modified": 5})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            0
        ))
    );
    // As Python's b64decode: missing padding is refused, stray characters
    // skipped, and what follows complete padding ignored.
    use super::token::python_b64decode as d;
    assert_eq!(d("e30=").as_deref(), Some(&b"{}"[..]));
    assert_eq!(d("e3!-0=").as_deref(), Some(&b"{}"[..]));
    assert_eq!(d("e30=e30=").as_deref(), Some(&b"{}"[..]));
    assert_eq!(d("e30"), None);
    assert_eq!(d("e"), None);
    assert!(decode_token(&format!("!{ok}"), &sort, now).is_ok());
    for bad in [
        json!([1]),
        json!({"last_object": {}, "offset": 0, "nonce": "x"}),
        json!({"last_object": {"last_modified": 1}, "offset": 0}),
        json!({"last_object": {"last_modified": 1}, "nonce": "x"}),
        json!({"last_object": {"last_modified": 1}, "offset": -1, "nonce": "x"}),
        json!({"last_object": {"last_modified": 1}, "offset": 1.5, "nonce": "x"}),
        json!({"last_object": {"last_modified": 1}, "offset": true, "nonce": "x"}),
        json!({"last_object": {"last_modified": true}, "offset": 0, "nonce": "x"}),
        json!({"last_object": {"last_modified": "abc"}, "offset": 0, "nonce": "x"}),
        json!({"last_object": {"last_modified": [1]}, "offset": 0, "nonce": "x"}),
        json!({"last_object": {"last_modified": now + 86_400_000}, "offset": 0, "nonce": "x"}),
        json!({"last_object": [1], "offset": 0, "nonce": "x"}),
    ] {
        assert!(
            decode_token(&b64(bad.clone()), &sort, now).is_err(),
            "{bad}"
        );
    }
    assert!(decode_token("!!", &sort, now).is_err());
    assert!(decode_token("e30=", &sort, now).is_err()); // {} has no last_object
}

#[test]
fn projection_keeps_ids_and_builds_sub_objects() {
    let p = project(&rec(), &["addr.city".into(), "nope".into()]);
    assert_eq!(
        p,
        json!({"id": "r1", "last_modified": 10, "addr": {"city": "Paris"}})
    );
}

#[test]
fn like_does_not_backtrack_on_repeated_wildcards() {
    let text = "a".repeat(64);
    assert!(!like("*a*a*a*a*a*a*a*a*a*a*b", &text));
    assert!(like("*a*a*a*a*a*a*a*a*a*a*", &text));
    assert!(like("a*a*a*a*a*a*a*a*a*a", &text));
}

#[test]
fn like_anchors_prefix_and_suffix_without_overlap() {
    assert!(!like("ab*ba", "aba"));
    assert!(like("ab*ba", "abba"));
    assert!(like("ab*ba", "ABXBA"));
    assert!(like("a*", "abc"));
    assert!(!like("b*", "abc"));
    assert!(like("*c", "abc"));
    assert!(!like("*b", "abc"));
    assert!(like("*", ""));
    assert!(like("", "abc"));
    assert!(like("B", "abc"));
    assert!(!like("a**c*d", "abc"));
}

#[test]
fn lookup_descends_a_thousand_levels() {
    let depth = 1000;
    let mut obj = json!({"leaf": depth});
    for _ in 0..depth {
        obj = json!({ "a": obj });
    }
    let path = format!("{}leaf", "a.".repeat(depth));
    assert_eq!(lookup(&obj, &path), Some(&json!(depth)));
    let missing = format!("{}nope", "a.".repeat(depth));
    assert_eq!(lookup(&obj, &missing), None);
}

#[test]
fn sort_by_keys_is_stable_and_puts_missing_last() {
    let sort = [SortKey {
        field: "n".into(),
        descending: false,
    }];
    let mut rows = vec![
        (json!({"n": 2}), "two"),
        (json!({}), "missing"),
        (json!({"n": 1.0}), "one-float"),
        (json!({"n": {"b": 1}}), "object-b"),
        (json!({"n": 1}), "one-int"),
        (json!({"n": {"a": 1}}), "object-a"),
    ];
    sort_by_keys(&mut rows, &sort, |r| &r.0);
    let names: Vec<&str> = rows.iter().map(|r| r.1).collect();
    assert_eq!(
        names,
        [
            "one-float",
            "one-int",
            "two",
            "object-a",
            "object-b",
            "missing"
        ]
    );
}

/// `MetaKeyset::is_after` answers what `is_after` answers on the row built as
/// JSON, for every sort on `id` and `last_modified` and keysets holding the
/// same values, others, other types, or nothing.
#[test]
fn a_meta_keyset_agrees_with_is_after() {
    let rows = [("b", 5u64), ("a", 5), ("c", 4), ("b", 6)];
    let values = [
        None,
        Some(json!("b")),
        Some(json!("a")),
        Some(json!("bb")),
        Some(json!(5)),
        Some(json!(4.5)),
        Some(json!(null)),
        Some(json!(true)),
        Some(json!([1])),
    ];
    let sorts: Vec<Vec<SortKey>> = [
        vec![("last_modified", true), ("id", true)],
        vec![("last_modified", false), ("id", false)],
        vec![("id", false)],
        vec![("id", true), ("last_modified", false)],
    ]
    .into_iter()
    .map(|keys| {
        (keys.into_iter())
            .map(|(field, descending)| SortKey {
                field: field.into(),
                descending,
            })
            .collect()
    })
    .collect();
    let mut checked = 0;
    for (id, ts) in rows {
        let row = json!({"id": id, "last_modified": ts});
        for sort in &sorts {
            for a in &values {
                for b in &values {
                    let mut last = Map::new();
                    if let Some(a) = a {
                        last.insert("id".into(), a.clone());
                    }
                    if let Some(b) = b {
                        last.insert("last_modified".into(), b.clone());
                    }
                    assert_eq!(
                        MetaKeyset::new(sort, &last).is_after(id, ts),
                        is_after(&row, sort, &last),
                        "{row} after {last:?} by {:?}",
                        sort.iter()
                            .map(|k| (&k.field, k.descending))
                            .collect::<Vec<_>>()
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 4 * 4 * 81);
}
