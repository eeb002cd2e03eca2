//! `kinto-gateway`: the stateless HTTP gateway in front of `shard_urls`.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use kinto_gateway::config::GatewayConfig;
use kinto_proto::settings::RawSettings;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    version,
    about = "The kinto-rs HTTP gateway (settings: docs/configuration.md)"
)]
struct Cli {
    /// TOML settings file; KINTO_* environment variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = async {
        let raw = RawSettings::load(cli.config.as_deref())?;
        let _telemetry = kinto_gateway::run::init_telemetry(&raw, "kinto-gateway")?;
        let cfg = GatewayConfig::from_raw(&raw)?;
        kinto_gateway::run::serve_gateway(cfg).await
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kinto-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
