//! The slots of one CQL shard and the fence of their moves (docs/placement.md,
//! sections 5 and 6, "CQL", path 1). The data stays in the shared keyspace,
//! so a move copies nothing: what moves is the right to write.
//!
//! Every commit registers the slots it writes before it reads anything,
//! and is refused unless each is owned; it leaves only once Cassandra gave
//! it a definite answer (a commit without one is resent unchanged: every
//! statement has an explicit `USING TIMESTAMP`, so a resend, or a late
//! copy of a send, writes the same cells with the same timestamps). A
//! freeze marks the slots frozen, then waits until none of their commits is
//! in flight: once it returns, nothing of this shard can land on them but a
//! write that already did. The states live in memory; a shard started
//! during a move takes the slots the map moves away as frozen, so a
//! restart cannot unfreeze them.

use crate::storage::slots::{refused, Served, SlotEntry, SlotMoves, SlotState, StreamDigest};
use crate::storage::{StorageError, StorageResult};
use kinto_placement::slot_set::SlotSet;
use kinto_placement::SLOTS;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The longest a freeze waits for the answers of the commits in flight on
/// its slots; then it fails, and the coordinator rolls the move back.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub struct CqlSlots {
    inner: Mutex<Inner>,
    /// Signalled whenever a commit leaves.
    left: Condvar,
}

struct Inner {
    state: Vec<SlotState>,
    /// Commits in flight, by slot.
    in_flight: Vec<u32>,
    /// The served slots' epoch ([`Served`]): changed under this lock, so
    /// always even here.
    epoch: u64,
}

/// A commit's registration: its slots count it as in flight until dropped.
pub struct InFlight {
    slots: Arc<CqlSlots>,
    list: Vec<u32>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut inner = self.slots.lock();
        for &slot in &self.list {
            if let Some(n) = inner.in_flight.get_mut(slot as usize) {
                *n = n.saturating_sub(1);
            }
        }
        drop(inner);
        self.slots.left.notify_all();
    }
}

impl CqlSlots {
    /// Every slot owned or foreign, as `owned` says (until the shard's
    /// mover attaches and the map decides).
    pub fn new(owned: impl Fn(u32) -> bool) -> Arc<Self> {
        let state = (0..SLOTS)
            .map(|s| {
                if owned(s) {
                    SlotState::Owned
                } else {
                    SlotState::Foreign
                }
            })
            .collect();
        Arc::new(CqlSlots {
            inner: Mutex::new(Inner {
                state,
                in_flight: vec![0; SLOTS as usize],
                epoch: 0,
            }),
            left: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether reads of `slot` are served here (owned, or frozen for a move).
    pub fn served(&self, slot: u32) -> bool {
        self.lock()
            .state
            .get(slot as usize)
            .is_some_and(|&s| listed(s))
    }

    /// The slots served here, as the `part`s of the root lists.
    pub fn served_parts(&self) -> Vec<i16> {
        let inner = self.lock();
        (0..SLOTS)
            .filter(|&s| listed(inner.state[s as usize]))
            .map(|s| s as i16)
            .collect()
    }

    /// Registers a commit writing `slots`; refused unless each is owned.
    pub fn enter(self: &Arc<Self>, mut slots: Vec<u32>) -> StorageResult<InFlight> {
        slots.sort_unstable();
        slots.dedup();
        let mut inner = self.lock();
        for &slot in &slots {
            match inner.state.get(slot as usize) {
                Some(SlotState::Owned) => {}
                Some(&state) => return Err(refused(slot, state)),
                None => return Err(StorageError::Corrupt(format!("no slot {slot}"))),
            }
        }
        for &slot in &slots {
            inner.in_flight[slot as usize] += 1;
        }
        Ok(InFlight {
            slots: Arc::clone(self),
            list: slots,
        })
    }

    fn set(
        &self,
        slots: &[u32],
        from: &[SlotState],
        to: SlotState,
        what: &str,
    ) -> StorageResult<()> {
        let mut inner = self.lock();
        if let Some(&slot) = slots.iter().find(|&&s| {
            inner
                .state
                .get(s as usize)
                .is_none_or(|st| !from.contains(st))
        }) {
            let state = inner.state.get(slot as usize).copied();
            return Err(StorageError::Frozen(format!(
                "cannot {what} slot {slot}: it is {state:?}"
            )));
        }
        let mut changed = false;
        for &slot in slots {
            changed |= listed(inner.state[slot as usize]) != listed(to);
            inner.state[slot as usize] = to;
        }
        // A freeze or an unfreeze keeps the slot listed: a spanning list
        // read across one needs no second read.
        if changed {
            inner.epoch += 2;
        }
        Ok(())
    }
}

/// Whether the root lists read a slot in `state` here.
fn listed(state: SlotState) -> bool {
    matches!(state, SlotState::Owned | SlotState::Frozen)
}

impl SlotMoves for CqlSlots {
    fn state(&self, slot: u32) -> SlotState {
        self.lock()
            .state
            .get(slot as usize)
            .copied()
            .unwrap_or(SlotState::Foreign)
    }

    fn attach(&self, at_start: &dyn Fn(u32) -> SlotState) -> StorageResult<()> {
        let mut inner = self.lock();
        for slot in 0..SLOTS {
            inner.state[slot as usize] = match at_start(slot) {
                // No copy arrives on CQL: a slot moving here is taken when
                // the map hands it over.
                SlotState::Staged => SlotState::Foreign,
                state => state,
            };
        }
        inner.epoch += 2;
        Ok(())
    }

    fn freeze(&self, slots: &[u32]) -> StorageResult<()> {
        use SlotState::*;
        self.set(slots, &[Owned, Frozen], Frozen, "freeze")?;
        // The drain: every commit that passed the check before has its answer.
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let mut inner = self.lock();
        loop {
            let busy = slots
                .iter()
                .find(|&&s| inner.in_flight.get(s as usize).is_some_and(|&n| n > 0));
            let Some(&slot) = busy else {
                return Ok(());
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StorageError::Unavailable(format!(
                    "a commit to slot {slot} has had no definite answer from Cassandra in {}s",
                    DRAIN_TIMEOUT.as_secs()
                )));
            }
            inner = self
                .left
                .wait_timeout(inner, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn unfreeze(&self, slots: &[u32]) -> StorageResult<()> {
        use SlotState::*;
        self.set(slots, &[Owned, Frozen], Owned, "unfreeze")
    }

    /// Nothing to copy: the new owner reads the same tables.
    fn export(&self, _slot: u32) -> StorageResult<Vec<SlotEntry>> {
        Ok(Vec::new())
    }

    fn stage_begin(&self, slots: &[u32]) -> StorageResult<()> {
        use SlotState::*;
        self.set(slots, &[Foreign, Staged], Staged, "stage")
    }

    fn stage(&self, entries: Vec<SlotEntry>) -> StorageResult<()> {
        match entries.first() {
            None => Ok(()),
            Some(e) => Err(StorageError::Corrupt(format!(
                "slot {}: a CQL shard takes no copy (its data is in the keyspace)",
                e.slot
            ))),
        }
    }

    fn staged_digest(&self, _slots: &[u32]) -> StorageResult<StreamDigest> {
        Ok(StreamDigest::default())
    }

    fn acquire(&self, slots: &[u32]) -> StorageResult<()> {
        use SlotState::*;
        self.set(slots, &[Staged, Foreign, Owned], Owned, "acquire")
    }

    /// The old owner's writes were drained by the freeze: nothing to delete.
    fn release(&self, slots: &[u32]) -> StorageResult<()> {
        use SlotState::*;
        self.set(slots, &[Owned, Frozen, Staged, Foreign], Foreign, "release")
    }

    fn hide(&self, slots: &[u32]) -> StorageResult<()> {
        use SlotState::*;
        self.set(slots, &[Owned, Foreign], Foreign, "hide")
    }

    fn adopt(&self, slots: &[u32]) -> StorageResult<()> {
        use SlotState::*;
        self.set(slots, &[Foreign, Owned], Owned, "adopt")
    }

    /// The root lists read the partitions of [`CqlSlots::served_parts`],
    /// taken after this call: a change in between moves the epoch on.
    fn served_slots(&self) -> Served {
        let inner = self.lock();
        let slots = SlotSet::of(|s| listed(inner.state[s as usize]));
        Served {
            epoch: inner.epoch,
            slots,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_slots_move_on_when_a_slot_changes_hands() {
        let slots = CqlSlots::new(|s| s < 8);
        let before = slots.served_slots();
        assert_eq!(before.slots.len(), 8);
        slots.freeze(&[3]).expect("freeze");
        let frozen = slots.served_slots();
        assert!(frozen.slots.contains(3), "a frozen slot is still listed");
        assert!(
            before.held_until(frozen.epoch),
            "a freeze changes no listed slot"
        );
        slots.release(&[3]).expect("release");
        let released = slots.served_slots();
        assert!(!frozen.held_until(released.epoch));
        assert!(!released.slots.contains(3) && released.slots.len() == 7);
        assert!(released.held_until(slots.served_slots().epoch));
    }

    #[test]
    fn a_freeze_waits_for_the_commits_in_flight_and_refuses_new_ones() {
        let slots = CqlSlots::new(|s| s < 8);
        let first = slots.enter(vec![3]).expect("owned");
        assert!(matches!(slots.enter(vec![9]), Err(StorageError::Frozen(_))));
        let frozen = std::thread::scope(|scope| {
            let freezing = scope.spawn(|| {
                slots.freeze(&[3]).expect("freeze");
                Instant::now()
            });
            std::thread::sleep(Duration::from_millis(100));
            // Frozen at once: a new commit is refused while the old one runs.
            assert!(matches!(slots.enter(vec![3]), Err(StorageError::Frozen(_))));
            assert!(!freezing.is_finished());
            let answered = Instant::now();
            drop(first);
            let frozen = freezing.join().expect("join");
            assert!(frozen >= answered);
            frozen
        });
        let _ = frozen;
        // Reads of a frozen slot go on; a released one is neither read nor written.
        assert!(slots.served(3));
        slots.release(&[3]).expect("release");
        assert!(!slots.served(3) && !slots.served_parts().contains(&3));
        assert!(matches!(slots.enter(vec![3]), Err(StorageError::Frozen(_))));
        // A slot handed here is owned once acquired.
        slots.stage_begin(&[9]).expect("stage");
        slots.acquire(&[9]).expect("acquire");
        assert!(slots.enter(vec![9]).is_ok());
    }
}
