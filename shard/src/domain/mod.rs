//! The shard domain: Kinto's rules for one operation, run as one step.
//!
//! Every write takes the lock of its bucket, then reads what it needs
//! (parents, the object, the list timestamp), checks permissions and
//! preconditions, stamps, and commits one atomic batch. Since a bucket has a
//! single writer (this shard) and the lock covers check and write, Kinto's
//! time-of-check/time-of-use races cannot happen here.

pub mod acl;
pub mod budget;
mod cache;
mod cache_expires;
pub mod clock;
mod history;
mod object;
pub mod patch;
mod plural;
pub mod quota;
mod request;
pub mod resource;
pub mod schema;
mod select;
mod tokens;
mod walk;

use crate::storage::{Acl, Storage, StoredObject, Write};
use acl::{Principals, SettingsGrants};
use kinto_proto::{pb, ErrorKind, KintoError};
pub use request::{Outcome, Pre, Request};
use resource::{Kind, Target};
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard};

/// How many bucket locks; buckets hash onto them.
const LOCK_STRIPES: usize = 1024;

/// Static settings of one shard node.
#[derive(Debug, Clone)]
pub struct ShardSettings {
    pub index: u32,
    pub count: u32,
    pub generation: u64,
    pub grants: SettingsGrants,
    pub features: Features,
    /// Entries in each of the shard's caches (`shard_cache_entries`).
    pub cache_entries: usize,
}

/// Kinto plugins and switches that change what a write does.
#[derive(Debug, Clone, Default)]
pub struct Features {
    /// `kinto.plugins.history`: every change also writes a history entry.
    pub history: bool,
    /// `experimental_collection_schema_validation`: JSON schemas are enforced.
    pub schema_validation: bool,
    /// `kinto.plugins.quotas` with its `quotas.*` limits.
    pub quotas: Option<quota::QuotaSettings>,
}

impl Features {
    pub fn from_raw(raw: &kinto_proto::settings::RawSettings) -> Self {
        #[derive(serde::Deserialize)]
        struct F {
            #[serde(default, deserialize_with = "kinto_proto::settings::de_list")]
            includes: Vec<String>,
            #[serde(default)]
            experimental_collection_schema_validation: bool,
        }
        match raw.parse::<F>() {
            Ok(f) => Features {
                history: kinto_proto::settings::plugin_enabled(&f.includes, "history"),
                schema_validation: f.experimental_collection_schema_validation,
                quotas: quota::QuotaSettings::from_raw(
                    raw,
                    kinto_proto::settings::plugin_enabled(&f.includes, "quotas"),
                ),
            },
            Err(_) => Features::default(),
        }
    }
}

pub struct Shard {
    storage: Arc<dyn Storage>,
    settings: ShardSettings,
    bucket_locks: Vec<Mutex<()>>,
    /// Serialises writes of the bucket list (`parent = ""`), shared by every
    /// bucket of the shard. Always taken after a bucket lock, never before.
    root_lock: Mutex<()>,
    schemas: schema::SchemaCache,
    cache: cache::ShardCache,
    nonces: tokens::Nonces,
}

/// Locks held by one write.
pub(crate) struct WriteGuard<'a> {
    _bucket: MutexGuard<'a, ()>,
    _root: Option<MutexGuard<'a, ()>>,
}

impl Shard {
    pub fn new(storage: Arc<dyn Storage>, settings: ShardSettings) -> Self {
        let cache = cache::ShardCache::new(settings.cache_entries);
        Shard {
            storage,
            settings,
            bucket_locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            root_lock: Mutex::new(()),
            schemas: schema::SchemaCache::default(),
            cache,
            nonces: Default::default(),
        }
    }

    pub fn settings(&self) -> &ShardSettings {
        &self.settings
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Runs one operation from the gateway, within `budget`.
    pub async fn execute(
        &self,
        op: pb::Operation,
        budget: budget::Budget,
    ) -> Result<pb::OpResult, KintoError> {
        let mut req = Request::decode(op)?;
        req.budget = budget;
        self.check_owner(&req)?;
        let who = self.principals(&req.caller).await?;
        if req.implicit_bucket || req.implicit_collection {
            self.create_implicit(&req, &who).await?;
        }
        let method = req.method;
        let out = match (method, req.target.id.is_some()) {
            (pb::Method::Get | pb::Method::Head, true) => self.get(&req, &who).await?,
            (pb::Method::Put, true) => self.put(&req, &who).await?,
            (pb::Method::Patch, true) => self.patch(&req, &who).await?,
            (pb::Method::Delete, true) => self.delete(&req, &who).await?,
            (pb::Method::Get | pb::Method::Head, false) => self.list(&req, &who, false).await?,
            (pb::Method::Post, false) => self.create(&req, &who).await?,
            (pb::Method::Delete, false) => self.list(&req, &who, true).await?,
            _ => return Err(KintoError::new(ErrorKind::MethodNotAllowed)),
        };
        Ok(out.into_pb())
    }

    /// Group URIs (of this shard) the principals belong to.
    pub async fn groups_of(&self, principals: &[String]) -> Result<Vec<String>, KintoError> {
        Ok(self.storage.groups_of(principals).await?)
    }

    /// A shard answers only for buckets it owns at the caller's generation:
    /// a gateway with a stale map gets `WrongShard` and refreshes.
    fn check_owner(&self, req: &Request) -> Result<(), KintoError> {
        // `GET`/`DELETE /buckets` span every shard; everything else names a bucket.
        if req.target.bucket.is_empty() {
            return Ok(());
        }
        let owner =
            kinto_proto::placement::shard_for_bucket(&req.target.bucket, self.settings.count);
        if owner != self.settings.index
            || (req.generation != 0 && req.generation != self.settings.generation)
        {
            return Err(KintoError::new(ErrorKind::WrongShard)
                .with_details(serde_json::json!({"bucket": req.target.bucket, "owner": owner})));
        }
        Ok(())
    }

    async fn principals(&self, caller: &pb::Caller) -> Result<Principals, KintoError> {
        let mut all: foldhash::HashSet<String> = caller.principals.iter().cloned().collect();
        all.insert("system.Everyone".into());
        for p in &caller.principals {
            let groups = match self.cache.groups_of(p) {
                Some(g) => g,
                None => {
                    let g = self.storage.groups_of(std::slice::from_ref(p)).await?;
                    self.cache.remember_groups(p, g.clone());
                    g
                }
            };
            all.extend(groups);
        }
        Ok(Principals {
            user_id: (!caller.user_id.is_empty()).then(|| caller.user_id.clone()),
            all,
        })
    }

    async fn lock_for_write(&self, t: &Target) -> WriteGuard<'_> {
        let stripe = stripe_of(&t.bucket);
        let bucket = self.bucket_locks[stripe].lock().await;
        // Buckets and accounts share their shard's top-level lists.
        let root = if matches!(t.kind, Kind::Bucket | Kind::Account) {
            Some(self.root_lock.lock().await)
        } else {
            None
        };
        WriteGuard {
            _bucket: bucket,
            _root: root,
        }
    }

    /// The bucket and (for records) the collection above a target, live only.
    async fn parents(
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
    async fn parent(
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
    async fn list_timestamp(&self, t: &Target) -> Result<u64, KintoError> {
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
    async fn list_timestamp_locked(&self, t: &Target) -> Result<u64, KintoError> {
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

    /// The bcrypt hash of a live account's password, `None` if there is none.
    pub async fn account_hash(&self, id: &str) -> Result<Option<String>, KintoError> {
        let account = live(self.storage.get("", Kind::Account.name(), id).await?);
        Ok(account.and_then(|a| match a.data.get("password") {
            Some(serde_json::Value::String(h)) => Some(h.clone()),
            _ => None,
        }))
    }

    /// Wipes the shard's store (the `__flush__` of test deployments).
    pub async fn flush(&self) -> Result<(), KintoError> {
        self.cache.clear();
        self.storage.flush().await?;
        self.cache.clear();
        Ok(())
    }
}

fn stripe_of(bucket: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bucket.hash(&mut h);
    (h.finish() as usize) % LOCK_STRIPES
}

fn live(o: Option<StoredObject>) -> Option<StoredObject> {
    o.filter(|o| !o.deleted)
}

/// 401 for anonymous callers, 403 for the others.
fn deny(who: &Principals) -> KintoError {
    if who.user_id.is_some() {
        KintoError::new(ErrorKind::Forbidden)
    } else {
        KintoError::new(ErrorKind::Unauthorized)
    }
}

/// The ACL as the caller may see it: all of it for writers, `{}` otherwise.
fn visible_acl(acl: &Acl, who: &Principals) -> serde_json::Value {
    let writer = acl.get("write").is_some_and(|w| who.contains_any(w));
    if writer {
        serde_json::to_value(acl).unwrap_or_default()
    } else {
        serde_json::json!({})
    }
}
