//! Kinto's history plugin: every change of a bucket, group, collection or
//! record also writes an entry under its bucket (`/buckets/{id}/history`), in
//! the same atomic commit as the change, so the history never misses or
//! invents a write (Kinto writes it from an event listener, inside the same
//! database transaction; we keep that guarantee without a transaction).
//!
//! An entry is readable by whoever could read the object when it changed:
//! its ACL is `read` = the read and write principals of the bucket, of the
//! collection (for records) and of the object.

use super::clock::stamp;
use super::resource::{self, Kind, Target};
use super::Shard;
use crate::storage::{Acl, StoredObject, Write};
use kinto_proto::KintoError;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// One change to record.
pub(super) struct Change<'a> {
    pub target: &'a Target,
    /// `create`, `update` or `delete`.
    pub action: &'static str,
    /// The object as written (a tombstone for deletions).
    pub object: &'a StoredObject,
    pub bucket: Option<&'a StoredObject>,
    pub collection: Option<&'a StoredObject>,
}

impl Shard {
    /// Whether `kind` is tracked at all on this shard.
    pub(super) fn tracks_history(&self, kind: Kind) -> bool {
        self.settings.features.history
            && matches!(
                kind,
                Kind::Bucket | Kind::Group | Kind::Collection | Kind::Record
            )
    }

    /// The writes of the entries for `changes` (all in one bucket) and of the
    /// history list's timestamp, each entry stamped after the previous one.
    pub(super) async fn history_writes(
        &self,
        bucket_id: &str,
        user_id: Option<&str>,
        changes: &[Change<'_>],
    ) -> Result<Vec<Write>, KintoError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let parent = resource::bucket_uri(bucket_id);
        let mut ts = self
            .locked_timestamp(&parent, Kind::History.name())
            .await?
            .unwrap_or(0);
        let date = iso_now();
        let mut writes = Vec::with_capacity(changes.len() + 1);
        for c in changes {
            let (last_modified, _) = stamp(ts, None);
            ts = last_modified;
            let entry = StoredObject {
                id: uuid::Uuid::new_v4().to_string(),
                last_modified,
                deleted: false,
                data: entry_data(c, user_id, &date),
                permissions: entry_acl(c),
            };
            writes.push(Write::Put {
                parent: parent.clone(),
                resource: Kind::History.name(),
                object: entry,
                previous_last_modified: None,
            });
        }
        writes.push(Write::Timestamp {
            parent,
            resource: Kind::History.name(),
            value: ts,
        });
        Ok(writes)
    }
}

/// The entry's fields, in Kinto's order.
fn entry_data(c: &Change<'_>, user_id: Option<&str>, date: &str) -> Map<String, Value> {
    let t = c.target;
    let id = &c.object.id;
    let permissions = if c.object.deleted {
        json!({})
    } else {
        serde_json::to_value(&c.object.permissions).unwrap_or_else(|_| json!({}))
    };
    let mut m = Map::new();
    m.insert("date".into(), date.into());
    m.insert(
        "target".into(),
        json!({"data": c.object.to_json(), "permissions": permissions}),
    );
    m.insert("action".into(), c.action.into());
    m.insert("uri".into(), t.object_uri(id).into());
    m.insert("user_id".into(), user_id.map_or(Value::Null, Value::from));
    m.insert("resource_name".into(), t.kind.name().into());
    if t.kind == Kind::Record {
        m.insert("collection_id".into(), t.collection.clone().into());
    }
    m.insert(format!("{}_id", t.kind.name()), id.clone().into());
    m
}

fn entry_acl(c: &Change<'_>) -> Acl {
    let mut read = BTreeSet::new();
    let objects = [
        c.bucket,
        c.collection,
        (!c.object.deleted).then_some(c.object),
    ];
    for o in objects.into_iter().flatten() {
        for perm in ["read", "write"] {
            read.extend(o.permissions.get(perm).into_iter().flatten().cloned());
        }
    }
    let mut acl = Acl::new();
    if !read.is_empty() {
        acl.insert("read".into(), read.into_iter().collect());
    }
    acl
}

/// Now as Kinto writes it: ISO 8601, microseconds, `+00:00`.
fn iso_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    iso_date(now.as_secs(), now.subsec_micros())
}

/// Civil date of a Unix time (Howard Hinnant's days-from-civil inverse).
fn iso_date(secs: u64, micros: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::iso_date;

    #[test]
    fn dates_like_python_isoformat() {
        assert_eq!(iso_date(0, 0), "1970-01-01T00:00:00.000000+00:00");
        // 2026-11-22T16:35:00.323372+00:00, seen in a Kinto history entry.
        assert_eq!(
            iso_date(1_795_365_300, 323_372),
            "2026-11-22T16:35:00.323372+00:00"
        );
        assert_eq!(iso_date(951_782_400, 1), "2000-02-29T00:00:00.000001+00:00");
    }
}
