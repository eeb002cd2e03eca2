//! Reading a list that spans every shard (`GET /buckets`, `/accounts`,
//! `/permissions`) while a move may be handing slots over. Each shard says
//! which slots its part covers; the parts are merged only when they cover
//! every slot exactly once. Otherwise (one shard released a slot the other
//! has not acquired yet, or both serve it for a moment, or a shard refused
//! because its slots changed hands while it read) the whole read runs again,
//! with the backoff of [`super::routed`], until the request's deadline; then
//! the client gets a 503 it may retry, never a list missing or doubling a
//! bucket (docs/placement.md, section 5, "Lists across shards").

use super::{given_up, retryable, wait, Backoff, FIRST_DELAY};
use kinto_placement::live::LiveMap;
use kinto_placement::slot_set::{cover, Cover, SlotSet};
use kinto_proto::{ErrorKind, KintoError};
use std::future::Future;

/// Runs `call` (one answer per shard holding slots) until its answers can be
/// merged. `served` gives an answer's served slots in their wire form; an
/// answer without them (a store that does not track slots, or a shard of an
/// older version) makes the round unchecked, as it was before shards sent them.
pub async fn spanning<T, F, Fut>(
    map: &LiveMap,
    mut call: F,
    served: impl Fn(&T) -> &[u8],
) -> Result<Vec<Result<T, KintoError>>, KintoError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Vec<Result<T, KintoError>>>,
{
    let mut backoff = Backoff(FIRST_DELAY);
    loop {
        let results = call().await;
        let refused = results.iter().any(retryable);
        let gap = if refused {
            None
        } else {
            cover_of(&results, &served).filter(|c| !c.exact())
        };
        if !refused && gap.is_none() {
            return Ok(results);
        }
        // A shard the map added or retired changes who is asked.
        if let Err(e) = map.refresh().await {
            tracing::warn!(error = %e, "cannot read the shard map");
        }
        if !wait(&mut backoff).await {
            return match gap {
                Some(c) => Err(KintoError::new(ErrorKind::Frozen).with_details(
                    serde_json::json!({"missing_slots": c.missing, "doubled_slots": c.doubled}),
                )),
                None => Ok(results.into_iter().map(given_up).collect()),
            };
        }
        if let Some(c) = crate::metrics::SPANNING_RETRIES.as_ref() {
            c.inc();
        }
    }
}

/// How the answers' slots cover the slots; `None` when the round cannot
/// be checked: a shard failed (its error is the answer) or sent no set.
fn cover_of<T>(results: &[Result<T, KintoError>], served: impl Fn(&T) -> &[u8]) -> Option<Cover> {
    let mut parts = Vec::with_capacity(results.len());
    for r in results {
        let part = SlotSet::from_bytes(served(r.as_ref().ok()?))?;
        parts.push(part);
    }
    Some(cover(&parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinto_placement::live::Placement;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn halves(low_end: u32, high_start: u32) -> Vec<Result<Vec<u8>, KintoError>> {
        vec![
            Ok(SlotSet::of(|s| s < low_end).to_bytes()),
            Ok(SlotSet::of(|s| s >= high_start).to_bytes()),
        ]
    }

    async fn run(
        rounds: Vec<Vec<Result<Vec<u8>, KintoError>>>,
    ) -> (Result<usize, KintoError>, usize) {
        let map = LiveMap::fixed(Placement::fixed(2));
        let tries = AtomicUsize::new(0);
        let rounds = std::sync::Mutex::new(rounds.into_iter());
        let out = crate::deadline::within(std::time::Duration::from_secs(1), async {
            spanning(
                &map,
                || {
                    tries.fetch_add(1, Ordering::SeqCst);
                    let next = rounds.lock().expect("lock").next();
                    async move { next.unwrap_or_else(|| halves(2047, 2048)) }
                },
                |r: &Vec<u8>| r.as_slice(),
            )
            .await
        })
        .await
        .expect("in time");
        (out.map(|r| r.len()), tries.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn parts_that_cover_every_slot_once_are_taken_at_once() {
        let (out, tries) = run(vec![halves(2048, 2048)]).await;
        assert_eq!((out.expect("merged"), tries), (2, 1));
    }

    #[tokio::test]
    async fn a_missing_a_doubled_or_a_refused_part_is_read_again() {
        let frozen = vec![
            Ok(SlotSet::of(|s| s < 2048).to_bytes()),
            Err(KintoError::new(ErrorKind::Frozen)),
        ];
        let (out, tries) = run(vec![
            halves(2047, 2048),
            halves(2049, 2048),
            frozen,
            halves(2048, 2048),
        ])
        .await;
        assert_eq!((out.expect("merged"), tries), (2, 4));
    }

    #[tokio::test]
    async fn a_gap_that_outlasts_the_deadline_is_a_503_not_a_short_list() {
        // Every round misses slot 2047.
        let (out, tries) = run(vec![]).await;
        let e = out.expect_err("refused");
        assert_eq!(e.kind, ErrorKind::Frozen);
        assert!(tries > 2);
    }

    #[tokio::test]
    async fn an_answer_without_slots_or_a_failed_shard_is_not_checked() {
        let (out, tries) = run(vec![vec![
            Ok(Vec::new()),
            Ok(SlotSet::of(|s| s >= 9).to_bytes()),
        ]])
        .await;
        assert_eq!((out.expect("unchecked"), tries), (2, 1));
        let failed = vec![
            Err(KintoError::new(ErrorKind::Forbidden)),
            Ok(SlotSet::of(|s| s >= 9).to_bytes()),
        ];
        let (out, tries) = run(vec![failed]).await;
        assert_eq!((out.expect("unchecked"), tries), (2, 1));
    }
}
