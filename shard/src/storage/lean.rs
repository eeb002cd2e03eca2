//! A stored object read for a list's page ([`super::Range::lean`]): its
//! metadata decoded, its fields copied as they are stored into the row as
//! Kinto shows it. Building every field as a `serde_json::Value` (a map
//! entry, a hash, an allocation per key) and printing it again was most of
//! what a page of records cost, and a page only prints them.
//!
//! The stored document is JSON written by `serde_json` from a
//! [`StoredObject`], so its values are already in the form printing them
//! again would give: copying them yields the same bytes.

use super::skim::{self, Broken};
use super::{Acl, StorageError, StorageResult, StoredObject};
use serde_json::Map;

/// The object with only the fields named in `fields` (the rest of `data`
/// left out), without its ACL unless `acl`, and the object as
/// [`StoredObject::print_json`] prints it.
pub fn decode(bytes: &[u8], acl: bool, fields: &[&str]) -> StorageResult<(StoredObject, Vec<u8>)> {
    let corrupt = |e: Broken| StorageError::Corrupt(e);
    let doc = std::str::from_utf8(bytes).map_err(|e| corrupt(e.to_string()))?;
    let (mut id, mut last_modified, mut deleted) = (None, None, false);
    let (mut data, mut permissions) = (None, None);
    for member in skim::members(doc) {
        let (key, value) = member.map_err(corrupt)?;
        match key.as_ref() {
            "id" => id = Some(value),
            "last_modified" => last_modified = Some(value),
            "deleted" => deleted = value == "true",
            "data" => data = Some(value),
            "permissions" => permissions = Some(value),
            _ => {}
        }
        // `serde_json` prints a `StoredObject`'s members in their declared
        // order, the ACL last: a page that does not read it stops before it.
        if !acl && data.is_some() && id.is_some() && last_modified.is_some() {
            break;
        }
    }
    let missing = |name: &str| corrupt(format!("no `{name}`: {doc:.60}"));
    let raw_id = id.ok_or_else(|| missing("id"))?;
    let raw_modified = last_modified.ok_or_else(|| missing("last_modified"))?;
    let last_modified: u64 =
        (raw_modified.parse()).map_err(|e| corrupt(format!("last_modified: {e}")))?;
    let mut out = Vec::with_capacity(bytes.len() + 16);
    out.push(b'{');
    let mut kept = Map::new();
    // A tombstone shows no fields (never stored with any).
    if let (false, Some(data)) = (deleted, data) {
        if fields.is_empty() {
            print_fields(&mut out, data)?;
        } else {
            for member in skim::members(data) {
                let (key, value) = member.map_err(corrupt)?;
                print_entry(&mut out, &key, value);
                if fields.contains(&key.as_ref()) && !is_meta(&key) {
                    let value = serde_json::from_str(value).map_err(|e| corrupt(e.to_string()))?;
                    kept.insert(key.into_owned(), value);
                }
            }
        }
    }
    let permissions = match permissions {
        Some(raw) if acl => serde_json::from_str(raw).map_err(|e| corrupt(e.to_string()))?,
        _ => Acl::default(),
    };
    // The id and the timestamp as stored are what `serde_json` prints for
    // them: copied.
    out.extend_from_slice(b"\"id\":");
    out.extend_from_slice(raw_id.as_bytes());
    out.extend_from_slice(b",\"last_modified\":");
    out.extend_from_slice(raw_modified.as_bytes());
    if deleted {
        out.extend_from_slice(b",\"deleted\":true");
    }
    out.push(b'}');
    let object = StoredObject {
        id: skim::unquote(raw_id).map_err(corrupt)?.into_owned(),
        last_modified,
        deleted,
        data: kept,
        permissions,
    };
    Ok((object, out))
}

/// `id` and `last_modified` are never stored in `data` (and would print as
/// duplicates), as [`StoredObject::print_json`] has it.
pub(crate) fn is_meta(key: &str) -> bool {
    key == "id" || key == "last_modified"
}

/// Prints one entry of `data` and a comma, unless it is a metadata key.
fn print_entry(out: &mut Vec<u8>, key: &str, value: &str) {
    if !is_meta(key) {
        print_str(out, key);
        out.push(b':');
        out.extend_from_slice(value.as_bytes());
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
    for member in skim::members(data) {
        let (key, value) = member.map_err(corrupt)?;
        print_entry(out, &key, value);
    }
    Ok(())
}

fn print_str(out: &mut Vec<u8>, s: &str) {
    // Serialising a `str` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    fn stored(
        id: &str,
        deleted: bool,
        data: serde_json::Value,
        acl: serde_json::Value,
    ) -> StoredObject {
        StoredObject {
            id: id.into(),
            last_modified: 1_700_000_000_123,
            deleted,
            data: data.as_object().cloned().unwrap_or_default(),
            permissions: serde_json::from_value(acl).expect("acl"),
        }
    }

    /// Objects a row read without building them must print as the whole
    /// object prints: escapes, numbers, metadata names inside `data` and
    /// nested, `deleted` as a field, tombstones (one with an ACL).
    pub(crate) fn objects() -> Vec<StoredObject> {
        vec![
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
            stored("tomb-acl", true, json!({}), json!({"write": ["a"]})),
            stored(
                "c",
                false,
                json!({"label": "id", "n": {"id": 1, "last_modified": 2}}),
                json!({}),
            ),
            stored(
                "d",
                false,
                json!({"plain": [1, {"x": "y"}], "s": "t", "deleted": false}),
                json!({"read": ["a"]}),
            ),
        ]
    }

    /// The `data` keys a caller asks each row for, in turn.
    pub(crate) const ASKED: [&[&str]; 3] = [
        &[],
        &["title", "nested", "absent"],
        &["k\"ey\n", "plain", "label", "deleted"],
    ];

    /// A lean row prints exactly what the whole object prints, keeps its
    /// metadata, its ACL when asked and the fields asked (as built whole),
    /// and leaves the other fields out.
    #[test]
    fn a_lean_row_prints_what_the_whole_object_prints() {
        for bytes in objects()
            .iter()
            .map(|o| serde_json::to_vec(o).expect("stored"))
        {
            let whole: StoredObject = serde_json::from_slice(&bytes).expect("whole");
            for (acl, fields) in [true, false]
                .into_iter()
                .flat_map(|a| ASKED.map(|f| (a, f)))
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
