//! The embedded backend: one fjall database per shard node.
//!
//! Why fjall: it is pure Rust (no C toolchain, no server), an LSM tree like
//! the production wide-column store (so the data model and access paths are
//! the same shape), and its write batches are atomic across keyspaces, which
//! is what one Kinto write needs (object + `_since` index + list timestamp).
//!
//! Keyspaces, all keys `\0`-separated (ids and principals never hold `\0`):
//! - `objects`:    `parent \0 resource \0 id` → JSON of [`StoredObject`]
//! - `newest`:     `parent \0 resource \0 be64(!last_modified) !id 0xFF` →
//!   the object as Kinto prints it, and its ACL ([`index_row`]): a covering
//!   index, so a page in `last_modified` order reads no object by id and
//!   copies each row. Timestamp and id are inverted so that a forward
//!   walk reads the newest first, Kinto's default order ([`modified_key`]).
//! - `timestamps`: `parent \0 resource` → be64
//! - `members`:    `principal \0 group_uri` → empty
//! - `counts`, `grantees`, `meta`: the list counters and the
//!   principal index ([`indexes`])
//!
//! Durability: a commit goes to the journal's in-process buffer;
//! [`Storage::persist`], which the shard calls before it answers, hands the
//! buffer to the OS with one `write(2)`, so a killed process loses nothing
//! it acknowledged. A background task fsyncs the journal every
//! `fsync_interval`, the same trade-off as Cassandra's periodic commit log;
//! with 0, `persist` fsyncs (one fsync per gRPC call, a group commit).
//! A commit is visible to readers a little before it is persisted, but
//! every answer of the shard, reads included, persists first, so no answer
//! reveals a commit that a killed process could lose.

mod index_row;
mod indexes;
#[cfg(test)]
mod move_tests;
mod scan;
mod slot_copy;
mod slots;

use super::grants;
use super::{Chunk, Grant, Range, Storage, StorageError, StorageResult, StoredObject, Write};
use async_trait::async_trait;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

pub struct EmbeddedStorage {
    db: Database,
    objects: Keyspace,
    newest: Keyspace,
    timestamps: Keyspace,
    members: Keyspace,
    counts: Keyspace,
    grantees: Keyspace,
    meta: Keyspace,
    /// The staged copies of slots moving here (`slot_copy`).
    staged: Keyspace,
    /// Which slots commits may write (`slots`).
    fence: slots::Fence,
    /// Held from a commit's counter reads to its batch's commit: counters
    /// are read, adjusted and written back, which concurrent commits (of two
    /// buckets' lists, or of the shared top-level lists) would race.
    commit_lock: std::sync::Mutex<()>,
    fsync_on_persist: bool,
    flushes: Flushes,
}

/// Counts that let [`Storage::persist`] skip the journal's lock when every
/// commit is already flushed: reads persist too, and the periodic fsync
/// holds that lock for milliseconds.
#[derive(Default)]
struct Flushes {
    /// Commits that reached `WriteBatch::commit` (before it writes the journal).
    begun: AtomicU64,
    /// Of those, the ones it returned from (their journal write done).
    written: AtomicU64,
    /// A `written` count read before a flush that has completed: the first
    /// that many written commits are in the OS.
    flushed: AtomicU64,
}

/// Steps an id-ordered scan may take beyond four times the rows asked
/// (tombstones it skips).
const SCAN_SLACK: usize = 32;

fn unavailable(e: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

fn list_prefix(parent: &str, resource: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(parent.len() + resource.len() + 2);
    k.extend_from_slice(parent.as_bytes());
    k.push(0);
    k.extend_from_slice(resource.as_bytes());
    k.push(0);
    k
}

fn object_key(parent: &str, resource: &str, id: &str) -> Vec<u8> {
    let mut k = list_prefix(parent, resource);
    k.extend_from_slice(id.as_bytes());
    k
}

/// The `newest` key of object `id` at `ts`: `be64(!ts)`, then each byte of
/// the id inverted and `0xFF`, so keys sort by timestamp, then id, both
/// descending. Why inverted: the newest first is the order of nearly every
/// page (Kinto's default, a sync's), and the store walks forward in a few
/// instructions per row where a backward step searches its memtable again
/// (docs/benchmarks.md). Ids hold no `\0`, so an inverted byte is never
/// `0xFF`, and a shorter id sorts after the longer ones it begins.
fn modified_key(parent: &str, resource: &str, ts: u64, id: &str) -> Vec<u8> {
    let mut k = list_prefix(parent, resource);
    push_modified(&mut k, ts, id);
    k
}

/// The `newest` key of `object`, stored at `key` in `objects` (whose list
/// prefix it shares).
fn modified_key_of(key: &[u8], object: &StoredObject) -> Vec<u8> {
    let list = key.get(..key.len().saturating_sub(object.id.len()));
    let mut k = list.unwrap_or_default().to_vec();
    push_modified(&mut k, object.last_modified, &object.id);
    k
}

/// Appends the part of a `newest` key after its list prefix.
fn push_modified(k: &mut Vec<u8>, ts: u64, id: &str) {
    k.reserve(8 + id.len() + 1);
    k.extend_from_slice(&(!ts).to_be_bytes());
    k.extend(id.bytes().map(|b| !b));
    k.push(0xFF);
}

/// The timestamp of a `newest` key without its list prefix, and its id's
/// bytes still inverted.
fn modified_parts(rest: &[u8]) -> StorageResult<(u64, &[u8])> {
    let corrupt = |why: &str| StorageError::Corrupt(format!("index key: {why}"));
    let (ts, id) = (rest.split_at_checked(8)).ok_or_else(|| corrupt("too short"))?;
    let id = id
        .strip_suffix(&[0xFF])
        .ok_or_else(|| corrupt("no terminator"))?;
    Ok((!decode_u64(ts)?, id))
}

/// The timestamp and id of a `newest` key, without its list prefix.
fn split_modified_key(rest: &[u8]) -> StorageResult<(u64, String)> {
    let (ts, inverted) = modified_parts(rest)?;
    let id = String::from_utf8(inverted.iter().map(|b| !b).collect())
        .map_err(|e| StorageError::Corrupt(e.to_string()))?;
    Ok((ts, id))
}

/// The timestamp of a `newest` key without its list prefix (its id left
/// unread).
fn modified_ts(rest: &[u8]) -> StorageResult<u64> {
    modified_parts(rest).map(|(ts, _)| ts)
}

/// [`split_modified_key`], the id written into `id` (a buffer a walk
/// reuses) instead of a new string.
fn read_modified_key<'b>(rest: &[u8], id: &'b mut Vec<u8>) -> StorageResult<(u64, &'b str)> {
    let (ts, inverted) = modified_parts(rest)?;
    id.clear();
    id.extend(inverted.iter().map(|b| !b));
    let id = std::str::from_utf8(id).map_err(|e| StorageError::Corrupt(e.to_string()))?;
    Ok((ts, id))
}

fn timestamp_key(parent: &str, resource: &str) -> Vec<u8> {
    let mut k = list_prefix(parent, resource);
    k.pop();
    k
}

fn member_prefix(principal: &str) -> Vec<u8> {
    let mut k = principal.as_bytes().to_vec();
    k.push(0);
    k
}

/// Rows of a whole-list scan between two yields to the runtime.
const YIELD_EVERY_ROWS: usize = 256;

/// Below fjall's limit on a key's length (u16::MAX bytes).
const MAX_KEY_BYTES: usize = 65_000;

/// The longest key `w` writes, in bytes (a purge writes none).
fn longest_key(w: &Write) -> usize {
    match w {
        Write::Put {
            parent,
            resource,
            object,
            ..
        } => parent.len() + resource.len() + object.id.len() + 10,
        Write::Timestamp {
            parent, resource, ..
        } => parent.len() + resource.len() + 1,
        Write::PurgeTree { .. } => 0,
        Write::AddMember {
            principal,
            group_uri,
        }
        | Write::RemoveMember {
            principal,
            group_uri,
        } => principal.len() + group_uri.len() + 1,
    }
}

fn decode(bytes: &[u8]) -> StorageResult<StoredObject> {
    serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt(e.to_string()))
}

/// A row of a walk: decoded whole, or lean ([`Range::lean`]) with its
/// printed form.
fn decode_row(bytes: &[u8], range: &Range<'_>) -> StorageResult<(StoredObject, Option<Vec<u8>>)> {
    if range.lean {
        let (object, printed) = super::lean::decode(bytes, range.acl, range.fields)?;
        Ok((object, Some(printed)))
    } else {
        Ok((decode(bytes)?, None))
    }
}

fn decode_u64(bytes: &[u8]) -> StorageResult<u64> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StorageError::Corrupt("timestamp is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(arr))
}

impl EmbeddedStorage {
    /// Opens (or creates) the store in `dir`, with a block cache of
    /// `cache_bytes` and, for a new store, memtables of `memtable_bytes`
    /// per keyspace (fjall keeps the size a keyspace was created with).
    pub fn open(
        dir: &Path,
        fsync_interval: Duration,
        cache_bytes: u64,
        memtable_bytes: u64,
    ) -> StorageResult<std::sync::Arc<Self>> {
        std::fs::create_dir_all(dir).map_err(unavailable)?;
        let db = Database::builder(dir)
            .cache_size(cache_bytes)
            .open()
            .map_err(unavailable)?;
        let ks = |name: &str| {
            db.keyspace(name, || {
                KeyspaceCreateOptions::default().max_memtable_size(memtable_bytes)
            })
            .map_err(unavailable)
        };
        for old in indexes::OLD_KEYSPACES {
            if db.keyspace_exists(old) {
                db.delete_keyspace(ks(old)?).map_err(unavailable)?;
            }
        }
        let store = std::sync::Arc::new(EmbeddedStorage {
            objects: ks("objects")?,
            newest: ks("newest")?,
            timestamps: ks("timestamps")?,
            members: ks("members")?,
            counts: ks("counts")?,
            grantees: ks("grantees")?,
            meta: ks("meta")?,
            staged: ks("staged")?,
            fence: slots::Fence::default(),
            commit_lock: std::sync::Mutex::new(()),
            fsync_on_persist: fsync_interval.is_zero(),
            flushes: Flushes::default(),
            db,
        });
        store.index_if_missing()?;
        if !fsync_interval.is_zero() {
            let weak = std::sync::Arc::downgrade(&store);
            std::thread::Builder::new()
                .name("kinto-fsync".into())
                .spawn(move || loop {
                    std::thread::sleep(fsync_interval);
                    let Some(store) = weak.upgrade() else { break };
                    if let Err(e) = store.db.persist(PersistMode::SyncAll) {
                        tracing::error!(error = %e, "periodic fsync failed");
                    }
                })
                .map_err(unavailable)?;
        }
        Ok(store)
    }

    fn keys_with_prefix(ks: &Keyspace, prefix: &[u8]) -> StorageResult<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for item in ks.prefix(prefix) {
            let key = item.key().map_err(unavailable)?;
            out.push(key.to_vec());
        }
        Ok(out)
    }
}

#[async_trait]
impl Storage for EmbeddedStorage {
    async fn get(
        &self,
        parent: &str,
        resource: &str,
        id: &str,
    ) -> StorageResult<Option<StoredObject>> {
        let key = object_key(parent, resource, id);
        // No write stores such a key (see `commit`), and fjall panics on it.
        if key.len() > MAX_KEY_BYTES {
            return Ok(None);
        }
        match self.objects.get(key).map_err(unavailable)? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    async fn list(
        &self,
        parent: &str,
        resource: &str,
        since: Option<u64>,
        with_tombstones: bool,
    ) -> StorageResult<Vec<StoredObject>> {
        let prefix = list_prefix(parent, resource);
        let mut out = Vec::new();
        if prefix.len() > MAX_KEY_BYTES {
            return Ok(out);
        }
        match since {
            // `_since=0` (a first sync) asks for the whole list: a walk of the
            // index would find every id and then scan the list anyway.
            Some(since) if since > 0 => {
                // Walk the index from the newest down to `since + 1`:
                // O(changes). Keys at or past this one are older.
                let Some(after) = since.checked_add(1) else {
                    return Ok(out);
                };
                let mut end = prefix.clone();
                end.extend_from_slice(&(!after).saturating_add(1).to_be_bytes());
                for item in self.newest.range(prefix.clone()..end) {
                    let (key, value) = item.into_inner().map_err(unavailable)?;
                    let (ts, id) = split_modified_key(&key[prefix.len()..])?;
                    let object = index_row::object(&value, ts, id)?;
                    let shown =
                        !parent.is_empty() || self.fence.shows(parent, resource, &object.id);
                    if shown && (with_tombstones || !object.deleted) {
                        out.push(object);
                    }
                }
            }
            _ => {
                for (i, item) in self.objects.prefix(&prefix).enumerate() {
                    // A whole list is read on a runtime worker: let the
                    // worker's other tasks (the heartbeat, short requests)
                    // run between chunks of a long one.
                    if i > 0 && i % YIELD_EVERY_ROWS == 0 {
                        tokio::task::yield_now().await;
                    }
                    let (_, v) = item.into_inner().map_err(unavailable)?;
                    let obj = decode(&v)?;
                    if (with_tombstones || !obj.deleted)
                        && since.is_none_or(|s| obj.last_modified > s)
                        && (!parent.is_empty() || self.fence.shows(parent, resource, &obj.id))
                    {
                        out.push(obj);
                    }
                }
            }
        }
        Ok(out)
    }

    async fn scan(&self, range: &Range<'_>) -> StorageResult<Chunk> {
        self.scan_list(range).await
    }

    async fn print_page(
        &self,
        range: &Range<'_>,
        page: usize,
        after: &crate::storage::After<'_>,
    ) -> StorageResult<Option<crate::storage::PrintedPage>> {
        self.print_index_page(range, page, after)
    }

    async fn count(&self, parent: &str, resource: &str) -> StorageResult<u64> {
        let key = timestamp_key(parent, resource);
        if key.len() > MAX_KEY_BYTES {
            return Ok(0);
        }
        self.count_of(&key)
    }

    async fn granted(&self, principal: &str) -> StorageResult<Vec<Grant>> {
        if principal.len() > MAX_KEY_BYTES {
            return Ok(Vec::new());
        }
        self.granted_to(principal)
    }

    async fn timestamp(&self, parent: &str, resource: &str) -> StorageResult<Option<u64>> {
        let key = timestamp_key(parent, resource);
        if key.len() > MAX_KEY_BYTES {
            return Ok(None);
        }
        match self.timestamps.get(key).map_err(unavailable)? {
            Some(v) => Ok(Some(decode_u64(&v)?)),
            None => Ok(None),
        }
    }

    async fn groups_of(&self, principals: &[String]) -> StorageResult<Vec<String>> {
        let mut out = Vec::new();
        for p in principals {
            let prefix = member_prefix(p);
            if prefix.len() > MAX_KEY_BYTES {
                continue;
            }
            for key in Self::keys_with_prefix(&self.members, &prefix)? {
                let uri = String::from_utf8(key[prefix.len()..].to_vec())
                    .map_err(|e| StorageError::Corrupt(e.to_string()))?;
                if !out.contains(&uri) {
                    out.push(uri);
                }
            }
        }
        Ok(out)
    }

    async fn commit(&self, writes: Vec<Write>) -> StorageResult<()> {
        // Synchronous inside: the span covers the whole write.
        let _span = tracing::info_span!("storage.commit", writes = writes.len()).entered();
        let _timer = crate::metrics::COMMITS.as_ref().map(|h| h.start_timer());
        // fjall panics on a key of 64 KiB or more; the domain bounds every
        // id and member (kinto_proto::limits), so this is the last guard.
        if let Some(len) = writes.iter().map(longest_key).find(|l| *l > MAX_KEY_BYTES) {
            return Err(StorageError::Corrupt(format!("a key of {len} bytes")));
        }
        // The batch is built without the store's lock: the caller holds the
        // bucket's write lock (see [`Storage::commit`]), so the versions read
        // here cannot change before the batch lands, and commits of other
        // buckets prepare theirs in parallel.
        let slots = self.fence.slots_of(&writes);
        // Persisted by `persist`, once per gRPC call, not here.
        let mut batch = self.db.batch().durability(None);
        let mut deltas = indexes::CountDeltas::default();
        let mut purged = Vec::new();
        for w in writes {
            match w {
                Write::Put {
                    parent,
                    resource,
                    object,
                    previous_last_modified,
                } => {
                    let key = object_key(&parent, resource, &object.id);
                    let old = match previous_last_modified {
                        Some(_) => self.objects.get(&key).map_err(unavailable)?,
                        None => None,
                    };
                    let old = old.map(|v| decode(&v)).transpose()?;
                    deltas.add(
                        &parent,
                        resource,
                        grants::count_delta(old.as_ref(), &object),
                    );
                    self.index_put(&mut batch, &parent, resource, old.as_ref(), &object);
                    if let Some(prev) = previous_last_modified {
                        batch.remove(
                            &self.newest,
                            modified_key(&parent, resource, prev, &object.id),
                        );
                    }
                    let value = serde_json::to_vec(&object)
                        .map_err(|e| StorageError::Corrupt(e.to_string()))?;
                    // The index entry holds the object too: a page walks the
                    // index alone, with no lookup per row (`scan`).
                    batch.insert(
                        &self.newest,
                        modified_key(&parent, resource, object.last_modified, &object.id),
                        index_row::encode(&object)?,
                    );
                    batch.insert(&self.objects, key, value);
                }
                Write::Timestamp {
                    parent,
                    resource,
                    value,
                } => {
                    batch.insert(
                        &self.timestamps,
                        timestamp_key(&parent, resource),
                        value.to_be_bytes(),
                    );
                }
                Write::PurgeTree { parent } => {
                    // `parent\0…` is the parent's own lists, `parent/…` everything below.
                    let own = format!("{parent}\0");
                    let below = format!("{parent}/");
                    for ks in [&self.objects, &self.newest, &self.timestamps] {
                        for prefix in [own.as_bytes(), below.as_bytes()] {
                            for key in Self::keys_with_prefix(ks, prefix)? {
                                batch.remove(ks, key);
                            }
                        }
                    }
                    self.index_purge(&mut batch, [own.as_bytes(), below.as_bytes()])?;
                    purged.push(parent);
                }
                Write::AddMember {
                    principal,
                    group_uri,
                } => {
                    let mut k = member_prefix(&principal);
                    k.extend_from_slice(group_uri.as_bytes());
                    batch.insert(&self.members, k, []);
                }
                Write::RemoveMember {
                    principal,
                    group_uri,
                } => {
                    let mut k = member_prefix(&principal);
                    k.extend_from_slice(group_uri.as_bytes());
                    batch.remove(&self.members, k);
                }
            }
        }
        // Only the counters' read-modify-write and the batch's commit are
        // serialised. A poisoned lock guards no data of its own.
        let _one_writer = self
            .commit_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The fence of a move: checked under the lock its freeze takes too.
        self.fence.check(&slots)?;
        self.write_counts(&mut batch, deltas, &purged)?;
        // A failed commit counts as written too: it left nothing to flush.
        self.flushes.begun.fetch_add(1, SeqCst);
        let result = batch.commit().map_err(unavailable);
        self.flushes.written.fetch_add(1, SeqCst);
        result
    }

    async fn persist(&self) -> StorageResult<()> {
        let f = &self.flushes;
        // Equal only if, when that flush began, every commit begun by now
        // had been written: nothing is left in the buffer. A reader that
        // saw a commit sees its `begun` (counted before the journal write,
        // itself before the memtable insert), so this skip never lets an
        // answer reveal an unflushed commit.
        if f.flushed.load(SeqCst) == f.begun.load(SeqCst) {
            return Ok(());
        }
        let written = f.written.load(SeqCst);
        let mode = if self.fsync_on_persist {
            PersistMode::SyncAll
        } else {
            PersistMode::Buffer
        };
        self.db.persist(mode).map_err(unavailable)?;
        f.flushed.fetch_max(written, SeqCst);
        Ok(())
    }

    async fn close(&self) -> StorageResult<()> {
        // Held so that no commit lands between the fsync and the exit.
        let _one_writer = self
            .commit_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.db.persist(PersistMode::SyncAll).map_err(unavailable)
    }

    async fn flush(&self) -> StorageResult<()> {
        let _one_writer = self
            .commit_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // `meta` stays: the empty store's indexes are complete.
        self.clear(&[
            &self.objects,
            &self.newest,
            &self.timestamps,
            &self.members,
            &self.counts,
            &self.grantees,
        ])
    }

    async fn health(&self) -> StorageResult<()> {
        self.timestamps.get(b"\0health").map_err(unavailable)?;
        Ok(())
    }

    fn slot_moves(&self) -> Option<&dyn super::slots::SlotMoves> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small store in `dir`, fsynced every `fsync_interval`.
    fn open(dir: &Path, fsync_interval: Duration) -> std::sync::Arc<EmbeddedStorage> {
        EmbeddedStorage::open(dir, fsync_interval, 1 << 20, 1 << 20).expect("open")
    }

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), Duration::ZERO);
        crate::storage::conformance::run_all(store.as_ref()).await;
    }

    /// The index's keys sort by timestamp, then id, both descending (ids
    /// that begin others, multi-byte characters), and give both back.
    #[test]
    fn index_keys_sort_newest_first() {
        let entries = [
            (7u64, "b"),
            (7, "ab"),
            (7, "abc"),
            (7, "a"),
            (7, "\u{e9}t\u{e9}"),
            (7, "z~"),
            (0, "a"),
            (u64::MAX, "a"),
            (8, "a"),
        ];
        let mut by_key: Vec<(Vec<u8>, (u64, &str))> = (entries.iter())
            .map(|&(ts, id)| (modified_key("p", "r", ts, id), (ts, id)))
            .collect();
        by_key.sort();
        let mut expected = entries.to_vec();
        expected.sort_by(|a, b| b.cmp(a));
        let order: Vec<(u64, &str)> = by_key.iter().map(|(_, e)| *e).collect();
        assert_eq!(order, expected);
        let prefix = list_prefix("p", "r").len();
        for (key, (ts, id)) in by_key {
            let back = split_modified_key(&key[prefix..]).expect("split");
            assert_eq!(back, (ts, id.to_owned()));
        }
        assert!(split_modified_key(&[0; 7]).is_err());
        assert!(split_modified_key(&[0; 9]).is_err());
    }

    /// A store whose index an earlier version wrote (ascending, in the
    /// `changes` keyspace) is indexed again at open: the same pages and
    /// changes, and the old keyspace is gone.
    #[tokio::test]
    async fn a_store_indexed_by_an_earlier_version_is_indexed_again() {
        use crate::storage::{Order, Range};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), Duration::ZERO);
        let list = "/buckets/b/collections/c";
        let writes = (0..120).map(|i| {
            let ts = 1000 + (i * 37) % 120;
            crate::storage::conformance::put(
                list,
                "record",
                crate::storage::conformance_scan::row(i, ts),
                None,
            )
        });
        store.commit(writes.collect()).await.expect("commit");
        // Deleted: its tombstone is in the index too.
        let gone = crate::storage::conformance_scan::row(5, 1200);
        let mut tomb = StoredObject::tombstone(&gone.id, 1200);
        tomb.permissions = gone.permissions;
        store
            .commit(vec![crate::storage::conformance::put(
                list,
                "record",
                tomb,
                Some(1000 + (5 * 37) % 120),
            )])
            .await
            .expect("delete");
        let read = |store: std::sync::Arc<EmbeddedStorage>| async move {
            let mut seen = Vec::new();
            for (order, lean) in [(Order::ModifiedDesc, true), (Order::ModifiedAsc, false)] {
                let mut range = Range {
                    parent: list,
                    resource: "record",
                    order,
                    from: None,
                    stop: None,
                    limit: 7,
                    tombstones: false,
                    lean,
                    acl: true,
                    fields: &[],
                };
                loop {
                    let chunk = store.scan(&range).await.expect("scan");
                    for (i, o) in chunk.rows.iter().enumerate() {
                        let printed = chunk.printed.get(i).cloned();
                        let acl = o.permissions.clone();
                        seen.push((o.id.clone(), o.last_modified, o.data.clone(), acl, printed));
                    }
                    match chunk.next {
                        Some(next) => range.from = Some(next),
                        None => break,
                    }
                }
            }
            let mut since = store
                .list(list, "record", Some(1100), true)
                .await
                .expect("list");
            since.sort_by(|a, b| a.id.cmp(&b.id));
            (seen, since)
        };
        let covered = read(store.clone()).await;
        assert_eq!(covered.0.len(), 238);
        assert_eq!(covered.1.len(), 20);
        // Entries an earlier version wrote hold the stored JSON: read the same.
        let mut legacy = store.db.batch();
        for item in store.objects.prefix(b"") {
            let (key, value) = item.into_inner().expect("object");
            let object = decode(&value).expect("decode");
            legacy.insert(&store.newest, modified_key_of(&key, &object), &*value);
        }
        legacy.commit().expect("legacy entries");
        let first = store.newest.iter().next().expect("an entry");
        assert!(!index_row::is_printed(
            &first.into_inner().expect("entry").1
        ));
        assert_eq!(read(store.clone()).await, covered);
        // What an earlier version left: its own index, its version mark,
        // and none of this one's entries.
        store.clear(&[&store.newest]).expect("clear");
        store.meta.insert(b"indexes", b"2").expect("old version");
        let old = store.db.keyspace("changes", Default::default).expect("old");
        old.insert(b"x", b"y").expect("old entry");
        store.db.persist(PersistMode::SyncAll).expect("persist");
        drop((old, store));
        let store = open(dir.path(), Duration::ZERO);
        assert!(!store.db.keyspace_exists("changes"));
        assert_eq!(read(store.clone()).await, covered);
    }

    /// Commits the timestamp of list `/p` records.
    async fn stamp(store: &EmbeddedStorage, value: u64) {
        store
            .commit(vec![Write::Timestamp {
                parent: "/p".into(),
                resource: "record",
                value,
            }])
            .await
            .expect("commit");
    }

    #[tokio::test]
    async fn persist_flushes_when_a_commit_is_pending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), Duration::from_secs(60));
        let f = &store.flushes;
        assert_eq!(f.flushed.load(SeqCst), f.begun.load(SeqCst));
        stamp(&store, 7).await;
        assert_ne!(f.flushed.load(SeqCst), f.begun.load(SeqCst), "pending");
        store.persist().await.expect("persist");
        assert_eq!(f.flushed.load(SeqCst), f.begun.load(SeqCst), "flushed");
    }

    #[tokio::test]
    async fn data_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = open(dir.path(), Duration::from_secs(60));
            stamp(&store, 7).await;
            store.persist().await.expect("persist");
        }
        let store = open(dir.path(), Duration::from_secs(60));
        assert_eq!(store.timestamp("/p", "record").await.expect("ts"), Some(7));
    }

    /// A store written before the counters and the principal index existed
    /// gets them at its next open.
    #[tokio::test]
    async fn a_store_without_indexes_is_indexed_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = "/buckets/b/collections/c";
        {
            let store = open(dir.path(), Duration::ZERO);
            let writes = crate::storage::conformance_indexes::eve_records(p);
            store.commit(writes).await.expect("commit");
            // As an older version left it: objects, no indexes.
            store
                .clear(&[&store.counts, &store.grantees, &store.meta])
                .expect("clear");
            store.persist().await.expect("persist");
            assert_eq!(store.count(p, "record").await.expect("count"), 0);
        }
        let store = open(dir.path(), Duration::ZERO);
        crate::storage::conformance_indexes::assert_eve_indexed(store.as_ref(), p).await;
    }

    /// Earlier builds kept a reverse index beside the same index version;
    /// it would hold disk space forever, so opening the store drops it.
    #[tokio::test]
    async fn the_old_reverse_index_is_dropped_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = open(dir.path(), Duration::ZERO);
            let old = store
                .db
                .keyspace(indexes::OLD_KEYSPACES[0], Default::default)
                .expect("keyspace");
            old.insert(b"/p\0record\0x\0eve", []).expect("insert");
            store.persist().await.expect("persist");
            assert!(store.db.keyspace_exists(indexes::OLD_KEYSPACES[0]));
        }
        let store = open(dir.path(), Duration::ZERO);
        assert!(!store.db.keyspace_exists(indexes::OLD_KEYSPACES[0]));
    }

    #[tokio::test]
    async fn keys_beyond_the_engines_limit_are_refused_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), Duration::ZERO);
        let huge = "a".repeat(70_000);
        assert_eq!(store.get("/p", "record", &huge).await.expect("get"), None);
        assert_eq!(store.timestamp(&huge, "record").await.expect("ts"), None);
        assert!(store
            .list(&huge, "record", None, true)
            .await
            .expect("list")
            .is_empty());
        assert!(store
            .groups_of(std::slice::from_ref(&huge))
            .await
            .expect("groups")
            .is_empty());
        let put = Write::Put {
            parent: "/p".into(),
            resource: "record",
            object: StoredObject::tombstone(&huge, 1),
            previous_last_modified: None,
        };
        assert!(store.commit(vec![put]).await.is_err());
        let member = Write::AddMember {
            principal: huge,
            group_uri: "/buckets/b/groups/g".into(),
        };
        assert!(store.commit(vec![member]).await.is_err());
        stamp(&store, 7).await;
    }
}
