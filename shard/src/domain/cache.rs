//! What a shard remembers between operations. Safe because the shard is the
//! only writer of its buckets: every change goes through `Shard::commit`
//! (commit.rs), which forgets what the change may have made stale (before
//! and after the write, so no reader keeps a value across it).
//!
//! * group URIs per principal (read by every operation to expand the
//!   caller's principals), forgotten on any membership change;
//! * the live buckets and collections themselves (the parents every record
//!   operation reads, and the default bucket's implicit creation checks),
//!   each forgotten when it is written. A reader stores
//!   what it read only if no bucket or collection write started meanwhile
//!   (a generation count, bumped before and after each of those writes);
//! * list timestamps, read by every write to stamp it and by every list
//!   for its ETag. Remembered and changed only under the write lock of the
//!   list's bucket (the root lock for top-level lists), which every commit
//!   that sets one also holds, so an entry is always what is stored, and a
//!   list may read one without the lock. A commit forgets the timestamps it
//!   sets and, once stored, remembers them; a failed one leaves them
//!   forgotten, and a cascade forgets those of the tree it removes.
//!
//! Each map is bounded and evicts one entry at a time. Emptying a full map
//! at once, as this module first did, stalled the shard's core: dropping
//! 100k cached buckets and collections takes ~45 ms, and with a million
//! users the maps filled every few seconds (docs/benchmarks.md).

use crate::storage::{StoredObject, Write};
use quick_cache::{unsync, unsync::DefaultLifecycle, UnitWeighter};
use std::sync::{Arc, Mutex, MutexGuard};

/// A bounded map (quick_cache's S3-FIFO: frequently read entries survive a
/// scan of one-off ones); the mutex around it is held for one lookup.
pub(super) type Bounded<V> = unsync::Cache<String, V, UnitWeighter, foldhash::fast::RandomState>;

fn bounded_map<V>(limit: usize) -> Bounded<V> {
    unsync::Cache::with(
        limit,
        limit as u64,
        UnitWeighter,
        foldhash::fast::RandomState::default(),
        DefaultLifecycle::default(),
    )
}

/// A [`Bounded`] map of `limit` entries behind a mutex.
pub(super) fn bounded_to<V>(limit: usize) -> Mutex<Bounded<V>> {
    Mutex::new(bounded_map(limit))
}

pub(super) struct ShardCache {
    groups: Mutex<Bounded<Vec<String>>>,
    parents: Mutex<Parents>,
    timestamps: Mutex<Bounded<u64>>,
}

impl ShardCache {
    /// Each map holds up to `entries` (`shard_cache_entries`).
    pub fn new(entries: usize) -> Self {
        ShardCache {
            groups: bounded_to(entries),
            parents: Mutex::new(Parents {
                generation: 0,
                objects: bounded_map(entries),
            }),
            timestamps: bounded_to(entries),
        }
    }
}

/// Live buckets and collections by URI.
struct Parents {
    generation: u64,
    objects: Bounded<Arc<StoredObject>>,
}

/// What a commit may make stale.
#[derive(Default)]
pub(super) struct Stale {
    /// Principals whose group memberships change.
    principals: Vec<String>,
    /// Buckets and collections written, by URI.
    parents: Vec<String>,
    /// Roots of the trees a cascade removes.
    pub trees: Vec<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned cache only lost entries.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether a cache key (an object URI, or a list key `parent \0 resource`)
/// lies in the tree rooted at `root`.
fn in_tree(key: &str, root: &str) -> bool {
    key.strip_prefix(root)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '\0']))
}

impl ShardCache {
    pub fn groups_of(&self, principal: &str) -> Option<Vec<String>> {
        let found = lock(&self.groups).get(principal).cloned();
        crate::metrics::cache_lookup(crate::metrics::Cache::Groups, found.is_some());
        found
    }

    pub fn remember_groups(&self, principal: &str, groups: Vec<String>) {
        lock(&self.groups).insert(principal.to_owned(), groups);
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
        if parents.generation == generation {
            parents.objects.insert(uri, object);
        }
    }

    pub fn stales(writes: &[Write]) -> Stale {
        let mut stale = Stale::default();
        for w in writes {
            match w {
                Write::Put {
                    parent,
                    resource,
                    object,
                    ..
                } if matches!(*resource, "bucket" | "collection") => {
                    // `/buckets/b`, `/buckets/b/collections/c`: the plural is the name and "s".
                    let uri = super::resource::concat(&[parent, "/", resource, "s/", &object.id]);
                    stale.parents.push(uri);
                }
                Write::AddMember { principal, .. } | Write::RemoveMember { principal, .. } => {
                    stale.principals.push(principal.clone())
                }
                Write::PurgeTree { parent } => stale.trees.push(parent.clone()),
                Write::Put { .. } | Write::Timestamp { .. } => {}
            }
        }
        stale
    }

    /// Forgets what `stale` names, entry by entry; a cascade scans the maps
    /// for its tree (a bucket's or collection's deletion: rare).
    pub fn forget(&self, stale: &Stale) {
        if !stale.principals.is_empty() || !stale.trees.is_empty() {
            let mut groups = lock(&self.groups);
            for p in &stale.principals {
                groups.remove(p.as_str());
            }
            for root in &stale.trees {
                groups.retain(|_, uris| !uris.iter().any(|u| in_tree(u, root)));
            }
        }
        if !stale.parents.is_empty() || !stale.trees.is_empty() {
            let mut parents = lock(&self.parents);
            parents.generation += 1;
            for uri in &stale.parents {
                parents.objects.remove(uri.as_str());
            }
            for root in &stale.trees {
                parents.objects.retain(|uri, _| !in_tree(uri, root));
            }
        }
    }

    pub fn timestamp(&self, key: &str) -> Option<u64> {
        let found = lock(&self.timestamps).get(key).copied();
        crate::metrics::cache_lookup(crate::metrics::Cache::Timestamps, found.is_some());
        found
    }

    pub fn remember_timestamp(&self, key: String, value: u64) {
        lock(&self.timestamps).insert(key, value);
    }

    /// The `(list key, value)` of each timestamp `writes` set.
    pub fn stamps(writes: &[Write]) -> Vec<(String, u64)> {
        writes
            .iter()
            .filter_map(|w| match w {
                Write::Timestamp {
                    parent,
                    resource,
                    value,
                } => Some((list_key(parent, resource), *value)),
                _ => None,
            })
            .collect()
    }

    /// Forgets the timestamps `stamps` set and those of the lists a cascade removes.
    pub fn forget_timestamps(&self, stamps: &[(String, u64)], trees: &[String]) {
        let mut map = lock(&self.timestamps);
        for (key, _) in stamps {
            map.remove(key.as_str());
        }
        for root in trees {
            map.retain(|key, _| !in_tree(key, root));
        }
    }

    pub fn clear(&self) {
        lock(&self.timestamps).clear();
        lock(&self.groups).clear();
        let mut parents = lock(&self.parents);
        parents.generation += 1;
        parents.objects.clear();
    }
}

/// The cache key of the list `(parent, resource)`.
pub(super) fn list_key(parent: &str, resource: &str) -> String {
    super::resource::concat(&[parent, "\0", resource])
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 10_000;

    fn object(id: &str) -> Arc<StoredObject> {
        let mut o = StoredObject::tombstone(id, 1);
        o.deleted = false;
        Arc::new(o)
    }

    fn put(parent: &str, resource: &'static str, id: &str, deleted: bool) -> Write {
        let mut object = StoredObject::tombstone(id, 2);
        object.deleted = deleted;
        Write::Put {
            parent: parent.into(),
            resource,
            object,
            previous_last_modified: None,
        }
    }

    fn remember(cache: &ShardCache, uri: &str) {
        let generation = cache.parents_generation();
        cache.remember_parent(uri.into(), object(uri), generation);
    }

    #[test]
    fn a_full_map_evicts_entries_not_its_contents() {
        let cache = ShardCache::new(LIMIT);
        for i in 0..LIMIT + 1_000 {
            remember(&cache, &format!("/buckets/b{i}"));
        }
        // Emptying the map when it filled up left one entry here.
        let kept = lock(&cache.parents).objects.len();
        assert!(
            kept > LIMIT * 9 / 10 && kept <= LIMIT,
            "{kept} entries kept"
        );
        assert!(cache
            .parent(&format!("/buckets/b{}", LIMIT + 999))
            .is_some());
    }

    #[test]
    fn a_write_forgets_the_object_it_writes_and_no_other() {
        let cache = ShardCache::new(LIMIT);
        for uri in [
            "/buckets/a",
            "/buckets/a/collections/c",
            "/buckets/a/collections/d",
        ] {
            remember(&cache, uri);
        }
        cache.forget(&ShardCache::stales(&[put(
            "/buckets/a",
            "collection",
            "c",
            false,
        )]));
        assert!(cache.parent("/buckets/a/collections/c").is_none());
        assert!(cache.parent("/buckets/a/collections/d").is_some());
        assert!(cache.parent("/buckets/a").is_some());
    }

    #[test]
    fn a_read_that_overlaps_a_parent_write_is_not_remembered() {
        let cache = ShardCache::new(LIMIT);
        let generation = cache.parents_generation();
        cache.forget(&ShardCache::stales(&[put("", "bucket", "x", false)]));
        cache.remember_parent("/buckets/y".into(), object("y"), generation);
        assert!(cache.parent("/buckets/y").is_none());
    }

    #[test]
    fn a_cascade_forgets_its_tree_only() {
        let cache = ShardCache::new(LIMIT);
        for uri in ["/buckets/a", "/buckets/a/collections/c", "/buckets/ab"] {
            remember(&cache, uri);
        }
        cache.remember_timestamp(list_key("/buckets/a", "collection"), 5);
        cache.remember_timestamp(list_key("/buckets/a/collections/c", "record"), 6);
        cache.remember_timestamp(list_key("/buckets/ab", "collection"), 7);
        cache.remember_groups("alice", vec!["/buckets/a/groups/g".into()]);
        cache.remember_groups("bob", vec!["/buckets/ab/groups/g".into()]);
        let writes = [
            put("", "bucket", "a", true),
            Write::PurgeTree {
                parent: "/buckets/a".into(),
            },
        ];
        let stale = ShardCache::stales(&writes);
        cache.forget(&stale);
        cache.forget_timestamps(&ShardCache::stamps(&writes), &stale.trees);
        for uri in ["/buckets/a", "/buckets/a/collections/c"] {
            assert!(cache.parent(uri).is_none(), "{uri}");
        }
        assert!(cache.parent("/buckets/ab").is_some());
        assert_eq!(cache.timestamp(&list_key("/buckets/a", "collection")), None);
        assert_eq!(
            cache.timestamp(&list_key("/buckets/a/collections/c", "record")),
            None
        );
        assert_eq!(
            cache.timestamp(&list_key("/buckets/ab", "collection")),
            Some(7)
        );
        assert!(cache.groups_of("alice").is_none());
        assert!(cache.groups_of("bob").is_some());
    }

    #[test]
    fn a_membership_change_forgets_that_principal() {
        let cache = ShardCache::new(LIMIT);
        cache.remember_groups("alice", vec![]);
        cache.remember_groups("bob", vec![]);
        cache.forget(&ShardCache::stales(&[Write::AddMember {
            principal: "alice".into(),
            group_uri: "/buckets/a/groups/g".into(),
        }]));
        assert!(cache.groups_of("alice").is_none());
        assert!(cache.groups_of("bob").is_some());
    }
}
