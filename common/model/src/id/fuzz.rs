//! Property tests for the id rules (`cargo test fuzz_`; `PROPTEST_CASES`
//! sets how many cases run).

use super::*;
use proptest::prelude::*;

/// `^[a-zA-Z0-9][a-zA-Z0-9_-]*$`, spelled out byte by byte.
fn matches_id_rule(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

/// Kinto's account id rule, `^[a-zA-Z0-9][+.@a-zA-Z0-9_-]*$`.
fn matches_account_rule(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'@' | b'+'))
}

/// Strings near the rule: mostly its own alphabet, with the characters
/// that sit next to it (`.`, `@`, `+`, `/`, `~`, space, NUL, non-ASCII
/// letters and digits that `char::is_alphanumeric` would accept).
fn near_id() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        8 => proptest::char::ranges(vec!['a'..='z', 'A'..='Z', '0'..='9'].into()),
        2 => Just('_'),
        2 => Just('-'),
        1 => proptest::sample::select(vec![
            '.', '@', '+', '/', '~', ' ', '\0', '%', '\n', 'é', 'ß', '٣', 'Ａ', '\u{7f}',
        ]),
    ];
    proptest::collection::vec(c, 0..24).prop_map(|v| v.into_iter().collect())
}

/// Valid-alphabet strings whose length sits at the bound.
fn around_the_bound() -> impl Strategy<Value = String> {
    (
        MAX_ID_BYTES - 2..=MAX_ID_BYTES + 2,
        "[a-zA-Z0-9]",
        "[a-zA-Z0-9_-]{0,8}",
    )
        .prop_map(|(len, first, tail)| {
            let mut s = first;
            while s.len() < len {
                s.push_str(if tail.is_empty() { "x" } else { &tail });
            }
            s.truncate(len);
            s
        })
}

fn any_id() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => near_id(),
        2 => any::<String>(),
        1 => "[a-zA-Z0-9][a-zA-Z0-9_-]{0,40}",
        1 => around_the_bound(),
    ]
}

proptest! {
    #[test]
    fn fuzz_valid_id_is_the_rule_and_the_bound(s in any_id()) {
        let expected = matches_id_rule(&s) && s.len() <= MAX_ID_BYTES;
        prop_assert_eq!(valid_id(&s), expected, "{:?}", s);
    }

    #[test]
    fn fuzz_valid_id_for_follows_its_kind(s in any_id(), k in 0..Kind::ALL.len()) {
        let kind = Kind::ALL[k];
        let rule = if kind == Kind::Account {
            matches_account_rule(&s)
        } else {
            matches_id_rule(&s)
        };
        prop_assert_eq!(valid_id_for(kind, &s), rule && s.len() <= MAX_ID_BYTES, "{:?} {:?}", kind, s);
        // Every valid id is a valid account id.
        if valid_id(&s) {
            prop_assert!(valid_id_for(Kind::Account, &s));
        }
    }

    #[test]
    fn fuzz_generated_ids_are_valid(k in 0..Kind::ALL.len()) {
        let kind = Kind::ALL[k];
        prop_assert!(valid_id_for(kind, &generate_id(kind)));
    }

    #[test]
    fn fuzz_one_foreign_character_makes_an_id_invalid(
        id in "[a-zA-Z0-9][a-zA-Z0-9_-]{0,20}",
        at in any::<prop::sample::Index>(),
        // Mapped, not filtered: a filter's rejects would cap long runs.
        c in any::<char>().prop_map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' { '.' } else { c }
        }),
    ) {
        prop_assert!(valid_id(&id));
        let mut chars: Vec<char> = id.chars().collect();
        chars.insert(at.index(chars.len() + 1), c);
        let bad: String = chars.into_iter().collect();
        prop_assert!(!valid_id(&bad), "{:?}", bad);
    }
}
