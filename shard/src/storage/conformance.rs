//! The storage conformance suite: one set of checks every backend must
//! pass. Each backend's tests call [`run_all`] on a fresh, empty store.

use super::{Acl, Storage, StoredObject, Write};
use serde_json::json;

fn obj(id: &str, ts: u64) -> StoredObject {
    let mut data = serde_json::Map::new();
    data.insert("title".into(), json!(id));
    let mut permissions = Acl::new();
    permissions.insert("write".into(), vec!["alice".into()]);
    StoredObject {
        id: id.into(),
        last_modified: ts,
        deleted: false,
        data,
        permissions,
    }
}

pub(super) fn put(
    parent: &str,
    resource: &'static str,
    o: StoredObject,
    prev: Option<u64>,
) -> Write {
    Write::Put {
        parent: parent.into(),
        resource,
        object: o,
        previous_last_modified: prev,
    }
}

const C: &str = "/buckets/b/collections/c";

async fn objects_round_trip(s: &dyn Storage) {
    assert_eq!(s.get(C, "record", "r1").await.ok().flatten(), None);
    s.commit(vec![put(C, "record", obj("r1", 10), None)])
        .await
        .expect("commit");
    let got = s
        .get(C, "record", "r1")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got, obj("r1", 10));
    // Same id under another parent or resource is another object.
    assert!(s
        .get("/buckets/b", "record", "r1")
        .await
        .expect("get")
        .is_none());
    assert!(s.get(C, "group", "r1").await.expect("get").is_none());
}

async fn since_walks_the_index(s: &dyn Storage) {
    let p = "/buckets/b/collections/since";
    s.commit(vec![
        put(p, "record", obj("a", 100), None),
        put(p, "record", obj("b", 200), None),
        put(p, "record", obj("c", 300), None),
    ])
    .await
    .expect("commit");
    // Update b: its old index entry must go.
    s.commit(vec![put(p, "record", obj("b", 400), Some(200))])
        .await
        .expect("commit");
    let mut ids: Vec<_> = s
        .list(p, "record", Some(250), true)
        .await
        .expect("list")
        .into_iter()
        .map(|o| (o.id, o.last_modified))
        .collect();
    ids.sort();
    assert_eq!(ids, vec![("b".into(), 400), ("c".into(), 300)]);
    assert_eq!(
        s.list(p, "record", None, false).await.expect("list").len(),
        3
    );
    assert!(s
        .list(p, "record", Some(400), true)
        .await
        .expect("list")
        .is_empty());
}

/// `_since` on a list far larger than its changes, whose changed ids lie
/// at both ends of the id order, next to a list whose ids share its prefix.
async fn since_on_a_large_list(s: &dyn Storage) {
    let p = "/buckets/b/collections/large";
    let id = |i: u64| format!("r{i:03}");
    for chunk in 0..10 {
        let writes =
            (chunk * 20..chunk * 20 + 20).map(|i| put(p, "record", obj(&id(i), 1000 + i), None));
        s.commit(writes.collect()).await.expect("commit");
    }
    s.commit(vec![put(
        "/buckets/b/collections/large2",
        "record",
        obj("r000", 5000),
        None,
    )])
    .await
    .expect("commit");
    let mut changes = vec![
        put(p, "record", obj(&id(3), 2000), Some(1003)),
        put(p, "record", obj(&id(150), 2001), Some(1150)),
        put(p, "record", obj(&id(199), 2002), Some(1199)),
    ];
    changes.push(put(
        p,
        "record",
        StoredObject::tombstone(&id(100), 2003),
        Some(1100),
    ));
    s.commit(changes).await.expect("commit");
    let listed = |rows: Vec<StoredObject>| {
        let mut v: Vec<_> = rows
            .into_iter()
            .map(|o| (o.id, o.last_modified, o.deleted))
            .collect();
        v.sort();
        v
    };
    let since = s.list(p, "record", Some(1999), true).await.expect("list");
    assert_eq!(
        listed(since),
        vec![
            (id(3), 2000, false),
            (id(100), 2003, true),
            (id(150), 2001, false),
            (id(199), 2002, false),
        ]
    );
    let live = s.list(p, "record", Some(1999), false).await.expect("list");
    assert_eq!(live.len(), 3);
    let all = s.list(p, "record", Some(0), true).await.expect("list");
    assert_eq!(all.len(), 200);
    assert!(all.iter().all(|o| o.last_modified < 5000));
}

async fn tombstones_are_listed_only_on_request(s: &dyn Storage) {
    let p = "/buckets/b/collections/tomb";
    s.commit(vec![
        put(p, "record", obj("a", 1), None),
        put(p, "record", obj("b", 2), None),
    ])
    .await
    .expect("commit");
    s.commit(vec![put(
        p,
        "record",
        StoredObject::tombstone("a", 3),
        Some(1),
    )])
    .await
    .expect("commit");
    let live = s.list(p, "record", None, false).await.expect("list");
    assert_eq!(live.len(), 1);
    // `_since=0` is the whole list (the embedded store scans it directly).
    let all = s.list(p, "record", Some(0), true).await.expect("list");
    assert_eq!(all.len(), 2);
    let since_zero = s.list(p, "record", Some(0), false).await.expect("list");
    assert_eq!(since_zero.len(), 1);
    assert_eq!(since_zero[0].id, "b");
    assert!(all
        .iter()
        .any(|o| o.id == "a" && o.deleted && o.last_modified == 3));
    let t = s
        .get(p, "record", "a")
        .await
        .expect("get")
        .expect("tombstone kept");
    assert!(t.deleted && t.data.is_empty() && t.permissions.is_empty());
}

async fn timestamps_per_list(s: &dyn Storage) {
    assert_eq!(s.timestamp("/x", "record").await.expect("ts"), None);
    s.commit(vec![Write::Timestamp {
        parent: "/x".into(),
        resource: "record",
        value: 42,
    }])
    .await
    .expect("commit");
    assert_eq!(s.timestamp("/x", "record").await.expect("ts"), Some(42));
    assert_eq!(s.timestamp("/x", "group").await.expect("ts"), None);
}

async fn purge_tree_removes_below_only(s: &dyn Storage) {
    let b = "/buckets/p";
    let c = "/buckets/p/collections/c";
    let other = "/buckets/pp/collections/c";
    s.commit(vec![
        put(b, "collection", obj("c", 1), None),
        put(c, "record", obj("r", 2), None),
        put(other, "record", obj("r", 3), None),
        Write::Timestamp {
            parent: c.into(),
            resource: "record",
            value: 2,
        },
    ])
    .await
    .expect("commit");
    s.commit(vec![Write::PurgeTree { parent: b.into() }])
        .await
        .expect("purge");
    assert!(s.get(b, "collection", "c").await.expect("get").is_none());
    assert!(s.get(c, "record", "r").await.expect("get").is_none());
    assert!(s
        .list(c, "record", Some(0), true)
        .await
        .expect("list")
        .is_empty());
    assert_eq!(s.timestamp(c, "record").await.expect("ts"), None);
    // A bucket whose id extends the purged one is untouched.
    assert!(s.get(other, "record", "r").await.expect("get").is_some());
}

async fn commits_are_atomic_units(s: &dyn Storage) {
    let p = "/buckets/b/collections/atomic";
    s.commit(vec![
        put(p, "record", obj("x", 5), None),
        Write::Timestamp {
            parent: p.into(),
            resource: "record",
            value: 5,
        },
    ])
    .await
    .expect("commit");
    assert!(s.get(p, "record", "x").await.expect("get").is_some());
    assert_eq!(s.timestamp(p, "record").await.expect("ts"), Some(5));
}

async fn group_membership_index(s: &dyn Storage) {
    s.commit(vec![
        Write::AddMember {
            principal: "alice".into(),
            group_uri: "/buckets/b/groups/g1".into(),
        },
        Write::AddMember {
            principal: "alice".into(),
            group_uri: "/buckets/b/groups/g2".into(),
        },
        Write::AddMember {
            principal: "bob".into(),
            group_uri: "/buckets/b/groups/g1".into(),
        },
        Write::AddMember {
            principal: "alice2".into(),
            group_uri: "/buckets/b/groups/g3".into(),
        },
    ])
    .await
    .expect("commit");
    let mut g = s.groups_of(&["alice".into()]).await.expect("groups");
    g.sort();
    assert_eq!(g, vec!["/buckets/b/groups/g1", "/buckets/b/groups/g2"]);
    s.commit(vec![Write::RemoveMember {
        principal: "alice".into(),
        group_uri: "/buckets/b/groups/g1".into(),
    }])
    .await
    .expect("commit");
    assert_eq!(
        s.groups_of(&["alice".into()]).await.expect("groups"),
        vec!["/buckets/b/groups/g2"]
    );
}

async fn flush_empties_everything(s: &dyn Storage) {
    s.flush().await.expect("flush");
    assert!(s.get(C, "record", "r1").await.expect("get").is_none());
    assert!(s
        .groups_of(&["bob".into()])
        .await
        .expect("groups")
        .is_empty());
    assert_eq!(s.timestamp("/x", "record").await.expect("ts"), None);
    assert_eq!(s.count(C, "record").await.expect("count"), 0);
    assert!(s.granted("alice").await.expect("granted").is_empty());
    s.health().await.expect("healthy");
}

/// Every check, in an order where each starts from what the previous left.
pub async fn run_all(s: &dyn Storage) {
    objects_round_trip(s).await;
    since_walks_the_index(s).await;
    since_on_a_large_list(s).await;
    tombstones_are_listed_only_on_request(s).await;
    timestamps_per_list(s).await;
    purge_tree_removes_below_only(s).await;
    commits_are_atomic_units(s).await;
    group_membership_index(s).await;
    super::conformance_scan::scans_in_every_order(s).await;
    super::conformance_scan::scans_the_root_list(s).await;
    super::conformance_pages::pages_in_every_sort_and_filter(s).await;
    super::conformance_indexes::counts_follow_every_write(s).await;
    super::conformance_indexes::principal_index_follows_acls(s).await;
    flush_empties_everything(s).await;
}
