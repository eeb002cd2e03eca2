//! Slots moving between shards on a store that holds its data itself
//! (docs/placement.md, section 5): what a shard does when the map says a
//! slot came or went ([`Mover::reconcile`]), and the `ShardAdmin` calls of a
//! move (`admin.rs`) that drive the same steps.

mod metrics;
mod reconcile;

pub use reconcile::Mover;
