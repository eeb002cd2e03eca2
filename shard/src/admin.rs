//! The `ShardAdmin` gRPC service (docs/placement.md, section 7): what a
//! shard owns at which generation, and the steps of a move for the
//! coordinator (`kinto-shard admin rebalance`, the operator).
//!
//! Every move call first reads the stored map up to the caller's
//! generation and checks that the map asks for the step, so a call from a
//! confused coordinator can do no harm; every step is idempotent.

use crate::moves::Mover;
use crate::storage::slots::{SlotEntry, SlotState, StreamDigest};
use crate::storage::ShardFence;
use futures::{Stream, StreamExt};
use kinto_placement::live::{LiveMap, Placement};
use kinto_placement::map::ShardMap;
use kinto_placement::store::{MapStore, Swap};
use kinto_proto::pb::shard_admin_server::{ShardAdmin, ShardAdminServer};
use kinto_proto::pb::{
    self, FenceReply, FenceRequest, SlotPage, SlotRange, SlotsReply, SlotsRequest, StageReply,
    StatusReply, StatusRequest, SwapMapReply, SwapMapRequest,
};
use std::pin::Pin;
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

/// Entries per page of `StreamSlots`.
const PAGE_ENTRIES: usize = 512;

/// The longest `Stage` waits for the coordinator's next page: a coordinator
/// that died mid-copy does not hold the call open (the staged copy is then
/// dropped or redone by the next coordinator).
const PAGE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

pub struct AdminService {
    index: u32,
    map: Arc<LiveMap>,
    /// `None` on a store whose data stays put: moves are refused.
    mover: Option<Arc<Mover>>,
    /// The deployment's map store when every shard shares it (CQL), for
    /// `SwapMap`; `None` refuses it.
    shared_map: Option<Arc<dyn MapStore>>,
    /// How this shard fences another for `Fence`; `None` refuses it.
    fence: Option<Arc<dyn ShardFence>>,
}

/// The admin service of shard `index`, reporting from `map`.
pub fn build(
    index: u32,
    map: Arc<LiveMap>,
    mover: Option<Arc<Mover>>,
    shared_map: Option<Arc<dyn MapStore>>,
    fence: Option<Arc<dyn ShardFence>>,
) -> ShardAdminServer<AdminService> {
    ShardAdminServer::new(AdminService {
        index,
        map,
        mover,
        shared_map,
        fence,
    })
}

fn ranges(slots: &[u32]) -> Vec<SlotRange> {
    let mut out: Vec<SlotRange> = Vec::new();
    for &slot in slots {
        match out.last_mut() {
            Some(r) if r.end == slot => r.end += 1,
            _ => out.push(SlotRange {
                first: slot,
                end: slot + 1,
            }),
        }
    }
    out
}

fn refused(e: impl std::fmt::Display) -> Status {
    Status::failed_precondition(e.to_string())
}

fn storage_failed(e: crate::storage::StorageError) -> Status {
    match e {
        crate::storage::StorageError::Frozen(m) => Status::failed_precondition(m),
        other => Status::unavailable(other.to_string()),
    }
}

/// Runs blocking store work off the runtime's workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(e.to_string()))?
}

impl AdminService {
    fn mover(&self) -> Result<Arc<Mover>, Status> {
        self.mover
            .clone()
            .ok_or_else(|| Status::unimplemented("this shard's store does not move slots"))
    }

    /// The map at `generation` or later, read from the store if needed.
    async fn map_at(&self, generation: u64) -> Result<Arc<Placement>, Status> {
        if self.map.current().generation() < generation {
            let map = Arc::clone(&self.map);
            // Off the workers: a newer map makes the store's slots follow it.
            let runtime = tokio::runtime::Handle::current();
            blocking(move || {
                runtime
                    .block_on(map.refresh())
                    .map_err(|e| Status::unavailable(e.to_string()))
            })
            .await?;
        }
        let current = self.map.current();
        if current.generation() < generation {
            return Err(refused(format!(
                "this shard's map is at generation {}, not {generation}",
                current.generation()
            )));
        }
        Ok(current)
    }

    /// Checks `ok` for every slot of the request, naming the first that fails.
    fn each(slots: &[u32], ok: impl Fn(u32) -> bool, what: &str) -> Result<(), Status> {
        match slots
            .iter()
            .find(|&&s| s >= kinto_placement::SLOTS || !ok(s))
        {
            Some(slot) => Err(refused(format!("slot {slot}: {what}"))),
            None => Ok(()),
        }
    }

    /// Unfreeze and Acquire: the map gives `slots` to this shard, which
    /// takes them back (frozen) or over (staged).
    async fn owned_here(&self, request: SlotsRequest) -> Result<Response<SlotsReply>, Status> {
        let SlotsRequest { slots, generation } = request;
        let map = self.map_at(generation).await?;
        let index = self.index;
        Self::each(
            &slots,
            |s| map.owner_of_slot(s) == index && map.moving_to(s).is_none(),
            "the map does not give it to this shard",
        )?;
        self.settle(slots, generation, &[SlotState::Owned]).await
    }

    /// Reconciles `slots` with the map, then checks they reached `state`.
    async fn settle(
        &self,
        slots: Vec<u32>,
        generation: u64,
        state: &'static [SlotState],
    ) -> Result<Response<SlotsReply>, Status> {
        let mover = self.mover()?;
        let map = self.map_at(generation).await?;
        let generation = map.generation();
        blocking(move || {
            mover
                .reconcile(&map, Some(&slots), true)
                .map_err(storage_failed)?;
            let moves = moves_of(&mover)?;
            Self::each(
                &slots,
                |s| state.contains(&moves.state(s)),
                "not in the state the map asks for",
            )?;
            Ok(Response::new(SlotsReply { generation }))
        })
        .await
    }
}

/// The store's moves of `mover`.
fn moves_of(mover: &Mover) -> Result<&dyn crate::storage::slots::SlotMoves, Status> {
    mover
        .moves()
        .ok_or_else(|| Status::unimplemented("this shard's store does not move slots"))
}

type PageStream = Pin<Box<dyn Stream<Item = Result<SlotPage, Status>> + Send>>;

fn to_pb(e: SlotEntry) -> pb::SlotEntry {
    pb::SlotEntry {
        slot: e.slot,
        keyspace: u32::from(e.keyspace),
        key: e.key,
        value: e.value,
    }
}

#[tonic::async_trait]
impl ShardAdmin for AdminService {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusReply>, Status> {
        let placement = self.map.current();
        let owned: Vec<SlotRange> = placement
            .ranges_of(self.index)
            .into_iter()
            .map(|[first, end]| SlotRange { first, end })
            .collect();
        let (frozen, staged) = match &self.mover {
            Some(m) => (
                ranges(&m.slots_in(SlotState::Frozen)),
                ranges(&m.slots_in(SlotState::Staged)),
            ),
            None => (Vec::new(), Vec::new()),
        };
        Ok(Response::new(StatusReply {
            shard_index: self.index,
            generation: placement.generation(),
            owned_count: owned.iter().map(|r| r.end - r.first).sum(),
            owned,
            frozen,
            staged,
        }))
    }

    async fn freeze(&self, request: Request<SlotsRequest>) -> Result<Response<SlotsReply>, Status> {
        let SlotsRequest { slots, generation } = request.into_inner();
        let mover = self.mover()?;
        let map = self.map_at(generation).await?;
        let index = self.index;
        Self::each(
            &slots,
            |s| map.owner_of_slot(s) == index && map.moving_to(s).is_some(),
            "the map does not move it away from this shard",
        )?;
        blocking(move || mover.freeze(&slots).map_err(storage_failed)).await?;
        Ok(Response::new(SlotsReply {
            generation: map.generation(),
        }))
    }

    async fn unfreeze(
        &self,
        request: Request<SlotsRequest>,
    ) -> Result<Response<SlotsReply>, Status> {
        // A rolled-back move: the map gives the slots back to this shard.
        self.owned_here(request.into_inner()).await
    }

    type StreamSlotsStream = PageStream;

    async fn stream_slots(
        &self,
        request: Request<SlotsRequest>,
    ) -> Result<Response<PageStream>, Status> {
        let SlotsRequest { mut slots, .. } = request.into_inner();
        let mover = self.mover()?;
        let moves = moves_of(&mover)?;
        // Only a frozen slot holds still while it is read.
        Self::each(
            &slots,
            |s| moves.state(s) == SlotState::Frozen,
            "not frozen",
        )?;
        slots.sort_unstable();
        slots.dedup();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<SlotPage, Status>>(4);
        tokio::spawn(async move {
            let mut digest = StreamDigest::default();
            for slot in slots {
                let m = Arc::clone(&mover);
                let entries =
                    blocking(move || moves_of(&m)?.export(slot).map_err(storage_failed)).await;
                let entries = match entries {
                    Ok(e) => e,
                    Err(s) => {
                        let _ = tx.send(Err(s)).await;
                        return;
                    }
                };
                let mut entries = entries.into_iter().peekable();
                while entries.peek().is_some() {
                    let page: Vec<pb::SlotEntry> = entries
                        .by_ref()
                        .take(PAGE_ENTRIES)
                        .inspect(|e| digest.add(e))
                        .map(to_pb)
                        .collect();
                    let page = SlotPage {
                        entries: page,
                        ..Default::default()
                    };
                    if tx.send(Ok(page)).await.is_err() {
                        return;
                    }
                }
            }
            let count = digest.count;
            let last = SlotPage {
                digest: digest.finish(),
                count,
                ..Default::default()
            };
            let _ = tx.send(Ok(last)).await;
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|page| (page, rx))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn stage(
        &self,
        request: Request<Streaming<SlotPage>>,
    ) -> Result<Response<StageReply>, Status> {
        let mut pages = request.into_inner();
        let first = pages
            .next()
            .await
            .ok_or_else(|| Status::invalid_argument("no pages"))??;
        let header = first
            .header
            .clone()
            .ok_or_else(|| Status::invalid_argument("the first page names no slots"))?;
        let mut slots = header.slots;
        slots.sort_unstable();
        slots.dedup();
        let mover = self.mover()?;
        let map = self.map_at(header.generation).await?;
        let index = self.index;
        Self::each(
            &slots,
            |s| map.moving_to(s) == Some(index),
            "the map does not move it to this shard",
        )?;
        let (m, s) = (Arc::clone(&mover), slots.clone());
        blocking(move || m.stage_begin(&s).map_err(storage_failed)).await?;
        let mut page = Some(first);
        while let Some(p) = page {
            let entries = p
                .entries
                .into_iter()
                .map(|e| {
                    let keyspace = u8::try_from(e.keyspace)
                        .map_err(|_| Status::invalid_argument("unknown keyspace"))?;
                    if slots.binary_search(&e.slot).is_err() {
                        return Err(Status::invalid_argument(format!(
                            "slot {} is not staged by this call",
                            e.slot
                        )));
                    }
                    Ok(SlotEntry {
                        slot: e.slot,
                        keyspace,
                        key: e.key,
                        value: e.value,
                    })
                })
                .collect::<Result<Vec<_>, Status>>()?;
            if !entries.is_empty() {
                let m = Arc::clone(&mover);
                blocking(move || moves_of(&m)?.stage(entries).map_err(storage_failed)).await?;
            }
            page = tokio::time::timeout(PAGE_WAIT, pages.next())
                .await
                .map_err(|_| Status::deadline_exceeded("no page of the copy came in time"))?
                .transpose()?;
        }
        let digest = blocking(move || {
            moves_of(&mover)?
                .staged_digest(&slots)
                .map_err(storage_failed)
        })
        .await?;
        let count = digest.count;
        Ok(Response::new(StageReply {
            digest: digest.finish(),
            count,
        }))
    }

    async fn acquire(
        &self,
        request: Request<SlotsRequest>,
    ) -> Result<Response<SlotsReply>, Status> {
        self.owned_here(request.into_inner()).await
    }

    async fn release(
        &self,
        request: Request<SlotsRequest>,
    ) -> Result<Response<SlotsReply>, Status> {
        let SlotsRequest { slots, generation } = request.into_inner();
        let map = self.map_at(generation).await?;
        let index = self.index;
        Self::each(
            &slots,
            |s| map.owner_of_slot(s) != index && map.moving_to(s) != Some(index),
            "the map still places it on this shard",
        )?;
        self.settle(slots, generation, &[SlotState::Foreign]).await
    }

    async fn swap_map(
        &self,
        request: Request<SwapMapRequest>,
    ) -> Result<Response<SwapMapReply>, Status> {
        let store = self.shared_map.clone().ok_or_else(|| {
            refused(
                "this shard's map is a file of its own machine: change it where the shards \
                 share it (`kinto-shard admin`, or the operator's operator_placement_dir)",
            )
        })?;
        let SwapMapRequest {
            expected_generation,
            map,
        } = request.into_inner();
        let next =
            ShardMap::from_json(&map).map_err(|e| Status::invalid_argument(format!("map: {e}")))?;
        let swapped = store
            .compare_and_set(expected_generation, &next)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        match swapped {
            Swap::Done => {
                // Serve by it now rather than at the next poll; the watcher
                // catches up anyway if this fails.
                if let Err(e) = self.map_at(next.generation).await {
                    tracing::warn!(error = %e.message(), "swapped the map but could not load it");
                }
                Ok(Response::new(SwapMapReply {
                    done: true,
                    current: Vec::new(),
                }))
            }
            Swap::Stale(current) => Ok(Response::new(SwapMapReply {
                done: false,
                current: current.map(|m| m.to_json()).unwrap_or_default(),
            })),
        }
    }

    async fn fence(&self, request: Request<FenceRequest>) -> Result<Response<FenceReply>, Status> {
        let shard = request.into_inner().shard;
        if shard == self.index {
            return Err(Status::invalid_argument(
                "a shard does not fence itself: ask another one",
            ));
        }
        let fence = self.fence.as_ref().ok_or_else(|| {
            refused("this shard's store cannot fence another shard (CQL with cql_shard_roles can)")
        })?;
        let roles = fence.fence(shard).await.map_err(refused)?;
        tracing::warn!(shard, ?roles, "fenced a shard for a rebalance");
        Ok(Response::new(FenceReply { roles }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinto_placement::file_store::FileMapStore;

    fn service(shared_map: Option<Arc<dyn MapStore>>) -> AdminService {
        AdminService {
            index: 0,
            map: crate::placement::fixed(2),
            mover: None,
            shared_map,
            fence: None,
        }
    }

    /// Records whom it fenced; has roles only for shard 1.
    struct Revoker(std::sync::Mutex<Vec<u32>>);

    #[async_trait::async_trait]
    impl ShardFence for Revoker {
        async fn fence(&self, shard: u32) -> Result<Vec<String>, String> {
            self.0.lock().expect("lock").push(shard);
            match shard {
                1 => Ok(vec!["ks_shard_1_1".into()]),
                _ => Err(format!("shard {shard} has no role of its own")),
            }
        }
    }

    #[tokio::test]
    async fn a_shard_fences_another_only_where_its_store_can() {
        async fn fence(s: &AdminService, shard: u32) -> Result<FenceReply, Status> {
            ShardAdmin::fence(s, Request::new(FenceRequest { shard }))
                .await
                .map(Response::into_inner)
        }
        let none = service(None);
        assert_eq!(
            fence(&none, 1).await.map(|_| ()).unwrap_err().code(),
            tonic::Code::FailedPrecondition
        );
        let revoker = Arc::new(Revoker(std::sync::Mutex::new(Vec::new())));
        let able = AdminService {
            fence: Some(Arc::clone(&revoker) as Arc<dyn ShardFence>),
            ..service(None)
        };
        assert_eq!(
            fence(&able, 1).await.expect("fenced").roles,
            vec!["ks_shard_1_1".to_string()]
        );
        // Nothing to revoke is a refusal, not a fence.
        assert_eq!(
            fence(&able, 2).await.map(|_| ()).unwrap_err().code(),
            tonic::Code::FailedPrecondition
        );
        // Never itself: it could not hand its slots over.
        assert_eq!(
            fence(&able, 0).await.map(|_| ()).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        assert_eq!(*revoker.0.lock().expect("lock"), vec![1, 2]);
    }

    async fn swap(
        s: &AdminService,
        expected: Option<u64>,
        map: Vec<u8>,
    ) -> Result<SwapMapReply, Status> {
        s.swap_map(Request::new(SwapMapRequest {
            expected_generation: expected,
            map,
        }))
        .await
        .map(Response::into_inner)
    }

    #[tokio::test]
    async fn a_map_of_this_machine_is_never_swapped_through_the_api() {
        let refused = swap(&service(None), None, ShardMap::initial(2, &[]).to_json()).await;
        assert_eq!(
            refused.map(|_| ()).unwrap_err().code(),
            tonic::Code::FailedPrecondition
        );
    }

    #[tokio::test]
    async fn a_shared_map_is_swapped_only_over_the_generation_it_follows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = service(Some(Arc::new(FileMapStore::new(dir.path()))));
        let first = ShardMap::initial(2, &[]);
        assert!(swap(&s, None, first.to_json()).await.expect("first").done);
        // A second "first map" comes too late, and learns the stored one.
        let late = swap(&s, None, first.to_json()).await.expect("late");
        assert!(!late.done);
        assert_eq!(ShardMap::from_json(&late.current).ok(), Some(first.clone()));
        let next = first.announce(&[7], 1);
        assert!(
            swap(&s, Some(first.generation), next.to_json())
                .await
                .expect("next")
                .done
        );
        let stale = swap(&s, Some(first.generation), next.announce(&[8], 1).to_json()).await;
        assert!(!stale.expect("stale").done);
        let bad = swap(&s, Some(next.generation), b"{}".to_vec()).await;
        assert_eq!(
            bad.map(|_| ()).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}
