//! Conformance checks of the list counters and the principal index: each
//! write kind, a batch, tombstones and cascades move them exactly.

use super::{Acl, Grant, Storage, StoredObject, Write};

fn named(id: &str, ts: u64, acl: &[(&str, &[&str])]) -> StoredObject {
    let mut permissions = Acl::new();
    for (perm, who) in acl {
        permissions.insert(
            (*perm).to_owned(),
            who.iter().map(|p| (*p).to_owned()).collect(),
        );
    }
    StoredObject {
        id: id.into(),
        last_modified: ts,
        deleted: false,
        data: Default::default(),
        permissions,
    }
}

use super::conformance::put;

fn live(id: &str, ts: u64) -> StoredObject {
    named(id, ts, &[("write", &["alice"])])
}

async fn count(s: &dyn Storage, parent: &str, resource: &str) -> u64 {
    s.count(parent, resource).await.expect("count")
}

async fn commit(s: &dyn Storage, writes: Vec<Write>) {
    s.commit(writes).await.expect("commit");
}

pub async fn counts_follow_every_write(s: &dyn Storage) {
    let b = "/buckets/cnt";
    let p = "/buckets/cnt/collections/c";
    assert_eq!(count(s, p, "record").await, 0);
    commit(
        s,
        vec![
            put(b, "collection", live("c", 1), None),
            put(p, "record", live("a", 10), None),
            put(p, "record", live("b", 11), None),
            put(p, "record", live("c", 12), None),
        ],
    )
    .await;
    assert_eq!(count(s, p, "record").await, 3);
    assert_eq!(count(s, b, "collection").await, 1);
    // Lists are counted apart: another resource, a parent that extends this one.
    assert_eq!(count(s, p, "group").await, 0);
    assert_eq!(count(s, "/buckets/cnt/collections/cc", "record").await, 0);
    // An update keeps the count; a deletion lowers it once.
    commit(s, vec![put(p, "record", live("b", 20), Some(11))]).await;
    assert_eq!(count(s, p, "record").await, 3);
    commit(
        s,
        vec![put(p, "record", StoredObject::tombstone("a", 21), Some(10))],
    )
    .await;
    assert_eq!(count(s, p, "record").await, 2);
    commit(
        s,
        vec![put(p, "record", StoredObject::tombstone("a", 22), Some(21))],
    )
    .await;
    assert_eq!(count(s, p, "record").await, 2, "a tombstone replaced");
    // Recreated over its tombstone; a tombstone without a live version.
    commit(s, vec![put(p, "record", live("a", 23), Some(22))]).await;
    commit(
        s,
        vec![put(p, "record", StoredObject::tombstone("z", 24), None)],
    )
    .await;
    assert_eq!(count(s, p, "record").await, 3);
    // One commit of many writes (a /batch, a plural DELETE).
    let mut writes: Vec<Write> = (0..5)
        .map(|i| put(p, "record", live(&format!("n{i}"), 30 + i), None))
        .collect();
    writes.push(put(p, "record", StoredObject::tombstone("c", 40), Some(12)));
    writes.push(put(p, "record", StoredObject::tombstone("b", 41), Some(20)));
    commit(s, writes).await;
    assert_eq!(count(s, p, "record").await, 6);
    // A collection deletion: its tombstone and the cascade, in one commit.
    commit(
        s,
        vec![
            put(b, "collection", StoredObject::tombstone("c", 50), Some(1)),
            Write::PurgeTree { parent: p.into() },
        ],
    )
    .await;
    assert_eq!(count(s, p, "record").await, 0);
    assert_eq!(count(s, b, "collection").await, 0);
    // A list recreated after its cascade counts from zero.
    commit(
        s,
        vec![
            put(b, "collection", live("c", 60), Some(50)),
            put(p, "record", live("a", 61), None),
        ],
    )
    .await;
    assert_eq!(count(s, p, "record").await, 1);
    assert_eq!(count(s, b, "collection").await, 1);
    commit(s, vec![Write::PurgeTree { parent: b.into() }]).await;
    assert_eq!(count(s, p, "record").await, 0);
    assert_eq!(count(s, b, "collection").await, 0);
}

async fn granted(s: &dyn Storage, principal: &str) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = s
        .granted(principal)
        .await
        .expect("granted")
        .into_iter()
        .map(
            |Grant {
                 parent,
                 resource,
                 id,
             }| (parent, resource, id),
        )
        .collect();
    out.sort();
    out
}

fn at(parent: &str, resource: &str, id: &str) -> (String, String, String) {
    (parent.into(), resource.into(), id.into())
}

pub async fn principal_index_follows_acls(s: &dyn Storage) {
    let b = "/buckets/idx";
    let c = "/buckets/idx/collections/c";
    let other = "/buckets/idxx";
    let buckets = count(s, "", "bucket").await;
    commit(
        s,
        vec![
            put("", "bucket", named("idx", 1, &[("write", &["ann"])]), None),
            put(
                b,
                "collection",
                named("c", 2, &[("write", &["ann"]), ("read", &["ben", "ann"])]),
                None,
            ),
            put(c, "record", named("r", 3, &[("write", &["ben"])]), None),
            put(other, "group", named("g", 4, &[("read", &["ben"])]), None),
            // No ACL: not indexed; nor is an empty principal (Kinto keeps it).
            put(c, "record", named("plain", 5, &[("read", &[""])]), None),
            // History entries copy their object's readers: not indexed.
            put(b, "history", named("h", 5, &[("read", &["ann"])]), None),
        ],
    )
    .await;
    assert_eq!(
        granted(s, "ann").await,
        vec![at("", "bucket", "idx"), at(b, "collection", "c")]
    );
    assert_eq!(count(s, "", "bucket").await, buckets + 1);
    assert_eq!(
        granted(s, "ben").await,
        vec![
            at(b, "collection", "c"),
            at(c, "record", "r"),
            at(other, "group", "g")
        ]
    );
    // A principal is matched whole, never by prefix.
    assert!(granted(s, "an").await.is_empty());
    assert!(granted(s, "").await.is_empty());
    assert!(granted(s, "be").await.is_empty());
    // A new ACL moves only what changed.
    commit(
        s,
        vec![put(
            b,
            "collection",
            named("c", 6, &[("write", &["cat"])]),
            Some(2),
        )],
    )
    .await;
    assert_eq!(granted(s, "ann").await, vec![at("", "bucket", "idx")]);
    assert_eq!(granted(s, "cat").await, vec![at(b, "collection", "c")]);
    // A tombstone names nobody.
    commit(
        s,
        vec![put(c, "record", StoredObject::tombstone("r", 7), Some(3))],
    )
    .await;
    assert_eq!(granted(s, "ben").await, vec![at(other, "group", "g")]);
    // A cascade drops the entries of the tree, not those of a bucket whose
    // id extends it, nor the bucket's own (its tombstone does).
    commit(
        s,
        vec![put(
            c,
            "record",
            named("r2", 8, &[("read", &["dan"])]),
            None,
        )],
    )
    .await;
    assert_eq!(granted(s, "dan").await, vec![at(c, "record", "r2")]);
    commit(
        s,
        vec![
            put("", "bucket", StoredObject::tombstone("idx", 9), Some(1)),
            Write::PurgeTree { parent: b.into() },
        ],
    )
    .await;
    assert!(granted(s, "dan").await.is_empty());
    assert!(granted(s, "cat").await.is_empty());
    assert!(granted(s, "ann").await.is_empty());
    assert_eq!(granted(s, "ben").await, vec![at(other, "group", "g")]);
    assert_eq!(count(s, "", "bucket").await, buckets);
}

/// Records `a` and `b` readable by `eve` and a tombstone `t`, in list
/// `(parent, record)`: what a store written before the indexes holds.
pub(crate) fn eve_records(parent: &str) -> Vec<Write> {
    [("a", false), ("b", false), ("t", true)]
        .into_iter()
        .map(|(id, deleted)| {
            let object = match deleted {
                true => StoredObject::tombstone(id, 1),
                false => named(id, 1, &[("read", &["eve"])]),
            };
            put(parent, "record", object, None)
        })
        .collect()
}

/// The counter and index entries of [`eve_records`] are there.
pub(crate) async fn assert_eve_indexed(s: &dyn Storage, parent: &str) {
    assert_eq!(count(s, parent, "record").await, 2);
    let ids: Vec<String> = granted(s, "eve").await.into_iter().map(|g| g.2).collect();
    assert_eq!(ids, ["a", "b"]);
}
