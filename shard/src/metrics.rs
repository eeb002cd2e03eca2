//! The shard's Prometheus metrics (in the process's default registry, which
//! the gateway's `/__metrics__` renders in the all-in-one binary and
//! `metrics_bind` serves for a separate shard process: `kinto_runtime::metrics`).

use prometheus::{
    register_histogram, register_histogram_vec, register_int_counter, register_int_counter_vec,
    register_int_gauge, register_int_gauge_vec, Histogram, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec,
};
use std::sync::LazyLock;

/// Buckets from 50 µs to 2.5 s: a shard operation is usually well under 1 ms.
const BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5,
];

pub static OPERATIONS: LazyLock<Option<HistogramVec>> = LazyLock::new(|| {
    register_histogram_vec!(
        "kinto_shard_operation_seconds",
        "Time to run one operation on a shard, by method and outcome (ok or the errno).",
        &["shard", "method", "outcome"],
        BUCKETS.to_vec()
    )
    .ok()
});

pub static IN_FLIGHT: LazyLock<Option<IntGaugeVec>> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "kinto_shard_queue_depth",
        "Operations in progress on a shard (waiting for a bucket lock included).",
        &["shard"]
    )
    .ok()
});

pub static CACHE: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    register_int_counter_vec!(
        "kinto_shard_cache_total",
        "Lookups in the shard's caches (groups of a principal, buckets and collections, list timestamps, pages read ahead), by result.",
        &["cache", "result"]
    )
    .ok()
});

/// The shard's caches, as named in the `cache` label.
#[derive(Clone, Copy)]
pub enum Cache {
    Groups,
    Parents,
    Timestamps,
    /// A page asked by its `_token`, printed ahead or not (`read_ahead.rs`).
    ReadAhead,
}

const CACHE_NAMES: [&str; 4] = ["groups", "parents", "timestamps", "read_ahead"];

/// The counters of [`CACHE`], resolved once: several lookups per operation
/// made `with_label_values` (hashing, a lock) a visible cost.
static CACHE_COUNTERS: LazyLock<Option<[[IntCounter; 2]; 4]>> = LazyLock::new(|| {
    let vec = CACHE.as_ref()?;
    Some(CACHE_NAMES.map(|name| ["miss", "hit"].map(|r| vec.with_label_values(&[name, r]))))
});

/// Counts one cache lookup; the hit rate is hit / (hit + miss).
pub fn cache_lookup(cache: Cache, hit: bool) {
    if let Some(c) = CACHE_COUNTERS.as_ref() {
        c[cache as usize][usize::from(hit)].inc();
    }
}

pub static QUOTA_REJECTIONS: LazyLock<Option<IntCounter>> = LazyLock::new(|| {
    register_int_counter!(
        "kinto_quota_rejections_total",
        "Writes refused with 507 because a quota would be exceeded."
    )
    .ok()
});

pub static COMMITS: LazyLock<Option<Histogram>> = LazyLock::new(|| {
    register_histogram!(
        "kinto_storage_commit_seconds",
        "Time of one atomic storage commit.",
        BUCKETS.to_vec()
    )
    .ok()
});

pub static MAP_GENERATION: LazyLock<Option<IntGauge>> = LazyLock::new(|| {
    register_int_gauge!(
        "kinto_shard_map_generation",
        "The generation of the shard map this process serves by."
    )
    .ok()
});

pub static SLOTS: LazyLock<Option<IntGaugeVec>> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "kinto_shard_slots",
        "Slots a shard owns in the map it serves by.",
        &["shard"]
    )
    .ok()
});

/// Keeps the map gauges of shard `index` up to date with `map`.
pub fn watch_map(map: &kinto_placement::live::LiveMap, index: u32) {
    let slots = SLOTS
        .as_ref()
        .map(|g| g.with_label_values(&[index.to_string().as_str()]));
    map.on_change(move |p| {
        if let Some(g) = MAP_GENERATION.as_ref() {
            g.set(i64::try_from(p.generation()).unwrap_or(i64::MAX));
        }
        if let Some(g) = &slots {
            g.set(i64::try_from(p.count_of(index)).unwrap_or(i64::MAX));
        }
    });
}
