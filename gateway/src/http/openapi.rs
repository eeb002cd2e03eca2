//! `GET /__api__`: the API description as OpenAPI 2.0 (Swagger), the shape
//! Kinto serves, so existing tooling reads it.
//!
//! Generated from the router itself: every endpoint of [`ENDPOINTS`] is
//! parsed by [`routes::parse`] from a sample path, and its methods are the
//! ones that route answers ([`Route::methods`]); an endpoint whose plugin is
//! off is left out. Only the naming (tags, operation ids) lives here.

use super::routes::{self, Route};
use crate::config::GatewayConfig;
use serde_json::{json, Map, Value};

/// One endpoint: its path template, how to name its operations, and the
/// plugin it belongs to (`None` for the core API).
struct Endpoint {
    template: &'static str,
    tag: &'static str,
    /// `(singular, plural)` resource names for Kinto-style operation ids
    /// (`get_records`, `create_record`…); `None` for utility endpoints.
    names: Option<(&'static str, &'static str)>,
    /// Operation id of a utility endpoint's single method.
    utility_id: &'static str,
    feature: Option<&'static str>,
}

const fn resource(
    template: &'static str,
    tag: &'static str,
    singular: &'static str,
    plural: &'static str,
    feature: Option<&'static str>,
) -> Endpoint {
    Endpoint {
        template,
        tag,
        names: Some((singular, plural)),
        utility_id: "",
        feature,
    }
}

const fn utility(
    template: &'static str,
    tag: &'static str,
    id: &'static str,
    feature: Option<&'static str>,
) -> Endpoint {
    Endpoint {
        template,
        tag,
        names: None,
        utility_id: id,
        feature,
    }
}

const ENDPOINTS: &[Endpoint] = &[
    utility("/", "Utilities", "server_info", None),
    utility("/__heartbeat__", "Utilities", "__heartbeat__", None),
    utility("/__lbheartbeat__", "Utilities", "__lbheartbeat__", None),
    utility("/__version__", "Utilities", "__version__", None),
    utility("/__api__", "Utilities", "get_openapi_spec", None),
    utility("/batch", "Batch", "batch", None),
    utility("/__flush__", "Flush", "create_flush", Some("flush")),
    utility(
        "/permissions",
        "Permissions",
        "get_permissions",
        Some("permissions"),
    ),
    utility(
        "/__user_data__/{principal}",
        "User-data",
        "delete_user-data",
        None,
    ),
    resource("/buckets", "Buckets", "bucket", "buckets", None),
    resource("/buckets/{id}", "Buckets", "bucket", "buckets", None),
    resource(
        "/buckets/{bucket_id}/groups",
        "Groups",
        "group",
        "groups",
        None,
    ),
    resource(
        "/buckets/{bucket_id}/groups/{id}",
        "Groups",
        "group",
        "groups",
        None,
    ),
    resource(
        "/buckets/{bucket_id}/collections",
        "Collections",
        "collection",
        "collections",
        None,
    ),
    resource(
        "/buckets/{bucket_id}/collections/{id}",
        "Collections",
        "collection",
        "collections",
        None,
    ),
    resource(
        "/buckets/{bucket_id}/collections/{collection_id}/records",
        "Records",
        "record",
        "records",
        None,
    ),
    resource(
        "/buckets/{bucket_id}/collections/{collection_id}/records/{id}",
        "Records",
        "record",
        "records",
        None,
    ),
    resource(
        "/buckets/{bucket_id}/history",
        "History",
        "history",
        "history",
        Some("history"),
    ),
    // Kinto's template `…/{collection_id}@{timestamp}` is not valid Swagger
    // (a parameter must fill its segment): one parameter `collection@timestamp`.
    utility(
        "/buckets/{bucket_id}/snapshot/collections/{collection_at_timestamp}",
        "History",
        "get_history_snapshot",
        Some("history"),
    ),
    resource(
        "/accounts",
        "Accounts",
        "account",
        "accounts",
        Some("accounts"),
    ),
    resource(
        "/accounts/{id}",
        "Accounts",
        "account",
        "accounts",
        Some("accounts"),
    ),
];

fn enabled(cfg: &GatewayConfig, feature: Option<&str>) -> bool {
    match feature {
        None => true,
        Some("permissions") => cfg.permissions_endpoint(),
        Some("flush") => cfg.plugin("flush") || cfg.flush_endpoint_enabled,
        Some(plugin) => cfg.plugin(plugin),
    }
}

/// `{name}` placeholders of a template.
fn placeholders(template: &str) -> Vec<&str> {
    template
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// The template with each placeholder replaced, for the router to parse.
fn sample(template: &str) -> String {
    template
        .split('/')
        .map(|s| match s {
            "{collection_at_timestamp}" => "x@1",
            s if s.starts_with('{') => "x",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn operation_id(e: &Endpoint, method: &str, plural: bool) -> String {
    let Some((one, many)) = e.names else {
        return e.utility_id.to_owned();
    };
    match (method, plural) {
        ("GET", true) => format!("get_{many}"),
        ("POST", _) => format!("create_{one}"),
        ("DELETE", true) => format!("delete_{many}"),
        ("GET", false) => format!("get_{one}"),
        ("PUT", _) => format!("update_{one}"),
        ("PATCH", _) => format!("patch_{one}"),
        ("DELETE", false) => format!("delete_{one}"),
        _ => format!("{}_{one}", method.to_lowercase()),
    }
}

fn operation(e: &Endpoint, method: &str, plural: bool) -> Value {
    let mut params: Vec<Value> = placeholders(e.template)
        .into_iter()
        .map(|p| json!({"name": p, "in": "path", "required": true, "type": "string"}))
        .collect();
    let query = |name: &str, ty: &str, description: &str| json!({"name": name, "in": "query", "type": ty, "required": false, "description": description});
    if plural && e.names.is_some() && matches!(method, "GET" | "DELETE") {
        params.push(query("_limit", "integer", "Number of objects per page."));
        params.push(query(
            "_sort",
            "string",
            "Comma-separated fields, `-field` for descending.",
        ));
        params.push(query(
            "_token",
            "string",
            "Pagination token, from the Next-Page header.",
        ));
        params.push(query(
            "_since",
            "string",
            "Only objects modified after this timestamp, tombstones included.",
        ));
        params.push(query(
            "_before",
            "string",
            "Only objects modified before this timestamp.",
        ));
        params.push(query(
            "_fields",
            "string",
            "Comma-separated fields to return.",
        ));
    }
    if matches!(method, "PUT" | "PATCH" | "POST") {
        params.push(
            json!({"name": "body", "in": "body", "required": method != "PATCH",
            "schema": {"$ref": "#/definitions/Envelope"}}),
        );
    }
    if e.names.is_some() {
        for h in ["If-Match", "If-None-Match"] {
            params.push(json!({"name": h, "in": "header", "type": "string", "required": false}));
        }
    }
    let mut responses = Map::new();
    for (code, schema) in success(e, method, plural) {
        let mut r = json!({"description": "Success."});
        if let Some(s) = schema {
            r["schema"] = json!({"$ref": format!("#/definitions/{s}")});
        }
        if e.names.is_some() {
            r["headers"] = timestamp_headers();
        }
        responses.insert(code.into(), r);
    }
    if e.names.is_some() && method == "GET" {
        responses.insert(
            "304".into(),
            json!({"description": "Not modified since the value in If-None-Match.",
                   "headers": timestamp_headers()}),
        );
    }
    for (code, text) in [
        ("400", "The request is invalid."),
        ("401", "The request is missing authentication headers."),
        (
            "403",
            "The user is not allowed to perform the operation, or the resource is not accessible.",
        ),
        ("404", "The object does not exist or was deleted."),
        (
            "406",
            "The client doesn't accept supported responses Content-Type.",
        ),
        (
            "412",
            "Record was changed or deleted since value in `If-Match` header.",
        ),
        ("415", "The request body's Content-Type is not supported."),
        (
            "503",
            "Service temporary unavailable due to overloading or maintenance.",
        ),
        ("default", "Any other error."),
    ] {
        // A failing heartbeat answers its checks, not an error.
        let schema = if code == "503" && e.utility_id == "__heartbeat__" {
            "Info"
        } else {
            "Error"
        };
        responses.entry(code).or_insert_with(
            || json!({"description": text, "schema": {"$ref": format!("#/definitions/{schema}")}}),
        );
    }
    json!({
        "operationId": operation_id(e, method, plural),
        "tags": [e.tag],
        "produces": ["application/json"],
        "parameters": params,
        "responses": responses,
    })
}

/// The success statuses of an operation and the definition of their body
/// (`None`: no body), as Kinto's document declares them.
fn success(e: &Endpoint, method: &str, plural: bool) -> Vec<(&'static str, Option<&'static str>)> {
    if e.names.is_some() {
        return match (method, plural) {
            ("GET" | "DELETE", true) => vec![("200", Some("List"))],
            ("POST", _) | ("PUT", _) => vec![("200", Some("Object")), ("201", Some("Object"))],
            _ => vec![("200", Some("Object"))],
        };
    }
    match e.utility_id {
        "batch" => vec![("200", Some("Batch"))],
        "get_permissions" | "get_history_snapshot" => vec![("200", Some("List"))],
        "delete_user-data" => vec![("200", Some("Object"))],
        "create_flush" => vec![("202", None)],
        _ => vec![("200", Some("Info"))],
    }
}

/// `ETag` and `Last-Modified`, which every resource answer carries.
fn timestamp_headers() -> Value {
    json!({
        "ETag": {"type": "string", "pattern": "^\"([0-9]+?)\"$|\\*"},
        "Last-Modified": {"type": "string"},
    })
}

/// The whole document for this server's configuration.
pub fn document(cfg: &GatewayConfig, host: &str, scheme: &str) -> Value {
    let mut paths = Map::new();
    let mut tags: Vec<&str> = Vec::new();
    for e in ENDPOINTS.iter().filter(|e| enabled(cfg, e.feature)) {
        let Some(route) = routes::parse(&sample(e.template)) else {
            continue; // the unit test below keeps the table and the router in step
        };
        let plural = matches!(&route, Route::Resource(p) if p.id.is_none());
        let mut ops = Map::new();
        for m in super::cors::methods(cfg, &route) {
            if !matches!(m, "OPTIONS" | "HEAD") {
                ops.insert(m.to_lowercase(), operation(e, m, plural));
            }
        }
        if !tags.contains(&e.tag) {
            tags.push(e.tag);
        }
        paths.insert(e.template.into(), Value::Object(ops));
    }
    let mut security = json!({});
    if cfg
        .multiauth_policies
        .iter()
        .any(|p| p == "basicauth" || p == "account")
    {
        security["basicauth"] = json!({"type": "basic"});
    }
    json!({
        "swagger": "2.0",
        "info": {"title": cfg.project_name, "version": super::utility::HTTP_API_VERSION},
        "host": host,
        "schemes": [scheme],
        "basePath": "/v1",
        "securityDefinitions": security,
        "tags": tags.iter().map(|t| json!({"name": t})).collect::<Vec<_>>(),
        "paths": paths,
        "definitions": {
            "Error": {
                "type": "object",
                "required": ["code", "errno", "error"],
                "properties": {
                    "code": {"type": "integer"},
                    "errno": {"type": "integer"},
                    "error": {"type": "string"},
                    "message": {"type": "string"},
                    "info": {"type": "string"},
                    "details": {},
                },
            },
            "Object": {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "data": {"type": "object", "additionalProperties": true},
                    "permissions": {"$ref": "#/definitions/Permissions"},
                },
            },
            "List": {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "data": {"type": "array", "items": {"type": "object", "additionalProperties": true}},
                },
            },
            "Permissions": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
            "Batch": {
                "type": "object",
                "required": ["responses"],
                "properties": {
                    "responses": {"type": "array", "items": {
                        "type": "object",
                        "required": ["status", "path"],
                        "properties": {
                            "status": {"type": "integer"},
                            "path": {"type": "string"},
                            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                            "body": {},
                        },
                    }},
                },
            },
            "Info": {"type": "object", "additionalProperties": true},
            "Envelope": {
                "type": "object",
                "properties": {
                    "data": {"type": "object", "additionalProperties": true},
                    "permissions": {"type": "object", "additionalProperties": {
                        "type": "array", "items": {"type": "string"}}},
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_routed() {
        for e in ENDPOINTS {
            assert!(
                routes::parse(&sample(e.template)).is_some(),
                "{} is not a route",
                e.template
            );
        }
    }

    #[test]
    fn operation_ids_like_kintos() {
        let e = &ENDPOINTS[15];
        assert_eq!(operation_id(e, "GET", true), "get_records");
        assert_eq!(operation_id(e, "POST", true), "create_record");
        assert_eq!(operation_id(&ENDPOINTS[16], "PATCH", false), "patch_record");
    }
}
