//! A shard's lease on its view of the map (docs/placement.md, section 4):
//! it answers only while it read the stored map successfully less than
//! `placement_lease_seconds` ago. A shard that was stopped (SIGSTOP, a VM
//! pause) or cut off from the map store for longer reads the map again
//! before it answers anything, so it never serves by a map the deployment
//! has moved past for longer than the lease. A rebalance that takes slots
//! from a shard without its answer waits longer than that (`fence_grace_seconds`).
//!
//! The lease bounds what a shard *believes*; what stops its late writes is
//! the fence of section 6 (the store's slot states, or its revoked CQL role).

use kinto_placement::live::LiveMap;
use kinto_proto::{ErrorKind, KintoError};
use std::sync::Arc;
use std::time::Duration;

pub struct Lease {
    map: Arc<LiveMap>,
    length: Duration,
    /// One renewal at a time: the calls that find the lease out wait for it.
    renewing: tokio::sync::Mutex<()>,
}

impl Lease {
    pub fn new(map: Arc<LiveMap>, length: Duration) -> Self {
        Lease {
            map,
            length,
            renewing: tokio::sync::Mutex::new(()),
        }
    }

    /// `Ok` while the lease holds, or once a read of the map renews it; a
    /// `NotRun` refusal (retried by the gateway) when the map cannot be read.
    pub async fn check(&self) -> Result<(), KintoError> {
        if self.map.read_within(self.length) {
            return Ok(());
        }
        let _one = self.renewing.lock().await;
        if !self.map.read_within(self.length) {
            if let Err(e) = self.map.refresh().await {
                tracing::warn!(error = %e, "cannot read the shard map to renew the lease");
            }
        }
        if self.map.read_within(self.length) {
            Ok(())
        } else {
            Err(KintoError::new(ErrorKind::NotRun).with_message(format!(
                "this shard has not read the shard map for {} s: it serves nothing until it can",
                self.length.as_secs()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinto_placement::map::ShardMap;
    use kinto_placement::store::{MapSource, StoreError, StoreFuture};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A map store that can be cut off.
    struct Flaky {
        map: ShardMap,
        down: AtomicBool,
    }

    impl MapSource for Flaky {
        fn load(&self) -> StoreFuture<'_, Option<ShardMap>> {
            let result = if self.down.load(Ordering::SeqCst) {
                Err(StoreError::Remote("cut off".into()))
            } else {
                Ok(Some(self.map.clone()))
            };
            Box::pin(std::future::ready(result))
        }
    }

    #[tokio::test]
    async fn a_shard_cut_off_from_the_map_serves_nothing_until_it_reads_it() {
        let map = ShardMap::initial(2, &[]);
        let source = Arc::new(Flaky {
            map: map.clone(),
            down: AtomicBool::new(true),
        });
        let live = LiveMap::from_source(
            Arc::clone(&source) as Arc<dyn MapSource>,
            kinto_placement::live::Placement::of(&map),
        );
        let lease = Lease::new(live, Duration::from_millis(100));
        lease.check().await.expect("read at start-up");
        tokio::time::sleep(Duration::from_millis(120)).await;
        let refused = lease.check().await.expect_err("the lease ran out");
        assert_eq!(refused.kind, ErrorKind::NotRun);
        source.down.store(false, Ordering::SeqCst);
        lease.check().await.expect("renewed by a read");
    }
}
