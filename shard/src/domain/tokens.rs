//! Single-use pagination tokens of plural DELETEs. Kinto keeps the nonce of
//! each `Next-Page` token a DELETE gives back in its cache, for
//! `pagination_token_validity_seconds`, and deletes it when the token is
//! used: a token works once, and only when a DELETE made it (#1171). Here the
//! nonces live on the shard that owns the list, so every gateway sees the
//! same ones; in memory, with an expiry and a bound, like Kinto's memory cache.

use super::request::{Outcome, Request};
use super::resource::Kind;
use super::Shard;
use kinto_proto::KintoError;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Kinto's default `pagination_token_validity_seconds`.
const VALIDITY: Duration = Duration::from_secs(600);
/// Live nonces kept at most: beyond it the oldest are forgotten (a token
/// then answers as expired), so memory stays bounded under any load.
const MAX_LIVE: usize = 100_000;

#[derive(Default)]
pub(super) struct Nonces {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Nonce → when it expires.
    live: HashMap<String, Instant>,
    /// Issue order, which is expiry order (one validity for all).
    order: VecDeque<(Instant, String)>,
}

impl Inner {
    fn prune(&mut self, now: Instant) {
        while let Some((expiry, _)) = self.order.front() {
            if *expiry > now && self.order.len() < MAX_LIVE {
                break;
            }
            if let Some((expiry, nonce)) = self.order.pop_front() {
                // A nonce already used is no longer live; one issued again
                // (never, with uuids) keeps its newer expiry.
                if self.live.get(&nonce) == Some(&expiry) {
                    self.live.remove(&nonce);
                }
            }
        }
    }
}

impl Nonces {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map stays consistent at every step: a panic elsewhere cannot
        // leave it half-written.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn issue(&self, nonce: &str, now: Instant) {
        let mut inner = self.lock();
        inner.prune(now);
        let expiry = now + VALIDITY;
        inner.live.insert(nonce.to_owned(), expiry);
        inner.order.push_back((expiry, nonce.to_owned()));
    }

    /// Whether `nonce` was live; it is not any more.
    pub(super) fn consume(&self, nonce: &str, now: Instant) -> bool {
        let mut inner = self.lock();
        inner.prune(now);
        inner.live.remove(nonce).is_some()
    }
}

impl Shard {
    /// A plural DELETE with a `_token`: its nonce must be live (Kinto checks
    /// it after the permissions, the parents and `If-Match`).
    pub(super) fn consume_token(&self, req: &Request) -> Result<(), KintoError> {
        match &req.query.used_nonce {
            Some(nonce) if !self.nonces.consume(nonce, Instant::now()) => Err(KintoError::invalid(
                "querystring",
                None,
                "_token was already used or has expired.",
            )),
            _ => Ok(()),
        }
    }

    /// Keeps the nonce of the DELETE's `Next-Page` token. `DELETE /buckets`
    /// runs on every shard and the gateway decides about the next page, so
    /// each shard keeps it.
    pub(super) fn issue_token(&self, req: &Request, outcome: &Outcome) {
        if let Some(nonce) = &req.query.next_nonce {
            if outcome.has_more || req.target.kind == Kind::Bucket {
                self.nonces.issue(nonce, Instant::now());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_works_once_and_expires() {
        let n = Nonces::default();
        let t0 = Instant::now();
        n.issue("a", t0);
        n.issue("b", t0);
        assert!(n.consume("a", t0));
        assert!(!n.consume("a", t0));
        assert!(!n.consume("never", t0));
        assert!(!n.consume("b", t0 + VALIDITY));
    }

    #[test]
    fn live_nonces_are_bounded() {
        let n = Nonces::default();
        let t0 = Instant::now();
        for i in 0..MAX_LIVE + 10 {
            n.issue(&i.to_string(), t0);
        }
        assert!(n.lock().order.len() <= MAX_LIVE);
        assert!(!n.consume("0", t0));
        assert!(n.consume(&(MAX_LIVE + 9).to_string(), t0));
    }
}
