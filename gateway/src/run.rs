//! Serving the HTTP API, for the `kinto` and `kinto-gateway` binaries.

use crate::app::App;
use crate::config::GatewayConfig;
use crate::entry::router;
use crate::routing::ShardMap;

/// Serves the HTTP API until shutdown, reaching the shards of `shard_urls`.
pub async fn serve_gateway(cfg: GatewayConfig) -> Result<(), String> {
    let tls = crate::shard_tls::client_tls(&cfg)?;
    let shards = ShardMap::connect_with(&cfg.shard_urls, tls.as_ref())?;
    serve_with(cfg, shards).await
}

/// Serves the HTTP API until shutdown with the given shards.
pub async fn serve_with(cfg: GatewayConfig, shards: ShardMap) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(&cfg.bind)
        .await
        .map_err(|e| format!("cannot bind {}: {e}", cfg.bind))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(shards = shards.len(), "listening on {addr}");
    println!("listening on {addr}");
    let admission = cfg.admission.clone();
    let app = App::new(cfg, shards)?;
    crate::admission::spawn_sweeper(std::sync::Arc::downgrade(&app));
    let shutdown = kinto_runtime::process::shutdown_signal();
    crate::connections::serve(listener, router(app), &admission, shutdown).await;
    Ok(())
}
