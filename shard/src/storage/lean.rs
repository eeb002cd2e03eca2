//! A stored object read for a list's page ([`super::Range::lean`]): its
//! metadata decoded, its fields copied as they are stored into the row as
//! Kinto shows it. Building every field as a `serde_json::Value` (a map
//! entry, a hash, an allocation per key) and printing it again was most of
//! what a page of records cost, and a page only prints them.
//!
//! The stored document is JSON written by `serde_json` from a
//! [`StoredObject`], so its values are already in the form printing them
//! again would give: copying them yields the same bytes.

use super::{Acl, StorageError, StorageResult, StoredObject};
use serde::de::{DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Map;
use std::borrow::Cow;
use std::fmt;
use std::io::Write as _;

/// The stored document, fields left unparsed.
#[derive(Deserialize)]
struct Stored<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    last_modified: u64,
    #[serde(default)]
    deleted: bool,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    permissions: Option<&'a RawValue>,
}

/// A JSON object's entries in stored order, each value as stored.
struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

/// A key, borrowed from the document unless it holds escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(8));
                while let Some((Key(k), v)) = m.next_entry::<Key<'a>, &'a RawValue>()? {
                    out.push((k, v));
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The object with only the fields named in `fields` (the rest of `data`
/// left out), without its ACL unless `acl`, and the object as
/// [`StoredObject::print_json`] prints it.
pub fn decode(bytes: &[u8], acl: bool, fields: &[&str]) -> StorageResult<(StoredObject, Vec<u8>)> {
    let corrupt = |e: serde_json::Error| StorageError::Corrupt(e.to_string());
    let mut out = Vec::with_capacity(bytes.len());
    out.push(b'{');
    let mut kept = Map::new();
    let s = if fields.is_empty() {
        // `data` as one raw value: copied whole unless it must be cut.
        let s: Stored<'_> = serde_json::from_slice(bytes).map_err(corrupt)?;
        if let (false, Some(data)) = (s.deleted, s.data) {
            print_fields(&mut out, data.get())?;
        }
        s
    } else {
        // Fields to keep: `data` read entry by entry, in the same pass.
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let s = OnePass {
            out: &mut out,
            fields,
            kept: &mut kept,
        }
        .deserialize(&mut de)
        .map_err(corrupt)?;
        de.end().map_err(corrupt)?;
        s
    };
    let permissions = match s.permissions {
        Some(raw) if acl => serde_json::from_str(raw.get()).map_err(corrupt)?,
        _ => Acl::default(),
    };
    out.extend_from_slice(b"\"id\":");
    print_str(&mut out, &s.id);
    // Writing into a `Vec` cannot fail.
    let _ = write!(out, ",\"last_modified\":{}", s.last_modified);
    if s.deleted {
        out.extend_from_slice(b",\"deleted\":true");
    }
    out.push(b'}');
    let object = StoredObject {
        id: s.id.into_owned(),
        last_modified: s.last_modified,
        deleted: s.deleted,
        data: kept,
        permissions,
    };
    Ok((object, out))
}

/// The stored document read in one pass when fields are kept: each entry
/// of `data` printed into `out` (followed by a comma) as it is read, those
/// named in `fields` built into `kept`. Reading `data` as one raw value
/// first, then its entries, would scan it twice.
struct OnePass<'x> {
    out: &'x mut Vec<u8>,
    fields: &'x [&'x str],
    kept: &'x mut Map<String, serde_json::Value>,
}

impl<'de, 'x> DeserializeSeed<'de> for OnePass<'x> {
    type Value = Stored<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, 'x> Visitor<'de> for OnePass<'x> {
    type Value = Stored<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a stored object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let (mut id, mut last_modified, mut deleted, mut permissions) = (None, None, false, None);
        let start = self.out.len();
        while let Some(Key(k)) = m.next_key::<Key<'de>>()? {
            match k.as_ref() {
                "id" => id = Some(m.next_value::<Key<'de>>()?.0),
                "last_modified" => last_modified = Some(m.next_value::<u64>()?),
                "deleted" => deleted = m.next_value()?,
                "data" => m.next_value_seed(Entries {
                    out: &mut *self.out,
                    fields: self.fields,
                    kept: &mut *self.kept,
                })?,
                "permissions" => permissions = m.next_value::<Option<&'de RawValue>>()?,
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        if deleted {
            // A tombstone shows no fields (never stored with any).
            self.out.truncate(start);
            self.kept.clear();
        }
        Ok(Stored {
            id: id.ok_or_else(|| A::Error::missing_field("id"))?,
            last_modified: last_modified.ok_or_else(|| A::Error::missing_field("last_modified"))?,
            deleted,
            data: None,
            permissions,
        })
    }
}

/// `data`'s entries, for [`OnePass`].
struct Entries<'x> {
    out: &'x mut Vec<u8>,
    fields: &'x [&'x str],
    kept: &'x mut Map<String, serde_json::Value>,
}

impl<'de, 'x> DeserializeSeed<'de> for Entries<'x> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, 'x> Visitor<'de> for Entries<'x> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        while let Some(Key(k)) = m.next_key::<Key<'de>>()? {
            let v = m.next_value::<&'de RawValue>()?;
            print_entry(self.out, &k, v);
            if self.fields.contains(&k.as_ref()) && !is_meta(&k) {
                let value = serde_json::from_str(v.get()).map_err(A::Error::custom)?;
                self.kept.insert(k.into_owned(), value);
            }
        }
        Ok(())
    }
}

/// `id` and `last_modified` are never stored in `data` (and would print as
/// duplicates), as [`StoredObject::print_json`] has it.
fn is_meta(key: &str) -> bool {
    key == "id" || key == "last_modified"
}

/// Prints one entry of `data` and a comma, unless it is a metadata key.
fn print_entry(out: &mut Vec<u8>, key: &str, value: &RawValue) {
    if !is_meta(key) {
        print_str(out, key);
        out.push(b':');
        out.extend_from_slice(value.get().as_bytes());
        out.push(b',');
    }
}

/// Prints the entries of the stored object `data`, each followed by a
/// comma.
fn print_fields(out: &mut Vec<u8>, data: &str) -> StorageResult<()> {
    let corrupt = |e: String| StorageError::Corrupt(e);
    let inner = (data.strip_prefix('{').and_then(|d| d.strip_suffix('}')))
        .ok_or_else(|| corrupt(format!("data is not an object: {data:.40}")))?;
    // Stored compact by `serde_json`, so a key `id` reads `"id"`: without
    // either name anywhere, the entries are copied whole.
    if !data.contains("\"id\"") && !data.contains("\"last_modified\"") {
        if !inner.is_empty() {
            out.extend_from_slice(inner.as_bytes());
            out.push(b',');
        }
        return Ok(());
    }
    let all: Fields<'_> = serde_json::from_str(data).map_err(|e| corrupt(e.to_string()))?;
    for (k, v) in all.0 {
        print_entry(out, &k, v);
    }
    Ok(())
}

fn print_str(out: &mut Vec<u8>, s: &str) {
    // Serialising a `str` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(id: &str, deleted: bool, data: serde_json::Value, acl: serde_json::Value) -> Vec<u8> {
        let o = StoredObject {
            id: id.into(),
            last_modified: 1_700_000_000_123,
            deleted,
            data: data.as_object().cloned().unwrap_or_default(),
            permissions: serde_json::from_value(acl).expect("acl"),
        };
        serde_json::to_vec(&o).expect("stored")
    }

    /// A lean row prints exactly what the whole object prints, keeps its
    /// metadata, its ACL when asked and the fields asked (as built whole),
    /// and leaves the other fields out.
    #[test]
    fn a_lean_row_prints_what_the_whole_object_prints() {
        let cases = [
            stored("a", false, json!({}), json!({})),
            stored(
                "b-\u{e9}\"\\\n\u{1}",
                false,
                json!({
                    "title": "caf\u{e9} \"quoted\" \\ \n \t \u{1f600} \u{7}",
                    "k\"ey\n": [1, -2, 3.5, 1e300, 12345678901234567890u64, null, true],
                    "nested": {"deep": {"x": [{"y": "z"}], "e": {}}, "n": -0.0},
                    "id": "never-stored-here",
                    "last_modified": 1,
                    "\u{e9}t\u{e9}": "",
                }),
                json!({"write": ["basicauth:abc", "system.Everyone"], "read": ["x"]}),
            ),
            stored("tomb", true, json!({}), json!({})),
            stored(
                "c",
                false,
                json!({"label": "id", "n": {"id": 1, "last_modified": 2}}),
                json!({}),
            ),
            stored(
                "d",
                false,
                json!({"plain": [1, {"x": "y"}], "s": "t"}),
                json!({"read": ["a"]}),
            ),
        ];
        for bytes in cases {
            let whole: StoredObject = serde_json::from_slice(&bytes).expect("whole");
            let asked: [&[&str]; 3] = [
                &[],
                &["title", "nested", "absent"],
                &["k\"ey\n", "plain", "label"],
            ];
            for (acl, fields) in [true, false]
                .into_iter()
                .flat_map(|a| asked.map(|f| (a, f)))
            {
                let (lean, printed) = decode(&bytes, acl, fields).expect("lean");
                assert_eq!(
                    String::from_utf8(printed).expect("utf8"),
                    String::from_utf8(whole.print_json()).expect("utf8")
                );
                assert_eq!(
                    (&lean.id, lean.last_modified, lean.deleted),
                    (&whole.id, whole.last_modified, whole.deleted)
                );
                let expected = if acl {
                    whole.permissions.clone()
                } else {
                    Acl::default()
                };
                assert_eq!(lean.permissions, expected);
                let mut kept = whole.data.clone();
                kept.retain(|k, _| fields.contains(&k.as_str()));
                assert_eq!(lean.data, kept);
            }
        }
    }

    #[test]
    fn a_damaged_document_is_corrupt_not_a_panic() {
        for bad in [
            &b"{\"id\":"[..],
            b"[]",
            b"{\"id\":\"a\",\"last_modified\":1,\"data\":[1]}",
        ] {
            assert!(matches!(
                decode(bad, true, &["x"]),
                Err(StorageError::Corrupt(_))
            ));
        }
    }
}
