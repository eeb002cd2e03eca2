//! Every request has a deadline (`request_timeout_seconds`): the gateway
//! answers 503 by then, and every shard call it makes carries what is left
//! of it as gRPC's `grpc-timeout`, so a shard stops working for a caller
//! that has given up (it checks its budget between rows, see the shard's
//! `domain::budget`).

use std::future::Future;
use std::time::{Duration, Instant};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `work` with a deadline `timeout` from now; `None` if it passed first.
pub async fn within<F: Future>(timeout: Duration, work: F) -> Option<F::Output> {
    let deadline = Instant::now() + timeout;
    let scoped = DEADLINE.scope(deadline, work);
    tokio::time::timeout_at(deadline.into(), scoped).await.ok()
}

/// The time left to the current request (`None` outside a request).
pub fn left() -> Option<Duration> {
    DEADLINE
        .try_with(|d| d.saturating_duration_since(Instant::now()))
        .ok()
}

/// `request` with the current request's remaining time as its timeout
/// (none outside a request: start-up, health checks of their own).
pub fn bound<T>(mut request: tonic::Request<T>) -> tonic::Request<T> {
    if let Ok(deadline) = DEADLINE.try_with(|d| *d) {
        // At least 1 ms: a zero timeout reads as "no deadline" to some servers.
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        request.set_timeout(left);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_inside_gets_the_time_left_and_one_outside_none() {
        let r = within(Duration::from_secs(5), async {
            bound(tonic::Request::new(()))
        })
        .await
        .expect("in time");
        assert!(r.metadata().get("grpc-timeout").is_some());
        assert!(bound(tonic::Request::new(()))
            .metadata()
            .get("grpc-timeout")
            .is_none());
    }

    #[tokio::test]
    async fn work_past_the_deadline_is_dropped() {
        let late = within(Duration::from_millis(10), std::future::pending::<()>()).await;
        assert!(late.is_none());
    }
}
