//! Scale: reads and writes of random users among a pre-populated population
//! (`kinto-populate --users N` first; the same N in `KINTO_LOAD_POPULATION`).
//! Each request picks a user at random, so caches see a cold, wide key space.

use crate::kinto::{basic, send};
use goose::prelude::*;
use rand::Rng;
use serde_json::json;

pub fn scenario() -> Result<Scenario, GooseError> {
    Ok(scenario!("scale")
        .register_transaction(transaction!(read).set_weight(3)?)
        .register_transaction(transaction!(write).set_weight(1)?))
}

fn population() -> u64 {
    std::env::var("KINTO_LOAD_POPULATION")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
        .max(1)
}

fn someone() -> String {
    crate::scenarios::scale::name(rand::rng().random_range(0..population()))
}

/// The name of user `i` of the population (`kinto-populate` uses the same).
pub fn name(i: u64) -> String {
    format!("pop{i}")
}

async fn read(user: &mut GooseUser) -> TransactionResult {
    let auth = [("Authorization", basic(&someone()))];
    let path = "/buckets/default/collections/prefs/records?_since=0";
    send(user, "scale read", GooseMethod::Get, path, None, &auth, 200).await?;
    Ok(())
}

async fn write(user: &mut GooseUser) -> TransactionResult {
    let auth = [("Authorization", basic(&someone()))];
    let path = format!(
        "/buckets/default/collections/prefs/records/{}",
        uuid::Uuid::new_v4()
    );
    let body = json!({"data": {"key": "theme", "value": "dark"}});
    send(
        user,
        "scale write",
        GooseMethod::Put,
        &path,
        Some(&body),
        &auth,
        201,
    )
    .await?;
    Ok(())
}
