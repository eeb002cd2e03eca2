//! Back-pressure at a shard: at most `shard_max_concurrency` operations run
//! at once, at most `shard_bucket_max_concurrency` of them on one bucket,
//! and each of the two has a bounded queue of waiters. A request that finds
//! its queue full, or that is still waiting at its deadline, is shed at
//! once with a 503 (the gateway adds `Retry-After`) rather than waiting in
//! a queue that grows without bound. The bucket's gate is passed first, so
//! a hot bucket can hold at most its own share of the shard's queue and the
//! other buckets still get the rest.

use kinto_proto::KintoError;
use prometheus::{register_int_counter_vec, register_int_gauge_vec, IntCounterVec, IntGaugeVec};
use serde::Deserialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

fn default_max_concurrency() -> usize {
    512
}
fn default_max_queue() -> usize {
    4096
}
fn default_bucket_max_concurrency() -> usize {
    64
}
fn default_bucket_max_queue() -> usize {
    512
}
fn default_pressure_backoff() -> u64 {
    5
}

/// The shard's admission settings (docs/configuration.md, "Admission control").
#[derive(Debug, Clone, Deserialize)]
pub struct GateSettings {
    #[serde(default = "default_max_concurrency")]
    pub shard_max_concurrency: usize,
    #[serde(default = "default_max_queue")]
    pub shard_max_queue: usize,
    #[serde(default = "default_bucket_max_concurrency")]
    pub shard_bucket_max_concurrency: usize,
    #[serde(default = "default_bucket_max_queue")]
    pub shard_bucket_max_queue: usize,
    /// The `Backoff` a shard asks of clients while under pressure (0: none).
    #[serde(default = "default_pressure_backoff")]
    pub shard_pressure_backoff_seconds: u64,
}

static SHED: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    register_int_counter_vec!(
        "kinto_shard_shed_total",
        "Operations a shard refused (503) before running them, by reason: shard_queue_full, bucket_queue_full, deadline.",
        &["shard", "reason"]
    )
    .ok()
});

static WAITING: LazyLock<Option<IntGaugeVec>> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "kinto_shard_admission_waiting",
        "Operations waiting for a shard's or a bucket's concurrency slot.",
        &["shard"]
    )
    .ok()
});

/// A semaphore with a bounded number of waiters.
struct Queue {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
}

impl Queue {
    fn new(slots: usize) -> Self {
        Queue {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            waiting: AtomicUsize::new(0),
        }
    }
}

/// Counts a waiter for as long as it waits, even if its future is dropped.
struct Waiting<'a>(&'a AtomicUsize, Option<&'a prometheus::IntGauge>);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
        if let Some(g) = self.1 {
            g.dec();
        }
    }
}

pub struct Gate {
    index: String,
    settings: GateSettings,
    shard: Queue,
    /// Buckets with an operation running or waiting; dropped when idle.
    buckets: Mutex<foldhash::HashMap<String, Arc<Queue>>>,
    waiting_gauge: Option<prometheus::IntGauge>,
}

/// The right to run one operation; its slots are freed when dropped.
pub struct Pass<'a> {
    _bucket: Option<BucketHold<'a>>,
    _shard: OwnedSemaphorePermit,
}

/// A bucket's queue in use (and its slot, once granted): the bucket is
/// forgotten when its last user drops it.
struct BucketHold<'a> {
    gate: &'a Gate,
    name: String,
    queue: Arc<Queue>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for BucketHold<'_> {
    fn drop(&mut self) {
        self.permit.take();
        let mut buckets = self.gate.lock_buckets();
        // Ours and the map's: nobody else uses this bucket's queue.
        if Arc::strong_count(&self.queue) == 2 {
            buckets.remove(&self.name);
        }
    }
}

impl Gate {
    pub fn new(index: u32, settings: GateSettings) -> Self {
        let index = index.to_string();
        let waiting_gauge = WAITING
            .as_ref()
            .map(|g| g.with_label_values(&[index.as_str()]));
        Gate {
            shard: Queue::new(settings.shard_max_concurrency),
            settings,
            index,
            buckets: Mutex::default(),
            waiting_gauge,
        }
    }

    fn lock_buckets(&self) -> std::sync::MutexGuard<'_, foldhash::HashMap<String, Arc<Queue>>> {
        // A panic while holding the lock leaves the map consistent.
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a slot on `bucket` (none for operations on no bucket) and
    /// one on the shard, until `deadline`.
    pub async fn admit(
        &self,
        bucket: &str,
        deadline: Option<Instant>,
    ) -> Result<Pass<'_>, KintoError> {
        let hold = match bucket {
            "" => None,
            name => {
                let max = self.settings.shard_bucket_max_concurrency;
                let queue = Arc::clone(
                    self.lock_buckets()
                        .entry(name.to_owned())
                        .or_insert_with(|| Arc::new(Queue::new(max))),
                );
                let mut hold = BucketHold {
                    gate: self,
                    name: name.to_owned(),
                    queue,
                    permit: None,
                };
                let limit = self.settings.shard_bucket_max_queue;
                let queue = Arc::clone(&hold.queue);
                hold.permit = Some(
                    self.wait(&queue, limit, deadline, "bucket_queue_full")
                        .await?,
                );
                Some(hold)
            }
        };
        let limit = self.settings.shard_max_queue;
        let shard = self
            .wait(&self.shard, limit, deadline, "shard_queue_full")
            .await?;
        Ok(Pass {
            _bucket: hold,
            _shard: shard,
        })
    }

    /// A slot of `queue`: at once if one is free, else after waiting in
    /// line if fewer than `limit` wait, until `deadline`.
    async fn wait(
        &self,
        queue: &Queue,
        limit: usize,
        deadline: Option<Instant>,
        full: &str,
    ) -> Result<OwnedSemaphorePermit, KintoError> {
        if let Ok(permit) = Arc::clone(&queue.slots).try_acquire_owned() {
            return Ok(permit);
        }
        if queue.waiting.fetch_add(1, Ordering::Relaxed) >= limit {
            queue.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(self.shed(full));
        }
        if let Some(g) = &self.waiting_gauge {
            g.inc();
        }
        let _waiting = Waiting(&queue.waiting, self.waiting_gauge.as_ref());
        let acquire = Arc::clone(&queue.slots).acquire_owned();
        let permit = match deadline {
            Some(d) => tokio::time::timeout_at(d.into(), acquire)
                .await
                .map_err(|_| self.shed("deadline"))?,
            None => acquire.await,
        };
        // The semaphore is never closed.
        permit.map_err(|_| KintoError::internal("admission semaphore closed"))
    }

    fn shed(&self, reason: &str) -> KintoError {
        if let Some(c) = SHED.as_ref() {
            c.with_label_values(&[self.index.as_str(), reason]).inc();
        }
        KintoError::unavailable(format!("shard overloaded: {reason}"))
    }

    /// `Backoff` seconds to ask of clients now, if the shard is under
    /// pressure: someone waits, or fewer than a quarter of its slots are free.
    pub fn pressure(&self) -> Option<u64> {
        let seconds = self.settings.shard_pressure_backoff_seconds;
        let free = self.shard.slots.available_permits();
        let pressed = self.shard.waiting.load(Ordering::Relaxed) > 0
            || free * 4 < self.settings.shard_max_concurrency.max(1);
        (seconds > 0 && pressed).then_some(seconds)
    }

    /// Buckets with an operation running or waiting.
    pub fn active_buckets(&self) -> usize {
        self.lock_buckets().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn gate(shard: usize, shard_queue: usize, bucket: usize, bucket_queue: usize) -> Gate {
        Gate::new(
            0,
            GateSettings {
                shard_max_concurrency: shard,
                shard_max_queue: shard_queue,
                shard_bucket_max_concurrency: bucket,
                shard_bucket_max_queue: bucket_queue,
                shard_pressure_backoff_seconds: 5,
            },
        )
    }

    fn soon() -> Option<Instant> {
        Some(Instant::now() + Duration::from_millis(50))
    }

    #[tokio::test]
    async fn a_hot_bucket_is_shed_while_others_still_pass() {
        let g = gate(4, 0, 1, 0);
        let hot = g.admit("hot", soon()).await.expect("first");
        let e = g.admit("hot", soon()).await.err().expect("shed");
        assert_eq!(e.kind.spec().http_status, 503);
        assert!(g.admit("cold", soon()).await.is_ok());
        drop(hot);
        assert!(g.admit("hot", soon()).await.is_ok());
        assert_eq!(g.active_buckets(), 0);
    }

    #[tokio::test]
    async fn a_waiter_gets_a_freed_slot_or_is_shed_at_its_deadline() {
        let g = Arc::new(gate(1, 1, 4, 4));
        let first = g.admit("a", soon()).await.expect("first");
        assert_eq!(g.pressure(), Some(5));
        let late = g.admit("b", soon()).await.err().expect("deadline");
        assert!(late
            .details
            .expect("cause")
            .to_string()
            .contains("deadline"));
        let g2 = Arc::clone(&g);
        let waiter = tokio::spawn(async move {
            g2.admit("b", Some(Instant::now() + Duration::from_secs(5)))
                .await
                .is_ok()
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // The queue of one is taken: the next is shed at once.
        let full = g.admit("c", None).await.err().expect("full");
        assert!(full
            .details
            .expect("cause")
            .to_string()
            .contains("shard_queue_full"));
        drop(first);
        assert!(waiter.await.expect("joined"));
        assert_eq!(g.active_buckets(), 0);
        assert_eq!(g.pressure(), None);
    }
}
