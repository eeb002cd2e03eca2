//! Serving the HTTP API, for the `kinto` and `kinto-gateway` binaries.

use crate::app::App;
use crate::config::GatewayConfig;
use crate::entry::router;
use crate::routing::ShardMap;
use kinto_placement::live::{LiveMap, Placement};
use std::sync::Arc;

/// Serves the HTTP API until shutdown, reaching the shards of `shard_urls`.
pub async fn serve_gateway(cfg: GatewayConfig) -> Result<(), String> {
    let tls = crate::shard_tls::client_tls(&cfg)?;
    let shards = ShardMap::connect_with(&cfg.shard_urls, tls.as_ref(), live_map(&cfg)?)?;
    serve_with(cfg, shards).await
}

/// The map `kinto-gateway` routes by: the one stored in `placement_dir`,
/// watched (stored now, as the shards do, if the gateway starts first), or
/// the static map of `shard_urls`. The map's shards are `shard_urls` by
/// index: their count must match.
fn live_map(cfg: &GatewayConfig) -> Result<Arc<LiveMap>, String> {
    let count = cfg.shard_urls.len() as u32;
    let Some(dir) = &cfg.placement_dir else {
        return Ok(LiveMap::fixed(Placement::fixed(count)));
    };
    let dir = std::path::Path::new(dir);
    let map = kinto_placement::file_store::open_or_init(dir, count)?;
    if map.shards.len() != count as usize {
        return Err(format!(
            "{} holds a map of {} shards (generation {}), but shard_urls names {count}",
            dir.display(),
            map.shards.len(),
            map.generation
        ));
    }
    let live = LiveMap::stored(dir, &map);
    let poll = std::time::Duration::from_millis(cfg.placement_poll_ms.max(1));
    live.watch(
        poll,
        |e| tracing::warn!(error = %e, "cannot read the shard map"),
    )?;
    Ok(live)
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
