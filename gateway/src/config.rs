//! The settings of the gateway (docs/configuration.md). Names are Kinto's
//! where the meaning is Kinto's.

use kinto_runtime::settings::{
    de_list, de_opt_string, de_opt_u64, de_string, plugin_enabled, RawSettings,
};
use serde::Deserialize;

fn default_bind() -> String {
    "127.0.0.1:8888".into()
}
fn default_project_name() -> String {
    "kinto".into()
}
fn default_project_docs() -> String {
    "https://kinto.readthedocs.io/".into()
}
fn default_batch_max() -> u64 {
    25
}
fn default_max_fetch() -> u64 {
    10_000
}
fn default_retry_after() -> u64 {
    3
}
fn default_cors_origins() -> Vec<String> {
    vec!["*".into()]
}
fn default_cors_max_age() -> u64 {
    3600
}
fn default_true() -> bool {
    true
}
fn default_max_body() -> u64 {
    1024 * 1024
}
fn default_request_timeout() -> u64 {
    kinto_proto::limits::DEFAULT_REQUEST_TIMEOUT_SECONDS
}
fn default_backoff_percentage() -> u64 {
    100
}

#[derive(Debug, Clone, Deserialize)]
pub struct GatewayConfig {
    #[serde(default = "default_bind")]
    pub bind: String,
    #[serde(default, deserialize_with = "de_list")]
    pub shard_urls: Vec<String>,
    #[serde(default, deserialize_with = "de_string")]
    pub userid_hmac_secret: String,
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub paginate_by: Option<u64>,
    #[serde(default = "default_max_fetch")]
    pub storage_max_fetch_size: u64,
    #[serde(default = "default_batch_max")]
    pub batch_max_requests: u64,
    #[serde(default, deserialize_with = "de_opt_u64")]
    pub backoff: Option<u64>,
    #[serde(default = "default_backoff_percentage")]
    pub backoff_percentage: u64,
    #[serde(default = "default_retry_after")]
    pub retry_after_seconds: u64,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub eos: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub eos_message: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub eos_url: Option<String>,
    #[serde(default = "default_cors_origins", deserialize_with = "de_list")]
    pub cors_origins: Vec<String>,
    #[serde(default = "default_cors_max_age")]
    pub cors_max_age_seconds: u64,
    #[serde(default)]
    pub readonly: bool,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub http_host: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub http_scheme: Option<String>,
    #[serde(default = "default_project_name")]
    pub project_name: String,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub project_version: Option<String>,
    #[serde(default = "default_project_docs")]
    pub project_docs: String,
    #[serde(default = "default_true")]
    pub trailing_slash_redirect_enabled: bool,
    #[serde(default = "default_true")]
    pub version_prefix_redirect_enabled: bool,
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
    /// The longest a request may take before it answers 503; shards get
    /// what is left of it with each call.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_seconds: u64,
    /// Kinto's `includes`: the built-in plugins enabled, by Kinto's module
    /// names (`kinto.plugins.default_bucket`, `…accounts`, `…history`,
    /// `…flush`, `…admin`); see [`GatewayConfig::plugin`].
    #[serde(default, deserialize_with = "de_list")]
    pub includes: Vec<String>,
    /// Kinto's `multiauth.policies`, in order: `account`, `basicauth`,
    /// `fxa`, and OpenID Connect policies by name (see [`Self::identity`]).
    #[serde(default = "default_policies", deserialize_with = "de_list")]
    pub multiauth_policies: Vec<String>,
    /// Key of the default bucket id HMAC; empty by default, as in Kinto.
    #[serde(default, deserialize_with = "de_string")]
    pub default_bucket_hmac_secret: String,
    /// How long an unused bcrypt verdict is kept (for the same stored hash).
    #[serde(default = "default_account_ttl")]
    pub account_cache_ttl_seconds: u64,
    /// How long a name a shard answered to be an account is remembered, to
    /// tell it from other names while its shard is down. Longer than
    /// `account_cache_ttl_seconds`: forgetting an account lets its owner run
    /// as a `basicauth:` user during an outage, while remembering a deleted
    /// one only costs that name a 503 during an outage.
    #[serde(default = "default_account_names_ttl")]
    pub account_names_ttl_seconds: u64,
    /// Kinto's switch for JSON-schema validation (checked by the shards).
    #[serde(default)]
    pub experimental_collection_schema_validation: bool,
    /// Kinto's switch for `GET /permissions` (the admin plugin turns it on too).
    #[serde(default)]
    pub experimental_permissions_endpoint: bool,
    /// `POST /__flush__` wipes every shard: test deployments only.
    #[serde(default)]
    pub flush_endpoint_enabled: bool,
    /// Every `<resource>_<permission>_principals` setting, with Kinto's
    /// defaults (filled by `from_raw`).
    #[serde(skip)]
    pub grants: foldhash::HashMap<String, Vec<String>>,
    /// Kinto's `admin_assets_path`: the kinto-admin build (`tools/admin/fetch`).
    #[serde(default, deserialize_with = "de_opt_string")]
    pub admin_assets_path: Option<String>,
    /// Rate limits, request limits and slow-client timeouts (`admission`).
    #[serde(flatten)]
    pub admission: crate::admission::settings::AdmissionSettings,
    /// The token policies' settings (filled by `from_raw`).
    #[serde(skip)]
    pub identity: crate::identity_config::IdentityConfig,
    /// The CA the shards' certificates must chain to; set, shards are called
    /// over TLS (`https://` in `shard_urls`).
    #[serde(default, deserialize_with = "de_opt_string")]
    pub grpc_server_ca_file: Option<String>,
    /// The gateway's client certificate chain and key, shown to shards that
    /// require one (mutual TLS).
    #[serde(default, deserialize_with = "de_opt_string")]
    pub grpc_client_cert_file: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub grpc_client_key_file: Option<String>,
    /// Call shards on addresses other than loopback without TLS.
    #[serde(default)]
    pub grpc_insecure: bool,
    /// The placement directory the shards of this machine share
    /// (`kinto-shard`'s `placement_dir`): set, buckets are routed by the
    /// live map stored there; unset, by the map the shards report (a CQL
    /// deployment's, stored in its keyspace).
    #[serde(default, deserialize_with = "de_opt_string")]
    pub placement_dir: Option<String>,
    /// How often the stored shard map is checked for a change.
    #[serde(default = "default_placement_poll_ms")]
    pub placement_poll_ms: u64,
}

fn default_placement_poll_ms() -> u64 {
    1000
}

fn default_policies() -> Vec<String> {
    vec!["basicauth".into()]
}

fn default_account_ttl() -> u64 {
    30
}

fn default_account_names_ttl() -> u64 {
    7 * 24 * 3600
}

impl GatewayConfig {
    pub fn from_raw(raw: &RawSettings) -> Result<Self, String> {
        let mut cfg: GatewayConfig = raw.parse()?;
        cfg.grants = kinto_model::grants::with_kinto_defaults(raw.grants());
        cfg.admission.check()?;
        let policies = &cfg.multiauth_policies;
        let pos = |name: &str| policies.iter().position(|p| p == name);
        if let (Some(account), Some(basic)) = (pos("account"), pos("basicauth")) {
            if basic < account {
                // Kinto refuses this too: basic auth accepts any password, so
                // every account login would become a `basicauth:` user.
                return Err("multiauth_policies: `account` must come before `basicauth`".into());
            }
        }
        // Refuses unknown policy names too.
        cfg.identity = crate::identity_config::IdentityConfig::from_raw(raw, policies)?;
        if pos("account").is_some() && !cfg.plugin("accounts") {
            return Err(
                "multiauth_policies has `account` but includes lacks kinto.plugins.accounts".into(),
            );
        }
        Ok(cfg)
    }

    /// Kinto serves `/permissions` when asked to, and whenever the admin UI is on.
    pub fn permissions_endpoint(&self) -> bool {
        self.experimental_permissions_endpoint || self.plugin("admin")
    }

    /// Is Kinto's built-in plugin `name` (e.g. `"history"`) enabled?
    pub fn plugin(&self, name: &str) -> bool {
        plugin_enabled(&self.includes, name)
    }
}
