//! The gateway's shared state and its axum entry point.

use crate::config::GatewayConfig;
use crate::http::message::{KRequest, KResponse};
use crate::routing::ShardMap;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Request, Response};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Account names remembered per gateway (names are at most a few dozen
/// bytes in practice, so this stays within tens of MB).
const KNOWN_ACCOUNTS_CAPACITY: u64 = 200_000;

pub struct App {
    pub config: GatewayConfig,
    pub shards: ShardMap,
    /// Bcrypt's verdicts, positive and negative, by HMAC of name, stored
    /// hash and password (see `auth`).
    pub account_cache: moka::sync::Cache<String, bool>,
    /// Names a shard lately answered to be accounts: when their shard is
    /// down, they get 503 rather than another identity (see `auth`).
    pub known_accounts: moka::sync::Cache<String, ()>,
    pub bucket_ids: crate::http::BucketIds,
}

impl App {
    pub fn new(config: GatewayConfig, shards: ShardMap) -> Arc<Self> {
        // Refreshed on use, as Kinto's: an active user pays bcrypt once.
        let account_cache = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_idle(std::time::Duration::from_secs(
                config.account_cache_ttl_seconds,
            ))
            .build();
        // Every lookup of an account refreshes its entry.
        let known_accounts = moka::sync::Cache::builder()
            .max_capacity(KNOWN_ACCOUNTS_CAPACITY)
            .time_to_live(std::time::Duration::from_secs(
                config.account_names_ttl_seconds,
            ))
            .build();
        let bucket_ids = crate::http::BucketIds::new(&config.default_bucket_hmac_secret);
        Arc::new(App {
            config,
            shards,
            account_cache,
            known_accounts,
            bucket_ids,
        })
    }

    /// `scheme://host` as clients reach us (`http_scheme`/`http_host` win).
    pub fn base_url(&self, req: &KRequest) -> String {
        let scheme = self.config.http_scheme.as_deref().unwrap_or("http");
        let host = self
            .config
            .http_host
            .clone()
            .or_else(|| req.header("host").map(str::to_owned))
            .unwrap_or_else(|| self.config.bind.clone());
        format!("{scheme}://{host}")
    }
}

/// The axum router: every path goes to Kinto's own dispatcher.
pub fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new().fallback(entry).with_state(app)
}

/// One span per request (the root of its trace) and one log line when it
/// ends: method, endpoint kind, status, errno, duration; no user id, no
/// bucket id, so logs carry no personal data.
async fn entry(State(app): State<Arc<App>>, request: Request<Body>) -> Response<Body> {
    let started = std::time::Instant::now();
    let method = request.method().to_string();
    let route = crate::http::routes::label_of(request.uri().path());
    let span = tracing::info_span!(
        "request",
        http.method = %method,
        http.route = route,
        http.status_code = tracing::field::Empty,
        kinto.errno = tracing::field::Empty,
    );
    let resp = entry_inner(app, request).instrument(span.clone()).await;
    let status = resp.status.as_u16();
    let errno = resp.errno();
    span.record("http.status_code", i64::from(status));
    if let Some(e) = errno {
        span.record("kinto.errno", e as i64);
    }
    let seconds = started.elapsed().as_secs_f64();
    crate::metrics::request(route, &method, status, errno, seconds);
    tracing::info!(
        target: "kinto::request",
        parent: &span,
        method = %method,
        route,
        status,
        errno,
        duration_ms = seconds * 1000.0,
        "request"
    );
    into_http(resp)
}

async fn entry_inner(app: Arc<App>, request: Request<Body>) -> KResponse {
    let (parts, body) = request.into_parts();
    let limit = app.config.max_body_bytes as usize;
    let raw_path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let resp = match axum::body::to_bytes(body, limit).await {
        Err(_) => KResponse::error(
            &kinto_proto::KintoError::new(kinto_proto::ErrorKind::RequestTooLarge)
                .with_message(format!("Request body is larger than {limit} bytes")),
            app.config.retry_after_seconds,
        ),
        Ok(bytes) => match percent_encoding::percent_decode_str(&raw_path).decode_utf8() {
            Err(_) => KResponse::bad_request("Invalid URL path."),
            Ok(_)
                if percent_encoding::percent_decode_str(&query)
                    .decode_utf8()
                    .is_err() =>
            {
                KResponse::bad_request(&format!(
                    "A request with an incorrect encoding in the querystring was\
                     received. Please make sure your requests are encoded in UTF-8: {query}"
                ))
            }
            Ok(path) => {
                let req = KRequest {
                    method: parts.method,
                    path: path.into_owned(),
                    query,
                    headers: Arc::new(parts.headers),
                    body: bytes,
                    json: None,
                };
                let timeout = Duration::from_secs(app.config.request_timeout_seconds.max(1));
                match crate::deadline::within(timeout, crate::http::handle(&app, req)).await {
                    Some(resp) => resp,
                    None => KResponse::error(
                        &kinto_proto::KintoError::unavailable("request deadline passed")
                            .with_message(format!(
                                "The request did not finish within {} seconds.",
                                timeout.as_secs()
                            )),
                        app.config.retry_after_seconds,
                    ),
                }
            }
        },
    };
    resp
}

/// Serialises a [`KResponse`].
pub fn into_http(r: KResponse) -> Response<Body> {
    let json = r.body.is_some();
    let body = match (r.body, r.raw) {
        (Some(json), _) => Body::from(json.into_bytes()),
        (None, Some(bytes)) => Body::from(bytes),
        (None, None) => Body::empty(),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = r.status;
    *resp.headers_mut() = r.headers;
    if json {
        resp.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
    }
    resp
}
