//! Ordered reads of one list in the embedded store: the primary keyspace for
//! id orders, the `changes` index (keys only, then one lookup per row) for
//! `last_modified` orders. Either walk is a range of one list's keys, in
//! either direction, from an exclusive cursor.

use super::{change_key, decode, list_prefix, object_key, unavailable, EmbeddedStorage};
use super::{MAX_KEY_BYTES, SCAN_SLACK};
use crate::storage::{Chunk, Cursor, Range, StorageError, StorageResult, StoredObject};
use std::ops::Bound;

/// The first key past every key of the list at `prefix` (which ends in `\0`,
/// a byte no id, resource or parent holds).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last = 1;
    }
    end
}

/// The range of a list's keys strictly past `from` (`from` already encoded
/// as a key of that keyspace) in the walk's direction.
fn bounds(
    prefix: &[u8],
    from: Option<Vec<u8>>,
    descending: bool,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let end = prefix_end(prefix);
    match (from, descending) {
        (None, _) => (Bound::Included(prefix.to_vec()), Bound::Excluded(end)),
        (Some(k), false) => (Bound::Excluded(k), Bound::Excluded(end)),
        (Some(k), true) => (Bound::Included(prefix.to_vec()), Bound::Excluded(k)),
    }
}

impl EmbeddedStorage {
    pub(super) fn scan_list(&self, range: &Range<'_>) -> StorageResult<Chunk> {
        let (parent, resource, with_tombstones) = (range.parent, range.resource, range.tombstones);
        let (order, from, n) = (range.order, range.from.as_ref(), range.limit.max(1));
        let prefix = list_prefix(parent, resource);
        let mut chunk = Chunk::default();
        if prefix.len() > MAX_KEY_BYTES || from.is_some_and(|c| c.id.len() > MAX_KEY_BYTES) {
            return Ok(chunk);
        }
        // Tombstones skipped count as steps: one call's work stays bounded
        // even across a long run of deletions.
        let steps = n.saturating_mul(4).saturating_add(SCAN_SLACK);
        let descending = order.descending();
        let mut last = None;
        let mut taken = 0;
        // Each step: its position, and the row there unless it is gone.
        type Step = StorageResult<(Cursor, Option<StoredObject>)>;
        let iter: Box<dyn Iterator<Item = Step>> = if order.by_modified() {
            let from = from.map(|c| change_key(parent, resource, c.last_modified, &c.id));
            let keys = self.changes.range(bounds(&prefix, from, descending));
            Box::new(directed(keys, descending).map(|item| {
                let key = item.key().map_err(unavailable)?;
                let (ts, id) = split_change_key(&key[prefix.len()..])?;
                let at = Cursor {
                    last_modified: ts,
                    id: id.to_owned(),
                };
                let key = object_key(parent, resource, id);
                let obj = match self.objects.get(key).map_err(unavailable)? {
                    Some(v) => Some(decode(&v)?),
                    None => None,
                };
                // Replaced since the index was read: its new entry lies
                // elsewhere in the walk.
                Ok((at, obj.filter(|o| o.last_modified == ts)))
            }))
        } else {
            let from = from.map(|c| object_key(parent, resource, &c.id));
            let rows = self.objects.range(bounds(&prefix, from, descending));
            Box::new(directed(rows, descending).map(|item| {
                let (_, v) = item.into_inner().map_err(unavailable)?;
                let obj = decode(&v)?;
                Ok((Cursor::of(&obj), Some(obj)))
            }))
        };
        for (step, item) in iter.enumerate() {
            if step >= steps || taken >= n {
                return Ok(Chunk {
                    next: last,
                    ..chunk
                });
            }
            let (at, obj) = item?;
            if range.ends_at(at.last_modified) {
                return Ok(chunk);
            }
            last = Some(at);
            if let Some(obj) = obj {
                taken += keep(&mut chunk.rows, obj, with_tombstones);
            }
        }
        Ok(chunk)
    }
}

/// `iter` walked backwards when `descending`.
fn directed<I: DoubleEndedIterator + 'static>(
    iter: I,
    descending: bool,
) -> Box<dyn Iterator<Item = I::Item>> {
    if descending {
        Box::new(iter.rev())
    } else {
        Box::new(iter)
    }
}

/// Appends `obj` unless it is a tombstone not asked for; 1 if appended.
fn keep(rows: &mut Vec<StoredObject>, obj: StoredObject, with_tombstones: bool) -> usize {
    if obj.deleted && !with_tombstones {
        return 0;
    }
    rows.push(obj);
    1
}

/// `be64(last_modified) id`, the part of a `changes` key after the list.
fn split_change_key(rest: &[u8]) -> StorageResult<(u64, &str)> {
    if rest.len() < 8 {
        return Err(StorageError::Corrupt("short change key".into()));
    }
    let (ts, id) = rest.split_at(8);
    let ts = super::decode_u64(ts)?;
    let id = std::str::from_utf8(id).map_err(|e| StorageError::Corrupt(e.to_string()))?;
    Ok((ts, id))
}
