//! The stored map, read and changed through the shards (`Shard.PlacementMap`,
//! `ShardAdmin.SwapMap`): for a coordinator that links no database driver,
//! the operator on CQL, where every shard reads and writes the one map of
//! the keyspace (docs/placement.md, section 3). Each call is answered by
//! one shard, the one that answered last first; the next is asked only when
//! one cannot be reached or does not answer in time, never after one
//! refused (a refusal would be the same everywhere).

use crate::coordinator::Fencer;
use kinto_placement::map::ShardMap;
use kinto_placement::store::{MapSource, MapStore, StoreError, StoreFuture, Swap};
use kinto_proto::pb::shard_admin_client::ShardAdminClient;
use kinto_proto::pb::shard_client::ShardClient;
use kinto_proto::pb::{FenceRequest, PlacementMapRequest, SwapMapRequest};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Channel, ClientTlsConfig};
use tonic::Code;

/// The longest one shard may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest one call may take: a compare-and-set is a lightweight
/// transaction on CQL, several round trips between replicas.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct ShardsMapStore {
    addresses: Vec<String>,
    tls: Option<ClientTlsConfig>,
    /// The shard that answered last, asked first: one stopped shard (the
    /// one a rebalance fences) costs one call timeout, not one per call.
    answered: Arc<AtomicUsize>,
}

/// The shards to ask, by index: from `first` on, round, without `skip`.
fn order(count: usize, first: usize, skip: Option<usize>) -> impl Iterator<Item = usize> {
    (0..count)
        .map(move |i| (first + i) % count)
        .filter(move |&i| Some(i) != skip)
}

impl ShardsMapStore {
    /// Asks the shards at `addresses`, in that order.
    pub fn new(addresses: Vec<String>, tls: Option<ClientTlsConfig>) -> Self {
        ShardsMapStore {
            addresses,
            tls,
            answered: Arc::default(),
        }
    }

    async fn channel(&self, address: &str) -> Result<Channel, String> {
        kinto_runtime::tls::shard_channel(
            address,
            self.tls.as_ref(),
            CONNECT_TIMEOUT,
            Some(CALL_TIMEOUT),
        )
        .await
    }

    /// `call` answered by the first shard that can be reached.
    async fn ask<T, F, Fut>(&self, call: F) -> Result<T, StoreError>
    where
        F: Fn(Channel) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        self.ask_but(None, call).await
    }

    /// [`ShardsMapStore::ask`] of every shard but `skip` (by index).
    async fn ask_but<T, F, Fut>(&self, skip: Option<usize>, call: F) -> Result<T, StoreError>
    where
        F: Fn(Channel) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let mut failures = Vec::new();
        let first = self.answered.load(Ordering::Relaxed);
        for i in order(self.addresses.len(), first, skip) {
            let address = &self.addresses[i];
            let channel = match self.channel(address).await {
                Ok(c) => c,
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            };
            match call(channel).await {
                Ok(answer) => {
                    self.answered.store(i, Ordering::Relaxed);
                    return Ok(answer);
                }
                // Cancelled: this client's own call timeout ran out.
                Err(s)
                    if matches!(
                        s.code(),
                        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled
                    ) =>
                {
                    failures.push(format!("{address}: {}", s.message()));
                }
                Err(s) => {
                    return Err(StoreError::Remote(format!(
                        "{address} refused: {}",
                        s.message()
                    )))
                }
            }
        }
        Err(StoreError::Remote(if failures.is_empty() {
            "no shard address to ask".into()
        } else {
            format!("no shard answered: {}", failures.join("; "))
        }))
    }
}

impl ShardsMapStore {
    /// Fences an unanswering shard through another one (`ShardAdmin.Fence`,
    /// with that shard's database login): the operator's way to take the
    /// slots of an old owner that does not answer (docs/placement.md,
    /// section 6, path 2). The addresses are the shards' by index.
    pub fn fencer(&self, grace: Duration) -> Fencer {
        let shards = self.clone();
        Fencer {
            fence: Box::new(move |target| {
                let shards = shards.clone();
                Box::pin(async move {
                    let reply = shards
                        .ask_but(Some(target as usize), |channel| async move {
                            ShardAdminClient::new(channel)
                                .fence(FenceRequest { shard: target })
                                .await
                                .map(tonic::Response::into_inner)
                        })
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(reply.roles)
                })
            }),
            grace,
        }
    }
}

fn parse(bytes: &[u8]) -> Result<Option<ShardMap>, StoreError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    ShardMap::from_json(bytes)
        .map(Some)
        .map_err(|e| StoreError::Remote(format!("a shard sent an invalid map: {e}")))
}

impl MapSource for ShardsMapStore {
    fn load(&self) -> StoreFuture<'_, Option<ShardMap>> {
        Box::pin(async move {
            let reply = self
                .ask(|channel| async move {
                    ShardClient::new(channel)
                        .placement_map(PlacementMapRequest {})
                        .await
                        .map(tonic::Response::into_inner)
                })
                .await?;
            parse(&reply.map)
        })
    }
}

impl MapStore for ShardsMapStore {
    fn compare_and_set<'a>(
        &'a self,
        expected: Option<u64>,
        next: &'a ShardMap,
    ) -> StoreFuture<'a, Swap> {
        Box::pin(async move {
            let body = next.to_json();
            let reply = self
                .ask(|channel| {
                    let request = SwapMapRequest {
                        expected_generation: expected,
                        map: body.clone(),
                    };
                    async move {
                        ShardAdminClient::new(channel)
                            .swap_map(request)
                            .await
                            .map(tonic::Response::into_inner)
                    }
                })
                .await?;
            if reply.done {
                return Ok(Swap::Done);
            }
            match parse(&reply.current)? {
                // A first try that timed out after it was stored, asked again
                // of another shard: it is done.
                Some(current) if current == *next => Ok(Swap::Done),
                current => Ok(Swap::Stale(current)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::order;

    #[test]
    fn the_shard_that_answered_last_is_asked_first_and_the_fenced_one_never() {
        assert_eq!(order(3, 0, None).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(order(3, 1, None).collect::<Vec<_>>(), [1, 2, 0]);
        assert_eq!(order(3, 1, Some(2)).collect::<Vec<_>>(), [1, 0]);
        assert_eq!(order(0, 0, None).count(), 0);
    }
}
