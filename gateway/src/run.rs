//! Process plumbing shared by the `kinto` and `kinto-gateway` binaries.

use crate::app::App;
use crate::config::GatewayConfig;
use crate::entry::router;
use crate::routing::ShardMap;

/// Logs, traces and metrics export for this process (`kinto_proto::telemetry`); keep the
/// returned guard alive until exit so queued spans are flushed.
pub fn init_telemetry(
    raw: &kinto_proto::settings::RawSettings,
    service_name: &str,
) -> Result<kinto_proto::telemetry::Telemetry, String> {
    let cfg = kinto_proto::telemetry::TelemetryConfig::from_raw(raw, service_name)?;
    kinto_proto::telemetry::init(&cfg)
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Serves the HTTP API until shutdown, reaching the shards of `shard_urls`.
pub async fn serve_gateway(cfg: GatewayConfig) -> Result<(), String> {
    let shards = ShardMap::connect(&cfg.shard_urls)?;
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
    let app = App::new(cfg, shards);
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}
