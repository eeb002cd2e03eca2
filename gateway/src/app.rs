//! The gateway's shared state: configuration, shard map and caches. It
//! imports no handler, so every handler can take an [`App`].

use crate::config::GatewayConfig;
use crate::http::message::KRequest;
use crate::routing::ShardMap;
use std::sync::Arc;

/// Account names remembered per gateway (names are at most a few dozen
/// bytes in practice, so this stays within tens of MB).
const KNOWN_ACCOUNTS_CAPACITY: u64 = 200_000;

pub struct App {
    pub config: GatewayConfig,
    pub shards: ShardMap,
    /// Bcrypt's verdicts, positive and negative, by HMAC of name, stored
    /// hash and password (see `auth`).
    pub account_cache: moka::sync::Cache<String, bool>,
    /// Names a shard lately answered to be accounts: when their shard is
    /// down, they get 503 rather than another identity (see `auth`).
    pub known_accounts: moka::sync::Cache<String, ()>,
    pub bucket_ids: crate::http::default_bucket::BucketIds,
    pub admission: crate::admission::Admission,
    /// The token policies (OpenID Connect, FxA) and their verdict cache.
    pub identity: crate::auth::Tokens,
}

impl App {
    /// `Err` only when the HTTP client of the identity providers cannot be
    /// built (no TLS backend).
    pub fn new(config: GatewayConfig, shards: ShardMap) -> Result<Arc<Self>, String> {
        // Refreshed on use, as Kinto's: an active user pays bcrypt once.
        let account_cache = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_idle(std::time::Duration::from_secs(
                config.account_cache_ttl_seconds,
            ))
            .build();
        // Every lookup of an account refreshes its entry.
        let known_accounts = moka::sync::Cache::builder()
            .max_capacity(KNOWN_ACCOUNTS_CAPACITY)
            .time_to_live(std::time::Duration::from_secs(
                config.account_names_ttl_seconds,
            ))
            .build();
        let bucket_ids =
            crate::http::default_bucket::BucketIds::new(&config.default_bucket_hmac_secret);
        let admission = crate::admission::Admission::new(&config.admission);
        let identity = crate::auth::Tokens::new(&config.identity)?;
        Ok(Arc::new(App {
            admission,
            config,
            shards,
            account_cache,
            known_accounts,
            bucket_ids,
            identity,
        }))
    }

    /// `scheme://host` as clients reach us (`http_scheme`/`http_host` win).
    pub fn base_url(&self, req: &KRequest) -> String {
        let scheme = self.config.http_scheme.as_deref().unwrap_or("http");
        let host = self
            .config
            .http_host
            .clone()
            .or_else(|| req.header("host").map(str::to_owned))
            .unwrap_or_else(|| self.config.bind.clone());
        format!("{scheme}://{host}")
    }
}
