//! What a count costs: an unfiltered `HEAD` by a caller who sees the whole
//! list reads the list's counter, and no row.

use super::super::budget::Budget;
use super::super::select::tests::{store, P};
use super::super::{Shard, ShardSettings};
use crate::storage::{Acl, Storage, StoredObject, Write};
use kinto_proto::pb;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

const ROWS: u64 = 2000;

fn owned(id: &str) -> StoredObject {
    let mut permissions = Acl::new();
    permissions.insert("write".into(), vec!["basicauth:alice".into()]);
    StoredObject {
        id: id.into(),
        last_modified: 1,
        deleted: false,
        data: Default::default(),
        permissions,
    }
}

fn head(filters: Vec<pb::Filter>) -> pb::Operation {
    pb::Operation {
        target: Some(pb::Target {
            kind: pb::Kind::Record as i32,
            bucket_id: "b".into(),
            collection_id: "c".into(),
            object_id: String::new(),
        }),
        method: pb::Method::Head as i32,
        caller: Some(pb::Caller {
            user_id: "basicauth:alice".into(),
            principals: vec![
                "system.Everyone".into(),
                "system.Authenticated".into(),
                "basicauth:alice".into(),
            ],
        }),
        // As the gateway sends a list without `_sort` nor `_limit` (the page
        // is then `storage_max_fetch_size`, larger than this list).
        query: Some(pb::ListQuery {
            filters,
            sort: vec![
                pb::SortKey {
                    field: "last_modified".into(),
                    descending: true,
                },
                pb::SortKey {
                    field: "id".into(),
                    descending: false,
                },
            ],
            limit: 10_000,
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_unfiltered_head_counts_without_walking_the_list() {
    let (_dir, counting) = store(ROWS).await;
    let live = counting.inner.count(P, "record").await.expect("count");
    assert!(live > ROWS / 2, "{live}");
    let put = |parent: &str, resource, o| Write::Put {
        parent: parent.into(),
        resource,
        object: o,
        previous_last_modified: None,
    };
    counting
        .inner
        .commit(vec![
            put("", "bucket", owned("b")),
            put("/buckets/b", "collection", owned("c")),
        ])
        .await
        .expect("commit");
    let counting = Arc::new(counting);
    let storage: Arc<dyn Storage> = counting.clone();
    let shard = Shard::new(storage, ShardSettings::only_shard(0));
    let budget = || Budget::lasting(Duration::from_secs(30));
    let out = shard
        .execute(head(Vec::new()), budget())
        .await
        .expect("head");
    assert_eq!(out.total, live);
    let read = counting.rows.swap(0, SeqCst);
    assert_eq!(read, 0, "an unfiltered HEAD read {read} rows");
    assert!(!out.has_more, "Kinto sends no Next-Page with a count");
    // A filter is counted by the walk, which reads every row.
    let every = pb::Filter {
        field: "id".into(),
        op: pb::FilterOp::Not as i32,
        value_json: b"\"none\"".to_vec(),
    };
    let out = shard
        .execute(head(vec![every]), budget())
        .await
        .expect("head");
    assert_eq!(out.total, live);
    assert!(counting.rows.load(SeqCst) as u64 >= live);
}
