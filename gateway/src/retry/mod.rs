//! Retrying a shard call that is proven not to have run: an operation a
//! shard refused as not its own (docs/placement.md, section 3, "Gateway
//! retries") or while a move froze its slot, and a call that never reached
//! a running shard (a stopping shard's refusal, a connection that could not
//! be made, an HTTP/2 stream the shard refused: [`unreached`]), which a
//! restarted shard answers again (docs/operations.md, "Rolling restart").
//!
//! Each of these happens before the shard has any effect, so a retry is
//! never a duplicate. A failure after the call may have run (a connection
//! reset mid-call, the deadline passing) is never retried: a `POST` or a
//! `/batch` would run twice. On a refusal the gateway re-reads the stored map (a `stat`
//! unless it changed): when it is newer, the gateway's map was stale and
//! the operation is retried at once on the new owner. Otherwise (the shard
//! is behind, which it mends itself when a caller is ahead of it, or a move
//! is under way) it backs off, 5 ms doubling to 200 ms, re-reading the map
//! before each try, until the request's deadline; only then does the client
//! see the 503 (with `Retry-After`). The refusal names the shard's
//! generation, for the logs and for gateways without a stored map.

mod spanning;
mod unreached;

use kinto_placement::live::{LiveMap, Placement};
use kinto_proto::{ErrorKind, KintoError};
pub use spanning::spanning;
use std::future::Future;
use std::time::Duration;
pub use unreached::unreached;

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
/// does not own the bucket (`WrongShard`), its slot is frozen for a move
/// (`Frozen`: served again once the move commits or rolls back), or the
/// call never ran (`NotRun`: the shard was stopping or unreachable).
pub fn retryable(result: &Result<impl Sized, KintoError>) -> bool {
    matches!(result, Err(e) if matches!(e.kind, ErrorKind::WrongShard | ErrorKind::Frozen | ErrorKind::NotRun))
}

/// What the caller gets when the retries end: a call that never ran is, by
/// then, a shard that is unavailable (the kind the rest of the gateway reads
/// as such, e.g. the account policy's fallback).
fn given_up<T>(result: Result<T, KintoError>) -> Result<T, KintoError> {
    result.map_err(|mut e| {
        if e.kind == ErrorKind::NotRun {
            e.kind = ErrorKind::Unavailable;
        }
        e
    })
}

/// Waits before the next try of a call that did not run, if the request's
/// deadline leaves time for it; `false` when it does not (outside a
/// request, no deadline: no retry).
async fn wait(backoff: &mut Backoff) -> bool {
    let delay = backoff.next();
    if crate::deadline::left().is_none_or(|left| left <= delay) {
        return false;
    }
    tokio::time::sleep(delay).await;
    true
}

/// Runs `call` again while it did not run (`NotRun`), with the backoff of
/// [`routed`], until the request's deadline: for the calls to every shard,
/// which no map change reroutes.
pub async fn unrouted<T, F, Fut>(mut call: F) -> Result<T, KintoError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, KintoError>>,
{
    let mut backoff = Backoff(FIRST_DELAY);
    loop {
        let result = call().await;
        let not_run = matches!(&result, Err(e) if e.kind == ErrorKind::NotRun);
        if !not_run || !wait(&mut backoff).await {
            return given_up(result);
        }
        count_retry(ErrorKind::NotRun);
    }
}

fn count_retry(kind: ErrorKind) {
    let counter = match kind {
        ErrorKind::NotRun => crate::metrics::NOT_RUN_RETRIES.as_ref(),
        _ => crate::metrics::WRONG_SHARD_RETRIES.as_ref(),
    };
    if let Some(c) = counter {
        c.inc();
    }
}

/// Runs `call(shard, generation)` on the shard `route` picks in the map in
/// force, again on `WrongShard`, `Frozen` or `NotRun` as the module says. `first` is the shard
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
        let kind = match &result {
            Err(e) if retryable(&result) => e.kind,
            _ => return given_up(result),
        };
        let newer = match map.refresh().await {
            Ok(newer) => newer,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the shard map");
                false
            }
        };
        if !newer {
            // Outside a request (no deadline) only a newer map is retried.
            if !wait(&mut backoff).await {
                return given_up(result);
            }
            if let Err(e) = map.refresh().await {
                tracing::warn!(error = %e, "cannot read the shard map");
            }
        }
        count_retry(kind);
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

    /// A call that does not run until its third try (`count` counts the tries).
    fn runs_on_the_third_try(count: &Mutex<u32>) -> impl Future<Output = Result<u32, KintoError>> {
        let n = {
            let mut c = count.lock().expect("count");
            *c += 1;
            *c
        };
        async move {
            if n < 3 {
                Err(not_run())
            } else {
                Ok(n)
            }
        }
    }

    fn not_run() -> KintoError {
        KintoError::new(ErrorKind::NotRun)
    }

    #[tokio::test]
    async fn calls_that_did_not_run_are_retried_until_one_runs() {
        let live = LiveMap::fixed(Placement::fixed(1));
        let tries = Arc::new(Mutex::new(0u32));
        let count = Arc::clone(&tries);
        let result = crate::deadline::within(Duration::from_secs(5), async {
            routed(&live, 0, |_| None, |_, _| runs_on_the_third_try(&count)).await
        })
        .await
        .expect("in time");
        assert_eq!(result.expect("ran on the third try"), 3);
        let tries = Arc::new(Mutex::new(0u32));
        let count = Arc::clone(&tries);
        let result = crate::deadline::within(Duration::from_secs(5), async {
            unrouted(|| runs_on_the_third_try(&count)).await
        })
        .await
        .expect("in time");
        assert_eq!(result.expect("ran on the third try"), 3);
    }

    #[tokio::test]
    async fn unrouted_calls_stop_at_the_deadline_and_retry_nothing_else() {
        let tries = Arc::new(Mutex::new(0u32));
        let count = Arc::clone(&tries);
        let result = crate::deadline::within(Duration::from_millis(300), async {
            unrouted(|| {
                *count.lock().expect("count") += 1;
                async { Err::<(), _>(not_run()) }
            })
            .await
        })
        .await
        .expect("the loop ends before the deadline cuts it");
        // Out of time, a call that never ran is an unavailable shard.
        assert_eq!(result.expect_err("not run").kind, ErrorKind::Unavailable);
        // The backoff of `routed`: 5 + 10 + 20 + 40 + 80 ms fit in 300 ms.
        assert_eq!(*tries.lock().expect("count"), 6);
        // An operation that may have run, or any call outside a request: once.
        for (kind, within_request) in [(ErrorKind::Unavailable, true), (ErrorKind::NotRun, false)] {
            let tries = Arc::new(Mutex::new(0u32));
            let count = Arc::clone(&tries);
            let call = unrouted(|| {
                *count.lock().expect("count") += 1;
                async move { Err::<(), _>(KintoError::new(kind)) }
            });
            let result = if within_request {
                crate::deadline::within(Duration::from_secs(5), call)
                    .await
                    .expect("in time")
            } else {
                call.await
            };
            assert_eq!(result.expect_err("failed").kind, ErrorKind::Unavailable);
            assert_eq!(*tries.lock().expect("count"), 1);
        }
    }
}
