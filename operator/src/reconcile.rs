//! One round for one `KintoCluster`: read the layout from the shards,
//! compare it with the spec, write the status (and an event when the phase
//! changes). Only the lease holder writes; the others wait for their turn.

use crate::crd::{Condition, KintoCluster, KintoClusterStatus};
use crate::leader::Elector;
use crate::moves::Mover;
use crate::observe::{self, Observed};
use crate::scale;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::ClientTlsConfig;

pub struct Context {
    pub client: kube::Client,
    pub elector: Arc<Elector>,
    pub mover: Mover,
    pub recorder: Recorder,
    pub tls: Option<ClientTlsConfig>,
    pub poll: Duration,
    pub shard_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

pub async fn reconcile(kc: Arc<KintoCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.elector.is_leader() {
        return Ok(Action::requeue(ctx.poll));
    }
    let name = kc.name_any();
    let api: Api<KintoCluster> = match kc.namespace() {
        Some(ns) => Api::namespaced(ctx.client.clone(), &ns),
        None => Api::default_namespaced(ctx.client.clone()),
    };
    let previous = kc.status.clone().unwrap_or_default();
    // Shards beyond the spec's count may still own slots (a shrink not yet
    // done): ask every shard that owned some when last seen.
    let count = kc.spec.shards.max(previous.slots_per_shard.len() as u32);
    let seen = observe::settled(&kc.spec, count, ctx.tls.as_ref(), ctx.shard_timeout).await;
    let key = format!("{}/{name}", kc.namespace().unwrap_or_default());
    drive(&ctx, &key, &kc, &seen).await;
    let run = ctx.mover.state(&key);
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let mut status = next_status(&kc, &previous, &seen, ctx.elector.identity(), &now);
    status.slots_moved = run.moved;
    if let (Some(why), false) = (&run.error, seen.balanced()) {
        if let Some(c) = status.conditions.iter_mut().find(|c| c.type_ == "Balanced") {
            c.message = format!("{}; the last rebalance stopped: {why}", c.message);
        }
    }
    if status != previous {
        let body = serde_json::json!({ "status": status });
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&body))
            .await?;
        if status.phase != previous.phase {
            let event = Event {
                type_: match status.phase.as_str() {
                    "Degraded" => EventType::Warning,
                    _ => EventType::Normal,
                },
                reason: status.phase.clone(),
                note: status
                    .conditions
                    .iter()
                    .find(|c| c.status != "True")
                    .map(|c| c.message.clone()),
                action: "Observe".into(),
                secondary: None,
            };
            let reference = kc.object_ref(&());
            if let Err(e) = ctx.recorder.publish(&event, &reference).await {
                tracing::warn!(error = %e, "could not publish an event");
            }
        }
    }
    Ok(Action::requeue(ctx.poll))
}

/// Names the wanted shards in the map, runs as many shard processes as the
/// map needs (a shard being emptied keeps its process), and starts the
/// moves once every wanted shard answers and the data is whole: to balance
/// the slots, or to drop from the map shards a rebalance emptied but did
/// not get to drop (its coordinator stopped in between).
async fn drive(ctx: &Context, key: &str, kc: &KintoCluster, seen: &Observed) {
    let (mover, spec) = (&ctx.mover, &kc.spec);
    if seen.balanced() && spec.shard_stateful_set.is_none() {
        return;
    }
    if let Err(e) = mover.join_wanted(spec).await {
        tracing::warn!(cluster = %key, error = %e, "cannot name the wanted shards in the map");
        mover.failed(
            key,
            format!("cannot name the wanted shards in the map: {e}"),
        );
        return;
    }
    let named = match mover.shards_named(spec).await {
        Ok(n) => n,
        Err(e) => {
            mover.failed(key, format!("cannot read the map: {e}"));
            return;
        }
    };
    if let Some(set) = &spec.shard_stateful_set {
        let wanted = spec.shards.max(named);
        if let Err(e) = scale::keep_replicas(&ctx.client, kc.namespace(), set, wanted).await {
            tracing::warn!(cluster = %key, error = %e, "cannot scale the shards");
            mover.failed(key, format!("cannot scale StatefulSet {set}: {e}"));
            return;
        }
    }
    let wanted_down = seen.unreachable.iter().any(|(i, _)| *i < spec.shards);
    let retiring = named > spec.shards;
    if seen.whole() && (!seen.balanced() || retiring) && !wanted_down {
        mover.start(key, spec);
    }
}

pub fn error_policy(kc: Arc<KintoCluster>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(cluster = %kc.name_any(), %error, "reconcile failed; retrying");
    Action::requeue(ctx.poll)
}

/// The status that describes `seen`, keeping each condition's transition
/// time when its status did not change.
pub fn next_status(
    kc: &KintoCluster,
    previous: &KintoClusterStatus,
    seen: &Observed,
    leader: &str,
    now: &str,
) -> KintoClusterStatus {
    let reachable = match seen.unreachable.as_slice() {
        [] => condition(
            "ShardsReachable",
            true,
            "AllAnswered",
            "every shard answered".into(),
        ),
        down => condition(
            "ShardsReachable",
            false,
            "ShardUnreachable",
            down.iter()
                .map(|(i, why)| format!("shard {i}: {why}"))
                .collect::<Vec<_>>()
                .join("; "),
        ),
    };
    let balanced = if seen.balanced() {
        condition(
            "Balanced",
            true,
            "Balanced",
            format!("{} shards own the 4096 slots evenly", kc.spec.shards),
        )
    } else if !seen.whole() {
        condition(
            "Balanced",
            false,
            "LayoutUnknown",
            format!(
                "{} slots have no answering owner; shards behind the map: {:?}",
                seen.unowned, seen.behind
            ),
        )
    } else {
        condition(
            "Balanced",
            false,
            "MovesPending",
            format!(
                "{} slots must move to balance over {} shards",
                seen.slots_to_move, kc.spec.shards
            ),
        )
    };
    // Degraded: some slots have no answering owner (their buckets answer
    // 503). A shard that owns nothing and does not answer yet only holds
    // a rebalance back.
    let phase = if !seen.whole() {
        "Degraded"
    } else if seen.balanced() {
        "Balanced"
    } else {
        "Rebalancing"
    };
    let conditions = [reachable, balanced]
        .into_iter()
        .map(|mut c| {
            let before = previous.conditions.iter().find(|p| p.type_ == c.type_);
            c.last_transition_time = match before {
                Some(p) if p.status == c.status => p.last_transition_time.clone(),
                _ => now.to_owned(),
            };
            c
        })
        .collect();
    KintoClusterStatus {
        observed_generation: kc.metadata.generation,
        phase: phase.into(),
        map_generation: seen.generation,
        slots_per_shard: seen.slots_per_shard.clone(),
        slots_to_move: seen.slots_to_move,
        slots_moved: previous.slots_moved,
        leader: leader.to_owned(),
        conditions,
    }
}

fn condition(type_: &str, ok: bool, reason: &str, message: String) -> Condition {
    Condition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
        last_transition_time: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::KintoClusterSpec;

    fn cluster(shards: u32) -> KintoCluster {
        let mut kc = KintoCluster::new(
            "kc",
            KintoClusterSpec {
                shards,
                shard_address_template: "http://s{index}:1".into(),
                move_batch_slots: 16,
                shard_stateful_set: None,
            },
        );
        kc.metadata.generation = Some(3);
        kc
    }

    #[test]
    fn a_condition_keeps_its_transition_time_until_its_status_changes() {
        let seen = Observed {
            generation: 1,
            slots_per_shard: vec![2048, 2048],
            ..Observed::default()
        };
        let first = next_status(
            &cluster(2),
            &KintoClusterStatus::default(),
            &seen,
            "a",
            "t1",
        );
        assert_eq!(first.phase, "Balanced");
        assert_eq!(first.observed_generation, Some(3));
        assert!(first
            .conditions
            .iter()
            .all(|c| c.last_transition_time == "t1"));
        let again = next_status(&cluster(2), &first, &seen, "a", "t2");
        assert_eq!(again, first);
        let grow = Observed {
            slots_to_move: 1365,
            ..seen
        };
        let grown = next_status(&cluster(3), &first, &grow, "a", "t3");
        assert_eq!(grown.phase, "Rebalancing");
        let balanced = grown.conditions.iter().find(|c| c.type_ == "Balanced");
        let balanced = balanced.expect("Balanced condition");
        assert_eq!(
            (balanced.status.as_str(), balanced.reason.as_str()),
            ("False", "MovesPending")
        );
        assert_eq!(balanced.last_transition_time, "t3");
        let reachable = grown
            .conditions
            .iter()
            .find(|c| c.type_ == "ShardsReachable");
        assert_eq!(
            reachable.map(|c| c.last_transition_time.as_str()),
            Some("t1")
        );
    }

    #[test]
    fn an_unreachable_shard_degrades_the_cluster() {
        let seen = Observed {
            unreachable: vec![(1, "refused".into())],
            unowned: 2048,
            ..Observed::default()
        };
        let s = next_status(&cluster(2), &KintoClusterStatus::default(), &seen, "a", "t");
        assert_eq!(s.phase, "Degraded");
        let reachable = s.conditions.iter().find(|c| c.type_ == "ShardsReachable");
        assert_eq!(
            reachable.map(|c| c.message.as_str()),
            Some("shard 1: refused")
        );
    }
}
