//! The streamed selection against the same selection done naively in
//! memory, on a real store, for every sort, filter and page size, walking
//! every page by its keyset; and the rows one request reads from the store.

use super::*;
use crate::storage::conformance_pages::{
    filter, filter_sets, pages_match_the_reference, reference, sort,
};
use crate::storage::embedded::EmbeddedStorage;
use crate::storage::{Chunk, StorageResult, Write};
use async_trait::async_trait;
use kinto_proto::query::Op;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const P: &str = "/buckets/b/collections/c";

/// A store that counts the rows it hands out, and refuses whole-list reads.
pub(crate) struct Counting {
    pub(crate) inner: Arc<EmbeddedStorage>,
    pub(crate) rows: AtomicUsize,
    /// The most rows one call handed out.
    pub(crate) largest: AtomicUsize,
}

#[async_trait]
impl Storage for Counting {
    async fn get(&self, p: &str, r: &str, id: &str) -> StorageResult<Option<StoredObject>> {
        self.inner.get(p, r, id).await
    }
    async fn list(
        &self,
        _: &str,
        _: &str,
        _: Option<u64>,
        _: bool,
    ) -> StorageResult<Vec<StoredObject>> {
        panic!("a list request read the whole list")
    }
    async fn scan(&self, range: &Range<'_>) -> StorageResult<Chunk> {
        let chunk = self.inner.scan(range).await?;
        self.rows.fetch_add(chunk.rows.len(), SeqCst);
        self.largest.fetch_max(chunk.rows.len(), SeqCst);
        Ok(chunk)
    }
    async fn print_page(
        &self,
        range: &Range<'_>,
        page: usize,
        after: &crate::storage::After<'_>,
    ) -> StorageResult<Option<PrintedPage>> {
        let printed = self.inner.print_page(range, page, after).await?;
        if let Some(p) = &printed {
            self.rows.fetch_add(p.read, SeqCst);
            self.largest.fetch_max(p.read, SeqCst);
        }
        Ok(printed)
    }
    async fn count(&self, p: &str, r: &str) -> StorageResult<u64> {
        self.inner.count(p, r).await
    }
    async fn granted(&self, p: &str) -> StorageResult<Vec<crate::storage::Grant>> {
        self.inner.granted(p).await
    }
    async fn timestamp(&self, p: &str, r: &str) -> StorageResult<Option<u64>> {
        self.inner.timestamp(p, r).await
    }
    async fn groups_of(&self, p: &[String]) -> StorageResult<Vec<String>> {
        self.inner.groups_of(p).await
    }
    async fn commit(&self, w: Vec<Write>) -> StorageResult<()> {
        self.inner.commit(w).await
    }
    async fn flush(&self) -> StorageResult<()> {
        self.inner.flush().await
    }
    async fn health(&self) -> StorageResult<()> {
        self.inner.health().await
    }
}

fn row(i: u64, ts: u64) -> StoredObject {
    let mut data = serde_json::Map::new();
    data.insert("n".into(), json!(i % 7));
    if !i.is_multiple_of(5) {
        data.insert("title".into(), json!(format!("t{}", (i * 13) % 17)));
    }
    StoredObject {
        id: format!("r{i:04}"),
        last_modified: ts,
        deleted: false,
        data,
        permissions: Default::default(),
    }
}

/// `rows` rows whose id and timestamp orders differ, a few tombstones.
pub(crate) async fn store(rows: u64) -> (tempfile::TempDir, Counting) {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner = EmbeddedStorage::open(dir.path(), Duration::ZERO, 1 << 22, 1 << 22).expect("open");
    let put = |o: StoredObject| Write::Put {
        parent: P.into(),
        resource: "record",
        object: o,
        previous_last_modified: None,
    };
    let ids: Vec<u64> = (0..rows).collect();
    for part in ids.chunks(500) {
        let writes = part.iter().map(|&i| {
            let ts = 10_000 + (i * 7919) % rows;
            if i % 23 == 0 {
                put(StoredObject::tombstone(&format!("r{i:04}"), ts))
            } else {
                put(row(i, ts))
            }
        });
        inner.commit(writes.collect()).await.expect("commit");
    }
    let counting = Counting {
        inner,
        rows: AtomicUsize::new(0),
        largest: AtomicUsize::new(0),
    };
    (dir, counting)
}

/// A walk of the test list.
fn walk(s: &Counting, with_tombstones: bool, count: bool, must_see: bool) -> Walk<'_> {
    Walk {
        storage: s,
        parent: P,
        resource: "record",
        with_tombstones,
        count,
        must_see,
        lean: true,
        acl: true,
    }
}

/// The page `q` selects of the whole test list.
async fn page(s: &Counting, q: &ListQuery) -> Selected {
    let all = walk(s, false, false, false);
    select(all, q, |_| true, &Budget::default())
        .await
        .expect("selected")
}

#[tokio::test]
async fn every_sort_filter_and_page_size_gives_the_reference_pages() {
    let (_dir, s) = store(400).await;
    let filters = filter_sets(10_300, (10_100, 10_200), 10_050);
    let limits = [None, Some(1), Some(7), Some(100)];
    let all = s.inner.list(P, "record", None, true).await.expect("list");
    pages_match_the_reference(&s, (P, &all), &filters, &limits).await;
}

#[tokio::test]
async fn counts_live_matching_rows_when_asked() {
    let (_dir, s) = store(300).await;
    let all = s.inner.list(P, "record", None, true).await.expect("list");
    let q = ListQuery {
        filters: vec![filter("n", Op::Eq, json!(2))],
        sort: sort(&[]),
        limit: Some(5),
        ..Default::default()
    };
    let walk = walk(&s, true, true, false);
    let page = select(walk, &q, |_| true, &Budget::default())
        .await
        .expect("selected");
    let live = all
        .iter()
        .filter(|o| !o.deleted && o.data.get("n") == Some(&json!(2)))
        .count();
    assert_eq!(page.total, live as u64);
    assert_eq!(page.rows.len(), 5);
    assert!(page.has_more);
}

/// One request's reads are bounded by its page, wherever the page lies.
#[tokio::test]
async fn a_page_reads_about_a_page_of_a_large_list() {
    let (_dir, s) = store(5000).await;
    let mut q = ListQuery {
        sort: sort(&[]),
        limit: Some(10),
        ..Default::default()
    };
    let first = page(&s, &q).await;
    assert_eq!(first.rows.len(), 10);
    // A chunk of the index may hold tombstones (one row in 23 here): the
    // next chunk, twice the first, then completes the page. A page's worth,
    // of a list of thousands.
    assert!(
        s.rows.load(SeqCst) <= 3 * 12,
        "read {}",
        s.rows.load(SeqCst)
    );
    // Deep in the list, through a token: a seek, not a walk from the start.
    q.after = Some(
        json!({"last_modified": 12_000, "id": "x"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    s.rows.store(0, SeqCst);
    let deep = page(&s, &q).await;
    assert_eq!(deep.rows.len(), 10);
    assert!(deep.rows.iter().all(|r| r.object.last_modified < 12_000));
    // The row at the token's own position is read and passed over: the
    // next chunk (twice the first) then completes the page.
    assert!(
        s.rows.load(SeqCst) <= 3 * 12,
        "read {}",
        s.rows.load(SeqCst)
    );
    // A deep page of a hundred, resumed from the previous page's last row,
    // reads about a hundred rows (not a second chunk as large as the first).
    let mut q = ListQuery {
        sort: sort(&[]),
        limit: Some(100),
        ..Default::default()
    };
    let first = page(&s, &q).await;
    let last = first
        .rows
        .last()
        .map(|r| r.view().into_owned())
        .expect("a row");
    q.after = Some(query::keyset_of(&last, &q.sort));
    s.rows.store(0, SeqCst);
    let next = page(&s, &q).await;
    assert_eq!(next.rows.len(), 100);
    assert!(s.rows.load(SeqCst) <= 115, "read {}", s.rows.load(SeqCst));
    // `_since` on the default order stops at the bound.
    s.rows.store(0, SeqCst);
    let q = ListQuery {
        filters: vec![filter("last_modified", Op::Gt, json!(14_990))],
        sort: sort(&[]),
        limit: Some(100),
        ..Default::default()
    };
    let since = page(&s, &q).await;
    assert!(since.rows.len() <= 9 && !since.has_more);
    assert!(s.rows.load(SeqCst) <= 20, "read {}", s.rows.load(SeqCst));
    // A filter two rows in seven match: the chunk after the first asks for
    // what the page lacks at the rate the first matched (about 40 rows for
    // 11), not twice the first chunk, then twice that (12 + 24 + 48).
    s.rows.store(0, SeqCst);
    let q = ListQuery {
        filters: vec![filter("n", Op::Lt, json!(2))],
        sort: sort(&[]),
        limit: Some(10),
        ..Default::default()
    };
    let filtered = page(&s, &q).await;
    assert_eq!(filtered.rows.len(), 10);
    assert!(s.rows.load(SeqCst) <= 60, "read {}", s.rows.load(SeqCst));
}

#[tokio::test]
async fn stops_with_a_503_once_the_budget_is_spent() {
    let (_dir, s) = store(600).await;
    let q = ListQuery {
        sort: sort(&[("title", false)]),
        limit: Some(5),
        ..Default::default()
    };
    let walk = walk(&s, false, false, false);
    let spent = Budget::lasting(Duration::ZERO);
    let err = select(walk, &q, |_| true, &spent)
        .await
        .err()
        .expect("refused");
    assert_eq!(err.kind.spec().http_status, 503);
}

#[tokio::test]
async fn tells_nothing_shared_from_nothing_in_range() {
    let (_dir, s) = store(200).await;
    let shared = |o: &StoredObject| o.id.as_str() < "r0010" && !o.deleted;
    // A range where none of the shared rows lie: still "something shared".
    let q = ListQuery {
        filters: vec![filter("last_modified", Op::Gt, json!(10_198))],
        sort: sort(&[]),
        limit: Some(5),
        ..Default::default()
    };
    let page = select(walk(&s, false, false, true), &q, shared, &Budget::default())
        .await
        .expect("selected");
    assert!(page.rows.is_empty());
    assert!(page.visible > 0);
    let none = select(
        walk(&s, false, false, true),
        &q,
        |_| false,
        &Budget::default(),
    )
    .await
    .expect("selected");
    assert_eq!(none.visible, 0);
    let all = ListQuery {
        sort: sort(&[]),
        ..Default::default()
    };
    let page = select(
        walk(&s, false, false, false),
        &all,
        shared,
        &Budget::default(),
    )
    .await
    .expect("selected");
    assert_eq!(page.visible, page.rows.len());
    assert!(page.visible > 0 && page.visible < 10);
}

/// A filter or sort finds in a row's view what it finds in the whole row,
/// dotted keys and nested paths alike.
#[test]
fn a_view_holds_what_the_query_fields_reach() {
    let data = json!({"a.b": 1, "a": {"b": {"c": 2}}, "x": [1], "y": "n", "id": "no"});
    let mut o = row(1, 5);
    o.data = data.as_object().cloned().unwrap_or_default();
    let names = ["a.b", "a.b.c", "x", "z", "id", "last_modified", "y.q"];
    let whole = o.to_json();
    // Copied, or moved out of a row the store printed: the same view.
    let mut taken = o.clone();
    for v in [view(&mut o, &names, false), view(&mut taken, &names, true)] {
        for name in names {
            assert_eq!(
                query::lookup(&v, name),
                query::lookup(&whole, name),
                "{name}"
            );
        }
        assert!(v.get("y").is_some() && v.as_object().is_some_and(|m| m.len() == 6));
    }
    assert_eq!(o.to_json(), whole, "a copied view leaves the row whole");
    let mut tomb = StoredObject::tombstone("t", 9);
    assert_eq!(view(&mut tomb, &names, true), tomb.to_json());
}

/// A sort the store's orders do not serve walks the whole list, yet holds
/// about a page of it at a time, never the list: the walk of a collection
/// larger than the memory one request may use keeps only the best rows.
#[tokio::test]
async fn a_walk_of_the_whole_list_holds_a_page_not_the_list() {
    let (_dir, s) = store(3000).await;
    let all = s.inner.list(P, "record", None, false).await.expect("list");
    for (sort, filters) in [
        (sort(&[("title", false)]), vec![]),
        (sort(&[("n", true)]), vec![filter("n", Op::Not, json!(1))]),
        (
            sort(&[("title", true)]),
            vec![filter("title", Op::Eq, json!("t3"))],
        ),
    ] {
        let q = ListQuery {
            filters,
            sort,
            limit: Some(10),
            ..Default::default()
        };
        s.rows.store(0, SeqCst);
        let got = page(&s, &q).await;
        // Every live row was read, in chunks of the store...
        assert_eq!(s.rows.load(SeqCst), all.len());
        // ...and at most twice the page (plus the row that shows more) held,
        // next to one chunk of the store, never the list.
        assert!(got.held <= 2 * 11, "held {} of {}", got.held, all.len());
        assert!(s.largest.load(SeqCst) <= MAX_CHUNK && MAX_CHUNK < all.len());
        let expected = reference(&all, &q, false);
        let ids: Vec<String> = got.rows.iter().map(|r| r.object.id.clone()).collect();
        assert_eq!(ids, expected[..ids.len()], "{q:?}");
        assert_eq!(ids.len(), expected.len().min(10));
    }
}

/// A walk of the test list by a caller who sees every row, whose pages are
/// only printed.
fn printing(s: &Counting, with_tombstones: bool) -> Walk<'_> {
    Walk {
        acl: false,
        ..walk(s, with_tombstones, false, false)
    }
}

/// The JSON array of a walked page's rows, as the shard prints it.
fn printed_json(page: &Selected) -> Vec<u8> {
    let rows = page.printed_rows().map(|(o, printed)| match printed {
        Some(bytes) => bytes.to_vec(),
        None => o.print_json(),
    });
    [
        b"[".to_vec(),
        rows.collect::<Vec<_>>().join(&b","[..]),
        b"]".to_vec(),
    ]
    .concat()
}

/// A page that is only printed (a caller who sees every row, a
/// `last_modified` order, at most `last_modified` bounds) is printed by the
/// store as it walks, reading about a page: the same bytes, and the same
/// "more follow", as the walk of rows, on the first page and through tokens.
#[tokio::test]
async fn a_page_only_printed_is_the_walks_page_printed_by_the_store() {
    let (_dir, s) = store(2000).await;
    let since = |v: u64| vec![filter("last_modified", Op::Gt, json!(v))];
    let before = |v: u64| vec![filter("last_modified", Op::Lt, json!(v))];
    let asked = [
        (vec![], sort(&[]), 10, false),
        (vec![], sort(&[]), 1000, false),
        (vec![], sort(&[("last_modified", false)]), 7, false),
        (since(11_990), sort(&[]), 10, true),
        (since(11_990), sort(&[("last_modified", false)]), 3, true),
        (before(10_500), sort(&[]), 100, false),
        (
            vec![
                filter("last_modified", Op::Min, json!(10_100)),
                filter("last_modified", Op::Max, json!(10_160)),
            ],
            sort(&[("last_modified", true)]),
            25,
            true,
        ),
    ];
    for (filters, sort, limit, tombstones) in asked {
        let mut q = ListQuery {
            filters,
            sort,
            limit: Some(limit),
            ..Default::default()
        };
        for _ in 0..3 {
            s.rows.store(0, SeqCst);
            let budget = Budget::default();
            let fast = select(printing(&s, tombstones), &q, |_| true, &budget);
            let fast = fast.await.expect("selected");
            let read = s.rows.load(SeqCst);
            let printed = fast
                .printed
                .as_ref()
                .unwrap_or_else(|| panic!("not printed by the store: {q:?}"));
            assert!(read <= 2 * limit as usize + 2 + 32, "read {read}");
            // About a page: one row in 23 is a tombstone.
            assert!(read <= limit as usize * 12 / 10 + 4, "read {read}");
            // `acl`: the caller may see only some rows, so rows are walked.
            let walked = select(walk(&s, tombstones, false, false), &q, |_| true, &budget);
            let walked = walked.await.expect("selected");
            assert!(walked.printed.is_none());
            assert_eq!(
                String::from_utf8_lossy(&printed.json),
                String::from_utf8_lossy(&printed_json(&walked)),
                "{q:?}"
            );
            assert_eq!(fast.has_more, walked.has_more, "{q:?}");
            let Some(last) = walked.rows.last().filter(|_| walked.has_more) else {
                break;
            };
            assert_eq!(
                printed.json.get(printed.last.clone()),
                Some(&printed_json_row(last)[..])
            );
            q.after = Some(query::keyset_of(&last.view(), &q.sort));
        }
    }
}

fn printed_json_row(row: &Row) -> Vec<u8> {
    row.printed
        .clone()
        .unwrap_or_else(|| row.object.print_json())
}

/// Rows tied on `last_modified`, or more tombstones in a row than a page's
/// walk reads, leave the page to the walk of rows, which orders ties by the
/// sort's next key and bounds each of its chunks.
#[tokio::test]
async fn ties_and_runs_of_tombstones_leave_the_page_to_the_walk() {
    let (_dir, s) = store(10).await;
    let put = |parent: &str, o: StoredObject| Write::Put {
        parent: parent.into(),
        resource: "record",
        object: o,
        previous_last_modified: None,
    };
    let tied = "/buckets/b/collections/tied";
    let writes = (0..5).map(|i| put(tied, row(i, 50_000 + i / 2)));
    s.inner.commit(writes.collect()).await.expect("commit");
    let dead = "/buckets/b/collections/dead";
    let mut writes: Vec<Write> = (0..3).map(|i| put(dead, row(i, 60_000 + i))).collect();
    writes.extend((3..120).map(|i| {
        put(
            dead,
            StoredObject::tombstone(&format!("r{i:04}"), 60_000 + i),
        )
    }));
    s.inner.commit(writes).await.expect("commit");
    let q = ListQuery {
        sort: sort(&[]),
        limit: Some(10),
        ..Default::default()
    };
    for (parent, expected) in [(tied, 5), (dead, 3)] {
        let w = Walk {
            parent,
            ..printing(&s, false)
        };
        let page = select(w, &q, |_| true, &Budget::default())
            .await
            .expect("selected");
        assert!(page.printed.is_none(), "{parent}");
        assert_eq!(page.rows.len(), expected, "{parent}");
    }
    // The ties in the sort's order: `id` breaks them.
    let w = Walk {
        parent: tied,
        ..printing(&s, false)
    };
    let page = select(w, &q, |_| true, &Budget::default())
        .await
        .expect("selected");
    let ids: Vec<&str> = page.rows.iter().map(|r| r.object.id.as_str()).collect();
    assert_eq!(ids, ["r0004", "r0002", "r0003", "r0000", "r0001"]);
}
