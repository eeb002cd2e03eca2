//! The fence of the embedded store: a state per slot, checked under the
//! commit lock by every commit, and the state changes of a move
//! (docs/placement.md, sections 5 and 6).
//!
//! Why in the store and not in the domain: a write checks its bucket's
//! owner before it loads anything, and commits later. The only point that
//! orders it against a freeze is the commit itself, so the check is made
//! there, under the same lock as the freeze's own write. Frozen and staged
//! slots are written to `meta` (`slot \0 be16(slot)` → `F` or `S`) and
//! synced before the call returns: a restarted store keeps them.

use super::slot_copy::RootChanges;
use super::{unavailable, EmbeddedStorage};
use crate::storage::slots::{
    placement_of, refused, slot_of_write, Served, SlotEntry, SlotMoves, SlotState, StreamDigest,
};
use crate::storage::{StorageError, StorageResult, Write};
use fjall::{OwnedWriteBatch, PersistMode};
use kinto_placement::slot_set::SlotSet;
use kinto_placement::SLOTS;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::SeqCst};

const OWNED: u8 = 0;
const FOREIGN: u8 = 1;
const FROZEN: u8 = 2;
const STAGED: u8 = 3;

/// The state of every slot, read by commits without a lock of its own (the
/// commit lock orders them against changes).
pub(super) struct Fence {
    states: Vec<AtomicU8>,
    /// Until the shard attaches its map, every slot is writable (a store
    /// opened alone: tests, tools).
    attached: AtomicBool,
    /// The sequence lock of the served slots ([`crate::storage::slots::Served`]).
    epoch: AtomicU64,
}

/// Held while a change of served slots commits: the epoch is odd from
/// before the store's batch until after the states are set.
struct Changing<'a>(&'a AtomicU64);

impl<'a> Changing<'a> {
    fn begin(epoch: &'a AtomicU64) -> Self {
        epoch.fetch_add(1, SeqCst);
        Changing(epoch)
    }
}

impl Drop for Changing<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

impl Default for Fence {
    fn default() -> Self {
        Fence {
            states: (0..SLOTS).map(|_| AtomicU8::new(OWNED)).collect(),
            attached: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
        }
    }
}

fn decode_state(v: u8) -> SlotState {
    match v {
        OWNED => SlotState::Owned,
        FROZEN => SlotState::Frozen,
        STAGED => SlotState::Staged,
        _ => SlotState::Foreign,
    }
}

impl Fence {
    fn get(&self, slot: u32) -> SlotState {
        self.states
            .get(slot as usize)
            .map_or(SlotState::Foreign, |s| decode_state(s.load(SeqCst)))
    }

    fn set(&self, slot: u32, state: u8) {
        if let Some(s) = self.states.get(slot as usize) {
            s.store(state, SeqCst);
        }
    }

    /// Whether cross-bucket answers (the root lists, the principal index)
    /// show the object at `(parent, resource, id)`: not when its slot is
    /// foreign or staged here. A slot the map gave away without a move
    /// (`hide`) can leave objects behind; the new owner serves that slot.
    pub(super) fn shows(&self, parent: &str, resource: &str, id: &str) -> bool {
        placement_of(parent, resource, id)
            .is_none_or(|key| matches!(self.get(key.slot()), SlotState::Owned | SlotState::Frozen))
    }

    /// The slots `writes` touch, while the fence is up (none before).
    pub(super) fn slots_of(&self, writes: &[Write]) -> Vec<u32> {
        if !self.attached.load(SeqCst) {
            return Vec::new();
        }
        writes.iter().filter_map(slot_of_write).collect()
    }

    /// Refuses a commit that touches a slot this store may not write. The
    /// caller holds the commit lock.
    pub(super) fn check(&self, slots: &[u32]) -> StorageResult<()> {
        for &slot in slots {
            let state = self.get(slot);
            if state != SlotState::Owned {
                return Err(refused(slot, state));
            }
        }
        Ok(())
    }
}

fn marker_key(slot: u32) -> Vec<u8> {
    let mut k = b"slot\0".to_vec();
    k.extend_from_slice(&(slot as u16).to_be_bytes());
    k
}

impl EmbeddedStorage {
    fn locked(&self) -> std::sync::MutexGuard<'_, ()> {
        self.commit_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Commits `batch` and syncs the journal: a state change of a move is
    /// durable before it is acted on.
    fn commit_synced(&self, batch: OwnedWriteBatch) -> StorageResult<()> {
        batch.commit().map_err(unavailable)?;
        self.db.persist(PersistMode::SyncAll).map_err(unavailable)
    }

    /// Owned ⇄ foreign, in memory only: what the map says at start-up anyway.
    fn flip(&self, slots: &[u32], to: u8, what: &str) -> StorageResult<()> {
        let _lock = self.locked();
        self.expect(slots, &[SlotState::Foreign, SlotState::Owned], what)?;
        let _changing = Changing::begin(&self.fence.epoch);
        for &slot in slots {
            self.fence.set(slot, to);
        }
        Ok(())
    }

    /// Checks that every slot of `slots` is in one of `from`.
    fn expect(&self, slots: &[u32], from: &[SlotState], what: &str) -> StorageResult<()> {
        for &slot in slots {
            let state = self.fence.get(slot);
            if !from.contains(&state) {
                return Err(StorageError::Frozen(format!(
                    "cannot {what} slot {slot}: it is {state:?}"
                )));
            }
        }
        Ok(())
    }
}

impl SlotMoves for EmbeddedStorage {
    fn state(&self, slot: u32) -> SlotState {
        self.fence.get(slot)
    }

    fn attach(&self, at_start: &dyn Fn(u32) -> SlotState) -> StorageResult<()> {
        let _lock = self.locked();
        let _changing = Changing::begin(&self.fence.epoch);
        for slot in 0..SLOTS {
            // Only a durable marker freezes a slot here (read below).
            let owned = at_start(slot) != SlotState::Foreign;
            self.fence.set(slot, if owned { OWNED } else { FOREIGN });
        }
        for item in self.meta.prefix(b"slot\0") {
            let (key, value) = item.into_inner().map_err(unavailable)?;
            let slot = match key[5..] {
                [a, b] => u32::from(u16::from_be_bytes([a, b])),
                _ => continue,
            };
            match &value[..] {
                b"F" => self.fence.set(slot, FROZEN),
                b"S" => self.fence.set(slot, STAGED),
                _ => {}
            }
        }
        self.fence.attached.store(true, SeqCst);
        Ok(())
    }

    fn freeze(&self, slots: &[u32]) -> StorageResult<()> {
        let _lock = self.locked();
        self.expect(slots, &[SlotState::Owned, SlotState::Frozen], "freeze")?;
        let mut batch = self.db.batch();
        for &slot in slots {
            batch.insert(&self.meta, marker_key(slot), b"F");
        }
        self.commit_synced(batch)?;
        for &slot in slots {
            self.fence.set(slot, FROZEN);
        }
        Ok(())
    }

    fn unfreeze(&self, slots: &[u32]) -> StorageResult<()> {
        let _lock = self.locked();
        self.expect(slots, &[SlotState::Owned, SlotState::Frozen], "unfreeze")?;
        let mut batch = self.db.batch();
        for &slot in slots {
            batch.remove(&self.meta, marker_key(slot));
        }
        self.commit_synced(batch)?;
        for &slot in slots {
            self.fence.set(slot, OWNED);
        }
        Ok(())
    }

    fn export(&self, slot: u32) -> StorageResult<Vec<SlotEntry>> {
        self.entries_of(slot)
    }

    fn stage_begin(&self, slots: &[u32]) -> StorageResult<()> {
        let _lock = self.locked();
        self.expect(slots, &[SlotState::Foreign, SlotState::Staged], "stage")?;
        // Leftovers deleted below may have been listed (hidden slots).
        let _changing = Changing::begin(&self.fence.epoch);
        let mut batch = self.db.batch();
        let mut roots = RootChanges::default();
        for &slot in slots {
            // Leftovers of an earlier ownership would mix with the copy.
            self.remove_slot_data(&mut batch, slot, &mut roots)?;
            self.remove_staged(&mut batch, slot)?;
            batch.insert(&self.meta, marker_key(slot), b"S");
        }
        self.apply_roots(&mut batch, roots)?;
        self.commit_synced(batch)?;
        for &slot in slots {
            self.fence.set(slot, STAGED);
        }
        Ok(())
    }

    fn stage(&self, entries: Vec<SlotEntry>) -> StorageResult<()> {
        let _lock = self.locked();
        let mut batch = self.db.batch().durability(None);
        for e in entries {
            self.expect(&[e.slot], &[SlotState::Staged], "add to the copy of")?;
            // A keyspace this version does not have (a sender of another
            // version): acquiring would drop those entries, so the copy fails
            // and the move rolls back.
            if self.keyspace(e.keyspace).is_none() {
                return Err(StorageError::Corrupt(format!(
                    "a copied entry of keyspace {}, which this store does not have",
                    e.keyspace
                )));
            }
            batch.insert(&self.staged, super::slot_copy::staged_key(&e), e.value);
        }
        batch.commit().map_err(unavailable)
    }

    fn staged_digest(&self, slots: &[u32]) -> StorageResult<StreamDigest> {
        self.db.persist(PersistMode::SyncAll).map_err(unavailable)?;
        let mut digest = StreamDigest::default();
        for &slot in slots {
            for e in self.staged_entries(slot)? {
                digest.add(&e);
            }
        }
        Ok(digest)
    }

    fn acquire(&self, slots: &[u32]) -> StorageResult<()> {
        let _lock = self.locked();
        self.expect(slots, &[SlotState::Staged, SlotState::Owned], "acquire")?;
        let staged: Vec<u32> = slots
            .iter()
            .copied()
            .filter(|&s| self.fence.get(s) == SlotState::Staged)
            .collect();
        let _changing = Changing::begin(&self.fence.epoch);
        let mut batch = self.db.batch();
        let mut roots = RootChanges::default();
        for &slot in &staged {
            for e in self.staged_entries(slot)? {
                roots.add(&e, 1)?;
                batch.remove(&self.staged, super::slot_copy::staged_key(&e));
                if let Some(ks) = self.keyspace(e.keyspace) {
                    batch.insert(ks, e.key, e.value);
                }
            }
            batch.remove(&self.meta, marker_key(slot));
        }
        self.apply_roots(&mut batch, roots)?;
        self.commit_synced(batch)?;
        for &slot in &staged {
            self.fence.set(slot, OWNED);
        }
        Ok(())
    }

    fn release(&self, slots: &[u32]) -> StorageResult<()> {
        let _lock = self.locked();
        let _changing = Changing::begin(&self.fence.epoch);
        let mut batch = self.db.batch();
        let mut roots = RootChanges::default();
        for &slot in slots {
            match self.fence.get(slot) {
                SlotState::Frozen => self.remove_slot_data(&mut batch, slot, &mut roots)?,
                SlotState::Staged => self.remove_staged(&mut batch, slot)?,
                SlotState::Foreign => continue,
                SlotState::Owned => {
                    return Err(StorageError::Frozen(format!(
                        "cannot release slot {slot}: it is owned and not frozen"
                    )))
                }
            }
            batch.remove(&self.meta, marker_key(slot));
        }
        self.apply_roots(&mut batch, roots)?;
        self.commit_synced(batch)?;
        for &slot in slots {
            self.fence.set(slot, FOREIGN);
        }
        Ok(())
    }

    fn adopt(&self, slots: &[u32]) -> StorageResult<()> {
        self.flip(slots, OWNED, "adopt")
    }

    fn hide(&self, slots: &[u32]) -> StorageResult<()> {
        self.flip(slots, FOREIGN, "hide")
    }

    fn served_slots(&self) -> Served {
        let epoch = self.fence.epoch.load(SeqCst);
        let slots =
            SlotSet::of(|s| matches!(self.fence.get(s), SlotState::Owned | SlotState::Frozen));
        Served { epoch, slots }
    }
}
