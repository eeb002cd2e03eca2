//! `kinto-ceiling`: the smallest server that does what a Kinto write does at
//! the HTTP level (parse a JSON body, answer a similar JSON body), so the
//! load test can measure how far the machine goes with no storage, no
//! permissions and no gRPC hop. `--bind 127.0.0.1:8899`.
//!
//! Two shapes: `PUT /v1/echo/{id}` (one record, the `ceiling` scenario), and
//! every other path, which answers the storage.sync mix's own requests the
//! way Kinto would shape them (status, `data`, a `/batch` of 25 answered with
//! 25 sub-responses) so the `storagesync` scenario itself can run against
//! the ceiling: the same request stream, with nothing but HTTP and JSON.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::put;
use axum::Json;
use clap::Parser;
use serde_json::{json, Value};

#[derive(Parser)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:8899")]
    bind: String,
}

async fn echo(Path(id): Path<String>, Json(body): Json<Value>) -> Json<Value> {
    let mut data = body.get("data").cloned().unwrap_or_else(|| json!({}));
    data["id"] = id.into();
    data["last_modified"] = 1_700_000_000_000u64.into();
    Json(json!({"data": data, "permissions": {"write": ["basicauth:ceiling"]}}))
}

const STAMP: u64 = 1_700_000_000_000;

/// A record or collection as Kinto answers it: the sent `data`, `id`, `last_modified`.
fn object(path: &str, body: Option<&Value>) -> Value {
    let mut data = body
        .and_then(|b| b.get("data").cloned())
        .unwrap_or_else(|| json!({}));
    let id = path.rsplit('/').next().unwrap_or_default();
    data["id"] = id.into();
    data["last_modified"] = STAMP.into();
    json!({"data": data, "permissions": {"write": ["basicauth:ceiling"]}})
}

async fn mix(
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let parsed: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(_) => {
                return (StatusCode::BAD_REQUEST, Json(json!({"errno": 107}))).into_response()
            }
        }
    };
    let path = uri.path();
    let etag = [("ETag", format!("\"{STAMP}\""))];
    match method {
        Method::POST if path.ends_with("/batch") => {
            let requests = parsed
                .as_ref()
                .and_then(|b| b.get("requests"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let responses: Vec<Value> = requests
                .iter()
                .map(|r| {
                    let path = r["path"].as_str().unwrap_or_default();
                    json!({"status": 201, "path": path, "headers": {},
                           "body": object(path, r.get("body"))})
                })
                .collect();
            Json(json!({"responses": responses})).into_response()
        }
        Method::GET => (etag, Json(json!({"data": []}))).into_response(),
        Method::DELETE => {
            let id = path.rsplit('/').next().unwrap_or_default();
            let tombstone = json!({"data": {"id": id, "last_modified": STAMP, "deleted": true}});
            (etag, Json(tombstone)).into_response()
        }
        _ => {
            let status = if headers.contains_key("if-match") {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            (status, etag, Json(object(path, parsed.as_ref()))).into_response()
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    let app = axum::Router::new()
        .route("/v1/echo/{id}", put(echo))
        .fallback(mix);
    let listener = tokio::net::TcpListener::bind(&cli.bind).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
