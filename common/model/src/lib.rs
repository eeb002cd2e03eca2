//! Kinto's object model as both sides of the service see it: the kinds of
//! objects, the id rules, the clock that stamps `last_modified`, and the
//! grants that settings give. The gateway validates with it before a call;
//! the shard, the single writer, applies it again.
//!
//! The small functions called on every operation are `#[inline]`: across a
//! crate boundary, without link-time optimisation, they would otherwise be
//! calls (they were inlined when they lived in the shard and gateway crates).

pub mod clock;
pub mod grants;
mod id;
mod kind;

pub use id::{generate_id, invalid_id, valid_id, valid_id_for};
pub use kind::Kind;
