//! Retrying an operation a shard refused as not its own (docs/placement.md,
//! section 3, "Gateway retries").
//!
//! A refusal happens before the shard has any effect, so a retry is never a
//! duplicate. On a refusal the gateway re-reads the stored map (a `stat`
//! unless it changed): when it is newer, the gateway's map was stale and
//! the operation is retried at once on the new owner. Otherwise (the shard
//! is behind, which it mends itself when a caller is ahead of it, or a move
//! is under way) it backs off, 5 ms doubling to 200 ms, re-reading the map
//! before each try, until the request's deadline; only then does the client
//! see the 503 (with `Retry-After`). The refusal names the shard's
//! generation, for the logs and for gateways without a stored map.

use kinto_placement::live::{LiveMap, Placement};
use kinto_proto::{ErrorKind, KintoError};
use std::future::Future;
use std::time::Duration;

const FIRST_DELAY: Duration = Duration::from_millis(5);
const MAX_DELAY: Duration = Duration::from_millis(200);

/// The delays between tries: 5 ms, doubled each time, at most 200 ms.
struct Backoff(Duration);

impl Backoff {
    fn next(&mut self) -> Duration {
        let delay = self.0;
        self.0 = (delay * 2).min(MAX_DELAY);
        delay
    }
}

/// A refusal before any effect that another try may get past: the shard
/// does not own the bucket (`WrongShard`), or its slot is frozen for a move
/// (`Frozen`: served again once the move commits or rolls back).
pub fn refused_for_placement(result: &Result<impl Sized, KintoError>) -> bool {
    matches!(result, Err(e) if matches!(e.kind, ErrorKind::WrongShard | ErrorKind::Frozen))
}

/// Runs `call(shard, generation)` on the shard `route` picks in the map in
/// force, again on `WrongShard` or `Frozen` as the module says. `first` is the shard
/// the caller already picked with the current map.
pub async fn routed<T, F, Fut>(
    map: &LiveMap,
    first: usize,
    route: impl Fn(&Placement) -> Option<usize>,
    mut call: F,
) -> Result<T, KintoError>
where
    F: FnMut(usize, u64) -> Fut,
    Fut: Future<Output = Result<T, KintoError>>,
{
    let mut shard = first;
    let mut generation = map.current().generation();
    let mut backoff = Backoff(FIRST_DELAY);
    loop {
        let result = call(shard, generation).await;
        if !refused_for_placement(&result) {
            return result;
        }
        let newer = match map.refresh().await {
            Ok(newer) => newer,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the shard map");
                false
            }
        };
        if !newer {
            let delay = backoff.next();
            // Outside a request (no deadline) only a newer map is retried.
            if crate::deadline::left().is_none_or(|left| left <= delay) {
                return result;
            }
            tokio::time::sleep(delay).await;
            if let Err(e) = map.refresh().await {
                tracing::warn!(error = %e, "cannot read the shard map");
            }
        }
        if let Some(c) = crate::metrics::WRONG_SHARD_RETRIES.as_ref() {
            c.inc();
        }
        let placement = map.current();
        generation = placement.generation();
        shard = route(&placement).unwrap_or(shard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinto_placement::file_store::{open_or_init, FileMapStore, Swap};
    use std::sync::{Arc, Mutex};

    fn refused(generation: u64) -> KintoError {
        KintoError::new(ErrorKind::WrongShard)
            .with_details(serde_json::json!({"generation": generation}))
    }

    #[tokio::test]
    async fn a_refusal_from_a_newer_map_is_retried_at_once_on_the_new_owner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = open_or_init(dir.path(), 2).expect("init");
        let live = LiveMap::stored(dir.path(), &first);
        // Slot 0 moves from shard 0 to shard 1 at generation 2.
        let next = first.with_owner(0, 1);
        let store = FileMapStore::new(dir.path());
        assert_eq!(
            store.compare_and_set(Some(1), &next).expect("cas"),
            Swap::Done
        );
        let calls = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&calls);
        let started = std::time::Instant::now();
        let result = crate::deadline::within(Duration::from_secs(5), async {
            routed(
                &live,
                0,
                |p| Some(p.owner_of_slot(0) as usize),
                |shard, generation| {
                    log.lock().expect("log").push((shard, generation));
                    async move {
                        match shard {
                            0 => Err(refused(2)),
                            _ => Ok(generation),
                        }
                    }
                },
            )
            .await
        })
        .await
        .expect("in time");
        assert_eq!(result.expect("retried"), 2);
        assert_eq!(*calls.lock().expect("log"), vec![(0, 1), (1, 2)]);
        assert!(started.elapsed() < FIRST_DELAY * 20);
    }

    #[tokio::test]
    async fn refusals_are_retried_with_backoff_until_the_deadline_then_returned() {
        let live = LiveMap::fixed(Placement::fixed(1));
        let tries = Arc::new(Mutex::new(0u32));
        let count = Arc::clone(&tries);
        let result = crate::deadline::within(Duration::from_millis(300), async {
            routed(
                &live,
                0,
                |_| None,
                |_, _| {
                    *count.lock().expect("count") += 1;
                    async { Err::<(), _>(refused(1)) }
                },
            )
            .await
        })
        .await
        .expect("the loop ends before the deadline cuts it");
        assert_eq!(result.expect_err("refused").kind, ErrorKind::WrongShard);
        // 5 + 10 + 20 + 40 + 80 ms fit in 300 ms, 160 more do not.
        assert_eq!(*tries.lock().expect("count"), 6);
    }

    #[tokio::test]
    async fn other_errors_and_successes_are_not_retried() {
        let live = LiveMap::fixed(Placement::fixed(1));
        let result = routed(
            &live,
            0,
            |_| None,
            |_, _| async { Err::<(), _>(KintoError::new(ErrorKind::Unavailable)) },
        )
        .await;
        assert_eq!(result.expect_err("once").kind, ErrorKind::Unavailable);
        let delays: Vec<_> = {
            let mut b = Backoff(FIRST_DELAY);
            (0..8).map(|_| b.next().as_millis()).collect()
        };
        assert_eq!(delays, vec![5, 10, 20, 40, 80, 160, 200, 200]);
    }
}
