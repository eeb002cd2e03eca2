//! The shard map as stored: which shard owns each slot, which slots are
//! moving, and the generation that orders every change (docs/placement.md,
//! section 3).

use crate::{balance, SLOTS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One shard of the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// Where gateways reach it (`http://host:port`); empty for the shards
    /// of the all-in-one binary, which are called in process.
    #[serde(default)]
    pub address: String,
}

/// A slot being handed from its owner to `to` (the owner keeps serving it
/// until the handoff commits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moving {
    pub to: u32,
}

/// The map. Changed only by compare-and-set on `generation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMap {
    pub generation: u64,
    pub shards: BTreeMap<u32, ShardEntry>,
    /// The owner of each slot, as runs `[first, owner]` in slot order (a
    /// 4096-entry list would make every map read 20 KB).
    owners: Vec<[u32; 2]>,
    /// Slots in the middle of a move, by slot.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub moving: BTreeMap<u32, Moving>,
}

/// Why a stored map cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidMap(pub String);

impl std::fmt::Display for InvalidMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid shard map: {}", self.0)
    }
}

impl std::error::Error for InvalidMap {}

impl ShardMap {
    /// The static map of `shards` shards at generation 1, the map every
    /// deployment ran with before the map was stored.
    pub fn initial(shards: u32, addresses: &[String]) -> Self {
        let shards = shards.max(1);
        let entries = (0..shards)
            .map(|i| {
                let address = addresses.get(i as usize).cloned().unwrap_or_default();
                (i, ShardEntry { address })
            })
            .collect();
        let mut map = ShardMap {
            generation: 1,
            shards: entries,
            owners: Vec::new(),
            moving: BTreeMap::new(),
        };
        map.set_owners(&balance::contiguous(shards));
        map
    }

    /// The owner of every slot, one per slot.
    pub fn owners(&self) -> Vec<u32> {
        let mut table = Vec::with_capacity(SLOTS as usize);
        for (i, &[first, owner]) in self.owners.iter().enumerate() {
            let end = self.owners.get(i + 1).map_or(SLOTS, |next| next[0]);
            table.extend((first..end).map(|_| owner));
        }
        table
    }

    /// Replaces the owners with `table` (one owner per slot).
    pub fn set_owners(&mut self, table: &[u32]) {
        self.owners.clear();
        for (slot, &owner) in table.iter().enumerate() {
            if self.owners.last().map(|run| run[1]) != Some(owner) {
                self.owners.push([slot as u32, owner]);
            }
        }
    }

    /// The next generation of this map, with `slot` owned by `shard`. Only
    /// safe for a slot that holds no data until moves exist (docs/placement.md).
    pub fn with_owner(&self, slot: u32, shard: u32) -> ShardMap {
        let mut next = self.clone();
        next.generation += 1;
        let mut table = next.owners();
        if let Some(owner) = table.get_mut(slot as usize) {
            *owner = shard;
        }
        next.set_owners(&table);
        next
    }

    /// The next generation, with `slots` announced as moving to `to` (their
    /// owner keeps serving them: section 5, step 1).
    pub fn announce(&self, slots: &[u32], to: u32) -> ShardMap {
        let mut next = self.clone();
        next.generation += 1;
        for &slot in slots {
            next.moving.insert(slot, Moving { to });
        }
        next
    }

    /// The next generation, with the moving `slots` owned by the shard they
    /// move to: the commit point of their move (step 4).
    pub fn hand_off(&self, slots: &[u32]) -> ShardMap {
        let mut next = self.clone();
        next.generation += 1;
        let mut table = next.owners();
        for slot in slots {
            if let (Some(m), Some(owner)) =
                (next.moving.remove(slot), table.get_mut(*slot as usize))
            {
                *owner = m.to;
            }
        }
        next.set_owners(&table);
        next
    }

    /// The next generation, with the moves of `slots` abandoned: their owner
    /// keeps them (step 6).
    pub fn roll_back(&self, slots: &[u32]) -> ShardMap {
        let mut next = self.clone();
        next.generation += 1;
        for slot in slots {
            next.moving.remove(slot);
        }
        next
    }

    /// Checks what a reader relies on: runs start at 0, increase, cover
    /// every slot, and name known shards; moves go between known shards.
    pub fn validate(&self) -> Result<(), InvalidMap> {
        let bad = |m: String| Err(InvalidMap(m));
        if self.owners.first().map(|run| run[0]) != Some(0) {
            return bad("the first run of owners does not start at slot 0".into());
        }
        for pair in self.owners.windows(2) {
            if pair[1][0] <= pair[0][0] || pair[1][0] >= SLOTS {
                return bad(format!("owner runs out of order at slot {}", pair[1][0]));
            }
        }
        if let Some([slot, owner]) = self
            .owners
            .iter()
            .find(|[_, o]| !self.shards.contains_key(o))
        {
            return bad(format!("slot {slot} is owned by unknown shard {owner}"));
        }
        let owners = self.owners();
        for (slot, m) in &self.moving {
            if *slot >= SLOTS || !self.shards.contains_key(&m.to) {
                return bad(format!("slot {slot} moves to unknown shard {}", m.to));
            }
            if owners.get(*slot as usize) == Some(&m.to) {
                return bad(format!("slot {slot} moves to its own owner {}", m.to));
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> Vec<u8> {
        // A map of plain numbers and strings always serialises.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, InvalidMap> {
        let map: ShardMap =
            serde_json::from_slice(bytes).map_err(|e| InvalidMap(format!("not a map: {e}")))?;
        map.validate()?;
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initial_map_is_the_static_layout() {
        let map = ShardMap::initial(3, &["http://a".into()]);
        assert_eq!(map.generation, 1);
        assert_eq!(map.owners(), balance::contiguous(3));
        assert_eq!(map.shards[&0].address, "http://a");
        assert_eq!(map.shards[&2].address, "");
        let layout = crate::ShardLayout::fixed(3);
        for slot in 0..SLOTS {
            assert_eq!(map.owners()[slot as usize], layout.owner_of_slot(slot));
        }
    }

    #[test]
    fn owners_round_trip_through_json_as_runs() {
        let mut map = ShardMap::initial(2, &[]);
        let mut table = map.owners();
        table[7] = 1;
        table[4095] = 0;
        map.set_owners(&table);
        map.moving.insert(9, Moving { to: 1 });
        let back = ShardMap::from_json(&map.to_json()).expect("valid");
        assert_eq!(back, map);
        assert_eq!(back.owners(), table);
    }

    #[test]
    fn invalid_maps_are_refused_with_the_reason() {
        let mut map = ShardMap::initial(2, &[]);
        map.shards.remove(&1);
        let err = ShardMap::from_json(&map.to_json()).expect_err("unknown shard");
        assert!(err.0.contains("unknown shard 1"), "{err}");
        assert!(ShardMap::from_json(b"{}").is_err());
        let text = String::from_utf8(ShardMap::initial(2, &[]).to_json()).unwrap_or_default();
        let unordered = text.replacen("2048", "5000", 1);
        assert!(ShardMap::from_json(unordered.as_bytes()).is_err());
    }
}
