//! Ordered reads of one list: `objects` in its clustering order (`id`) or
//! `changes` in its own (`last_modified, id`), in either direction, from an
//! exclusive cursor, one LIMIT per call.
//!
//! A list is split into partitions (`part`); one unpaged query with `part IN`
//! has the coordinator merge them in clustering order and apply the LIMIT
//! across them. Root lists span more partitions than one IN holds: their
//! groups are read one by one, each up to the LIMIT, and merged here.

use super::{decode, unavailable, CqlStorage};
use crate::storage::{Chunk, Cursor, Order, Range, StorageResult, StoredObject};

/// Partitions per IN, as for whole-list reads.
const PARTS_PER_QUERY: usize = 64;

fn ts(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

impl CqlStorage {
    pub(super) async fn scan_list(&self, range: &Range<'_>) -> StorageResult<Chunk> {
        let n = range.limit.max(1);
        let limit = i32::try_from(n).unwrap_or(i32::MAX);
        let order = range.order;
        let mut rows: Vec<StoredObject> = Vec::new();
        let mut hit_limit = false;
        for group in self.parts(range.parent).chunks(PARTS_PER_QUERY) {
            let got = self.scan_parts(group.to_vec(), range, limit).await?;
            hit_limit |= got.len() >= n;
            rows.extend(got);
        }
        rows.sort_by(|a, b| {
            let o = order.key_cmp(&Cursor::of(a), &Cursor::of(b));
            if order.descending() {
                o.reverse()
            } else {
                o
            }
        });
        let more = hit_limit || rows.len() > n;
        rows.truncate(n);
        let next = if more {
            rows.last().map(Cursor::of)
        } else {
            None
        };
        if !range.tombstones {
            rows.retain(|o| !o.deleted);
        }
        Ok(Chunk {
            rows,
            next,
            printed: Vec::new(),
        })
    }

    async fn scan_parts(
        &self,
        parts: Vec<i16>,
        range: &Range<'_>,
        limit: i32,
    ) -> StorageResult<Vec<StoredObject>> {
        let (parent, resource) = (range.parent, range.resource);
        let s = &self.cluster.statements;
        let session = &self.cluster.session;
        let from = range.from.as_ref();
        let result = match range.order {
            Order::IdAsc => {
                let after = from.map_or("", |c| c.id.as_str());
                let values = (parent, resource, parts, after, limit);
                session.execute_unpaged(&s.scan_id_asc, values).await
            }
            Order::IdDesc => match from {
                Some(c) => {
                    let values = (parent, resource, parts, c.id.as_str(), limit);
                    session.execute_unpaged(&s.scan_id_desc, values).await
                }
                None => {
                    let values = (parent, resource, parts, limit);
                    session.execute_unpaged(&s.scan_id_desc_first, values).await
                }
            },
            // `(t, "")` lies before every row at `t`: no id is empty.
            Order::ModifiedAsc => {
                let (t, id) = from.map_or((-1, ""), |c| (ts(c.last_modified), c.id.as_str()));
                let end = range.stop.map_or(i64::MAX, ts);
                let values = (parent, resource, parts, t, id, end, "", limit);
                session.execute_unpaged(&s.scan_changes_asc, values).await
            }
            Order::ModifiedDesc => {
                let (t, id) = from.map_or((i64::MAX, ""), |c| (ts(c.last_modified), c.id.as_str()));
                let end = range.stop.map_or(0, |s| ts(s.saturating_add(1)));
                let values = (parent, resource, parts, t, id, end, "", limit);
                session.execute_unpaged(&s.scan_changes_desc, values).await
            }
        };
        bodies_of(result)
    }
}

fn bodies_of(
    result: Result<scylla::response::query_result::QueryResult, scylla::errors::ExecutionError>,
) -> StorageResult<Vec<StoredObject>> {
    let rows = result
        .map_err(unavailable)?
        .into_rows_result()
        .map_err(unavailable)?;
    let mut out = Vec::new();
    for row in rows.rows::<(Vec<u8>,)>().map_err(unavailable)? {
        let (body,) = row.map_err(unavailable)?;
        out.push(decode(&body)?);
    }
    Ok(out)
}
