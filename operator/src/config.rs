//! The operator's settings (docs/configuration.md, "kinto-operator"): the
//! same file + `KINTO_*` environment as the other binaries, and the
//! gateway's names for the gRPC client certificate settings.

use kinto_runtime::settings::{de_opt_string, de_opt_u64, RawSettings};
use kinto_runtime::tls;
use serde::Deserialize;
use std::time::Duration;
use tonic::transport::ClientTlsConfig;

#[derive(Debug, Clone, Deserialize)]
pub struct OperatorConfig {
    /// The namespace whose `KintoCluster` resources this operator manages
    /// (where its Lease lives too).
    #[serde(default, deserialize_with = "de_opt_string")]
    pub operator_namespace: Option<String>,
    /// This replica's name in the Lease (the pod's name in Kubernetes).
    #[serde(default, deserialize_with = "de_opt_string")]
    pub operator_identity: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub operator_lease_name: Option<String>,
    /// How long a leader's lease lasts without renewal.
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub operator_lease_seconds: Option<u64>,
    /// How often each `KintoCluster` is compared with what the shards say.
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub operator_poll_seconds: Option<u64>,
    /// The longest one call to a shard's admin API may take.
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub operator_shard_timeout_seconds: Option<u64>,
    /// The placement directory of an embedded deployment's shard map (the
    /// shards' `placement_dir`, a volume they share): set, the operator
    /// runs the moves a spec asks for; unset, it only reports.
    #[serde(default)]
    pub operator_placement_dir: Option<std::path::PathBuf>,
    /// How long a shard may take to freeze a batch of slots, and to answer
    /// each step after it.
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub operator_freeze_timeout_seconds: Option<u64>,
    /// With the map in the keyspace: how long the handoff of a batch waits
    /// after another shard fenced an old owner that did not answer its
    /// freeze (`ShardAdmin.Fence`, shards with `cql_shard_roles`); 0 rolls
    /// such a batch back instead. Must exceed the shards' `placement_lease_seconds`.
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub operator_fence_grace_seconds: Option<u64>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub grpc_server_ca_file: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub grpc_client_cert_file: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub grpc_client_key_file: Option<String>,
}

impl OperatorConfig {
    pub fn from_raw(raw: &RawSettings) -> Result<Self, String> {
        let cfg: OperatorConfig = raw.parse()?;
        if cfg.lease().as_secs() < 3 {
            return Err("operator_lease_seconds must be at least 3".into());
        }
        Ok(cfg)
    }

    pub fn namespace(&self) -> String {
        self.operator_namespace
            .clone()
            .unwrap_or_else(|| "default".into())
    }

    /// Unique per process when not given, so two replicas never share one.
    pub fn identity(&self) -> String {
        self.operator_identity.clone().unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default();
            format!("kinto-operator-{}-{nanos:x}", std::process::id())
        })
    }

    pub fn lease_name(&self) -> String {
        self.operator_lease_name
            .clone()
            .unwrap_or_else(|| "kinto-operator".into())
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.operator_lease_seconds.unwrap_or(15))
    }

    pub fn poll(&self) -> Duration {
        Duration::from_secs(self.operator_poll_seconds.unwrap_or(5).max(1))
    }

    pub fn shard_timeout(&self) -> Duration {
        Duration::from_secs(self.operator_shard_timeout_seconds.unwrap_or(5).max(1))
    }

    /// `None`: no fencing.
    pub fn fence_grace(&self) -> Option<Duration> {
        Some(Duration::from_secs(
            self.operator_fence_grace_seconds.unwrap_or(20),
        ))
        .filter(|d| !d.is_zero())
    }

    pub fn freeze_timeout(&self) -> Duration {
        Duration::from_secs(self.operator_freeze_timeout_seconds.unwrap_or(5).max(1))
    }

    /// TLS to the shards' gRPC port, as the gateway's (docs/security.md).
    pub fn shard_tls(&self) -> Result<Option<ClientTlsConfig>, String> {
        tls::shard_client(
            &self.grpc_server_ca_file,
            &self.grpc_client_cert_file,
            &self.grpc_client_key_file,
        )
    }
}
