//! Property tests for the `/batch` body parser (`cargo test fuzz_`;
//! `PROPTEST_CASES` sets how many cases run): bodies shaped like batches
//! with wrong types, unknown methods and keys, odd paths and headers, deep
//! `defaults`, long request lists, and plain garbage.

use super::*;
use kinto_proto::ErrorKind;
use proptest::prelude::*;

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(vec![
            "method", "path", "headers", "body", "requests", "defaults", "data", "If-Match",
            "a", "", "é", "x y", "\0", "content-length",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    crate::http::fuzz_support::json(word().boxed())
}

fn method() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => proptest::sample::select(vec![
            "GET", "HEAD", "DELETE", "TRACE", "POST", "PUT", "PATCH", "get", "pAtCh",
            "OPTIONS", "CONNECT", "FOO", "", "GET ", "G\u{130}T", "ǅ", "\u{212a}",
        ])
        .prop_map(Value::from),
        1 => json(),
    ]
}

fn path() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => proptest::sample::select(vec![
            "/", "/v1", "/v1/", "/buckets", "/v1/buckets/b/collections/c/records",
            "/buckets/b?_limit=1&_sort=-id", "/batch", "/v1/batch", "/x/../batch", "?",
            "/?", "//", "/%00", "/\0", "/é/ß", "/a b", "/a\"b\\c", "/\n", "buckets", "",
            "/buckets/b/collections/c/records/r?a=1?b=2",
        ])
        .prop_map(Value::from),
        2 => "/[a-z0-9/?&=%._~-]{0,30}".prop_map(Value::from),
        1 => any::<String>().prop_map(|s| Value::from(format!("/{s}"))),
        1 => json(),
    ]
}

fn headers() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        4 => proptest::sample::select(vec![
            "If-Match", "If-None-Match", "Authorization", "Content-Type", "content-length",
            "", "a b", "é", "X\0", "\n",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    let value = prop_oneof![
        4 => proptest::sample::select(vec!["\"1\"", "*", "Basic YTpi", "", "a\nb", "\0", "é"])
            .prop_map(Value::from),
        1 => any::<String>().prop_map(Value::from),
        1 => json(),
    ];
    prop_oneof![
        6 => proptest::collection::vec((name, value), 0..4)
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        1 => json(),
    ]
}

/// A sub-request that should pass: a known method, a path, string headers,
/// an object body.
fn good_request() -> impl Strategy<Value = Value> {
    // Kinto's methods, spelled exactly; `""` means GET (`get` is refused).
    let method = proptest::sample::select(vec![
        "GET", "HEAD", "DELETE", "TRACE", "POST", "PUT", "PATCH", "",
    ]);
    let path = prop_oneof![
        3 => proptest::sample::select(vec![
            "/", "/v1", "/v1/", "/buckets", "/v1/buckets/b/collections/c/records",
            "/buckets/b?_limit=1&_sort=-id", "?", "/?", "//", "/%00", "/\0", "/é/ß", "/a b",
            "/a\"b\\c", "/\n", "/\u{7f}\u{1b}", "/buckets/b/collections/c/records/r?a=1?b=2",
        ])
        .prop_map(str::to_owned),
        1 => "/[a-z0-9/?&=%._~-]{0,30}",
        1 => any::<String>().prop_map(|s| format!("/{s}")),
    ];
    let headers = proptest::collection::vec(
        (
            prop_oneof![
                4 => proptest::sample::select(vec![
                    "If-Match", "Authorization", "Content-Type", "content-length", "",
                    "a b", "é", "X\0", "\n",
                ])
                .prop_map(str::to_owned),
                1 => any::<String>(),
            ],
            prop_oneof![
                4 => proptest::sample::select(vec!["\"1\"", "*", "Basic YTpi", "", "a\nb", "\0", "é"])
                    .prop_map(str::to_owned),
                1 => any::<String>(),
            ],
        ),
        0..3,
    );
    let body = prop_oneof![
        2 => proptest::collection::vec((word(), json()), 0..3)
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        1 => Just(Value::Null),
    ];
    (
        proptest::option::of(method),
        path,
        proptest::option::of(headers),
        proptest::option::of(body),
    )
        .prop_map(|(m, p, h, b)| {
            let mut r = Map::new();
            if let Some(m) = m {
                r.insert("method".into(), m.into());
            }
            r.insert("path".into(), p.into());
            if let Some(h) = h {
                let h: Map<String, Value> = h.into_iter().map(|(k, v)| (k, v.into())).collect();
                r.insert("headers".into(), h.into());
            }
            if let Some(b) = b {
                r.insert("body".into(), b);
            }
            Value::Object(r)
        })
}

/// One sub-request: each member present or not, of any type, sometimes an
/// unknown one.
fn odd_request() -> impl Strategy<Value = Value> {
    let shaped = (
        proptest::option::of(method()),
        proptest::option::of(path()),
        proptest::option::of(headers()),
        proptest::option::of(prop_oneof![3 => json(), 1 => Just(Value::Null)]),
        proptest::option::of((word(), json())),
    )
        .prop_map(|(m, p, h, b, extra)| {
            let mut r = Map::new();
            for (k, v) in [("method", m), ("path", p), ("headers", h), ("body", b)] {
                if let Some(v) = v {
                    r.insert(k.into(), v);
                }
            }
            if let Some((k, v)) = extra {
                r.insert(k, v);
            }
            Value::Object(r)
        });
    prop_oneof![8 => shaped, 1 => json()]
}

fn request() -> impl Strategy<Value = Value> {
    prop_oneof![12 => good_request(), 1 => odd_request()]
}

/// `depth` objects nested under `key`, a `leaf` at the bottom.
fn nested(key: &str, depth: usize, leaf: Value) -> Value {
    (0..depth).fold(leaf, |v, _| {
        let mut m = Map::new();
        m.insert(key.to_owned(), v);
        Value::Object(m)
    })
}

/// `defaults`: usually a sub-request, sometimes nested to the parser's limit
/// so that merging recurses as deep as it can.
fn defaults() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => good_request(),
        1 => odd_request(),
        1 => (0..126usize).prop_map(|d| {
            let mut m = Map::new();
            m.insert("headers".into(), nested("a", d, Value::from("x")));
            Value::Object(m)
        }),
        1 => json(),
    ]
}

/// A batch body as bytes: mostly well shaped, sometimes long, nested past
/// serde_json's depth limit, or not JSON at all.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let batch = (
        proptest::option::weighted(0.3, defaults()),
        proptest::option::weighted(
            0.95,
            prop_oneof![
                6 => proptest::collection::vec(request(), 0..8).prop_map(Value::Array),
                1 => (0..3000usize).prop_map(|n| {
                    Value::Array(vec![serde_json::json!({"path": "/buckets"}); n])
                }),
                1 => json(),
            ],
        ),
        proptest::option::weighted(0.1, (word(), json())),
    )
        .prop_map(|(defaults, requests, extra)| {
            let mut b = Map::new();
            if let Some(d) = defaults {
                b.insert("defaults".into(), d);
            }
            if let Some(r) = requests {
                b.insert("requests".into(), r);
            }
            if let Some((k, v)) = extra {
                b.insert(k, v);
            }
            Value::Object(b).to_string().into_bytes()
        });
    prop_oneof![
        12 => batch,
        1 => json().prop_map(|v| v.to_string().into_bytes()),
        1 => (0..300usize, proptest::sample::select(vec!["[", "{\"a\":"])).prop_map(|(d, open)| {
            let close = if open == "[" { "]" } else { "}" };
            format!("{}1{}", open.repeat(d), close.repeat(d)).into_bytes()
        }),
        1 => (0..140usize).prop_map(|d| {
            let r = nested("a", d, Value::from(1));
            format!(r#"{{"defaults":{{"headers":{r}}},"requests":[{{"path":"/","headers":{r}}}]}}"#)
                .into_bytes()
        }),
        1 => proptest::sample::select(vec!["", " \n", "null", "[]", "{", "{}", "\u{feff}{}", "{\"requests\":[]}"])
            .prop_map(|s| s.as_bytes().to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

proptest! {
    #[test]
    fn fuzz_batch_bodies_parse_or_are_400s(
        body in body(),
        max in prop_oneof![4 => 0..30usize, 1 => Just(10_000)],
    ) {
        match parse_batch(&body, max) {
            Err(e) => {
                prop_assert_eq!(e.kind, ErrorKind::InvalidParameters, "{:?}", e);
                prop_assert_eq!(e.kind.spec().http_status, 400);
                prop_assert!(!e.message.as_deref().unwrap_or_default().is_empty());
            }
            Ok(subs) => {
                prop_assert!(subs.len() <= max);
                let mut inherited = Inherited::of(&HeaderMap::new());
                for sub in subs {
                    prop_assert!(sub.path.starts_with("/v1"), "{:?}", sub.path);
                    prop_assert!(!sub.path.contains("/batch") && !sub.path.contains('?'));
                    prop_assert!(METHODS.contains(&sub.method.as_str()), "{}", sub.method);
                    prop_assert!(sub.body.as_ref().is_none_or(Value::is_object));
                    // The path is echoed back in the sub-response as JSON.
                    let printed = sub_response(&sub.path, false, KResponse::empty(200));
                    let echoed: Result<Value, _> = serde_json::from_slice(&printed);
                    prop_assert!(echoed.is_ok(), "{:?}", String::from_utf8_lossy(&printed));
                    let path = sub.path.clone();
                    if let Ok(echoed) = echoed {
                        prop_assert_eq!(echoed.get("path").and_then(Value::as_str), Some(path.as_str()));
                    }
                    // Headers that are not valid HTTP are left out, not fatal.
                    let has_body = sub.body.is_some();
                    let req = request_of(&mut inherited, sub);
                    prop_assert_eq!(req.path, path);
                    if has_body {
                        prop_assert!(req.headers.get("content-type").is_some());
                    }
                }
            }
        }
    }
}
#[test]
fn zz_ratio() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut r = TestRunner::default();
    let (mut ok, mut n, mut subs) = (0, 0, 0);
    for _ in 0..2000 {
        let b = body().new_tree(&mut r).unwrap().current();
        n += 1;
        if let Ok(s) = parse_batch(&b, 30) {
            ok += 1;
            subs += s.len();
        }
    }
    eprintln!("BATCH ok {ok}/{n} subs {subs}");
}
