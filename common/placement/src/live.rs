//! The map a running process serves and routes by, kept up to date with
//! the stored one (docs/placement.md, section 3, "Watching the map").
//!
//! Readers take the current [`Placement`] as one `Arc`: an operation checks
//! or routes against a single generation even if the map changes meanwhile.
//! A change is seen by polling ([`LiveMap::poll`]: the source's cheap
//! check, a `stat` of `map.json` or one row of the keyspace) or at once by
//! [`LiveMap::refresh`] (a read), which a gateway calls when a shard answers
//! `WrongShard` and a shard when a caller is ahead of it.

use crate::file_store::FileMapStore;
use crate::map::ShardMap;
use crate::store::{MapSource, StoreError};
use crate::{balance, PlacementKey, SLOTS};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

/// One generation of the map, as a table of owners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    generation: u64,
    /// The owner of each slot (a 4096-entry table: a lookup per request).
    owners: Vec<u32>,
    /// Shards the map names.
    shards: u32,
    /// Slots in the middle of a move, with the shard they move to (their
    /// owner above is the shard they move from, which serves them until the
    /// handoff).
    moving: BTreeMap<u32, u32>,
    /// Shards owning at least one slot, in id order: those a request that
    /// spans every shard must ask.
    holders: Vec<u32>,
    /// Each shard's address in the map, by id (empty: none given).
    addresses: Vec<String>,
}

impl Placement {
    /// The static map of `shards` shards at generation 1 (the all-in-one
    /// binary on CQL, and a gateway until a shard reports the map).
    pub fn fixed(shards: u32) -> Self {
        let shards = shards.max(1);
        Placement {
            generation: 1,
            owners: balance::contiguous(shards),
            shards,
            moving: BTreeMap::new(),
            holders: (0..shards).collect(),
            addresses: Vec::new(),
        }
    }

    pub fn of(map: &ShardMap) -> Self {
        let owners = map.owners();
        let mut holders: Vec<u32> = owners.clone();
        holders.sort_unstable();
        holders.dedup();
        let shards = map.shards.keys().next_back().map_or(1, |last| last + 1);
        let addresses = (0..shards)
            .map(|id| {
                map.shards
                    .get(&id)
                    .map(|e| e.address.clone())
                    .unwrap_or_default()
            })
            .collect();
        Placement {
            generation: map.generation,
            owners,
            shards,
            addresses,
            moving: map.moving.iter().map(|(&s, m)| (s, m.to)).collect(),
            holders,
        }
    }

    /// The shard `slot` is moving to, if it is in the middle of a move.
    #[inline]
    pub fn moving_to(&self, slot: u32) -> Option<u32> {
        self.moving.get(&slot).copied()
    }

    /// Where `shard` is reached, if the map says.
    pub fn address(&self, shard: u32) -> Option<&str> {
        self.addresses
            .get(shard as usize)
            .map(String::as_str)
            .filter(|a| !a.is_empty())
    }

    /// Whether `shard` owns at least one slot.
    pub fn holds_slots(&self, shard: u32) -> bool {
        self.holders.binary_search(&shard).is_ok()
    }

    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// One more than the greatest shard id the map names.
    pub fn shards(&self) -> u32 {
        self.shards
    }

    #[inline]
    pub fn owner(&self, key: PlacementKey<'_>) -> u32 {
        self.owner_of_slot(key.slot())
    }

    #[inline]
    pub fn owner_of_slot(&self, slot: u32) -> u32 {
        self.owners.get(slot as usize).copied().unwrap_or(0)
    }

    /// The slots `shard` owns, as `[first, end)` ranges in slot order.
    pub fn ranges_of(&self, shard: u32) -> Vec<[u32; 2]> {
        let mut ranges: Vec<[u32; 2]> = Vec::new();
        for slot in (0..SLOTS).filter(|&s| self.owner_of_slot(s) == shard) {
            match ranges.last_mut() {
                Some(last) if last[1] == slot => last[1] = slot + 1,
                _ => ranges.push([slot, slot + 1]),
            }
        }
        ranges
    }

    /// How many slots `shard` owns.
    pub fn count_of(&self, shard: u32) -> usize {
        self.owners.iter().filter(|&&o| o == shard).count()
    }
}

type Observer = Box<dyn Fn(&Placement) + Send + Sync>;

/// The live map of one process.
pub struct LiveMap {
    current: RwLock<Arc<Placement>>,
    /// Where the map is stored; `None`: the map never changes.
    source: Option<Arc<dyn MapSource>>,
    /// Held while a newer map is swapped in and observers are told, so
    /// observers see the generations in order.
    swapping: Mutex<()>,
    observers: Mutex<Vec<Observer>>,
    /// When the last successful read of the stored map was sent (a shard's
    /// lease, docs/placement.md section 4); `None` before the first.
    read_at: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for LiveMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveMap")
            .field("generation", &self.current().generation)
            .field("stored", &self.source.is_some())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LiveMap {
    /// A map that never changes.
    pub fn fixed(placement: Placement) -> Arc<Self> {
        Self::build(placement, None)
    }

    fn build(placement: Placement, source: Option<Arc<dyn MapSource>>) -> Arc<Self> {
        Arc::new(LiveMap {
            current: RwLock::new(Arc::new(placement)),
            source,
            swapping: Mutex::new(()),
            observers: Mutex::new(Vec::new()),
            // `placement` was read from the source just before (start-up).
            read_at: Mutex::new(Some(Instant::now())),
        })
    }

    /// Whether the stored map was read successfully less than `lease` ago
    /// (counted from when that read was sent, on the monotonic clock, which
    /// goes on while the process is stopped). A map that never changes is
    /// always current.
    pub fn read_within(&self, lease: Duration) -> bool {
        self.source.is_none() || lock(&self.read_at).is_some_and(|at| at.elapsed() < lease)
    }

    /// [`LiveMap::offer`] of what a read sent at `sent` found, then the
    /// lease renewed: never before the map it read is in force.
    fn offer_read(&self, map: Option<ShardMap>, sent: Instant) -> bool {
        let newer = self.offer(map);
        let mut at = lock(&self.read_at);
        if at.is_none_or(|at| at < sent) {
            *at = Some(sent);
        }
        newer
    }

    /// The map stored in `dir`, starting from `map` (read from it at start-up).
    pub fn stored(dir: &std::path::Path, map: &ShardMap) -> Arc<Self> {
        Self::from_source(Arc::new(FileMapStore::new(dir)), Placement::of(map))
    }

    /// The map read from `source`, starting from `placement`.
    pub fn from_source(source: Arc<dyn MapSource>, placement: Placement) -> Arc<Self> {
        Self::build(placement, Some(source))
    }

    /// The generation in force now.
    pub fn current(&self) -> Arc<Placement> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The map as stored now (`None`: none, or a map that never changes).
    pub async fn load_stored(&self) -> Result<Option<ShardMap>, StoreError> {
        match &self.source {
            Some(source) => source.load().await,
            None => Ok(None),
        }
    }

    /// Calls `f` with the current map now and after every change.
    pub fn on_change(&self, f: impl Fn(&Placement) + Send + Sync + 'static) {
        f(&self.current());
        lock(&self.observers).push(Box::new(f));
    }

    /// Reads the stored map if the source says it changed, and swaps it in
    /// if its generation is newer. Returns whether it did.
    pub async fn poll(&self) -> Result<bool, StoreError> {
        let Some(source) = &self.source else {
            return Ok(false);
        };
        let sent = Instant::now();
        let map = source.poll(self.current().generation()).await?;
        Ok(self.offer_read(map, sent))
    }

    /// Reads the stored map now, and swaps it in if its generation is
    /// newer. Returns whether it did.
    pub async fn refresh(&self) -> Result<bool, StoreError> {
        let Some(source) = &self.source else {
            return Ok(false);
        };
        let sent = Instant::now();
        let map = source.load().await?;
        Ok(self.offer_read(map, sent))
    }

    /// Swaps `map` in if it is newer than the map in force: of two
    /// concurrent reads, the older map cannot replace the newer one.
    pub fn offer(&self, map: Option<ShardMap>) -> bool {
        let Some(map) = map else {
            return false;
        };
        let _swapping = lock(&self.swapping);
        if map.generation <= self.current().generation {
            return false;
        }
        let next = Arc::new(Placement::of(&map));
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&next);
        for f in lock(&self.observers).iter() {
            f(&next);
        }
        true
    }

    /// Polls the store every `every` on a thread of its own (observers may
    /// do blocking store work), for as long as the map is in use, driving
    /// the source's calls on the runtime it is called from. A stored map
    /// that cannot be read is logged by `on_error` and the map in force
    /// kept: serving by the last good map is safe, as shards check every
    /// operation against their own.
    pub fn watch(
        self: &Arc<Self>,
        every: Duration,
        on_error: impl Fn(&StoreError) + Send + 'static,
    ) -> Result<(), String> {
        let Some(source) = self.source.clone() else {
            return Ok(());
        };
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "the placement watcher needs a Tokio runtime".to_string())?;
        let weak: Weak<Self> = Arc::downgrade(self);
        let every = every.max(Duration::from_millis(1));
        std::thread::Builder::new()
            .name("placement-watch".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                let Some(live) = weak.upgrade() else {
                    return;
                };
                let known = live.current().generation();
                // Only the read runs on the runtime; observers run here.
                let sent = Instant::now();
                match runtime.block_on(source.poll(known)) {
                    Ok(map) => {
                        live.offer_read(map, sent);
                    }
                    Err(e) => on_error(&e),
                }
            })
            .map(drop)
            .map_err(|e| format!("cannot start the placement watcher: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file_store::Swap;

    #[tokio::test]
    async fn the_lease_lasts_from_the_last_read_that_succeeded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = crate::file_store::open_or_init(dir.path(), 2).expect("init");
        let live = LiveMap::stored(dir.path(), &first);
        let lease = Duration::from_millis(200);
        assert!(live.read_within(lease), "read at start-up");
        std::thread::sleep(lease);
        assert!(!live.read_within(lease));
        // A map that cannot be read renews nothing.
        std::fs::write(dir.path().join("map.json"), b"{not json").expect("spoil");
        assert!(live.refresh().await.is_err());
        assert!(!live.read_within(lease));
        // A read renews it, and the map it found is in force by then.
        let next = first.with_owner(0, 1);
        std::fs::write(dir.path().join("map.json"), next.to_json()).expect("store");
        assert!(live.refresh().await.expect("read"));
        assert!(live.read_within(lease));
        assert_eq!(live.current().generation(), next.generation);
        assert!(LiveMap::fixed(Placement::fixed(2)).read_within(Duration::ZERO));
    }

    #[tokio::test]
    async fn a_stored_change_is_seen_by_refresh_and_never_goes_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = crate::file_store::open_or_init(dir.path(), 2).expect("init");
        let live = LiveMap::stored(dir.path(), &first);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        live.on_change(move |p| lock(&log).push(p.generation()));
        assert!(!live.refresh().await.expect("unchanged"));
        assert!(!live.poll().await.expect("unchanged"));
        let next = first.with_owner(0, 1);
        let store = FileMapStore::new(dir.path());
        assert_eq!(
            store.compare_and_set(Some(1), &next).expect("cas"),
            Swap::Done
        );
        assert!(live.refresh().await.expect("changed"));
        let now = live.current();
        assert_eq!((now.generation(), now.owner_of_slot(0)), (2, 1));
        assert_eq!(now.count_of(1), 2049);
        assert_eq!(now.ranges_of(1), vec![[0, 1], [2048, 4096]]);
        assert_eq!(*lock(&seen), vec![1, 2]);
        // A change of the same length right after is still seen by a poll,
        // however coarse the file's modification time.
        let same_length = next.with_owner(0, 1);
        assert_eq!(
            store.compare_and_set(Some(2), &same_length).expect("cas"),
            Swap::Done
        );
        assert!(live.poll().await.expect("changed again"));
        assert_eq!(live.current().generation(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_watcher_swaps_the_map_in() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = crate::file_store::open_or_init(dir.path(), 1).expect("init");
        let live = LiveMap::stored(dir.path(), &first);
        live.watch(Duration::from_millis(5), |_| {}).expect("watch");
        let mut next = first.clone();
        next.generation = 7;
        let store = FileMapStore::new(dir.path());
        assert_eq!(
            store.compare_and_set(Some(1), &next).expect("cas"),
            Swap::Done
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while live.current().generation() != 7 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(live.current().generation(), 7);
    }

    #[test]
    fn a_moving_slot_is_served_by_the_shard_it_moves_from() {
        let map = ShardMap::initial(2, &[]).announce(&[3], 1);
        let p = Placement::of(&map);
        assert_eq!((p.owner_of_slot(3), p.moving_to(3)), (0, Some(1)));
        assert_eq!(p.moving_to(4), None);
        assert!(p.holds_slots(0) && p.holds_slots(1) && !p.holds_slots(2));
        let done = Placement::of(&map.hand_off(&[3]));
        assert_eq!((done.owner_of_slot(3), done.moving_to(3)), (1, None));
    }

    #[tokio::test]
    async fn a_fixed_map_is_the_static_layout() {
        let p = Placement::fixed(3);
        let layout = crate::ShardLayout::fixed(3);
        for slot in 0..SLOTS {
            assert_eq!(p.owner_of_slot(slot), layout.owner_of_slot(slot));
        }
        assert_eq!((p.generation(), p.shards()), (1, 3));
        assert!(!LiveMap::fixed(p).refresh().await.expect("no store"));
    }
}
