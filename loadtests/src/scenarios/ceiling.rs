//! The machine's ceiling: the storage.sync record write's JSON round trip
//! against `kinto-ceiling` (a minimal axum handler), run at the same pinning
//! as the server under test.

use crate::kinto::send;
use goose::prelude::*;
use serde_json::json;

pub fn scenario() -> Result<Scenario, GooseError> {
    Ok(scenario!("ceiling").register_transaction(transaction!(echo)))
}

async fn echo(user: &mut GooseUser) -> TransactionResult {
    let body =
        json!({"data": {"title": "a bookmark", "url": "https://example.com/", "tags": ["x"]}});
    let path = format!("/echo/{}", uuid::Uuid::new_v4());
    send(
        user,
        "ceiling echo",
        GooseMethod::Put,
        &path,
        Some(&body),
        &[],
        200,
    )
    .await?;
    Ok(())
}
