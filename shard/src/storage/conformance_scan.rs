//! Conformance checks of [`Storage::scan`]: every order, from any cursor, in
//! chunks of any size, with and without tombstones, on a list large enough
//! that no chunk holds it, against the same list read whole.

use super::scan::from_whole_list;
use super::{Cursor, Order, Range, Storage, StoredObject, Write};
use serde_json::json;

const L: &str = "/buckets/b/collections/scan";
const ROWS: u64 = 300;

pub(super) fn row(i: u64, ts: u64) -> StoredObject {
    let mut data = serde_json::Map::new();
    data.insert("n".into(), json!(i % 7));
    StoredObject {
        id: format!("r{i:03}"),
        last_modified: ts,
        deleted: false,
        data,
        permissions: Default::default(),
    }
}

fn put(o: StoredObject, prev: Option<u64>) -> Write {
    Write::Put {
        parent: L.into(),
        resource: "record",
        object: o,
        previous_last_modified: prev,
    }
}

/// A list whose id order and timestamp order differ, with updated rows
/// (their old index entries gone) and tombstones, next to a list whose
/// parent extends its own.
async fn fill(s: &dyn Storage) {
    // A permutation of 0..ROWS: ids and timestamps in unrelated orders.
    let ts = |i: u64| 1000 + (i * 7919) % ROWS;
    for chunk in 0..ROWS / 50 {
        let writes = (chunk * 50..chunk * 50 + 50).map(|i| put(row(i, ts(i)), None));
        s.commit(writes.collect()).await.expect("commit");
    }
    let mut changes = Vec::new();
    for i in (0..ROWS).step_by(9) {
        changes.push(put(row(i, 5000 + i), Some(ts(i))));
    }
    for i in (4..ROWS).step_by(11).filter(|i| i % 9 != 0) {
        changes.push(put(
            StoredObject::tombstone(&format!("r{i:03}"), 6000 + i),
            Some(ts(i)),
        ));
    }
    s.commit(changes).await.expect("commit");
    let next_door = Write::Put {
        parent: format!("{L}2"),
        resource: "record",
        object: row(1, 9000),
        previous_last_modified: None,
    };
    s.commit(vec![next_door]).await.expect("commit");
}

/// Every row from `from` on, chunk by chunk, checking each chunk's bound.
/// A walk of `parent`'s records (or root buckets) in `order`, from the start,
/// tombstones included, every row in one call.
fn whole(parent: &str, order: Order) -> Range<'_> {
    Range {
        parent,
        resource: if parent.is_empty() {
            "bucket"
        } else {
            "record"
        },
        order,
        from: None,
        stop: None,
        limit: usize::MAX,
        tombstones: true,
        lean: false,
        acl: true,
        fields: &[],
    }
}

/// A lean chunk's rows, if printed, are each printed as the whole object
/// of `all` with the same id, and keep only the fields asked.
fn check_printed(chunk: &super::Chunk, range: &Range<'_>, all: &[StoredObject]) {
    if chunk.printed.is_empty() {
        return;
    }
    assert_eq!(chunk.printed.len(), chunk.rows.len());
    for (o, printed) in chunk.rows.iter().zip(&chunk.printed) {
        let whole = all
            .iter()
            .find(|w| w.id == o.id)
            .expect("a row of the list");
        assert_eq!(printed, &whole.print_json(), "{}", o.id);
        assert_eq!(o.permissions, whole.permissions);
        let mut kept = whole.data.clone();
        kept.retain(|k, _| range.fields.contains(&k.as_str()));
        assert_eq!(o.data, kept, "{}", o.id);
    }
}

async fn walk(
    s: &dyn Storage,
    range: &Range<'_>,
    all: &[StoredObject],
) -> Vec<(String, u64, bool)> {
    let mut out = Vec::new();
    let mut range = range.clone();
    let (order, n) = (range.order, range.limit);
    for _ in 0..10 * ROWS {
        let chunk = s.scan(&range).await.expect("scan");
        if range.lean {
            check_printed(&chunk, &range, all);
        } else {
            assert!(chunk.printed.is_empty());
        }
        assert!(
            chunk.rows.len() <= n,
            "{order:?}: {} rows > {n}",
            chunk.rows.len()
        );
        out.extend(
            chunk
                .rows
                .iter()
                .map(|o| (o.id.clone(), o.last_modified, o.deleted)),
        );
        match chunk.next {
            Some(next) => range.from = Some(next),
            None => return out,
        }
    }
    panic!("{order:?}: the walk does not end");
}

pub async fn scans_in_every_order(s: &dyn Storage) {
    fill(s).await;
    let all = s.list(L, "record", None, true).await.expect("list");
    assert_eq!(all.len() as u64, ROWS);
    let orders = [
        Order::IdAsc,
        Order::IdDesc,
        Order::ModifiedAsc,
        Order::ModifiedDesc,
    ];
    let starts = [
        None,
        Some(Cursor {
            last_modified: 1150,
            id: String::new(),
        }),
        Some(Cursor {
            last_modified: 0,
            id: "r150".into(),
        }),
        Some(Cursor {
            last_modified: 5000 + 99,
            id: "r099".into(),
        }),
    ];
    for order in orders {
        for tombstones in [false, true] {
            for (from, stop) in starts
                .iter()
                .flat_map(|f| [(f, None), (f, Some(1100)), (f, Some(5100))])
            {
                let mut range = Range {
                    from: from.clone(),
                    stop,
                    tombstones,
                    ..whole(L, order)
                };
                let rows: Vec<StoredObject> = all
                    .iter()
                    .filter(|o| tombstones || !o.deleted)
                    .cloned()
                    .collect();
                let expected: Vec<_> = from_whole_list(rows, &range)
                    .expect("reference")
                    .rows
                    .into_iter()
                    .map(|o| (o.id, o.last_modified, o.deleted))
                    .collect();
                let runs = [
                    (1, false, &[][..]),
                    (7, true, &[][..]),
                    (64, false, &[][..]),
                ];
                for (n, lean, fields) in runs.into_iter().chain([(1000, true, &["n", "x"][..])]) {
                    range.limit = n;
                    range.lean = lean;
                    range.fields = fields;
                    let got = walk(s, &range, &all).await;
                    assert_eq!(got, expected, "{range:?} by {n}, tombstones {tombstones}");
                }
            }
        }
    }
    // A first chunk reads about what it is asked for, not the list (the
    // newest rows are tombstones: a backend may skip them in this call or
    // leave the rest to the next).
    let mut newest = Range {
        limit: 3,
        ..whole(L, Order::ModifiedDesc)
    };
    let first = s.scan(&newest).await.expect("scan");
    assert_eq!(first.rows.len(), 3);
    assert!(first.next.is_some());
    assert!(first.rows.iter().all(|o| o.last_modified >= 6000));
    newest.tombstones = false;
    let live = s.scan(&newest).await.expect("scan");
    assert!(live.rows.len() <= 3 && live.next.is_some());
    assert!(live
        .rows
        .iter()
        .all(|o| !o.deleted && o.last_modified >= 5000));
    // A walk ends at its stop, not a chunk past it.
    let recent = Range {
        stop: Some(6290),
        limit: 100,
        ..whole(L, Order::ModifiedDesc)
    };
    let since = s.scan(&recent).await.expect("scan");
    assert!(since.next.is_none());
    assert!(since.rows.iter().all(|o| o.last_modified > 6290));
}

/// The root list (buckets) spans many partitions on a split backend: a
/// walk merges them in order.
pub async fn scans_the_root_list(s: &dyn Storage) {
    let writes = (0..40u64).map(|i| Write::Put {
        parent: String::new(),
        resource: "bucket",
        object: row(i, 100 + (i * 17) % 40),
        previous_last_modified: None,
    });
    s.commit(writes.collect()).await.expect("commit");
    let all = s.list("", "bucket", None, true).await.expect("list");
    assert_eq!(all.len(), 40);
    for order in [
        Order::IdAsc,
        Order::IdDesc,
        Order::ModifiedAsc,
        Order::ModifiedDesc,
    ] {
        let mut range = whole("", order);
        let expected: Vec<String> = from_whole_list(all.clone(), &range)
            .expect("reference")
            .rows
            .into_iter()
            .map(|o| o.id)
            .collect();
        let mut got = Vec::new();
        range.limit = 6;
        range.tombstones = false;
        loop {
            let chunk = s.scan(&range).await.expect("scan");
            assert!(chunk.rows.len() <= 6);
            got.extend(chunk.rows.into_iter().map(|o| o.id));
            match chunk.next {
                Some(next) => range.from = Some(next),
                None => break,
            }
        }
        assert_eq!(got, expected, "{order:?}");
    }
}
