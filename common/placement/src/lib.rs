//! Where a bucket lives.
//!
//! The bucket is the unit of placement. Its id is hashed to one of
//! [`SLOTS`] slots with SHA-256 (stable across versions, platforms and
//! languages: the first two bytes of the digest, big-endian, modulo the slot
//! count). A shard map assigns slots to shards; the static map used until the
//! operator exists gives shard `i` of `n` the contiguous slot range
//! `[i*SLOTS/n, (i+1)*SLOTS/n)`. See docs/placement.md.
//!
//! Accounts are placed like buckets, by the key `account/<id>`
//! ([`PlacementKey`]): no bucket id contains `/`, so the two never collide.
//! Every crate places through this one; a placement key is spelled nowhere
//! else.
//!
//! The live map (issue 19) is built here in pieces: [`map::ShardMap`] (the
//! stored document), [`balance`] (the fewest moves to a new shard count) and
//! [`store`] (where the map lives: [`file_store`] is the map of one machine;
//! the keyspace's is in the shard crate) and [`live`] (the map a process
//! serves by, kept up to date with the stored one).

pub mod balance;
pub mod file_store;
pub mod live;
pub mod map;
pub mod slot_set;
pub mod store;

use sha2::{Digest, Sha256};
use std::fmt;

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
    digest_slot(&Sha256::digest(bucket_id.as_bytes()))
}

fn digest_slot(digest: &[u8]) -> u32 {
    u32::from(u16::from_be_bytes([digest[0], digest[1]])) % SLOTS
}

/// The shard that owns `slot` in the static map of `shard_count` shards.
#[inline]
fn static_owner(slot: u32, shard_count: u32) -> u32 {
    let n = shard_count.max(1);
    // Contiguous ranges: shard i owns [i*SLOTS/n, (i+1)*SLOTS/n).
    ((u64::from(slot) * u64::from(n)) / u64::from(SLOTS)) as u32
}

/// What is placed: a bucket (with everything in it), or an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacementKey<'a> {
    Bucket(&'a str),
    Account(&'a str),
}

impl<'a> PlacementKey<'a> {
    /// What places an object: an account its own id, anything else the
    /// bucket it is in (a bucket's own id). `None` for the lists that span
    /// every shard (`/buckets`, `/accounts`).
    #[inline]
    pub fn of(account: bool, bucket: &'a str, id: Option<&'a str>) -> Option<Self> {
        match (account, id) {
            (true, Some(id)) => Some(PlacementKey::Account(id)),
            (true, None) => None,
            (false, _) if bucket.is_empty() => None,
            (false, _) => Some(PlacementKey::Bucket(bucket)),
        }
    }

    /// The key's slot. A bucket hashes its id; an account hashes
    /// `account/<id>`, fed to the hash in two parts (no allocation).
    #[inline]
    pub fn slot(&self) -> u32 {
        match self {
            PlacementKey::Bucket(id) => slot_of(id),
            PlacementKey::Account(id) => {
                let digest = Sha256::new()
                    .chain_update(ACCOUNT_PREFIX)
                    .chain_update(id.as_bytes())
                    .finalize();
                digest_slot(&digest)
            }
        }
    }
}

const ACCOUNT_PREFIX: &str = "account/";

impl fmt::Display for PlacementKey<'_> {
    /// The key as hashed: a bucket's id, or `account/<id>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlacementKey::Bucket(id) => f.write_str(id),
            PlacementKey::Account(id) => write!(f, "{ACCOUNT_PREFIX}{id}"),
        }
    }
}

/// Which shard owns which slot, at which generation. Static for now (shard
/// `i` of `n` owns a contiguous range); the resharding work makes it live,
/// and a shard already refuses a caller whose generation differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardLayout {
    shards: u32,
    generation: u64,
}

impl ShardLayout {
    /// The static layout of `shards` shards (at least one), generation 1.
    pub fn fixed(shards: u32) -> Self {
        ShardLayout {
            shards: shards.max(1),
            generation: 1,
        }
    }

    #[inline]
    pub fn shards(&self) -> u32 {
        self.shards
    }

    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The shard that owns `key`.
    #[inline]
    pub fn owner(&self, key: PlacementKey<'_>) -> u32 {
        self.owner_of_slot(key.slot())
    }

    #[inline]
    pub fn owner_of_slot(&self, slot: u32) -> u32 {
        static_owner(slot, self.shards)
    }
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
    fn accounts_are_placed_by_their_id_the_rest_by_bucket() {
        let of = PlacementKey::of;
        assert_eq!(
            of(true, "", Some("alice")),
            Some(PlacementKey::Account("alice"))
        );
        assert_eq!(of(true, "", None), None);
        assert_eq!(of(false, "b", Some("r")), Some(PlacementKey::Bucket("b")));
        assert_eq!(of(false, "", None), None);
    }

    #[test]
    fn accounts_hash_their_prefixed_key() {
        for id in ["alice", "bob@example.com", ""] {
            let key = PlacementKey::Account(id);
            assert_eq!(key.to_string(), format!("account/{id}"));
            assert_eq!(key.slot(), hash_slot(&format!("account/{id}")), "{id}");
        }
        assert_eq!(PlacementKey::Bucket("blog").slot(), slot_of("blog"));
        let layout = ShardLayout::fixed(4);
        assert_eq!(
            layout.owner(PlacementKey::Account("u")),
            static_owner(hash_slot("account/u"), 4)
        );
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
