//! The map a shard serves by (docs/placement.md, sections 3 and 9): the
//! stored one (the placement directory's `map.json`, or the CQL keyspace's
//! `placement` row), watched every `placement_poll_ms`; or, for the
//! all-in-one binary on CQL, the static map of `shard_count` shards.

use kinto_placement::live::{LiveMap, Placement};
use kinto_placement::map::ShardMap;
use kinto_placement::store::MapSource;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The static map of `count` shards, which never changes.
pub fn fixed(count: u32) -> Arc<LiveMap> {
    LiveMap::fixed(Placement::fixed(count))
}

/// The map stored in `source` (read as `map` at start-up), watched every
/// `poll`. A map that cannot be read later is logged and the last good one
/// kept.
pub fn watched(
    source: Arc<dyn MapSource>,
    map: &ShardMap,
    poll: Duration,
) -> Result<Arc<LiveMap>, String> {
    let live = LiveMap::from_source(source, Placement::of(map));
    live.watch(
        poll,
        |e| tracing::warn!(error = %e, "cannot read the shard map"),
    )?;
    Ok(live)
}

/// The map stored in the placement directory `dir`.
pub fn watched_dir(dir: &Path, map: &ShardMap, poll: Duration) -> Result<Arc<LiveMap>, String> {
    watched(
        Arc::new(kinto_placement::file_store::FileMapStore::new(dir)),
        map,
        poll,
    )
}
