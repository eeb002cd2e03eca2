//! The shard map as the shards report it (`Shard.PlacementMap`), for a
//! `kinto-gateway` given no placement directory: on CQL the map is a row of
//! the keyspace, and a gateway links no database driver, so it asks a shard,
//! which reads the row for it (docs/placement.md, section 3).
//!
//! One shard is asked at a time, the one that answered last; another only
//! when it fails, so a poll is one call. Shards the map names beyond
//! `shard_urls` (a rebalance adds them) are asked too, at their map address.

use crate::routing::Transport;
use kinto_placement::map::ShardMap;
use kinto_placement::store::{MapSource, StoreError, StoreFuture};
use kinto_proto::pb::shard_client::ShardClient;
use kinto_proto::pb::PlacementMapRequest;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tonic::transport::{ClientTlsConfig, Endpoint};
use tower::util::BoxCloneSyncService;

/// The longest one shard may take to answer before the next is asked.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

pub struct MapFromShards {
    tls: Option<ClientTlsConfig>,
    /// Each shard's address and client, in the order they became known.
    shards: Mutex<Vec<(String, ShardClient<Transport>)>>,
    /// The shard asked first: the last that answered.
    first: AtomicUsize,
}

fn client(url: &str, tls: Option<&ClientTlsConfig>) -> Result<ShardClient<Transport>, String> {
    let ep = Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("bad shard url {url}: {e}"))?
        .connect_timeout(ASK_TIMEOUT)
        .timeout(ASK_TIMEOUT);
    let ep = match tls {
        Some(tls) => ep
            .tls_config(tls.clone())
            .map_err(|e| format!("shard url {url}: {}", kinto_runtime::tls::causes(&e)))?,
        None => ep,
    };
    Ok(ShardClient::new(BoxCloneSyncService::new(
        ep.connect_lazy(),
    )))
}

impl MapFromShards {
    /// Asks the shards of `urls` (must be called within a Tokio runtime).
    pub fn new(urls: &[String], tls: Option<&ClientTlsConfig>) -> Result<Self, String> {
        let shards = urls
            .iter()
            .map(|u| Ok((u.clone(), client(u, tls)?)))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(MapFromShards {
            tls: tls.cloned(),
            shards: Mutex::new(shards),
            first: AtomicUsize::new(0),
        })
    }

    fn clients(&self) -> Vec<ShardClient<Transport>> {
        let shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
        shards.iter().map(|(_, c)| c.clone()).collect()
    }

    /// Adds the shards `map` names at an address not known yet.
    fn learn(&self, map: &ShardMap) {
        let mut shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
        for entry in map.shards.values() {
            let known = shards.iter().any(|(u, _)| *u == entry.address);
            if entry.address.is_empty() || known {
                continue;
            }
            match client(&entry.address, self.tls.as_ref()) {
                Ok(c) => shards.push((entry.address.clone(), c)),
                Err(e) => tracing::warn!(error = %e, "cannot ask a shard of the map"),
            }
        }
    }

    async fn ask(&self) -> Result<Option<ShardMap>, StoreError> {
        let clients = self.clients();
        let first = self.first.load(Ordering::Relaxed);
        let mut last_error = String::from("no shard to ask");
        for i in (0..clients.len()).map(|k| (first + k) % clients.len()) {
            let mut client = clients[i].clone();
            let reply =
                tokio::time::timeout(ASK_TIMEOUT, client.placement_map(PlacementMapRequest {}))
                    .await;
            let reply = match reply {
                Ok(Ok(r)) => r.into_inner(),
                Ok(Err(status)) => {
                    last_error = format!("shard {i}: {}", status.message());
                    continue;
                }
                Err(_) => {
                    last_error = format!("shard {i}: no answer in {ASK_TIMEOUT:?}");
                    continue;
                }
            };
            self.first.store(i, Ordering::Relaxed);
            if reply.generation == 0 {
                return Ok(None);
            }
            let map = ShardMap::from_json(&reply.map)
                .map_err(|e| StoreError::Remote(format!("shard {i} sent {e}")))?;
            self.learn(&map);
            return Ok(Some(map));
        }
        Err(StoreError::Remote(last_error))
    }
}

impl MapSource for MapFromShards {
    fn load(&self) -> StoreFuture<'_, Option<ShardMap>> {
        Box::pin(self.ask())
    }
}
