//! A shard serves only the slots the map it holds gives it
//! (docs/placement.md, section 4).

use super::{Features, Shard, ShardSettings};
use crate::storage::embedded::EmbeddedStorage;
use kinto_placement::file_store::{open_or_init, FileMapStore, Swap};
use kinto_placement::live::LiveMap;
use kinto_placement::{slot_of, PlacementKey};
use kinto_proto::{pb, ErrorKind};
use std::sync::Arc;
use std::time::Duration;

fn get_bucket(bucket: &str, generation: u64) -> pb::Operation {
    pb::Operation {
        target: Some(pb::Target {
            kind: pb::Kind::Bucket as i32,
            bucket_id: bucket.into(),
            collection_id: String::new(),
            object_id: bucket.into(),
        }),
        method: pb::Method::Get as i32,
        caller: Some(pb::Caller {
            user_id: "basicauth:alice".into(),
            principals: vec!["system.Everyone".into()],
        }),
        generation,
        ..Default::default()
    }
}

fn refused_at(result: Result<pb::OpResult, kinto_proto::KintoError>) -> Option<u64> {
    match result {
        Err(e) if e.kind == ErrorKind::WrongShard => e.details?["generation"].as_u64(),
        _ => None,
    }
}

#[tokio::test]
async fn a_shard_refuses_a_slot_it_does_not_own_at_its_generation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let placement = dir.path().join("placement");
    let first = open_or_init(&placement, 2).expect("map");
    let map = LiveMap::stored(&placement, &first);
    let storage =
        EmbeddedStorage::open(&dir.path().join("store"), Duration::ZERO, 1 << 22, 1 << 22)
            .expect("store");
    let shard = Shard::new(
        storage,
        ShardSettings {
            index: 0,
            map: Arc::clone(&map),
            grants: Default::default(),
            features: Features::default(),
            cache_entries: 16,
            read_ahead: 0,
        },
    );
    let run = |bucket: &str, generation| {
        shard.execute(get_bucket(bucket, generation), Default::default())
    };
    let owned_by = |shard: u32, prefix: &str| {
        (0..)
            .map(|i| format!("{prefix}{i}"))
            .find(|b| map.current().owner(PlacementKey::Bucket(b)) == shard)
            .expect("a bucket of that shard")
    };
    let (mine, other, stays) = (owned_by(0, "a"), owned_by(1, "b"), owned_by(0, "c"));
    let slot = slot_of(&mine);
    assert_ne!(slot, slot_of(&stays));
    // Shard 0's bucket is served (it does not exist yet: 403/404, not a refusal).
    let missing = run(&mine, 1).await.expect_err("no such bucket");
    assert_ne!(missing.kind, ErrorKind::WrongShard);
    // A bucket of shard 1 is refused, naming the shard's generation.
    assert_eq!(refused_at(run(&other, 1).await), Some(1));

    // Generation 2 gives `mine`'s slot to shard 1.
    let next = first.with_owner(slot, 1);
    let store = FileMapStore::new(&placement);
    assert_eq!(
        store.compare_and_set(Some(1), &next).expect("cas"),
        Swap::Done
    );
    // A caller at generation 2 makes the shard read the map: refused, at 2.
    assert_eq!(refused_at(run(&mine, 2).await), Some(2));
    // And a caller still at generation 1 is refused too, now the shard knows.
    assert_eq!(refused_at(run(&mine, 1).await), Some(2));
    // A caller at generation 1 is served where the shard still owns the slot.
    let served = run(&stays, 1).await.map_err(|e| e.kind).err();
    assert_ne!(served, Some(ErrorKind::WrongShard));
    // A caller ahead of every stored map is refused with what the shard holds.
    let stays = (0..)
        .map(|i| format!("c{i}"))
        .find(|b| map.current().owner(PlacementKey::Bucket(b)) == 0);
    let stays = stays.expect("a bucket of shard 0");
    assert_eq!(refused_at(run(&stays, 3).await), Some(2));
    // Generation 0 (the shard's own follow-up calls) checks the owner only.
    assert_ne!(
        run(&stays, 0).await.map_err(|e| e.kind).err(),
        Some(ErrorKind::WrongShard)
    );
}
