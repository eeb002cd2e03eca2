//! The noisy neighbour: every goose user of this scenario is the same
//! tenant (one identity, one bucket), writing and listing records as fast
//! as it can, while other tenants run the storage.sync mix
//! (`bench.py --noisy-neighbour`). Any answer counts as done: 429 and 503
//! are what admission control should give this tenant, so only the
//! others' errors matter.

use crate::kinto::{send, sign_in};
use goose::prelude::*;
use serde_json::json;

/// The flooding tenant's name and bucket.
const TENANT: &str = "noisy-neighbour";
const BUCKET: &str = "noisy-neighbour";
const COLLECTION: &str = "flood";

pub fn scenario() -> Result<Scenario, GooseError> {
    Ok(scenario!("flood")
        .register_transaction(transaction!(start).set_on_start())
        .register_transaction(transaction!(write).set_weight(3)?)
        .register_transaction(transaction!(list)))
}

async fn start(user: &mut GooseUser) -> TransactionResult {
    sign_in(user, TENANT).await?;
    // Every flooding user tries: the first creates, the others get 412 (or a
    // 429 already), all of which are fine.
    let star = [("If-None-Match", "*".to_owned())];
    let bucket = format!("/buckets/{BUCKET}");
    send(
        user,
        "flood setup",
        GooseMethod::Put,
        &bucket,
        None,
        &star,
        0,
    )
    .await?;
    let collection = format!("{bucket}/collections/{COLLECTION}");
    send(
        user,
        "flood setup",
        GooseMethod::Put,
        &collection,
        None,
        &star,
        0,
    )
    .await?;
    Ok(())
}

fn records() -> String {
    format!("/buckets/{BUCKET}/collections/{COLLECTION}/records")
}

async fn write(user: &mut GooseUser) -> TransactionResult {
    let body = json!({"data": {"payload": "x".repeat(512)}});
    send(
        user,
        "flood write",
        GooseMethod::Post,
        &records(),
        Some(&body),
        &[],
        0,
    )
    .await?;
    Ok(())
}

async fn list(user: &mut GooseUser) -> TransactionResult {
    let path = format!("{}?_limit=50", records());
    send(user, "flood list", GooseMethod::Get, &path, None, &[], 0).await?;
    Ok(())
}
