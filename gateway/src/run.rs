//! Serving the HTTP API, for the `kinto` and `kinto-gateway` binaries.

use crate::app::App;
use crate::config::GatewayConfig;
use crate::entry::router;
use crate::map_from_shards::MapFromShards;
use crate::routing::ShardMap;
use kinto_placement::live::{LiveMap, Placement};
use kinto_placement::store::MapSource;
use std::sync::Arc;

/// Serves the HTTP API until shutdown, reaching the shards of `shard_urls`.
pub async fn serve_gateway(cfg: GatewayConfig) -> Result<(), String> {
    let tls = crate::shard_tls::client_tls(&cfg)?;
    let map = live_map(&cfg, tls.as_ref()).await?;
    let shards = ShardMap::connect_with(&cfg.shard_urls, tls.as_ref(), map)?;
    serve_with(cfg, shards).await
}

/// The map `kinto-gateway` routes by, watched every `placement_poll_ms`:
/// the one stored in `placement_dir` (stored now, as the shards do, if the
/// gateway starts first; its shards are `shard_urls` by index, so their
/// count must match), or without one the map the shards report (a CQL
/// deployment's, in its keyspace). Shards that do not answer yet leave the
/// static map of `shard_urls` in force until they do: a shard refuses what
/// a stale map sends it, and the refusal makes the gateway ask again.
async fn live_map(
    cfg: &GatewayConfig,
    tls: Option<&tonic::transport::ClientTlsConfig>,
) -> Result<Arc<LiveMap>, String> {
    let count = cfg.shard_urls.len() as u32;
    let live = match &cfg.placement_dir {
        Some(dir) => {
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
            LiveMap::stored(dir, &map)
        }
        None => {
            let source = Arc::new(MapFromShards::new(&cfg.shard_urls, tls)?);
            let first = match source.load().await {
                Ok(Some(map)) => Placement::of(&map),
                Ok(None) => Placement::fixed(count),
                Err(e) => {
                    tracing::warn!(error = %e, "no shard reported the shard map yet");
                    Placement::fixed(count)
                }
            };
            LiveMap::from_source(source, first)
        }
    };
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
