//! Where a bucket lives.
//!
//! The bucket is the unit of placement. Its id is hashed to one of
//! [`SLOTS`] slots with SHA-256 (stable across versions, platforms and
//! languages: the first two bytes of the digest, big-endian, modulo the slot
//! count). A shard map assigns slots to shards; the static map used until the
//! operator exists gives shard `i` of `n` the contiguous slot range
//! `[i*SLOTS/n, (i+1)*SLOTS/n)`. See docs/placement.md.

use sha2::{Digest, Sha256};

/// Fixed forever: changing it would move every bucket.
pub const SLOTS: u32 = 4096;

/// The slot of a bucket id.
pub fn slot_of(bucket_id: &str) -> u32 {
    thread_local! {
        /// The last bucket hashed on this thread: consecutive operations
        /// (a `/batch`'s, a user's requests) nearly always name the same
        /// bucket, and a SHA-256 costs more than the rest of routing.
        static LAST: std::cell::RefCell<(String, u32)> =
            const { std::cell::RefCell::new((String::new(), 0)) };
    }
    LAST.with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else {
            return hash_slot(bucket_id);
        };
        if last.0 != bucket_id || last.0.is_empty() {
            last.1 = hash_slot(bucket_id);
            last.0.clear();
            last.0.push_str(bucket_id);
        }
        last.1
    })
}

fn hash_slot(bucket_id: &str) -> u32 {
    let digest = Sha256::digest(bucket_id.as_bytes());
    u32::from(u16::from_be_bytes([digest[0], digest[1]])) % SLOTS
}

/// The shard that owns `slot` in the static map of `shard_count` shards.
pub fn static_owner(slot: u32, shard_count: u32) -> u32 {
    let n = shard_count.max(1);
    // Contiguous ranges: shard i owns [i*SLOTS/n, (i+1)*SLOTS/n).
    ((u64::from(slot) * u64::from(n)) / u64::from(SLOTS)) as u32
}

/// The static-map owner of a bucket.
pub fn shard_for_bucket(bucket_id: &str, shard_count: u32) -> u32 {
    static_owner(slot_of(bucket_id), shard_count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_stable() {
        // Pinned values: if these change, every deployed bucket moves.
        assert_eq!(slot_of("a"), 0xca97 % SLOTS);
        assert_eq!(slot_of("blog"), slot_of("blog"));
        // The memo of the last bucket never answers for another one.
        for id in ["a", "blog", "a", "", "a"] {
            assert_eq!(slot_of(id), hash_slot(id), "{id}");
        }
    }

    #[test]
    fn static_map_covers_every_slot_once() {
        for n in [1u32, 2, 3, 4, 7, 64] {
            let mut counts = vec![0u32; n as usize];
            for s in 0..SLOTS {
                let o = static_owner(s, n);
                assert!(o < n);
                counts[o as usize] += 1;
            }
            let (min, max) = (counts.iter().min(), counts.iter().max());
            assert!(max.unwrap_or(&0) - min.unwrap_or(&0) <= 1, "{counts:?}");
        }
    }
}
