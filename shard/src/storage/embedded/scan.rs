//! Ordered reads of one list in the embedded store: the primary keyspace for
//! id orders, the `newest` index (which holds each object printed, newest first) for
//! `last_modified` orders. Either walk is a range of one list's keys, in
//! either direction, from an exclusive cursor.

use super::{decode_row, index_row, list_prefix, modified_key, object_key};
use super::{modified_ts, read_modified_key, split_modified_key};
use super::{unavailable, EmbeddedStorage};
use super::{MAX_KEY_BYTES, SCAN_SLACK};
use crate::storage::{After, Chunk, Cursor, PrintedPage, Range, StorageResult, StoredObject};
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
    backward: bool,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let end = prefix_end(prefix);
    match (from, backward) {
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
            if self.shows(range, &row.0.id) {
                taken += keep(&mut chunk, row, range.tombstones);
            }
        }
        Ok(chunk)
    }

    /// Up to `limit` entries of the `last_modified` index, each with the
    /// object it holds. The index runs newest first: the default order
    /// walks it forward, an ascending one backward.
    async fn scan_index(&self, range: &Range<'_>, prefix: &[u8]) -> StorageResult<Chunk> {
        let (parent, resource) = (range.parent, range.resource);
        let n = range.limit.max(1);
        let backward = !range.order.descending();
        let from =
            (range.from.as_ref()).map(|c| modified_key(parent, resource, c.last_modified, &c.id));
        let entries = self.newest.range(bounds(prefix, from, backward));
        // Sized for the rows asked (a caller asks at most a page's worth).
        let mut chunk = Chunk {
            rows: Vec::with_capacity(n.min(1024)),
            printed: Vec::with_capacity(if range.lean { n.min(1024) } else { 0 }),
            next: None,
        };
        // The key of the last entry walked: the next call's cursor, decoded
        // once (each row's id moves into its row).
        let mut last: Option<fjall::Slice> = None;
        for (taken, item) in directed(entries, backward).enumerate() {
            if taken >= n {
                if let Some(key) = &last {
                    chunk.next = Some(cursor_at(key, prefix)?);
                }
                break;
            }
            let (key, value) = item.into_inner().map_err(unavailable)?;
            let (ts, id) = split_modified_key(&key[prefix.len()..])?;
            if range.ends_at(ts) {
                break;
            }
            if self.shows(range, &id) {
                let row = index_row::row(&value, ts, id, range)?;
                keep(&mut chunk, row, range.tombstones);
            }
            last = Some(key);
        }
        Ok(chunk)
    }
}

impl EmbeddedStorage {
    /// [`crate::storage::Storage::print_page`] on the `newest` index, whose
    /// entries hold each row printed: each row kept is one copy, and one
    /// buffer holds every id read. A bucket's lists only (a root list hides
    /// the rows of slots this store does not serve).
    pub(super) fn print_index_page(
        &self,
        range: &Range<'_>,
        page: usize,
        after: &After<'_>,
    ) -> StorageResult<Option<PrintedPage>> {
        let printable = range.order.by_modified() && range.lean && !range.acl;
        if !printable || !range.fields.is_empty() || range.parent.is_empty() {
            return Ok(None);
        }
        let prefix = list_prefix(range.parent, range.resource);
        let from = range.from.as_ref();
        if prefix.len() > MAX_KEY_BYTES || from.is_some_and(|c| c.id.len() > MAX_KEY_BYTES) {
            return Ok(None);
        }
        let (parent, resource) = (range.parent, range.resource);
        let from = from.map(|c| modified_key(parent, resource, c.last_modified, &c.id));
        let backward = !range.order.descending();
        let entries = self.newest.range(bounds(&prefix, from, backward));
        let mut out = PrintedPage {
            json: Vec::with_capacity(page.min(1024).saturating_mul(128).saturating_add(2)),
            ..PrintedPage::default()
        };
        out.json.push(b'[');
        let (mut id, mut previous) = (Vec::new(), None);
        // Rows come in the sort's order (ties give up below): once one is
        // past the token, every later one is, and ids need no more reading.
        let mut past_token = false;
        // A page, the token's own row, the one that shows more follow, and
        // as many tombstones again. Past that the caller's walk, which
        // yields and bounds each chunk, takes over.
        let steps = (page.saturating_mul(2))
            .saturating_add(2)
            .saturating_add(SCAN_SLACK);
        for (step, item) in directed(entries, backward).enumerate() {
            if step >= steps {
                return Ok(None);
            }
            out.read = step + 1;
            let (key, value) = item.into_inner().map_err(unavailable)?;
            let rest = &key[prefix.len()..];
            let ts = modified_ts(rest)?;
            if range.ends_at(ts) {
                break;
            }
            // Rows tied on `last_modified` are ordered by the sort's next
            // key, not the index's.
            if previous.replace(ts) == Some(ts) {
                return Ok(None);
            }
            let Some((deleted, printed)) = index_row::printed(&value)? else {
                return Ok(None);
            };
            if deleted && !range.tombstones {
                continue;
            }
            if !past_token {
                let (_, row_id) = read_modified_key(rest, &mut id)?;
                if !after(row_id, ts) {
                    continue;
                }
                past_token = true;
            }
            if out.rows == page {
                out.has_more = true;
                break;
            }
            if out.rows > 0 {
                out.json.push(b',');
            }
            let start = out.json.len();
            out.json.extend_from_slice(printed);
            out.last = start..out.json.len();
            out.rows += 1;
        }
        out.json.push(b']');
        Ok(Some(out))
    }

    /// Whether row `id` of `range` is listed: every row of a bucket's list
    /// (the domain checked its slot), a root list's row if its own slot is
    /// served ([`super::slots::Fence::shows`]).
    fn shows(&self, range: &Range<'_>, id: &str) -> bool {
        !range.parent.is_empty() || self.fence.shows(range.parent, range.resource, id)
    }
}

/// The cursor of the `newest` entry at `key` of the list at `prefix`.
fn cursor_at(key: &[u8], prefix: &[u8]) -> StorageResult<Cursor> {
    let (last_modified, id) = split_modified_key(&key[prefix.len()..])?;
    Ok(Cursor { last_modified, id })
}

/// A decoded row, with its printed form when the walk is lean.
type Row = (StoredObject, Option<Vec<u8>>);

/// `iter` walked backwards when `backward`.
fn directed<I: DoubleEndedIterator + 'static>(
    iter: I,
    backward: bool,
) -> Box<dyn Iterator<Item = I::Item>> {
    if backward {
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
