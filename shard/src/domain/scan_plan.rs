//! How a list request walks the store: which stored order serves its sort,
//! where the walk starts (its `_token`'s position, or the `last_modified`
//! bounds its filters imply) and where it may stop.
//!
//! Every bound here is conservative: the walk may visit rows the filters or
//! the token then reject, never skip one they accept. So the rows of a page
//! are exactly those of a walk over the whole list, at the cost of a page.

use super::request::ListQuery;
use crate::storage::{Cursor, Order, Range, StoredObject};
use kinto_proto::query::Op;

pub struct ScanPlan {
    pub order: Order,
    /// The stored order is the sort's first key (which is unique but for
    /// ties of `last_modified`): the walk may stop once the page is full.
    /// Otherwise it walks every row, keeping the best few.
    pub ordered: bool,
    pub from: Option<Cursor>,
    /// `last_modified` bounds the filters imply, both exclusive.
    pub above: Option<u64>,
    pub below: Option<u64>,
}

/// The `last_modified` range the filters imply: rows must have a timestamp
/// above the first and below the second.
fn modified_bounds(q: &ListQuery) -> (Option<u64>, Option<u64>) {
    let (mut above, mut below): (Option<u64>, Option<u64>) = (None, None);
    for f in q.filters.iter().filter(|f| f.field == "last_modified") {
        let Some(v) = f.value.as_u64() else { continue };
        let (lo, hi) = match f.op {
            Op::Gt => (Some(v), None),
            Op::Min => (v.checked_sub(1), None),
            Op::Lt => (None, Some(v)),
            Op::Max => (None, v.checked_add(1)),
            Op::Eq => (v.checked_sub(1), v.checked_add(1)),
            _ => (None, None),
        };
        above = above.max(lo);
        below = match (below, hi) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    (above, below)
}

impl ScanPlan {
    /// `seek`: start at the token's position (a count must see the rows
    /// before it, and does not).
    pub fn of(q: &ListQuery, seek: bool) -> Self {
        let first = q.sort.first();
        let (above, below) = modified_bounds(q);
        let (order, ordered) = match first.map(|k| (k.field.as_str(), k.descending)) {
            Some(("last_modified", true)) => (Order::ModifiedDesc, true),
            Some(("last_modified", false)) => (Order::ModifiedAsc, true),
            Some(("id", true)) => (Order::IdDesc, true),
            Some(("id", false)) => (Order::IdAsc, true),
            // Any order serves a walk of every row; the index's range is
            // all a `_since` needs to walk.
            _ if above.is_some() => (Order::ModifiedDesc, false),
            _ if below.is_some() => (Order::ModifiedAsc, false),
            _ => (Order::IdAsc, false),
        };
        let after = q.after.as_ref().filter(|_| seek && ordered);
        let at = |t: u64| Cursor {
            last_modified: t,
            id: String::new(),
        };
        let mut starts = Vec::new();
        match order {
            // `(t, "")` excludes nothing at `t` ascending; descending, it
            // excludes exactly what lies at `t` and above.
            Order::ModifiedDesc => {
                starts.extend(below.map(at));
                let last = after.and_then(|a| a.get("last_modified")?.as_u64());
                starts.extend(last.map(|t| at(t.saturating_add(1))));
            }
            Order::ModifiedAsc => {
                starts.extend(above.map(|t| at(t.saturating_add(1))));
                let last = after.and_then(|a| a.get("last_modified")?.as_u64());
                starts.extend(last.map(at));
            }
            Order::IdAsc | Order::IdDesc if ordered => {
                let last = after.and_then(|a| a.get("id")?.as_str());
                starts.extend(last.map(|id| Cursor {
                    last_modified: 0,
                    id: id.to_owned(),
                }));
            }
            _ => {}
        }
        // The furthest start along the walk.
        let from = starts
            .into_iter()
            .reduce(|a, b| if order.is_past(&b, &a) { b } else { a });
        ScanPlan {
            order,
            ordered,
            from,
            above,
            below,
        }
    }

    /// The store's walk of a list from the plan's start; it ends where the
    /// filters' bound does. Its `limit` is the caller's to set per call.
    pub fn range<'a>(&self, parent: &'a str, resource: &'a str, tombstones: bool) -> Range<'a> {
        let stop = match self.order {
            Order::ModifiedDesc => self.above,
            Order::ModifiedAsc => self.below,
            _ => None,
        };
        Range {
            parent,
            resource,
            order: self.order,
            from: self.from.clone(),
            stop,
            limit: 0,
            tombstones,
            lean: false,
            acl: true,
            fields: &[],
        }
    }

    /// Every row from `o` on, in the walk's order, fails the filters.
    pub fn is_beyond(&self, o: &StoredObject) -> bool {
        match self.order {
            Order::ModifiedDesc => self.above.is_some_and(|a| o.last_modified <= a),
            Order::ModifiedAsc => self.below.is_some_and(|b| o.last_modified >= b),
            _ => false,
        }
    }

    /// The walk does not start at the list's first row, or stops before its
    /// last: what it saw is not all the caller may see.
    pub fn is_partial(&self) -> bool {
        self.from.is_some()
            || (self.order == Order::ModifiedDesc && self.above.is_some())
            || (self.order == Order::ModifiedAsc && self.below.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinto_proto::query::{Filter, SortKey};
    use serde_json::json;

    fn query(
        sort: &str,
        desc: bool,
        filters: &[(Op, u64)],
        after: Option<serde_json::Value>,
    ) -> ListQuery {
        ListQuery {
            sort: vec![SortKey {
                field: sort.into(),
                descending: desc,
            }],
            filters: filters
                .iter()
                .map(|(op, v)| Filter {
                    field: "last_modified".into(),
                    op: *op,
                    value: json!(v),
                })
                .collect(),
            after: after.and_then(|a| a.as_object().cloned()),
            ..Default::default()
        }
    }

    #[test]
    fn seeks_to_the_furthest_of_token_and_bounds() {
        let q = query(
            "last_modified",
            true,
            &[(Op::Lt, 50), (Op::Gt, 10)],
            Some(json!({"last_modified": 30})),
        );
        let p = ScanPlan::of(&q, true);
        assert_eq!(p.order, Order::ModifiedDesc);
        assert_eq!(p.from.as_ref().map(|c| c.last_modified), Some(31));
        assert_eq!((p.above, p.below), (Some(10), Some(50)));
        // Without seeking (a count), only the filters bound the walk.
        let p = ScanPlan::of(&q, false);
        assert_eq!(p.from.as_ref().map(|c| c.last_modified), Some(50));
        let q = query(
            "last_modified",
            false,
            &[(Op::Min, 10)],
            Some(json!({"last_modified": 5})),
        );
        let p = ScanPlan::of(&q, true);
        assert_eq!(p.from.as_ref().map(|c| c.last_modified), Some(10));
    }

    #[test]
    fn other_sorts_walk_everything() {
        let q = query("title", false, &[], Some(json!({"title": "x", "id": "a"})));
        let p = ScanPlan::of(&q, true);
        assert!(!p.ordered && p.from.is_none() && !p.is_partial());
        // A `_since` walks only the index's range, whatever the sort.
        let q = query(
            "title",
            false,
            &[(Op::Gt, 10)],
            Some(json!({"title": "x", "last_modified": 40})),
        );
        let p = ScanPlan::of(&q, true);
        assert_eq!(
            (p.order, p.ordered, p.from.clone()),
            (Order::ModifiedDesc, false, None)
        );
        assert!(p.is_partial() && p.range("", "record", false).stop == Some(10));
        let q = query("id", true, &[], Some(json!({"id": "m"})));
        let p = ScanPlan::of(&q, true);
        assert_eq!(
            (p.order, p.from.map(|c| c.id)),
            (Order::IdDesc, Some("m".into()))
        );
    }
}
