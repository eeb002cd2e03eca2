//! The stored map, read and changed through the shards (`Shard.PlacementMap`,
//! `ShardAdmin.SwapMap`): for a coordinator that links no database driver,
//! the operator on CQL, where every shard reads and writes the one map of
//! the keyspace (docs/placement.md, section 3). Each call is answered by
//! one shard; the next is asked only when one cannot be reached, never after
//! one refused (a refusal would be the same everywhere).

use kinto_placement::map::ShardMap;
use kinto_placement::store::{MapSource, MapStore, StoreError, StoreFuture, Swap};
use kinto_proto::pb::shard_admin_client::ShardAdminClient;
use kinto_proto::pb::shard_client::ShardClient;
use kinto_proto::pb::{PlacementMapRequest, SwapMapRequest};
use std::time::Duration;
use tonic::transport::{Channel, ClientTlsConfig};
use tonic::Code;

/// The longest one shard may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest one call may take: a compare-and-set is a lightweight
/// transaction on CQL, several round trips between replicas.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub struct ShardsMapStore {
    addresses: Vec<String>,
    tls: Option<ClientTlsConfig>,
}

impl ShardsMapStore {
    /// Asks the shards at `addresses`, in that order.
    pub fn new(addresses: Vec<String>, tls: Option<ClientTlsConfig>) -> Self {
        ShardsMapStore { addresses, tls }
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
        let mut failures = Vec::new();
        for address in &self.addresses {
            let channel = match self.channel(address).await {
                Ok(c) => c,
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            };
            match call(channel).await {
                Ok(answer) => return Ok(answer),
                Err(s) if matches!(s.code(), Code::Unavailable | Code::DeadlineExceeded) => {
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
