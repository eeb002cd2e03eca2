//! Kinto's quotas plugin (`kinto.plugins.quotas`, Kinto ≤ 19.x; storage.sync
//! and Test Pilot ran with it): bytes and objects per bucket and per
//! collection, bytes per object, 507 errno 121 beyond.
//!
//! Kinto kept the counters in a listener that was only right on a
//! transactional backend. Here they are read and rewritten inside the
//! operation's own commit, under the bucket's lock: the single writer makes
//! the read-modify-write exact on every backend, and the counters change in
//! the same atomic batch as the objects they count.
//!
//! Counters are internal objects, never served: `bucket_info` in list
//! `(/buckets/{bid}, quota)` = `{collection_count, record_count,
//! storage_size}`, `collection_info` in `(/buckets/{bid}/collections/{cid},
//! quota)` = `{record_count, storage_size}`. A cascade removes them with
//! their container.

use super::Shard;
use crate::storage::{StoredObject, Write};
use kinto_proto::{ErrorKind, KintoError};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The `quotas.*` settings, as given (flat keys, `.` read as `_`).
#[derive(Debug, Clone, Default)]
pub struct QuotaSettings {
    limits: BTreeMap<String, u64>,
}

impl QuotaSettings {
    /// `Some` when `kinto.plugins.quotas` is included. A limit that is not
    /// a whole number is an error naming it: ignoring it would lift the quota.
    pub fn from_raw(
        raw: &kinto_runtime::settings::RawSettings,
        enabled: bool,
    ) -> Result<Option<Self>, String> {
        if !enabled {
            return Ok(None);
        }
        // Flat keys (`quotas.x` quoted in TOML, `KINTO_QUOTAS_X`), or a TOML
        // table `[quotas]` / dotted key `quotas.x = …`.
        let mut flat: Vec<(String, &Value)> = Vec::new();
        for (k, v) in &raw.0 {
            match (k.as_str(), v) {
                ("quotas", Value::Object(table)) => {
                    flat.extend(table.iter().map(|(k, v)| (format!("quotas_{k}"), v)));
                }
                _ => flat.push((k.replace('.', "_"), v)),
            }
        }
        let mut limits = BTreeMap::new();
        for (key, v) in flat {
            let key = key.strip_prefix("kinto_").unwrap_or(&key).to_owned();
            if !key.starts_with("quotas_") {
                continue;
            }
            let n = v
                .as_u64()
                .or_else(|| v.as_str()?.trim().parse().ok())
                .ok_or_else(|| format!("{key}: not a whole number of bytes or objects: {v}"))?;
            limits.insert(key, n);
        }
        Ok(Some(QuotaSettings { limits }))
    }

    fn get(&self, keys: &[String]) -> Option<u64> {
        keys.iter().find_map(|k| {
            self.limits
                .get(k)
                .or_else(|| self.limits.get(&k.to_ascii_lowercase()))
                .copied()
        })
    }

    /// Most specific first: `quotas.bucket_{bid}_{name}`, `quotas.bucket_{name}`.
    fn bucket(&self, bid: &str, name: &str) -> Option<u64> {
        self.get(&[
            format!("quotas_bucket_{bid}_{name}"),
            format!("quotas_bucket_{name}"),
        ])
    }

    /// `quotas.collection_{bid}_{cid}_{name}`, `…_{bid}_{name}`, `…_{name}`.
    fn collection(&self, bid: &str, cid: &str, name: &str) -> Option<u64> {
        self.get(&[
            format!("quotas_collection_{bid}_{cid}_{name}"),
            format!("quotas_collection_{bid}_{name}"),
            format!("quotas_collection_{name}"),
        ])
    }
}

/// Kinto's measure of an object: its compact JSON with sorted keys and
/// ASCII escapes (Python's `json.dumps(sort_keys=True, separators=(",",":"))`),
/// `id` and `last_modified` included, ACL excluded; 0 for a tombstone.
pub fn size_of(object: &StoredObject) -> i64 {
    if object.deleted {
        return 0;
    }
    let mut m = object.data.clone();
    m.insert("id".into(), Value::String(object.id.clone()));
    m.insert("last_modified".into(), Value::from(object.last_modified));
    json_len(&Value::Object(m)) as i64
}

fn json_len(v: &Value) -> usize {
    match v {
        Value::Object(m) => {
            2 + m.len().saturating_sub(1)
                + m.iter()
                    .map(|(k, v)| str_len(k) + 1 + json_len(v))
                    .sum::<usize>()
        }
        Value::Array(a) => 2 + a.len().saturating_sub(1) + a.iter().map(json_len).sum::<usize>(),
        Value::String(s) => str_len(s),
        other => other.to_string().len(),
    }
}

/// Length of a JSON string literal with non-ASCII as `\uXXXX` (surrogate
/// pairs beyond the BMP), as Python writes it.
fn str_len(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c if c.is_ascii() => 1,
            c if (c as u32) > 0xFFFF => 12,
            _ => 6,
        })
        .sum::<usize>()
}

/// Counter changes of one commit.
#[derive(Default, Clone, Copy)]
struct Delta {
    bytes: i64,
    records: i64,
    collections: i64,
}

fn exceeded(message: String) -> KintoError {
    if let Some(c) = crate::metrics::QUOTA_REJECTIONS.as_ref() {
        c.inc();
    }
    KintoError::new(ErrorKind::InsufficientStorage).with_message(message)
}

fn counter(o: Option<&StoredObject>, field: &str) -> i64 {
    o.filter(|o| !o.deleted)
        .and_then(|o| o.data.get(field))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// `(bucket, collection)` of an object in a list, for the kinds quotas count.
fn locate(parent: &str, resource: &str, id: &str) -> Option<(String, Option<String>)> {
    let rest = parent.strip_prefix("/buckets/");
    match (resource, rest) {
        ("bucket", None) if parent.is_empty() => Some((id.to_owned(), None)),
        ("group", Some(b)) | ("collection", Some(b)) if !b.contains('/') => {
            let cid = (resource == "collection").then(|| id.to_owned());
            Some((b.to_owned(), cid))
        }
        ("record", Some(r)) => {
            let (b, c) = r.split_once("/collections/")?;
            Some((b.to_owned(), Some(c.to_owned())))
        }
        _ => None,
    }
}

impl Shard {
    /// Checks the quotas a commit would break and adds its counter updates.
    pub(super) async fn apply_quotas(&self, writes: &mut Vec<Write>) -> Result<(), KintoError> {
        let Some(q) = self.settings().features.quotas.as_ref() else {
            return Ok(());
        };
        // Containers this commit removes: their counters go with them.
        let mut purged_buckets = Vec::new();
        let mut purged_collections = Vec::new();
        for w in writes.iter() {
            if let Write::PurgeTree { parent } = w {
                match locate_container(parent) {
                    Some((b, None)) => purged_buckets.push(b),
                    Some((b, Some(c))) => purged_collections.push((b, c)),
                    None => {}
                }
            }
        }
        let mut buckets: BTreeMap<String, Delta> = BTreeMap::new();
        let mut collections: BTreeMap<(String, String), Delta> = BTreeMap::new();
        let mut stamp = 0;
        for w in writes.iter() {
            let Write::Put {
                parent,
                resource,
                object,
                previous_last_modified,
            } = w
            else {
                continue;
            };
            let Some((bid, cid)) = locate(parent, resource, &object.id) else {
                continue;
            };
            if purged_buckets.contains(&bid) {
                continue;
            }
            stamp = stamp.max(object.last_modified);
            // The replaced version is read again here rather than threaded
            // through every write path: one place knows how quotas count,
            // for one extra read per write, and only with quotas on.
            let old = match previous_last_modified {
                Some(_) => self.storage.get(parent, resource, &object.id).await?,
                None => None,
            };
            let (old_size, new_size) = (old.as_ref().map_or(0, size_of), size_of(object));
            let alive = |o: Option<&StoredObject>| i64::from(o.is_some_and(|o| !o.deleted));
            let born = alive(Some(object)) - alive(old.as_ref());
            if !object.deleted && *resource != "bucket" {
                let limit = match &cid {
                    Some(c) => q.collection(&bid, c, "max_bytes_per_item"),
                    None => None,
                }
                .or_else(|| q.bucket(&bid, "max_bytes_per_item"));
                if let Some(max) = limit.filter(|m| new_size > *m as i64) {
                    return Err(exceeded(format!(
                        "Maximum bytes per object exceeded ({new_size} > {max} Bytes."
                    )));
                }
            }
            let b = buckets.entry(bid.clone()).or_default();
            match (*resource, cid) {
                ("record", Some(c)) => {
                    b.bytes += new_size - old_size;
                    b.records += born;
                    let d = collections.entry((bid, c)).or_default();
                    d.bytes += new_size - old_size;
                    d.records += born;
                }
                ("collection", Some(c)) => {
                    b.collections += born;
                    if purged_collections.contains(&(bid.clone(), c.clone())) {
                        // Its whole `storage_size` (attributes + records) goes below.
                        continue;
                    }
                    b.bytes += new_size - old_size;
                    collections.entry((bid, c)).or_default().bytes += new_size - old_size;
                }
                _ => b.bytes += new_size - old_size,
            }
        }
        for (bid, cid) in &purged_collections {
            if purged_buckets.contains(bid) {
                continue;
            }
            let info = self
                .storage
                .get(
                    &super::resource::collection_uri(bid, cid),
                    "quota",
                    "collection_info",
                )
                .await?;
            let b = buckets.entry(bid.clone()).or_default();
            b.bytes -= counter(info.as_ref(), "storage_size");
            b.records -= counter(info.as_ref(), "record_count");
        }
        for ((bid, cid), d) in collections {
            if purged_collections.contains(&(bid.clone(), cid.clone())) {
                continue;
            }
            let parent = super::resource::collection_uri(&bid, &cid);
            let old = self
                .storage
                .get(&parent, "quota", "collection_info")
                .await?;
            let size = counter(old.as_ref(), "storage_size") + d.bytes;
            let records = counter(old.as_ref(), "record_count") + d.records;
            if d.bytes > 0 {
                if let Some(max) = q
                    .collection(&bid, &cid, "max_bytes")
                    .filter(|m| size > *m as i64)
                {
                    return Err(exceeded(format!(
                        "Collection maximum size exceeded ({size} > {max} Bytes)."
                    )));
                }
            }
            if d.records > 0 {
                if let Some(max) = q
                    .collection(&bid, &cid, "max_items")
                    .filter(|m| records > *m as i64)
                {
                    return Err(exceeded(format!(
                        "Collection maximum number of objects exceeded ({records} > {max} objects)."
                    )));
                }
            }
            let mut data = Map::new();
            data.insert("record_count".into(), records.max(0).into());
            data.insert("storage_size".into(), size.max(0).into());
            writes.push(info_write(parent, "collection_info", data, stamp, old));
        }
        for (bid, d) in buckets {
            if purged_buckets.contains(&bid) {
                continue;
            }
            let parent = super::resource::bucket_uri(&bid);
            let old = self.storage.get(&parent, "quota", "bucket_info").await?;
            let size = counter(old.as_ref(), "storage_size") + d.bytes;
            let records = counter(old.as_ref(), "record_count") + d.records;
            let colls = counter(old.as_ref(), "collection_count") + d.collections;
            if d.bytes > 0 {
                if let Some(max) = q.bucket(&bid, "max_bytes").filter(|m| size > *m as i64) {
                    return Err(exceeded(format!(
                        "Bucket maximum total size exceeded ({size} > {max} Bytes). "
                    )));
                }
            }
            if d.records > 0 {
                if let Some(max) = q.bucket(&bid, "max_items").filter(|m| records > *m as i64) {
                    return Err(exceeded(format!(
                        "Bucket maximum number of objects exceeded ({records} > {max} objects)."
                    )));
                }
            }
            let mut data = Map::new();
            data.insert("collection_count".into(), colls.max(0).into());
            data.insert("record_count".into(), records.max(0).into());
            data.insert("storage_size".into(), size.max(0).into());
            writes.push(info_write(parent, "bucket_info", data, stamp, old));
        }
        Ok(())
    }
}

/// `(bucket, collection)` of a purged container URI.
fn locate_container(uri: &str) -> Option<(String, Option<String>)> {
    let rest = uri.strip_prefix("/buckets/")?;
    match rest.split_once("/collections/") {
        Some((b, c)) if !c.contains('/') => Some((b.to_owned(), Some(c.to_owned()))),
        None if !rest.contains('/') => Some((rest.to_owned(), None)),
        _ => None,
    }
}

fn info_write(
    parent: String,
    id: &str,
    data: Map<String, Value>,
    stamp: u64,
    old: Option<StoredObject>,
) -> Write {
    let previous = old.map(|o| o.last_modified);
    Write::Put {
        parent,
        resource: "quota",
        object: StoredObject {
            id: id.to_owned(),
            // Never equal to the previous one: the `_since` index entry moves.
            last_modified: stamp.max(previous.map_or(0, |p| p + 1)),
            deleted: false,
            data,
            permissions: Default::default(),
        },
        previous_last_modified: previous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_matches_pythons_json_dumps() {
        // python3 -c 'import json; print(len(json.dumps({"id":"r1","last_modified":12,"title":"é","n":[1,true,null]},
        //   sort_keys=True, separators=(",",":"))))'  → 65
        let mut data = Map::new();
        data.insert("title".into(), Value::String("é".into()));
        data.insert("n".into(), serde_json::json!([1, true, null]));
        let o = StoredObject {
            id: "r1".into(),
            last_modified: 12,
            deleted: false,
            data,
            permissions: Default::default(),
        };
        assert_eq!(size_of(&o), 65);
        assert_eq!(size_of(&StoredObject::tombstone("r1", 13)), 0);
    }

    #[test]
    fn settings_most_specific_first() {
        let raw = kinto_runtime::settings::RawSettings::default().with_env([
            ("KINTO_QUOTAS_BUCKET_MAX_BYTES".to_owned(), "100".to_owned()),
            (
                "KINTO_QUOTAS_BUCKET_B1_MAX_BYTES".to_owned(),
                "7".to_owned(),
            ),
            (
                "KINTO_QUOTAS_COLLECTION_B1_MAX_ITEMS".to_owned(),
                "3".to_owned(),
            ),
        ]);
        let q = QuotaSettings::from_raw(&raw, true)
            .expect("valid")
            .expect("enabled");
        assert_eq!(q.bucket("b1", "max_bytes"), Some(7));
        assert_eq!(q.bucket("b2", "max_bytes"), Some(100));
        assert_eq!(q.collection("b1", "c", "max_items"), Some(3));
        assert_eq!(q.collection("b2", "c", "max_items"), None);
        assert!(QuotaSettings::from_raw(&raw, false)
            .expect("valid")
            .is_none());
        // A TOML file's `quotas.collection_max_items = 5` arrives as a table.
        let mut raw = kinto_runtime::settings::RawSettings::default();
        raw.set("quotas", serde_json::json!({"collection_max_items": 5}));
        let q = QuotaSettings::from_raw(&raw, true)
            .expect("valid")
            .expect("enabled");
        assert_eq!(q.collection("b", "c", "max_items"), Some(5));
    }

    #[test]
    fn a_limit_that_is_not_a_number_stops_start_up() {
        let raw = kinto_runtime::settings::RawSettings::default().with_env([(
            "KINTO_QUOTAS_BUCKET_MAX_BYTES".to_owned(),
            "10MB".to_owned(),
        )]);
        let err = QuotaSettings::from_raw(&raw, true)
            .err()
            .unwrap_or_default();
        assert!(err.contains("quotas_bucket_max_bytes"), "{err}");
        // Without the plugin the quota settings are not read at all.
        assert!(QuotaSettings::from_raw(&raw, false).is_ok());
    }

    #[test]
    fn objects_are_located_in_their_bucket_and_collection() {
        assert_eq!(locate("", "bucket", "b"), Some(("b".into(), None)));
        assert_eq!(
            locate("/buckets/b", "collection", "c"),
            Some(("b".into(), Some("c".into())))
        );
        assert_eq!(locate("/buckets/b", "group", "g"), Some(("b".into(), None)));
        assert_eq!(
            locate("/buckets/b/collections/c", "record", "r"),
            Some(("b".into(), Some("c".into())))
        );
        assert_eq!(locate("/buckets/b", "history", "h"), None);
        assert_eq!(locate("", "account", "a"), None);
    }
}
