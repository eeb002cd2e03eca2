//! `kinto-gateway`: the stateless HTTP gateway in front of `shard_urls`.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use kinto_gateway::config::GatewayConfig;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    version,
    about = "The kinto-rs HTTP gateway (settings: docs/configuration.md)"
)]
struct Cli {
    #[command(flatten)]
    settings: kinto_runtime::process::SettingsArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    kinto_runtime::process::exit_code("kinto-gateway", async {
        let raw = cli.settings.load()?;
        let _telemetry = kinto_runtime::process::start_telemetry(&raw, "kinto-gateway")?;
        let cfg = GatewayConfig::from_raw(&raw)?;
        kinto_gateway::run::serve_gateway(cfg).await
    })
    .await
}
