//! What `/batch` works out once for all its sub-requests: the caller of an
//! `Authorization` header, a bucket's shard (default buckets are remembered
//! for every request: `default_bucket::BucketIds`). Each
//! costs a SHA-256 (an account's caller, a shard call), and a batch's
//! sub-requests nearly always share them. Scoped to one batch and dropped
//! with it, so no credentials outlive the request.

use crate::app::App;
use crate::auth;
use foldhash::HashMap;
use kinto_proto::KintoError;
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
pub struct Memo {
    /// By `Authorization` header (`None`: no header).
    callers: Mutex<HashMap<Option<String>, auth::Identity>>,
    /// Shard index by bucket id.
    shards: Mutex<HashMap<String, usize>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned map only lost entries.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Memo {
    /// Forgets the callers: a sub-request that ran may have changed an
    /// account, and with it who the same credentials are.
    pub fn forget_callers(&self) {
        lock(&self.callers).clear();
    }
}

/// [`auth::identify_with_app`], once per header in a batch. Failures (a
/// shard or a provider that cannot answer) are not remembered.
pub async fn identify(
    memo: Option<&Memo>,
    app: &App,
    authorization: Option<&str>,
) -> Result<auth::Identity, KintoError> {
    let Some(memo) = memo else {
        return auth::identify_with_app(app, authorization).await;
    };
    let key = authorization.map(str::to_owned);
    if let Some(c) = lock(&memo.callers).get(&key) {
        return Ok(c.clone());
    }
    let identity = auth::identify_with_app(app, authorization).await?;
    lock(&memo.callers).insert(key, identity.clone());
    Ok(identity)
}

/// The shard of a bucket, once per bucket in a batch.
pub fn shard_of(memo: Option<&Memo>, app: &App, bucket: &str) -> usize {
    let Some(memo) = memo else {
        return app.shards.shard_of(bucket);
    };
    let mut shards = lock(&memo.shards);
    if let Some(&shard) = shards.get(bucket) {
        return shard;
    }
    let shard = app.shards.shard_of(bucket);
    shards.insert(bucket.to_owned(), shard);
    shard
}
