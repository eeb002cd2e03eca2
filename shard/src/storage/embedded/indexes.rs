//! The list counters and the principal index of the embedded store, kept in
//! the batch of the commit that changes them.
//!
//! Keyspaces (keys `\0`-separated, as in the others):
//! - `counts`:   `parent \0 resource` → be64 live objects of the list
//! - `grantees`: `principal \0 parent \0 resource \0 id` → empty (the index)
//! - `meta`:     `indexes` → version, set once the index covers the store
//!
//! What a commit pays: one point read of the version each `Put` replaces
//! (only where the write says one exists: its liveness and old ACL), one
//! index entry per principal an ACL gains or loses, and one read of each
//! counter it moves, under a lock held only for those reads and the batch's
//! commit (fjall's journal serialises the writes anyway).
//!
//! The index has no reverse (object → principals) of its own: a cascade
//! reads the ACLs from the objects it deletes, which it walks anyway. So
//! every record's creator costs one index entry, not two, on the hot path.
//!
//! A store written before these existed has objects but no `meta` entry: it
//! is indexed once, at open, by one walk of every object. The same walk
//! builds the `last_modified` index (`newest`) of a store whose index an
//! earlier version kept in the other order.

use super::EmbeddedStorage;
use super::{decode, decode_u64, list_prefix, modified_key_of, timestamp_key, unavailable};
use crate::storage::grants::{self, Grant};
use crate::storage::{StorageError, StorageResult, StoredObject};
use fjall::{Keyspace, OwnedWriteBatch};
use std::collections::HashMap;

/// Bumped when what the indexes hold changes: a store with another value is
/// indexed again at open.
const INDEX_VERSION: &[u8] = b"3";

/// Keyspaces of earlier versions, dropped at open if present: a reverse
/// index (object → principals), and the `last_modified` index in ascending
/// order (version 2 and before), which the next open rebuilds as `newest`.
pub(super) const OLD_KEYSPACES: [&str; 2] = ["grants", "changes"];
const INDEX_KEY: &[u8] = b"indexes";

/// Writes per batch of the one-time rebuild: bounded memory on a large store.
const REBUILD_BATCH: usize = 10_000;

fn grantee_key(principal: &str, parent: &str, resource: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(principal.len() + parent.len() + resource.len() + id.len() + 3);
    k.extend_from_slice(principal.as_bytes());
    k.push(0);
    k.extend_from_slice(&list_prefix(parent, resource));
    k.extend_from_slice(id.as_bytes());
    k
}

fn utf8(bytes: &[u8]) -> StorageResult<&str> {
    std::str::from_utf8(bytes).map_err(|e| StorageError::Corrupt(e.to_string()))
}

/// `a \0 b \0 c \0 d` → `[a, b, c, d]`; the last part may not hold `\0`
/// either (ids and principals never do).
fn split4(key: &[u8]) -> StorageResult<[&str; 4]> {
    let mut parts = key.splitn(4, |b| *b == 0);
    let mut next = || utf8(parts.next().unwrap_or_default());
    let out = [next()?, next()?, next()?, next()?];
    if out[3].is_empty() && out[2].is_empty() {
        return Err(StorageError::Corrupt("index key has too few parts".into()));
    }
    Ok(out)
}

/// The object stored at `key` (`parent \0 resource \0 id`) unless it is a
/// tombstone, with its key `\0`-terminated for [`split4`].
fn live_object(key: &[u8], value: &[u8]) -> StorageResult<Option<(Vec<u8>, StoredObject)>> {
    let object = decode(value)?;
    if object.deleted {
        return Ok(None);
    }
    Ok(Some(([key, b"\0"].concat(), object)))
}

/// Count changes of one commit, by list key, applied once at its end.
#[derive(Default)]
pub(super) struct CountDeltas(HashMap<(String, &'static str), i64>);

impl CountDeltas {
    pub(super) fn add(&mut self, parent: &str, resource: &'static str, delta: i64) {
        if delta != 0 {
            *self.0.entry((parent.to_owned(), resource)).or_default() += delta;
        }
    }
}

impl EmbeddedStorage {
    /// Adds to `batch` what a `Put` of `new` over `old` changes in the index.
    pub(super) fn index_put(
        &self,
        batch: &mut OwnedWriteBatch,
        parent: &str,
        resource: &str,
        old: Option<&StoredObject>,
        new: &StoredObject,
    ) {
        let (gone, added) = grants::changed(resource, old, new);
        for p in gone {
            batch.remove(&self.grantees, grantee_key(p, parent, resource, &new.id));
        }
        for p in added {
            batch.insert(
                &self.grantees,
                grantee_key(p, parent, resource, &new.id),
                [],
            );
        }
    }

    /// Adds to `batch` the removal of the index entries and counters of the
    /// tree at `prefixes` (its own lists, and those below).
    pub(super) fn index_purge(
        &self,
        batch: &mut OwnedWriteBatch,
        prefixes: [&[u8]; 2],
    ) -> StorageResult<()> {
        for prefix in prefixes {
            for item in self.objects.prefix(prefix) {
                let (key, value) = item.into_inner().map_err(unavailable)?;
                let Some((key, object)) = live_object(&key, &value)? else {
                    continue;
                };
                let [parent, resource, _, _] = split4(&key)?;
                if !grants::indexed(resource) {
                    continue;
                }
                for p in grants::principals(&object.permissions) {
                    batch.remove(&self.grantees, grantee_key(p, parent, resource, &object.id));
                }
            }
            for key in Self::keys_with_prefix(&self.counts, prefix)? {
                batch.remove(&self.counts, key);
            }
        }
        Ok(())
    }

    /// Adds the new values of the counters `deltas` moves, skipping lists
    /// in the `purged` trees (their counters go with them). The caller holds
    /// `commit_lock`: the read-modify-write is exact.
    pub(super) fn write_counts(
        &self,
        batch: &mut OwnedWriteBatch,
        deltas: CountDeltas,
        purged: &[String],
    ) -> StorageResult<()> {
        for ((parent, resource), delta) in deltas.0 {
            if grants::in_purged(purged, &parent) {
                continue;
            }
            let key = timestamp_key(&parent, resource);
            let now = self.count_of(&key)?;
            let next = now.saturating_add_signed(delta);
            batch.insert(&self.counts, key, next.to_be_bytes());
        }
        Ok(())
    }

    pub(super) fn count_of(&self, key: &[u8]) -> StorageResult<u64> {
        match self.counts.get(key).map_err(unavailable)? {
            Some(v) => decode_u64(&v),
            None => Ok(0),
        }
    }

    pub(super) fn granted_to(&self, principal: &str) -> StorageResult<Vec<Grant>> {
        let mut prefix = principal.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for key in Self::keys_with_prefix(&self.grantees, &prefix)? {
            let [_, parent, resource, id] = split4(&key)?;
            if !self.fence.shows(parent, resource, id) {
                continue;
            }
            out.push(Grant {
                parent: parent.to_owned(),
                resource: resource.to_owned(),
                id: id.to_owned(),
            });
        }
        Ok(out)
    }

    /// Builds the counters and the principal index from the objects, once,
    /// if this store was written before they existed (or by another version).
    pub(super) fn index_if_missing(&self) -> StorageResult<()> {
        let version = self.meta.get(INDEX_KEY).map_err(unavailable)?;
        if version.as_deref() == Some(INDEX_VERSION) {
            return Ok(());
        }
        tracing::info!("building the list counters and the indexes of this store");
        self.clear(&[&self.counts, &self.grantees, &self.newest])?;
        let mut counts: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut batch = self.db.batch();
        let mut pending = 0;
        for item in self.objects.prefix(b"") {
            if pending >= REBUILD_BATCH {
                std::mem::replace(&mut batch, self.db.batch())
                    .commit()
                    .map_err(unavailable)?;
                pending = 0;
            }
            let (key, value) = item.into_inner().map_err(unavailable)?;
            let object = decode(&value)?;
            // Every object has its `newest` entry, tombstones too (`_since`).
            batch.insert(
                &self.newest,
                modified_key_of(&key, &object),
                super::index_row::encode(&object)?,
            );
            pending += 1;
            if object.deleted {
                continue;
            }
            let key = [&key[..], b"\0"].concat();
            let [parent, resource, _, _] = split4(&key)?;
            *counts.entry(timestamp_key(parent, resource)).or_default() += 1;
            let named = grants::principals(&object.permissions);
            for p in named.into_iter().filter(|_| grants::indexed(resource)) {
                batch.insert(
                    &self.grantees,
                    grantee_key(p, parent, resource, &object.id),
                    [],
                );
                pending += 1;
            }
        }
        for (key, n) in counts {
            batch.insert(&self.counts, key, n.to_be_bytes());
        }
        batch.insert(&self.meta, INDEX_KEY, INDEX_VERSION);
        batch.commit().map_err(unavailable)?;
        self.db
            .persist(fjall::PersistMode::SyncAll)
            .map_err(unavailable)
    }

    /// Removes every key of `keyspaces`.
    pub(super) fn clear(&self, keyspaces: &[&Keyspace]) -> StorageResult<()> {
        let mut batch = self.db.batch();
        for ks in keyspaces {
            for key in Self::keys_with_prefix(ks, b"")? {
                batch.remove(ks, key);
            }
        }
        batch.commit().map_err(unavailable)
    }
}
