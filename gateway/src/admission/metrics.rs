//! Admission metrics: every refusal by reason, and the limiters' size.

use prometheus::{register_int_counter_vec, register_int_gauge_vec, IntCounterVec, IntGaugeVec};
use std::sync::LazyLock;

pub static REJECTIONS: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    register_int_counter_vec!(
        "kinto_admission_rejections_total",
        "Requests the gateway refused before serving them, by reason: rate_global, rate_address, rate_user, rate_app, rate_bucket, url_too_long, headers_too_large, body_too_large, body_timeout.",
        &["reason"]
    )
    .ok()
});

pub static LIMITER_KEYS: LazyLock<Option<IntGaugeVec>> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "kinto_ratelimit_keys",
        "Keys (users, addresses, apps) a rate limiter remembers, by limit; idle ones are swept.",
        &["limit"]
    )
    .ok()
});

pub fn rejected(reason: &str) {
    if let Some(c) = REJECTIONS.as_ref() {
        c.with_label_values(&[reason]).inc();
    }
}

pub fn keys(limit: &str, n: usize) {
    if let Some(g) = LIMITER_KEYS.as_ref() {
        g.with_label_values(&[limit]).set(n as i64);
    }
}
