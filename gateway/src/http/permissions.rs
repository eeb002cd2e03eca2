//! `GET /permissions` and `DELETE /__user_data__/{principal}`: questions
//! about a principal across every bucket, so every shard is asked and the
//! gateway merges (the root entry, from settings, is added here).

use super::message::{KRequest, KResponse};
use super::querystring::parse_list_query;
use crate::app::App;
use axum::http::Method;
use kinto_proto::pb::Caller;
use kinto_proto::query::{self, SortKey};
use kinto_proto::{ErrorKind, KintoError};
use serde_json::{json, Value};

/// The fields of a permissions entry: filtering on others is a 400, as in Kinto.
const FIELDS: &[&str] = &[
    "uri",
    "resource_name",
    "permissions",
    "id",
    "bucket_id",
    "collection_id",
    "group_id",
    "record_id",
    "account_id",
];

pub async fn list(app: &App, req: &KRequest, caller: &Caller) -> Result<KResponse, KintoError> {
    if !matches!(req.method, Method::GET | Method::HEAD) {
        return Err(KintoError::new(ErrorKind::MethodNotAllowed));
    }
    let pairs = req.query_pairs();
    let now = kinto_shard::domain::clock::now_ms();
    let params =
        parse_list_query(&pairs, now, Some(FIELDS)).map_err(super::resources::query_error)?;
    let mut entries = app.shards.permissions(caller).await?;
    if let Some(root) = root_entry(app, caller).await {
        entries.push(root);
    }
    entries.retain(|e| query::matches(e, &params.filters));
    let sort = if pairs.iter().any(|(k, _)| k == "_sort") {
        params.sort.clone()
    } else {
        vec![SortKey {
            field: "uri".into(),
            descending: true,
        }]
    };
    query::sort_by_keys(&mut entries, &sort, |v| v);
    let total = entries.len();
    // Entries have no timestamp to page on: the token carries an offset.
    let offset = (params.token_offset as usize).min(total);
    let limit = super::resources::page_size(app, &params) as usize;
    let end = offset.saturating_add(limit).min(total);
    let page: Vec<Value> = entries[offset..end].to_vec();
    let mut resp = if req.method == Method::HEAD {
        KResponse::empty(200).with("content-type", "application/json")
    } else {
        let items = match &params.fields {
            Some(f) => page.iter().map(|o| query::project(o, f)).collect(),
            None => page.clone(),
        };
        KResponse::json(200, json!({ "data": items }))
    };
    resp.set("total-objects", total.to_string());
    resp.set("total-records", total.to_string());
    resp.set("cache-control", "no-cache, no-store");
    if end < total {
        if let Some(last) = page.last() {
            let url = super::resources::next_page(app, req, &params, last, (end - offset) as u64);
            resp.set("next-page", url);
        }
    }
    Ok(resp)
}

/// What settings grant at the root: creating buckets and accounts.
async fn root_entry(app: &App, caller: &Caller) -> Option<Value> {
    let cfg = &app.config;
    let mut principals = caller.principals.clone();
    principals.extend(app.shards.groups_of(&caller.principals).await);
    let granted = |key: &str| {
        cfg.grants
            .get(key)
            .is_some_and(|l| l.iter().any(|p| principals.contains(p)))
    };
    let mut perms = Vec::new();
    if cfg.plugin("accounts") && granted("account_create_principals") {
        perms.push("account:create");
    }
    if granted("bucket_create_principals") {
        perms.push("bucket:create");
    }
    (!perms.is_empty()).then(|| json!({"uri": "/", "resource_name": "root", "permissions": perms}))
}

/// Kinto's GDPR view: needs `user-data_delete_principals` (also accepted as
/// `user_data_delete_principals`, which an environment variable can carry).
pub async fn delete_user_data(
    app: &App,
    req: &KRequest,
    caller: &Caller,
    principal: &str,
) -> Result<KResponse, KintoError> {
    if req.method != Method::DELETE {
        return Err(KintoError::new(ErrorKind::MethodNotAllowed));
    }
    let cfg = &app.config;
    let allowed = ["user-data_delete_principals", "user_data_delete_principals"]
        .iter()
        .filter_map(|k| cfg.grants.get(*k))
        .any(|l| l.iter().any(|p| caller.principals.contains(p)));
    if !allowed {
        return Err(if caller.user_id.is_empty() {
            KintoError::new(ErrorKind::Unauthorized)
        } else {
            KintoError::new(ErrorKind::Forbidden)
        });
    }
    app.shards.delete_user_data(principal).await?;
    Ok(KResponse::json(
        200,
        json!({"data": {"principal": principal}}),
    ))
}
