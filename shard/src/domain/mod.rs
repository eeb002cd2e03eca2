//! The shard domain: Kinto's rules for one operation, run as one step.
//!
//! Every write is one pipeline, each step in the module named for it:
//!
//! 1. `lock.rs`: take the write lock of the target's bucket (and the root
//!    lock for top-level lists);
//! 2. `load.rs`: read the parents, the object and the list's timestamp;
//! 3. `authorize.rs`: the caller's principals against the ACLs (the rules
//!    are in `acl.rs`), with Kinto's 401/403/404 decision table;
//! 4. `preconditions.rs`: `If-Match` / `If-None-Match`, schemas, and a
//!    group's members (`members.rs`), on the object the request proposes
//!    (`draft.rs`: the body or patch applied);
//! 5. `stamp.rs`: give the new version its `last_modified`;
//! 6. `commit.rs`: the write's batch (the object, its list's timestamp,
//!    history entries from `history.rs`) gets its quotas checked and counted
//!    (`quota.rs`) and is committed atomically;
//! 7. invalidate: the same commit forgets what the batch made stale in the
//!    shard's cache (`cache.rs`).
//!
//! The entry points read as that sequence: object writes in `object.rs`,
//! deletes of a plural in `plural.rs`.
//!
//! The lock spans every step from load to commit. Kinto checks and then
//! writes, so two concurrent requests can both pass a check (`If-Match`,
//! `If-None-Match: *`) before either writes: a time-of-check/time-of-use
//! race (Kinto/kinto#1407). A bucket here has a single writer, this shard,
//! and what a write checked is still true when it commits.

pub mod acl;
mod authorize;
pub mod budget;
mod cache;
mod cache_expires;
pub use kinto_model::clock;
mod commit;
mod draft;
mod entries;
mod fence;
mod granted;
mod history;
mod load;
mod lock;
mod members;
mod object;
#[cfg(test)]
mod owner_tests;
pub mod patch;
mod plural;
mod preconditions;
pub mod quota;
mod read_ahead;
pub(crate) mod request;
pub mod resource;
mod scan_plan;
pub mod schema;
pub(crate) mod select;
mod served;
mod stamp;
mod tokens;
mod walk;

use crate::storage::Storage;
use acl::SettingsGrants;
use kinto_placement::live::LiveMap;
use kinto_placement::PlacementKey;
use kinto_proto::{pb, ErrorKind, KintoError};
use load::live;
pub use request::{Outcome, Pre, Request};
use resource::Kind;
use std::sync::Arc;

/// Static settings of one shard node.
#[derive(Debug, Clone)]
pub struct ShardSettings {
    pub index: u32,
    /// Which shard owns which slot (a route's bucket, or an account's
    /// placement key in its place), at the newest generation this shard
    /// has read.
    pub map: Arc<LiveMap>,
    pub grants: SettingsGrants,
    pub features: Features,
    /// Entries in each of the shard's caches (`shard_cache_entries`).
    pub cache_entries: usize,
    /// Next pages printed ahead at once (`list_read_ahead`; 0: none).
    pub read_ahead: usize,
}

#[cfg(test)]
impl ShardSettings {
    /// The only shard of a fixed map, with Kinto's default grants and
    /// features: the tests' shard.
    pub(crate) fn only_shard(read_ahead: usize) -> Self {
        ShardSettings {
            index: 0,
            map: LiveMap::fixed(kinto_placement::live::Placement::fixed(1)),
            grants: Default::default(),
            features: Default::default(),
            cache_entries: 100,
            read_ahead,
        }
    }
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
    /// A setting that does not parse stops start-up: falling back to the
    /// defaults would quietly turn history, schemas or quotas off.
    pub fn from_raw(raw: &kinto_runtime::settings::RawSettings) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct F {
            #[serde(default, deserialize_with = "kinto_runtime::settings::de_list")]
            includes: Vec<String>,
            #[serde(default)]
            experimental_collection_schema_validation: bool,
        }
        let f = raw.parse::<F>()?;
        Ok(Features {
            history: kinto_runtime::settings::plugin_enabled(&f.includes, "history"),
            schema_validation: f.experimental_collection_schema_validation,
            quotas: quota::QuotaSettings::from_raw(
                raw,
                kinto_runtime::settings::plugin_enabled(&f.includes, "quotas"),
            )?,
        })
    }
}

pub struct Shard {
    storage: Arc<dyn Storage>,
    settings: ShardSettings,
    locks: lock::WriteLocks,
    schemas: schema::SchemaCache,
    cache: cache::ShardCache,
    nonces: tokens::Nonces,
    read_ahead: Arc<read_ahead::ReadAhead>,
}

impl Shard {
    pub fn new(storage: Arc<dyn Storage>, settings: ShardSettings) -> Self {
        let cache = cache::ShardCache::new(settings.cache_entries);
        let read_ahead = read_ahead::ReadAhead::new(settings.read_ahead);
        Shard {
            storage,
            settings,
            locks: lock::WriteLocks::new(),
            schemas: schema::SchemaCache::default(),
            cache,
            nonces: Default::default(),
            read_ahead,
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
        self.check_owner(&req).await?;
        let who = self.principals(&req.caller).await?;
        if req.implicit_bucket || req.implicit_collection {
            self.create_implicit(&req, &who).await?;
        }
        let method = req.method;
        // A read of `/buckets` or `/accounts`: the gateway merges it with
        // the other shards' only if their slots fit (`served`).
        let spanning = req.target.placement().is_none()
            && (matches!(method, pb::Method::Get | pb::Method::Head) || req.query.dry_run);
        let served = if spanning { self.served_before() } else { None };
        let out = match (method, req.target.id.is_some()) {
            (pb::Method::Get | pb::Method::Head, true) => self.get(&req, &who).await?,
            (pb::Method::Put, true) => self.put(&req, &who).await?,
            (pb::Method::Patch, true) => self.patch(&req, &who).await?,
            (pb::Method::Delete, true) => self.delete(&req, &who).await?,
            (pb::Method::Get | pb::Method::Head, false) => self.list(&req, &who).await?,
            (pb::Method::Post, false) => self.create(&req, &who).await?,
            (pb::Method::Delete, false) => self.delete_list(&req, &who).await?,
            _ => return Err(KintoError::new(ErrorKind::MethodNotAllowed)),
        };
        let mut out = out.into_pb();
        out.served_slots = self.served_after(served)?;
        Ok(out)
    }

    /// Group URIs (of this shard) the principals belong to.
    pub async fn groups_of(&self, principals: &[String]) -> Result<Vec<String>, KintoError> {
        Ok(self.storage.groups_of(principals).await?)
    }

    /// A shard answers only for buckets it owns at the caller's generation:
    /// a gateway with a stale map gets `WrongShard` and refreshes.
    async fn check_owner(&self, req: &Request) -> Result<(), KintoError> {
        // `/buckets` and `/accounts` span every shard; a POST to them is
        // checked once its id is known (`check_placed_here`).
        match req.target.placement() {
            Some(key) => {
                self.check_placed_here(key, req.generation).await?;
                self.check_fence(key, req)
            }
            None => Ok(()),
        }
    }

    /// Whether this shard owns `key` in the map it holds. A caller that
    /// routed with an older generation is served when this shard owns the
    /// key now (the shard's map is the newer truth); a caller ahead of this
    /// shard makes it read the stored map first. A refusal names the
    /// shard's generation, so the gateway knows whether to refresh its own
    /// map or wait for this shard's (0: the caller routed by no map, as the
    /// shard's own follow-up calls).
    async fn check_placed_here(
        &self,
        key: PlacementKey<'_>,
        generation: u64,
    ) -> Result<(), KintoError> {
        let mut map = self.settings.map.current();
        if generation > map.generation() {
            if let Err(e) = self.settings.map.refresh().await {
                tracing::warn!(error = %e, "cannot read the shard map");
            }
            map = self.settings.map.current();
        }
        let owner = map.owner(key);
        if owner != self.settings.index || generation > map.generation() {
            return Err(
                KintoError::new(ErrorKind::WrongShard).with_details(serde_json::json!({
                    "key": key.to_string(),
                    "owner": owner,
                    "generation": map.generation(),
                })),
            );
        }
        Ok(())
    }

    /// The bcrypt hash of a live account's password, `None` if there is none.
    /// Refused (and retried by the gateway) while the account is not
    /// served here: not this shard's, or its slot is between two owners,
    /// where a missing account would read as a wrong password.
    pub async fn account_hash(&self, id: &str) -> Result<Option<String>, KintoError> {
        let key = PlacementKey::Account(id);
        self.check_placed_here(key, 0).await?;
        self.check_fence_read(key)?;
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
