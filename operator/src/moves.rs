//! Running the moves a `KintoCluster` asks for, through the same coordinator
//! as `kinto-shard admin rebalance` (`kinto-rebalance`): new shards are named
//! in the map first (a new shard process starts only once the map names it),
//! then, once every wanted shard answers, one rebalance task per cluster
//! moves slots a batch at a time. The task stops before its next batch when
//! this replica loses its lease; whatever it leaves moving, the map records,
//! and the next leader's rebalance resumes it.
//!
//! The map is changed where it is stored: a placement directory the
//! operator shares with the shards (an embedded deployment on one machine),
//! or, through the shards' admin API, the CQL keyspace they share.

use crate::crd::KintoClusterSpec;
use crate::leader::Elector;
use kinto_placement::file_store::FileMapStore;
use kinto_placement::store::MapStore;
use kinto_rebalance::{Coordinator, ShardsMapStore};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::ClientTlsConfig;

/// What the rebalance of one cluster is doing.
#[derive(Clone, Debug, Default)]
pub struct RunState {
    pub running: bool,
    /// Slots handed off since this replica's first rebalance of the cluster.
    pub moved: u32,
    /// Why the last rebalance stopped short, if it did.
    pub error: Option<String>,
}

/// Where the operator changes a cluster's map.
pub enum MapPlace {
    /// The placement directory the shards share (`operator_placement_dir`).
    Dir(PathBuf),
    /// Whatever store the shards share, through any of them
    /// (`ShardAdmin.SwapMap`); a shard whose map is a file of its own
    /// machine refuses, and the status says so.
    Shards,
}

pub struct Mover {
    pub place: MapPlace,
    pub tls: Option<ClientTlsConfig>,
    pub freeze_timeout: Duration,
    /// With the map in the keyspace, the grace after a fence (`None`: an
    /// unanswering owner's batch rolls back).
    pub fence_grace: Option<Duration>,
    pub elector: Arc<Elector>,
    runs: Arc<Mutex<HashMap<String, RunState>>>,
}

impl Mover {
    pub fn new(
        place: MapPlace,
        tls: Option<ClientTlsConfig>,
        freeze_timeout: Duration,
        elector: Arc<Elector>,
    ) -> Self {
        Mover {
            place,
            tls,
            freeze_timeout,
            fence_grace: None,
            elector,
            runs: Arc::default(),
        }
    }

    /// Fences unanswering owners through the other shards (map in the keyspace only).
    pub fn with_fence_grace(mut self, grace: Option<Duration>) -> Self {
        self.fence_grace = grace;
        self
    }

    pub fn state(&self, cluster: &str) -> RunState {
        lock(&self.runs).get(cluster).cloned().unwrap_or_default()
    }

    /// Records why the cluster's moves could not go on (shown in its status
    /// until a rebalance runs again).
    pub fn failed(&self, cluster: &str, why: String) {
        lock(&self.runs)
            .entry(cluster.to_owned())
            .or_default()
            .error = Some(why);
    }

    fn coordinator(&self, spec: &KintoClusterSpec) -> Coordinator {
        let (store, fencer): (Arc<dyn MapStore>, _) = match &self.place {
            MapPlace::Dir(dir) => (Arc::new(FileMapStore::new(dir)), None),
            MapPlace::Shards => {
                let shards = ShardsMapStore::new(
                    (0..spec.shards).map(|i| spec.shard_address(i)).collect(),
                    self.tls.clone(),
                );
                let fencer = self.fence_grace.map(|grace| shards.fencer(grace));
                (Arc::new(shards), fencer)
            }
        };
        Coordinator::of_store(
            store,
            self.tls.clone(),
            spec.move_batch_slots as usize,
            self.freeze_timeout,
        )
        .with_fencer(fencer)
    }

    /// One more than the greatest shard id the stored map names: shards
    /// beyond the spec's count stay named until their slots moved away.
    pub async fn shards_named(&self, spec: &KintoClusterSpec) -> Result<u32, String> {
        let map = self.coordinator(spec).load().await?;
        Ok(map.shards.keys().next_back().map_or(0, |id| id + 1))
    }

    /// Names shards `0..spec.shards` in the map at their addresses (a no-op
    /// for those already there).
    pub async fn join_wanted(&self, spec: &KintoClusterSpec) -> Result<(), String> {
        let coordinator = self.coordinator(spec);
        for id in 0..spec.shards {
            coordinator.join(id, &spec.shard_address(id)).await?;
        }
        Ok(())
    }

    /// Starts the cluster's rebalance to `spec.shards` unless one runs.
    pub fn start(&self, cluster: &str, spec: &KintoClusterSpec) {
        {
            let mut runs = lock(&self.runs);
            let state = runs.entry(cluster.to_owned()).or_default();
            if state.running {
                return;
            }
            state.running = true;
        }
        let elector = Arc::clone(&self.elector);
        let runs = Arc::clone(&self.runs);
        let key = cluster.to_owned();
        let coordinator = self
            .coordinator(spec)
            .with_guard(move || elector.is_leader())
            .with_progress(move |p| {
                if let Some(state) = lock(&runs).get_mut(&key) {
                    state.moved += p.slots;
                }
            });
        let runs = Arc::clone(&self.runs);
        let key = cluster.to_owned();
        let shards = spec.shards;
        tokio::spawn(async move {
            let result = coordinator.rebalance(shards).await;
            if let Err(e) = &result {
                tracing::warn!(cluster = %key, error = %e, "rebalance stopped");
            }
            let mut runs = lock(&runs);
            let state = runs.entry(key).or_default();
            state.running = false;
            state.error = result.err();
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
