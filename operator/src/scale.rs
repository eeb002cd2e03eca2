//! The shard processes' count: the `replicas` of the StatefulSet a
//! `KintoCluster` names, changed through its `scale` subresource (the
//! operator needs no other right on the StatefulSet).

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::{Api, Patch, PatchParams};

/// Sets the StatefulSet's replicas to `replicas` unless they already are.
pub async fn keep_replicas(
    client: &kube::Client,
    namespace: Option<String>,
    name: &str,
    replicas: u32,
) -> Result<(), kube::Error> {
    let api: Api<StatefulSet> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), &ns),
        None => Api::default_namespaced(client.clone()),
    };
    let now = api.get_scale(name).await?;
    let wanted = i32::try_from(replicas).unwrap_or(i32::MAX);
    if now.spec.and_then(|s| s.replicas) == Some(wanted) {
        return Ok(());
    }
    let body = serde_json::json!({ "spec": { "replicas": wanted } });
    api.patch_scale(name, &PatchParams::default(), &Patch::Merge(&body))
        .await?;
    tracing::info!(statefulset = name, replicas, "scaled the shards");
    Ok(())
}
