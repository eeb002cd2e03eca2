//! What a shard remembers between operations. Safe because the shard is the
//! only writer of its buckets: every change goes through [`Shard::commit`],
//! which forgets what the change may have made stale (before and after the
//! write, so no reader keeps a value across it).
//!
//! * group URIs per principal (read by every operation to expand the
//!   caller's principals), forgotten on any membership change;
//! * buckets and collections known to exist, so the default bucket's
//!   implicit creation costs no read once they are there; forgotten when a
//!   bucket or collection is deleted;
//! * the live buckets and collections themselves (the parents every record
//!   operation reads), forgotten on any write of a bucket or collection. A
//!   reader stores what it read only if no such write started meanwhile
//!   (a generation count, bumped before and after each of those writes);
//! * list timestamps, read by every write to stamp it. Read, remembered and
//!   changed only under the write lock of the list's bucket (the root lock
//!   for top-level lists), which every commit that sets one also holds, so
//!   an entry is always what is stored. A commit forgets the timestamps it
//!   sets and, once stored, remembers them; a failed one leaves them
//!   forgotten, and a cascade forgets all of them.

use super::Shard;
use crate::storage::{StoredObject, Write};
use foldhash::{HashMap, HashSet};
use kinto_proto::KintoError;
use std::sync::{Arc, Mutex, MutexGuard};

/// Bounds memory: a full map is simply cleared (the next reads refill it).
const LIMIT: usize = 100_000;

#[derive(Default)]
pub(super) struct ShardCache {
    groups: Mutex<HashMap<String, Vec<String>>>,
    existing: Mutex<HashSet<String>>,
    parents: Mutex<Parents>,
    timestamps: Mutex<HashMap<String, u64>>,
}

/// Live buckets and collections by URI.
#[derive(Default)]
struct Parents {
    generation: u64,
    objects: HashMap<String, Arc<StoredObject>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned cache only lost entries.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ShardCache {
    pub fn groups_of(&self, principal: &str) -> Option<Vec<String>> {
        let found = lock(&self.groups).get(principal).cloned();
        crate::metrics::cache_lookup(crate::metrics::Cache::Groups, found.is_some());
        found
    }

    pub fn remember_groups(&self, principal: &str, groups: Vec<String>) {
        let mut map = lock(&self.groups);
        if map.len() >= LIMIT {
            map.clear();
        }
        map.insert(principal.to_owned(), groups);
    }

    pub fn exists(&self, uri: &str) -> bool {
        let found = lock(&self.existing).contains(uri);
        crate::metrics::cache_lookup(crate::metrics::Cache::Existing, found);
        found
    }

    pub fn remember_existing(&self, uri: String) {
        let mut set = lock(&self.existing);
        if set.len() >= LIMIT {
            set.clear();
        }
        set.insert(uri);
    }

    pub fn parent(&self, uri: &str) -> Option<Arc<StoredObject>> {
        let found = lock(&self.parents).objects.get(uri).cloned();
        crate::metrics::cache_lookup(crate::metrics::Cache::Parents, found.is_some());
        found
    }

    /// To read before the storage: [`ShardCache::remember_parent`] keeps
    /// the object only if no bucket or collection write began since.
    pub fn parents_generation(&self) -> u64 {
        lock(&self.parents).generation
    }

    pub fn remember_parent(&self, uri: String, object: Arc<StoredObject>, generation: u64) {
        let mut parents = lock(&self.parents);
        if parents.generation != generation {
            return;
        }
        if parents.objects.len() >= LIMIT {
            parents.objects.clear();
        }
        parents.objects.insert(uri, object);
    }

    /// What `writes` may make stale: `(group memberships, existing objects,
    /// buckets and collections)`.
    fn stales(writes: &[Write]) -> (bool, bool, bool) {
        let membership = writes.iter().any(|w| {
            matches!(
                w,
                Write::AddMember { .. } | Write::RemoveMember { .. } | Write::PurgeTree { .. }
            )
        });
        let deletion = writes.iter().any(|w| match w {
            Write::Put {
                resource, object, ..
            } => object.deleted && matches!(*resource, "bucket" | "collection"),
            Write::PurgeTree { .. } => true,
            _ => false,
        });
        let parents = writes.iter().any(|w| match w {
            Write::Put { resource, .. } => matches!(*resource, "bucket" | "collection"),
            Write::PurgeTree { .. } => true,
            _ => false,
        });
        (membership, deletion, parents)
    }

    fn forget(&self, (membership, deletion, parents): (bool, bool, bool)) {
        if membership {
            lock(&self.groups).clear();
        }
        if deletion {
            lock(&self.existing).clear();
        }
        if parents {
            self.forget_parents();
        }
    }

    fn forget_parents(&self) {
        let mut parents = lock(&self.parents);
        parents.generation += 1;
        parents.objects.clear();
    }

    fn timestamp(&self, key: &str) -> Option<u64> {
        let found = lock(&self.timestamps).get(key).copied();
        crate::metrics::cache_lookup(crate::metrics::Cache::Timestamps, found.is_some());
        found
    }

    fn remember_timestamp(&self, key: String, value: u64) {
        let mut map = lock(&self.timestamps);
        if map.len() >= LIMIT {
            map.clear();
        }
        map.insert(key, value);
    }

    /// The `(list key, value)` of each timestamp `writes` set, and whether
    /// they purge a tree (whose lists lose their timestamps).
    fn stamps(writes: &[Write]) -> (Vec<(String, u64)>, bool) {
        let mut stamps = Vec::new();
        let mut purge = false;
        for w in writes {
            match w {
                Write::Timestamp {
                    parent,
                    resource,
                    value,
                } => stamps.push((list_key(parent, resource), *value)),
                Write::PurgeTree { .. } => purge = true,
                _ => {}
            }
        }
        (stamps, purge)
    }

    fn forget_timestamps(&self, stamps: &[(String, u64)], all: bool) {
        let mut map = lock(&self.timestamps);
        if all {
            map.clear();
        } else {
            for (key, _) in stamps {
                map.remove(key);
            }
        }
    }

    pub fn clear(&self) {
        lock(&self.timestamps).clear();
        lock(&self.groups).clear();
        lock(&self.existing).clear();
        self.forget_parents();
    }
}

impl Shard {
    /// The only way the domain writes: invalidates the cache around the
    /// storage's atomic commit.
    /// Quotas are checked and their counters added here, inside the bucket's lock.
    pub(super) async fn commit(&self, mut writes: Vec<Write>) -> Result<(), KintoError> {
        self.apply_quotas(&mut writes).await?;
        let stale = ShardCache::stales(&writes);
        let (stamps, purge) = ShardCache::stamps(&writes);
        self.cache.forget(stale);
        self.cache.forget_timestamps(&stamps, purge);
        let result = self.storage.commit(writes).await;
        self.cache.forget(stale);
        if purge {
            self.cache.forget_timestamps(&stamps, true);
        } else if result.is_ok() {
            for (key, value) in stamps {
                self.cache.remember_timestamp(key, value);
            }
        }
        Ok(result?)
    }

    /// A list's stored timestamp, for a caller that holds the write lock of
    /// the list's bucket (see the module's comment); others read storage.
    pub(super) async fn locked_timestamp(
        &self,
        parent: &str,
        resource: &'static str,
    ) -> Result<Option<u64>, KintoError> {
        let key = list_key(parent, resource);
        if let Some(ts) = self.cache.timestamp(&key) {
            return Ok(Some(ts));
        }
        let ts = self.storage.timestamp(parent, resource).await?;
        if let Some(ts) = ts {
            self.cache.remember_timestamp(key, ts);
        }
        Ok(ts)
    }
}

fn list_key(parent: &str, resource: &str) -> String {
    super::resource::concat(&[parent, "\0", resource])
}
