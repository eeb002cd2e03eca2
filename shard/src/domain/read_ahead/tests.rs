//! A walk answered from pages read ahead is the walk without them, page for
//! page; it reads no more rows; a write between two pages is seen.

use super::super::budget::Budget;
use super::super::select::tests::{store, Counting};
use super::super::{Shard, ShardSettings};
use crate::storage::{Acl, Storage, StoredObject, Write};
use kinto_proto::pb;
use kinto_proto::query::{self, SortKey};
use serde_json::{Map, Value};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROWS: u64 = 2000;
const LIMIT: u64 = 100;

fn caller() -> pb::Caller {
    pb::Caller {
        user_id: "basicauth:alice".into(),
        principals: vec![
            "system.Everyone".into(),
            "system.Authenticated".into(),
            "basicauth:alice".into(),
        ],
    }
}

fn target(id: &str) -> pb::Target {
    pb::Target {
        kind: pb::Kind::Record as i32,
        bucket_id: "b".into(),
        collection_id: "c".into(),
        object_id: id.into(),
    }
}

/// Kinto's default order, as the gateway sends it.
fn sort() -> Vec<SortKey> {
    vec![
        SortKey {
            field: "last_modified".into(),
            descending: true,
        },
        SortKey {
            field: "id".into(),
            descending: false,
        },
    ]
}

/// `GET` of a page of `LIMIT`, after the keyset `after` (a `_token`'s).
fn get(after: Option<&Map<String, Value>>) -> pb::Operation {
    pb::Operation {
        target: Some(target("")),
        method: pb::Method::Get as i32,
        caller: Some(caller()),
        query: Some(pb::ListQuery {
            sort: (sort().into_iter())
                .map(|k| pb::SortKey {
                    field: k.field,
                    descending: k.descending,
                })
                .collect(),
            limit: LIMIT,
            after_json: after
                .map(|a| serde_json::to_vec(a).expect("keyset"))
                .unwrap_or_default(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn delete(id: &str) -> pb::Operation {
    pb::Operation {
        target: Some(target(id)),
        method: pb::Method::Delete as i32,
        caller: Some(caller()),
        ..Default::default()
    }
}

/// The test list (`store`), in a bucket and collection alice may write.
async fn list() -> (tempfile::TempDir, Arc<Counting>) {
    let (dir, counting) = store(ROWS).await;
    let mut permissions = Acl::new();
    permissions.insert("write".into(), vec!["basicauth:alice".into()]);
    let owned = |id: &str| StoredObject {
        id: id.into(),
        last_modified: 1,
        deleted: false,
        data: Default::default(),
        permissions: permissions.clone(),
    };
    let put = |parent: &str, resource, object| Write::Put {
        parent: parent.into(),
        resource,
        object,
        previous_last_modified: None,
    };
    (counting.inner)
        .commit(vec![
            put("", "bucket", owned("b")),
            put("/buckets/b", "collection", owned("c")),
        ])
        .await
        .expect("commit");
    (dir, Arc::new(counting))
}

fn shard(storage: Arc<Counting>, read_ahead: usize) -> Shard {
    let storage: Arc<dyn Storage> = storage;
    Shard::new(storage, ShardSettings::only_shard(read_ahead))
}

fn budget() -> Budget {
    Budget::lasting(Duration::from_secs(30))
}

/// Waits until the shard keeps a page read ahead.
async fn kept(shard: &Shard) {
    let until = Instant::now() + Duration::from_secs(10);
    while shard.read_ahead.kept() == 0 {
        assert!(Instant::now() < until, "no page was read ahead");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One page: its rows as printed, and the keyset of the next.
async fn page(
    shard: &Shard,
    after: Option<&Map<String, Value>>,
) -> (Vec<u8>, Option<Map<String, Value>>) {
    let out = shard.execute(get(after), budget()).await.expect("get");
    assert_eq!(out.status, 200);
    let next = (out.has_more).then(|| {
        let last: Value =
            serde_json::from_slice(out.last_json.as_deref().expect("last row")).expect("json");
        query::keyset_of(&last, &sort())
    });
    (out.data_json, next)
}

/// Every page of the list, waiting after each for the next to be read
/// ahead when `wait`; and the rows the store read.
async fn walk(shard: &Shard, counting: &Counting, wait: bool) -> (Vec<Vec<u8>>, usize) {
    counting.rows.store(0, SeqCst);
    let (mut pages, mut after) = (Vec::new(), None);
    loop {
        let (rows, next) = page(shard, after.as_ref()).await;
        pages.push(rows);
        let Some(next) = next else { break };
        // The first page has no token: its walker is not known yet.
        if wait && after.is_some() {
            kept(shard).await;
        }
        after = Some(next);
    }
    (pages, counting.rows.load(SeqCst))
}

#[tokio::test]
async fn a_walk_is_answered_from_the_pages_read_ahead_and_reads_no_more() {
    let (_dir, counting) = list().await;
    let plain = shard(Arc::clone(&counting), 0);
    let ahead = shard(Arc::clone(&counting), 2);
    let (expected, read_plain) = walk(&plain, &counting, false).await;
    let (pages, read_ahead) = walk(&ahead, &counting, true).await;
    assert!(expected.len() > 10, "{} pages", expected.len());
    assert_eq!(pages, expected, "pages read ahead differ");
    // Every page but the first two (the first has no token, the second
    // starts the read-ahead) came from one read ahead.
    assert_eq!(ahead.read_ahead.hits.load(Relaxed), expected.len() - 2);
    assert_eq!(plain.read_ahead.hits.load(Relaxed), 0);
    assert_eq!(read_ahead, read_plain, "read-ahead read other rows");
}

#[tokio::test]
async fn a_write_between_two_pages_is_seen_by_the_next() {
    let (_dir, counting) = list().await;
    let plain = shard(Arc::clone(&counting), 0);
    let ahead = shard(Arc::clone(&counting), 2);
    let (_, second) = page(&ahead, None).await;
    let (_, third) = page(&ahead, second.as_ref()).await;
    let third = third.expect("a third page");
    kept(&ahead).await;
    // The third page's first row, deleted through the shard that read it
    // ahead, as every write to its buckets goes.
    let (before, _) = page(&plain, Some(&third)).await;
    let rows: Vec<Value> = serde_json::from_slice(&before).expect("rows");
    let gone = rows[0]["id"].as_str().expect("id").to_owned();
    let out = ahead
        .execute(delete(&gone), budget())
        .await
        .expect("delete");
    assert_eq!(out.status, 200);
    let (after, _) = page(&ahead, Some(&third)).await;
    assert_eq!(
        ahead.read_ahead.hits.load(Relaxed),
        0,
        "a stale page was served"
    );
    assert_ne!(after, before);
    let (expected, _) = page(&plain, Some(&third)).await;
    assert_eq!(after, expected);
    assert!(
        !String::from_utf8_lossy(&after).contains(&gone),
        "{gone} still listed"
    );
}

#[tokio::test]
async fn no_page_is_read_ahead_when_it_is_turned_off() {
    let (_dir, counting) = list().await;
    let off = shard(Arc::clone(&counting), 0);
    let (_, second) = page(&off, None).await;
    let (_, third) = page(&off, second.as_ref()).await;
    assert!(third.is_some());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(off.read_ahead.kept(), 0);
}
