//! Settings of the CQL backend and the one driver session a process shares.
//!
//! Every setting has a `cql_` prefix (docs/configuration.md). The session is
//! built once per process: the driver keeps its own connection pools per
//! node, so more sessions would only multiply connections.

use kinto_runtime::settings::{de_list, de_opt_string, de_opt_u64};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::retry::DefaultRetryPolicy;
use scylla::statement::Consistency;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
pub struct CqlSettings {
    /// `host:port` of one or more nodes; the driver discovers the others.
    #[serde(default = "default_contact_points", deserialize_with = "de_list")]
    pub cql_contact_points: Vec<String>,
    #[serde(default = "default_keyspace")]
    pub cql_keyspace: String,
    /// The keyspace's replication map, used only by `kinto-shard migrate`.
    #[serde(default = "default_replication")]
    pub cql_replication: String,
    /// Consistency of every read and write (ONE, LOCAL_ONE, QUORUM, LOCAL_QUORUM, ALL, …).
    #[serde(default = "default_consistency")]
    pub cql_consistency: String,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub cql_username: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub cql_password: Option<String>,
    /// Each `kinto-shard` writes under a role of its own, created at start-up
    /// with the login above (which must be allowed to create roles and grant
    /// on the keyspace), so that a rebalance can fence a shard that does not
    /// answer (docs/placement.md, section 6).
    #[serde(default)]
    pub cql_shard_roles: bool,
    /// PEM file of the CA that signed the nodes' certificates: setting it turns TLS on.
    #[serde(default, deserialize_with = "de_opt_string")]
    pub cql_tls_ca_file: Option<String>,
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub cql_connect_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub cql_request_timeout_ms: Option<u64>,
    /// Rows per page when a list is read.
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub cql_page_size: Option<u64>,
}

fn default_contact_points() -> Vec<String> {
    vec!["127.0.0.1:9042".into()]
}
fn default_keyspace() -> String {
    "kinto".into()
}
fn default_replication() -> String {
    "{'class': 'SimpleStrategy', 'replication_factor': 1}".into()
}
fn default_consistency() -> String {
    "LOCAL_QUORUM".into()
}

impl CqlSettings {
    pub fn consistency(&self) -> Result<Consistency, String> {
        Ok(match self.cql_consistency.to_ascii_uppercase().as_str() {
            "ANY" => Consistency::Any,
            "ONE" => Consistency::One,
            "TWO" => Consistency::Two,
            "THREE" => Consistency::Three,
            "QUORUM" => Consistency::Quorum,
            "ALL" => Consistency::All,
            "LOCAL_QUORUM" => Consistency::LocalQuorum,
            "EACH_QUORUM" => Consistency::EachQuorum,
            "LOCAL_ONE" => Consistency::LocalOne,
            other => return Err(format!("cql_consistency: unknown level {other:?}")),
        })
    }

    /// The keyspace name, checked: it is spliced into CQL text.
    pub fn keyspace(&self) -> Result<&str, String> {
        let k = self.cql_keyspace.as_str();
        let ok = !k.is_empty()
            && k.len() <= 48
            && k.starts_with(|c: char| c.is_ascii_alphabetic())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ok {
            Ok(k)
        } else {
            Err(format!(
                "cql_keyspace: {k:?} is not a valid keyspace name (letters, digits, _; at most 48)"
            ))
        }
    }

    pub fn page_size(&self) -> i32 {
        self.cql_page_size.unwrap_or(5000).clamp(1, i32::MAX as u64) as i32
    }

    /// Connects to the cluster. Reads and writes share one execution profile:
    /// the configured consistency, a client-side timeout, and the driver's
    /// default retry policy (retries what is safe: unavailable replicas on
    /// another node, read timeouts once, idempotent writes).
    pub async fn connect(&self) -> Result<Arc<Session>, String> {
        let login = self
            .cql_username
            .as_deref()
            .zip(self.cql_password.as_deref());
        self.connect_as(login).await
    }

    /// [`CqlSettings::connect`] with another login (a shard's own role).
    pub async fn connect_as(&self, login: Option<(&str, &str)>) -> Result<Arc<Session>, String> {
        let timeout = Duration::from_millis(self.cql_request_timeout_ms.unwrap_or(5000));
        let profile = ExecutionProfile::builder()
            .consistency(self.consistency()?)
            .request_timeout(Some(timeout))
            .retry_policy(Arc::new(DefaultRetryPolicy::new()))
            .build();
        let mut builder = SessionBuilder::new()
            .known_nodes(&self.cql_contact_points)
            .connection_timeout(Duration::from_millis(
                self.cql_connect_timeout_ms.unwrap_or(5000),
            ))
            .default_execution_profile_handle(profile.into_handle());
        if let Some((user, password)) = login {
            builder = builder.user(user, password);
        }
        if let Some(ca) = &self.cql_tls_ca_file {
            builder = builder.tls_context(Some(tls_config(ca)?));
        }
        let session = builder.build().await.map_err(|e| {
            format!(
                "cannot connect to Cassandra/ScyllaDB at {}: {e}",
                self.cql_contact_points.join(",")
            )
        })?;
        Ok(Arc::new(session))
    }
}

/// A rustls client configuration trusting only the CA in `ca_file`.
fn tls_config(ca_file: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| format!("cql_tls_ca_file {ca_file}: {e}"))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("cql_tls_ca_file {ca_file}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("cql_tls_ca_file {ca_file}: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
