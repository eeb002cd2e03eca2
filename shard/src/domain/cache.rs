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
//!   (a generation count, bumped before and after each of those writes).

use super::Shard;
use crate::storage::{StoredObject, Write};
use kinto_proto::KintoError;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

/// Bounds memory: a full map is simply cleared (the next reads refill it).
const LIMIT: usize = 100_000;

#[derive(Default)]
pub(super) struct ShardCache {
    groups: Mutex<HashMap<String, Vec<String>>>,
    existing: Mutex<HashSet<String>>,
    parents: Mutex<Parents>,
}

/// Live buckets and collections by URI.
#[derive(Default)]
struct Parents {
    generation: u64,
    objects: HashMap<String, StoredObject>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned cache only lost entries.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ShardCache {
    pub fn groups_of(&self, principal: &str) -> Option<Vec<String>> {
        let found = lock(&self.groups).get(principal).cloned();
        crate::metrics::cache_lookup("groups", found.is_some());
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
        crate::metrics::cache_lookup("existing", found);
        found
    }

    pub fn remember_existing(&self, uri: String) {
        let mut set = lock(&self.existing);
        if set.len() >= LIMIT {
            set.clear();
        }
        set.insert(uri);
    }

    pub fn parent(&self, uri: &str) -> Option<StoredObject> {
        let found = lock(&self.parents).objects.get(uri).cloned();
        crate::metrics::cache_lookup("parents", found.is_some());
        found
    }

    /// To read before the storage: [`ShardCache::remember_parent`] keeps
    /// the object only if no bucket or collection write began since.
    pub fn parents_generation(&self) -> u64 {
        lock(&self.parents).generation
    }

    pub fn remember_parent(&self, uri: String, object: StoredObject, generation: u64) {
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

    pub fn clear(&self) {
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
        self.cache.forget(stale);
        let result = self.storage.commit(writes).await;
        self.cache.forget(stale);
        Ok(result?)
    }
}
