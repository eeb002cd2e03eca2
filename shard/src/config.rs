//! The settings of a shard node (docs/configuration.md).

#[cfg(feature = "cql")]
use crate::storage::cql::settings::CqlSettings;
use kinto_runtime::settings::{de_opt_u64, RawSettings};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
pub struct ShardConfig {
    #[serde(default = "default_bind")]
    pub bind: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub shard_index: Option<u64>,
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub shard_count: Option<u64>,
    /// Where the embedded deployment's shard map is kept (default
    /// `data_dir/placement`); shards given the same directory share one map.
    #[serde(default)]
    pub placement_dir: Option<PathBuf>,
    /// The stored map decides the shard count, which an operator changes by
    /// moving slots (the Helm chart on CQL): `shard_count` then only seeds a
    /// new deployment's first map, and is not compared with the stored one.
    #[serde(default)]
    pub placement_managed: bool,
    /// How often the stored shard map is checked for a change (a `stat`).
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub placement_poll_ms: Option<u64>,
    /// A shard answers only while it read the stored map less than this
    /// ago (default 10; docs/placement.md section 4); then it reads it first.
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub placement_lease_seconds: Option<u64>,
    /// Slots moved together by `kinto-shard admin rebalance` (default 16):
    /// each is frozen for the time its batch takes to copy.
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub move_batch_slots: Option<u64>,
    /// How long a rebalance waits for the old owner to freeze a batch (and
    /// for the copy to start) before it rolls the batch back (default 5).
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub freeze_timeout_seconds: Option<u64>,
    /// With `cql_shard_roles`: how long a rebalance waits, after revoking the
    /// role of an old owner that did not answer its freeze, before the new
    /// owner acquires (default 20): the permission cache, plus the time a
    /// batch accepted before the revocation may still be applied.
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub fence_grace_seconds: Option<u64>,
    /// 0 = fsync every commit; otherwise the journal is fsynced this often
    /// (writes are in the OS before they are acknowledged either way).
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub storage_fsync_interval_ms: Option<u64>,
    /// The embedded store's block cache, in MiB (fjall's default, 32).
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub storage_cache_mb: Option<u64>,
    /// The embedded store's memtable size per keyspace, in MiB (fjall's
    /// default, 64); fixed when a store is created.
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub storage_memtable_mb: Option<u64>,
    /// Entries per shard in each of the shard's caches (group memberships,
    /// buckets and collections, list timestamps). Memory for speed: a cache
    /// that holds the active users' parents spares each request its cold
    /// reads (docs/benchmarks.md).
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub shard_cache_entries: Option<u64>,
    /// Next pages a shard prints ahead at once for clients that follow
    /// `Next-Page` (default 2; 0 turns read-ahead off): the page is ready
    /// when the client, done with the one before, asks for it
    /// (`domain/read_ahead.rs`).
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub list_read_ahead: Option<u64>,
    /// The longest one operation may run before it answers 503 (the
    /// gateway's `request_timeout_seconds`; a caller's shorter deadline wins).
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub request_timeout_seconds: Option<u64>,
    /// On SIGTERM, how long the shard keeps refusing new operations on its
    /// open connections after the last running one ended, before it closes
    /// them (default 1000): a call already on its way meets a refusal the
    /// gateway retries, not a closing connection (`drain.rs`).
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub shutdown_refuse_ms: Option<u64>,
    /// Where a shard in its own process serves its Prometheus metrics.
    #[serde(default, deserialize_with = "kinto_runtime::settings::de_opt_string")]
    pub metrics_bind: Option<String>,
    /// `embedded` (a store under `data_dir`) or `cql` (ScyllaDB / Cassandra, the `cql_*` settings).
    #[serde(default = "default_backend")]
    pub storage_backend: String,
    /// The shard's certificate chain and key for its gRPC port (TLS).
    #[serde(default, deserialize_with = "kinto_runtime::settings::de_opt_string")]
    pub grpc_server_cert_file: Option<String>,
    #[serde(default, deserialize_with = "kinto_runtime::settings::de_opt_string")]
    pub grpc_server_key_file: Option<String>,
    /// The CA gateways' client certificates must chain to; when set, a
    /// caller without such a certificate is refused (mutual TLS), since the
    /// shard believes the caller identity a request carries.
    #[serde(default, deserialize_with = "kinto_runtime::settings::de_opt_string")]
    pub grpc_client_ca_file: Option<String>,
    /// Serve gRPC without mutual TLS on an address other than loopback.
    #[serde(default)]
    pub grpc_insecure: bool,
    #[cfg(feature = "cql")]
    #[serde(flatten)]
    pub cql: CqlSettings,
    /// Bounded concurrency and queues (`admission`).
    #[serde(flatten)]
    pub admission: crate::admission::GateSettings,
}

fn default_backend() -> String {
    "embedded".into()
}

fn default_bind() -> String {
    "127.0.0.1:9000".into()
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}

impl ShardConfig {
    pub fn from_raw(raw: &RawSettings) -> Result<Self, String> {
        raw.parse()
    }

    pub fn fsync_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.storage_fsync_interval_ms.unwrap_or(1000))
    }

    pub fn shutdown_refuse(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.shutdown_refuse_ms.unwrap_or(1000))
    }

    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.request_timeout_seconds
                .unwrap_or(kinto_proto::limits::DEFAULT_REQUEST_TIMEOUT_SECONDS)
                .max(1),
        )
    }

    pub fn move_batch_slots(&self) -> usize {
        self.move_batch_slots.unwrap_or(16).clamp(1, 4096) as usize
    }

    pub fn placement_lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.placement_lease_seconds.unwrap_or(10).max(1))
    }

    pub fn fence_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.fence_grace_seconds.unwrap_or(20))
    }

    pub fn freeze_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.freeze_timeout_seconds.unwrap_or(5).max(1))
    }

    /// The directory of the stored shard map.
    pub fn placement_dir(&self) -> PathBuf {
        self.placement_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("placement"))
    }

    pub fn placement_poll(&self) -> std::time::Duration {
        std::time::Duration::from_millis(
            self.placement_poll_ms
                .unwrap_or(DEFAULT_PLACEMENT_POLL_MS)
                .max(1),
        )
    }

    pub fn cache_bytes(&self) -> u64 {
        mib(self.storage_cache_mb.unwrap_or(DEFAULT_CACHE_MB))
    }

    /// At least 1: a cache of no entries would still be locked and searched.
    pub fn cache_entries(&self) -> usize {
        let n = self
            .shard_cache_entries
            .unwrap_or(DEFAULT_CACHE_ENTRIES)
            .max(1);
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    pub fn read_ahead(&self) -> usize {
        let n = self.list_read_ahead.unwrap_or(DEFAULT_READ_AHEAD);
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// At least 1 MiB: fjall would rotate a zero-sized memtable on every write.
    pub fn memtable_bytes(&self) -> u64 {
        mib(self
            .storage_memtable_mb
            .unwrap_or(DEFAULT_MEMTABLE_MB)
            .max(1))
    }
}

/// A second: a change is also seen at once by a shard a caller is ahead
/// of, so polling only bounds how long an idle process lags.
pub const DEFAULT_PLACEMENT_POLL_MS: u64 = 1000;

/// fjall's own defaults, kept so a store sized by this file matches one
/// opened by fjall's defaults (the storage bench uses them too).
pub const DEFAULT_CACHE_MB: u64 = 32;
pub const DEFAULT_MEMTABLE_MB: u64 = 64;

/// With it the whole server was ~1.7 GB resident at 1M users in 4 shards,
/// and ~2.7 GB with 600000 (docs/benchmarks.md). The maps grow as they fill.
pub const DEFAULT_CACHE_ENTRIES: u64 = 100_000;

/// One walker's next page being printed while another's is: more would
/// take a loaded shard's CPU from requests for pages nobody may ask.
pub const DEFAULT_READ_AHEAD: u64 = 2;

fn mib(n: u64) -> u64 {
    n.saturating_mul(1024 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> ShardConfig {
        let map = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
            .collect();
        ShardConfig::from_raw(&RawSettings(map)).expect("valid settings")
    }

    #[test]
    fn block_cache_defaults_to_fjalls_and_reads_environment_strings() {
        assert_eq!(config(&[]).cache_bytes(), 32 * 1024 * 1024);
        let c = config(&[("storage_cache_mb", "256")]);
        assert_eq!(c.cache_bytes(), 256 * 1024 * 1024);
    }

    #[test]
    fn cache_entries_default_and_are_never_zero() {
        assert_eq!(config(&[]).cache_entries(), 100_000);
        let c = config(&[("shard_cache_entries", "600000")]);
        assert_eq!(c.cache_entries(), 600_000);
        assert_eq!(config(&[("shard_cache_entries", "0")]).cache_entries(), 1);
    }

    #[test]
    fn read_ahead_defaults_to_two_and_zero_turns_it_off() {
        assert_eq!(config(&[]).read_ahead(), 2);
        assert_eq!(config(&[("list_read_ahead", "0")]).read_ahead(), 0);
        assert!(ShardConfig::from_raw(&RawSettings(
            [(
                "list_read_ahead".to_owned(),
                serde_json::Value::from("many")
            )]
            .into_iter()
            .collect()
        ))
        .is_err());
    }

    #[test]
    fn memtable_defaults_to_fjalls_and_is_never_zero() {
        assert_eq!(config(&[]).memtable_bytes(), 64 * 1024 * 1024);
        let c = config(&[("storage_memtable_mb", "16")]);
        assert_eq!(c.memtable_bytes(), 16 * 1024 * 1024);
        let zero = config(&[("storage_memtable_mb", "0")]);
        assert_eq!(zero.memtable_bytes(), 1024 * 1024);
    }
}
