//! Conformance of a list's pages: the shard's streamed selection
//! ([`crate::domain::select`]) over this backend's [`Storage::scan`], for
//! every sort, filter and page size, with and without tombstones, walked
//! page by page through each page's keyset, against the same selection made
//! naively from the whole list.

use super::{PrintedPage, Storage, StoredObject, Write};
use crate::domain::budget::Budget;
use crate::domain::request::ListQuery;
use crate::domain::select::{select, Selected, Walk};
use kinto_proto::query::{self, Filter, Op, SortKey};
use serde_json::{json, Value};

const L: &str = "/buckets/b/collections/pages";
const ROWS: u64 = 240;

/// A row of the scan checks, most with a `title` too, and a nested field.
fn row(i: u64, ts: u64) -> StoredObject {
    let mut o = super::conformance_scan::row(i, ts);
    o.data.insert("meta".into(), json!({"k": i % 3}));
    if !i.is_multiple_of(5) {
        o.data
            .insert("title".into(), json!(format!("t{}", (i * 13) % 17)));
    }
    o
}

/// Ids and timestamps in unrelated orders, updated rows and tombstones.
async fn fill(s: &dyn Storage) {
    let put = |o: StoredObject, prev: Option<u64>| Write::Put {
        parent: L.into(),
        resource: "record",
        object: o,
        previous_last_modified: prev,
    };
    let ts = |i: u64| 10_000 + (i * 7919) % ROWS;
    for part in (0..ROWS).collect::<Vec<_>>().chunks(60) {
        let writes = part.iter().map(|&i| put(row(i, ts(i)), None));
        s.commit(writes.collect()).await.expect("commit");
    }
    let mut changes = Vec::new();
    for i in (0..ROWS).step_by(9) {
        changes.push(put(row(i, 20_000 + i), Some(ts(i))));
    }
    for i in (3..ROWS).step_by(13).filter(|i| i % 9 != 0) {
        let tomb = StoredObject::tombstone(&format!("r{i:03}"), 30_000 + i);
        changes.push(put(tomb, Some(ts(i))));
    }
    s.commit(changes).await.expect("commit");
}

/// A sort as the gateway sends it: as asked, then `-last_modified`, `id`.
pub(crate) fn sort(asked: &[(&str, bool)]) -> Vec<SortKey> {
    let key = |field: &str, descending| SortKey {
        field: field.into(),
        descending,
    };
    let mut s: Vec<SortKey> = asked.iter().map(|(f, d)| key(f, *d)).collect();
    if !s.iter().any(|k| k.field == "last_modified") {
        s.push(key("last_modified", true));
    }
    if !s.iter().any(|k| k.field == "id") {
        s.push(key("id", false));
    }
    s
}

pub(crate) fn filter(field: &str, op: Op, value: Value) -> Filter {
    Filter {
        field: field.into(),
        op,
        value,
    }
}

/// Filter sets: none, on a field, on a nested field, and on `last_modified`
/// above `gt`, within `[min, lt)`, and at most `max` (with another field).
pub(crate) fn filter_sets(gt: u64, (min, lt): (u64, u64), max: u64) -> Vec<Vec<Filter>> {
    vec![
        vec![],
        vec![filter("n", Op::Eq, json!(3))],
        vec![filter("meta.k", Op::Eq, json!(1))],
        vec![filter("last_modified", Op::Gt, json!(gt))],
        vec![
            filter("last_modified", Op::Min, json!(min)),
            filter("last_modified", Op::Lt, json!(lt)),
        ],
        vec![
            filter("last_modified", Op::Max, json!(max)),
            filter("n", Op::Not, json!(1)),
        ],
    ]
}

/// Every visible, matching row of the whole list, sorted: the expected ids.
pub(crate) fn reference(all: &[StoredObject], q: &ListQuery, tombstones: bool) -> Vec<String> {
    let mut rows: Vec<(Value, &StoredObject)> = all
        .iter()
        .filter(|o| tombstones || !o.deleted)
        .map(|o| (o.to_json(), o))
        .filter(|(j, _)| query::matches(j, &q.filters))
        .collect();
    query::sort_by_keys(&mut rows, &q.sort, |r| &r.0);
    rows.into_iter().map(|(_, o)| o.id.clone()).collect()
}

/// Every page of the list at `parent`, each resumed from the keyset of the
/// previous one's last row.
async fn all_pages(s: &dyn Storage, parent: &str, q: &ListQuery, tombstones: bool) -> Vec<String> {
    let mut q = q.clone();
    let mut out = Vec::new();
    loop {
        let walk = Walk {
            storage: s,
            parent,
            resource: "record",
            with_tombstones: tombstones,
            count: false,
            must_see: false,
            lean: true,
            acl: false,
        };
        let page = select(walk, &q, |_| true, &Budget::default())
            .await
            .expect("selected");
        let rows = match &page.printed {
            Some(printed) => printed_rows(s, parent, printed).await,
            None => walked_rows(s, parent, &page).await,
        };
        assert!(rows.len() as u64 <= q.limit.unwrap_or(u64::MAX));
        out.extend(rows.iter().map(|(id, _)| id.clone()));
        match (page.has_more, rows.last()) {
            (true, Some((_, last))) => q.after = Some(query::keyset_of(last, &q.sort)),
            _ => return out,
        }
    }
}

/// The ids and sort views of a walked page's rows. A row the store printed
/// prints as the object read whole.
async fn walked_rows(s: &dyn Storage, parent: &str, page: &Selected) -> Vec<(String, Value)> {
    for row in &page.rows {
        if let Some(printed) = &row.printed {
            let whole = s.get(parent, "record", &row.object.id).await;
            let whole = whole.expect("get").expect("stored");
            assert_eq!(printed, &whole.print_json(), "{}", whole.id);
        }
    }
    (page.rows.iter())
        .map(|r| (r.object.id.clone(), r.view().into_owned()))
        .collect()
}

/// The ids and rows of a page the store printed, which is each object read
/// whole, printed, in a JSON array.
async fn printed_rows(s: &dyn Storage, parent: &str, page: &PrintedPage) -> Vec<(String, Value)> {
    let rows: Vec<Value> = serde_json::from_slice(&page.json).expect("a JSON array");
    assert_eq!(rows.len(), page.rows);
    let mut expected = Vec::new();
    for row in &rows {
        let id = row["id"].as_str().expect("an id");
        let whole = s.get(parent, "record", id).await.expect("get");
        let printed = whole.expect("stored").print_json();
        expected.push(printed);
    }
    let last = expected.last().cloned().unwrap_or_default();
    assert_eq!(
        page.json,
        [b"[", &expected.join(&b","[..])[..], b"]"].concat()
    );
    assert_eq!(
        page.json.get(page.last.clone()).unwrap_or_default(),
        &last[..]
    );
    (rows.into_iter())
        .map(|r| (r["id"].as_str().unwrap_or_default().to_owned(), r))
        .collect()
}

/// Walks the records at `parent` page by page for every sort, each filter
/// set and page size, with and without tombstones, against [`reference`]
/// over `all` (the list read whole).
pub(crate) async fn pages_match_the_reference(
    s: &dyn Storage,
    (parent, all): (&str, &[StoredObject]),
    filters: &[Vec<Filter>],
    limits: &[Option<u64>],
) {
    let sorts = [
        sort(&[]),
        sort(&[("last_modified", false)]),
        sort(&[("id", false)]),
        sort(&[("id", true)]),
        sort(&[("title", false)]),
        sort(&[("n", true), ("title", false)]),
        sort(&[("meta.k", true)]),
    ];
    for sort in &sorts {
        for filters in filters {
            for &limit in limits {
                for tombstones in [false, true] {
                    let q = ListQuery {
                        filters: filters.clone(),
                        sort: sort.clone(),
                        limit,
                        ..Default::default()
                    };
                    let expected = reference(all, &q, tombstones);
                    let got = all_pages(s, parent, &q, tombstones).await;
                    assert_eq!(got, expected, "{sort:?} {filters:?} {limit:?} {tombstones}");
                }
            }
        }
    }
}

pub async fn pages_in_every_sort_and_filter(s: &dyn Storage) {
    fill(s).await;
    let filters = filter_sets(10_150, (10_050, 20_100), 10_030);
    let all = s.list(L, "record", None, true).await.expect("list");
    pages_match_the_reference(s, (L, &all), &filters, &[None, Some(7), Some(100)]).await;
}
