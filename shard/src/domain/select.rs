//! The CPU half of a list: which stored rows the caller may see, which match
//! the filters, in what order, and which fall on the page.
//!
//! It runs under a [`Budget`] and, for long lists, on tokio's blocking pool,
//! so a costly filter or sort never holds one of the runtime's few worker
//! threads (the heartbeat and every other request run there).

use super::budget::Budget;
use super::request::ListQuery;
use crate::storage::StoredObject;
use kinto_proto::query;
use kinto_proto::KintoError;
use serde_json::Value;

/// Rows checked between two looks at the budget.
const ROWS_PER_CHECK: usize = 64;

/// Lists up to this long are selected on the calling worker: handing them
/// to another thread would cost more than selecting them.
pub const INLINE_ROWS: usize = 256;

pub struct Selected {
    /// The page, each row with its JSON as Kinto shows it.
    pub rows: Vec<(Value, StoredObject)>,
    /// Rows the caller may see (before filters); 0 tells "nothing shared".
    pub visible: usize,
    /// Live rows matching the filters, on every page.
    pub total: u64,
    pub has_more: bool,
}

/// Selects the page of `rows` that `q` asks for, among those `keep` lets
/// the caller see.
pub fn select(
    rows: Vec<StoredObject>,
    q: &ListQuery,
    keep: impl Fn(&StoredObject) -> bool,
    budget: &Budget,
) -> Result<Selected, KintoError> {
    let mut visible = 0;
    let mut matched = Vec::new();
    for (i, o) in rows.into_iter().enumerate() {
        if i % ROWS_PER_CHECK == 0 {
            budget.check()?;
        }
        if !keep(&o) {
            continue;
        }
        visible += 1;
        let json = o.to_json();
        if query::matches(&json, &q.filters) {
            matched.push((json, o));
        }
    }
    budget.check()?;
    query::sort_by_keys(&mut matched, &q.sort, |r| &r.0);
    budget.check()?;
    // Kinto counts live objects only, even when `_since` lists tombstones.
    let total = matched.iter().filter(|(_, o)| !o.deleted).count() as u64;
    if let Some(after) = &q.after {
        matched.retain(|(j, _)| query::is_after(j, &q.sort, after));
    }
    let mut has_more = false;
    if let Some(limit) = q.limit {
        if matched.len() as u64 > limit {
            matched.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            has_more = true;
        }
    }
    Ok(Selected {
        rows: matched,
        visible,
        total,
        has_more,
    })
}

/// [`select`], on the blocking pool when the list is long. If the future
/// is dropped (the caller is gone) the selection stops at its next check.
pub async fn select_off_worker(
    rows: Vec<StoredObject>,
    q: ListQuery,
    keep: impl Fn(&StoredObject) -> bool + Send + 'static,
    budget: Budget,
) -> Result<Selected, KintoError> {
    if rows.len() <= INLINE_ROWS {
        return select(rows, &q, keep, &budget);
    }
    let _cancel = budget.cancel_on_drop();
    tokio::task::spawn_blocking(move || select(rows, &q, keep, &budget))
        .await
        .map_err(KintoError::internal)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinto_proto::query::{Filter, Op, SortKey};
    use serde_json::json;
    use std::time::Duration;

    fn rows(n: usize) -> Vec<StoredObject> {
        (0..n)
            .map(|i| StoredObject {
                id: format!("r{i:05}"),
                last_modified: i as u64 + 1,
                deleted: false,
                data: json!({"n": i % 7}).as_object().cloned().unwrap_or_default(),
                permissions: Default::default(),
            })
            .collect()
    }

    fn query() -> ListQuery {
        ListQuery {
            filters: vec![Filter {
                field: "n".into(),
                op: Op::Eq,
                value: json!(3),
            }],
            sort: vec![SortKey {
                field: "id".into(),
                descending: false,
            }],
            limit: Some(5),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn pages_the_matching_rows_in_order_inline_or_off_the_worker() {
        for n in [50, INLINE_ROWS * 4] {
            let s = select_off_worker(rows(n), query(), |_| true, Budget::default())
                .await
                .expect("selected");
            let ids: Vec<&str> = s.rows.iter().map(|(_, o)| o.id.as_str()).collect();
            assert_eq!(ids, ["r00003", "r00010", "r00017", "r00024", "r00031"]);
            assert_eq!(s.total, (0..n).filter(|i| i % 7 == 3).count() as u64);
            assert!(s.has_more);
            assert_eq!(s.visible, n);
        }
    }

    #[tokio::test]
    async fn stops_with_a_503_once_the_budget_is_spent() {
        let spent = Budget::lasting(Duration::ZERO);
        let err = select_off_worker(rows(INLINE_ROWS * 4), query(), |_| true, spent)
            .await
            .err()
            .expect("refused");
        assert_eq!(err.kind.spec().http_status, 503);
    }

    #[test]
    fn counts_only_the_rows_the_caller_may_see() {
        let s = select(
            rows(20),
            &query(),
            |o| o.id.as_str() < "r00010",
            &Budget::default(),
        )
        .expect("selected");
        assert_eq!(s.visible, 10);
        assert_eq!(s.total, 1);
    }
}
