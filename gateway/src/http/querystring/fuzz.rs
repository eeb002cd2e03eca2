//! Property tests for the querystring parser (`cargo test fuzz_`;
//! `PROPTEST_CASES` sets how many cases run). Inputs are biased toward what
//! the parser looks for: operator prefixes, `_`-parameters, timestamps,
//! comma lists, JSON values and base64 `_token`s.

use super::*;
use base64::Engine;
use kinto_proto::query::encode_token;
use proptest::prelude::*;

const NOW: u64 = 1_700_000_000_000;

/// Keys and strings biased toward the ones the parser recognises.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(vec![
            "id", "last_modified", "title", "a", "a.b", "a..b", ".", "_", "tags", "age",
            "é", "a b", "a-b", "a,b", "'", "\"", "", "0",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z_.,\\-]{0,6}",
        1 => any::<String>(),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    crate::http::fuzz_support::json(word().boxed())
}

/// `_token`s: ours, base64 of other JSON (each alphabet), and garbage.
fn token() -> impl Strategy<Value = String> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let shaped = (
        proptest::option::of(json()),
        proptest::option::of(json()),
        proptest::option::of(json()),
    )
        .prop_map(|(last, offset, nonce)| {
            let mut m = Map::new();
            for (k, v) in [("last_object", last), ("offset", offset), ("nonce", nonce)] {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            Value::Object(m)
        });
    let body = prop_oneof![3 => shaped, 1 => json()];
    prop_oneof![
        4 => (body, 0..3usize).prop_map(|(v, e)| {
            let s = v.to_string();
            match e {
                0 => URL_SAFE.encode(s),
                1 => URL_SAFE_NO_PAD.encode(s),
                _ => STANDARD.encode(s),
            }
        }),
        2 => (proptest::collection::vec((word(), json()), 0..4), any::<u64>()).prop_map(
            |(kv, offset)| encode_token(&kv.into_iter().collect(), offset)
        ),
        1 => "[A-Za-z0-9+/_=-]{0,40}",
        1 => any::<String>(),
    ]
}

/// Values: JSON, numbers at and past every bound, quoted numbers (ETags),
/// comma lists, NULs and anything.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => json().prop_map(|v| v.to_string()),
        3 => proptest::sample::select(vec![
            "", "0", "1", "-1", "-0", "10", "1e3", "1.5", " 1", "1 ", "\"12\"", "\"",
            "\"\"", "null", "true", "[]", "{}", "[1,", "a,b", ",", ",,", "1,2,3",
            "\"a\",\"b\"", "1699999999999", "1700086399999", "1700086400000",
            "18446744073709551615", "18446744073709551616", "-18446744073709551616",
            "340282366920938463463374607431768211456", "99999999999999999999999999999999999999999",
            "1e999999", "NaN", "Infinity", "a\0b", "\0", "%00", "é,ß", "-last_modified,id",
            "+title, -a.b ,", "-", "+", "-,", "- a",
        ])
        .prop_map(str::to_owned),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<i128>().prop_map(|n| n.to_string()),
        1 => proptest::collection::vec(word(), 0..5).prop_map(|w| w.join(",")),
        1 => any::<String>(),
    ]
}

fn key() -> impl Strategy<Value = String> {
    let prefix = proptest::sample::select(vec![
        "",
        "",
        "",
        "contains_any_",
        "contains_",
        "min_",
        "max_",
        "lt_",
        "gt_",
        "not_",
        "in_",
        "exclude_",
        "like_",
        "has_",
        "eq_",
        "in_in_",
        "contains_any",
        "_",
    ]);
    prop_oneof![
        6 => (prefix, word()).prop_map(|(p, w)| format!("{p}{w}")),
        4 => proptest::sample::select(vec![
            "_limit", "_sort", "_fields", "_token", "_since", "_before", "_to", "_other",
            "_", "_limit\0",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// A querystring: a few pairs, the value sometimes matched to its key.
fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    let pair = (key(), value(), token()).prop_map(|(k, v, t)| {
        let v = if k == "_token" { t } else { v };
        (k, v)
    });
    proptest::collection::vec(pair, 0..8)
}

fn known() -> impl Strategy<Value = Option<Vec<&'static str>>> {
    proptest::option::of(proptest::sample::subsequence(
        vec!["id", "last_modified", "title", "a", "tags", "age"],
        0..6,
    ))
}

/// The keys `_sort` asks for, in order.
fn requested_sort(pairs: &[(String, String)]) -> Vec<String> {
    pairs
        .iter()
        .find(|(k, _)| k == "_sort")
        .map(|(_, v)| {
            v.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    p.strip_prefix('-')
                        .or_else(|| p.strip_prefix('+'))
                        .unwrap_or(p)
                })
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn check(
    pairs: &[(String, String)],
    now: u64,
    known: Option<&[&str]>,
) -> Result<(), TestCaseError> {
    match parse_list_query(pairs, now, known) {
        Err(e) => {
            prop_assert!(!e.description.is_empty(), "{:?}", e);
        }
        Ok(p) => {
            prop_assert_ne!(p.limit, Some(0));
            // The tie-breakers are always there, after what was asked for.
            let fields: Vec<&str> = p.sort.iter().map(|k| k.field.as_str()).collect();
            prop_assert!(fields.contains(&"last_modified"), "{:?}", fields);
            prop_assert!(fields.contains(&"id"), "{:?}", fields);
            let asked = requested_sort(pairs);
            prop_assert_eq!(&fields[..asked.len()], &asked[..]);
            if asked.is_empty() {
                prop_assert_eq!(
                    &p.sort,
                    &vec![
                        SortKey {
                            field: "last_modified".into(),
                            descending: true
                        },
                        SortKey {
                            field: "id".into(),
                            descending: false
                        },
                    ]
                );
            }
            for added in &p.sort[asked.len()..] {
                prop_assert!(added.field == "last_modified" || added.field == "id");
                prop_assert_eq!(added.descending, added.field == "last_modified");
            }
            prop_assert!(p.sort.len() <= asked.len() + 2);
            for f in &p.filters {
                prop_assert!(valid_field(&f.field), "{:?}", f);
                // `_since`, `_before`, `_to` and a plain `last_modified=`
                // filter on `last_modified` whatever fields the resource
                // lists: Kinto always knows its model's timestamp field
                // (`is_known_field`).
                let by_timestamp_param = f.field == "last_modified"
                    && pairs.iter().any(|(k, _)| {
                        ["_since", "_before", "_to", "last_modified"].contains(&k.as_str())
                    });
                if let (Some(k), false) = (known, by_timestamp_param) {
                    let root = f.field.split('.').next().unwrap_or_default();
                    prop_assert!(k.contains(&root), "{:?} not in {:?}", f, k);
                }
                if f.field == "last_modified" && f.op != Op::Has {
                    // Timestamps are numbers below now + 24h.
                    let values = match &f.value {
                        Value::Array(a) => a.clone(),
                        v => vec![v.clone()],
                    };
                    for v in values {
                        prop_assert!(
                            v.as_u64().is_some_and(|t| t < now + 24 * 3600 * 1000),
                            "{:?}",
                            f
                        );
                    }
                }
                if f.op == Op::Like {
                    prop_assert!(f.value.is_string());
                }
                if matches!(f.op, Op::In | Op::Exclude | Op::Contains | Op::ContainsAny) {
                    prop_assert!(f.value.is_array());
                }
            }
            prop_assert_eq!(
                p.has_timestamp_filter,
                p.filters.iter().any(|f| f.field == "last_modified")
            );
            if p.deprecated_to {
                prop_assert!(pairs.iter().any(|(k, _)| k == "_to"));
            }
            if p.token.is_none() {
                prop_assert_eq!(p.token_offset, 0);
            }
            // No key twice, no NUL anywhere.
            let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            keys.sort_unstable();
            prop_assert!(keys.windows(2).all(|w| w[0] != w[1]));
            prop_assert!(pairs
                .iter()
                .all(|(k, v)| !k.contains('\0') && !v.contains('\0')));
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn fuzz_list_query_never_panics_and_keeps_its_invariants(
        pairs in pairs(),
        known in known(),
        now in prop_oneof![4 => Just(NOW), 1 => 0..=4_102_444_800_000u64],
    ) {
        check(&pairs, now, known.as_deref())?;
    }

    #[test]
    fn fuzz_list_query_on_raw_querystrings(raw in prop_oneof![
        2 => "([a-z_]{0,12}=[a-z0-9,.%\"\\-]{0,12}&){0,6}",
        1 => any::<String>(),
    ]) {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        check(&pairs, NOW, None)?;
    }

    #[test]
    fn fuzz_our_tokens_read_back(
        last in proptest::collection::vec((word(), json()), 0..4),
        offset in any::<u64>(),
    ) {
        let mut last: Map<String, Value> = last.into_iter().collect();
        // Kinto's rule: a token always has a valid `last_modified`.
        last.insert("last_modified".into(), Value::from(NOW));
        let pairs = vec![("_token".to_owned(), encode_token(&last, offset))];
        let p = parse_list_query(&pairs, NOW, None);
        prop_assert!(p.is_ok(), "{:?}", p);
        // What serde_json reads back from its own print: without its
        // `float_roundtrip` feature a float may come back one ULP off
        // (2.9597546029680292e-263 reads as 2.959754602968029e-263), which
        // is serde_json's doing, not the token's.
        let reread: Option<Map<String, Value>> =
            serde_json::from_str(&Value::Object(last).to_string()).ok();
        if let Ok(p) = p {
            prop_assert_eq!(p.token, reread);
            prop_assert_eq!(p.token_offset, offset);
        }
    }

    #[test]
    fn fuzz_fields_never_fail(pairs in pairs()) {
        let fields = parse_fields(&pairs);
        prop_assert!(fields.is_ok());
        if let Ok(Some(fields)) = fields {
            prop_assert!(fields.iter().all(|f| !f.is_empty() && f.trim() == f));
        }
    }
}
