//! `kinto-ceiling`: the smallest server that does what a Kinto write does at
//! the HTTP level (parse a JSON body, answer a similar JSON body), so the
//! load test can measure how far the machine goes with no storage, no
//! permissions and no gRPC hop. `--bind 127.0.0.1:8899`.

use axum::extract::Path;
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

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    let app = axum::Router::new().route("/v1/echo/{id}", put(echo));
    let listener = tokio::net::TcpListener::bind(&cli.bind).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
