//! Which slots an answer covers. A list that spans every shard (`GET
//! /buckets`, `/accounts`, `/permissions`) is merged from each shard's
//! part; while a move hands slots over, one shard may already have
//! released a slot the other has not yet acquired (the slot's buckets are
//! in no part) or, on a backend whose data stays put, both may serve it
//! for a moment (in two parts). Each shard therefore says which slots its
//! part holds, and the gateway merges only parts that cover every slot
//! exactly once (docs/placement.md, section 5, "Lists across shards").

use crate::SLOTS;

const WORDS: usize = (SLOTS / 64) as usize;

/// A set of slots: one bit per slot, sent as `SLOTS / 8` bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SlotSet {
    words: [u64; WORDS],
}

impl Default for SlotSet {
    fn default() -> Self {
        SlotSet { words: [0; WORDS] }
    }
}

impl std::fmt::Debug for SlotSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotSet({} slots)", self.len())
    }
}

impl SlotSet {
    /// Every slot where `served` holds.
    pub fn of(served: impl Fn(u32) -> bool) -> Self {
        let mut set = SlotSet::default();
        for slot in (0..SLOTS).filter(|&s| served(s)) {
            set.words[slot as usize / 64] |= 1 << (slot % 64);
        }
        set
    }

    pub fn contains(&self, slot: u32) -> bool {
        slot < SLOTS && self.words[slot as usize / 64] & (1 << (slot % 64)) != 0
    }

    pub fn len(&self) -> u32 {
        self.words.iter().map(|w| w.count_ones()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The wire form: little-endian words.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// `None` unless `bytes` is exactly one set's wire form.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != WORDS * 8 {
            return None;
        }
        let mut set = SlotSet::default();
        for (word, chunk) in set.words.iter_mut().zip(bytes.chunks_exact(8)) {
            *word = u64::from_le_bytes(chunk.try_into().ok()?);
        }
        Some(set)
    }
}

/// How parts cover the slots: a merged list is whole only when both are 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cover {
    /// Slots in no part.
    pub missing: u32,
    /// Slots in more than one part.
    pub doubled: u32,
}

impl Cover {
    pub fn exact(&self) -> bool {
        self.missing == 0 && self.doubled == 0
    }
}

/// How `parts` together cover the slots.
pub fn cover<'a>(parts: impl IntoIterator<Item = &'a SlotSet>) -> Cover {
    let (mut once, mut twice) = ([0u64; WORDS], [0u64; WORDS]);
    for part in parts {
        for (i, w) in part.words.iter().enumerate() {
            twice[i] |= once[i] & w;
            once[i] |= w;
        }
    }
    Cover {
        missing: once.iter().map(|w| w.count_zeros()).sum(),
        doubled: twice.iter().map(|w| w.count_ones()).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_survives_its_wire_form_and_a_wrong_length_is_refused() {
        let set = SlotSet::of(|s| s % 3 == 0 || s == SLOTS - 2);
        let back = SlotSet::from_bytes(&set.to_bytes()).expect("decodes");
        assert_eq!(back, set);
        assert!(back.contains(0) && back.contains(3) && back.contains(SLOTS - 2));
        assert!(!back.contains(1) && !back.contains(SLOTS - 3) && !back.contains(SLOTS));
        // 0, 3, …, 4095 and 4094.
        assert_eq!(back.len(), SLOTS / 3 + 1 + 1);
        assert!(SlotSet::from_bytes(&set.to_bytes()[1..]).is_none());
        assert!(SlotSet::from_bytes(&[]).is_none());
    }

    #[test]
    fn parts_cover_exactly_only_when_each_slot_is_in_one() {
        let low = SlotSet::of(|s| s < 2048);
        let high = SlotSet::of(|s| s >= 2048);
        assert!(cover([&low, &high]).exact());
        // A slot released by one shard and not yet acquired by the other.
        let released = SlotSet::of(|s| s < 2047);
        assert_eq!(
            cover([&released, &high]),
            Cover {
                missing: 1,
                doubled: 0
            }
        );
        // A slot both serve for a moment.
        let acquired = SlotSet::of(|s| s >= 2047);
        assert_eq!(
            cover([&low, &acquired]),
            Cover {
                missing: 0,
                doubled: 1
            }
        );
        // In three parts, a slot in all three counts once as doubled.
        assert_eq!(
            cover([&low, &low, &low, &high]),
            Cover {
                missing: 0,
                doubled: 2048
            }
        );
        assert_eq!(
            cover([]),
            Cover {
                missing: SLOTS,
                doubled: 0
            }
        );
    }
}
