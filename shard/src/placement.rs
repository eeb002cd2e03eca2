//! The map a shard serves by (docs/placement.md, sections 3 and 9): on the
//! embedded store, the map stored in the placement directory, watched every
//! `placement_poll_ms`; on CQL, whose stored map is not read yet, the
//! static map of `shard_count` shards.

use kinto_placement::live::{LiveMap, Placement};
use kinto_placement::map::ShardMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The static map of `count` shards, which never changes.
pub fn fixed(count: u32) -> Arc<LiveMap> {
    LiveMap::fixed(Placement::fixed(count))
}

/// The map stored in `dir` (read as `map` at start-up), watched every
/// `poll`. A map that cannot be read later is logged and the last good one
/// kept.
pub fn watched(dir: &Path, map: &ShardMap, poll: Duration) -> Result<Arc<LiveMap>, String> {
    let live = LiveMap::stored(dir, map);
    live.watch(
        poll,
        |e| tracing::warn!(error = %e, "cannot read the shard map"),
    )?;
    Ok(live)
}
