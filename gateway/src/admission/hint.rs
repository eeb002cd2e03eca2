//! Kinto's `Backoff` header asks a client to pause. Several places learn a
//! request should carry one (a rate limit almost used up, a shard under
//! pressure); each calls [`backoff`] and the entry point sets the largest.

use std::cell::Cell;
use std::future::Future;

tokio::task_local! {
    static BACKOFF: Cell<u64>;
}

/// Runs `work`, returning its output and the largest `Backoff` asked during it.
pub async fn scope<F: Future>(work: F) -> (F::Output, Option<u64>) {
    BACKOFF
        .scope(Cell::new(0), async {
            let out = work.await;
            let seconds = BACKOFF.try_with(Cell::get).unwrap_or(0);
            (out, (seconds > 0).then_some(seconds))
        })
        .await
}

/// Asks for `Backoff: seconds` on the current request (no-op outside one).
pub fn backoff(seconds: u64) {
    let _ = BACKOFF.try_with(|b| b.set(b.get().max(seconds)));
}

/// Takes a shard's pressure hint from the metadata of its reply.
pub fn from_shard(metadata: &tonic::metadata::MetadataMap) {
    let seconds = metadata
        .get(kinto_proto::limits::BACKOFF_METADATA)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(seconds) = seconds {
        backoff(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_largest_hint_wins_and_none_is_none() {
        let ((), hint) = scope(async {
            backoff(2);
            backoff(5);
            backoff(1);
        })
        .await;
        assert_eq!(hint, Some(5));
        assert_eq!(scope(async {}).await.1, None);
        backoff(3);
    }
}
