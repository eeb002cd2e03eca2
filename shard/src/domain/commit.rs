//! Steps 6 and 7 of a write: commit, then invalidate. [`Shard::commit`] is
//! the only way the domain writes: it counts quotas into the batch (the
//! quotas plugin, [`super::quota`]), commits the batch atomically, and keeps
//! the shard's cache true around it (see [`super::cache`]).

use super::cache::ShardCache;
use super::Shard;
use crate::storage::Write;
use kinto_proto::KintoError;

impl Shard {
    /// Commits `writes`, whose caller holds the lock of their bucket (and
    /// the root lock for top-level lists): quotas are checked and their
    /// counters added inside that lock; the cache forgets what the batch may
    /// make stale before and after the storage's commit, and remembers the
    /// list timestamps it set once they are stored.
    pub(super) async fn commit(&self, mut writes: Vec<Write>) -> Result<(), KintoError> {
        self.apply_quotas(&mut writes).await?;
        let stale = ShardCache::stales(&writes);
        let stamps = ShardCache::stamps(&writes);
        self.cache.forget(&stale);
        self.cache.forget_timestamps(&stamps, &stale.trees);
        let result = self.storage.commit(writes).await;
        self.cache.forget(&stale);
        if !stale.trees.is_empty() {
            self.cache.forget_timestamps(&stamps, &stale.trees);
        } else if result.is_ok() {
            for (key, value) in stamps {
                self.cache.remember_timestamp(key, value);
            }
        }
        Ok(result?)
    }
}
