//! `kinto-shard`: one shard node serving gRPC over its store (embedded or CQL);
//! `kinto-shard migrate` prepares a CQL keyspace.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use kinto_shard::config::ShardConfig;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    version,
    about = "A kinto-rs shard node (settings: docs/configuration.md)"
)]
struct Cli {
    #[command(flatten)]
    settings: kinto_runtime::process::SettingsArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Create or upgrade the CQL keyspace and tables (`storage_backend = "cql"`); idempotent.
    Migrate,
    /// Operator commands: a shard's status, a rebalance plan (docs/placement.md).
    #[command(subcommand)]
    Admin(kinto_shard::admin_cli::AdminCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    kinto_runtime::process::exit_code("kinto-shard", run(Cli::parse())).await
}

async fn run(cli: Cli) -> Result<(), String> {
    let raw = cli.settings.load()?;
    let _telemetry = kinto_runtime::process::start_telemetry(&raw, "kinto-shard")?;
    let cfg = ShardConfig::from_raw(&raw)?;
    match cli.command {
        Some(Command::Migrate) => return migrate(&cfg).await,
        Some(Command::Admin(command)) => return kinto_shard::admin_cli::run(command, &cfg).await,
        None => {}
    }
    let transport = kinto_shard::tls::transport(&cfg)?;
    let count = cfg.shard_count.unwrap_or(1).max(1) as u32;
    let index = cfg.shard_index.unwrap_or(0) as u32;
    if index >= count && !cfg.placement_managed {
        return Err(format!(
            "shard_index {index} is not below shard_count {count}"
        ));
    }
    let backend = Arc::new(kinto_shard::storage::Backend::connect_shard(&cfg, index).await?);
    // Buckets are placed by the stored map (placement_dir, or the CQL
    // keyspace); another count would hide them.
    let (store, place) = backend.map_store(&cfg).await?;
    let map = kinto_placement::store::open_or_init(store.as_ref(), count)
        .await
        .map_err(|e| e.to_string())?;
    let stored = map.shards.len();
    if stored != count as usize && !cfg.placement_managed {
        return Err(format!(
            "{place} holds a map of {stored} shards (generation {}), not {count}: start with \
             shard_count {stored}, or change the count by a rebalance (docs/placement.md)",
            map.generation
        ));
    }
    if !map.shards.contains_key(&index) {
        return Err(format!(
            "{place} holds a map without shard {index} (generation {}): a new shard joins \
             with `kinto-shard admin join` first (docs/placement.md)",
            map.generation
        ));
    }
    // Where every shard reads the same map (CQL), a coordinator without a
    // driver may change it through any of them (ShardAdmin.SwapMap).
    let shared = (!backend.is_local()).then(|| Arc::clone(&store));
    let map = kinto_shard::placement::watched(store, &map, cfg.placement_poll())?;
    let storage = backend.open(&cfg, index, count)?;
    let servers = kinto_shard::server::build(Arc::clone(&storage), &raw, &cfg, index, map, shared)?;
    if let Some(bind) = &cfg.metrics_bind {
        kinto_runtime::metrics::serve(bind).await?;
    }
    let (listener, addr) = kinto_shard::server::bind(&cfg.bind).await?;
    tracing::info!("listening on {addr}");
    println!("listening on {addr}");
    // A fenced shard stops as on SIGTERM, then fails: its restart takes a
    // new role and reads the map (docs/placement.md, section 6).
    let stop = {
        let backend = Arc::clone(&backend);
        async move {
            tokio::select! {
                _ = kinto_runtime::process::shutdown_signal() => {}
                _ = backend.fenced() => {}
            }
        }
    };
    kinto_shard::server::serve(servers, listener, transport, stop, cfg.shutdown_refuse()).await?;
    // Every call has answered: what they acknowledged goes to the disk.
    storage
        .close()
        .await
        .map_err(|e| format!("closing the store: {e}"))?;
    if backend.is_fenced() {
        return Err(
            "fenced: a rebalance revoked this shard's Cassandra role while it did not \
                    answer; start it again to rejoin under a new role"
                .into(),
        );
    }
    tracing::info!("stopped");
    Ok(())
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
    migrate_cql(cfg).await
}

#[cfg(not(feature = "cql"))]
async fn migrate_cql(_: &ShardConfig) -> Result<(), String> {
    Err("this kinto-shard was built without the cql backend (cargo feature \"cql\")".into())
}

#[cfg(feature = "cql")]
async fn migrate_cql(cfg: &ShardConfig) -> Result<(), String> {
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
    // A keyspace that was at version 1 may hold objects: they get their
    // counters and index entries now (a new keyspace applied 1 too).
    if applied.contains(&2) && !applied.contains(&1) {
        let shards = cfg.shard_count.unwrap_or(1).max(1) as u32;
        let cluster = kinto_shard::storage::cql::Cluster::connect(&cfg.cql).await?;
        let n = cluster
            .reindex(shards)
            .await
            .map_err(|e| format!("indexing the stored objects: {e}"))?;
        println!("keyspace {keyspace}: indexed {n} objects for {shards} shards");
    }
    Ok(())
}
