//! Moving slots out of and into a store that holds its shard's buckets
//! itself (the embedded backend; docs/placement.md, sections 5 and 6).
//!
//! A store that supports moves keeps a state per slot, checked in the same
//! atomic step as every commit: a commit touching a slot that is not
//! [`SlotState::Owned`] is refused with [`StorageError::Frozen`]. That check
//! is the fence: once `Freeze` has returned, no write of the old owner can
//! land, whatever it checked before.

use super::{StorageError, StorageResult, Write};
use kinto_placement::slot_set::SlotSet;
use kinto_placement::PlacementKey;

/// What a store may do with one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Served, read and written.
    Owned,
    /// Not this store's: nothing served, nothing written.
    Foreign,
    /// Being moved away: read, never written (durable).
    Frozen,
    /// A copy arriving from its owner: neither served nor written (durable).
    Staged,
}

/// One stored key and value of a slot, in one of the store's keyspaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotEntry {
    pub slot: u32,
    pub keyspace: u8,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// The SHA-256 of a stream of entries, the same on both ends of a move.
#[derive(Default, Clone)]
pub struct StreamDigest {
    hash: sha2::Sha256,
    pub count: u64,
}

impl StreamDigest {
    pub fn add(&mut self, e: &SlotEntry) {
        use sha2::Digest;
        // Lengths first: no two streams hash alike by shifting bytes between
        // a key and its value.
        self.hash.update((e.slot as u16).to_be_bytes());
        self.hash.update([e.keyspace]);
        self.hash.update((e.key.len() as u32).to_be_bytes());
        self.hash.update(&e.key);
        self.hash.update((e.value.len() as u32).to_be_bytes());
        self.hash.update(&e.value);
        self.count += 1;
    }

    pub fn finish(self) -> Vec<u8> {
        use sha2::Digest;
        self.hash.finalize().to_vec()
    }
}

/// The moves of a store that holds its buckets' data itself. Every method
/// is idempotent; those that change a state write it durably first.
pub trait SlotMoves: Send + Sync {
    /// The state of `slot` (every slot is `Owned` before [`SlotMoves::attach`]).
    fn state(&self, slot: u32) -> SlotState;

    /// Starts checking commits: `at_start` says what the map makes of each
    /// slot (owned, foreign, or frozen: owned but moving away); slots with a
    /// durable state (frozen, staged) keep it.
    fn attach(&self, at_start: &dyn Fn(u32) -> SlotState) -> StorageResult<()>;

    /// `Owned` → `Frozen`. A commit in flight either landed before (and is
    /// in the copy) or is refused.
    fn freeze(&self, slots: &[u32]) -> StorageResult<()>;

    /// `Frozen` → `Owned` (a move rolled back).
    fn unfreeze(&self, slots: &[u32]) -> StorageResult<()>;

    /// Every key and value of `slot`, sorted by keyspace then key.
    fn export(&self, slot: u32) -> StorageResult<Vec<SlotEntry>>;

    /// `Foreign`/`Staged` → `Staged`, empty: any earlier copy or leftover
    /// of those slots is deleted.
    fn stage_begin(&self, slots: &[u32]) -> StorageResult<()>;

    /// Adds entries to the staged copy of their (staged) slots.
    fn stage(&self, entries: Vec<SlotEntry>) -> StorageResult<()>;

    /// The digest of the staged copy of `slots`, in stream order.
    fn staged_digest(&self, slots: &[u32]) -> StorageResult<StreamDigest>;

    /// `Staged` → `Owned`: the staged copy becomes the store's own data.
    fn acquire(&self, slots: &[u32]) -> StorageResult<()>;

    /// `Frozen`/`Owned` → `Foreign`, deleting the slots' data; `Staged` →
    /// `Foreign`, deleting the staged copy.
    fn release(&self, slots: &[u32]) -> StorageResult<()>;

    /// `Owned` → `Foreign`, keeping the data hidden: a slot the map gave
    /// another shard without a move (docs/placement.md, section 9).
    fn hide(&self, slots: &[u32]) -> StorageResult<()>;

    /// `Foreign` → `Owned` without data: a slot the map gave this shard
    /// without a move (one that held no bucket).
    fn adopt(&self, slots: &[u32]) -> StorageResult<()>;

    /// The slots whose buckets and accounts this store lists now (owned or
    /// frozen), with the epoch of its slot states. A list read between two
    /// calls that return the same even epoch saw no slot change hands
    /// (see [`Served`]).
    fn served_slots(&self) -> Served;
}

/// A store's served slots at one epoch. The epoch works as a sequence lock:
/// it is odd while a change of served slots is being committed, and moves on
/// before and after every such change. So a read that began at an even epoch
/// and ends at that same epoch held one set of served slots throughout; the
/// domain reports that set with the read (`OpResult.served_slots`).
#[derive(Debug, Clone)]
pub struct Served {
    pub epoch: u64,
    pub slots: SlotSet,
}

impl Served {
    /// Whether a read that began at `self` and ended at `epoch` was stable.
    pub fn held_until(&self, epoch: u64) -> bool {
        self.epoch.is_multiple_of(2) && self.epoch == epoch
    }
}

/// The bucket of a parent id (`/buckets/b` or below it).
fn bucket_of(parent: &str) -> Option<&str> {
    let rest = parent.strip_prefix("/buckets/")?;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// What places the object `(parent, resource, id)`: a bucket or an account
/// at the top, else its bucket. `None` for the top-level lists themselves.
pub fn placement_of<'a>(parent: &'a str, resource: &str, id: &'a str) -> Option<PlacementKey<'a>> {
    if parent.is_empty() {
        return match resource {
            "bucket" => Some(PlacementKey::Bucket(id)),
            "account" => Some(PlacementKey::Account(id)),
            _ => None,
        };
    }
    bucket_of(parent).map(PlacementKey::Bucket)
}

/// The slot a write touches, `None` for the shard-wide lists (the
/// timestamp of `/buckets` or `/accounts`).
pub fn slot_of_write(w: &Write) -> Option<u32> {
    let key = match w {
        Write::Put {
            parent,
            resource,
            object,
            ..
        } => placement_of(parent, resource, &object.id),
        Write::Timestamp { parent, .. } | Write::PurgeTree { parent } => {
            bucket_of(parent).map(PlacementKey::Bucket)
        }
        Write::AddMember { group_uri, .. } | Write::RemoveMember { group_uri, .. } => {
            bucket_of(group_uri).map(PlacementKey::Bucket)
        }
    };
    key.map(|k| k.slot())
}

/// The refusal of a commit to a slot in `state`.
pub fn refused(slot: u32, state: SlotState) -> StorageError {
    StorageError::Frozen(format!("slot {slot} is {state:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StoredObject;

    #[test]
    fn every_write_is_placed_by_its_bucket_or_account() {
        let put = |parent: &str, resource: &'static str, id: &str| Write::Put {
            parent: parent.into(),
            resource,
            object: StoredObject::tombstone(id, 1),
            previous_last_modified: None,
        };
        let b = Some(PlacementKey::Bucket("b").slot());
        assert_eq!(slot_of_write(&put("", "bucket", "b")), b);
        assert_eq!(slot_of_write(&put("/buckets/b", "collection", "c")), b);
        assert_eq!(
            slot_of_write(&put("/buckets/b/collections/c", "record", "r")),
            b
        );
        assert_eq!(
            slot_of_write(&put("", "account", "al")),
            Some(PlacementKey::Account("al").slot())
        );
        let root = Write::Timestamp {
            parent: String::new(),
            resource: "bucket",
            value: 1,
        };
        assert_eq!(slot_of_write(&root), None);
        let purge = Write::PurgeTree {
            parent: "/buckets/b".into(),
        };
        assert_eq!(slot_of_write(&purge), b);
        let member = Write::AddMember {
            principal: "p".into(),
            group_uri: "/buckets/b/groups/g".into(),
        };
        assert_eq!(slot_of_write(&member), b);
    }
}
