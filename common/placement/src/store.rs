//! Where a deployment's map lives, whatever holds it (docs/placement.md,
//! section 3, "Where the map is stored"): a file of one machine
//! ([`crate::file_store`]), a row of the CQL keyspace (in the shard crate,
//! which links the driver), or the shards themselves, asked over gRPC by a
//! gateway (in the gateway crate). The live map reads through
//! [`MapSource`]; the coordinator of moves changes the map through
//! [`MapStore`].
//!
//! Why async: two of the three answer over the network, and a blocking call
//! on a runtime worker would stall every request it serves.

use crate::map::{InvalidMap, ShardMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

/// Why the stored map could not be read or changed.
#[derive(Debug)]
pub enum StoreError {
    Io(PathBuf, std::io::Error),
    Invalid(PathBuf, InvalidMap),
    /// A store over the network: what it answered.
    Remote(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Io(path, e) => write!(f, "{}: {e}", path.display()),
            StoreError::Invalid(path, e) => write!(f, "{}: {e}", path.display()),
            StoreError::Remote(e) => write!(f, "the stored shard map: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// The outcome of a compare-and-set.
#[derive(Debug, PartialEq, Eq)]
pub enum Swap {
    /// The map is now the new one.
    Done,
    /// Another change came first: the map as it is now.
    Stale(Option<ShardMap>),
}

/// What a store's calls return.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where the map is read from.
pub trait MapSource: Send + Sync {
    /// The stored map, or `None` before the first one is stored.
    fn load(&self) -> StoreFuture<'_, Option<ShardMap>>;

    /// The stored map if it is newer than generation `known`, `None` if not.
    /// A store with a cheaper "has it changed" check than a read (a `stat`)
    /// overrides it.
    fn poll(&self, known: u64) -> StoreFuture<'_, Option<ShardMap>> {
        Box::pin(async move { Ok(self.load().await?.filter(|m| m.generation > known)) })
    }
}

/// A map that can be changed: by compare-and-set on the generation only.
pub trait MapStore: MapSource {
    /// Stores `next` if the stored generation is `expected` (`None`: no map
    /// stored yet). `next` must have a greater generation.
    fn compare_and_set<'a>(
        &'a self,
        expected: Option<u64>,
        next: &'a ShardMap,
    ) -> StoreFuture<'a, Swap>;
}

/// The stored map, or the static map of `shards` shards, stored now when
/// there is none (by whichever process of the deployment comes first). The
/// caller compares the stored map's shard count with its own.
pub async fn open_or_init(store: &dyn MapStore, shards: u32) -> Result<ShardMap, StoreError> {
    if let Some(map) = store.load().await? {
        return Ok(map);
    }
    let initial = ShardMap::initial(shards, &[]);
    match store.compare_and_set(None, &initial).await? {
        Swap::Done => Ok(initial),
        Swap::Stale(Some(map)) => Ok(map),
        Swap::Stale(None) => Err(StoreError::Remote("the map vanished".into())),
    }
}

/// Why a compare-and-set cannot even be tried: `next` does not follow
/// `expected`, or is not a valid map.
pub fn check_successor(expected: Option<u64>, next: &ShardMap) -> Result<bool, InvalidMap> {
    next.validate()?;
    Ok(expected.is_none_or(|g| next.generation > g))
}
