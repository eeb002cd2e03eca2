//! `GET /permissions` and `DELETE /__user_data__/{principal}`: questions
//! about a principal across every bucket, so every shard is asked and the
//! gateway merges (the root entry, from settings, is added here).

use super::message::{KRequest, KResponse};
use super::querystring::{parse_list_query, ListParams};
use crate::app::App;
use axum::http::Method;
use kinto_proto::pb::Caller;
use kinto_proto::query::{self, SortKey};
use kinto_proto::{ErrorKind, KintoError};
use serde_json::{json, Value};

/// The fields of Kinto's `PermissionsSchema` (`permissions` is not one of
/// its nodes): filtering, sorting or projecting on others is a 400, as in
/// Kinto. `last_modified` is known too but entries have none, so its
/// filters and sort keys are checked, then dropped.
const FIELDS: &[&str] = &[
    "uri",
    "resource_name",
    "id",
    "bucket_id",
    "collection_id",
    "group_id",
    "record_id",
    "deleted",
];

/// The `ETag` of `/permissions`: Kinto stamps the list with a timestamp taken
/// when it is first listed and never bumped (its entries have none), so the
/// value stays the same while grants change. Ours is taken per gateway
/// process (ARCHITECTURE.md, Known differences).
static LIST_TIMESTAMP: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

pub async fn list(app: &App, req: &KRequest, caller: &Caller) -> Result<KResponse, KintoError> {
    if !matches!(req.method, Method::GET | Method::HEAD) {
        return Err(KintoError::new(ErrorKind::MethodNotAllowed));
    }
    let (pairs, timestamp_filters) = without_last_modified(req.query_pairs());
    let now = kinto_model::clock::now_ms();
    let params =
        parse_list_query(&pairs, now, Some(FIELDS)).map_err(super::resources::query_error)?;
    // Their values are checked as on any list, then they are dropped.
    parse_list_query(&timestamp_filters, now, None).map_err(super::resources::query_error)?;
    check_fields(params.fields.as_deref())?;
    // Entries have no timestamp: Kinto drops the filters on it.
    let filters: Vec<_> = params
        .filters
        .iter()
        .filter(|f| f.field != "last_modified")
        .cloned()
        .collect();
    let sort = sort_of(&pairs)?;
    // A GET asks each shard for its part of the page only; a HEAD counts all.
    let page = (req.method != Method::HEAD).then(|| {
        let paged = ListParams {
            filters: filters.clone(),
            sort: sort.clone(),
            ..params.clone()
        };
        super::resources::list_query(app, &paged)
    });
    let mut entries = app.shards.permissions(caller, page).await?;
    if let Some(root) = root_entry(app, caller).await? {
        entries.push(root);
    }
    entries.retain(|e| query::matches_in_order(e, &filters));
    query::sort_by_keys(&mut entries, &sort, |v| v);
    let mut resp = if req.method == Method::HEAD {
        // Kinto counts only on HEAD (filters apply, the token does not).
        let mut r = KResponse::empty(200).with("content-type", "application/json");
        r.set("total-objects", entries.len().to_string());
        r.set("total-records", entries.len().to_string());
        r
    } else {
        // Kinto pages on the keyset of the last entry (uri is unique).
        if let Some(last) = &params.token {
            entries.retain(|e| query::is_after(e, &sort, last));
        }
        let limit = super::resources::page_size(app, &params) as usize;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let items = match &params.fields {
            Some(f) => entries.iter().map(|o| query::project(o, f)).collect(),
            None => entries.clone(),
        };
        let mut r = KResponse::json(200, json!({ "data": items }));
        if let (true, Some(last)) = (more, entries.last()) {
            let paged = ListParams {
                sort: sort.clone(),
                ..params.clone()
            };
            let url = super::resources::next_page(app, req, &paged, last, entries.len() as u64);
            r.set("next-page", url);
        }
        r
    };
    resp.set_timestamp(*LIST_TIMESTAMP.get_or_init(|| now));
    resp.set("cache-control", "no-cache, no-store");
    Ok(resp)
}

/// Sort keys and operator filters on `last_modified` are accepted and
/// ignored, as in Kinto (the typed `_since`, `_before`, `_to` and
/// `last_modified` stay). Returns the other pairs, then those filters.
type Pairs = Vec<(String, String)>;
fn without_last_modified(pairs: Pairs) -> (Pairs, Pairs) {
    let (timestamp_filters, pairs): (Pairs, Pairs) = pairs.into_iter().partition(|(k, _)| {
        k.strip_suffix("last_modified")
            .is_some_and(super::querystring::is_filter_prefix)
    });
    let pairs = pairs
        .into_iter()
        .map(|(k, v)| {
            if k != "_sort" {
                return (k, v);
            }
            let kept: Vec<&str> = v
                .split(',')
                .filter(|f| f.trim().trim_start_matches(['-', '+']) != "last_modified")
                .collect();
            (k, kept.join(","))
        })
        .collect();
    (pairs, timestamp_filters)
}

/// `_fields` names known fields only (Kinto checks them after the filters).
fn check_fields(fields: Option<&[String]>) -> Result<(), KintoError> {
    let unknown: Vec<&str> = fields
        .unwrap_or_default()
        .iter()
        .map(|f| f.split('.').next().unwrap_or_default())
        .filter(|f| *f != "last_modified" && !FIELDS.contains(f))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(KintoError::invalid(
        "body",
        Some("Invalid _fields parameter"),
        format!("Fields {} do not exist", unknown.join(",")),
    ))
}

/// The requested sort with `-uri` as Kinto's tie-breaker (`uri` is unique),
/// without the `last_modified`/`id` keys other lists add.
fn sort_of(pairs: &[(String, String)]) -> Result<Vec<SortKey>, KintoError> {
    let mut sort = match pairs.iter().find(|(k, _)| k == "_sort") {
        Some((_, raw)) => {
            super::querystring::sort_keys(raw).map_err(super::resources::query_error)?
        }
        None => Vec::new(),
    };
    if !sort.iter().any(|k| k.field == "uri") {
        sort.push(SortKey {
            field: "uri".into(),
            descending: true,
        });
    }
    Ok(sort)
}

/// What settings grant at the root: creating buckets and accounts.
async fn root_entry(app: &App, caller: &Caller) -> Result<Option<Value>, KintoError> {
    let cfg = &app.config;
    let mut principals = caller.principals.clone();
    principals.extend(app.shards.groups_of(&caller.principals).await?);
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
    Ok((!perms.is_empty())
        .then(|| json!({"uri": "/", "resource_name": "root", "permissions": perms})))
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
