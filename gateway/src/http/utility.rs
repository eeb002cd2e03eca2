//! The hello view, heartbeats, version and end-of-service.

use super::message::{KRequest, KResponse};
use crate::app::App;
use crate::config::GatewayConfig;
use kinto_proto::pb::Caller;
use serde_json::{json, Value};
use std::time::Duration;

/// `/contribute.json`: Kinto's document shape, describing this project
/// (Kinto's names its own repository, chat and maintainers).
pub fn contribute() -> KResponse {
    KResponse::json(
        200,
        json!({
            "name": "kinto-rs",
            "description": "A Rust server for the Kinto HTTP API 1.x: a minimalist JSON storage \
                service with synchronisation and sharing abilities.",
            "repository": {"license": "Apache License (2.0)"},
            "participate": {"docs": "https://kinto.readthedocs.io/"},
            "keywords": ["JSON", "Rust", "REST", "API", "Database"],
        }),
    )
}

/// Kinto's API version this server implements.
pub const HTTP_API_VERSION: &str = "1.23";

pub async fn hello(app: &App, req: &KRequest, caller: &Caller) -> KResponse {
    let cfg = &app.config;
    let mut body = json!({
        "project_name": cfg.project_name,
        "project_version": cfg.project_version.clone().unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned()),
        "http_api_version": HTTP_API_VERSION,
        "project_docs": cfg.project_docs,
        "url": format!("{}/v1/", app.base_url(req)),
        "config": null,
        "settings": {
            "batch_max_requests": cfg.batch_max_requests,
            "readonly": cfg.readonly,
            "explicit_permissions": true,
        },
        "capabilities": capabilities(cfg),
    });
    if let Some(caps) = body["capabilities"].as_object_mut() {
        caps.extend(crate::auth::capabilities(&app.identity, &cfg.multiauth_policies).await);
    }
    if let Some(eos) = &cfg.eos {
        body["eos"] = Value::String(eos.clone());
    }
    if !caller.user_id.is_empty() {
        let mut principals = vec![caller.user_id.clone()];
        // Informative only (rights are checked on the shards): the view
        // stays up while a shard is down, whose failure `groups_by_shard`
        // logged and counted; the groups of the shards that answered.
        let mut groups: Vec<String> = app
            .shards
            .groups_by_shard(&caller.principals)
            .await
            .into_iter()
            .flatten()
            .flatten()
            .collect();
        groups.sort();
        groups.dedup();
        principals.extend(groups);
        principals.push(crate::auth::EVERYONE.into());
        principals.push(crate::auth::AUTHENTICATED.into());
        body["user"] = json!({ "id": caller.user_id, "principals": principals });
        if cfg.plugin("default_bucket") {
            body["user"]["bucket"] = app.bucket_ids.of(&caller.user_id).into();
        }
    }
    KResponse::json(200, body)
}

/// What this deployment offers, in Kinto's words, so clients can adapt.
fn capabilities(cfg: &GatewayConfig) -> Value {
    let mut caps = serde_json::Map::new();
    // (name, on, description, url), in Kinto's words.
    let table: [(&str, bool, &str, &str); 9] = [
        ("basicauth", cfg.multiauth_policies.iter().any(|p| p == "basicauth"),
         "Very basic authentication sessions. Not for production use.",
         "http://kinto.readthedocs.io/en/stable/api/1.x/authentication.html"),
        ("default_bucket", cfg.plugin("default_bucket"),
         "The default bucket is an alias for a personal bucket where collections are created implicitly.",
         "https://kinto.readthedocs.io/en/latest/api/1.x/buckets.html#personal-bucket-default"),
        ("accounts", cfg.plugin("accounts"), "Manage user accounts.",
         "https://kinto.readthedocs.io/en/latest/api/1.x/accounts.html"),
        ("history", cfg.plugin("history"), "Track changes on data.",
         "http://kinto.readthedocs.io/en/latest/api/1.x/history.html"),
        ("flush_endpoint", cfg.plugin("flush"),
         "The __flush__ endpoint can be used to remove all data from all backends.",
         "https://kinto.readthedocs.io/en/latest/api/1.x/flush.html"),
        ("schema", cfg.experimental_collection_schema_validation,
         "Validates collection records with JSON schemas.",
         "https://kinto.readthedocs.io/en/latest/api/1.x/collections.html#collection-json-schema"),
        ("permissions_endpoint", cfg.permissions_endpoint(),
         "The permissions endpoint can be used to list all user objects permissions.",
         "https://kinto.readthedocs.io/en/latest/configuration/settings.html#activating-the-permissions-endpoint"),
        ("prometheus", cfg.plugin("prometheus"), "Prometheus metrics.", "https://github.com/Kinto/kinto/"),
        ("quotas", cfg.plugin("quotas"), "Quotas Management on buckets and collections.",
         "https://kinto.readthedocs.io"),
    ];
    for (name, on, description, url) in table {
        if on {
            caps.insert(name.into(), json!({"description": description, "url": url}));
        }
    }
    if cfg.plugin("admin") {
        caps.insert("admin".into(), super::admin::capability(cfg));
    }
    if let Some(accounts) = caps.get_mut("accounts") {
        accounts["validation_enabled"] = false.into();
    }
    Value::Object(caps)
}

/// Every shard's storage must answer; 503 otherwise.
pub async fn heartbeat(app: &App) -> KResponse {
    let shards = app.shards.health(Duration::from_secs(5)).await;
    let ok = shards.iter().all(|s| *s);
    KResponse::json(
        if ok { 200 } else { 503 },
        json!({ "storage": ok, "permission": ok, "cache": true }),
    )
}

pub fn version() -> KResponse {
    KResponse::json(
        200,
        json!({
            "name": "kinto-rs",
            "version": env!("CARGO_PKG_VERSION"),
            "source": "kinto-rs",
            "commit": option_env!("KINTO_RS_COMMIT").unwrap_or("unknown"),
        }),
    )
}

/// `(past the date, Alert header)` when `eos` is set.
pub fn end_of_service(cfg: &GatewayConfig) -> Option<(bool, String)> {
    let eos = cfg.eos.as_deref()?;
    let past = date_is_past(eos);
    let code = if past { "hard-eol" } else { "soft-eol" };
    let alert = json!({
        "code": code,
        "message": cfg.eos_message,
        "url": cfg.eos_url.clone().unwrap_or_else(|| cfg.project_docs.clone()),
    });
    Some((past, alert.to_string()))
}

/// Is an ISO `YYYY-MM-DD` date before today (UTC)?
fn date_is_past(date: &str) -> bool {
    let parts: Vec<i64> = date.split('-').filter_map(|p| p.parse().ok()).collect();
    let [y, m, d] = parts[..] else { return false };
    // Days since the epoch of a civil date (Howard Hinnant's algorithm).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let now_days = kinto_model::clock::now_ms() as i64 / 86_400_000;
    days <= now_days
}

#[cfg(test)]
mod tests {
    use super::date_is_past;

    #[test]
    fn eos_dates() {
        assert!(date_is_past("2000-01-01"));
        assert!(!date_is_past("2999-01-01"));
        assert!(!date_is_past("garbage"));
    }
}
