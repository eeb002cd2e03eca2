//! What the shards say: each one's map generation and owned slots, over
//! `ShardAdmin.Status`. The operator keeps no layout of its own: it reads
//! it back every round, so what it reports is what the shards serve by.

use crate::crd::KintoClusterSpec;
use kinto_placement::{balance, SLOTS};
use kinto_proto::pb::shard_admin_client::ShardAdminClient;
use kinto_proto::pb::{StatusReply, StatusRequest};
use std::time::Duration;
use tonic::transport::ClientTlsConfig;

/// No shard owns the slot in what was observed.
const UNKNOWN: u32 = u32::MAX;

/// The layout read from the shards at one moment.
#[derive(Debug, Default, PartialEq)]
pub struct Observed {
    /// The highest map generation any shard serves by.
    pub generation: u64,
    /// Slots owned by shard 0, 1, ... (trailing shards owning none left out).
    pub slots_per_shard: Vec<u32>,
    /// Shards that did not answer, with why.
    pub unreachable: Vec<(u32, String)>,
    /// Shards still serving by an older generation.
    pub behind: Vec<u32>,
    /// Slots no answering shard owns at `generation`.
    pub unowned: u32,
    /// Slots that must change owner to balance the map over the spec's
    /// shard count (0 when unknown: see `unowned` and `unreachable`).
    pub slots_to_move: u32,
}

impl Observed {
    /// Whether every slot has an answering owner at the newest generation:
    /// a shard that does not answer but owns nothing (a new one, not up
    /// yet) leaves the data whole.
    pub fn whole(&self) -> bool {
        self.behind.is_empty() && self.unowned == 0
    }

    /// Whether the map is balanced over the wanted shards.
    pub fn balanced(&self) -> bool {
        self.whole() && self.slots_to_move == 0
    }
}

/// Asks shards `0..count` for their status, each within `timeout`.
pub async fn shards(
    spec: &KintoClusterSpec,
    count: u32,
    tls: Option<&ClientTlsConfig>,
    timeout: Duration,
) -> Vec<(u32, Result<StatusReply, String>)> {
    let asks = (0..count).map(|i| {
        let address = spec.shard_address(i);
        async move { (i, status(&address, tls, timeout).await) }
    });
    futures_util::future::join_all(asks).await
}

/// How long a shard may serve an older map than another before the layout
/// counts it as behind: shards read a new map on their next poll
/// (`placement_poll_ms`, 1 s by default), so every map change leaves one
/// behind for a moment.
const BEHIND_GRACE: Duration = Duration::from_millis(2500);
const BEHIND_RETRY: Duration = Duration::from_millis(250);

/// [`shards`] folded by [`layout`], asked again while every shard answered
/// but some serve an older generation, for at most [`BEHIND_GRACE`]: the
/// status then describes the map the shards settle on, not the moment
/// between a map change and their polls.
pub async fn settled(
    spec: &KintoClusterSpec,
    count: u32,
    tls: Option<&ClientTlsConfig>,
    timeout: Duration,
) -> Observed {
    let give_up = tokio::time::Instant::now() + BEHIND_GRACE;
    loop {
        let seen = layout(&shards(spec, count, tls, timeout).await, spec.shards);
        let lagging = !seen.behind.is_empty() && seen.unreachable.is_empty();
        if !lagging || tokio::time::Instant::now() + BEHIND_RETRY > give_up {
            return seen;
        }
        tokio::time::sleep(BEHIND_RETRY).await;
    }
}

async fn status(
    address: &str,
    tls: Option<&ClientTlsConfig>,
    timeout: Duration,
) -> Result<StatusReply, String> {
    let channel = kinto_runtime::tls::shard_channel(address, tls, timeout, Some(timeout)).await?;
    ShardAdminClient::new(channel)
        .status(StatusRequest {})
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| format!("{address}: {}: {}", s.code(), s.message()))
}

/// Folds the replies into one layout and the moves it needs to reach
/// `wanted` shards (shard ids `0..wanted`).
pub fn layout(replies: &[(u32, Result<StatusReply, String>)], wanted: u32) -> Observed {
    let mut out = Observed::default();
    let answered: Vec<(u32, &StatusReply)> = replies
        .iter()
        .filter_map(|(i, r)| match r {
            Ok(reply) => Some((*i, reply)),
            Err(why) => {
                out.unreachable.push((*i, why.clone()));
                None
            }
        })
        .collect();
    out.generation = answered
        .iter()
        .map(|(_, r)| r.generation)
        .max()
        .unwrap_or(0);
    let mut owners = vec![UNKNOWN; SLOTS as usize];
    for (i, reply) in &answered {
        if reply.generation < out.generation {
            out.behind.push(*i);
            continue;
        }
        for range in &reply.owned {
            let end = range.end.min(SLOTS);
            for slot in range.first.min(end)..end {
                owners[slot as usize] = *i;
            }
        }
    }
    out.unowned = owners.iter().filter(|o| **o == UNKNOWN).count() as u32;
    let top = owners.iter().filter(|o| **o != UNKNOWN).max().copied();
    if let Some(top) = top {
        out.slots_per_shard = (0..=top)
            .map(|s| owners.iter().filter(|o| **o == s).count() as u32)
            .collect();
    }
    if out.unowned == 0 && wanted > 0 {
        let ids: Vec<u32> = (0..wanted).collect();
        let target = balance::balance(&owners, &ids);
        out.slots_to_move = balance::moves(&owners, &target).len() as u32;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinto_proto::pb::SlotRange;

    fn reply(shard: u32, generation: u64, ranges: &[(u32, u32)]) -> StatusReply {
        StatusReply {
            shard_index: shard,
            generation,
            owned: ranges
                .iter()
                .map(|(first, end)| SlotRange {
                    first: *first,
                    end: *end,
                })
                .collect(),
            owned_count: ranges.iter().map(|(f, e)| e - f).sum(),
            frozen: vec![],
            staged: vec![],
        }
    }

    #[test]
    fn two_balanced_shards_need_no_move_and_growing_to_three_moves_a_third() {
        let replies = vec![
            (0, Ok(reply(0, 1, &[(0, 2048)]))),
            (1, Ok(reply(1, 1, &[(2048, 4096)]))),
        ];
        let seen = layout(&replies, 2);
        assert_eq!(seen.slots_per_shard, vec![2048, 2048]);
        assert_eq!(seen.generation, 1);
        assert!(seen.balanced());
        let grow = layout(&replies, 3);
        assert_eq!(grow.slots_to_move, 1365);
        assert!(!grow.balanced());
    }

    #[test]
    fn an_unreachable_or_lagging_shard_leaves_the_layout_unknown() {
        let replies = vec![
            (0, Ok(reply(0, 2, &[(0, 2048)]))),
            (1, Err("connection refused".to_owned())),
        ];
        let seen = layout(&replies, 2);
        assert_eq!(seen.unowned, 2048);
        assert_eq!(seen.slots_to_move, 0);
        assert_eq!(seen.unreachable.len(), 1);
        assert!(!seen.whole());
        let replies = vec![
            (0, Ok(reply(0, 2, &[(0, 2048)]))),
            (1, Ok(reply(1, 1, &[(2048, 4096)]))),
        ];
        let seen = layout(&replies, 2);
        assert_eq!(seen.behind, vec![1]);
        assert!(!seen.whole());
        // A new shard that is not up yet owns nothing: the data is whole.
        let replies = vec![
            (0, Ok(reply(0, 1, &[(0, 2048)]))),
            (1, Ok(reply(1, 1, &[(2048, 4096)]))),
            (2, Err("connection refused".to_owned())),
        ];
        let seen = layout(&replies, 3);
        assert!(seen.whole());
        assert_eq!(seen.slots_to_move, 1365);
    }
}
