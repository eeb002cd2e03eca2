//! The gateway's Prometheus metrics, rendered with the rest of the process's
//! registry at `GET /v1/__metrics__` (Kinto's `kinto.plugins.prometheus`).

use prometheus::{
    register_histogram_vec, register_int_counter, register_int_counter_vec, HistogramVec,
    IntCounter, IntCounterVec,
};
use std::sync::LazyLock;

pub static REQUESTS: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    register_int_counter_vec!(
        "kinto_requests_total",
        "HTTP requests, by endpoint kind, method, status and Kinto errno (0 for successes).",
        &["route", "method", "status", "errno"]
    )
    .ok()
});

pub static LATENCY: LazyLock<Option<HistogramVec>> = LazyLock::new(|| {
    register_histogram_vec!(
        "kinto_request_seconds",
        "HTTP request duration, by endpoint kind.",
        &["route"],
        vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]
    )
    .ok()
});

pub static ACCOUNT_CACHE: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    register_int_counter_vec!(
        "kinto_account_cache_total",
        "Account password checks (also of names without an account): `hit` skipped bcrypt, `miss` ran it.",
        &["result"]
    )
    .ok()
});

pub static ACCOUNT_LOOKUP_FALLBACK: LazyLock<Option<IntCounter>> = LazyLock::new(|| {
    register_int_counter!(
        "kinto_account_lookup_fallback_total",
        "Basic credentials whose accounts shard was unavailable, taken as not an account (the name was not known as one)."
    )
    .ok()
});

/// Records one finished request.
pub fn request(route: &str, method: &str, status: u16, errno: Option<u64>, seconds: f64) {
    if let Some(c) = REQUESTS.as_ref() {
        let status = status.to_string();
        let errno = errno.unwrap_or(0).to_string();
        c.with_label_values(&[route, method, status.as_str(), errno.as_str()])
            .inc();
    }
    if let Some(h) = LATENCY.as_ref() {
        h.with_label_values(&[route]).observe(seconds);
    }
}

pub fn account_cache(hit: bool) {
    if let Some(c) = ACCOUNT_CACHE.as_ref() {
        c.with_label_values(&[if hit { "hit" } else { "miss" }])
            .inc();
    }
}

pub fn account_lookup_fallback() {
    if let Some(c) = ACCOUNT_LOOKUP_FALLBACK.as_ref() {
        c.inc();
    }
}

pub static SHARD_REPLY_ERRORS: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    register_int_counter_vec!(
        "kinto_gateway_shard_reply_errors_total",
        "Shard replies the gateway could not use (each answered 503), by shard index and kind: transport, missing_result, outcome_count, undecodable_error, undecodable_data.",
        &["shard", "kind"]
    )
    .ok()
});

pub fn shard_reply_error(shard: &str, kind: &str) {
    if let Some(c) = SHARD_REPLY_ERRORS.as_ref() {
        c.with_label_values(&[shard, kind]).inc();
    }
}

pub static MAP_REFRESHES: LazyLock<Option<IntCounter>> = LazyLock::new(|| {
    register_int_counter!(
        "kinto_gateway_map_refresh_total",
        "Newer shard maps the gateway read (by polling, or after a shard's refusal)."
    )
    .ok()
});

pub static WRONG_SHARD_RETRIES: LazyLock<Option<IntCounter>> = LazyLock::new(|| {
    register_int_counter!(
        "kinto_gateway_wrong_shard_retries_total",
        "Operations retried because a shard refused a bucket it does not own."
    )
    .ok()
});

pub static SPANNING_RETRIES: LazyLock<Option<IntCounter>> = LazyLock::new(|| {
    register_int_counter!(
        "kinto_gateway_spanning_list_retries_total",
        "Lists of every shard read again because the shards' parts did not cover every slot once (a move handing slots over)."
    )
    .ok()
});

pub static NOT_RUN_RETRIES: LazyLock<Option<IntCounter>> = LazyLock::new(|| {
    register_int_counter!(
        "kinto_gateway_not_run_retries_total",
        "Shard calls retried because they never ran: the shard was stopping or unreachable."
    )
    .ok()
});
