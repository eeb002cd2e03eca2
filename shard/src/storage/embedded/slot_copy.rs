//! A slot's data in the embedded store: every key and value of its buckets
//! and accounts, as a move streams them, stages them (`staged`:
//! `be16(slot) keyspace key` → value) and deletes them.
//!
//! A slot's buckets and accounts are found by one walk of the top-level
//! lists (`/buckets`, `/accounts`, tombstones included), keeping the ids
//! that hash to the slot: a known cost of each slot exported, proportional
//! to the shard's buckets, not to their contents. Everything else is read
//! by prefix (a bucket's lists: `/buckets/b \0…` and `/buckets/b/…`) or by
//! point lookups of keys derived from those (the `_since` entry of a
//! top-level object, the principal index's `grantees` from each object's
//! ACL, group memberships from the groups' `members`).

use super::EmbeddedStorage;
use super::{decode, decode_u64, list_prefix, modified_key_of, timestamp_key, unavailable};
use crate::storage::grants;
use crate::storage::slots::SlotEntry;
use crate::storage::{StorageError, StorageResult};
use fjall::{Keyspace, OwnedWriteBatch};
use kinto_placement::PlacementKey;
use std::collections::BTreeMap;

/// Keyspace numbers on the wire (fixed: both ends of a move use them). 2
/// was the ascending `last_modified` index of earlier versions: a stream
/// from one is refused, not read as `newest`.
const OBJECTS: u8 = 1;
const NEWEST: u8 = 7;
/// A `newest` entry printed ([`super::index_row`]): a version that reads
/// only stored JSON there does not have this keyspace, so it refuses the
/// stream rather than store entries it cannot read.
const NEWEST_PRINTED: u8 = 8;
const TIMESTAMPS: u8 = 3;
const MEMBERS: u8 = 4;
const COUNTS: u8 = 5;
const GRANTEES: u8 = 6;

/// The top-level lists whose objects are placed themselves.
const ROOTS: [&str; 2] = ["bucket", "account"];

/// The wire number of an entry of keyspace `ks` holding `value`.
fn wire(ks: u8, value: &[u8]) -> u8 {
    if ks == NEWEST && super::index_row::is_printed(value) {
        NEWEST_PRINTED
    } else {
        ks
    }
}

pub(super) fn staged_key(e: &SlotEntry) -> Vec<u8> {
    let mut k = Vec::with_capacity(e.key.len() + 3);
    k.extend_from_slice(&(e.slot as u16).to_be_bytes());
    k.push(e.keyspace);
    k.extend_from_slice(&e.key);
    k
}

fn staged_prefix(slot: u32) -> [u8; 2] {
    (slot as u16).to_be_bytes()
}

fn utf8(bytes: &[u8]) -> StorageResult<&str> {
    std::str::from_utf8(bytes).map_err(|e| StorageError::Corrupt(e.to_string()))
}

/// The principal index's keys of the object stored at `key` (`parent \0
/// resource \0 id`): `principal \0 parent \0 resource \0 id` for each
/// principal its ACL names, as a commit indexes them (live objects only).
fn grantee_keys(key: &[u8], value: &[u8]) -> StorageResult<Vec<Vec<u8>>> {
    let mut parts = key.splitn(3, |b| *b == 0);
    let (_, resource) = (parts.next(), utf8(parts.next().unwrap_or_default())?);
    let object = decode(value)?;
    if object.deleted || !grants::indexed(resource) {
        return Ok(Vec::new());
    }
    Ok(grants::principals(&object.permissions)
        .into_iter()
        .map(|p| [p.as_bytes(), b"\0", key].concat())
        .collect())
}

/// What moving a slot changes in the shard-wide lists (`/buckets`,
/// `/accounts`): their live counts, and (arriving) the newest timestamp
/// their list must stay above.
#[derive(Default)]
pub(super) struct RootChanges {
    by_list: BTreeMap<Vec<u8>, (i64, u64)>,
}

impl RootChanges {
    /// Counts `e` arriving (`sign` 1) or leaving (-1) if it is a top-level object.
    pub(super) fn add(&mut self, e: &SlotEntry, sign: i64) -> StorageResult<()> {
        if e.keyspace != OBJECTS || e.key.first() != Some(&0) {
            return Ok(());
        }
        let Some(end) = e.key[1..].iter().position(|b| *b == 0) else {
            return Ok(());
        };
        let list = timestamp_key("", utf8(&e.key[1..=end])?);
        let object = decode(&e.value)?;
        let entry = self.by_list.entry(list).or_default();
        if !object.deleted {
            entry.0 += sign;
        }
        if sign > 0 {
            entry.1 = entry.1.max(object.last_modified);
        }
        Ok(())
    }
}

impl EmbeddedStorage {
    /// The keyspace numbered `id` on the wire.
    pub(super) fn keyspace(&self, id: u8) -> Option<&Keyspace> {
        Some(match id {
            OBJECTS => &self.objects,
            NEWEST | NEWEST_PRINTED => &self.newest,
            TIMESTAMPS => &self.timestamps,
            MEMBERS => &self.members,
            COUNTS => &self.counts,
            GRANTEES => &self.grantees,
            _ => return None,
        })
    }

    fn push_if_stored(
        &self,
        out: &mut Vec<SlotEntry>,
        slot: u32,
        ks: u8,
        key: Vec<u8>,
    ) -> StorageResult<()> {
        let Some(space) = self.keyspace(ks) else {
            return Ok(());
        };
        if let Some(value) = space.get(&key).map_err(unavailable)? {
            out.push(SlotEntry {
                slot,
                keyspace: wire(ks, &value),
                key,
                value: value.to_vec(),
            });
        }
        Ok(())
    }

    fn push_prefix(
        &self,
        out: &mut Vec<SlotEntry>,
        slot: u32,
        ks: u8,
        prefix: &[u8],
    ) -> StorageResult<()> {
        let Some(space) = self.keyspace(ks) else {
            return Ok(());
        };
        for item in space.prefix(prefix) {
            let (key, value) = item.into_inner().map_err(unavailable)?;
            if ks == OBJECTS {
                for grantee in grantee_keys(&key, &value)? {
                    self.push_if_stored(out, slot, GRANTEES, grantee)?;
                }
            }
            out.push(SlotEntry {
                slot,
                keyspace: wire(ks, &value),
                key: key.to_vec(),
                value: value.to_vec(),
            });
        }
        Ok(())
    }

    /// A top-level object's own entries: the object, its `_since` entry,
    /// its principal index entries.
    fn root_entries(
        &self,
        out: &mut Vec<SlotEntry>,
        slot: u32,
        key: &[u8],
        value: &[u8],
    ) -> StorageResult<()> {
        let object = decode(value)?;
        self.push_if_stored(out, slot, NEWEST, modified_key_of(key, &object))?;
        for grantee in grantee_keys(key, value)? {
            self.push_if_stored(out, slot, GRANTEES, grantee)?;
        }
        out.push(SlotEntry {
            slot,
            keyspace: OBJECTS,
            key: key.to_vec(),
            value: value.to_vec(),
        });
        Ok(())
    }

    /// Everything inside bucket `id`.
    fn bucket_entries(&self, out: &mut Vec<SlotEntry>, slot: u32, id: &str) -> StorageResult<()> {
        let uri = format!("/buckets/{id}");
        for prefix in [format!("{uri}\0"), format!("{uri}/")] {
            for ks in [OBJECTS, NEWEST, TIMESTAMPS, COUNTS] {
                self.push_prefix(out, slot, ks, prefix.as_bytes())?;
            }
        }
        for item in self.objects.prefix(list_prefix(&uri, "group")) {
            let (_, value) = item.into_inner().map_err(unavailable)?;
            let group = decode(&value)?;
            let Some(serde_json::Value::Array(members)) = group.data.get("members") else {
                continue;
            };
            let group_uri = format!("{uri}/groups/{}", group.id);
            for member in members.iter().filter_map(|m| m.as_str()) {
                let key = [member.as_bytes(), b"\0", group_uri.as_bytes()].concat();
                self.push_if_stored(out, slot, MEMBERS, key)?;
            }
        }
        Ok(())
    }

    /// Every key and value of `slot`, sorted by keyspace, then key.
    pub(super) fn entries_of(&self, slot: u32) -> StorageResult<Vec<SlotEntry>> {
        let mut out = Vec::new();
        for resource in ROOTS {
            let prefix = list_prefix("", resource);
            for item in self.objects.prefix(&prefix) {
                let (key, value) = item.into_inner().map_err(unavailable)?;
                let id = utf8(&key[prefix.len()..])?;
                let placed = match resource {
                    "bucket" => PlacementKey::Bucket(id),
                    _ => PlacementKey::Account(id),
                };
                if placed.slot() != slot {
                    continue;
                }
                self.root_entries(&mut out, slot, &key, &value)?;
                if resource == "bucket" {
                    self.bucket_entries(&mut out, slot, id)?;
                }
            }
        }
        out.sort_by(|a, b| (a.keyspace, &a.key).cmp(&(b.keyspace, &b.key)));
        out.dedup_by(|a, b| (a.keyspace, &a.key) == (b.keyspace, &b.key));
        Ok(out)
    }

    /// The staged copy of `slot`, in stream order.
    pub(super) fn staged_entries(&self, slot: u32) -> StorageResult<Vec<SlotEntry>> {
        let mut out = Vec::new();
        for item in self.staged.prefix(staged_prefix(slot)) {
            let (key, value) = item.into_inner().map_err(unavailable)?;
            let Some((&keyspace, key)) = key[2..].split_first() else {
                return Err(StorageError::Corrupt("staged key without keyspace".into()));
            };
            out.push(SlotEntry {
                slot,
                keyspace,
                key: key.to_vec(),
                value: value.to_vec(),
            });
        }
        Ok(out)
    }

    /// Adds to `batch` the removal of the slot's data, counted in `roots`.
    pub(super) fn remove_slot_data(
        &self,
        batch: &mut OwnedWriteBatch,
        slot: u32,
        roots: &mut RootChanges,
    ) -> StorageResult<()> {
        for e in self.entries_of(slot)? {
            roots.add(&e, -1)?;
            if let Some(ks) = self.keyspace(e.keyspace) {
                batch.remove(ks, e.key);
            }
        }
        Ok(())
    }

    /// Adds to `batch` the removal of the slot's staged copy.
    pub(super) fn remove_staged(
        &self,
        batch: &mut OwnedWriteBatch,
        slot: u32,
    ) -> StorageResult<()> {
        for e in self.staged_entries(slot)? {
            batch.remove(&self.staged, staged_key(&e));
        }
        Ok(())
    }

    /// Adds to `batch` the new counts of the top-level lists, and their
    /// timestamps raised above every object that arrived: a list's next
    /// timestamp stays above every one it holds. The caller holds the
    /// commit lock.
    pub(super) fn apply_roots(
        &self,
        batch: &mut OwnedWriteBatch,
        roots: RootChanges,
    ) -> StorageResult<()> {
        for (list, (delta, newest)) in roots.by_list {
            if delta != 0 {
                let next = self.count_of(&list)?.saturating_add_signed(delta);
                batch.insert(&self.counts, list.clone(), next.to_be_bytes());
            }
            let current = match self.timestamps.get(&list).map_err(unavailable)? {
                Some(v) => decode_u64(&v)?,
                None => 0,
            };
            if newest > current {
                batch.insert(&self.timestamps, list, newest.to_be_bytes());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_objects_acl_names_its_index_entries() {
        let key = b"/buckets/b\0collection\0c";
        let value = br#"{"id":"c","last_modified":1,"permissions":{"read":["alice"]}}"#;
        assert_eq!(
            grantee_keys(key, value).expect("keys"),
            vec![b"alice\0/buckets/b\0collection\0c".to_vec()]
        );
        let tombstone = br#"{"id":"c","last_modified":1,"deleted":true}"#;
        assert!(grantee_keys(key, tombstone).expect("keys").is_empty());
    }
}
