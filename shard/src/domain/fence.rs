//! Before an operation loads anything: is its slot served here now? A slot
//! frozen for a move is read but not written; a staged or foreign one is
//! neither (docs/placement.md, section 5). The store checks writes again
//! at commit, under its lock: this early answer only spares the work.

use super::{Request, Shard};
use crate::storage::slots::SlotState;
use kinto_placement::PlacementKey;
use kinto_proto::{pb, ErrorKind, KintoError};

impl Shard {
    pub(super) fn check_fence(
        &self,
        key: PlacementKey<'_>,
        req: &Request,
    ) -> Result<(), KintoError> {
        let read = matches!(req.method, pb::Method::Get | pb::Method::Head)
            && !(req.implicit_bucket || req.implicit_collection);
        self.check_slot(key, read)
    }

    /// [`Shard::check_fence`] for a read outside an operation.
    pub(super) fn check_fence_read(&self, key: PlacementKey<'_>) -> Result<(), KintoError> {
        self.check_slot(key, true)
    }

    fn check_slot(&self, key: PlacementKey<'_>, read: bool) -> Result<(), KintoError> {
        let Some(moves) = self.storage().slot_moves() else {
            return Ok(());
        };
        let slot = key.slot();
        match moves.state(slot) {
            SlotState::Owned => Ok(()),
            SlotState::Frozen if read => Ok(()),
            state => Err(
                KintoError::new(ErrorKind::Frozen).with_details(serde_json::json!({
                    "key": key.to_string(),
                    "slot": slot,
                    "state": format!("{state:?}"),
                })),
            ),
        }
    }

    /// Forgets everything the shard caches: slots changed hands, and a
    /// cached parent or list timestamp of theirs may be stale.
    pub fn drop_caches(&self) {
        self.cache.clear();
    }
}
