//! Refusals held back before they are sent. A client that ignores
//! `Retry-After` and sends its next request as soon as the last one is
//! answered (what a flood from a few connections does) would otherwise
//! cost a whole request's parsing and answer at wire speed; holding each
//! refusal for a moment bounds such a client to a few requests per second
//! per connection, at the price of a sleeping task. The number of refusals
//! held at once is bounded, so many connections cannot turn the holding
//! itself into a cost: beyond the bound, refusals go out at once.

use super::Rejection;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub struct Tarpit {
    delay: Duration,
    max_held: usize,
    held: AtomicUsize,
}

impl Tarpit {
    pub fn new(delay: Duration, max_held: usize) -> Self {
        Tarpit {
            delay,
            max_held,
            held: AtomicUsize::new(0),
        }
    }

    /// Waits before `rejection` is answered: the configured delay, never
    /// longer than the `Retry-After` it announces (whole seconds, so at
    /// least one), and not at all when too many refusals are already held.
    pub async fn hold(&self, rejection: &Rejection) {
        let announced = Duration::from_secs(super::whole_seconds(rejection.retry_after));
        let delay = self.delay.min(announced);
        if delay.is_zero() {
            return;
        }
        let _held = match Held::take(&self.held, self.max_held) {
            Some(held) => held,
            None => return,
        };
        tokio::time::sleep(delay).await;
    }
}

/// One slot of the bound, given back when the refusal is sent (or its
/// request dropped).
struct Held<'a>(&'a AtomicUsize);

impl<'a> Held<'a> {
    fn take(count: &'a AtomicUsize, max: usize) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Held(count))
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::Limit;

    fn rejection(retry_after_ms: u64) -> Rejection {
        Rejection {
            limit: Limit::User,
            retry_after: Duration::from_millis(retry_after_ms),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn holds_for_the_delay_but_never_past_the_announced_retry_after() {
        let pit = Tarpit::new(Duration::from_millis(500), 10);
        let t = tokio::time::Instant::now();
        // A refill due in 20 ms is announced as `Retry-After: 1`.
        pit.hold(&rejection(20)).await;
        assert_eq!(t.elapsed(), Duration::from_millis(500));
        let pit = Tarpit::new(Duration::from_millis(5000), 10);
        let t = tokio::time::Instant::now();
        pit.hold(&rejection(1500)).await;
        assert_eq!(t.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn beyond_the_bound_refusals_go_out_at_once() {
        let pit = std::sync::Arc::new(Tarpit::new(Duration::from_millis(500), 2));
        let held: Vec<_> = (0..2)
            .map(|_| {
                let pit = pit.clone();
                tokio::spawn(async move { pit.hold(&rejection(1000)).await })
            })
            .collect();
        tokio::task::yield_now().await;
        assert_eq!(pit.held.load(Ordering::Acquire), 2);
        let t = tokio::time::Instant::now();
        pit.hold(&rejection(1000)).await;
        assert_eq!(t.elapsed(), Duration::ZERO);
        for h in held {
            h.await.expect("held refusal");
        }
        assert_eq!(pit.held.load(Ordering::Acquire), 0);
    }
}
