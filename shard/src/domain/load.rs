//! Step 2 of a write: load what the decision needs — the parents (bucket,
//! and collection for records), the object, the list's timestamp. Parents
//! and list timestamps come from the shard's cache when it holds them.

use super::acl::Chain;
use super::clock;
use super::resource::{self, Kind, Target};
use super::Shard;
use crate::storage::{StoredObject, Write};
use kinto_proto::KintoError;
use std::sync::Arc;

/// Everything one object operation reads before deciding.
pub(super) struct Loaded {
    pub bucket: Option<Arc<StoredObject>>,
    pub collection: Option<Arc<StoredObject>>,
    /// The row at the target, tombstone included (its timestamp is indexed).
    pub raw: Option<StoredObject>,
}

impl Loaded {
    pub fn existing(&self) -> Option<&StoredObject> {
        self.raw.as_ref().filter(|o| !o.deleted)
    }

    /// The ACLs that may grant a permission, with the object's own or not.
    pub fn chain(&self, with_object: bool) -> Chain<'_> {
        Chain {
            bucket: self.bucket.as_deref(),
            collection: self.collection.as_deref(),
            object: if with_object { self.existing() } else { None },
        }
    }
}

pub(super) fn live(o: Option<StoredObject>) -> Option<StoredObject> {
    o.filter(|o| !o.deleted)
}

impl Shard {
    pub(super) async fn load(&self, t: &Target, id: &str) -> Result<Loaded, KintoError> {
        let (bucket, collection) = self.parents(t).await?;
        let raw = self.storage.get(&t.parent_id(), t.kind.name(), id).await?;
        Ok(Loaded {
            bucket,
            collection,
            raw,
        })
    }

    /// The bucket and (for records) the collection above a target, live only.
    pub(super) async fn parents(
        &self,
        t: &Target,
    ) -> Result<(Option<Arc<StoredObject>>, Option<Arc<StoredObject>>), KintoError> {
        let bucket = match t.kind {
            Kind::Bucket => None,
            _ => {
                self.parent("", "bucket", &t.bucket, resource::bucket_uri(&t.bucket))
                    .await?
            }
        };
        let collection = match t.kind {
            Kind::Record => {
                let uri = resource::collection_uri(&t.bucket, &t.collection);
                self.parent(
                    &resource::bucket_uri(&t.bucket),
                    "collection",
                    &t.collection,
                    uri,
                )
                .await?
            }
            _ => None,
        };
        Ok((bucket, collection))
    }

    /// A live bucket or collection, from the cache when it is there
    /// (shared, not copied: every record operation reads two).
    pub(super) async fn parent(
        &self,
        parent: &str,
        resource: &'static str,
        id: &str,
        uri: String,
    ) -> Result<Option<Arc<StoredObject>>, KintoError> {
        if let Some(o) = self.cache.parent(&uri) {
            return Ok(Some(o));
        }
        let generation = self.cache.parents_generation();
        let o = live(self.storage.get(parent, resource, id).await?).map(Arc::new);
        if let Some(o) = &o {
            self.cache.remember_parent(uri, Arc::clone(o), generation);
        }
        Ok(o)
    }

    /// The list's timestamp; a list never written gets "now" the first time
    /// it is read and keeps it until its first write, as in Kinto.
    pub(super) async fn list_timestamp(&self, t: &Target) -> Result<u64, KintoError> {
        let parent = t.parent_id();
        if let Some(ts) = self.cached_timestamp(&parent, t.kind.name()) {
            return Ok(ts);
        }
        if let Some(ts) = self.storage.timestamp(&parent, t.kind.name()).await? {
            return Ok(ts);
        }
        let _g = self.lock_for_write(t).await;
        self.list_timestamp_locked(t).await
    }

    /// [`Shard::list_timestamp`] for a caller that already holds the write
    /// lock of `t`'s bucket (the lock is not reentrant).
    pub(super) async fn list_timestamp_locked(&self, t: &Target) -> Result<u64, KintoError> {
        let parent = t.parent_id();
        if let Some(ts) = self.locked_timestamp(&parent, t.kind.name()).await? {
            return Ok(ts);
        }
        let ts = clock::now_ms();
        self.commit(vec![Write::Timestamp {
            parent,
            resource: t.kind.name(),
            value: ts,
        }])
        .await?;
        Ok(ts)
    }

    /// A list's timestamp if the cache holds it, for any caller. An entry
    /// is always the stored value (see the cache module's comment), so
    /// reading one needs no lock; remembering what storage answered does.
    fn cached_timestamp(&self, parent: &str, resource: &str) -> Option<u64> {
        self.cache
            .timestamp(&super::cache::list_key(parent, resource))
    }

    /// A list's stored timestamp, for a caller that holds the write lock of
    /// the list's bucket (see the cache module's comment); others read storage.
    pub(super) async fn locked_timestamp(
        &self,
        parent: &str,
        resource: &'static str,
    ) -> Result<Option<u64>, KintoError> {
        let key = super::cache::list_key(parent, resource);
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
