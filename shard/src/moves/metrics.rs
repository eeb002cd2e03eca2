//! `kinto_shard_moves_in_progress`: slots of a shard frozen or staged.

use prometheus::{register_int_gauge_vec, IntGaugeVec};
use std::sync::LazyLock;

pub static MOVES_IN_PROGRESS: LazyLock<Option<IntGaugeVec>> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "kinto_shard_moves_in_progress",
        "Slots of a shard in the middle of a move: frozen here, or staged here.",
        &["shard"]
    )
    .ok()
});

pub fn set(shard: u32, slots: usize) {
    if let Some(g) = MOVES_IN_PROGRESS.as_ref() {
        g.with_label_values(&[shard.to_string().as_str()])
            .set(i64::try_from(slots).unwrap_or(i64::MAX));
    }
}
