//! A slot moved between two embedded stores: what the new owner serves is
//! what the old one held, and the old one can no longer write it.

use super::EmbeddedStorage;
use crate::storage::slots::{SlotMoves, SlotState, StreamDigest};
use crate::storage::{Acl, Storage, StorageError, StoredObject, Write};
use kinto_placement::PlacementKey;
use std::sync::Arc;
use std::time::Duration;

fn open(dir: &std::path::Path) -> Arc<EmbeddedStorage> {
    EmbeddedStorage::open(dir, Duration::ZERO, 1 << 20, 1 << 20).expect("open")
}

fn object(id: &str, ts: u64, data: serde_json::Value, reader: &str) -> StoredObject {
    let mut permissions = Acl::new();
    permissions.insert("read".into(), vec![reader.to_owned()]);
    StoredObject {
        id: id.into(),
        last_modified: ts,
        deleted: false,
        data: data.as_object().cloned().unwrap_or_default(),
        permissions,
    }
}

fn put(parent: &str, resource: &'static str, object: StoredObject) -> Write {
    Write::Put {
        parent: parent.into(),
        resource,
        object,
        previous_last_modified: None,
    }
}

fn stamp(parent: &str, resource: &'static str, value: u64) -> Write {
    Write::Timestamp {
        parent: parent.into(),
        resource,
        value,
    }
}

/// A bucket with a group (one member), a collection, two records and a
/// tombstone, each readable by `eve`.
fn bucket(id: &str) -> Vec<Write> {
    let b = format!("/buckets/{id}");
    let c = format!("{b}/collections/c");
    vec![
        put("", "bucket", object(id, 10, serde_json::json!({}), "eve")),
        stamp("", "bucket", 10),
        put(
            &b,
            "group",
            object("g", 11, serde_json::json!({"members": ["bob"]}), "eve"),
        ),
        Write::AddMember {
            principal: "bob".into(),
            group_uri: format!("{b}/groups/g"),
        },
        put(
            &b,
            "collection",
            object("c", 12, serde_json::json!({}), "eve"),
        ),
        put(
            &c,
            "record",
            object("r1", 13, serde_json::json!({"n": 1}), "eve"),
        ),
        put(
            &c,
            "record",
            object("r2", 14, serde_json::json!({"n": 2}), "eve"),
        ),
        put(&c, "record", StoredObject::tombstone("r3", 15)),
        stamp(&c, "record", 15),
    ]
}

/// Commits bucket `id` and a bucket named `prefix…` of another slot to `a`:
/// `id`'s slot and the other bucket's name.
async fn two_buckets(a: &EmbeddedStorage, id: &str, prefix: &str) -> (u32, String) {
    let slot = PlacementKey::Bucket(id).slot();
    let other = (0..100)
        .map(|i| format!("{prefix}{i}"))
        .find(|other| PlacementKey::Bucket(other).slot() != slot)
        .expect("a bucket of another slot");
    a.commit(bucket(id)).await.expect("commit");
    a.commit(bucket(&other)).await.expect("commit");
    (slot, other)
}

#[tokio::test]
async fn a_slot_moves_whole_and_the_old_owner_is_fenced() {
    let (da, db) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let (a, b) = (open(da.path()), open(db.path()));
    let (slot, other) = two_buckets(&a, "moved", "stays").await;
    a.attach(&|_| SlotState::Owned).expect("attach a");
    b.attach(&|_| SlotState::Foreign).expect("attach b");
    let c = "/buckets/moved/collections/c";

    a.freeze(&[slot]).expect("freeze");
    assert_eq!(a.state(slot), SlotState::Frozen);
    let refused = a.commit(vec![stamp(c, "record", 99)]).await;
    assert!(
        matches!(refused, Err(StorageError::Frozen(_))),
        "{refused:?}"
    );
    // Other slots still take writes.
    let kept = format!("/buckets/{other}/collections/c");
    a.commit(vec![stamp(&kept, "record", 16)])
        .await
        .expect("other slot");

    let entries = a.export(slot).expect("export");
    let mut sent = StreamDigest::default();
    entries.iter().for_each(|e| sent.add(e));
    b.stage_begin(&[slot]).expect("stage");
    assert_eq!(b.state(slot), SlotState::Staged);
    // An entry of a keyspace this store does not have (the ascending
    // index of an earlier version, 2) fails the copy instead of being
    // dropped at acquire.
    let mut foreign = entries[0].clone();
    foreign.keyspace = 2;
    let refused = b.stage(vec![foreign]);
    assert!(
        matches!(refused, Err(StorageError::Corrupt(_))),
        "{refused:?}"
    );
    b.stage(entries).expect("stage entries");
    let got = b.staged_digest(&[slot]).expect("digest");
    assert_eq!(got.count, sent.count);
    assert_eq!(got.finish(), sent.finish());
    // Staged data is not served.
    assert_eq!(b.get(c, "record", "r1").await.expect("get"), None);

    b.acquire(&[slot]).expect("acquire");
    a.release(&[slot]).expect("release");
    assert_eq!(
        (a.state(slot), b.state(slot)),
        (SlotState::Foreign, SlotState::Owned)
    );

    let r1 = b.get(c, "record", "r1").await.expect("get").expect("moved");
    assert_eq!(r1.data["n"], 1);
    assert_eq!(b.timestamp(c, "record").await.expect("ts"), Some(15));
    assert_eq!(b.count(c, "record").await.expect("count"), 2);
    assert_eq!(b.count("", "bucket").await.expect("count"), 1);
    assert!(b.timestamp("", "bucket").await.expect("ts") >= Some(10));
    let since = b.list(c, "record", Some(13), true).await.expect("since");
    assert_eq!(since.len(), 2, "{since:?}");
    assert_eq!(b.granted("eve").await.expect("granted").len(), 5);
    let groups = b.groups_of(&["bob".into()]).await.expect("groups");
    assert_eq!(groups, vec!["/buckets/moved/groups/g".to_owned()]);

    // Nothing of it is left on the old owner, which still refuses it.
    assert_eq!(a.get(c, "record", "r1").await.expect("get"), None);
    assert_eq!(a.get("", "bucket", "moved").await.expect("get"), None);
    assert_eq!(a.count("", "bucket").await.expect("count"), 1);
    assert_eq!(a.granted("eve").await.expect("granted").len(), 5);
    assert_eq!(a.groups_of(&["bob".into()]).await.expect("groups").len(), 1);
    assert!(a.export(slot).expect("export").is_empty());
    let late = a.commit(vec![stamp(c, "record", 100)]).await;
    assert!(matches!(late, Err(StorageError::Frozen(_))), "{late:?}");
    // Every step again changes nothing.
    b.acquire(&[slot]).expect("acquire again");
    a.release(&[slot]).expect("release again");
    assert_eq!(b.count(c, "record").await.expect("count"), 2);
}

#[tokio::test]
async fn a_freeze_and_a_staged_copy_survive_a_restart() {
    let (da, db) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let slot = PlacementKey::Bucket("moved").slot();
    {
        let (a, b) = (open(da.path()), open(db.path()));
        a.commit(bucket("moved")).await.expect("commit");
        a.attach(&|_| SlotState::Owned).expect("attach");
        b.attach(&|_| SlotState::Foreign).expect("attach");
        a.freeze(&[slot]).expect("freeze");
        b.stage_begin(&[slot]).expect("stage");
        b.stage(a.export(slot).expect("export")).expect("entries");
        b.staged_digest(&[slot]).expect("synced");
    }
    let (a, b) = (open(da.path()), open(db.path()));
    a.attach(&|_| SlotState::Owned).expect("attach");
    b.attach(&|_| SlotState::Foreign).expect("attach");
    assert_eq!(
        (a.state(slot), b.state(slot)),
        (SlotState::Frozen, SlotState::Staged)
    );
    let late = a
        .commit(vec![stamp("/buckets/moved", "collection", 50)])
        .await;
    assert!(matches!(late, Err(StorageError::Frozen(_))), "{late:?}");
    // A rolled-back move: the copy goes, the owner writes again.
    b.release(&[slot]).expect("drop the copy");
    assert!(b.staged_entries(slot).expect("staged").is_empty());
    a.unfreeze(&[slot]).expect("unfreeze");
    a.commit(vec![stamp("/buckets/moved", "collection", 50)])
        .await
        .expect("writable");
}

/// A list spanning every shard is merged only from parts read at one set of
/// served slots: the epoch moves on when a slot stops or starts being
/// listed here (a release, an acquire), not for a freeze, which keeps it
/// listed.
#[test]
fn the_served_slots_move_on_with_a_release_and_an_acquire_only() {
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let (a, b) = (open(dir_a.path()), open(dir_b.path()));
    let half = |low: bool| {
        move |s: u32| match (s < 2048) == low {
            true => SlotState::Owned,
            false => SlotState::Foreign,
        }
    };
    a.attach(&half(true)).expect("attach");
    b.attach(&half(false)).expect("attach");
    let before = a.served_slots();
    assert!(before.epoch.is_multiple_of(2));
    assert_eq!(before.slots.len(), 2048);
    assert!(before.held_until(a.served_slots().epoch));

    a.freeze(&[5]).expect("freeze");
    assert!(
        before.held_until(a.served_slots().epoch),
        "a frozen slot is still listed"
    );
    assert!(a.served_slots().slots.contains(5));

    a.release(&[5]).expect("release");
    let released = a.served_slots();
    assert!(!before.held_until(released.epoch));
    assert!(released.epoch.is_multiple_of(2));
    assert!(!released.slots.contains(5) && released.slots.len() == 2047);

    let staged = b.served_slots();
    b.stage_begin(&[5]).expect("stage");
    b.acquire(&[5]).expect("acquire");
    let acquired = b.served_slots();
    assert!(!staged.held_until(acquired.epoch));
    assert!(acquired.slots.contains(5) && acquired.slots.len() == 2049);
    let parts = [released.slots, acquired.slots];
    assert!(kinto_placement::slot_set::cover(&parts).exact());
}

/// A slot the map gave away without a move (`hide`) keeps whatever this
/// store holds of it out of the cross-bucket answers: the root lists, in
/// every order, and the principal index. Adopting it shows them again.
#[tokio::test]
async fn a_hidden_slot_is_left_out_of_cross_bucket_answers() {
    use crate::storage::{Order, Range};
    let dir = tempfile::tempdir().expect("dir");
    let a = open(dir.path());
    let (slot, other) = two_buckets(&a, "hidden", "shown").await;
    a.attach(&|_| SlotState::Owned).expect("attach");
    let answers = || async {
        let mut pages = Vec::new();
        for order in [Order::IdAsc, Order::ModifiedDesc, Order::ModifiedAsc] {
            for lean in [false, true] {
                let range = Range {
                    parent: "",
                    resource: "bucket",
                    order,
                    from: None,
                    stop: None,
                    limit: 10,
                    tombstones: true,
                    lean,
                    acl: true,
                    fields: &[],
                };
                let chunk = a.scan(&range).await.expect("scan");
                pages.push(chunk.rows.into_iter().map(|o| o.id).collect::<Vec<_>>());
            }
        }
        let mut listed = a.list("", "bucket", None, true).await.expect("list");
        listed.extend(a.list("", "bucket", Some(1), true).await.expect("since"));
        let grants = a.granted("eve").await.expect("granted");
        let in_hidden = grants
            .iter()
            .filter(|g| g.id == "hidden" || g.parent.starts_with("/buckets/hidden"))
            .count();
        (pages, listed.len(), grants.len(), in_hidden)
    };
    let (pages, listed, grants, in_hidden) = answers().await;
    assert!(pages.iter().all(|p| p.len() == 2), "{pages:?}");
    assert_eq!((listed, grants, in_hidden), (4, 10, 5));

    a.hide(&[slot]).expect("hide");
    let (pages, listed, grants, in_hidden) = answers().await;
    assert!(
        pages.iter().all(|p| p == std::slice::from_ref(&other)),
        "{pages:?}"
    );
    assert_eq!((listed, grants, in_hidden), (2, 5, 0));

    a.adopt(&[slot]).expect("adopt");
    let (pages, listed, grants, _) = answers().await;
    assert!(pages.iter().all(|p| p.len() == 2), "{pages:?}");
    assert_eq!((listed, grants), (4, 10));
}
