//! Firefox storage.sync: each goose user is one Firefox profile with its own
//! identity and default bucket. One round: create an extension's collection
//! (a new one each round: storage.sync had ~3 per bucket), push a new record
//! (`If-None-Match: *`), pull changes (`_since`), update (`If-Match`), push a
//! batch of 25, delete.

use crate::kinto::{etag, json, send, sign_in};
use goose::prelude::*;
use serde_json::json;

#[derive(Clone)]
struct Profile {
    round: u64,
    collection: String,
    since: String,
    /// `(id, last_modified)` of a record to update then delete.
    record: Option<(String, u64)>,
}

pub fn scenario() -> Result<Scenario, GooseError> {
    Ok(scenario!("storagesync")
        .register_transaction(transaction!(start).set_on_start())
        .register_transaction(transaction!(create_collection).set_sequence(1))
        .register_transaction(transaction!(put_new).set_sequence(2))
        .register_transaction(transaction!(pull).set_sequence(3))
        .register_transaction(transaction!(update).set_sequence(4))
        .register_transaction(transaction!(batch).set_sequence(5))
        .register_transaction(transaction!(delete).set_sequence(6)))
}

fn records(p: &Profile) -> String {
    format!("/buckets/default/collections/{}/records", p.collection)
}

async fn start(user: &mut GooseUser) -> TransactionResult {
    let name = format!("sync-{}", uuid::Uuid::new_v4().simple());
    sign_in(user, &name).await?;
    user.set_session_data(Profile {
        round: 0,
        collection: String::new(),
        since: "0".into(),
        record: None,
    });
    Ok(())
}

async fn create_collection(user: &mut GooseUser) -> TransactionResult {
    let Some(p) = user.get_session_data_mut::<Profile>() else {
        return Ok(());
    };
    p.round += 1;
    p.collection = format!("ext-{}", p.round);
    p.since = "0".into();
    p.record = None;
    let path = format!("/buckets/default/collections/{}", p.collection);
    let star = [("If-None-Match", "*".to_owned())];
    send(
        user,
        "create collection",
        GooseMethod::Put,
        &path,
        None,
        &star,
        201,
    )
    .await?;
    Ok(())
}

async fn put_new(user: &mut GooseUser) -> TransactionResult {
    let Some(p) = user.get_session_data::<Profile>() else {
        return Ok(());
    };
    let path = format!("{}/{}", records(p), uuid::Uuid::new_v4());
    let body =
        json!({"data": {"title": "a bookmark", "url": "https://example.com/", "tags": ["x"]}});
    let r = send(
        user,
        "put new (If-None-Match)",
        GooseMethod::Put,
        &path,
        Some(&body),
        &[("If-None-Match", "*".into())],
        201,
    )
    .await?;
    if let Some(data) = json(r).await.and_then(|b| b.get("data").cloned()) {
        let id = data["id"].as_str().unwrap_or_default().to_owned();
        let ts = data["last_modified"].as_u64().unwrap_or_default();
        if let Some(p) = user.get_session_data_mut::<Profile>() {
            p.record = Some((id, ts));
        }
    }
    Ok(())
}

async fn pull(user: &mut GooseUser) -> TransactionResult {
    let Some(p) = user.get_session_data::<Profile>() else {
        return Ok(());
    };
    let path = format!("{}?_since={}", records(p), p.since);
    let r = send(user, "pull _since", GooseMethod::Get, &path, None, &[], 200).await?;
    if let (Some(ts), Some(p)) = (etag(&r), user.get_session_data_mut::<Profile>()) {
        p.since = ts;
    }
    Ok(())
}

async fn update(user: &mut GooseUser) -> TransactionResult {
    let Some(p) = user.get_session_data::<Profile>() else {
        return Ok(());
    };
    let Some((id, ts)) = p.record.clone() else {
        return Ok(());
    };
    let path = format!("{}/{id}", records(p));
    let body = json!({"data": {"title": "renamed", "url": "https://example.com/"}});
    let r = send(
        user,
        "update (If-Match)",
        GooseMethod::Put,
        &path,
        Some(&body),
        &[("If-Match", format!("\"{ts}\""))],
        200,
    )
    .await?;
    let ts = json(r)
        .await
        .and_then(|b| b["data"]["last_modified"].as_u64());
    if let (Some(ts), Some(p)) = (ts, user.get_session_data_mut::<Profile>()) {
        p.record = Some((id, ts));
    }
    Ok(())
}

async fn batch(user: &mut GooseUser) -> TransactionResult {
    let Some(p) = user.get_session_data::<Profile>() else {
        return Ok(());
    };
    let base = records(p);
    let requests: Vec<_> = (0..25)
        .map(|i| {
            json!({"path": format!("{base}/{}", uuid::Uuid::new_v4()),
                        "body": {"data": {"i": i, "title": "batched"}}})
        })
        .collect();
    let body = json!({"defaults": {"method": "PUT", "headers": {"If-None-Match": "*"}}, "requests": requests});
    send(
        user,
        "batch of 25",
        GooseMethod::Post,
        "/batch",
        Some(&body),
        &[],
        200,
    )
    .await?;
    Ok(())
}

async fn delete(user: &mut GooseUser) -> TransactionResult {
    let Some(p) = user.get_session_data::<Profile>() else {
        return Ok(());
    };
    let Some((id, _)) = p.record.clone() else {
        return Ok(());
    };
    let path = format!("{}/{id}", records(p));
    send(user, "delete", GooseMethod::Delete, &path, None, &[], 200).await?;
    Ok(())
}
