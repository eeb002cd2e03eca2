//! A balanced slot table for a set of shards that moves as few slots as
//! possible from the current one (docs/placement.md, section 3).
//!
//! Why not recompute the contiguous ranges: going from `n` to `n+1` shards
//! that way moves about half of all slots, while only `SLOTS/(n+1)` need to.
//! Here a slot moves only if its shard is removed or holds more than its
//! share, so every plan moves exactly the slots it must.

use crate::SLOTS;
use std::collections::BTreeMap;

/// One slot changing owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub slot: u32,
    pub from: u32,
    pub to: u32,
}

/// The owner of each slot in the static map of `shards` shards: shard `i`
/// owns `[i*SLOTS/n, (i+1)*SLOTS/n)`. A live map starts from this table, so
/// a deployment that ran with the static map keeps every bucket in place.
pub fn contiguous(shards: u32) -> Vec<u32> {
    (0..SLOTS)
        .map(|slot| crate::static_owner(slot, shards))
        .collect()
}

/// The table that gives each of `shards` `SLOTS/m` slots (some one more),
/// changing as few owners of `current` as possible. `current` holds one
/// owner per slot; `shards` the ids wanted (duplicates ignored). Returns
/// `current` unchanged when `shards` is empty.
pub fn balance(current: &[u32], shards: &[u32]) -> Vec<u32> {
    let mut wanted: BTreeMap<u32, Vec<u32>> = shards.iter().map(|&s| (s, Vec::new())).collect();
    if wanted.is_empty() {
        return current.to_vec();
    }
    let mut free = Vec::new();
    for (slot, owner) in current.iter().enumerate() {
        match wanted.get_mut(owner) {
            Some(held) => held.push(slot as u32),
            None => free.push(slot as u32),
        }
    }
    let m = wanted.len() as u32;
    let (base, extra) = (SLOTS / m, SLOTS % m);
    // The `extra` shards that keep one slot more are those holding the
    // most already (then the lowest ids): an already balanced table moves
    // nothing.
    let mut by_load: Vec<(u32, usize)> = wanted.iter().map(|(&s, h)| (s, h.len())).collect();
    by_load.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let target: BTreeMap<u32, usize> = by_load
        .iter()
        .enumerate()
        .map(|(rank, &(s, _))| (s, (base + u32::from((rank as u32) < extra)) as usize))
        .collect();
    for (shard, held) in wanted.iter_mut() {
        // Give up the highest slots first: `held` is in slot order.
        while held.len() > target[shard] {
            if let Some(slot) = held.pop() {
                free.push(slot);
            }
        }
    }
    free.sort_unstable();
    let mut table = current.to_vec();
    let mut free = free.into_iter();
    for (shard, held) in &wanted {
        for _ in held.len()..target[shard] {
            if let Some(slot) = free.next() {
                table[slot as usize] = *shard;
            }
        }
    }
    table
}

/// The moves that turn `from` into `to`, in slot order.
pub fn moves(from: &[u32], to: &[u32]) -> Vec<Move> {
    from.iter()
        .zip(to)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(slot, (&from, &to))| Move {
            slot: slot as u32,
            from,
            to,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(table: &[u32]) -> BTreeMap<u32, usize> {
        let mut c = BTreeMap::new();
        for &o in table {
            *c.entry(o).or_insert(0) += 1;
        }
        c
    }

    fn assert_balanced(table: &[u32], shards: &[u32]) {
        let c = counts(table);
        let ids: Vec<u32> = c.keys().copied().collect();
        let mut want = shards.to_vec();
        want.sort_unstable();
        want.dedup();
        assert_eq!(ids, want, "every slot owned by a wanted shard");
        let (min, max) = (c.values().min(), c.values().max());
        assert!(max.unwrap_or(&0) - min.unwrap_or(&0) <= 1, "{c:?}");
    }

    #[test]
    fn a_balanced_table_moves_nothing() {
        for n in [1u32, 2, 3, 5, 7, 64] {
            let table = contiguous(n);
            let shards: Vec<u32> = (0..n).collect();
            assert!(moves(&table, &balance(&table, &shards)).is_empty(), "{n}");
        }
    }

    #[test]
    fn growing_by_one_moves_only_the_new_shards_share() {
        for n in [1u32, 2, 3, 4, 8, 63] {
            let table = contiguous(n);
            let shards: Vec<u32> = (0..=n).collect();
            let next = balance(&table, &shards);
            assert_balanced(&next, &shards);
            let moved = moves(&table, &next);
            // Exactly what the new shard must receive, all to it.
            assert_eq!(moved.len() as u32, SLOTS / (n + 1), "{n}");
            assert!(moved.iter().all(|m| m.to == n));
        }
    }

    #[test]
    fn shrinking_moves_only_the_removed_shards_slots() {
        let table = contiguous(5);
        let next = balance(&table, &[0, 1, 2]);
        assert_balanced(&next, &[0, 1, 2]);
        let moved = moves(&table, &next);
        let removed = table.iter().filter(|&&o| o >= 3).count();
        assert_eq!(moved.len(), removed);
        assert!(moved.iter().all(|m| m.from >= 3 && m.to < 3));
    }

    #[test]
    fn two_five_three_stays_balanced_and_minimal() {
        let mut table = contiguous(2);
        for shards in [
            vec![0, 1, 2, 3, 4],
            vec![0, 1, 2],
            vec![0, 1, 2, 3, 4, 5, 6],
        ] {
            let next = balance(&table, &shards);
            assert_balanced(&next, &shards);
            // No slot moves between two shards that both stay and are both
            // within their share afterwards unless one was over it.
            let before = counts(&table);
            for m in moves(&table, &next) {
                let gone = !shards.contains(&m.from);
                let after = counts(&next).get(&m.from).copied().unwrap_or(0);
                let over = before.get(&m.from).copied().unwrap_or(0) > after;
                assert!(gone || over, "{m:?}");
            }
            table = next;
        }
    }

    #[test]
    fn no_shards_changes_nothing() {
        let table = contiguous(3);
        assert_eq!(balance(&table, &[]), table);
    }
}
