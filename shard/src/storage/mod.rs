//! The storage boundary of a shard.
//!
//! A backend stores Kinto objects by `(parent, resource, id)` — Kinto's own
//! key — with their ACL inside the same row, keeps one timestamp per list
//! `(parent, resource)`, an index of each list by `last_modified` (so `_since`
//! reads cost O(changes)), and the group-membership index used to expand a
//! caller's principals. It knows nothing of permissions or HTTP: the shard
//! domain decides what to write, and hands the backend a list of [`Write`]s
//! that must be applied atomically.

#[cfg(not(any(feature = "embedded", feature = "cql")))]
compile_error!("kinto-shard needs a storage backend: enable its `embedded` or `cql` feature");

mod acl;
#[cfg(feature = "cql")]
pub mod cql;
#[cfg(feature = "embedded")]
pub mod embedded;
mod grants;
#[cfg(feature = "embedded")]
mod lean;
pub mod scan;
pub mod skim;
pub mod slots;

pub use acl::Acl;
pub use grants::Grant;
pub use scan::{After, Chunk, Cursor, Order, PrintedPage, Range};

#[cfg(test)]
pub(crate) mod conformance;
#[cfg(test)]
pub(crate) mod conformance_indexes;
#[cfg(test)]
pub(crate) mod conformance_pages;
#[cfg(test)]
mod conformance_scan;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One stored object, or a tombstone when `deleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredObject {
    pub id: String,
    pub last_modified: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Fields without `id` and `last_modified`; empty for tombstones.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub data: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Acl::is_empty")]
    pub permissions: Acl,
}

impl StoredObject {
    pub fn tombstone(id: &str, last_modified: u64) -> Self {
        StoredObject {
            id: id.to_owned(),
            last_modified,
            deleted: true,
            data: Map::new(),
            permissions: Acl::new(),
        }
    }

    /// The object as Kinto shows it: its fields plus `id` and
    /// `last_modified`, or `{id, last_modified, deleted: true}`.
    /// [`StoredObject::to_json`], printed without building the value.
    pub fn print_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.print_into(&mut out);
        out
    }

    /// [`StoredObject::print_json`], appended to `out` (a list's page).
    pub fn print_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        // Writing into a `Vec` fails only for a map key that is not a
        // string, and these keys are strings.
        if serde_json::to_writer(&mut *out, &KintoView(self)).is_err() {
            out.truncate(start);
            out.extend_from_slice(b"null");
        }
    }

    pub fn to_json(&self) -> Value {
        let mut m = if self.deleted {
            Map::new()
        } else {
            self.data.clone()
        };
        m.insert("id".into(), Value::String(self.id.clone()));
        m.insert("last_modified".into(), Value::from(self.last_modified));
        if self.deleted {
            m.insert("deleted".into(), Value::Bool(true));
        }
        Value::Object(m)
    }
}

/// The object as [`StoredObject::to_json`] shows it, as a serializer input.
struct KintoView<'a>(&'a StoredObject);

impl serde::Serialize for KintoView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let o = self.0;
        let mut m = s.serialize_map(None)?;
        if !o.deleted {
            for (k, v) in &o.data {
                // Never stored there, but a duplicate key would be invalid.
                if k != "id" && k != "last_modified" {
                    m.serialize_entry(k, v)?;
                }
            }
        }
        m.serialize_entry("id", &o.id)?;
        m.serialize_entry("last_modified", &o.last_modified)?;
        if o.deleted {
            m.serialize_entry("deleted", &true)?;
        }
        m.end()
    }
}

/// One change inside an atomic commit.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Create or replace an object or a tombstone. `previous_last_modified`
    /// is the timestamp of the row being replaced, so the `_since` index
    /// entry of the old version can be dropped without reading it again;
    /// `None` promises there is no such row (the backend then skips reading
    /// it to adjust the list's count and the principal index).
    Put {
        parent: String,
        resource: &'static str,
        object: StoredObject,
        previous_last_modified: Option<u64>,
    },
    /// Set a list's timestamp.
    Timestamp {
        parent: String,
        resource: &'static str,
        value: u64,
    },
    /// Remove every object, tombstone, index entry, list count and list
    /// timestamp whose parent is `parent` or lies below it (`parent/…`): the
    /// cascade of a bucket or collection deletion. Kinto purges children's
    /// tombstones too. A commit puts nothing below a tree it purges.
    PurgeTree { parent: String },
    /// Group membership index: `principal` is a member of `group_uri`.
    AddMember {
        principal: String,
        group_uri: String,
    },
    RemoveMember {
        principal: String,
        group_uri: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The backend cannot serve now (I/O, unreachable cluster): retryable.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored bytes that do not decode: a bug or corruption.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The write touches a slot this store may not write now (frozen for
    /// a move, staged, or not its own): refused before any effect.
    #[error("slot not writable here: {0}")]
    Frozen(String),
}

impl From<StorageError> for kinto_proto::KintoError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Unavailable(m) => kinto_proto::KintoError::unavailable(m),
            StorageError::Corrupt(m) => kinto_proto::KintoError::internal(m),
            StorageError::Frozen(m) => kinto_proto::KintoError::new(kinto_proto::ErrorKind::Frozen)
                .with_details(serde_json::Value::String(m)),
        }
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// What makes a shared store refuse every later write of another shard: the
/// fence of an old owner that does not answer its freeze (docs/placement.md,
/// section 6, path 2). Only CQL with `cql_shard_roles` has one.
#[async_trait]
pub trait ShardFence: Send + Sync {
    /// Fences shard `shard`; returns what it revoked. An error when there was
    /// nothing to revoke: that shard's writes would go on.
    async fn fence(&self, shard: u32) -> Result<Vec<String>, String>;
}

/// The fence `cfg`'s store offers, if any.
pub fn shard_fence(cfg: &crate::config::ShardConfig) -> Option<std::sync::Arc<dyn ShardFence>> {
    match cfg.storage_backend.as_str() {
        #[cfg(feature = "cql")]
        "cql" if cfg.cql.cql_shard_roles => Some(std::sync::Arc::new(cql::roles::RoleFence::new(
            cfg.cql.clone(),
        ))),
        _ => None,
    }
}

/// The backend a process opens its shards' storage from (`storage_backend`).
/// Each is a cargo feature of this crate; a build without one refuses its
/// name at start-up rather than falling back to another.
pub enum Backend {
    /// One store per shard, in its own directory.
    #[cfg(feature = "embedded")]
    Embedded,
    /// One cluster session shared by every shard of the process.
    #[cfg(feature = "cql")]
    Cql(std::sync::Arc<cql::Cluster>),
}

impl Backend {
    pub async fn connect(cfg: &crate::config::ShardConfig) -> Result<Self, String> {
        match cfg.storage_backend.as_str() {
            #[cfg(feature = "embedded")]
            "embedded" => Ok(Backend::Embedded),
            #[cfg(feature = "cql")]
            "cql" => Ok(Backend::Cql(cql::Cluster::connect(&cfg.cql).await?)),
            other if other == "embedded" || other == "cql" => Err(format!(
                "storage_backend: {other:?} is not built into this binary (cargo feature {other:?} of kinto-shard)"
            )),
            other => Err(format!(
                "storage_backend: unknown backend {other:?} (embedded, cql)"
            )),
        }
    }

    /// [`Backend::connect`] for the one shard `index` a `kinto-shard` serves:
    /// on CQL, under a role of its own when `cql_shard_roles` is set.
    pub async fn connect_shard(
        cfg: &crate::config::ShardConfig,
        index: u32,
    ) -> Result<Self, String> {
        let _ = index;
        match cfg.storage_backend.as_str() {
            #[cfg(feature = "cql")]
            "cql" => Ok(Backend::Cql(
                cql::Cluster::connect_shard(&cfg.cql, index).await?,
            )),
            _ => Self::connect(cfg).await,
        }
    }

    /// Resolves once the store refuses this process's writes for good (a
    /// rebalance fenced its CQL role); never on the embedded store.
    pub async fn fenced(&self) {
        match self {
            #[cfg(feature = "embedded")]
            Backend::Embedded => std::future::pending().await,
            #[cfg(feature = "cql")]
            Backend::Cql(cluster) => cluster.fenced().await,
        }
    }

    /// Whether [`Backend::fenced`] has resolved.
    pub fn is_fenced(&self) -> bool {
        match self {
            #[cfg(feature = "embedded")]
            Backend::Embedded => false,
            #[cfg(feature = "cql")]
            Backend::Cql(cluster) => cluster.is_fenced(),
        }
    }

    /// Whether shards pin their buckets to their own directories (the
    /// layout of a data directory is then fixed by the shard count).
    pub fn is_local(&self) -> bool {
        match self {
            #[cfg(feature = "embedded")]
            Backend::Embedded => true,
            #[cfg(feature = "cql")]
            Backend::Cql(_) => false,
        }
    }

    /// Where the deployment's shard map is stored, and how errors name it:
    /// the placement directory of an embedded deployment, the keyspace of a
    /// CQL one (its shards share one map, as they share the data).
    pub async fn map_store(
        &self,
        cfg: &crate::config::ShardConfig,
    ) -> Result<(std::sync::Arc<dyn kinto_placement::store::MapStore>, String), String> {
        match self {
            #[cfg(feature = "embedded")]
            Backend::Embedded => {
                let dir = cfg.placement_dir();
                let place = dir.display().to_string();
                Ok((
                    std::sync::Arc::new(kinto_placement::file_store::FileMapStore::new(dir)),
                    place,
                ))
            }
            #[cfg(feature = "cql")]
            Backend::Cql(cluster) => Ok((
                std::sync::Arc::new(cluster.map_store().await?),
                format!("keyspace {}", cluster.keyspace()),
            )),
        }
    }

    /// The storage of shard `index` of `count`.
    pub fn open(
        &self,
        cfg: &crate::config::ShardConfig,
        index: u32,
        count: u32,
    ) -> Result<std::sync::Arc<dyn Storage>, String> {
        // Each backend reads only some of these.
        let _ = (cfg, index, count);
        match self {
            #[cfg(feature = "embedded")]
            Backend::Embedded => Ok(embedded::EmbeddedStorage::open(
                &cfg.data_dir,
                cfg.fsync_interval(),
                cfg.cache_bytes(),
                cfg.memtable_bytes(),
            )
            .map_err(|e| format!("cannot open store in {}: {e}", cfg.data_dir.display()))?),
            #[cfg(feature = "cql")]
            Backend::Cql(cluster) => Ok(cluster.storage(index, count)),
        }
    }
}

#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// The object or tombstone at `(parent, resource, id)`.
    async fn get(
        &self,
        parent: &str,
        resource: &str,
        id: &str,
    ) -> StorageResult<Option<StoredObject>>;

    /// The list `(parent, resource)`, in no particular order. With `since`,
    /// only rows whose `last_modified` is greater, found through the
    /// timestamp index (`Some(0)`, the whole list, may be read without it).
    /// Tombstones only when `with_tombstones`.
    async fn list(
        &self,
        parent: &str,
        resource: &str,
        since: Option<u64>,
        with_tombstones: bool,
    ) -> StorageResult<Vec<StoredObject>>;

    /// Up to `range.limit` rows of a list along `range`. Memory and work are
    /// bounded by that limit (plus the
    /// tombstones skipped), never by the list: this is how a list request
    /// reads one page of a large list. The default reads the whole list and
    /// suits only a backend that never holds large lists.
    async fn scan(&self, range: &Range<'_>) -> StorageResult<Chunk> {
        let (parent, resource) = (range.parent, range.resource);
        let rows = self.list(parent, resource, None, range.tombstones).await?;
        scan::from_whole_list(rows, range)
    }

    /// The first `page` rows of `range` that `after` keeps, printed one
    /// after another as the walk reads them, and whether one more follows:
    /// for a page that is only printed (`range` lean, without permissions or
    /// fields; no filter but the `last_modified` bounds of `range` itself),
    /// so no row is built. `None`: the caller walks with [`Storage::scan`].
    /// A backend answers `None` when it does not print pages, or when it
    /// could not in a walk of about `page` rows (tombstones skipped, rows
    /// tied on `last_modified`, whose order the caller settles).
    async fn print_page(
        &self,
        _range: &Range<'_>,
        _page: usize,
        _after: &After<'_>,
    ) -> StorageResult<Option<PrintedPage>> {
        Ok(None)
    }

    /// The live objects (tombstones excluded) of the list `(parent,
    /// resource)`: a counter every commit adjusts in its own batch, so
    /// reading it costs one key, whatever the list's size.
    async fn count(&self, parent: &str, resource: &str) -> StorageResult<u64>;

    /// Every object whose ACL names `principal` (under any permission), from
    /// the principal index every commit maintains in its own batch: the cost
    /// follows what the principal is granted, not what the store holds.
    /// A backend shared by several shards returns this shard's objects only.
    async fn granted(&self, principal: &str) -> StorageResult<Vec<Grant>>;

    /// The list's timestamp, if it was ever set.
    async fn timestamp(&self, parent: &str, resource: &str) -> StorageResult<Option<u64>>;

    /// Group URIs listing any of `principals` as a member.
    async fn groups_of(&self, principals: &[String]) -> StorageResult<Vec<String>>;

    /// Apply every write, all or none. Visible to readers when it returns;
    /// durable once [`Storage::persist`] returns.
    ///
    /// The caller serialises the writes of one bucket, and of the top-level
    /// lists (the domain's write locks): a backend may read the versions a
    /// commit replaces before it applies them, without a lock of its own.
    async fn commit(&self, writes: Vec<Write>) -> StorageResult<()>;

    /// Make every commit so far survive a kill of this process (and, with
    /// an fsync per commit configured, a crash of the machine). The shard
    /// calls it once per gRPC call, before answering, so a `/batch` of 25
    /// pays one journal write instead of 25. A backend whose commits are
    /// durable when they return keeps this default.
    async fn persist(&self) -> StorageResult<()> {
        Ok(())
    }

    /// Make every commit so far survive a crash of the machine, before the
    /// process exits (a stop by SIGTERM): with a periodic fsync, the last
    /// interval's commits would otherwise be only in the OS's cache. A
    /// backend whose commits are durable when they return keeps this default.
    async fn close(&self) -> StorageResult<()> {
        Ok(())
    }

    /// Remove everything (tests' `__flush__`).
    async fn flush(&self) -> StorageResult<()>;

    /// Can the backend read and write now?
    async fn health(&self) -> StorageResult<()>;

    /// The moves of a store that holds its slots' data itself (the
    /// embedded backend), `None` where the data stays put.
    fn slot_moves(&self) -> Option<&dyn slots::SlotMoves> {
        None
    }
}

#[cfg(test)]
mod view_tests {
    use super::StoredObject;
    use serde_json::json;

    #[test]
    fn printed_object_is_the_printed_value() {
        let mut live = StoredObject {
            id: "r1".into(),
            last_modified: 42,
            deleted: false,
            data: json!({"title": "a \"b\"", "n": [1, 2.5, {"x": null}]})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            permissions: Default::default(),
        };
        let printed = |o: &StoredObject| String::from_utf8(o.print_json()).unwrap();
        assert_eq!(
            printed(&live),
            serde_json::to_string(&live.to_json()).unwrap()
        );
        live.deleted = true;
        assert_eq!(
            printed(&live),
            r#"{"id":"r1","last_modified":42,"deleted":true}"#
        );
        assert_eq!(
            printed(&live),
            serde_json::to_string(&live.to_json()).unwrap()
        );
    }
}
