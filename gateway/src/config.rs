//! The settings of the gateway (docs/configuration.md). Names are Kinto's
//! where the meaning is Kinto's.

use kinto_proto::settings::{de_list, de_opt_string, de_opt_u64, de_string, RawSettings};
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
}

impl GatewayConfig {
    pub fn from_raw(raw: &RawSettings) -> Result<Self, String> {
        raw.parse()
    }
}
