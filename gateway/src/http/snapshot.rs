//! `GET /buckets/{b}/snapshot/collections/{c}@{timestamp}` (history plugin):
//! the collection's records as they were at `timestamp`, rebuilt from the
//! current records and the history entries, as Kinto does. Three reads on
//! the bucket's shard, composed here.

use super::message::{KRequest, KResponse};
use crate::app::App;
use axum::http::Method;
use kinto_proto::pb::{self, Caller, FilterOp, Kind, ListQuery, Operation, Target};
use kinto_proto::{ErrorKind, KintoError};
use serde_json::{json, Value};
use std::collections::HashMap;

fn op(kind: Kind, bucket: &str, collection: &str, id: &str, caller: &Caller) -> Operation {
    Operation {
        target: Some(Target {
            kind: kind as i32,
            bucket_id: bucket.to_owned(),
            collection_id: collection.to_owned(),
            object_id: id.to_owned(),
        }),
        method: pb::Method::Get as i32,
        caller: Some(caller.clone()),
        ..Default::default()
    }
}

fn filter(field: &str, op: FilterOp, value: Value) -> pb::Filter {
    pb::Filter {
        field: field.into(),
        op: op as i32,
        value_json: serde_json::to_vec(&value).unwrap_or_default(),
    }
}

fn rows(shard: usize, r: &pb::OpResult) -> Result<Vec<Value>, KintoError> {
    crate::reply::decode_printed(Some(shard), "execute", &r.data_json)
}

fn last_modified(v: &Value) -> u64 {
    v.get("last_modified").and_then(Value::as_u64).unwrap_or(0)
}

pub async fn get(
    app: &App,
    req: &KRequest,
    caller: &Caller,
    bucket: &str,
    collection: &str,
    timestamp: &str,
) -> Result<KResponse, KintoError> {
    if !matches!(req.method, Method::GET | Method::HEAD) {
        return Err(KintoError::new(ErrorKind::MethodNotAllowed));
    }
    let Ok(timestamp) = timestamp.parse::<u64>() else {
        return Err(KintoError::invalid(
            "path",
            Some("timestamp"),
            format!("Invalid timestamp '{timestamp}'"),
        ));
    };
    // Kinto's plugin answers 404 for ids that cannot exist, before any check.
    for (id, name) in [(bucket, "bucket"), (collection, "collection")] {
        if !kinto_model::valid_id(id) {
            return Err(KintoError::not_found(ErrorKind::MissingResource, id, name));
        }
    }
    let shard = app.shards.shard_of(bucket);
    // Reading the collection needs read or write on it or its bucket, as Kinto asks.
    let read = app
        .shards
        .execute(shard, op(Kind::Collection, bucket, "", collection, caller))
        .await;
    match read {
        // Kinto checks the permissions only: a missing collection the caller
        // could read has no records.
        Err(e) if e.kind == ErrorKind::ObjectNotFound => {
            return Ok(KResponse::json(200, json!({ "data": [] })))
        }
        Err(e) if e.kind == ErrorKind::MissingResource => {
            return Err(KintoError::new(ErrorKind::Forbidden))
        }
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    let mut records = op(Kind::Record, bucket, collection, "", caller);
    records.query = Some(ListQuery {
        include_tombstones: true,
        ..Default::default()
    });
    let all = rows(shard, &app.shards.execute(shard, records).await?)?;
    let mut result: Vec<Value> = all
        .iter()
        .filter(|r| last_modified(r) <= timestamp && r.get("deleted").is_none())
        .cloned()
        .collect();
    let changed: Vec<Value> = all
        .iter()
        .filter(|r| last_modified(r) > timestamp)
        .filter_map(|r| r.get("id").cloned())
        .collect();
    if !changed.is_empty() {
        let mut history = op(Kind::History, bucket, "", "", caller);
        history.query = Some(ListQuery {
            filters: vec![
                filter("resource_name", FilterOp::Eq, json!("record")),
                filter("collection_id", FilterOp::Eq, json!(collection)),
                filter("record_id", FilterOp::In, Value::Array(changed.clone())),
                filter("target.data.last_modified", FilterOp::Max, json!(timestamp)),
            ],
            sort: vec![pb::SortKey {
                field: "last_modified".into(),
                descending: true,
            }],
            ..Default::default()
        });
        let mut latest: HashMap<String, Value> = HashMap::new();
        for entry in rows(shard, &app.shards.execute(shard, history).await?)? {
            if let Some(rid) = entry.get("record_id").and_then(Value::as_str) {
                latest.entry(rid.to_owned()).or_insert(entry);
            }
        }
        // Records created after the timestamp have no earlier entry: absent.
        for rid in changed.iter().filter_map(Value::as_str) {
            if let Some(data) = latest.get(rid).and_then(|e| e.pointer("/target/data")) {
                result.push(data.clone());
            }
        }
    }
    result.sort_by_key(|r| std::cmp::Reverse(last_modified(r)));
    Ok(KResponse::json(200, json!({ "data": result })))
}
