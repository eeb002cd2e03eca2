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

use crate::map::{InvalidMap, ShardMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const MAP: &str = "map.json";
const LOCK: &str = "lock";

/// Why the stored map could not be read or changed.
#[derive(Debug)]
pub enum StoreError {
    Io(PathBuf, io::Error),
    Invalid(PathBuf, InvalidMap),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Io(path, e) => write!(f, "{}: {e}", path.display()),
            StoreError::Invalid(path, e) => write!(f, "{}: {e}", path.display()),
        }
    }
}

impl std::error::Error for StoreError {}

/// The outcome of [`FileMapStore::compare_and_set`].
#[derive(Debug, PartialEq, Eq)]
pub enum Swap {
    /// The map is now the new one.
    Done,
    /// Another change came first: the map as it is now.
    Stale(Option<ShardMap>),
}

pub struct FileMapStore {
    dir: PathBuf,
}

impl FileMapStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileMapStore { dir: dir.into() }
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
        next.validate()
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
