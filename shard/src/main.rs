//! `kinto-shard`: one shard node serving gRPC over its store (embedded or CQL);
//! `kinto-shard migrate` prepares a CQL keyspace.

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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Create or upgrade the CQL keyspace and tables (`storage_backend = "cql"`); idempotent.
    Migrate,
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
    if let Some(Command::Migrate) = cli.command {
        return migrate(&cfg).await;
    }
    let count = cfg.shard_count.unwrap_or(1).max(1) as u32;
    let index = cfg.shard_index.unwrap_or(0) as u32;
    if index >= count {
        return Err(format!(
            "shard_index {index} is not below shard_count {count}"
        ));
    }
    let storage = kinto_shard::storage::Backend::connect(&cfg)
        .await?
        .open(&cfg, index, count)?;
    let service = kinto_shard::server::build(storage, &raw, &cfg, index, count);
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

/// `kinto-shard migrate`: brings the keyspace to this binary's schema version.
async fn migrate(cfg: &ShardConfig) -> Result<(), String> {
    if cfg.storage_backend != "cql" {
        println!(
            "storage_backend is {:?}: nothing to migrate",
            cfg.storage_backend
        );
        return Ok(());
    }
    let keyspace = cfg.cql.keyspace()?;
    let session = cfg.cql.connect().await?;
    let applied =
        kinto_shard::storage::cql::schema::migrate(&session, keyspace, &cfg.cql.cql_replication)
            .await?;
    if applied.is_empty() {
        println!("keyspace {keyspace} is up to date");
    } else {
        println!("keyspace {keyspace}: applied schema versions {applied:?}");
    }
    Ok(())
}
