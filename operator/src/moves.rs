//! Running the moves a `KintoCluster` asks for, through the same coordinator
//! as `kinto-shard admin rebalance` (`kinto-rebalance`): new shards are named
//! in the map first (a new shard process starts only once the map names it),
//! then, once every wanted shard answers, one rebalance task per cluster
//! moves slots a batch at a time. The task stops before its next batch when
//! this replica loses its lease; whatever it leaves moving, the map records,
//! and the next leader's rebalance resumes it.

use crate::crd::KintoClusterSpec;
use crate::leader::Elector;
use kinto_rebalance::Coordinator;
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

pub struct Mover {
    pub placement_dir: PathBuf,
    pub tls: Option<ClientTlsConfig>,
    pub freeze_timeout: Duration,
    pub elector: Arc<Elector>,
    runs: Arc<Mutex<HashMap<String, RunState>>>,
}

impl Mover {
    pub fn new(
        placement_dir: PathBuf,
        tls: Option<ClientTlsConfig>,
        freeze_timeout: Duration,
        elector: Arc<Elector>,
    ) -> Self {
        Mover {
            placement_dir,
            tls,
            freeze_timeout,
            elector,
            runs: Arc::default(),
        }
    }

    pub fn state(&self, cluster: &str) -> RunState {
        lock(&self.runs).get(cluster).cloned().unwrap_or_default()
    }

    fn coordinator(&self, spec: &KintoClusterSpec) -> Coordinator {
        Coordinator::new(
            &self.placement_dir,
            self.tls.clone(),
            spec.move_batch_slots as usize,
            self.freeze_timeout,
        )
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
