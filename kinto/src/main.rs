//! `kinto`: the whole service in one process, for one machine.
//!
//! Starts `shards` shard nodes, each with its own embedded store under
//! `data_dir/shard-<i>`, then the gateway in front of them. The gateway
//! still reaches the shards only through their gRPC service interface (the
//! same protobuf request and reply messages, trace context in the same
//! metadata, the same shard code as a distributed deployment), but calls it
//! in memory: no socket, no HTTP/2 framing, no encoding.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use kinto_gateway::config::GatewayConfig;
use kinto_placement::map::ShardMap;
use kinto_shard::config::ShardConfig;
use serde_json::Value;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

mod init;

#[derive(Parser)]
#[command(
    version,
    about = "kinto-rs: gateway and shards in one process (settings: docs/configuration.md)"
)]
struct Cli {
    #[command(flatten)]
    settings: kinto_runtime::process::SettingsArgs,
    /// Start from Kinto's code defaults (every plugin off, basic auth)
    /// instead of the settings `kinto init` writes.
    #[arg(long)]
    bare: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    kinto_runtime::process::exit_code("kinto", run(Cli::parse())).await
}

/// The shard count is fixed when a data directory is created: buckets are
/// placed by the shard map stored in `placement/` there, so reopening with
/// another count would hide data. A directory made before the map was
/// stored has `layout.json` with its count, which the first map keeps.
fn check_layout(data_dir: &Path, shards: u32) -> Result<ShardMap, String> {
    let legacy = data_dir.join("layout.json");
    let created_with = match std::fs::read(&legacy) {
        Ok(bytes) => {
            let v: Value =
                serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", legacy.display()))?;
            u32::try_from(v["shards"].as_u64().unwrap_or(0)).unwrap_or(0)
        }
        Err(_) => shards,
    };
    let map = kinto_placement::file_store::open_or_init(&data_dir.join("placement"), created_with)?;
    let existing = map.shards.len();
    if existing != shards as usize {
        return Err(format!(
            "{} was created with {existing} shards; start with KINTO_SHARDS={existing} \
             (the count changes only by a rebalance, docs/placement.md)",
            data_dir.display()
        ));
    }
    Ok(map)
}

/// The settings of this binary alone (docs/configuration.md).
#[derive(serde::Deserialize)]
struct Composition {
    /// Shard nodes in this process.
    #[serde(default, deserialize_with = "kinto_runtime::settings::de_opt_u64")]
    shards: Option<u64>,
}

impl Composition {
    fn shard_count(&self) -> Result<u32, String> {
        match self.shards.unwrap_or(4) {
            n @ 1..=256 => Ok(n as u32),
            n => Err(format!("setting shards: {n} is not between 1 and 256")),
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let raw = cli.settings.load()?;
    let data_dir = ShardConfig::from_raw(&raw)?.data_dir;
    let raw = if cli.bare {
        raw
    } else {
        init::with_init_defaults(raw, &data_dir)?
    };
    let _telemetry = kinto_runtime::process::start_telemetry(&raw, "kinto")?;
    let gateway: GatewayConfig = GatewayConfig::from_raw(&raw)?;
    let count = raw.parse::<Composition>()?.shard_count()?;
    let backend = kinto_shard::storage::Backend::connect(&ShardConfig::from_raw(&raw)?).await?;
    // The embedded stores pin buckets to shard directories; a CQL keyspace is
    // shared, and each shard reads only the slots it owns. The gateway and
    // every shard of this process serve by one live map.
    let map = if backend.is_local() {
        let stored = check_layout(&data_dir, count)?;
        let poll = ShardConfig::from_raw(&raw)?.placement_poll();
        kinto_shard::placement::watched_dir(&data_dir.join("placement"), &stored, poll)?
    } else {
        kinto_shard::placement::fixed(count)
    };
    let (mut services, mut stores) = (Vec::new(), Vec::new());
    for i in 0..count {
        let mut shard_raw = raw.clone();
        shard_raw.set(
            "data_dir",
            Value::String(data_dir.join(format!("shard-{i}")).display().to_string()),
        );
        let cfg = ShardConfig::from_raw(&shard_raw)?;
        let storage = backend.open(&cfg, i, count)?;
        stores.push(Arc::clone(&storage));
        services.push(kinto_shard::server::service(
            storage,
            &shard_raw,
            &cfg,
            i,
            Arc::clone(&map),
        )?);
    }
    tracing::info!(shards = count, data_dir = %data_dir.display(), "shards started");
    let shards = kinto_gateway::routing::ShardMap::in_process(services, map)?;
    kinto_gateway::run::serve_with(gateway, shards).await?;
    // The requests in progress have answered: what they acknowledged goes to
    // the disk before the process exits (a stop by SIGTERM).
    for store in stores {
        store
            .close()
            .await
            .map_err(|e| format!("closing a store: {e}"))?;
    }
    Ok(())
}
