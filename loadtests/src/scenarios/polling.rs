//! Remote settings: thousands of anonymous clients poll a few public
//! collections with `_since` and `If-None-Match` (most answers are 304),
//! while one publisher writes. The publisher creates the bucket and the
//! collections (readable by everyone) when it starts.

use crate::kinto::{etag, send, sign_in, PREFIX};
use goose::prelude::*;
use rand::Rng;
use serde_json::json;
use std::time::Duration;

pub const BUCKET: &str = "main";
pub const COLLECTIONS: [&str; 3] = ["blocklist", "onecrl", "fingerprinting"];

#[derive(Clone)]
struct Poller {
    /// Last ETag seen, per collection.
    etags: Vec<Option<String>>,
}

pub fn pollers() -> Result<Scenario, GooseError> {
    Ok(scenario!("polling")
        .set_weight(99)?
        .register_transaction(transaction!(poller_start).set_on_start())
        .register_transaction(transaction!(poll)))
}

pub fn publisher() -> Result<Scenario, GooseError> {
    Ok(scenario!("publisher")
        .set_weight(1)?
        .set_wait_time(Duration::from_millis(500), Duration::from_millis(1500))?
        .register_transaction(transaction!(publisher_start).set_on_start())
        .register_transaction(transaction!(publish)))
}

fn records(c: &str) -> String {
    format!("/buckets/{BUCKET}/collections/{c}/records")
}

/// Remote settings exist before their clients poll: a poller waits, without
/// measuring, until the publisher has made the last collection readable
/// (otherwise the first polls of a run are 401s).
async fn poller_start(user: &mut GooseUser) -> TransactionResult {
    user.set_session_data(Poller {
        etags: vec![None; COLLECTIONS.len()],
    });
    let last = COLLECTIONS[COLLECTIONS.len() - 1];
    let url = user.build_url(&format!("{PREFIX}{}", records(last)))?;
    for _ in 0..600 {
        match user.client.get(&url).send().await {
            Ok(r) if r.status().is_success() => break,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Ok(())
}

async fn poll(user: &mut GooseUser) -> TransactionResult {
    let i = rand::rng().random_range(0..COLLECTIONS.len());
    let known = user
        .get_session_data::<Poller>()
        .and_then(|p| p.etags[i].clone());
    let path = records(COLLECTIONS[i]);
    let r = match &known {
        // 304 when nothing changed, 200 when the publisher wrote: both are good
        // answers (the report counts each status).
        Some(tag) => {
            let path = format!("{path}?_expected={tag}");
            let inm = [("If-None-Match", format!("\"{tag}\""))];
            send(
                user,
                "poll (If-None-Match)",
                GooseMethod::Get,
                &path,
                None,
                &inm,
                0,
            )
            .await?
        }
        None => send(user, "poll first", GooseMethod::Get, &path, None, &[], 200).await?,
    };
    if let (Some(tag), Some(p)) = (etag(&r), user.get_session_data_mut::<Poller>()) {
        p.etags[i] = Some(tag);
    }
    Ok(())
}

async fn publisher_start(user: &mut GooseUser) -> TransactionResult {
    sign_in(user, "publisher").await?;
    let bucket = format!("/buckets/{BUCKET}");
    let public = json!({"permissions": {"read": ["system.Everyone"]}});
    // 201 the first time, 200 after: either way the bucket is there.
    let _ = send(
        user,
        "setup",
        GooseMethod::Put,
        &bucket,
        Some(&public),
        &[],
        0,
    )
    .await;
    for c in COLLECTIONS {
        let path = format!("{bucket}/collections/{c}");
        let _ = send(
            user,
            "setup",
            GooseMethod::Put,
            &path,
            Some(&json!({})),
            &[],
            0,
        )
        .await;
    }
    Ok(())
}

async fn publish(user: &mut GooseUser) -> TransactionResult {
    let c = COLLECTIONS[rand::rng().random_range(0..COLLECTIONS.len())];
    let path = format!("{}/{}", records(c), uuid::Uuid::new_v4());
    let body = json!({"data": {"issuer": "test", "serial": rand::rng().random::<u32>()}});
    send(
        user,
        "publish",
        GooseMethod::Put,
        &path,
        Some(&body),
        &[],
        201,
    )
    .await?;
    Ok(())
}
