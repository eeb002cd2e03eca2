//! `kinto-shard`: one shard node serving gRPC over its embedded store.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use kinto_proto::settings::RawSettings;
use kinto_shard::config::ShardConfig;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    version,
    about = "A kinto-rs shard node (settings: docs/configuration.md)"
)]
struct Cli {
    /// TOML settings file; KINTO_* environment variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("kinto-shard: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let raw = RawSettings::load(cli.config.as_deref())?;
    let telemetry = kinto_proto::telemetry::TelemetryConfig::from_raw(&raw, "kinto-shard")?;
    let _telemetry = kinto_proto::telemetry::init(&telemetry)?;
    let cfg = ShardConfig::from_raw(&raw)?;
    let count = cfg.shard_count.unwrap_or(1).max(1) as u32;
    let index = cfg.shard_index.unwrap_or(0) as u32;
    if index >= count {
        return Err(format!(
            "shard_index {index} is not below shard_count {count}"
        ));
    }
    let service = kinto_shard::server::build(&cfg, &raw, index, count)?;
    if let Some(bind) = raw.0.get("metrics_bind").and_then(|v| v.as_str()) {
        kinto_shard::metrics::serve(bind).await?;
    }
    let (listener, addr) = kinto_shard::server::bind(&cfg.bind).await?;
    tracing::info!("listening on {addr}");
    println!("listening on {addr}");
    kinto_shard::server::serve(service, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
