//! The shard map of one machine, in a directory every process of the
//! deployment is given (`placement_dir`): the all-in-one binary and each
//! `kinto-shard` process read it, and a change is a compare-and-set on the
//! generation under an exclusive file lock.
//!
//! Why a file and a lock rather than a server: the embedded deployment
//! must run with nothing else installed, and the OS's advisory lock is
//! released when its holder dies, so a killed process never leaves the map
//! locked. A write goes to a temporary file, is synced, then renamed over
//! `map.json`: a crash leaves the old map or the new one, never a part.

use crate::map::ShardMap;
use crate::store::{MapSource, MapStore, StoreFuture};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

const MAP: &str = "map.json";
const LOCK: &str = "lock";

pub use crate::store::{StoreError, Swap};

pub struct FileMapStore {
    dir: PathBuf,
    /// `map.json`'s modification time and length when last polled.
    seen: Mutex<Option<(SystemTime, u64)>>,
}

/// How long after its last change `map.json` is read on every poll.
const SETTLE: Duration = Duration::from_secs(1);

impl FileMapStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileMapStore {
            dir: dir.into(),
            seen: Mutex::new(None),
        }
    }

    fn stamp(&self) -> Option<(SystemTime, u64)> {
        let meta = fs::metadata(self.map_path()).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }

    /// The stored map if `map.json` changed since the last poll and holds a
    /// generation above `known`. A file modified in the last [`SETTLE`] is
    /// read again whatever its stamp: a modification time is coarse (a clock
    /// tick), so two changes of the same length within one tick would look
    /// alike. The stamp is taken before the read: if the file changes in
    /// between, the next poll sees another stamp and reads it again.
    pub fn poll_changed(&self, known: u64) -> Result<Option<ShardMap>, StoreError> {
        let stamp = self.stamp();
        let settled =
            stamp.is_some_and(|(modified, _)| modified.elapsed().is_ok_and(|age| age > SETTLE));
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if settled && stamp == *seen {
            return Ok(None);
        }
        let map = self.load()?;
        *seen = stamp;
        Ok(map.filter(|m| m.generation > known))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The map's file, which a watcher stats to see a change.
    pub fn map_path(&self) -> PathBuf {
        self.path(MAP)
    }

    /// The stored map, or `None` before the first one is stored.
    pub fn load(&self) -> Result<Option<ShardMap>, StoreError> {
        let path = self.path(MAP);
        match fs::read(&path) {
            Ok(bytes) => ShardMap::from_json(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Invalid(path, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io(path, e)),
        }
    }

    /// Stores `next` if the stored generation is `expected` (`None`: no map
    /// stored yet). `next` must have a greater generation.
    pub fn compare_and_set(
        &self,
        expected: Option<u64>,
        next: &ShardMap,
    ) -> Result<Swap, StoreError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |e| StoreError::Io(path, e)
        };
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let lock_path = self.path(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        // Blocks while another process swaps; a swap is a few small writes.
        lock.lock().map_err(io_err(&lock_path))?;
        let current = self.load()?;
        if current.as_ref().map(|m| m.generation) != expected
            || expected.is_some_and(|g| next.generation <= g)
        {
            return Ok(Swap::Stale(current));
        }
        crate::store::check_successor(expected, next)
            .map_err(|e| StoreError::Invalid(self.path(MAP), e))?;
        let tmp = self.path("map.json.tmp");
        let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
        file.write_all(&next.to_json()).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        let path = self.path(MAP);
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        // The rename is durable once the directory is.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&self.dir))?;
        Ok(Swap::Done)
        // `lock` is released when dropped.
    }
}

impl MapSource for FileMapStore {
    fn load(&self) -> StoreFuture<'_, Option<ShardMap>> {
        Box::pin(std::future::ready(FileMapStore::load(self)))
    }

    fn poll(&self, known: u64) -> StoreFuture<'_, Option<ShardMap>> {
        Box::pin(std::future::ready(self.poll_changed(known)))
    }
}

impl MapStore for FileMapStore {
    fn compare_and_set<'a>(
        &'a self,
        expected: Option<u64>,
        next: &'a ShardMap,
    ) -> StoreFuture<'a, Swap> {
        Box::pin(std::future::ready(FileMapStore::compare_and_set(
            self, expected, next,
        )))
    }
}

/// The map stored in `dir`, or the static map of `shards` shards, stored
/// now when there is none. The caller compares the stored map's shard count
/// with its own and names its own setting when they differ: buckets are
/// placed by the stored map, so serving with another count would hide them.
pub fn open_or_init(dir: &Path, shards: u32) -> Result<ShardMap, String> {
    let store = FileMapStore::new(dir);
    if let Some(map) = store.load().map_err(|e| e.to_string())? {
        return Ok(map);
    }
    let initial = ShardMap::initial(shards, &[]);
    match store
        .compare_and_set(None, &initial)
        .map_err(|e| e.to_string())?
    {
        Swap::Done => Ok(initial),
        // Another process of the deployment stored one first.
        Swap::Stale(Some(map)) => Ok(map),
        Swap::Stale(None) => Err(format!("{}: the map vanished", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_and_set_orders_changes_by_generation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileMapStore::new(dir.path().join("placement"));
        assert_eq!(store.load().expect("empty"), None);
        let first = ShardMap::initial(2, &[]);
        assert_eq!(
            store.compare_and_set(None, &first).expect("first"),
            Swap::Done
        );
        // A second "first" loses and sees the stored map.
        assert_eq!(
            store.compare_and_set(None, &first).expect("again"),
            Swap::Stale(Some(first.clone()))
        );
        let mut next = first.clone();
        next.generation = 2;
        next.moving.insert(3, crate::map::Moving { to: 1 });
        assert_eq!(
            store.compare_and_set(Some(1), &next).expect("next"),
            Swap::Done
        );
        // A writer that read generation 1 cannot overwrite generation 2.
        assert!(matches!(
            store.compare_and_set(Some(1), &first).expect("stale"),
            Swap::Stale(Some(m)) if m.generation == 2
        ));
        // Nor can a change that does not raise the generation.
        assert!(matches!(
            store
                .compare_and_set(Some(2), &next)
                .expect("same generation"),
            Swap::Stale(_)
        ));
        assert_eq!(store.load().expect("load"), Some(next));
    }

    #[test]
    fn concurrent_swaps_from_one_generation_let_exactly_one_win() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        let store = FileMapStore::new(&path);
        let first = ShardMap::initial(4, &[]);
        assert_eq!(
            store.compare_and_set(None, &first).expect("first"),
            Swap::Done
        );
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let (path, first) = (path.clone(), first.clone());
                    s.spawn(move || {
                        let mut next = first;
                        next.generation = 2;
                        next.shards.get_mut(&0).expect("shard 0").address = format!("w{i}");
                        FileMapStore::new(path).compare_and_set(Some(1), &next)
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().ok())
                .filter(|r| matches!(r, Ok(Swap::Done)))
                .count()
        });
        assert_eq!(wins, 1);
        assert_eq!(store.load().expect("load").map(|m| m.generation), Some(2));
    }

    #[test]
    fn the_first_map_is_stored_and_then_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let map = open_or_init(dir.path(), 3).expect("first start");
        assert_eq!(map, ShardMap::initial(3, &[]));
        assert_eq!(open_or_init(dir.path(), 3).expect("same count"), map);
        // The stored map wins over the count asked for.
        assert_eq!(open_or_init(dir.path(), 4).expect("stored"), map);
    }

    #[test]
    fn a_corrupt_map_is_an_error_that_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(MAP), b"{").expect("write");
        let err = FileMapStore::new(dir.path()).load().expect_err("corrupt");
        assert!(err.to_string().contains("map.json"), "{err}");
    }
}
