//! The settings of a shard node (docs/configuration.md).

use crate::storage::cql::settings::CqlSettings;
use kinto_proto::settings::{de_opt_u64, RawSettings};
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
    /// 0 = fsync every commit; otherwise the journal is fsynced this often
    /// (writes are in the OS before they are acknowledged either way).
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub storage_fsync_interval_ms: Option<u64>,
    /// `embedded` (a store under `data_dir`) or `cql` (ScyllaDB / Cassandra, the `cql_*` settings).
    #[serde(default = "default_backend")]
    pub storage_backend: String,
    #[serde(flatten)]
    pub cql: CqlSettings,
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
}

/// Kinto's default for who may create buckets.
pub fn default_grants(raw: &RawSettings) -> foldhash::HashMap<String, Vec<String>> {
    let mut grants: foldhash::HashMap<_, _> = raw.grants().into_iter().collect();
    grants
        .entry("bucket_create_principals".into())
        .or_insert_with(|| vec!["system.Authenticated".into()]);
    grants
}
