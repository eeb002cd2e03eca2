//! Property tests: the linear matcher, the allocation-free lookup and the
//! prepared-key sort against simple reference implementations, and no panic
//! on arbitrary input. The case count follows `PROPTEST_CASES`.

use super::*;
use proptest::collection::vec;
use proptest::prelude::*;

/// `like` by dynamic programming over characters, O(pattern × text):
/// `matched[j]` says whether the pattern read so far matches `text[..j]`.
fn like_reference(pattern: &str, text: &str) -> bool {
    let pattern = if pattern.contains('*') {
        pattern.to_lowercase()
    } else {
        format!("*{}*", pattern.to_lowercase())
    };
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let mut matched = vec![false; t.len() + 1];
    matched[0] = true;
    for c in pattern.chars() {
        let mut next = vec![false; t.len() + 1];
        if c == '*' {
            let mut any = false;
            for (j, m) in matched.iter().enumerate() {
                any |= *m;
                next[j] = any;
            }
        } else {
            for j in 1..=t.len() {
                next[j] = matched[j - 1] && t[j - 1] == c;
            }
        }
        matched = next;
    }
    matched[t.len()]
}

/// The lookup as it was, with `split` and `join` at every level.
fn lookup_reference<'a>(obj: &'a Value, field: &str) -> Option<&'a Value> {
    let map = obj.as_object()?;
    if let Some(v) = map.get(field) {
        return Some(v);
    }
    let parts: Vec<&str> = field.split('.').collect();
    for i in (1..parts.len()).rev() {
        let root = parts[..i].join(".");
        if let Some(sub) = map.get(&root) {
            return if sub.is_object() {
                lookup_reference(sub, &parts[i..].join("."))
            } else {
                None
            };
        }
    }
    None
}

/// Keys that make lookups interesting: dotted, empty, repeated.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("a.b".to_owned()),
        Just("b.a".to_owned()),
        Just("a.b.a".to_owned()),
        Just("a.".to_owned()),
        Just(".".to_owned()),
        Just(String::new()),
        "[ab.]{0,4}",
    ]
}

/// A field path over the same alphabet as [`key`].
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ab.]{0,9}",
        vec(key(), 1..5).prop_map(|keys| keys.join(".")),
    ]
}

/// Scalars with ties across types (`1` and `1.0`), negative numbers and
/// floats.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..4).prop_map(Value::from),
        (-6i32..7).prop_map(|h| Value::from(f64::from(h) / 2.0)),
        "[aAb]{0,2}".prop_map(Value::from),
    ]
}

fn object_of(inner: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    vec((key(), inner), 0..5).prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
}

/// Any JSON value, objects keyed by [`key`].
fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            object_of(inner),
        ]
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop::sample::select(Op::ALL.to_vec())
}

fn sort_keys() -> impl Strategy<Value = Vec<SortKey>> {
    let fields = prop::sample::select(vec!["x", "y", "a", "a.b", "z"]);
    vec(
        (fields, any::<bool>()).prop_map(|(f, descending)| SortKey {
            field: f.to_owned(),
            descending,
        }),
        0..4,
    )
}

/// Rows with few distinct values, so that ties are common, and fields that
/// are sometimes missing.
fn row() -> impl Strategy<Value = Value> {
    let fields = prop::sample::select(vec!["x", "y", "a", "a.b"]);
    vec((fields, value()), 0..4).prop_map(|pairs| {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    })
}

proptest! {
    #[test]
    fn fuzz_like_agrees_with_the_reference_on_a_small_alphabet(
        pattern in "[abA*]{0,10}",
        text in "[abAB]{0,14}",
    ) {
        prop_assert_eq!(like(&pattern, &text), like_reference(&pattern, &text));
    }

    #[test]
    fn fuzz_like_agrees_with_the_reference_on_any_text(pattern in "\\PC{0,8}", text in "\\PC{0,16}") {
        prop_assert_eq!(like(&pattern, &text), like_reference(&pattern, &text));
    }

    #[test]
    fn fuzz_like_agrees_with_the_reference_on_pieces_of_the_text(
        text in "\\PC{0,16}",
        cuts in vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..4),
    ) {
        // Patterns made of substrings of the text, so that they often match.
        let chars: Vec<char> = text.chars().collect();
        let pattern = cuts
            .iter()
            .map(|(a, b)| {
                let (a, b) = (a.index(chars.len() + 1), b.index(chars.len() + 1));
                chars[a.min(b)..a.max(b)].iter().collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("*");
        prop_assert_eq!(like(&pattern, &text), like_reference(&pattern, &text));
    }

    #[test]
    fn fuzz_lookup_agrees_with_the_reference(obj in object_of(value()), field in field()) {
        prop_assert_eq!(lookup(&obj, &field), lookup_reference(&obj, &field));
    }

    #[test]
    fn fuzz_lookup_agrees_with_the_reference_on_any_field(obj in value(), field in "\\PC{0,12}") {
        prop_assert_eq!(lookup(&obj, &field), lookup_reference(&obj, &field));
    }

    #[test]
    fn fuzz_sort_by_keys_orders_as_sort_by_compare_objects(
        rows in vec(row(), 0..24),
        sort in sort_keys(),
    ) {
        let mut expected: Vec<(Value, usize)> = rows.into_iter().zip(0..).collect();
        let mut actual = expected.clone();
        expected.sort_by(|a, b| compare_objects(&a.0, &b.0, &sort));
        sort_by_keys(&mut actual, &sort, |row| &row.0);
        let order = |rows: &[(Value, usize)]| rows.iter().map(|r| r.1).collect::<Vec<_>>();
        prop_assert_eq!(order(&actual), order(&expected));
    }

    #[test]
    fn fuzz_sort_by_keys_sorts_plain_values(rows in vec(value(), 0..16), sort in sort_keys()) {
        let mut expected = rows.clone();
        let mut actual = rows;
        expected.sort_by(|a, b| compare_objects(a, b, &sort));
        sort_by_keys(&mut actual, &sort, |v| v);
        prop_assert_eq!(actual, expected);
    }

    #[test]
    fn fuzz_matches_never_panics(
        obj in value(),
        filters in vec((field(), op(), value()), 0..4),
    ) {
        let filters: Vec<Filter> = filters
            .into_iter()
            .map(|(field, op, value)| Filter { field, op, value })
            .collect();
        let _ = matches(&obj, &filters);
    }

    #[test]
    fn fuzz_matches_never_panics_on_any_field_or_pattern(
        obj in value(),
        field in "\\PC{0,12}",
        pattern in "\\PC{0,12}",
    ) {
        let _ = matches(&obj, &[Filter { field, op: Op::Like, value: Value::from(pattern) }]);
    }

    #[test]
    fn fuzz_project_never_panics_and_keeps_what_it_finds(
        obj in value(),
        fields in vec(prop_oneof![field(), "\\PC{0,12}"], 0..5),
    ) {
        let projected = project(&obj, &fields);
        prop_assert_eq!(projected.is_object(), obj.is_object());
        if obj.is_object() {
            for name in ["id", "last_modified", "deleted"] {
                prop_assert_eq!(projected.get(name), obj.get(name));
            }
        }
    }
}
