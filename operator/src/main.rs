//! `kinto-operator`: keeps each `KintoCluster` of a namespace at the shard
//! count its spec asks for (docs/operations.md). `kinto-operator crd`
//! prints the CustomResourceDefinition the Helm chart installs.

mod config;
mod crd;
mod leader;
mod moves;
mod observe;
mod reconcile;
mod scale;

use clap::Parser;
use futures_util::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, CustomResourceExt};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    version,
    about = "The kinto-rs operator (settings: docs/configuration.md)"
)]
struct Cli {
    #[command(flatten)]
    settings: kinto_runtime::process::SettingsArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Print the KintoCluster CustomResourceDefinition (JSON, which is also YAML).
    Crd,
}

#[tokio::main]
async fn main() -> ExitCode {
    kinto_runtime::process::exit_code("kinto-operator", run(Cli::parse())).await
}

async fn run(cli: Cli) -> Result<(), String> {
    if let Some(Command::Crd) = cli.command {
        let crd =
            serde_json::to_string_pretty(&crd::KintoCluster::crd()).map_err(|e| e.to_string())?;
        println!("{crd}");
        return Ok(());
    }
    let raw = cli.settings.load()?;
    let _telemetry = kinto_runtime::process::start_telemetry(&raw, "kinto-operator")?;
    let cfg = config::OperatorConfig::from_raw(&raw)?;
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("cannot reach the Kubernetes API: {e}"))?;
    let namespace = cfg.namespace();
    let identity = cfg.identity();
    let elector = Arc::new(leader::Elector::new(
        Api::<Lease>::namespaced(client.clone(), &namespace),
        &cfg.lease_name(),
        &identity,
        cfg.lease(),
    ));
    let campaign = tokio::spawn(campaign(Arc::clone(&elector)));
    let reporter = Reporter {
        controller: "kinto-operator".into(),
        instance: Some(identity.clone()),
    };
    let tls = cfg.shard_tls()?;
    let place = match cfg.operator_placement_dir.clone() {
        Some(dir) => moves::MapPlace::Dir(dir),
        None => moves::MapPlace::Shards,
    };
    let mover = moves::Mover::new(
        place,
        tls.clone(),
        cfg.freeze_timeout(),
        Arc::clone(&elector),
    )
    .with_fence_grace(cfg.fence_grace());
    let ctx = Arc::new(reconcile::Context {
        client: client.clone(),
        elector: Arc::clone(&elector),
        mover,
        recorder: Recorder::new(client.clone(), reporter),
        tls,
        poll: cfg.poll(),
        shard_timeout: cfg.shard_timeout(),
    });
    tracing::info!(%namespace, %identity, "kinto-operator started");
    println!("kinto-operator {identity} watching namespace {namespace}");
    let clusters = Api::<crd::KintoCluster>::namespaced(client, &namespace);
    Controller::new(clusters, kube::runtime::watcher::Config::default())
        .graceful_shutdown_on(kinto_runtime::process::shutdown_signal())
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller");
            }
        })
        .await;
    campaign.abort();
    elector.release().await;
    Ok(())
}

/// Keeps trying to lead, and renews while leading, every third of a lease.
async fn campaign(elector: Arc<leader::Elector>) {
    let mut leading = false;
    loop {
        match elector.tick().await {
            Ok(now) if now != leading => {
                leading = now;
                tracing::info!(leading, "leadership changed");
                println!("leading: {leading}");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "lease round failed"),
        }
        tokio::time::sleep(elector.period()).await;
    }
}
