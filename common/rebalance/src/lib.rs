//! The coordinator of a rebalance (docs/placement.md, section 5), in a crate
//! of its own so that `kinto-shard admin` and the operator run the same
//! steps, and the operator links no shard code.

mod coordinator;
mod shards_store;

pub use coordinator::{Coordinator, Fencer, Progress};
pub use shards_store::ShardsMapStore;
