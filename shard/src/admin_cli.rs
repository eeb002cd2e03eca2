//! `kinto-shard admin`: the operator's commands (docs/placement.md,
//! section 7). `status` asks a running shard over `ShardAdmin`; `plan`
//! prints the moves a rebalance would make, and makes none; `join` names a
//! shard (and its address) in the map; `rebalance` runs the moves
//! (the `kinto-rebalance` crate), `abort` rolls back a batch left moving.

use crate::config::ShardConfig;
use kinto_placement::balance::{self, Move};
use kinto_placement::map::ShardMap;
use kinto_placement::store::MapStore;
use kinto_proto::pb::shard_admin_client::ShardAdminClient;
use kinto_proto::pb::{SlotRange, StatusRequest};
use kinto_rebalance::Coordinator;
use kinto_runtime::tls;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::ClientTlsConfig;

/// How the commands reach shards over TLS.
#[derive(clap::Args)]
pub struct TlsArgs {
    /// The CA the shards' certificates chain to (for https:// addresses).
    #[arg(long)]
    ca: Option<String>,
    /// This client's certificate chain and key, for shards that require one.
    #[arg(long, requires = "key")]
    cert: Option<String>,
    #[arg(long, requires = "cert")]
    key: Option<String>,
}

impl TlsArgs {
    fn config(&self) -> Result<Option<ClientTlsConfig>, String> {
        client_tls(
            self.ca.as_deref(),
            self.cert.as_deref().zip(self.key.as_deref()),
        )
    }
}

#[derive(clap::Subcommand)]
pub enum AdminCommand {
    /// A shard's map generation, owned, frozen and staged slots (ShardAdmin.Status).
    Status {
        /// The shard's gRPC address [default: http:// and this shard's `bind`].
        #[arg(long)]
        url: Option<String>,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Names shard `--shard` in the stored map with the address the
    /// coordinator reaches it at; it owns nothing until a rebalance. A new
    /// shard process is accepted once the map names it.
    Join {
        #[arg(long)]
        shard: u32,
        #[arg(long)]
        address: String,
    },
    /// Moves slots until shards 0 to m-1 share them evenly, a batch at a
    /// time (`move_batch_slots`), then drops the shards beyond from the map.
    /// Resumes a batch the map shows moving.
    Rebalance {
        #[arg(long)]
        shards: u32,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Rolls back every batch the map shows moving (before its handoff).
    Abort {
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// The slot moves that would balance the stored map over `--shards`
    /// shards (shard ids 0 to m-1); nothing is moved.
    Plan {
        #[arg(long)]
        shards: u32,
    },
    /// Prints the stored map (JSON), wherever the deployment stores it.
    Map,
}

pub async fn run(command: AdminCommand, cfg: &ShardConfig) -> Result<(), String> {
    match command {
        AdminCommand::Status { url, tls } => {
            let url = url.unwrap_or_else(|| format!("http://{}", cfg.bind));
            status(&url, tls.config()?).await
        }
        AdminCommand::Plan { shards } => plan(cfg, shards).await,
        AdminCommand::Map => {
            let map = stored(cfg).await?.1;
            println!("{}", String::from_utf8_lossy(&map.to_json()));
            Ok(())
        }
        AdminCommand::Join { shard, address } => {
            let generation = coordinator(cfg, None).await?.join(shard, &address).await?;
            println!("map generation {generation}: shard {shard} at {address}");
            Ok(())
        }
        AdminCommand::Rebalance { shards, tls } => {
            if shards == 0 {
                return Err("--shards must be at least 1".into());
            }
            coordinator(cfg, tls.config()?)
                .await?
                .rebalance(shards)
                .await
        }
        AdminCommand::Abort { tls } => coordinator(cfg, tls.config()?).await?.abort().await,
    }
}

/// Where the deployment of `cfg` stores its map (`storage_backend`: the
/// placement directory, or the CQL keyspace).
async fn map_store(cfg: &ShardConfig) -> Result<(Arc<dyn MapStore>, String), String> {
    crate::storage::Backend::connect(cfg)
        .await?
        .map_store(cfg)
        .await
}

/// The stored map, which must exist.
async fn stored(cfg: &ShardConfig) -> Result<(Arc<dyn MapStore>, ShardMap), String> {
    let (store, place) = map_store(cfg).await?;
    let map = store
        .load()
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{place}: no stored shard map"))?;
    Ok((store, map))
}

async fn coordinator(
    cfg: &ShardConfig,
    tls: Option<ClientTlsConfig>,
) -> Result<Coordinator, String> {
    Ok(Coordinator::of_store(
        map_store(cfg).await?.0,
        tls,
        cfg.move_batch_slots(),
        cfg.freeze_timeout(),
    )
    .with_fencer(fencer(cfg)?))
}

/// On CQL with `cql_shard_roles`: revokes an unanswering shard's roles,
/// with this command's login (docs/placement.md, section 6, path 2).
fn fencer(cfg: &ShardConfig) -> Result<Option<kinto_rebalance::Fencer>, String> {
    let Some(fence) = crate::storage::shard_fence(cfg) else {
        return Ok(None);
    };
    // A shard stopped before the freeze may still believe its map for a
    // lease: the handoff waits longer than that.
    if cfg.fence_grace() <= cfg.placement_lease() {
        return Err(format!(
            "fence_grace_seconds ({}) must exceed placement_lease_seconds ({})",
            cfg.fence_grace().as_secs(),
            cfg.placement_lease().as_secs()
        ));
    }
    Ok(Some(kinto_rebalance::Fencer {
        fence: Box::new(move |shard| {
            let fence = Arc::clone(&fence);
            Box::pin(async move { fence.fence(shard).await })
        }),
        grace: cfg.fence_grace(),
    }))
}

fn client_tls(
    ca: Option<&str>,
    identity: Option<(&str, &str)>,
) -> Result<Option<ClientTlsConfig>, String> {
    let Some(ca) = ca else {
        return match identity {
            Some(_) => Err("--cert needs --ca: the shard's certificate must be checked".into()),
            None => Ok(None),
        };
    };
    let mut config = ClientTlsConfig::new().ca_certificate(tls::certificates("--ca", ca)?);
    if let Some((cert, key)) = identity {
        config = config.identity(tls::identity(("--cert", cert), ("--key", key))?);
    }
    Ok(Some(config))
}

async fn status(url: &str, tls: Option<ClientTlsConfig>) -> Result<(), String> {
    let channel = tls::shard_channel(
        url,
        tls.as_ref(),
        Duration::from_secs(5),
        Some(Duration::from_secs(10)),
    )
    .await?;
    let reply = ShardAdminClient::new(channel)
        .status(StatusRequest {})
        .await
        .map_err(|s| format!("{url}: {}: {}", s.code(), s.message()))?
        .into_inner();
    println!("shard {}", reply.shard_index);
    println!("map generation {}", reply.generation);
    println!(
        "owned slots {}: {}",
        reply.owned_count,
        ranges(&reply.owned)
    );
    println!("frozen slots: {}", ranges(&reply.frozen));
    println!("staged slots: {}", ranges(&reply.staged));
    Ok(())
}

/// `first..end` ranges (end excluded), or `none`.
fn ranges(list: &[SlotRange]) -> String {
    if list.is_empty() {
        return "none".into();
    }
    let parts: Vec<String> = list
        .iter()
        .map(|r| format!("{}..{}", r.first, r.end))
        .collect();
    parts.join(", ")
}

async fn plan(cfg: &ShardConfig, shards: u32) -> Result<(), String> {
    if shards == 0 {
        return Err("--shards must be at least 1".into());
    }
    let map = stored(cfg).await?.1;
    let owners = map.owners();
    let wanted: Vec<u32> = (0..shards).collect();
    let moves = balance::moves(&owners, &balance::balance(&owners, &wanted));
    println!(
        "map generation {}: {} shards -> {shards}, {} slots move",
        map.generation,
        map.shards.len(),
        moves.len()
    );
    for line in move_runs(&moves) {
        println!("{line}");
    }
    Ok(())
}

/// One line per run of consecutive slots with the same source and target.
fn move_runs(moves: &[Move]) -> Vec<String> {
    let mut runs: Vec<(u32, u32, u32, u32)> = Vec::new();
    for m in moves {
        match runs.last_mut() {
            Some(run) if run.1 == m.slot && (run.2, run.3) == (m.from, m.to) => run.1 += 1,
            _ => runs.push((m.slot, m.slot + 1, m.from, m.to)),
        }
    }
    runs.iter()
        .map(|(first, end, from, to)| format!("slots {first}..{end}: shard {from} -> shard {to}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_prints_runs_of_moves() {
        let owners = balance::contiguous(2);
        let moves = balance::moves(&owners, &balance::balance(&owners, &[0, 1, 2]));
        assert_eq!(moves.len(), 1365);
        assert_eq!(
            move_runs(&moves),
            vec![
                "slots 1366..2048: shard 0 -> shard 2",
                "slots 3413..4096: shard 1 -> shard 2"
            ]
        );
        assert!(move_runs(&[]).is_empty());
    }
}
