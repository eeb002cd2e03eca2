//! The value of a `newest` entry: the object as Kinto prints it, so a page
//! in `last_modified` order (Kinto's default, every sync's) copies each row
//! as it is stored. Reading the stored JSON to print it again (finding
//! `data` among the members, walking it to its end) was most of what such
//! a page cost, although a page only prints.
//!
//! Layout: one byte, [`LIVE`] or [`TOMBSTONE`]; the length of the printed
//! row (be32); the printed row ([`StoredObject::print_json`]); then the
//! ACL as JSON, absent when empty. The entry's key holds the id and the
//! timestamp. Entries written by earlier versions hold the object's stored
//! JSON, which begins with `{`: both are read ([`is_printed`]).

use super::{decode, StorageError, StorageResult};
use crate::storage::{lean, skim};
use crate::storage::{Acl, Range, StoredObject};
use serde_json::{Map, Value};

const LIVE: u8 = 1;
const TOMBSTONE: u8 = 2;
/// Flag byte and length.
const HEADER: usize = 5;

/// The entry of `object` in the `newest` index.
pub(super) fn encode(object: &StoredObject) -> StorageResult<Vec<u8>> {
    let mut out = Vec::with_capacity(HEADER + 128);
    out.push(if object.deleted { TOMBSTONE } else { LIVE });
    out.extend_from_slice(&[0; 4]);
    object.print_into(&mut out);
    let len = u32::try_from(out.len() - HEADER)
        .map_err(|_| StorageError::Corrupt("an object of 4 GiB or more".into()))?;
    out[1..HEADER].copy_from_slice(&len.to_be_bytes());
    if !object.permissions.is_empty() {
        serde_json::to_writer(&mut out, &object.permissions)
            .map_err(|e| StorageError::Corrupt(e.to_string()))?;
    }
    Ok(out)
}

/// Whether `value` has this module's layout (not an earlier version's
/// stored JSON).
pub(super) fn is_printed(value: &[u8]) -> bool {
    matches!(value.first(), Some(&LIVE | &TOMBSTONE))
}

/// The parts of an entry in this layout.
struct Parts<'a> {
    deleted: bool,
    printed: &'a [u8],
    acl: &'a [u8],
}

fn parts(value: &[u8]) -> StorageResult<Parts<'_>> {
    let corrupt = |why: &str| StorageError::Corrupt(format!("index entry: {why}"));
    let (head, rest) = value
        .split_at_checked(HEADER)
        .ok_or_else(|| corrupt("too short"))?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let (printed, acl) = rest
        .split_at_checked(len)
        .ok_or_else(|| corrupt("shorter than its row"))?;
    Ok(Parts {
        deleted: head[0] == TOMBSTONE,
        printed,
        acl,
    })
}

/// Whether entry `value` is a tombstone, and its printed row; `None` for an
/// entry of an earlier version (stored JSON, not printed).
pub(super) fn printed(value: &[u8]) -> StorageResult<Option<(bool, &[u8])>> {
    if !is_printed(value) {
        return Ok(None);
    }
    let p = parts(value)?;
    Ok(Some((p.deleted, p.printed)))
}

fn acl_of(raw: &[u8]) -> StorageResult<Acl> {
    if raw.is_empty() {
        return Ok(Acl::default());
    }
    serde_json::from_slice(raw).map_err(|e| StorageError::Corrupt(e.to_string()))
}

/// The object of entry `value`, whose key gave `id` and `last_modified`.
pub(super) fn object(value: &[u8], last_modified: u64, id: String) -> StorageResult<StoredObject> {
    if !is_printed(value) {
        return decode(value);
    }
    let p = parts(value)?;
    let mut data: Map<String, Value> = match p.deleted {
        true => Map::new(),
        false => {
            serde_json::from_slice(p.printed).map_err(|e| StorageError::Corrupt(e.to_string()))?
        }
    };
    // Added by printing; `data` never holds them.
    data.retain(|key, _| !lean::is_meta(key));
    Ok(StoredObject {
        id,
        last_modified,
        deleted: p.deleted,
        data,
        permissions: acl_of(p.acl)?,
    })
}

/// The row of entry `value` for a walk over `range`, with its printed form
/// when the walk is lean (as [`crate::storage::lean::decode`] gives it).
pub(super) fn row(
    value: &[u8],
    last_modified: u64,
    id: String,
    range: &Range<'_>,
) -> StorageResult<(StoredObject, Option<Vec<u8>>)> {
    if !range.lean {
        return Ok((object(value, last_modified, id)?, None));
    }
    if !is_printed(value) {
        return super::decode_row(value, range);
    }
    let p = parts(value)?;
    let mut kept = Map::new();
    if !p.deleted && !range.fields.is_empty() {
        let corrupt = |e: String| StorageError::Corrupt(e);
        let printed = std::str::from_utf8(p.printed).map_err(|e| corrupt(e.to_string()))?;
        for member in skim::members(printed) {
            let (key, value) = member.map_err(corrupt)?;
            if range.fields.contains(&key.as_ref()) && !lean::is_meta(&key) {
                let value = serde_json::from_str(value).map_err(|e| corrupt(e.to_string()))?;
                kept.insert(key.into_owned(), value);
            }
        }
    }
    let permissions = if range.acl {
        acl_of(p.acl)?
    } else {
        Acl::default()
    };
    let object = StoredObject {
        id,
        last_modified,
        deleted: p.deleted,
        data: kept,
        permissions,
    };
    Ok((object, Some(p.printed.to_vec())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::lean::tests::{objects, ASKED};
    use crate::storage::Order;

    fn range<'a>(acl: bool, fields: &'a [&'a str]) -> Range<'a> {
        Range {
            parent: "/buckets/b/collections/c",
            resource: "record",
            order: Order::ModifiedDesc,
            from: None,
            stop: None,
            limit: 10,
            tombstones: true,
            lean: true,
            acl,
            fields,
        }
    }

    fn object_of(entry: &[u8], like: &StoredObject) -> StoredObject {
        object(entry, like.last_modified, like.id.clone()).expect("object")
    }

    /// An entry gives back the object it was written from (`data` never
    /// holds `id` or `last_modified`), and a lean row what the stored JSON's
    /// lean reading gives: the same printed bytes, metadata, ACL when asked
    /// and fields asked.
    #[test]
    fn an_entry_reads_as_the_stored_object_does() {
        for mut object in objects() {
            object.data.remove("id");
            object.data.remove("last_modified");
            let entry = encode(&object).expect("encode");
            assert!(is_printed(&entry));
            assert_eq!(object_of(&entry, &object), object);
            let json = serde_json::to_vec(&object).expect("json");
            assert!(!is_printed(&json), "a stored JSON is told apart");
            assert_eq!(object_of(&json, &object), object);
            for (acl, fields) in [true, false]
                .into_iter()
                .flat_map(|a| ASKED.map(|f| (a, f)))
            {
                let r = range(acl, fields);
                let new = row(&entry, object.last_modified, object.id.clone(), &r).expect("row");
                let old = super::super::decode_row(&json, &r).expect("legacy row");
                assert_eq!(new, old, "{object:?} acl {acl} fields {fields:?}");
            }
        }
    }

    /// A damaged entry is an error, never a panic.
    #[test]
    fn a_damaged_entry_is_an_error() {
        let entry = encode(&objects()[1]).expect("encode");
        for cut in [1, 3, HEADER, HEADER + 10, entry.len() - 3] {
            let short = &entry[..cut];
            let _ = object(short, 1, "x".into());
            let r = range(true, &["title"]);
            let _ = row(short, 1, "x".into(), &r);
        }
        let mut bad = entry.clone();
        bad[1..HEADER].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(object(&bad, 1, "x".into()).is_err());
        assert!(row(&bad, 1, "x".into(), &range(false, &[])).is_err());
    }
}
