//! One keyed rate limit (GCRA, from `governor`) whose memory stays bounded:
//! keys whose state is back to fresh are dropped by [`Limiter::sweep`],
//! and early, at most once a second, when a flood of distinct keys (many
//! addresses) passes `max_keys`.

use super::settings::Rate;
use governor::clock::{Clock, QuantaClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

type Keyed<K> = RateLimiter<K, DashMapStateStore<K>, QuantaClock, StateInformationMiddleware>;

/// What a limiter says of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Admitted; `near` when less than a quarter of the burst is left,
    /// with the time the burst needs to refill.
    Admit { near: Option<Duration> },
    /// Over the rate: the earliest a retry can pass.
    Reject { retry_after: Duration },
}

pub struct Limiter<K: Hash + Eq + Clone> {
    limiter: Keyed<K>,
    rate: Rate,
    max_keys: usize,
    started: Instant,
    /// Milliseconds after `started` of the last early sweep.
    last_sweep_ms: AtomicU64,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        let period = Duration::from_secs_f64(1.0 / rate.per_second).max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN);
        // `with_period` fails only for a zero period, excluded above.
        let quota = Quota::with_period(period)
            .unwrap_or(Quota::per_second(burst))
            .allow_burst(burst);
        let limiter = RateLimiter::dashmap_with_clock(quota, QuantaClock::default())
            .with_middleware::<StateInformationMiddleware>();
        Limiter {
            limiter,
            rate,
            max_keys,
            started: Instant::now(),
            last_sweep_ms: AtomicU64::new(0),
        }
    }

    pub fn check(&self, key: &K) -> Decision {
        if self.limiter.len() > self.max_keys {
            self.sweep_at_most_once_a_second();
        }
        match self.limiter.check_key(key) {
            Ok(state) => {
                let left = state.remaining_burst_capacity();
                let near = (u64::from(left) * 4 < u64::from(self.rate.burst)).then(|| {
                    let missing = f64::from(self.rate.burst - left.min(self.rate.burst));
                    Duration::from_secs_f64(missing / self.rate.per_second)
                });
                Decision::Admit { near }
            }
            Err(not_until) => Decision::Reject {
                retry_after: not_until.wait_time_from(self.limiter.clock().now()),
            },
        }
    }

    /// Drops the keys whose state is as if never used.
    pub fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    pub fn keys(&self) -> usize {
        self.limiter.len()
    }

    fn sweep_at_most_once_a_second(&self) {
        let now_ms = self.started.elapsed().as_millis() as u64;
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) >= 1000
            && self
                .last_sweep_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.limiter.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: f64, burst: u32) -> Rate {
        Rate { per_second, burst }
    }

    #[test]
    fn a_key_past_its_burst_is_rejected_with_a_wait_and_others_are_not() {
        let l = Limiter::new(rate(1.0, 4), 10);
        for _ in 0..4 {
            assert!(matches!(l.check(&"a"), Decision::Admit { .. }));
        }
        match l.check(&"a") {
            Decision::Reject { retry_after } => {
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1))
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(l.check(&"b"), Decision::Admit { near: None });
    }

    #[test]
    fn admitting_the_last_cells_warns_of_the_limit() {
        let l = Limiter::new(rate(1.0, 8), 10);
        let near: Vec<bool> = (0..8)
            .map(|_| matches!(l.check(&1), Decision::Admit { near: Some(_) }))
            .collect();
        assert_eq!(near, [false, false, false, false, false, false, true, true]);
    }

    #[test]
    fn idle_keys_are_swept() {
        let l = Limiter::new(rate(1000.0, 1), 10);
        for k in 0..20 {
            l.check(&k);
        }
        std::thread::sleep(Duration::from_millis(20));
        l.sweep();
        assert_eq!(l.keys(), 0);
    }
}
