//! Verdicts on bearer tokens, so a provider is asked once per token and TTL.
//!
//! * The key is an HMAC of the policy and the token under a key drawn at
//!   start-up: the cache never holds a token, and a dump of it gives none.
//! * An accepted token is trusted until the earliest of its `exp` and the
//!   TTLs configured, so a token revoked at the provider stops working
//!   within that time. A refused one is remembered briefly (a client
//!   retrying a bad token costs one provider call per negative TTL).
//! * Concurrent requests with one token share one verification
//!   (`try_get_with`). A provider error is not cached: each waiter gets the
//!   503 and the next request asks again.

use hmac::{Hmac, Mac};
use kinto_proto::KintoError;
use sha2::Sha256;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a policy learnt from a valid token.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The user id without the policy prefix (`sub`, FxA's `user`).
    pub user: String,
    /// The OAuth client the token was issued to, when the provider says.
    pub client_id: Option<String>,
    /// The token's `exp` (seconds since the epoch), when known.
    pub expires_at: Option<u64>,
}

struct Entry {
    verdict: Option<Verified>,
    ttl: Duration,
}

struct ByEntry;

impl moka::Expiry<[u8; 32], Arc<Entry>> for ByEntry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Arc<Entry>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

pub struct TokenCache {
    entries: moka::future::Cache<[u8; 32], Arc<Entry>>,
    key: [u8; 64],
    max_ttl: Duration,
    negative_ttl: Duration,
}

pub fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TokenCache {
    pub fn new(max_ttl_seconds: u64, negative_ttl_seconds: u64) -> Self {
        TokenCache {
            entries: moka::future::Cache::builder()
                .max_capacity(100_000)
                .expire_after(ByEntry)
                .build(),
            key: rand::random(),
            max_ttl: Duration::from_secs(max_ttl_seconds),
            negative_ttl: Duration::from_secs(negative_ttl_seconds),
        }
    }

    fn key_of(&self, policy: &str, token: &str) -> [u8; 32] {
        // A key of SHA-256's block size: HMAC uses it as it is.
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&self.key.into());
        mac.update(policy.as_bytes());
        mac.update(b"\n");
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The verdict on `token` for `policy`: cached, or `verify`'s (run once
    /// for all the concurrent callers), kept at most `policy_ttl_seconds`.
    pub async fn verdict<F>(
        &self,
        policy: &str,
        token: &str,
        policy_ttl_seconds: u64,
        verify: F,
    ) -> Result<Option<Verified>, KintoError>
    where
        F: Future<Output = Result<Option<Verified>, KintoError>>,
    {
        let key = self.key_of(policy, token);
        let max_ttl = self.max_ttl.min(Duration::from_secs(policy_ttl_seconds));
        let negative_ttl = self.negative_ttl;
        let entry = self
            .entries
            .try_get_with(key, async move {
                let verdict = verify.await?;
                let ttl = match &verdict {
                    Some(v) => {
                        let left = v
                            .expires_at
                            .map(|exp| Duration::from_secs(exp.saturating_sub(now_seconds())));
                        left.map_or(max_ttl, |l| l.min(max_ttl))
                    }
                    None => negative_ttl,
                };
                Ok::<_, KintoError>(Arc::new(Entry { verdict, ttl }))
            })
            .await
            .map_err(|e: Arc<KintoError>| (*e).clone())?;
        Ok(entry.verdict.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn valid(user: &str) -> Option<Verified> {
        Some(Verified {
            user: user.into(),
            client_id: None,
            expires_at: None,
        })
    }

    #[tokio::test]
    async fn concurrent_verifications_share_one_call() {
        let cache = Arc::new(TokenCache::new(60, 5));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (cache, calls) = (cache.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .verdict("p", "tok", 60, async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(valid("alice"))
                    })
                    .await
            }));
        }
        for t in tasks {
            let v = t.await.expect("task").expect("verdict");
            assert_eq!(v.map(|v| v.user).as_deref(), Some("alice"));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn errors_are_not_cached_and_keys_differ_by_policy() {
        let cache = TokenCache::new(60, 5);
        let e = cache
            .verdict("p", "tok", 60, async {
                Err(KintoError::new(kinto_proto::ErrorKind::Unavailable))
            })
            .await;
        assert!(e.is_err());
        let v = cache
            .verdict("p", "tok", 60, async { Ok(valid("a")) })
            .await;
        assert!(matches!(v, Ok(Some(_))));
        let other = cache.verdict("q", "tok", 60, async { Ok(None) }).await;
        assert!(matches!(other, Ok(None)));
        assert_ne!(cache.key_of("p", "tok"), cache.key_of("q", "tok"));
    }

    #[tokio::test]
    async fn an_expired_token_is_not_kept() {
        let cache = TokenCache::new(60, 5);
        let past = Some(Verified {
            user: "a".into(),
            client_id: None,
            expires_at: Some(now_seconds() - 10),
        });
        let _ = cache.verdict("p", "t", 60, async { Ok(past) }).await;
        let again = cache.verdict("p", "t", 60, async { Ok(None) }).await;
        assert!(matches!(again, Ok(None)));
    }
}
