//! Filters read on a row's printed text. A filtered page reads several rows
//! per row it keeps; building each as a JSON map (an allocation and a hash
//! per key, for a row most filters then drop) was most of what it cost. The
//! field a filter names is found in the text by the rule of
//! [`query::lookup`], and only its value is parsed.

use crate::storage::skim;
use kinto_proto::query::{self, Filter, Op};
use serde_json::Value;

/// Whether the row printed as `printed` (the object as Kinto shows it:
/// `data`'s fields, `id`, `last_modified`, and `deleted` on a tombstone)
/// passes every filter, as [`query::matches`] of that object would say.
pub fn matches(printed: &[u8], filters: &[Filter]) -> Result<bool, skim::Broken> {
    let doc = std::str::from_utf8(printed).map_err(|e| e.to_string())?;
    for f in filters {
        let raw = lookup(doc, &f.field)?;
        if let Some(kept) = raw.and_then(|r| on_plain_string(r, f)) {
            if !kept {
                return Ok(false);
            }
            continue;
        }
        let found = match raw {
            Some(raw) => Some(serde_json::from_str::<Value>(raw).map_err(|e| e.to_string())?),
            None => None,
        };
        if !query::matches_found(found.as_ref(), f) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The most common filters (`field=value`, `in_`, `not_`, `exclude_`) on a
/// string stored without escapes, answered on its text: such a string equals
/// a value only if that value is the same string. `None`: parse the value.
fn on_plain_string(raw: &str, f: &Filter) -> Option<bool> {
    let text = raw.strip_prefix('"')?.strip_suffix('"')?;
    if text.contains('\\') {
        return None;
    }
    let equal = |x: &Value| x.as_str() == Some(text);
    let listed = || f.value.as_array().is_some_and(|a| a.iter().any(equal));
    match f.op {
        Op::Eq => Some(equal(&f.value)),
        Op::Not => Some(!equal(&f.value)),
        Op::In => Some(listed()),
        Op::Exclude => Some(!listed()),
        _ => None,
    }
}

/// [`query::lookup`] on the text of an object: the value under the whole
/// dotted `field` as a key, else under the longest key that is `field` cut
/// before one of its dots, looked into again with the rest; `None` once
/// that key's value is not an object, or no key fits.
fn lookup<'a>(doc: &'a str, field: &str) -> Result<Option<&'a str>, skim::Broken> {
    // A field with nothing JSON escapes is printed as it is inside a key.
    let plain = !field.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
    let (mut doc, mut field) = (doc, field);
    loop {
        if !doc.starts_with('{') {
            return Ok(None);
        }
        // The longest key that is a prefix of `field` ending at a dot.
        let mut prefix: Option<(usize, &str)> = None;
        let mut members = skim::members(doc);
        while let Some(member) = members.next() {
            let (key, value) = member?;
            if key == field {
                return Ok(Some(value));
            }
            let cut = key.len();
            let at_dot = field.as_bytes().get(cut) == Some(&b'.') && field.starts_with(&*key);
            if at_dot && prefix.is_none_or(|(len, _)| cut > len) {
                prefix = Some((cut, value));
                // A row's keys are unique: once no longer candidate can
                // follow, the rest of the row (often most of it) is skipped.
                if plain && !longer_key_in(members.rest(), &field[..cut]) {
                    break;
                }
            }
        }
        let Some((cut, value)) = prefix else {
            return Ok(None);
        };
        doc = value;
        field = &field[cut + 1..];
    }
}

/// Whether `text` may hold a key that begins with `cut` and a dot (a longer
/// candidate of [`lookup`], or the whole field): its printed form begins
/// with `"`, `cut`, `.`. A value holding that text gives a false "yes",
/// which only costs the skip.
fn longer_key_in(text: &str, cut: &str) -> bool {
    // A plain walk: the rest of a row is short, and a substring search's
    // set-up would cost more than the walk.
    let c = cut.as_bytes();
    (text.as_bytes().windows(c.len() + 2))
        .any(|w| w[0] == b'"' && w[c.len() + 1] == b'.' && w[1..=c.len()] == *c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The same answer as [`query::matches`] on the built object, for every
    /// operator on fields found whole, through dots, through a dotted key,
    /// missing, stopped by a non-object, and on a tombstone.
    #[test]
    fn a_printed_row_matches_as_the_built_object_does() {
        let rows = [
            json!({"build": {"channel": "beta", "number": 3}, "id": "a", "last_modified": 10}),
            json!({"build": {"channel": "release"}, "build.channel": "nightly", "id": "b", "last_modified": 11}),
            json!({"a": {"b.c": {"d": [1, 2, "x"]}, "b": {"c": 5}}, "tags": ["x", "y"], "id": "c", "last_modified": 12}),
            json!({"a": 1, "a.b": {"c": "deep"}, "s": "caf\u{e9} \"q\" \\", "n": null, "id": "d", "last_modified": 13}),
            json!({"id": "e", "last_modified": 14, "deleted": true}),
            json!({"": {"x": 1}, "f": 1.5, "big": 12345678901234567890u64, "id": "f\"g", "last_modified": 15}),
            // A longer candidate after a shorter one, a value holding a
            // candidate's printed text, a key JSON escapes.
            json!({"a": {"b": {"c": 7}}, "s": "\"a.b\" \"a.", "a.b": {"c": 8}, "id": "g", "last_modified": 16}),
            json!({"a": {"b": 1}, "s": "\"a.b\"", "id": "h", "last_modified": 17}),
            json!({"q\"k": {"x": 1}, "q\"k.x": 2, "id": "i", "last_modified": 18}),
        ];
        let fields = [
            "build.channel",
            "build",
            "build.number",
            "build.channel.x",
            "a.b.c",
            "a.b.c.d",
            "a.b",
            "a.b.x",
            "tags",
            "s",
            "n",
            "id",
            "last_modified",
            "deleted",
            "missing",
            ".x",
            "f",
            "big",
            "a",
            "q\"k.x",
        ];
        let values = [
            json!("beta"),
            json!("nightly"),
            json!(5),
            json!(1),
            json!(null),
            json!("x"),
            json!(["x"]),
            json!(["x", "z"]),
            json!(true),
            json!(false),
            json!("deep"),
            json!("*e*"),
            json!(12),
            json!({"channel": "release"}),
            json!(1.5),
            json!(12345678901234567890u64),
            json!("caf\u{e9} \"q\" \\"),
        ];
        let ops = Op::ALL;
        let mut checked = 0;
        for row in &rows {
            let printed = serde_json::to_vec(row).expect("printed");
            for field in fields {
                assert_eq!(
                    lookup(std::str::from_utf8(&printed).expect("utf8"), field)
                        .expect("read")
                        .map(|raw| serde_json::from_str::<Value>(raw).expect("value")),
                    query::lookup(row, field).cloned(),
                    "{field} in {row}"
                );
                for value in &values {
                    for op in ops {
                        let value = match op {
                            Op::In | Op::Exclude | Op::Contains | Op::ContainsAny
                                if !value.is_array() =>
                            {
                                json!([value])
                            }
                            _ => value.clone(),
                        };
                        let f = [Filter {
                            field: field.into(),
                            op,
                            value,
                        }];
                        assert_eq!(
                            matches(&printed, &f).expect("read"),
                            query::matches(row, &f),
                            "{field} {op:?} {} on {row}",
                            f[0].value
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 20_000);
    }

    #[test]
    fn a_damaged_row_is_an_error_not_a_panic() {
        let f = [Filter {
            field: "a.b".into(),
            op: Op::Eq,
            value: json!(1),
        }];
        for bad in [
            &b"{\"a\":{\"b\":"[..],
            b"{\"a\":{\"b\":1",
            b"\xff",
            b"{\"a\":{\"b\":tru}}",
        ] {
            assert!(
                matches(bad, &f).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
