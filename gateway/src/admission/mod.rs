//! Admission control at the gateway: rate limits (global, per client
//! address, per user, per app, per-bucket overrides), request limits and
//! the `Backoff` hints of [`hint`]. Limits are per gateway process: with
//! several replicas behind a balancer, each enforces its own share
//! (docs/configuration.md, "Admission control").
//!
//! The global and address limits are checked before the request is read
//! or authenticated, so a flood costs little; the user, app and bucket
//! limits once the caller is known.

pub mod client_address;
pub mod hint;
pub mod limiter;
mod metrics;
pub mod requests;
pub mod settings;
pub mod tarpit;

use crate::http::message::KResponse;
use kinto_proto::pb::Caller;
use kinto_proto::{ErrorKind, KintoError};
use limiter::{Decision, Limiter};
use settings::AdmissionSettings;
use std::net::IpAddr;
use std::sync::Weak;
use std::time::Duration;

/// How often idle limiter keys are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Global,
    Address,
    User,
    App,
    Bucket,
}

impl Limit {
    pub fn label(self) -> &'static str {
        match self {
            Limit::Global => "rate_global",
            Limit::Address => "rate_address",
            Limit::User => "rate_user",
            Limit::App => "rate_app",
            Limit::Bucket => "rate_bucket",
        }
    }
}

/// A request over a rate limit, and when it may be retried.
#[derive(Debug, Clone, Copy)]
pub struct Rejection {
    pub limit: Limit,
    pub retry_after: Duration,
}

pub struct Admission {
    global: Option<Limiter<()>>,
    address: Option<Limiter<IpAddr>>,
    user: Option<Limiter<String>>,
    app: Option<Limiter<String>>,
    /// Overridden buckets, each with its own limit keyed by user id.
    buckets: foldhash::HashMap<String, Limiter<String>>,
    proxies: client_address::Proxies,
    tarpit: tarpit::Tarpit,
}

impl Admission {
    pub fn new(settings: &AdmissionSettings) -> Self {
        let keys = settings.ratelimit_max_keys.max(1);
        let r = &settings.rates;
        Admission {
            global: r.global.map(|rate| Limiter::new(rate, 1)),
            address: r.address.map(|rate| Limiter::new(rate, keys)),
            user: r.user.map(|rate| Limiter::new(rate, keys)),
            app: r.app.map(|rate| Limiter::new(rate, keys)),
            buckets: r
                .buckets
                .iter()
                .map(|(b, rate)| (b.clone(), Limiter::new(*rate, keys)))
                .collect(),
            proxies: settings.proxies.clone(),
            tarpit: tarpit::Tarpit::new(
                Duration::from_millis(settings.ratelimit_refusal_delay_ms),
                settings.ratelimit_max_delayed_refusals,
            ),
        }
    }

    /// The limits known before authentication: global, then the client's
    /// address (`peer` is `None` for requests that did not come over TCP).
    pub fn at_entry(
        &self,
        peer: Option<IpAddr>,
        headers: &axum::http::HeaderMap,
    ) -> Result<(), Rejection> {
        decide(Limit::Global, self.global.as_ref(), &())?;
        if let Some(peer) = peer {
            let client = self.proxies.client(peer, headers);
            decide(Limit::Address, self.address.as_ref(), &client)?;
        }
        Ok(())
    }

    /// The limits of an authenticated caller, for a request to `bucket`;
    /// `app` is the per-app scope of its token (`auth::Identity`).
    /// Anonymous requests are limited by address only.
    pub fn for_caller(
        &self,
        caller: &Caller,
        app: Option<&str>,
        bucket: Option<&str>,
    ) -> Result<(), Rejection> {
        if caller.user_id.is_empty() {
            return Ok(());
        }
        if let Some(app) = app {
            decide(Limit::App, self.app.as_ref(), &app.to_owned())?;
        }
        match bucket.and_then(|b| self.buckets.get(b)) {
            Some(limiter) => decide(Limit::Bucket, Some(limiter), &caller.user_id),
            None => decide(Limit::User, self.user.as_ref(), &caller.user_id),
        }
    }

    /// The answer to a request `rejection` refused, once the tarpit has
    /// held it.
    pub async fn refuse(&self, rejection: Rejection) -> KResponse {
        self.tarpit.hold(&rejection).await;
        rejection.response()
    }

    /// Drops idle keys; reports how many each limiter keeps.
    pub fn sweep(&self) {
        fn one<K: std::hash::Hash + Eq + Clone>(name: &str, l: Option<&Limiter<K>>) {
            if let Some(l) = l {
                l.sweep();
                metrics::keys(name, l.keys());
            }
        }
        one("address", self.address.as_ref());
        one("user", self.user.as_ref());
        one("app", self.app.as_ref());
        if !self.buckets.is_empty() {
            let mut keys = 0;
            for l in self.buckets.values() {
                l.sweep();
                keys += l.keys();
            }
            metrics::keys("bucket", keys);
        }
    }
}

fn decide<K: std::hash::Hash + Eq + Clone>(
    limit: Limit,
    limiter: Option<&Limiter<K>>,
    key: &K,
) -> Result<(), Rejection> {
    match limiter.map(|l| l.check(key)) {
        None | Some(Decision::Admit { near: None }) => Ok(()),
        Some(Decision::Admit { near: Some(refill) }) => {
            hint::backoff(whole_seconds(refill));
            Ok(())
        }
        Some(Decision::Reject { retry_after }) => {
            metrics::rejected(limit.label());
            Err(Rejection { limit, retry_after })
        }
    }
}

/// Seconds for `Retry-After` and `Backoff`: whole, at least 1.
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs_f64().ceil().max(1.0) as u64
}

impl Rejection {
    /// Kinto's 429 (errno 117), with `Retry-After` and `Backoff`.
    pub fn response(&self) -> KResponse {
        let seconds = whole_seconds(self.retry_after);
        let e = KintoError::new(ErrorKind::TooManyRequests)
            .with_message("Client has sent too many requests")
            .with_details(serde_json::json!({"limit": self.limit.label()}));
        let mut resp = KResponse::error(&e, seconds);
        resp.set("retry-after", seconds.to_string());
        resp.set("backoff", seconds.to_string());
        resp
    }
}

/// Sweeps `admission` every few seconds while it lives.
pub fn spawn_sweeper(app: Weak<crate::app::App>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        loop {
            every.tick().await;
            match app.upgrade() {
                Some(app) => app.admission.sweep(),
                None => return,
            }
        }
    });
}

/// Counts a refusal of [`requests`] by reason.
pub fn refused(reason: &str) {
    metrics::rejected(reason);
}
