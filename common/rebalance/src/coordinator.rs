//! The coordinator of a rebalance (docs/placement.md, section 5), run by
//! `kinto-shard admin rebalance` and by the operator: a batch of slots at a time, from one shard
//! to another, each batch announced, frozen, copied, verified, handed off,
//! released and acquired. Its whole state is the stored map, so a
//! coordinator started again resumes a batch the map shows moving (every
//! step is idempotent) and `abort` rolls such a batch back.
//!
//! The copy goes through the coordinator: it reads the old owner's
//! `StreamSlots` and writes each page to the new owner's `Stage`, so the
//! shards need no channel (nor client certificate) of their own to each
//! other. Both ends compute the stream's SHA-256; the handoff happens only
//! when they agree.

use futures::future::BoxFuture;
use kinto_placement::balance;
use kinto_placement::file_store::FileMapStore;
use kinto_placement::map::{ShardEntry, ShardMap};
use kinto_placement::store::{MapStore, Swap};
use kinto_proto::pb::shard_admin_client::ShardAdminClient;
use kinto_proto::pb::{SlotPage, SlotsRequest};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Channel, ClientTlsConfig};

/// How long the copy of one batch may take once frozen.
const COPY_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Coordinator {
    store: Arc<dyn MapStore>,
    tls: Option<ClientTlsConfig>,
    batch: usize,
    freeze_timeout: Duration,
    /// Asked before each new batch: false stops the rebalance there (an
    /// operator replica that lost its lease).
    guard: Option<Box<dyn Fn() -> bool + Send + Sync>>,
    progress: Option<ProgressSink>,
    fencer: Option<Fencer>,
}

/// How a coordinator takes the slots of an old owner that does not answer
/// its freeze, where the store allows it (CQL with `cql_shard_roles`,
/// docs/placement.md, section 6, path 2). Without one, such a batch rolls
/// back and the slots wait for their owner. Only a store the shards share
/// has one: with it, moves copy nothing.
pub struct Fencer {
    /// Makes the store refuse every later write of shard `id`; returns the
    /// roles whose writes it revoked.
    pub fence: Box<dyn Fn(u32) -> BoxFuture<'static, Revoked> + Send + Sync>,
    /// How long after `fence` a write the store accepted before it may still
    /// be applied: the new owner acquires only after this.
    pub grace: Duration,
}

/// The roles a fence revoked, or why it could not.
pub type Revoked = Result<Vec<String>, String>;

type ProgressSink = Box<dyn Fn(&Progress) + Send + Sync>;

/// What a rebalance reports after each batch it hands off.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The map's generation after the batch.
    pub generation: u64,
    /// Slots of the batch.
    pub slots: u32,
    /// Slots that still had to move when the batch began (itself included).
    pub left: u32,
}

/// One batch: slots moving from one shard to another.
struct Batch {
    slots: Vec<u32>,
    from: u32,
    to: u32,
}

impl Batch {
    fn describe(&self) -> String {
        let first = self.slots.first().copied().unwrap_or_default();
        let last = self.slots.last().copied().unwrap_or_default();
        format!(
            "{} slots ({first}..={last}) shard {} -> shard {}",
            self.slots.len(),
            self.from,
            self.to
        )
    }
}

fn say(line: String) {
    use std::io::Write;
    println!("{line}");
    // The progress of a long run, readable while it runs.
    let _ = std::io::stdout().flush();
}

/// The batch the map shows moving (the first pair of shards, every slot of it).
fn moving_batch(map: &ShardMap) -> Option<Batch> {
    let owners = map.owners();
    let mut groups: BTreeMap<(u32, u32), Vec<u32>> = BTreeMap::new();
    for (&slot, m) in &map.moving {
        let from = owners.get(slot as usize).copied().unwrap_or_default();
        groups.entry((from, m.to)).or_default().push(slot);
    }
    let ((from, to), slots) = groups.into_iter().next()?;
    Some(Batch { slots, from, to })
}

impl Coordinator {
    /// The coordinator of the map stored in `dir` (an embedded deployment).
    pub fn new(
        dir: &std::path::Path,
        tls: Option<ClientTlsConfig>,
        batch: usize,
        freeze_timeout: Duration,
    ) -> Self {
        Self::of_store(Arc::new(FileMapStore::new(dir)), tls, batch, freeze_timeout)
    }

    /// The coordinator of the map in `store`, wherever it lives.
    pub fn of_store(
        store: Arc<dyn MapStore>,
        tls: Option<ClientTlsConfig>,
        batch: usize,
        freeze_timeout: Duration,
    ) -> Self {
        Coordinator {
            store,
            tls,
            batch: batch.max(1),
            freeze_timeout,
            guard: None,
            progress: None,
            fencer: None,
        }
    }

    /// Fences an old owner that does not answer, instead of rolling back
    /// (`None`: rolls back).
    pub fn with_fencer(mut self, fencer: Option<Fencer>) -> Self {
        self.fencer = fencer;
        self
    }

    /// Stops before any new batch once `keep_going` says no.
    pub fn with_guard(mut self, keep_going: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.guard = Some(Box::new(keep_going));
        self
    }

    /// Called after each batch is handed off.
    pub fn with_progress(mut self, report: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Box::new(report));
        self
    }

    fn may_go_on(&self) -> Result<(), String> {
        match &self.guard {
            Some(keep_going) if !keep_going() => Err(
                "stopped before the next batch: this coordinator may no longer move slots".into(),
            ),
            _ => Ok(()),
        }
    }

    /// The stored map, which must exist.
    pub async fn load(&self) -> Result<ShardMap, String> {
        self.store
            .load()
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no stored shard map".to_string())
    }

    /// Stores `next` over `current`; `false` when another change came first.
    async fn swap(&self, current: &ShardMap, next: &ShardMap) -> Result<bool, String> {
        match self
            .store
            .compare_and_set(Some(current.generation), next)
            .await
            .map_err(|e| e.to_string())?
        {
            Swap::Done => Ok(true),
            Swap::Stale(_) => Ok(false),
        }
    }

    /// Adds shard `id` to the map (or changes its address), owning nothing:
    /// a new `kinto-shard` is accepted once the map names it.
    pub async fn join(&self, id: u32, address: &str) -> Result<u64, String> {
        loop {
            let map = self.load().await?;
            if map.shards.get(&id).map(|e| e.address.as_str()) == Some(address) {
                return Ok(map.generation);
            }
            let mut next = map.clone();
            next.generation += 1;
            next.shards.insert(
                id,
                ShardEntry {
                    address: address.to_owned(),
                },
            );
            if self.swap(&map, &next).await? {
                return Ok(next.generation);
            }
        }
    }

    async fn client(&self, map: &ShardMap, id: u32) -> Result<ShardAdminClient<Channel>, String> {
        let address = map
            .shards
            .get(&id)
            .map(|e| e.address.as_str())
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                format!("shard {id} has no address in the map: give it one with `admin join`")
            })?;
        // No call timeout: a copy streams for as long as the batch needs
        // (`COPY_TIMEOUT` bounds it).
        let channel = kinto_runtime::tls::shard_channel(
            address,
            self.tls.as_ref(),
            Duration::from_secs(2),
            None,
        )
        .await
        .map_err(|e| format!("shard {id} at {e}"))?;
        Ok(ShardAdminClient::new(channel)
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024))
    }

    /// Moves slots until shards `0..shards` own `SLOTS/shards` each, then
    /// drops the shards beyond from the map.
    pub async fn rebalance(&self, shards: u32) -> Result<(), String> {
        let wanted: Vec<u32> = (0..shards).collect();
        loop {
            let map = self.load().await?;
            if let Some(id) = wanted.iter().find(|id| !map.shards.contains_key(id)) {
                return Err(format!(
                    "shard {id} is not in the map: add it with `admin join --shard {id} --address URL`"
                ));
            }
            if let Some(batch) = moving_batch(&map) {
                self.may_go_on()?;
                say(format!(
                    "generation {}: resuming {}",
                    map.generation,
                    batch.describe()
                ));
                self.run(batch, map.generation).await?;
                continue;
            }
            let owners = map.owners();
            let moves = balance::moves(&owners, &balance::balance(&owners, &wanted));
            let Some(first) = moves.first().copied() else {
                return self.retire(shards).await;
            };
            self.may_go_on()?;
            let slots: Vec<u32> = moves
                .iter()
                .filter(|m| (m.from, m.to) == (first.from, first.to))
                .take(self.batch)
                .map(|m| m.slot)
                .collect();
            let next = map.announce(&slots, first.to);
            if self.swap(&map, &next).await? {
                let batch = Batch {
                    slots,
                    from: first.from,
                    to: first.to,
                };
                say(format!(
                    "generation {}: announced {} ({} slots left)",
                    next.generation,
                    batch.describe(),
                    moves.len()
                ));
                let slots = batch.slots.len() as u32;
                self.run(batch, next.generation).await?;
                if let Some(report) = &self.progress {
                    report(&Progress {
                        generation: self.load().await?.generation,
                        slots,
                        left: moves.len() as u32,
                    });
                }
            }
        }
    }

    /// Drops from the map the shards beyond `shards` once they own nothing.
    async fn retire(&self, shards: u32) -> Result<(), String> {
        loop {
            let map = self.load().await?;
            let owners = map.owners();
            let gone: Vec<u32> = map
                .shards
                .keys()
                .copied()
                .filter(|&id| id >= shards && !owners.contains(&id))
                .collect();
            if gone.is_empty() {
                say(format!(
                    "generation {}: balanced over {shards} shards",
                    map.generation
                ));
                return Ok(());
            }
            let mut next = map.clone();
            next.generation += 1;
            for id in &gone {
                next.shards.remove(id);
            }
            if self.swap(&map, &next).await? {
                say(format!(
                    "generation {}: shards {gone:?} left the map",
                    next.generation
                ));
            }
        }
    }

    /// Rolls back every batch the map shows moving.
    pub async fn abort(&self) -> Result<(), String> {
        loop {
            let map = self.load().await?;
            let Some(batch) = moving_batch(&map) else {
                say(format!(
                    "generation {}: no move in progress",
                    map.generation
                ));
                return Ok(());
            };
            self.roll_back(&batch).await?;
        }
    }

    /// Runs the steps after the announcement (at `generation`) of `batch`.
    async fn run(&self, batch: Batch, generation: u64) -> Result<(), String> {
        let map = self.load().await?;
        let mut to = match self.client(&map, batch.to).await {
            Ok(c) => c,
            Err(why) => return self.fail(&batch, why).await,
        };
        let request = SlotsRequest {
            slots: batch.slots.clone(),
            generation,
        };
        // 2. Freeze and drain.
        let frozen = match self.client(&map, batch.from).await {
            Ok(mut from) => tokio::time::timeout(self.freeze_timeout, from.freeze(request.clone()))
                .await
                .map_err(|_| "the freeze timed out".to_string())
                .and_then(|r| r.map_err(|s| format!("the freeze failed: {}", s.message())))
                .map(|_| from),
            Err(why) => Err(why),
        };
        let mut from = match frozen {
            Ok(from) => Some(from),
            Err(why) => match self.fence(&batch, why).await {
                Ok(()) => None,
                Err(why) => return self.fail(&batch, why).await,
            },
        };
        // 3. Copy and verify, where each shard keeps its own data. A store
        // that can fence is shared (CQL): nothing to copy, and nothing more
        // to ask of an old owner that may stop answering after its freeze.
        if let (Some(from), None) = (from.as_mut(), &self.fencer) {
            let copied = tokio::time::timeout(
                COPY_TIMEOUT,
                copy(from, &mut to, &request, self.freeze_timeout),
            )
            .await
            .map_err(|_| "the copy timed out".to_string())
            .and_then(|r| r);
            let entries = match copied {
                Ok(n) => n,
                Err(why) => return self.fail(&batch, why).await,
            };
            say(format!(
                "copied {} ({entries} entries, digests agree)",
                batch.describe()
            ));
        }
        // 4. Hand off: the commit point.
        let handed = loop {
            let map = self.load().await?;
            if !batch
                .slots
                .iter()
                .all(|s| map.moving.get(s).is_some_and(|m| m.to == batch.to))
            {
                return Err(format!(
                    "the map changed under the move of {}",
                    batch.describe()
                ));
            }
            let next = map.hand_off(&batch.slots);
            if self.swap(&map, &next).await? {
                break next.generation;
            }
        };
        say(format!(
            "generation {handed}: handed off {}",
            batch.describe()
        ));
        // 5. Release, then acquire: no moment where both list the slots.
        let request = SlotsRequest {
            slots: batch.slots.clone(),
            generation: handed,
        };
        let released = match from.as_mut() {
            Some(from) => settle(self.freeze_timeout, from.release(request.clone())).await,
            None => Err("fenced".into()),
        };
        if let Err(e) = released {
            say(format!(
                "warning: shard {} did not release yet ({e}); it will when it reads the map",
                batch.from
            ));
        }
        if let Err(e) = settle(self.freeze_timeout, to.acquire(request)).await {
            say(format!(
                "warning: shard {} did not acquire yet ({e}); it will when it reads the map",
                batch.to
            ));
        }
        Ok(())
    }

    /// Fences the old owner of `batch`, which did not freeze it (`why`), and
    /// waits out the grace; an error when there is no fencer, or it failed.
    async fn fence(&self, batch: &Batch, why: String) -> Result<(), String> {
        let Some(fencer) = &self.fencer else {
            return Err(why);
        };
        say(format!(
            "shard {} did not freeze {} ({why}): fencing it",
            batch.from,
            batch.describe()
        ));
        let roles = (fencer.fence)(batch.from)
            .await
            .map_err(|e| format!("{why}; fencing shard {} failed: {e}", batch.from))?;
        say(format!(
            "fenced shard {} (MODIFY revoked from roles {roles:?}); the handoff waits {} s",
            batch.from,
            fencer.grace.as_secs()
        ));
        tokio::time::sleep(fencer.grace).await;
        Ok(())
    }

    /// Rolls `batch` back, then reports why it failed.
    async fn fail(&self, batch: &Batch, why: String) -> Result<(), String> {
        self.roll_back(batch).await?;
        Err(format!("rolled back {}: {why}", batch.describe()))
    }

    /// Step 6: the map gives the slots back to their owner, which unfreezes
    /// them; the new owner drops its copy (both also do when they read the map).
    async fn roll_back(&self, batch: &Batch) -> Result<(), String> {
        let generation = loop {
            let map = self.load().await?;
            let still: Vec<u32> = batch
                .slots
                .iter()
                .copied()
                .filter(|s| map.moving.contains_key(s))
                .collect();
            if still.is_empty() {
                break map.generation;
            }
            let next = map.roll_back(&still);
            if self.swap(&map, &next).await? {
                break next.generation;
            }
        };
        say(format!(
            "generation {generation}: rolled back {}",
            batch.describe()
        ));
        let map = self.load().await?;
        let request = SlotsRequest {
            slots: batch.slots.clone(),
            generation,
        };
        if let Ok(mut from) = self.client(&map, batch.from).await {
            if let Err(e) = settle(self.freeze_timeout, from.unfreeze(request.clone())).await {
                say(format!(
                    "warning: shard {} did not unfreeze yet ({e})",
                    batch.from
                ));
            }
        }
        if let Ok(mut to) = self.client(&map, batch.to).await {
            if let Err(e) = settle(self.freeze_timeout, to.release(request)).await {
                say(format!(
                    "warning: shard {} did not drop its copy yet ({e})",
                    batch.to
                ));
            }
        }
        Ok(())
    }
}

/// A release, acquire or unfreeze, bounded: the shards also follow the map
/// by themselves, so one that does not answer is only reported.
async fn settle<T>(
    timeout: Duration,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(s)) => Err(s.message().to_owned()),
        Err(_) => Err("timed out".into()),
    }
}

/// Streams the slots of `request` from `from` into `to`'s staged copy;
/// returns the entry count once both digests agree.
async fn copy(
    from: &mut ShardAdminClient<Channel>,
    to: &mut ShardAdminClient<Channel>,
    request: &SlotsRequest,
    stall: Duration,
) -> Result<u64, String> {
    let mut pages = from
        .stream_slots(request.clone())
        .await
        .map_err(|s| format!("the old owner cannot stream: {}", s.message()))?
        .into_inner();
    let (tx, rx) = tokio::sync::mpsc::channel::<SlotPage>(4);
    let header = SlotPage {
        header: Some(request.clone()),
        ..Default::default()
    };
    let forward = async move {
        tx.send(header)
            .await
            .map_err(|_| "the new owner hung up".to_string())?;
        let mut sent = None;
        // A paused or hung old owner stops the stream: give up on it.
        while let Some(page) = tokio::time::timeout(stall, pages.message())
            .await
            .map_err(|_| "the stream stalled".to_string())?
            .map_err(|s| format!("the stream broke: {}", s.message()))?
        {
            if !page.digest.is_empty() {
                sent = Some((page.digest.clone(), page.count));
            }
            if !page.entries.is_empty() {
                let entries = SlotPage {
                    entries: page.entries,
                    ..Default::default()
                };
                tx.send(entries)
                    .await
                    .map_err(|_| "the new owner hung up".to_string())?;
            }
        }
        sent.ok_or_else(|| "the stream ended without its digest".to_string())
    };
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|p| (p, rx)) });
    let (sent, staged) = futures::future::join(forward, to.stage(stream)).await;
    let (digest, count) = sent?;
    let staged = staged
        .map_err(|s| format!("the new owner cannot stage: {}", s.message()))?
        .into_inner();
    if staged.digest != digest || staged.count != count {
        return Err(format!(
            "the copy differs: {count} entries sent, {} staged, digests {}",
            staged.count,
            if staged.digest == digest {
                "agree"
            } else {
                "differ"
            }
        ));
    }
    Ok(count)
}
