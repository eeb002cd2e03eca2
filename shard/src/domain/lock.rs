//! Step 1 of a write: the lock. A bucket has one writer (this shard), and
//! every write of a bucket holds its lock from the first read to the commit,
//! so what was checked is still true when it is written.

use super::resource::{Kind, Target};
use super::Shard;
use tokio::sync::{Mutex, MutexGuard};

/// How many bucket locks; buckets hash onto them.
const LOCK_STRIPES: usize = 1024;

/// The shard's write locks.
pub(super) struct WriteLocks {
    buckets: Vec<Mutex<()>>,
    /// Serialises writes of the bucket list (`parent = ""`), shared by every
    /// bucket of the shard. Always taken after a bucket lock, never before.
    root: Mutex<()>,
}

impl WriteLocks {
    pub fn new() -> Self {
        WriteLocks {
            buckets: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            root: Mutex::new(()),
        }
    }
}

/// Locks held by one write.
pub(super) struct WriteGuard<'a> {
    _bucket: MutexGuard<'a, ()>,
    _root: Option<MutexGuard<'a, ()>>,
}

impl Shard {
    /// The locks a write of `t` holds until it has committed (not reentrant).
    pub(super) async fn lock_for_write(&self, t: &Target) -> WriteGuard<'_> {
        let stripe = stripe_of(&t.bucket);
        let bucket = self.locks.buckets[stripe].lock().await;
        // Buckets and accounts share their shard's top-level lists.
        let root = if matches!(t.kind, Kind::Bucket | Kind::Account) {
            Some(self.locks.root.lock().await)
        } else {
            None
        };
        WriteGuard {
            _bucket: bucket,
            _root: root,
        }
    }
}

fn stripe_of(bucket: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bucket.hash(&mut h);
    (h.finish() as usize) % LOCK_STRIPES
}
