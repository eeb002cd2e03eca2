//! The slots a read of a list spanning every shard covered (`GET /buckets`,
//! `/accounts`, `/permissions`): the gateway merges the shards' parts only
//! when together they hold every slot once, so a bucket a move is handing
//! over is neither missed nor listed twice (docs/placement.md, section 5,
//! "Lists across shards").

use super::Shard;
use crate::storage::slots::Served;
use kinto_proto::{ErrorKind, KintoError};

impl Shard {
    /// The served slots as a spanning read begins (`None`: this store does
    /// not track slots, and its answers carry no set).
    pub(super) fn served_before(&self) -> Option<Served> {
        self.storage().slot_moves().map(|m| m.served_slots())
    }

    /// The wire form of the slots a spanning read covered, or `Frozen` (a
    /// refusal the gateway retries) when slots changed hands while it ran.
    pub(super) fn served_after(&self, before: Option<Served>) -> Result<Vec<u8>, KintoError> {
        let (Some(before), Some(moves)) = (before, self.storage().slot_moves()) else {
            return Ok(Vec::new());
        };
        if !before.held_until(moves.served_slots().epoch) {
            return Err(
                KintoError::new(ErrorKind::Frozen).with_details(serde_json::json!({
                    "reason": "slots changed hands while the list was read",
                })),
            );
        }
        Ok(before.slots.to_bytes())
    }
}
