//! Scale: reads and writes of random users among a pre-populated population
//! (`kinto-populate --users N --records 3` first; the same N in
//! `KINTO_LOAD_POPULATION`).
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

/// Records per user, as `bench.py` populates them (`kinto-populate --records 3`).
const RECORDS: u64 = 3;

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

/// Replaces one of the user's records (`kinto-populate` writes `r0`, `r1`,
/// `r2`). New ids would make the lists grow with the run, and grow ~1000×
/// faster per user at 1k users than at 1M: the 1k baseline would then read
/// lists of dozens of records while the 1M users read three.
async fn write(user: &mut GooseUser) -> TransactionResult {
    let auth = [("Authorization", basic(&someone()))];
    let path = format!(
        "/buckets/default/collections/prefs/records/r{}",
        rand::rng().random_range(0..RECORDS)
    );
    let body = json!({"data": {"key": "theme", "value": "dark"}});
    // 200 for a populated user; 201 if the population was not pre-populated.
    send(
        user,
        "scale write",
        GooseMethod::Put,
        &path,
        Some(&body),
        &auth,
        0,
    )
    .await?;
    Ok(())
}
