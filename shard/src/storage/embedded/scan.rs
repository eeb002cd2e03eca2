//! Ordered reads of one list in the embedded store: the primary keyspace for
//! id orders, the `changes` index (which holds each object) for
//! `last_modified` orders. Either walk is a range of one list's keys, in
//! either direction, from an exclusive cursor.

use super::{change_key, decode_row, list_prefix, object_key, unavailable, EmbeddedStorage};
use super::{MAX_KEY_BYTES, SCAN_SLACK};
use crate::storage::{Chunk, Cursor, Range, StorageError, StorageResult, StoredObject};
use std::ops::Bound;

/// The first key past every key of the list at `prefix` (which ends in `\0`,
/// a byte no id, resource or parent holds).
pub(super) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
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
    pub(super) async fn scan_list(&self, range: &Range<'_>) -> StorageResult<Chunk> {
        let prefix = list_prefix(range.parent, range.resource);
        let from = range.from.as_ref();
        if prefix.len() > MAX_KEY_BYTES || from.is_some_and(|c| c.id.len() > MAX_KEY_BYTES) {
            return Ok(Chunk::default());
        }
        if range.order.by_modified() {
            self.scan_index(range, &prefix).await
        } else {
            self.scan_ids(range, &prefix)
        }
    }

    /// Up to `limit` rows of the primary order; tombstones skipped count as
    /// steps, so one call's work stays bounded across a run of deletions.
    fn scan_ids(&self, range: &Range<'_>, prefix: &[u8]) -> StorageResult<Chunk> {
        let n = range.limit.max(1);
        let steps = n.saturating_mul(4).saturating_add(SCAN_SLACK);
        let descending = range.order.descending();
        let from = (range.from.as_ref()).map(|c| object_key(range.parent, range.resource, &c.id));
        let rows = self.objects.range(bounds(prefix, from, descending));
        let mut chunk = Chunk::default();
        let (mut last, mut taken) = (None, 0);
        for (step, item) in directed(rows, descending).enumerate() {
            if step >= steps || taken >= n {
                return Ok(Chunk {
                    next: last,
                    ..chunk
                });
            }
            let (_, v) = item.into_inner().map_err(unavailable)?;
            let row = decode_row(&v, range)?;
            last = Some(Cursor::of(&row.0));
            taken += keep(&mut chunk, row, range.tombstones);
        }
        Ok(chunk)
    }

    /// Up to `limit` entries of the `last_modified` index, each with the
    /// object it holds; entries written before the index held objects are
    /// read as a `_since` read does (one prefix scan for a small list, see
    /// `changed_values`), and all put back in the index's order.
    async fn scan_index(&self, range: &Range<'_>, prefix: &[u8]) -> StorageResult<Chunk> {
        let (parent, resource) = (range.parent, range.resource);
        let n = range.limit.max(1);
        let descending = range.order.descending();
        let from =
            (range.from.as_ref()).map(|c| change_key(parent, resource, c.last_modified, &c.id));
        let entries = self.changes.range(bounds(prefix, from, descending));
        // Sized for the rows asked (a caller asks at most a page's worth).
        let mut at: Vec<(Cursor, Option<Row>)> = Vec::with_capacity(n.min(1024));
        let mut bare = Vec::new();
        let mut ended = true;
        for item in directed(entries, descending) {
            if at.len() >= n {
                ended = false;
                break;
            }
            let (key, value) = item.into_inner().map_err(unavailable)?;
            let (ts, id) = split_change_key(&key[prefix.len()..])?;
            if range.ends_at(ts) {
                break;
            }
            let row = if value.is_empty() {
                bare.push(id.to_owned());
                None
            } else {
                Some(decode_row(&value, range)?)
            };
            let cursor = Cursor {
                last_modified: ts,
                id: id.to_owned(),
            };
            at.push((cursor, row));
        }
        let mut found = std::collections::HashMap::with_capacity(bare.len());
        for v in &self.changed_values(prefix, parent, resource, bare)? {
            let row = decode_row(v, range)?;
            found.insert(row.0.id.clone(), row);
        }
        let mut chunk = Chunk {
            rows: Vec::with_capacity(at.len()),
            printed: Vec::with_capacity(if range.lean { at.len() } else { 0 }),
            next: None,
        };
        for (c, row) in &mut at {
            // An object replaced since the index was read has its new entry
            // elsewhere in the walk.
            let row = row
                .take()
                .or_else(|| found.remove(&c.id))
                .filter(|(o, _)| o.last_modified == c.last_modified);
            if let Some(row) = row {
                keep(&mut chunk, row, range.tombstones);
            }
        }
        chunk.next = if ended {
            None
        } else {
            at.pop().map(|(c, _)| c)
        };
        Ok(chunk)
    }
}

/// A decoded row, with its printed form when the walk is lean.
type Row = (StoredObject, Option<Vec<u8>>);

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

/// Appends the row unless it is a tombstone not asked for; 1 if appended.
fn keep(chunk: &mut Chunk, (obj, printed): Row, with_tombstones: bool) -> usize {
    if obj.deleted && !with_tombstones {
        return 0;
    }
    chunk.rows.push(obj);
    chunk.printed.extend(printed);
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
