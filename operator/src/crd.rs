//! The `KintoCluster` custom resource: what an operator of the service asks
//! for (the shard count) and what the operator reports back (the map's
//! layout, the moves left). The CRD is generated from these types
//! (`kinto-operator crd`), so the schema the API server checks and the
//! fields the operator reads can never disagree.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "kinto-rs.dev",
    version = "v1alpha1",
    kind = "KintoCluster",
    namespaced,
    status = "KintoClusterStatus",
    shortname = "kc",
    printcolumn = r#"{"name":"Shards","type":"integer","jsonPath":".spec.shards"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Map","type":"integer","jsonPath":".status.mapGeneration"}"#,
    printcolumn = r#"{"name":"Moved","type":"integer","jsonPath":".status.slotsMoved"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct KintoClusterSpec {
    /// How many shards own slots once the cluster is balanced: the knob
    /// (`shards.replicas` in the Helm chart).
    #[schemars(range(min = 1, max = 4096))]
    pub shards: u32,
    /// The gRPC address of shard `{index}`, e.g. the StatefulSet pod's stable
    /// name `http://kinto-shard-{index}.kinto-shard.ns.svc.cluster.local:50051`.
    pub shard_address_template: String,
    /// Slots moved per step: each step freezes its slots' writes briefly.
    #[serde(default = "default_move_batch_slots")]
    #[schemars(range(min = 1, max = 4096))]
    pub move_batch_slots: u32,
    /// The StatefulSet of the shard processes, whose `replicas` the operator
    /// then keeps at the shards the map needs: grown before slots move to
    /// new shards, shrunk only once the map no longer names the removed
    /// ones (so no pod holding slots is stopped). Unset: the processes are
    /// started and stopped by someone else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_stateful_set: Option<String>,
}

fn default_move_batch_slots() -> u32 {
    16
}

impl KintoClusterSpec {
    /// The address of shard `index`.
    pub fn shard_address(&self, index: u32) -> String {
        self.shard_address_template
            .replace("{index}", &index.to_string())
    }
}

/// What the operator last saw. Its state lives here and in the shard map,
/// never only in its memory, so a restarted operator resumes.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KintoClusterStatus {
    /// The `metadata.generation` of the spec this status answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Balanced`, `Rebalancing` or `Degraded` (a shard did not answer).
    #[serde(default)]
    pub phase: String,
    /// The shard map's generation, as the shards report it.
    #[serde(default)]
    pub map_generation: u64,
    /// Slots owned by shard 0, 1, ... in that map.
    #[serde(default)]
    pub slots_per_shard: Vec<u32>,
    /// Slots that still have to move to reach `spec.shards`.
    #[serde(default)]
    pub slots_to_move: u32,
    /// Slots moved since the current rebalance began.
    #[serde(default)]
    pub slots_moved: u32,
    /// The operator replica that wrote this status (the lease holder).
    #[serde(default)]
    pub leader: String,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A Kubernetes-style condition (`type` is `Balanced` or `ShardsReachable`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    pub message: String,
    /// RFC 3339; changes only when `status` does.
    pub last_transition_time: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn the_crd_names_the_group_the_kind_and_the_status_subresource() {
        let crd = serde_json::to_value(KintoCluster::crd()).expect("json");
        assert_eq!(crd["metadata"]["name"], "kintoclusters.kinto-rs.dev");
        assert_eq!(crd["spec"]["group"], "kinto-rs.dev");
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], "v1alpha1");
        assert!(version["subresources"]["status"].is_object());
        let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(spec["properties"]["shards"]["minimum"].as_f64(), Some(1.0));
        let required: Vec<&str> = spec["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(required, ["shardAddressTemplate", "shards"]);
    }

    #[test]
    fn a_shard_address_comes_from_the_template() {
        let spec = KintoClusterSpec {
            shards: 2,
            shard_address_template: "http://kinto-shard-{index}.kinto-shard:50051".into(),
            move_batch_slots: 16,
            shard_stateful_set: None,
        };
        assert_eq!(
            spec.shard_address(3),
            "http://kinto-shard-3.kinto-shard:50051"
        );
    }
}
