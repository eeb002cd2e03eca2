//! A provider's signing keys (JWKS), fetched on first use and again when a
//! token names a key we do not have (a key rotation), at most once per
//! `min_refresh`: tokens with made-up `kid`s cannot make us hammer the
//! provider.

use super::provider::{Answer, Http};
use jsonwebtoken::jwk::JwkSet;
use kinto_proto::KintoError;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};

pub struct Jwks {
    url: String,
    min_refresh: Duration,
    keys: RwLock<Option<Arc<JwkSet>>>,
    /// When the keys were last fetched; held while fetching, so concurrent
    /// misses make one call.
    fetched: Mutex<Option<Instant>>,
}

impl Jwks {
    pub fn new(url: String, min_refresh_seconds: u64) -> Self {
        Jwks {
            url,
            min_refresh: Duration::from_secs(min_refresh_seconds),
            keys: RwLock::new(None),
            fetched: Mutex::new(None),
        }
    }

    /// The key set, refreshed first when `kid` is not in it (and the last
    /// fetch is old enough). `Err` when the provider cannot be reached and
    /// no key set is known yet.
    pub async fn keys(&self, http: &Http, kid: Option<&str>) -> Result<Arc<JwkSet>, KintoError> {
        let has = |set: &JwkSet| kid.is_none_or(|k| set.find(k).is_some());
        if let Some(set) = self.keys.read().await.clone() {
            if has(&set) {
                return Ok(set);
            }
        }
        let mut fetched = self.fetched.lock().await;
        let current = self.keys.read().await.clone();
        if let Some(set) = &current {
            let recent = fetched.is_some_and(|t| t.elapsed() < self.min_refresh);
            if has(set) || recent {
                return Ok(set.clone());
            }
        }
        let fresh = match http.get::<JwkSet>(&self.url, None).await {
            Ok(Answer::Ok(set)) => Arc::new(set),
            Ok(Answer::Refused) => {
                return Err(super::provider::unavailable(&self.url, &"keys refused"))
            }
            Err(e) => match current {
                // A known key set still verifies the tokens it can.
                Some(set) => {
                    *fetched = Some(Instant::now());
                    return Ok(set);
                }
                None => return Err(e),
            },
        };
        *fetched = Some(Instant::now());
        *self.keys.write().await = Some(fresh.clone());
        Ok(fresh)
    }
}
