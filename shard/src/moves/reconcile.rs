//! A shard's slots brought in line with the map: a staged copy the map
//! hands here is acquired, a frozen slot the map gave away is released, a
//! move the map rolled back is undone. Run at start-up, on every map change
//! and by the `Acquire`, `Release` and `Unfreeze` calls, so a shard that
//! missed a call (killed, paused, unreachable) still ends in the state the
//! map says (docs/placement.md, section 5, step 5).

use super::metrics;
use crate::domain::Shard;
use crate::storage::slots::{SlotMoves, SlotState};
use crate::storage::StorageResult;
use kinto_placement::live::{LiveMap, Placement};
use kinto_placement::SLOTS;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long after reading a handoff a shard waits for the coordinator's
/// `Acquire` before it acquires by itself. The coordinator releases the old
/// owner's copy first, then calls `Acquire`: waiting keeps the two copies
/// from being listed at once (`GET /buckets`, `/permissions`) unless the
/// coordinator is gone or the old owner does not answer. Longer than the
/// coordinator's wait for a release (`freeze_timeout_seconds`, default 5).
const SELF_ACQUIRE_AFTER: Duration = Duration::from_secs(10);

/// The moves of one shard over its store.
pub struct Mover {
    index: u32,
    shard: Arc<Shard>,
    map: Arc<LiveMap>,
    /// One reconciliation or freeze at a time.
    busy: Mutex<()>,
    /// A delayed acquire is pending ([`SELF_ACQUIRE_AFTER`]).
    acquire_pending: AtomicBool,
}

/// What the map asks of one slot in a given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Acquire,
    Release,
    Unfreeze,
    Adopt,
    Hide,
}

fn step(state: SlotState, p: &Placement, index: u32, slot: u32) -> Option<Step> {
    let mine = p.owner_of_slot(slot) == index;
    let moving = p.moving_to(slot);
    match state {
        SlotState::Staged if mine && moving.is_none() => Some(Step::Acquire),
        SlotState::Staged if moving == Some(index) => None,
        SlotState::Staged => Some(Step::Release),
        SlotState::Frozen if mine && moving.is_none() => Some(Step::Unfreeze),
        SlotState::Frozen if mine => None,
        SlotState::Frozen => Some(Step::Release),
        SlotState::Owned if !mine => Some(Step::Hide),
        SlotState::Foreign if mine && moving.is_none() => Some(Step::Adopt),
        SlotState::Owned | SlotState::Foreign => None,
    }
}

impl Mover {
    /// Starts fencing the store of `shard` by `map` and keeping it in line
    /// with every change; `None` for a store that does not move slots.
    pub fn attach(
        index: u32,
        shard: Arc<Shard>,
        map: Arc<LiveMap>,
    ) -> Result<Option<Arc<Self>>, String> {
        let Some(moves) = shard.storage().slot_moves() else {
            return Ok(None);
        };
        let current = map.current();
        moves
            .attach(&|slot| match (
                current.owner_of_slot(slot) == index,
                current.moving_to(slot),
            ) {
                (true, Some(_)) => SlotState::Frozen,
                (true, None) => SlotState::Owned,
                (false, _) => SlotState::Foreign,
            })
            .map_err(|e| format!("cannot read the slot states of shard {index}: {e}"))?;
        let mover = Arc::new(Mover {
            index,
            shard,
            map: Arc::clone(&map),
            busy: Mutex::new(()),
            acquire_pending: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&mover);
        // Called with the current map at once: start-up finishes what a
        // stop interrupted.
        map.on_change(move |p| {
            if let Some(mover) = weak.upgrade() {
                mover.follow(p);
            }
        });
        Ok(Some(mover))
    }

    /// Follows a map change: every step at once but an acquire, which
    /// waits for the coordinator's call or [`SELF_ACQUIRE_AFTER`].
    fn follow(self: &Arc<Self>, p: &Placement) {
        match self.reconcile(p, None, false) {
            Ok(true) => self.acquire_later(),
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "cannot bring the slots in line with the map"),
        }
    }

    fn acquire_later(self: &Arc<Self>) {
        if self.acquire_pending.swap(true, SeqCst) {
            return;
        }
        let weak = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("slot-acquire".into())
            .spawn(move || {
                std::thread::sleep(SELF_ACQUIRE_AFTER);
                let Some(mover) = weak.upgrade() else { return };
                mover.acquire_pending.store(false, SeqCst);
                let current = mover.map.current();
                if let Err(e) = mover.reconcile(&current, None, true) {
                    tracing::error!(error = %e, "cannot acquire the slots the map hands over");
                }
            });
        if let Err(e) = spawned {
            self.acquire_pending.store(false, SeqCst);
            tracing::error!(error = %e, "cannot wait to acquire the slots the map hands over");
        }
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn map(&self) -> &Arc<LiveMap> {
        &self.map
    }

    pub fn shard(&self) -> &Arc<Shard> {
        &self.shard
    }

    /// The store's moves (present: [`Mover::attach`] made sure).
    pub fn moves(&self) -> Option<&dyn SlotMoves> {
        self.shard.storage().slot_moves()
    }

    fn busy(&self) -> std::sync::MutexGuard<'_, ()> {
        self.busy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Freezes `slots` (the caller checked the map announces their move).
    pub fn freeze(&self, slots: &[u32]) -> StorageResult<()> {
        let _busy = self.busy();
        let result = self.moves().map_or(Ok(()), |m| m.freeze(slots));
        self.report();
        result
    }

    /// Stages `slots` (the caller checked the map moves them here).
    pub fn stage_begin(&self, slots: &[u32]) -> StorageResult<()> {
        let _busy = self.busy();
        let result = self.moves().map_or(Ok(()), |m| m.stage_begin(slots));
        self.report();
        result
    }

    /// Brings `only` (or every slot) in line with `p`; an acquire only
    /// when `acquire`. Returns whether an acquire was left undone.
    pub fn reconcile(
        &self,
        p: &Placement,
        only: Option<&[u32]>,
        acquire: bool,
    ) -> StorageResult<bool> {
        let Some(moves) = self.moves() else {
            return Ok(false);
        };
        let _busy = self.busy();
        let all: Vec<u32>;
        let slots = match only {
            Some(slots) => slots,
            None => {
                all = (0..SLOTS).collect();
                &all
            }
        };
        let mut steps: Vec<(Step, Vec<u32>)> = Vec::new();
        let mut deferred = false;
        for &slot in slots {
            if let Some(s) = step(moves.state(slot), p, self.index, slot) {
                if s == Step::Acquire && !acquire {
                    deferred = true;
                    continue;
                }
                match steps.iter_mut().find(|(k, _)| *k == s) {
                    Some((_, list)) => list.push(slot),
                    None => steps.push((s, vec![slot])),
                }
            }
        }
        if steps.is_empty() {
            return Ok(deferred);
        }
        // Before: nothing cached of an arriving slot survives; after: a
        // read racing the change cached nothing stale.
        self.shard.drop_caches();
        for (s, list) in &steps {
            tracing::info!(shard = self.index, step = ?s, slots = list.len(), generation = p.generation(), "moving slots");
            match s {
                Step::Acquire => moves.acquire(list)?,
                Step::Release => moves.release(list)?,
                Step::Unfreeze => moves.unfreeze(list)?,
                Step::Adopt => moves.adopt(list)?,
                Step::Hide => moves.hide(list)?,
            }
        }
        self.shard.drop_caches();
        self.report();
        Ok(deferred)
    }

    /// Slots in the given state.
    pub fn slots_in(&self, state: SlotState) -> Vec<u32> {
        let Some(moves) = self.moves() else {
            return Vec::new();
        };
        (0..SLOTS).filter(|&s| moves.state(s) == state).collect()
    }

    fn report(&self) {
        let busy = self.slots_in(SlotState::Frozen).len() + self.slots_in(SlotState::Staged).len();
        metrics::set(self.index, busy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinto_placement::map::ShardMap;

    #[test]
    fn each_state_follows_the_map() {
        let base = ShardMap::initial(2, &[]);
        let announced = Placement::of(&base.announce(&[0], 1));
        let handed = Placement::of(&base.announce(&[0], 1).hand_off(&[0]));
        let rolled = Placement::of(&base.announce(&[0], 1).roll_back(&[0]));
        use SlotState::*;
        // The old owner, shard 0.
        assert_eq!(step(Frozen, &announced, 0, 0), None);
        assert_eq!(step(Frozen, &handed, 0, 0), Some(Step::Release));
        assert_eq!(step(Frozen, &rolled, 0, 0), Some(Step::Unfreeze));
        assert_eq!(step(Owned, &announced, 0, 0), None);
        // The new owner, shard 1.
        assert_eq!(step(Staged, &announced, 1, 0), None);
        assert_eq!(step(Staged, &handed, 1, 0), Some(Step::Acquire));
        assert_eq!(step(Staged, &rolled, 1, 0), Some(Step::Release));
        assert_eq!(step(Foreign, &announced, 1, 0), None);
        // Slots handed over without a move (they held no bucket).
        assert_eq!(step(Foreign, &handed, 1, 0), Some(Step::Adopt));
        assert_eq!(step(Owned, &handed, 0, 0), Some(Step::Hide));
    }
}
